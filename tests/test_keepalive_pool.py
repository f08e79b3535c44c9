"""
Urllib3Transport's own keep-alive pool, against real loopback servers.

What goes back to the pool and what is closed, reuse, bounds, close(), and many
threads at once. Connections are counted by the server that accepted them.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3.util
from urllib3.util.wait import wait_for_read

from pendo_webhooks import transports as transports_module
from pendo_webhooks.channels._url_request import trusted_request
from pendo_webhooks.exceptions import TransportError
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.transports import (
    OutgoingRequest,
    TransportResponse,
    Urllib3Transport,
    _guarded_http,
)

from .servers import Receiver, RecordedRequest, Reply


LOCAL = DestinationPolicy.local_testing()


def post(transport: Urllib3Transport, url: str, body: bytes = b"{}") -> TransportResponse:
    return transport.send(OutgoingRequest(url=url, body=body))


def key_of(receiver: Receiver) -> _guarded_http.PoolKey:
    return ("http", receiver.host, receiver.port)


def idle(transport: Urllib3Transport, receiver: Receiver) -> list[Any]:
    """
    The idle connections the transport keeps for *receiver*, oldest first.
    """
    return list(transport._pool._idle.get(key_of(receiver), []))


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(name="transport")
def _transport() -> Iterator[Urllib3Transport]:
    with Urllib3Transport(destinations=LOCAL, deadline=5.0) as transport:
        yield transport


def test_a_kept_alive_connection_carries_every_send(
    receiver: Receiver, transport: Urllib3Transport
) -> None:
    for _ in range(5):
        assert post(transport, receiver.url).status == 200

    assert receiver.connections == 1
    assert [r.connection for r in receiver.requests] == [1] * 5
    assert len(idle(transport, receiver)) == 1


def test_an_idle_connection_the_server_closed_is_not_used(
    receiver: Receiver, transport: Urllib3Transport
) -> None:
    """
    The server ends the kept-alive connection between sends: the next send opens a
    new one and succeeds, instead of writing to the dead socket.
    """
    assert post(transport, receiver.url).status == 200
    (conn,) = idle(transport, receiver)
    receiver.drop_connections()
    # Wait (on the socket, not a clock) until the server's FIN has arrived.
    assert wait_for_read(conn.sock, timeout=5.0)

    assert post(transport, receiver.url).status == 200
    assert receiver.connections == 2
    assert conn.sock is None  # the dropped one was closed
    assert [r.connection for r in receiver.requests] == [1, 2]


def test_a_connection_close_response_is_not_pooled(
    transport: Urllib3Transport,
) -> None:
    with Receiver(replies=[Reply(close=True)]) as receiver:
        assert post(transport, receiver.url).status == 200
        assert idle(transport, receiver) == []
        assert post(transport, receiver.url).status == 200
        assert receiver.connections == 2
        assert len(idle(transport, receiver)) == 1


def test_a_truncated_body_closes_the_connection() -> None:
    with (
        Receiver(replies=[Reply(body=b"x" * 100)]) as receiver,
        Urllib3Transport(destinations=LOCAL, max_response_bytes=10) as transport,
    ):
        response = post(transport, receiver.url)
        assert (response.body, response.truncated) == (b"x" * 10, True)
        assert idle(transport, receiver) == []
        assert post(transport, receiver.url).status == 200
        assert receiver.connections == 2


def test_a_body_read_to_its_end_at_the_cap_keeps_the_connection() -> None:
    """
    One byte over the cap is read to learn the body is longer; if that was its end,
    the connection is clean and is kept (truncated all the same).
    """
    with (
        Receiver(replies=[Reply(body=b"x" * 11)]) as receiver,
        Urllib3Transport(destinations=LOCAL, max_response_bytes=10) as transport,
    ):
        response = post(transport, receiver.url)
        assert (response.body, response.truncated) == (b"x" * 10, True)
        assert post(transport, receiver.url).status == 200
        assert receiver.connections == 1


def test_an_http_1_0_response_is_not_pooled(transport: Urllib3Transport) -> None:
    """
    HTTP/1.0 without keep-alive means close, even with a complete body and the socket open.
    """
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        served: list[socket.socket] = []

        def serve() -> None:
            conn, _ = server.accept()
            served.append(conn)
            request = b""
            while not request.endswith(b"{}"):
                request += conn.recv(65536)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            response = post(transport, f"http://127.0.0.1:{port}/")
        finally:
            thread.join(10)
        try:
            assert (response.status, response.body) == (200, b"ok")
            assert transport._pool.idle(("http", "127.0.0.1", port)) == 0
            assert served[0].recv(1) == b""  # the client closed it
        finally:
            served[0].close()


def test_a_chunked_response_read_to_its_end_keeps_the_connection(
    transport: Urllib3Transport,
) -> None:
    reply = Reply(headers=(("Transfer-Encoding", "chunked"),), body=b"2\r\nok\r\n0\r\n\r\n")
    with Receiver(replies=[reply, reply]) as receiver:
        assert post(transport, receiver.url).body == b"ok"
        assert post(transport, receiver.url).body == b"ok"
        assert receiver.connections == 1


def test_at_most_pool_maxsize_connections_per_host_are_kept() -> None:
    """
    Three sends in flight at once need three connections; two are kept afterwards.
    """
    together = threading.Barrier(3, timeout=10)

    def handler(_request: RecordedRequest) -> Reply:
        together.wait()
        return Reply()

    with (
        Receiver(handler=handler) as receiver,
        Urllib3Transport(destinations=LOCAL, pool_maxsize=2) as transport,
    ):
        statuses: list[int] = []
        threads = [
            threading.Thread(target=lambda: statuses.append(post(transport, receiver.url).status))
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

        assert statuses == [200, 200, 200]
        assert receiver.connections == 3
        kept = idle(transport, receiver)
        assert len(kept) == 2
        assert all(conn.sock is not None for conn in kept)


def test_at_most_pool_maxsize_hosts_are_kept() -> None:
    with (
        Receiver() as first,
        Receiver() as second,
        Urllib3Transport(destinations=LOCAL, pool_maxsize=1) as transport,
    ):
        post(transport, first.url)
        (conn,) = idle(transport, first)
        post(transport, second.url)

        assert idle(transport, first) == []
        assert conn.sock is None  # the least recently used host's connection was closed
        assert len(idle(transport, second)) == 1
        post(transport, first.url)
        assert first.connections == 2


def test_a_host_used_again_is_the_most_recent(receiver: Receiver) -> None:
    with (
        Receiver() as other,
        Urllib3Transport(destinations=LOCAL, pool_maxsize=2) as transport,
    ):
        post(transport, receiver.url)
        post(transport, other.url)
        post(transport, receiver.url)  # receiver is now the most recent host
        with Receiver() as third:
            post(transport, third.url)

            assert idle(transport, other) == []
            assert len(idle(transport, receiver)) == 1
            assert len(idle(transport, third)) == 1


def test_close_closes_idle_connections(receiver: Receiver) -> None:
    transport = Urllib3Transport(destinations=LOCAL)
    post(transport, receiver.url)
    (conn,) = idle(transport, receiver)
    sock = conn.sock

    transport.close()

    assert conn.sock is None
    assert sock.fileno() == -1
    with pytest.raises(TransportError) as info:
        post(transport, receiver.url)
    assert info.value.kind == "error"


def test_a_connection_returned_after_close_is_closed(receiver: Receiver) -> None:
    pool = _guarded_http.KeepAlivePool(2, 5.0, {})
    conn = pool.make(key_of(receiver))
    pool.close()

    pool.put(key_of(receiver), conn)

    assert pool.idle(key_of(receiver)) == 0


def _from_threads(
    transport: Urllib3Transport, receiver: Receiver, threads: int, sends: int
) -> tuple[list[int], list[BaseException]]:
    errors: list[BaseException] = []
    statuses: list[int] = []

    def worker(number: int) -> None:
        try:
            for index in range(sends):
                body = f'{{"worker":{number},"index":{index}}}'.encode()
                statuses.append(post(transport, receiver.url, body).status)
        except BaseException as exc:
            errors.append(exc)

    started = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(30)
    return statuses, errors


def test_many_threads_share_a_small_pool(receiver: Receiver) -> None:
    # More threads than the pool keeps: a connection returned to a full pool is closed,
    # so how many the receiver accepts depends on the interleaving; what is kept does not.
    with Urllib3Transport(destinations=LOCAL, pool_maxsize=4) as transport:
        statuses, errors = _from_threads(transport, receiver, threads=8, sends=25)

        assert errors == []
        assert statuses == [200] * 200
        assert len(receiver.requests) == 200
        assert len({r.body for r in receiver.requests}) == 200
        assert 1 <= len(idle(transport, receiver)) <= 4


def test_a_pool_as_large_as_the_threads_opens_no_more_connections_than_threads(
    receiver: Receiver,
) -> None:
    # Every connection goes back (there is room), and a new one is made only when every
    # kept one is in use by another thread: never more connections than threads.
    with Urllib3Transport(destinations=LOCAL, pool_maxsize=8) as transport:
        statuses, errors = _from_threads(transport, receiver, threads=8, sends=25)

        assert errors == []
        assert statuses == [200] * 200
        assert len({r.body for r in receiver.requests}) == 200
        assert 1 <= receiver.connections <= 8
        assert len(idle(transport, receiver)) == receiver.connections


def test_a_peer_hanging_up_mid_write_still_gets_its_answer_read(
    receiver: Receiver, transport: Urllib3Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    As urllib3 does, a reset while writing is not the end: the receiver may have answered.
    """
    original = _guarded_http._OneWrite.send

    def send_then_fail(self: _guarded_http._OneWrite, data: Any) -> None:
        original(self, data)
        raise ConnectionResetError(errno.ECONNRESET, "reset")

    monkeypatch.setattr(_guarded_http._OneWrite, "send", send_then_fail)

    assert post(transport, receiver.url).status == 200


def test_other_write_errors_end_the_send(
    receiver: Receiver, transport: Urllib3Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(_self: _guarded_http._OneWrite, _data: Any) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(_guarded_http._OneWrite, "send", fail)

    with pytest.raises(TransportError) as info:
        post(transport, receiver.url)
    assert info.value.kind == "connect"
    assert info.value.detail.endswith("failed: EIO")
    assert idle(transport, receiver) == []


def test_a_would_block_error_is_a_timeout(
    receiver: Receiver, transport: Urllib3Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(_self: _guarded_http._OneWrite, _data: Any) -> None:
        raise BlockingIOError(errno.EAGAIN, "try again")

    monkeypatch.setattr(_guarded_http._OneWrite, "send", fail)

    with pytest.raises(TransportError) as info:
        post(transport, receiver.url)
    assert info.value.kind == "timeout"


def test_a_short_body_is_a_broken_connection(transport: Urllib3Transport) -> None:
    """
    A server that closes before the body it announced ended: an error, not a short body.
    """
    reply = Reply(headers=(("Content-Length", "10"),), body=b"abc", close=True)
    with Receiver(replies=[reply]) as receiver:
        with pytest.raises(TransportError) as info:
            post(transport, receiver.url)
        assert info.value.kind == "connect"
        assert info.value.detail == f"the connection to 127.0.0.1:{receiver.port} broke"
        assert idle(transport, receiver) == []


def test_skip_header_leaves_a_skippable_header_out(
    receiver: Receiver, transport: Urllib3Transport
) -> None:
    """
    As urllib3 writes a request: ``SKIP_HEADER`` as the User-Agent sends none.
    """
    request = OutgoingRequest(
        url=receiver.url, body=b"{}", headers={"User-Agent": urllib3.util.SKIP_HEADER}
    )

    assert transport.send(request).status == 200
    assert receiver.requests[0].header("User-Agent") is None


def test_skip_header_is_refused_for_other_headers(
    receiver: Receiver, transport: Urllib3Transport
) -> None:
    request = OutgoingRequest(
        url=receiver.url, body=b"{}", headers={"X-Other": urllib3.util.SKIP_HEADER}
    )

    with pytest.raises(
        ValueError, match="SKIP_HEADER only supports 'Accept-Encoding', 'Host', 'User-Agent'"
    ):
        transport.send(request)
    assert receiver.connections == 0


def test_response_headers_read_as_urllib3_joined_them(transport: Urllib3Transport) -> None:
    """
    Plain heads (split by PlainResponse) and others (folded, Latin-1: http.client's
    parser, unfolded as urllib3 does) give the headers urllib3's pool gave.
    """
    odd = Reply(
        headers=(
            ("X-Folded", "a\r\n  b\r\n\tc"),
            ("X-Latin", "caf\xe9"),
            ("x-latin", "2"),
            ("Set-Cookie", "a=1"),
        )
    )
    plain = Reply(headers=(("A", "1"), ("a", " 2 "), ("Set-Cookie", "a=1"), ("set-cookie", "b=2")))
    with Receiver(replies=[odd, plain]) as receiver:
        assert dict(post(transport, receiver.url).headers) == {
            "x-folded": "a b c",
            "x-latin": "caf\xe9, 2",
            "set-cookie": "a=1",
            "content-length": "0",
        }
        assert dict(post(transport, receiver.url).headers) == {
            "a": "1, 2 ",
            "set-cookie": "a=1, b=2",
            "content-length": "0",
        }
        assert receiver.connections == 1


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-A": "1\r\nX-Injected: 1"}, "CR, LF or NUL"),
        ({"X-A": "1\nX-Injected: 1"}, "CR, LF or NUL"),
        ({"X-A": "1\x00"}, "CR, LF or NUL"),
        ({"X-A: 1\r\nX-B": "1"}, "invalid header name"),
        ({"X A": "1"}, "invalid header name"),
    ],
)
def test_a_head_is_never_split_even_by_an_unchecked_request(
    receiver: Receiver, transport: Urllib3Transport, headers: dict[str, str], message: str
) -> None:
    # The channels build their requests without OutgoingRequest's checks; the
    # exchange writes the header lines itself, so it checks them once more.
    request = trusted_request(receiver.url, b"{}", headers)

    with pytest.raises(ValueError, match=message) as caught:
        transport.send(request)

    assert "Injected" not in str(caught.value)
    assert receiver.connections == 0
    assert receiver.requests == []


def test_a_checked_header_name_is_remembered(
    receiver: Receiver, transport: Urllib3Transport
) -> None:
    name = "X-Checked-Once-By-The-Exchange"
    assert name not in transports_module._WIRE_NAMES

    assert transport.send(trusted_request(receiver.url, b"{}", {name: "1"})).status == 200

    assert name in transports_module._WIRE_NAMES
    assert (name, "1") in receiver.requests[0].headers
