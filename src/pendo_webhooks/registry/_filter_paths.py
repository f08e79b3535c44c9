"""
Which fields of each event type a PII filter may name, and what it may do to them.

The paths come from the event schemas (:func:`~pendo_webhooks.schemas.event_schema`), so
they follow the models. What may be done to a path keeps the filtered body valid for its
channel:

* ``event``, ``uniqueId``, ``timestamp`` and ``properties`` itself are never filtered:
  they name the event, de-duplicate it (``webhook-id``, Segment's ``messageId``), date it,
  and hold its fields (filter the fields inside);
* a field is **hashed** only where its schema takes any string (a hash is a string): not
  numbers, lists or objects, not ``event`` or an enumerated ``nps.source``; anything
  inside a free-form object (``properties.eventProperties.*``) may be hashed;
* any other field may be **dropped**, except, for Segment webhooks, ``visitorId``: a
  ``track`` call needs a ``userId`` or an ``anonymousId`` (hash it instead).

Strictly private; import :func:`filterable_paths` from :mod:`pendo_webhooks.registry`.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from ..events import EventCategory
from ..events._category import OperationsCategory
from ..exceptions import ValidationError
from ..model._filters import FieldFilter, FilterAction
from ..model._webhook import Webhook, WebhookKind, to_category, to_kind
from ..schemas import event_schema


__all__ = ["OPEN", "check_filters", "check_webhook_filters", "filterable_paths"]

#: How :func:`filterable_paths` writes "any key below this free-form object".
OPEN = "*"

_BOTH = frozenset(FilterAction)
_DROP = frozenset({FilterAction.DROP})

# Why these paths are never filtered.
_FIXED: Mapping[str, str] = MappingProxyType(
    {
        "event": "it names the event type, which receivers and Segment route on",
        "uniqueId": (
            "it is the de-duplication key (the webhook-id header, Segment's messageId), "
            "not personal data"
        ),
        "timestamp": "it says when the event happened, which every receiver needs",
        "properties": "it holds the event's fields: filter the fields inside it",
    }
)
_SEGMENT_VISITOR = (
    "a Segment track call needs a userId or an anonymousId: hash 'visitorId' instead"
)


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return defs[ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    return schema


def _takes_any_string(schema: Mapping[str, Any]) -> bool:
    if "anyOf" in schema:
        return any(_takes_any_string(s) for s in schema["anyOf"])
    return schema.get("type") == "string" and not ({"pattern", "enum", "const"} & set(schema))


def _walk(
    schema: Mapping[str, Any],
    defs: Mapping[str, Any],
    prefix: str,
    out: dict[str, frozenset[FilterAction]],
) -> None:
    schema = _resolve(schema, defs)
    if schema.get("type") == "array":  # a path through a list names every item's field
        _walk(schema["items"], defs, prefix, out)
        return
    properties = schema.get("properties")
    if properties is None:
        if schema.get("type") == "object" and prefix:
            out[prefix + OPEN] = _BOTH  # free-form JSON: any key below it
        return
    for key, sub in properties.items():
        path = prefix + key
        resolved = _resolve(sub, defs)
        out[path] = _BOTH if _takes_any_string(resolved) else _DROP
        _walk(resolved, defs, path + ".", out)


@functools.cache
def _paths(category: EventCategory) -> Mapping[str, frozenset[FilterAction]]:
    schema = event_schema(category)
    found: dict[str, frozenset[FilterAction]] = {}
    _walk(schema, schema["$defs"], "", found)
    for path in _FIXED:
        found[path] = frozenset()
    return MappingProxyType(found)


def filterable_paths(
    category: EventCategory | str, kind: WebhookKind | str = WebhookKind.URL
) -> dict[str, frozenset[FilterAction]]:
    """
    The paths of *category*'s body a PII filter may name, each with the actions allowed.

    For a webhook of *kind*: Segment webhooks may hash ``visitorId`` but not drop it. A
    path ending in ``.*`` stands for any key below a free-form object
    (``properties.eventProperties.*``). Paths that may not be filtered at all
    (``event``, ``uniqueId``, ``timestamp``, ``properties``) are left out.

    Raises:
        ValidationError: For an unknown *category* or *kind*.

    >>> paths = filterable_paths("npsSubmitted")
    >>> sorted(a.value for a in paths["properties.nps.reason"])
    ['drop', 'hash']
    >>> sorted(a.value for a in paths["properties.nps.rating"])
    ['drop']
    >>> sorted(a.value for a in filterable_paths("npsSubmitted", "segment")["visitorId"])
    ['hash']
    >>> "properties.eventProperties.*" in filterable_paths("trackEventReceived")
    True
    """
    segment = to_kind(kind) is WebhookKind.SEGMENT
    result: dict[str, frozenset[FilterAction]] = {}
    for path, actions in _paths(to_category(category)).items():
        if segment and path == "visitorId":
            actions = actions - {FilterAction.DROP}  # noqa: PLW2901 - a narrowed copy
        if actions:
            result[path] = actions
    return result


def _lookup(
    paths: Mapping[str, frozenset[FilterAction]], path: str
) -> frozenset[FilterAction] | None:
    found = paths.get(path)
    if found is not None:
        return found
    keys = path.split(".")
    for i in range(len(keys) - 1, 0, -1):
        if ".".join(keys[:i]) + "." + OPEN in paths:
            return paths[".".join(keys[:i]) + "." + OPEN]
    return None


def _why_not(one: FieldFilter, kind: WebhookKind) -> str:
    if one.path in _FIXED:
        return _FIXED[one.path]
    if kind is WebhookKind.SEGMENT and one.path == "visitorId":
        return _SEGMENT_VISITOR
    return (
        "a hash is text, and this field's value must keep its type (a number, a list, an "
        "object or one of a fixed set of values): drop it instead"
    )


def check_filters(
    filters: Iterable[FieldFilter],
    categories: Iterable[EventCategory | OperationsCategory],
    kind: WebhookKind,
) -> None:
    """
    Refuse a filter whose path is in none of *categories*' bodies, or whose action there
    would leave a body invalid for a webhook of *kind*; refuse any filter on an operations
    webhook (its alerts carry no visitor data, and are never filtered).

    Raises:
        ValidationError: Naming ``filters``, saying which filter and why.
    """
    filters = tuple(filters)
    chosen = sorted(c for c in categories if isinstance(c, EventCategory))
    if filters and not chosen:
        msg = (
            "an operations webhook receives the library's own alerts, which carry no "
            "visitor data: it takes no PII filters"
        )
        raise ValidationError("filters", msg)
    for one in filters:
        allowed: list[frozenset[FilterAction]] = []
        for category in chosen:
            actions = _lookup(_paths(category), one.path)
            if actions is not None:
                if kind is WebhookKind.SEGMENT and one.path == "visitorId":
                    actions = actions - {FilterAction.DROP}
                allowed.append(actions)
        if not allowed:
            names = ", ".join(c.value for c in chosen)
            known = sorted({p for c in chosen for p in _paths(c)})
            close = difflib.get_close_matches(one.path, known, n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = (
                f"{str(one)!r}: no field {one.path!r} in the events this webhook is "
                f"subscribed to ({names}){hint}"
            )
            raise ValidationError("filters", msg)
        if any(one.action not in actions for actions in allowed):
            msg = f"{str(one)!r} is not allowed: {_why_not(one, kind)}"
            raise ValidationError("filters", msg)


def check_webhook_filters(webhook: Webhook) -> None:
    """
    :func:`check_filters` of *webhook*'s filters, categories and kind.
    """
    check_filters(webhook.filters, webhook.categories, webhook.kind)
