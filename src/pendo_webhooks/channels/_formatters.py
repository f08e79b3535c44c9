"""
The formatters themselves; public in :mod:`pendo_webhooks.formatters`.

Strictly private: they live beside the channels that use them, so that
:mod:`pendo_webhooks.channels` does not import a module above it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from .._version import __version__
from ..events._checks import has_lone_surrogate
from ..events._models import Event
from ..events._serialize import _ESCAPES, to_wire, to_wire_dict
from ..exceptions import PayloadError, ValidationError
from ._segment import (
    BATCH_PATH,
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_ID_LENGTH,
    iso_millis,
)


__all__ = [
    "ANONYMOUS_VISITOR_PREFIX",
    "BATCH_PATH",
    "LIBRARY_NAME",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_ID_LENGTH",
    "Formatter",
    "SegmentFormatter",
    "URLFormatter",
]

#: ``context.library.name`` of every Segment message, unless the formatter is told otherwise.
LIBRARY_NAME = "pendo-webhooks"

#: How Pendo's anonymous visitor ids begin (``_PENDO_T_`` and a random token): such a
#: visitor goes to Segment as ``anonymousId``, never as an identified ``userId``.
ANONYMOUS_VISITOR_PREFIX = "_PENDO_T_"


class Formatter(Protocol):
    """
    **Protocol**: Turns an event into the exact bytes stored and sent for one webhook.

    Called once per delivery, when it is enqueued; never again on retries or replays.
    """

    def format(self, event: Event) -> bytes:
        """
        Return the bytes to store for *event*.

        Raises:
            PayloadError: If *event* is not an event or cannot be serialized.
        """
        ...


@attrs.frozen
class URLFormatter:
    """
    Formats URL webhook bodies: Pendo's JSON, byte for byte (see the
    [wire format](../reference/wire-format.md)).

    >>> from pendo_webhooks.testing import sample_event
    >>> len(URLFormatter().format(sample_event("guideDisplayed")))
    917
    """

    def format(self, event: Event) -> bytes:
        """
        Return :func:`~pendo_webhooks.events.to_wire` of *event*.

        Raises:
            PayloadError: If *event* is not an event or cannot be serialized.
        """
        return to_wire(event)

    def format_filtered(self, event: Event, wire: Mapping[str, Any]) -> bytes:  # noqa: ARG002
        """
        Return *wire* (*event*'s Pendo JSON after a webhook's PII filters) serialized as
        :func:`~pendo_webhooks.events.to_wire` serializes: compact, Pendo's escapes, its
        key order.

        Raises:
            PayloadError: If *wire* cannot be serialized.

        >>> from pendo_webhooks.events import to_wire_dict
        >>> from pendo_webhooks.testing import sample_event
        >>> event = sample_event("visitorCreated")
        >>> wire = to_wire_dict(event)
        >>> URLFormatter().format_filtered(event, wire) == URLFormatter().format(event)
        True
        """
        return _encoded(wire)


def _encoded(value: Mapping[str, Any]) -> bytes:
    try:
        return _encode(value)
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError) as exc:
        msg = f"{value.get('event')} cannot be serialized: {type(exc).__name__}"
        raise PayloadError(msg) from None


def _check_library_text(_instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        msg = "must be non-empty text"
        raise ValidationError(attribute.name, msg)
    if len(value) > 100 or has_lone_surrogate(value):
        msg = "must be at most 100 characters of valid Unicode"
        raise ValidationError(attribute.name, msg)


@attrs.frozen(kw_only=True)
class SegmentFormatter:
    """
    Formats Segment ``track`` messages: one per event (see
    [Receive events in Segment](../howto/segment.md#what-segment-receives)).

    ``event`` is the Pendo event name, ``userId`` the visitor (``anonymousId`` instead
    for Pendo's anonymous visitors, whose ids begin with :data:`ANONYMOUS_VISITOR_PREFIX`),
    ``properties`` Pendo's ``properties`` unchanged; ``context`` carries ``groupId`` (the
    account), the visitor's ``userAgent``, ``library`` and ``pendo`` (``app`` and
    ``subscription``); ``timestamp`` is ISO-8601 UTC with milliseconds and ``messageId``
    the ``uniqueId``, so Segment drops the copies a retry may send. The JSON is compact
    and escaped like Pendo's (``<`` as ``\\u003c`` and so on), keys always in this order.

    Attributes:
        library_name: ``context.library.name``.
        library_version: ``context.library.version``.

    Raises:
        ValidationError: If *library_name* or *library_version* is empty, longer than
            100 characters or holds a lone surrogate.

    >>> import json
    >>> from pendo_webhooks.testing import sample_event
    >>> message = json.loads(SegmentFormatter().format(sample_event("visitorCreated")))
    >>> list(message)
    ['type', 'event', 'userId', 'properties', 'context', 'timestamp', 'messageId']
    >>> message["timestamp"], message["context"]["groupId"]
    ('2021-07-20T17:57:56.000Z', 'Webhook Account')
    >>> import attrs
    >>> anonymous = attrs.evolve(sample_event("guideDisplayed"), visitor_id="_PENDO_T_x1Yz")
    >>> message = json.loads(SegmentFormatter().format(anonymous))
    >>> message["anonymousId"], "userId" in message
    ('_PENDO_T_x1Yz', False)
    """

    library_name: str = attrs.field(default=LIBRARY_NAME, validator=_check_library_text)
    library_version: str = attrs.field(default=__version__, validator=_check_library_text)

    def format(self, event: Event) -> bytes:
        """
        Return the ``track`` message for *event*, serialized once, as stored and sent.

        Raises:
            PayloadError: If *event* is not an event or cannot be serialized.
        """
        wire = to_wire_dict(event)
        message = {
            "type": "track",
            "event": wire["event"],
            _visitor_key(wire["visitorId"]): wire["visitorId"],
            "properties": wire["properties"],
            "context": {
                "groupId": wire["accountId"],
                "userAgent": wire["userAgent"],
                "library": {"name": self.library_name, "version": self.library_version},
                "pendo": {"app": wire["app"], "subscription": wire["subscription"]},
            },
            "timestamp": iso_millis(event.timestamp),
            "messageId": wire["uniqueId"],
        }
        try:
            return _encode(message)
        except (ValueError, TypeError, UnicodeEncodeError, RecursionError) as exc:
            msg = f"{wire['event']} cannot be serialized: {type(exc).__name__}"
            raise PayloadError(msg) from None

    def format_filtered(self, event: Event, wire: Mapping[str, Any]) -> bytes:
        """
        Return the ``track`` message made from *wire*: *event*'s Pendo JSON after a
        webhook's PII filters.

        The filters apply to the Pendo event, before it becomes a ``track`` message: what
        they dropped is left out of the message (``context.userAgent`` for a dropped
        ``userAgent``, ``context.groupId`` for ``accountId``, ``context.pendo.app`` for
        ``app``, and so on), and a hashed ``visitorId`` is the ``userId`` (an anonymous
        visitor's hash keeps ``_PENDO_T_`` and stays the ``anonymousId``). ``type``,
        ``event``, ``properties``, ``context.library``, ``timestamp`` and ``messageId``
        are always there; the registry never lets a Segment webhook drop ``visitorId``.

        Raises:
            PayloadError: If *wire* cannot be serialized.

        >>> import json
        >>> from pendo_webhooks.events import to_wire_dict
        >>> from pendo_webhooks.testing import sample_event
        >>> event = sample_event("visitorCreated")
        >>> wire = {k: v for k, v in to_wire_dict(event).items() if k != "userAgent"}
        >>> message = json.loads(SegmentFormatter().format_filtered(event, wire))
        >>> list(message["context"])
        ['groupId', 'library', 'pendo']
        """
        message: dict[str, Any] = {"type": "track", "event": wire["event"]}
        if "visitorId" in wire:
            message[_visitor_key(wire["visitorId"])] = wire["visitorId"]
        message["properties"] = wire["properties"]
        context: dict[str, Any] = {}
        if "accountId" in wire:
            context["groupId"] = wire["accountId"]
        if "userAgent" in wire:
            context["userAgent"] = wire["userAgent"]
        context["library"] = {"name": self.library_name, "version": self.library_version}
        pendo = {key: wire[key] for key in ("app", "subscription") if key in wire}
        if pendo:
            context["pendo"] = pendo
        message["context"] = context
        message["timestamp"] = iso_millis(event.timestamp)
        message["messageId"] = wire["uniqueId"]
        return _encoded(message)


def _visitor_key(visitor_id: object) -> str:
    # An anonymous visitor as userId would make a fake identified user downstream.
    if isinstance(visitor_id, str) and visitor_id.startswith(ANONYMOUS_VISITOR_PREFIX):
        return "anonymousId"
    return "userId"


# The events module's encoder settings, without the check for circular containers: a
# message is built here from an event's own values, and a cycle (which no event can hold)
# would still fail, as a RecursionError.
_ENCODE_ACYCLIC = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


def _encode(value: Any) -> bytes:
    # The events module's escapes, so Segment messages spell strings exactly as Pendo's
    # bodies do.
    text = _ENCODE_ACYCLIC(value)
    for char, escaped in _ESCAPES:
        if char in text:
            text = text.replace(char, escaped)
    return text.encode("utf-8")
