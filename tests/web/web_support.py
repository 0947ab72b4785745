"""Helpers for the dashboard tests: a lab whose run RUN-G5-001 waits for review (the
default auto-verification rule holds it), users with passwords, logging in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner
from conftest import REVIEW_DEFAULTS, ProcessedLab, process_sample_lab
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from saa_lab.config import load_config
from saa_lab.store import Store
from saa_lab.web import create_app

PASSWORD = "correct horse battery"
# A quick hash for tests (the default scrypt costs ~50 ms a check, fine for people).
_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
USERS = f"""
[[users]]
name = "amoss"
full_name = "Ada Moss"
roles = ["reviewer", "approver"]
password_hash = "{_HASH}"

[[users]]
name = "rvega"
full_name = "Rosa Vega"
roles = ["reviewer"]
password_hash = "{_HASH}"

[[users]]
name = "nopass"
full_name = "No Password"
roles = ["reviewer"]
"""
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client: FlaskClient, name: str = "amoss", password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": name, "password": password,
                                           "csrf_token": token})  # fmt: skip
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_of(client.get("/runs").get_data(as_text=True))


def make_lab(folder: Path, runner: CliRunner, extra: str = "") -> ProcessedLab:
    """RUN-G5-001 processed on SQLite in ``folder``; its run (run 1) waits for review."""
    return process_sample_lab(folder, f"sqlite:///{folder / 'lab.db'}", runner, USERS + extra,
                              autoverification=REVIEW_DEFAULTS)  # fmt: skip


@contextmanager
def dashboard(lab: ProcessedLab) -> Iterator[Flask]:
    """The dashboard's app on ``lab`` (its store closed afterwards)."""
    config = load_config(lab.config_path)
    store = Store(config.database_url, zone=config.lab.zone)
    try:
        yield create_app(config, store)
    finally:
        store.close()
