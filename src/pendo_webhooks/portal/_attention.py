"""
What on the list page needs a person: the "Needs attention" section.

Webhooks the library disabled (a ``410 Gone``, an outage that lasted too long), enabled
webhooks whose destination is failing or in an outage, and dead deliveries of the last
seven days. Read cheaply: each webhook's health once (the list shows it anyway; the
health store has no bulk read), straight from the store, and the newest dead deliveries
in one read, counted by webhook.

Strictly private.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import cast

import attrs

from ..dispatcher import Delivery, Dispatcher, HealthState, WebhookHealth
from ..registry import SYSTEM_ACTOR_ID, Actor, Webhook
from ..storage.protocols import HealthStore, capabilities


__all__ = ["DEAD_SCAN", "WINDOW", "Attention", "dead_counts", "needs_attention", "read_health"]

#: How far back "Needs attention" counts dead deliveries, and "Redeliver failed" reaches.
WINDOW = timedelta(days=7)
#: How many of the newest dead deliveries the list page reads, in one query. With more
#: than that in the window, the counts it shows are lower bounds (and say so).
DEAD_SCAN = 1000


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

    One read a webhook, straight from the store: ``Dispatcher.webhook_health`` would read
    each webhook again first, which the list has just read. The policy is asked for each,
    as that method does.
    """
    storage = dispatcher.storage
    if not capabilities(storage).webhook_health:
        return None
    store = cast(HealthStore, storage)
    policy = dispatcher.registry.policy
    found = {}
    for webhook in webhooks:
        policy.check(actor, "read", webhook.id)
        stored = store.get_webhook_health(webhook.id)
        found[webhook.id] = WebhookHealth(webhook_id=webhook.id) if stored is None else stored
    return found


def dead_counts(deliveries: Sequence[Delivery], since: datetime) -> Counter[str]:
    """
    How many of the dead *deliveries* went dead at or after *since*, by webhook id.

    A delivery counts by when it finished (went dead), or, without that, when it was made.
    """
    counts: Counter[str] = Counter()
    for delivery in deliveries:
        moment = delivery.finished_at or delivery.created_at
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
