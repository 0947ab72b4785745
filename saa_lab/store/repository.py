"""The store's public face: domain values in, domain values out.

Callers never see ORM rows. Database trouble (server down, SQLite locked) is
raised as :class:`~saa_lab.errors.StoreError`; the transaction is rolled back
and nothing half-written remains.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, create_engine, delete, event, func, make_url, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..domain import SourceFile
from ..errors import StoreError
from ..records import ProcessedRun
from . import audit
from .convert import order_row
from .models import (
    CalibrationRow,
    ControlResultRow,
    OrderRow,
    OutboxMessage,
    ReassayRequest,
    ResultRow,
    ResultState,
    RunRow,
    ServiceState,
    SourceFileRow,
    WellRow,
    utcnow,
)

__all__ = ["PendingMessage", "SourceRecord", "Store", "StoredResult", "StoredRun"]

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


class DuplicateExport(Exception):
    """The export was stored meanwhile by another process (same content hash)."""


@dataclass(frozen=True)
class SourceRecord:
    id: int
    sha256: str
    name: str
    status: str
    error: str | None
    format: str | None
    received_at: datetime
    processed_at: datetime | None
    archive_path: str | None


@dataclass(frozen=True)
class StoredResult:
    id: int
    result_uid: str
    version: int
    accession: str
    wells: tuple[str, ...]
    dilution: float
    activity_u_per_l: float | None
    comparator: str
    flag: str
    comment: str
    result_status: str
    control_ids: tuple[str, ...] = ()
    supersedes_result_id: int | None = None
    reassay_dilution: float | None = None
    bias_factor: float | None = None
    rule_id: str = ""
    protocol: str | None = None
    protocol_version: str | None = None
    recommendation: str | None = None
    # review: waiting | released | rejected | withheld | reassay | replaced
    state: str = "released"
    auto_verified: bool = False
    ruleset: str | None = None
    hold_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredRun:
    id: int
    source_name: str
    source_sha256: str
    plate_index: int
    plate_id: str | None
    format: str
    status: str
    reasons: tuple[str, ...]
    assay_name: str
    assay_version: str
    results: tuple[StoredResult, ...] = field(default=())
    warnings: tuple[str, ...] = ()
    lookback: tuple[dict[str, Any], ...] = ()
    curve: dict[str, Any] = field(default_factory=dict)
    # waiting | released | auto-released | rejected | qc-rejected
    review_status: str = "auto-released"


@dataclass(frozen=True)
class PendingMessage:
    id: int
    destination: str
    control_id: str
    payload: str
    attempts: int


# How long a SQLite write waits for another connection's lock before it fails with
# "database is locked" (a StoreError: the work is retried later).
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# PostgreSQL (libpq parameters; a URL's own ?connect_timeout=… etc. wins): a server
# that accepts the connection but never answers fails it instead of hanging the
# daemon or a command, and TCP keepalives find a connection whose server vanished
# without closing it (a crashed host, a dropped VPN) in about a minute.
PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
# PostgreSQL: the key of the transaction-level advisory lock Store.upgrade holds while
# Alembic runs, so daemons starting together on one server migrate one after the other
# (the second finds the schema at head). Any fixed 64-bit number; this one spells SAA-LAB.
PG_MIGRATION_LOCK_KEY = 0x5AA_1AB


def _sqlite_wal(cursor: Any) -> None:
    """Switch the file to WAL. On a brand-new file SQLite answers "database is locked" at
    once (no busy wait) while another connection creates the schema, as when several
    processes start together: wait for it as the busy timeout would."""
    import sqlite3
    import time

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    _sqlite_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={round(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.close()


def _one_line(error: BaseException | None) -> str:
    """A driver's message on one line (libpq's span several, indented)."""
    return " ".join(str(error).split())


def _unavailable(error: DBAPIError) -> bool:
    """The database is down, unreachable, restarting or locked: retry later, not a bug."""
    return isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated


def _rollback(session: Session) -> None:
    """Roll back. A connection already lost cannot (the server rolled back by itself):
    that second error must not replace the one being raised."""
    try:
        session.rollback()
    except DBAPIError as exc:
        log.debug("rollback failed: %s", _one_line(exc))


def _sqlite_migration_engine(url: str) -> Engine:
    """An engine whose transactions really contain DDL on SQLite.

    The sqlite3 driver commits before each CREATE/ALTER on its own, so a process killed
    in the middle of a migration left tables without their Alembic stamp, and every
    later start failed ("table ... already exists"). Here the driver leaves transactions
    to us (SQLAlchemy's documented recipe) and each migration run is one
    ``BEGIN IMMEDIATE`` ... ``COMMIT``: all of it, or none, and one process at a time.
    """
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                           hide_parameters=True)  # fmt: skip

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, record)
        dbapi_connection.isolation_level = None

    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


class Store:
    """Open (and migrate) a database by URL: ``sqlite:///path`` or ``postgresql+psycopg://…``."""

    def __init__(self, url: str, *, migrate: bool = True, zone: tzinfo | None = None) -> None:
        self.url = url
        # The lab's zone: audit entries record their local time in it.
        self.zone = zone
        self.engine = self._make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.upgrade()

    @staticmethod
    def _make_engine(url: str) -> Engine:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                                   hide_parameters=True)  # fmt: skip
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        given = make_url(url).query
        defaults = {k: v for k, v in PG_CONNECT_ARGS.items() if k not in given}
        # pre-ping: a pooled connection the server dropped (restart, failover,
        # pg_terminate_backend) is replaced at checkout instead of failing the work.
        return create_engine(url, pool_pre_ping=True, connect_args=defaults,
                             hide_parameters=True)  # fmt: skip

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config
        from alembic.util import CommandError

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        in_memory = self.engine.url.database in (None, "", ":memory:")
        on_disk_sqlite = self.dialect == "sqlite" and not in_memory
        if on_disk_sqlite and self._at_head():
            return  # nothing to do: no write lock taken (a reader need not wait for one)
        engine = _sqlite_migration_engine(self.url) if on_disk_sqlite else self.engine
        try:
            with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    # Held until this transaction ends: a second process waits here, then
                    # reads the revision the first one committed and has nothing to do.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
                    )
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except DBAPIError as exc:
            if not _unavailable(exc):
                raise
            raise StoreError(f"cannot open or migrate the database: {_one_line(exc.orig)}") from exc
        except CommandError as exc:
            # "Can't locate revision": a newer saa-lab upgraded this database.
            current = self.revision()
            raise StoreError(
                f"the database is at schema revision {current}, newer than this saa-lab knows "
                f"(newest {self.head_revision()}): it was upgraded by a newer saa-lab; install "
                "that version (a database is never downgraded by saa-lab)"
            ) from exc
        finally:
            if engine is not self.engine:
                engine.dispose()

    def _at_head(self) -> bool:
        """Whether the database is already at the newest revision (a plain read)."""
        return self.revision() == self.head_revision()

    @staticmethod
    def head_revision() -> str | None:
        """The newest Alembic revision this code knows (``None``: no migrations at all)."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return ScriptDirectory.from_config(cfg).get_current_head()

    def revision(self) -> str | None:
        """The database's Alembic revision (``None``: an empty database); a plain read."""
        from alembic.runtime.migration import MigrationContext

        try:
            with self.engine.connect() as connection:
                current: str | None = MigrationContext.configure(connection).get_current_revision()
        except DBAPIError as exc:
            if not _unavailable(exc):
                raise
            raise StoreError(f"cannot open the database: {_one_line(exc.orig)}") from exc
        return current

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        audit.set_zone(session, self.zone)
        try:
            yield session
            audit.seal(session)
            session.commit()
        except DBAPIError as exc:
            _rollback(session)
            if not _unavailable(exc):
                raise
            # The database is down, locked or unreachable: not a bug, retry later. A
            # connection lost during COMMIT leaves it unknown whether the transaction
            # was committed: callers retry and find the work done (idempotent steps).
            raise StoreError(f"database error: {_one_line(exc.orig)}") from exc
        except BaseException:
            _rollback(session)
            raise
        finally:
            session.close()

    # -- source files ---------------------------------------------------------

    @staticmethod
    def _source_record(row: SourceFileRow) -> SourceRecord:
        return SourceRecord(
            id=row.id,
            sha256=row.sha256,
            name=row.name,
            status=row.status,
            error=row.error,
            format=row.format,
            received_at=row.received_at,
            processed_at=row.processed_at,
            archive_path=row.archive_path,
        )

    def source(self, sha256: str) -> SourceRecord | None:
        with self.session() as s:
            row = s.scalar(select(SourceFileRow).where(SourceFileRow.sha256 == sha256))
            return self._source_record(row) if row else None

    def earlier_version(self, name: str, sha256: str) -> SourceRecord | None:
        """The newest processed file called ``name`` whose content differs from ``sha256``."""
        with self.session() as s:
            row = s.scalar(
                select(SourceFileRow)
                .where(
                    SourceFileRow.name == name,
                    SourceFileRow.sha256 != sha256,
                    SourceFileRow.status == "done",
                )
                .order_by(SourceFileRow.id.desc())
                .limit(1)
            )
            return self._source_record(row) if row else None

    def source_worklists(self, sha256: str) -> list[tuple[str, str]]:
        """``(name, sha256)`` of the worklists the runs of a processed export used."""
        with self.session() as s:
            rows = s.execute(
                select(RunRow.worklist_name, RunRow.worklist_sha256)
                .join(SourceFileRow, RunRow.source_file_id == SourceFileRow.id)
                .where(SourceFileRow.sha256 == sha256, RunRow.worklist_sha256.is_not(None))
                .distinct()
            ).all()
            return [(str(name), str(sha)) for name, sha in rows if name and sha]

    def _upsert_source(self, s: Session, source: SourceFile) -> SourceFileRow:
        row = s.scalar(select(SourceFileRow).where(SourceFileRow.sha256 == source.sha256))
        if row is None:
            row = SourceFileRow(
                sha256=source.sha256,
                name=source.name,
                original_path=source.original_path,
                size=len(source.contents),
                status="received",
            )
            s.add(row)
        return row

    def mark_source(
        self,
        source: SourceFile,
        status: str,
        *,
        error: str | None = None,
        fmt: str | None = None,
        actor: str = "daemon",
    ) -> None:
        """Record a file as ``waiting`` (for its worklist) or ``failed`` (with the error)."""
        with self.session() as s:
            row = self._upsert_source(s, source)
            before = {"status": row.status, "error": row.error}
            changed = row.status != status or row.error != error
            row.status, row.error = status, error
            row.name, row.original_path = source.name, source.original_path
            if fmt:
                row.format = fmt
            if changed:
                audit.record(s, actor, f"file-{status}", "source_file", source.sha256[:16],
                             reason=error, previous=before, name=source.name,
                             path=source.original_path, sha256=source.sha256)  # fmt: skip

    def set_archive_path(self, sha256: str, path: str) -> None:
        with self.session() as s:
            row = s.scalar(select(SourceFileRow).where(SourceFileRow.sha256 == sha256))
            if row is not None and row.archive_path != path:
                audit.record(s, "daemon", "file-archived", "source_file", sha256[:16],
                             previous={"archive_path": row.archive_path}, name=row.name,
                             archive_path=path)  # fmt: skip
                row.archive_path = path

    def save_export(
        self,
        source: SourceFile,
        fmt: str,
        runs: Sequence[ProcessedRun],
        *,
        actor: str = "daemon",
    ) -> list[StoredRun]:
        """Store an export's runs, wells, calibrations, results and outgoing messages.

        One transaction: either all of it is stored and the file is ``done``, or
        nothing is. Raises :class:`DuplicateExport` when the same content was stored
        meanwhile (another daemon on the same database got there first).
        """
        try:
            return self._save_export(source, fmt, runs, actor)
        except IntegrityError:
            # Two daemons stored the same new file at once: the unique hash let one in.
            known = self.source(source.sha256)
            if known is not None and known.status == "done":
                raise DuplicateExport(source.sha256) from None
            raise

    def _save_export(
        self, source: SourceFile, fmt: str, runs: Sequence[ProcessedRun], actor: str
    ) -> list[StoredRun]:
        with self.session() as s:
            # Locked until the commit: a second daemon storing the same file waits,
            # then finds it done instead of storing it twice.
            locked = s.scalar(
                select(SourceFileRow).where(SourceFileRow.sha256 == source.sha256).with_for_update()
            )
            if locked is not None and locked.status == "done":
                raise DuplicateExport(source.sha256)
            source_row = self._upsert_source(s, source)
            before = {"status": source_row.status, "error": source_row.error}
            source_row.status, source_row.error, source_row.format = "done", None, fmt
            source_row.processed_at = utcnow()
            worklists = {r.worklist.source_path for r in runs if r.worklist}
            source_row.worklist_name = ", ".join(Path(w).name for w in sorted(worklists)) or None
            s.flush()
            run_ids = [self._add_run(s, source_row.id, run, actor) for run in runs]
            audit.record(s, actor, "export-processed", "source_file", source.sha256[:16],
                         previous=before, name=source.name, format=fmt, runs=run_ids,
                         sha256=source.sha256)  # fmt: skip
            s.flush()
            return [self._stored_run(s, run_id) for run_id in run_ids]

    def _add_run(self, s: Session, source_id: int, run: ProcessedRun, actor: str) -> int:
        plate, cal = run.plate, run.calibration
        row = RunRow(
            source_file_id=source_id,
            plate_index=plate.read.plate_index,
            plate_id=plate.read.plate_id,
            format=plate.read.format,
            read_label=plate.read.label,
            wavelength_nm=plate.read.wavelength_nm,
            assay_name=run.assay.name,
            assay_version=run.assay.version,
            layout_name=plate.layout.name,
            layout_version=plate.layout.version,
            worklist_name=Path(run.worklist.source_path).name if run.worklist else None,
            worklist_sha256=run.worklist.sha256 if run.worklist else None,
            worklist_text=run.worklist.text if run.worklist else None,
            status="accepted" if cal.accepted else "rejected",
            reasons=list(cal.reasons),
            warnings=list(cal.warnings) or None,
            review_status=_review_status(run),
            review_rev=0,
        )
        s.add(row)
        s.flush()
        audit.record(s, actor, "run-created", "run", row.id, status=row.status,
                     review_status=row.review_status, reasons=list(cal.reasons),
                     warnings=list(cal.warnings), assay=run.assay.name,
                     assay_version=run.assay.version, plate_index=row.plate_index,
                     plate_id=row.plate_id, source_file_id=source_id)  # fmt: skip
        if not cal.accepted and cal.control_failed:
            row.lookback = self._lookback(s, run.assay.name, row.id)
        s.add_all(
            ControlResultRow(
                run_id=row.id,
                assay_name=run.assay.name,
                control=c.name,
                lot=c.lot,
                measured_u_per_l=c.measured_u_per_l,
                low_u_per_l=c.low_u_per_l,
                high_u_per_l=c.high_u_per_l,
                passed=c.passed,
                z_score=cal.westgard.z_scores.get(c.name),
                run_status=row.status,
            )
            for c in cal.controls
        )
        s.add_all(
            WellRow(
                run_id=row.id,
                well=w.well,
                role=w.role,
                value=w.value,
                raw=w.raw[:64],
                reason=w.reason if w.value is None else None,
                accession=w.accession,
                dilution=w.dilution,
                nominal_u_per_l=w.nominal_u_per_l,
                control=w.control,
            )
            for w in plate.wells
        )
        parameters = dict(cal.fit.parameters) if cal.fit else {}
        s.add(
            CalibrationRow(
                run_id=row.id,
                model=cal.fit.model if cal.fit else None,
                intercept=parameters.get("intercept"),
                slope=parameters.get("slope"),
                r_squared=cal.fit.r_squared if cal.fit else None,
                blank_mean=cal.blank_mean,
                lloq_u_per_l=cal.lloq_u_per_l,
                uloq_u_per_l=cal.uloq_u_per_l,
                detail=_calibration_detail(run),
            )
        )
        orders: dict[str, int] = {}
        for reported in run.samples:
            order_id = None
            if reported.order is not None:
                key = reported.order.accession
                if key not in orders:
                    o = reported.order
                    existing = None
                    if o.source == "hl7" and o.message_control_id:
                        # Link to the stored HL7 order rather than copying it.
                        existing = s.scalar(
                            select(OrderRow.id)
                            .where(
                                OrderRow.source == "hl7",
                                OrderRow.accession == o.accession,
                                OrderRow.message_control_id == o.message_control_id,
                            )
                            .order_by(OrderRow.id.desc())
                            .limit(1)
                        )
                    if existing is None:
                        row_for_order = order_row(o)
                        s.add(row_for_order)
                        s.flush()
                        existing = row_for_order.id
                    orders[key] = existing
                order_id = orders[key]
            sample, interp = reported.sample, reported.interpretation
            result = ResultRow(
                result_uid=reported.result_uid,
                version=1,
                run_id=row.id,
                order_id=order_id,
                accession=sample.accession,
                wells=",".join(sample.wells),
                dilution=sample.dilution,
                activity_u_per_l=sample.activity_u_per_l,
                comparator=sample.comparator,
                mean_u_per_l=sample.mean_u_per_l,
                cv_percent=sample.cv_percent,
                status=sample.status,
                flag=interp.flag,
                comment=interp.comment,
                rule_id=interp.rule_id,
                result_status=reported.result_status,
                bias_factor=reported.bias_factor,
                reassay_dilution=sample.reassay_dilution,
                protocol=interp.protocol or None,
                protocol_version=interp.protocol_version or None,
                recommendation=interp.recommendation or None,
                report=reported.content.to_json() if reported.content else None,
                created_by=actor,
            )
            accepted = cal.accepted
            open_request: ReassayRequest | None = None
            # An invalid re-assay result neither replaces the original nor closes its
            # request: the sample still needs a valid re-assay.
            if accepted and sample.status != "invalid":
                open_request = s.scalar(
                    select(ReassayRequest).where(
                        ReassayRequest.accession == sample.accession,
                        ReassayRequest.assay_name == run.assay.name,
                        ReassayRequest.status == "open",
                    )
                )
                if open_request is not None:
                    result.supersedes_result_id = open_request.result_id
            s.add(result)
            s.flush()
            if accepted and result.supersedes_result_id is not None and open_request is not None:
                open_request.status, open_request.done_result_id = "done", result.id
            if accepted and sample.reassay_dilution is not None:
                s.add(
                    ReassayRequest(
                        accession=sample.accession,
                        assay_name=run.assay.name,
                        result_id=result.id,
                        suggested_dilution=sample.reassay_dilution,
                        status="open",
                    )
                )
            now = utcnow()
            s.add(
                ResultState(
                    result_id=result.id,
                    run_id=row.id,
                    state=reported.review_state,
                    auto_verified=reported.auto_verified,
                    ruleset=reported.ruleset,
                    hold_reasons=list(reported.hold_reasons) or None,
                    decided_by="auto-verification" if reported.auto_verified else None,
                    meaning="auto-verified" if reported.auto_verified else None,
                    decided_at=now if reported.auto_verified else None,
                    preliminary_sent=reported.preliminary,
                )
            )
            messages = []
            if reported.message is not None:
                s.add(
                    OutboxMessage(
                        result_id=result.id,
                        destination=reported.message.destination,
                        control_id=reported.message.control_id,
                        payload=reported.message.payload,
                        status="pending",
                        report_status="P" if reported.preliminary else result.result_status,
                    )
                )
                messages.append(reported.message.control_id)
            audit.record(
                s, actor, "result-created", "result", result.id,
                result_uid=result.result_uid, version=1, run_id=row.id,
                accession=result.accession, activity_u_per_l=result.activity_u_per_l,
                comparator=result.comparator, status=result.status, flag=result.flag,
                result_status=result.result_status, state=reported.review_state,
                auto_verified=reported.auto_verified, ruleset=reported.ruleset,
                hold_reasons=list(reported.hold_reasons), order_id=order_id,
                messages=messages,
                message_status=("P" if reported.preliminary else result.result_status)
                if messages else None,
            )  # fmt: skip
        return row.id

    @staticmethod
    def _lookback(s: Session, assay_name: str, run_id: int) -> list[dict[str, Any]]:
        """Results released since the last clean accepted run of this assay (CLIA 493.1282).

        A clean run is accepted without QC warnings. Westgard notes (rules disabled,
        mean/SD not yet established) are stored with the warnings but say nothing
        against the run. An empty ``warnings`` is JSON ``null``, not SQL NULL.
        """
        accepted = s.execute(
            select(RunRow.id, RunRow.warnings)
            .where(
                RunRow.assay_name == assay_name,
                RunRow.status == "accepted",
                RunRow.id < run_id,
            )
            .order_by(RunRow.id.desc())
        ).all()
        last_clean = None
        for candidate, warnings in accepted:
            if warnings:
                detail = s.scalar(
                    select(CalibrationRow.detail).where(CalibrationRow.run_id == candidate)
                )
                notes = ((detail or {}).get("westgard") or {}).get("notes") or ()
                if not set(warnings) <= set(notes):
                    continue
            last_clean = candidate
            break
        query = (
            select(ResultRow.id, ResultRow.accession, ResultRow.run_id, ResultRow.result_status)
            .join(RunRow, ResultRow.run_id == RunRow.id)
            .where(
                RunRow.assay_name == assay_name,
                RunRow.id < run_id,
                ResultRow.result_status.in_(("F", "C", "X")),
            )
            .order_by(ResultRow.id)
        )
        if last_clean is not None:
            query = query.where(RunRow.id > last_clean)
        return [
            {"result_id": rid, "accession": acc, "run_id": rrun, "result_status": status,
             "since_run": last_clean}
            for rid, acc, rrun, status in s.execute(query)
        ]  # fmt: skip

    def control_history(self, assay_name: str, lots: dict[str, str]) -> dict[str, list[float]]:
        """Each control's values in earlier accepted runs of its lot, oldest first."""
        history: dict[str, list[float]] = {}
        with self.session() as s:
            for control, lot in lots.items():
                history[control] = [
                    v
                    for v in s.scalars(
                        select(ControlResultRow.measured_u_per_l)
                        .where(
                            ControlResultRow.assay_name == assay_name,
                            ControlResultRow.control == control,
                            ControlResultRow.lot == lot,
                            ControlResultRow.run_status == "accepted",
                        )
                        .order_by(ControlResultRow.id)
                    )
                    if v is not None
                ]
        return history

    def open_reassays(self) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(
                select(ReassayRequest)
                .where(ReassayRequest.status == "open")
                .order_by(ReassayRequest.id)
            ).all()
            return [
                {"accession": r.accession, "assay": r.assay_name, "result_id": r.result_id,
                 "suggested_dilution": r.suggested_dilution, "since": r.created_at.isoformat()}
                for r in rows
            ]  # fmt: skip

    # -- reading runs and results ---------------------------------------------

    def _stored_run(self, s: Session, run_id: int) -> StoredRun:
        run = s.get_one(RunRow, run_id)
        source = s.get_one(SourceFileRow, run.source_file_id)
        results = s.scalars(
            select(ResultRow).where(ResultRow.run_id == run_id).order_by(ResultRow.id)
        ).all()
        ids = [r.id for r in results]
        states = {
            st.result_id: st
            for st in s.scalars(select(ResultState).where(ResultState.run_id == run_id))
        }
        controls: dict[int, list[str]] = {}
        if ids:
            for result_id, control_id in s.execute(
                select(OutboxMessage.result_id, OutboxMessage.control_id).where(
                    OutboxMessage.result_id.in_(ids)
                )
            ):
                controls.setdefault(result_id, []).append(control_id)
        calibration = s.scalar(select(CalibrationRow).where(CalibrationRow.run_id == run_id))
        curve: dict[str, Any] = {}
        if calibration is not None:
            detail = calibration.detail
            curve = {
                "model": calibration.model,
                "weighting": detail.get("weighting"),
                "parameters": detail.get("parameters", {}),
                "r_squared": calibration.r_squared,
                "lloq_u_per_l": calibration.lloq_u_per_l,
                "uloq_u_per_l": calibration.uloq_u_per_l,
                "standards": detail.get("standard_wells", []),
                "exclusions": detail.get("exclusions", []),
                "controls": detail.get("controls", []),
                "westgard": detail.get("westgard", {}),
            }
        return StoredRun(
            id=run.id,
            source_name=source.name,
            source_sha256=source.sha256,
            plate_index=run.plate_index,
            plate_id=run.plate_id,
            format=run.format,
            status=run.status,
            reasons=tuple(run.reasons),
            assay_name=run.assay_name,
            assay_version=run.assay_version,
            warnings=tuple(run.warnings or ()),
            lookback=tuple(run.lookback or ()),
            curve=curve,
            review_status=run.review_status or "auto-released",
            results=tuple(
                StoredResult(
                    id=r.id,
                    result_uid=r.result_uid,
                    version=r.version,
                    accession=r.accession,
                    wells=tuple(r.wells.split(",")),
                    dilution=r.dilution,
                    activity_u_per_l=r.activity_u_per_l,
                    comparator=r.comparator,
                    flag=r.flag,
                    comment=r.comment,
                    result_status=r.result_status,
                    control_ids=tuple(controls.get(r.id, ())),
                    supersedes_result_id=r.supersedes_result_id,
                    reassay_dilution=r.reassay_dilution,
                    bias_factor=r.bias_factor,
                    rule_id=r.rule_id,
                    protocol=r.protocol,
                    protocol_version=r.protocol_version,
                    recommendation=r.recommendation,
                    state=states[r.id].state if r.id in states else "released",
                    auto_verified=states[r.id].auto_verified if r.id in states else False,
                    ruleset=states[r.id].ruleset if r.id in states else None,
                    hold_reasons=tuple(states[r.id].hold_reasons or ()) if r.id in states else (),
                )
                for r in results
            ),
        )

    def runs_for_source(self, sha256: str) -> list[StoredRun]:
        with self.session() as s:
            ids = s.scalars(
                select(RunRow.id)
                .join(SourceFileRow, RunRow.source_file_id == SourceFileRow.id)
                .where(SourceFileRow.sha256 == sha256)
                .order_by(RunRow.id)
            ).all()
            return [self._stored_run(s, i) for i in ids]

    def recent_runs(self, limit: int = 20) -> list[StoredRun]:
        with self.session() as s:
            ids = s.scalars(select(RunRow.id).order_by(RunRow.id.desc()).limit(limit)).all()
            return [self._stored_run(s, i) for i in ids]

    # -- outbox ---------------------------------------------------------------

    def pending_messages(self, destination: str, *, limit: int = 1000) -> list[PendingMessage]:
        with self.session() as s:
            rows = s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.destination == destination, OutboxMessage.status == "pending")
                .order_by(OutboxMessage.id)
                .limit(limit)
            ).all()
            return [
                PendingMessage(r.id, r.destination, r.control_id, r.payload, r.attempts)
                for r in rows
            ]

    def mark_delivered(self, message_ids: Sequence[int], where: Sequence[str]) -> None:
        with self.session() as s:
            now = utcnow()
            for message_id, target in zip(message_ids, where, strict=True):
                row = s.get_one(OutboxMessage, message_id)
                row.status, row.sent_at, row.delivered_to = "sent", now, target
                row.attempts += 1
                row.last_error = None

    def mark_delivery_failed(self, message_id: int, error: str) -> None:
        with self.session() as s:
            row = s.get_one(OutboxMessage, message_id)
            row.attempts += 1
            row.last_error = error

    # -- status ---------------------------------------------------------------

    def status_summary(self) -> dict[str, Any]:
        with self.session() as s:
            files = dict(
                s.execute(
                    select(SourceFileRow.status, func.count()).group_by(SourceFileRow.status)
                ).all()
            )
            outbox = dict(
                s.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                ).all()
            )
            oldest = s.scalar(
                select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "pending")
            )
            waiting = s.execute(
                select(SourceFileRow.name, SourceFileRow.error, SourceFileRow.received_at)
                .where(SourceFileRow.status == "waiting")
                .order_by(SourceFileRow.id)
            ).all()
            failed = s.execute(
                select(SourceFileRow.name, SourceFileRow.error)
                .where(SourceFileRow.status == "failed")
                .order_by(SourceFileRow.id.desc())
                .limit(10)
            ).all()
            runs = dict(
                s.execute(select(RunRow.status, func.count()).group_by(RunRow.status)).all()
            )
            results = s.scalar(select(func.count()).select_from(ResultRow)) or 0
            review_runs = s.scalar(
                select(func.count()).select_from(RunRow).where(RunRow.review_status == "waiting")
            )
            review_results = s.scalar(
                select(func.count()).select_from(ResultState).where(ResultState.state == "waiting")
            )
            last = s.scalar(select(func.max(SourceFileRow.processed_at)))
            states = {row.key: row.value for row in s.scalars(select(ServiceState)).all()}
            # One heartbeat row per daemon ("daemon:<host and inbox>"); "daemon" is the
            # most recent one, as before several daemons were told apart.
            daemons = sorted(
                (v for k, v in states.items() if k.startswith("daemon:")),
                key=lambda v: str(v.get("heartbeat") or ""),
                reverse=True,
            )
            if daemons:
                states["daemon"] = daemons[0]
            lookbacks = s.execute(
                select(RunRow.id, RunRow.assay_name, RunRow.lookback, RunRow.created_at)
                .where(RunRow.lookback.is_not(None))
                .order_by(RunRow.id.desc())
                .limit(10)
            ).all()
            return {
                "files": {str(k): int(v) for k, v in files.items()},
                "runs": {str(k): int(v) for k, v in runs.items()},
                "results": int(results),
                "review": {
                    "waiting_runs": int(review_runs or 0),
                    "waiting_results": int(review_results or 0),
                },
                "outbox": {str(k): int(v) for k, v in outbox.items()},
                "oldest_pending_message": oldest.isoformat() if oldest else None,
                "last_processed": last.isoformat() if last else None,
                "waiting": [
                    {"file": n, "reason": e, "since": t.isoformat()} for n, e, t in waiting
                ],
                "failed": [{"file": n, "error": e} for n, e in failed],
                "service": states,
                "daemons": daemons,
                "lookback": [
                    {"run_id": rid, "assay": assay, "at": at.isoformat(), "results": lb}
                    for rid, assay, lb, at in lookbacks
                ],
            }

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        """Insert or replace one service fact (one statement: daemons may race)."""
        from sqlalchemy.dialects import postgresql, sqlite

        now = utcnow()
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        upsert = dialect.insert(ServiceState).values(key=key, value=value, updated_at=now)
        with self.session() as s:
            s.execute(
                upsert.on_conflict_do_update(
                    index_elements=["key"], set_={"value": value, "updated_at": now}
                )
            )

    def drop_state(self, key: str) -> None:
        with self.session() as s:
            s.execute(delete(ServiceState).where(ServiceState.key == key))

    def verify_audit(self) -> audit.AuditReport:
        """Check the audit trail's hash chain from the first entry to the head."""
        with self.session() as s:
            return audit.verify(s)

    def export_audit(
        self, out: IO[str], *, start: datetime | None = None, end: datetime | None = None
    ) -> int:
        """Write the audit entries with ``start <= at < end`` as CSV; returns how many."""
        with self.session() as s:
            return audit.export_csv(s, out, start=start, end=end)

    def audit(
        self,
        actor: str,
        action: str,
        entity: str,
        entity_id: str | None,
        *,
        reason: str | None = None,
        previous: Any = None,
        **detail: Any,
    ) -> None:
        """Add one entry to the audit trail (in its own transaction)."""
        with self.session() as s:
            audit.record(s, actor, action, entity, entity_id, reason=reason, previous=previous,
                         **detail)  # fmt: skip


def _review_status(run: ProcessedRun) -> str:
    """A run's review status when stored: qc-rejected, waiting or auto-released."""
    if not run.accepted:
        return "qc-rejected"
    if any(r.review_state == "waiting" for r in run.samples):
        return "waiting"
    return "auto-released"


def _calibration_detail(run: ProcessedRun) -> dict[str, Any]:
    cal = run.calibration
    return {
        "model": cal.fit.model if cal.fit else None,
        "weighting": cal.fit.weighting if cal.fit else None,
        "parameters": dict(cal.fit.parameters) if cal.fit else {},
        "signal_unit": cal.signal_unit,
        "blank_wells": list(cal.blank_wells),
        "residuals": list(cal.fit.residuals) if cal.fit else [],
        "exclusions": list(cal.exclusions),
        "standard_wells": [
            {
                "well": w.well,
                "nominal_u_per_l": w.nominal_u_per_l,
                "signal": w.signal,
                "back_calculated_u_per_l": w.back_calculated_u_per_l,
                "recovery_percent": w.recovery_percent,
                "tolerance_percent": w.tolerance_percent,
                "passed": w.passed,
                "excluded": w.excluded,
                "reason": w.reason,
            }
            for w in cal.standard_wells
        ],
        "standards": [
            {
                "nominal_u_per_l": st.nominal_u_per_l,
                "wells": list(st.wells),
                "unreadable": list(st.unreadable),
                "back_calculated_u_per_l": st.back_calculated_u_per_l,
                "recovery_percent": st.recovery_percent,
                "tolerance_percent": st.tolerance_percent,
                "passed": st.passed,
            }
            for st in cal.standards
        ],
        "controls": [
            {
                "name": c.name,
                "lot": c.lot,
                "wells": list(c.wells),
                "well_values_u_per_l": list(c.well_values),
                "measured_u_per_l": c.measured_u_per_l,
                "low_u_per_l": c.low_u_per_l,
                "high_u_per_l": c.high_u_per_l,
                "passed": c.passed,
            }
            for c in cal.controls
        ],
        "westgard": {
            "findings": [str(f) for f in cal.westgard.findings],
            "z_scores": dict(cal.westgard.z_scores),
            "stats": {
                name: {"mean": st.mean, "sd": st.sd, "source": st.source}
                for name, st in cal.westgard.stats.items()
            },
            "notes": list(cal.westgard.notes),
        },
    }
