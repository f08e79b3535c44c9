"""
A local webhook receiver for tests: records requests, verifies signatures, answers from a script.

Strictly private; import from :mod:`pendo_webhooks.testing`.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import http.server
import json
import logging
import re
import socket
import threading
import types
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import attrs

from .._clock import Clock, utcnow
from ..events._models import Event
from ..events._serialize import to_wire
from ..events._wire import parse_event
from ..exceptions import (
    ConfigurationError,
    InvalidEventPayload,
    SignatureError,
    UnknownEventType,
    ValidationError,
)
from ..signing import SignatureScheme, signer_for, verify
from ..signing._secret import Secret
from ..signing._verify import DEFAULT_SIGNATURE_HEADER, DEFAULT_TOLERANCE, validate_header_name
from ..transports import DEFAULT_USER_AGENT


__all__ = ["LocalReceiver", "ReceivedRequest", "Reply", "SignedRequest", "signed_request"]

_LOG = logging.getLogger("pendo_webhooks.testing")

#: The largest request body a :class:`LocalReceiver` reads by default (after gunzip too).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
# The server frames responses itself; a scripted header could desynchronise the connection.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_JOIN_TIMEOUT = 5.0
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _freeze_reply_headers(value: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError("headers", "must be a mapping of header names to values")
    for name, item in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValidationError("headers", f"invalid header name {name!r}")
        if name.lower() in _FRAMING_HEADERS:
            raise ValidationError("headers", f"{name} is set by the receiver")
        if not isinstance(item, str) or _BAD_VALUE.search(item):
            raise ValidationError("headers", f"the value of {name} must be text without CR/LF")
    return types.MappingProxyType(dict(value))


def _check_reply_status(_instance: object, _attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValidationError("status", "must be an HTTP status code from 200 to 599")


def _check_reply_body(_instance: object, _attribute: object, value: bytes) -> None:
    if not isinstance(value, bytes):
        raise ValidationError("body", f"must be bytes, not {type(value).__name__}")


@attrs.frozen(kw_only=True)
class Reply:
    """
    One scripted answer of a :class:`LocalReceiver`.

    Attributes:
        status: The status code, 200 to 599.
        headers: Extra response headers (``Retry-After``, ...); the receiver
            sets ``Content-Length`` and ``Connection`` itself.
        body: The response body.

    Raises:
        ValidationError: Naming the field, for a status out of range, a bad
            header name or value, or a body that is not bytes.

    >>> Reply(status=429, headers={"Retry-After": "7"})
    Reply(status=429, headers={'Retry-After': '7'}, body=b'')
    """

    status: int = attrs.field(default=200, validator=_check_reply_status)
    headers: Mapping[str, str] = attrs.field(
        factory=dict, converter=_freeze_reply_headers, repr=lambda h: repr(dict(h)), hash=False
    )
    body: bytes = attrs.field(default=b"", validator=_check_reply_body)


def _to_reply(value: int | Reply, field: str) -> Reply:
    if isinstance(value, Reply):
        return value
    try:
        return Reply(status=value)
    except ValidationError as exc:
        raise ValidationError(field, exc.reason) from None


def _event_repr(event: Event | None) -> str:
    return "None" if event is None else f"<{event.category.value} {event.unique_id}>"


@attrs.frozen(kw_only=True)
class ReceivedRequest:
    """
    One request as a :class:`LocalReceiver` saw it, and what it made of it.

    Attributes:
        method: The request method (``"POST"``).
        path: The request target: path and query string, as sent.
        headers: Header names (in the case they arrived) to values; a name
            repeated is joined with ``", "``. Look names up with :meth:`header`.
        body: The body bytes, with ``Content-Encoding: gzip`` undone.
        verified: ``None`` when the receiver checks nothing; otherwise whether
            the signature (or the Segment write key) was right.
        error: Why the request is not a good webhook, or ``None``: the
            signature problem and/or why the body is not a Pendo event.
        event: The body parsed with :func:`~pendo_webhooks.events.parse_event`,
            or ``None`` (empty body, not an event, or a Segment receiver).
        status: The status code the receiver answered with.
        received_at: When it arrived, by the receiver's clock.

    >>> from datetime import timezone
    >>> request = ReceivedRequest(
    ...     method="POST", path="/hook", headers={"Content-Type": "application/json"},
    ...     body=b'{"ok":true}', verified=None, error=None, event=None, status=200,
    ...     received_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ... )
    >>> request.header("content-type"), request.json()
    ('application/json', {'ok': True})
    """

    method: str
    path: str
    headers: Mapping[str, str] = attrs.field(repr=False, hash=False)
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    verified: bool | None
    error: str | None
    event: Event | None = attrs.field(repr=_event_repr)
    status: int
    received_at: datetime

    def header(self, name: str) -> str | None:
        """
        Return the value of header *name*, matched in any case, or ``None``.
        """
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        """
        Return the body decoded as JSON.

        Raises:
            ValidationError: If the body is not UTF-8 JSON (``.field`` is ``"body"``).
        """
        try:
            return json.loads(self.body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise ValidationError("body", f"not valid JSON: {exc}") from None


# -- verifying and parsing ------------------------------------------------------------------


def _to_secret_list(secrets: Secret | str | Sequence[Secret | str]) -> tuple[Secret, ...]:
    if isinstance(secrets, (Secret, str)):
        secrets = (secrets,)
    if not isinstance(secrets, Sequence):
        raise ConfigurationError("secrets: must be a secret or a sequence of secrets")
    out = []
    for item in secrets:
        if isinstance(item, Secret):
            out.append(item)
        elif isinstance(item, str):
            out.append(Secret(item))
        else:
            msg = f"secrets: every item must be a Secret or str, not {type(item).__name__}"
            raise ConfigurationError(msg)
    return tuple(out)


def _basic_auth(write_key: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{write_key}:".encode())


@attrs.frozen(kw_only=True)
class _Checker:
    """
    What a receiver checks on each request. Strictly private.
    """

    secrets: tuple[Secret, ...] = attrs.field(repr=False)
    scheme: SignatureScheme
    signature_header: str
    tolerance: int
    clock: Clock
    authorization: bytes | None = attrs.field(repr=False)

    def check(self, body: bytes, headers: Mapping[str, str]) -> tuple[bool | None, list[str]]:
        problems: list[str] = []
        verified: bool | None = None
        if self.secrets:
            try:
                verify(
                    body,
                    headers,
                    list(self.secrets),
                    scheme=self.scheme,
                    header=self.signature_header,
                    tolerance=self.tolerance,
                    clock=self.clock,
                )
                verified = True
            except SignatureError as exc:
                verified = False
                problems.append(str(exc))
        elif self.authorization is not None:
            given = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            verified = hmac.compare_digest(given.encode(), self.authorization)
            if not verified:
                problems.append("Authorization: missing or not this write key")
        return verified, problems

    def parse(self, method: str, body: bytes) -> tuple[Event | None, list[str]]:
        # A Segment receiver gets batches of track calls, never Pendo bodies.
        if self.authorization is not None or method not in _BODY_METHODS or not body:
            return None, []
        try:
            return parse_event(body), []
        except (UnknownEventType, InvalidEventPayload) as exc:
            return None, [f"body: {exc}"]


# -- the server -----------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # An idle keep-alive connection is dropped after this long; close() does not wait for it.
    timeout = 60

    def version_string(self) -> str:
        """
        Name the receiver in the ``Server`` header, without the Python version.
        """
        return "pendo-webhooks-receiver"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """
        Stay quiet: tests read :attr:`LocalReceiver.requests`, not stderr.
        """

    def _handle(self) -> None:
        self.server.receiver._serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle  # noqa: N815


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Threads are tracked by the receiver, which closes their sockets before joining them.
    block_on_close = False

    def __init__(self, receiver: LocalReceiver, address: tuple[str, int], family: int) -> None:
        self.address_family = family
        self.receiver = receiver
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="pendo-webhooks-receiver-connection",
            daemon=True,
        )
        self.receiver._track(request, thread)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """
        A connection that broke mid-request is the client's business; stay quiet.
        """

    def shutdown_request(self, request: Any) -> None:
        self.receiver._untrack(request)
        super().shutdown_request(request)


def _merge_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in items:
        first = names.setdefault(name.lower(), name)
        merged[first] = f"{merged[first]}, {value}" if first in merged else value
    return merged


class _TooLarge(Exception):
    """
    The body is over the receiver's limit. Strictly private.
    """


class _BadFraming(ValueError):
    """
    The body's framing (chunk sizes, Content-Length) is malformed: answer 400. Strictly private.
    """


# A chunk-size line: hex digits, optional whitespace and extensions, then CRLF (or a bare LF).
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")
_LINE_LIMIT = 1024


def _read_body(handler: _Handler, cap: int) -> bytes:
    """
    Read the body framed by Content-Length or chunked coding.

    Raises _TooLarge past *cap*, and _BadFraming at once for a malformed chunk size, a
    chunk without its CRLF, or a bad Content-Length: never a read that waits for bytes a
    broken framing promised.
    """
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        parts: list[bytes] = []
        size = 0
        while True:
            line = handler.rfile.readline(_LINE_LIMIT)
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                raise _BadFraming("bad chunk size line")
            chunk = int(match[1], 16)
            if chunk == 0:
                while handler.rfile.readline(_LINE_LIMIT).strip():  # trailers
                    pass
                return b"".join(parts)
            size += chunk
            if size > cap:
                raise _TooLarge
            data = handler.rfile.read(chunk)
            if len(data) != chunk or handler.rfile.readline(_LINE_LIMIT) not in (b"\r\n", b"\n"):
                raise _BadFraming("chunk data does not end where its size says")
            parts.append(data)
    text = (handler.headers.get("Content-Length") or "0").strip()
    if not text.isdigit() or not text.isascii():
        raise _BadFraming("bad Content-Length")
    length = int(text)
    if length > cap:
        raise _TooLarge
    return handler.rfile.read(length)


def _gunzip(body: bytes, cap: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=31)
    out = decompressor.decompress(body, cap + 1)
    if len(out) > cap:
        raise _TooLarge
    if not decompressor.eof:
        raise zlib.error("truncated gzip stream")
    return out


class LocalReceiver:
    """
    A real HTTP server on loopback that records webhooks, checks them, and answers from a script.

    It starts at once, on a free port of 127.0.0.1 unless told otherwise; use
    it as a context manager or call :meth:`close`. Every request is read,
    verified, parsed, recorded as a :class:`ReceivedRequest` and answered; any
    thread may read :attr:`requests` or :meth:`wait_for` them meanwhile. Point
    a dispatcher at :attr:`url` with a transport built on
    ``DestinationPolicy.local_testing()``.

    A receiver given *secrets* (or a *write_key*) answers **401** to every
    request that fails verification (unsigned, forged, stale), as a real
    receiver must, without using up *statuses*; the request is still recorded,
    with ``verified=False`` and the reason in ``error``. Pass
    ``accept_unverified=True`` to answer such requests from the script like
    any other (to watch what a broken sender does). A receiver with neither
    checks nothing: every request is answered from the script, with
    ``verified=None``.

    Args:
        secrets: Secrets to verify signatures with (any one may match, as
            during a rotation); with none, :attr:`ReceivedRequest.verified` is
            ``None``.
        scheme: Which signature scheme must verify (as
            :func:`~pendo_webhooks.signing.verify`).
        signature_header: The Pendo signature header name.
        tolerance: Seconds a Standard Webhooks timestamp may be off *clock*.
        clock: Returns the current aware UTC time: for the replay window and
            :attr:`ReceivedRequest.received_at`. Pass the sender's frozen clock.
        write_key: Act as Segment's batch endpoint: check the Basic auth
            header against this write key, and do not parse bodies as Pendo
            events. Not together with *secrets*.
        statuses: Answers for the first requests, in order: status codes or
            :class:`Reply` objects (``[503, 503, 200]`` rehearses two retries).
        default_status: The answer once *statuses* is used up.
        invalid_status: The status answered to a request that fails
            verification (401 unless given).
        accept_unverified: Answer requests that fail verification from the
            script too, as if they were good (they are still recorded with
            ``verified=False``). Not together with *invalid_status*.
        on_request: Called with each :class:`ReceivedRequest` in the server's
            thread before the answer goes out; what it raises is logged and
            ignored.
        host: The address to listen on.
        port: The port; 0 picks a free one.
        max_body_bytes: Longer bodies (after gunzip too) are answered 413 and
            recorded with an error.

    Raises:
        ConfigurationError: For an unusable argument (the message names it).
        ValidationError: For a bad status, reply or header name.

    >>> from pendo_webhooks.testing import signed_request, sample_event
    >>> import urllib.error, urllib.request
    >>> with LocalReceiver(secrets=["s3cr3t"], statuses=[503]) as receiver:
    ...     body, headers = signed_request(sample_event("npsSubmitted"), "s3cr3t")
    ...     post = urllib.request.Request(receiver.url, data=body, headers=headers)
    ...     try:
    ...         urllib.request.urlopen(post, timeout=5)
    ...     except urllib.error.HTTPError as exc:
    ...         print(exc.code)
    ...     print(urllib.request.urlopen(post, timeout=5).status)
    ...     [(r.status, r.verified, r.event.nps.rating) for r in receiver.requests]
    503
    200
    [(503, True, 9), (200, True, 9)]
    """

    def __init__(
        self,
        *,
        secrets: Secret | str | Sequence[Secret | str] = (),
        scheme: SignatureScheme | str = SignatureScheme.BOTH,
        signature_header: str = DEFAULT_SIGNATURE_HEADER,
        tolerance: int = DEFAULT_TOLERANCE,
        clock: Clock = utcnow,
        write_key: Secret | str | None = None,
        statuses: Iterable[int | Reply] = (),
        default_status: int | Reply = 200,
        invalid_status: int | None = None,
        accept_unverified: bool = False,
        on_request: Callable[[ReceivedRequest], object] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self._checker = self._make_checker(
            secrets=secrets,
            scheme=scheme,
            signature_header=signature_header,
            tolerance=tolerance,
            clock=clock,
            write_key=write_key,
        )
        self._clock = clock
        self._condition = threading.Condition()
        self._script: deque[Reply] = deque()
        self.queue(*statuses)
        self._default = _to_reply(default_status, "default_status")
        if not isinstance(accept_unverified, bool):
            raise ConfigurationError("accept_unverified: must be True or False")
        if accept_unverified and invalid_status is not None:
            msg = "accept_unverified: not together with invalid_status (which answers them)"
            raise ConfigurationError(msg)
        self._invalid = (
            None
            if accept_unverified
            else _to_reply(401 if invalid_status is None else invalid_status, "invalid_status")
        )
        if on_request is not None and not callable(on_request):
            raise ConfigurationError("on_request: must be callable")
        self._on_request = on_request
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise ConfigurationError("max_body_bytes: must be an integer")
        if max_body_bytes < 0:
            raise ConfigurationError("max_body_bytes: must be at least 0")
        self._max_body = max_body_bytes
        self._requests: list[ReceivedRequest] = []
        self._connections: dict[Any, threading.Thread] = {}
        self._closed = False
        self._server = self._bind(host, port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="pendo-webhooks-receiver",
            daemon=True,
        )
        self._thread.start()

    @staticmethod
    def _make_checker(
        *,
        secrets: Secret | str | Sequence[Secret | str],
        scheme: SignatureScheme | str,
        signature_header: str,
        tolerance: int,
        clock: Clock,
        write_key: Secret | str | None,
    ) -> _Checker:
        secret_list = _to_secret_list(secrets)
        try:
            scheme = SignatureScheme(scheme)
        except ValueError:
            msg = "must be one of: " + ", ".join(s.value for s in SignatureScheme)
            raise ValidationError("scheme", msg) from None
        validate_header_name(signature_header, "signature_header")
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance <= 0:
            raise ConfigurationError("tolerance: must be a positive number of seconds")
        if not callable(clock):
            raise ConfigurationError("clock: must be callable")
        authorization = None
        if write_key is not None:
            if secret_list:
                raise ConfigurationError("write_key: a receiver checks secrets or a write key")
            key = write_key.reveal() if isinstance(write_key, Secret) else write_key
            if not isinstance(key, str) or not key:
                raise ConfigurationError("write_key: must be non-empty text")
            authorization = _basic_auth(key)
        return _Checker(
            secrets=secret_list,
            scheme=scheme,
            signature_header=signature_header,
            tolerance=tolerance,
            clock=clock,
            authorization=authorization,
        )

    def _bind(self, host: str, port: int) -> _Server:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError("port: must be an integer from 0 to 65535")
        if not isinstance(host, str) or not host:
            raise ConfigurationError("host: must be an address to listen on")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            return _Server(self, (host, port), family)
        except OSError as exc:
            msg = f"host, port: cannot listen on {host} port {port}: {exc.strerror or exc}"
            raise ConfigurationError(msg) from exc

    # -- what tests use ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """
        The receiver's base URL, like ``http://127.0.0.1:8123/``.
        """
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    def url_for(self, path: str) -> str:
        """
        Return the URL of *path* on this receiver (``url_for("/hooks/pendo?x=1")``).
        """
        return self.url + path.lstrip("/")

    @property
    def requests(self) -> list[ReceivedRequest]:
        """
        The requests received so far, oldest first (a copy).
        """
        with self._condition:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """
        Block until at least *count* requests have been recorded, or *timeout* seconds pass.

        Returns:
            Whether *count* requests arrived in time (like :meth:`threading.Event.wait`).
        """
        with self._condition:
            return self._condition.wait_for(lambda: len(self._requests) >= count, timeout)

    def queue(self, *replies: int | Reply) -> None:
        """
        Append answers to the script: status codes or :class:`Reply` objects.

        Raises:
            ValidationError: For a status out of range (``.field`` is ``"statuses"``).
        """
        converted = [_to_reply(r, "statuses") for r in replies]
        with self._condition:
            self._script.extend(converted)

    def clear(self) -> None:
        """
        Forget the requests recorded so far (the script stays as it is).
        """
        with self._condition:
            self._requests.clear()

    def close(self) -> None:
        """
        Stop serving, drop open connections and wait for the server's threads to end.
        """
        with self._condition:
            if self._closed:
                return
            self._closed = True
            open_connections = dict(self._connections)
        self._server.shutdown()
        self._server.server_close()
        for sock in open_connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                sock.shutdown(socket.SHUT_RDWR)
        for thread in [self._thread, *open_connections.values()]:
            thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> LocalReceiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._condition:
            count = len(self._requests)
        return f"<LocalReceiver(url={self.url!r}, num_requests={count})>"

    # -- the server's side ------------------------------------------------------------------

    def _track(self, sock: Any, thread: threading.Thread) -> None:
        with self._condition:
            self._connections[sock] = thread

    def _untrack(self, sock: Any) -> None:
        with self._condition:
            self._connections.pop(sock, None)

    def _next_reply(self, verified: bool | None) -> Reply:
        with self._condition:
            if verified is False and self._invalid is not None:
                return self._invalid
            return self._script.popleft() if self._script else self._default

    def _serve(self, handler: _Handler) -> None:
        headers = _merge_headers(handler.headers.items())
        problems: list[str] = []
        close = False
        failure = Reply(status=400)
        try:
            body = _read_body(handler, self._max_body)
            if (handler.headers.get("Content-Encoding") or "").strip().lower() == "gzip":
                body = _gunzip(body, self._max_body)
        except _TooLarge:
            body, close = b"", True
            problems.append(f"body: over {self._max_body} bytes")
            failure = Reply(status=413)
        except _BadFraming as exc:
            body, close = b"", True
            problems.append(f"body: malformed framing ({exc})")
            failure = Reply(status=400)
        except (ValueError, zlib.error) as exc:
            body, close = b"", True
            problems.append(f"body: unreadable ({type(exc).__name__})")
            failure = Reply(status=400)
        verified: bool | None = None
        event: Event | None = None
        if not problems:
            verified, problems = self._checker.check(body, headers)
            event, parse_problems = self._checker.parse(handler.command, body)
            problems += parse_problems
        reply = failure if close else self._next_reply(verified)
        request = ReceivedRequest(
            method=handler.command,
            path=handler.path,
            headers=types.MappingProxyType(headers),
            body=body,
            verified=verified,
            error="; ".join(problems) or None,
            event=event,
            status=reply.status,
            received_at=self._clock(),
        )
        with self._condition:
            self._requests.append(request)
            self._condition.notify_all()
        if self._on_request is not None:
            try:
                self._on_request(request)
            except Exception:  # noqa: BLE001 - the host's callback must not break the server
                _LOG.exception("on_request callback failed")
        self._respond(handler, reply, close=close)

    @staticmethod
    def _respond(handler: _Handler, reply: Reply, *, close: bool) -> None:
        handler.send_response(reply.status)
        names = {name.lower() for name in reply.headers}
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.body and "content-type" not in names:
            handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(reply.body)))
        if close:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(reply.body)


# -- requests signed like the sender's -------------------------------------------------------


class SignedRequest(NamedTuple):
    """
    A webhook request as pendo-webhooks would send it: the exact body and its headers.
    """

    #: The exact body bytes.
    body: bytes
    #: ``Content-Type``, ``User-Agent`` and the signature headers.
    headers: dict[str, str]


def signed_request(
    event: Event | bytes,
    secrets: Secret | str | Sequence[Secret | str] = (),
    *,
    scheme: SignatureScheme | str = SignatureScheme.BOTH,
    signature_header: str = DEFAULT_SIGNATURE_HEADER,
    timestamp: int | None = None,
    msg_id: str | None = None,
    clock: Clock = utcnow,
) -> SignedRequest:
    """
    Build the body and headers pendo-webhooks would send for *event*: for receivers' unit tests.

    Args:
        event: An event (serialized with :func:`~pendo_webhooks.events.to_wire`),
            or exact body bytes: of an event, or anything at all when *msg_id* is given
            (an event type your code does not know yet, a malformed body).
        secrets: The webhook's secrets, current first; none sends no signature.
        scheme: Which signature headers to add.
        signature_header: The Pendo signature header name.
        timestamp: The attempt time, in epoch seconds; *clock* by default.
        msg_id: The ``webhook-id``; by default the event's ``uniqueId``.
        clock: Returns the current aware UTC time.

    Raises:
        InvalidEventPayload, UnknownEventType: If *event* is bytes that are not a Pendo
            event body and *msg_id* is not given.
        ConfigurationError, ValidationError: For unusable secrets, scheme or header.

    >>> from pendo_webhooks.signing import verify
    >>> from pendo_webhooks.testing import sample_event
    >>> body, headers = signed_request(sample_event("guideDisplayed"), "s3cr3t")
    >>> sorted(headers)  # doctest: +NORMALIZE_WHITESPACE
    ['Content-Type', 'User-Agent', 'X-Pendo-Signature', 'webhook-id', 'webhook-signature',
     'webhook-timestamp']
    >>> verify(body, headers, "s3cr3t")
    """
    if isinstance(event, (bytes, bytearray)):
        body = bytes(event)
        if msg_id is None:
            msg_id = parse_event(body).unique_id
    else:
        body = to_wire(event)
        if msg_id is None:
            msg_id = event.unique_id
    signer = signer_for(scheme, list(_to_secret_list(secrets)), header=signature_header)
    if timestamp is None:
        timestamp = int(clock().timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": DEFAULT_USER_AGENT}
    headers.update(signer.sign(body, msg_id=msg_id, timestamp=timestamp))
    return SignedRequest(body, headers)
