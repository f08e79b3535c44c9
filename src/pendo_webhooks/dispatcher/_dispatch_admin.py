"""
The dispatcher's admin side: the "Test" button, manual redelivery, purging, and
read-only views for an admin UI.

Strictly private; the :class:`~pendo_webhooks.dispatcher.Dispatcher` holds one and
delegates to it (its public methods carry the documentation).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import attrs

from .._clock import Clock
from ..channels import format_for
from ..channels._filtering import unsupported_reason
from ..events import EventCategory, new_unique_id
from ..events._category import AnyCategory, OperationsCategory
from ..events._operations import sample_alert
from ..exceptions import ValidationError
from ..model._delivery import Attempt, Delivery, DeliveryStatus
from ..model._outcomes import TestResult
from ..model._webhook import to_subscription
from ..registry import Actor, WebhookRegistry
from ..storage import Storage
from ._attempt import host_of
from ._deliver import Deliverer
from ._dispatch_args import aware_arg, count_arg


__all__ = ["AdminReads"]

_MAX_LIMIT = 10_000
_CATEGORY_ORDER: list[AnyCategory] = [*EventCategory, *OperationsCategory]
_END_OF_TIME = datetime.max.replace(tzinfo=timezone.utc)

logger = logging.getLogger("pendo_webhooks")


@attrs.frozen(kw_only=True)
class _Sample:
    """
    The sample message a test send carries (a :class:`~pendo_webhooks.channels.Message`).
    """

    body: bytes
    event_id: str


class AdminReads:
    """
    Test sends, redelivery, purge and admin reads. Strictly private.

    Args:
        registry: Checks the actor's permissions.
        storage: The webhooks and the delivery history.
        clock: The current aware UTC time.
        deliverer: Sends a test request.
    """

    def __init__(
        self, *, registry: WebhookRegistry, storage: Storage, clock: Clock, deliverer: Deliverer
    ) -> None:
        self._registry = registry
        self._storage = storage
        self._clock = clock
        self._deliverer = deliverer

    def send_test(
        self, actor: Actor, webhook_id: str, category: EventCategory | str | None = None
    ) -> TestResult:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.send_test`.
        """
        self._registry.policy.check(actor, "test", webhook_id)
        webhook = self._storage.get_webhook(webhook_id)
        chosen = (
            min(webhook.categories, key=_CATEGORY_ORDER.index)
            if category is None
            else to_subscription(category)
        )
        channel = self._deliverer.channel(webhook)
        if isinstance(chosen, OperationsCategory):
            alert = sample_alert(chosen, self._clock())
            message = _Sample(body=alert.to_body(), event_id=alert.id)
            filters: tuple[str, ...] = ()
        else:
            # Imported here so that importing the package never builds the samples.
            from ..events._samples import sample_event  # noqa: PLC0415

            event = sample_event(chosen, unique_id=new_unique_id(), timestamp=self._clock())
            body, applied = format_for(channel, event, webhook)
            filters = tuple(str(f) for f in applied)
            if body is None:  # never sent unfiltered
                return TestResult(
                    webhook_id=webhook.id,
                    category=chosen,
                    event_id=event.unique_id,
                    accepted=False,
                    error=unsupported_reason(channel, webhook),
                    filters=filters,
                )
            message = _Sample(body=body, event_id=event.unique_id)
        sent, sent_body = self._deliverer.send(webhook, channel, [message])
        body = sent_body or message.body
        status = sent.status
        accepted = status is not None and 200 <= status <= 299
        error = None
        if not accepted:
            error = sent.describe()
            if status is not None and sent.detail:
                error += f": {sent.detail}"
        logger.info(
            "test send to webhook %s (%s) by %s: %s",
            webhook.id,
            host_of(webhook.destination),
            actor.id,
            sent.describe(),
        )
        return TestResult(
            webhook_id=webhook.id,
            category=chosen,
            event_id=message.event_id,
            accepted=accepted,
            status=status,
            latency=sent.duration,
            response_excerpt=sent.excerpt.decode("utf-8", "replace"),
            error=error,
            request_body=body,
            filters=filters,
        )

    def redeliver(self, delivery_id: str) -> Delivery:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.redeliver`.
        """
        delivery = self._storage.redeliver(delivery_id, now=self._clock())
        logger.info("delivery %s to webhook %s redelivered", delivery.id, delivery.webhook_id)
        return delivery

    def redeliver_failed(
        self, webhook_id: str, since: datetime, until: datetime | None = None
    ) -> int:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.redeliver_failed`.
        """
        start = aware_arg("since", since)
        end = _END_OF_TIME if until is None else aware_arg("until", until)
        count = self._storage.redeliver_failed(
            webhook_id, since=start, until=end, now=self._clock()
        )
        logger.info("webhook %s: %d failed deliveries redelivered", webhook_id, count)
        return count

    def purge(self, older_than: datetime) -> int:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.purge`.
        """
        return self._storage.purge(aware_arg("older_than", older_than))

    def deliveries(
        self,
        actor: Actor,
        *,
        webhook_id: str | None = None,
        status: DeliveryStatus | str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.deliveries`.
        """
        self._registry.policy.check(actor, "read", webhook_id)
        wanted = None
        if status is not None:
            try:
                wanted = DeliveryStatus(status)
            except ValueError:
                raise ValidationError("status", f"unknown status {str(status)[:50]!r}") from None
        limit = count_arg("limit", limit, most=_MAX_LIMIT)
        return self._storage.list_deliveries(webhook_id=webhook_id, status=wanted, limit=limit)

    def attempts(self, actor: Actor, delivery_id: str) -> list[Attempt]:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.attempts`.
        """
        delivery = self._storage.get_delivery(delivery_id)
        self._registry.policy.check(actor, "read", delivery.webhook_id)
        return self._storage.list_attempts(delivery_id)

    def exchange_attempts(self, actor: Actor, exchange_id: str) -> list[Attempt]:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.exchange_attempts`.
        """
        found = self._storage.list_exchange_attempts(exchange_id)
        webhook_id = self._storage.get_delivery(found[0].delivery_id).webhook_id if found else None
        self._registry.policy.check(actor, "read", webhook_id)
        return found
