"""
The engine defects found while measuring (issue 14), each pinned by a test.

* A lease shorter than one attempt used to resend forever: the lease must now cover the
  transport's deadline, and a delivery claimed too often without an outcome ends ``dead``
  (the poison-pill limit, ``max_claims``), on every backend.
* ``dispatch_many`` used to claim everything up front: it now claims in chunks.

The store fixtures (``outbox``: memory, SQLite, PostgreSQL) come from conftest.py.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from pendo_webhooks.dispatcher import (
    DEFAULT_MAX_CLAIMS,
    Delivery,
    DeliveryStatus,
    Dispatcher,
    Outcome,
)
from pendo_webhooks.exceptions import ConfigurationError
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.storage import Storage
from pendo_webhooks.storage._outbox_common import claims_exhausted
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import OutgoingRequest, RequestsTransport, TransportResponse

from .conftest import START
from .servers import Receiver, RecordedRequest, Reply


T0 = START
LEASE = timedelta(seconds=60)
ADMIN = Actor("u-1", is_admin=True)
LOCAL = DestinationPolicy.local_testing()


def hook(storage: Storage, clock: FrozenClock | None = None, **fields: object) -> Webhook:
    """
    An enabled webhook (a URL one unless *fields* say otherwise), stored through a registry.
    """
    registry = WebhookRegistry(storage, clock=clock or FrozenClock(T0), destinations=LOCAL)
    made: dict[str, object] = {
        "name": "Engine hook",
        "url": "https://hooks.example.com/in",
        "categories": {"npsSubmitted"},
    }
    made.update(fields)
    if made["url"] is None:
        del made["url"]
    created = registry.create(ADMIN, **made)  # type: ignore[arg-type]
    return registry.enable(ADMIN, created.id)


class DeadlineTransport(RecordingTransport):
    """
    A custom transport that says its deadline.
    """

    deadline = 5.0


class TestLeaseCoversTheDeadline:
    def test_a_lease_shorter_than_twice_the_deadline_is_refused_naming_both(self) -> None:
        registry = WebhookRegistry(_memory())
        with RequestsTransport(destinations=LOCAL, deadline=15) as transport:
            with pytest.raises(ConfigurationError) as caught:
                Dispatcher(registry, transport=transport, lease_duration=20)
            assert str(caught.value) == (
                "lease_duration: 20 s cannot cover the transport's deadline of 15 s: it must "
                "be at least 30 s (twice the deadline, since an attempt may start with half "
                "its lease left)"
            )
            Dispatcher(registry, transport=transport, lease_duration=timedelta(seconds=30))

    def test_the_default_transport_has_a_15_second_deadline(self) -> None:
        registry = WebhookRegistry(_memory())
        with pytest.raises(ConfigurationError, match=r"lease_duration: 29 s .* deadline of 15 s"):
            Dispatcher(registry, lease_duration=29)
        Dispatcher(registry, lease_duration=30).close()

    def test_a_custom_transport_with_a_deadline_is_checked(self) -> None:
        registry = WebhookRegistry(_memory())
        with pytest.raises(ConfigurationError, match=r"deadline of 5 s: it must be at least 10 s"):
            Dispatcher(registry, transport=DeadlineTransport(), lease_duration=9.5)
        Dispatcher(registry, transport=DeadlineTransport(), lease_duration=10)

    def test_a_custom_transport_without_a_deadline_is_trusted(self) -> None:
        """
        Nothing says how long it takes: no lease is refused (max_claims bounds the damage).
        """
        registry = WebhookRegistry(_memory())
        dispatcher = Dispatcher(registry, transport=RecordingTransport(), lease_duration=0.5)
        assert dispatcher.lease_duration == timedelta(seconds=0.5)
        assert dispatcher.max_claims == DEFAULT_MAX_CLAIMS

    @pytest.mark.parametrize("bad", [0, -1, 1001, 2.5, True, "5"])
    def test_max_claims_must_be_a_count(self, bad: object) -> None:
        registry = WebhookRegistry(_memory())
        with pytest.raises(ConfigurationError, match="max_claims"):
            Dispatcher(registry, transport=RecordingTransport(), max_claims=bad)  # type: ignore[arg-type]


def _memory() -> Storage:
    from pendo_webhooks.storage import InMemoryStorage  # noqa: PLC0415 - local helper

    return InMemoryStorage()


# -- (1b) the poison-pill limit, in the store -------------------------------------------------


# The store's side of the claim limit (counted claims, released claims, redeliveries, the
# chunk claim) is in the shipped contract suite, OutboxQueueContract, run on every backend by
# tests/test_outbox_contract.py and on the example store by tests/test_example_store.py.


# -- (1b) the poison-pill limit, through the engine ------------------------------------------


def test_attempts_that_outlive_their_lease_end_dead_on_a_real_receiver(outbox: Storage) -> None:
    """
    The original defect, on a loopback receiver that answers slowly: every attempt outlives
    its lease (the receiver moves the dispatcher's clock past it before answering), so no
    outcome is ever recorded. Before the fix it was sent again forever; now the delivery
    ends dead after max_claims requests, with the reason.
    """
    clock = FrozenClock(T0)
    lease = timedelta(seconds=4)

    def slow(request: RecordedRequest) -> Reply:
        clock.advance(lease + timedelta(seconds=2))  # 6 s on the dispatcher's clock
        return Reply(status=200)

    with (
        Receiver(handler=slow) as receiver,
        RequestsTransport(destinations=LOCAL, deadline=2) as transport,
    ):
        webhook = hook(outbox, clock, url=receiver.url)
        dispatcher = Dispatcher(
            WebhookRegistry(outbox, clock=clock, destinations=LOCAL),
            transport=transport,
            clock=clock,
            sleep=clock.sleep,
            lease_duration=lease,
            max_claims=3,
            retry=RetryPolicy(max_retries=1, jitter=0),
        )
        (first,) = dispatcher.dispatch(sample_event("npsSubmitted")).outcomes
        assert first.outcome is Outcome.PENDING
        assert first.reason == "lease lost; outcome not recorded"
        seen = [first]
        for _ in range(10):  # a bound: the fixed engine needs two more rounds
            found = dispatcher.run_due()
            if not found:
                break
            seen.extend(found)
        assert len(receiver.requests) == 3
        # A store that claims the next delivery with the outcome ends it as the third
        # outcome is refused; the others on the fourth claim.
        assert [o.outcome for o in seen[:-1]] == [Outcome.PENDING] * (len(seen) - 1)
        assert len(seen) in {3, 4}
        assert seen[-1].outcome is Outcome.DEAD
        assert seen[-1].reason == claims_exhausted(3)
        stored = outbox.get_delivery(first.delivery_id)  # type: ignore[arg-type]
        assert stored.status is DeliveryStatus.DEAD
        assert stored.webhook_id == webhook.id
        assert stored.attempts == 0
        assert stored.last_error == claims_exhausted(3)
        assert dispatcher.run_due() == []
        assert len(receiver.requests) == 3
        dispatcher.close()


def test_a_segment_batch_leaves_out_deliveries_its_claim_ended(outbox: Storage) -> None:
    """
    A Segment batch takes the webhook's other due deliveries along; those the claim ended
    dead are reported, not sent.
    """
    clock = FrozenClock(T0)
    hook(outbox, clock, name="Segment", kind="segment", write_key="wk", url=None)
    transport = RecordingTransport()
    dispatcher = Dispatcher(
        WebhookRegistry(outbox, clock=clock), transport=transport, clock=clock, max_claims=2
    )
    events = [sample_event("npsSubmitted", unique_id=f"v{i}") for i in range(3)]
    stored = [r.outcomes[0].delivery_id for r in dispatcher.enqueue_many(events)]
    # The first two are claimed twice without an outcome (their worker died each time);
    # the third, due earliest, is the one the worker claims first.
    now = T0
    for _ in range(2):
        claimed = outbox.claim_deliveries(
            stored[:2], owner="gone", now=now, lease_until=now + LEASE, max_claims=2
        )
        assert sorted(d.id for d in claimed) == sorted(stored[:2])
        now += LEASE * 2
    clock.advance(now - T0)
    found = {o.delivery_id: o for o in dispatcher.run_due(limit=1)}
    assert len(transport.requests) == 1
    assert [found[i].outcome for i in stored] == [Outcome.DEAD, Outcome.DEAD, Outcome.DELIVERED]
    assert found[stored[0]].reason == claims_exhausted(2)
    dispatcher.close()


class SlowTransport:
    """
    Answers 200, taking *seconds* of the clock per send (a custom transport, no deadline).
    """

    def __init__(self, clock: FrozenClock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.sent = 0

    def send(self, request: OutgoingRequest) -> TransportResponse:
        self.sent += 1
        self.clock.advance(seconds=self.seconds)
        return TransportResponse(status=200)


def test_a_custom_transport_slower_than_its_lease_is_bounded_by_max_claims(
    outbox: Storage,
) -> None:
    """
    lease 1 s, a receiver answering in 1.5 s (the issue's figures), a transport that does
    not say its deadline: at most max_claims sends, then dead; before, it never ended.
    """
    clock = FrozenClock(T0)
    transport = SlowTransport(clock, 1.5)
    hook(outbox, clock)
    dispatcher = Dispatcher(
        WebhookRegistry(outbox, clock=clock),
        transport=transport,
        clock=clock,
        lease_duration=1,
    )
    dispatcher.enqueue(sample_event("npsSubmitted"))
    outcomes = []
    for _ in range(20):
        outcomes.extend(dispatcher.run_due(concurrency=2))
    assert transport.sent == DEFAULT_MAX_CLAIMS
    assert [o.outcome for o in outcomes][-1] is Outcome.DEAD
    assert len(outcomes) == DEFAULT_MAX_CLAIMS + 1
    dispatcher.close()


# -- (2) dispatch_many claims in chunks --------------------------------------------------------


class InspectingTransport:
    """
    Answers 200; at every send, counts the deliveries leased in the store at that moment.

    *during_first* runs once, inside the first send (another worker acting meanwhile).
    """

    def __init__(self, storage: Storage, clock: FrozenClock, during_first: object = None) -> None:
        self.storage = storage
        self.clock = clock
        self.during_first = during_first
        self.leased: list[int] = []
        self.due_unleased: list[int] = []
        self.lock = threading.Lock()

    def send(self, request: OutgoingRequest) -> TransportResponse:
        pending = self.storage.list_deliveries(status=DeliveryStatus.PENDING, limit=10_000)
        with self.lock:
            first = not self.leased
            self.leased.append(sum(d.lease_owner is not None for d in pending))
            self.due_unleased.append(
                sum(d.lease_owner is None and d.next_attempt_at <= self.clock() for d in pending)
            )
            if first and callable(self.during_first):
                self.during_first()
        return TransportResponse(status=200)


def url_hooks_dispatcher(
    outbox: Storage, transport: object, clock: FrozenClock
) -> tuple[Dispatcher, Webhook]:
    webhook = hook(outbox, clock)
    dispatcher = Dispatcher(
        WebhookRegistry(outbox, clock=clock),
        transport=transport,  # type: ignore[arg-type]
        clock=clock,
        dispatch_threads=2,
    )
    return dispatcher, webhook


def test_dispatch_many_holds_at_most_one_chunk_claimed(outbox: Storage) -> None:
    """
    60 events to a URL webhook, 2 dispatch threads: never more than 8 deliveries (one
    chunk: 4 per thread) are leased at once; the rest wait due, for any worker to take if
    this host dies. All are delivered.
    """
    clock = FrozenClock(T0)
    transport = InspectingTransport(outbox, clock)
    dispatcher, _ = url_hooks_dispatcher(outbox, transport, clock)
    events = [sample_event("npsSubmitted", unique_id=f"c{i}") for i in range(60)]
    results = dispatcher.dispatch_many(events)
    assert [r.outcomes[0].outcome for r in results] == [Outcome.DELIVERED] * 60
    assert len(transport.leased) == 60
    assert max(transport.leased) == 8
    assert min(transport.leased) >= 1
    # At the first send, everything but the first chunk was stored unclaimed and due.
    assert transport.due_unleased[0] == 52
    assert outbox.pending_summary()[0] == 0
    dispatcher.close()


def test_dispatch_many_leaves_a_chunk_another_worker_took(outbox: Storage) -> None:
    """
    A worker claims deliveries of a later chunk while the first is being sent: they are
    reported pending (the worker sends them), and this dispatcher does not send them.
    """
    clock = FrozenClock(T0)
    taken: list[Delivery] = []

    def other_worker() -> None:
        taken.extend(
            outbox.claim_due(owner="other", now=clock(), lease_until=clock() + LEASE, limit=13)
        )

    transport = InspectingTransport(outbox, clock, during_first=other_worker)
    dispatcher, _ = url_hooks_dispatcher(outbox, transport, clock)
    events = [sample_event("npsSubmitted", unique_id=f"t{i}") for i in range(20)]
    outcomes = [r.outcomes[0] for r in dispatcher.dispatch_many(events)]
    assert len(taken) == 12  # all but the first chunk: the next two chunks are not ours
    others = {d.id for d in taken}
    for outcome in outcomes:
        if outcome.delivery_id in others:
            assert outcome.outcome is Outcome.PENDING
            assert outcome.reason == "claimed by another worker before its turn"
        else:
            assert outcome.outcome is Outcome.DELIVERED
    assert len(transport.leased) == 8
    for delivery_id in others:
        assert outbox.get_delivery(delivery_id).lease_owner == "other"
    dispatcher.close()


def test_dispatch_many_ends_a_delivery_its_chunk_claim_finds_exhausted(outbox: Storage) -> None:
    """
    A worker claimed the later chunks and died (its lease lapsed, no outcome): with
    max_claims=1, this dispatcher's chunk claim ends them dead instead of sending them.
    """
    clock = FrozenClock(T0)

    def dying_worker() -> None:
        # A lease that lapses at once: as if the worker died and its lease ran out.
        outbox.claim_due(owner="gone", now=clock(), lease_until=clock(), limit=13)

    transport = InspectingTransport(outbox, clock, during_first=dying_worker)
    hook(outbox, clock)
    dispatcher = Dispatcher(
        WebhookRegistry(outbox, clock=clock),
        transport=transport,
        clock=clock,
        dispatch_threads=2,
        max_claims=1,
    )
    events = [sample_event("npsSubmitted", unique_id=f"x{i}") for i in range(20)]
    outcomes = [r.outcomes[0].outcome for r in dispatcher.dispatch_many(events)]
    assert sorted(outcomes) == sorted([Outcome.DELIVERED] * 8 + [Outcome.DEAD] * 12)
    assert len(transport.leased) == 8
    dead = outbox.list_deliveries(status=DeliveryStatus.DEAD)
    assert {d.last_error for d in dead} == {claims_exhausted(1)}
    dispatcher.close()
