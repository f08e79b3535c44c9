"""
Dispatcher: enqueue, attempt, record, retry, cancel, redeliver, test sends, workers.

Fast and deterministic: a RecordingTransport answers, a FrozenClock tells the time (and
``drain`` sleeps on it). Tests taking ``outbox`` run on every backend with an outbox;
real sockets are in test_delivery_net.py, crashes in test_crash.py.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta, timezone
from typing import Any

import attrs
import pytest

from pendo_webhooks import events as ev
from pendo_webhooks.channels._url_request import SignerCache
from pendo_webhooks.dispatcher import (
    DEFAULT_LEASE,
    Attempt,
    Delivery,
    DeliveryOutcome,
    DeliveryStatus,
    Dispatcher,
    DispatchResult,
    DrainSummary,
    Outcome,
)
from pendo_webhooks.dispatcher._attempt import Exchange, host_of
from pendo_webhooks.dispatcher._runner import Runner, pause, stop_on_signals
from pendo_webhooks.events import EventCategory, new_unique_id, to_wire
from pendo_webhooks.exceptions import (
    ConfigurationError,
    ConflictError,
    DestinationBlocked,
    PermissionDenied,
    StorageError,
    TransportError,
    UnknownDelivery,
    UnknownWebhook,
    ValidationError,
)
from pendo_webhooks.model._delivery import clip_error
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy, Verdict
from pendo_webhooks.signing import verify
from pendo_webhooks.storage import InMemoryStorage, Storage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import OutgoingRequest, TransportResponse, Urllib3Transport

from .conftest import START


ADMIN = Actor("u-1", is_admin=True)
USER = Actor("u-2")
SECRET = "s3cr3t-with-special-chars!&?<>"
URL = "https://hooks.example.com/in?token=QUERYMARK"
NPS = EventCategory.NPS_SUBMITTED
FAST = RetryPolicy(schedule=[5, 30], jitter=0)


def event(category: EventCategory | str = NPS, **overrides: Any) -> ev.Event:
    """
    A sample event with a fresh uniqueId.
    """
    return sample_event(category, unique_id=new_unique_id(), **overrides)


@attrs.define
class World:
    """
    A registry, a frozen clock, a recording transport and a dispatcher over one store.
    """

    storage: Storage
    clock: FrozenClock
    registry: WebhookRegistry
    transport: RecordingTransport

    def hook(self, *, enabled: bool = True, **overrides: Any) -> Webhook:
        kwargs: dict[str, Any] = {
            "name": "Hook",
            "url": URL,
            "secret": SECRET,
            "categories": [NPS],
            "headers": {"X-Team": "growth"},
        }
        kwargs.update(overrides)
        created = self.registry.create(ADMIN, **kwargs)
        return self.registry.enable(ADMIN, created.id) if enabled else created

    def dispatcher(self, **overrides: Any) -> Dispatcher:
        kwargs: dict[str, Any] = {
            "transport": self.transport,
            "clock": self.clock,
            "sleep": self.clock.sleep,
            "rng": random.Random(7),
            "retry": FAST,
        }
        kwargs.update(overrides)
        return Dispatcher(self.registry, self.storage, **kwargs)

    def answer(self, *responses: int | TransportResponse | BaseException) -> None:
        self.transport.add(*responses)


def make_world(storage: Storage) -> World:
    clock = FrozenClock(START)
    return World(
        storage=storage,
        clock=clock,
        registry=WebhookRegistry(storage, clock=clock),
        transport=RecordingTransport(),
    )


@pytest.fixture(name="world")
def _world(outbox: Storage) -> World:
    """
    A world on every backend with an outbox.
    """
    return make_world(outbox)


@pytest.fixture(name="mem")
def _mem() -> World:
    """
    A world on InMemoryStorage only (for what does not depend on the backend).
    """
    return make_world(InMemoryStorage())


@pytest.fixture(name="dispatcher")
def _dispatcher(world: World) -> Iterator[Dispatcher]:
    with world.dispatcher() as dispatcher:
        yield dispatcher


def only(result: DispatchResult) -> DeliveryOutcome:
    (outcome,) = result.outcomes
    return outcome


class TestDispatch:
    def test_one_signed_attempt_with_the_stored_bytes(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        dispatch() stores the delivery and sends it once: the stored bytes, Content-Type,
        User-Agent, the webhook's extra headers, webhook-id = uniqueId, the attempt's
        timestamp, and signatures that verify with the webhook's secret.
        """
        hook = world.hook()
        sent = event()
        outcome = only(dispatcher.dispatch(sent))
        assert outcome.outcome is Outcome.DELIVERED
        assert (outcome.attempt, outcome.status_code, outcome.reason) == (1, 200, None)
        (request,) = world.transport.requests
        assert request.url == URL
        assert request.body == to_wire(sent)
        headers = request.headers
        assert headers["Content-Type"] == "application/json"
        assert headers["User-Agent"].startswith("pendo-webhooks/")
        assert headers["X-Team"] == "growth"
        assert headers["webhook-id"] == sent.unique_id
        assert headers["webhook-timestamp"] == str(int(START.timestamp()))
        verify(request.body, headers, SECRET, clock=world.clock)
        stored = world.storage.get_delivery(str(outcome.delivery_id))
        assert stored.status is DeliveryStatus.DELIVERED
        assert (stored.webhook_id, stored.event_id, stored.body) == (
            hook.id,
            sent.unique_id,
            request.body,
        )
        assert (stored.attempts, stored.lease_owner, stored.finished_at) == (1, None, START)
        (attempt,) = world.storage.list_attempts(stored.id)
        assert (attempt.number, attempt.status_code, attempt.verdict) == (
            1,
            200,
            Verdict.DELIVERED,
        )

    def test_lists_only_enabled_subscribed_webhooks_in_order(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        Disabled webhooks and webhooks of other categories are not listed; the rest are, in
        registration order, each with its own delivery of the same bytes.
        """
        first = world.hook()
        world.clock.advance(1)
        world.hook(enabled=False)
        world.hook(categories=["guideDisplayed"])
        second = world.hook(url="https://other.example.com/in")
        result = dispatcher.dispatch(event())
        assert [o.webhook_id for o in result] == [first.id, second.id]
        assert result.all_delivered
        bodies = {r.body for r in world.transport.requests}
        assert len(world.transport.requests) == 2
        assert len(bodies) == 1
        assert len({o.delivery_id for o in result}) == 2

    def test_several_webhooks_are_attempted_in_parallel(self, world: World) -> None:
        """
        With several webhooks the immediate attempts overlap, so a slow receiver does not
        hold the others back (both requests are in flight at the same moment).
        """
        barrier = threading.Barrier(3, timeout=10)
        world.transport = RecordingTransport(on_send=lambda _r: barrier.wait())
        for _ in range(3):
            world.hook()
        with world.dispatcher(dispatch_threads=3) as dispatcher:
            assert dispatcher.dispatch(event()).all_delivered

    def test_no_subscriber(self, dispatcher: Dispatcher, world: World) -> None:
        """
        An event nobody subscribed to stores and sends nothing.
        """
        result = dispatcher.dispatch(event())
        assert len(result) == 0
        assert result.all_delivered
        assert world.storage.pending_summary() == (0, None)
        assert world.transport.requests == []

    def test_the_same_event_twice_is_skipped(self, world: World, dispatcher: Dispatcher) -> None:
        """
        Dispatching an event again (same uniqueId) is skipped as a duplicate: one request.
        """
        world.hook()
        again = event()
        dispatcher.dispatch(again)
        outcome = only(dispatcher.dispatch(again))
        assert (outcome.outcome, outcome.delivery_id) == (Outcome.SKIPPED, None)
        assert "duplicate" in str(outcome.reason)
        assert len(world.transport.requests) == 1

    def test_a_webhook_disabled_before_the_store_is_skipped(self, world: World) -> None:
        """
        A webhook disabled after the subscriber lookup but before the enqueue transaction
        gets no delivery and no request.
        """
        hook = world.hook()
        registry = world.registry

        class Racing(WebhookRegistry):
            def subscribed(self, category: EventCategory | str) -> list[Webhook]:
                found = super().subscribed(category)
                registry.disable(ADMIN, hook.id)
                return found

        racing = Racing(world.storage, clock=world.clock)
        with Dispatcher(racing, transport=world.transport, clock=world.clock) as dispatcher:
            outcome = only(dispatcher.dispatch(event()))
        assert (outcome.outcome, outcome.reason) == (Outcome.SKIPPED, "webhook disabled")
        assert world.transport.requests == []

    def test_enqueue_only_stores(self, world: World, dispatcher: Dispatcher) -> None:
        """
        enqueue() stores a pending, unclaimed delivery and sends nothing; run_due sends it.
        """
        world.hook()
        outcome = only(dispatcher.enqueue(event()))
        assert outcome.outcome is Outcome.PENDING
        stored = world.storage.get_delivery(str(outcome.delivery_id))
        assert (stored.status, stored.lease_owner, stored.next_attempt_at) == (
            DeliveryStatus.PENDING,
            None,
            START,
        )
        assert world.transport.requests == []
        (done,) = dispatcher.run_due()
        assert done.outcome is Outcome.DELIVERED
        assert len(world.transport.requests) == 1

    def test_not_an_event(self, dispatcher: Dispatcher) -> None:
        """
        Anything but an event raises ValidationError naming ``event``.
        """
        with pytest.raises(ValidationError, match=r"^event: "):
            dispatcher.dispatch({"event": "npsSubmitted"})  # type: ignore[arg-type]


class TestRetries:
    def test_503_503_200_same_bytes_and_id_fresh_signatures(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        Two 503s then a 200: delivered on attempt 3; every attempt carries the same body
        and webhook-id, and its own timestamp and signature; three attempt rows.
        """
        world.hook()
        world.answer(503, 503)
        outcome = only(dispatcher.dispatch(event()))
        assert outcome.outcome is Outcome.RETRY
        assert outcome.next_attempt_at == START + timedelta(seconds=5)
        assert outcome.reason == "HTTP 503, retry 1 of 5 in 5.0s"
        summary = dispatcher.drain(timeout=3600)
        assert (summary.delivered, summary.retried, summary.pending) == (1, 1, 0)
        assert world.clock.sleeps == [5.0, 30.0]
        requests = world.transport.requests
        assert len({r.body for r in requests}) == 1
        assert len({r.headers["webhook-id"] for r in requests}) == 1
        assert len({r.headers["webhook-timestamp"] for r in requests}) == 3
        assert len({r.headers["webhook-signature"] for r in requests}) == 3
        assert len({r.headers["X-Pendo-Signature"] for r in requests}) == 1  # no timestamp in it
        rows = world.storage.list_attempts(str(outcome.delivery_id))
        assert [(a.number, a.status_code, a.verdict) for a in rows] == [
            (1, 503, Verdict.RETRY),
            (2, 503, Verdict.RETRY),
            (3, 200, Verdict.DELIVERED),
        ]
        assert [a.started_at - START for a in rows] == [
            timedelta(0),
            timedelta(seconds=5),
            timedelta(seconds=35),
        ]

    def test_not_due_is_not_sent(self, world: World, dispatcher: Dispatcher) -> None:
        """
        run_due sends nothing before the retry is due, and the retry once it is.
        """
        world.hook()
        world.answer(500)
        dispatcher.dispatch(event())
        world.clock.advance(seconds=4.999)
        assert dispatcher.run_due() == []
        world.clock.advance(seconds=0.001)
        assert [o.outcome for o in dispatcher.run_due()] == [Outcome.DELIVERED]

    def test_retry_after_lengthens_the_wait(self, world: World, dispatcher: Dispatcher) -> None:
        """
        A 429 with Retry-After: 7 schedules the retry 7 s later (the schedule says 5 s).
        """
        world.hook()
        world.answer(TransportResponse(status=429, headers={"Retry-After": "7"}))
        outcome = only(dispatcher.dispatch(event()))
        assert outcome.next_attempt_at == START + timedelta(seconds=7)
        assert "Retry-After" in str(outcome.reason)

    def test_500_forever_is_dead_after_six_attempts(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        A receiver that always answers 500 gets exactly 6 requests; the delivery ends dead.
        """
        world.hook()
        world.transport = RecordingTransport(default=500)
        with world.dispatcher() as dead_end:
            outcome = only(dead_end.dispatch(event()))
            summary = dead_end.drain(timeout=timedelta(days=1))
        assert len(world.transport.requests) == 6
        assert (summary.retried, summary.dead, summary.attempts, summary.pending) == (4, 1, 5, 0)
        stored = world.storage.get_delivery(str(outcome.delivery_id))
        assert (stored.status, stored.attempts, stored.last_status) == (
            DeliveryStatus.DEAD,
            6,
            500,
        )
        assert stored.last_error == "HTTP 500, gave up after 6 attempts"
        del dispatcher

    def test_404_fails_at_once(self, world: World, dispatcher: Dispatcher) -> None:
        """
        A 404 is a final failure: one request, status failed, not retried.
        """
        world.hook()
        world.answer(404)
        outcome = only(dispatcher.dispatch(event()))
        assert (outcome.outcome, outcome.reason) == (Outcome.FAILED, "HTTP 404, not retried")
        assert dispatcher.drain(timeout=3600).pending == 0
        assert len(world.transport.requests) == 1

    def test_410_disables_the_webhook_and_cancels_the_rest(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        A 410 fails the delivery, disables the webhook as the system (audited), and cancels
        its other pending deliveries, which are then never sent.
        """
        hook = world.hook()
        waiting = only(dispatcher.enqueue(event()))
        world.answer(410)
        gone = only(dispatcher.dispatch(event()))
        assert gone.outcome is Outcome.FAILED
        assert gone.reason == "HTTP 410 Gone, webhook disabled"
        after = world.registry.get(ADMIN, hook.id)
        assert (after.enabled, after.disabled_by) == (False, "system")
        assert after.disabled_reason == "HTTP 410 Gone from hooks.example.com"
        (entry, *_) = world.registry.audit(ADMIN, webhook_id=hook.id)
        assert (entry.actor_id, entry.action) == ("system", "disable")
        cancelled = world.storage.get_delivery(str(waiting.delivery_id))
        assert cancelled.status is DeliveryStatus.CANCELLED
        assert (
            cancelled.last_error
            == "webhook disabled by system: HTTP 410 Gone from hooks.example.com"
        )
        assert dispatcher.drain(timeout=3600).pending == 0
        assert len(world.transport.requests) == 1

    def test_a_redirect_fails_and_names_only_the_target_host(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        A 307 is a final failure; the error names the Location's host and port only.
        """
        world.hook()
        location = "http://user:pw@10.0.0.1:8080/meta?token=LOCATIONMARK"
        world.answer(TransportResponse(status=307, headers={"Location": location}))
        outcome = only(dispatcher.dispatch(event()))
        assert outcome.outcome is Outcome.FAILED
        assert outcome.reason == "redirect to 10.0.0.1:8080 not followed (HTTP 307, not retried)"
        (attempt,) = world.storage.list_attempts(str(outcome.delivery_id))
        assert attempt.detail == "redirect to 10.0.0.1:8080 not followed"

    @pytest.mark.parametrize(
        ("raised", "kind", "verdict", "detail"),
        [
            (
                TransportError("timeout", "no answer from h:443 within 15 s"),
                "timeout",
                "retry",
                "no answer from h:443 within 15 s",
            ),
            (TransportError("dns", "h does not resolve"), "dns", "retry", "h does not resolve"),
            (
                DestinationBlocked("blocked", "h resolves to 10.0.0.1"),
                "blocked",
                "failed",
                "h resolves to 10.0.0.1",
            ),
            (TransportError("strange", "odd"), "error", "retry", "odd"),
            (
                ValueError("secret body text"),
                "error",
                "retry",
                "unexpected ValueError while sending",
            ),
        ],
        ids=["timeout", "dns", "blocked", "unknown-kind", "bug"],
    )
    def test_errors_become_attempts(
        self,
        *,
        world: World,
        dispatcher: Dispatcher,
        raised: Exception,
        kind: str,
        verdict: str,
        detail: str,
    ) -> None:
        """
        A transport error is recorded by kind (unknown kinds and other exceptions as
        ``error``, described by type only) and handled by the retry policy.
        """
        world.hook()
        world.answer(raised)
        outcome = only(dispatcher.dispatch(event()))
        assert (outcome.error_kind, outcome.outcome.value, outcome.status_code) == (
            kind,
            verdict,
            None,
        )
        (attempt,) = world.storage.list_attempts(str(outcome.delivery_id))
        assert (attempt.error_kind, attempt.detail, attempt.status_code) == (kind, detail, None)
        assert "secret body text" not in str(outcome.reason)

    def test_the_response_excerpt_is_capped(self, world: World, dispatcher: Dispatcher) -> None:
        """
        At most 2 KB of the response body is stored with the attempt.
        """
        world.hook()
        world.answer(TransportResponse(status=400, body=b"e" * 5000))
        outcome = only(dispatcher.dispatch(event()))
        (attempt,) = world.storage.list_attempts(str(outcome.delivery_id))
        assert attempt.response_excerpt == b"e" * 2048

    def test_a_failing_delivery_does_not_block_others(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        E1 fails and waits for its retry; E2, dispatched later, is delivered first (no
        ordering, no head-of-line blocking).
        """
        world.hook()
        first, second = event(), event()
        world.answer(503)
        dispatcher.dispatch(first)
        dispatcher.dispatch(second)
        dispatcher.drain(timeout=60)
        order = [r.headers["webhook-id"] for r in world.transport.requests]
        assert order == [first.unique_id, second.unique_id, first.unique_id]


class TestSendTime:
    def test_disable_cancels_queued_deliveries(self, world: World, dispatcher: Dispatcher) -> None:
        """
        Disabling a webhook cancels its queued deliveries with the reason: nothing is sent,
        not even after it is enabled again.
        """
        hook = world.hook()
        queued = only(dispatcher.enqueue(event()))
        world.registry.disable(ADMIN, hook.id, reason="receiver migrating")
        cancelled = world.storage.get_delivery(str(queued.delivery_id))
        assert cancelled.status is DeliveryStatus.CANCELLED
        assert cancelled.last_error == "webhook disabled by u-1: receiver migrating"
        world.registry.enable(ADMIN, hook.id)
        assert dispatcher.run_due() == []
        assert world.transport.requests == []

    def test_delete_cancels_queued_deliveries(self, world: World, dispatcher: Dispatcher) -> None:
        """
        Deleting a webhook cancels its queued deliveries.
        """
        hook = world.hook()
        queued = only(dispatcher.enqueue(event()))
        world.registry.delete(ADMIN, hook.id)
        gone = world.storage.get_delivery(str(queued.delivery_id))
        assert (gone.status, gone.last_error) == (DeliveryStatus.CANCELLED, "webhook deleted")

    @pytest.mark.parametrize("change", ["disabled", "deleted", "unsubscribed"])
    def test_the_webhook_is_re_read_before_each_attempt(
        self, world: World, dispatcher: Dispatcher, change: str
    ) -> None:
        """
        Even if the registry's cancellation never ran (a crash right after the change), an
        attempt re-reads its webhook: disabled, deleted or unsubscribed means cancelled and
        no request.
        """
        hook = world.hook()
        queued = only(dispatcher.enqueue(event()))
        current = world.storage.get_webhook(hook.id)
        audit = attrs.evolve(world.registry.audit(ADMIN)[0], id="aud_by_hand")
        if change == "deleted":
            world.storage.delete_webhook(hook.id, expected_version=current.version, audit=audit)
        else:
            new = (
                attrs.evolve(current, enabled=False, version=current.version + 1)
                if change == "disabled"
                else attrs.evolve(
                    current, categories=["guideDisplayed"], version=current.version + 1
                )
            )
            world.storage.replace_webhook(new, expected_version=current.version, audit=audit)
        (outcome,) = dispatcher.run_due()
        expected = {
            "disabled": "webhook disabled",
            "deleted": "webhook deleted",
            "unsubscribed": "webhook no longer subscribed to npsSubmitted",
        }[change]
        assert (outcome.outcome, outcome.reason) == (Outcome.CANCELLED, expected)
        stored = world.storage.get_delivery(str(queued.delivery_id))
        assert (stored.status, stored.last_error) == (DeliveryStatus.CANCELLED, expected)
        assert world.storage.list_attempts(stored.id) == []
        assert world.transport.requests == []

    def test_an_edited_url_and_rotated_secret_are_used(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        A queued delivery goes to the webhook's URL as it is at send time, signed with every
        secret valid then (old and new during a rotation).
        """
        hook = world.hook()
        dispatcher.enqueue(event())
        world.registry.update(ADMIN, hook.id, url="https://new.example.com/in")
        world.registry.rotate_secret(ADMIN, hook.id, "the-new-secret")
        dispatcher.run_due()
        (request,) = world.transport.requests
        assert request.url == "https://new.example.com/in"
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        for secret in (SECRET, "the-new-secret"):
            verify(request.body, request.headers, secret, scheme="standard", clock=world.clock)


class TestRecovery:
    def test_a_bug_leaves_the_delivery_pending_until_its_lease_lapses(
        self, world: World, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        An unexpected error while recording (a bug, a broken store) leaves the delivery
        pending and claimed; it is attempted again once the lease lapses, never lost.
        """
        world.hook()
        real = world.storage.record_outcome

        def broken(*args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(world.storage, "record_outcome", broken)
        outcome = only(dispatcher.dispatch(event()))
        assert outcome.outcome is Outcome.PENDING
        assert outcome.reason == "unexpected RuntimeError; retried when the lease lapses"
        monkeypatch.setattr(world.storage, "record_outcome", real)
        assert dispatcher.run_due() == []
        world.clock.advance(DEFAULT_LEASE)
        assert [o.outcome for o in dispatcher.run_due()] == [Outcome.DELIVERED]
        assert len(world.transport.requests) == 2

    def test_a_broken_webhook_read_is_left_pending(
        self, world: World, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        If re-reading the webhook fails unexpectedly, the delivery stays pending.
        """
        world.hook()
        dispatcher.enqueue(event())

        def broken(webhook_id: str) -> Webhook:
            raise StorageError("cannot read")

        monkeypatch.setattr(world.storage, "get_webhook", broken)
        (outcome,) = dispatcher.run_due()
        assert outcome.outcome is Outcome.PENDING
        assert world.storage.pending_summary()[0] == 1

    def test_a_lapsed_lease_discards_the_outcome(self, world: World) -> None:
        """
        An attempt that outlives its lease cannot record its outcome (another worker may own
        the delivery by then): it reports the delivery as still pending.
        """
        world.hook()
        world.transport = RecordingTransport(on_send=lambda _r: world.clock.advance(3600))
        with world.dispatcher() as dispatcher:
            outcome = only(dispatcher.dispatch(event()))
        assert (outcome.outcome, outcome.reason) == (
            Outcome.PENDING,
            "lease lost; outcome not recorded",
        )
        stored = world.storage.get_delivery(str(outcome.delivery_id))
        assert (stored.status, stored.attempts) == (DeliveryStatus.PENDING, 0)

    def test_a_cancellation_during_the_attempt_wins(self, world: World) -> None:
        """
        A webhook disabled while its request is in flight: the delivery ends cancelled, and
        the attempt's outcome is not written over it.
        """
        hook = world.hook()
        world.transport = RecordingTransport(
            on_send=lambda _r: world.registry.disable(ADMIN, hook.id)
        )
        with world.dispatcher() as dispatcher:
            outcome = only(dispatcher.dispatch(event()))
        assert outcome.outcome is Outcome.CANCELLED
        assert outcome.reason == "webhook disabled by u-1"

    def test_a_cancellation_after_the_lease_lapsed_is_not_written(
        self, world: World, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        If the lease lapsed before a cancellation could be recorded, the delivery is left
        to whoever claims it next (reported pending).
        """
        hook = world.hook()
        dispatcher.enqueue(event())
        world.registry.update(ADMIN, hook.id, categories=["guideDisplayed"])
        real = world.storage.get_webhook

        def slow_read(webhook_id: str) -> Webhook:
            world.clock.advance(DEFAULT_LEASE * 2)
            return real(webhook_id)

        monkeypatch.setattr(world.storage, "get_webhook", slow_read)
        (outcome,) = dispatcher.run_due(limit=1)
        assert (outcome.outcome, outcome.reason) == (
            Outcome.PENDING,
            "lease lost; outcome not recorded",
        )
        assert world.transport.requests == []

    def test_a_410_for_a_deleted_webhook_is_only_logged(
        self, world: World, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        If the webhook answering 410 is already gone, disabling it fails quietly (logged).
        """
        hook = world.hook()
        world.transport = RecordingTransport(
            [410], on_send=lambda _r: world.registry.delete(ADMIN, hook.id)
        )
        with caplog.at_level(logging.WARNING, "pendo_webhooks"), world.dispatcher() as d:
            outcome = only(d.dispatch(event()))
        assert outcome.outcome is Outcome.CANCELLED
        assert "answered 410 but was not disabled" in caplog.text


class TestRunning:
    def test_run_due_respects_the_limit(self, world: World, dispatcher: Dispatcher) -> None:
        """
        run_due attempts at most *limit* deliveries.
        """
        world.hook()
        for _ in range(5):
            dispatcher.enqueue(event())
        assert len(dispatcher.run_due(limit=3)) == 3
        assert len(dispatcher.run_due(limit=3)) == 2
        assert dispatcher.run_due() == []

    def test_run_due_attempts_concurrently(self, world: World) -> None:
        """
        With concurrency=3, three attempts are in flight at the same moment.
        """
        barrier = threading.Barrier(3, timeout=10)
        world.transport = RecordingTransport(on_send=lambda _r: barrier.wait())
        world.hook()
        with world.dispatcher() as dispatcher:
            for _ in range(6):
                dispatcher.enqueue(event())
            outcomes = dispatcher.run_due(concurrency=3)
        assert [o.outcome for o in outcomes] == [Outcome.DELIVERED] * 6

    def test_run_due_with_a_limit_below_concurrency(self, mem: World) -> None:
        """
        The limit caps the claims even when more threads are free.
        """
        mem.hook()
        with mem.dispatcher() as dispatcher:
            for _ in range(5):
                dispatcher.enqueue(event())
            assert len(dispatcher.run_due(limit=2, concurrency=4)) == 2

    def test_drain_waits_out_a_dead_workers_lease(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        A delivery claimed by a worker that died is sent once its lease lapses: drain sleeps
        until then.
        """
        world.hook()
        dispatcher.enqueue(event())
        world.storage.claim_due(
            owner="dead-worker", now=START, lease_until=START + timedelta(seconds=90), limit=1
        )
        summary = dispatcher.drain(timeout=600)
        assert world.clock.sleeps == [90.0]
        assert (summary.delivered, summary.pending) == (1, 0)

    def test_drain_gives_up_at_its_timeout(self, world: World) -> None:
        """
        drain() stops at its timeout (on the injected clock) and reports what is pending.
        """
        world.hook()
        world.transport = RecordingTransport(default=503)
        with world.dispatcher(retry=RetryPolicy(schedule=[60], jitter=0)) as dispatcher:
            dispatcher.dispatch(event())
            summary = dispatcher.drain(timeout=150)
        assert summary == DrainSummary.of(
            [Outcome.RETRY, Outcome.RETRY], pending=1, timed_out=True
        )
        assert world.clock() == START + timedelta(seconds=150)

    def test_drain_goes_on_at_once_when_work_became_due_meanwhile(self, world: World) -> None:
        """
        Work that fell due while drain's attempts ran is taken at once, without a sleep.
        """
        world.hook()
        world.transport = RecordingTransport(on_send=lambda _r: world.clock.advance(20))
        with world.dispatcher() as dispatcher:
            dispatcher.enqueue(event())
            world.clock.advance(10)
            dispatcher.enqueue(event())
            world.clock.set(START)
            summary = dispatcher.drain(timeout=600, concurrency=2)
        assert (summary.delivered, summary.pending) == (2, 0)
        assert world.clock.sleeps == []

    def test_drain_with_concurrency(self, world: World) -> None:
        """
        drain(concurrency=4) delivers everything, retries included.
        """
        world.hook()
        world.transport = RecordingTransport([503] * 3)
        with world.dispatcher() as dispatcher:
            for _ in range(10):
                dispatcher.enqueue(event())
            summary = dispatcher.drain(timeout=600, concurrency=4)
        assert (summary.delivered, summary.retried, summary.pending) == (10, 3, 0)

    def test_run_worker_until_stopped(self, world: World) -> None:
        """
        run_worker delivers until its stop event is set, then returns what it did.
        """
        world.hook()
        stop = threading.Event()
        world.transport = RecordingTransport(
            on_send=lambda _r: stop.set() if len(world.transport.requests) >= 4 else None
        )
        with world.dispatcher() as dispatcher:
            for _ in range(4):
                dispatcher.enqueue(event())
            summary = dispatcher.run_worker(stop, poll_interval=0.01)
        assert (summary.delivered, summary.pending) == (4, 0)

    def test_run_worker_polls_for_new_work(self, mem: World) -> None:
        """
        An idle worker picks up deliveries enqueued later (by another process, say).
        """
        mem.hook()
        stop = threading.Event()
        mem.transport = RecordingTransport(on_send=lambda _r: stop.set())
        with mem.dispatcher() as dispatcher:
            timer = threading.Timer(0.05, dispatcher.enqueue, args=(event(),))
            timer.start()
            summary = dispatcher.run_worker(stop, poll_interval=0.01, concurrency=2)
            timer.join()
        assert summary.delivered == 1

    def test_run_worker_survives_store_errors(
        self, mem: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        A store error in the worker loop is logged and retried after the poll interval.
        """
        mem.hook()
        stop = threading.Event()
        mem.transport = RecordingTransport(on_send=lambda _r: stop.set())
        real = mem.storage.claim_due
        calls = []

        def flaky(**kwargs: Any) -> list[Delivery]:
            calls.append(1)
            if len(calls) == 1:
                raise StorageError("database is locked")
            return real(**kwargs)

        monkeypatch.setattr(mem.storage, "claim_due", flaky)
        with mem.dispatcher() as dispatcher, caplog.at_level(logging.WARNING, "pendo_webhooks"):
            dispatcher.enqueue(event())
            summary = dispatcher.run_worker(stop, poll_interval=0.01)
        assert summary.delivered == 1
        assert "database is locked; retrying in 0.01 s" in caplog.text

    def test_run_worker_releases_claims_it_did_not_start(
        self, mem: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        Claims a stopping worker has not started are given back, due at once for others.
        """
        mem.hook()
        stop = threading.Event()
        real = mem.storage.claim_due

        def claim_then_stop(**kwargs: Any) -> list[Delivery]:
            claimed = real(**kwargs)
            stop.set()
            return claimed

        monkeypatch.setattr(mem.storage, "claim_due", claim_then_stop)
        with mem.dispatcher() as dispatcher:
            for _ in range(2):
                dispatcher.enqueue(event())
            summary = dispatcher.run_worker(stop, poll_interval=0.01, concurrency=2)
        assert summary.counts == {Outcome.PENDING: 2}
        assert mem.transport.requests == []
        assert [d.lease_owner for d in mem.storage.list_deliveries()] == [None, None]
        monkeypatch.setattr(mem.storage, "claim_due", real)
        assert len(mem.storage.claim_due(owner="x", now=START, lease_until=START, limit=5)) == 2

    @pytest.mark.skipif(
        threading.current_thread() is not threading.main_thread(), reason="needs the main thread"
    )
    def test_run_worker_stops_on_sigterm_and_restores_handlers(self, mem: World) -> None:
        """
        SIGTERM stops the worker after the attempt in flight; a second SIGTERM reaches the
        handler that was there before; afterwards that handler is back in place.
        """
        mem.hook()
        seen: list[int] = []
        previous = signal.signal(signal.SIGTERM, lambda signum, _frame: seen.append(signum))
        try:

            def twice(_request: OutgoingRequest) -> None:
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)

            mem.transport = RecordingTransport(on_send=twice)
            with mem.dispatcher() as dispatcher:
                for _ in range(3):
                    dispatcher.enqueue(event())
                summary = dispatcher.run_worker(poll_interval=0.01)
            assert summary.delivered == 1
            assert summary.pending == 2
            assert seen == [signal.SIGTERM]
            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler)
            assert handler.__name__ == "<lambda>"  # type: ignore[union-attr]
        finally:
            signal.signal(signal.SIGTERM, previous)

    def test_signal_handlers_only_in_the_main_thread(self) -> None:
        """
        Off the main thread no handler is installed (Python would refuse).
        """
        results: list[object] = []

        def run() -> None:
            with stop_on_signals(enabled=True) as stopped:
                results.append(stopped())

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        assert results == [False]

    def test_pause_wakes_up_when_stopped(self) -> None:
        """
        pause() returns at once when its event is set or its stop check says so.
        """
        event_set = threading.Event()
        event_set.set()
        pause(30, lambda: False, event_set)
        pause(30, lambda: True, threading.Event())
        pause(0.01, lambda: False, threading.Event())

    def test_runner_inline_stop(self) -> None:
        """
        A runner told to stop claims nothing more.
        """
        claims: list[int] = []
        runner = Runner(
            claim=lambda n: claims.append(n) or [],  # type: ignore[func-returns-value]
            attempt=lambda d: pytest.fail("nothing to attempt"),
            release=lambda ds: None,
            concurrency=1,
        )
        assert runner.run(stop=lambda: True) == []
        assert claims == []


class TestAdmin:
    def test_send_test_sends_a_fresh_sample_and_stores_nothing(
        self, world: World, dispatcher: Dispatcher
    ) -> None:
        """
        The Test button works on a disabled webhook: a signed sample of its first category,
        a fresh uniqueId each time, the current time; nothing is stored.
        """
        hook = world.hook(enabled=False, categories=["accountCreated", "guideDisplayed"])
        world.answer(TransportResponse(status=202, body=b"ok \xff"))
        result = dispatcher.send_test(ADMIN, hook.id)
        assert result.accepted
        assert (result.status, result.response_excerpt, result.error) == (202, "ok \ufffd", None)
        assert result.category is EventCategory.GUIDE_DISPLAYED
        (request,) = world.transport.requests
        assert request.body == result.request_body
        assert request.headers["webhook-id"] == result.event_id
        sent = ev.parse_event(request.body)
        assert sent.timestamp == START
        verify(request.body, request.headers, SECRET, clock=world.clock)
        again = dispatcher.send_test(ADMIN, hook.id, category="accountCreated")
        assert again.category is EventCategory.ACCOUNT_CREATED
        assert again.event_id != result.event_id
        assert world.storage.list_deliveries() == []
        assert result.latency >= 0

    @pytest.mark.parametrize(
        ("answer", "error"),
        [
            (TransportError("timeout", "too slow"), "timeout: too slow"),
            (500, "HTTP 500"),
            (
                TransportResponse(status=302, headers={"Location": "https://x.example/y"}),
                "HTTP 302: redirect to x.example not followed",
            ),
        ],
    )
    def test_send_test_reports_failures(
        self,
        mem: World,
        answer: int | TransportResponse | Exception,
        error: str,
    ) -> None:
        """
        A failed test send says why, and is not retried.
        """
        hook = mem.hook()
        mem.answer(answer)
        with mem.dispatcher() as dispatcher:
            result = dispatcher.send_test(ADMIN, hook.id)
        assert (result.accepted, result.error) == (False, error)
        assert len(mem.transport.requests) == 1

    def test_send_test_refusals(self, mem: World) -> None:
        """
        Only actors the policy allows may test; unknown webhooks and categories raise, and
        nothing is sent.
        """
        hook = mem.hook()
        with mem.dispatcher() as dispatcher:
            with pytest.raises(PermissionDenied):
                dispatcher.send_test(USER, hook.id)
            with pytest.raises(UnknownWebhook):
                dispatcher.send_test(ADMIN, "wh_nope")
            with pytest.raises(ValidationError, match=r"^category: "):
                dispatcher.send_test(ADMIN, hook.id, category="pageViewed")
        assert mem.transport.requests == []

    def test_redeliver_sends_the_same_bytes_with_a_fresh_budget(self, world: World) -> None:
        """
        A dead delivery redelivered goes out again with the same body and webhook-id;
        attempt numbers go on, and the retry budget starts over.
        """
        world.hook()
        world.transport = RecordingTransport(default=500)
        with world.dispatcher(retry=RetryPolicy(max_retries=1, schedule=[1], jitter=0)) as d:
            outcome = only(d.dispatch(event()))
            d.drain(timeout=60)
            delivery_id = str(outcome.delivery_id)
            assert world.storage.get_delivery(delivery_id).status is DeliveryStatus.DEAD
            again = d.redeliver(delivery_id)
            assert (again.status, again.attempt_base, again.redelivered_at) == (
                DeliveryStatus.PENDING,
                2,
                world.clock(),
            )
            d.drain(timeout=60)
        rows = world.storage.list_attempts(delivery_id)
        assert [(a.number, a.verdict) for a in rows] == [
            (1, Verdict.RETRY),
            (2, Verdict.DEAD),
            (3, Verdict.RETRY),
            (4, Verdict.DEAD),
        ]
        requests = world.transport.requests
        assert len({r.body for r in requests}) == 1
        assert len({r.headers["webhook-id"] for r in requests}) == 1

    def test_redeliver_refusals(self, world: World, dispatcher: Dispatcher) -> None:
        """
        Redelivering an unknown or pending delivery raises.
        """
        world.hook()
        pending = only(dispatcher.enqueue(event()))
        with pytest.raises(UnknownDelivery):
            dispatcher.redeliver("dlv_nope")
        with pytest.raises(ConflictError):
            dispatcher.redeliver(str(pending.delivery_id))

    def test_redeliver_failed_in_a_window(self, world: World, dispatcher: Dispatcher) -> None:
        """
        redeliver_failed brings back failed and dead deliveries created in the window.
        """
        hook = world.hook()
        world.answer(404)
        dispatcher.dispatch(event())
        world.clock.advance(hours=1)
        world.answer(404)
        late = only(dispatcher.dispatch(event()))
        dispatcher.dispatch(event())  # delivered: not redelivered
        assert (
            dispatcher.redeliver_failed(hook.id, since=START, until=START + timedelta(minutes=1))
            == 1
        )
        assert dispatcher.redeliver_failed(hook.id, since=START + timedelta(minutes=1)) == 1
        assert world.storage.get_delivery(str(late.delivery_id)).status is DeliveryStatus.PENDING
        with pytest.raises(ValidationError, match=r"^since: "):
            dispatcher.redeliver_failed(hook.id, since=START.replace(tzinfo=None))

    def test_purge(self, world: World, dispatcher: Dispatcher) -> None:
        """
        purge() empties old finished deliveries' bodies and excerpts; they cannot be
        redelivered any more.
        """
        world.hook()
        done = only(dispatcher.dispatch(event()))
        assert dispatcher.purge(START + timedelta(days=1)) == 1
        purged = world.storage.get_delivery(str(done.delivery_id))
        assert (purged.body, purged.purged, purged.status) == (b"", True, DeliveryStatus.DELIVERED)
        with pytest.raises(ConflictError, match="purged"):
            dispatcher.redeliver(purged.id)
        with pytest.raises(ValidationError, match=r"^older_than: "):
            dispatcher.purge(START.replace(tzinfo=None))

    def test_admin_reads(self, world: World, dispatcher: Dispatcher) -> None:
        """
        deliveries() and attempts() serve an admin UI through the registry's policy.
        """
        hook = world.hook()
        world.answer(503)
        outcome = only(dispatcher.dispatch(event()))
        dispatcher.dispatch(event())
        listed = dispatcher.deliveries(ADMIN, webhook_id=hook.id, status="pending")
        assert [d.id for d in listed] == [outcome.delivery_id]
        assert len(dispatcher.deliveries(ADMIN)) == 2
        (attempt,) = dispatcher.attempts(ADMIN, str(outcome.delivery_id))
        assert isinstance(attempt, Attempt)
        with pytest.raises(PermissionDenied):
            dispatcher.deliveries(USER)
        with pytest.raises(PermissionDenied):
            dispatcher.attempts(USER, str(outcome.delivery_id))
        with pytest.raises(ValidationError, match=r"^status: "):
            dispatcher.deliveries(ADMIN, status="lost")
        with pytest.raises(ValidationError, match=r"^limit: "):
            dispatcher.deliveries(ADMIN, limit=0)


class TestConstruction:
    def test_defaults(self, mem: World) -> None:
        """
        By default the dispatcher uses the registry's store and its own guarded transport,
        closed by close(); the owner id carries the process id.
        """
        dispatcher = Dispatcher(mem.registry)
        assert dispatcher.storage is mem.storage
        assert isinstance(dispatcher.transport, Urllib3Transport)
        assert dispatcher.owner.endswith(f"-{os.getpid()}")
        assert dispatcher.lease_duration == DEFAULT_LEASE
        assert repr(dispatcher).startswith(f"<Dispatcher(owner={dispatcher.owner!r}")
        dispatcher.close()
        dispatcher.close()

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"registry": object()}, "registry: "),
            ({"storage": InMemoryStorage()}, "storage: "),
            ({"retry": 5}, "retry: "),
            ({"clock": "now"}, "clock: "),
            ({"sleep": None}, "sleep: "),
            ({"rng": 7}, "rng: "),
            ({"lease_duration": 0}, "lease_duration: "),
            ({"lease_duration": timedelta(seconds=-1)}, "lease_duration: "),
            ({"dispatch_threads": 0}, "dispatch_threads: "),
        ],
    )
    def test_bad_arguments(self, mem: World, kwargs: dict[str, Any], message: str) -> None:
        """
        Each bad constructor argument raises ConfigurationError naming it.
        """
        registry = kwargs.pop("registry", mem.registry)
        with pytest.raises(ConfigurationError, match=rf"^{message}"):
            Dispatcher(registry, **kwargs)

    @pytest.mark.parametrize(
        ("call", "field"),
        [
            (lambda d: d.run_due(limit=0), "limit"),
            (lambda d: d.run_due(concurrency=0), "concurrency"),
            (lambda d: d.run_due(concurrency=True), "concurrency"),
            (lambda d: d.drain(timeout=0), "timeout"),
            (lambda d: d.drain(timeout="1"), "timeout"),
            (lambda d: d.run_worker(poll_interval=-1), "poll_interval"),
        ],
    )
    def test_bad_call_arguments(
        self, mem: World, call: Callable[[Dispatcher], object], field: str
    ) -> None:
        """
        Out-of-range call arguments raise ValidationError naming the field.
        """
        with mem.dispatcher() as dispatcher, pytest.raises(ValidationError, match=rf"^{field}: "):
            call(dispatcher)


class TestHygiene:
    def test_no_secret_body_or_query_in_logs_or_rows(
        self, world: World, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        Across success, 500, timeout, blocked and redirect, neither the secret, nor the
        body, nor the URL's query string appears in the logs (at DEBUG), the outcomes, or the
        stored deliveries and attempts.
        """
        world.hook()
        sent = event(visitor_id="VISITORMARK")
        world.transport = RecordingTransport(
            [
                500,
                TransportError("timeout", "no answer from hooks.example.com:443"),
                DestinationBlocked("blocked", "hooks.example.com resolves to 10.0.0.1"),
            ],
            default=TransportResponse(status=307, headers={"Location": URL}),
        )
        with caplog.at_level(logging.DEBUG), world.dispatcher() as dispatcher:
            outcomes = [dispatcher.dispatch(sent)]
            dispatcher.drain(timeout=3600)
            world.hook()
            outcomes.append(dispatcher.dispatch(event(visitor_id="VISITORMARK")))
            outcomes.append(dispatcher.dispatch(event(visitor_id="VISITORMARK")))
        rows = world.storage.list_deliveries()
        text = " ".join(
            [
                caplog.text,
                repr(outcomes),
                *(repr(d) + str(d.last_error) for d in rows),
                *(
                    repr(a) + str(a.detail) + a.reason
                    for d in rows
                    for a in world.storage.list_attempts(d.id)
                ),
            ]
        )
        for marker in (SECRET, "QUERYMARK", "VISITORMARK", "token="):
            assert marker not in text
        assert "hooks.example.com" in caplog.text


class TestValues:
    def test_records_validate(self) -> None:
        """
        Delivery and Attempt refuse malformed fields, naming them.
        """
        fields: dict[str, Any] = {
            "id": "dlv_1",
            "webhook_id": "wh_1",
            "event_id": "e",
            "category": "npsSubmitted",
            "body": b"{}",
            "next_attempt_at": START,
            "created_at": START,
            "updated_at": START,
        }
        Delivery(**fields)
        elsewhere = timezone(timedelta(hours=2))
        local = Delivery(**{**fields, "created_at": START.astimezone(elsewhere)})
        assert local.created_at.tzinfo is timezone.utc
        assert local.created_at == START
        for field, value, name in [
            ("status", "lost", "status"),
            ("category", "pageViewed", "category"),
            ("attempts", -1, "attempts"),
            ("body", "{}", "body"),
            ("created_at", START.replace(tzinfo=None), "datetime"),
        ]:
            with pytest.raises(ValidationError, match=rf"^{name}: "):
                Delivery(**{**fields, field: value})
        row: dict[str, Any] = {
            "delivery_id": "dlv_1",
            "number": 1,
            "started_at": START,
            "duration": 0.1,
            "status_code": 200,
            "verdict": "delivered",
            "reason": "HTTP 200",
        }
        Attempt(**row)
        for field, value, name in [
            ("verdict", "maybe", "verdict"),
            ("response_excerpt", b"x" * 2049, "response_excerpt"),
            ("error_kind", "timeout", "status_code"),
        ]:
            with pytest.raises(ValidationError, match=rf"^{name}: "):
                Attempt(**{**row, field: value})
        with pytest.raises(ValidationError, match=r"^status_code: "):
            Attempt(**{**row, "status_code": None})

    def test_small_helpers(self) -> None:
        """
        host_of shows host and port only; clip_error clips; Exchange describes itself;
        the signer cache forgets when full; results find their webhook.
        """
        assert host_of("https://u:p@h.example:8443/x?q=1") == "h.example:8443"
        assert host_of(None) == "?"
        assert host_of("http://[::1") == "?"
        assert clip_error("x" * 600) == "x" * 499 + "\u2026"
        exchange = Exchange(started_at=START, duration=0.0, error_kind="dns", detail="nope")
        assert (exchange.describe(), exchange.status, exchange.excerpt) == ("dns: nope", None, b"")
        cache = SignerCache(size=1)
        clock = FrozenClock()
        registry = WebhookRegistry(InMemoryStorage(), clock=clock)
        one = registry.create(ADMIN, name="a", url=URL, secret="one-secret", categories=[NPS])
        two = registry.create(ADMIN, name="b", url=URL, secret="two-secret", categories=[NPS])
        first = cache.signer(one, START)
        assert cache.signer(one, START) is first
        cache.signer(two, START)
        assert cache.signer(one, START) is not first
        result = DispatchResult(event_id="e", category=NPS)
        with pytest.raises(KeyError):
            result.for_webhook("wh_1")
        pair = DispatchResult(
            event_id="e",
            category=NPS,
            outcomes=(
                DeliveryOutcome(webhook_id="a", delivery_id=None, outcome=Outcome.SKIPPED),
                DeliveryOutcome(webhook_id="b", delivery_id="d", outcome=Outcome.FAILED),
            ),
        )
        assert pair.for_webhook("b").outcome is Outcome.FAILED
        assert not pair.all_delivered
        summary = DrainSummary(counts={"failed": 2, "cancelled": 1}, pending=3)
        assert (summary.failed, summary.cancelled, summary.attempts) == (2, 1, 2)
        assert str(Outcome.RETRY) == "retry"
        assert str(DeliveryStatus.CANCELLED) == "cancelled"


class TestFakes:
    def test_frozen_clock(self) -> None:
        """
        The frozen clock moves only when told, forward only, and refuses naive times.
        """
        clock = FrozenClock()
        clock.set(START + timedelta(days=1))
        assert clock.now == START + timedelta(days=1)
        assert repr(clock) == "FrozenClock('2026-01-02T00:00:00+00:00')"
        for bad in (-1, "1", True):
            with pytest.raises(ValidationError, match=r"^delta: "):
                clock.advance(bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match=r"^now: "):
            FrozenClock(START.replace(tzinfo=None))
        with pytest.raises(ValidationError, match=r"^moment: "):
            clock.set(START.replace(tzinfo=None))

    def test_recording_transport(self) -> None:
        """
        The recording transport checks its script and shows its state in its repr.
        """
        with pytest.raises(ValidationError, match=r"^responses: "):
            RecordingTransport(["200"])  # type: ignore[list-item]
        with pytest.raises(ValidationError, match=r"^default: "):
            RecordingTransport(default=TransportError("x", "y"))  # type: ignore[arg-type]
        transport = RecordingTransport([201])
        assert repr(transport) == "<RecordingTransport(requests=0, scripted_left=1)>"
