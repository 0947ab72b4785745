from saa_lab.cli import main

main()
