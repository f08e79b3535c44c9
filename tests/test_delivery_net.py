"""
The Dispatcher against real HTTP servers on loopback (tests/servers.py).

What a fake transport cannot show: the bytes on the wire, real status codes, redirects
to another server, a receiver that never answers, and the address guard at send time.
Time between attempts is the injected clock's (drain sleeps on it); only the timeout
test waits for real.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from pendo_webhooks.dispatcher import DeliveryStatus, Dispatcher, Outcome
from pendo_webhooks.events import EventCategory, new_unique_id, to_wire
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.signing import verify
from pendo_webhooks.storage import Storage
from pendo_webhooks.testing import FrozenClock, sample_event

from .conftest import START, use_each_transport
from .servers import Fault, FaultServer, Receiver, RecordedRequest, Reply


# Every test here runs once per guarded transport (Urllib3Transport, RequestsTransport).
TransportClass: Any = None
GuardedTransport = Any
_each_transport = use_each_transport(__name__)


pytestmark = pytest.mark.slow

ADMIN = Actor("u-1", is_admin=True)
SECRET = "s3cr3t-with-special-chars!&?<>"
LOCAL = DestinationPolicy.local_testing()
RETRY = RetryPolicy(schedule=[5, 30, 60], jitter=0)


class Setup:
    """
    A registry and a dispatcher with a real transport, on one store and a frozen clock.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        destinations: DestinationPolicy = LOCAL,
        **transport: Any,
    ) -> None:
        self.clock = FrozenClock(START)
        self.registry = WebhookRegistry(storage, destinations=destinations, clock=self.clock)
        self.transport = TransportClass(destinations=destinations, **transport)
        self.dispatcher = Dispatcher(
            self.registry,
            transport=self.transport,
            retry=RETRY,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(3),
        )

    def hook(self, url: str) -> Webhook:
        created = self.registry.create(
            ADMIN, name="Loopback", url=url, secret=SECRET, categories=["npsSubmitted"]
        )
        return self.registry.enable(ADMIN, created.id)

    def close(self) -> None:
        self.dispatcher.close()
        self.transport.close()


@pytest.fixture(name="setup")
def _setup(outbox: Storage) -> Iterator[Setup]:
    built = Setup(outbox)
    yield built
    built.close()


def headers_of(request: RecordedRequest) -> dict[str, str]:
    return dict(request.headers)


def verified(requests: Sequence[RecordedRequest], clock: FrozenClock) -> None:
    for request in requests:
        verify(request.body, headers_of(request), SECRET, clock=clock)


def test_503_503_200_is_delivered_on_the_third_attempt(setup: Setup) -> None:
    """
    503, 503, then 200: delivered with 3 attempts; the receiver saw the same body and
    webhook-id three times, with different timestamps and signatures, all valid.
    """
    with Receiver(replies=[Reply(status=503), Reply(status=503)]) as receiver:
        hook = setup.hook(receiver.url_for("/in?token=abc"))
        event = sample_event("npsSubmitted", unique_id=new_unique_id())
        first = setup.dispatcher.dispatch(event).for_webhook(hook.id)
        summary = setup.dispatcher.drain(timeout=600)
        requests = receiver.requests
    assert first.outcome is Outcome.RETRY
    assert (summary.delivered, summary.retried, summary.pending) == (1, 1, 0)
    assert len(requests) == 3
    assert {r.body for r in requests} == {to_wire(event)}
    assert {r.header("webhook-id") for r in requests} == {event.unique_id}
    assert len({r.header("webhook-timestamp") for r in requests}) == 3
    assert len({r.header("webhook-signature") for r in requests}) == 3
    assert {r.path for r in requests} == {"/in?token=abc"}
    assert {r.header("Content-Type") for r in requests} == {"application/json"}
    verified(requests, setup.clock)
    delivery = setup.dispatcher.storage.get_delivery(str(first.delivery_id))
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 3)
    attempts = setup.dispatcher.storage.list_attempts(delivery.id)
    assert [a.status_code for a in attempts] == [503, 503, 200]
    assert all(a.duration >= 0 for a in attempts)


def test_retry_after_is_honoured(setup: Setup) -> None:
    """
    A 429 with Retry-After: 7 is tried again no sooner than 7 s later (on the clock).
    """
    reply = Reply(status=429, headers=(("Retry-After", "7"),))
    with Receiver(replies=[reply]) as receiver:
        hook = setup.hook(receiver.url)
        outcome = setup.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id)
        assert outcome.next_attempt_at is not None
        assert (outcome.next_attempt_at - START).total_seconds() >= 7
        setup.clock.advance(6.999)
        assert setup.dispatcher.run_due() == []
        setup.clock.advance(0.001)
        assert [o.outcome for o in setup.dispatcher.run_due()] == [Outcome.DELIVERED]
        assert len(receiver.requests) == 2


def test_500_six_times_is_dead_after_exactly_six_requests(setup: Setup) -> None:
    """
    A receiver that always answers 500 gets exactly 6 requests; the delivery ends dead.
    """
    with Receiver(status=500) as receiver:
        hook = setup.hook(receiver.url)
        outcome = setup.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id)
        summary = setup.dispatcher.drain(timeout=3600)
        assert len(receiver.requests) == 6
    assert (summary.dead, summary.pending) == (1, 0)
    delivery = setup.dispatcher.storage.get_delivery(str(outcome.delivery_id))
    assert (delivery.status, delivery.attempts, delivery.last_status) == (
        DeliveryStatus.DEAD,
        6,
        500,
    )


def test_404_is_one_request_and_failed(setup: Setup) -> None:
    """
    A 404 fails the delivery at once: one request, no retry.
    """
    with Receiver(status=404) as receiver:
        hook = setup.hook(receiver.url)
        outcome = setup.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id)
        setup.dispatcher.drain(timeout=3600)
        assert len(receiver.requests) == 1
    assert outcome.outcome is Outcome.FAILED


def test_410_disables_the_webhook_audited_as_system(setup: Setup) -> None:
    """
    A 410 disables the webhook, audited as done by the system, and nothing more is sent.
    """
    with Receiver(status=410) as receiver:
        hook = setup.hook(receiver.url)
        outcome = setup.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id)
        later = setup.dispatcher.dispatch(sample_event("npsSubmitted", unique_id=new_unique_id()))
        assert len(receiver.requests) == 1
    assert outcome.outcome is Outcome.FAILED
    assert len(later) == 0
    webhook = setup.registry.get(ADMIN, hook.id)
    assert (webhook.enabled, webhook.disabled_by) == (False, "system")
    entry = setup.registry.audit(ADMIN, webhook_id=hook.id, action="disable")[0]
    assert entry.actor_id == "system"


def test_a_redirect_to_another_local_server_is_not_followed(setup: Setup) -> None:
    """
    A 307 pointing at another local server: that server gets nothing; the attempt is a
    final failure with status 307, after exactly one request.
    """
    with Receiver() as target:
        redirect = Reply(status=307, headers=(("Location", target.url_for("/meta")),))
        with Receiver(replies=[redirect]) as receiver:
            hook = setup.hook(receiver.url)
            outcome = setup.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id)
            setup.dispatcher.drain(timeout=3600)
            assert len(receiver.requests) == 1
        assert target.requests == []
        assert target.connections == 0
    assert (outcome.outcome, outcome.status_code) == (Outcome.FAILED, 307)
    assert f"redirect to 127.0.0.1:{target.port} not followed" in str(outcome.reason)


def test_a_receiver_that_never_answers_times_out_and_is_retried(outbox: Storage) -> None:
    """
    A server that accepts and never answers: the attempt ends as a ``timeout`` within the
    deadline (plus a generous margin), and is retried.
    """
    setup = Setup(outbox, deadline=1.0)
    try:
        with FaultServer(Fault.NEVER_ANSWER) as server:
            hook = setup.hook(server.url)
            started = time.monotonic()
            outcome = setup.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id)
            assert time.monotonic() - started < 5.0
            assert (outcome.outcome, outcome.error_kind) == (Outcome.RETRY, "timeout")
            setup.clock.advance(5)
            (again,) = setup.dispatcher.run_due()
            assert (again.outcome, again.error_kind, again.attempt) == (
                Outcome.RETRY,
                "timeout",
                2,
            )
            assert server.connections == 2
    finally:
        setup.close()


class StubResolver:
    """
    Answers every lookup with one address, and counts the lookups.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, *_rest: int) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.address, port))]


def test_a_name_that_turns_private_at_send_time_is_blocked(outbox: Storage) -> None:
    """
    A webhook registered while its name was acceptable, whose name resolves to a
    forbidden address when it is sent to: the attempt is recorded as ``blocked``, the
    delivery fails for good, and the server at that address sees no connection.
    """
    public_only = DestinationPolicy(allow_http=True, allowed_ports=None)
    with Receiver() as secret_server:
        resolver = StubResolver("127.0.0.1")
        setup = Setup(outbox, destinations=public_only, resolver=resolver)
        try:
            hook = setup.hook(f"http://hooks.customer.test:{secret_server.port}/in")
            outcome = setup.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id)
            setup.dispatcher.drain(timeout=3600)
        finally:
            setup.close()
        assert secret_server.connections == 0
    assert resolver.calls == ["hooks.customer.test"]
    assert (outcome.outcome, outcome.error_kind) == (Outcome.FAILED, "blocked")
    (attempt,) = setup.dispatcher.storage.list_attempts(str(outcome.delivery_id))
    assert (attempt.error_kind, attempt.status_code) == ("blocked", None)
    assert setup.dispatcher.storage.get_delivery(attempt.delivery_id).status is (
        DeliveryStatus.FAILED
    )


def test_the_test_button_against_a_real_receiver(setup: Setup) -> None:
    """
    send_test reaches a real receiver with a signed sample and reports its answer.
    """
    reply = Reply(status=200, body=b'{"ok":true}')
    with Receiver(replies=[reply]) as receiver:
        hook = setup.hook(receiver.url)
        result = setup.dispatcher.send_test(ADMIN, hook.id)
        (request,) = receiver.requests
    assert (result.accepted, result.status, result.response_excerpt) == (True, 200, '{"ok":true}')
    assert result.category is EventCategory.NPS_SUBMITTED
    assert request.body == result.request_body
    verified([request], setup.clock)
    assert setup.dispatcher.storage.list_deliveries() == []
