"""Result delivery against real, deliberately misbehaving MLLP peers on 127.0.0.1.

Each MLLP case is one of the failures peers' users reported (lessons-from-peers §13-15):
slow and missing ACKs, an ACK for another message, AE then AA, AR, a connection
closed mid-message, an ACK split across packets, a receiver that is down and comes
back, a restart in the middle of a queue. Timeouts and backoffs are milliseconds
(configured per destination); most cases drive :func:`deliver_once` with an explicit
``now`` instead of waiting for a retry. Every wait is bounded.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import assert_hl7_strict_valid, make_pki, write_config
from sqlalchemy import select

from saa_lab import delivery
from saa_lab.config import (
    AppConfig,
    Destination,
    PathSettings,
    RetrySettings,
    RoutingSettings,
    TlsSettings,
    load_config,
)
from saa_lab.delivery import (
    DeliveryStep,
    DeliveryWorker,
    MllpLink,
    deliver_once,
    deliver_pending,
    parse_ack,
    retry_delay,
)
from saa_lab.demo import drop_file
from saa_lab.errors import ConfigError
from saa_lab.hl7 import MllpServer, ReportedResult, build_ack, build_oru_r01
from saa_lab.hl7.mllp import FrameReader, frame
from saa_lab.hl7.orders import OrderProblem
from saa_lab.store import Store
from saa_lab.store.models import OutboxMessage
from saa_lab.store.queue import queue_stats, record_delivery
from saa_lab.synth import queue_synthetic_messages
from saa_lab.watcher import Daemon

HOST = "127.0.0.1"
WAIT = 5.0  # upper bound for any single wait
FAST = RetrySettings(
    base_seconds=0.02, factor=2.0, max_interval_seconds=0.1, jitter=0.2, budget_hours=1.0
)
PATIENT = "Zzyzx"  # a family name that must never appear in a log record above DEBUG
MRN = "MRN-7731"
SAMPLES = Path(__file__).resolve().parents[2] / "sample_files" / "biotek_gen5"
T0 = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)


# --- the queue ------------------------------------------------------------------------


def payload(control_id: str, accession: str, *, comment: str = "") -> str:
    result = ReportedResult(
        message_control_id=control_id,
        message_time=T0,
        sending_application="SAA-LAB",
        sending_facility="REFLAB",
        receiving_application="EHR",
        receiving_facility="CLINIC",
        accession=accession,
        patient_id=MRN,
        patient_family_name=PATIENT,
        patient_given_name="Quentin",
        value=250.0,
        comments=(comment,) if comment else (),
    )
    return build_oru_r01(result)


def enqueue(store: Store, destination: str, count: int, *, comment: str = "") -> list[str]:
    """``count`` messages of one new run queued for ``destination``; their MSH-10s in order."""
    return queue_synthetic_messages(
        store, destination, count, lambda cid, acc: payload(cid, acc, comment=comment)
    )


def rows(store: Store) -> dict[str, OutboxMessage]:
    with store.session() as s:
        return {m.control_id: m for m in s.scalars(select(OutboxMessage))}


def msh10(er7: str) -> str:
    return er7.split("\r", 1)[0].split("|")[9]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield opened
    opened.close()


@pytest.fixture
def any_store(database_url: str) -> Iterator[Store]:
    """SQLite, and PostgreSQL when SAA_LAB_TEST_DATABASE_URL is set."""
    opened = Store(database_url)
    yield opened
    opened.close()


def mllp(port: int, *, name: str = "ehr", ack_timeout: float = 1.0,
         retry: RetrySettings = FAST, tls: TlsSettings | None = None) -> Destination:  # fmt: skip
    return Destination(name=name, type="mllp", host=HOST, port=port, tls=tls,
                       connect_timeout_seconds=1.0, send_timeout_seconds=1.0,
                       ack_timeout_seconds=ack_timeout, retry=retry)  # fmt: skip


def app(tmp_path: Path, *destinations: Destination) -> AppConfig:
    return AppConfig(
        base_dir=tmp_path,
        paths=PathSettings(outbox=tmp_path / "outbox"),
        destinations=destinations,
        routing=RoutingSettings(default=destinations[0].name if destinations else "file"),
    )


# --- peers ----------------------------------------------------------------------------


def ack(er7: str, code: str = "AA", *, control_id: str | None = None, text: str = "") -> str:
    answered = msh10(er7) if control_id is None else control_id
    return (
        "MSH|^~\\&|EHR|CLINIC|SAA-LAB|REFLAB|20261121220000||ACK^R01^ACK|"
        f"{uuid.uuid4().hex[:20]}|P|2.5.1\rMSA|{code}|{answered}|{text}"
    )


class Peer:
    """The receiver's side of an MllpServer: records every message, answers by script.

    ``answer(er7, seen_before)`` returns the ACK; ``seen_before`` counts earlier
    arrivals of the same MSH-10.
    """

    def __init__(self, answer: Callable[[Peer, str, int], str] | None = None) -> None:
        self.answer = answer or (lambda _peer, er7, _seen: ack(er7))
        self.seen: list[str] = []
        self.payloads: dict[str, set[str]] = {}
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends any deliberate stall

    def __call__(self, er7: str) -> str:
        control_id = msh10(er7)
        with self.lock:
            before = self.seen.count(control_id)
            self.seen.append(control_id)
            self.payloads.setdefault(control_id, set()).add(er7)
        return self.answer(self, er7, before)

    def stall(self, seconds: float = WAIT) -> None:
        self.release.wait(seconds)


@contextmanager
def serve(peer: Peer, port: int = 0) -> Iterator[MllpServer]:
    server = MllpServer(peer, port=port, read_timeout=WAIT)
    server.start()
    try:
        yield server
    finally:
        peer.release.set()
        server.stop(WAIT)


def read_frame(conn: socket.socket, reader: FrameReader) -> bytes | None:
    while True:
        data = conn.recv(65536)
        if not data:
            return None
        got = reader.feed(data)
        if got:
            return got[0]


def answer_all(conn: socket.socket) -> None:
    reader = FrameReader()
    while (message := read_frame(conn, reader)) is not None:
        conn.sendall(frame(ack(message.decode()).encode()))


class RawPeer(threading.Thread):
    """Accepts connections one after another; the n-th runs ``behaviours[n]``
    (afterwards: an ACK AA for every message). With ``tls`` the connection is TLS."""

    def __init__(self, behaviours: list[Callable[[socket.socket], None]],
                 tls: ssl.SSLContext | None = None) -> None:  # fmt: skip
        super().__init__(name="raw-mllp-peer")
        self.behaviours, self.tls = behaviours, tls
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.connections = 0
        self.tls_errors: list[str] = []
        self.client_subjects: list[object] = []

    def run(self) -> None:
        with self.listener:
            while not self.done.is_set():
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                conn.settimeout(WAIT)
                if self.tls is not None:
                    try:
                        conn = self.tls.wrap_socket(conn, server_side=True)
                    except (ssl.SSLError, OSError) as exc:
                        self.tls_errors.append(str(exc))
                        conn.close()
                        continue
                    self.client_subjects.append(conn.getpeercert())
                behaviour = (
                    self.behaviours[self.connections]
                    if self.connections < len(self.behaviours)
                    else answer_all
                )
                self.connections += 1
                try:
                    behaviour(conn)
                except OSError:
                    pass
                finally:
                    conn.close()

    def __enter__(self) -> RawPeer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(WAIT)


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def step(store: Store, config: AppConfig, dest: Destination, now: datetime = T0,
         link: MllpLink | None = None) -> DeliveryStep:  # fmt: skip
    return deliver_once(store, config, dest, now=now, link=link, rng=random.Random(7))


LATER = T0 + timedelta(seconds=10)  # beyond any FAST retry delay


# --- ACKs and timeouts ----------------------------------------------------------------


def test_an_aa_whose_msa2_matches_is_delivered_framed_as_stored(
    any_store: Store, tmp_path: Path
) -> None:
    peer = Peer()
    with serve(peer) as server:
        dest = mllp(server.port)
        config = app(tmp_path, dest)
        (cid,) = enqueue(any_store, "ehr", 1)
        done = step(any_store, config, dest)
        assert (done.outcome, done.control_ids, done.ack_code) == ("sent", (cid,), "AA")
        assert step(any_store, config, dest).outcome == "idle"
    row = rows(any_store)[cid]
    assert (row.status, row.attempts, row.last_ack_code) == ("sent", 1, "AA")
    assert row.delivered_to == f"mllp://{HOST}:{server.port}"
    assert peer.payloads[cid] == {row.payload}  # exactly the stored text, MSH-10 included


def test_a_slow_ack_within_the_timeout_is_delivered(store: Store, tmp_path: Path) -> None:
    def slow(peer: Peer, er7: str, _seen: int) -> str:
        peer.stall(0.2)
        return ack(er7)

    with serve(Peer(slow)) as server:
        dest = mllp(server.port, ack_timeout=1.0)
        enqueue(store, "ehr", 1)
        assert step(store, app(tmp_path, dest), dest).outcome == "sent"


def test_an_ack_later_than_the_timeout_is_a_retry_and_never_counts_for_the_next_message(
    store: Store, tmp_path: Path
) -> None:
    def late_once(peer: Peer, er7: str, seen: int) -> str:
        if seen == 0 and msh10(er7) == first:
            time.sleep(0.5)  # longer than the 0.25 s ACK timeout; the ACK then comes anyway
        return ack(er7)

    peer = Peer(late_once)
    first, second = enqueue(store, "ehr", 2)
    with serve(peer) as server:
        dest = mllp(server.port, ack_timeout=0.25)
        config = app(tmp_path, dest)
        link = MllpLink(config, dest)
        try:
            started = time.monotonic()
            timed_out = step(store, config, dest, link=link)
            assert time.monotonic() - started < 1.0
            assert (timed_out.outcome, timed_out.control_ids) == ("retry", (first,))
            assert "no ACK" in timed_out.detail
            # The head waits for its retry and holds back the second message.
            waiting = step(store, config, dest, T0 + timedelta(milliseconds=1), link=link)
            assert (waiting.outcome, waiting.control_ids) == ("waiting", (first,))
            assert waiting.wait_seconds is not None and waiting.wait_seconds > 0
            assert step(store, config, dest, LATER, link=link).control_ids == (first,)
            assert step(store, config, dest, LATER, link=link).control_ids == (second,)
        finally:
            link.close()
    assert peer.seen == [first, first, second]
    got = rows(store)
    assert (got[first].status, got[first].attempts) == ("sent", 2)
    assert (got[second].status, got[second].attempts) == ("sent", 1)


def test_no_ack_at_all_is_retried_with_the_same_message(store: Store, tmp_path: Path) -> None:
    def silent_once(peer: Peer, er7: str, seen: int) -> str:
        if seen == 0:
            peer.stall(1.0)
        return ack(er7)

    peer = Peer(silent_once)
    with serve(peer) as server:
        dest = mllp(server.port, ack_timeout=0.2)
        config = app(tmp_path, dest)
        (cid,) = enqueue(store, "ehr", 1)
        missed = step(store, config, dest)
        assert missed.outcome == "retry" and "no ACK" in missed.detail
        row = rows(store)[cid]
        assert row.status == "pending" and row.last_error is not None
        assert "no ACK" in row.last_error
        assert step(store, config, dest, LATER).outcome == "sent"
    assert peer.seen == [cid, cid]
    assert len(peer.payloads[cid]) == 1  # the very same text both times


def test_an_ack_with_another_control_id_is_not_success(store: Store, tmp_path: Path) -> None:
    def wrong_once(_peer: Peer, er7: str, seen: int) -> str:
        return ack(er7, control_id="SOMEONE-ELSE") if seen == 0 else ack(er7)

    with serve(Peer(wrong_once)) as server:
        dest = mllp(server.port)
        config = app(tmp_path, dest)
        (cid,) = enqueue(store, "ehr", 1)
        wrong = step(store, config, dest)
        assert wrong.outcome == "retry"
        assert "'SOMEONE-ELSE'" in wrong.detail and "not counted as delivered" in wrong.detail
        assert rows(store)[cid].status == "pending"
        assert step(store, config, dest, LATER).outcome == "sent"


def test_ae_then_aa_is_retried_with_the_same_msh10(any_store: Store, tmp_path: Path) -> None:
    def error_once(_peer: Peer, er7: str, seen: int) -> str:
        return ack(er7, "AE", text="database busy") if seen == 0 else ack(er7)

    peer = Peer(error_once)
    with serve(peer) as server:
        dest = mllp(server.port)
        config = app(tmp_path, dest)
        cid, behind = enqueue(any_store, "ehr", 2)
        first = step(any_store, config, dest)
        assert (first.outcome, first.ack_code) == ("retry", "AE")
        assert "database busy" in first.detail
        assert step(any_store, config, dest, T0).outcome == "waiting"  # holds back `behind`
        assert step(any_store, config, dest, LATER).control_ids == (cid,)
        assert step(any_store, config, dest, LATER).control_ids == (behind,)
    assert peer.seen == [cid, cid, behind]
    assert len(peer.payloads[cid]) == 1
    row = rows(any_store)[cid]
    assert (row.status, row.attempts, row.last_ack_code) == ("sent", 2, "AA")


def test_ar_is_dead_at_once_logged_without_patient_data_and_later_messages_go(
    any_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    problem = OrderProblem(segment="PID", field="PID-3", message="unknown patient identifier",
                           code=204)  # fmt: skip

    def reject_first(_peer: Peer, er7: str, _seen: int) -> str:
        if msh10(er7) != rejected:
            return ack(er7)
        return build_ack(er7, "AR", [problem], sending_application="EHR",
                         sending_facility="CLINIC", now=T0)  # fmt: skip

    peer = Peer(reject_first)
    rejected, behind = enqueue(any_store, "ehr", 2)
    caplog.set_level(logging.DEBUG)
    with serve(peer) as server:
        dest = mllp(server.port)
        config = app(tmp_path, dest)
        dead = step(any_store, config, dest)
        assert (dead.outcome, dead.ack_code, dead.wait_seconds) == ("dead", "AR", 0.0)
        assert step(any_store, config, dest).control_ids == (behind,)
    assert peer.seen == [rejected, behind]  # never retried
    got = rows(any_store)
    assert (got[rejected].status, got[rejected].last_ack_code) == ("dead", "AR")
    assert got[behind].status == "sent"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        "ehr" in e and rejected in e and "unknown patient identifier" in e for e in errors
    ), errors
    loud = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert not [line for line in loud if PATIENT in line or MRN in line]
    stats = queue_stats(any_store)["ehr"]
    assert (stats["dead"], stats["sent"]) == (1, 1)
    assert any_store.status_summary()["outbox"] == {"dead": 1, "sent": 1}


@pytest.mark.parametrize(
    ("code", "outcome"),
    [("CA", "sent"), ("CE", "retry"), ("CR", "dead"), ("ZZ", "retry")],
)
def test_enhanced_mode_and_unknown_codes(
    store: Store, tmp_path: Path, code: str, outcome: str
) -> None:
    with serve(Peer(lambda _p, er7, _s: ack(er7, code))) as server:
        dest = mllp(server.port)
        enqueue(store, "ehr", 1)
        assert step(store, app(tmp_path, dest), dest).outcome == outcome


def test_parse_ack_reads_msa_and_err_texts() -> None:
    modern = build_ack(
        "MSH|^~\\&|SAA-LAB|REFLAB|EHR|CLINIC|20261121||ORU^R01^ORU_R01|C1|P|2.5.1",
        "AE", [OrderProblem(segment="OBX", field="OBX-5", message="value not numeric")],
        sending_application="EHR", sending_facility="CLINIC", now=T0,
    )  # fmt: skip
    parsed = parse_ack(modern)
    assert parsed is not None
    assert (parsed.code, parsed.control_id) == ("AE", "C1")
    assert "value not numeric" in parsed.text
    old = "MSH|^~\\&|E|C|S|R|2026||ACK|X|P|2.3.1\rMSA|AR|C2\rERR|PID^1^3^101&Required&HL70357"
    parsed_old = parse_ack(old)
    assert parsed_old is not None and parsed_old.text == "Required"
    assert parse_ack("MSH|^~\\&|E\rPID|1") is None


# --- connections ----------------------------------------------------------------------


def test_a_connection_closed_mid_message_is_retried_and_then_delivered(
    store: Store, tmp_path: Path
) -> None:
    def close_mid_message(conn: socket.socket) -> None:
        conn.recv(1000)  # part of a 2 MB frame, then hang up

    with RawPeer([close_mid_message]) as peer:
        dest = mllp(peer.port)
        config = app(tmp_path, dest)
        (cid,) = enqueue(store, "ehr", 1, comment="x" * 2_000_000)
        broken = step(store, config, dest)
        assert broken.outcome == "retry"
        assert "failed" in broken.detail or "closed" in broken.detail
        assert step(store, config, dest, LATER).outcome == "sent"
        assert peer.connections == 2
    assert rows(store)[cid].attempts == 2


def test_a_connection_closed_after_the_message_without_an_ack_is_retried(
    store: Store, tmp_path: Path
) -> None:
    def swallow(conn: socket.socket) -> None:
        read_frame(conn, FrameReader())

    with RawPeer([swallow]) as peer:
        dest = mllp(peer.port)
        config = app(tmp_path, dest)
        enqueue(store, "ehr", 1)
        closed = step(store, config, dest)
        assert closed.outcome == "retry" and "closed the connection" in closed.detail
        assert step(store, config, dest, LATER).outcome == "sent"


def test_an_ack_split_across_packets_is_read_whole(store: Store, tmp_path: Path) -> None:
    def dribble(conn: socket.socket) -> None:
        message = read_frame(conn, FrameReader())
        assert message is not None
        data = frame(ack(message.decode(), text="accepted " + "y" * 100).encode())
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index in range(0, len(data), 3):
            conn.sendall(data[index : index + 3])
            time.sleep(0.001)
        answer_all(conn)

    with RawPeer([dribble]) as peer:
        dest = mllp(peer.port)
        enqueue(store, "ehr", 1)
        assert step(store, app(tmp_path, dest), dest).outcome == "sent"


def test_an_idle_connection_the_peer_closed_is_replaced_not_failed(
    store: Store, tmp_path: Path
) -> None:
    closed = threading.Event()

    def one_then_hang_up(conn: socket.socket) -> None:
        message = read_frame(conn, FrameReader())
        assert message is not None
        conn.sendall(frame(ack(message.decode()).encode()))
        conn.close()
        closed.set()

    with RawPeer([one_then_hang_up]) as peer:
        dest = mllp(peer.port)
        config = app(tmp_path, dest)
        enqueue(store, "ehr", 2)
        link = MllpLink(config, dest)
        try:
            assert step(store, config, dest, link=link).outcome == "sent"
            assert closed.wait(WAIT)
            time.sleep(0.05)  # the FIN crosses loopback
            assert step(store, config, dest, link=link).outcome == "sent"  # not a retry
        finally:
            link.close()
        assert peer.connections == 2


def free_port() -> int:
    with socket.create_server((HOST, 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


def test_a_receiver_down_then_up_gets_everything_in_order(store: Store, tmp_path: Path) -> None:
    port = free_port()  # nothing listens: connections are refused
    dest = mllp(port)
    config = app(tmp_path, dest)
    queued = enqueue(store, "ehr", 5)
    retries = threading.Semaphore(0)

    def seen(step: DeliveryStep) -> None:
        if step.outcome == "retry":
            retries.release()

    worker = DeliveryWorker(store, config, dest, idle_seconds=0.05, on_step=seen)
    worker.start()
    try:
        for _ in range(3):  # refused, backed off and tried again, three times
            assert retries.acquire(timeout=WAIT)
        assert rows(store)[queued[0]].last_error is not None
        assert all(r.status == "pending" for r in rows(store).values())
        peer = Peer()
        with serve(peer, port):
            assert wait_for(lambda: all(r.status == "sent" for r in rows(store).values()))
    finally:
        worker.stop(WAIT)
    assert peer.seen == queued


def test_order_is_kept_per_destination_behind_a_retried_message(
    any_store: Store, tmp_path: Path
) -> None:
    def third_fails_once(_peer: Peer, er7: str, seen: int) -> str:
        return ack(er7, "AE") if msh10(er7) == queued[2] and seen == 0 else ack(er7)

    peer = Peer(third_fails_once)
    queued = enqueue(any_store, "ehr", 8)
    with serve(peer) as server:
        dest = mllp(server.port)
        worker = DeliveryWorker(any_store, app(tmp_path, dest), dest, idle_seconds=0.05)
        worker.start()
        try:
            assert wait_for(lambda: len(peer.seen) == 9)
        finally:
            worker.stop(WAIT)
    assert peer.seen == [*queued[:3], queued[2], *queued[3:]]
    assert all(r.status == "sent" for r in rows(any_store).values())


def test_a_restart_resumes_where_delivery_stopped_and_never_changes_an_msh10(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = Peer()
    first_store = Store(database_url)
    queued = enqueue(first_store, "ehr", 8)
    stored = {cid: row.payload for cid, row in rows(first_store).items()}
    real_record = delivery.record_delivery

    def crash_on_fourth(store: Store, message_id: int, outcome: str, **kw: object) -> None:
        if message_ids[message_id] == queued[3]:
            raise RuntimeError("simulated crash between the ACK and the database write")
        real_record(store, message_id, outcome, **kw)  # type: ignore[arg-type]

    message_ids = {row.id: cid for cid, row in rows(first_store).items()}
    monkeypatch.setattr(delivery, "record_delivery", crash_on_fourth)
    with serve(peer) as server:
        dest = mllp(server.port)
        config = app(tmp_path, dest)
        first = DeliveryWorker(first_store, config, dest, idle_seconds=0.05,
                               error_pause_seconds=WAIT)  # fmt: skip
        first.start()
        try:
            assert wait_for(lambda: queued[3] in peer.seen)
        finally:
            first.stop(WAIT)
        first_store.close()
        monkeypatch.setattr(delivery, "record_delivery", real_record)
        second_store = Store(database_url)  # a new process: nothing but the database
        second = DeliveryWorker(second_store, config, dest, idle_seconds=0.05)
        second.start()
        try:
            assert wait_for(lambda: len(peer.seen) == 9)
            assert wait_for(lambda: all(r.status == "sent" for r in rows(second_store).values()))
        finally:
            second.stop(WAIT)
        final = rows(second_store)
        second_store.close()
    # The one message sent but not recorded went again, with the same MSH-10 and text.
    assert peer.seen == [*queued[:4], queued[3], *queued[4:]]
    assert peer.payloads == {cid: {text} for cid, text in stored.items()}
    assert {cid: row.status for cid, row in final.items()} == dict.fromkeys(queued, "sent")


# --- retry policy ---------------------------------------------------------------------


def test_backoff_grows_by_the_factor_up_to_the_cap_within_the_jitter() -> None:
    policy = RetrySettings(base_seconds=5, factor=2, max_interval_seconds=600, jitter=0.2)
    rng = random.Random(1)
    for attempts in range(0, 40):
        nominal = min(600.0, 5.0 * 2.0**attempts)
        for _ in range(50):
            delay = retry_delay(policy, attempts, rng)
            assert nominal * 0.8 <= delay <= nominal * 1.2
    assert 480 <= retry_delay(policy, 10_000_000, rng) <= 720  # no overflow
    spread = {round(retry_delay(policy, 3, rng), 6) for _ in range(20)}
    assert len(spread) > 10  # jittered: senders do not retry in lockstep
    no_jitter = policy.model_copy(update={"jitter": 0.0})
    assert [retry_delay(no_jitter, a) for a in range(4)] == [5.0, 10.0, 20.0, 40.0]


def test_the_default_budget_outlasts_an_overnight_outage() -> None:
    policy = RetrySettings()
    assert policy.budget_hours >= 12
    assert policy.max_interval_seconds <= 600  # back within 10 minutes of the receiver


def test_the_next_attempt_is_scheduled_within_the_backoff_bounds(
    store: Store, tmp_path: Path
) -> None:
    policy = RetrySettings(base_seconds=2, factor=3, max_interval_seconds=30, jitter=0.25)
    dest = mllp(free_port(), retry=policy)
    config = app(tmp_path, dest)
    (cid,) = enqueue(store, "ehr", 1)
    now = T0
    for attempts in range(5):
        result = step(store, config, dest, now)
        assert result.outcome == "retry"
        row = rows(store)[cid]
        assert row.attempts == attempts + 1 and row.next_attempt_at is not None
        nominal = min(30.0, 2.0 * 3.0**attempts)
        delay = (row.next_attempt_at - now).total_seconds()
        assert nominal * 0.75 - 1e-3 <= delay <= nominal * 1.25 + 1e-3
        now = row.next_attempt_at
    assert rows(store)[cid].first_attempt_at == T0


def test_a_spent_retry_budget_dead_letters_the_message(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dest = mllp(free_port(), retry=FAST.model_copy(update={"budget_hours": 2.0}))
    config = app(tmp_path, dest)
    doomed, behind = enqueue(store, "ehr", 2)
    assert step(store, config, dest, T0).outcome == "retry"
    assert step(store, config, dest, T0 + timedelta(hours=1)).outcome == "retry"
    dead = step(store, config, dest, T0 + timedelta(hours=2, seconds=1))
    assert (dead.outcome, dead.control_ids) == ("dead", (doomed,))
    assert "gave up after 3 attempts over 2.0 h" in dead.detail
    assert any(r.levelno == logging.ERROR and doomed in r.getMessage() for r in caplog.records)
    head = step(store, config, dest, T0 + timedelta(hours=2, seconds=2))
    assert head.control_ids == (behind,)  # the dead one no longer blocks


# --- directories ----------------------------------------------------------------------


def test_a_directory_gets_one_atomic_file_per_message(store: Store, tmp_path: Path) -> None:
    outbox = tmp_path / "results"
    outbox.mkdir()
    dest = Destination(name="lis", type="directory", path=Path("results"), retry=FAST)
    config = app(tmp_path, dest)
    queued = enqueue(store, "lis", 3)
    for cid in queued:
        assert step(store, config, dest).control_ids == (cid,)
    assert step(store, config, dest).outcome == "idle"
    assert sorted(p.name for p in outbox.iterdir()) == sorted(f"{c}.hl7" for c in queued)
    got = rows(store)
    for cid in queued:
        assert (outbox / f"{cid}.hl7").read_bytes() == (got[cid].payload + "\r").encode()
        assert got[cid].delivered_to == str(outbox / f"{cid}.hl7")


def test_a_missing_directory_is_retried_not_lost(store: Store, tmp_path: Path) -> None:
    dest = Destination(name="lis", type="directory", path=Path("gone"), retry=FAST)
    config = app(tmp_path, dest)
    (cid,) = enqueue(store, "lis", 1)
    missing = step(store, config, dest)
    assert missing.outcome == "retry" and "does not exist" in missing.detail
    (tmp_path / "gone").mkdir()
    assert step(store, config, dest, LATER).outcome == "sent"
    assert (tmp_path / "gone" / f"{cid}.hl7").is_file()


def test_a_batch_directory_gets_one_fhs_bhs_file_per_run(store: Store, tmp_path: Path) -> None:
    outbox = tmp_path / "batches"
    outbox.mkdir()
    dest = Destination(name="lis", type="directory", path=outbox, batch=True, retry=FAST)
    config = app(tmp_path, dest)
    first_run = enqueue(store, "lis", 3)
    second_run = enqueue(store, "lis", 2)
    one = step(store, config, dest)
    assert (one.outcome, one.control_ids) == ("sent", tuple(first_run))
    two = step(store, config, dest)
    assert two.control_ids == tuple(second_run)
    assert step(store, config, dest).outcome == "idle"
    files = sorted(outbox.iterdir())
    assert len(files) == 2 and not [p for p in files if p.name.startswith(".")]
    got = rows(store)
    for run in (first_run, second_run):
        (path,) = [p for p in files if p.name == Path(got[run[0]].delivered_to or "").name]
        assert all(got[cid].delivered_to == str(path) for cid in run)
        assert path.name.startswith("run-")
        segments = path.read_bytes().decode().split("\r")
        assert segments[0].startswith("FHS|^~\\&|SAA-LAB|REFLAB|EHR|CLINIC|")
        assert segments[1].startswith("BHS|^~\\&|SAA-LAB|REFLAB|EHR|CLINIC|")
        assert segments[-3:] == [f"BTS|{len(run)}", "FTS|1", ""]
        assert [msh10(s) for s in segments if s.startswith("MSH|")] == run
        body = "\r".join(segments[2:-3])
        assert body == "\r".join(got[cid].payload for cid in run)
    assert_hl7_strict_valid(got[first_run[0]].payload, tmp_path / "report.txt")
    # A crash after the write and before the record: the same file is found, no conflict.
    with store.session() as s:
        for row in s.scalars(select(OutboxMessage)):
            row.status = "pending"
    assert step(store, config, dest).control_ids == tuple(first_run)
    assert len(list(outbox.iterdir())) == 2


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    make_pki(folder)
    make_pki(folder / "other")
    return folder


def server_context(pki: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    context.load_verify_locations(pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the client's certificate too
    return context


def test_tls_with_a_private_ca_and_a_client_certificate(
    store: Store, tmp_path: Path, pki: Path
) -> None:
    tls = TlsSettings(ca_file=pki / "ca.pem", cert_file=pki / "client.pem",
                      key_file=pki / "client.key")  # fmt: skip
    with RawPeer([], tls=server_context(pki)) as peer:
        dest = mllp(peer.port, tls=tls)
        config = app(tmp_path, dest)
        config.check_routes()
        queued = enqueue(store, "ehr", 3)
        assert step(store, config, dest).outcome == "sent"
        link = MllpLink(config, dest)
        try:  # one connection for several messages (TLS 1.3 session tickets do not spoil it)
            assert step(store, config, dest, link=link).outcome == "sent"
            assert step(store, config, dest, link=link).outcome == "sent"
        finally:
            link.close()
        assert peer.connections == 2
        assert peer.client_subjects and peer.tls_errors == []
    got = rows(store)
    assert all(got[c].delivered_to == f"mllps://{HOST}:{peer.port}" for c in queued)


def test_tls_refuses_a_server_its_ca_did_not_sign(store: Store, tmp_path: Path, pki: Path) -> None:
    tls = TlsSettings(ca_file=pki / "other" / "ca.pem", cert_file=pki / "client.pem",
                      key_file=pki / "client.key")  # fmt: skip
    with RawPeer([], tls=server_context(pki)) as peer:
        dest = mllp(peer.port, tls=tls)
        enqueue(store, "ehr", 1)
        refused = step(store, app(tmp_path, dest), dest)
        assert refused.outcome == "retry"
        assert "TLS handshake" in refused.detail and "certificate verify failed" in refused.detail


def test_a_missing_tls_file_stops_start_up(tmp_path: Path) -> None:
    tls = TlsSettings(ca_file=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="ca_file"):
        app(tmp_path, mllp(1, tls=tls)).check_routes()


# --- the worker -----------------------------------------------------------------------


def test_the_worker_wakes_when_notified_and_does_not_busy_loop(
    store: Store, tmp_path: Path
) -> None:
    dest = Destination(name="lis", type="directory", path=Path("lis"), retry=FAST)
    (tmp_path / "lis").mkdir()
    steps: list[DeliveryStep] = []
    worker = DeliveryWorker(store, app(tmp_path, dest), dest, idle_seconds=30,
                            on_step=steps.append)  # fmt: skip
    worker.start()
    try:
        assert wait_for(lambda: len(steps) == 1)  # found the queue empty; sleeps 30 s
        (cid,) = enqueue(store, "lis", 1)
        started = time.monotonic()
        worker.notify()
        assert wait_for(lambda: (tmp_path / "lis" / f"{cid}.hl7").exists())
        assert time.monotonic() - started < 2.0
        # Back to sleep on an empty queue first: otherwise it could send the next
        # message before the test marks it for a retry.
        assert wait_for(lambda: len(steps) >= 3 and steps[-1].outcome == "idle")
        # A head waiting for its retry an hour from now: the worker sleeps.
        (later,) = enqueue(store, "lis", 1)
        record_delivery(store, rows(store)[later].id, "retry",
                        next_attempt_at=datetime.now(UTC) + timedelta(hours=1))  # fmt: skip
        worker.notify()
        assert wait_for(lambda: steps[-1].outcome == "waiting")
        count = len(steps)
        time.sleep(0.3)
        assert len(steps) == count
        started = time.monotonic()
    finally:
        worker.stop(WAIT)
    assert time.monotonic() - started < 2.0 and not worker.is_alive()


def test_a_bug_in_a_step_is_logged_and_the_worker_carries_on(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    dest = Destination(name="lis", type="directory", path=Path("lis"), retry=FAST)
    (tmp_path / "lis").mkdir()
    real = delivery.deliver_once
    calls = []

    def buggy_once(*args: object, **kwargs: object) -> DeliveryStep:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("a bug")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(delivery, "deliver_once", buggy_once)
    (cid,) = enqueue(store, "lis", 1)
    worker = DeliveryWorker(store, app(tmp_path, dest), dest, error_pause_seconds=0.05)
    worker.start()
    try:
        assert wait_for(lambda: (tmp_path / "lis" / f"{cid}.hl7").exists())
    finally:
        worker.stop(WAIT)
    bug = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert bug and bug[0].exc_info is not None


def test_deliver_pending_sends_what_is_due_and_stops_at_a_failure(
    store: Store, tmp_path: Path
) -> None:
    (tmp_path / "outbox").mkdir()
    down = mllp(free_port())
    config = app(tmp_path, down)
    enqueue(store, "ehr", 2)
    enqueue(store, "file", 3)
    assert deliver_pending(store, config, now=lambda: T0) == {"ehr": 0, "file": 3}
    assert queue_stats(store)["ehr"]["pending"] == 2
    assert len(list((tmp_path / "outbox").glob("*.hl7"))) == 3


# --- the daemon -----------------------------------------------------------------------


def test_the_daemon_refuses_to_start_with_an_undeliverable_route(tmp_path: Path) -> None:
    path = write_config(tmp_path / "lab", '\n[routing]\ndefault = "ehr-typo"\n')
    config = load_config(path)
    store = Store(config.database_url)
    try:
        with pytest.raises(ConfigError, match="no destination named 'ehr-typo'"):
            Daemon(config, store).start()
    finally:
        store.close()


def test_the_daemon_delivers_an_export_over_mllp(tmp_path: Path) -> None:
    peer = Peer()
    with serve(peer) as server:
        extra = (
            f'\n[[destinations]]\nname = "ehr"\ntype = "mllp"\nhost = "{HOST}"\n'
            f'port = {server.port}\n\n[routing]\ndefault = "ehr"\n'
        )
        config = load_config(write_config(tmp_path / "lab", extra))
        store = Store(config.database_url)
        try:
            with Daemon(config, store):
                drop_file(SAMPLES / "RUN-G5-001.worklist.csv", config.inbox)
                drop_file(SAMPLES / "RUN-G5-001.txt", config.inbox)
                assert wait_for(lambda: store.status_summary()["outbox"] == {"sent": 12})
            assert len(peer.seen) == 12 and len(set(peer.seen)) == 12
            assert list(config.outbox.glob("*.hl7")) == []
            assert queue_stats(store)["ehr"]["sent"] == 12
        finally:
            store.close()
