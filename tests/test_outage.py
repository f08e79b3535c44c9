"""
Outage-aware retries, end to end: a 12-hour outage of one destination, simulated.

The real engine (``Dispatcher``: ``enqueue_many``, ``enqueue`` and ``drain``, whose loop
sleeps through :class:`FrozenClock`), a transport that refuses connections to one
destination for 12 hours and records every request with the clock's time. Run against
every store (memory, SQLite, PostgreSQL when there is a server).
"""

from __future__ import annotations

import importlib.util
import itertools
import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import pytest

from pendo_webhooks.dispatcher import DeliveryStatus, Dispatcher, HealthState
from pendo_webhooks.exceptions import TransportError
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.retry import OutagePolicy
from pendo_webhooks.storage import Storage
from pendo_webhooks.testing import FrozenClock, sample_event
from pendo_webhooks.transports import OutgoingRequest, TransportResponse


ADMIN = Actor("u-1", is_admin=True)
DOWN_URL = "https://down.example.com/in"
UP_URL = "https://up.example.com/in"
OUTAGE = timedelta(hours=12)
BACKLOG = 1000


@attrs.frozen
class Sent:
    at: datetime
    url: str
    webhook_id: str  # the delivery's webhook-id header: one per delivery
    ok: bool


class OutageTransport:
    """
    Refuses connections to *down_url* until *until* (by *clock*); 200 otherwise. Records all.
    """

    def __init__(self, clock: FrozenClock, *, down_url: str, until: datetime) -> None:
        self.clock = clock
        self.down_url = down_url
        self.until = until
        self.sent: list[Sent] = []

    def send(self, request: OutgoingRequest) -> TransportResponse:
        now = self.clock()
        down = request.url == self.down_url and now < self.until
        self.sent.append(Sent(now, request.url, request.headers["webhook-id"], not down))
        if down:
            raise TransportError("connect", "connection refused")
        return TransportResponse(status=200)


def _max_in_window(times: list[datetime], window: timedelta) -> int:
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_a_twelve_hour_outage_costs_no_delivery(storage: Storage) -> None:
    """
    1,000 deliveries queued for a destination down 12 hours: none dead, few requests
    during the outage, all delivered after it at the recovery rate; a healthy destination
    meanwhile gets each of its deliveries on the first attempt, at its due time.

    PostgreSQL runs it with 200 (1,000 take it 50 s on the test machine).
    """
    backlog = 200 if "Postgres" in type(storage).__name__ else BACKLOG
    clock = FrozenClock()
    t0 = clock()
    registry = WebhookRegistry(storage, clock=clock)
    down = registry.create(ADMIN, name="down", url=DOWN_URL, categories={"guideDisplayed"})
    up = registry.create(ADMIN, name="up", url=UP_URL, categories={"npsSubmitted"})
    registry.enable(ADMIN, down.id)
    registry.enable(ADMIN, up.id)
    transport = OutageTransport(clock, down_url=DOWN_URL, until=t0 + OUTAGE)
    policy = OutagePolicy()
    dispatcher = Dispatcher(
        registry,
        transport=transport,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        outage=policy,
    )
    dispatcher.enqueue_many(
        [sample_event("guideDisplayed", unique_id=f"g{i}") for i in range(backlog)]
    )

    # 13 hours: a delivery to the healthy destination every 20 minutes, drained in between.
    up_ids: list[str] = []
    step = timedelta(minutes=20)
    for n in range(13 * 3):
        result = dispatcher.enqueue(sample_event("npsSubmitted", unique_id=f"n{n}"))
        delivery_id = result.for_webhook(up.id).delivery_id
        assert delivery_id is not None
        up_ids.append(delivery_id)
        dispatcher.drain(timeout=t0 + step * (n + 1) - clock())
    summary = dispatcher.drain(timeout=timedelta(hours=2))
    assert summary.pending == 0

    # 0 dead: every one of the 1,000 delivered, with at most 5 retries each.
    finals = dispatcher.deliveries(ADMIN, webhook_id=down.id, limit=10_000)
    assert len(finals) == backlog
    assert Counter(d.status for d in finals) == {DeliveryStatus.DELIVERED: backlog}
    assert max(d.attempts for d in finals) <= 1 + dispatcher.retry.max_retries
    assert len({s.webhook_id for s in transport.sent if s.url == DOWN_URL and s.ok}) == backlog

    # During the outage: the threshold's failures, then one probe at a time, spaced by
    # 1, 2, 4, 8 then 15 minutes. Never two probes closer than the first interval.
    during = [s.at for s in transport.sent if s.url == DOWN_URL and not s.ok]
    waits = [policy.probe_wait(n) for n in range(200)]
    elapsed, probes = policy.probe_wait(0), 0
    while elapsed < OUTAGE:
        probes += 1
        elapsed += waits[probes]
    bound = policy.threshold + probes + 1
    assert len(during) <= bound, (len(during), bound)
    after_threshold = during[policy.threshold :]
    gaps = [b - a for a, b in itertools.pairwise(after_threshold)]
    assert min(gaps) >= policy.probe_interval
    # Rotation: no delivery was probed twice.
    probed = [s.webhook_id for s in transport.sent if s.url == DOWN_URL and not s.ok]
    assert max(Counter(probed).values()) == 1

    # After recovery: all the rest arrive paced, at most recovery_rate in any second.
    recovered = sorted(s.at for s in transport.sent if s.url == DOWN_URL and s.ok)
    assert recovered[0] >= t0 + OUTAGE
    assert recovered[0] - (t0 + OUTAGE) <= policy.max_probe_interval
    # The probe and, with a store that claims the next delivery as it records an outcome
    # (SQLite, PostgreSQL), the one claimed along with the probe's outcome come on top.
    assert _max_in_window(recovered, timedelta(seconds=1)) <= policy.recovery_rate + 2
    span = recovered[-1] - recovered[0]
    spacing = policy.recovery_spacing
    assert spacing * (backlog - 3) <= span <= spacing * backlog
    paced = recovered[3:]
    assert min(b - a for a, b in itertools.pairwise(paced)) == spacing
    health = dispatcher.webhook_health(ADMIN, down.id)
    assert health.state is HealthState.HEALTHY
    assert health.last_success_at is not None
    assert timedelta(0) <= recovered[-1] - health.last_success_at < timedelta(minutes=1)

    # The healthy destination: each delivery sent once, at the moment it was due.
    up_sent = [s for s in transport.sent if s.url == UP_URL]
    assert len(up_sent) == len(up_ids)
    for delivery_id in up_ids:
        attempts = dispatcher.attempts(ADMIN, delivery_id)
        delivery = storage.get_delivery(delivery_id)
        assert delivery.status is DeliveryStatus.DELIVERED
        assert [a.number for a in attempts] == [1]
        assert attempts[0].started_at == delivery.created_at

    print(  # the figures the report quotes
        f"\n{type(storage).__name__}: {len(during)} requests to the dead destination in 12 h "
        f"(bound {bound}); recovery: first at +{recovered[0] - (t0 + OUTAGE)}, "
        f"{len(recovered)} delivered over {span}, "
        f"max {_max_in_window(recovered, timedelta(seconds=1))} in any second; "
        f"attempts used: {sorted(Counter(d.attempts for d in finals).items())}"
    )


@pytest.mark.parametrize("enabled", [False])
def test_without_the_outage_policy_every_delivery_retries_alone(
    storage: Storage, enabled: bool
) -> None:
    """
    ``OutagePolicy(enabled=False)``: today's behaviour, each delivery spends its retries.
    """
    clock = FrozenClock()
    registry = WebhookRegistry(storage, clock=clock)
    hook = registry.create(ADMIN, name="down", url=DOWN_URL, categories={"guideDisplayed"})
    registry.enable(ADMIN, hook.id)
    transport = OutageTransport(clock, down_url=DOWN_URL, until=clock() + OUTAGE)
    dispatcher = Dispatcher(
        registry,
        transport=transport,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        outage=OutagePolicy(enabled=enabled),
    )
    dispatcher.enqueue_many([sample_event("guideDisplayed", unique_id=f"g{i}") for i in range(10)])
    dispatcher.drain(timeout=timedelta(hours=1))
    assert len(transport.sent) == 10 * 4  # attempts at 0, 30 s, 5 min and 30 min
    health = dispatcher.webhook_health(ADMIN, hook.id)
    assert health.state is HealthState.FAILING
    assert health.failures == 40


def test_the_schedule_picture_is_up_to_date() -> None:
    """
    docs/howto/retry-schedule.svg is what docs/howto/retry_schedule.py draws from the defaults.
    """
    script = Path(__file__).resolve().parent.parent / "docs" / "howto" / "retry_schedule.py"
    spec = importlib.util.spec_from_file_location("retry_schedule", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OUT.read_text(encoding="utf-8") == module.draw()
