"""
:class:`EventCategory`, kept apart so the event models can use it without an import cycle.

Strictly private; import it from :mod:`pendo_webhooks.events` or the package.
"""

from __future__ import annotations

import enum


__all__ = ["EventCategory"]


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
