"""Database faults (issue 8, item 4): PostgreSQL restarting under the daemon, the delivery
worker and the order listener; a COMMIT whose reply is lost; commands run while the
database is down; SQLite ``database is locked``.

PostgreSQL is never restarted for real (the server is shared): a TCP proxy
(``fault_proxy.py``) between saa-lab and the server drops every connection and refuses
new ones, or forwards a COMMIT and drops its reply. The promises checked: every export
is processed exactly once and archived, never quarantined for a database reason;
every released result's message is sent under one MSH-10 and recorded once; the daemon
keeps running and says what happened in one log line (no traceback); a command says it
in one line and exits with StoreError's code. Retry pauses are shortened (the
daemon's 30 s, the delivery worker's 5 s, SQLite's 30 s busy timeout); every wait
polls for an outcome with a deadline.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import (
    REVIEW_DEFAULTS,
    SAMPLES,
    postgres_url,
    process_sample_lab,
    wait_for,
    write_config,
)
from fault_proxy import FaultProxy, proxied_url
from sqlalchemy import func, make_url, select, text

from saa_lab import watcher
from saa_lab.cli import cli
from saa_lab.config import AppConfig, PathSettings, load_config
from saa_lab.delivery import DeliveryWorker
from saa_lab.errors import StoreError
from saa_lab.hl7.mllp import send_mllp
from saa_lab.intake import order_listener
from saa_lab.store import Store, repository
from saa_lab.store.models import (
    OrderRow,
    OutboxMessage,
    ResultRow,
    ResultState,
    RunRow,
    SourceFileRow,
)
from saa_lab.synth import (
    gen5_text,
    plate_values,
    queue_synthetic_messages,
    standard_plate_plan,
    worklist_csv,
)
from saa_lab.watcher import Daemon

WAIT = 20.0  # upper bound for any single wait
SAMPLES_PER_PLATE = 6
STORE_EXIT = StoreError.exit_code
USERS = """
[[users]]
name = "amoss"
full_name = "Ada Moss"
roles = ["reviewer", "approver"]
"""


def order(control_id: str, accession: str) -> str:
    """An ORM^O01 (v2.5.1) for one specimen."""
    return "\r".join([
        f"MSH|^~\\&|ONCO-EHR|CHILDRENS|SAA-LAB|REFLAB|20261120081500+0100||ORM^O01|{control_id}"
        "|P|2.5.1",
        "PID|1||PAT-8001^^^CHILDRENS^MR||Invented^Child||20170309|F",
        f"ORC|NW|{accession}^ONCO-EHR|||||||20261120081000+0100",
        f"OBR|1|{accession}^ONCO-EHR||SAA^Asparaginase activity^L|||20261120090000+0100",
        "OBX|1|CE|SAA-FORM^Asparaginase formulation administered^L||PEG^Oncaspar^L||||||F",
        "OBX|2|TS|SAA-DOSE-TIME^Date and time of last asparaginase dose^L||20261113090000+0100"
        "||||||F",
    ]) + "\r"  # fmt: skip


def ack_fields(ack: str) -> tuple[str, str, str]:
    """MSA-1, MSA-2 and ERR-3 of an ACK."""
    segments = {s.split("|", 1)[0]: s.split("|") for s in ack.split("\r") if s}
    err = segments.get("ERR", [])
    return segments["MSA"][1], segments["MSA"][2], err[3] if len(err) > 3 else ""


def outbox_payload(control_id: str, accession: str) -> str:
    return (
        f"MSH|^~\\&|SAA-LAB|REFLAB|EHR|CLINIC|20261121220000+0000||ORU^R01^ORU_R01|{control_id}"
        f"|P|2.5.1\rPID|1||MRN-1^^^CLINIC^MR\rOBR|1|{accession}\r"
    )


def msh10(er7: str) -> str:
    return er7.split("\r", 1)[0].split("|")[9]


# -- logs ------------------------------------------------------------------------------


def logged(caplog: pytest.LogCaptureFixture, *parts: str) -> list[str]:
    """The ERROR messages that contain every one of ``parts``."""
    return [
        r.getMessage() for r in list(caplog.records)
        if r.levelno >= logging.ERROR and all(p in r.getMessage() for p in parts)
    ]  # fmt: skip


def assert_errors_are_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """Every error is one line without a traceback: an outage is not a bug."""
    for record in list(caplog.records):
        if record.levelno >= logging.ERROR:
            message = record.getMessage()
            assert "\n" not in message, message
            assert record.exc_info is None, f"traceback logged with: {message}"
            assert "unexpected error" not in message, message


# -- exports ---------------------------------------------------------------------------


def _put(path: Path, data: bytes) -> None:
    """Write next to ``path`` (a name the daemon ignores), then rename into place."""
    temp = path.with_name(f".{path.name}.part")
    temp.write_bytes(data)
    temp.replace(path)


def drop_export(inbox: Path, name: str, seed: int) -> None:
    """A synthesized Gen5 export ``<name>.txt`` (plate barcode ``name``) and its worklist."""
    plan = standard_plate_plan(SAMPLES_PER_PLATE, prefix=f"{name}-S")
    values, rows = plate_values(plan, seed=seed)
    _put(inbox / f"{name}.worklist.csv", worklist_csv(rows).encode())
    _put(inbox / f"{name}.txt", gen5_text(values, barcode=name).encode())


# -- the lab ---------------------------------------------------------------------------


class QuickDeliveryWorker(DeliveryWorker):
    """The daemon's delivery worker with a 0.1 s pause after a database error (not 5 s)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("error_pause_seconds", 0.1)
        super().__init__(*args, **kwargs)


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watcher, "RETRY_AFTER_ERROR_SECONDS", 0.3)
    monkeypatch.setattr(watcher, "DeliveryWorker", QuickDeliveryWorker)
    monkeypatch.setattr(repository, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.2)


class Lab:
    """A running daemon (its store at ``url``) and a second store that checks the outcome
    straight in the database (``check_url``: not through the proxy)."""

    def __init__(self, folder: Path, url: str, check_url: str) -> None:
        self.config = load_config(write_config(folder, database_url=url))
        self.store = Store(url, zone=self.config.lab.zone)
        self.check = Store(check_url, migrate=False)
        self.daemon = Daemon(self.config, self.store)

    def close(self) -> None:
        self.daemon.stop(10)
        self.store.close()
        self.check.close()

    def inbox(self) -> set[str]:
        return {p.name for p in self.config.inbox.iterdir()}

    def archived(self) -> list[Path]:
        return sorted(p for p in self.config.archive.rglob("*") if p.is_file())

    def quarantined(self) -> list[str]:
        return sorted(p.name for p in self.config.quarantine.iterdir())

    def sources(self) -> dict[str, str]:
        with self.check.session() as s:
            return dict(s.execute(select(SourceFileRow.name, SourceFileRow.status)).all())

    def outbox_status(self) -> Counter[str]:
        with self.check.session() as s:
            return Counter(s.scalars(select(OutboxMessage.status)).all())

    def settled(self, names: list[str]) -> bool:
        """Every export done and out of the inbox, and every message recorded as sent."""
        sources = self.sources()
        if any(sources.get(f"{n}.txt") != "done" for n in names):
            return False
        if self.inbox() & {f"{n}.txt" for n in names}:
            return False
        statuses = self.outbox_status()
        return statuses["sent"] > 0 and set(statuses) == {"sent"}

    def assert_processed_once(self, names: list[str]) -> dict[str, str]:
        """The promises, for exports ``names``; returns each export's archive folder."""
        exports = {f"{n}.txt" for n in names}
        with self.check.session() as s:
            rows = s.execute(select(SourceFileRow.name, SourceFileRow.status)).all()
            assert Counter(name for name, _ in rows) == Counter(exports)  # one row each
            assert {status for _, status in rows} == {"done"}
            joined = select(SourceFileRow.name).join(
                RunRow, RunRow.source_file_id == SourceFileRow.id
            )
            runs = Counter(s.scalars(joined).all())
            assert runs == Counter(exports)  # one run per export: none processed twice
            results = s.scalar(select(func.count()).select_from(ResultRow))
            assert results == SAMPLES_PER_PLATE * len(names)
            released = set(
                s.scalars(
                    select(ResultRow.id)
                    .outerjoin(ResultState, ResultState.result_id == ResultRow.id)
                    .where((ResultState.state == "released") | (ResultState.state.is_(None)))
                ).all()
            )
            messages = s.execute(
                select(OutboxMessage.result_id, OutboxMessage.control_id, OutboxMessage.status,
                       OutboxMessage.attempts, OutboxMessage.payload)
            ).all()  # fmt: skip
        assert released, "nothing was released: the test proves nothing"
        # Every released result has exactly one message, sent in one recorded attempt.
        assert Counter(m.result_id for m in messages) == Counter(released)
        assert {(m.status, m.attempts) for m in messages} == {("sent", 1)}
        # One outbox file per message, named and headed by its one MSH-10.
        files = {p.stem: p.read_text() for p in self.config.outbox.glob("*.hl7")}
        assert set(files) == {m.control_id for m in messages}
        assert all(msh10(body) == name for name, body in files.items())
        # Every export and its worklist archived; nothing left, nothing quarantined.
        assert self.quarantined() == []
        assert not self.inbox() & (exports | {f"{n}.worklist.csv" for n in names})
        archived = self.archived()
        assert Counter(p.name for p in archived if p.suffix == ".txt") == Counter(exports)
        return {p.name: p.parent.name for p in archived if p.suffix == ".txt"}


@contextmanager
def running_lab(folder: Path, url: str, check_url: str) -> Iterator[Lab]:
    lab = Lab(folder, url, check_url)
    try:
        with lab.daemon:
            yield lab
            assert "delivery_restarts" not in lab.daemon.counters.extra  # none died
    finally:
        lab.close()


# -- PostgreSQL ------------------------------------------------------------------------


@pytest.fixture
def pg_url() -> str:
    return postgres_url()


@pytest.fixture
def proxy(pg_url: str) -> Iterator[FaultProxy]:
    parsed = make_url(pg_url)
    with FaultProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as running:
        yield running


@pytest.fixture
def pg_lab(
    tmp_path: Path, pg_url: str, proxy: FaultProxy, quick_retries: None,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Lab]:  # fmt: skip
    caplog.set_level(logging.INFO)
    with running_lab(tmp_path / "lab", proxied_url(pg_url, proxy.port), pg_url) as lab:
        yield lab


@pytest.mark.postgres
def test_a_postgres_restart_while_exports_stream_in_loses_and_repeats_nothing(
    pg_lab: Lab, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    lab, inbox = pg_lab, pg_lab.config.inbox
    names = [f"PGR-{i}" for i in range(6)]
    for seed, name in enumerate(names[:2]):
        drop_export(inbox, name, seed)
    # Settled, worklists too: a cut between the archive move and its record leaves the
    # worklist behind (the xfail test below), which is not what this test is about.
    assert wait_for(lambda: lab.settled(names[:2]) and not lab.inbox())
    proxy.down()  # the server stops; the delivery worker is polling its queue
    for seed, name in enumerate(names[2:4], start=2):
        drop_export(inbox, name, seed)
    # Both workers meet the outage, say so in one line and keep the files.
    assert wait_for(lambda: logged(caplog, "PGR-2.txt", "database error", "stays in the inbox"))
    assert wait_for(lambda: logged(caplog, "delivery to file: database unavailable"))
    assert {"PGR-2.txt", "PGR-3.txt"} <= lab.inbox()
    assert lab.quarantined() == []
    proxy.up()  # the server is back
    for seed, name in enumerate(names[4:], start=4):
        drop_export(inbox, name, seed)
    assert wait_for(lambda: lab.settled(names))
    lab.assert_processed_once(names)
    assert lab.daemon.counters.errors >= 2
    assert_errors_are_one_line(caplog)


@pytest.mark.postgres
def test_a_lost_commit_reply_neither_reprocesses_an_export_nor_resends_a_message(
    pg_lab: Lab, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection is cut after the server committed, before the daemon heard it."""
    lab, inbox = pg_lab, pg_lab.config.inbox
    # The export's transaction (results, outbox rows, the file marked done).
    lost = proxy.lose_commit_reply("INSERT INTO runs")
    drop_export(inbox, "PGC-1", 1)
    assert lost.wait(WAIT)
    assert wait_for(lambda: lab.settled(["PGC-1"]))
    assert logged(caplog, "PGC-1.txt", "server closed the connection unexpectedly")
    # A delivery's record (the message marked sent): the file is not written again
    # under another name, the attempt is not counted twice.
    lost = proxy.lose_commit_reply("UPDATE outbox")
    drop_export(inbox, "PGC-2", 2)
    assert lost.wait(WAIT)
    assert wait_for(lambda: lab.settled(["PGC-1", "PGC-2"]))
    assert logged(caplog, "delivery to file: database unavailable")
    folders = lab.assert_processed_once(["PGC-1", "PGC-2"])
    # The retried export is found processed: archived where PGC-2 went (the day's folder)
    # or, as the watcher did before, in archive/duplicates; both are accepted for now.
    assert folders["PGC-1.txt"] in {folders["PGC-2.txt"], "duplicates"}
    with lab.check.session() as s:
        archive_path = s.scalar(
            select(SourceFileRow.archive_path).where(SourceFileRow.name == "PGC-1.txt")
        )
    assert archive_path is not None and Path(archive_path).name == "PGC-1.txt"
    assert_errors_are_one_line(caplog)


@pytest.mark.postgres
def test_a_lost_reply_to_the_archive_path_commit_still_archives_the_worklist(
    pg_lab: Lab, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    lab = pg_lab
    lost = proxy.lose_commit_reply("SET archive_path")
    drop_export(lab.config.inbox, "PGA-1", 1)
    assert lost.wait(WAIT)
    assert wait_for(lambda: lab.settled(["PGA-1"]))
    assert wait_for(lambda: "PGA-1.worklist.csv" not in lab.inbox(), timeout=1)
    lab.assert_processed_once(["PGA-1"])


@pytest.mark.postgres
def test_connections_the_server_terminated_are_replaced_without_an_error(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What a restart leaves in the pool: connections whose backend is gone."""
    store = Store(pg_url)
    try:
        store.set_state("probe", {"n": 1})  # a connection now waits in the pool
        with _engine(pg_url) as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar()
        assert killed and killed >= 1
        store.set_state("probe", {"n": 2})
        assert store.status_summary()["service"]["probe"] == {"n": 2}
    finally:
        store.close()
    assert logged(caplog) == []


@contextmanager
def _engine(url: str) -> Iterator[Any]:
    from sqlalchemy import create_engine

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_order_listener_answers_ae_207_while_postgres_is_down_and_stores_the_resend_once(
    tmp_path: Path, pg_url: str, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(write_config(tmp_path / "lab", "\n[hl7]\nlisten_port = 0\n"))
    store = Store(proxied_url(pg_url, proxy.port), zone=config.lab.zone)
    listener = order_listener(config, store)
    assert listener is not None
    try:
        with listener:
            port = listener.port
            proxy.down()
            assert ack_fields(send_mllp("127.0.0.1", port, order("ORM8001", "SAA-8001"))) == (
                "AE", "ORM8001", "207^Application internal error^HL70357")  # fmt: skip
            proxy.up()
            assert ack_fields(send_mllp("127.0.0.1", port, order("ORM8001", "SAA-8001")))[:2] == (
                "AA", "ORM8001")  # fmt: skip
            # Stored, but the reply to COMMIT is lost: AE 207, and the resend is known.
            lost = proxy.lose_commit_reply("INSERT INTO orders")
            first = send_mllp("127.0.0.1", port, order("ORM8002", "SAA-8002"))
            assert lost.is_set()
            assert ack_fields(first)[:2] == ("AE", "ORM8002")
            assert ack_fields(first)[2].startswith("207^")
            assert ack_fields(send_mllp("127.0.0.1", port, order("ORM8002", "SAA-8002")))[:2] == (
                "AA", "ORM8002")  # fmt: skip
    finally:
        store.close()
    assert _orders(pg_url) == {("ORM8001", "SAA-8001"): 1, ("ORM8002", "SAA-8002"): 1}
    assert logged(caplog, "answered AE 207")
    assert_errors_are_one_line(caplog)


def _orders(url: str) -> Counter[tuple[str | None, str]]:
    store = Store(url, migrate=False)
    try:
        with store.session() as s:
            return Counter(s.execute(select(OrderRow.message_control_id, OrderRow.accession)).all())
    finally:
        store.close()


# -- commands while the database is down (no server needed) ----------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_one_line_store_error(result: Any, *expected: str) -> None:
    assert result.exit_code == STORE_EXIT, result.output
    assert isinstance(result.exception, SystemExit)  # not a crash
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), lines[0]
    for part in expected:
        assert part in lines[0], lines[0]


@pytest.mark.parametrize(
    "command",
    [["status"], ["process", str(SAMPLES / "biotek_gen5" / "RUN-G5-001.txt")]],
    ids=["status", "process"],
)
def test_a_command_with_postgres_down_says_so_in_one_line(
    tmp_path: Path, runner: CliRunner, command: list[str]
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/saa_lab"
    config = write_config(tmp_path / "lab", database_url=url)
    result = runner.invoke(cli, ["--config", str(config), *command])
    _assert_one_line_store_error(result, "database", "Connection refused")


def test_a_server_that_never_answers_does_not_hang_a_command(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts the connection and says nothing (a hung host): the connect
    timeout ends the wait (10 s by default; 2 s, libpq's least, here)."""
    monkeypatch.setattr(repository, "PG_CONNECT_ARGS",
                        {**repository.PG_CONNECT_ARGS, "connect_timeout": 2})  # fmt: skip
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever answers
        url = f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/saa_lab"
        config = write_config(tmp_path / "lab", database_url=url + "?sslmode=disable")
        outcome: list[Any] = []
        started = time.monotonic()
        command = threading.Thread(
            target=lambda: outcome.append(runner.invoke(cli, ["--config", str(config), "status"]))
        )
        command.start()
        command.join(15)
        elapsed = time.monotonic() - started
    command.join(5)  # closing the socket ends a hung connect, should the timeout not
    assert outcome and elapsed < 15, f"saa-lab status still waiting after {elapsed:.0f} s"
    _assert_one_line_store_error(outcome[0], "database", "timeout")


# -- SQLite: database is locked --------------------------------------------------------


@contextmanager
def write_lock(database: Path) -> Iterator[None]:
    """Another connection holds the write lock (BEGIN IMMEDIATE) until the block ends."""
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def _sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'saa-lab.db'}"


def test_a_locked_sqlite_database_keeps_the_export_in_the_inbox_until_the_lock_goes(
    tmp_path: Path, quick_retries: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = _sqlite_url(tmp_path)
    with running_lab(tmp_path / "lab", url, url) as lab:
        assert wait_for(lambda: "daemon" in lab.check.status_summary()["service"])  # heartbeat
        with write_lock(tmp_path / "saa-lab.db"):
            drop_export(lab.config.inbox, "SQL-1", 1)
            assert wait_for(
                lambda: logged(caplog, "SQL-1.txt", "database is locked", "stays in the inbox")
            )
            assert "SQL-1.txt" in lab.inbox()
            assert lab.quarantined() == []
            assert lab.sources() == {}  # nothing half-written
        assert wait_for(lambda: lab.settled(["SQL-1"]))
        lab.assert_processed_once(["SQL-1"])
    assert_errors_are_one_line(caplog)


def test_delivery_waits_out_a_locked_sqlite_database_and_sends_each_message_once(
    tmp_path: Path, quick_retries: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="saa_lab.delivery")
    url = _sqlite_url(tmp_path)
    store = Store(url)
    config = AppConfig(base_dir=tmp_path, paths=PathSettings(outbox=tmp_path / "outbox"))
    config.outbox.mkdir()
    ids = queue_synthetic_messages(store, "file", 3, outbox_payload)
    worker = DeliveryWorker(
        store, config, config.all_destinations()["file"], error_pause_seconds=0.1
    )
    try:
        with write_lock(tmp_path / "saa-lab.db"):
            worker.start()
            # Several retries: the outage is an ERROR once, the retries are DEBUG.
            assert wait_for(lambda: len(unavailable(caplog)) >= 3)
            levels = [r.levelno for r in unavailable(caplog)[:3]]
            assert levels == [logging.ERROR, logging.DEBUG, logging.DEBUG]
            assert "database is locked" in unavailable(caplog)[0].getMessage()
            assert worker.is_alive()
            # The head's file is written (again, the same file) but it is not recorded.
            assert {p.stem for p in config.outbox.glob("*.hl7")} == {ids[0]}
        assert wait_for(lambda: Counter(m.status for m in _messages(store)) == {"sent": 3})
    finally:
        worker.stop(10)
    messages = _messages(store)
    store.close()
    assert [(m.control_id, m.attempts) for m in messages] == [(i, 1) for i in ids]
    assert {p.stem for p in config.outbox.glob("*.hl7")} == set(ids)
    assert len(logged(caplog, "database unavailable")) == 1
    assert any("database is reachable again" in r.getMessage() for r in caplog.records)
    assert_errors_are_one_line(caplog)


def unavailable(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in list(caplog.records) if "database unavailable" in r.getMessage()]


def _messages(store: Store) -> list[OutboxMessage]:
    with store.session() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def test_release_on_a_locked_sqlite_database_says_so_in_one_line(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = process_sample_lab(tmp_path / "lab", _sqlite_url(tmp_path), runner, USERS,
                             autoverification=REVIEW_DEFAULTS)  # fmt: skip
    with lab.store() as store:
        (run,) = store.recent_runs()
    assert run.review_status == "waiting"
    monkeypatch.setattr(repository, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.2)
    args = ["--config", str(lab.config_path)]
    release = [*args, "release", str(run.id), "--by", "amoss", "--meaning", "approved"]
    with write_lock(tmp_path / "saa-lab.db"):
        # Reading is not blocked by a writer (WAL): the review list still shows the run.
        listing = runner.invoke(cli, [*args, "review"])
        assert listing.exit_code == 0, listing.output
        assert "1 run(s) wait for review" in listing.output
        _assert_one_line_store_error(runner.invoke(cli, release), "database is locked")
    with lab.store() as store:
        assert store.recent_runs()[0].review_status == "waiting"  # nothing half-done
    done = runner.invoke(cli, release)
    assert done.exit_code == 0, done.output


def test_the_order_listener_answers_ae_207_while_sqlite_is_locked_and_stores_the_resend_once(
    tmp_path: Path, quick_retries: None, caplog: pytest.LogCaptureFixture
) -> None:
    url = _sqlite_url(tmp_path)
    config = load_config(write_config(tmp_path / "lab", "\n[hl7]\nlisten_port = 0\n",
                                      database_url=url))  # fmt: skip
    store = Store(url, zone=config.lab.zone)
    listener = order_listener(config, store)
    assert listener is not None
    try:
        with listener:
            with write_lock(tmp_path / "saa-lab.db"):
                ack = send_mllp("127.0.0.1", listener.port, order("ORM8101", "SAA-8101"))
                assert ack_fields(ack)[:2] == ("AE", "ORM8101")
                assert ack_fields(ack)[2].startswith("207^")
            ack = send_mllp("127.0.0.1", listener.port, order("ORM8101", "SAA-8101"))
            assert ack_fields(ack)[:2] == ("AA", "ORM8101")
            ack = send_mllp("127.0.0.1", listener.port, order("ORM8101", "SAA-8101"))
            assert ack_fields(ack)[:2] == ("AA", "ORM8101")  # a resend of a stored message
    finally:
        store.close()
    assert _orders(url) == {("ORM8101", "SAA-8101"): 1}
    assert logged(caplog, "answered AE 207")
    assert_errors_are_one_line(caplog)
