"""
The address guard on real sockets (RELIABILITY.md A1-A3, A7): spellings, answers, rebinding.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest
import urllib3
import urllib3.connection
import urllib3.connectionpool

from pendo_webhooks.exceptions import DestinationBlocked, TransportError
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.transports import (
    OutgoingRequest,
    RequestsTransport,
    TransportResponse,
    _guarded_http,
)

from .conftest import use_each_transport
from .servers import Receiver, Reply


# Every test here runs once per guarded transport (Urllib3Transport, RequestsTransport).
TransportClass: Any = None
GuardedTransport = Any
_each_transport = use_each_transport(__name__)


#: Only the address rule can block: http and every port are allowed, no network is.
HTTP_ANY_PORT = DestinationPolicy(allow_http=True, allowed_ports=None)
LOCAL = DestinationPolicy.local_testing()


@attrs.frozen(kw_only=True, repr=False)
class NoURLCheck(DestinationPolicy):
    """
    A policy whose URL check passes everything, so only the connection guard can block.
    """

    def check_url(self, url: str, *, field: str = "url") -> str:
        return url


class StubResolver:
    """
    Answers every lookup with the next scripted list of addresses (the last one repeats).
    """

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(
        self, host: str, port: int, *_family_type_proto_flags: int
    ) -> list[tuple[int, int, int, str, tuple[Any, ...]]]:
        self.calls.append(host)
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answer
        ]


def post(transport: GuardedTransport, url: str) -> TransportResponse:
    return transport.send(OutgoingRequest(url=url, body=b'{"event":"x"}'))


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(name="connects")
def _connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """
    Record every socket connect and refuse it, so nothing leaves the machine.
    """
    calls: list[object] = []

    def spy(self: socket.socket, address: object) -> None:
        calls.append(address)
        raise ConnectionRefusedError(errno.ECONNREFUSED, "refused by the test spy")

    monkeypatch.setattr(socket.socket, "connect", spy)
    return calls


SPELLINGS = [
    "http://2130706433:{port}/",
    "http://0x7f.1:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://localhost:{port}/",
]


@pytest.mark.parametrize("template", SPELLINGS)
@pytest.mark.parametrize(
    "policy",
    [HTTP_ANY_PORT, NoURLCheck(allow_http=True, allowed_ports=None)],
    ids=["url-check", "connection-guard-only"],
)
def test_loopback_spellings_are_blocked_with_no_connection(
    template: str, policy: DestinationPolicy, receiver: Receiver
) -> None:
    """
    Every spelling of 127.0.0.1 is blocked, by the URL check and, without it, by the
    connection guard alone; the server listening on 127.0.0.1 sees 0 connections.
    """
    with TransportClass(destinations=policy) as transport:
        with pytest.raises(DestinationBlocked) as info:
            post(transport, template.format(port=receiver.port))

    assert info.value.kind == "blocked"
    assert receiver.connections == 0


@pytest.mark.parametrize(
    "answer",
    [
        ["10.0.0.1"],
        ["169.254.169.254"],
        ["fd00:ec2::254"],
        ["100.64.0.1"],
        ["::ffff:a9fe:a9fe"],
        ["203.0.113.7", "10.0.0.1"],
        ["93.184.216.34", "10.0.0.1"],
        ["93.184.216.34", "fd00:ec2::254"],
    ],
    ids=str,
)
def test_forbidden_answers_are_blocked_before_any_connect(
    answer: list[str], connects: list[object]
) -> None:
    """
    A name answering with any non-public address (alone or beside a public one) is
    blocked by the default policy before a single connect is attempted.
    """
    resolver = StubResolver(answer)
    with TransportClass(resolver=resolver) as transport:
        with pytest.raises(DestinationBlocked) as info:
            post(transport, "https://hooks.customer.test/in")

    assert resolver.calls == ["hooks.customer.test"]
    assert connects == []
    assert "hooks.customer.test resolves to" in info.value.detail


def same_port_pair(legit_replies: Sequence[Reply]) -> tuple[Receiver, Receiver]:
    """
    Start a "legit" receiver on 127.0.0.2:P and a "secret" one on 127.0.0.1:P.
    """
    for _ in range(20):
        legit = Receiver(host="127.0.0.2", replies=legit_replies)
        try:
            return legit, Receiver(host="127.0.0.1", port=legit.port)
        except OSError:
            legit.close()
    pytest.skip("no port free on both 127.0.0.1 and 127.0.0.2")


REBIND_POLICY = DestinationPolicy(
    allow_networks=["127.0.0.2/32"], allow_http=True, allowed_ports=None
)


class TestRebinding:
    def test_each_new_connection_resolves_once_and_is_pinned(self) -> None:
        """
        A name that answers 127.0.0.2 (allowed) and then 127.0.0.1: the resolver is called
        exactly once per new connection, the legit server gets the POST, the rebound
        lookup is blocked and the secret server gets 0 connections.
        """
        legit, secret = same_port_pair([Reply(close=True)])
        resolver = StubResolver(["127.0.0.2"], ["127.0.0.1"])
        url = f"http://rebind.test:{legit.port}/hook"
        with legit, secret, TransportClass(destinations=REBIND_POLICY, resolver=resolver) as t:
            assert post(t, url).status == 200
            with pytest.raises(DestinationBlocked):
                post(t, url)

            assert resolver.calls == ["rebind.test", "rebind.test"]
            assert [(r.method, r.path) for r in legit.requests] == [("POST", "/hook")]
            assert (legit.connections, secret.connections) == (1, 0)

    def test_a_kept_alive_connection_is_not_resolved_again(self) -> None:
        """
        Over a kept-alive connection the name is not looked up again: one lookup, one
        connection, both requests to the pinned address.
        """
        legit, secret = same_port_pair([])
        resolver = StubResolver(["127.0.0.2"], ["127.0.0.1"])
        url = f"http://rebind.test:{legit.port}/hook"
        with legit, secret, TransportClass(destinations=REBIND_POLICY, resolver=resolver) as t:
            assert [post(t, url).status, post(t, url).status] == [200, 200]

            assert resolver.calls == ["rebind.test"]
            assert (legit.connections, len(legit.requests), secret.connections) == (1, 2, 0)

    @pytest.mark.parametrize(
        "answers",
        [(["127.0.0.1"], ["127.0.0.2"]), (["127.0.0.2", "127.0.0.1"],)],
        ids=["forbidden-first", "mixed"],
    )
    def test_a_forbidden_or_mixed_first_answer_connects_nowhere(
        self, answers: tuple[list[str], ...]
    ) -> None:
        """
        When the first lookup answers 127.0.0.1, alone or beside the allowed 127.0.0.2,
        the send is blocked and neither server gets a connection.
        """
        legit, secret = same_port_pair([])
        resolver = StubResolver(*answers)
        url = f"http://rebind.test:{legit.port}/hook"
        with legit, secret, TransportClass(destinations=REBIND_POLICY, resolver=resolver) as t:
            with pytest.raises(DestinationBlocked):
                post(t, url)

            assert resolver.calls == ["rebind.test"]
            assert (legit.connections, secret.connections) == (0, 0)


class TestPinnedConnect:
    def test_a_literal_ip_skips_the_resolver(self, receiver: Receiver) -> None:
        """
        A literal IP host is vetted and connected to without any lookup.
        """
        resolver = StubResolver(["10.0.0.1"])
        with TransportClass(destinations=LOCAL, resolver=resolver) as transport:
            assert post(transport, receiver.url).status == 200

        assert resolver.calls == []

    def test_the_next_vetted_address_is_tried_when_one_refuses(self, receiver: Receiver) -> None:
        """
        With two allowed answers, a refused first address falls through to the second.
        """
        resolver = StubResolver(["127.0.0.3", "127.0.0.1"])
        with TransportClass(destinations=LOCAL, resolver=resolver) as transport:
            assert post(transport, f"http://two.test:{receiver.port}/").status == 200

        assert receiver.connections == 1

    def test_ipv6_answers_and_literals_connect(self) -> None:
        """
        An IPv6 literal and an IPv6 answer both reach a receiver on ::1 when allowed, and
        are blocked with no connection when not.
        """
        try:
            receiver = Receiver(host="::1")
        except OSError:
            pytest.skip("no IPv6 loopback")
        resolver = StubResolver(["::1"])
        with receiver, TransportClass(destinations=LOCAL, resolver=resolver) as transport:
            assert post(transport, receiver.url).status == 200
            assert post(transport, f"http://v6.test:{receiver.port}/").status == 200
            with TransportClass(destinations=HTTP_ANY_PORT) as strict:
                with pytest.raises(DestinationBlocked):
                    post(strict, receiver.url)

            assert receiver.connections == 2

    def test_a_full_backlog_is_a_connect_timeout(self) -> None:
        """
        A listener that never accepts (its backlog full): connect gives up after
        connect_timeout with TransportError("timeout").
        """
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            port = listener.getsockname()[1]
            fillers = []
            try:
                for _ in range(8):  # fill the accept queue until a connect hangs
                    filler = socket.socket()
                    fillers.append(filler)
                    filler.settimeout(0.2)
                    try:
                        filler.connect(("127.0.0.1", port))
                    except TimeoutError:
                        break
                else:
                    pytest.skip("this kernel never lets a connect hang")
                with TransportClass(destinations=LOCAL, connect_timeout=0.3) as transport:
                    with pytest.raises(TransportError) as info:
                        post(transport, f"http://127.0.0.1:{port}/")
            finally:
                for filler in fillers:
                    filler.close()

        assert info.value.kind == "timeout"
        assert f"connecting to 127.0.0.1:{port}" in info.value.detail


class TestCanary:
    """
    The guard hooks urllib3 private API (``HTTPConnection._new_conn``, ``_dns_host``,
    ``HTTPConnectionPool._get_conn``/``_put_conn``); these fail loudly if that changes.
    """

    def test_urllib3_is_in_the_pinned_range(self) -> None:
        """
        urllib3 is >= 2.5 and < 3, the range the hook was written against.
        """
        version = urllib3.__version__  # type: ignore[attr-defined]
        major, minor = (int(part) for part in version.split(".")[:2])

        assert (2, 5) <= (major, minor) < (3, 0)

    def test_the_private_hooks_still_exist(self) -> None:
        """
        The methods and attribute the guarded classes override or read are still there.
        """
        for name in ("_new_conn", "host"):
            assert hasattr(urllib3.connection.HTTPConnection, name)
        assert urllib3.connection.HTTPConnection("example.test", 80)._dns_host == "example.test"
        for name in ("_get_conn", "_put_conn"):
            assert hasattr(urllib3.connectionpool.HTTPConnectionPool, name)
        # Urllib3Transport unfolds response headers with urllib3's own helper.
        assert callable(urllib3.connection._normalize_header_values)

    @pytest.mark.parametrize("scheme", ["http", "https"])
    def test_the_session_uses_the_guarded_pools(self, scheme: str) -> None:
        """
        The transport's pool manager (behind requests' adapter, or its own) makes pools
        of guarded connections for both schemes.
        """
        with TransportClass() as transport:
            if isinstance(transport, RequestsTransport):
                adapter = transport._session.get_adapter(f"{scheme}://example.test/")
                assert isinstance(adapter, _guarded_http.GuardedAdapter)
                manager = adapter.poolmanager
                pool = manager.connection_from_url(f"{scheme}://example.test/")
                connection_class = pool.ConnectionCls
            else:
                # Urllib3Transport keeps its own pool of guarded connections.
                key = (scheme, "example.test", 443 if scheme == "https" else 80)
                connection_class = type(transport._pool.make(key))

        assert isinstance(connection_class, type)
        assert issubclass(
            connection_class,
            (_guarded_http.GuardedHTTPConnection, _guarded_http.GuardedHTTPSConnection),
        )
        assert connection_class.__module__ == _guarded_http.__name__
        assert issubclass(connection_class, _guarded_http.GuardedHTTPSConnection) == (
            scheme == "https"
        )

    def test_a_new_connection_goes_through_the_hook(
        self, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        A send to a name the system cannot resolve succeeds only because our _new_conn
        ran and asked the injected resolver, exactly once.
        """
        hooked: list[str] = []
        original = _guarded_http.GuardedHTTPConnection._new_conn

        def spy(self: _guarded_http.GuardedHTTPConnection) -> socket.socket:
            hooked.append(self.host)
            return original(self)

        monkeypatch.setattr(_guarded_http.GuardedHTTPConnection, "_new_conn", spy)
        resolver = StubResolver(["127.0.0.1"])
        with TransportClass(destinations=LOCAL, resolver=resolver) as transport:
            assert post(transport, f"http://canary.invalid:{receiver.port}/").status == 200

        assert hooked == ["canary.invalid"]
        assert resolver.calls == ["canary.invalid"]
