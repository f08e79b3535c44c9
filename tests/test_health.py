"""
Webhook health: the rule (next_health), the gate's probe and hold paths, auto-disable,
re-enable, stores without health, store errors, and what the console script shows.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from pendo_webhooks.cli import main
from pendo_webhooks.dispatcher import DeliveryStatus, Dispatcher, HealthState, Outcome
from pendo_webhooks.dispatcher._health import HealthChange, HealthKeeper, next_health
from pendo_webhooks.exceptions import ConfigurationError, StorageError, ValidationError
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.retry import OutagePolicy, RetryPolicy, Verdict
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.storage.protocols import capabilities
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event


ADMIN = Actor("u-1", is_admin=True)
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
URL = "https://hooks.example.com/in"


def _setup(
    storage: Storage,
    transport: RecordingTransport,
    *,
    outage: OutagePolicy | None = None,
    clock: FrozenClock | None = None,
) -> tuple[WebhookRegistry, Dispatcher, str, FrozenClock]:
    clock = clock or FrozenClock()
    registry = WebhookRegistry(storage, clock=clock)
    hook = registry.create(ADMIN, name="h", url=URL, categories={"npsSubmitted"})
    registry.enable(ADMIN, hook.id)
    dispatcher = Dispatcher(
        registry,
        transport=transport,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(3),
        outage=outage or OutagePolicy(),
    )
    return registry, dispatcher, hook.id, clock


def _events(n: int, prefix: str = "e") -> list[Any]:
    return [sample_event("npsSubmitted", unique_id=f"{prefix}{i}") for i in range(n)]


# -- the rule --------------------------------------------------------------------------------


def _step(health: Any, verdict: Verdict, *, owner: str = "w1", policy: OutagePolicy) -> Any:
    return next_health(health, verdict=verdict, started_at=T0, now=T0, owner=owner, policy=policy)


def test_next_health_counts_streaks_and_outages() -> None:
    policy = OutagePolicy(threshold=2)
    blank = attrs.evolve(_step(_blank(), Verdict.FAILED, policy=policy)[0])
    assert (blank.failures, blank.streak, blank.state) == (1, 0, HealthState.FAILING)
    one, change = _step(blank, Verdict.RETRY, policy=policy)
    assert (one.failures, one.streak, change) == (2, 1, None)
    outage, change = _step(one, Verdict.DEAD, policy=policy)
    assert change is HealthChange.OUTAGE
    assert outage.failing_since == T0
    # A straggler (another worker, no probe lease): counted, schedule unchanged.
    straggled, change = _step(outage, Verdict.RETRY, owner="w2", policy=policy)
    assert change is None
    assert (straggled.next_probe_at, straggled.probes) == (outage.next_probe_at, 0)
    # The probe's own failure: the next one later, the interval doubled.
    probing = attrs.evolve(outage, probe_owner="w1", probe_delivery="dlv_1")
    later, change = _step(probing, Verdict.RETRY, policy=policy)
    assert change is HealthChange.PROBE_FAILED
    assert later.next_probe_at == T0 + policy.probe_wait(1)
    assert (later.probe_owner, later.probe_delivery, later.probes) == (None, None, 1)
    # A 4xx during the outage: the destination answers; no outage, still failing.
    answering, change = _step(later, Verdict.FAILED, policy=policy)
    assert change is HealthChange.RECOVERED
    assert answering.state is HealthState.FAILING
    assert (answering.streak, answering.next_probe_at) == (0, None)


def test_a_disabled_policy_never_declares_an_outage() -> None:
    policy = OutagePolicy(enabled=False, threshold=1)
    health, change = _step(_blank(), Verdict.RETRY, policy=policy)
    assert (health.state, change) == (HealthState.FAILING, None)


def _blank() -> Any:
    from pendo_webhooks.dispatcher import WebhookHealth  # noqa: PLC0415

    return WebhookHealth(webhook_id="wh_1")


def test_outage_policy_refuses_bad_values() -> None:
    for kwargs in (
        {"enabled": 1},
        {"threshold": 0},
        {"threshold": True},
        {"recovery_rate": 0},
        {"recovery_rate": "fast"},
        {"probe_interval": 0},
        {"probe_interval": 600, "max_probe_interval": 60},
        {"disable_after": -1},
    ):
        with pytest.raises(ConfigurationError):
            OutagePolicy(**kwargs)
    assert OutagePolicy(disable_after=None).disable_after is None
    with pytest.raises(ValidationError):
        OutagePolicy().probe_wait(-1)
    assert OutagePolicy().probe_wait(10_000) == timedelta(minutes=15)


def test_the_health_record_checks_its_fields() -> None:
    from pendo_webhooks.dispatcher import WebhookHealth  # noqa: PLC0415

    with pytest.raises(ValidationError):
        WebhookHealth(webhook_id="wh_1", failures=-1)
    with pytest.raises(ValidationError):
        WebhookHealth(webhook_id="wh_1", failing_since=datetime(2026, 1, 1))
    t = T0
    assert (
        "outage since 2026-01-01 00:00:00 UTC"
        in WebhookHealth(webhook_id="w", outage_since=t, next_probe_at=t).describe()
    )
    assert WebhookHealth(webhook_id="w", outage_since=t).describe().endswith("0 failed probes")
    assert WebhookHealth(webhook_id="w", last_success_at=t).describe().startswith("healthy (")


# -- the engine --------------------------------------------------------------------------------


def test_a_4xx_probe_ends_the_outage_and_releases_the_backlog() -> None:
    transport = RecordingTransport([503] * 3, default=404)
    policy = OutagePolicy(threshold=3, recovery_rate=2)
    _, dispatcher, hook_id, clock = _setup(InMemoryStorage(), transport, outage=policy)
    dispatcher.enqueue_many(_events(10))
    dispatcher.run_due(limit=100)
    assert len(transport.requests) == 3
    assert dispatcher.webhook_health(ADMIN, hook_id).state is HealthState.OUTAGE
    summary = dispatcher.drain(timeout=timedelta(minutes=30))
    assert summary.pending == 0
    # The probe answered 404: no outage (still failing); the rest went out, 2 a second
    # (the three that failed first came back once each).
    health = dispatcher.webhook_health(ADMIN, hook_id)
    assert (health.state, health.outage_since) == (HealthState.FAILING, None)
    assert len(transport.requests) == 13
    assert clock.sleeps.count(0.5) >= 6


def test_held_deliveries_keep_their_attempts_and_leave_no_attempt_rows() -> None:
    transport = RecordingTransport([503] * 2)
    policy = OutagePolicy(threshold=2)
    _, dispatcher, hook_id, clock = _setup(InMemoryStorage(), transport, outage=policy)
    dispatcher.enqueue_many(_events(5))
    outcomes = dispatcher.run_due(limit=100)
    held = [o for o in outcomes if o.outcome is Outcome.PENDING]
    assert len(held) == 2  # one nominated as the next probe, not due yet
    assert all(o.reason and o.reason.startswith("held: webhook in an outage") for o in held)
    for outcome in held:
        assert outcome.delivery_id is not None
        delivery = dispatcher.storage.get_delivery(outcome.delivery_id)
        assert delivery.attempts == 0
        assert dispatcher.attempts(ADMIN, outcome.delivery_id) == []
        assert delivery.next_attempt_at == clock() + policy.hold
    health = dispatcher.webhook_health(ADMIN, hook_id)
    nominee = dispatcher.storage.get_delivery(health.probe_delivery or "")
    assert nominee.next_attempt_at == health.next_probe_at


def test_the_probe_lease_keeps_a_second_worker_from_probing() -> None:
    storage = InMemoryStorage()
    transport = RecordingTransport([503] * 2)
    policy = OutagePolicy(threshold=2)
    registry, first, hook_id, clock = _setup(storage, transport, outage=policy)
    second = Dispatcher(registry, transport=transport, clock=clock, outage=policy)
    first.enqueue_many(_events(4))
    first.run_due(limit=100)
    clock.advance(policy.probe_interval)
    health = first.webhook_health(ADMIN, hook_id)
    # The first worker takes the probe lease (as if its probe were in flight).
    taken = attrs.evolve(health, probe_owner=first.owner, probe_until=clock() + timedelta(1))
    assert storage.put_webhook_health(taken, expected_version=health.version)
    outcomes = second.run_due(limit=100)
    assert {o.outcome for o in outcomes} == {Outcome.PENDING}
    assert len(transport.requests) == 2


def test_an_overdue_nominee_lets_another_delivery_probe() -> None:
    storage = InMemoryStorage()
    transport = RecordingTransport([503] * 2)
    policy = OutagePolicy(threshold=2)
    _, dispatcher, hook_id, clock = _setup(storage, transport, outage=policy)
    dispatcher.enqueue_many(_events(3))
    dispatcher.run_due(limit=100)
    health = dispatcher.webhook_health(ADMIN, hook_id)
    assert health.probe_delivery is not None
    # The nominee is gone (cancelled, say): a new delivery probes once it is overdue.
    gone = attrs.evolve(health, probe_delivery="dlv_gone")
    assert storage.put_webhook_health(gone, expected_version=health.version)
    clock.advance(policy.probe_interval)
    dispatcher.enqueue(sample_event("npsSubmitted", unique_id="late-1"))
    assert len(transport.requests) == 2
    dispatcher.run_due(limit=100)
    assert len(transport.requests) == 2  # the nominee's own time, but it is not the nominee
    clock.advance(policy.max_probe_interval)
    dispatcher.enqueue(sample_event("npsSubmitted", unique_id="late-2"))
    dispatcher.run_due(limit=100)
    # The probe succeeded; the first of the released backlog is due at once, the rest paced.
    assert len(transport.requests) == 4
    assert dispatcher.webhook_health(ADMIN, hook_id).state is HealthState.HEALTHY


def test_dispatch_during_an_outage_holds_the_new_delivery() -> None:
    transport = RecordingTransport([503] * 2)
    policy = OutagePolicy(threshold=2)
    _, dispatcher, _, _ = _setup(InMemoryStorage(), transport, outage=policy)
    for event in _events(2):
        dispatcher.dispatch(event)
    (outcome,) = dispatcher.dispatch(sample_event("npsSubmitted", unique_id="x"))
    assert outcome.outcome is Outcome.PENDING
    assert len(transport.requests) == 2


# -- auto-disable and re-enable ---------------------------------------------------------------


def test_a_webhook_failing_for_the_whole_span_is_disabled_then_reenabled_afresh(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    transport = RecordingTransport(default=503)
    policy = OutagePolicy(enabled=False, disable_after=timedelta(hours=1))
    registry, dispatcher, hook_id, clock = _setup(storage, transport, outage=policy)
    for n in range(3):
        dispatcher.dispatch(sample_event("npsSubmitted", unique_id=f"d{n}"))
        if n < 2:
            assert registry.get(ADMIN, hook_id).enabled
            clock.advance(minutes=31)
    hook = registry.get(ADMIN, hook_id)
    assert not hook.enabled
    assert hook.disabled_by == "system"
    assert hook.disabled_reason is not None
    assert hook.disabled_reason.startswith(
        "every exchange with hooks.example.com failed for 1.0 h"
    )
    (entry, *_) = registry.audit(ADMIN, webhook_id=hook_id)
    assert (entry.actor_id, entry.action) == ("system", "disable")
    pending = dispatcher.deliveries(ADMIN, webhook_id=hook_id, status="pending")
    assert pending == []
    assert "disabled by the system" in caplog.text
    assert dispatcher.webhook_health(ADMIN, hook_id).failures == 3
    registry.enable(ADMIN, hook_id)
    assert dispatcher.webhook_health(ADMIN, hook_id).state is HealthState.HEALTHY
    assert dispatcher.webhook_health(ADMIN, hook_id).failures == 0
    registry.enable(ADMIN, hook_id)  # already enabled: nothing to reset


def test_a_success_within_the_span_keeps_the_webhook() -> None:
    transport = RecordingTransport([503, 200], default=503)
    policy = OutagePolicy(enabled=False, disable_after=timedelta(hours=1))
    registry, dispatcher, hook_id, clock = _setup(InMemoryStorage(), transport, outage=policy)
    for n in range(4):
        dispatcher.dispatch(sample_event("npsSubmitted", unique_id=f"d{n}"))
        clock.advance(minutes=25)
    assert registry.get(ADMIN, hook_id).enabled


def test_never_disable_with_no_span() -> None:
    transport = RecordingTransport(default=503)
    policy = OutagePolicy(enabled=False, disable_after=None)
    registry, dispatcher, hook_id, clock = _setup(InMemoryStorage(), transport, outage=policy)
    for n in range(3):
        dispatcher.dispatch(sample_event("npsSubmitted", unique_id=f"d{n}"))
        clock.advance(days=10)
    assert registry.get(ADMIN, hook_id).enabled


# -- stores without health, and store errors --------------------------------------------------


class _NoHealth(InMemoryStorage):
    """An in-memory store that does not offer the HealthStore capability."""

    def __getattribute__(self, name: str) -> Any:
        if name in {"get_webhook_health", "put_webhook_health", "hold_claims", "respread_pending"}:
            raise AttributeError(name)
        return super().__getattribute__(name)


def test_a_store_without_health_retries_as_before() -> None:
    storage = _NoHealth()
    assert not capabilities(storage).webhook_health
    transport = RecordingTransport([503] * 10)
    _, dispatcher, hook_id, _ = _setup(storage, transport, outage=OutagePolicy(threshold=1))
    dispatcher.enqueue_many(_events(3))
    dispatcher.run_due(limit=100)
    assert len(transport.requests) == 3
    with pytest.raises(ConfigurationError, match="keeps no webhook health"):
        dispatcher.webhook_health(ADMIN, hook_id)
    registry = dispatcher.registry
    registry.disable(ADMIN, hook_id)
    registry.enable(ADMIN, hook_id)


class _Flaky(InMemoryStorage):
    """Health reads fail, or every health write loses the race."""

    fail_reads = False
    lose_writes = False

    def get_webhook_health(self, webhook_id: str) -> Any:
        if self.fail_reads:
            raise StorageError("health table unreadable")
        return super().get_webhook_health(webhook_id)

    def put_webhook_health(self, health: Any, *, expected_version: int) -> bool:
        if self.lose_writes:
            return False
        return super().put_webhook_health(health, expected_version=expected_version)

    def respread_pending(self, webhook_id: str, **kwargs: Any) -> list[str]:
        if self.fail_reads:
            raise StorageError("cannot respread")
        return super().respread_pending(webhook_id, **kwargs)


def test_health_store_errors_never_stop_a_delivery(caplog: pytest.LogCaptureFixture) -> None:
    storage = _Flaky()
    transport = RecordingTransport([503] * 2)
    _, dispatcher, hook_id, _ = _setup(storage, transport, outage=OutagePolicy(threshold=2))
    storage.fail_reads = True
    outcomes = [dispatcher.dispatch(e).for_webhook(hook_id).outcome for e in _events(3)]
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DELIVERED]
    assert "health not read, sending anyway" in caplog.text
    assert "health not updated" in caplog.text
    storage.fail_reads = False
    storage.lose_writes = True
    with caplog.at_level(logging.WARNING):
        dispatcher.dispatch(sample_event("npsSubmitted", unique_id="z"))
    assert "too many writers" in caplog.text


def test_a_failed_follow_up_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    storage = _Flaky()
    transport = RecordingTransport([503] * 2)
    _, dispatcher, hook_id, _ = _setup(storage, transport, outage=OutagePolicy(threshold=1))
    keeper = dispatcher._health
    assert isinstance(keeper, HealthKeeper)
    assert keeper.active
    dispatcher.enqueue_many(_events(2))
    original = storage.respread_pending

    def broken(webhook_id: str, **kwargs: Any) -> list[str]:
        raise StorageError("no respread")

    storage.respread_pending = broken  # type: ignore[method-assign]
    dispatcher.run_due(limit=1)
    storage.respread_pending = original  # type: ignore[method-assign]
    assert "health follow-up failed" in caplog.text
    assert dispatcher.webhook_health(ADMIN, hook_id).state is HealthState.OUTAGE


def test_a_recovery_seen_while_holding_releases_the_held_ones() -> None:
    storage = InMemoryStorage()
    transport = RecordingTransport([503] * 2)
    policy = OutagePolicy(threshold=2)
    _, dispatcher, hook_id, clock = _setup(storage, transport, outage=policy)
    dispatcher.enqueue_many(_events(4))
    real_hold = storage.hold_claims

    def hold_then_recover(ids: Any, **kwargs: Any) -> int:
        held = real_hold(ids, **kwargs)
        # Another worker's probe succeeds right now.
        current = storage.get_webhook_health(hook_id)
        assert current is not None
        healthy = attrs.evolve(current, outage_since=None, next_probe_at=None)
        storage.put_webhook_health(healthy, expected_version=current.version)
        return held

    dispatcher.run_due(limit=2)
    storage.hold_claims = hold_then_recover  # type: ignore[method-assign]
    outcomes = dispatcher.run_due(limit=1)
    assert outcomes[0].outcome is Outcome.PENDING
    assert outcomes[0].delivery_id is not None
    released = storage.get_delivery(outcomes[0].delivery_id)
    assert released.next_attempt_at <= clock() + policy.recovery_spacing * 4


# -- the console script ----------------------------------------------------------------------


@pytest.fixture(name="db")
def _db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "hooks.db"
    with SQLiteStorage(path) as storage:
        transport = RecordingTransport([503] * 6, default=503)
        _, dispatcher, hook_id, _ = _setup(storage, transport, outage=OutagePolicy())
        dispatcher.enqueue_many(_events(8))
        dispatcher.run_due(limit=100)
    return path, hook_id


def test_the_console_script_shows_the_health(
    db: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path, hook_id = db
    assert main(["webhooks", "show", hook_id, "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "health: outage since 2026-01-01 00:00:00 UTC: 5 failed exchanges" in out
    assert main(["webhooks", "show", hook_id, "--db", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["health"]["state"] == "outage"
    assert shown["health"]["next_probe_at"] == "2026-01-01T00:01:00Z"
    args = ["deliveries", "list", "--webhook", hook_id, "--db", str(path), "--actor", "ann"]
    assert main(args) == 0
    assert f"webhook {hook_id}: outage since" in capsys.readouterr().out
    assert DeliveryStatus.PENDING.value == "pending"
    assert RetryPolicy().schedule[-1] == timedelta(hours=8)


def test_the_hooks_hear_failing_recovered_and_disabled() -> None:
    from pendo_webhooks.instrumentation import WebhookChanged, WebhookState  # noqa: PLC0415

    seen: list[Any] = []
    clock = FrozenClock()
    registry = WebhookRegistry(InMemoryStorage(), clock=clock, hooks=[seen.append])
    hook = registry.create(ADMIN, name="h", url=URL, categories={"npsSubmitted"})
    registry.enable(ADMIN, hook.id)
    transport = RecordingTransport([503] * 2)
    policy = OutagePolicy(threshold=2, disable_after=timedelta(hours=2))
    dispatcher = Dispatcher(
        registry, transport=transport, clock=clock, sleep=clock.sleep, outage=policy
    )
    dispatcher.enqueue_many(_events(3))
    dispatcher.drain(timeout=timedelta(minutes=5))
    down = RecordingTransport(default=503)
    dispatcher._deliverer._transport = down  # the receiver goes down again, for good
    dispatcher.enqueue_many(_events(8, prefix="later"))
    dispatcher.drain(timeout=timedelta(hours=3))
    changes = [(s.state, s.by) for s in seen if isinstance(s, WebhookChanged)]
    assert changes == [
        (WebhookState.ENABLED, ADMIN.id),
        (WebhookState.FAILING, "system"),
        (WebhookState.RECOVERED, "system"),
        (WebhookState.FAILING, "system"),
        (WebhookState.DISABLED, "system"),
    ]


def test_a_days_long_failure_says_days_and_a_refused_disable_is_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pendo_webhooks.cli._common import health_of  # noqa: PLC0415
    from pendo_webhooks.dispatcher import WebhookHealth  # noqa: PLC0415
    from pendo_webhooks.exceptions import UnknownWebhook  # noqa: PLC0415

    transport = RecordingTransport(default=503)
    policy = OutagePolicy(enabled=False, disable_after=timedelta(days=1))
    registry, dispatcher, hook_id, clock = _setup(InMemoryStorage(), transport, outage=policy)
    dispatcher.dispatch(sample_event("npsSubmitted", unique_id="d0"))
    clock.advance(hours=25)

    def refuse(self: WebhookRegistry, webhook_id: str, *, reason: str) -> Any:
        raise UnknownWebhook(webhook_id)

    with monkeypatch.context() as patched:
        patched.setattr(WebhookRegistry, "disable_by_system", refuse)
        dispatcher.dispatch(sample_event("npsSubmitted", unique_id="d1"))
    assert "failed for too long but was not disabled" in caplog.text
    dispatcher.dispatch(sample_event("npsSubmitted", unique_id="d2"))
    reason = registry.get(ADMIN, hook_id).disabled_reason
    assert reason is not None
    assert "failed for 1.0 days" in reason
    failing = WebhookHealth(webhook_id="w", failing_since=T0, failures=2)
    assert failing.describe() == "failing since 2026-01-01 00:00:00 UTC: 2 failed exchanges"
    assert health_of(_NoHealth(), "w") is None


def test_alerts_page_a_recovery_after_an_outage() -> None:
    from pendo_webhooks.alerts import Alerts  # noqa: PLC0415

    storage, clock, paged = InMemoryStorage(), FrozenClock(), []
    alerts = Alerts(storage, callback=paged.append, clock=clock)
    registry = WebhookRegistry(storage, hooks=[alerts], clock=clock)
    hook = registry.create(ADMIN, name="h", url=URL, categories={"npsSubmitted"})
    registry.enable(ADMIN, hook.id)
    transport = RecordingTransport([503] * 3)
    dispatcher = Dispatcher(
        registry,
        transport=transport,
        clock=clock,
        sleep=clock.sleep,
        outage=OutagePolicy(threshold=3),
    )
    dispatcher.enqueue_many(_events(6))
    assert dispatcher.drain(timeout=timedelta(minutes=10)).pending == 0
    assert [(a.kind.short, a.webhook_id) for a in paged] == [("webhook.recovered", hook.id)]


# -- trusting a healthy read --------------------------------------------------------------------


class _CountingReads:
    """
    Counts a store's health reads (wraps its ``get_webhook_health``).
    """

    def __init__(self, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        read = storage.get_webhook_health  # type: ignore[attr-defined]

        def counted(webhook_id: str) -> Any:
            self.reads += 1
            return read(webhook_id)

        monkeypatch.setattr(storage, "get_webhook_health", counted)


def test_a_healthy_destination_costs_no_health_read_per_delivery(
    outbox: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, dispatcher, hook_id, clock = _setup(outbox, RecordingTransport(), clock=FrozenClock(T0))
    with dispatcher:
        dispatcher.dispatch(_events(1, "warm")[0])  # writes the first success
        counter = _CountingReads(outbox, monkeypatch)
        for event in _events(20):
            assert dispatcher.dispatch(event).for_webhook(hook_id).outcome is Outcome.DELIVERED
        assert counter.reads == 1  # one read, trusted for HEALTHY_TRUST
        clock.advance(timedelta(seconds=1))
        dispatcher.dispatch(_events(1, "later")[0])
        assert counter.reads == 2  # the trust lapsed: read again


def test_an_outage_another_worker_declares_costs_this_one_at_most_one_request(
    outbox: Storage,
) -> None:
    clock = FrozenClock(T0)
    failing = RecordingTransport(default=503)
    registry, first, hook_id, _ = _setup(outbox, failing, clock=clock)
    other = RecordingTransport([200, 200], default=503)
    second = Dispatcher(
        registry, transport=other, clock=clock, sleep=clock.sleep, rng=random.Random(4)
    )
    with first, second:
        # The second worker saw the destination healthy a moment ago, and trusts that.
        # (The first success writes the health; the second is sent on a healthy read.)
        for event in _events(2, "warm"):
            assert second.dispatch(event).for_webhook(hook_id).outcome is Outcome.DELIVERED
        # The first worker meets five failures in a row: an outage.
        for event in _events(5, "first"):
            first.dispatch(event)
        assert second.webhook_health(ADMIN, hook_id).state is HealthState.OUTAGE
        # The second worker sends once on its trusted read; that failure ends the trust.
        outcomes = [second.dispatch(e).for_webhook(hook_id) for e in _events(3, "second")]
    assert len(other.requests) == 3  # the warm-up, and one on the trusted read
    assert [o.outcome for o in outcomes] == [Outcome.RETRY, Outcome.PENDING, Outcome.PENDING]
    assert all(o.reason is not None and "held" in o.reason for o in outcomes)
