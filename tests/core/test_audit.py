"""The audit trail: every state change recorded, hash-chained, append-only; its
verification, its CSV export, and the upgrade of 0006 databases (migration 0007).

Entries are checked through what an inspector sees (``saa-lab audit verify`` and
``saa-lab audit export``) and through the rows. Tampering is simulated the way an
administrator with database access would do it: drop the append-only trigger, then
change, delete or insert rows with SQL. Every name, patient and reason is invented.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from conftest import (
    SAMPLES,
    ProcessedLab,
    assert_hl7_strict_valid,
    process_sample_lab,
    write_config,
)
from sqlalchemy import func, select, text

from saa_lab.cli import cli
from saa_lab.config import load_config
from saa_lab.domain import SourceFile
from saa_lab.pipeline import process_export
from saa_lab.review import correct
from saa_lab.store import Store
from saa_lab.store import audit as audit_module
from saa_lab.store.models import (
    SCHEMA_VERSION,
    AuditEntry,
    AuditHead,
    OutboxMessage,
    ResultRow,
    ResultState,
    RunRow,
    UTCDateTime,
)
from saa_lab.worklist import parse_worklist

GEN5 = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"
GRID = SAMPLES / "generic_grid" / "RUN-GC-002.csv"
BERLIN = ZoneInfo("Europe/Berlin")
GENESIS = "0" * 64
EXPORT_HEADER = ["seq", "at_utc", "at_local", "actor", "action", "entity", "entity_id",
                 "reason", "previous", "detail", "prev_hash", "hash"]  # fmt: skip

USERS = """
[[users]]
name = "akoval"
full_name = "Anna Koval"
roles = ["reviewer", "approver"]

[[users]]
name = "bmeyer"
full_name = "Ben Meyer"
roles = ["reviewer"]
"""


Lab = ProcessedLab


def invoke(runner: CliRunner, config_path: Path, *args: str) -> Result:
    return runner.invoke(cli, ["--config", str(config_path), *args])


def ok(runner: CliRunner, config_path: Path, *args: str) -> str:
    result = invoke(runner, config_path, *args)
    assert result.exit_code == 0, result.output
    return result.output


def make_lab(folder: Path, url: str, runner: CliRunner, **kwargs: str) -> Lab:
    return process_sample_lab(folder, url, runner, USERS, **kwargs)


@pytest.fixture
def lab(tmp_path: Path, database_url: str, runner: CliRunner) -> Lab:
    """RUN-G5-001 processed (released on processing) and a correction of SAA-0001."""
    made = make_lab(tmp_path / "lab", database_url, runner)
    ok(runner, made.config_path, "correct", str(made.ids["SAA-0001"]), "--by", "akoval",
       "--reason", "wrong dilution entered (invented)", "--value", "60")  # fmt: skip
    return made


def entries(store: Store) -> list[AuditEntry]:
    with store.session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all())


def verify_json(runner: CliRunner, lab: Lab) -> tuple[int, dict[str, Any]]:
    result = invoke(runner, lab.config_path, "audit", "verify", "--json")
    return result.exit_code, json.loads(result.output)


def check_local_time(entry: AuditEntry) -> None:
    """``at`` is aware UTC; ``at_local`` is the same moment in the lab's zone."""
    assert entry.at.utcoffset() == timedelta(0), entry.at
    assert entry.at_local is not None
    assert entry.at_local.endswith(("+01:00", "+02:00")), entry.at_local
    assert datetime.fromisoformat(entry.at_local) == entry.at
    assert entry.at_local == entry.at.astimezone(BERLIN).isoformat()


# --- every state change is there, and the chain checks out --------------------------------


def test_every_state_change_is_recorded_and_the_chain_is_intact(
    tmp_path: Path, database_url: str, runner: CliRunner
) -> None:
    """Processing, review, release, correction, delivery, a failed and an archived file."""
    lab = make_lab(tmp_path / "lab", database_url, runner, autoverification="")  # review rule
    ok(runner, lab.config_path, "release", "1", "--by", "akoval", "--meaning", "approved",
       "--comment", "curve and controls checked (invented)")  # fmt: skip
    first = lab.ids["SAA-0001"]
    view = json.loads(ok(runner, lab.config_path, "correct", str(first), "--by", "akoval",
                         "--reason", "transcription error (invented)", "--value", "60",
                         "--json"))  # fmt: skip
    config = load_config(lab.config_path)
    gen5 = SourceFile.from_path(GEN5, timezone=BERLIN)
    broken = SourceFile(b"not an export\n", str(tmp_path / "inbox" / "broken.csv"))
    with lab.store() as store:
        store.set_archive_path(gen5.sha256, str(tmp_path / "archive" / GEN5.name))
        store.mark_source(broken, "failed", error="unrecognised export format (invented)")
        rows = entries(store)
        with store.session() as s:
            messages = s.scalars(select(OutboxMessage)).all()
            results = s.scalars(select(ResultRow)).all()
            states = {st.result_id: st for st in s.scalars(select(ResultState)).all()}
            head = s.get_one(AuditHead, 1)
    assert config.lab.timezone == "Europe/Berlin"

    # verify: intact, and counts every entry
    output = ok(runner, lab.config_path, "audit", "verify")
    assert f"audit trail intact: {len(rows)} entries" in output
    code, data = verify_json(runner, lab)
    assert code == 0
    assert (data["intact"], data["entries"], data["problem"]) == (True, len(rows), None)
    assert data["last_hash"] == rows[-1].hash == head.last_hash
    assert head.seq == len(rows)
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))

    for entry in rows:
        assert entry.actor
        check_local_time(entry)
    by_action: dict[str, list[AuditEntry]] = {}
    for entry in rows:
        by_action.setdefault(entry.action, []).append(entry)

    (processed,) = by_action["export-processed"]
    assert (processed.actor, processed.entity, processed.entity_id) == (
        "cli", "source_file", gen5.sha256[:16],
    )  # fmt: skip
    assert processed.detail["format"] == "biotek_gen5"
    (archived,) = by_action["file-archived"]
    assert archived.entity_id == gen5.sha256[:16]
    assert archived.previous == {"archive_path": None}
    assert archived.detail["archive_path"].endswith(GEN5.name)
    (failed,) = by_action["file-failed"]
    assert failed.reason == "unrecognised export format (invented)"
    assert failed.entity_id == broken.sha256[:16]
    (run_created,) = by_action["run-created"]
    assert run_created.entity_id == "1" and run_created.detail["review_status"] == "waiting"
    (run_released,) = by_action["run-released"]
    assert (run_released.actor, run_released.reason) == (
        "akoval", "curve and controls checked (invented)",
    )  # fmt: skip
    assert run_released.previous["review_status"] == "waiting"

    created = {e.entity_id for e in by_action["result-created"]}
    assert created == {str(r.id) for r in results if r.version == 1}
    assert len(created) == 14
    released = by_action["result-released"]
    released_ids = {int(e.entity_id or 0) for e in released}
    assert released_ids == {rid for rid, st in states.items()
                            if st.decided_by == "akoval" and st.meaning == "approved"}  # fmt: skip
    assert len(released_ids) == 12  # the two above the ULOQ wait for their re-assay
    for entry in released:
        assert entry.actor == "akoval" and entry.previous == {"state": "waiting"}
        assert entry.detail["meaning"] == "approved"

    (corrected,) = by_action["result-corrected"]
    assert (corrected.actor, corrected.entity_id) == ("akoval", str(view["id"]))
    assert corrected.reason == "transcription error (invented)"
    assert corrected.previous["activity_u_per_l"] == 249.6
    assert corrected.previous["result_id"] == first
    assert corrected.detail["activity_u_per_l"] == 60.0
    (replaced,) = by_action["result-replaced"]
    assert replaced.entity_id == str(first) and replaced.previous == {"state": "released"}
    assert replaced.reason == "transcription error (invented)"

    # every message: queued (by the person whose decision made it) and sent
    queued = {e.entity_id: e for e in by_action["message-queued"]}
    sent = {e.entity_id: e for e in by_action["message-sent"]}
    assert len(messages) == 13  # 12 released + 1 corrected
    for message in messages:
        assert message.status == "sent"
        assert queued[message.control_id].actor == "akoval"
        assert queued[message.control_id].detail["report_status"] == message.report_status
        assert sent[message.control_id].actor == "delivery"
        assert sent[message.control_id].previous["status"] == "pending"
        assert sent[message.control_id].seq > queued[message.control_id].seq


def test_messages_queued_on_processing_are_recorded(lab: Lab) -> None:
    """A message made by auto-verification is in the trail as well as one made by a person."""
    with lab.store() as store:
        rows = entries(store)
        with store.session() as s:
            messages = s.scalars(select(OutboxMessage)).all()
    queued = {e.entity_id for e in rows if e.action == "message-queued"}
    listed = {c for e in rows if e.action == "result-created" for c in e.detail["messages"]}
    sent = {e.entity_id for e in rows if e.action == "message-sent"}
    assert len(messages) == 13  # 12 on processing, 1 corrected
    for message in messages:
        assert message.control_id in queued | listed
        assert message.control_id in sent


# --- tampering ------------------------------------------------------------------------------


def _drop_guard(conn: sa.Connection, action: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log"))
    else:
        conn.execute(text(f"DROP TRIGGER IF EXISTS audit_log_no_{action}"))


@contextmanager
def tamper(lab: Lab, action: str) -> Iterator[sa.Connection]:
    with lab.store() as store, store.engine.begin() as conn:
        _drop_guard(conn, action)
        yield conn


def _seq_of(lab: Lab, action: str) -> int:
    with lab.store() as store:
        return next(e.seq for e in entries(store) if e.action == action)


SHIFT_AT = {
    "sqlite": "UPDATE audit_log SET at = datetime(at, '-1 hour') WHERE seq = :seq",
    "postgresql": "UPDATE audit_log SET at = at - interval '1 hour' WHERE seq = :seq",
}


@pytest.mark.parametrize(("target", "statement"), [
    ("result-created", "UPDATE audit_log SET actor = 'mallory' WHERE seq = :seq"),
    ("result-created", """UPDATE audit_log SET detail = '{"flag": "therapeutic"}' """
                       "WHERE seq = :seq"),
    ("result-corrected", "UPDATE audit_log SET reason = 'routine' WHERE seq = :seq"),
    ("result-corrected", """UPDATE audit_log SET previous = '{"activity_u_per_l": 60}' """
                         "WHERE seq = :seq"),
    ("result-replaced", "UPDATE audit_log SET entity_id = '99' WHERE seq = :seq"),
    ("run-created", "UPDATE audit_log SET action = 'run-deleted' WHERE seq = :seq"),  # the 1st
    ("message-sent", "SHIFT_AT"),
])  # fmt: skip
def test_a_changed_entry_is_the_first_broken_one(
    lab: Lab, runner: CliRunner, target: str, statement: str
) -> None:
    seq = _seq_of(lab, target)
    with lab.store() as store:
        total = len(entries(store))
    assert 1 <= seq < total
    with tamper(lab, "update") as conn:
        sql = SHIFT_AT[conn.dialect.name] if statement == "SHIFT_AT" else statement
        assert conn.execute(text(sql), {"seq": seq}).rowcount == 1
    code, data = verify_json(runner, lab)
    assert code == 9
    assert data["intact"] is False
    assert data["first_broken_seq"] == seq
    assert data["entries"] == seq - 1
    assert f"entry {seq} " in data["problem"] and "changed" in data["problem"]
    result = invoke(runner, lab.config_path, "audit", "verify")
    assert result.exit_code == 9
    assert f"broken at entry {seq} " in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_deleted_entry_is_found_at_the_next_one(lab: Lab, runner: CliRunner) -> None:
    seq = _seq_of(lab, "result-corrected")
    with tamper(lab, "delete") as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": seq})
    code, data = verify_json(runner, lab)
    assert code == 9
    assert data["first_broken_seq"] == seq + 1
    assert data["entries"] == seq - 1
    assert f"sequence number {seq + 1} where {seq} was expected" in data["problem"]
    assert invoke(runner, lab.config_path, "audit", "verify").exit_code == 9


@pytest.mark.parametrize("removed", [1, 3])
def test_entries_deleted_from_the_end_are_found_by_the_head(
    lab: Lab, runner: CliRunner, removed: int
) -> None:
    with lab.store() as store:
        total = len(entries(store))
    with tamper(lab, "delete") as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq > :keep"), {"keep": total - removed})
    code, data = verify_json(runner, lab)
    assert code == 9
    assert data["intact"] is False
    assert data["entries"] == total - removed
    assert data["first_broken_seq"] is None
    assert f"head records {total} entries" in data["problem"]
    result = invoke(runner, lab.config_path, "audit", "verify")
    assert result.exit_code == 9 and "chain head" in result.output


@pytest.mark.parametrize("statement", [
    "UPDATE audit_head SET seq = seq - 1",
    "UPDATE audit_head SET seq = seq + 1",
    "UPDATE audit_head SET last_hash = '" + "e" * 64 + "'",
])  # fmt: skip
def test_a_changed_head_is_found(lab: Lab, runner: CliRunner, statement: str) -> None:
    with lab.store() as store, store.engine.begin() as conn:
        conn.execute(text(statement))
    code, data = verify_json(runner, lab)
    assert code == 9
    assert data["first_broken_seq"] is None and "head records" in data["problem"]


def test_a_deleted_head_is_reported_as_a_broken_chain(lab: Lab, runner: CliRunner) -> None:
    """The head row has no append-only guard: removing it must not crash the check."""
    with lab.store() as store, store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    result = invoke(runner, lab.config_path, "audit", "verify")
    assert result.exit_code == 9, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "head" in lines[0]
    code, data = verify_json(runner, lab)
    assert code == 9 and data["intact"] is False and data["first_broken_seq"] is None


def test_verification_reads_the_chain_in_batches(lab: Lab) -> None:
    """A chain longer than one batch is followed across batches, a change in any found."""
    with lab.store() as store:
        total = len(entries(store))
        with store.session() as s:
            whole = audit_module.verify(s)
        with store.session() as s:
            batched = audit_module.verify(s, batch=4)
        assert (batched.entries, batched.last_hash, batched.problem) == (
            whole.entries, whole.last_hash, None,
        )  # fmt: skip
        assert whole.entries == total > 8
        with store.engine.begin() as conn:
            _drop_guard(conn, "update")
            conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 7"))
        with store.session() as s:
            broken = audit_module.verify(s, batch=4)
    assert broken.problem is not None and broken.problem.seq == 7
    assert broken.entries == 6


def test_a_forged_entry_is_found(lab: Lab, runner: CliRunner) -> None:
    """Even with a correct hash chained onto the last entry: the head does not count it."""
    with lab.store() as store:
        last = entries(store)[-1]
    at = datetime.now(UTC)
    forged = {
        "seq": last.seq + 1, "prev_hash": last.hash, "at": at,
        "at_local": at.astimezone(BERLIN).isoformat(), "actor": "akoval",
        "action": "result-released", "entity": "result", "entity_id": "3",
        "reason": "backdated approval (invented)", "previous": {"state": "waiting"},
        "detail": {"meaning": "approved"},
    }  # fmt: skip
    digest = audit_module.entry_hash(**forged)
    with lab.store() as store, store.session() as s:
        s.add(AuditEntry(hash=digest, **forged))  # no audit.record: nothing else is chained
    code, data = verify_json(runner, lab)
    assert code == 9
    assert data["entries"] == last.seq + 1
    assert data["first_broken_seq"] is None and "head records" in data["problem"]

    # and a forged entry with a made-up hash is named itself
    with lab.store() as store, store.session() as s:
        s.add(AuditEntry(hash="f" * 64, **{**forged, "seq": last.seq + 2, "prev_hash": digest}))
    code, data = verify_json(runner, lab)
    assert code == 9 and data["first_broken_seq"] == last.seq + 2


def test_results_and_audit_log_refuse_changes_without_dropping_the_guard(lab: Lab) -> None:
    from sqlalchemy.exc import DatabaseError

    with lab.store() as store:
        before = [(e.seq, e.hash, e.actor) for e in entries(store)]
        for statement in (
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log",
            "UPDATE results SET activity_u_per_l = 1",
            "DELETE FROM results",
        ):
            with pytest.raises(DatabaseError, match="append-only"), store.engine.begin() as c:
                c.execute(text(statement))
        assert [(e.seq, e.hash, e.actor) for e in entries(store)] == before
        assert store.verify_audit().intact


# --- concurrent writers ---------------------------------------------------------------------


def test_concurrent_writers_leave_one_unbroken_chain(lab: Lab, runner: CliRunner) -> None:
    config = load_config(lab.config_path)
    with lab.store() as store:
        start = len(entries(store))
    writers, per_writer = 5, 8
    stores = [Store(config.database_url, zone=config.lab.zone) for _ in range(writers + 3)]
    barrier = threading.Barrier(writers + 3)
    errors: list[BaseException] = []

    def note(i: int) -> None:
        barrier.wait()
        for n in range(per_writer):
            stores[i].audit(f"writer-{i}", "test-note", "test", f"{i}-{n}", reason=f"note {n}",
                            previous={"n": n - 1}, n=n)  # fmt: skip

    def fix(i: int, accession: str, value: str) -> None:
        barrier.wait()
        correct(config, stores[i], lab.ids[accession], by="akoval",
                reason=f"concurrent correction of {accession} (invented)", value=value)  # fmt: skip

    def process(i: int) -> None:
        worklist = parse_worklist(SourceFile.from_path(GRID.with_name("RUN-GC-002.worklist.csv")),
                                  zone=BERLIN)  # fmt: skip
        barrier.wait()
        process_export(stores[i], config, SourceFile.from_path(GRID, timezone=BERLIN),
                       worklist_for=lambda _read: worklist, actor="thread")  # fmt: skip

    def guarded(target: Any, *args: Any) -> None:
        try:
            target(*args)
        except BaseException as exc:  # reported below
            errors.append(exc)

    jobs: list[tuple[Any, tuple[Any, ...]]] = [(note, (i,)) for i in range(writers)]
    jobs += [(fix, (writers, "SAA-0005", "800")), (fix, (writers + 1, "SAA-0007", "2500")),
             (process, (writers + 2,))]  # fmt: skip
    threads = [threading.Thread(target=guarded, args=(job, *args)) for job, args in jobs]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for opened in stores:
            opened.close()
    assert errors == []

    with lab.store() as store:
        rows = entries(store)
        report = store.verify_audit()
    assert report.intact, report.problem
    assert report.entries == len(rows)
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    for i in range(writers):
        mine = [e for e in rows if e.actor == f"writer-{i}"]
        assert [e.detail["n"] for e in mine] == list(range(per_writer))
    assert sum(e.action == "result-corrected" for e in rows[start:]) == 2
    assert sum(e.action == "export-processed" for e in rows[start:]) == 1
    assert ok(runner, lab.config_path, "audit", "verify").startswith(
        f"audit trail intact: {len(rows)} entries"
    )


# --- export ---------------------------------------------------------------------------------

# UTC moments around the lab's (Europe/Berlin) midnights
MOMENTS = {
    "a": datetime(2026, 3, 9, 22, 59, 59, tzinfo=UTC),  # 2026-03-09 23:59:59 +01:00
    "b": datetime(2026, 3, 9, 23, 0, 0, tzinfo=UTC),  # 2026-03-10 00:00:00 +01:00
    "c": datetime(2026, 3, 10, 22, 59, 59, tzinfo=UTC),  # 2026-03-10 23:59:59 +01:00
    "d": datetime(2026, 3, 10, 23, 0, 0, tzinfo=UTC),  # 2026-03-11 00:00:00 +01:00
    "e": datetime(2026, 7, 15, 10, 0, 0, tzinfo=UTC),  # 2026-07-15 12:00:00 +02:00
}


def timed_lab(folder: Path, url: str, moments: dict[str, datetime]) -> Path:
    """A lab whose trail holds one entry at each of ``moments``, in that order."""
    config_path = write_config(folder, USERS, database_url=url)
    store = Store(url, zone=BERLIN)
    try:
        for name, moment in moments.items():
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(audit_module, "utcnow", lambda moment=moment: moment)
                store.audit("akoval", "test-note", "test", name, reason=f"reason {name}",
                            previous={"was": name.upper()}, label=name)  # fmt: skip
    finally:
        store.close()
    return config_path


@pytest.fixture
def timed(tmp_path: Path, database_url: str) -> Path:
    return timed_lab(tmp_path / "timed", database_url, MOMENTS)


def exported(runner: CliRunner, config_path: Path, *args: str) -> list[dict[str, str]]:
    result = invoke(runner, config_path, "audit", "export", *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert next(csv.reader(lines[:1])) == EXPORT_HEADER
    count = len(lines) - 1
    assert result.stderr.strip() == f"{count} audit entries exported"
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_export_writes_every_entry_as_csv(timed: Path, runner: CliRunner) -> None:
    rows = exported(runner, timed)
    assert [r["entity_id"] for r in rows] == list(MOMENTS)
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4", "5"]
    first, summer = rows[0], rows[4]
    assert first["at_utc"] == "2026-03-09T22:59:59+00:00"
    assert first["at_local"] == "2026-03-09T23:59:59+01:00"
    assert summer["at_local"] == "2026-07-15T12:00:00+02:00"
    assert (first["actor"], first["action"], first["entity"]) == ("akoval", "test-note", "test")
    assert first["reason"] == "reason a"
    assert json.loads(first["previous"]) == {"was": "A"}
    assert json.loads(first["detail"]) == {"label": "a"}
    assert first["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(rows))
    for row in rows:
        assert datetime.fromisoformat(row["at_local"]) == datetime.fromisoformat(row["at_utc"])


@pytest.mark.parametrize(("bounds", "expected"), [
    (["--from", "2026-03-10", "--to", "2026-03-10"], ["b", "c"]),
    (["--to", "2026-03-09"], ["a"]),
    (["--from", "2026-03-11"], ["d", "e"]),
    (["--from", "2026-03-10", "--to", "2026-03-11"], ["b", "c", "d"]),
    (["--from", "2026-07-15", "--to", "2026-07-15"], ["e"]),
    (["--from", "2026-07-16"], []),
    (["--from", "2026-03-10T00:00"], ["b", "c", "d", "e"]),
    (["--from", "2026-03-09T23:00:00+00:00", "--to", "2026-03-10"], ["b", "c"]),
])  # fmt: skip
def test_export_keeps_the_entries_of_the_lab_s_days(
    timed: Path, runner: CliRunner, bounds: list[str], expected: list[str]
) -> None:
    assert [r["entity_id"] for r in exported(runner, timed, *bounds)] == expected


# Days of 23 and 25 hours in Berlin (summer time starts 2026-03-29, ends 2026-10-25)
DST_MOMENTS = {
    "m0": datetime(2026, 3, 28, 22, 59, 59, tzinfo=UTC),  # 03-28 23:59:59 +01:00
    "m1": datetime(2026, 3, 28, 23, 0, 0, tzinfo=UTC),  # 03-29 00:00:00 +01:00
    "m2": datetime(2026, 3, 29, 21, 59, 59, tzinfo=UTC),  # 03-29 23:59:59 +02:00
    "m3": datetime(2026, 3, 29, 22, 0, 0, tzinfo=UTC),  # 03-30 00:00:00 +02:00
    "o0": datetime(2026, 10, 24, 21, 59, 59, tzinfo=UTC),  # 10-24 23:59:59 +02:00
    "o1": datetime(2026, 10, 24, 22, 0, 0, tzinfo=UTC),  # 10-25 00:00:00 +02:00
    "o2": datetime(2026, 10, 25, 22, 59, 59, tzinfo=UTC),  # 10-25 23:59:59 +01:00
    "o3": datetime(2026, 10, 25, 23, 0, 0, tzinfo=UTC),  # 10-26 00:00:00 +01:00
}


@pytest.mark.parametrize(("day", "expected"), [
    ("2026-03-29", ["m1", "m2"]),
    ("2026-10-25", ["o1", "o2"]),
    ("2026-10-24", ["o0"]),
])  # fmt: skip
def test_export_days_are_the_lab_s_days_across_daylight_saving_changes(
    tmp_path: Path, runner: CliRunner, day: str, expected: list[str]
) -> None:
    config_path = timed_lab(tmp_path / "dst", f"sqlite:///{tmp_path / 'dst.db'}", DST_MOMENTS)
    rows = exported(runner, config_path, "--from", day, "--to", day)
    assert [r["entity_id"] for r in rows] == expected
    for row in rows:
        assert row["at_local"].startswith(day)
        assert (
            row["at_local"] == datetime.fromisoformat(row["at_utc"]).astimezone(BERLIN).isoformat()
        )


def test_export_to_a_file(timed: Path, runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "inspection" / "audit-2026-03-10.csv"
    target.parent.mkdir()
    result = invoke(runner, timed, "audit", "export", "--from", "2026-03-10", "--to",
                    "2026-03-10", "-o", str(target))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == "2 audit entries exported"
    with target.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == EXPORT_HEADER
    assert [r[6] for r in rows[1:]] == ["b", "c"]
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no .part left


@pytest.mark.parametrize("bounds", [
    ["--from", "yesterday"],
    ["--from", "2026-02-30"],
    ["--to", "10.03.2026"],
    ["--to", "2026-13-01"],
    ["--from", "2026-03-10T25:00"],
])  # fmt: skip
def test_export_with_a_bad_date_is_one_line(
    timed: Path, runner: CliRunner, tmp_path: Path, bounds: list[str]
) -> None:
    target = tmp_path / "out.csv"
    result = invoke(runner, timed, "audit", "export", *bounds, "-o", str(target))
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert bounds[0] in lines[0] and bounds[1] in lines[0]
    assert not target.exists()


def test_export_into_a_missing_folder_is_one_line(
    timed: Path, runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "no-such-folder" / "audit.csv"
    result = invoke(runner, timed, "audit", "export", "-o", str(target))
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "audit.csv" in lines[0]


# --- migration 0007 from a 0006 database ------------------------------------------------------

T0 = datetime(2026, 10, 5, 7, 15, tzinfo=UTC)
LEGACY_HL7 = (
    "MSH|^~\\&|SAA-LAB|REFLAB|CLINIC-EHR|CLINIC-EAST|20261005091500+0200||ORU^R01^ORU_R01|"
    "{control}|P|2.5.1\rPID|1||PAT-7001^^^^MR\rOBR|1||{accession}^REFLAB|SAA^Asparaginase "
    "activity^L\rOBX|1|NM|SAA^Asparaginase activity^L|1|{value}|U/L^U/L^UCUM|>=100|N|||{status}\r"
)


def _table(name: str, *columns: tuple[str, Any]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c, t) for c, t in columns))


# The tables as revision 0006 left them (see migrations 0001-0006).
SOURCE_FILES = _table("source_files", ("id", sa.Integer()), ("sha256", sa.String()),
                      ("name", sa.String()), ("original_path", sa.Text()), ("size", sa.Integer()),
                      ("format", sa.String()), ("status", sa.String()), ("error", sa.Text()),
                      ("worklist_name", sa.String()), ("archive_path", sa.Text()),
                      ("received_at", UTCDateTime()), ("processed_at", UTCDateTime()))  # fmt: skip
RUNS = _table("runs", ("id", sa.Integer()), ("source_file_id", sa.Integer()),
              ("plate_index", sa.Integer()), ("plate_id", sa.String()), ("format", sa.String()),
              ("read_label", sa.String()), ("wavelength_nm", sa.Float()),
              ("assay_name", sa.String()), ("assay_version", sa.String()),
              ("layout_name", sa.String()), ("layout_version", sa.String()),
              ("worklist_name", sa.String()), ("worklist_sha256", sa.String()),
              ("worklist_text", sa.Text()), ("status", sa.String()), ("reasons", sa.JSON()),
              ("created_at", UTCDateTime()), ("warnings", sa.JSON()),
              ("lookback", sa.JSON()))  # fmt: skip
ORDERS = _table("orders", ("id", sa.Integer()), ("accession", sa.String()),
                ("patient_id", sa.String()), ("formulation", sa.String()),
                ("dose_time", UTCDateTime()), ("collection_time", UTCDateTime()),
                ("protocol", sa.String()), ("clinic", sa.String()),
                ("placer_order_number", sa.String()), ("source", sa.String()),
                ("created_at", UTCDateTime()))  # fmt: skip
RESULTS = _table("results", ("id", sa.Integer()), ("result_uid", sa.String()),
                 ("version", sa.Integer()), ("run_id", sa.Integer()), ("order_id", sa.Integer()),
                 ("accession", sa.String()), ("wells", sa.String()), ("dilution", sa.Float()),
                 ("activity_u_per_l", sa.Float()), ("comparator", sa.String()),
                 ("mean_u_per_l", sa.Float()), ("cv_percent", sa.Float()),
                 ("status", sa.String()), ("flag", sa.String()), ("comment", sa.Text()),
                 ("rule_id", sa.String()), ("result_status", sa.String()),
                 ("created_at", UTCDateTime()), ("supersedes_result_id", sa.Integer()),
                 ("bias_factor", sa.Float()), ("reassay_dilution", sa.Float()),
                 ("protocol", sa.String()), ("protocol_version", sa.String()),
                 ("recommendation", sa.Text()))  # fmt: skip
OUTBOX = _table("outbox", ("id", sa.Integer()), ("result_id", sa.Integer()),
                ("destination", sa.String()), ("control_id", sa.String()),
                ("payload", sa.Text()), ("status", sa.String()), ("attempts", sa.Integer()),
                ("last_error", sa.Text()), ("delivered_to", sa.Text()),
                ("created_at", UTCDateTime()), ("sent_at", UTCDateTime()),
                ("first_attempt_at", UTCDateTime()), ("next_attempt_at", UTCDateTime()),
                ("last_ack_code", sa.String()))  # fmt: skip
AUDIT_0006 = _table("audit_log", ("id", sa.Integer()), ("at", UTCDateTime()),
                    ("actor", sa.String()), ("action", sa.String()), ("entity", sa.String()),
                    ("entity_id", sa.String()), ("detail", sa.JSON()))  # fmt: skip

# accession -> (run, order?, value, comparator, status, flag, result_status, message status)
LEGACY_RESULTS = {
    "LEG-0001": (1, True, 180.0, "=", "quantified", "therapeutic", "F", "sent"),
    "LEG-0002": (1, False, None, "=", "invalid", "invalid", "X", "pending"),
    "LEG-0003": (1, False, 1000.0, ">", "above-uloq", "above-uloq-rerun", "RA", None),
    "LEG-0004": (2, False, 95.0, "=", "quantified", "below-threshold", "W", None),
}


def _upgrade_to(engine: sa.Engine, revision: str) -> None:
    """As Store.upgrade does, to ``revision``."""
    from alembic import command
    from alembic.config import Config

    from saa_lab.store.repository import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


@dataclass(frozen=True)
class Legacy:
    audit_count: int
    results: dict[str, int]  # accession -> result id
    runs: dict[int, int]  # 1 (accepted), 2 (rejected) -> run id


def _insert(conn: sa.Connection, table: sa.TableClause, **values: Any) -> int:
    """Insert one row as the 0006 code did (the database picks the id); returns the id."""
    new_id: int = conn.execute(sa.insert(table).returning(table.c.id).values(**values)).scalar_one()
    return new_id


def build_0006(url: str) -> Legacy:
    """A 0006 database with two runs, four results, two messages and their audit entries."""
    legacy = Store(url, migrate=False)
    try:
        _upgrade_to(legacy.engine, "0006")
        with legacy.engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            assert version == "0006"
        with legacy.engine.begin() as conn:
            source_id = _insert(
                conn,
                SOURCE_FILES,
                sha256="ab" * 32,
                name="RUN-LEG-01.txt",
                original_path="/inbox/RUN-LEG-01.txt",
                size=4096,
                format="biotek_gen5",
                status="done",
                error=None,
                worklist_name="RUN-LEG-01.worklist.csv",
                archive_path="/archive/RUN-LEG-01.txt",
                received_at=T0,
                processed_at=T0 + timedelta(seconds=2),
            )
            run_ids: dict[int, int] = {}
            for run, status, reasons in ((1, "accepted", []), (2, "rejected", ["control HIGH"])):
                run_ids[run] = _insert(
                    conn,
                    RUNS,
                    source_file_id=source_id,
                    plate_index=run - 1,
                    plate_id=f"RUN-LEG-0{run}",
                    format="biotek_gen5",
                    read_label=None,
                    wavelength_nm=710.0,
                    assay_name="aha-indooxine",
                    assay_version="1",
                    layout_name="aha-96",
                    layout_version="1",
                    worklist_name=None,
                    worklist_sha256=None,
                    worklist_text=None,
                    status=status,
                    reasons=reasons,
                    created_at=T0 + timedelta(seconds=1),
                    warnings=None,
                    lookback=None,
                )
            order_id = _insert(
                conn,
                ORDERS,
                accession="LEG-0001",
                patient_id="PAT-7001",
                formulation="peg-asparaginase",
                dose_time=datetime(2026, 9, 28, 7, tzinfo=UTC),
                collection_time=datetime(2026, 10, 5, 6, 30, tzinfo=UTC),
                protocol="AIEOP-BFM-2009",
                clinic="CLINIC-EAST",
                placer_order_number=None,
                source="worklist",
                created_at=T0,
            )
            result_ids: dict[str, int] = {}
            audit_rows: list[dict[str, Any]] = [
                {
                    "actor": "daemon",
                    "action": "export-processed",
                    "entity": "source_file",
                    "entity_id": "ab" * 8,
                    "detail": {"name": "RUN-LEG-01.txt", "runs": list(run_ids.values())},
                }
            ]
            for n, (accession, spec) in enumerate(LEGACY_RESULTS.items(), start=1):
                run, has_order, value, comparator, status, flag, result_status, sent = spec
                rid = result_ids[accession] = _insert(
                    conn,
                    RESULTS,
                    result_uid=f"{n:032x}",
                    version=1,
                    run_id=run_ids[run],
                    order_id=order_id if has_order else None,
                    accession=accession,
                    wells=f"A{n},B{n}",
                    dilution=1.0,
                    activity_u_per_l=value,
                    comparator=comparator,
                    mean_u_per_l=value,
                    cv_percent=2.5,
                    status=status,
                    flag=flag,
                    comment=f"Legacy comment for {accession}.",
                    rule_id="threshold-only",
                    result_status=result_status,
                    created_at=T0 + timedelta(seconds=1),
                    supersedes_result_id=None,
                    bias_factor=None,
                    reassay_dilution=10.0 if result_status == "RA" else None,
                    protocol="consensus-2016",
                    protocol_version="0123456789ab",
                    recommendation=None,
                )
                controls = []
                if sent is not None:
                    control = f"LEGACY{n:014d}"
                    controls.append(control)
                    delivered = sent == "sent"
                    _insert(
                        conn,
                        OUTBOX,
                        result_id=rid,
                        destination="file",
                        control_id=control,
                        payload=LEGACY_HL7.format(
                            control=control,
                            accession=accession,
                            value="" if value is None else f"{value:g}",
                            status=result_status,
                        ),
                        status=sent,
                        attempts=1 if delivered else 0,
                        last_error=None,
                        delivered_to=f"/outbox/{control}.hl7" if delivered else None,
                        created_at=T0 + timedelta(seconds=1),
                        sent_at=T0 + timedelta(seconds=3) if delivered else None,
                        first_attempt_at=T0 + timedelta(seconds=3) if delivered else None,
                        next_attempt_at=None,
                        last_ack_code=None,
                    )
                audit_rows.append(
                    {
                        "actor": "daemon",
                        "action": "result-created",
                        "entity": "result",
                        "entity_id": str(rid),
                        "detail": {"accession": accession, "messages": controls},
                    }
                )
                if sent == "sent":
                    audit_rows.append(
                        {
                            "actor": "delivery",
                            "action": "message-sent",
                            "entity": "message",
                            "entity_id": controls[0],
                            "detail": {"destination": "file", "delivered_to": "/outbox"},
                        }
                    )
            for n, row in enumerate(audit_rows):
                at = T0 + timedelta(seconds=1, microseconds=137 * n)
                _insert(conn, AUDIT_0006, at=at, **row)
        return Legacy(len(audit_rows), result_ids, run_ids)
    finally:
        legacy.close()


def test_migration_0007_brings_a_0006_database_under_review_and_the_chain(
    database_url: str, tmp_path: Path, runner: CliRunner
) -> None:
    legacy = build_0006(database_url)
    legacy_count, ids = legacy.audit_count, legacy.results
    with database_url_store(database_url) as store:
        rows = entries(store)
        report = store.verify_audit()
        with store.session() as s:
            states = {st.result_id: st for st in s.scalars(select(ResultState)).all()}
            runs = {r.id: r for r in s.scalars(select(RunRow)).all()}
            outbox = {m.result_id: m for m in s.scalars(select(OutboxMessage)).all()}
            version = s.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == SCHEMA_VERSION  # 0007 and every later revision

    # results: what was sent is released by rule set pre-0007; the rest kept back
    expected = {
        "LEG-0001": ("released", True, "pre-0007"),
        "LEG-0002": ("released", True, "pre-0007"),
        "LEG-0003": ("reassay", False, None),
        "LEG-0004": ("withheld", False, None),
    }
    assert {a: (states[rid].state, states[rid].auto_verified, states[rid].ruleset)
            for a, rid in ids.items()} == expected  # fmt: skip
    assert set(states) == set(ids.values())
    for rid in (ids["LEG-0001"], ids["LEG-0002"]):
        assert states[rid].decided_by == "auto-verification"
        assert states[rid].decided_at == T0 + timedelta(seconds=1)
        assert states[rid].preliminary_sent is False
    accepted, rejected = runs[legacy.runs[1]], runs[legacy.runs[2]]
    assert (accepted.review_status, rejected.review_status) == ("auto-released", "qc-rejected")
    assert accepted.review_rev == rejected.review_rev == 0
    assert accepted.reviewed_by is None
    assert {rid: m.report_status for rid, m in outbox.items()} == {
        ids["LEG-0001"]: "F", ids["LEG-0002"]: "X"
    }  # fmt: skip

    # the legacy entries are chained, in order, with their times kept
    assert report.intact, report.problem
    assert report.entries == legacy_count == len(rows)
    assert [e.seq for e in rows] == list(range(1, legacy_count + 1))
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert len({e.hash for e in rows}) == legacy_count
    assert [e.action for e in rows][:2] == ["export-processed", "result-created"]
    for n, entry in enumerate(rows):
        assert entry.at == T0 + timedelta(seconds=1, microseconds=137 * n)
        assert entry.at_local is not None
        assert datetime.fromisoformat(entry.at_local) == entry.at
        assert (entry.reason, entry.previous) == (None, None)

    # new entries chain on after them
    config_path = write_config(tmp_path / "lab", USERS, database_url=database_url)
    with database_url_store(database_url) as store:
        store.audit("akoval", "test-note", "test", "after-0007", reason="first new entry")
        after = entries(store)
    assert len(after) == legacy_count + 1
    new = after[-1]
    assert (new.seq, new.prev_hash) == (legacy_count + 1, rows[-1].hash)
    check_local_time(new)
    output = ok(runner, config_path, "audit", "verify")
    assert f"audit trail intact: {legacy_count + 1} entries" in output

    # a legacy result can be corrected: its report is rebuilt from the row and its order
    args = ["--by", "akoval", "--reason", "legacy value mistyped (invented)", "--value", "60"]
    view = json.loads(ok(runner, config_path, "correct", str(ids["LEG-0001"]), "--json", *args))
    assert (view["version"], view["result_status"], view["state"]) == (2, "C", "released")
    with database_url_store(database_url) as store, store.session() as s:
        payload = s.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.result_id == view["id"])
        ).one()
        assert s.get_one(ResultState, states[ids["LEG-0001"]].id).state == "replaced"
    assert_hl7_strict_valid(payload, tmp_path / "legacy-c.txt")
    obx = next(seg.split("|") for seg in payload.split("\r") if seg.startswith("OBX|1|"))
    assert (obx[5], obx[8], obx[11]) == ("60", "L", "C")
    assert "PAT-7001" in payload
    for kept_back, state in (("LEG-0003", "reassay"), ("LEG-0004", "withheld")):
        refused = invoke(runner, config_path, "correct", str(ids[kept_back]), *args)
        assert refused.exit_code == 7, refused.output
        assert f"is {state}, not released" in refused.output
    history = json.loads(ok(runner, config_path, "history", str(ids["LEG-0001"]), "--json"))
    assert [(v["version"], v["result_status"], v["state"]) for v in history["versions"]] == [
        (1, "F", "replaced"), (2, "C", "released"),
    ]  # fmt: skip
    assert [m["report_status"] for m in history["versions"][0]["messages"]] == ["F"]
    assert ok(runner, config_path, "audit", "verify").startswith("audit trail intact")


@contextmanager
def database_url_store(url: str) -> Iterator[Store]:
    opened = Store(url, zone=BERLIN)
    try:
        yield opened
    finally:
        opened.close()


def test_a_changed_legacy_entry_is_found_after_migration(database_url: str) -> None:
    build_0006(database_url)
    with database_url_store(database_url) as store:
        with store.engine.begin() as conn:
            _drop_guard(conn, "update")
            conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
        report = store.verify_audit()
    assert not report.intact
    assert report.problem is not None and report.problem.seq == 2


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET actor = 'mallory'",
    "DELETE FROM audit_log WHERE seq = 1",
    "UPDATE results SET activity_u_per_l = 1",
    "DELETE FROM results WHERE accession = 'LEG-0004'",
])  # fmt: skip
def test_the_append_only_guards_survive_migration_0007(database_url: str, statement: str) -> None:
    from sqlalchemy.exc import DatabaseError

    legacy = build_0006(database_url)
    legacy_count = legacy.audit_count
    with database_url_store(database_url) as store:
        with pytest.raises(DatabaseError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(ResultRow)) == 4
            assert s.scalar(select(func.count()).select_from(AuditEntry)) == legacy_count
            assert s.get_one(ResultRow, legacy.results["LEG-0001"]).activity_u_per_l == 180.0
        assert store.verify_audit().intact
        store.audit("akoval", "test-note", "test", "x")  # appending still works
        assert store.verify_audit().entries == legacy_count + 1
