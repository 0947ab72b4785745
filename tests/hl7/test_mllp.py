"""MLLP listener and client on 127.0.0.1 (port 0), the framing reader without sockets.

Each case is one of the failures peers' users reported (lessons-from-peers §15-16):
several messages per connection, frames split across packets, several frames in
one packet, messages beyond 4096/65536 bytes, ACKs split across packets, timeouts.
Every wait is bounded; the only sleeps are the few milliseconds between the
pieces of a deliberately split frame.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from saa_lab.errors import ConfigError, DeliveryError
from saa_lab.hl7 import MllpClient, MllpServer, build_ack, send_mllp
from saa_lab.hl7.mllp import FrameReader, MessageTooLargeError, decode_message, frame

HOST = "127.0.0.1"
WAIT = 5.0  # upper bound for any single wait in these tests


def order_message(control_id: str, *, note: str = "", charset: str = "") -> str:
    segments = [
        f"MSH|^~\\&|ONCO-EHR|CHILDRENS|SAA-LAB|REFLAB|20261120081500||ORM^O01|{control_id}|P|2.5.1"
        + (f"||||||{charset}" if charset else ""),
        "PID|1||MRN1^^^CHILDRENS^MR||Doe^Jane",
        f"ORC|NW|ORD-{control_id}",
        f"OBR|1|ORD-{control_id}||SAA^Asparaginase activity^L|||202611200815",
        "OBX|1|ST|SAA-FORM^Formulation^L||Oncaspar||||||F",
    ]
    if note:
        segments.append(f"NTE|1||{note}")
    return "\r".join(segments)


def msa(ack: str) -> list[str]:
    line = next(s for s in ack.split("\r") if s.startswith("MSA|"))
    return line.split("|")


class Recorder:
    """A handler that records what it got and ACKs AA (or raises when told to)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.fail = False
        self.lock = threading.Lock()

    def __call__(self, er7: str) -> str:
        if self.fail:
            raise ConnectionError("database is down")
        with self.lock:
            self.messages.append(er7)
        return build_ack(
            er7, "AA", [], sending_application="SAA-LAB", sending_facility="REFLAB",
            now=datetime.now(UTC),
        )  # fmt: skip


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder) -> Iterator[MllpServer]:
    with MllpServer(recorder, port=0, read_timeout=WAIT) as running:
        yield running


def connect(server: MllpServer) -> socket.socket:
    sock = socket.create_connection((HOST, server.port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def read_acks(sock: socket.socket, count: int) -> list[str]:
    reader = FrameReader()
    acks: list[bytes] = []
    deadline = time.monotonic() + WAIT
    while len(acks) < count:
        assert time.monotonic() < deadline, f"only {len(acks)} of {count} ACKs arrived"
        data = sock.recv(65536)
        assert data, "the server closed the connection"
        acks += reader.feed(data)
    return [a.decode("utf-8") for a in acks]


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


# --- the server -----------------------------------------------------------------------


def test_one_message_gets_an_ack_whose_msa_2_is_the_msh_10(server: MllpServer) -> None:
    ack = send_mllp(HOST, server.port, order_message("CTRL-1"), timeout=WAIT)
    assert msa(ack)[1:3] == ["AA", "CTRL-1"]


def test_three_messages_on_one_connection_get_three_acks_in_order(
    server: MllpServer, recorder: Recorder
) -> None:
    with MllpClient(HOST, server.port, timeout=WAIT) as client:
        acks = [client.send(order_message(f"M{n}")) for n in range(3)]
    assert [msa(a)[2] for a in acks] == ["M0", "M1", "M2"]
    assert [m.split("|")[9] for m in recorder.messages] == ["M0", "M1", "M2"]


def test_a_message_split_over_several_sends(server: MllpServer, recorder: Recorder) -> None:
    data = frame(order_message("SPLIT").encode())
    pieces = [data[:1], data[1:7], data[7:50], data[50:-1], data[-1:]]  # FS and CR apart
    with connect(server) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.005)
        (ack,) = read_acks(sock, 1)
    assert msa(ack)[2] == "SPLIT"
    assert recorder.messages == [order_message("SPLIT")]


def test_two_messages_in_one_send(server: MllpServer) -> None:
    with connect(server) as sock:
        sock.sendall(frame(order_message("A").encode()) + frame(order_message("B").encode()))
        acks = read_acks(sock, 2)
    assert [msa(a)[2] for a in acks] == ["A", "B"]


def test_a_message_over_64_kib(server: MllpServer, recorder: Recorder) -> None:
    big = order_message("BIG", note="x" * 200_000)
    assert len(big) > 65536
    ack = send_mllp(HOST, server.port, big, timeout=WAIT)
    assert msa(ack)[2] == "BIG"
    assert recorder.messages == [big]


def test_garbage_before_a_frame_is_ignored(server: MllpServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n" + frame(order_message("AFTER").encode()) + b"\r\n")
        (ack,) = read_acks(sock, 1)
    assert msa(ack)[2] == "AFTER"


def test_a_failing_handler_gets_ae_207_and_the_connection_stays_usable(
    server: MllpServer, recorder: Recorder
) -> None:
    with MllpClient(HOST, server.port, timeout=WAIT) as client:
        recorder.fail = True
        failed = client.send(order_message("DOWN"))
        recorder.fail = False
        stored = client.send(order_message("UP"))
    assert msa(failed)[1:3] == ["AE", "DOWN"]
    err = next(s for s in failed.split("\r") if s.startswith("ERR|")).split("|")
    assert err[3].startswith("207^")
    assert "temporarily unable to store; resend" in err[8]
    assert msa(stored)[1:3] == ["AA", "UP"]


def test_non_utf8_text_is_read_by_its_msh_18_and_answered_in_it(recorder: Recorder) -> None:
    message = order_message("LATIN", note="Müller", charset="8859/1")
    with MllpServer(recorder, port=0, read_timeout=WAIT) as server, connect(server) as sock:
        sock.sendall(frame(message.encode("latin-1")))
        (ack,) = read_acks(sock, 1)
    assert msa(ack)[2] == "LATIN"
    assert recorder.messages == [message]


def test_an_idle_connection_is_closed(recorder: Recorder) -> None:
    with MllpServer(recorder, port=0, read_timeout=0.2) as server, connect(server) as sock:
        started = time.monotonic()
        assert closed_by_peer(sock)
        assert time.monotonic() - started < WAIT


def test_an_oversized_message_closes_the_connection(recorder: Recorder) -> None:
    with MllpServer(recorder, port=0, max_message_bytes=1000, read_timeout=WAIT) as server:
        with connect(server) as sock:
            sock.sendall(frame(order_message("HUGE", note="y" * 5000).encode()))
            assert closed_by_peer(sock)
        ack = send_mllp(HOST, server.port, order_message("SMALL"), timeout=WAIT)
    assert msa(ack)[2] == "SMALL"
    assert [m.split("|")[9] for m in recorder.messages] == ["SMALL"]


def test_an_empty_frame_gets_no_ack(server: MllpServer) -> None:
    with connect(server) as sock:
        sock.sendall(frame(b"") + frame(order_message("REAL").encode()))
        (ack,) = read_acks(sock, 1)
    assert msa(ack)[2] == "REAL"


def test_stop_closes_open_connections_and_joins_every_thread(recorder: Recorder) -> None:
    server = MllpServer(recorder, port=0, read_timeout=60)
    server.start()
    socks = [connect(server) for _ in range(3)]
    try:
        send_mllp(HOST, server.port, order_message("ONE"), timeout=WAIT)
        assert server.should_keep_running()
        started = time.monotonic()
        server.stop(timeout=WAIT)
        assert time.monotonic() - started < 2.0  # woken, not waiting for the 60 s idle timeout
        assert not server.should_keep_running()
        assert all(closed_by_peer(sock) for sock in socks)
        mllp_threads = [t.name for t in threading.enumerate() if t.name.startswith("saa-lab-mllp")]
        assert mllp_threads == []
    finally:
        for sock in socks:
            sock.close()
    with pytest.raises(DeliveryError, match="cannot connect"):
        send_mllp(HOST, server.port, order_message("LATE"), timeout=1.0)


def test_too_many_connections_are_refused(recorder: Recorder) -> None:
    with (
        MllpServer(recorder, port=0, max_connections=1, read_timeout=WAIT) as server,
        connect(server) as first,
    ):
        first.sendall(frame(order_message("FIRST").encode()))
        read_acks(first, 1)  # the first connection is certainly registered
        with connect(server) as second:
            assert closed_by_peer(second)


def test_a_port_in_use_is_a_config_error(server: MllpServer, recorder: Recorder) -> None:
    with pytest.raises(ConfigError, match=f"127.0.0.1:{server.port}"):
        MllpServer(recorder, port=server.port).start()


# --- the client -----------------------------------------------------------------------


def fake_peer(behaviour: Callable[[socket.socket], None]) -> tuple[int, threading.Thread]:
    """A one-connection server on 127.0.0.1 that runs ``behaviour`` on the accepted socket."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(1)
    listener.settimeout(WAIT)

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(WAIT)
                behaviour(conn)

    thread = threading.Thread(target=run, name="fake-mllp-peer")
    thread.start()
    return listener.getsockname()[1], thread


def receive_frame(conn: socket.socket) -> bytes:
    reader = FrameReader()
    while True:
        got = reader.feed(conn.recv(4096))
        if got:
            return got[0]


def test_the_client_reads_an_ack_split_across_packets() -> None:
    ack = "MSH|^~\\&|R|R|S|S|20261120||ACK^O01^ACK|A1|P|2.5.1\rMSA|AA|SPLIT-ACK|" + "z" * 9000

    def split_ack(conn: socket.socket) -> None:
        receive_frame(conn)
        data = frame(ack.encode())
        for start in range(0, len(data), 1000):
            conn.sendall(data[start : start + 1000])
            time.sleep(0.002)

    port, thread = fake_peer(split_ack)
    try:
        assert send_mllp(HOST, port, order_message("SPLIT-ACK"), timeout=WAIT) == ack
    finally:
        thread.join(WAIT)


def test_the_client_times_out_when_no_ack_comes() -> None:
    release = threading.Event()

    def silent(conn: socket.socket) -> None:
        receive_frame(conn)
        release.wait(WAIT)

    port, thread = fake_peer(silent)
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="no ACK"):
            send_mllp(HOST, port, order_message("SILENCE"), timeout=0.3)
        assert time.monotonic() - started < 2.0
    finally:
        release.set()
        thread.join(WAIT)


def test_the_client_reports_a_connection_closed_before_the_ack() -> None:
    port, thread = fake_peer(receive_frame)
    try:
        with pytest.raises(DeliveryError, match="closed the connection"):
            send_mllp(HOST, port, order_message("GONE"), timeout=WAIT)
    finally:
        thread.join(WAIT)


# --- framing without sockets ----------------------------------------------------------


def test_frame_reader_byte_by_byte() -> None:
    reader = FrameReader()
    data = b"\r\n" + frame(b"MSH|one") + frame(b"MSH|two")
    got: list[bytes] = []
    for byte in data:
        got += reader.feed(bytes([byte]))
    assert got == [b"MSH|one", b"MSH|two"]
    assert not reader.pending
    assert reader.garbage_bytes == 2


def test_frame_reader_restarts_on_a_start_block_inside_a_frame() -> None:
    reader = FrameReader()
    assert reader.feed(b"\x0bMSH|lost\x0bMSH|kept\x1c\r") == [b"MSH|kept"]
    assert reader.garbage_bytes == len(b"MSH|lost")


def test_frame_reader_accepts_an_end_block_without_carriage_return() -> None:
    assert FrameReader().feed(b"\x0bMSH|a\x1c\x0bMSH|b\x1c\r") == [b"MSH|a", b"MSH|b"]


def test_frame_reader_limits_the_size_across_feeds() -> None:
    reader = FrameReader(max_message_bytes=10)
    assert reader.feed(b"\x0b" + b"a" * 10) == []
    with pytest.raises(MessageTooLargeError):
        reader.feed(b"b")
    assert FrameReader(max_message_bytes=10).feed(frame(b"a" * 10)) == [b"a" * 10]


def test_decode_message_follows_msh_18_and_falls_back_to_latin_1() -> None:
    utf8 = "MSH|^~\\&|A|B|C|D|2026||ORM^O01|X|P|2.5.1\rNTE|1||Müller"
    assert decode_message(utf8.encode()) == (utf8, "utf-8")
    latin = utf8.replace("2.5.1", "2.5.1||||||8859/1")
    assert decode_message(latin.encode("latin-1")) == (latin, "iso8859-1")
    assert decode_message(utf8.encode("latin-1")) == (utf8, "latin-1")
