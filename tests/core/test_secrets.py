"""Database passwords come from the environment or a file, never from the command line,
and never appear in logs, error messages or `saa-lab status`.

``[database] password_file`` (first line; relative to the config file) or env
``SAA_LAB_DATABASE_PASSWORD`` (which wins) is put into the URL when the database is
opened. A URL in the config file that holds a password is warned about.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import PG_ENV, write_config
from sqlalchemy.engine import make_url

from saa_lab.cli import cli
from saa_lab.config import load_config
from saa_lab.errors import ConfigError, StoreError
from saa_lab.logs import mask_password
from saa_lab.store import Store

SECRET = "Zz-s3cret/p@ss:w%rd"  # characters a URL must escape
PG = "postgresql+psycopg://saa@127.0.0.1:5432/saa"
CLOSED_PORT = "postgresql+psycopg://saa@127.0.0.1:1/saa"  # nothing listens on port 1


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SAA_LAB_CONFIG", "SAA_LAB_DATABASE_URL", "SAA_LAB_DATABASE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def lab(folder: Path, url: str = PG, database: str = "") -> Path:
    return write_config(folder, f'\n[database]\nurl = "{url}"\n{database}')


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


# -- the command line -----------------------------------------------------------------


def test_no_command_line_option_takes_a_database_url_or_password() -> None:
    words = ("url", "password", "passwd", "dsn", "database", "secret", "db")
    commands = [("saa-lab", cli), *_commands(cli)]
    assert len(commands) > 10
    offending = []
    for where, command in commands:
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            names = [n.lstrip("-").lower() for n in (*param.opts, *param.secondary_opts)]
            names += [param.name or ""]
            if any(w in part for n in names for part in n.replace("_", "-").split("-")
                   for w in words):  # fmt: skip
                offending.append(f"{where}: {param.opts}")
    assert offending == []


# -- where the password comes from ------------------------------------------------------


def test_a_password_file_relative_to_the_config_is_read_first_line_only(tmp_path: Path) -> None:
    path = lab(tmp_path / "lab", database='password_file = "secrets/db-password"\n')
    (tmp_path / "lab" / "secrets").mkdir()
    (tmp_path / "lab" / "secrets" / "db-password").write_text(f"{SECRET}\r\nignored\n")
    url = make_url(load_config(path).database_url)
    assert url.password == SECRET
    assert (url.username, url.host, url.port, url.database) == ("saa", "127.0.0.1", 5432, "saa")
    assert SECRET not in str(url)  # SQLAlchemy's own rendering masks it


def test_the_environment_password_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = lab(tmp_path / "lab", database='password_file = "missing-file"\n')
    monkeypatch.setenv("SAA_LAB_DATABASE_PASSWORD", SECRET)
    assert make_url(load_config(path).database_url).password == SECRET


def test_the_environment_password_goes_into_an_environment_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path / "lab")
    monkeypatch.setenv("SAA_LAB_DATABASE_URL", "postgresql://saa@db.example/saa")
    monkeypatch.setenv("SAA_LAB_DATABASE_PASSWORD", SECRET)
    url = make_url(load_config(path).database_url)
    assert (url.password, url.host) == (SECRET, "db.example")


def test_without_a_password_the_url_is_unchanged(tmp_path: Path) -> None:
    assert load_config(lab(tmp_path / "lab")).database_url == PG


def test_sqlite_needs_no_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAA_LAB_DATABASE_PASSWORD", SECRET)
    config = load_config(lab(tmp_path / "lab", "sqlite:///lab.db"))
    assert config.database_url == f"sqlite:///{(tmp_path / 'lab' / 'lab.db').resolve()}"


@pytest.mark.parametrize(("content", "problem"), [(None, "cannot read"), ("", "is empty"),
                                                  ("\nsecond line\n", "is empty")])  # fmt: skip
def test_a_missing_or_empty_password_file_is_a_config_error_naming_the_key(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = lab(tmp_path / "lab", database='password_file = "db-password"\n')
    if content is not None:
        (tmp_path / "lab" / "db-password").write_text(content)
    config = load_config(path)
    with pytest.raises(ConfigError) as caught:
        _ = config.database_url
    assert caught.value.key == "database.password_file"
    assert caught.value.path == str(path)
    assert problem in str(caught.value) and "db-password" in str(caught.value)


def test_an_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    path = lab(tmp_path / "lab", database='password_file = "db-password"\n')
    (tmp_path / "lab" / "db-password").mkdir()  # unreadable as a file, even for root
    with pytest.raises(ConfigError, match="cannot read the database password file") as caught:
        _ = load_config(path).database_url
    assert caught.value.key == "database.password_file"


def test_the_cli_names_the_key_when_the_password_file_is_missing(tmp_path: Path) -> None:
    path = lab(tmp_path / "lab", database='password_file = "nowhere/db-password"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == ConfigError.exit_code, result.output
    assert "database.password_file" in result.output and "Traceback" not in result.output


def test_a_password_in_the_config_files_url_is_warned_about_without_showing_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = lab(tmp_path / "lab", "postgresql+psycopg://saa:hunter2secret@127.0.0.1/saa")
    caplog.set_level(logging.DEBUG)
    url = load_config(path).database_url
    assert make_url(url).password == "hunter2secret"  # still works
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "database.password_file" in warning.getMessage()
    assert "hunter2secret" not in warning.getMessage()


def test_no_warning_for_a_password_from_the_environment_or_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SAA_LAB_DATABASE_URL", "postgresql://saa:fromenv@127.0.0.1/saa")
    _ = load_config(lab(tmp_path / "lab")).database_url
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- never shown --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://saa:pw@host:5432/db", "postgresql://saa:***@host:5432/db"),
        ("postgresql+psycopg://saa:p%40ss@host/db?sslmode=require",
         "postgresql+psycopg://saa:***@host/db?sslmode=require"),
        ("postgresql://saa@host/db", "postgresql://saa@host/db"),
        ("sqlite:////var/lib/saa-lab/lab.db", "sqlite:////var/lib/saa-lab/lab.db"),
    ],
)  # fmt: skip
def test_mask_password(url: str, shown: str) -> None:
    assert mask_password(url) == shown


def test_a_database_that_cannot_be_reached_names_no_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`saa-lab status` against a server that is down: one line, exit 5, no password in
    the output or any log record; the same for the StoreError itself."""
    pytest.importorskip("psycopg")
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("SAA_LAB_DATABASE_PASSWORD", SECRET)
    path = lab(tmp_path / "lab", CLOSED_PORT)
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == StoreError.exit_code, result.output
    assert "cannot open" in result.output or "database" in result.output
    with pytest.raises(StoreError) as caught:
        Store(load_config(path).database_url)
    for shown in (result.output, str(caught.value), *(r.getMessage() for r in caplog.records)):
        assert SECRET not in shown and "s3cret" not in shown


# -- a real PostgreSQL ------------------------------------------------------------------

ROLE = "saa_lab_secret_test"


@pytest.fixture
def pg_role() -> Iterator[str]:
    """A login role with a password on the test server (dropped afterwards)."""
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(f"{PG_ENV} is not set (PostgreSQL tests skipped)")
    psycopg = pytest.importorskip("psycopg")
    conninfo = make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
            conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{SECRET}'")
    except psycopg.Error as exc:
        pytest.skip(f"cannot create a role on the test server: {exc}")
    yield admin
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")


@pytest.mark.postgres
def test_a_password_file_opens_a_password_protected_role(pg_role: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    server = make_url(pg_role)
    url = server.set(username=ROLE, password=None).render_as_string(hide_password=False)
    path = lab(tmp_path / "lab", url, 'password_file = "db-password"\n')
    (tmp_path / "lab" / "db-password").write_text(SECRET + "\n")
    store = Store(load_config(path).database_url, migrate=False)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == ROLE
            # The password reached the driver (a server on "trust" never asks for it).
            assert conn.connection.driver_connection.info.password == SECRET  # type: ignore[union-attr]
        assert SECRET not in repr(store.engine) and SECRET not in str(store.engine.url)
    finally:
        store.close()
