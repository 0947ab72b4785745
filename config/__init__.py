"""Packaged default configuration (installed as saa_lab.default_config)."""
