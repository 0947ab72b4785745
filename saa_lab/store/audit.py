"""The audit trail: append-only, hash-chained, sealed at commit.

Every state change of a file, run, result or message is recorded with who,
when (UTC and the lab's local time), what, why and the previous value
(21 CFR 11.10(e), ISO 15189). Entries are queued on the session with
:func:`record` and written by :func:`seal` just before the transaction commits:
under a lock on the one-row ``audit_head`` table, each entry gets the next
sequence number and ``hash = sha256(canonical entry + previous hash)``. Changing,
inserting or deleting an entry anywhere breaks the chain; :func:`verify` finds the
first entry where it breaks.

Sealing last in the transaction keeps the head lock short and always taken
after every other row lock (no lock-order deadlocks between daemons on
PostgreSQL); on SQLite the ``UPDATE`` of the head takes the write lock before the
head is read, so two writers cannot chain onto the same entry.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import IO, Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from .models import AuditEntry, AuditHead, utcnow

__all__ = [
    "GENESIS",
    "AuditProblem",
    "AuditReport",
    "entry_hash",
    "export_csv",
    "record",
    "seal",
    "verify",
]

GENESIS = "0" * 64  # the "previous hash" of the first entry
_PENDING = "saa_lab.audit.pending"
_ZONE = "saa_lab.audit.zone"
HASH_VERSION = 1
EXPORT_COLUMNS = (
    "seq",
    "at_utc",
    "at_local",
    "actor",
    "action",
    "entity",
    "entity_id",
    "reason",
    "previous",
    "detail",
    "prev_hash",
    "hash",
)


def _plain(value: Any) -> Any:
    """``value`` as it will read back from a JSON column (tuples become lists, …)."""
    return json.loads(json.dumps(value, default=str))


def entry_hash(
    *,
    seq: int,
    prev_hash: str,
    at: datetime,
    at_local: str | None,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | None,
    reason: str | None,
    previous: Any,
    detail: Any,
) -> str:
    """SHA-256 over the canonical JSON of one entry and the hash before it.

    Never change this function: stored chains are verified with it.
    """
    canonical = json.dumps(
        {
            "v": HASH_VERSION,
            "seq": seq,
            "prev": prev_hash,
            "at": at.isoformat(),
            "at_local": at_local,
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "reason": reason,
            "previous": previous,
            "detail": detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def record(
    s: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int | None,
    *,
    reason: str | None = None,
    previous: Any = None,
    **detail: Any,
) -> None:
    """Queue one audit entry; it is written, chained, when the transaction commits."""
    pending: list[dict[str, Any]] = s.info.setdefault(_PENDING, [])
    pending.append(
        {
            "at": utcnow(),
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": None if entity_id is None else str(entity_id),
            "reason": reason,
            "previous": _plain(previous),
            "detail": _plain(detail),
        }
    )


def set_zone(s: Session, zone: tzinfo | None) -> None:
    """The zone the entries' local time is written in (the lab's ``[lab] timezone``)."""
    s.info[_ZONE] = zone


def seal(s: Session) -> int:
    """Write the session's queued entries, chained; returns how many. Call before commit."""
    pending: list[dict[str, Any]] = s.info.pop(_PENDING, [])
    if not pending:
        return 0
    zone = s.info.get(_ZONE)
    s.flush()  # every other change first: the head lock is the last one taken
    # The UPDATE takes the lock (row lock on PostgreSQL, the write lock on SQLite)
    # before the head is read; RETURNING reads it in the same statement.
    head = s.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + len(pending))
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).one_or_none()
    if head is None:  # pragma: no cover - the migration creates it
        msg = "the audit_head row is missing: run 'saa-lab db upgrade'"
        raise RuntimeError(msg)
    seq = head.seq - len(pending)
    prev = head.last_hash
    rows = []
    for item in pending:
        seq += 1
        at: datetime = item["at"]
        at_local = (at.astimezone(zone) if zone is not None else at.astimezone()).isoformat()
        digest = entry_hash(seq=seq, prev_hash=prev, at_local=at_local, **item)
        rows.append({**item, "seq": seq, "at_local": at_local, "prev_hash": prev, "hash": digest})
        prev = digest
    s.execute(insert(AuditEntry), rows)
    s.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))
    return len(rows)


@dataclass(frozen=True)
class AuditProblem:
    seq: int | None
    entry_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "the chain head"
        return (
            f"{where} (row id {self.entry_id}): {self.problem}"
            if self.entry_id
            else (f"{where}: {self.problem}")
        )


@dataclass(frozen=True)
class AuditReport:
    entries: int
    last_hash: str
    problem: AuditProblem | None

    @property
    def intact(self) -> bool:
        return self.problem is None


def _stored(row: AuditEntry) -> dict[str, Any]:
    return {
        "at": row.at,
        "at_local": row.at_local,
        "actor": row.actor,
        "action": row.action,
        "entity": row.entity,
        "entity_id": row.entity_id,
        "reason": row.reason,
        "previous": row.previous,
        "detail": row.detail,
    }


def verify(s: Session, *, batch: int = 5000) -> AuditReport:
    """Walk the chain from the first entry; report the first one that does not check out."""
    expected_seq, prev, count = 1, GENESIS, 0
    last_id = 0
    while True:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            last_id = row.id
            if row.seq != expected_seq:
                problem = (f"sequence number {row.seq} where {expected_seq} was expected: "
                           "an entry was deleted or inserted")  # fmt: skip
                return AuditReport(count, prev, AuditProblem(row.seq, row.id, problem))
            if row.prev_hash != prev:
                problem = "its previous-hash does not match the entry before it"
                return AuditReport(count, prev, AuditProblem(row.seq, row.id, problem))
            digest = entry_hash(seq=row.seq, prev_hash=row.prev_hash, **_stored(row))
            if digest != row.hash:
                problem = "its content does not match its hash: the entry was changed"
                return AuditReport(count, prev, AuditProblem(row.seq, row.id, problem))
            prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
        s.expunge_all()
    head = s.execute(
        select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == 1)
    ).one_or_none()
    if head is None:
        problem = f"the chain head is missing (the log has {count} entries ending in {prev[:12]}…)"
        return AuditReport(count, prev, AuditProblem(None, None, problem))
    if head.seq != count or head.last_hash != prev:
        problem = (f"the head records {head.seq} entries ending in {head.last_hash[:12]}…, "
                   f"the log has {count} ending in {prev[:12]}…: entries were removed "
                   "from the end")  # fmt: skip
        return AuditReport(count, prev, AuditProblem(None, None, problem))
    return AuditReport(count, prev, None)


def iter_entries(
    s: Session, *, start: datetime | None = None, end: datetime | None = None, batch: int = 5000
) -> Iterator[AuditEntry]:
    """Entries in chain order, ``start <= at < end`` (either bound optional)."""
    last_id = 0
    while True:
        query = select(AuditEntry).where(AuditEntry.id > last_id)
        if start is not None:
            query = query.where(AuditEntry.at >= start)
        if end is not None:
            query = query.where(AuditEntry.at < end)
        rows = s.scalars(query.order_by(AuditEntry.id).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            last_id = row.id
            yield row
        s.expunge_all()


def export_csv(
    s: Session, out: IO[str], *, start: datetime | None = None, end: datetime | None = None
) -> int:
    """Write entries as CSV for inspectors (one row each, JSON in the JSON columns)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for row in iter_entries(s, start=start, end=end):
        writer.writerow(
            (
                row.seq,
                row.at.isoformat(),
                row.at_local or "",
                row.actor,
                row.action,
                row.entity,
                row.entity_id or "",
                row.reason or "",
                "" if row.previous is None else json.dumps(row.previous, sort_keys=True),
                json.dumps(row.detail, sort_keys=True),
                row.prev_hash,
                row.hash,
            )
        )
        count += 1
    return count
