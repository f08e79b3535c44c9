"""
JSON Schemas (2020-12) of every webhook body, and an OpenAPI 3.1 document of the webhooks.

Nothing here is written by hand and stored: every schema is **generated when asked for**,
from the event models themselves (their attrs fields, the checks that validate them, and the
wire names :func:`~pendo_webhooks.events.to_wire` gives them) and from the Segment
formatter's layout, so a schema cannot drift from what the library sends and accepts. A
receiver written in another language reads the bodies from them; ``pendo-webhooks schema``
prints them.

* :func:`event_schema`: one event type's body;
* :func:`events_schema`: any event body (the ``event`` name picks the type's schema);
* :func:`segment_schema`: a Segment ``track`` message, as a Segment webhook sends it;
* :func:`operations_schema`: an *operations event* body, as an operations webhook gets it
  (:mod:`pendo_webhooks.alerts`);
* :func:`openapi_document`: an OpenAPI 3.1 ``webhooks`` document: one entry per event type,
  with the body, the signature headers, the answers a receiver gives and the retries they
  cause.

The schemas say what :func:`~pendo_webhooks.events.parse_event` accepts: every key is
required, integers are 64-bit, times are epoch integers. Keys they do not name are allowed
(``parse_event`` ignores them, so a newer sender stays readable). Two rules are not
expressible in JSON Schema and stay with the parser: strings must not hold lone surrogates,
and a ``parentChildAccountCreated`` body's ``accountId`` is its two ids joined by ``::``
(the description says so).

>>> schema = event_schema("npsSubmitted")
>>> schema["$schema"]
'https://json-schema.org/draft/2020-12/schema'
>>> schema["properties"]["properties"]["properties"]["nps"]
{'$ref': '#/$defs/NpsResponse'}
>>> rating = schema["$defs"]["NpsResponse"]["properties"]["rating"]
>>> rating["type"], rating["minimum"], rating["maximum"]
('integer', 0, 10)
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import attrs

from .events import _checks as checks
from .events._category import EventCategory, OperationsCategory
from .events._models import EVENT_TYPES, Event, ParentChildAccountCreated, _Envelope
from .events._operations import Alert, sample_alert
from .events._values import ID, INT64, TEXT, FieldCheck
from .events._wire import _WIRE_PATHS, EVENT_CLASSES, HOST_ONLY, camel
from .exceptions import UnknownEventType, ValidationError
from .signing._verify import (
    DEFAULT_SIGNATURE_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)


__all__ = [
    "JSON_SCHEMA_DIALECT",
    "OPENAPI_VERSION",
    "event_schema",
    "events_schema",
    "openapi_document",
    "operations_schema",
    "segment_schema",
]

#: The JSON Schema dialect of every schema here.
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: The OpenAPI version of :func:`openapi_document`.
OPENAPI_VERSION = "3.1.0"

_ID_PREFIX = "urn:pendo-webhooks:schema:"
_LOCAL_DEFS = "#/$defs/"
_COMPONENTS = "#/components/schemas/"

# What Pendo does not publish, said in the schema of the event concerned (see the wire
# format page, docs/reference/wire-format.md).
_NOT_PUBLISHED: Mapping[EventCategory, str] = MappingProxyType(
    {
        EventCategory.POLL_SUBMITTED: (
            "The event name is Pendo's; the `poll` object in `properties` is this library's "
            "choice: Pendo does not publish this body."
        ),
        EventCategory.PARENT_CHILD_ACCOUNT_CREATED: (
            "This event is this library's choice: Pendo does not publish it (its name, "
            "its `properties`, and `accountId` as `<parentAccountId>::<childAccountId>`)."
        ),
    }
)

# What the envelope keys mean (the event classes document them on the events module).
_ENVELOPE_DOCS: Mapping[str, str] = MappingProxyType(
    {
        "account_id": "The account; with parent accounts enabled, `Parent::Child`.",
        "user_agent": "The visitor's browser, not the sender's HTTP client.",
        "timestamp": "When the event happened.",
        "visitor_id": "The visitor.",
        "unique_id": (
            "The de-duplication key, also sent as the `webhook-id` header: the same on every "
            "attempt (delivery is at least once)."
        ),
    }
)

EPOCH_UTC = checks.EPOCH
_DATETIME_MIN = datetime.min.replace(tzinfo=timezone.utc)
_DATETIME_MAX = datetime.max.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------
# From the models' docstrings: a description per class and per attribute.

_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]+\.)?([^`]+)`")


def _markdown(text: str) -> str:
    # reST to the Markdown that JSON Schema and OpenAPI descriptions use.
    text = " ".join(_ROLE.sub(r"`\1`", text).replace("``", "`").split())
    text = re.sub(r" \(an `int`[^)]*\)", "", text)
    # Python attribute names to wire names: `visitor_id` -> `visitorId`.
    return re.sub(r"`([a-z]+(?:_[a-z]+)+)`", lambda m: f"`{camel(m.group(1))}`", text)


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return _markdown(doc.split("\n\n", 1)[0])


def _attribute_docs(cls: type) -> dict[str, str]:
    """
    The ``Attributes:`` section of *cls*'s docstring (and its bases'), by attribute name.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = inspect.getdoc(klass) if "__doc__" in vars(klass) else None
        if not doc or "Attributes:" not in doc:
            continue
        section = doc.split("Attributes:", 1)[1].split("\n\n", 1)[0]
        name = None
        for line in section.splitlines():
            match = re.fullmatch(r" {4}(\w+): (.*)", line)
            if match:
                name = match.group(1)
                docs[name] = match.group(2)
            elif name is not None and line.startswith("        "):
                docs[name] += " " + line.strip()
    return {name: _wire_words(_markdown(text)) for name, text in docs.items()}


def _wire_words(text: str) -> str:
    # An attribute's first sentence, without what only Python sees (tuples, frozen copies).
    text = re.split(r"(?<=\.) (?=[A-Z])", text, maxsplit=1)[0]
    text = re.sub(r"[;,]? \(?a list is accepted and stored as a tuple\)?", "", text)
    return text.replace("a tuple of", "a list of")


# ---------------------------------------------------------------------------------------
# From the models' fields: one schema per attribute.


def _epoch(unit: timedelta, what: str) -> dict[str, Any]:
    # What checks.from_epoch accepts: a 64-bit integer whose date is within years 1 to 9999.
    return {
        "type": "integer",
        "minimum": -((EPOCH_UTC - _DATETIME_MIN) // unit),
        "maximum": (_DATETIME_MAX - EPOCH_UTC) // unit,
        "description": f"Unix epoch {what} (UTC).",
    }


_INT64 = {"type": "integer", "minimum": checks.INT64_MIN, "maximum": checks.INT64_MAX}

# Each shared check, as JSON Schema. The models and the parser run the same checks.
_CHECKS: Mapping[Callable[..., object], Mapping[str, Any]] = MappingProxyType(
    {
        TEXT.check: {"type": "string"},
        ID.check: {"type": "string", "minLength": 1},
        INT64.check: _INT64,
        checks.unique_id: {
            "type": "string",
            "pattern": f"^[A-Za-z0-9_-]{{1,{checks.UNIQUE_ID_MAX_LENGTH}}}$",
        },
        checks.nps_rating: {"type": "integer", "minimum": 0, "maximum": 10},
        checks.nps_source: {"type": "string", "enum": list(checks.NPS_SOURCES)},
        checks.poll_response: {
            "anyOf": [
                {"type": "string"},
                # JSON numbers; the sender writes 64-bit integers or finite floats.
                {"type": "number"},
                {"type": "array", "items": {"type": "string"}},
            ]
        },
    }
)


def _field_schema(attribute: attrs.Attribute[Any], ref: str) -> dict[str, Any]:
    converter: object = attribute.converter
    type_: Any = attribute.type
    if converter is checks.to_utc_seconds:
        return _epoch(checks.ONE_SECOND, "seconds")
    if converter is checks.to_utc_millis:
        return _epoch(checks.ONE_MILLISECOND, "milliseconds")
    if attrs.has(type_):
        return {"$ref": ref + type_.__name__}
    if typing.get_origin(type_) is tuple:  # a list on the wire (GuideProperties.steps)
        item, _ = typing.get_args(type_)
        return {"type": "array", "items": {"$ref": ref + item.__name__}}
    if typing.get_origin(type_) is dict:  # free-form JSON (TrackEventReceived.event_properties)
        return {"type": "object"}
    validator = attribute.validator
    if isinstance(validator, FieldCheck) and validator.check in _CHECKS:
        return dict(_CHECKS[validator.check])
    raise TypeError(f"no JSON Schema for {attribute.name}")  # pragma: no cover - a model bug


def _described(schema: dict[str, Any], description: str | None) -> dict[str, Any]:
    if not description:
        return schema
    if "$ref" in schema:  # the class it refers to has its own description
        return schema
    own = schema.pop("description", None)
    schema["description"] = f"{description} {own}" if own else description
    return schema


def _wire_fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [a for a in attrs.fields(cls) if a.name not in HOST_ONLY]


def _object(cls: type, ref: str) -> dict[str, Any]:
    # A nested value (App, GuideProperties, ...): its attributes under their wire names.
    docs = _attribute_docs(cls)
    names = _WIRE_PATHS[cls]
    properties = {
        names[a.name]: _described(_field_schema(a, ref), docs.get(a.name))
        for a in _wire_fields(cls)
    }
    return {
        "title": cls.__name__,
        "description": _summary(cls),
        "type": "object",
        "properties": properties,
        "required": list(properties),
    }


def _nested_classes(cls: type, found: dict[str, type]) -> dict[str, type]:
    for attribute in _wire_fields(cls):
        type_: Any = attribute.type
        if typing.get_origin(type_) is tuple:
            type_ = typing.get_args(type_)[0]
        if attrs.has(type_) and type_.__name__ not in found:
            found[type_.__name__] = type_
            _nested_classes(type_, found)
    return found


def _to_class(event: EventCategory | str | type[Event]) -> type[Event]:
    if isinstance(event, type) and event in EVENT_TYPES:
        return event
    try:
        return EVENT_CLASSES[EventCategory(event)]
    except ValueError:
        raise UnknownEventType(event) from None


def _event_body(cls: type[Event], ref: str) -> dict[str, Any]:
    """
    The schema of *cls*'s body, its nested values referred to under *ref*.
    """
    category = cls.category
    docs = {**_ENVELOPE_DOCS, **_attribute_docs(cls)}
    paths = _WIRE_PATHS[cls]
    envelope_names = {a.name for a in attrs.fields(_Envelope)}
    top: dict[str, dict[str, Any]] = {}
    properties: dict[str, dict[str, Any]] = {}
    for attribute in _wire_fields(cls):
        schema = _described(_field_schema(attribute, ref), docs.get(attribute.name))
        if attribute.name in envelope_names:
            top[paths[attribute.name]] = schema
        else:
            properties[paths[attribute.name].removeprefix("properties.")] = schema
    if cls is ParentChildAccountCreated:
        top["accountId"]["description"] = (
            "`<parentAccountId>::<childAccountId>` (the parser checks it; JSON Schema cannot)."
        )
    top["event"] = {"const": category.value, "description": "The event type."}
    top["properties"] = {
        "type": "object",
        "description": f"What happened: the keys of `{category.value}`.",
        "properties": properties,
        "required": list(properties),
    }
    # The keys in the order to_wire writes them: the envelope's, with event and properties
    # after userAgent (the envelope's order, docs/reference/wire-format.md).
    order = [camel(a.name) for a in _wire_fields(_Envelope)]
    order[order.index("userAgent") + 1 : order.index("userAgent") + 1] = ["event", "properties"]
    keys = {key: top[key] for key in order}
    description = _summary(cls)
    if category in _NOT_PUBLISHED:
        description = f"{description} {_NOT_PUBLISHED[category]}"
    return {
        "title": cls.__name__,
        "description": description,
        "type": "object",
        "properties": keys,
        "required": list(keys),
    }


def _defs(classes: Sequence[type], ref: str) -> dict[str, Any]:
    found: dict[str, type] = {}
    for cls in classes:
        _nested_classes(cls, found)
    return {name: _object(found[name], ref) for name in sorted(found)}


def event_schema(event: EventCategory | str | type[Event]) -> dict[str, Any]:
    """
    The JSON Schema (2020-12) of one event type's webhook body.

    Generated on every call from the event's class: its fields, their checks and their wire
    names. A new ``dict`` every time: change it freely.

    Args:
        event: An :class:`~pendo_webhooks.events.EventCategory`, its name or its event class.

    Raises:
        UnknownEventType: If *event* names no event type.

    >>> schema = event_schema("visitorCreated")
    >>> schema["$id"], schema["title"]
    ('urn:pendo-webhooks:schema:event:visitorCreated', 'VisitorCreated')
    >>> schema["required"]  # in the order the body has them
    ['app', 'accountId', 'subscription', 'userAgent', 'event', 'properties', 'timestamp', 'visitorId', 'uniqueId']
    >>> "Pendo does not publish" in event_schema("pollSubmitted")["description"]
    True
    """  # noqa: E501 - a doctest's output line
    cls = _to_class(event)
    body = _event_body(cls, _LOCAL_DEFS)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{_ID_PREFIX}event:{cls.category.value}",
        **body,
        "$defs": _defs([cls], _LOCAL_DEFS),
    }


def events_schema() -> dict[str, Any]:
    """
    The JSON Schema (2020-12) of any webhook body: ``event`` names the type, whose schema applies.

    An unknown ``event`` fails on ``event`` itself (a receiver should still acknowledge it:
    it may come from a newer sender).

    >>> schema = events_schema()
    >>> schema["properties"]["event"]["enum"][:3]
    ['guideDisplayed', 'trackEventReceived', 'npsDisplayed']
    >>> schema["allOf"][0]["then"]
    {'$ref': '#/$defs/GuideDisplayed'}
    """
    names = [cls.category.value for cls in EVENT_TYPES]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{_ID_PREFIX}event",
        "title": "Event",
        "description": "Any Pendo webhook body; `event` says which type it is.",
        "type": "object",
        "properties": {"event": {"enum": names, "description": "The event type."}},
        "required": ["event"],
        "allOf": [
            {
                "if": {"properties": {"event": {"const": cls.category.value}}},
                "then": {"$ref": _LOCAL_DEFS + cls.__name__},
            }
            for cls in EVENT_TYPES
        ],
        "$defs": {
            **{cls.__name__: _event_body(cls, _LOCAL_DEFS) for cls in EVENT_TYPES},
            **_defs(EVENT_TYPES, _LOCAL_DEFS),
        },
    }


# ---------------------------------------------------------------------------------------
# The Segment track message: where SegmentFormatter.format puts each part of the body.

_SEGMENT_TIMESTAMP = {
    "type": "string",
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$",
    "description": "The event's `timestamp`, ISO-8601 UTC with milliseconds.",
}
_LIBRARY_TEXT = {"type": "string", "minLength": 1, "maxLength": 100}
# Pendo's anonymous visitor ids (the formatter's ANONYMOUS_VISITOR_PREFIX).
_ANONYMOUS = "^_PENDO_T_"
_VISITOR_KEYS = ("userId", "anonymousId")


def _segment_message(cls: type[Event]) -> dict[str, Any]:
    body = _event_body(cls, _LOCAL_DEFS)
    wire = body["properties"]
    context = {
        "groupId": _described(dict(wire["accountId"]), "The Pendo `accountId`."),
        "userAgent": wire["userAgent"],
        "library": {
            "type": "object",
            "description": "The formatter's `library_name` and `library_version`.",
            "properties": {"name": _LIBRARY_TEXT, "version": _LIBRARY_TEXT},
            "required": ["name", "version"],
        },
        "pendo": {
            "type": "object",
            "properties": {"app": wire["app"], "subscription": wire["subscription"]},
            "required": ["app", "subscription"],
        },
    }
    keys = {
        "type": {"const": "track"},
        "event": wire["event"],
        "userId": _described(
            {**wire["visitorId"], "not": {"pattern": _ANONYMOUS}},
            "The Pendo `visitorId` of an identified visitor.",
        ),
        "anonymousId": _described(
            {**wire["visitorId"], "pattern": _ANONYMOUS},
            "The Pendo `visitorId` of an anonymous visitor (it begins with `_PENDO_T_`).",
        ),
        "properties": wire["properties"],
        "context": {"type": "object", "properties": context, "required": list(context)},
        "timestamp": _SEGMENT_TIMESTAMP,
        "messageId": _described(
            dict(wire["uniqueId"]), "The Pendo `uniqueId`: Segment drops the copies a retry sends."
        ),
    }
    return {
        "title": f"Segment{cls.__name__}",
        "description": f"A Segment `track` message of a `{cls.category.value}` event.",
        "type": "object",
        "properties": keys,
        "required": [k for k in keys if k not in _VISITOR_KEYS],
        # Exactly one of the two: userId for an identified visitor, anonymousId otherwise.
        "oneOf": [{"required": [k]} for k in _VISITOR_KEYS],
    }


def segment_schema() -> dict[str, Any]:
    """
    The JSON Schema (2020-12) of one Segment ``track`` message, as a Segment webhook sends it.

    Each message of a ``POST /v1/batch`` body's ``batch`` list is one of these: Pendo's
    ``properties`` unchanged, the visitor as ``userId`` (``anonymousId`` for Pendo's
    anonymous ``_PENDO_T_`` visitors), the account and the app in
    ``context``, and ``messageId`` the event's ``uniqueId``.

    >>> schema = segment_schema()
    >>> schema["properties"]["type"], schema["required"]
    ({'const': 'track'}, ['type', 'event'])
    >>> len(schema["allOf"])
    9
    """
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{_ID_PREFIX}segment-track",
        "title": "SegmentTrack",
        "description": (
            "One Segment `track` message from pendo-webhooks (an item of a `/v1/batch` "
            "body's `batch`); `event` is the Pendo event type."
        ),
        "type": "object",
        "properties": {
            "type": {"const": "track"},
            "event": {"enum": [cls.category.value for cls in EVENT_TYPES]},
        },
        "required": ["type", "event"],
        "allOf": [
            {
                "if": {"properties": {"event": {"const": cls.category.value}}},
                "then": {"$ref": f"{_LOCAL_DEFS}Segment{cls.__name__}"},
            }
            for cls in EVENT_TYPES
        ],
        "$defs": {
            **{f"Segment{cls.__name__}": _segment_message(cls) for cls in EVENT_TYPES},
            **_defs(EVENT_TYPES, _LOCAL_DEFS),
        },
    }


# ---------------------------------------------------------------------------------------
# OpenAPI 3.1


def _check_info(info: Mapping[str, Any] | None) -> dict[str, Any]:
    from ._version import __version__  # noqa: PLC0415

    merged: dict[str, Any] = {
        "title": "Pendo webhooks",
        "version": __version__,
        "description": (
            "The webhooks this host sends with pendo-webhooks: one `POST` per event, the "
            "body a JSON object, signed (see the `webhook-signature` and Pendo signature "
            "headers)."
        ),
    }
    if info is not None:
        if not isinstance(info, Mapping):
            raise ValidationError("info", f"must be a mapping, not {type(info).__name__}")
        merged.update(info)
    for key in ("title", "version"):
        if not isinstance(merged.get(key), str) or not merged[key]:
            raise ValidationError(f"info.{key}", "must be non-empty text")
    return merged


def _check_servers(servers: Sequence[Mapping[str, Any] | str] | None) -> list[dict[str, Any]]:
    if servers is None:
        return []
    if isinstance(servers, (str, Mapping)) or not isinstance(servers, Sequence):
        raise ValidationError("servers", "must be a sequence of URLs or server objects")
    out = []
    for i, server in enumerate(servers):
        item = {"url": server} if isinstance(server, str) else dict(server)
        if not isinstance(item.get("url"), str) or not item["url"]:
            raise ValidationError(f"servers[{i}].url", "must be non-empty text")
        out.append(item)
    return out


def _header(description: str, schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


def _headers(signature_header: str) -> dict[str, Any]:
    return {
        "idHeader": _header(
            "The event's `uniqueId`, the same on every attempt: de-duplicate on it "
            "(Standard Webhooks).",
            {"type": "string", "minLength": 1},
            required=True,
        ),
        "timestampHeader": _header(
            "When this attempt was signed, in Unix epoch seconds; refuse one too far from "
            "now (Standard Webhooks).",
            {"type": "string", "pattern": "^[0-9]+$"},
            required=True,
        ),
        "signatureHeader": _header(
            'Space-separated `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.'
            '" + body)>` entries, one per valid secret during a rotation (Standard Webhooks). '
            "Sent when the webhook has a secret and its scheme is `standard` or `both`.",
            {"type": "string"},
            required=False,
        ),
        "pendoSignatureHeader": _header(
            "Lowercase hex HMAC-SHA256 of the body, keyed with the secret's UTF-8 bytes: "
            "Pendo's algorithm. Pendo does not publish the header's name: this is this "
            f"library's default (`{DEFAULT_SIGNATURE_HEADER}`), configurable per webhook. "
            "Sent when the webhook has a secret and its scheme is `pendo` or `both`.",
            {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            required=False,
        ),
        "_names": {
            "idHeader": ID_HEADER,
            "timestampHeader": TIMESTAMP_HEADER,
            "signatureHeader": SIGNATURE_HEADER,
            "pendoSignatureHeader": signature_header,
        },
    }


def _responses() -> dict[str, Any]:
    from .retry import RetryPolicy, Verdict  # noqa: PLC0415

    policy = RetryPolicy()
    waits = ", ".join(_duration(w) for w in policy.schedule)
    retried = (
        f"retried at most {policy.max_retries} times ({policy.max_retries + 1} attempts in "
        f"all), waiting about {waits} (with jitter), then given up"
    )

    def outcome(status: int) -> str:
        verdict = policy.classify(status=status, error_kind=None)
        if verdict is Verdict.DELIVERED:
            return "Delivered: nothing more is sent for this event."
        if verdict is Verdict.RETRY:
            hint = " `Retry-After` is honoured." if status in (429, 503) else ""
            return f"Not delivered yet: {retried}.{hint}"
        if status == 410:
            return "A final failure, and the webhook is disabled: nothing more is sent to it."
        return "A final failure: not retried."  # pragma: no cover - 4xx below are grouped

    retry_after = {
        "Retry-After": {
            "description": "Seconds or an HTTP date: when to try again (429 and 503 only).",
            "schema": {"type": "string"},
        }
    }
    return {
        "2XX": {"description": "Acknowledged. " + outcome(200)},
        "410": {"description": "Gone. " + outcome(410)},
        "429": {"description": "Too many requests. " + outcome(429), "headers": retry_after},
        "5XX": {
            "description": (
                "A server error. " + outcome(500) + " So are timeouts (answer within 15 "
                "seconds) and connection errors; redirects (3xx) are never followed."
            ),
            "headers": retry_after,
        },
        "default": {
            "description": "Any other answer (3xx, another 4xx): a final failure, not retried."
        },
    }


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 60:
        return f"{seconds} s"
    return f"{seconds // 60} min"


def openapi_document(
    *,
    info: Mapping[str, Any] | None = None,
    servers: Sequence[Mapping[str, Any] | str] | None = None,
    signature_header: str = DEFAULT_SIGNATURE_HEADER,
) -> dict[str, Any]:
    """
    An OpenAPI 3.1 document of the webhooks a host sends: one ``webhooks`` entry per event type.

    Each entry is the ``POST`` a receiver gets: the body's schema (the same as
    :func:`event_schema`'s, under ``components/schemas``), the Standard Webhooks headers and
    Pendo's signature header, and the answers a receiver gives, with what each makes the
    sender do (retries, disabling the webhook). Feed it to a code generator to get the body
    types in another language.

    Args:
        info: The host's own ``info`` object, or keys to change in the default one
            (``title``, ``version``, ``description``, ``contact``, ...).
        servers: The host's ``servers``: URLs or OpenAPI server objects.
        signature_header: The Pendo signature header's name, if the host's webhooks use
            another one.

    Raises:
        ValidationError: If *info* is not a mapping or leaves ``title`` or ``version``
            empty, if a server has no URL, or if *signature_header* is not allowed.

    >>> doc = openapi_document(info={"title": "Acme webhooks"}, servers=["https://acme.example"])
    >>> doc["openapi"], doc["info"]["title"], doc["servers"]
    ('3.1.0', 'Acme webhooks', [{'url': 'https://acme.example'}])
    >>> list(doc["webhooks"])[:2]
    ['guideDisplayed', 'trackEventReceived']
    >>> doc["webhooks"]["npsSubmitted"]["post"]["requestBody"]["content"]
    {'application/json': {'schema': {'$ref': '#/components/schemas/NpsSubmitted'}}}
    """
    from .signing._verify import validate_header_name  # noqa: PLC0415

    validate_header_name(signature_header, "signature_header")
    headers = _headers(signature_header)
    names = headers.pop("_names")
    parameters = [{"$ref": f"#/components/parameters/{key}"} for key in headers]
    webhooks = {}
    for cls in EVENT_TYPES:
        name = cls.category.value
        webhooks[name] = {
            "post": {
                "operationId": name,
                "summary": _summary(cls),
                "description": (
                    f"{_event_body(cls, _COMPONENTS)['description']} Verify the signature "
                    "before reading the body, de-duplicate on `webhook-id`, and answer within "
                    "a few seconds."
                ),
                "parameters": parameters,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": _COMPONENTS + cls.__name__}}
                    },
                },
                "responses": _responses(),
            }
        }
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": _check_info(info),
    }
    server_list = _check_servers(servers)
    if server_list:
        document["servers"] = server_list
    document["webhooks"] = webhooks
    document["components"] = {
        "schemas": {
            **{cls.__name__: _event_body(cls, _COMPONENTS) for cls in EVENT_TYPES},
            **_defs(EVENT_TYPES, _COMPONENTS),
        },
        "parameters": {
            key: {"name": names[key], "in": "header", **value} for key, value in headers.items()
        },
    }
    return document


# ---------------------------------------------------------------------------------------
# Operations events: what Alert.to_wire_dict writes.

_OPERATIONS_FIELDS: dict[str, dict[str, Any]] = {
    "webhook_id": {"type": "string", "minLength": 1, "description": "The webhook concerned."},
    "webhook_name": {
        "type": ["string", "null"],
        "description": "Its name; `null` if it was deleted before the alert was made.",
    },
    "delivery_id": {"type": "string", "minLength": 1, "description": "The dead delivery."},
    "event_id": {
        "type": "string",
        "minLength": 1,
        "description": "Its event's id: the `webhook-id` its receiver was sent.",
    },
    "event": {
        "enum": [c.value for c in EventCategory],
        "description": "Its event's category.",
    },
    "attempts": {
        "type": "integer",
        "minimum": 1,
        "description": "How many attempts it had, redeliveries included.",
    },
    "by": {
        "type": "string",
        "minLength": 1,
        "description": "Who disabled the webhook: `system` (the library) or an admin's id.",
    },
    "reason": {
        "type": ["string", "null"],
        "description": "Why: the last error, the disable reason; `null` if not known.",
    },
}

_OPERATIONS_SUMMARY = {
    OperationsCategory.DELIVERY_EXHAUSTED: "A delivery spent its retries and went `dead`.",
    OperationsCategory.WEBHOOK_DISABLED: "A webhook was disabled.",
    OperationsCategory.WEBHOOK_RECOVERED: "A failing webhook's destination answers again.",
}

_TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"


def _to_operations_kind(kind: OperationsCategory | str) -> OperationsCategory:
    try:
        return Alert(kind=kind, webhook_id="-", at=EPOCH_UTC).kind
    except ValidationError:
        raise UnknownEventType(str(kind)) from None


def _operations_body(kind: OperationsCategory) -> dict[str, Any]:
    keys = list(sample_alert(kind, EPOCH_UTC).to_wire_dict()["data"])
    return {
        "title": "".join(part.title() for part in re.split(r"[._]", kind.short)),
        "description": _OPERATIONS_SUMMARY[kind],
        "type": "object",
        "properties": {
            "type": {"const": kind.value, "description": "The operations event type."},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "pattern": _TIMESTAMP_PATTERN,
                "description": "When it happened: UTC, with milliseconds and `Z`.",
            },
            "data": {
                "type": "object",
                "properties": {key: dict(_OPERATIONS_FIELDS[key]) for key in keys},
                "required": keys,
            },
        },
        "required": ["type", "timestamp", "data"],
    }


def operations_schema(kind: OperationsCategory | str | None = None) -> dict[str, Any]:
    """
    The JSON Schema (2020-12) of an operations event body; of any of them without *kind*.

    An operations webhook (:mod:`pendo_webhooks.alerts`) receives
    ``{"type": ..., "timestamp": ..., "data": {...}}``, signed like any URL webhook's
    request (verify it with :func:`~pendo_webhooks.signing.verify`). Every key of *data* is
    present, ``null`` where the schema allows it; keys not named here are allowed (a newer
    sender may add some).

    Args:
        kind: ``"delivery.exhausted"``, ``"webhook.disabled"``, ``"webhook.recovered"``
            (or the full ``pendo_webhooks.`` names, or an
            :class:`~pendo_webhooks.events.OperationsCategory`).

    Raises:
        UnknownEventType: If *kind* names no operations event.

    >>> schema = operations_schema("webhook.disabled")
    >>> schema["$id"], schema["title"]
    ('urn:pendo-webhooks:schema:operations:pendo_webhooks.webhook.disabled', 'WebhookDisabled')
    >>> schema["properties"]["data"]["required"]
    ['webhook_id', 'webhook_name', 'by', 'reason']
    >>> operations_schema()["properties"]["type"]["enum"][0]
    'pendo_webhooks.delivery.exhausted'
    """
    if kind is not None:
        chosen = _to_operations_kind(kind)
        return {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": f"{_ID_PREFIX}operations:{chosen.value}",
            **_operations_body(chosen),
        }
    bodies = {k: _operations_body(k) for k in OperationsCategory}
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{_ID_PREFIX}operations",
        "title": "OperationsEvent",
        "description": "Any operations event body; `type` says which one it is.",
        "type": "object",
        "properties": {
            "type": {
                "enum": [k.value for k in OperationsCategory],
                "description": "The operations event type.",
            }
        },
        "required": ["type"],
        "allOf": [
            {
                "if": {"properties": {"type": {"const": k.value}}},
                "then": {"$ref": _LOCAL_DEFS + body["title"]},
            }
            for k, body in bodies.items()
        ],
        "$defs": {body["title"]: body for body in bodies.values()},
    }
