"""
What on the list page needs a person: the "Needs attention" section.

Webhooks the library disabled (a ``410 Gone``, an outage that lasted too long), enabled
webhooks whose destination is failing or in an outage, and dead deliveries of the last
seven days. Read in a fixed handful of queries, straight from the store: every listed
webhook's health in one read (the list shows it anyway) and the dead deliveries counted by
webhook in one query, without their bodies. A store without those optional reads
(:class:`~pendo_webhooks.storage.protocols.BulkHealthStore`,
:class:`~pendo_webhooks.storage.protocols.CountingDeliveryLog`) is read as before: each
webhook's health one by one, and the newest dead deliveries (at most ``DEAD_SCAN``) in one
read, counted here.

Strictly private.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import cast

import attrs

from ..dispatcher import Delivery, DeliveryStatus, Dispatcher, HealthState, WebhookHealth
from ..registry import SYSTEM_ACTOR_ID, Actor, Webhook
from ..storage.protocols import BulkHealthStore, CountingDeliveryLog, HealthStore, capabilities


__all__ = [
    "DEAD_SCAN",
    "WINDOW",
    "Attention",
    "DeadCounts",
    "dead_counts",
    "needs_attention",
    "read_dead_counts",
    "read_health",
]

#: How far back "Needs attention" counts dead deliveries (by when they went dead), and
#: "Redeliver failed" reaches (by when they were created: a delivery retried for days can
#: count in the one and not be sent by the other; each page's text says which it means).
WINDOW = timedelta(days=7)
#: How many of the newest dead deliveries the list page reads, in one query, from a store
#: that cannot count them. With more than that in the window, the counts it shows are lower
#: bounds (and say so).
DEAD_SCAN = 1000


@attrs.frozen
class DeadCounts:
    """
    Each webhook's dead deliveries of the window, and whether those are lower bounds.

    Attributes:
        by_webhook: How many, by webhook id (a webhook without any is left out).
        capped: How many dead deliveries were read, if that was all that may be (the store
            cannot count, and the scan was full): the counts are lower bounds; else ``None``.
    """

    by_webhook: Mapping[str, int]
    capped: int | None = None


@attrs.frozen
class Attention:
    """
    One webhook that needs a person, and why. Strictly private.

    Attributes:
        webhook: The webhook.
        health: Its health, if it is failing or in an outage and worth showing (the
            webhook is enabled, or the library disabled it); else ``None``.
        dead: Its deliveries that went dead in the last seven days.
    """

    webhook: Webhook
    health: WebhookHealth | None
    dead: int

    @property
    def disabled_by_library(self) -> bool:
        """
        Whether the library, not an admin, disabled the webhook.
        """
        return not self.webhook.enabled and self.webhook.disabled_by == SYSTEM_ACTOR_ID

    @property
    def rank(self) -> int:
        """
        How urgent: disabled by the library first, then outages, failures, dead deliveries.
        """
        if self.disabled_by_library:
            return 0
        if self.health is not None:
            return 1 if self.health.state is HealthState.OUTAGE else 2
        return 3


def read_health(
    dispatcher: Dispatcher, actor: Actor, webhooks: Iterable[Webhook]
) -> dict[str, WebhookHealth] | None:
    """
    Each webhook's health by id, or ``None`` if the store keeps none.

    Straight from the store (``Dispatcher.webhook_health`` would read each webhook again
    first, which the list has just read): one read for all of them from a
    :class:`~pendo_webhooks.storage.protocols.BulkHealthStore`, else one a webhook. The
    policy is asked for each, as that method does.
    """
    storage = dispatcher.storage
    found = capabilities(storage)
    if not found.webhook_health:
        return None
    policy = dispatcher.registry.policy
    listed = list(webhooks)
    for webhook in listed:
        policy.check(actor, "read", webhook.id)
    if found.bulk_health:
        stored = cast(BulkHealthStore, storage).health_of([w.id for w in listed])
    else:
        store = cast(HealthStore, storage)
        stored = {}
        for webhook in listed:
            health = store.get_webhook_health(webhook.id)
            if health is not None:
                stored[webhook.id] = health
    return {
        w.id: stored[w.id] if w.id in stored else WebhookHealth(webhook_id=w.id) for w in listed
    }


def read_dead_counts(dispatcher: Dispatcher, actor: Actor, since: datetime) -> DeadCounts:
    """
    How many deliveries went dead at or after *since*, by webhook id.

    One count from a :class:`~pendo_webhooks.storage.protocols.CountingDeliveryLog`, exact;
    else the newest ``DEAD_SCAN`` dead deliveries, read in one query and counted here (lower
    bounds if the scan was full). The policy is asked, as ``Dispatcher.deliveries`` does.
    """
    storage = dispatcher.storage
    if capabilities(storage).delivery_counts:
        dispatcher.registry.policy.check(actor, "read", None)
        counter = cast(CountingDeliveryLog, storage)
        return DeadCounts(counter.count_by_webhook(status=DeliveryStatus.DEAD, since=since))
    dead = dispatcher.deliveries(actor, status=DeliveryStatus.DEAD, limit=DEAD_SCAN)
    return DeadCounts(
        dead_counts(dead, since), capped=len(dead) if len(dead) >= DEAD_SCAN else None
    )


def dead_counts(deliveries: Sequence[Delivery], since: datetime) -> Counter[str]:
    """
    How many of the dead *deliveries* went dead at or after *since*, by webhook id.

    A delivery counts by when it finished (went dead), or, without that, when it last
    changed: as :meth:`~pendo_webhooks.storage.protocols.CountingDeliveryLog.count_by_webhook`.
    """
    counts: Counter[str] = Counter()
    for delivery in deliveries:
        moment = delivery.finished_at or delivery.updated_at
        if moment >= since:
            counts[delivery.webhook_id] += 1
    return counts


def needs_attention(
    webhooks: Iterable[Webhook],
    health: Mapping[str, WebhookHealth] | None,
    dead: Mapping[str, int],
) -> list[Attention]:
    """
    The webhooks that need attention, most urgent first (in list order within a rank).
    """
    found = []
    for webhook in webhooks:
        record = None if health is None else health.get(webhook.id)
        if record is not None and (
            record.state is HealthState.HEALTHY
            or not (webhook.enabled or webhook.disabled_by == SYSTEM_ACTOR_ID)
        ):
            record = None  # healthy, or an admin disabled it: its health is history
        item = Attention(webhook=webhook, health=record, dead=dead.get(webhook.id, 0))
        if item.disabled_by_library or item.health is not None or item.dead:
            found.append(item)
    found.sort(key=lambda item: item.rank)
    return found
