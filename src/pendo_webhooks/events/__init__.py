"""
Pendo events: one frozen attrs class per event type, and their exact wire format.

Every event class is frozen and keyword-only, and has a ``category``
(:class:`EventCategory`, a class variable) plus the *envelope* attributes:

* ``app`` (:class:`App`), ``account_id`` (non-empty), ``subscription`` (:class:`Subscription`),
  ``user_agent`` (the visitor's browser), ``visitor_id`` (non-empty);
* ``timestamp``: an aware datetime, stored in UTC and truncated to whole seconds (the wire
  has epoch seconds); guide times are truncated to whole milliseconds (epoch milliseconds);
* ``unique_id``: the de-duplication key, 1 to 100 characters from ``[A-Za-z0-9_-]``
  (:func:`new_unique_id` mints one);
* host metadata, never on the wire and not compared: ``agent_version``
  (:class:`AgentVersion`, or its text) and ``source_ip`` (an :mod:`ipaddress` address, or
  its text).

Construction checks every field and raises
:class:`~pendo_webhooks.exceptions.ValidationError` naming it: ``visitor_id`` on an event,
and, for a nested value, the place it usually has (``nps.rating``, ``app.id``,
``guide_properties.name``) or, for :class:`GuideUser` and :class:`GuideStep`, their own
name (``guide_step.reset_at``). Strings must not hold lone surrogates; integers on the wire
fit in 64 bits; naive datetimes are refused.

>>> from datetime import datetime, timezone
>>> event = AccountCreated(
...     app=App(id=-323232, name="test_application", platform="web"),
...     account_id="Webhook Account",
...     subscription=Subscription(id=4802463602049999, name="test_application"),
...     user_agent="Mozilla/5.0",
...     timestamp=datetime(2021, 7, 20, 17, 57, 56, 999, tzinfo=timezone.utc),
...     visitor_id="Webhook Visitor",
...     unique_id="f9610795860d89fe29491846fe297bcc922e460b",
...     agent_version="2.33.0",
... )
>>> body = to_wire(event)
>>> body[body.index(b'"event"') : body.index(b'"visitorId"')]
b'"event":"accountCreated","properties":{},"timestamp":1626803876,'
>>> parse_event(to_wire(event)) == event
True

:data:`Event` is the union of the nine classes; :data:`EVENT_CLASSES` maps each category to
its class; the survey categories need an agent of at least
:data:`MIN_SURVEY_AGENT_VERSION`:

>>> EVENT_CLASSES[EventCategory.ACCOUNT_CREATED] is AccountCreated
True
>>> sorted(str(c) for c in SURVEY_CATEGORIES)
['npsDisplayed', 'npsSubmitted', 'pollDisplayed', 'pollSubmitted']
>>> event.agent_version >= MIN_SURVEY_AGENT_VERSION
True

:func:`parse_event` ignores keys it does not know (newer senders stay readable) and reports
every problem under its wire path:

>>> parse_event(b'{"event": "pageViewed"}')
Traceback (most recent call last):
  ...
pendo_webhooks.exceptions.UnknownEventType: unknown event type: 'pageViewed'
"""

from __future__ import annotations

from ._agent_version import MIN_SURVEY_AGENT_VERSION, AgentVersion
from ._category import EventCategory, OperationsCategory
from ._ids import new_unique_id
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
from ._serialize import to_wire, to_wire_dict
from ._values import (
    App,
    GuideProperties,
    GuideStep,
    GuideUser,
    NpsResponse,
    PollResponse,
    Subscription,
)
from ._wire import EVENT_CLASSES, parse_event


__all__ = [
    "EVENT_CLASSES",
    "MIN_SURVEY_AGENT_VERSION",
    "SURVEY_CATEGORIES",
    "AccountCreated",
    "AgentVersion",
    "App",
    "Event",
    "EventCategory",
    "GuideDisplayed",
    "GuideProperties",
    "GuideStep",
    "GuideUser",
    "NpsDisplayed",
    "NpsResponse",
    "NpsSubmitted",
    "OperationsCategory",
    "ParentChildAccountCreated",
    "PollDisplayed",
    "PollResponse",
    "PollSubmitted",
    "Subscription",
    "TrackEventReceived",
    "VisitorCreated",
    "new_unique_id",
    "parse_event",
    "to_wire",
    "to_wire_dict",
]

#: The NPS and poll categories, which need an agent of at least
#: :data:`MIN_SURVEY_AGENT_VERSION` (see [Event types](../reference/wire-format.md#event-types)).
SURVEY_CATEGORIES: frozenset[EventCategory] = frozenset(
    {
        EventCategory.NPS_DISPLAYED,
        EventCategory.NPS_SUBMITTED,
        EventCategory.POLL_DISPLAYED,
        EventCategory.POLL_SUBMITTED,
    }
)
