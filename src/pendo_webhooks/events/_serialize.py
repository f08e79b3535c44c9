"""
Serializing events exactly as Pendo does: :func:`to_wire` and :func:`to_wire_dict`.

Strictly private; import the names from :mod:`pendo_webhooks.events`.

This is the hot path (every delivery serializes once), so the layout is written out by hand,
one function per event class, in Pendo's key order (docs/reference/wire-format.md);
:mod:`._wire` registers these
functions as the unstructure hooks of the library's converter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..exceptions import PayloadError
from ._checks import EPOCH, ONE_MILLISECOND, ONE_SECOND
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
    _GuideEvent,
)


__all__ = ["UNSTRUCTURE", "to_wire", "to_wire_dict"]


def _millis(value: Any) -> int:
    return (value - EPOCH) // ONE_MILLISECOND  # type: ignore[no-any-return]


def _envelope(event: Any, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    app = event.app
    subscription = event.subscription
    return {
        "app": {"id": app.id, "name": app.name, "platform": app.platform},
        "accountId": event.account_id,
        "subscription": {"id": subscription.id, "name": subscription.name},
        "userAgent": event.user_agent,
        "event": name,
        "properties": properties,
        "timestamp": (event.timestamp - EPOCH) // ONE_SECOND,
        "visitorId": event.visitor_id,
        "uniqueId": event.unique_id,
    }


def _guide_keys(event: _GuideEvent) -> dict[str, Any]:
    guide = event.guide_properties
    return {
        "guideId": event.guide_id,
        "guideProperties": {
            "createdAt": _millis(guide.created_at),
            "createdByUser": {"username": guide.created_by_user.username},
            "id": guide.id,
            "lastUpdatedAt": _millis(guide.last_updated_at),
            "lastUpdatedByUser": {"username": guide.last_updated_by_user.username},
            "name": guide.name,
            "steps": [
                {
                    "id": step.id,
                    "lastUpdatedAt": _millis(step.last_updated_at),
                    "resetAt": _millis(step.reset_at),
                    "type": step.type,
                }
                for step in guide.steps
            ],
        },
        "guideStepId": event.guide_step_id,
        "language": event.language,
    }


def _guide_event(name: str) -> Callable[[_GuideEvent], dict[str, Any]]:
    def unstructure(event: _GuideEvent) -> dict[str, Any]:
        return _envelope(event, name, _guide_keys(event))

    return unstructure


def _nps_submitted(event: NpsSubmitted) -> dict[str, Any]:
    properties = _guide_keys(event)
    nps = event.nps
    properties["nps"] = {"rating": nps.rating, "reason": nps.reason, "source": nps.source}
    return _envelope(event, "npsSubmitted", properties)


def _poll_submitted(event: PollSubmitted) -> dict[str, Any]:
    properties = _guide_keys(event)
    poll = event.poll
    response = poll.response
    properties["poll"] = {
        "id": poll.id,
        "question": poll.question,
        "response": list(response) if isinstance(response, tuple) else response,
    }
    return _envelope(event, "pollSubmitted", properties)


def _track_event_received(event: TrackEventReceived) -> dict[str, Any]:
    properties = {
        "eventProperties": event.event_properties,
        "name": event.name,
        "source": event.source,
    }
    return _envelope(event, "trackEventReceived", properties)


def _visitor_created(event: VisitorCreated) -> dict[str, Any]:
    properties = {
        "browserName": event.browser_name,
        "browserVersion": event.browser_version,
        "sampleGroup": event.sample_group,
    }
    return _envelope(event, "visitorCreated", properties)


def _account_created(event: AccountCreated) -> dict[str, Any]:
    return _envelope(event, "accountCreated", {})


def _parent_child_account_created(event: ParentChildAccountCreated) -> dict[str, Any]:
    properties = {
        "parentAccountId": event.parent_account_id,
        "childAccountId": event.child_account_id,
    }
    return _envelope(event, "parentChildAccountCreated", properties)


UNSTRUCTURE: dict[type, Callable[[Any], dict[str, Any]]] = {
    GuideDisplayed: _guide_event("guideDisplayed"),
    NpsDisplayed: _guide_event("npsDisplayed"),
    PollDisplayed: _guide_event("pollDisplayed"),
    NpsSubmitted: _nps_submitted,
    PollSubmitted: _poll_submitted,
    TrackEventReceived: _track_event_received,
    VisitorCreated: _visitor_created,
    AccountCreated: _account_created,
    ParentChildAccountCreated: _parent_child_account_created,
}

# What Pendo's Go backend escapes inside strings; json.dumps leaves them as they are. They
# only ever occur inside strings, so replacing them in the whole text is safe. (`in` and
# `replace` are used because a regex search over the text is 40 times slower.)
_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def to_wire_dict(event: Event) -> dict[str, Any]:
    """
    The JSON-ready ``dict`` for *event*, keys in Pendo's order; :func:`to_wire` serializes it.

    Formatters that embed Pendo's ``properties`` elsewhere (the Segment ``track`` call) use
    this. The ``dict`` is new on every call, but ``eventProperties`` is the event's own
    read-only value.

    Raises:
        PayloadError: If *event* is not an event.

    >>> from pendo_webhooks.testing import sample_event
    >>> list(to_wire_dict(sample_event("visitorCreated"))["properties"])
    ['browserName', 'browserVersion', 'sampleGroup']
    """
    hook = UNSTRUCTURE.get(type(event))
    if hook is None:
        raise PayloadError(f"not an event: {type(event).__name__}")
    return hook(event)


def to_wire(event: Event) -> bytes:
    """
    Serialize *event* exactly as Pendo does: the bytes to store, sign and send.

    Compact JSON (no spaces, no trailing newline), keys in Pendo's order (see the
    [wire format](../reference/wire-format.md#the-envelope)), non-ASCII as
    UTF-8, and ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u003c`` and so on.

    Raises:
        PayloadError: If *event* is not an event or holds a value JSON cannot represent
            (construction already rejects those, so this means the event was tampered with).

    >>> from pendo_webhooks.testing import sample_event
    >>> body = to_wire(sample_event("guideDisplayed"))
    >>> len(body), body[:27]
    (917, b'{"app":{"id":-323232,"name"')
    """
    hook = UNSTRUCTURE.get(type(event))
    if hook is None:
        raise PayloadError(f"not an event: {type(event).__name__}")
    try:
        text = _ENCODE(hook(event))
        for char, escaped in _ESCAPES:
            if char in text:
                text = text.replace(char, escaped)
        return text.encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError, RecursionError, AttributeError) as exc:
        raise PayloadError(
            f"{event.category.value} cannot be serialized: {type(exc).__name__}"
        ) from None
