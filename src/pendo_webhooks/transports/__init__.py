"""
Transports: how one signed request reaches a receiver, and what came back.

A :class:`Transport` makes exactly one HTTP exchange per :meth:`~Transport.send`:
it returns every response it gets (any status) as a :class:`TransportResponse`
and raises :class:`~pendo_webhooks.exceptions.TransportError` only when no
response arrived. It never retries and never follows a redirect; deciding what
a status means is the dispatcher's job (see
[Responses](../reference/wire-format.md#responses)).

:class:`Urllib3Transport` is the default (what the dispatcher and the CLI make):
it speaks through :mod:`urllib3`'s pools directly. :class:`RequestsTransport`
sends through a :mod:`requests` session instead; both use the same guarded
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
import http.client
import math
import re
import socket
import time
import types
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import requests
import requests.utils
import urllib3
import urllib3.exceptions
import urllib3.util.ssl_

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
            if len(_GOOD_NAMES) >= _CHECKED_URLS:
                _GOOD_NAMES.clear()
            _GOOD_NAMES.add(name)
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
    Send requests through guarded :mod:`urllib3` pools: the default transport.

    The same guarantees as :class:`RequestsTransport` (see the module docs), the
    same connection classes and the same bytes on the wire, without requests'
    session layer on top (about half the CPU per request). This is what
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
        # A PoolManager reads no proxy, netrc or CA setting from the environment.
        self._pools = urllib3.PoolManager(
            num_pools=maxsize,
            maxsize=maxsize,
            ssl_context=context,
            cert_reqs="CERT_REQUIRED",
        )
        self._pools.pool_classes_by_scheme = {
            "http": _guarded_http.GuardedHTTPConnectionPool,
            "https": _guarded_http.GuardedHTTPSConnectionPool,
        }
        self._urllib3_timeout = urllib3.Timeout(connect=self._connect_timeout, read=self._deadline)

    def _close_pool(self) -> None:
        self._pools.clear()

    def _exchange(
        self, request: OutgoingRequest, url: str, attempt: WatchedSend[GuardConfig]
    ) -> tuple[int, Mapping[str, str], bytes, bool]:
        body = request.body or None
        headers = self._wire_headers(request.headers)
        # Framed as requests frames it, last, so the head is byte for byte the same.
        if body is not None:
            headers["Content-Length"] = str(len(body))
        elif request.method not in _BODILESS:
            headers["Content-Length"] = "0"
        response = self._pools.urlopen(
            request.method,
            url,
            body=body,
            headers=headers,
            retries=False,
            redirect=False,
            timeout=self._urllib3_timeout,
            preload_content=False,
            decode_content=False,
        )
        try:
            body_read, truncated = _read_capped(response, self._max_response_bytes, attempt)
            raw = response.headers
            # Repeated headers joined with ", ", as requests' CaseInsensitiveDict does.
            return response.status, {name: raw[name] for name in raw}, body_read, truncated
        finally:
            # A fully read body already went back to the pool; anything else
            # closes the connection, so nothing unread is ever reused.
            response.close()
            response.release_conn()


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
