"""
Alerts: a host callback and *operations webhooks*, told when something needs a person.

:class:`Alerts` is an instrumentation hook (:mod:`pendo_webhooks.instrumentation`). Give it
to the registry, and it turns three kinds of signal into an :class:`Alert`:

* ``delivery.exhausted``: a delivery spent its retries and went ``dead``;
* ``webhook.disabled``: a webhook was disabled by the library (a ``410 Gone``, an
  outage that lasted too long); by an admin too with ``admin_disables=True`` (off by
  default: an admin who disables a webhook knows it already);
* ``webhook.recovered``: a failing webhook's destination answers again.

Each alert is logged (a warning on the ``pendo_webhooks`` logger), handed to the host's
*callback* once (a callback that raises is logged and ignored: it never stops a
delivery), and stored as a delivery to every enabled *operations webhook*: a URL webhook
an admin registered for the library's own events (categories
``pendo_webhooks.delivery.exhausted``, ``pendo_webhooks.webhook.disabled``,
``pendo_webhooks.webhook.recovered``; ``pendo-webhooks webhooks create --operations``).
Those deliveries are ordinary ones: in the outbox, signed like any URL webhook's,
retried by the same policy, through the address guard, listed by ``deliveries list``.
Their JSON body is ``{"type": ..., "timestamp": ..., "data": {...}}`` (see the
wire-format reference and :func:`pendo_webhooks.schemas.operations_schema`).

A dead delivery *to an operations webhook* is logged and given to the callback, never
sent to an operations webhook: no alert loop.

>>> from datetime import timedelta
>>> from pendo_webhooks.alerts import OPERATIONS_CATEGORIES, Alerts
>>> from pendo_webhooks.dispatcher import Dispatcher
>>> from pendo_webhooks.registry import Actor, WebhookRegistry
>>> from pendo_webhooks.retry import RetryPolicy
>>> from pendo_webhooks.storage import InMemoryStorage
>>> from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
>>> storage, clock, paged = InMemoryStorage(), FrozenClock(), []
>>> alerts = Alerts(storage, callback=paged.append, clock=clock)
>>> registry = WebhookRegistry(storage, hooks=[alerts], clock=clock)
>>> admin = Actor("alice", is_admin=True)
>>> nps = registry.create(admin, name="NPS", url="https://hooks.example.com/nps",
...                       categories=["npsSubmitted"], secret="s3cret")
>>> ops = registry.create(admin, name="Ops", url="https://ops.example.com/alerts",
...                       categories=OPERATIONS_CATEGORIES, secret="0ps-s3cret")
>>> for hook in (nps, ops):
...     _ = registry.enable(admin, hook.id)
>>> transport = RecordingTransport([503, 200])  # the NPS receiver is down, not ops'
>>> with Dispatcher(registry, transport=transport, clock=clock,
...                 retry=RetryPolicy(max_retries=0)) as dispatcher:
...     _ = dispatcher.dispatch(sample_event("npsSubmitted"))
...     _ = dispatcher.run_due()
>>> [(a.kind.short, a.webhook_id == nps.id) for a in paged]
[('delivery.exhausted', True)]
>>> transport.requests[-1].url, transport.requests[-1].headers["webhook-id"] == paged[0].id
('https://ops.example.com/alerts', True)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from .._clock import Clock, utcnow
from ..events._category import OperationsCategory
from ..events._ids import sorted_id
from ..events._operations import Alert, sample_alert
from ..exceptions import ConfigurationError, PendoWebhooksError, ValidationError
from ..instrumentation import DeliveryChanged, DeliveryState, Signal, WebhookChanged, WebhookState
from ..model._audit import AuditQuery
from ..model._delivery import Delivery, DeliveryStatus
from ..model._webhook import Webhook
from ..registry._policy import SYSTEM_ACTOR_ID
from ..storage import Storage


__all__ = [
    "DEFAULT_SWEEP_LIMIT",
    "OPERATIONS_CATEGORIES",
    "Alert",
    "AlertCallback",
    "Alerts",
    "OperationsCategory",
    "sample_alert",
]

logger = logging.getLogger("pendo_webhooks")

#: Every operations event: what ``webhooks create --operations`` subscribes to.
OPERATIONS_CATEGORIES: tuple[OperationsCategory, ...] = tuple(OperationsCategory)

#: The most dead deliveries and disable entries :meth:`Alerts.sweep` looks at, each.
DEFAULT_SWEEP_LIMIT = 1000
_MAX_LIMIT = 10_000

#: What the host's callback is: called with each :class:`Alert`, once.
AlertCallback = Callable[[Alert], object]


def _name(hook: Webhook | None) -> str | None:
    return None if hook is None else hook.name


class Alerts:
    """
    The alerting hook: signals in, :class:`Alert` values out to a callback, the log and
    operations webhooks.

    Args:
        storage: The store the registry and dispatcher use (the alert deliveries go
            into its outbox).
        callback: Called once with each alert, in the thread that made the change;
            keep it quick (a queue put, a log line). If it raises, the exception type
            is logged and the alert still goes to the operations webhooks.
        operations: Store alerts as deliveries to the enabled operations webhooks
            (``True``); ``False`` keeps them to the callback and the log.
        admin_disables: Alert when an *admin* disables a webhook, too; by default
            only the library's own disables (``by == "system"``) are alerts.
        clock: The current aware UTC time.
        ids: Makes delivery ids from the prefix ``"dlv"``.

    Raises:
        ConfigurationError: If *callback* is given and is not callable.

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> Alerts(InMemoryStorage(), callback=print, admin_disables=True)
    Alerts(operations=True, admin_disables=True)
    """

    def __init__(
        self,
        storage: Storage,
        *,
        callback: AlertCallback | None = None,
        operations: bool = True,
        admin_disables: bool = False,
        clock: Clock = utcnow,
        ids: Callable[[str], str] = sorted_id,
    ) -> None:
        if callback is not None and not callable(callback):
            msg = f"callback: must be callable, not {type(callback).__name__}"
            raise ConfigurationError(msg)
        self.storage = storage
        self.callback = callback
        self.operations = bool(operations)
        self.admin_disables = bool(admin_disables)
        self._clock = clock
        self._ids = ids

    def __repr__(self) -> str:
        return f"Alerts(operations={self.operations!r}, admin_disables={self.admin_disables!r})"

    # -- the hook ------------------------------------------------------------------------

    def __call__(self, signal: Signal, /) -> None:
        """
        Turn *signal* into an alert if it is one; tell it. Never raises.
        """
        try:
            alert = self.alert_for(signal)
            if alert is not None:
                self.tell(alert)
        except Exception as exc:  # noqa: BLE001 - an alert never stops a delivery
            # The type only: the text might quote what was being handled.
            logger.warning(
                "alerts: %s while handling %s; ignored", type(exc).__name__, type(signal).__name__
            )

    def alert_for(self, signal: Signal) -> Alert | None:
        """
        The alert *signal* makes, or ``None`` if it is not one.

        >>> from datetime import datetime, timezone
        >>> from pendo_webhooks.instrumentation import WebhookChanged, WebhookState
        >>> from pendo_webhooks.storage import InMemoryStorage
        >>> alerts = Alerts(InMemoryStorage())
        >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> alerts.alert_for(WebhookChanged(webhook_id="wh_1", state=WebhookState.DISABLED,
        ...                                 by="alice", at=t)) is None
        True
        >>> alerts.alert_for(WebhookChanged(webhook_id="wh_1", state=WebhookState.RECOVERED,
        ...                                 by="system", at=t)).kind.short
        'webhook.recovered'
        """
        if isinstance(signal, DeliveryChanged):
            if signal.state is DeliveryState.DEAD:
                return self._exhausted(signal)
            return None
        if not isinstance(signal, WebhookChanged):
            return None
        if signal.state is WebhookState.DISABLED:
            if signal.by != SYSTEM_ACTOR_ID and not self.admin_disables:
                return None
            kind = OperationsCategory.WEBHOOK_DISABLED
        elif signal.state is WebhookState.RECOVERED:
            kind = OperationsCategory.WEBHOOK_RECOVERED
        else:
            return None
        hook = self._webhook(signal.webhook_id)
        return Alert(
            kind=kind,
            webhook_id=signal.webhook_id,
            webhook_name=_name(hook),
            at=signal.at,
            reason=signal.reason,
            by=signal.by if kind is OperationsCategory.WEBHOOK_DISABLED else None,
            operations=hook is not None and hook.is_operations,
        )

    def tell(self, alert: Alert) -> int:
        """
        Log *alert*, hand it to the callback, store it for the operations webhooks.

        Returns how many operations deliveries were stored (0 for an alert about an
        operations delivery, or when there is no operations webhook).
        """
        logger.warning(
            "alert %s: webhook %s%s%s",
            alert.kind.short,
            alert.webhook_id,
            f", delivery {alert.delivery_id}" if alert.delivery_id else "",
            f": {alert.reason}" if alert.reason else "",
        )
        if self.callback is not None:
            try:
                self.callback(alert)
            except Exception as exc:  # noqa: BLE001 - a broken callback never stops a delivery
                logger.warning("alert callback raised %s; ignored", type(exc).__name__)
        return self.enqueue(alert)

    def enqueue(self, alert: Alert) -> int:
        """
        Store *alert* as a delivery to each enabled operations webhook subscribed to its kind.

        Only webhooks created before the alert happened get it. An alert stored before
        (same :attr:`Alert.id`) is not stored again. Returns how many were stored.
        """
        if alert.operations or not self.operations:
            return 0
        return self._enqueue(alert, self._operations_webhooks())

    def _operations_webhooks(self) -> list[Webhook]:
        return [w for w in self.storage.list_webhooks() if w.enabled and w.is_operations]

    def _enqueue(self, alert: Alert, webhooks: list[Webhook]) -> int:
        targets = [w for w in webhooks if alert.kind in w.categories and w.created_at <= alert.at]
        if alert.operations or not targets:
            return 0
        now = self._clock()
        body = alert.to_body()
        deliveries = [
            Delivery(
                id=self._ids("dlv"),
                webhook_id=w.id,
                event_id=alert.id,
                category=alert.kind,
                body=body,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for w in targets
        ]
        skipped = self.storage.enqueue_deliveries(deliveries)
        return sum(why is None for why in skipped)

    # -- crash recovery ------------------------------------------------------------------

    def sweep(self, since: datetime, *, limit: int = DEFAULT_SWEEP_LIMIT) -> int:
        """
        Store the alerts of stored changes since *since* that a crash may have lost.

        The hook runs after a change is stored; a process that dies in between loses the
        alert. This looks at what the store holds (the *limit* most recently stored
        ``dead`` deliveries, and the audit log's disable entries at or after *since*),
        and enqueues each one's alert: one already stored is skipped, by its id. Run it
        when a worker starts (``pendo-webhooks worker`` does, over the last day). The
        callback is not called, and ``webhook.recovered`` is not swept (nothing stored
        says it was told). Returns how many operations deliveries were stored.

        Raises:
            ValidationError: If *since* is not an aware datetime, or *limit* is not an
                int from 1 to 10,000.

        >>> from datetime import datetime, timezone
        >>> from pendo_webhooks.storage import InMemoryStorage
        >>> Alerts(InMemoryStorage()).sweep(datetime(2026, 1, 1, tzinfo=timezone.utc))
        0
        """
        if not isinstance(since, datetime) or since.utcoffset() is None:
            raise ValidationError("since", "must be a timezone-aware datetime")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
            raise ValidationError("limit", f"must be an int from 1 to {_MAX_LIMIT}")
        webhooks = self._operations_webhooks() if self.operations else []
        if not webhooks:
            return 0
        found: list[Alert] = []
        for delivery in self.storage.list_deliveries(status=DeliveryStatus.DEAD, limit=limit):
            if delivery.finished_at is not None and delivery.finished_at >= since:
                found.append(self._exhausted_of(delivery, delivery.finished_at, None))
        query = AuditQuery(action="disable", since=since, limit=limit)
        for entry in self.storage.audit_entries(query):
            if entry.actor_id != SYSTEM_ACTOR_ID and not self.admin_disables:
                continue
            hook = self._webhook(entry.webhook_id)
            reason = entry.changes.get("disabled_reason", (None, None))[1]
            found.append(
                Alert(
                    kind=OperationsCategory.WEBHOOK_DISABLED,
                    webhook_id=entry.webhook_id,
                    webhook_name=_name(hook),
                    at=entry.at,
                    reason=reason if isinstance(reason, str) else None,
                    by=entry.actor_id,
                    operations=hook is not None and hook.is_operations,
                )
            )
        return sum(self._enqueue(alert, webhooks) for alert in found)

    # -- machinery -----------------------------------------------------------------------

    def _webhook(self, webhook_id: str) -> Webhook | None:
        try:
            return self.storage.get_webhook(webhook_id)
        except PendoWebhooksError:
            return None  # deleted since: the alert goes out without its name

    def _exhausted(self, signal: DeliveryChanged) -> Alert:
        try:
            delivery = self.storage.get_delivery(signal.delivery_id)
        except PendoWebhooksError:
            # Unreadable: tell the callback and the log, but send nothing (it might be
            # an operations delivery, and a loop is worse than a missed page).
            return Alert(
                kind=OperationsCategory.DELIVERY_EXHAUSTED,
                webhook_id=signal.webhook_id,
                delivery_id=signal.delivery_id,
                attempts=signal.attempt,
                reason=signal.reason,
                at=signal.at,
                operations=True,
            )
        return self._exhausted_of(delivery, signal.at, signal.reason)

    def _exhausted_of(self, delivery: Delivery, at: datetime, reason: str | None) -> Alert:
        hook = self._webhook(delivery.webhook_id)
        return Alert(
            kind=OperationsCategory.DELIVERY_EXHAUSTED,
            webhook_id=delivery.webhook_id,
            webhook_name=_name(hook),
            delivery_id=delivery.id,
            event_id=delivery.event_id,
            event=delivery.category.value,
            attempts=delivery.attempts,
            reason=delivery.last_error or reason,
            at=at,
            operations=isinstance(delivery.category, OperationsCategory)
            or (hook is not None and hook.is_operations),
        )
