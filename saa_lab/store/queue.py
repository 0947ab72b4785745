"""The delivery queue: one persistent, ordered queue of outgoing messages per destination.

A message is ``pending`` until delivered (``sent``) or given up (``dead``). Within
a destination messages go out in the order they were stored; a message waiting
for a retry holds back the ones behind it (order is kept), a dead one does not.
A restart resumes exactly where delivery stopped: the state is only here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select

from ..errors import SaaLabError
from . import audit
from .models import OutboxMessage, ResultRow, ResultState, utcnow
from .repository import Store

__all__ = [
    "QueuedMessage",
    "next_message",
    "next_messages",
    "outbox_listing",
    "pending_batch",
    "queue_stats",
    "record_batch_sent",
    "record_delivery",
    "requeue",
    "resend_result",
]


@dataclass(frozen=True)
class QueuedMessage:
    id: int
    destination: str
    control_id: str
    payload: str
    attempts: int
    created_at: datetime
    first_attempt_at: datetime | None
    next_attempt_at: datetime | None
    run_id: int


def _queued(row: OutboxMessage, run_id: int) -> QueuedMessage:
    return QueuedMessage(row.id, row.destination, row.control_id, row.payload, row.attempts,
                         row.created_at, row.first_attempt_at, row.next_attempt_at,
                         run_id)  # fmt: skip


def next_message(store: Store, destination: str) -> QueuedMessage | None:
    """The oldest pending message of a destination (it may be waiting for a retry)."""
    found = next_messages(store, destination, 1)
    return found[0] if found else None


def next_messages(store: Store, destination: str, limit: int) -> list[QueuedMessage]:
    """The ``limit`` oldest pending messages of a destination, in order."""
    with store.session() as s:
        rows = s.execute(
            select(OutboxMessage, ResultRow.run_id)
            .join(ResultRow, OutboxMessage.result_id == ResultRow.id)
            .where(OutboxMessage.destination == destination, OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
            .limit(limit)
        ).all()
        return [_queued(m, r) for m, r in rows]


def pending_batch(store: Store, destination: str, run_id: int) -> list[QueuedMessage]:
    """The pending messages of one run for a destination, in order (for batch files)."""
    with store.session() as s:
        rows = s.execute(
            select(OutboxMessage, ResultRow.run_id)
            .join(ResultRow, OutboxMessage.result_id == ResultRow.id)
            .where(
                OutboxMessage.destination == destination,
                OutboxMessage.status == "pending",
                ResultRow.run_id == run_id,
            )
            .order_by(OutboxMessage.id)
        ).all()
        return [_queued(m, r) for m, r in rows]


def record_delivery(
    store: Store,
    message_id: int,
    outcome: Literal["sent", "retry", "dead"],
    *,
    where: str | None = None,
    ack_code: str | None = None,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
    now: datetime | None = None,
) -> None:
    """Record one attempt: delivered, to be retried at ``next_attempt_at``, or dead.

    ``now`` (default: the clock) is when the attempt was made; the first one
    starts the retry budget.
    """
    with store.session() as s:
        row = s.get_one(OutboxMessage, message_id)
        now = now or utcnow()
        before = {"status": row.status, "attempts": row.attempts}
        row.attempts += 1
        row.first_attempt_at = row.first_attempt_at or now
        row.last_ack_code = ack_code
        row.last_error = error
        if outcome == "sent":
            row.status, row.sent_at, row.delivered_to, row.next_attempt_at = (
                "sent",
                now,
                where,
                None,
            )
            audit.record(s, "delivery", "message-sent", "message", row.control_id,
                         previous=before, destination=row.destination, ack=ack_code,
                         delivered_to=where, result_id=row.result_id,
                         attempts=row.attempts)  # fmt: skip
        elif outcome == "retry":
            row.next_attempt_at = next_attempt_at
            audit.record(s, "delivery", "message-attempt-failed", "message", row.control_id,
                         reason=error, previous=before, destination=row.destination,
                         ack=ack_code, attempts=row.attempts, result_id=row.result_id,
                         next_attempt_at=next_attempt_at.isoformat() if next_attempt_at
                         else None)  # fmt: skip
        else:
            row.status, row.next_attempt_at = "dead", None
            audit.record(s, "delivery", "message-dead-lettered", "message", row.control_id,
                         reason=error, previous=before, destination=row.destination,
                         ack=ack_code, result_id=row.result_id,
                         attempts=row.attempts)  # fmt: skip


def record_batch_sent(store: Store, message_ids: list[int], *, where: str,
                      now: datetime | None = None) -> None:  # fmt: skip
    """Record messages delivered together (one batch file) in one transaction."""
    with store.session() as s:
        now = now or utcnow()
        for message_id in message_ids:
            row = s.get_one(OutboxMessage, message_id)
            before = {"status": row.status, "attempts": row.attempts}
            row.attempts += 1
            audit.record(s, "delivery", "message-sent", "message", row.control_id,
                         previous=before, destination=row.destination, delivered_to=where,
                         result_id=row.result_id, batch=True,
                         attempts=row.attempts)  # fmt: skip
            row.first_attempt_at = row.first_attempt_at or now
            row.last_ack_code, row.last_error = None, None
            row.status, row.sent_at, row.delivered_to, row.next_attempt_at = (
                "sent",
                now,
                where,
                None,
            )


def requeue(store: Store, *, message_ids: list[int] | None = None, dead: bool = False,
            actor: str = "cli") -> int:  # fmt: skip
    """Put dead messages (or the given ones) back in the queue, keeping their MSH-10."""
    with store.session() as s:
        query = select(OutboxMessage)
        if message_ids is not None:
            query = query.where(OutboxMessage.id.in_(message_ids))
        if dead or message_ids is None:
            query = query.where(OutboxMessage.status == "dead")
        rows = s.scalars(query).all()
        for row in rows:
            audit.record(s, actor, "message-requeued", "message", row.control_id,
                         previous={"status": row.status, "attempts": row.attempts,
                                   "last_error": row.last_error},
                         destination=row.destination, outbox_id=row.id,
                         result_id=row.result_id)  # fmt: skip
            row.status, row.next_attempt_at, row.first_attempt_at = "pending", None, None
            row.attempts = 0
        return len(rows)


def resend_result(store: Store, result_id: int, *, actor: str = "cli") -> list[str]:
    """Re-issue a result's messages with new MSH-10s and the same content."""
    with store.session() as s:
        state = s.scalar(select(ResultState.state).where(ResultState.result_id == result_id))
        hints = {
            "replaced": f"a newer version replaced it; resend that one (saa-lab history "
            f"{result_id})",
            "waiting": "it waits for review (saa-lab review)",
            "rejected": "it was rejected at review and never released",
        }
        if state in hints:
            raise SaaLabError(f"result {result_id} is {state}: {hints[state]}")
        originals = s.scalars(
            select(OutboxMessage).where(OutboxMessage.result_id == result_id)
            .order_by(OutboxMessage.id)
        ).all()  # fmt: skip
        waiting = [m for m in originals if m.status == "pending"]
        if waiting:
            # Both would go out, under two MSH-10s the receiver cannot match.
            ids = ", ".join(str(m.id) for m in waiting)
            msg = (
                f"result {result_id} still has a message waiting to be delivered (outbox "
                f"{ids}); wait for it, or requeue a dead one with 'saa-lab outbox retry'"
            )
            raise SaaLabError(msg)
        latest: dict[str, OutboxMessage] = {m.destination: m for m in originals}
        new_ids = []
        for original in latest.values():
            control_id = uuid.uuid4().hex[:20].upper()
            header, rest = original.payload.split("\r", 1)
            fields = header.split("|")
            fields[9] = control_id  # MSH-10 (MSH-1 is the separator itself)
            s.add(
                OutboxMessage(
                    result_id=result_id,
                    destination=original.destination,
                    control_id=control_id,
                    payload="|".join(fields) + "\r" + rest,
                    status="pending",
                    report_status=original.report_status,
                )
            )
            new_ids.append(control_id)
            audit.record(s, actor, "message-queued", "message", control_id,
                         destination=original.destination, result_id=result_id,
                         resend_of=original.control_id)  # fmt: skip
        audit.record(s, actor, "result-resent", "result", result_id,
                     control_ids=new_ids)  # fmt: skip
        return new_ids


def outbox_listing(store: Store, *, status: str | None = None, destination: str | None = None,
                   limit: int = 200) -> list[dict[str, Any]]:  # fmt: skip
    with store.session() as s:
        query = (
            select(OutboxMessage, ResultRow.accession)
            .join(ResultRow, OutboxMessage.result_id == ResultRow.id)
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
        if status:
            query = query.where(OutboxMessage.status == status)
        if destination:
            query = query.where(OutboxMessage.destination == destination)
        return [
            {"id": m.id, "destination": m.destination, "status": m.status,
             "control_id": m.control_id, "accession": accession, "result_id": m.result_id,
             "attempts": m.attempts, "last_ack": m.last_ack_code, "last_error": m.last_error,
             "created_at": m.created_at.isoformat(),
             "next_attempt_at": m.next_attempt_at.isoformat() if m.next_attempt_at else None,
             "sent_at": m.sent_at.isoformat() if m.sent_at else None,
             "delivered_to": m.delivered_to}
            for m, accession in s.execute(query)
        ]  # fmt: skip


def queue_stats(store: Store) -> dict[str, dict[str, Any]]:
    """Per destination: messages by state, and the age of the oldest unsent one."""
    with store.session() as s:
        stats: dict[str, dict[str, Any]] = {}
        for destination, status, count in s.execute(
            select(OutboxMessage.destination, OutboxMessage.status, func.count()).group_by(
                OutboxMessage.destination, OutboxMessage.status
            )
        ):
            stats.setdefault(destination, {"pending": 0, "sent": 0, "dead": 0})[status] = count
        now = utcnow()
        for destination, oldest in s.execute(
            select(OutboxMessage.destination, func.min(OutboxMessage.created_at))
            .where(OutboxMessage.status == "pending")
            .group_by(OutboxMessage.destination)
        ):
            if oldest is not None:
                if oldest.tzinfo is None:
                    from datetime import UTC

                    oldest = oldest.replace(tzinfo=UTC)
                age = (now - oldest).total_seconds()
                stats[destination]["oldest_pending_seconds"] = round(age, 1)
        return stats
