"""Review, release, rejection and correction in the store.

Every decision is one transaction whose first write is a conditional ``UPDATE``
(``... WHERE state = 'waiting'``): of two people acting on the same run or result
at the same moment, one changes it and the other finds nothing to change and gets
a :class:`~saa_lab.errors.ConflictError`, on SQLite and PostgreSQL alike. The
messages a decision sends are written in the same transaction (transactional
outbox), and every change is an audit entry with the previous value.

Messages are built by a callback from the domain (``build``) so that this module
stays the only one that knows the ORM and knows nothing about HL7.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import ConflictError, ReviewError
from ..orders import OrderContext
from ..records import OutgoingMessage
from . import audit
from .convert import to_order
from .models import (
    AuditEntry,
    CalibrationRow,
    OrderRow,
    OutboxMessage,
    ReassayRequest,
    ResultRow,
    ResultState,
    RunRow,
    SourceFileRow,
    utcnow,
)
from .repository import Store

__all__ = [
    "AuditLine",
    "Build",
    "Correction",
    "MessageView",
    "ResultView",
    "RunView",
    "add_correction",
    "audit_entries",
    "reject_result",
    "reject_run",
    "release_result",
    "release_run",
    "result_order",
    "result_view",
    "run_view",
    "versions",
    "waiting_runs",
]

# (report JSON, OBX-11 status) -> the message; None when the result has no report.
Build = Callable[[dict[str, Any], str], OutgoingMessage]


@dataclass(frozen=True)
class MessageView:
    id: int
    control_id: str
    destination: str
    status: str
    report_status: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class ResultView:
    """One version of one result, with where it stands in review and its messages."""

    id: int
    result_uid: str
    version: int
    run_id: int
    accession: str
    wells: tuple[str, ...]
    dilution: float
    activity_u_per_l: float | None
    comparator: str
    status: str
    flag: str
    comment: str
    recommendation: str | None
    rule_id: str
    protocol: str | None
    protocol_version: str | None
    result_status: str
    created_at: datetime
    created_by: str | None
    change_reason: str | None
    report: dict[str, Any] | None
    patient_id: str | None
    state: str
    auto_verified: bool
    ruleset: str | None
    hold_reasons: tuple[str, ...]
    decided_by: str | None
    meaning: str | None
    note: str | None
    decided_at: datetime | None
    preliminary_sent: bool
    messages: tuple[MessageView, ...] = ()


@dataclass(frozen=True)
class RunView:
    id: int
    source_name: str
    plate_index: int
    plate_id: str | None
    assay_name: str
    assay_version: str
    status: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    review_status: str
    review_rev: int
    reviewed_by: str | None
    review_meaning: str | None
    review_note: str | None
    reviewed_at: datetime | None
    created_at: datetime
    calibration: dict[str, Any]
    results: tuple[ResultView, ...] = field(default=())

    @property
    def waiting(self) -> tuple[ResultView, ...]:
        return tuple(r for r in self.results if r.state == "waiting")


@dataclass(frozen=True)
class AuditLine:
    seq: int
    at: datetime
    at_local: str | None
    actor: str
    action: str
    entity: str
    entity_id: str | None
    reason: str | None
    previous: Any
    detail: dict[str, Any]


@dataclass(frozen=True)
class Correction:
    """What a new version of a result says (computed by the domain)."""

    activity_u_per_l: float | None
    comparator: str
    status: str
    flag: str
    comment: str
    rule_id: str
    recommendation: str | None
    protocol: str | None
    protocol_version: str | None
    report: dict[str, Any]


# -- reading -------------------------------------------------------------------


def _messages(s: Session, ids: Sequence[int]) -> dict[int, list[MessageView]]:
    found: dict[int, list[MessageView]] = {}
    if not ids:
        return found
    for m in s.scalars(
        select(OutboxMessage).where(OutboxMessage.result_id.in_(ids)).order_by(OutboxMessage.id)
    ):
        found.setdefault(m.result_id, []).append(
            MessageView(
                m.id,
                m.control_id,
                m.destination,
                m.status,
                m.report_status,
                m.created_at,
                m.sent_at,
            )
        )
    return found


def _views(s: Session, where: Any) -> list[ResultView]:
    rows = s.execute(
        select(ResultRow, ResultState, OrderRow.patient_id)
        .outerjoin(ResultState, ResultState.result_id == ResultRow.id)
        .outerjoin(OrderRow, ResultRow.order_id == OrderRow.id)
        .where(where)
        .order_by(ResultRow.id)
    ).all()
    messages = _messages(s, [r.id for r, _st, _p in rows])
    views = []
    for r, st, patient in rows:
        views.append(
            ResultView(
                id=r.id,
                result_uid=r.result_uid,
                version=r.version,
                run_id=r.run_id,
                accession=r.accession,
                wells=tuple(r.wells.split(",")),
                dilution=r.dilution,
                activity_u_per_l=r.activity_u_per_l,
                comparator=r.comparator,
                status=r.status,
                flag=r.flag,
                comment=r.comment,
                recommendation=r.recommendation,
                rule_id=r.rule_id,
                protocol=r.protocol,
                protocol_version=r.protocol_version,
                result_status=r.result_status,
                created_at=r.created_at,
                created_by=r.created_by,
                change_reason=r.change_reason,
                report=r.report,
                patient_id=patient,
                state=st.state if st else "released",
                auto_verified=st.auto_verified if st else True,
                ruleset=st.ruleset if st else None,
                hold_reasons=tuple(st.hold_reasons or ()) if st else (),
                decided_by=st.decided_by if st else None,
                meaning=st.meaning if st else None,
                note=st.note if st else None,
                decided_at=st.decided_at if st else None,
                preliminary_sent=st.preliminary_sent if st else False,
                messages=tuple(messages.get(r.id, ())),
            )
        )
    return views


def _run_view(s: Session, run: RunRow) -> RunView:
    source = s.get_one(SourceFileRow, run.source_file_id)
    calibration = s.scalar(select(CalibrationRow).where(CalibrationRow.run_id == run.id))
    detail: dict[str, Any] = {}
    if calibration is not None:
        detail = {
            **calibration.detail,
            "model": calibration.model,
            "r_squared": calibration.r_squared,
            "lloq_u_per_l": calibration.lloq_u_per_l,
            "uloq_u_per_l": calibration.uloq_u_per_l,
        }
    return RunView(
        id=run.id,
        source_name=source.name,
        plate_index=run.plate_index,
        plate_id=run.plate_id,
        assay_name=run.assay_name,
        assay_version=run.assay_version,
        status=run.status,
        reasons=tuple(run.reasons or ()),
        warnings=tuple(run.warnings or ()),
        review_status=run.review_status or "auto-released",
        review_rev=run.review_rev,
        reviewed_by=run.reviewed_by,
        review_meaning=run.review_meaning,
        review_note=run.review_note,
        reviewed_at=run.reviewed_at,
        created_at=run.created_at,
        calibration=detail,
        results=tuple(_views(s, ResultRow.run_id == run.id)),
    )


def _get_run(s: Session, run_id: int) -> RunRow:
    run = s.get(RunRow, run_id)
    if run is None:
        raise ReviewError(f"there is no run {run_id} (see 'saa-lab review' for runs waiting)")
    return run


def run_view(store: Store, run_id: int) -> RunView:
    with store.session() as s:
        return _run_view(s, _get_run(s, run_id))


def waiting_runs(store: Store) -> list[RunView]:
    """Runs with results waiting for a person, oldest first."""
    with store.session() as s:
        runs = s.scalars(
            select(RunRow).where(RunRow.review_status == "waiting").order_by(RunRow.id)
        ).all()
        return [_run_view(s, run) for run in runs]


def _get_result(s: Session, result_id: int) -> ResultRow:
    row = s.get(ResultRow, result_id)
    if row is None:
        raise ReviewError(f"there is no result {result_id}")
    return row


def result_view(store: Store, result_id: int) -> ResultView:
    with store.session() as s:
        _get_result(s, result_id)
        return _views(s, ResultRow.id == result_id)[0]


def versions(store: Store, result_id: int) -> list[ResultView]:
    """Every version of the result ``result_id`` belongs to, oldest first."""
    with store.session() as s:
        row = _get_result(s, result_id)
        return _views(s, ResultRow.result_uid == row.result_uid)


def audit_entries(store: Store, entity: str, ids: Sequence[str | int]) -> list[AuditLine]:
    """The audit entries of some records (e.g. a run, or a result's versions), in order."""
    keys = [str(i) for i in ids]
    if not keys:
        return []
    with store.session() as s:
        rows = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id.in_(keys))
            .order_by(AuditEntry.seq)
        ).all()
        return [audit_line(r) for r in rows]


def audit_line(r: AuditEntry) -> AuditLine:
    """An audit row as the value review, history and reports show."""
    return AuditLine(r.seq, r.at, r.at_local, r.actor, r.action, r.entity, r.entity_id,
                     r.reason, r.previous, r.detail)  # fmt: skip


# -- deciding ------------------------------------------------------------------


def _changed(s: Session, statement: Any) -> int:
    """Run a conditional UPDATE; how many rows it changed."""
    result = cast("CursorResult[Any]", s.execute(statement))
    return int(result.rowcount)


def _who(run: RunRow) -> str:
    when = run.reviewed_at.isoformat(timespec="seconds") if run.reviewed_at else "?"
    return f"by {run.reviewed_by or 'auto-verification'} at {when}"


def _run_not_waiting(run: RunRow) -> ReviewError:
    status = run.review_status or "auto-released"
    if status == "qc-rejected":
        return ReviewError(
            f"run {run.id} failed QC ({'; '.join(run.reasons or ())}): its results are "
            "withheld and cannot be released; its samples are re-assayed"
        )
    if status == "auto-released":
        return ConflictError(f"run {run.id} was released by auto-verification; nothing waits")
    return ConflictError(f"run {run.id} was already {status} {_who(run)}; nothing was changed")


def _queue(s: Session, result_id: int, message: OutgoingMessage, status: str, actor: str) -> None:
    s.add(
        OutboxMessage(
            result_id=result_id,
            destination=message.destination,
            control_id=message.control_id,
            payload=message.payload,
            status="pending",
            report_status=status,
        )
    )
    audit.record(s, actor, "message-queued", "message", message.control_id,
                 destination=message.destination, result_id=result_id,
                 report_status=status)  # fmt: skip


def _decide_run(s: Session, run: RunRow, new_status: str, user: str, meaning: str | None,
                note: str | None, now: datetime, *, expected_rev: int | None) -> None:  # fmt: skip
    """Move a waiting run to ``new_status``; ConflictError if someone got there first."""
    rev = run.review_rev if expected_rev is None else expected_rev
    before = {"review_status": run.review_status, "review_rev": run.review_rev,
              "reviewed_by": run.reviewed_by}  # fmt: skip
    done = _changed(
        s,
        update(RunRow)
        .where(RunRow.id == run.id, RunRow.review_status == "waiting", RunRow.review_rev == rev)
        .values(
            review_status=new_status,
            review_rev=rev + 1,
            reviewed_by=user,
            review_meaning=meaning,
            review_note=note,
            reviewed_at=now,
        )
        .execution_options(synchronize_session=False),
    )
    if done != 1:
        s.refresh(run)
        if run.review_status == "waiting":
            raise ConflictError(
                f"run {run.id} changed since you looked at it (decision {run.review_rev}, "
                f"you saw {rev}): look again with 'saa-lab review {run.id}'"
            )
        raise _run_not_waiting(run)
    audit.record(s, user, f"run-{new_status}", "run", run.id, reason=note, previous=before,
                 meaning=meaning, review_rev=rev + 1)  # fmt: skip


def _lock_run(s: Session, run_id: int) -> RunRow:
    """The run row, locked for this transaction (PostgreSQL; SQLite has one writer).

    Every decision locks the run before any of its results, so a decision on one
    result and a decision on its whole run wait for each other instead of deadlocking.
    """
    return s.execute(
        select(RunRow).where(RunRow.id == run_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()  # fmt: skip


def _bump_run(s: Session, run_id: int, user: str, now: datetime, meaning: str) -> None:
    """After a decision on one result: the run is decided when nothing in it waits."""
    run = _lock_run(s, run_id)
    left = s.scalar(
        select(func.count())
        .select_from(ResultState)
        .where(ResultState.run_id == run_id, ResultState.state == "waiting")
    )
    values: dict[str, Any] = {"review_rev": run.review_rev + 1}
    if not left and run.review_status == "waiting":
        released = s.scalar(
            select(func.count())
            .select_from(ResultState)
            .where(ResultState.run_id == run_id, ResultState.state == "released")
        )
        values.update(review_status="released" if released else "rejected", reviewed_by=user,
                      reviewed_at=now, review_meaning=meaning,
                      review_note="the last waiting result was decided")  # fmt: skip
        audit.record(s, user, f"run-{values['review_status']}", "run", run_id,
                     previous={"review_status": "waiting", "review_rev": run.review_rev},
                     review_rev=run.review_rev + 1,
                     note="the last waiting result was decided")  # fmt: skip
    s.execute(
        update(RunRow)
        .where(RunRow.id == run_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _release_one(s: Session, state: ResultState, result: ResultRow, user: str,
                 meaning: str, note: str | None, now: datetime, build: Build) -> bool:  # fmt: skip
    """Release one waiting result: state, F (or X) message, audit. False if not waiting."""
    done = _changed(
        s,
        update(ResultState)
        .where(ResultState.id == state.id, ResultState.state == "waiting")
        .values(state="released", decided_by=user, meaning=meaning, note=note, decided_at=now)
        .execution_options(synchronize_session=False),
    )
    if done != 1:
        return False
    status = "X" if result.result_status == "X" else "F"
    control_ids = []
    if result.report is not None:
        message = build(result.report, status)
        _queue(s, result.id, message, status, user)
        control_ids.append(message.control_id)
    audit.record(s, user, "result-released", "result", result.id, reason=note,
                 previous={"state": "waiting"}, meaning=meaning, run_id=result.run_id,
                 accession=result.accession, report_status=status,
                 messages=control_ids)  # fmt: skip
    return True


def release_run(store: Store, run_id: int, *, user: str, meaning: str, note: str | None,
                build: Build, expected_rev: int | None = None) -> list[int]:  # fmt: skip
    """Release every waiting result of a run; returns the released result ids."""
    with store.session() as s:
        run = _get_run(s, run_id)
        if run.review_status != "waiting":
            raise _run_not_waiting(run)
        now = utcnow()
        _decide_run(s, run, "released", user, meaning, note, now, expected_rev=expected_rev)
        released = []
        for state, result in s.execute(
            select(ResultState, ResultRow)
            .join(ResultRow, ResultState.result_id == ResultRow.id)
            .where(ResultState.run_id == run_id, ResultState.state == "waiting")
            .order_by(ResultRow.id)
        ).all():
            if _release_one(s, state, result, user, meaning, note, now, build):
                released.append(result.id)
        return released


def _waiting_state(s: Session, result: ResultRow, verb: str) -> ResultState:
    state = s.scalar(select(ResultState).where(ResultState.result_id == result.id))
    if state is None or state.state != "waiting":
        current = state.state if state else "released"
        by = f" by {state.decided_by}" if state and state.decided_by else ""
        when = (f" at {state.decided_at.isoformat(timespec='seconds')}"
                if state and state.decided_at else "")  # fmt: skip
        text = f"result {result.id} ({result.accession}) is {current}{by}{when}"
        if current in ("released", "rejected", "replaced"):
            raise ConflictError(f"{text}; it cannot be {verb} again")
        raise ReviewError(f"{text}; only a result waiting for review can be {verb}")
    return state


def release_result(store: Store, result_id: int, *, user: str, meaning: str, note: str | None,
                   build: Build) -> list[int]:  # fmt: skip
    """Release one waiting result (the rest of its run keeps waiting)."""
    with store.session() as s:
        result = _get_result(s, result_id)
        _lock_run(s, result.run_id)
        state = _waiting_state(s, result, "released")
        now = utcnow()
        if not _release_one(s, state, result, user, meaning, note, now, build):
            raise ConflictError(f"result {result_id} was decided by someone else just now")
        _bump_run(s, result.run_id, user, now, meaning)
        return [result_id]


def _reject_one(s: Session, state: ResultState, result: ResultRow, assay: str, user: str,
                reason: str, now: datetime, withdraw: Build) -> bool:  # fmt: skip
    done = _changed(
        s,
        update(ResultState)
        .where(ResultState.id == state.id, ResultState.state == "waiting")
        .values(state="rejected", decided_by=user, meaning="rejected", note=reason, decided_at=now)
        .execution_options(synchronize_session=False),
    )
    if done != 1:
        return False
    control_ids = []
    if state.preliminary_sent and result.report is not None:
        # The clinic has the preliminary value: take it back (OBX-11 X, no value).
        message = withdraw(result.report, "X")
        _queue(s, result.id, message, "X", user)
        control_ids.append(message.control_id)
    open_request = s.scalar(
        select(ReassayRequest.id).where(
            ReassayRequest.accession == result.accession,
            ReassayRequest.assay_name == assay,
            ReassayRequest.status == "open",
        )
    )
    if open_request is None:
        s.add(ReassayRequest(accession=result.accession, assay_name=assay, result_id=result.id,
                             suggested_dilution=result.dilution, status="open"))  # fmt: skip
    audit.record(s, user, "result-rejected", "result", result.id, reason=reason,
                 previous={"state": "waiting"}, run_id=result.run_id,
                 accession=result.accession, withdrawn=control_ids,
                 reassay=open_request is None)  # fmt: skip
    return True


def reject_run(store: Store, run_id: int, *, user: str, reason: str, withdraw: Build,
               expected_rev: int | None = None) -> list[int]:  # fmt: skip
    """Reject a waiting run: its results never leave; its samples go on the re-assay list."""
    with store.session() as s:
        run = _get_run(s, run_id)
        if run.review_status != "waiting":
            raise _run_not_waiting(run)
        now = utcnow()
        _decide_run(s, run, "rejected", user, "rejected", reason, now, expected_rev=expected_rev)
        # Checked once the run is ours (a release committed meanwhile is a conflict above).
        released = s.scalars(
            select(ResultState.result_id).where(
                ResultState.run_id == run_id, ResultState.state == "released"
            )
        ).all()
        if released:
            ids = ", ".join(f"result:{i}" for i in released)
            raise ReviewError(
                f"run {run_id} has results that were already released ({ids}): they have "
                "left the lab; correct them with 'saa-lab correct', and reject the waiting "
                "ones one by one with 'saa-lab reject result:ID'"
            )
        rejected = []
        for state, result in s.execute(
            select(ResultState, ResultRow)
            .join(ResultRow, ResultState.result_id == ResultRow.id)
            .where(ResultState.run_id == run_id, ResultState.state == "waiting")
            .order_by(ResultRow.id)
        ).all():
            if _reject_one(s, state, result, run.assay_name, user, reason, now, withdraw):
                rejected.append(result.id)
        return rejected


def reject_result(store: Store, result_id: int, *, user: str, reason: str,
                  withdraw: Build) -> list[int]:  # fmt: skip
    with store.session() as s:
        result = _get_result(s, result_id)
        run = _lock_run(s, result.run_id)
        state = _waiting_state(s, result, "rejected")
        now = utcnow()
        if not _reject_one(s, state, result, run.assay_name, user, reason, now, withdraw):
            raise ConflictError(f"result {result_id} was decided by someone else just now")
        _bump_run(s, result.run_id, user, now, "rejected")
        return [result_id]


def add_correction(store: Store, result_id: int, *, user: str, reason: str,
                   correction: Correction, build: Build) -> int:  # fmt: skip
    """A new version of a released result, sent with OBX-11 C; returns its id.

    ``result_id`` must be the newest version: correcting an older one (someone
    corrected it meanwhile) is a ConflictError. The old version stays, marked
    ``replaced``.
    """
    with store.session() as s:
        base = _get_result(s, result_id)
        newest = s.scalar(
            select(ResultRow)
            .where(ResultRow.result_uid == base.result_uid)
            .order_by(ResultRow.version.desc())
            .limit(1)
        )
        assert newest is not None
        if newest.id != base.id:
            raise ConflictError(
                f"result {result_id} is version {base.version}; version {newest.version} "
                f"(result {newest.id}, by {newest.created_by}) replaced it: look at "
                f"'saa-lab history {newest.id}' and correct that one"
            )
        state = s.scalar(select(ResultState).where(ResultState.result_id == base.id))
        current = state.state if state else "released"
        if current == "replaced":  # corrected by someone else since the newest was read
            raise ConflictError(
                f"result {result_id} was corrected by someone else just now: look at "
                f"'saa-lab history {result_id}' and correct the newest version"
            )
        if current != "released":
            raise ReviewError(
                f"result {result_id} ({base.accession}) is {current}, not released: only a "
                "released result can be corrected (release or reject it instead)"
            )
        now = utcnow()
        if state is not None:
            done = _changed(
                s,
                update(ResultState)
                .where(ResultState.id == state.id, ResultState.state == "released")
                .values(state="replaced")
                .execution_options(synchronize_session=False),
            )
            if done != 1:
                raise ConflictError(f"result {result_id} was corrected by someone else just now")
        new = ResultRow(
            result_uid=base.result_uid,
            version=base.version + 1,
            run_id=base.run_id,
            order_id=base.order_id,
            accession=base.accession,
            wells=base.wells,
            dilution=base.dilution,
            activity_u_per_l=correction.activity_u_per_l,
            comparator=correction.comparator,
            mean_u_per_l=base.mean_u_per_l,
            cv_percent=base.cv_percent,
            status=correction.status,
            flag=correction.flag,
            comment=correction.comment,
            rule_id=correction.rule_id,
            result_status="C",
            bias_factor=base.bias_factor,
            reassay_dilution=base.reassay_dilution,
            protocol=correction.protocol,
            protocol_version=correction.protocol_version,
            recommendation=correction.recommendation,
            report=correction.report,
            created_by=user,
            change_reason=reason,
        )
        s.add(new)
        try:
            s.flush()
        except IntegrityError as exc:  # the same version written by someone else
            raise ConflictError(
                f"result {result_id} was corrected by someone else just now"
            ) from exc
        s.add(ResultState(result_id=new.id, run_id=base.run_id, state="released",
                          auto_verified=False, decided_by=user, meaning="corrected",
                          note=reason, decided_at=now, preliminary_sent=False))  # fmt: skip
        # A correction that still has no value is sent as "no result" (OBX-11 X).
        sent_as = "C" if correction.activity_u_per_l is not None else "X"
        message = build(correction.report, sent_as)
        _queue(s, new.id, message, sent_as, user)
        audit.record(s, user, "result-corrected", "result", new.id, reason=reason,
                     previous={"result_id": base.id, "version": base.version,
                               "activity_u_per_l": base.activity_u_per_l,
                               "comparator": base.comparator, "flag": base.flag,
                               "comment": base.comment},
                     result_uid=base.result_uid, version=new.version,
                     activity_u_per_l=new.activity_u_per_l, comparator=new.comparator,
                     flag=new.flag, messages=[message.control_id])  # fmt: skip
        audit.record(s, user, "result-replaced", "result", base.id, reason=reason,
                     previous={"state": "released"}, replaced_by=new.id)  # fmt: skip
        return new.id


def result_order(store: Store, result_id: int) -> OrderContext | None:
    """The stored order a result is linked to (for results stored without a report)."""
    with store.session() as s:
        row = s.scalar(
            select(OrderRow)
            .join(ResultRow, ResultRow.order_id == OrderRow.id)
            .where(ResultRow.id == result_id)
        )
        return to_order(row) if row is not None else None
