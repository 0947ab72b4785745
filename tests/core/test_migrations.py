"""Schema migrations: a database left at every earlier revision, with data in it, upgrades
to the newest one keeping its rows; ``saa-lab db current | upgrade``; processes opening
the store at once migrate one after the other."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from conftest import write_config
from sqlalchemy import text

from saa_lab.cli import cli
from saa_lab.store import Store
from saa_lab.store.models import Base
from saa_lab.store.repository import MIGRATIONS


def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def _revisions() -> list[str]:
    """Every revision in the migrations folder, oldest first."""
    return [s.revision for s in reversed(list(_scripts().walk_revisions()))]


REVISIONS = _revisions()
HEAD = REVISIONS[-1]
T0 = datetime(2026, 10, 5, 7, 15, tzinfo=UTC)
PAYLOAD = (
    "MSH|^~\\&|SAA-LAB|REFLAB|CLINIC-EHR|CLINIC-EAST|20261005091500+0200||ORU^R01^ORU_R01|"
    "MIG00000000000001|P|2.5.1\rPID|1||PAT-7001^^^^MR\rOBR|1||MIG-0001^REFLAB|SAA\r"
)


class Ref:
    """The id of the row inserted earlier into ``table``."""

    def __init__(self, table: str) -> None:
        self.table = table


# One row per table, with the columns of every revision: a revision gets those of its
# columns that exist then (see migrations 0001-0008). Tables in insertion order.
ROWS: dict[str, dict[str, Any]] = {
    "source_files": {
        "sha256": "cd" * 32, "name": "RUN-MIG-01.txt", "original_path": "/inbox/RUN-MIG-01.txt",
        "size": 4096, "format": "biotek_gen5", "status": "done", "error": None,
        "worklist_name": "RUN-MIG-01.worklist.csv", "archive_path": "/archive/RUN-MIG-01.txt",
        "received_at": T0, "processed_at": T0 + timedelta(seconds=2),
    },
    "runs": {
        "source_file_id": Ref("source_files"), "plate_index": 0, "plate_id": "RUN-MIG-01",
        "format": "biotek_gen5", "read_label": "710", "wavelength_nm": 710.0,
        "assay_name": "aha-indooxine", "assay_version": "1", "layout_name": "aha-96",
        "layout_version": "1", "worklist_name": "RUN-MIG-01.worklist.csv",
        "worklist_sha256": "ef" * 32, "worklist_text": "accession,well\nMIG-0001,A5\n",
        "status": "accepted", "reasons": ["none"], "created_at": T0 + timedelta(seconds=1),
        "warnings": ["a warning"], "lookback": {"n": 1},
        "review_status": "released", "review_rev": 1, "reviewed_by": "akoval",
        "review_meaning": "approved", "review_note": "fine", "reviewed_at": T0 + timedelta(hours=1),
    },
    "calibrations": {
        "run_id": Ref("runs"), "model": "linear", "intercept": 0.01, "slope": 0.002,
        "r_squared": 0.998, "blank_mean": 0.04, "lloq_u_per_l": 5.0, "uloq_u_per_l": 1000.0,
        "detail": {"points": [[5, 0.02], [100, 0.2]]},
    },
    "wells": {
        "run_id": Ref("runs"), "well": "A5", "role": "sample", "value": 0.361, "raw": "0.361",
        "reason": None, "accession": "MIG-0001", "dilution": 1.0, "nominal_u_per_l": None,
        "control": None,
    },
    "orders": {
        "accession": "MIG-0001", "patient_id": "PAT-7001", "formulation": "peg-asparaginase",
        "dose_time": datetime(2026, 9, 28, 7, tzinfo=UTC),
        "collection_time": datetime(2026, 10, 5, 6, 30, tzinfo=UTC),
        "protocol": "AIEOP-BFM-2009", "clinic": "CLINIC-EAST", "placer_order_number": "PL-1",
        "source": "worklist", "created_at": T0,
        "patient_family_name": "Invented", "patient_given_name": "Ina",
        "birth_date": date(2015, 3, 1), "sex": "F", "ordering_provider": "Dr Made-Up",
        "dose_iu_per_m2": 2500.0, "route": "IV", "reaction": False, "reaction_time": None,
        "reaction_grade": None, "message_control_id": "ORM-1", "intake_status": "ok",
        "problems": [],
    },
    "results": {
        "result_uid": "0" * 31 + "1", "version": 1, "run_id": Ref("runs"),
        "order_id": Ref("orders"), "accession": "MIG-0001", "wells": "A5,A6", "dilution": 1.0,
        "activity_u_per_l": 180.0, "comparator": "=", "mean_u_per_l": 180.5, "cv_percent": 2.5,
        "status": "quantified", "flag": "therapeutic", "comment": "Invented comment.",
        "rule_id": "threshold-only", "result_status": "F", "created_at": T0 + timedelta(seconds=1),
        "supersedes_result_id": None, "bias_factor": None, "reassay_dilution": None,
        "protocol": "consensus-2016", "protocol_version": "0123456789ab",
        "recommendation": "Continue.", "report": {"value": "180"}, "created_by": "daemon",
        "change_reason": None,
    },
    "control_results": {
        "run_id": Ref("runs"), "assay_name": "aha-indooxine", "control": "LOW", "lot": "L1",
        "low_u_per_l": 40.0, "high_u_per_l": 60.0, "passed": True, "run_status": "accepted",
        "created_at": T0 + timedelta(seconds=1), "measured_u_per_l": 51.0, "z_score": 0.4,
    },
    "reassay_requests": {
        "accession": "MIG-0001", "assay_name": "aha-indooxine", "result_id": Ref("results"),
        "suggested_dilution": 10.0, "status": "open", "created_at": T0 + timedelta(seconds=1),
    },
    "outbox": {
        "result_id": Ref("results"), "destination": "file", "control_id": "MIG00000000000001",
        "payload": PAYLOAD, "status": "sent", "attempts": 1, "last_error": None,
        "delivered_to": "/outbox/MIG00000000000001.hl7", "created_at": T0,
        "sent_at": T0 + timedelta(seconds=3), "first_attempt_at": T0 + timedelta(seconds=3),
        "next_attempt_at": None, "last_ack_code": "AA", "report_status": "F",
    },
    "result_states": {
        "result_id": Ref("results"), "run_id": Ref("runs"), "state": "released",
        "auto_verified": True, "ruleset": "default", "hold_reasons": [], "decided_by": None,
        "meaning": None, "note": None, "decided_at": T0 + timedelta(seconds=1),
        "preliminary_sent": False,
    },
}  # fmt: skip
# The audit log before 0007 (which chains its entries): two entries. From 0007 on an
# entry needs its hash chain, written by the store itself: none are inserted then.
AUDIT_ROWS = [
    {"at": T0 + timedelta(seconds=1), "actor": "daemon", "action": "export-processed",
     "entity": "source_file", "entity_id": "cd" * 8, "detail": {"name": "RUN-MIG-01.txt"}},
    {"at": T0 + timedelta(seconds=3), "actor": "delivery", "action": "message-sent",
     "entity": "message", "entity_id": "MIG00000000000001", "detail": {"destination": "file"}},
]  # fmt: skip


def _filler(column: sa.Column[Any]) -> Any:
    """A value for a required column these rows do not name (a revision added it)."""
    python_type = column.type.python_type
    fillers: dict[type, Any] = {int: 1, float: 1.0, bool: False, str: "x", datetime: T0,
                                date: T0.date(), dict: {}, list: []}  # fmt: skip
    return fillers[python_type]


def _head_type(table: str, column: sa.Column[Any]) -> Any:
    """The column's type as the code declares it (UTC datetimes, JSON), else as reflected."""
    declared = Base.metadata.tables.get(table)
    if declared is not None and column.name in declared.c:
        return declared.c[column.name].type
    return column.type


def upgrade_to(engine: sa.Engine, revision: str) -> None:
    """As Store.upgrade does, to ``revision``."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


Inserted = list[tuple[str, int, dict[str, Any]]]


def build_at(url: str, revision: str) -> Inserted:
    """A database at ``revision`` with one row in each of its tables; what was inserted."""
    legacy = Store(url, migrate=False)
    inserted: Inserted = []
    try:
        upgrade_to(legacy.engine, revision)
        assert legacy.revision() == revision
        present = sa.MetaData()
        present.reflect(legacy.engine)
        ids: dict[str, int] = {}
        rows = [(name, row) for name, row in ROWS.items() if name in present.tables]
        if "seq" not in present.tables["audit_log"].c:
            rows += [("audit_log", row) for row in AUDIT_ROWS]
        with legacy.engine.begin() as conn:
            for name, row in rows:
                reflected = present.tables[name]
                values = {k: ids[v.table] if isinstance(v, Ref) else v
                          for k, v in row.items() if k in reflected.c}  # fmt: skip
                for column in reflected.c:
                    required = not column.nullable and column.server_default is None
                    if required and column.name not in values and not column.primary_key:
                        values[column.name] = _filler(column)
                table = sa.table(name, *(sa.column(c.name, _head_type(name, c))
                                         for c in reflected.c))  # fmt: skip
                new_id = conn.execute(
                    sa.insert(table).values(**values).returning(table.c.id)
                ).scalar_one()
                ids[name] = new_id
                inserted.append((name, new_id, values))
    finally:
        legacy.close()
    return inserted


def invoke(runner: CliRunner, config_path: Path, *args: str) -> Result:
    return runner.invoke(cli, ["--config", str(config_path), *args])


@pytest.mark.parametrize("revision", REVISIONS[:-1])
def test_a_database_at_every_earlier_revision_upgrades_with_its_data(
    database_url: str, revision: str, tmp_path: Path, runner: CliRunner
) -> None:
    inserted = build_at(database_url, revision)
    assert {name for name, _, _ in inserted} >= {"source_files", "runs", "results", "outbox"}
    store = Store(database_url)
    try:
        assert store.revision() == HEAD
        with store.engine.connect() as conn:
            for name, row_id, values in inserted:
                table = Base.metadata.tables[name]
                found = conn.execute(
                    sa.select(*(table.c[k] for k in values)).where(table.c.id == row_id)
                ).one()
                assert found._asdict() == values, name
            if revision < "0007":
                # 0007: results stored earlier were released; the legacy entries chained.
                states = conn.execute(text("SELECT state FROM result_states")).scalars().all()
                assert states == ["released"]
                seqs = conn.execute(text("SELECT seq FROM audit_log ORDER BY seq")).scalars()
                assert list(seqs) == [1, 2]
    finally:
        store.close()

    config = write_config(tmp_path / "ws", database_url=database_url)
    current = invoke(runner, config, "db", "current", "--json")
    assert current.exit_code == 0, current.output
    assert '"upgrade_needed": false' in current.output
    assert f'"database": "{HEAD}"' in current.output
    verify = invoke(runner, config, "audit", "verify")
    assert verify.exit_code == 0, verify.output


def test_db_upgrade_names_both_revisions_then_says_already(
    database_url: str, tmp_path: Path, runner: CliRunner
) -> None:
    old = REVISIONS[-3]
    build_at(database_url, old)
    config = write_config(tmp_path / "ws", database_url=database_url)

    current = invoke(runner, config, "db", "current")
    assert current.exit_code == 0, current.output
    assert f"database: {old}" in current.output
    assert f"newest:   {HEAD}" in current.output
    assert "upgrade needed" in current.output

    first = invoke(runner, config, "db", "upgrade")
    assert first.exit_code == 0, first.output
    assert first.output == f"database at {old}, upgraded to {HEAD}\n"
    again = invoke(runner, config, "db", "upgrade")
    assert again.exit_code == 0, again.output
    assert again.output == f"database already at {HEAD}\n"
    assert "up to date" in invoke(runner, config, "db", "current").output


def test_db_upgrade_of_an_empty_database(tmp_path: Path, runner: CliRunner) -> None:
    config = write_config(tmp_path / "ws", database_url=f"sqlite:///{tmp_path / 'new.db'}")
    result = invoke(runner, config, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.output == f"empty database, upgraded to {HEAD}\n"


def test_db_current_only_reads(tmp_path: Path, runner: CliRunner) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    build_at(url, REVISIONS[0])
    config = write_config(tmp_path / "ws", database_url=url)
    result = invoke(runner, config, "db", "current", "--json")
    assert result.exit_code == 0, result.output
    assert '"upgrade_needed": true' in result.output
    store = Store(url, migrate=False)
    try:
        assert store.revision() == REVISIONS[0]
    finally:
        store.close()


def test_a_database_newer_than_the_code_is_reported_not_touched(
    tmp_path: Path, runner: CliRunner
) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    build_at(url, HEAD)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    config = write_config(tmp_path / "ws", database_url=url)
    current = invoke(runner, config, "db", "current")
    assert current.exit_code == 0, current.output
    assert "does not know (9999)" in current.output
    upgrade = invoke(runner, config, "db", "upgrade")
    assert upgrade.exit_code == 5, upgrade.output
    assert upgrade.output.count("\n") == 1
    assert "database at 9999, a revision this saa-lab does not know" in upgrade.output
    # Any other command (the daemon too) says the same in one line, not a traceback.
    status = invoke(runner, config, "status")
    assert status.exit_code == 5, status.output
    assert status.output.count("\n") == 1
    assert "schema revision 9999, newer than this saa-lab knows" in status.output


def test_db_upgrade_of_an_unreachable_database_is_one_line(
    tmp_path: Path, runner: CliRunner
) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    config = write_config(tmp_path / "ws", database_url=url)
    for args in (("db", "upgrade"), ("db", "current")):
        result = invoke(runner, config, *args)
        assert result.exit_code == 5, result.output
        assert result.output.startswith("Error: cannot open the database")
        assert result.output.count("\n") == 1


def test_stores_opened_at_once_migrate_one_after_the_other(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Daemons starting together on a fresh database: each opens the store, one migrates,
    the others wait for it (PostgreSQL: its advisory lock; SQLite: its write transaction)
    and find the schema at head."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    original: Callable[..., None] = command.upgrade
    seen: list[str | None] = []

    def upgrade(cfg: Any, revision: str, **kwargs: Any) -> None:
        # Inside Store.upgrade's transaction, after its lock: the revision found there.
        seen.append(MigrationContext.configure(cfg.attributes["connection"]).get_current_revision())
        original(cfg, revision, **kwargs)

    monkeypatch.setattr(command, "upgrade", upgrade)
    opened = 6
    barrier = threading.Barrier(opened)
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            Store(database_url).close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    # Daemon threads: without the lock they can hang (each waits for a table another
    # one is creating), and the test must fail, not hang.
    threads = [threading.Thread(target=open_store, daemon=True) for _ in range(opened)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not [t for t in threads if t.is_alive()], "stores still opening after 60 s"
    assert not errors, errors
    assert seen.count(None) == 1, seen  # migrated once, from the empty database
    assert all(revision in (None, HEAD) for revision in seen), seen
    store = Store(database_url, migrate=False)
    try:
        assert store.revision() == HEAD
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_upgrade_takes_the_advisory_lock(database_url: str) -> None:
    """Another session holding the migration lock makes Store.upgrade wait for it."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL advisory locks")
    from saa_lab.store.repository import PG_MIGRATION_LOCK_KEY

    holder = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    done = threading.Event()
    try:
        with holder.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK_KEY})
            opener = threading.Thread(
                target=lambda: (Store(database_url).close(), done.set()), daemon=True
            )
            opener.start()
            assert not done.wait(1.0), "the store migrated while another session held the lock"
        opener.join(timeout=60)
        assert done.is_set()
    finally:
        holder.dispose()
