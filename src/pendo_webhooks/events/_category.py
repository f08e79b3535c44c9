"""
:class:`EventCategory`, kept apart so the event models can use it without an import cycle.

Strictly private; import it from :mod:`pendo_webhooks.events` or the package.
"""

from __future__ import annotations

import enum
from typing import TypeAlias


__all__ = ["AnyCategory", "EventCategory", "OperationsCategory", "to_any_category"]


class EventCategory(str, enum.Enum):
    """
    The event kinds an admin can subscribe a webhook to; values are the wire ``event`` names.

    >>> EventCategory("npsSubmitted") is EventCategory.NPS_SUBMITTED
    True
    """

    GUIDE_DISPLAYED = "guideDisplayed"
    TRACK_EVENT_RECEIVED = "trackEventReceived"
    NPS_DISPLAYED = "npsDisplayed"
    NPS_SUBMITTED = "npsSubmitted"
    POLL_DISPLAYED = "pollDisplayed"
    POLL_SUBMITTED = "pollSubmitted"
    VISITOR_CREATED = "visitorCreated"
    ACCOUNT_CREATED = "accountCreated"
    PARENT_CHILD_ACCOUNT_CREATED = "parentChildAccountCreated"

    def __str__(self) -> str:
        return self.value


class OperationsCategory(str, enum.Enum):
    """
    The library's own *operations events*, which an operations webhook subscribes to.

    Values are the wire ``type`` names (see :mod:`pendo_webhooks.alerts`); they never
    name a Pendo event, so a webhook subscribed to them receives no Pendo events.

    >>> OperationsCategory("pendo_webhooks.webhook.disabled").name
    'WEBHOOK_DISABLED'
    >>> OperationsCategory.DELIVERY_EXHAUSTED.short
    'delivery.exhausted'
    """

    #: A delivery spent its retries and went ``dead``.
    DELIVERY_EXHAUSTED = "pendo_webhooks.delivery.exhausted"
    #: A webhook was disabled (by the library; by an admin too if configured).
    WEBHOOK_DISABLED = "pendo_webhooks.webhook.disabled"
    #: A webhook's destination answers again after failing.
    WEBHOOK_RECOVERED = "pendo_webhooks.webhook.recovered"

    def __str__(self) -> str:
        return self.value

    @property
    def short(self) -> str:
        """
        The name without the ``pendo_webhooks.`` prefix (an alert's ``kind``).
        """
        return self.value.removeprefix("pendo_webhooks.")


#: What a webhook subscribes to and a delivery carries: a Pendo event or an operations event.
AnyCategory: TypeAlias = EventCategory | OperationsCategory


def to_any_category(value: AnyCategory | str) -> AnyCategory:
    """
    *value* as an :class:`EventCategory` or, failing that, an :class:`OperationsCategory`.

    >>> str(to_any_category("npsSubmitted")), str(to_any_category("delivery.exhausted"))
    ('npsSubmitted', 'pendo_webhooks.delivery.exhausted')

    The short operations names (without ``pendo_webhooks.``) are accepted too.

    Raises:
        ValueError: If *value* names neither.
    """
    if isinstance(value, EventCategory | OperationsCategory):
        return value
    try:
        return EventCategory(value)
    except ValueError:
        pass
    text = str(value)
    if not text.startswith("pendo_webhooks."):
        text = "pendo_webhooks." + text
    return OperationsCategory(text)
