"""
Urllib3Transport and RequestsTransport against real loopback servers.

Bytes, deadlines, caps, redirects, TLS, secrets: every test runs against both.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import ssl
import threading
import time
import traceback
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.response

from pendo_webhooks import transports
from pendo_webhooks.exceptions import (
    ConfigurationError,
    DestinationBlocked,
    TransportError,
    ValidationError,
)
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.transports import (
    DEFAULT_USER_AGENT,
    OutgoingRequest,
    RequestsTransport,
    TransportResponse,
    Urllib3Transport,
    _guarded_http,
)
from pendo_webhooks.transports._deadline import Watchdog, WatchedSend
from pendo_webhooks.transports._guarded_http import GuardConfig
from pendo_webhooks.transports._transport_errors import describe_os_error, translate

from .conftest import use_each_transport
from .servers import Fault, FaultServer, Receiver, Reply, gzip_bomb


# Every test here runs once per guarded transport (Urllib3Transport, RequestsTransport).
TransportClass: Any = None
GuardedTransport = Any
_each_transport = use_each_transport(__name__)


LOCAL = DestinationPolicy.local_testing()
DEADLINE = 1.5


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(name="transport")
def _transport() -> Iterator[GuardedTransport]:
    with TransportClass(destinations=LOCAL, deadline=5.0) as transport:
        yield transport


def post(
    transport: GuardedTransport,
    url: str,
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
) -> TransportResponse:
    return transport.send(OutgoingRequest(url=url, body=body, headers=headers or {}))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def stalling_receiver(
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[tuple[Receiver, threading.Event]]:
    """
    A receiver that answers its first request and then stalls until the event is set.
    """
    release = threading.Event()
    count = itertools.count()

    def handler(_request: object) -> Reply:
        if next(count) == 1:
            release.wait(10)
        return Reply()

    try:
        with Receiver(handler=handler, ssl_context=ssl_context) as receiver:
            yield receiver, release
    finally:
        release.set()


class TestOutgoingRequest:
    def test_repr_hides_body_headers_query_and_credentials(self) -> None:
        """
        The repr shows the method and a URL without userinfo or query; never body or headers.
        """
        request = OutgoingRequest(
            url="https://user:pw@h.example/in?token=QUERYSECRET#frag",
            body=b"BODYSECRET",
            headers={"Authorization": "Bearer HEADERSECRET"},
        )

        text = repr(request)

        assert text == "OutgoingRequest(url='https://h.example/in?[redacted]', method='POST')"

    def test_repr_of_an_unparseable_url(self) -> None:
        """
        A URL urllib cannot split is shown as a placeholder rather than raising.
        """
        assert "<unparseable URL>" in repr(OutgoingRequest(url="http://[::1/x?q=1"))

    def test_headers_are_frozen_and_comparable(self) -> None:
        """
        Headers are an immutable copy; equal requests compare equal and hash.
        """
        source = {"A": "1"}
        one = OutgoingRequest(url="https://h.example/", body=b"x", headers=source)
        source["A"] = "2"

        assert one.headers == {"A": "1"}
        with pytest.raises(TypeError):
            one.headers["A"] = "3"  # type: ignore[index]
        assert one == OutgoingRequest(url="https://h.example/", body=b"x", headers={"A": "1"})
        assert hash(one) == hash(OutgoingRequest(url="https://h.example/", body=b"x"))

    @pytest.mark.parametrize(
        ("kwargs", "field", "fragment"),
        [
            ({"url": ""}, "url", "non-empty"),
            ({"url": b"https://h/"}, "url", "non-empty"),
            ({"body": "text"}, "body", "bytes"),
            ({"method": "PO ST"}, "method", "HTTP method"),
            ({"headers": [("A", "1")]}, "headers", "mapping"),
            ({"headers": {"Bad Name": "1"}}, "headers", "invalid header name"),
            ({"headers": {1: "1"}}, "headers", "invalid header name"),
            ({"headers": {"A": 1}}, "headers", "must be text"),
            ({"headers": {"A": "1\r\nX-Injected: 1"}}, "headers", "CR, LF or NUL"),
            ({"headers": {"Content-Length": "5"}}, "headers", "set by the transport"),
            ({"headers": {"host": "evil"}}, "headers", "set by the transport"),
        ],
    )
    def test_bad_fields_raise_a_validation_error_naming_them(
        self, kwargs: dict[str, Any], field: str, fragment: str
    ) -> None:
        """
        Each bad field raises ValidationError with the field's name, never echoing a value.
        """
        args: dict[str, Any] = {"url": "https://h.example/", "body": b"{}", **kwargs}

        with pytest.raises(ValidationError) as info:
            OutgoingRequest(**args)

        assert info.value.field == field
        assert fragment in info.value.reason
        assert "X-Injected" not in str(info.value)


class TestTransportResponse:
    def test_headers_are_lower_cased_and_the_repr_is_short(self) -> None:
        """
        Header names are lower-cased; the repr shows the body's size, not its bytes.
        """
        response = TransportResponse(
            status=307,
            headers={"Location": "https://x.example/", "Retry-After": "5"},
            body=b"secret body",
            elapsed=0.5,
        )

        assert dict(response.headers) == {"location": "https://x.example/", "retry-after": "5"}
        assert repr(response) == (
            "TransportResponse(status=307, body=<11 bytes>, elapsed=0.5, truncated=False)"
        )

    @pytest.mark.parametrize("status", [99, 1000, True, "200"])
    def test_status_must_be_an_http_status(self, status: object) -> None:
        """
        A status outside 100-999 (or not an int) is refused.
        """
        with pytest.raises(ValidationError) as info:
            TransportResponse(status=status)  # type: ignore[arg-type]

        assert info.value.field == "status"


class TestConstruction:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"deadline": 0}, "deadline"),
            ({"deadline": 31}, "deadline"),
            ({"deadline": float("nan")}, "deadline"),
            ({"deadline": "15"}, "deadline"),
            ({"connect_timeout": -1}, "connect_timeout"),
            ({"connect_timeout": float("inf")}, "connect_timeout"),
            ({"dns_timeout": True}, "dns_timeout"),
            ({"max_response_bytes": -1}, "max_response_bytes"),
            ({"max_response_bytes": 1.5}, "max_response_bytes"),
            ({"pool_maxsize": 0}, "pool_maxsize"),
            ({"destinations": "anything"}, "destinations"),
            ({"resolver": "8.8.8.8"}, "resolver"),
            ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle"),
        ],
    )
    def test_bad_arguments_raise_configuration_error_naming_them(
        self, kwargs: dict[str, Any], field: str
    ) -> None:
        """
        Each out-of-range argument raises ConfigurationError whose message starts with its name.
        """
        with pytest.raises(ConfigurationError, match=f"^{field}: "):
            TransportClass(**kwargs)

    def test_a_ca_directory_is_accepted(self, tmp_path: Path) -> None:
        """
        ca_bundle may name a directory of hashed CA files (OpenSSL's capath).
        """
        with TransportClass(ca_bundle=str(tmp_path)) as transport:
            assert transport.deadline == 15.0

    def test_repr_names_the_limits(self) -> None:
        """
        The repr shows the deadline, connect timeout and response cap.
        """
        with TransportClass(deadline=10, max_response_bytes=100) as transport:
            limits = "deadline=10, connect_timeout=5, max_response_bytes=100"
            assert repr(transport) == f"<{TransportClass.__name__}({limits})>"

    def test_a_closed_transport_refuses_to_send(self, receiver: Receiver) -> None:
        """
        After close(), send() raises TransportError("error") and makes no connection.
        """
        transport = TransportClass(destinations=LOCAL)
        transport.close()

        with pytest.raises(TransportError) as info:
            post(transport, receiver.url)

        assert info.value.kind == "error"
        assert receiver.connections == 0


class TestWire:
    def test_exact_body_and_headers_reach_the_receiver(
        self, receiver: Receiver, transport: GuardedTransport
    ) -> None:
        """
        The body arrives byte-identical with the caller's headers as given, plus only the
        framing headers, Accept-Encoding: identity and the default User-Agent.
        """
        body = b'{"a":"\\u003c"}\xff\x00 \r\n'
        headers = {
            "Content-Type": "application/json",
            "X-Pendo-Signature": "ab12",
            "webhook-id": "m",
        }

        response = post(transport, receiver.url_for("/hook?x=1"), body, headers)

        assert response.status == 200
        (seen,) = receiver.requests
        assert (seen.method, seen.path, seen.body) == ("POST", "/hook?x=1", body)
        received = dict(seen.headers)
        assert {k: received[k] for k in headers} == headers
        assert sorted(received) == sorted(
            [*headers, "Host", "Content-Length", "Accept-Encoding", "User-Agent"]
        )
        assert received["Accept-Encoding"] == "identity"
        assert received["User-Agent"] == DEFAULT_USER_AGENT
        assert received["Content-Length"] == str(len(body))

    def test_no_content_type_is_added(
        self, receiver: Receiver, transport: GuardedTransport
    ) -> None:
        """
        Without a Content-Type from the caller, none is sent.
        """
        post(transport, receiver.url, b"raw")

        assert receiver.requests[0].header("Content-Type") is None

    def test_callers_user_agent_and_accept_encoding(
        self, receiver: Receiver, transport: GuardedTransport
    ) -> None:
        """
        The caller's User-Agent is kept; a caller's Accept-Encoding is replaced by identity.
        """
        post(
            transport,
            receiver.url,
            headers={"user-agent": "pendo-webhooks/9", "Accept-Encoding": "gzip"},
        )

        (seen,) = receiver.requests
        assert [v for k, v in seen.headers if k.lower() == "user-agent"] == ["pendo-webhooks/9"]
        assert [v for k, v in seen.headers if k.lower() == "accept-encoding"] == ["identity"]

    def test_an_empty_body_is_not_invented(
        self, receiver: Receiver, transport: GuardedTransport
    ) -> None:
        """
        POST with no body sends Content-Length: 0; GET with no body sends no body headers.
        """
        post(transport, receiver.url, b"")
        transport.send(OutgoingRequest(url=receiver.url, method="GET"))

        posted, got = receiver.requests
        assert (posted.body, posted.header("Content-Length")) == (b"", "0")
        assert (got.method, got.body, got.header("Content-Length")) == ("GET", b"", None)

    def test_keep_alive_reuses_one_connection(
        self, receiver: Receiver, transport: GuardedTransport
    ) -> None:
        """
        Two sends to the same receiver travel over one TCP connection.
        """
        post(transport, receiver.url)
        post(transport, receiver.url)

        assert receiver.connections == 1
        assert [r.connection for r in receiver.requests] == [1, 1]

    def test_cookies_are_never_sent_back(self, transport: GuardedTransport) -> None:
        """
        A Set-Cookie from one response is not sent with the next request.
        """
        with Receiver(replies=[Reply(headers=(("Set-Cookie", "sid=abc; Path=/"),))]) as receiver:
            post(transport, receiver.url)
            post(transport, receiver.url)

            assert receiver.requests[1].header("Cookie") is None

    def test_any_status_is_returned_with_lower_cased_headers(
        self, transport: GuardedTransport
    ) -> None:
        """
        Error statuses are responses, not exceptions; header names come back lower-cased.
        """
        replies = [
            Reply(status=503, headers=(("Retry-After", "120"),), body=b"busy"),
            Reply(status=404),
            Reply(status=204),
        ]
        with Receiver(replies=replies) as receiver:
            first, second, third = (post(transport, receiver.url) for _ in range(3))

        assert (first.status, first.headers["retry-after"], first.body) == (503, "120", b"busy")
        assert (second.status, third.status, third.body) == (404, 204, b"")
        assert 0 <= first.elapsed < 5


class TestResponseCap:
    @pytest.mark.parametrize(
        ("size", "cap", "body_len", "truncated"),
        [
            (0, 4096, 0, False),
            (4096, 4096, 4096, False),
            (4097, 4096, 4096, True),
            (10, 0, 0, True),
        ],
    )
    def test_the_body_is_cut_at_the_cap(
        self, size: int, cap: int, body_len: int, truncated: bool
    ) -> None:
        """
        At most max_response_bytes come back; truncated says whether more existed.
        """
        payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
        with (
            Receiver(replies=[Reply(body=payload)]) as receiver,
            TransportClass(destinations=LOCAL, max_response_bytes=cap) as transport,
        ):
            response = post(transport, receiver.url)

        assert (len(response.body), response.truncated) == (body_len, truncated)
        assert response.body == payload[:body_len]

    def test_an_unread_connection_is_not_reused(self, transport: GuardedTransport) -> None:
        """
        After a truncated body the connection is closed, so the next send opens a new one.
        """
        with Receiver(replies=[Reply(body=b"x" * 10_000)]) as receiver:
            assert post(transport, receiver.url).truncated
            post(transport, receiver.url)

            assert receiver.connections == 2

    @pytest.mark.parametrize("fault", [Fault.GZIP_BOMB, Fault.HUGE_BODY])
    def test_bombs_and_huge_bodies_are_read_only_to_the_cap(
        self, fault: Fault, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
    ) -> None:
        """
        A gzip bomb and a 100 MB body: the status comes back quickly, at most cap + 1
        bytes are read off the wire, nothing is inflated, and memory stays under 1 MB.
        """
        gzip_bomb()  # built before tracing: the server's own memory is not ours
        read: list[int] = []
        original = urllib3.response.HTTPResponse.read1

        def spy(self: urllib3.response.HTTPResponse, *args: Any, **kwargs: Any) -> bytes:
            data = original(self, *args, **kwargs)
            read.append(len(data))
            return data

        monkeypatch.setattr(urllib3.response.HTTPResponse, "read1", spy)
        with FaultServer(fault) as server, TransportClass(destinations=LOCAL) as transport:
            post(transport, receiver.url)  # warm up imports and caches outside the trace
            read.clear()
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                started = time.monotonic()
                response = post(transport, server.url)
                elapsed = time.monotonic() - started
                peak = tracemalloc.get_traced_memory()[1] - baseline
            finally:
                tracemalloc.stop()

        assert (response.status, response.truncated, len(response.body)) == (200, True, 4096)
        assert sum(read) <= 4096 + 1
        assert peak < 2**20
        assert elapsed < 5
        if fault is Fault.GZIP_BOMB:
            assert response.body.startswith(b"\x1f\x8b")
            assert response.headers["content-encoding"] == "gzip"
        else:
            assert server.bytes_sent < server.huge_size


class TestRedirects:
    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    def test_redirects_are_returned_not_followed(
        self, status: int, transport: GuardedTransport
    ) -> None:
        """
        A 3xx comes back as the response, Location included; its target gets 0 connections.
        """
        with Receiver() as target:
            location = target.url_for("/meta")
            with Receiver(
                replies=[Reply(status=status, headers=(("Location", location),))]
            ) as first:
                response = post(transport, first.url)

                assert len(first.requests) == 1
            assert (response.status, response.headers["location"]) == (status, location)
            assert target.connections == 0

    def test_a_redirect_body_is_not_consumed(self, transport: GuardedTransport) -> None:
        """
        requests reads a 3xx body to prepare the next hop even without following it; here
        the body is still unread, so only the cap is read and truncated is True.
        """
        reply = Reply(
            status=307, headers=(("Location", "http://127.0.0.1:1/"),), body=b"r" * 200_000
        )
        with Receiver(replies=[reply]) as receiver:
            response = post(transport, receiver.url)

        assert (response.status, response.truncated, response.body) == (307, True, b"r" * 4096)


class TestDeadline:
    @pytest.mark.parametrize(
        "fault",
        [Fault.NEVER_ANSWER, Fault.HEADER_TRICKLE, Fault.BODY_TRICKLE, Fault.STATUS_THEN_STALL],
    )
    def test_slow_receivers_end_as_timeouts_at_the_deadline(self, fault: Fault) -> None:
        """
        Silence, trickled headers, a trickled body and a stalled status line all end as
        TransportError("timeout") within deadline + 1 s, never as a response.
        """
        with (
            FaultServer(fault, interval=0.1) as server,
            TransportClass(destinations=LOCAL, deadline=DEADLINE) as transport,
        ):
            started = time.monotonic()
            with pytest.raises(TransportError) as info:
                post(transport, server.url)
            elapsed = time.monotonic() - started

        assert info.value.kind == "timeout"
        assert f"within {DEADLINE:g} s" in info.value.detail
        assert elapsed <= DEADLINE + 1

    def test_a_kept_alive_connection_that_stalls_times_out(self) -> None:
        """
        The deadline also covers a reused connection: the second request on a kept-alive
        connection gets no answer and ends as a timeout; the stalled connection is dropped.
        """
        with stalling_receiver() as (receiver, release):
            with TransportClass(destinations=LOCAL, deadline=DEADLINE) as transport:
                assert post(transport, receiver.url).status == 200
                started = time.monotonic()
                with pytest.raises(TransportError) as info:
                    post(transport, receiver.url)
                elapsed = time.monotonic() - started
                release.set()
                assert post(transport, receiver.url).status == 200

            assert [r.connection for r in receiver.requests] == [1, 1, 2]
        assert info.value.kind == "timeout"
        assert elapsed <= DEADLINE + 1

    def test_concurrent_sends_keep_their_own_deadlines(self, receiver: Receiver) -> None:
        """
        From 8 threads at once, sends to a silent server time out while sends to a good
        receiver succeed promptly: one attempt's watchdog never touches another's socket.
        """
        results: dict[int, tuple[object, float]] = {}

        def run(i: int, url: str) -> None:
            started = time.monotonic()
            try:
                outcome: object = post(transport, url).status
            except TransportError as exc:
                outcome = exc.kind
            results[i] = (outcome, time.monotonic() - started)

        with (
            FaultServer(Fault.NEVER_ANSWER) as silent,
            TransportClass(destinations=LOCAL, deadline=DEADLINE) as transport,
        ):
            threads = [
                threading.Thread(target=run, args=(i, silent.url if i % 2 else receiver.url))
                for i in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)

        assert {i: outcome for i, (outcome, _) in results.items()} == {
            i: "timeout" if i % 2 else 200 for i in range(8)
        }
        assert all(elapsed < DEADLINE for i, (_, elapsed) in results.items() if i % 2 == 0)

    def test_the_watchdog_expires_and_releases_per_attempt(self) -> None:
        """
        An expired attempt shuts its socket down; a released one leaves it alone; a
        finished one can no longer expire.
        """
        config = object()
        left, right = socket.socketpair()
        other_left, other_right = socket.socketpair()
        with left, right, other_left, other_right:
            expiring: WatchedSend[object] = WatchedSend(config, time.monotonic())
            expiring.watch(left)
            released: WatchedSend[object] = WatchedSend(config, time.monotonic())
            released.watch(other_left)
            released.release()

            expiring.expire()
            released.expire()

            assert expiring.expired
            assert left.recv(1) == b""  # shut down: EOF at once
            other_right.sendall(b"k")
            assert other_left.recv(1) == b"k"  # untouched

            finished: WatchedSend[object] = WatchedSend(config, time.monotonic())
            finished.finish()
            finished.expire()
            assert not finished.expired

    def test_watching_a_new_socket_closes_an_owned_dup(self) -> None:
        """
        Replacing a watched dup closes it; a socket the attempt does not own stays open.
        """
        left, right = socket.socketpair()
        with left, right:
            dup = left.dup()
            attempt: WatchedSend[object] = WatchedSend(object(), time.monotonic() + 60)
            attempt.watch(dup, owned=True)
            attempt.watch(left)
            attempt.finish()

            assert dup.fileno() == -1
            assert left.fileno() != -1

    def test_a_socket_watched_after_expiry_is_shut_at_once(self) -> None:
        """
        If the deadline passed before the socket existed, watching it shuts it down.
        """
        left, right = socket.socketpair()
        with left, right:
            attempt: WatchedSend[object] = WatchedSend(object(), time.monotonic())
            attempt.expire()
            attempt.watch(left)

            assert left.recv(1) == b""

    def test_the_watchdog_thread_fires_and_then_exits_after_close(self) -> None:
        """
        The watchdog thread expires a pending attempt at its deadline, then exits once
        closed and idle; begin() after close() returns None.
        """
        watchdog: Watchdog[object] = Watchdog(0.05, name="test-watchdog")
        left, right = socket.socketpair()
        with left, right:
            left.settimeout(5)
            attempt = watchdog.begin(object())
            assert attempt is not None
            attempt.watch(left)

            assert left.recv(1) == b""  # unblocked by the watchdog's shutdown
            assert attempt.expired
            watchdog.end(attempt)
            idle = watchdog.begin(object())  # wakes the idle thread
            assert idle is not None
            watchdog.close()
            watchdog.end(idle)

        assert watchdog.closed
        assert watchdog.begin(object()) is None
        for thread in threading.enumerate():
            if thread.name == "test-watchdog":
                thread.join(5)
                assert not thread.is_alive()


class TestErrors:
    def test_a_closed_port_is_a_quick_connect_error(self, transport: GuardedTransport) -> None:
        """
        Nothing listening: TransportError("connect") at once, naming host:port only.
        """
        port = closed_port()
        started = time.monotonic()

        with pytest.raises(TransportError) as info:
            post(transport, f"http://127.0.0.1:{port}/x?token=abc")

        assert time.monotonic() - started < 2
        assert (info.value.kind, info.value.detail) == (
            "connect",
            f"could not connect to 127.0.0.1:{port}: connection refused",
        )

    def test_a_reset_is_a_connect_error(self, transport: GuardedTransport) -> None:
        """
        A server that resets the connection gives TransportError("connect").
        """
        with FaultServer(Fault.RESET) as server:
            with pytest.raises(TransportError) as info:
                post(transport, server.url)

        assert info.value.kind == "connect"
        assert f"127.0.0.1:{server.port}" in info.value.detail

    def test_proxy_variables_are_ignored(
        self, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
    ) -> None:
        """
        With HTTP_PROXY, HTTPS_PROXY and ALL_PROXY aimed at a trap, the trap gets no
        connection and the receiver gets the request.
        """
        with FaultServer(Fault.NEVER_ANSWER) as trap:
            trap_url = f"http://127.0.0.1:{trap.port}"
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
                monkeypatch.setenv(name, trap_url)
            monkeypatch.delenv("NO_PROXY", raising=False)
            monkeypatch.delenv("no_proxy", raising=False)
            with TransportClass(destinations=LOCAL, deadline=DEADLINE) as transport:
                response = post(transport, receiver.url)

            assert trap.connections == 0
        assert response.status == 200
        assert len(receiver.requests) == 1

    def test_the_adapter_refuses_proxies(self) -> None:
        """
        Even if a proxy were configured, the adapter refuses to build a proxy manager.
        """
        adapter = _guarded_http.GuardedAdapter()

        with pytest.raises(DestinationBlocked, match="proxy"):
            adapter.proxy_manager_for("http://127.0.0.1:3128")

    def test_guarded_connections_fail_closed_outside_a_send(self, receiver: Receiver) -> None:
        """
        The private session, used directly, cannot connect anywhere: no current attempt.
        """
        adapter = _guarded_http.GuardedAdapter()
        with _guarded_http.GuardedSession(adapter) as session:
            with pytest.raises(DestinationBlocked, match="outside a transport send"):
                session.post(receiver.url, data=b"{}")

        assert receiver.connections == 0

    @pytest.mark.parametrize(
        ("exc", "kind", "detail"),
        [
            (
                requests.exceptions.SSLError(ssl.SSLError(1, "[SSL] bad record")),
                "tls",
                "TLS with h.example:443 failed: SSLError",
            ),
            (
                requests.exceptions.ReadTimeout("url /?q=SECRET"),
                "timeout",
                "h.example:443 stopped answering",
            ),
            (
                requests.exceptions.ChunkedEncodingError(
                    urllib3.exceptions.ProtocolError("broken /?q=SECRET")
                ),
                "connect",
                "the connection to h.example:443 broke",
            ),
            (
                requests.ConnectionError(OSError(113, "No route to host /?q=SECRET")),
                "connect",
                "connection to h.example:443 failed: EHOSTUNREACH",
            ),
            (
                requests.ConnectionError(OSError(9999, "odd")),
                "connect",
                "connection to h.example:443 failed: errno 9999",
            ),
            (
                requests.exceptions.InvalidHeader("bad /?q=SECRET"),
                "error",
                "InvalidHeader while sending to h.example:443",
            ),
        ],
    )
    def test_errors_are_translated_without_their_text(
        self, exc: BaseException, kind: str, detail: str
    ) -> None:
        """
        Each library error maps to a kind, with a detail built from host:port and types only.
        """
        error = translate(exc, "https://h.example/in?q=SECRET")

        assert (error.kind, error.detail) == (kind, detail)

    def test_socket_errors_are_described_by_kind(self) -> None:
        """
        Socket errors are described by their class or errno, never by their text.
        """
        assert describe_os_error(ConnectionResetError(104, "x")) == "connection reset"
        assert describe_os_error(ConnectionAbortedError(103, "x")) == "connection aborted"
        assert describe_os_error(OSError("no errno")) == "OSError"


class TestDNS:
    def test_a_resolver_that_hangs_fails_within_the_dns_budget(self, receiver: Receiver) -> None:
        """
        A resolver stuck for 10 s: TransportError("dns") within dns_timeout + 0.5 s.
        """
        release = threading.Event()

        def hanging(*args: Any) -> list[Any]:
            release.wait(10)
            return []

        transport = TransportClass(destinations=LOCAL, dns_timeout=1.0, resolver=hanging)
        with transport:
            started = time.monotonic()
            with pytest.raises(TransportError) as info:
                post(transport, f"http://slow.test:{receiver.port}/")
            elapsed = time.monotonic() - started
        release.set()

        assert info.value.kind == "dns"
        assert elapsed <= 1.0 + 0.5
        assert receiver.connections == 0

    @pytest.mark.parametrize(
        ("answer", "kind"),
        [
            (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "dns"),
            ([], "dns"),
            ([(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("not-an-ip", 0))], "blocked"),
            ([(socket.AF_INET, socket.SOCK_STREAM, 6, "", ())], "blocked"),
        ],
    )
    def test_resolver_failures(self, answer: object, kind: str, receiver: Receiver) -> None:
        """
        A failing resolver, an empty answer or an unusable address never connects.
        """

        def resolver(*args: Any) -> Any:
            if isinstance(answer, BaseException):
                raise answer
            return answer

        with TransportClass(destinations=LOCAL, resolver=resolver) as transport:
            with pytest.raises(TransportError) as info:
                post(transport, f"http://broken.test:{receiver.port}/")

        assert info.value.kind == kind
        assert "broken.test" in info.value.detail
        assert receiver.connections == 0

    def test_a_deadline_spent_before_resolving_is_a_timeout(self) -> None:
        """
        With no time left, neither the resolver nor connect is tried.
        """
        calls: list[object] = []
        config = GuardConfig(
            policy=LOCAL,
            resolver=lambda *a: calls.append(a) or [],  # type: ignore[func-returns-value]
            connect_timeout=1.0,
            dns_timeout=1.0,
        )
        late = WatchedSend(config, time.monotonic() - 1)

        for host in ("named.test", "127.0.0.1"):
            with pytest.raises(TransportError) as info:
                _guarded_http.open_vetted_socket(late, host, 80)
            assert info.value.kind == "timeout"
        assert calls == []


class TestTLS:
    @pytest.fixture(name="tls")
    def _tls(self, tmp_path: Path) -> Iterator[dict[str, Any]]:
        trustme = pytest.importorskip("trustme")
        ca = trustme.CA()
        names: list[str | None] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("hooks.test").configure_cert(context)
        context.sni_callback = lambda _sock, name, _ctx: names.append(name)
        ca_path = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        with Receiver(ssl_context=context) as receiver:
            yield {"receiver": receiver, "ca": str(ca_path), "sni": names, "context": context}

    @staticmethod
    def _transport(ca: str | None, resolved: list[str], deadline: float = 5.0) -> GuardedTransport:
        def resolver(host: str, port: int, *args: Any) -> list[Any]:
            resolved.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        policy = DestinationPolicy(allow_networks=["127.0.0.1/32"], allowed_ports=None)
        return TransportClass(
            destinations=policy, resolver=resolver, ca_bundle=ca, deadline=deadline
        )

    def test_an_unknown_ca_is_a_tls_error(self, tls: dict[str, Any]) -> None:
        """
        Without the test CA, the certificate is refused: TransportError("tls").
        """
        with self._transport(None, []) as transport:
            with pytest.raises(TransportError) as info:
                post(transport, f"https://hooks.test:{tls['receiver'].port}/hook")

        assert info.value.kind == "tls"
        assert "certificate" in info.value.detail
        assert tls["receiver"].requests == []

    def test_with_the_ca_bundle_sni_and_certificate_use_the_host_name(
        self, tls: dict[str, Any]
    ) -> None:
        """
        With ca_bundle, the request succeeds over the pinned 127.0.0.1, while SNI and the
        certificate check use the URL's host name.
        """
        resolved: list[str] = []
        with self._transport(tls["ca"], resolved) as transport:
            response = post(transport, f"https://hooks.test:{tls['receiver'].port}/hook")

        assert response.status == 200
        assert resolved == ["hooks.test"]
        assert tls["sni"] == ["hooks.test"]
        assert tls["receiver"].requests[0].header("Host") == f"hooks.test:{tls['receiver'].port}"

    def test_a_kept_alive_tls_connection_that_stalls_times_out(self, tls: dict[str, Any]) -> None:
        """
        The watchdog also cuts a reused TLS connection (an SSLSocket) at the deadline.
        """
        with stalling_receiver(tls["context"]) as (receiver, _release):
            url = f"https://hooks.test:{receiver.port}/hook"
            with self._transport(tls["ca"], [], DEADLINE) as transport:
                assert post(transport, url).status == 200
                started = time.monotonic()
                with pytest.raises(TransportError) as info:
                    post(transport, url)
                elapsed = time.monotonic() - started

            assert receiver.connections == 1
        assert info.value.kind == "timeout"
        assert elapsed <= DEADLINE + 1

    def test_a_certificate_for_another_name_is_refused(self, tls: dict[str, Any]) -> None:
        """
        The same server reached as other.test fails the host name check.
        """
        with self._transport(tls["ca"], []) as transport:
            with pytest.raises(TransportError) as info:
                post(transport, f"https://other.test:{tls['receiver'].port}/hook")

        assert info.value.kind == "tls"


class TestSecretsHygiene:
    HEADER_MARK = "hdrmark7f3a"
    QUERY_MARK = "qrymark91c2"

    def _scenarios(self, stack: Any) -> dict[str, tuple[GuardedTransport, str]]:
        ok = stack.enter_context(Receiver())
        failing = stack.enter_context(Receiver(status=500))
        target = stack.enter_context(Receiver())
        moved = stack.enter_context(
            Receiver(replies=[Reply(status=307, headers=(("Location", target.url_for("/next")),))])
        )
        silent = stack.enter_context(FaultServer(Fault.NEVER_ANSWER))
        local = stack.enter_context(TransportClass(destinations=LOCAL, deadline=1.0))

        def private(*args: Any) -> list[Any]:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443))]

        guarded = stack.enter_context(TransportClass(resolver=private))
        query = f"?token={self.QUERY_MARK}"
        return {
            "success": (local, ok.url_for("/in" + query)),
            "500": (local, failing.url_for("/in" + query)),
            "redirect": (local, moved.url_for("/in" + query)),
            "timeout": (local, silent.url + "in" + query),
            "connect": (local, f"http://127.0.0.1:{closed_port()}/in{query}"),
            "blocked-url": (guarded, f"https://10.0.0.1/in{query}"),
            "blocked-address": (guarded, f"https://internal.test/in{query}"),
        }

    def test_no_header_value_or_query_leaks_anywhere(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        Over success, 500, redirect, timeout, connect error and both kinds of block, with
        urllib3 and requests logging at DEBUG, neither a header secret nor the URL's query
        appears in the logs, an exception's str, repr or traceback, or a repr.
        """
        caplog.set_level(logging.DEBUG)
        for name in ("urllib3", "requests"):
            caplog.set_level(logging.DEBUG, logger=name)
        texts: list[str] = []
        outcomes: dict[str, object] = {}
        headers = {
            "Authorization": f"Bearer {self.HEADER_MARK}",
            "webhook-signature": f"v1,{self.HEADER_MARK}",
        }
        with contextlib.ExitStack() as stack:
            for name, (transport, url) in self._scenarios(stack).items():
                request = OutgoingRequest(url=url, body=b"{}", headers=headers)
                texts.append(repr(request))
                try:
                    response = transport.send(request)
                except TransportError as exc:
                    outcomes[name] = exc.kind
                    texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
                else:
                    outcomes[name] = response.status
                    texts += [repr(response), str(dict(response.headers)), str(response.body)]

        assert outcomes == {
            "success": 200,
            "500": 500,
            "redirect": 307,
            "timeout": "timeout",
            "connect": "connect",
            "blocked-url": "blocked",
            "blocked-address": "blocked",
        }
        assert "?[redacted]" in caplog.text  # urllib3 did log request lines, redacted
        everything = "\n".join([caplog.text, *texts])
        assert self.HEADER_MARK not in everything
        assert self.QUERY_MARK not in everything

    def test_records_outside_a_send_are_left_alone(self, caplog: pytest.LogCaptureFixture) -> None:
        """
        The redaction filter only touches records made during a send.
        """
        _guarded_http.install_log_redaction()
        caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")

        logging.getLogger("urllib3.connectionpool").debug("GET %s", "/x?keep=1")

        assert "/x?keep=1" in caplog.text


class TestSameBytes:
    @staticmethod
    def _capture(send: Any) -> bytes:
        """Run *send(url)* against a one-shot raw socket server; return the bytes it got."""
        server = socket.create_server(("127.0.0.1", 0))
        got: list[bytes] = []

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(rest) < length:
                    rest += conn.recv(65536)
                got.append(head + b"\r\n\r\n" + rest)
                conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with server:
            port = server.getsockname()[1]
            send(f"http://127.0.0.1:{port}/in?t=1")
            thread.join(5)
        return got[0].replace(f"127.0.0.1:{port}".encode(), b"127.0.0.1:PORT")

    @pytest.mark.parametrize(
        ("method", "body"), [("POST", b'{"a":1}'), ("POST", b""), ("GET", b""), ("PUT", b"x")]
    )
    def test_both_transports_put_the_same_bytes_on_the_wire(
        self, method: str, body: bytes
    ) -> None:
        """
        Urllib3Transport frames a request byte for byte as RequestsTransport does:
        same head lines in the same order, same body.
        """
        request_headers = {"Content-Type": "application/json", "webhook-id": "m", "X-A": "1"}
        seen = []
        for cls in (RequestsTransport, Urllib3Transport):
            with cls(destinations=LOCAL) as transport:
                seen.append(
                    self._capture(
                        lambda url, t=transport: t.send(
                            OutgoingRequest(
                                url=url, body=body, headers=request_headers, method=method
                            )
                        )
                    )
                )

        assert seen[0] == seen[1]
        assert seen[0].endswith(b"\r\n\r\n" + body)


class TestCheckedUrls:
    def test_passed_urls_are_remembered_within_a_bound(
        self, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        A URL that passed the policy is not re-parsed on the next send; the memory is
        bounded (it starts over when full) and a refused URL is refused every time.
        """
        monkeypatch.setattr(transports, "_CHECKED_URLS", 2)
        checks: list[str] = []
        policy = LOCAL
        original = DestinationPolicy.check_url

        def counting(self: DestinationPolicy, url: str, *, field: str = "url") -> str:
            checks.append(url)
            return original(self, url, field=field)

        monkeypatch.setattr(DestinationPolicy, "check_url", counting)
        with TransportClass(destinations=policy) as transport:
            urls = [receiver.url_for(f"/{n}") for n in range(3)]
            for url in [urls[0], urls[0], urls[1], urls[2], urls[2]]:
                assert post(transport, url).status == 200
            for _ in range(2):
                with pytest.raises(DestinationBlocked):
                    post(transport, "ftp://example.com/")

        assert checks == [*urls, "ftp://example.com/", "ftp://example.com/"]
