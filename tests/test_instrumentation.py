"""
The instrumentation hooks (issue 16): every recorded change is told once, after it is stored.

The engine signals run on every store (``outbox``: memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from pendo_webhooks.dispatcher import Dispatcher, Outcome
from pendo_webhooks.exceptions import ConfigurationError
from pendo_webhooks.instrumentation import (
    AttemptFinished,
    DeliveryChanged,
    DeliveryState,
    Hooks,
    Signal,
    WebhookChanged,
    WebhookState,
)
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.storage import InMemoryStorage, Storage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import TransportResponse

from .conftest import START


ADMIN = Actor("u-1", is_admin=True)


class Seen(list[Signal]):
    def __call__(self, signal: Signal) -> None:
        self.append(signal)

    def of(self, kind: type[object]) -> list[Signal]:
        return [s for s in self if isinstance(s, kind)]

    def states(self) -> list[tuple[str, DeliveryState]]:
        return [(s.delivery_id, s.state) for s in self if isinstance(s, DeliveryChanged)]


def setup(
    storage: Storage, seen: Seen, clock: FrozenClock, **fields: object
) -> tuple[WebhookRegistry, str]:
    registry = WebhookRegistry(storage, clock=clock, hooks=[seen])
    made: dict[str, object] = {
        "name": "Hooked",
        "url": "https://hooks.example.com/in",
        "categories": {"npsSubmitted"},
        "secret": "s3cret",
    }
    made.update(fields)
    created = registry.create(ADMIN, **made)  # type: ignore[arg-type]
    registry.enable(ADMIN, created.id)
    seen.clear()
    return registry, created.id


class TestDeliverySignals:
    def test_delivered_tells_the_exchange_then_the_state(self, outbox: Storage) -> None:
        seen, clock = Seen(), FrozenClock(START)
        registry, hook_id = setup(outbox, seen, clock)
        with Dispatcher(registry, outbox, transport=RecordingTransport(), clock=clock) as d:
            result = d.dispatch(sample_event("npsSubmitted"))
        delivery_id = result.for_webhook(hook_id).delivery_id
        assert seen.states() == [(delivery_id, DeliveryState.DELIVERED)]
        (attempt,) = seen.of(AttemptFinished)
        assert isinstance(attempt, AttemptFinished)
        assert (attempt.webhook_id, attempt.kind, attempt.host) == (
            hook_id,
            "url",
            "hooks.example.com",
        )
        assert (attempt.deliveries, attempt.status, attempt.error_kind) == (1, 200, None)
        assert attempt.succeeded
        assert attempt.at == START
        assert [type(s) for s in seen] == [AttemptFinished, DeliveryChanged]

    def test_retry_then_dead_are_told_with_their_attempts(self, outbox: Storage) -> None:
        seen, clock = Seen(), FrozenClock(START)
        registry, _ = setup(outbox, seen, clock)
        transport = RecordingTransport(default=503)
        policy = RetryPolicy(max_retries=1, schedule=[10], jitter=0)
        with Dispatcher(
            registry, outbox, transport=transport, clock=clock, retry=policy
        ) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
            clock.advance(timedelta(seconds=10))
            dispatcher.drain(timeout=5)
        changes = seen.of(DeliveryChanged)
        assert [c.state for c in changes if isinstance(c, DeliveryChanged)] == [
            DeliveryState.RETRY_SCHEDULED,
            DeliveryState.DEAD,
        ]
        first, last = changes
        assert isinstance(first, DeliveryChanged)
        assert isinstance(last, DeliveryChanged)
        assert (first.attempt, first.next_attempt_at) == (1, START + timedelta(seconds=10))
        assert first.reason is not None
        assert first.reason.startswith("HTTP 503")
        assert (last.attempt, last.next_attempt_at) == (2, None)
        assert [a.status for a in seen.of(AttemptFinished) if isinstance(a, AttemptFinished)] == [
            503,
            503,
        ]

    def test_a_final_failure_is_failed(self, outbox: Storage) -> None:
        seen, clock = Seen(), FrozenClock(START)
        registry, _ = setup(outbox, seen, clock)
        with Dispatcher(
            registry, outbox, transport=RecordingTransport(default=404), clock=clock
        ) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
        assert [s for _, s in seen.states()] == [DeliveryState.FAILED]

    def test_an_error_without_response_has_its_kind(self, outbox: Storage) -> None:
        seen, clock = Seen(), FrozenClock(START)
        registry, _ = setup(outbox, seen, clock)
        transport = RecordingTransport([TimeoutError("slow")])
        with Dispatcher(registry, outbox, transport=transport, clock=clock) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
        (attempt,) = seen.of(AttemptFinished)
        assert isinstance(attempt, AttemptFinished)
        assert attempt.status is None
        assert attempt.error_kind is not None
        assert not attempt.succeeded

    def test_a_cancelled_delivery_is_told(self, outbox: Storage) -> None:
        seen, clock = Seen(), FrozenClock(START)
        registry, hook_id = setup(outbox, seen, clock)
        with Dispatcher(registry, outbox, transport=RecordingTransport(), clock=clock) as d:
            d.enqueue(sample_event("npsSubmitted"))
            # Unsubscribed meanwhile: the worker cancels it rather than sending it.
            registry.update(ADMIN, hook_id, categories={"pollSubmitted"})
            d.drain(timeout=5)
        assert [s for _, s in seen.states()] == [DeliveryState.CANCELLED]
        assert seen.of(AttemptFinished) == []

    def test_a_segment_batch_is_one_exchange_of_many(self, outbox: Storage) -> None:
        seen, clock = Seen(), FrozenClock(START)
        registry, hook_id = setup(
            outbox, seen, clock, kind="segment", url=None, write_key="wk", secret=None
        )
        with Dispatcher(registry, outbox, transport=RecordingTransport(), clock=clock) as d:
            for n in range(3):
                d.enqueue(sample_event("npsSubmitted", unique_id=f"nps-{n}"))
            d.drain(timeout=5)
        (attempt,) = seen.of(AttemptFinished)
        assert isinstance(attempt, AttemptFinished)
        assert (attempt.kind, attempt.deliveries, attempt.host) == ("segment", 3, "api.segment.io")
        assert [s for _, s in seen.states()] == [DeliveryState.DELIVERED] * 3
        assert {c.webhook_id for c in seen.of(DeliveryChanged)} == {hook_id}  # type: ignore[attr-defined]

    def test_a_claim_ended_dead_is_told(self, outbox: Storage) -> None:
        seen, clock = Seen(), FrozenClock(START)
        registry, _ = setup(outbox, seen, clock)
        with Dispatcher(
            registry, outbox, transport=RecordingTransport(), clock=clock, max_claims=1
        ) as dispatcher:
            dispatcher.enqueue(sample_event("npsSubmitted"))
            (claimed,) = outbox.claim_due(
                limit=1, owner="crashed", now=clock(), lease_until=clock() + timedelta(seconds=60)
            )
            clock.advance(timedelta(seconds=61))  # the crashed worker's lease lapses
            dispatcher.drain(timeout=5)
        assert seen.states() == [(claimed.id, DeliveryState.DEAD)]


class TestWebhookSignals:
    def test_admin_enable_and_disable_are_told_once(self) -> None:
        seen, clock = Seen(), FrozenClock(START)
        registry = WebhookRegistry(InMemoryStorage(), clock=clock, hooks=[seen])
        created = registry.create(
            ADMIN, name="A", url="https://hooks.example.com/a", categories={"npsSubmitted"}
        )
        registry.enable(ADMIN, created.id)
        registry.enable(ADMIN, created.id)  # a no-op tells nothing
        registry.disable(ADMIN, created.id, reason="maintenance")
        registry.disable(ADMIN, created.id)
        assert seen == [
            WebhookChanged(webhook_id=created.id, state=WebhookState.ENABLED, by="u-1", at=START),
            WebhookChanged(
                webhook_id=created.id,
                state=WebhookState.DISABLED,
                by="u-1",
                reason="maintenance",
                at=START,
            ),
        ]

    def test_410_disables_by_system_and_tells_it(self, outbox: Storage) -> None:
        seen, clock = Seen(), FrozenClock(START)
        registry, hook_id = setup(outbox, seen, clock)
        with Dispatcher(
            registry, outbox, transport=RecordingTransport(default=410), clock=clock
        ) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
        changed = seen.of(WebhookChanged)
        assert changed == [
            WebhookChanged(
                webhook_id=hook_id,
                state=WebhookState.DISABLED,
                by="system",
                reason="HTTP 410 Gone from hooks.example.com",
                at=START,
            )
        ]
        assert [s for _, s in seen.states()] == [DeliveryState.FAILED]


class TestBrokenHooks:
    def test_a_raising_hook_is_logged_and_the_others_still_run(
        self, outbox: Storage, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen, clock = Seen(), FrozenClock(START)

        def broken(signal: Signal) -> None:
            raise RuntimeError("secret-ish text that must not be logged")

        registry = WebhookRegistry(outbox, clock=clock, hooks=[broken, seen])
        created = registry.create(
            ADMIN, name="B", url="https://hooks.example.com/b", categories={"npsSubmitted"}
        )
        registry.enable(ADMIN, created.id)
        with caplog.at_level(logging.WARNING, logger="pendo_webhooks"):
            with Dispatcher(
                registry, outbox, transport=RecordingTransport(), clock=clock
            ) as dispatcher:
                result = dispatcher.dispatch(sample_event("npsSubmitted"))
        assert result.for_webhook(created.id).outcome is Outcome.DELIVERED
        assert [type(s) for s in seen] == [WebhookChanged, AttemptFinished, DeliveryChanged]
        assert "secret-ish" not in caplog.text
        assert "raised RuntimeError on AttemptFinished" in caplog.text

    @pytest.mark.parametrize(
        ("hooks", "message"),
        [
            ("print", "hooks: must be a sequence of callables, not str"),
            (42, "hooks: must be a sequence of callables, not int"),
            ([print, "x"], "hooks[1]: must be callable, not str"),
        ],
    )
    def test_hooks_that_are_not_callables_are_refused(self, hooks: object, message: str) -> None:
        with pytest.raises(ConfigurationError) as caught:
            WebhookRegistry(InMemoryStorage(), hooks=hooks)  # type: ignore[arg-type]
        assert str(caught.value) == message

    def test_hooks_pass_through_as_they_are(self) -> None:
        hooks = Hooks.of([print])
        assert WebhookRegistry(InMemoryStorage(), hooks=hooks).hooks is hooks
        assert not Hooks.of(None)


def test_no_hooks_costs_no_signal(outbox: Storage) -> None:
    # Without hooks nothing is built: the registry reads nothing more either.
    registry = WebhookRegistry(outbox)
    assert not registry.hooks
    created = registry.create(
        ADMIN, name="N", url="https://hooks.example.com/n", categories={"npsSubmitted"}
    )
    registry.enable(ADMIN, created.id)
    with Dispatcher(registry, outbox, transport=RecordingTransport()) as dispatcher:
        outcome = dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(created.id)
    assert outcome.outcome is Outcome.DELIVERED
    _ = TransportResponse  # the transport's response type stays importable beside hooks
