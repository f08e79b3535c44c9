"""
Transports: how one signed request reaches a receiver, and what came back.

A :class:`Transport` makes exactly one HTTP exchange per :meth:`~Transport.send`:
it returns every response it gets (any status) as a :class:`TransportResponse`
and raises :class:`~pendo_webhooks.exceptions.TransportError` only when no
response arrived. It never retries and never follows a redirect; deciding what
a status means is the dispatcher's job (see
[Responses](../reference/wire-format.md#responses)).

:class:`Urllib3Transport` is the default (what the dispatcher and the CLI make):
it keeps its own small pool of :mod:`urllib3`'s (guarded) connections and talks
to them directly. :class:`RequestsTransport` sends through a :mod:`requests`
session instead; both use the same guarded
connection classes, put the same bytes on the wire and keep the same
guarantees, proven by one test suite run against each. Neither can be turned
inward (see [Security notes](../security.md#the-address-guard)):

* the URL passes :meth:`DestinationPolicy.check_url
  <pendo_webhooks.guard.DestinationPolicy.check_url>` before any socket exists;
* the host is resolved once per new connection, in a thread bounded by
  *dns_timeout*; if any answer is not allowed nothing connects, otherwise the
  socket connects to the vetted addresses themselves (so a second lookup cannot
  rebind the name); TLS is always verified, against the host name;
* proxies, ``.netrc`` and CA settings from the environment never apply;
  redirects are returned, not followed; cookies are never kept;
* one *deadline* covers connect, send, headers and body, so a receiver that
  trickles bytes cannot hold a worker; a timed-out attempt is a ``"timeout"``
  whatever status was parsed;
* at most *max_response_bytes* of the body are read off the wire, never
  decompressed (``Accept-Encoding: identity`` is sent anyway);
* error details and reprs never carry header values or the URL's query string,
  and urllib3's own debug log lines have their query strings redacted.

>>> request = OutgoingRequest(
...     url="https://hooks.example.com/in?token=abc",
...     body=b'{"event":"guideDisplayed"}',
...     headers={"Content-Type": "application/json"},
... )
>>> request
OutgoingRequest(url='https://hooks.example.com/in?[redacted]', method='POST')
"""

from __future__ import annotations

import abc
import errno
import http.client
import logging
import math
import re
import socket
import ssl
import time
import types
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

import attrs
import requests
import requests.utils
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.util
import urllib3.util.ssl_
import urllib3.util.ssl_match_hostname

from .._version import __version__
from ..exceptions import (
    ConfigurationError,
    DestinationBlocked,
    InvalidDestination,
    InvalidType,
    TransportError,
    ValidationError,
)
from ..guard import DestinationPolicy
from . import _guarded_http, _transport_errors
from ._deadline import Watchdog, WatchedSend
from ._guarded_http import GuardConfig, Resolver
from ._plain_response import PlainFields, PlainResponse


__all__ = [
    "DEFAULT_USER_AGENT",
    "MAX_DEADLINE",
    "OutgoingRequest",
    "RequestsTransport",
    "Resolver",
    "Transport",
    "TransportResponse",
    "Urllib3Transport",
]

#: Sent when the request's headers name no ``User-Agent``.
DEFAULT_USER_AGENT = f"pendo-webhooks/{__version__}"

#: The most a deadline may be, in seconds (the default is 15 s).
MAX_DEADLINE = 30.0

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
# The transport frames the message itself; a caller's value could desynchronise it.
_RESERVED_HEADERS = frozenset({"content-length", "transfer-encoding", "host", "connection"})
_READ_CHUNK = 16384
# Destination URLs whose check a transport remembers (then it starts over).
_CHECKED_URLS = 1024
_T = TypeVar("_T", bound="_GuardedTransport")
# requests sends no Content-Length for a bodiless GET or HEAD; every other method gets one.
_BODILESS = frozenset({"GET", "HEAD"})
# Socket errors that mean a timeout (urllib3 reads them so), or that the peer hung up.
_BLOCKING_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})
_HUNG_UP = frozenset({errno.EPROTOTYPE, errno.ECONNRESET})
# Urllib3Transport logs urllib3's request line where urllib3's pool would.
_POOL_LOG = logging.getLogger("urllib3.connectionpool")


def _safe_url(url: str) -> str:
    """
    Show a URL without userinfo, query string or fragment (for reprs and logs).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "'<unparseable URL>'"
    query = "?[redacted]" if parts.query else ""
    return repr(f"{parts.scheme}://{netloc}{parts.path}{query}")


# Header names that passed the name checks (a webhook sends the same few every time).
_GOOD_NAMES: set[str] = set()
# Header names the exchange found to be tokens (the transport's own included, such as
# Content-Length, which an OutgoingRequest may not carry: a set of its own).
_WIRE_NAMES: set[str] = set()


def _remember(names: set[str], name: str) -> None:
    if len(names) >= _CHECKED_URLS:
        names.clear()
    names.add(name)


def _freeze_headers(value: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        msg = f"must be a mapping of header names to values, not {type(value).__name__}"
        raise ValidationError("headers", msg)
    for name, item in value.items():
        if name not in _GOOD_NAMES:
            if not isinstance(name, str) or not _TOKEN.fullmatch(name):
                raise ValidationError("headers", f"invalid header name {name!r}")
            if name.lower() in _RESERVED_HEADERS:
                raise ValidationError("headers", f"{name} is set by the transport")
            _remember(_GOOD_NAMES, name)
        # Never echo the value: it may be a signature or an Authorization header.
        if not isinstance(item, str):
            raise ValidationError("headers", f"the value of {name} must be text")
        if _BAD_VALUE.search(item):
            raise ValidationError("headers", f"the value of {name} contains CR, LF or NUL")
    return types.MappingProxyType(dict(value))


def _check_url(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError("url", "must be a non-empty string")


def _check_body(_instance: object, _attribute: object, value: bytes) -> None:
    if not isinstance(value, bytes):
        raise ValidationError("body", f"must be bytes, not {type(value).__name__}")


def _check_method(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ValidationError("method", "must be an HTTP method name like 'POST'")


@attrs.frozen(kw_only=True)
class OutgoingRequest:
    """
    One HTTP request to send, exactly as it must reach the wire.

    Attributes:
        url: The destination; its query string is never shown in reprs or errors.
        body: The exact bytes to send (not shown in the repr).
        headers: Header names to values, sent as given (not shown in the repr:
            they carry signatures and ``Authorization``). ``Content-Length``,
            ``Transfer-Encoding``, ``Host`` and ``Connection`` are the
            transport's to set.
        method: The HTTP method.

    Raises:
        ValidationError: A field has the wrong type, a header name is not an
            HTTP token, or a header value contains CR, LF or NUL.

    >>> OutgoingRequest(url="https://h.example/x", body=b"{}", headers={"A": "1"}).headers["A"]
    '1'
    """

    url: str = attrs.field(validator=_check_url, repr=_safe_url)
    body: bytes = attrs.field(default=b"", validator=_check_body, repr=False)
    headers: Mapping[str, str] = attrs.field(
        factory=dict, converter=_freeze_headers, repr=False, hash=False
    )
    method: str = attrs.field(default="POST", validator=_check_method)


def _check_status(_instance: object, _attribute: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 999:
        raise ValidationError("status", "must be an HTTP status code (100-999)")


def _lower_headers(value: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        msg = f"must be a mapping of header names to values, not {type(value).__name__}"
        raise InvalidType("headers", msg)
    return types.MappingProxyType({k.lower(): v for k, v in value.items()})


@attrs.frozen(kw_only=True)
class TransportResponse:
    """
    What came back from one request: the status, headers and the start of the body.

    Attributes:
        status: The HTTP status code, whatever it is (3xx included: redirects
            are returned, never followed).
        headers: Response headers with lower-cased names (repeated headers
            joined with ``", "``).
        body: At most ``max_response_bytes`` of the body, as sent on the wire
            (never decompressed).
        elapsed: Seconds from the start to the end of the attempt.
        truncated: True if the body went on beyond what was read.

    >>> r = TransportResponse(status=503, headers={"Retry-After": "120"}, body=b"busy")
    >>> r.headers["retry-after"], r
    ('120', TransportResponse(status=503, body=<4 bytes>, elapsed=0.0, truncated=False))
    """

    status: int = attrs.field(validator=_check_status)
    headers: Mapping[str, str] = attrs.field(
        factory=dict, converter=_lower_headers, repr=False, hash=False
    )
    body: bytes = attrs.field(
        default=b"", validator=_check_body, repr=lambda b: f"<{len(b)} bytes>"
    )
    elapsed: float = 0.0
    truncated: bool = False


class Transport(Protocol):
    """
    **Protocol**: sends one request and reports what came back.

    Implementations return every HTTP response, whatever its status, and raise
    :class:`~pendo_webhooks.exceptions.TransportError` only when no response
    arrived, with ``kind`` one of ``"timeout"``, ``"connect"``, ``"dns"``,
    ``"tls"``, ``"blocked"``
    (:class:`~pendo_webhooks.exceptions.DestinationBlocked`), ``"too-large"`` or
    ``"error"``. They never retry and never follow redirects.

    A transport may say how long one send can take at most, as a ``deadline``
    attribute in seconds (:class:`Urllib3Transport` and :class:`RequestsTransport` do): the
    :class:`~pendo_webhooks.dispatcher.Dispatcher` then refuses a lease too short to
    cover it. Without one, no lease is refused, and a delivery whose attempts keep
    outliving their lease ends ``dead`` after the dispatcher's ``max_claims``.
    """

    def send(self, request: OutgoingRequest) -> TransportResponse:
        """
        Send *request* once and return the response.
        """
        ...


def _positive_seconds(value: float, field: str, *, most: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{field}: must be a number of seconds")
    if not (0 < value <= most and math.isfinite(value)):
        limit = f" and at most {most:g}" if math.isfinite(most) else ""
        raise ConfigurationError(f"{field}: must be more than 0{limit} seconds, got {value!r}")
    return float(value)


def _count(value: int, field: str, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigurationError(f"{field}: must be an integer of at least {least}")
    return value


class _GuardedTransport(abc.ABC):
    """
    The guarded send shared by :class:`Urllib3Transport` and :class:`RequestsTransport`.

    Strictly private: the address guard, the deadline watchdog, the capped read
    and the error translation live here; a subclass only says how one exchange
    goes over its pool (:meth:`_exchange`).
    """

    def __init__(
        self,
        *,
        destinations: DestinationPolicy = DestinationPolicy(),  # noqa: B008 - frozen value
        connect_timeout: float = 5.0,
        deadline: float = 15.0,
        dns_timeout: float = 3.0,
        max_response_bytes: int = 4096,
        resolver: Resolver = socket.getaddrinfo,
        ca_bundle: str | None = None,
        pool_maxsize: int = 32,
    ) -> None:
        if not isinstance(destinations, DestinationPolicy):
            raise ConfigurationError("destinations: must be a DestinationPolicy")
        if not callable(resolver):
            raise ConfigurationError("resolver: must be callable like socket.getaddrinfo")
        if ca_bundle is not None and not (isinstance(ca_bundle, str) and Path(ca_bundle).exists()):
            raise ConfigurationError(
                "ca_bundle: must be the path of an existing file or directory"
            )
        self._deadline = _positive_seconds(deadline, "deadline", most=MAX_DEADLINE)
        self._connect_timeout = _positive_seconds(connect_timeout, "connect_timeout")
        self._max_response_bytes = _count(max_response_bytes, "max_response_bytes", least=0)
        self._destinations = destinations
        self._checked_urls: dict[str, str] = {}
        self._config = GuardConfig(
            policy=destinations,
            resolver=resolver,
            connect_timeout=self._connect_timeout,
            dns_timeout=_positive_seconds(dns_timeout, "dns_timeout"),
        )
        maxsize = _count(pool_maxsize, "pool_maxsize", least=1)
        self._verify: str | bool = ca_bundle if ca_bundle is not None else True
        # The socket read timeout is a backstop only; the watchdog enforces the deadline.
        self._timeouts = (self._connect_timeout, self._deadline)
        self._watchdog: Watchdog[GuardConfig] = Watchdog(self._deadline)
        self._open(maxsize)
        _guarded_http.install_log_redaction()

    @abc.abstractmethod
    def _open(self, maxsize: int) -> None: ...

    @abc.abstractmethod
    def _close_pool(self) -> None: ...

    @abc.abstractmethod
    def _exchange(
        self, request: OutgoingRequest, url: str, attempt: WatchedSend[GuardConfig]
    ) -> tuple[int, Mapping[str, str], bytes, bool]: ...

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}(deadline={self._deadline:g}, "
            f"connect_timeout={self._connect_timeout:g}, "
            f"max_response_bytes={self._max_response_bytes})>"
        )

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def deadline(self) -> float:
        """
        The most one send may take, in seconds: connect, send, headers and body.

        >>> with RequestsTransport(deadline=10) as transport:
        ...     transport.deadline
        10.0
        """
        return self._deadline

    def close(self) -> None:
        """
        Close pooled connections and stop the watchdog once running sends end.
        """
        self._watchdog.close()
        self._close_pool()

    def send(self, request: OutgoingRequest) -> TransportResponse:
        """
        Send *request* once; return the response, whatever its status.

        Raises:
            DestinationBlocked: The URL or an address it resolves to is not
                allowed; no connection was made.
            TransportError: No response arrived: ``"timeout"``, ``"connect"``,
                ``"dns"``, ``"tls"`` or ``"error"``.
        """
        url = self._checked_url(request.url)
        started = time.monotonic()
        attempt = self._watchdog.begin(self._config)
        if attempt is None:
            raise TransportError("error", "the transport is closed")
        try:
            with _guarded_http.activate(attempt):
                status, headers, body, truncated = self._exchange(request, url, attempt)
        except DestinationBlocked:
            raise
        except (
            TransportError,
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
            OSError,
        ) as exc:
            # A fired watchdog explains whatever broke, whatever was parsed.
            if attempt.expired:
                raise self._timeout(url) from None
            if isinstance(exc, TransportError):
                raise
            # Never chain: requests' and urllib3's messages carry the full URL.
            raise _transport_errors.translate(exc, url) from None
        finally:
            self._watchdog.end(attempt)
        if attempt.expired:
            raise self._timeout(url)
        return TransportResponse(
            status=status,
            headers=headers,
            body=body,
            elapsed=time.monotonic() - started,
            truncated=truncated,
        )

    @staticmethod
    def _wire_headers(headers: Mapping[str, str]) -> dict[str, str]:
        wire = {k: v for k, v in headers.items() if k.lower() != "accept-encoding"}
        wire["Accept-Encoding"] = "identity"
        if not any(k.lower() == "user-agent" for k in wire):
            wire["User-Agent"] = DEFAULT_USER_AGENT
        return wire

    def _checked_url(self, url: str) -> str:
        # check_url is a pure function of the URL string and this transport's frozen
        # policy: remember what passed (a refusal is checked again every time).
        checked = self._checked_urls.get(url)
        if checked is None:
            try:
                checked = self._destinations.check_url(url)
            except InvalidDestination as exc:
                raise DestinationBlocked("blocked", exc.reason) from exc
            if len(self._checked_urls) >= _CHECKED_URLS:
                self._checked_urls.clear()
            self._checked_urls[url] = checked
        return checked

    def _timeout(self, url: str) -> TransportError:
        return TransportError(
            "timeout",
            f"no complete response from {_transport_errors.host_port(url)} "
            f"within {self._deadline:g} s",
        )


class RequestsTransport(_GuardedTransport):
    """
    Send requests with a guarded :mod:`requests` session (see the module docs).

    Thread safe: call :meth:`send` from as many threads as you like; connections
    are pooled per host and kept alive. Use it as a context manager, or call
    :meth:`close`, to release the pool and the watchdog thread.

    Args:
        destinations: Which destinations are allowed; checked on every send.
        connect_timeout: Seconds to wait for one TCP connect.
        deadline: Seconds for the whole attempt: DNS, connect, TLS, send,
            headers and body (at most 30).
        dns_timeout: Seconds to wait for the resolver.
        max_response_bytes: How much of a response body to read.
        resolver: Resolves names; :func:`socket.getaddrinfo` or a stand-in
            with its signature.
        ca_bundle: A CA bundle file (or directory) to verify receivers with,
            instead of the system's.
        pool_maxsize: Keep-alive connections kept per host (and hosts kept).

    Raises:
        ConfigurationError: An argument is out of range (the message names it).

    >>> with RequestsTransport(deadline=10.0) as transport:
    ...     try:
    ...         transport.send(OutgoingRequest(url="ftp://example.com/", body=b"{}"))
    ...     except DestinationBlocked as exc:
    ...         print(exc.kind)
    blocked
    """

    def _open(self, maxsize: int) -> None:
        self._session = _guarded_http.GuardedSession(
            _guarded_http.GuardedAdapter(pool_connections=maxsize, pool_maxsize=maxsize)
        )

    def _close_pool(self) -> None:
        self._session.close()

    def _exchange(
        self, request: OutgoingRequest, url: str, attempt: WatchedSend[GuardConfig]
    ) -> tuple[int, Mapping[str, str], bytes, bool]:
        response = self._session.request(
            request.method,
            url,
            data=request.body or None,
            headers=self._wire_headers(request.headers),
            stream=True,
            allow_redirects=False,
            timeout=self._timeouts,
            verify=self._verify,
            proxies={},
        )
        try:
            body, truncated = _read_capped(response.raw, self._max_response_bytes, attempt)
            return response.status_code, response.headers, body, truncated
        finally:
            # A fully read body already went back to the pool; anything else
            # closes the connection, so nothing unread is ever reused.
            response.close()


class Urllib3Transport(_GuardedTransport):
    """
    Send requests over guarded :mod:`urllib3` connections: the default transport.

    The same guarantees as :class:`RequestsTransport` (see the module docs), the
    same connection classes and the same bytes on the wire, without requests'
    session layer or urllib3's pool manager on top (a fraction of the CPU per
    request). Idle keep-alive connections are kept per host, the most recently
    used handed out first; one the receiver closed meanwhile is replaced, never
    written to; a connection goes back only once its response was read to the
    end and the receiver did not ask to close it. This is what
    :class:`~pendo_webhooks.dispatcher.Dispatcher` and the CLI use unless given
    a transport; use :class:`RequestsTransport` only to keep requests' session
    machinery.

    Thread safe: call :meth:`send` from as many threads as you like; connections
    are pooled per host and kept alive. Use it as a context manager, or call
    :meth:`close`, to release the pool and the watchdog thread.

    Args:
        destinations: Which destinations are allowed; checked on every send.
        connect_timeout: Seconds to wait for one TCP connect.
        deadline: Seconds for the whole attempt: DNS, connect, TLS, send,
            headers and body (at most 30).
        dns_timeout: Seconds to wait for the resolver.
        max_response_bytes: How much of a response body to read.
        resolver: Resolves names; :func:`socket.getaddrinfo` or a stand-in
            with its signature.
        ca_bundle: A CA bundle file (or directory) to verify receivers with,
            instead of the bundle requests verifies with (certifi's).
        pool_maxsize: Keep-alive connections kept per host (and hosts kept).

    Raises:
        ConfigurationError: An argument is out of range (the message names it).

    >>> from pendo_webhooks.testing import LocalReceiver
    >>> from pendo_webhooks.guard import DestinationPolicy
    >>> with (
    ...     LocalReceiver(secrets=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]) as receiver,
    ...     Urllib3Transport(destinations=DestinationPolicy.local_testing()) as transport,
    ... ):
    ...     response = transport.send(OutgoingRequest(url=receiver.url, body=b"{}"))
    >>> response.status
    401
    >>> with Urllib3Transport() as transport:
    ...     try:
    ...         transport.send(OutgoingRequest(url="https://127.0.0.1/in", body=b"{}"))
    ...     except DestinationBlocked as exc:
    ...         print(exc.kind)
    blocked
    """

    def _open(self, maxsize: int) -> None:
        # One verified TLS context for every connection (hostname checked by urllib3).
        context = urllib3.util.ssl_.create_urllib3_context()
        where = (
            self._verify
            if isinstance(self._verify, str)
            else requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
        if Path(where).is_dir():
            context.load_verify_locations(capath=where)
        else:
            context.load_verify_locations(cafile=where)
        # Our own idle pool, not urllib3's PoolManager (most of the CPU per send went
        # there); the connections are made with the keywords urllib3's HTTPS pool
        # gives them, so TLS, SNI and hostname checks are urllib3's own. Nothing is
        # read from the environment.
        self._pool = _guarded_http.KeepAlivePool(
            maxsize,
            self._connect_timeout,
            {
                "cert_file": None,
                "key_file": None,
                "key_password": None,
                "cert_reqs": "CERT_REQUIRED",
                "ca_certs": None,
                "ca_cert_dir": None,
                "assert_hostname": None,
                "assert_fingerprint": None,
                "ssl_version": None,
                "ssl_minimum_version": None,
                "ssl_maximum_version": None,
                "ssl_context": context,
                "blocksize": _guarded_http.BLOCKSIZE,
            },
        )
        # (method, checked URL) -> where it goes and how its request starts.
        self._targets: dict[tuple[str, str], _Target] = {}

    def _close_pool(self) -> None:
        self._pool.close()

    def _target(self, method: str, url: str) -> _Target:
        # Where a URL goes and how its request starts, worked out once per URL with
        # urllib3's own parser and HTTPConnection.putrequest, so the bytes are theirs.
        target = self._targets.get((method, url))
        if target is None:
            parsed = urllib3.util.parse_url(url)
            scheme = parsed.scheme or "http"
            host = (parsed.host or "").lower()
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]  # urllib3's pools keep an IPv6 literal without brackets
            port = parsed.port or (443 if scheme == "https" else 80)
            key = (scheme, host, port)
            probe = self._pool.make(key)  # never connected: it only formats the start
            probe.putrequest(method, parsed.request_uri, skip_accept_encoding=True)
            written: list[bytes] = probe._buffer  # type: ignore[attr-defined]
            target = _Target(key, b"\r\n".join(written) + b"\r\n", parsed.request_uri)
            if len(self._targets) >= _CHECKED_URLS:
                self._targets.clear()
            self._targets[(method, url)] = target
        return target

    def _exchange(
        self, request: OutgoingRequest, url: str, attempt: WatchedSend[GuardConfig]
    ) -> tuple[int, Mapping[str, str], bytes, bool]:
        target = self._target(request.method, url)
        headers = self._wire_headers(request.headers)
        # Framed as requests frames it, last, so the head is byte for byte the same.
        if request.body:
            headers["Content-Length"] = str(len(request.body))
        elif request.method not in _BODILESS:
            headers["Content-Length"] = "0"
        message = target.start + _header_lines(headers) + request.body
        conn = self._pool.get(target.key)
        reusable = False
        try:
            try:
                if conn.sock is None:
                    conn.connect()  # through the address guard, which watches the socket
                else:
                    attempt.watch(conn.sock)  # a kept-alive socket now serves this attempt
                reusable, answer = _converse(
                    conn,
                    message,
                    target=target,
                    method=request.method,
                    timeouts=self._timeouts,
                    cap=self._max_response_bytes,
                    attempt=attempt,
                )
            except (
                OSError,
                http.client.HTTPException,
                urllib3.util.ssl_match_hostname.CertificateError,
            ) as exc:
                raise _as_urllib3_error(exc) from exc
        finally:
            # Back to the pool only if the response was read to its end, the server
            # keeps the connection open and the watchdog never touched it.
            attempt.release()
            if reusable and not attempt.expired:
                self._pool.put(target.key, conn)
            else:
                conn.close()
        return answer


class _Target(NamedTuple):
    """
    Where one URL's requests go: the pool key, the request line and ``Host`` header, the path.
    """

    key: _guarded_http.PoolKey
    start: bytes
    path: str


def _header_lines(headers: Mapping[str, str]) -> bytes:
    """
    Write header fields and the blank line as urllib3's HTTPConnection.request does.

    Values are Latin-1; a value of ``urllib3.util.SKIP_HEADER`` leaves a skippable
    header out. Every name and value is checked here once more, as http.client's
    ``putheader`` would (the requests the library builds skip
    :class:`OutgoingRequest`'s checks): nothing can split the head.

    Raises:
        ValueError: A name is not an HTTP token, or a value holds CR, LF or NUL (as
            ``putheader``; neither is quoted, a value may be a signature).
    """
    for name in headers:
        if name not in _WIRE_NAMES:
            if not _TOKEN.fullmatch(name):
                raise ValueError("invalid header name")
            _remember(_WIRE_NAMES, name)
    if _BAD_VALUE.search("".join(headers.values())):
        raise ValueError("a header value contains CR, LF or NUL")
    lines = []
    for name, value in headers.items():
        if value == urllib3.util.SKIP_HEADER:
            if name.lower() not in urllib3.util.SKIPPABLE_HEADERS:
                skippable = "', '".join(sorted(h.title() for h in urllib3.util.SKIPPABLE_HEADERS))
                raise ValueError(f"urllib3.util.SKIP_HEADER only supports '{skippable}'")
            continue
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def _as_urllib3_error(exc: Exception) -> Exception:
    """
    Wrap what the socket, TLS and http.client layers raised as urllib3's pool does.
    """
    if isinstance(exc, ssl.SSLError | urllib3.util.ssl_match_hostname.CertificateError):
        return urllib3.exceptions.SSLError(exc)
    if isinstance(exc, TimeoutError) or (
        isinstance(exc, OSError) and exc.errno in _BLOCKING_ERRNOS
    ):
        return urllib3.exceptions.TimeoutError("timed out")
    # The cause rides in the arguments, where the error translation looks.
    return urllib3.exceptions.ProtocolError("Connection aborted.", exc)


def _converse(
    conn: urllib3.connection.HTTPConnection,
    message: bytes,
    *,
    target: _Target,
    method: str,
    timeouts: tuple[float, float],
    cap: int,
    attempt: WatchedSend[GuardConfig],
) -> tuple[bool, tuple[int, Mapping[str, str], bytes, bool]]:
    """
    Write *message* on connected *conn*, then read the response, its body capped.

    Returns whether the connection may be kept alive, and the status, headers,
    body and whether the body was truncated.
    """
    sock = conn.sock
    assert sock is not None  # noqa: S101 - connected by the caller
    # As urllib3 times a request: the connect timeout to write, the read timeout to read.
    sock.settimeout(timeouts[0])
    try:
        conn.send(message)  # one write for head and body
    except OSError as exc:
        # As urllib3 does: a receiver that hung up mid-request may have answered first.
        if not isinstance(exc, BrokenPipeError) and exc.errno not in _HUNG_UP:
            raise
    sock.settimeout(timeouts[1])
    response = PlainResponse(sock, method=method)
    try:
        response.begin()
        if _POOL_LOG.isEnabledFor(logging.DEBUG):
            scheme, host, port = target.key
            # urllib3's request line, query redacted by the filter on this logger.
            _POOL_LOG.debug(
                '%s://%s:%s "%s %s %s" %s %s',
                scheme,
                host,
                port,
                method,
                target.path,
                "HTTP/1.1",
                response.status,
                response.length,
            )
        msg = response.msg
        if isinstance(msg, PlainFields):
            fields = msg.fields
        else:  # folded values unfolded as urllib3 does
            fields = urllib3.connection._normalize_header_values(msg)
        headers: dict[str, str] = {}
        # Repeated headers joined with ", ", as urllib3's HTTPHeaderDict joins them.
        for name, value in fields:
            low = name.lower()
            headers[low] = f"{headers[low]}, {value}" if low in headers else value
        body, truncated = _read_to_cap(response, cap, attempt)
        # Read to its end: the chunked terminator closed it, or nothing announced is left.
        ended = response.isclosed() or (not response.chunked and response.length == 0)
        return ended and not response.will_close, (response.status, headers, body, truncated)
    finally:
        response.close()


def _read_to_cap(
    response: http.client.HTTPResponse, cap: int, attempt: WatchedSend[GuardConfig]
) -> tuple[bytes, bool]:
    """
    Read at most *cap* body bytes (plus one, to learn whether more exist), as sent.

    Raises:
        http.client.IncompleteRead: The server closed before the body it announced ended.
    """
    limit = cap + 1
    parts: list[bytes] = []
    got = 0
    while got < limit and not attempt.expired:
        chunk = response.read1(min(limit - got, _READ_CHUNK))
        if not chunk:
            if response.length:
                raise http.client.IncompleteRead(b"", response.length)
            break
        parts.append(chunk)
        got += len(chunk)
    data = b"".join(parts)
    return data[:cap], got > cap


def _read_capped(raw: Any, cap: int, attempt: WatchedSend[GuardConfig]) -> tuple[bytes, bool]:
    """
    Read at most *cap* body bytes (plus one, to learn whether more exist), as sent.
    """
    limit = cap + 1
    parts: list[bytes] = []
    got = 0
    while got < limit and not attempt.expired:
        chunk: bytes = raw.read1(min(limit - got, _READ_CHUNK), decode_content=False)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    data = b"".join(parts)
    return data[:cap], got > cap
