"""SQLAlchemy 2.0 models: the only module (with its package) that knows the ORM.

Results are never updated in place: a correction is a new row with a higher
``version`` and the same ``result_uid``. The audit log is append-only. Outbox
rows are written in the same transaction as the results they carry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "SCHEMA_VERSION",
    "AuditEntry",
    "AuditHead",
    "Base",
    "CalibrationRow",
    "ControlResultRow",
    "Lease",
    "OrderRow",
    "OutboxMessage",
    "ReassayRequest",
    "ResultRow",
    "ResultState",
    "RunRow",
    "ServiceState",
    "SourceFileRow",
    "WellRow",
    "utcnow",
]

SCHEMA_VERSION = "0010"

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to the store; saa-lab stores aware times only"
            raise ValueError(msg)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class SourceFileRow(Base):
    """One dropped export, identified by its content hash."""

    __tablename__ = "source_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(512), index=True)
    original_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    format: Mapped[str | None] = mapped_column(String(64))
    # waiting (for a worklist) | done | failed
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    worklist_name: Mapped[str | None] = mapped_column(String(512))
    archive_path: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class RunRow(Base):
    """One plate read of one export, calibrated and QC-judged."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_file_id: Mapped[int] = mapped_column(ForeignKey("source_files.id"), index=True)
    plate_index: Mapped[int] = mapped_column(Integer)
    plate_id: Mapped[str | None] = mapped_column(String(128), index=True)
    format: Mapped[str] = mapped_column(String(64))
    read_label: Mapped[str | None] = mapped_column(String(128))
    wavelength_nm: Mapped[float | None] = mapped_column(Float)
    assay_name: Mapped[str] = mapped_column(String(64))
    assay_version: Mapped[str] = mapped_column(String(64))
    layout_name: Mapped[str] = mapped_column(String(64))
    layout_version: Mapped[str] = mapped_column(String(64))
    worklist_name: Mapped[str | None] = mapped_column(String(512))
    worklist_sha256: Mapped[str | None] = mapped_column(String(64))
    worklist_text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # accepted | rejected
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # QC warnings (e.g. Westgard 1-2s) of an accepted run.
    warnings: Mapped[list[str] | None] = mapped_column(JSON)
    # A run rejected for its controls: results released since the last clean run
    # of the assay, to be evaluated (CLIA 493.1282).
    lookback: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Review: waiting (for a person) | released | auto-released | rejected (by a
    # person) | qc-rejected (by the run's QC: nothing to release). ``review_rev``
    # counts decisions; an action that saw an older one is a conflict.
    review_status: Mapped[str | None] = mapped_column(String(16), index=True)
    review_rev: Mapped[int] = mapped_column(Integer, default=0)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    review_meaning: Mapped[str | None] = mapped_column(String(16))
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None]


class WellRow(Base):
    __tablename__ = "wells"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    well: Mapped[str] = mapped_column(String(4))
    role: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(32))
    accession: Mapped[str | None] = mapped_column(String(64))
    dilution: Mapped[float] = mapped_column(Float, default=1.0)
    nominal_u_per_l: Mapped[float | None] = mapped_column(Float)
    control: Mapped[str | None] = mapped_column(String(64))


class CalibrationRow(Base):
    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), unique=True)
    model: Mapped[str | None] = mapped_column(String(32))
    intercept: Mapped[float | None] = mapped_column(Float)
    slope: Mapped[float | None] = mapped_column(Float)
    r_squared: Mapped[float | None] = mapped_column(Float)
    blank_mean: Mapped[float | None] = mapped_column(Float)
    lloq_u_per_l: Mapped[float] = mapped_column(Float)
    uloq_u_per_l: Mapped[float] = mapped_column(Float)
    # standards (back-calculated %), controls, residuals
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class OrderRow(Base):
    """What the clinic told us about a specimen (worklist columns for now; HL7 later)."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    accession: Mapped[str] = mapped_column(String(64), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    formulation: Mapped[str | None] = mapped_column(String(32))
    dose_time: Mapped[datetime | None]
    collection_time: Mapped[datetime | None]
    protocol: Mapped[str | None] = mapped_column(String(64))
    clinic: Mapped[str | None] = mapped_column(String(64))
    placer_order_number: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    patient_family_name: Mapped[str | None] = mapped_column(String(128))
    patient_given_name: Mapped[str | None] = mapped_column(String(128))
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(8))
    ordering_provider: Mapped[str | None] = mapped_column(String(256))
    dose_iu_per_m2: Mapped[float | None] = mapped_column(Float)
    route: Mapped[str | None] = mapped_column(String(16))
    reaction: Mapped[bool | None]
    reaction_time: Mapped[datetime | None]
    reaction_grade: Mapped[int | None] = mapped_column(Integer)
    message_control_id: Mapped[str | None] = mapped_column(String(64))
    # ok | ae (stored with problems the ACK named)
    intake_status: Mapped[str | None] = mapped_column(String(8))
    problems: Mapped[list[str] | None] = mapped_column(JSON)


class ResultRow(Base):
    """One version of one sample's result. Never updated: corrections add a version."""

    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("result_uid", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_uid: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, default=1)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    accession: Mapped[str] = mapped_column(String(64), index=True)
    wells: Mapped[str] = mapped_column(String(256))
    dilution: Mapped[float] = mapped_column(Float)
    activity_u_per_l: Mapped[float | None] = mapped_column(Float)
    comparator: Mapped[str] = mapped_column(String(2))
    mean_u_per_l: Mapped[float | None] = mapped_column(Float)
    cv_percent: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # quantified | below-lloq | ...
    flag: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str] = mapped_column(String(64))
    # F (final) | P (preliminary) | C (corrected) | X (no result) | W (withheld: run
    # rejected) | RA (above the ULOQ: waits for its re-assay, not reported)
    result_status: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The result of an earlier run this re-assay replaces (that one was never reported).
    supersedes_result_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # MAAT PEG bias: the factor the measured activity was divided by.
    bias_factor: Mapped[float | None] = mapped_column(Float)
    reassay_dilution: Mapped[float | None] = mapped_column(Float)
    # The protocol rule set (name and file hash) the interpretation used.
    protocol: Mapped[str | None] = mapped_column(String(64))
    protocol_version: Mapped[str | None] = mapped_column(String(64))
    recommendation: Mapped[str | None] = mapped_column(Text)
    # What the report says besides the value (order, threshold, band, OBX-8 flag,
    # lab comments), so a release or a correction builds its message later.
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Who made this version (the daemon, or the person who corrected it) and why.
    created_by: Mapped[str | None] = mapped_column(String(64))
    change_reason: Mapped[str | None] = mapped_column(Text)


class ResultState(Base):
    """Where one result version stands in review: the only mutable part of a result.

    ``state``: waiting (for a person) | released | rejected | withheld (its run failed
    QC) | reassay (above the ULOQ, waits for its re-assay) | replaced (a newer version
    exists). Every change is also an audit entry with the previous state.
    """

    __tablename__ = "result_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"), unique=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    auto_verified: Mapped[bool] = mapped_column(default=False)
    # name@version of the auto-verification rule set that released it, or that held it
    ruleset: Mapped[str | None] = mapped_column(String(128))
    hold_reasons: Mapped[list[str] | None] = mapped_column(JSON)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    meaning: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    preliminary_sent: Mapped[bool] = mapped_column(default=False)


class ControlResultRow(Base):
    """One control level in one run: the Westgard history of its lot."""

    __tablename__ = "control_results"
    __table_args__ = (Index("ix_control_results_history", "assay_name", "control", "lot", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    assay_name: Mapped[str] = mapped_column(String(64))
    control: Mapped[str] = mapped_column(String(64))
    lot: Mapped[str] = mapped_column(String(64))
    measured_u_per_l: Mapped[float | None] = mapped_column(Float)
    low_u_per_l: Mapped[float] = mapped_column(Float)
    high_u_per_l: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(default=False)
    z_score: Mapped[float | None] = mapped_column(Float)
    run_status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReassayRequest(Base):
    """A sample above the ULOQ waiting to be re-assayed at a higher dilution."""

    __tablename__ = "reassay_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    accession: Mapped[str] = mapped_column(String(64), index=True)
    assay_name: Mapped[str] = mapped_column(String(64))
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"))
    suggested_dilution: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | done
    done_result_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """An HL7 message waiting for, or done with, delivery (transactional outbox)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_destination_status_id", "destination", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("results.id"), index=True)
    destination: Mapped[str] = mapped_column(String(64))
    control_id: Mapped[str] = mapped_column(String(20), unique=True)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | sent | dead
    # OBX-11 of the message: F, P (preliminary), C (corrected), X (no result / withdrawn)
    report_status: Mapped[str | None] = mapped_column(String(2))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_to: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # Delivery state for retries: when the first attempt was made (the retry budget
    # runs from it), when the next may be, and what the receiver last answered.
    first_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    last_ack_code: Mapped[str | None] = mapped_column(String(4))


class AuditEntry(Base):
    """Append-only, hash-chained: who did what to which record, when, why, and what was
    there before. Written only by :func:`saa_lab.store.audit.seal`."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    at_local: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    previous: Mapped[Any] = mapped_column(JSON, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: how many audit entries there are and the hash of the last one."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class ServiceState(Base):
    """Small key/value facts the daemon publishes for ``saa-lab status``."""

    __tablename__ = "service_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """A claim by one daemon (a file being processed, a destination being sent to).

    ``expires`` is in seconds since the epoch by the database's clock, so hosts
    whose clocks differ agree on when a lease has run out.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(1100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), index=True)
    expires: Mapped[float] = mapped_column(Float)
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
