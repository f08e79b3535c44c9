"""
The admin part of :class:`~pendo_webhooks.dispatcher.Dispatcher`: the "Test" button,
manual redelivery, purging, and read-only views for an admin UI.

Strictly private; a base class of the Dispatcher.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ._attempt import Exchange, host_of
from ._clock import Clock
from ._delivery import Attempt, Delivery, DeliveryStatus
from ._dispatch_args import aware_arg, count_arg
from ._outcomes import TestResult
from ._webhook import Webhook, WebhookKind, to_category
from .events import EventCategory, new_unique_id, to_wire
from .exceptions import ValidationError
from .formatters import SegmentFormatter
from .registry import Actor, WebhookRegistry
from .storage import Storage


__all__ = ["AdminMixin"]

_MAX_LIMIT = 10_000
_CATEGORY_ORDER = list(EventCategory)
_END_OF_TIME = datetime.max.replace(tzinfo=timezone.utc)

logger = logging.getLogger("pendo_webhooks")


class AdminMixin:
    """
    Test sends, redelivery, purge and admin reads. Strictly private: a base of the Dispatcher.
    """

    registry: WebhookRegistry
    storage: Storage
    clock: Clock

    if TYPE_CHECKING:

        def _send_url(self, webhook: Webhook, body: bytes, event_id: str) -> Exchange: ...

        def _send_segment(
            self, webhook: Webhook, messages: Sequence[bytes]
        ) -> tuple[Exchange, bytes]: ...

    def send_test(
        self, actor: Actor, webhook_id: str, category: EventCategory | str | None = None
    ) -> TestResult:
        """
        Send a sample event once, the admin's "Test" button; nothing is stored or retried.

        Works while the webhook is still disabled. The sample
        (:func:`~pendo_webhooks.testing.sample_event`) is of *category*, or of the
        webhook's first category in :class:`EventCategory` order, with a fresh
        ``uniqueId`` and the current time; it is signed like a real attempt. A Segment
        webhook gets it as one ``track`` message in a batch of one, with its write key.

        Raises:
            PermissionDenied: If *actor* may not test webhooks (action ``"test"``).
            UnknownWebhook: If no webhook has this id.
            ValidationError: If *category* is unknown.
        """
        self.registry.policy.check(actor, "test", webhook_id)
        webhook = self.storage.get_webhook(webhook_id)
        chosen = (
            min(webhook.categories, key=_CATEGORY_ORDER.index)
            if category is None
            else to_category(category)
        )
        # Imported here so that importing the package never imports the testing module.
        from .testing import sample_event  # noqa: PLC0415

        event = sample_event(chosen, unique_id=new_unique_id(), timestamp=self.clock())
        if webhook.kind is WebhookKind.URL:
            body = to_wire(event)
            sent = self._send_url(webhook, body, event.unique_id)
        else:
            sent, body = self._send_segment(webhook, [SegmentFormatter().format(event)])
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
            event_id=event.unique_id,
            accepted=accepted,
            status=status,
            latency=sent.duration,
            response_excerpt=sent.excerpt.decode("utf-8", "replace"),
            error=error,
            request_body=body,
        )

    def redeliver(self, delivery_id: str) -> Delivery:
        """
        Send a finished delivery again: same body bytes, same ``webhook-id``.

        It becomes pending and due now, with a fresh retry budget (attempt numbers go
        on counting); the next :meth:`run_due` (or worker) sends it. A cancelled
        delivery whose webhook is still disabled is cancelled again at that point.

        Raises:
            UnknownDelivery: If no delivery has this id.
            ConflictError: If it is still pending, or was purged.
        """
        delivery = self.storage.redeliver(delivery_id, now=self.clock())
        logger.info("delivery %s to webhook %s redelivered", delivery.id, delivery.webhook_id)
        return delivery

    def redeliver_failed(
        self, webhook_id: str, since: datetime, until: datetime | None = None
    ) -> int:
        """
        Redeliver (as :meth:`redeliver`) a webhook's failed and dead deliveries.

        Only those created in ``[since, until)`` (*until* open-ended by default) whose
        body was not purged. Returns how many.

        Raises:
            ValidationError: If *since* or *until* is not an aware datetime.
        """
        start = aware_arg("since", since)
        end = _END_OF_TIME if until is None else aware_arg("until", until)
        count = self.storage.redeliver_failed(webhook_id, since=start, until=end, now=self.clock())
        logger.info("webhook %s: %d failed deliveries redelivered", webhook_id, count)
        return count

    def purge(self, older_than: datetime) -> int:
        """
        Empty the bodies and response excerpts of deliveries finished before *older_than*.

        Their metadata stays; purged deliveries cannot be redelivered. Returns how many.

        Raises:
            ValidationError: If *older_than* is not an aware datetime.
        """
        return self.storage.purge(aware_arg("older_than", older_than))

    def deliveries(
        self,
        actor: Actor,
        *,
        webhook_id: str | None = None,
        status: DeliveryStatus | str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """
        Return up to *limit* deliveries, newest first, for an admin UI; filters must match.

        Raises:
            PermissionDenied: If *actor* may not read webhooks.
            ValidationError: For an unknown *status* or a *limit* outside 1 to 10,000.
        """
        self.registry.policy.check(actor, "read", webhook_id)
        wanted = None
        if status is not None:
            try:
                wanted = DeliveryStatus(status)
            except ValueError:
                raise ValidationError("status", f"unknown status {str(status)[:50]!r}") from None
        limit = count_arg("limit", limit, most=_MAX_LIMIT)
        return self.storage.list_deliveries(webhook_id=webhook_id, status=wanted, limit=limit)

    def attempts(self, actor: Actor, delivery_id: str) -> list[Attempt]:
        """
        Return a delivery's attempts, first first, for an admin UI.

        Raises:
            UnknownDelivery: If no delivery has this id.
            PermissionDenied: If *actor* may not read its webhook.
        """
        delivery = self.storage.get_delivery(delivery_id)
        self.registry.policy.check(actor, "read", delivery.webhook_id)
        return self.storage.list_attempts(delivery_id)

    def exchange_attempts(self, actor: Actor, exchange_id: str) -> list[Attempt]:
        """
        Return the attempts of one HTTP exchange (an ``Attempt.exchange_id``), by delivery id.

        What else went out in the same request: one attempt for a URL delivery, one per
        delivery of a Segment batch, each with its own verdict. Empty for an unknown id.

        Raises:
            PermissionDenied: If *actor* may not read the exchange's webhook.
        """
        found = self.storage.list_exchange_attempts(exchange_id)
        webhook_id = self.storage.get_delivery(found[0].delivery_id).webhook_id if found else None
        self.registry.policy.check(actor, "read", webhook_id)
        return found
