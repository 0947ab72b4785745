from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest
from conftest import release_on_processing
from sqlalchemy import inspect, text

from saa_lab.config import load_config
from saa_lab.domain import SourceFile
from saa_lab.pipeline import process_export
from saa_lab.store import Store
from saa_lab.store.models import Base
from saa_lab.worklist import parse_worklist

SAMPLES = Path(__file__).resolve().parents[2] / "sample_files"


def test_migrations_create_exactly_the_models(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = Store(database_url)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        tables = set(inspect(store.engine).get_table_names())
        assert {"source_files", "runs", "wells", "calibrations", "results", "outbox",
                "audit_log", "orders", "alembic_version"} <= tables  # fmt: skip
        Store(database_url).close()  # a second open is a no-op upgrade
    finally:
        store.close()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()


def _process(store: Store, tmp_path: Path) -> SourceFile:
    config = release_on_processing(load_config(None).model_copy(update={"base_dir": tmp_path}))
    source = SourceFile.from_path(SAMPLES / "biotek_gen5" / "RUN-G5-001.txt")
    worklist = parse_worklist(
        SourceFile.from_path(SAMPLES / "biotek_gen5" / "RUN-G5-001.worklist.csv"),
        zone=config.lab.zone,
    )
    process_export(store, config, source, worklist_for=lambda _r: worklist)
    return source


def test_an_export_is_stored_whole_with_results_messages_and_audit(
    database_url: str, tmp_path: Path
) -> None:
    store = Store(database_url)
    try:
        source = _process(store, tmp_path)
        record = store.source(source.sha256)
        assert record is not None and record.status == "done" and record.format == "biotek_gen5"
        assert (
            record.received_at.tzinfo is not None
            and record.received_at.utcoffset() == UTC.utcoffset(None)
        )
        (run,) = store.runs_for_source(source.sha256)
        assert run.status == "accepted"
        assert len(run.results) == 14
        assert all(r.version == 1 for r in run.results)
        # Every reported result of an accepted run has exactly one outgoing message;
        # the two above the ULOQ wait for their re-assay (RA) and have none.
        waiting = [r for r in run.results if r.result_status == "RA"]
        assert [r.accession for r in waiting] == ["SAA-0006", "SAA-0011"]
        assert all(len(r.control_ids) == (0 if r.result_status == "RA" else 1)
                   for r in run.results)  # fmt: skip
        pending = store.pending_messages("file")
        assert len(pending) == 12
        assert len({m.control_id for m in pending}) == 12
        reassays = store.open_reassays()
        assert [(r["accession"], r["suggested_dilution"]) for r in reassays] == [
            ("SAA-0006", 5.0), ("SAA-0011", 20.0),
        ]  # fmt: skip
        with store.engine.connect() as conn:
            wells = conn.execute(text("SELECT count(*) FROM wells")).scalar()
            audit = conn.execute(text("SELECT action FROM audit_log")).scalars().all()
            cal = conn.execute(text("SELECT r_squared FROM calibrations")).scalar()
        assert wells == 16 + 2 + 4 + 28
        assert "export-processed" in audit
        assert cal is not None and cal > 0.99
        store.mark_delivered([pending[0].id], ["/x.hl7"])
        assert len(store.pending_messages("file")) == 11
        summary = store.status_summary()
        assert summary["files"] == {"done": 1}
        assert summary["outbox"] == {"pending": 11, "sent": 1}
    finally:
        store.close()


def test_reprocessing_the_same_content_is_a_duplicate_not_a_second_run(
    database_url: str, tmp_path: Path
) -> None:
    store = Store(database_url)
    try:
        source = _process(store, tmp_path)
        config = release_on_processing(load_config(None).model_copy(update={"base_dir": tmp_path}))
        again = process_export(store, config, source)
        assert again.duplicate
        assert len(store.recent_runs()) == 1
        assert len(store.pending_messages("file")) == 12
    finally:
        store.close()


def test_a_failed_transaction_leaves_nothing_behind(database_url: str, tmp_path: Path) -> None:
    store = Store(database_url)
    try:
        config = release_on_processing(load_config(None).model_copy(update={"base_dir": tmp_path}))
        source = SourceFile.from_path(SAMPLES / "biotek_gen5" / "RUN-G5-001.txt")
        worklist = parse_worklist(
            SourceFile.from_path(SAMPLES / "biotek_gen5" / "RUN-G5-001.worklist.csv"),
            zone=config.lab.zone,
        )
        from datetime import datetime

        from saa_lab.assay import load_assay
        from saa_lab.layout import load_layout
        from saa_lab.parsers import parse
        from saa_lab.pipeline import build_runs

        runs = build_runs(
            config, source, parse(source), lambda _r: worklist,
            assay=load_assay("aha-indooxine", config.search_dirs("assays")),
            layout=load_layout("aha-96", config.search_dirs("layouts")),
            now=datetime.now(UTC),
        )  # fmt: skip
        bad = runs[0].samples[0].message
        assert bad is not None
        # Two messages with one control id violate the unique constraint mid-transaction.
        import dataclasses

        dup = dataclasses.replace(
            runs[0].samples[1],
            message=dataclasses.replace(runs[0].samples[1].message, control_id=bad.control_id),  # type: ignore[arg-type]
        )
        broken = dataclasses.replace(runs[0], samples=(runs[0].samples[0], dup))
        from sqlalchemy.exc import IntegrityError

        with pytest.raises(IntegrityError):
            store.save_export(source, "biotek_gen5", [broken])
        assert store.source(source.sha256) is None
        assert store.recent_runs() == []
    finally:
        store.close()


@pytest.mark.parametrize("statement", [
    "UPDATE results SET activity_u_per_l = 0",
    "DELETE FROM results",
    "UPDATE audit_log SET actor = 'someone else'",
    "DELETE FROM audit_log",
])  # fmt: skip
def test_results_and_audit_log_are_append_only(
    database_url: str, tmp_path: Path, statement: str
) -> None:
    from sqlalchemy.exc import DatabaseError

    store = Store(database_url)
    try:
        _process(store, tmp_path)
        with pytest.raises(DatabaseError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM results")).scalar() == 14
    finally:
        store.close()


def test_schema_version_matches_the_newest_migration(database_url: str) -> None:
    from saa_lab.store.models import SCHEMA_VERSION

    store = Store(database_url)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                SCHEMA_VERSION
            )
    finally:
        store.close()
