"""Result delivery: the persistent queue's messages to their destinations, in order.

One :class:`DeliveryWorker` thread per destination calls :func:`deliver_once`
until stopped. Each call makes at most one attempt at the head of the
destination's queue (``store/queue.py``, the only state; a restart resumes
where delivery stopped):

* **directory**: the message is written atomically as ``<MSH-10>.hl7``; with
  ``batch = true`` every pending message of the head message's run goes into
  one ``run-<run id>-<digest>.hl7`` file (``FHS BHS … BTS FTS``).
* **mllp**: the stored message (its MSH-10 never changes) is sent over one
  kept-open connection (TLS when configured) with connect, send and ACK
  timeouts. The ACK counts only when its MSA-2 equals the sent MSH-10
  (lessons-from-peers §13: a late ACK matched to the next message). AA/CA:
  sent. AE/CE, a timeout, a refused or closed connection, a mismatched MSA-2 or
  a reply that is no ACK: retried with exponential backoff and jitter until the
  retry budget (counted from the first attempt) is spent, then dead. AR/CR:
  dead at once. A dead message is logged at ERROR with the destination, its
  MSH-10 and the receiver's MSA-3/ERR text (never the payload), audited, and
  counted in ``saa-lab status``.

Order: a message waiting for its retry holds back the ones behind it (the
call returns how long to wait); dead ones are skipped. A message that was
written or sent but not yet recorded when the process died is sent again with
the same MSH-10, which the receiver can recognise; nothing is ever re-sent
under a new MSH-10.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from .config import AppConfig, Destination, RetrySettings, TlsSettings
from .errors import DeliveryError, StoreError
from .faults import crash_point
from .logs import without_patient_data
from .store import Store
from .store.queue import (
    QueuedMessage,
    next_message,
    next_messages,
    pending_batch,
    record_batch_sent,
    record_delivery,
)

if TYPE_CHECKING:
    from .hl7 import MllpClient
    from .store.leases import Leases

__all__ = [
    "Ack",
    "DeliveryCounts",
    "DeliveryStep",
    "DeliveryWorker",
    "MllpLink",
    "QueueWindow",
    "deliver_once",
    "deliver_pending",
    "parse_ack",
    "retry_delay",
    "tls_context",
]

log = logging.getLogger(__name__)

Outcome = Literal["idle", "waiting", "sent", "retry", "dead"]
_ACCEPTED = frozenset({"AA", "CA"})
_REJECTED = frozenset({"AR", "CR"})
_ERRORS = frozenset({"AE", "CE"})


@dataclass(frozen=True)
class DeliveryStep:
    """What one :func:`deliver_once` call did.

    ``wait_seconds``: ``None`` when the queue is empty (wait for new messages),
    otherwise how long until the head of the queue may be tried (0: at once).
    """

    outcome: Outcome
    destination: str
    control_ids: tuple[str, ...] = ()
    wait_seconds: float | None = 0.0
    ack_code: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Ack:
    """The parts of an HL7 ACK that decide a delivery."""

    code: str  # MSA-1
    control_id: str  # MSA-2: the MSH-10 it answers
    text: str  # MSA-3 and the ERR texts, for the log


def parse_ack(er7: str) -> Ack | None:
    """MSA-1, MSA-2 and the error texts of an ACK; ``None`` if it has no MSA segment."""
    segments = [s for s in er7.replace("\n", "\r").split("\r") if s]
    separator = segments[0][3] if segments and segments[0].startswith("MSH") else "|"
    if len(separator) != 1 or separator.isalnum():
        separator = "|"
    component = "^"
    if segments and segments[0].startswith("MSH") and len(segments[0]) > 4:
        component = segments[0][4]
    msa: list[str] | None = None
    texts: list[str] = []
    for segment in segments:
        fields = segment.split(separator)
        if fields[0] == "MSA" and msa is None:
            msa = fields
            if len(fields) > 3 and fields[3].strip():
                texts.append(fields[3].strip())
        elif fields[0] == "ERR":
            texts += _err_texts(fields, component)
    if msa is None:
        return None
    code = msa[1].strip().upper() if len(msa) > 1 else ""
    control_id = msa[2].strip() if len(msa) > 2 else ""
    return Ack(code, control_id, "; ".join(dict.fromkeys(texts)))


def _err_texts(fields: list[str], component: str) -> list[str]:
    """ERR-8 (user message) or ERR-3.2 (error code text); before 2.5 the ERR-1 texts."""
    found = [fields[8].strip()] if len(fields) > 8 and fields[8].strip() else []
    if not found and len(fields) > 3:
        parts = fields[3].split(component)
        if len(parts) > 1 and parts[1].strip():
            found.append(parts[1].strip())
    if not found and len(fields) > 1:
        for location in fields[1].split("~"):
            parts = location.split(component)
            if len(parts) > 3:
                sub = parts[3].split("&")
                found.append(sub[1] if len(sub) > 1 and sub[1] else sub[0])
    return [f for f in found if f]


def retry_delay(retry: RetrySettings, attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next try after ``attempts`` earlier ones (0 for the first retry).

    ``min(max_interval, base * factor ** attempts) * (1 ± jitter)``.
    """
    try:
        raw = retry.base_seconds * retry.factor ** max(0, attempts)
    except OverflowError:
        raw = retry.max_interval_seconds
    delay = min(retry.max_interval_seconds, raw)
    spread = (rng or random).uniform(1.0 - retry.jitter, 1.0 + retry.jitter)
    return delay * spread


def tls_context(tls: TlsSettings, config: AppConfig) -> ssl.SSLContext:
    """A client TLS context: the CA file (else the system's), a client certificate if set."""
    cafile = str(config.resolve(tls.ca_file)) if tls.ca_file else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert_file is not None:
        key = str(config.resolve(tls.key_file)) if tls.key_file else None
        context.load_cert_chain(str(config.resolve(tls.cert_file)), key)
    context.check_hostname = tls.verify_hostname
    return context


class MllpLink:
    """The connection to one MLLP destination, kept open from one message to the next.

    Any failure closes it, so a late ACK can never arrive on the connection that
    carries the next message; an idle connection the peer has closed meanwhile is
    replaced before use.
    """

    def __init__(self, config: AppConfig, destination: Destination) -> None:
        if destination.host is None or destination.port is None:
            msg = f"destination {destination.name!r} has no host and port"
            raise ValueError(msg)
        self.config, self.destination = config, destination
        self.host, self.port = destination.host, destination.port
        self._client: MllpClient | None = None
        self._context: ssl.SSLContext | None = None

    @property
    def where(self) -> str:
        scheme = "mllps" if self.destination.tls is not None else "mllp"
        return f"{scheme}://{self.host}:{self.port}"

    def exchange(self, er7: str) -> str:
        """Send one message and return the reply; DeliveryError on any failure."""
        from .hl7 import MllpClient

        if self._client is not None and not self._client.is_usable():
            self.close()
        if self._client is None:
            dest = self.destination
            if dest.tls is not None and self._context is None:
                try:
                    self._context = tls_context(dest.tls, self.config)
                except (OSError, ssl.SSLError) as exc:
                    msg = f"cannot set up TLS for {self.where}: {exc}"
                    raise DeliveryError(msg) from exc
            self._client = MllpClient(
                self.host,
                self.port,
                timeout=dest.send_timeout_seconds,
                connect_timeout=dest.connect_timeout_seconds,
                ack_timeout=dest.ack_timeout_seconds,
                ssl_context=self._context,
            )
        try:
            return self._client.send(er7)
        except DeliveryError:
            self.close()
            raise

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class QueueWindow:
    """The next pending messages of one destination, read ``size`` at a time (a worker's).

    Saves a query per message on a backlog. Only its worker changes these
    messages; whenever their state may differ from what was read (a retry, a
    wait, a batch, an error) the window is emptied and the head read again. A
    dead message requeued meanwhile comes after the window's messages.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: deque[QueuedMessage] = deque()

    def head(self, store: Store, destination: str) -> QueuedMessage | None:
        if not self._items:
            self._items.extend(next_messages(store, destination, self.size))
        return self._items[0] if self._items else None

    def pop(self) -> None:
        """The head is done with (sent or dead)."""
        self._items.popleft()

    def clear(self) -> None:
        self._items.clear()


def deliver_once(
    store: Store,
    config: AppConfig,
    destination: Destination,
    *,
    now: datetime,
    link: MllpLink | None = None,
    window: QueueWindow | None = None,
    rng: random.Random | None = None,
) -> DeliveryStep:
    """One attempt at the head of ``destination``'s queue (see the module docstring).

    ``now`` (aware) is the attempt's time: it decides whether a retry is due, the
    next retry time and whether the retry budget is spent. ``link`` keeps an MLLP
    connection open across calls and ``window`` reads the queue ahead (both the
    worker's); without them each call opens its own connection and reads the head.
    Database failures raise :class:`~saa_lab.errors.StoreError`.
    """
    if window is None:
        return _attempt(store, config, destination, next_message(store, destination.name),
                        now=now, link=link, rng=rng)  # fmt: skip
    try:
        head = window.head(store, destination.name)
        step = _attempt(store, config, destination, head, now=now, link=link, rng=rng)
    except BaseException:
        window.clear()
        raise
    if step.outcome in ("sent", "dead") and len(step.control_ids) == 1:
        window.pop()
    else:
        window.clear()
    return step


def _attempt(
    store: Store,
    config: AppConfig,
    destination: Destination,
    head: QueuedMessage | None,
    *,
    now: datetime,
    link: MllpLink | None,
    rng: random.Random | None,
) -> DeliveryStep:
    if head is None:
        return DeliveryStep("idle", destination.name, wait_seconds=None)
    if head.next_attempt_at is not None and head.next_attempt_at > now:
        wait = (head.next_attempt_at - now).total_seconds()
        return DeliveryStep("waiting", destination.name, (head.control_id,), wait)
    if destination.type == "directory":
        return _to_directory(store, config, destination, head, now=now, rng=rng)
    own = link is None
    active = MllpLink(config, destination) if link is None else link
    try:
        return _to_mllp(store, destination, head, active, now=now, rng=rng)
    finally:
        if own:
            active.close()


def _to_directory(
    store: Store,
    config: AppConfig,
    destination: Destination,
    head: QueuedMessage,
    *,
    now: datetime,
    rng: random.Random | None,
) -> DeliveryStep:
    from .hl7 import build_batch, write_batch_file, write_message_file

    assert destination.path is not None  # a directory destination has a path (validated)
    folder = config.resolve(destination.path)
    try:
        if not destination.batch:
            path = write_message_file(folder, head.control_id, head.payload)
            crash_point("file-written")
            record_delivery(store, head.id, "sent", where=str(path), now=now)
            log.debug("delivery to %s: wrote %s", destination.name, path.name)
            return DeliveryStep("sent", destination.name, (head.control_id,))
        messages = pending_batch(store, destination.name, head.run_id)
        ids = [m.control_id for m in messages]
        digest = hashlib.sha256("\n".join(ids).encode("ascii")).hexdigest().upper()
        name = f"run-{head.run_id}-{digest[:8]}"
        # Deterministic content (time of the first message, id from the ids), so a
        # write repeated after a crash finds the same file instead of a conflict.
        text = build_batch(
            [m.payload for m in messages],
            control_id=digest[:20],
            created=min(m.created_at for m in messages),
            name=name,
        )
        path = write_batch_file(folder, name, text)
    except DeliveryError as exc:
        return _failed(store, destination, head, str(exc), now=now, rng=rng)
    crash_point("file-written")
    record_batch_sent(store, [m.id for m in messages], where=str(path), now=now)
    log.info("delivery to %s: %d message(s) of run %d in %s",
             destination.name, len(messages), head.run_id, path.name)  # fmt: skip
    return DeliveryStep("sent", destination.name, tuple(ids))


def _to_mllp(
    store: Store,
    destination: Destination,
    head: QueuedMessage,
    link: MllpLink,
    *,
    now: datetime,
    rng: random.Random | None,
) -> DeliveryStep:
    try:
        reply = link.exchange(head.payload)
    except DeliveryError as exc:
        return _failed(store, destination, head, str(exc), now=now, rng=rng)
    ack = parse_ack(reply)
    if ack is None:
        link.close()
        reason = "the reply is not an ACK (no MSA segment)"
        return _failed(store, destination, head, reason, now=now, rng=rng)
    if ack.control_id != head.control_id:
        # Another message's ACK (a late one?): this message is not acknowledged,
        # and the connection is out of step, so it is closed.
        link.close()
        reason = (
            f"ACK {ack.code} for MSA-2 {ack.control_id!r}, not for this message: "
            "not counted as delivered"
        )
        return _failed(store, destination, head, reason, ack_code=ack.code[:4] or None,
                       now=now, rng=rng)  # fmt: skip
    detail = ack.text or f"ACK {ack.code}"
    if ack.code in _ACCEPTED:
        crash_point("acked")
        record_delivery(store, head.id, "sent", where=link.where, ack_code=ack.code, now=now)
        if head.attempts:
            log.info("delivery to %s: message %s delivered (%s) after %d failed attempt(s)",
                     destination.name, head.control_id, ack.code, head.attempts)  # fmt: skip
        return DeliveryStep("sent", destination.name, (head.control_id,), ack_code=ack.code)
    if ack.code in _REJECTED:
        reason = f"rejected by the receiver ({ack.code}): {detail}"
        return _failed(store, destination, head, reason, ack_code=ack.code, now=now, rng=rng,
                       reject=True)  # fmt: skip
    if ack.code in _ERRORS:
        reason = f"receiver error ({ack.code}): {detail}"
    else:
        reason = f"unknown acknowledgment code {ack.code!r} in MSA-1: {detail}"
    return _failed(store, destination, head, reason, ack_code=ack.code[:4] or None,
                   now=now, rng=rng)  # fmt: skip


def _failed(
    store: Store,
    destination: Destination,
    head: QueuedMessage,
    reason: str,
    *,
    now: datetime,
    rng: random.Random | None,
    ack_code: str | None = None,
    reject: bool = False,
) -> DeliveryStep:
    """Schedule the retry, or dead-letter (rejected, or the retry budget is spent)."""
    attempt = head.attempts + 1
    first = head.first_attempt_at or now
    spent = (now - first).total_seconds()
    budget = destination.retry.budget_hours * 3600.0
    if reject or spent > budget:
        if not reject:
            reason = f"gave up after {attempt} attempts over {spent / 3600:.1f} h: {reason}"
        record_delivery(store, head.id, "dead", ack_code=ack_code, error=reason, now=now)
        log.error(
            "delivery to %s: message %s dead-lettered (attempt %d): %s; "
            "later messages go on; 'saa-lab status' counts it",
            destination.name,
            head.control_id,
            attempt,
            without_patient_data(reason, head.payload),  # the receiver may echo the patient
        )
        return DeliveryStep("dead", destination.name, (head.control_id,), 0.0, ack_code, reason)
    delay = retry_delay(destination.retry, head.attempts, rng)
    record_delivery(store, head.id, "retry", ack_code=ack_code, error=reason,
                    next_attempt_at=now + timedelta(seconds=delay), now=now)  # fmt: skip
    log.warning(
        "delivery to %s: message %s not delivered (attempt %d): %s; retry in %.1f s",
        destination.name,
        head.control_id,
        attempt,
        without_patient_data(reason, head.payload),
        delay,
    )
    return DeliveryStep("retry", destination.name, (head.control_id,), delay, ack_code, reason)


class DeliveryCounts(dict[str, int]):
    """Messages delivered per destination; ``left_to`` names the destinations that
    another process (a running daemon) was sending to, with that process."""

    def __init__(self) -> None:
        super().__init__()
        self.left_to: dict[str, str] = {}


def deliver_pending(
    store: Store,
    config: AppConfig,
    *,
    destinations: Iterable[str] | None = None,
    now: Callable[[], datetime] | None = None,
) -> DeliveryCounts:
    """Deliver what each destination's queue holds until it is empty or must wait.

    For one-shot commands (``saa-lab process``): every due message is tried once
    in order; one that fails is scheduled for a retry (which the daemon makes)
    and holds back the rest of its destination. A destination a daemon is sending
    to (it holds the sender lease) is left to it, so no message goes out twice
    and the order holds. Returns the messages delivered per destination.
    """
    from .store.leases import Leases, lease_holders

    clock = now or (lambda: datetime.now(UTC))
    known = config.all_destinations()
    names = list(destinations) if destinations is not None else list(known)
    delivered = DeliveryCounts()
    leases = Leases(store, config.cluster.lease_seconds)
    for name in names:
        destination = known[name]
        lease = f"sender:{name}"
        if leases.hold(lease) is None:
            holders = lease_holders(store, lease)
            delivered.left_to[name] = holders[0].holder if holders else "another process"
            continue
        link = MllpLink(config, destination) if destination.type == "mllp" else None
        window = QueueWindow()
        count = 0
        try:
            while True:
                step = deliver_once(store, config, destination, now=clock(), link=link,
                                    window=window)  # fmt: skip
                if step.outcome == "sent":
                    count += len(step.control_ids)
                elif step.outcome != "dead":
                    break
                if leases.hold(lease) is None:
                    break  # ran out while sending (a very long queue): another has it
        finally:
            if link is not None:
                link.close()
            with contextlib.suppress(StoreError):
                leases.release(lease)
        delivered[name] = count
    return delivered


class DeliveryWorker(threading.Thread):
    """Delivers one destination's queue until stopped: ``start()``, ``notify()``, ``stop()``.

    Sleeps while the head waits for its retry, or while the queue is empty (then
    it looks again every ``idle_seconds``, for messages queued by another
    process); :meth:`notify` wakes it at once. A bug in one step is logged with
    its traceback and the loop goes on after ``error_pause_seconds``; so does a
    database outage (logged once, without, and its end too). ``on_step`` sees every
    step (tests, benchmarks).
    """

    def __init__(
        self,
        store: Store,
        config: AppConfig,
        destination: Destination,
        *,
        idle_seconds: float | None = None,
        error_pause_seconds: float = 5.0,
        on_step: Callable[[DeliveryStep], None] | None = None,
        rng: random.Random | None = None,
        leases: Leases | None = None,
    ) -> None:
        super().__init__(name=f"saa-lab-deliver-{destination.name}", daemon=True)
        self.leases = leases
        self._standby: bool | None = None  # another process sends (None: not asked yet)
        self.store, self.config, self.destination = store, config, destination
        self.idle_seconds = (
            config.watch.poll_interval_seconds if idle_seconds is None else idle_seconds
        )
        self.error_pause_seconds = error_pause_seconds
        self.on_step = on_step
        self.rng = rng
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._failures = 0
        self._store_down = False  # the last step failed for want of the database

    def notify(self) -> None:
        """New messages were queued: look now (the worker may be asleep)."""
        self._wake.set()

    def should_keep_running(self) -> bool:
        return not self._halt.is_set()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end (an attempt under way finishes first); join if ``timeout``."""
        self._halt.set()
        self._wake.set()
        if timeout is not None and self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        dest = self.destination
        link = MllpLink(self.config, dest) if dest.type == "mllp" else None
        window = QueueWindow()
        log.info("delivering to %s (%s)", dest.name, link.where if link else dest.path)
        if dest.type == "directory" and dest.path is not None:
            from .hl7.outbox import remove_stale_temporaries

            # What a crash mid-write left: the message itself is written again.
            removed = remove_stale_temporaries(self.config.resolve(dest.path))
            if removed:
                log.info("delivery to %s: removed %d unfinished temporary file(s)",
                         dest.name, removed)  # fmt: skip
        try:
            while self.should_keep_running():
                wait = self._step(link, window) if self._sender(window) else self._standby_wait()
                if wait is None or wait > 0:
                    if link is not None:
                        link.close()  # not left open while idle or waiting
                    # Cleared only after the wait: a stop() or a notify() that came
                    # while the step ran ends the wait at once instead of being lost.
                    self._wake.wait(self.idle_seconds if wait is None else wait)
                    self._wake.clear()
        finally:
            if link is not None:
                link.close()

    def _sender(self, window: QueueWindow) -> bool:
        """Whether this worker may send now: it holds the destination's sender lease
        (several daemons on one database take turns, one at a time, so the queue
        leaves in order). Without leases (one process) it always may."""
        if self.leases is None:
            return True
        name = f"sender:{self.destination.name}"
        try:
            held = self.leases.hold(name)
        except StoreError:
            return True  # _step meets the outage, says so and pauses
        if held == "new":
            # Another process may have sent what the window holds meanwhile.
            window.clear()
        if self._standby is None or (held is None) != self._standby:
            self._standby = held is None
            log.info("delivery to %s: %s", self.destination.name,
                     "another daemon sends; standing by" if self._standby
                     else "this daemon sends")  # fmt: skip
        return held is not None

    def _standby_wait(self) -> float:
        """Look again for the sender role after this long (its holder may die)."""
        return min(self.idle_seconds, self.leases.seconds / 3 if self.leases else 1.0)

    def _step(self, link: MllpLink | None, window: QueueWindow) -> float | None:
        try:
            step = deliver_once(self.store, self.config, self.destination,
                                now=datetime.now(UTC), link=link, window=window,
                                rng=self.rng)  # fmt: skip
        except StoreError as exc:
            # Said once per outage (an ERROR every pause would flood the log of a long
            # one); the retries are DEBUG, and the recovery is said too.
            level = logging.DEBUG if self._store_down else logging.ERROR
            log.log(level, "delivery to %s: database unavailable, retrying every %g s: %s",
                    self.destination.name, self.error_pause_seconds, exc)  # fmt: skip
            self._store_down = True
            return self.error_pause_seconds
        except Exception as exc:
            log.exception("delivery to %s: unexpected error; retrying in %g s",
                          self.destination.name, self.error_pause_seconds)  # fmt: skip
            if link is not None:
                link.close()
            return self._count_unexpected(exc)
        if self._store_down:
            self._store_down = False
            log.warning("delivery to %s: the database is reachable again", self.destination.name)
        self._publish(step)
        if self.on_step is not None:
            self.on_step(step)
        return step.wait_seconds

    def _count_unexpected(self, exc: Exception) -> float:
        """An unexpected error counts as a failed attempt of the head message, so its
        retry budget runs and it is dead-lettered in the end instead of blocking the
        queue forever."""
        try:
            window = QueueWindow()
            head = window.head(self.store, self.destination.name)
            if head is not None:
                reason = f"unexpected error: {type(exc).__name__}: {exc}"
                step = _failed(self.store, self.destination, head, reason,
                               now=datetime.now(UTC), rng=self.rng)  # fmt: skip
                self._publish(step)
                return max(step.wait_seconds or 0.0, self.error_pause_seconds)
        except StoreError:
            pass  # the database is the problem; try again after the pause
        return self.error_pause_seconds

    def _publish(self, step: DeliveryStep) -> None:
        """Failures (and the recovery after them) go to the service state for status."""
        if step.outcome in ("idle", "waiting"):
            return
        failed = step.outcome in ("retry", "dead")
        if not failed and self._failures == 0:
            return  # the common case costs no extra write
        self._failures = self._failures + 1 if failed else 0
        with contextlib.suppress(StoreError):
            self.store.set_state(
                f"delivery:{self.destination.name}",
                {
                    "destination": self.destination.name,
                    "last_outcome": step.outcome,
                    "control_ids": list(step.control_ids)[:5],
                    "ack": step.ack_code,
                    "error": step.detail or None,
                    "consecutive_failures": self._failures,
                    "at": datetime.now(UTC).isoformat(),
                },
            )
