"""Shared fixtures: workspaces with a config, and databases (SQLite; PostgreSQL when
SAA_LAB_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from saa_lab.config import AppConfig, load_config
from saa_lab.store import Store

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_files"
SHARED_REAL = REPO.parent / "shared" / "samples" / "real"
PG_ENV = "SAA_LAB_TEST_DATABASE_URL"

FAST_WATCH = """
[watch]
poll_interval_seconds = 0.2
stability_seconds = 0.3
settle_seconds = 0.02
worklist_wait_seconds = {wait}
"""


# Tests of processing and delivery (not of review) release a run around its samples
# waiting for re-assay and keep no flag for a person, as before review existed: the
# bundled sample runs each have samples above the ULOQ. Review tests use the
# default rule (REVIEW_DEFAULTS) and say so.
RELEASE_ON_PROCESSING = """
[[autoverification]]
name = "tests-release-on-processing"
run_statuses = ["quantified", "below-lloq", "above-uloq", "above-reportable", "invalid"]
hold_flags = []
"""
REVIEW_DEFAULTS = ""


def release_on_processing(config: AppConfig) -> AppConfig:
    """``config`` with the auto-verification rule of RELEASE_ON_PROCESSING."""
    from saa_lab.config import AutoVerificationRule

    rule = AutoVerificationRule(
        name="tests-release-on-processing",
        run_statuses=("quantified", "below-lloq", "above-uloq", "above-reportable", "invalid"),
        hold_flags=(),
    )
    return config.model_copy(update={"autoverification": (rule,)})


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> bool:
    """Poll ``predicate`` every 20 ms until it holds; False once ``timeout`` s passed.

    Tests wait for an outcome (a file, a database row), never for a length of time;
    the timeout only bounds a test that fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def _openssl(*args: str, cwd: Path) -> None:
    import subprocess

    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(folder: Path) -> None:
    """In ``folder``: a CA (``ca.pem``), a server certificate for 127.0.0.1/localhost and a
    client certificate it signed (``server.pem``/``.key``, ``client.pem``/``.key``).
    Skips the test where the openssl command is missing."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not available to make test certificates")
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", f"/CN=saa-lab test CA {folder.name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)  # fmt: skip
    for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}-{folder.name}", cwd=folder)  # fmt: skip
        (folder / f"{name}.ext").write_text(
            f"subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n"
        )
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-set_serial", "2", "-days", "2", "-out", f"{name}.pem",
                 "-extfile", f"{name}.ext", cwd=folder)  # fmt: skip


def write_config(folder: Path, extra: str = "", *, database_url: str | None = None,
                 worklist_wait: float = 30,
                 autoverification: str = RELEASE_ON_PROCESSING) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    text = '[lab]\ntimezone = "Europe/Berlin"\n' + FAST_WATCH.format(wait=worklist_wait)
    # Run reports (matplotlib, seconds each) only where a test asks for them.
    if "[reports]" not in extra:
        text += "\n[reports]\nformats = []\n"
    text += autoverification
    if database_url:
        text += f'\n[database]\nurl = "{database_url}"\n'
    path = folder / "saa-lab.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def postgres_url() -> str:
    """The test PostgreSQL database, emptied; skips the test when none is configured."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set (PostgreSQL tests skipped)")
    _reset_postgres(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and, when configured, on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return postgres_url()


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner that ignores the developer's SAA_LAB_CONFIG and database URL."""
    monkeypatch.delenv("SAA_LAB_CONFIG", raising=False)
    monkeypatch.delenv("SAA_LAB_DATABASE_URL", raising=False)
    return CliRunner()


@pytest.fixture
def workspace(tmp_path: Path) -> AppConfig:
    """A workspace with a config file on SQLite."""
    return load_config(write_config(tmp_path / "ws"))


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Every thread a test starts (daemon workers, observers) must be stopped by it."""
    before = set(threading.enumerate())
    yield
    leaked = [
        t for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.name.startswith("pydevd")
    ]  # fmt: skip
    for thread in leaked:
        thread.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads left running: {still}"


# hl7apy's tables for 2.3.1-2.5.1 lack these (valid) codes; it only warns about them.
ALLOWED_HL7_WARNING = re.compile(
    r"Value (ACSN not in table HL70203|UCUM not in table HL70396"
    r"|UNICODE UTF-8 not in table HL70211) in element "
)


def assert_hl7_strict_valid(er7: str, report: Path) -> None:
    """hl7apy STRICT parse and validation; no finding but the known table gaps."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    message = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.validate(report_file=str(report)) is True
    problems = [
        line for line in report.read_text().splitlines()
        if line and not ALLOWED_HL7_WARNING.search(line)
    ]  # fmt: skip
    assert problems == []


@dataclass(frozen=True)
class ProcessedLab:
    """A workspace where `saa-lab process` stored RUN-G5-001 (review and audit tests)."""

    config_path: Path
    folder: Path
    url: str
    ids: dict[str, int]  # accession -> id of its first result version

    @contextmanager
    def store(self) -> Iterator[Store]:
        config = load_config(self.config_path)
        opened = Store(config.database_url, zone=config.lab.zone)
        try:
            yield opened
        finally:
            opened.close()


def process_sample_lab(folder: Path, url: str, runner: CliRunner, users: str,
                       **config: str) -> ProcessedLab:  # fmt: skip
    """Write a config with ``users`` (``config``: write_config's keywords) and process
    RUN-G5-001 with ``saa-lab process --json``."""
    from saa_lab.cli import cli

    config_path = write_config(folder, users, database_url=url, **config)
    export = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"
    result = runner.invoke(cli, ["--config", str(config_path), "process", str(export), "--json"])
    assert result.exit_code == 0, result.output
    (plate,) = json.loads(result.output)["plates"]
    ids = {r["accession"]: r["result_id"] for r in plate["results"]}
    return ProcessedLab(config_path, folder, url, ids)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After tests/hostile ran: how many generated inputs each property test tried."""
    import sys

    support = sys.modules.get("hostile_support")
    if support is None or not support.COUNTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("hostile inputs")
    for name, count in sorted(support.COUNTS.items()):
        write(f"{count:>7}  {name}")
    factor = support.factor()
    soak = f" ({support.EXAMPLES_ENV}={factor})" if factor > 1 else ""
    write(f"{sum(support.COUNTS.values()):>7}  examples in total{soak}")
    for bug, count in sorted(support.TOLERATED.items()):
        write(f"{count:>7}  inputs hit known bug {bug} (see its xfail test)")
