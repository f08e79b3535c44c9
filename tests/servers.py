"""
Real loopback servers for tests: a scriptable HTTP receiver and a misbehaving raw-socket one.

* :class:`Receiver`: a threaded HTTP/1.1 server (keep-alive, optional TLS) that
  records every request and answers from a script: a default status, a queue of
  :class:`Reply` objects consumed in order, or a callable.
* :class:`FaultServer`: a raw-socket server for what ``http.server`` cannot do
  (:class:`Fault`): never answer, trickle headers or body, stall after the status
  line, reset the connection, send a gzip bomb or a 100 MB body.

Both count accepted TCP connections (``.connections``), are context managers,
and stop every thread they started on ``close()``.

>>> with Receiver(replies=[Reply(status=503)]) as receiver:
...     receiver.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import contextlib
import enum
import functools
import http
import http.server
import socket
import ssl
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import attrs


__all__ = ["Fault", "FaultServer", "Receiver", "RecordedRequest", "Reply"]

_JOIN_TIMEOUT = 5.0


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """
    One request as the receiver saw it.

    Attributes:
        method: The request method.
        path: The request target (path and query string), as sent.
        headers: ``(name, value)`` pairs in the order and case they arrived.
        body: The body bytes (after undoing chunked transfer coding).
        time: :func:`time.monotonic` when the request was fully read.
        connection: Which accepted TCP connection carried it (1 for the first).
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    time: float
    connection: int

    def header(self, name: str) -> str | None:
        """
        Return the first value of header *name* (any case), or None.
        """
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@attrs.frozen(kw_only=True)
class Reply:
    """
    A scripted response.

    Attributes:
        status: The status code.
        headers: Extra ``(name, value)`` pairs; ``Content-Length`` is added
            unless given.
        body: The body bytes.
        close: Send ``Connection: close`` and close the connection afterwards.
    """

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    close: bool = False


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    # Idle keep-alive connections are dropped after this long.
    timeout = 30

    def handle(self) -> None:
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (OSError, ValueError):
                return
        super().handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """
        Stay quiet: tests read ``Receiver.requests``, not stderr.
        """

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        receiver = self.server.receiver
        recorded = RecordedRequest(
            method=self.command,
            path=self.path,
            headers=tuple(self.headers.items()),
            body=self._read_body(),
            time=time.monotonic(),
            connection=receiver.connection_number(self.connection),
        )
        reply = receiver.record(recorded)
        names = {k.lower() for k, _ in reply.headers}
        try:
            phrase = http.HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Whatever"
        lines = [f"HTTP/1.1 {reply.status} {phrase}", *(f"{k}: {v}" for k, v in reply.headers)]
        if "content-length" not in names:
            lines.append(f"Content-Length: {len(reply.body)}")
        if reply.close:
            lines.append("Connection: close")
            self.close_connection = True
        # One write for head and body: two small writes meet Nagle and delayed ACK.
        body = b"" if self.command == "HEAD" else reply.body
        self.wfile.write("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)

    # http.server dispatches on these names.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve  # noqa: N815


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver, address: tuple[str, int]) -> None:
        self.receiver = receiver
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.receiver.accepted(sock), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-reply is routine here; anything else is a bug.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        self.receiver.started(thread)
        thread.start()


class Receiver:
    """
    A threaded HTTP/1.1 server on loopback that records requests and answers from a script.

    Args:
        host: The address to listen on (any 127/8 address works on Linux).
        port: The port; 0 picks a free one.
        status: The status of the default reply.
        replies: Replies to give, in order, before falling back to the default.
        handler: Decides every reply itself (takes precedence over *replies*).
        ssl_context: Serve HTTPS with this server-side context.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        status: int = 200,
        replies: Iterable[Reply] = (),
        handler: Callable[[RecordedRequest], Reply] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._default = Reply(status=status)
        self._replies: deque[Reply] = deque(replies)
        self._handler = handler
        self._ssl_context = ssl_context
        self._requests: list[RecordedRequest] = []
        self._sockets: dict[socket.socket, int] = {}
        self._threads: list[threading.Thread] = []
        self._server = _HTTPServer(self, (host, port))
        self.host: str = str(self._server.server_address[0])
        self.port: int = int(self._server.server_address[1])
        self._serving = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._serving.start()

    @property
    def url(self) -> str:
        """
        The base URL, like ``http://127.0.0.1:PORT/``.
        """
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{_netloc(self.host, self.port)}/"

    def url_for(self, path: str) -> str:
        """
        Return the URL of *path* (which starts with ``/``) on this server.
        """
        return self.url.rstrip("/") + path

    @property
    def requests(self) -> list[RecordedRequest]:
        """
        A snapshot of the requests received so far, in arrival order.
        """
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """
        How many TCP connections were accepted so far.
        """
        with self._lock:
            return len(self._sockets)

    def accepted(self, sock: socket.socket) -> socket.socket:
        """
        Count a new connection (called by the server thread).
        """
        if self._ssl_context is not None:
            sock = self._ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        with self._lock:
            self._sockets[sock] = len(self._sockets) + 1
        return sock

    def started(self, thread: threading.Thread) -> None:
        """
        Remember a connection thread, to join it on close.
        """
        with self._lock:
            self._threads.append(thread)

    def connection_number(self, sock: socket.socket) -> int:
        """
        Return which accepted connection *sock* is (1-based).
        """
        with self._lock:
            return self._sockets[sock]

    def record(self, request: RecordedRequest) -> Reply:
        """
        Record *request* and choose its reply (called by connection threads).
        """
        with self._lock:
            self._requests.append(request)
            if self._handler is None:
                return self._replies.popleft() if self._replies else self._default
        return self._handler(request)

    def drop_connections(self) -> None:
        """
        End every accepted connection from the server's side (a FIN), and keep serving.
        """
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)

    def close(self) -> None:
        """
        Stop serving, drop open connections and join every thread.
        """
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            _shutdown(sock)
        for thread in [self._serving, *threads]:
            thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Fault(enum.Enum):
    """
    What a :class:`FaultServer` does after reading a request.
    """

    #: Read the request, then say nothing until the client leaves.
    NEVER_ANSWER = "never-answer"
    #: Send the status line, then one header line per interval, never ending the headers.
    HEADER_TRICKLE = "header-trickle"
    #: Send full headers (Content-Length 1 000 000), then one body byte per interval.
    BODY_TRICKLE = "body-trickle"
    #: Send ``HTTP/1.1 200 OK``, then nothing.
    STATUS_THEN_STALL = "status-then-stall"
    #: Reset the connection (RST: SO_LINGER 1, 0 then close).
    RESET = "reset"
    #: A 200 with ``Content-Encoding: gzip``: ~50 KB that inflate to 50 MB.
    GZIP_BOMB = "gzip-bomb"
    #: A 200 with a 100 MB plain body, generated as it is sent.
    HUGE_BODY = "huge-body"


#: How many bytes the gzip bomb inflates to.
BOMB_INFLATED_SIZE = 50 * 2**20


@functools.cache
def gzip_bomb() -> bytes:
    """
    Return a gzip stream of :data:`BOMB_INFLATED_SIZE` zero bytes (built once).
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(2**20)
    parts = [compressor.compress(block) for _ in range(BOMB_INFLATED_SIZE // len(block))]
    return b"".join(parts) + compressor.flush()


class FaultServer:
    """
    A raw-socket server on loopback that misbehaves in one chosen way.

    Every response it sends carries ``Connection: close``.

    Args:
        fault: What to do with each connection.
        host: The address to listen on.
        interval: Seconds between trickled bytes or lines.
        huge_size: The body size of :attr:`Fault.HUGE_BODY`.

    Attributes:
        bytes_sent: Body and header bytes sent so far, over all connections.
    """

    def __init__(
        self,
        fault: Fault,
        *,
        host: str = "127.0.0.1",
        interval: float = 0.2,
        huge_size: int = 100 * 2**20,
    ) -> None:
        self.fault = fault
        self.interval = interval
        self.huge_size = huge_size
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family)
        self._listener.settimeout(0.05)
        self.host, self.port = self._listener.getsockname()[:2]
        self._accepting = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        """
        The base URL, like ``http://127.0.0.1:PORT/``.
        """
        return f"http://{_netloc(self.host, self.port)}/"

    @property
    def connections(self) -> int:
        """
        How many TCP connections were accepted so far.
        """
        with self._lock:
            return len(self._connections)

    def close(self) -> None:
        """
        Stop accepting, cut every connection and join every thread.
        """
        self._stop.set()
        self._accepting.join(_JOIN_TIMEOUT)
        self._listener.close()
        with self._lock:
            connections, threads = list(self._connections), list(self._threads)
        for sock in connections:
            _shutdown(sock)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT)
        for sock in connections:
            sock.close()

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self._lock:
                self._connections.append(sock)
                self._threads.append(thread)
            thread.start()

    def _send(self, sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)
        except OSError:
            return False
        with self._lock:
            self.bytes_sent += len(data)
        return True

    def _read_request(self, sock: socket.socket) -> bool:
        sock.settimeout(0.05)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._recv(sock)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = self._recv(sock)
            if not chunk:
                return False
            body += chunk
        return True

    def _recv(self, sock: socket.socket) -> bytes:
        while not self._stop.is_set():
            try:
                return sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return b""
        return b""

    def _trickle(self, sock: socket.socket, head: bytes, piece: Callable[[int], bytes]) -> None:
        if not self._send(sock, head):
            return
        n = 0
        while not self._stop.wait(self.interval):
            n += 1
            if not self._send(sock, piece(n)):
                return

    def _serve(self, sock: socket.socket) -> None:
        if not self._read_request(sock):
            return
        sock.settimeout(None)
        fault = self.fault
        if fault is Fault.NEVER_ANSWER:
            # Wait for the client to give up (recv returns b"") or for close().
            sock.settimeout(0.05)
            while self._recv(sock):
                pass
        elif fault is Fault.HEADER_TRICKLE:
            self._trickle(
                sock, b"HTTP/1.1 200 OK\r\n", lambda n: f"X-Trickle-{n}: {n}\r\n".encode()
            )
        elif fault is Fault.BODY_TRICKLE:
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n"
            self._trickle(sock, head, lambda _n: b"x")
        elif fault is Fault.STATUS_THEN_STALL:
            self._trickle(sock, b"HTTP/1.1 200 OK\r\n", lambda _n: b"")
        elif fault is Fault.RESET:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        elif fault is Fault.GZIP_BOMB:
            bomb = gzip_bomb()
            bomb_head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n"
                "Connection: close\r\n\r\n"
            )
            self._send(sock, bomb_head.encode() + bomb)
        else:
            huge_head = (
                f"HTTP/1.1 200 OK\r\nContent-Length: {self.huge_size}\r\nConnection: close\r\n\r\n"
            )
            if not self._send(sock, huge_head.encode()):
                return
            block = b"\0" * 65536
            left = self.huge_size
            while left > 0 and not self._stop.is_set():
                if not self._send(sock, block[:left]):
                    return
                left -= len(block)
