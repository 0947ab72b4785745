"""Who may talk to the MLLP order listener (issue 8, items 5 and 6), on 127.0.0.1 only.

Hostile and careless clients: an address not on the allow-list, plain TCP to a TLS
listener, TLS without a client certificate or with one from another CA, a client
that connects and never handshakes, too many connections, an oversized message, an
idle connection. Each is refused without a byte of ACK and without reaching the
handler, and the listener goes on serving the next client. Certificates are made
with the openssl command, as in tests/core/test_delivery.py. Waits are on log
records and socket events, each bounded by WAIT; there are no sleeps.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import make_pki, write_config
from test_mllp import msa, order_message

from saa_lab.config import load_config
from saa_lab.errors import ConfigError, DeliveryError
from saa_lab.hl7 import MllpClient, MllpServer, build_ack
from saa_lab.hl7.mllp import (
    LOOPBACK_ONLY,
    address_allowed,
    exposure_warnings,
    frame,
    parse_allow_list,
    server_tls_context,
)
from saa_lab.intake import order_listener
from saa_lab.store import Store

HOST = "127.0.0.1"
WAIT = 5.0  # upper bound for any single wait in these tests
LOGGER = "saa_lab.hl7.mllp"


class Recorder:
    """A handler that records the control ids it got and ACKs AA."""

    def __init__(self) -> None:
        self.control_ids: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, er7: str) -> str:
        with self.lock:
            self.control_ids.append(er7.split("|")[9])
        return build_ack(
            er7, "AA", [], sending_application="SAA-LAB", sending_facility="REFLAB",
            now=datetime.now(UTC),
        )  # fmt: skip


class LogWatch(logging.Handler):
    """Collects the listener's log records; ``wait_for`` blocks until one matches."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def find(self, text: str, level: int | None = None) -> list[logging.LogRecord]:
        with self.changed:
            return [
                r for r in self.records
                if text in r.getMessage() and (level is None or r.levelno == level)
            ]  # fmt: skip

    def wait_for(self, text: str, level: int | None = None) -> logging.LogRecord:
        with self.changed:
            self.changed.wait_for(lambda: bool(self.find(text, level)), timeout=WAIT)
        found = self.find(text, level)
        assert found, f"no log record {text!r} within {WAIT} s"
        return found[0]


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    logger = logging.getLogger(LOGGER)
    watch, level = LogWatch(), logger.level
    logger.addHandler(watch)
    logger.setLevel(logging.DEBUG)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def send_and_read(sock: socket.socket, payload: bytes) -> bytes:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # closed first: fine
        sock.sendall(payload)
    return read_until_closed(sock)


# --- certificates -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``lab/``: our CA, server and client; ``other/``: a CA we do not trust, and its client."""
    folder = tmp_path_factory.mktemp("listener-pki")
    make_pki(folder / "lab")
    make_pki(folder / "other")
    return folder


def client_context(pki: Path, cert_from: str | None = "lab") -> ssl.SSLContext:
    """A client that trusts our CA and presents ``cert_from``'s client certificate."""
    context = ssl.create_default_context(cafile=str(pki / "lab" / "ca.pem"))
    if cert_from is not None:
        context.load_cert_chain(pki / cert_from / "client.pem", pki / cert_from / "client.key")
    return context


def tls_server(
    recorder: Recorder, pki: Path, *, require_client_cert: bool = True, **options: float
) -> MllpServer:
    context = server_tls_context(
        pki / "lab" / "server.pem",
        pki / "lab" / "server.key",
        client_ca_file=pki / "lab" / "ca.pem" if require_client_cert else None,
        require_client_cert=require_client_cert,
    )
    return MllpServer(recorder, port=0, ssl_context=context, **options)  # type: ignore[arg-type]


def tls_send(port: int, context: ssl.SSLContext, control_id: str) -> str:
    with MllpClient(HOST, port, timeout=WAIT, ssl_context=context) as client:
        return client.send(order_message(control_id))


# --- the allow-list ---------------------------------------------------------------------


def test_a_client_not_on_the_allow_list_is_closed_unread_and_logged(
    recorder: Recorder, logs: LogWatch
) -> None:
    with MllpServer(recorder, port=0, allow=["10.0.0.0/8"], read_timeout=WAIT) as server:
        with connect(server.port) as sock:
            got = send_and_read(sock, frame(order_message("INTRUDER").encode()))
        assert got == b""  # no ACK, not even an AR
        record = logs.wait_for("not in [hl7] listen_allow", logging.WARNING)
        assert record.getMessage().startswith(f"MLLP: refused {HOST}:")
        assert recorder.control_ids == []  # the handler never ran
        assert not logs.find("connection from")  # refused before a connection thread


def test_an_allowed_client_gets_aa(recorder: Recorder) -> None:
    allow = ["10.20.0.0/16", "127.0.0.1"]
    with (
        MllpServer(recorder, port=0, allow=allow, read_timeout=WAIT) as server,
        MllpClient(HOST, server.port, timeout=WAIT) as client,
    ):
        ack = client.send(order_message("WELCOME"))
    assert msa(ack)[1:3] == ["AA", "WELCOME"]
    assert recorder.control_ids == ["WELCOME"]


def test_repeated_refusals_of_one_address_do_not_flood_the_log(
    recorder: Recorder, logs: LogWatch
) -> None:
    with MllpServer(recorder, port=0, allow=["10.0.0.0/8"], read_timeout=WAIT) as server:
        for _ in range(3):
            with connect(server.port) as sock:
                assert read_until_closed(sock) == b""
        logs.wait_for("refused", logging.DEBUG)
        with logs.changed:
            logs.changed.wait_for(lambda: len(logs.find("refused")) == 3, timeout=WAIT)
    assert len(logs.find("refused", logging.WARNING)) == 1
    assert len(logs.find("refused", logging.DEBUG)) == 2


def test_the_ipv6_loopback_is_allowed_by_default(recorder: Recorder) -> None:
    try:
        server = MllpServer(recorder, host="::1", port=0, read_timeout=WAIT)
        server.start()
    except ConfigError:
        pytest.skip("no IPv6 loopback here")
    try:
        with MllpClient("::1", server.port, timeout=WAIT) as client:
            assert msa(client.send(order_message("V6")))[1:3] == ["AA", "V6"]
    finally:
        server.stop()


def test_addresses_networks_ipv6_and_ipv4_mapped_addresses() -> None:
    networks = parse_allow_list(["127.0.0.1", "10.20.0.0/16", "fd00:5::/32"])
    assert address_allowed("127.0.0.1", networks)
    assert not address_allowed("127.0.0.2", networks)
    assert address_allowed("10.20.255.1", networks)
    assert not address_allowed("10.21.0.1", networks)
    assert address_allowed("fd00:5::1", networks)
    assert not address_allowed("fd00:6::1", networks)
    # A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d.
    assert address_allowed("::ffff:10.20.0.9", networks)
    assert not address_allowed("::ffff:192.168.1.1", networks)
    assert address_allowed("fe80::1%eth0", parse_allow_list(["fe80::/10"]))
    assert not address_allowed("not-an-address", networks)
    assert parse_allow_list([ipaddress.ip_network("::1")]) == (ipaddress.ip_network("::1"),)
    # Default: this machine only.
    default = MllpServer(Recorder(), port=0).allow
    assert address_allowed("127.0.0.1", default) and address_allowed("::1", default)
    assert address_allowed("::ffff:127.0.0.1", default)
    assert not address_allowed("10.0.0.1", default)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["clinic.example.org"], "'clinic.example.org' is not an IP address or network"),
        (["10.20.0.1/16"], "did you mean '10.20.0.0/16'?"),
        ([], "empty"),
    ],
)
def test_a_bad_allow_list_is_refused(entries: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_allow_list(entries)
    with pytest.raises(ValueError, match=message):
        MllpServer(Recorder(), port=0, allow=entries)


# --- TLS --------------------------------------------------------------------------------


def test_tls_with_a_client_certificate_from_our_ca_gets_aa(
    recorder: Recorder, pki: Path, logs: LogWatch
) -> None:
    with tls_server(recorder, pki, read_timeout=WAIT) as server:
        ack = tls_send(server.port, client_context(pki), "MUTUAL")
    assert msa(ack)[1:3] == ["AA", "MUTUAL"]
    assert recorder.control_ids == ["MUTUAL"]
    accepted = logs.wait_for("client certificate CN=client-lab", logging.INFO)
    assert "TLSv1." in accepted.getMessage()


def test_plain_tcp_to_the_tls_listener_is_refused(
    recorder: Recorder, pki: Path, logs: LogWatch
) -> None:
    with tls_server(recorder, pki, read_timeout=WAIT) as server, connect(server.port) as sock:
        got = send_and_read(sock, frame(order_message("PLAIN").encode()))
        assert b"MSA" not in got
        record = logs.wait_for("TLS handshake with", logging.WARNING)
        assert f"{HOST}:" in record.getMessage() and "closed" in record.getMessage()
    assert recorder.control_ids == []


@pytest.mark.parametrize(("cert_from", "reason"), [(None, "certificate"), ("other", "certificate")])
def test_tls_without_a_client_certificate_or_with_another_cas_is_refused(
    recorder: Recorder, pki: Path, logs: LogWatch, cert_from: str | None, reason: str
) -> None:
    with tls_server(recorder, pki, read_timeout=WAIT) as server:
        # TLS 1.3 clients finish their side before the server checks their
        # certificate: the refusal arrives at the first read.
        with pytest.raises(DeliveryError):
            tls_send(server.port, client_context(pki, cert_from), "REFUSED")
        record = logs.wait_for("TLS handshake with", logging.WARNING)
        assert reason in record.getMessage().lower()
        assert recorder.control_ids == []
        # The listener goes on: a client with the right certificate is served.
        assert msa(tls_send(server.port, client_context(pki), "NEXT"))[1:3] == ["AA", "NEXT"]
    assert recorder.control_ids == ["NEXT"]


def test_tls_without_required_client_certificates(recorder: Recorder, pki: Path) -> None:
    with tls_server(recorder, pki, require_client_cert=False, read_timeout=WAIT) as server:
        ack = tls_send(server.port, client_context(pki, cert_from=None), "SERVER-ONLY")
    assert msa(ack)[1:3] == ["AA", "SERVER-ONLY"]


def test_tls_below_1_2_is_refused(recorder: Recorder, pki: Path, logs: LogWatch) -> None:
    assert (
        server_tls_context(
            pki / "lab" / "server.pem", pki / "lab" / "server.key", require_client_cert=False
        ).minimum_version
        == ssl.TLSVersion.TLSv1_2
    )
    context = client_context(pki)
    try:  # an old client: offers TLS 1.0 and 1.1 only (security level 0 lets it)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer TLS 1.1")
    with tls_server(recorder, pki, read_timeout=WAIT) as server:
        with pytest.raises(DeliveryError):
            tls_send(server.port, context, "OLD")
        record = logs.wait_for("TLS handshake with", logging.WARNING)
    assert "PROTOCOL" in record.getMessage().upper()  # refused by the server, not the client
    assert recorder.control_ids == []


def test_require_client_cert_needs_a_client_ca() -> None:
    with pytest.raises(ValueError, match="client_ca_file"):
        server_tls_context("server.pem", "server.key", require_client_cert=True)


def test_a_client_that_never_handshakes_blocks_no_one_and_is_closed(
    recorder: Recorder, pki: Path, logs: LogWatch
) -> None:
    with (
        tls_server(recorder, pki, read_timeout=WAIT, handshake_timeout=1.0) as server,
        connect(server.port) as silent,
    ):
        logs.wait_for(f"connection from {HOST}:{silent.getsockname()[1]}")  # it is in
        ack = tls_send(server.port, client_context(pki), "MEANWHILE")
        assert msa(ack)[1:3] == ["AA", "MEANWHILE"]
        assert not logs.find("no TLS handshake")  # served while the silent one waited
        assert read_until_closed(silent) == b""
        record = logs.wait_for("no TLS handshake from", logging.WARNING)
        assert f"{HOST}:{silent.getsockname()[1]}" in record.getMessage()


def test_stop_does_not_wait_for_a_pending_handshake(
    recorder: Recorder, pki: Path, logs: LogWatch
) -> None:
    server = tls_server(recorder, pki, read_timeout=60, handshake_timeout=60)
    server.start()
    with connect(server.port) as silent:
        logs.wait_for(f"connection from {HOST}:{silent.getsockname()[1]}")
        started = time.monotonic()
        server.stop(timeout=WAIT)
        assert time.monotonic() - started < 2.0  # woken, not waiting 60 s
        assert read_until_closed(silent) == b""
    assert not [t for t in threading.enumerate() if t.name.startswith("saa-lab-mllp")]


# --- limits, through the configuration --------------------------------------------------


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[Callable[[str], MllpServer]]:
    """``make(toml)``: the listener ``saa-lab watch`` would start for ``[hl7]`` + ``toml``."""
    stores: list[Store] = []

    def make(toml: str) -> MllpServer:
        config = load_config(write_config(tmp_path / "lab", f"\n[hl7]\nlisten_port = 0\n{toml}"))
        store = Store(config.database_url)
        stores.append(store)
        listener = order_listener(config, store)
        assert listener is not None
        return listener

    yield make
    for store in stores:
        store.close()


def test_too_many_connections_are_refused(
    configured: Callable[[str], MllpServer], logs: LogWatch
) -> None:
    with (
        configured("listen_max_connections = 1") as server,
        MllpClient(HOST, server.port, timeout=WAIT) as first,
    ):
        assert server.max_connections == 1
        assert msa(first.send(order_message("FIRST")))[2] == "FIRST"  # registered
        with connect(server.port) as second:
            assert send_and_read(second, frame(order_message("SECOND").encode())) == b""
        logs.wait_for("1 connections open; refused", logging.WARNING)
        assert msa(first.send(order_message("THIRD")))[2] == "THIRD"  # still served


def test_an_oversized_message_is_refused_and_the_next_client_served(
    configured: Callable[[str], MllpServer], logs: LogWatch
) -> None:
    with configured("listen_max_message_bytes = 1000") as server:
        with connect(server.port) as sock:
            got = send_and_read(sock, frame(order_message("HUGE", note="y" * 5000).encode()))
        assert got == b""  # closed, no ACK: we cannot ACK what we did not read
        logs.wait_for("exceeds 1000 bytes; connection closed", logging.ERROR)
        with MllpClient(HOST, server.port, timeout=WAIT) as client:
            assert msa(client.send(order_message("SMALL")))[2] == "SMALL"


def test_an_idle_connection_is_closed(
    configured: Callable[[str], MllpServer], logs: LogWatch
) -> None:
    with configured("listen_read_timeout_seconds = 0.2") as server, connect(server.port) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < WAIT
        logs.wait_for("closing idle connection", logging.INFO)


def test_the_configured_allow_list_refuses_this_machine(
    configured: Callable[[str], MllpServer], logs: LogWatch
) -> None:
    with configured('listen_allow = ["10.0.0.0/8", "fd00::/8"]') as server:
        with connect(server.port) as sock:
            assert send_and_read(sock, frame(order_message("NO").encode())) == b""
        logs.wait_for("not in [hl7] listen_allow", logging.WARNING)


def test_a_listener_open_to_the_network_is_warned_about_at_start() -> None:
    # Checked without binding 0.0.0.0, which would open a port to the network.
    loopback, clinics = parse_allow_list(LOOPBACK_ONLY), parse_allow_list(["10.20.0.0/16"])
    assert exposure_warnings("127.0.0.1", loopback, tls=False) == []
    assert exposure_warnings("::1", clinics, tls=False) == []
    assert exposure_warnings("localhost", clinics, tls=False) == []
    nobody, clear_text = exposure_warnings("0.0.0.0", loopback, tls=False)
    assert "only this machine may connect" in nobody and "listen_allow" in nobody
    assert "unencrypted" in clear_text
    assert exposure_warnings("10.20.0.1", clinics, tls=True) == []
    assert exposure_warnings("::", loopback, tls=True) == [nobody.replace("0.0.0.0", "::")]


# --- configuration errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('listen_allow = ["10.20.0.0/16", "clinic.example.org"]', "'clinic.example.org'"),
        ('listen_allow = ["10.20.0.1/16"]', "did you mean '10.20.0.0/16'?"),
        ("listen_allow = []", "no client could connect"),
    ],
)
def test_a_bad_allow_entry_is_a_config_error_naming_the_key(
    tmp_path: Path, toml: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=r"hl7\.listen_allow") as raised:
        load_config(write_config(tmp_path / "lab", f"\n[hl7]\nlisten_port = 0\n{toml}\n"))
    assert expected in str(raised.value)


def test_one_address_may_be_written_without_a_list(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "lab", '\n[hl7]\nlisten_allow = "10.1.2.3"\n'))
    assert config.hl7.listen_allow == ("10.1.2.3",)
    defaults = load_config(write_config(tmp_path / "d", "")).hl7
    assert defaults.listen_allow == ("127.0.0.0/8", "::1")
    assert defaults.listen_max_connections == 64 and defaults.listen_tls is None


def tls_toml(pki: Path, **override: str) -> str:
    files = {
        "cert_file": str(pki / "lab" / "server.pem"),
        "key_file": str(pki / "lab" / "server.key"),
        "client_ca_file": str(pki / "lab" / "ca.pem"),
        **override,
    }
    lines = [f'{key} = "{value}"' for key, value in files.items() if value]
    return "\n[hl7.listen_tls]\n" + "\n".join(lines) + "\nhandshake_timeout_seconds = 2\n"


@pytest.fixture
def store() -> Iterator[Store]:
    store = Store("sqlite://")
    yield store
    store.close()


@pytest.mark.parametrize("key", ["cert_file", "key_file", "client_ca_file"])
def test_a_missing_tls_file_is_a_config_error_naming_the_key(
    tmp_path: Path, pki: Path, store: Store, key: str
) -> None:
    toml = "\n[hl7]\nlisten_port = 0\n" + tls_toml(pki, **{key: "missing.pem"})
    config = load_config(write_config(tmp_path / "lab", toml))
    with pytest.raises(ConfigError, match=f"hl7.listen_tls.{key}") as raised:
        order_listener(config, store)
    assert str(tmp_path / "lab" / "missing.pem") in str(raised.value)


def test_an_unusable_tls_file_is_a_config_error_naming_the_key(
    tmp_path: Path, pki: Path, store: Store
) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "garbage.pem").write_text("not a certificate\n")
    for key in ("cert_file", "client_ca_file"):
        toml = "\n[hl7]\nlisten_port = 0\n" + tls_toml(pki, **{key: "garbage.pem"})
        config = load_config(write_config(tmp_path / "lab", toml))
        with pytest.raises(ConfigError, match=f"hl7.listen_tls.{key}"):
            order_listener(config, store)


def test_require_client_cert_without_a_client_ca_is_a_config_error(
    tmp_path: Path, pki: Path
) -> None:
    toml = "\n[hl7]\nlisten_port = 0\n" + tls_toml(pki, client_ca_file="")
    with pytest.raises(ConfigError, match=r"hl7\.listen_tls.*client_ca_file"):
        load_config(write_config(tmp_path / "lab", toml))
    relaxed = toml + "require_client_cert = false\n"
    config = load_config(write_config(tmp_path / "lab", relaxed))
    assert config.hl7.listen_tls is not None and not config.hl7.listen_tls.require_client_cert


# --- saa-lab watch ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def test_watch_starts_the_tls_listener_with_its_allow_list(tmp_path: Path, pki: Path) -> None:
    port = _free_port()
    toml = (
        f'\n[hl7]\nlisten_port = {port}\nlisten_allow = ["127.0.0.1", "10.20.0.0/16"]\n'
        "listen_max_connections = 4\n" + tls_toml(pki)
    )
    config_path = write_config(tmp_path / "lab", toml)
    process = subprocess.Popen(
        [sys.executable, "-m", "saa_lab", "--config", str(config_path), "watch"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines = iter(process.stderr.readline, "")
        assert any("saa-lab watching" in line for line in lines)
        ack = tls_send(port, client_context(pki), "WATCHED")
        assert msa(ack)[2] == "WATCHED"
        with connect(port) as plain:  # plain TCP: no ACK
            assert b"MSA" not in send_and_read(plain, frame(order_message("PLAIN").encode()))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_watch_stops_at_start_on_a_missing_tls_file(tmp_path: Path, pki: Path) -> None:
    toml = f"\n[hl7]\nlisten_port = {_free_port()}\n" + tls_toml(pki, key_file="nope.key")
    config_path = write_config(tmp_path / "lab", toml)
    done = subprocess.run(
        [sys.executable, "-m", "saa_lab", "--config", str(config_path), "watch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "hl7.listen_tls.key_file" in done.stderr and "nope.key" in done.stderr
