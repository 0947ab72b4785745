"""Bundled sample exports (installed as saa_lab.sample_files)."""
