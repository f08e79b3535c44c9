"""
The event classes: one frozen, keyword-only attrs class per event type.

Strictly private; import the names from :mod:`pendo_webhooks.events`.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeAlias

import attrs

from ..exceptions import InvalidVersion, ValidationError
from . import _checks as checks
from ._agent_version import AgentVersion
from ._category import EventCategory
from ._frozen_json import freeze_json
from ._values import (
    ID,
    INT64,
    TEXT,
    UTC,
    App,
    FieldCheck,
    GuideProperties,
    NpsResponse,
    PollResponse,
    Subscription,
    instance_of,
)


__all__ = [
    "EVENT_TYPES",
    "AccountCreated",
    "Event",
    "GuideDisplayed",
    "IPAddress",
    "NpsDisplayed",
    "NpsSubmitted",
    "ParentChildAccountCreated",
    "PollDisplayed",
    "PollSubmitted",
    "TrackEventReceived",
    "VisitorCreated",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


# Host-side metadata: never on the wire, not part of equality.


@functools.lru_cache(maxsize=256)
def _agent_version_of(text: str) -> AgentVersion:
    # A host sends a handful of agent versions over and over; an AgentVersion is immutable.
    return AgentVersion.parse(text, field="agent_version")


def _to_agent_version(value: AgentVersion | str | None) -> AgentVersion | None:
    if value is None or isinstance(value, AgentVersion):
        return value
    if isinstance(value, str):
        return _agent_version_of(value)
    raise InvalidVersion(
        "agent_version", f"must be an AgentVersion, a string or None, not {type(value).__name__}"
    )


def _dotted_quad(text: str) -> ipaddress.IPv4Address | None:
    """
    *text* as an IPv4 address if it is a canonical dotted quad, else ``None`` (ask ipaddress).

    Three times faster than ``ipaddress.ip_address`` for the common case. What the C library
    accepts is kept only if it spells the address back exactly as given, so nothing
    ipaddress would refuse (leading zeros, short forms) gets through on any platform.
    """
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):
        return None
    if socket.inet_ntop(socket.AF_INET, packed) != text:
        return None
    return ipaddress.IPv4Address(packed)


def _to_ip(value: IPAddress | str | None) -> IPAddress | None:
    if value is None or isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    if isinstance(value, str):
        v4 = _dotted_quad(value)
        if v4 is not None:
            return v4
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            raise ValidationError("source_ip", "must be an IPv4 or IPv6 address") from None
    raise ValidationError(
        "source_ip", f"must be an IP address, a string or None, not {type(value).__name__}"
    )


def _freeze_event_properties(value: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError("event_properties", f"must be a mapping, not {type(value).__name__}")
    frozen: dict[str, Any] = freeze_json(value, "event_properties")
    return frozen


@attrs.frozen(kw_only=True)
class _Envelope:
    # The keys every event has (docs/reference/wire-format.md, "The envelope"), plus host
    # metadata that is never sent.

    category: ClassVar[EventCategory]

    app: App = attrs.field(validator=instance_of(App, "an"))
    account_id: str = attrs.field(validator=ID)
    subscription: Subscription = attrs.field(validator=instance_of(Subscription))
    user_agent: str = attrs.field(validator=TEXT)
    timestamp: datetime = attrs.field(converter=checks.to_utc_seconds, validator=UTC)
    visitor_id: str = attrs.field(validator=ID)
    unique_id: str = attrs.field(validator=FieldCheck(checks.unique_id))

    agent_version: AgentVersion | None = attrs.field(
        default=None, eq=False, converter=_to_agent_version
    )
    source_ip: IPAddress | None = attrs.field(default=None, eq=False, converter=_to_ip)


@attrs.frozen(kw_only=True)
class _GuideEvent(_Envelope):
    guide_id: str = attrs.field(validator=ID)
    guide_properties: GuideProperties = attrs.field(validator=instance_of(GuideProperties))
    guide_step_id: str = attrs.field(validator=ID)
    language: str = attrs.field(validator=TEXT)


@attrs.frozen(kw_only=True)
class GuideDisplayed(_GuideEvent):
    """
    A guide step was shown to a visitor (``guideDisplayed``).

    Every event also has the envelope attributes; see :mod:`pendo_webhooks.events`.

    Attributes:
        guide_id: The guide (non-empty).
        guide_properties: The :class:`GuideProperties`.
        guide_step_id: The step shown (non-empty).
        language: The guide's language, ``""`` when it has none.

    >>> from pendo_webhooks.testing import sample_event
    >>> sample_event("guideDisplayed").guide_step_id
    'UgG7AtWEXNuvHBBcTqSQ8NxGvAU'
    """

    category: ClassVar[EventCategory] = EventCategory.GUIDE_DISPLAYED


@attrs.frozen(kw_only=True)
class NpsDisplayed(_GuideEvent):
    """
    An NPS survey was shown to a visitor (``npsDisplayed``); same attributes as
    :class:`GuideDisplayed`.

    Every event also has the envelope attributes; see :mod:`pendo_webhooks.events`.

    >>> from pendo_webhooks.testing import sample_event
    >>> sample_event("npsDisplayed").category
    <EventCategory.NPS_DISPLAYED: 'npsDisplayed'>
    """

    category: ClassVar[EventCategory] = EventCategory.NPS_DISPLAYED


@attrs.frozen(kw_only=True)
class NpsSubmitted(_GuideEvent):
    """
    A visitor answered an NPS survey (``npsSubmitted``).

    Every event also has the envelope attributes; see :mod:`pendo_webhooks.events`.

    Attributes:
        nps: The :class:`NpsResponse`; the other attributes are :class:`GuideDisplayed`'s.

    >>> from pendo_webhooks.testing import sample_event
    >>> sample_event("npsSubmitted", nps=NpsResponse(rating=3, reason="", source="email")).nps
    NpsResponse(rating=3, reason='', source='email')
    """

    category: ClassVar[EventCategory] = EventCategory.NPS_SUBMITTED

    nps: NpsResponse = attrs.field(validator=instance_of(NpsResponse, "an"))


@attrs.frozen(kw_only=True)
class PollDisplayed(_GuideEvent):
    """
    A poll was shown to a visitor (``pollDisplayed``); same attributes as
    :class:`GuideDisplayed`.

    Every event also has the envelope attributes; see :mod:`pendo_webhooks.events`.

    >>> from pendo_webhooks.testing import sample_event
    >>> str(sample_event("pollDisplayed").category)
    'pollDisplayed'
    """

    category: ClassVar[EventCategory] = EventCategory.POLL_DISPLAYED


@attrs.frozen(kw_only=True)
class PollSubmitted(_GuideEvent):
    """
    A visitor answered a poll (``pollSubmitted``; the body layout is this library's).

    Every event also has the envelope attributes; see :mod:`pendo_webhooks.events`.

    Attributes:
        poll: The :class:`PollResponse`; the other attributes are :class:`GuideDisplayed`'s.

    >>> from pendo_webhooks.testing import sample_event
    >>> sample_event("pollSubmitted").poll.question
    'How useful is this page?'
    """

    category: ClassVar[EventCategory] = EventCategory.POLL_SUBMITTED

    poll: PollResponse = attrs.field(validator=instance_of(PollResponse))


@attrs.frozen(kw_only=True)
class TrackEventReceived(_Envelope):
    """
    A web track event arrived (``trackEventReceived``).

    Every event also has the envelope attributes; see :mod:`pendo_webhooks.events`.

    Attributes:
        event_properties: The track event's properties: any JSON object. Stored as a
            deep-frozen copy (a read-only ``dict`` subclass, read-only lists inside) that
            compares equal to the plain value; changing it raises ``TypeError``.
        name: The track event's name (non-empty).
        source: Where it came from; Pendo sends ``"web"``.

    >>> from pendo_webhooks.testing import sample_event
    >>> e = sample_event("trackEventReceived", event_properties={"plan": ["pro"]})
    >>> e.event_properties == {"plan": ["pro"]}
    True
    """

    category: ClassVar[EventCategory] = EventCategory.TRACK_EVENT_RECEIVED

    event_properties: dict[str, Any] = attrs.field(converter=_freeze_event_properties)
    name: str = attrs.field(validator=ID)
    source: str = attrs.field(validator=TEXT)


@attrs.frozen(kw_only=True)
class VisitorCreated(_Envelope):
    """
    A visitor was seen in the app for the first time (``visitorCreated``).

    Every event also has the envelope attributes; see :mod:`pendo_webhooks.events`.

    Attributes:
        browser_name: Such as ``"Chrome"``.
        browser_version: Such as ``"91.0.4472"``.
        sample_group: Pendo's sample group number for the visitor (64-bit integer).

    >>> from pendo_webhooks.testing import sample_event
    >>> sample_event("visitorCreated").sample_group
    17
    """

    category: ClassVar[EventCategory] = EventCategory.VISITOR_CREATED

    browser_name: str = attrs.field(validator=TEXT)
    browser_version: str = attrs.field(validator=TEXT)
    sample_group: int = attrs.field(validator=INT64)


@attrs.frozen(kw_only=True)
class AccountCreated(_Envelope):
    """
    An account was seen in the app for the first time (``accountCreated``, empty
    properties; ``visitor_id`` is the visitor whose session created it).

    Every event also has the envelope attributes; see :mod:`pendo_webhooks.events`.

    >>> from pendo_webhooks.testing import sample_event
    >>> sample_event("accountCreated").account_id
    'Webhook Account'
    """

    category: ClassVar[EventCategory] = EventCategory.ACCOUNT_CREATED


def _joined_account_id(event: ParentChildAccountCreated) -> str:
    return f"{event.parent_account_id}::{event.child_account_id}"


@attrs.frozen(kw_only=True)
class ParentChildAccountCreated(_Envelope):
    """
    A parent-child account pair was seen in the app for the first time
    (``parentChildAccountCreated``; this event is this library's, not Pendo's).

    Every event also has the envelope attributes; see :mod:`pendo_webhooks.events`.

    Attributes:
        parent_account_id: The parent account (non-empty).
        child_account_id: The child account (non-empty).
        account_id: Defaults to ``"<parent>::<child>"``, and must equal it when given
            (so :func:`attrs.evolve` that changes a side must pass ``account_id`` too).

    >>> from pendo_webhooks.testing import sample_event
    >>> e = sample_event("parentChildAccountCreated", parent_account_id="P", child_account_id="C")
    >>> e.account_id
    'P::C'
    """

    category: ClassVar[EventCategory] = EventCategory.PARENT_CHILD_ACCOUNT_CREATED

    parent_account_id: str = attrs.field(validator=ID)
    child_account_id: str = attrs.field(validator=ID)
    # Redefined here so that it comes after the two ids its default is built from.
    account_id: str = attrs.field(
        default=attrs.Factory(_joined_account_id, takes_self=True), validator=ID
    )

    def __attrs_post_init__(self) -> None:
        if self.account_id != _joined_account_id(self):
            raise ValidationError(
                "account_id", "must be the parent and child account ids joined by '::'"
            )


#: Any one event.
Event: TypeAlias = (
    GuideDisplayed
    | TrackEventReceived
    | NpsDisplayed
    | NpsSubmitted
    | PollDisplayed
    | PollSubmitted
    | VisitorCreated
    | AccountCreated
    | ParentChildAccountCreated
)

#: Every event class, in :class:`EventCategory` order.
EVENT_TYPES: tuple[type[Event], ...] = (
    GuideDisplayed,
    TrackEventReceived,
    NpsDisplayed,
    NpsSubmitted,
    PollDisplayed,
    PollSubmitted,
    VisitorCreated,
    AccountCreated,
    ParentChildAccountCreated,
)
# Real types instead of the strings `from __future__ import annotations` leaves; the wire
# parser picks each field's hook from them.
for _cls in EVENT_TYPES:
    attrs.resolve_types(_cls)
