"""Start-up time of the command line (target: ``saa-lab --help`` under 300 ms).

    python benchmarks/bench_startup.py [--repeat 20]

Runs ``saa-lab --help``, ``saa-lab status --help`` and ``python -c 'import saa_lab.cli'``
as subprocesses of the venv's executables, ``--repeat`` times each after one warm-up
run, and prints min/median/p95 wall time. Then lists which heavy modules ``saa-lab
--help`` imports (a child running the console script's entry point under ``-X
importtime``) and, for each one imported, the saa_lab module that first pulled it in.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("pandas", "scipy", "numpy", "openpyxl", "sqlalchemy", "pydantic", "watchdog",
         "hl7apy", "allotropy", "matplotlib")  # fmt: skip
BIN = Path(sys.executable).parent


def commands() -> dict[str, list[str]]:
    return {
        "saa-lab --help": [str(BIN / "saa-lab"), "--help"],
        "saa-lab status --help": [str(BIN / "saa-lab"), "status", "--help"],
        "python -c 'import saa_lab.cli'": [sys.executable, "-c", "import saa_lab.cli"],
    }


def wall_times(argv: list[str], repeat: int) -> list[float]:
    subprocess.run(argv, check=True, capture_output=True)  # warm-up: the page cache
    took = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        took.append((time.perf_counter() - start) * 1000)
    return took


def heavy_imports() -> dict[str, str]:
    """Heavy top-level package → the import chain's saa_lab module that brought it in."""
    code = (
        "import sys; sys.argv = ['saa-lab', '--help']\n"
        "from saa_lab.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, check=True)  # fmt: skip
    found: dict[str, str] = {}
    # importtime lists a module after its imports, indented by depth: the importer of a
    # line is the next line below it with less indentation.
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    parsed = []
    for line in lines[1:]:
        name_part = line.split("|")[-1]
        depth = (len(name_part) - len(name_part.lstrip())) // 2
        parsed.append((depth, name_part.strip()))
    for i, (depth, name) in enumerate(parsed):
        top = name.split(".")[0]
        if top not in HEAVY or top in found:
            continue
        importer = "?"
        level = depth
        for later_depth, later in parsed[i + 1 :]:
            if later_depth < level:
                level = later_depth
                if later.startswith("saa_lab"):
                    importer = later
                    break
        found[top] = importer
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    python = sys.version.split()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}")
    print()
    print(f"| command ({args.repeat} runs) | min | median | p95 |")
    print("|---|---|---|---|")
    for label, argv in commands().items():
        took = sorted(wall_times(argv, args.repeat))
        p95 = took[max(0, round(0.95 * len(took)) - 1)]
        print(f"| `{label}` | {took[0]:.0f} ms | {statistics.median(took):.0f} ms "
              f"| {p95:.0f} ms |")  # fmt: skip
    print()
    heavy = heavy_imports()
    if not heavy:
        print(f"`saa-lab --help` imports none of: {', '.join(HEAVY)}")
    for module, importer in heavy.items():
        print(f"`saa-lab --help` imports {module} (first pulled in by {importer})")


if __name__ == "__main__":
    main()
