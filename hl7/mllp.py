"""MLLP (HL7 v2 over TCP): a framed reader, a threaded listener and a small client.

Framing (HL7 v2 Appendix C, MLLP release 1): each message travels as
``0x0B <message> 0x1C 0x0D``. What this module guarantees, because the
libraries peers use do not (lessons-from-peers §15-16):

* any number of messages per connection, answered one ACK each, in order;
* frames split across TCP packets, and several frames in one packet;
* messages of any size up to ``max_message_bytes`` (default 16 MiB); a larger
  frame closes the connection (logged): we cannot ACK what we did not read;
* bytes outside a frame (line feeds after the trailer, noise) are dropped
  with a warning; a start byte inside an unfinished frame restarts the frame;
* a connection idle for ``read_timeout`` seconds (default 60) is closed;
* sends and reads time out; the client reads until the end of block, however
  the ACK is split.

Who may connect (the listener; lessons-from-peers §16, issue 8):

* the listener binds 127.0.0.1 unless told otherwise;
* a client whose address is not in ``allow`` (addresses and CIDR networks,
  IPv4 and IPv6; default: loopback only, whatever ``host`` is) is closed at
  once, before a byte is read, and logged at WARNING with its address; an
  IPv4-mapped IPv6 address (``::ffff:10.0.0.5``, from a dual-stack socket) is
  matched as the IPv4 address it carries;
* at most ``max_connections`` connections at once (default 64); one more is
  closed at once, logged at WARNING;
* with ``ssl_context`` (see :func:`server_tls_context`: TLS 1.2 or later,
  client certificates checked against a CA when required) the handshake runs
  in the connection's thread, bounded by ``handshake_timeout`` and woken by
  ``stop()``: a client that connects and never completes it holds one
  connection slot for at most that long and never blocks the accept loop. A
  failed or timed-out handshake is logged at WARNING with the address, and the
  connection closed;
* a message larger than ``max_message_bytes`` is not answered (we cannot ACK
  what we did not read; an AR would need its MSH-10): the connection is closed
  and an ERROR logged. The sender's engine sees the connection drop and retries
  or alerts; the next connection is served as usual.

Text: a frame is decoded with the character set its MSH-18 names (UTF-8 when
absent; Latin-1 as a last resort, with a warning) and the ACK is encoded the
same way. An empty frame (some engines' keep-alive) is ignored without an ACK.

Lifecycle: :class:`MllpServer` is a context manager; ``start()`` binds and
starts the listener thread, one thread per connection; ``stop()`` wakes every
thread through a self-pipe, closes the sockets and joins the threads.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import select
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from saa_lab.errors import ConfigError, DeliveryError
from saa_lab.faults import crash_point

from .orders import build_ack, storage_failure_problem

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MLLP_PORT",
    "DEFAULT_READ_TIMEOUT",
    "LOOPBACK_ONLY",
    "FrameReader",
    "MessageTooLargeError",
    "MllpClient",
    "MllpServer",
    "Network",
    "address_allowed",
    "exposure_warnings",
    "frame",
    "parse_allow_list",
    "send_mllp",
    "server_tls_context",
]

log = logging.getLogger(__name__)

START_BLOCK: Final = b"\x0b"
END_BLOCK: Final = b"\x1c"
CARRIAGE_RETURN: Final = b"\x0d"
TRAILER: Final = END_BLOCK + CARRIAGE_RETURN
DEFAULT_MLLP_PORT: Final = 2575  # IANA "hl7"
DEFAULT_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
DEFAULT_READ_TIMEOUT: Final = 60.0
DEFAULT_MAX_CONNECTIONS: Final = 64
DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
# Who may connect unless configured: this machine only, over IPv4 or IPv6.
LOOPBACK_ONLY: Final = ("127.0.0.0/8", "::1")
_RECV_BYTES: Final = 65536
# A refused address is logged at WARNING at most once per this many seconds
# (a scanner must not flood the log); the refusals in between at DEBUG.
_REFUSAL_LOG_INTERVAL: Final = 60.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# MSH-18 (HL7 table 0211) -> Python codec.
_CHARSETS: Final[dict[str, str]] = {
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    **{f"8859/{n}": f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
}


class MessageTooLargeError(ValueError):
    """A frame grew beyond the configured maximum; the connection must be closed."""


def frame(message: bytes) -> bytes:
    """``message`` wrapped in the MLLP start and end blocks."""
    return START_BLOCK + message + TRAILER


class FrameReader:
    """Turns a byte stream into MLLP message payloads (no I/O; feed it what arrives).

    ``feed(data)`` returns the payloads completed by ``data``, in order, and
    raises :class:`MessageTooLargeError` once an unfinished frame exceeds
    ``max_message_bytes``. ``garbage_bytes`` counts what was dropped outside frames.
    """

    def __init__(self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self.garbage_bytes = 0
        self._buffer = bytearray()
        self._in_frame = False
        self._scanned = 0  # bytes of the open frame already searched for the trailer

    @property
    def pending(self) -> bool:
        """True while a frame has started but not ended."""
        return self._in_frame

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages: list[bytes] = []
        while self._buffer:
            if not self._in_frame:
                start = self._buffer.find(START_BLOCK)
                self._drop(len(self._buffer) if start == -1 else start)
                if start == -1:
                    break
                del self._buffer[:1]
                self._in_frame, self._scanned = True, 0
                continue
            end = self._buffer.find(END_BLOCK, self._scanned)
            restart = self._buffer.find(START_BLOCK, self._scanned, end if end != -1 else None)
            if restart != -1:
                log.warning(
                    "MLLP: a new frame started before the previous one ended; "
                    "dropped %d unfinished bytes",
                    restart,
                )
                self.garbage_bytes += restart
                del self._buffer[: restart + 1]
                self._scanned = 0
                continue
            if end == -1:
                self._scanned = len(self._buffer)
                self._check_size(len(self._buffer))
                break
            if end + 1 == len(self._buffer):  # the CR after FS has not arrived yet
                self._scanned = end
                self._check_size(end)
                break
            self._check_size(end)
            messages.append(bytes(self._buffer[:end]))
            if self._buffer[end + 1 : end + 2] == CARRIAGE_RETURN:
                del self._buffer[: end + 2]
            else:
                log.warning("MLLP: end block without the carriage return after it")
                del self._buffer[: end + 1]
            self._in_frame, self._scanned = False, 0
        return messages

    def _drop(self, count: int) -> None:
        if count == 0:
            return
        dropped = bytes(self._buffer[:count])
        del self._buffer[:count]
        self.garbage_bytes += count
        if dropped.strip():  # line feeds between frames are common and harmless
            log.warning("MLLP: ignored %d bytes outside a frame", count)

    def _check_size(self, size: int) -> None:
        if size > self.max_message_bytes:
            msg = f"MLLP frame exceeds {self.max_message_bytes} bytes"
            raise MessageTooLargeError(msg)


def decode_message(payload: bytes) -> tuple[str, str]:
    """The text of a frame and the codec used (from MSH-18; UTF-8 by default)."""
    first_segment = payload.split(b"\r", 1)[0].decode("latin-1")
    codec = "utf-8"
    if first_segment.startswith("MSH") and len(first_segment) > 3:
        fields = first_segment.split(first_segment[3])
        declared = fields[17].split("~")[0].strip().upper() if len(fields) > 17 else ""
        codec = _CHARSETS.get(declared, "utf-8")
    try:
        return payload.decode(codec), codec
    except UnicodeDecodeError:
        log.warning("MLLP: message is not valid %s; read as Latin-1", codec)
        return payload.decode("latin-1"), "latin-1"


def parse_allow_list(entries: Iterable[str | Network]) -> tuple[Network, ...]:
    """The networks of an allow-list of addresses and CIDR networks (IPv4 and IPv6).

    ``"10.20.0.7"`` is that one address, ``"10.20.0.0/16"`` a network. Raises
    :class:`ValueError` naming the first entry that is neither (a host name, a
    network with host bits set such as ``10.20.0.1/16``) or when the list is empty.
    """
    networks: list[Network] = []
    for entry in entries:
        if isinstance(entry, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(entry)
            continue
        text = str(entry).strip()
        try:
            networks.append(ipaddress.ip_network(text))
        except ValueError:
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                msg = f"{entry!r} is not an IP address or network (such as 10.20.0.0/16)"
                raise ValueError(msg) from None
            msg = f"{entry!r} has host bits set (did you mean {str(loose)!r}?)"
            raise ValueError(msg) from None
    if not networks:
        msg = "the allow-list is empty: no client could connect"
        raise ValueError(msg)
    return tuple(networks)


def address_allowed(address: str, networks: Iterable[Network]) -> bool:
    """True when ``address`` (as ``accept()`` reports it) is in one of ``networks``.

    An IPv4-mapped IPv6 address (``::ffff:10.0.0.5``, what a dual-stack socket
    reports for an IPv4 client) also matches as its IPv4 address; a zone
    (``fe80::1%eth0``) is ignored. Anything that is not an address is refused.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    return any(
        candidate.version == network.version and candidate in network
        for network in networks
        for candidate in candidates
    )


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warnings(host: str, allow: Iterable[Network], *, tls: bool) -> list[str]:
    """What an administrator should hear at start about who can reach the listener.

    Bound beyond loopback with a loopback-only allow-list: nobody else can connect
    (safe, but probably not meant). Bound beyond loopback without TLS: patient data
    crosses the network in clear text.
    """
    if _is_loopback_host(host):
        return []
    warnings = []
    if all(network.is_loopback for network in allow):
        warnings.append(
            f"listening on {host}, but only this machine may connect: "
            "add the senders' addresses to [hl7] listen_allow"
        )
    if not tls:
        warnings.append(
            "orders (patient data) from other hosts arrive unencrypted: "
            "configure [hl7.listen_tls] or keep the network path private"
        )
    return warnings


# OpenSSL's reason for a failed handshake -> what it most likely means.
_HANDSHAKE_HINTS: Final = {
    "WRONG_VERSION_NUMBER": "not TLS; is the sender set up for plain MLLP?",
    "HTTP_REQUEST": "an HTTP request, not TLS",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the client sent no certificate",
    "CERTIFICATE_VERIFY_FAILED": "the client certificate is not signed by client_ca_file, "
    "or has expired",
    "UNSUPPORTED_PROTOCOL": "the client offers nothing newer than TLS 1.1",
}


def server_tls_context(
    cert_file: str | Path,
    key_file: str | Path,
    *,
    client_ca_file: str | Path | None = None,
    require_client_cert: bool = True,
) -> ssl.SSLContext:
    """A TLS context for :class:`MllpServer`: TLS 1.2 or later, our certificate and key.

    With ``require_client_cert`` (mutual TLS) a client must present a certificate
    signed by ``client_ca_file`` (needed then); without it a client certificate is
    checked against ``client_ca_file`` when one is given and presented. Raises
    :class:`ValueError` for that missing CA, :class:`OSError` or
    :class:`ssl.SSLError` for files that cannot be read or do not match.
    """
    if require_client_cert and client_ca_file is None:
        msg = "require_client_cert needs client_ca_file (the CA that signs client certificates)"
        raise ValueError(msg)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file is not None:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


_RDN_NAMES: Final = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
}


def _subject(sock: ssl.SSLSocket) -> str:
    """The client certificate's subject (``CN=…``) for the log, or ``no client certificate``."""
    cert = sock.getpeercert()
    subject = cert.get("subject") if cert else None
    if not isinstance(subject, tuple):
        return "no client certificate"
    parts = [
        f"{_RDN_NAMES.get(pair[0], pair[0])}={pair[1]}"
        for rdn in subject
        if isinstance(rdn, tuple)
        for pair in rdn
        if isinstance(pair, tuple) and len(pair) == 2
    ]
    return "client certificate " + (", ".join(parts) or "without subject")


class _Connection(threading.Thread):
    def __init__(self, server: MllpServer, sock: socket.socket, peer: str, number: int) -> None:
        super().__init__(name=f"saa-lab-mllp-conn-{number}", daemon=True)
        self.server = server
        self.sock = sock
        self.peer = peer

    def run(self) -> None:
        server = self.server
        try:
            if server.ssl_context is not None and not self._handshake(server.ssl_context):
                return
            self._serve()
        except OSError as error:
            if server.should_keep_running():
                log.warning("MLLP: connection from %s failed: %s", self.peer, error)
        finally:
            _close(self.sock)

    def _handshake(self, context: ssl.SSLContext) -> bool:
        """The TLS handshake, bounded by ``handshake_timeout`` and woken by ``stop()``.

        Non-blocking, so that a client that connects and never speaks holds this
        thread no longer than the timeout. False (logged at WARNING) when it fails.
        """
        server = self.server
        tls = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
        self.sock = tls  # the wrapper owns the descriptor now; run() closes it
        tls.setblocking(False)
        deadline = time.monotonic() + server.handshake_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(server._wake_reader(), selectors.EVENT_READ)
            selector.register(tls, selectors.EVENT_READ)
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    selector.modify(tls, selectors.EVENT_READ)
                except ssl.SSLWantWriteError:
                    selector.modify(tls, selectors.EVENT_WRITE)
                except (ssl.SSLError, OSError) as error:
                    if server.should_keep_running():
                        reason = str(getattr(error, "reason", None) or error)
                        hint = _HANDSHAKE_HINTS.get(reason)
                        log.warning(
                            "MLLP: TLS handshake with %s failed (%s%s); closed",
                            self.peer,
                            reason,
                            f": {hint}" if hint else "",
                        )
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning(
                        "MLLP: no TLS handshake from %s within %g s; closed",
                        self.peer,
                        server.handshake_timeout,
                    )
                    return False
                selector.select(remaining)
                if not server.should_keep_running():
                    return False
        tls.settimeout(server.read_timeout)  # bounds sendall() to a reader that stalls
        log.info("MLLP: %s from %s, %s", tls.version(), self.peer, _subject(tls))
        return True

    def _serve(self) -> None:
        server = self.server
        reader = FrameReader(max_message_bytes=server.max_message_bytes)
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(server._wake_reader(), selectors.EVENT_READ)
        last_activity = time.monotonic()
        try:
            while server.should_keep_running():
                # TLS may hold decrypted bytes the socket no longer signals.
                if not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
                    remaining = server.read_timeout - (time.monotonic() - last_activity)
                    if remaining <= 0:
                        log.info("MLLP: closing idle connection from %s", self.peer)
                        return
                    events = selector.select(remaining)
                    if not server.should_keep_running():
                        return
                    if not any(key.fileobj is self.sock for key, _ in events):
                        continue
                data = self.sock.recv(_RECV_BYTES)
                if not data:
                    if reader.pending:
                        log.warning("MLLP: %s closed the connection mid-message", self.peer)
                    return
                last_activity = time.monotonic()
                try:
                    payloads = reader.feed(data)
                except MessageTooLargeError:
                    log.error(
                        "MLLP: message from %s exceeds %d bytes; connection closed",
                        self.peer,
                        server.max_message_bytes,
                    )
                    return
                for payload in payloads:
                    self._answer(payload)
                    last_activity = time.monotonic()
        finally:
            selector.close()

    def _answer(self, payload: bytes) -> None:
        if not payload.strip():
            log.warning("MLLP: empty frame from %s ignored (no ACK)", self.peer)
            return
        text, codec = decode_message(payload)
        started = time.monotonic()
        try:
            ack = self.server.on_message(text)
        # The per-message boundary: whatever the handler raises (database down,
        # a bug), the sender gets AE "resend" and the connection stays usable.
        except Exception as error:
            # The exception text may quote patient data (SQL parameters): DEBUG only.
            log.error(
                "MLLP: message from %s could not be handled (%s); answered AE 207",
                self.peer,
                type(error).__name__,
            )
            log.debug("MLLP: handler failure", exc_info=True)
            ack = build_ack(
                text,
                "AE",
                [storage_failure_problem(type(error).__name__)],
                sending_application=self.server.sending_application,
                sending_facility=self.server.sending_facility,
                now=datetime.now(UTC),
            )
        self.sock.sendall(frame(ack.encode(codec, errors="replace")))
        log.info(
            "MLLP: %d-byte message from %s answered in %.1f ms",
            len(payload),
            self.peer,
            (time.monotonic() - started) * 1000,
        )


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected any more
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class MllpServer:
    """A threaded MLLP listener that answers each message with ``on_message``'s ACK.

    ``on_message(er7) -> ack_er7`` stores what the message says and returns the
    ACK text (see :func:`saa_lab.hl7.orders.order_handler`); when it raises, the
    sender gets AE with ERR 207 ("temporarily unable to store; resend"), never
    AA. Binds ``host`` (127.0.0.1 unless configured) and ``port`` (0 picks a
    free port; read :attr:`port` after ``start()``).

    ``allow`` lists the client addresses and networks that may connect (default
    :data:`LOOPBACK_ONLY`); ``ssl_context`` (from :func:`server_tls_context`)
    makes every connection TLS, handshaken within ``handshake_timeout`` seconds.
    """

    def __init__(
        self,
        on_message: Callable[[str], str],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_MLLP_PORT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        sending_application: str = "SAA-LAB",
        sending_facility: str = "SAA-LAB",
        allow: Iterable[str | Network] = LOOPBACK_ONLY,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> None:
        if (
            max_message_bytes < 1
            or read_timeout <= 0
            or max_connections < 1
            or handshake_timeout <= 0
        ):
            msg = (
                "max_message_bytes, read_timeout, max_connections and handshake_timeout "
                "must be positive"
            )
            raise ValueError(msg)
        self.on_message = on_message
        self.host = host
        self._port = port
        self.max_message_bytes = max_message_bytes
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.allow = parse_allow_list(allow)
        self.ssl_context = ssl_context
        self.handshake_timeout = handshake_timeout
        # refused address -> (when its last WARNING was logged, refusals since)
        self._refusals: dict[str, tuple[float, int]] = {}
        self.sending_application = sending_application
        self.sending_facility = sending_facility
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self._listener: threading.Thread | None = None
        self._socket: socket.socket | None = None
        # A self-pipe: one byte written at stop() wakes every thread's select().
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._accepted = 0

    # -- lifecycle ------------------------------------------------------------

    def __enter__(self) -> MllpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port once started (the configured one before)."""
        return self._port

    def should_keep_running(self) -> bool:
        return not self._stop.is_set()

    def start(self) -> None:
        if self._listener is not None:
            msg = "the MLLP server is already started"
            raise RuntimeError(msg)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self._port))
            listener.listen(self.max_connections)
        except OSError as error:
            listener.close()
            msg = f"cannot listen for HL7 (MLLP) on {self.host}:{self._port}: {error.strerror}"
            raise ConfigError(msg) from error
        self._socket = listener
        self._port = listener.getsockname()[1]
        self._wake = socket.socketpair()
        self._listener = threading.Thread(
            target=self._accept_loop, name="saa-lab-mllp-listener", daemon=True
        )
        self._listener.start()
        log.info(
            "MLLP: listening on %s:%d (%s; clients from %s; at most %d connections)",
            self.host,
            self._port,
            "TLS" if self.ssl_context is not None else "plain TCP",
            ", ".join(map(str, self.allow)),
            self.max_connections,
        )
        for warning in exposure_warnings(self.host, self.allow, tls=self.ssl_context is not None):
            log.warning("MLLP: %s", warning)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, close every connection, join every thread (up to ``timeout`` s)."""
        self._stop.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):  # stopped before
                self._wake[1].send(b"x")
        deadline = time.monotonic() + timeout
        if self._listener is not None:
            self._listener.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.join(max(0.0, deadline - time.monotonic()))
        if self._socket is not None:
            self._socket.close()
        alive = [t.name for t in (self._listener, *connections) if t is not None and t.is_alive()]
        if alive:
            log.error("MLLP: threads still running after stop(): %s", ", ".join(alive))
        elif self._wake is not None:
            for end in self._wake:
                end.close()
        log.info("MLLP: stopped")

    # -- threads --------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._socket is not None
        selector = selectors.DefaultSelector()
        selector.register(self._socket, selectors.EVENT_READ)
        selector.register(self._wake_reader(), selectors.EVENT_READ)
        try:
            while self.should_keep_running():
                events = selector.select()
                if not self.should_keep_running():
                    return
                if not any(key.fileobj is self._socket for key, _ in events):
                    continue
                try:
                    sock, address = self._socket.accept()
                except OSError as error:
                    log.warning("MLLP: accept failed: %s", error)
                    continue
                host = str(address[0])
                peer = f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
                if not address_allowed(host, self.allow):
                    self._log_refusal(host, peer)
                    _close(sock)  # at once, before a byte is read
                    continue
                self._admit(sock, peer)
        finally:
            selector.close()

    def _log_refusal(self, host: str, peer: str) -> None:
        now = time.monotonic()
        last, since = self._refusals.get(host, (float("-inf"), 0))
        if now - last < _REFUSAL_LOG_INTERVAL:
            self._refusals[host] = (last, since + 1)
            log.debug("MLLP: refused %s (not in [hl7] listen_allow)", peer)
            return
        if len(self._refusals) >= 1024:  # bounded, whatever a scan of many addresses does
            self._refusals.clear()
        self._refusals[host] = (now, 0)
        again = f"; {since} more refused since the last warning" if since else ""
        log.warning("MLLP: refused %s: not in [hl7] listen_allow%s", peer, again)

    def _admit(self, sock: socket.socket, peer: str) -> None:
        with self._lock:
            # Finished threads leave the set here, not on their own: stop() must
            # join every thread that may still be running.
            self._connections = {c for c in self._connections if c.is_alive()}
            if len(self._connections) >= self.max_connections:
                log.warning("MLLP: %d connections open; refused %s", self.max_connections, peer)
                _close(sock)
                return
            self._accepted += 1
            sock.settimeout(self.read_timeout)  # bounds sendall() to a reader that stalls
            connection = _Connection(self, sock, peer, self._accepted)
            self._connections.add(connection)
        log.info("MLLP: connection from %s", peer)
        connection.start()

    def _wake_reader(self) -> socket.socket:
        assert self._wake is not None, "started"
        return self._wake[0]


class MllpClient:
    """One MLLP connection: ``send(er7)`` returns the ACK text; usable as a context manager.

    Every wait is bounded: connecting (and the TLS handshake) by ``connect_timeout``,
    writing a message by ``timeout``, the whole wait for one ACK by ``ack_timeout``
    (both default to ``timeout``). With ``ssl_context`` the connection is TLS,
    checked against ``server_hostname`` (default ``host``). Failures raise
    :class:`~saa_lab.errors.DeliveryError`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 5.0,
        encoding: str = "utf-8",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        connect_timeout: float | None = None,
        ack_timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.host, self.port, self.timeout, self.encoding = host, port, timeout, encoding
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self.ack_timeout = timeout if ack_timeout is None else ack_timeout
        self._reader = FrameReader(max_message_bytes=max_message_bytes)
        self._waiting: list[bytes] = []
        where = f"{host}:{port}"
        try:
            sock = socket.create_connection((host, port), timeout=self.connect_timeout)
        except OSError as error:
            msg = f"cannot connect to {where}: {error}"
            raise DeliveryError(msg) from error
        if ssl_context is not None:
            try:
                sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
            except (OSError, ssl.SSLError) as error:
                _close(sock)
                msg = f"TLS handshake with {where} failed: {error}"
                raise DeliveryError(msg) from error
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        _close(self._sock)

    def is_usable(self) -> bool:
        """False when the peer closed the connection or sent something unasked.

        Checked before reusing an idle connection: a message written into a
        connection the peer has closed would only fail at the ACK.
        """
        if self._waiting or self._reader.pending:
            return False
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return False
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        if not readable:
            return True
        # Readable: the peer closed, sent bytes nobody asked for, or (TLS 1.3) sent
        # a session ticket, which is no data and leaves the connection usable.
        try:
            self._sock.setblocking(False)
            self._sock.recv(_RECV_BYTES)
        except (ssl.SSLWantReadError, BlockingIOError):
            return True
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(self.timeout)
        return False  # closed (b"") or unexpected bytes

    def send(self, er7: str) -> str:
        """Send one message and return the next ACK (however it is split into packets)."""
        where = f"{self.host}:{self.port}"
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(frame(er7.encode(self.encoding)))
        except TimeoutError as error:
            msg = f"sending to {where} timed out after {self.timeout:g} s"
            raise DeliveryError(msg) from error
        except OSError as error:
            msg = f"MLLP exchange with {where} failed: {error}"
            raise DeliveryError(msg) from error
        crash_point("mllp-sent")
        try:
            return self.receive()
        except TimeoutError as error:
            msg = f"no ACK from {where} within {self.ack_timeout:g} s"
            raise DeliveryError(msg) from error
        except OSError as error:
            msg = f"MLLP exchange with {where} failed: {error}"
            raise DeliveryError(msg) from error

    def receive(self) -> str:
        """The next framed message from the peer (waits at most ``ack_timeout`` seconds)."""
        deadline = time.monotonic() + self.ack_timeout
        while not self._waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._sock.settimeout(remaining)
            data = self._sock.recv(_RECV_BYTES)
            if not data:
                msg = f"{self.host}:{self.port} closed the connection before the ACK"
                raise DeliveryError(msg)
            try:
                self._waiting += self._reader.feed(data)
            except MessageTooLargeError as error:
                raise DeliveryError(str(error)) from error
        return decode_message(self._waiting.pop(0))[0]


def send_mllp(host: str, port: int, er7: str, *, timeout: float = 5.0) -> str:
    """Send one message on a new connection and return the ACK text."""
    with MllpClient(host, port, timeout=timeout) as client:
        return client.send(er7)
