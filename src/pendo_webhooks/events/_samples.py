"""
:func:`sample_event` and :func:`sample_events`: a realistic, deterministic event of each type.

Strictly private; import these names from :mod:`pendo_webhooks.testing`. They live beside
the events (not in ``testing``) because the dispatcher's "Test" button sends them too, and
the engine never imports the testing package.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal, overload

import attrs

from ..exceptions import UnknownEventType, ValidationError
from ._category import EventCategory
from ._models import (
    AccountCreated,
    Event,
    GuideDisplayed,
    NpsDisplayed,
    NpsSubmitted,
    ParentChildAccountCreated,
    PollDisplayed,
    PollSubmitted,
    TrackEventReceived,
    VisitorCreated,
)
from ._values import (
    App,
    GuideProperties,
    GuideStep,
    GuideUser,
    NpsResponse,
    PollResponse,
    Subscription,
)
from ._wire import EVENT_CLASSES


__all__ = ["sample_event", "sample_events"]

# One fixed uniqueId per category; guideDisplayed's is the one in Pendo's published sample.
_UNIQUE_IDS = {
    EventCategory.GUIDE_DISPLAYED: "f9610795860d89fe29491846fe297bcc922e460b",
    EventCategory.TRACK_EVENT_RECEIVED: "20c447a4e266316daf21e68efcb97c50d5eecf94",
    EventCategory.NPS_DISPLAYED: "11b11cdb27f19484d9cf43c14a800f9a13b8cab5",
    EventCategory.NPS_SUBMITTED: "5801148fbe546938e04eb2d8aecb7e989ff6b12b",
    EventCategory.POLL_DISPLAYED: "b696566f58638f4b9f9f90a953d701ea8a26852b",
    EventCategory.POLL_SUBMITTED: "6146141ca9a408026b317fea1746cd60d72dadd6",
    EventCategory.VISITOR_CREATED: "ce3064d988efebb53e90c6cebeb09b143220f83d",
    EventCategory.ACCOUNT_CREATED: "7370eb2f73d93a4ed139bcbc93f9291fc01f94d9",
    EventCategory.PARENT_CHILD_ACCOUNT_CREATED: "e1eadfbb6dde4cb5145d6d2523ec61294212dc61",
}

_PENDO_USER = GuideUser(username="pendo-user@example.com")


def _ms(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds // 1000, timezone.utc).replace(
        microsecond=milliseconds % 1000 * 1000
    )


# The values of Pendo's published guideDisplayed sample (docs/reference/wire-format.md).
_ENVELOPE: dict[str, Any] = {
    "app": App(id=-323232, name="test_application", platform="web"),
    "account_id": "Webhook Account",
    "subscription": Subscription(id=4802463602049999, name="test_application"),
    "user_agent": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36"
        " (KHTML, like Gecko) Chrome/91.0.4472.164 Safari/537.36"
    ),
    "timestamp": datetime(2021, 7, 20, 17, 57, 56, tzinfo=timezone.utc),
    "visitor_id": "Webhook Visitor",
}

_GUIDE: dict[str, Any] = {
    "guide_id": "Kg92trd4yOzpDb2inI5eTOdcR0U",
    "guide_properties": GuideProperties(
        created_at=_ms(1615411012615),
        created_by_user=_PENDO_USER,
        id="Kg92trd4yOzpDb2inI5eTOdcR0U",
        last_updated_at=_ms(1618322253073),
        last_updated_by_user=_PENDO_USER,
        name="Poll 1 - Test",
        steps=(
            GuideStep(
                id="UgG7AtWEXNuvHBBcTqSQ8NxGvAU",
                last_updated_at=_ms(1618322251476),
                reset_at=_ms(1617633741117),
                type="building-block",
            ),
        ),
    ),
    "guide_step_id": "UgG7AtWEXNuvHBBcTqSQ8NxGvAU",
    "language": "en-US",
}

_PROPERTIES: dict[EventCategory, dict[str, Any]] = {
    EventCategory.GUIDE_DISPLAYED: _GUIDE,
    EventCategory.TRACK_EVENT_RECEIVED: {
        "event_properties": {"fromTier": "basic", "toTier": "pro"},
        "name": "Account Upgraded",
        "source": "web",
    },
    EventCategory.NPS_DISPLAYED: _GUIDE,
    EventCategory.NPS_SUBMITTED: {
        **_GUIDE,
        "nps": NpsResponse(rating=9, reason="Keep up the great work!", source="web"),
    },
    EventCategory.POLL_DISPLAYED: _GUIDE,
    EventCategory.POLL_SUBMITTED: {
        **_GUIDE,
        "poll": PollResponse(
            id="x8kzr2ibfgq", question="How useful is this page?", response="Very useful"
        ),
    },
    EventCategory.VISITOR_CREATED: {
        "browser_name": "Chrome",
        "browser_version": "91.0.4472",
        "sample_group": 17,
    },
    EventCategory.ACCOUNT_CREATED: {},
    EventCategory.PARENT_CHILD_ACCOUNT_CREATED: {
        "parent_account_id": "Webhook Parent Account",
        "child_account_id": "Webhook Account",
    },
}


# One overload per category, so that ``sample_event("npsSubmitted").nps`` type-checks.
@overload
def sample_event(
    category: Literal[EventCategory.GUIDE_DISPLAYED, "guideDisplayed"], **overrides: Any
) -> GuideDisplayed: ...
@overload
def sample_event(
    category: Literal[EventCategory.TRACK_EVENT_RECEIVED, "trackEventReceived"], **overrides: Any
) -> TrackEventReceived: ...
@overload
def sample_event(
    category: Literal[EventCategory.NPS_DISPLAYED, "npsDisplayed"], **overrides: Any
) -> NpsDisplayed: ...
@overload
def sample_event(
    category: Literal[EventCategory.NPS_SUBMITTED, "npsSubmitted"], **overrides: Any
) -> NpsSubmitted: ...
@overload
def sample_event(
    category: Literal[EventCategory.POLL_DISPLAYED, "pollDisplayed"], **overrides: Any
) -> PollDisplayed: ...
@overload
def sample_event(
    category: Literal[EventCategory.POLL_SUBMITTED, "pollSubmitted"], **overrides: Any
) -> PollSubmitted: ...
@overload
def sample_event(
    category: Literal[EventCategory.VISITOR_CREATED, "visitorCreated"], **overrides: Any
) -> VisitorCreated: ...
@overload
def sample_event(
    category: Literal[EventCategory.ACCOUNT_CREATED, "accountCreated"], **overrides: Any
) -> AccountCreated: ...
@overload
def sample_event(
    category: Literal[EventCategory.PARENT_CHILD_ACCOUNT_CREATED, "parentChildAccountCreated"],
    **overrides: Any,
) -> ParentChildAccountCreated: ...
@overload
def sample_event(category: EventCategory | str, **overrides: Any) -> Event: ...


def sample_event(category: EventCategory | str, **overrides: Any) -> Event:
    """
    A realistic, always identical event of *category*, with *overrides* applied.

    The values are those of Pendo's published samples (the
    [wire format](../reference/wire-format.md) page shows each one's body): the
    ``guideDisplayed`` sample serializes to Pendo's 917 bytes exactly. Each category has its
    own fixed ``unique_id``; host metadata is ``None``. This is what the admin's "Test"
    button sends, and what receivers can use in their unit tests.

    Args:
        category: An :class:`EventCategory` or its wire name.
        overrides: Attribute values by Python name; they go through the constructor, so
            they are checked like any other value. For ``parentChildAccountCreated``,
            overriding either account side also re-derives ``account_id`` unless it is given.

    Raises:
        UnknownEventType: If *category* names no event type.
        ValidationError: If an override names no attribute, or has a bad value.

    >>> sample_event("npsSubmitted").nps.rating
    9
    >>> sample_event("visitorCreated", sample_group=3).sample_group
    3
    >>> sample_event("npsSubmitted", nps=None)
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.ValidationError: nps: must be an NpsResponse, not NoneType
    """
    try:
        category = EventCategory(category)
    except ValueError:
        raise UnknownEventType(category) from None
    cls = EVENT_CLASSES[category]
    names = {a.name for a in attrs.fields(cls)}
    for name in overrides:
        if name not in names:
            raise ValidationError(name, f"{cls.__name__} has no such attribute")
    values = {**_ENVELOPE, "unique_id": _UNIQUE_IDS[category], **_PROPERTIES[category]}
    if category is EventCategory.PARENT_CHILD_ACCOUNT_CREATED:
        del values["account_id"]  # derived from the two sides unless overridden
    return cls(**{**values, **overrides})


def sample_events() -> list[Event]:
    """
    One :func:`sample_event` of each category, in :class:`EventCategory` order.

    >>> [str(e.category) for e in sample_events()][:2]
    ['guideDisplayed', 'trackEventReceived']
    """
    return [sample_event(category) for category in EventCategory]
