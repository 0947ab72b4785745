"""Read-only queries for the run report (:mod:`saa_lab.report`).

Everything here reads; nothing writes (no audit entry either: looking at a run is
not a change to it). Rows leave as frozen values, never as ORM objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select

from .models import (
    AuditEntry,
    CalibrationRow,
    ControlResultRow,
    OutboxMessage,
    ResultRow,
    ResultState,
    RunRow,
    SourceFileRow,
    WellRow,
)
from .repository import Store
from .review import AuditLine, audit_line

__all__ = [
    "ControlPoint",
    "ResultExtras",
    "RunFacts",
    "WellLine",
    "archived_runs",
    "control_series",
    "result_extras",
    "run_audit",
    "run_facts",
    "run_wells",
]


@dataclass(frozen=True)
class RunFacts:
    """What the report needs about a run besides its review view."""

    id: int
    source_name: str
    source_sha256: str
    source_format: str | None
    archive_path: str | None
    received_at: datetime
    processed_at: datetime | None
    layout_name: str
    layout_version: str
    worklist_name: str | None
    wavelength_nm: float | None
    read_label: str | None
    blank_mean: float | None


@dataclass(frozen=True)
class WellLine:
    well: str
    role: str
    value: float | None
    raw: str
    reason: str | None
    accession: str | None
    dilution: float
    nominal_u_per_l: float | None
    control: str | None


@dataclass(frozen=True)
class ControlPoint:
    """One control level in one run: a point of its Levey-Jennings chart."""

    run_id: int
    control: str
    lot: str
    measured_u_per_l: float | None
    low_u_per_l: float
    high_u_per_l: float
    passed: bool
    z_score: float | None
    run_status: str
    created_at: datetime
    # The run's Westgard findings as stored ("Westgard 2-2s (rejection): ...").
    findings: tuple[str, ...]


def run_facts(store: Store, run_id: int) -> RunFacts | None:
    """The run's file, layout and blank; None when there is no such run."""
    with store.session() as s:
        run = s.get(RunRow, run_id)
        if run is None:
            return None
        source = s.get_one(SourceFileRow, run.source_file_id)
        blank = s.scalar(select(CalibrationRow.blank_mean).where(CalibrationRow.run_id == run_id))
        return RunFacts(
            id=run.id,
            source_name=source.name,
            source_sha256=source.sha256,
            source_format=source.format,
            archive_path=source.archive_path,
            received_at=source.received_at,
            processed_at=source.processed_at,
            layout_name=run.layout_name,
            layout_version=run.layout_version,
            worklist_name=run.worklist_name,
            wavelength_nm=run.wavelength_nm,
            read_label=run.read_label,
            blank_mean=blank,
        )


def run_wells(store: Store, run_id: int) -> list[WellLine]:
    """Every mapped well of the run, in stored order."""
    with store.session() as s:
        rows = s.scalars(select(WellRow).where(WellRow.run_id == run_id).order_by(WellRow.id))
        return [
            WellLine(
                r.well,
                r.role,
                r.value,
                r.raw,
                r.reason,
                r.accession,
                r.dilution,
                r.nominal_u_per_l,
                r.control,
            )
            for r in rows
        ]


@dataclass(frozen=True)
class ResultExtras:
    """What a result row keeps that the review view does not show."""

    bias_factor: float | None
    cv_percent: float | None
    status: str


def result_extras(store: Store, run_id: int) -> dict[int, ResultExtras]:
    """Per result id of the run (every version): bias factor, replicate CV, status."""
    with store.session() as s:
        rows = s.execute(
            select(
                ResultRow.id, ResultRow.bias_factor, ResultRow.cv_percent, ResultRow.status
            ).where(ResultRow.run_id == run_id)
        ).all()
        return {rid: ResultExtras(bias, cv, status) for rid, bias, cv, status in rows}


def _findings(detail: dict[str, Any] | None) -> tuple[str, ...]:
    westgard = (detail or {}).get("westgard") or {}
    return tuple(str(f) for f in westgard.get("findings") or ())


def control_series(store: Store, run_id: int, *, limit: int = 30) -> dict[str, list[ControlPoint]]:
    """Per control level of the run: its values in the last ``limit`` runs of the same
    assay and lot up to this run (accepted and rejected), oldest first."""
    series: dict[str, list[ControlPoint]] = {}
    with store.session() as s:
        run = s.get(RunRow, run_id)
        if run is None:
            return series
        mine = s.scalars(
            select(ControlResultRow)
            .where(ControlResultRow.run_id == run_id)
            .order_by(ControlResultRow.id)
        ).all()
        for own in mine:
            rows = s.execute(
                select(ControlResultRow, CalibrationRow.detail)
                .outerjoin(CalibrationRow, CalibrationRow.run_id == ControlResultRow.run_id)
                .where(
                    ControlResultRow.assay_name == own.assay_name,
                    ControlResultRow.control == own.control,
                    ControlResultRow.lot == own.lot,
                    # Rows are written with their run: ids follow the runs (and the
                    # history index ends in the id).
                    ControlResultRow.id <= own.id,
                )
                .order_by(ControlResultRow.id.desc())
                .limit(limit)
            ).all()
            series[own.control] = [
                ControlPoint(
                    run_id=c.run_id,
                    control=c.control,
                    lot=c.lot,
                    measured_u_per_l=c.measured_u_per_l,
                    low_u_per_l=c.low_u_per_l,
                    high_u_per_l=c.high_u_per_l,
                    passed=c.passed,
                    z_score=c.z_score,
                    run_status=c.run_status,
                    created_at=c.created_at,
                    findings=_findings(detail),
                )
                for c, detail in reversed(rows)
            ]
    return series


def run_audit(store: Store, run_id: int) -> list[AuditLine]:
    """The audit entries of the run, its results (every version), their messages and the
    export file the run came from, in the order they were written."""
    with store.session() as s:
        run = s.get(RunRow, run_id)
        if run is None:
            return []
        sha = s.scalar(select(SourceFileRow.sha256).where(SourceFileRow.id == run.source_file_id))
        result_ids = [
            str(i) for i in s.scalars(select(ResultRow.id).where(ResultRow.run_id == run_id))
        ]
        controls: Sequence[str] = []
        if result_ids:
            controls = s.scalars(
                select(OutboxMessage.control_id).where(
                    OutboxMessage.result_id.in_([int(i) for i in result_ids])
                )
            ).all()
        clauses = [(AuditEntry.entity == "run") & (AuditEntry.entity_id == str(run_id))]
        if result_ids:
            clauses.append((AuditEntry.entity == "result") & AuditEntry.entity_id.in_(result_ids))
        if controls:
            clauses.append((AuditEntry.entity == "message") & AuditEntry.entity_id.in_(controls))
        if sha:
            clauses.append(
                (AuditEntry.entity == "source_file") & (AuditEntry.entity_id == sha[:16])
            )
        return [
            audit_line(r)
            for r in s.scalars(select(AuditEntry).where(or_(*clauses)).order_by(AuditEntry.seq))
        ]


def archived_runs(store: Store, limit: int) -> list[tuple[int, str, datetime | None]]:
    """``(run id, archive path of its export, time of its latest review decision)`` of
    the latest ``limit`` archived runs (the decision: the run's or one of its results')."""
    with store.session() as s:
        rows = s.execute(
            select(RunRow.id, SourceFileRow.archive_path, RunRow.reviewed_at)
            .join(SourceFileRow, RunRow.source_file_id == SourceFileRow.id)
            .where(SourceFileRow.archive_path.is_not(None))
            .order_by(RunRow.id.desc())
            .limit(limit)
        ).all()
        ids = [int(r[0]) for r in rows]
        decided = (
            dict(
                s.execute(
                    select(ResultState.run_id, func.max(ResultState.decided_at))
                    .where(ResultState.run_id.in_(ids))
                    .group_by(ResultState.run_id)
                ).all()
            )
            if ids
            else {}
        )
        found = []
        for run_id, path, reviewed in rows:
            times = [t for t in (reviewed, decided.get(run_id)) if t is not None]
            found.append((int(run_id), str(path), max(times) if times else None))
        return found
