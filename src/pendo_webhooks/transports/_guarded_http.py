"""
The address guard inside the connection: resolve once, vet every address, connect to a vetted one.

Strictly private; :class:`pendo_webhooks.transports.Urllib3Transport` (with
:class:`KeepAlivePool`) and :class:`pendo_webhooks.transports.RequestsTransport` (with
:class:`GuardedSession`) are the ways in.

Checking a URL's host string is not enough (docs/security.md, "The address guard"): glibc reads
``2130706433`` as 127.0.0.1, and a name can resolve to a public address when it is
checked and to 169.254.169.254 when requests resolves it again. So the check lives
where the socket is made. :class:`GuardedHTTPConnection` and
:class:`GuardedHTTPSConnection` replace urllib3's ``_new_conn()`` (private API;
``urllib3>=2.5,<3`` is pinned and a canary test watches it) with
:func:`open_vetted_socket`: one call to the injected resolver, bounded by the DNS
budget in a worker thread; every answer must pass
:meth:`~pendo_webhooks.guard.DestinationPolicy.is_allowed_address` or nothing
connects at all; then a connect to the vetted addresses themselves. TLS SNI and
certificate checks still use the hostname, since only the socket connect is
replaced.

The connections read their settings from the calling thread's current attempt
(:func:`activate`), so one set of classes serves every transport, and a connection
made outside :meth:`RequestsTransport.send` fails closed.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import logging
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import attrs
import requests
import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import allowed_gai_family
from urllib3.util.wait import wait_for_read

from ..exceptions import DestinationBlocked, TransportError
from ..guard import DestinationPolicy, parse_ip_host
from . import _transport_errors
from ._deadline import WatchedSend


__all__ = [
    "BLOCKSIZE",
    "GuardConfig",
    "GuardedAdapter",
    "GuardedHTTPConnection",
    "GuardedHTTPSConnection",
    "GuardedSession",
    "KeepAlivePool",
    "PoolKey",
    "Resolver",
    "activate",
    "current_attempt",
    "install_log_redaction",
    "open_vetted_socket",
]

#: The :func:`socket.getaddrinfo` signature: ``(host, port, family, type, proto,
#: flags) -> [(family, type, proto, canonname, sockaddr), ...]``.
Resolver = Callable[
    [str, int, int, int, int, int], Sequence[tuple[int, int, int, str, tuple[Any, ...]]]
]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@attrs.frozen(kw_only=True)
class GuardConfig:
    """
    What the guarded connections need from their transport. Strictly private.
    """

    policy: DestinationPolicy
    resolver: Resolver
    connect_timeout: float
    dns_timeout: float


_local = threading.local()


def current_attempt() -> WatchedSend[GuardConfig] | None:
    """
    Return the attempt the calling thread is sending, if any.
    """
    attempt: WatchedSend[GuardConfig] | None = getattr(_local, "attempt", None)
    return attempt


@contextlib.contextmanager
def activate(attempt: WatchedSend[GuardConfig]) -> Iterator[None]:
    """
    Make *attempt* the calling thread's current attempt for the ``with`` block.
    """
    previous = getattr(_local, "attempt", None)
    _local.attempt = attempt
    try:
        yield
    finally:
        _local.attempt = previous


def _timed_out(what: str, host: str, port: int) -> TransportError:
    return TransportError("timeout", f"{what} {host}:{port} ran out of time")


def _resolve(
    config: GuardConfig, host: str, port: int, budget: float
) -> Sequence[tuple[int, int, int, str, tuple[Any, ...]]]:
    # getaddrinfo has no timeout of its own: run it in a daemon thread and stop
    # waiting at the budget. A stuck lookup keeps only its own thread busy.
    result: list[Sequence[tuple[int, int, int, str, tuple[Any, ...]]]] = []
    failure: list[Exception] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            result.append(
                config.resolver(host, port, allowed_gai_family(), socket.SOCK_STREAM, 0, 0)
            )
        except Exception as exc:  # noqa: BLE001 - any resolver failure is a DNS failure
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="pendo-webhooks-dns", daemon=True).start()
    if not done.wait(budget):
        raise TransportError("dns", f"resolving {host} took longer than {budget:.3g} s")
    if failure:
        raise TransportError("dns", f"could not resolve {host}") from None
    if not result[0]:
        raise TransportError("dns", f"{host} resolved to no addresses")
    return result[0]


def _parse(host: str, value: object) -> _IPAddress:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(value)
    raise DestinationBlocked("blocked", f"{host} resolved to an unusable address")


def _vet(config: GuardConfig, host: str, ip: _IPAddress, *, verb: str = "resolves to") -> None:
    if not config.policy.is_allowed_address(ip):
        raise DestinationBlocked("blocked", f"{host} {verb} {ip}, which is not allowed")


def _sockaddr(ip: _IPAddress, port: int, sockaddr: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    if ip.version == 4:
        return (str(ip), port)
    # Keep the flow info and scope id getaddrinfo gave for an IPv6 answer.
    return (str(ip), port, *sockaddr[2:4]) if len(sockaddr) == 4 else (str(ip), port, 0, 0)


def _candidates(
    attempt: WatchedSend[GuardConfig], host: str, port: int
) -> list[tuple[int, tuple[Any, ...]]]:
    config = attempt.config
    literal = parse_ip_host(host)
    if literal is not None:
        _vet(config, host, literal, verb="is")
        return [(_family(literal), _sockaddr(literal, port))]
    budget = min(config.dns_timeout, attempt.remaining())
    if budget <= 0:
        raise _timed_out("resolving", host, port)
    answers = [
        (_parse(host, sockaddr[0] if sockaddr else None), sockaddr)
        for _family_, _type, _proto, _name, sockaddr in _resolve(config, host, port, budget)
    ]
    # Vet every answer before connecting to any: a mixed answer is refused whole.
    for ip, _ in answers:
        _vet(config, host, ip)
    return [(_family(ip), _sockaddr(ip, port, sockaddr)) for ip, sockaddr in answers]


def _family(ip: _IPAddress) -> int:
    return socket.AF_INET if ip.version == 4 else socket.AF_INET6


def open_vetted_socket(
    attempt: WatchedSend[GuardConfig],
    host: str,
    port: int,
    *,
    socket_options: Sequence[tuple[int, int, int | bytes]] | None = None,
) -> socket.socket:
    """
    Resolve *host* once, vet every address, and connect to the first vetted one that answers.

    Raises:
        DestinationBlocked: An address is not allowed.
        TransportError: ``"dns"``, ``"timeout"`` or ``"connect"``.
    """
    candidates = _candidates(attempt, host, port)
    for index, (family, sockaddr) in enumerate(candidates, start=1):
        budget = min(attempt.config.connect_timeout, attempt.remaining())
        if budget <= 0:
            raise _timed_out("connecting to", host, port)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(budget)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            if index < len(candidates):
                continue
            if isinstance(exc, TimeoutError):
                raise _timed_out("connecting to", host, port) from None
            reason = _transport_errors.describe_os_error(exc)
            raise TransportError(
                "connect", f"could not connect to {host}:{port}: {reason}"
            ) from None
        return sock
    raise AssertionError("unreachable")


def _new_guarded_conn(conn: HTTPConnection) -> socket.socket:
    attempt = current_attempt()
    if attempt is None:
        raise DestinationBlocked("blocked", "guarded connection used outside a transport send")
    sock = open_vetted_socket(
        attempt,
        conn._dns_host,  # the name as given, trailing dot kept, as urllib3 does
        conn.port,
        socket_options=conn.socket_options,
    )
    # A dup, because TLS wrapping detaches the original socket object; shutdown()
    # on the dup still ends the one TCP connection both refer to.
    attempt.watch(sock.dup(), owned=True)
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    return sock


class _OneWrite(HTTPConnection):
    """
    Writes a request's head and a ``bytes`` body with one ``sendall``, not two. Strictly private.

    urllib3 sends the head, then the body: two system calls and two TCP segments for
    every webhook (the receiver may wake up for each). Here the head is held back
    until the body's one chunk comes, and both go out as one write. Nothing else
    changes: the connection still opens (through the guard) at the first write, and
    bodies of any other kind go out as urllib3 sends them.
    """

    _holding = False
    _head: bytes | None = None

    def request(
        self, method: str, url: str, body: Any = None, headers: Any = None, **options: Any
    ) -> None:
        self._head = None
        self._holding = isinstance(body, bytes) and bool(body)
        try:
            super().request(method, url, body, headers, **options)
        finally:
            self._holding = False
        head, self._head = self._head, None
        if head is not None:  # pragma: no cover - urllib3 always sends a bytes body
            super().send(head)

    def send(self, data: Any) -> None:
        if self._holding:
            if self._head is None:
                self._head = bytes(data)
                return
            data, self._head, self._holding = self._head + data, None, False
        super().send(data)


class GuardedHTTPConnection(_OneWrite):
    """
    An urllib3 HTTP connection whose socket only ever reaches vetted addresses. Strictly private.
    """

    def _new_conn(self) -> socket.socket:
        return _new_guarded_conn(self)


class GuardedHTTPSConnection(_OneWrite, HTTPSConnection):
    """
    An urllib3 HTTPS connection whose socket only ever reaches vetted addresses. Strictly private.
    """

    def _new_conn(self) -> socket.socket:
        return _new_guarded_conn(self)


#: Where a connection goes: ``(scheme, host, port)``, as urllib3's pool manager keys its pools.
PoolKey = tuple[str, str, int]


class KeepAlivePool:
    """
    Idle keep-alive guarded connections, per ``(scheme, host, port)``. Strictly private.

    What :class:`~pendo_webhooks.transports.Urllib3Transport` keeps instead of
    urllib3's pool manager: at most *maxsize* idle connections per host (the most
    recently returned is handed out first) and *maxsize* hosts (the least recently
    used host's connections are closed to make room). Thread safe: one lock
    guards the bookkeeping, never a socket operation.

    New connections are made as urllib3's pools make them (the same constructor
    keywords, *https_options* for TLS) and are not connected: the caller connects
    them inside a send, where the address guard runs.
    """

    def __init__(
        self, maxsize: int, connect_timeout: float, https_options: dict[str, Any]
    ) -> None:
        self._maxsize = maxsize
        self._connect_timeout = connect_timeout
        self._https_options = https_options
        self._lock = threading.Lock()
        self._idle: collections.OrderedDict[PoolKey, list[HTTPConnection]] = (
            collections.OrderedDict()
        )
        self._closed = False

    def get(self, key: PoolKey) -> HTTPConnection:
        """
        Return the idle connection to *key* returned last, or a new unconnected one.

        An idle connection the server has closed meanwhile (its socket reads
        ready: EOF or stray bytes) is closed and replaced by a new one, so no
        request is ever written to a dead socket.
        """
        with self._lock:
            idle = self._idle.get(key)
            conn = idle.pop() if idle else None
        if conn is not None:
            if conn.sock is not None and not wait_for_read(conn.sock, timeout=0.0):
                return conn
            conn.close()
        return self.make(key)

    def make(self, key: PoolKey) -> HTTPConnection:
        """
        Return a new, unconnected guarded connection to *key*.
        """
        scheme, host, port = key
        if scheme == "https":
            return GuardedHTTPSConnection(
                host=host, port=port, timeout=self._connect_timeout, **self._https_options
            )
        return GuardedHTTPConnection(
            host=host, port=port, timeout=self._connect_timeout, blocksize=BLOCKSIZE
        )

    def put(self, key: PoolKey, conn: HTTPConnection) -> None:
        """
        Keep *conn* (its response read to the end) idle for *key*, or close it if there is no room.
        """
        extra: list[HTTPConnection] = [conn]
        with self._lock:
            if not self._closed:
                idle = self._idle.get(key)
                if idle is None:
                    idle = self._idle[key] = []
                    if len(self._idle) > self._maxsize:
                        extra.extend(self._idle.popitem(last=False)[1])
                else:
                    self._idle.move_to_end(key)
                if len(idle) < self._maxsize:
                    idle.append(extra.pop(0))
        for surplus in extra:
            surplus.close()

    def idle(self, key: PoolKey) -> int:
        """
        Return how many idle connections to *key* are kept.
        """
        with self._lock:
            return len(self._idle.get(key, ()))

    def close(self) -> None:
        """
        Close every idle connection; connections returned later are closed, not kept.
        """
        with self._lock:
            self._closed = True
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()


#: The block size urllib3's pool manager gives every connection it makes.
BLOCKSIZE = 16384


def _lease(conn: object) -> None:
    # A pooled connection starts serving the current attempt: watch its socket.
    sock = getattr(conn, "sock", None)
    attempt = current_attempt()
    if attempt is not None and isinstance(sock, socket.socket):
        attempt.watch(sock)


def _unlease(conn: object) -> None:
    attempt = current_attempt()
    if attempt is None:
        return
    attempt.release()
    if attempt.expired and isinstance(conn, HTTPConnection):
        # The watchdog shut this socket down: never hand it to the next attempt.
        conn.close()


class _LeasingPool(HTTPConnectionPool):
    """
    Ties each pooled connection to the attempt that borrows it. Strictly private.
    """

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        _lease(conn)
        return conn

    def _put_conn(self, conn: Any) -> None:
        _unlease(conn)
        super()._put_conn(conn)


class GuardedHTTPConnectionPool(_LeasingPool):
    """
    A pool of :class:`GuardedHTTPConnection`. Strictly private.
    """

    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(_LeasingPool, HTTPSConnectionPool):
    """
    A pool of :class:`GuardedHTTPSConnection`. Strictly private.
    """

    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(requests.adapters.HTTPAdapter):
    """
    A requests adapter whose pools make guarded connections and never use a proxy.

    Strictly private.
    """

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:  # noqa: ARG002
        # A proxy resolves names itself and would bypass the guard.
        raise DestinationBlocked("blocked", "sending through a proxy is not supported")


class GuardedSession(requests.Session):
    """
    A requests session that ignores the environment, keeps no cookies and follows no redirects.

    Strictly private. ``trust_env`` is off, so ``HTTP(S)_PROXY``, ``ALL_PROXY``,
    ``REQUESTS_CA_BUNDLE`` and ``~/.netrc`` never apply. Cookies set by one
    receiver are never sent to another webhook on the same host.
    """

    def __init__(self, adapter: GuardedAdapter) -> None:
        super().__init__()
        self.trust_env = False
        self.headers.clear()
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        for prefix in list(self.adapters):
            self.adapters.pop(prefix).close()
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def get_redirect_target(self, resp: requests.Response) -> str | None:  # noqa: ARG002
        """
        Return None: never resolve a redirect.

        Even with ``allow_redirects=False``, requests reads the whole body of a
        3xx (and inflates it) to prepare ``Response.next``; this stops that.
        """
        return None


_QUERY = re.compile(r"\?[^\s\"'<>]*")
_REDACTED_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)


class _RedactQueries(logging.Filter):
    """
    Drop URL query strings from urllib3's records made during a send. Strictly private.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if current_attempt() is not None:
            message = record.getMessage()
            redacted = _QUERY.sub("?[redacted]", message)
            if redacted != message:
                record.msg, record.args = redacted, ()
        return True


_FILTER = _RedactQueries()


def install_log_redaction() -> None:
    """
    Add the query-redacting filter to urllib3's loggers (once; idempotent).

    urllib3 logs each request line, query string included, at DEBUG; a webhook
    URL's query often carries a token.
    """
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
