"""Orders and patient history in the store (HL7 orders, worklist orders, timelines)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..orders import OrderContext
from . import audit
from .convert import order_row, to_order
from .models import OrderRow, ResultRow, ResultState, RunRow
from .repository import Store

__all__ = [
    "TimelineEntry",
    "find_order",
    "patient_timeline",
    "reported_history",
    "save_order_message",
    "save_orders",
]


def save_orders(
    store: Store,
    orders: Sequence[OrderContext],
    *,
    status: str = "ok",
    problems: Sequence[str] = (),
    actor: str = "hl7-listener",
) -> list[int]:
    """Store received orders (one transaction) with an audit entry; returns their ids."""
    with store.session() as s:
        rows = [order_row(o, status=status, problems=problems) for o in orders]
        s.add_all(rows)
        s.flush()
        audit.record(s, actor, "orders-received", "order",
                     orders[0].message_control_id if orders else None,
                     orders=[r.id for r in rows], status=status,
                     problems=list(problems))  # fmt: skip
        return [r.id for r in rows]


def save_order_message(
    store: Store,
    items: Sequence[tuple[OrderContext, str, Sequence[str]]],
    *,
    actor: str = "hl7-listener",
) -> tuple[list[int], int]:
    """Store the orders of one HL7 message, each with its intake status and problems.

    One transaction. A resend of the same message (same MSH-10 and specimen, e.g.
    after a lost ACK) is recognised and not stored twice. Returns the new order ids
    and how many were resends.
    """
    with store.session() as s:
        rows = []
        resent = 0
        for order, status, problems in items:
            if order.message_control_id:
                seen = s.scalar(
                    select(OrderRow.id).where(
                        OrderRow.source == order.source,
                        OrderRow.message_control_id == order.message_control_id,
                        OrderRow.accession == order.accession,
                    )
                )
                if seen is not None:
                    resent += 1
                    continue
            rows.append(order_row(order, status=status, problems=problems))
        s.add_all(rows)
        s.flush()
        audit.record(s, actor, "orders-received", "order",
                     items[0][0].message_control_id if items else None,
                     orders=[r.id for r in rows], resent=resent,
                     statuses=[status for _, status, _ in items])  # fmt: skip
        return [r.id for r in rows], resent


def find_order(store: Store, accession: str) -> OrderContext | None:
    """The newest HL7 order for a specimen: by specimen id, else by placer order number.

    The specimen id wins; a placer number is used only when no order has that
    specimen id and exactly one specimen carries that placer number (an ambiguous
    placer number matches nothing, rather than another patient's order).
    """
    with store.session() as s:
        row = s.scalar(
            select(OrderRow)
            .where(OrderRow.source == "hl7", OrderRow.accession == accession)
            .order_by(OrderRow.id.desc())
            .limit(1)
        )
        if row is not None:
            return to_order(row)
        by_placer = s.scalars(
            select(OrderRow)
            .where(OrderRow.source == "hl7", OrderRow.placer_order_number == accession)
            .order_by(OrderRow.id.desc())
        ).all()
        if len({r.accession for r in by_placer}) != 1:
            return None
        return to_order(by_placer[0])


@dataclass(frozen=True)
class TimelineEntry:
    result_id: int
    run_id: int
    accession: str
    collection_time: datetime | None
    dose_time: datetime | None
    formulation: str | None
    protocol: str | None
    activity_u_per_l: float | None
    comparator: str
    flag: str
    result_status: str
    reported_at: datetime
    # review state: waiting | released | rejected | withheld | reassay
    state: str = "released"


def patient_timeline(store: Store, patient_id: str, *, before_result_id: int | None = None
                     ) -> list[TimelineEntry]:  # fmt: skip
    """Every result of a patient (newest version per result), oldest sample first."""
    with store.session() as s:
        query = (
            select(ResultRow, OrderRow, RunRow.created_at, ResultState.state)
            .join(OrderRow, ResultRow.order_id == OrderRow.id)
            .outerjoin(ResultState, ResultState.result_id == ResultRow.id)
            .join(RunRow, ResultRow.run_id == RunRow.id)
            .where(OrderRow.patient_id == patient_id)
            .order_by(ResultRow.id)
        )
        if before_result_id is not None:
            query = query.where(ResultRow.id < before_result_id)
        latest: dict[str, TimelineEntry] = {}
        for result, order, created, state in s.execute(query):
            latest[result.result_uid] = TimelineEntry(
                result_id=result.id,
                run_id=result.run_id,
                accession=result.accession,
                collection_time=order.collection_time,
                dose_time=order.dose_time,
                formulation=order.formulation,
                protocol=order.protocol,
                activity_u_per_l=result.activity_u_per_l,
                comparator=result.comparator,
                flag=result.flag,
                result_status=result.result_status,
                reported_at=created,
                state=state or "released",
            )
    entries = list(latest.values())
    far = datetime.max.replace(tzinfo=entries[0].reported_at.tzinfo) if entries else None
    return sorted(entries, key=lambda e: (e.collection_time or far or e.reported_at, e.result_id))


def reported_history(store: Store, patient_id: str, *, before_result_id: int | None = None
                     ) -> list[TimelineEntry]:  # fmt: skip
    """The patient's results that count as history: reported ones, not withheld by QC,
    waiting for a re-assay or rejected at review."""
    return [
        e
        for e in patient_timeline(store, patient_id, before_result_id=before_result_id)
        if e.result_status not in ("W", "RA") and e.state not in ("rejected", "withheld")
    ]
