"""A TCP proxy on 127.0.0.1 between saa-lab and a PostgreSQL server, for fault tests.

It simulates what a server restart looks like from the client without touching the
real (shared) server:

* :meth:`FaultProxy.down` drops every open connection and refuses new ones
  (the listening port is closed: ``connection refused``) until :meth:`FaultProxy.up`.
* :meth:`FaultProxy.lose_commit_reply` arms a one-shot fault: the next ``COMMIT`` of a
  transaction that sent a statement containing the given SQL text is forwarded to the
  server (so it commits), its reply is dropped and the connection is cut. The client
  cannot tell whether its transaction was committed (the ambiguous commit).

The client must connect with ``sslmode=disable`` (and ``gssencmode=disable``) so the
proxy sees the PostgreSQL protocol in clear text (see :func:`proxied_url`).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

from sqlalchemy.engine import make_url

__all__ = ["FaultProxy", "proxied_url"]


def proxied_url(url: str, port: int) -> str:
    """``url`` (a PostgreSQL URL) pointed at 127.0.0.1:``port``, in clear text."""
    parsed = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    options = {"sslmode": "disable", "gssencmode": "disable"}
    return (
        parsed.set(host="127.0.0.1", port=port)
        .update_query_dict(options)
        .render_as_string(hide_password=False)
    )


class _Link:
    """One proxied connection: the client's socket, the server's, two pump threads."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.started = False  # the untyped startup message has been forwarded
        self.buffer = b""
        self.matched = False  # this transaction sent the armed SQL text
        self.statements: dict[bytes, bytes] = {}  # prepared statement name -> SQL text
        self.drop_reply = False
        self.threads = [
            threading.Thread(target=self._upstream, name="fault-proxy-up", daemon=True),
            threading.Thread(target=self._downstream, name="fault-proxy-down", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def cut(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _upstream(self) -> None:
        """Client to server, message by message (so a COMMIT can be recognised)."""
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                self.buffer += data
                for message in self._messages():
                    self._inspect(message)
                    self.server.sendall(message)
        except OSError:
            pass
        self.proxy._closed(self)

    def _messages(self) -> list[bytes]:
        found = []
        while True:
            if not self.started:
                # SSLRequest, GSSENCRequest and the StartupMessage: length, no type byte.
                if len(self.buffer) < 4:
                    break
                (length,) = struct.unpack("!I", self.buffer[:4])
                if len(self.buffer) < length:
                    break
                message, self.buffer = self.buffer[:length], self.buffer[length:]
                code = struct.unpack("!I", message[4:8])[0] if length >= 8 else 0
                if code not in (80877103, 80877104):  # not SSL/GSSENC negotiation
                    self.started = True
                found.append(message)
                continue
            if len(self.buffer) < 5:
                break
            (length,) = struct.unpack("!I", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                break
            message, self.buffer = self.buffer[: 1 + length], self.buffer[1 + length :]
            found.append(message)
        return found

    def _sql(self, message: bytes) -> bytes:
        """The SQL text a Query, Parse or Bind (of a named prepared statement) runs."""
        kind, body = message[:1], message[5:]
        if kind == b"Q":
            return body
        if kind == b"P":  # name, text: psycopg prepares a statement used five times
            name, _, rest = body.partition(b"\0")
            text = rest.partition(b"\0")[0]
            if name:
                self.statements[name] = text
            return text
        if kind == b"B":  # portal, statement name, ...
            name = body.split(b"\0", 2)[1] if body.count(b"\0") >= 2 else b""
            return self.statements.get(name, b"")
        return b""

    def _inspect(self, message: bytes) -> None:
        if not self.started:
            return
        sql = self._sql(message)
        armed = self.proxy._armed
        if armed is None:
            return
        if armed in sql:
            self.matched = True
        elif message[:1] == b"Q" and message[5:].upper().startswith(b"COMMIT"):
            if self.matched and self.proxy._fire():
                self.drop_reply = True
            self.matched = False
        elif message[:1] == b"Q" and message[5:].upper().startswith(b"ROLLBACK"):
            self.matched = False

    def _downstream(self) -> None:
        try:
            while True:
                data = self.server.recv(65536)
                if not data:
                    break
                if self.drop_reply:
                    # The server committed and answered; the client never hears it.
                    self.proxy.commit_replies_lost += 1
                    self.proxy.commit_reply_lost.set()
                    break
                self.client.sendall(data)
        except OSError:
            pass
        self.cut()
        self.proxy._closed(self)


class FaultProxy:
    """Forward 127.0.0.1:``port`` to ``upstream``; see the module docstring.

    Use as a context manager; every thread it starts is joined on exit.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self._armed: bytes | None = None
        self.commit_reply_lost = threading.Event()
        self.commit_replies_lost = 0
        self.connections = 0  # accepted so far

    # -- control ----------------------------------------------------------------------

    def up(self) -> None:
        """Accept connections (again) on the same port."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name="fault-proxy-accept", daemon=True
        )
        self._acceptor.start()

    def down(self) -> None:
        """Like a server that stops: cut every connection, refuse new ones until up()."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join(5)
            self._acceptor = None
        self.drop_connections()

    def drop_connections(self) -> None:
        """Cut every open connection (the server's backends end, nothing is committed)."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.cut()

    def lose_commit_reply(self, sql_text: str) -> threading.Event:
        """Arm the one-shot lost COMMIT reply for a transaction that sent ``sql_text``."""
        self.commit_reply_lost.clear()
        self._armed = sql_text.encode()
        return self.commit_reply_lost

    def _fire(self) -> bool:
        with self._lock:
            if self._armed is None:
                return False
            self._armed = None
            return True

    # -- plumbing ---------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, server)
            with self._lock:
                self._links.add(link)
                self._threads += link.threads
                self.connections += 1
            link.start()

    def _closed(self, link: _Link) -> None:
        link.cut()
        with self._lock:
            self._links.discard(link)

    def __enter__(self) -> FaultProxy:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(5)
