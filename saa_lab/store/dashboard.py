"""Read-only queries for the dashboard (``saa-lab serve``): recent runs and failed files.

Review, outbox and patient queries are shared with the CLI (:mod:`.review`,
:mod:`.queue`, :mod:`.order_queries`); only what no command needed lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from .models import ResultRow, ResultState, RunRow, SourceFileRow
from .repository import Store

__all__ = ["FailedFile", "RunLine", "failed_files", "recent_runs"]


@dataclass(frozen=True)
class RunLine:
    id: int
    source_name: str
    plate_index: int
    plate_id: str | None
    assay_name: str
    status: str  # run QC: accepted | rejected
    review_status: str | None
    created_at: datetime
    results: int
    waiting: int


@dataclass(frozen=True)
class FailedFile:
    name: str
    error: str | None
    received_at: datetime


def recent_runs(store: Store, *, limit: int = 50) -> list[RunLine]:
    """The ``limit`` most recent runs, newest first, with their result counts (every
    version of a result counts) and how many of them wait for a person."""
    counts = (
        select(
            ResultRow.run_id.label("run_id"),
            func.count(ResultRow.id).label("results"),
            func.sum(case((ResultState.state == "waiting", 1), else_=0)).label("waiting"),
        )
        .outerjoin(ResultState, ResultState.result_id == ResultRow.id)
        .group_by(ResultRow.run_id)
        .subquery()
    )
    query = (
        select(RunRow, SourceFileRow.name, counts.c.results, counts.c.waiting)
        .join(SourceFileRow, RunRow.source_file_id == SourceFileRow.id)
        .outerjoin(counts, counts.c.run_id == RunRow.id)
        .order_by(RunRow.id.desc())
        .limit(limit)
    )
    with store.session() as s:
        return [
            RunLine(run.id, name, run.plate_index, run.plate_id, run.assay_name, run.status,
                    run.review_status, run.created_at, int(results or 0),
                    int(waiting or 0))
            for run, name, results, waiting in s.execute(query)
        ]  # fmt: skip


def failed_files(store: Store, *, limit: int = 100) -> list[FailedFile]:
    """Files the daemon could not use (quarantined), newest first, with the reason."""
    with store.session() as s:
        rows = s.execute(
            select(SourceFileRow.name, SourceFileRow.error, SourceFileRow.received_at)
            .where(SourceFileRow.status == "failed")
            .order_by(SourceFileRow.id.desc())
            .limit(limit)
        ).all()
        return [FailedFile(name, error, received) for name, error, received in rows]
