"""Leases: how several daemons on one database share the work without doing it twice.

A lease is a row ``(name, holder, expires)``. A daemon *claims* a file
(``file:<name>``) before it reads it and releases it when done, so a file in a
shared inbox is processed by one daemon; a delivery worker holds
``sender:<destination>`` while it sends, so one process at a time sends to a
destination, in queue order. A lease lasts ``[cluster] lease_seconds`` and its
holder renews it while it works; when the holder dies (killed, power cut, network
gone) nobody renews it and another daemon takes it over once it has run out. On
the same machine a holder whose process no longer exists is taken over at once: a
daemon restarted after a crash does not wait for its predecessor's leases.

Expiry is judged by the database's clock (one clock for every host), and taking
a lease is one conditional statement, so two daemons asking at the same moment
cannot both get it. A lease is no lock: a holder stalled longer than the lease may
find it taken. What it guards is made safe underneath as well (a file is stored
once, by its content's hash; a message keeps its MSH-10 when sent again).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import ColumnElement, Table, delete, func, literal, select, update

from ..errors import StoreError
from .models import Lease, utcnow

if TYPE_CHECKING:
    from . import Store

__all__ = ["LeaseInfo", "Leases", "gone_from_here", "holder_name", "lease_holders"]

log = logging.getLogger(__name__)
LEASES: Table = Lease.__table__  # type: ignore[assignment]
Held = Literal["held", "new"]


NODE_ENV = "SAA_LAB_NODE"


def _node() -> str:
    """This machine and process namespace: the host name, the kernel's boot id and the
    PID namespace (two containers with one host name differ). ``SAA_LAB_NODE`` overrides
    it (tests pretend a daemon runs on another host)."""
    if os.environ.get(NODE_ENV):
        return hashlib.sha256(os.environ[NODE_ENV].encode()).hexdigest()[:8]
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(str(Path("/proc/self/ns/pid").stat().st_ino))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]


def holder_name() -> str:
    """``host:pid:node:random``: unique per process, readable in ``saa-lab status``."""
    return f"{socket.gethostname()}:{os.getpid()}:{_node()}:{uuid.uuid4().hex[:6]}"


def gone_from_here(holder: str) -> bool:
    """Whether ``holder`` was a process of this machine (and PID namespace) that no
    longer exists: its leases need not run out (a daemon restarted after a crash
    takes its predecessor's files and destinations over at once)."""
    parts = holder.rsplit(":", 3)
    if len(parts) != 4 or parts[2] != _node() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's process)
    return False


def _db_clock(dialect: str) -> ColumnElement[Any]:
    """Seconds since the epoch by the database server's clock."""
    if dialect == "postgresql":
        return func.extract("epoch", func.clock_timestamp())
    # julianday('now') has millisecond precision; 2440587.5 is the Unix epoch.
    return (func.julianday("now") - literal(2440587.5)) * literal(86400.0)


def _insert_if_absent(dialect: str, values: dict[str, Any]) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(LEASES).values(**values).on_conflict_do_nothing(index_elements=["name"])


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    seconds_left: float


class Leases:
    """The leases of one process (``holder``), each lasting ``seconds``.

    :meth:`hold` takes a lease or confirms it, renewing it in the database once a
    third of its time has passed; :meth:`release` gives it up; :meth:`release_all`
    at shutdown. :meth:`start_renewing` runs a thread that renews every lease held
    every third of a lease, so a long step (a slow file, an MLLP exchange waiting
    for its ACK) keeps its lease: a lease runs out only when its process is gone
    (or cannot reach the database). Thread-safe: the inbox worker and the delivery
    workers share one. Database failures raise :class:`~saa_lab.errors.StoreError`.
    """

    def __init__(self, store: Store, seconds: float, *, holder: str | None = None) -> None:
        self.store = store
        self.seconds = seconds
        self.holder = holder or holder_name()
        self._lock = threading.Lock()
        self._renewed: dict[str, float] = {}  # name -> monotonic time of the last renewal
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew_loop, name="saa-lab-leases",
                                         daemon=True)  # fmt: skip
        self._renewer.start()

    def stop_renewing(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout)
            self._renewer = None

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew_all()
            except StoreError as exc:  # they run out unless the database is back in time
                log.debug("cannot renew leases: %s", exc)
            except Exception:
                log.exception("unexpected error renewing leases; trying again")

    def renew_all(self) -> None:
        """Renew every lease this holder has, in one statement; forget those lost."""
        with self._lock:
            if not self._renewed:
                return
        now = time.monotonic()
        expires = _db_clock(self.store.dialect) + literal(self.seconds)
        with self.store.session() as s:
            s.connection().execute(
                update(LEASES).where(LEASES.c.holder == self.holder).values(expires=expires)
            )
            held = set(s.scalars(select(Lease.name).where(Lease.holder == self.holder)))
        with self._lock:
            for name in list(self._renewed):
                if name in held:
                    self._renewed[name] = now
                else:
                    del self._renewed[name]

    def hold(self, name: str) -> Held | None:
        """``"new"``: taken now (someone else may have held it meanwhile); ``"held"``:
        ours all along; ``None``: another holder has it."""
        now = time.monotonic()
        with self._lock:
            renewed = self._renewed.get(name)
        if renewed is not None and now - renewed < self.seconds / 3:
            return "held"
        result = self._take(name)
        with self._lock:
            if result is None:
                self._renewed.pop(name, None)
            else:
                self._renewed[name] = now
        if result == "held" and renewed is None:
            return "new"  # ours from an earlier life of this object (the same holder)
        return result

    def release(self, name: str) -> None:
        with self._lock:
            self._renewed.pop(name, None)
        with self.store.session() as s:
            s.connection().execute(
                delete(LEASES).where(LEASES.c.name == name, LEASES.c.holder == self.holder)
            )

    def release_all(self) -> None:
        with self._lock:
            self._renewed.clear()
        with self.store.session() as s:
            s.connection().execute(delete(LEASES).where(LEASES.c.holder == self.holder))

    def _take(self, name: str) -> Held | None:
        dialect = self.store.dialect
        expires = _db_clock(dialect) + literal(self.seconds)
        # Core statements with RETURNING: whether a row was written is read from the
        # rows returned, not from a driver's rowcount.
        with self.store.session() as s:
            conn = s.connection()
            # Ours already: renew. Nobody else can have held it since, or the
            # holder would differ (a lease taken over and given back is deleted).
            renewed = conn.execute(
                update(LEASES)
                .where(LEASES.c.name == name, LEASES.c.holder == self.holder)
                .values(expires=expires)
                .returning(LEASES.c.name)
            ).first()
            if renewed is not None:
                return "held"
            # Run out: take it over. On PostgreSQL a concurrent taker waits for
            # the first one's row lock and then finds the lease no longer expired.
            taken = conn.execute(
                update(LEASES)
                .where(LEASES.c.name == name, LEASES.c.expires < _db_clock(dialect))
                .values(holder=self.holder, expires=expires, acquired_at=utcnow())
                .returning(LEASES.c.name)
            ).first()
            if taken is not None:
                return "new"
            values = {"name": name, "holder": self.holder, "acquired_at": utcnow()}
            inserted = conn.execute(
                _insert_if_absent(dialect, values).values(expires=expires).returning(LEASES.c.name)
            ).first()
            if inserted is not None:
                return "new"
            # Held: by a process of this machine that is gone (killed, crashed)?
            holder = conn.execute(select(LEASES.c.holder).where(LEASES.c.name == name)).scalar()
            if holder is None or not gone_from_here(str(holder)):
                return None
            taken = conn.execute(
                update(LEASES)
                .where(LEASES.c.name == name, LEASES.c.holder == holder)
                .values(holder=self.holder, expires=expires, acquired_at=utcnow())
                .returning(LEASES.c.name)
            ).first()
            if taken is None:
                return None
            log.info("%s: taken over from %s (that process is gone)", name, holder)
            return "new"


def lease_holders(store: Store, prefix: str = "") -> list[LeaseInfo]:
    """The leases whose name starts with ``prefix``, with the seconds each has left."""
    with store.session() as s:
        clock = _db_clock(store.dialect)
        rows = s.execute(
            select(Lease.name, Lease.holder, Lease.expires - clock)
            .where(Lease.name.startswith(prefix, autoescape=True))
            .order_by(Lease.name)
        ).all()
        return [LeaseInfo(str(n), str(h), float(left)) for n, h, left in rows]
