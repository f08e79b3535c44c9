"""
PII filters: the fields of a webhook's events to drop or to hash before they are stored.

A :class:`FieldFilter` names one field of the Pendo event by its dotted wire path
(``visitorId``, ``properties.nps.reason``) and says what to do with it
(:class:`FilterAction`). A webhook's filters are applied to the event's Pendo JSON (the
dict :func:`~pendo_webhooks.events.to_wire_dict` gives) *before* its channel makes the
message, once, at enqueue: the stored bytes are the filtered ones, and they are what is
signed and sent on every attempt.

Hashing is keyed: :func:`hash_value` is the lowercase hex HMAC-SHA256 of the value, keyed
with the UTF-8 bytes of the webhook's own ``hash_key``, so one visitor hashes to the same
value for one webhook every time, and to different values for different webhooks.

Strictly private; import these names from :mod:`pendo_webhooks.registry`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets as _secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..exceptions import InvalidType, ValidationError
from ..signing._secret import Secret


__all__ = [
    "ACCOUNT_SEPARATOR",
    "ANONYMOUS_PREFIX",
    "HASH_KEY_PREFIX",
    "MAX_FILTERS",
    "MAX_PATH_LENGTH",
    "FieldFilter",
    "FilterAction",
    "apply_filters",
    "hash_value",
    "new_hash_key",
    "to_filters",
]

#: A webhook has at most this many filters.
MAX_FILTERS = 50
#: A filter's path is at most this many characters.
MAX_PATH_LENGTH = 300
#: The prefix of the hash keys :func:`new_hash_key` makes.
HASH_KEY_PREFIX = "pii_"
#: How Pendo's anonymous visitor ids begin; a hashed value keeps it (see :func:`hash_value`).
ANONYMOUS_PREFIX = "_PENDO_T_"
#: What joins a parent and a child account id; hashed text keeps it (see :func:`hash_value`).
ACCOUNT_SEPARATOR = "::"

_MAX_DEPTH = 12
_ENCODE = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode


class FilterAction(str, enum.Enum):
    """
    What a :class:`FieldFilter` does to its field.

    >>> FilterAction("hash") is FilterAction.HASH
    True
    """

    #: Remove the key from the body.
    DROP = "drop"
    #: Replace the value with its keyed hash (:func:`hash_value`).
    HASH = "hash"

    def __str__(self) -> str:
        return self.value


def _to_action(value: FilterAction | str) -> FilterAction:
    try:
        return FilterAction(value)
    except ValueError:
        msg = f"must be one of {', '.join(repr(a.value) for a in FilterAction)}"
        raise ValidationError("filters", msg) from None


def _check_path(_: object, __: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str):
        msg = f"a path must be text, not {type(value).__name__}"
        raise InvalidType("filters", msg)
    if not value or len(value) > MAX_PATH_LENGTH:
        msg = f"a path must be 1 to {MAX_PATH_LENGTH} characters, not {len(value)}"
        raise ValidationError("filters", msg)
    parts = value.split(".")
    if any(not p or p != p.strip() for p in parts):
        msg = (
            f"{value!r} is not a dotted path of wire keys (like 'properties.nps.reason'): "
            "no empty parts, no surrounding spaces"
        )
        raise ValidationError("filters", msg)
    if len(parts) > _MAX_DEPTH:
        msg = f"{value!r} is more than {_MAX_DEPTH} keys deep"
        raise ValidationError("filters", msg)
    if any(ch < " " or ch == "\x7f" for ch in value):
        msg = f"{value!r} must not contain control characters"
        raise ValidationError("filters", msg)


@attrs.frozen(order=True)
class FieldFilter:
    """
    Drop or hash one field of the events a webhook sends; immutable.

    *path* is the field's dotted wire path in the Pendo JSON (``"visitorId"``,
    ``"properties.nps.reason"``); a path through a list applies to every item of it
    (``"properties.guideProperties.steps.id"``). Which paths exist depends on the event
    types: the registry refuses a path that none of a webhook's types has (see
    :func:`~pendo_webhooks.registry.filterable_paths`).

    Written as text, a filter is ``"<action>:<path>"`` (what the console script's
    ``--drop``/``--hash`` make, and what :meth:`parse` reads).

    Raises:
        ValidationError: Naming ``filters``, for an unknown action or a path that is
            empty, has empty parts, is longer than 300 characters or deeper than 12 keys.

    >>> f = FieldFilter("properties.nps.reason", "drop")
    >>> f
    FieldFilter(path='properties.nps.reason', action=<FilterAction.DROP: 'drop'>)
    >>> str(f), f.keys
    ('drop:properties.nps.reason', ('properties', 'nps', 'reason'))
    >>> FieldFilter.parse("hash:visitorId").action
    <FilterAction.HASH: 'hash'>
    >>> FieldFilter("properties..reason", "drop")
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.ValidationError: filters: 'properties..reason' is not a dotted path of wire keys (like 'properties.nps.reason'): no empty parts, no surrounding spaces
    """  # noqa: E501 - a doctest's output line

    path: str = attrs.field(validator=_check_path)
    action: FilterAction = attrs.field(converter=_to_action)

    @classmethod
    def parse(cls, text: str) -> FieldFilter:
        """
        Read a filter written ``"<action>:<path>"`` (``"drop:userAgent"``).

        Raises:
            ValidationError: Naming ``filters``, if *text* has no ``:`` or a bad part.
        """
        if not isinstance(text, str) or ":" not in text:
            msg = f"{str(text)[:100]!r} is not '<action>:<path>' (like 'hash:visitorId')"
            raise ValidationError("filters", msg)
        action, path = text.split(":", 1)
        return cls(path, action.strip())

    @property
    def keys(self) -> tuple[str, ...]:
        """
        The path's keys, outermost first.
        """
        return tuple(self.path.split("."))

    def covers(self, other: FieldFilter) -> bool:
        """
        Whether *other*'s path is this one's or lies below it.

        >>> FieldFilter("properties.nps", "drop").covers(FieldFilter("properties.nps.reason", "hash"))
        True
        """  # noqa: E501 - a doctest's input line
        return other.path == self.path or other.path.startswith(self.path + ".")

    def __str__(self) -> str:
        return f"{self.action.value}:{self.path}"


def to_filters(value: Iterable[FieldFilter | str] | None) -> tuple[FieldFilter, ...]:
    """
    Return *value* as a webhook's filters: :class:`FieldFilter` values (text is parsed).

    Raises:
        ValidationError: Naming ``filters``: more than :data:`MAX_FILTERS` of them, a path
            given twice, or a path below another filter's path (which would already
            have dropped or hashed it).

    >>> to_filters(["hash:visitorId", FieldFilter("userAgent", "drop")])
    (FieldFilter(path='visitorId', action=<FilterAction.HASH: 'hash'>), FieldFilter(path='userAgent', action=<FilterAction.DROP: 'drop'>))
    >>> to_filters(["drop:properties.nps", "hash:properties.nps.reason"])
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.ValidationError: filters: 'hash:properties.nps.reason' lies below 'drop:properties.nps', which already takes care of it
    """  # noqa: E501 - doctest output lines
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = "must be a collection of FieldFilter values or '<action>:<path>' texts"
        raise ValidationError("filters", msg)
    filters = tuple(v if isinstance(v, FieldFilter) else FieldFilter.parse(v) for v in value)
    if len(filters) > MAX_FILTERS:
        msg = f"at most {MAX_FILTERS} filters are allowed, not {len(filters)}"
        raise ValidationError("filters", msg)
    for i, one in enumerate(filters):
        for other in filters[i + 1 :]:
            if one.path == other.path:
                msg = f"{one.path!r} is given more than once"
                raise ValidationError("filters", msg)
            outer, inner = (one, other) if one.covers(other) else (other, one)
            if outer.covers(inner):
                msg = f"{str(inner)!r} lies below {str(outer)!r}, which already takes care of it"
                raise ValidationError("filters", msg)
    return filters


def new_hash_key() -> Secret:
    """
    Make a fresh random hash key: ``pii_`` and 43 URL-safe characters (256 bits).

    >>> key = new_hash_key()
    >>> key, key.reveal().startswith("pii_"), len(key.reveal())
    (Secret('<redacted>'), True, 47)
    """
    return Secret(HASH_KEY_PREFIX + _secrets.token_urlsafe(32))


def hash_value(key: Secret, value: object) -> str:
    """
    The keyed hash that replaces *value*: lowercase hex HMAC-SHA256, keyed with *key*'s UTF-8.

    A string is hashed as its UTF-8 bytes; any other JSON value as its compact JSON text
    (keys sorted). Two kinds of text keep their shape:

    * text holding ``::`` (a ``"Parent::Child"`` account id) is hashed part by part,
      ``<hex>::<hex>``: it stays a valid parent-child id, and each part hashes as the
      account does alone (``parentAccountId``, another event's ``accountId``);
    * text that begins with Pendo's anonymous-visitor prefix ``_PENDO_T_`` keeps the
      prefix (``_PENDO_T_<hex>``), so an anonymous visitor stays anonymous (and a
      Segment ``anonymousId``).

    A receiver that knows the key can compute the same hash of a plain value::

        hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()

    >>> key = Secret("pii_example-key")
    >>> hash_value(key, "Webhook Visitor")
    'bb457a72a1eea9eb39ae3369809caa898a5d2c89fb0aea169f894f2339ad6fdd'
    >>> hash_value(key, "_PENDO_T_x1Yz")[:13]
    '_PENDO_T_d66a'
    >>> hash_value(Secret("pii_another-key"), "Webhook Visitor")[:8]
    '281a28a9'
    >>> parts = hash_value(key, "Acme"), hash_value(key, "Acme EU")
    >>> hash_value(key, "Acme::Acme EU") == "::".join(parts)
    True
    """
    if not isinstance(value, str):
        return _digest(key, _ENCODE(value))
    if ACCOUNT_SEPARATOR in value:
        return ACCOUNT_SEPARATOR.join(
            _digest(key, part) for part in value.split(ACCOUNT_SEPARATOR)
        )
    if value.startswith(ANONYMOUS_PREFIX):
        return ANONYMOUS_PREFIX + _digest(key, value)
    return _digest(key, value)


def _digest(key: Secret, text: str) -> str:
    data = text.encode("utf-8", "surrogatepass")
    return hmac.new(key.pendo_key, data, hashlib.sha256).hexdigest()


def apply_filters(
    wire: Mapping[str, Any], filters: Sequence[FieldFilter], key: Secret | None
) -> tuple[dict[str, Any], tuple[FieldFilter, ...]]:
    """
    Return *wire* (an event's Pendo JSON) with *filters* applied, and the filters that matched.

    *wire* is not changed: what a filter touches is copied. A filter whose path is not in
    this event matches nothing and changes nothing. Key order is kept (a hashed value
    stays where it was).

    Raises:
        ValidationError: Naming ``hash_key``, if a hash filter matches and *key* is ``None``.

    >>> wire = {"userAgent": "Mozilla", "visitorId": "v1", "properties": {"nps": {"rating": 9, "reason": "Great"}}}
    >>> filtered, applied = apply_filters(
    ...     wire, to_filters(["drop:properties.nps.reason", "drop:accountId"]), None)
    >>> filtered
    {'userAgent': 'Mozilla', 'visitorId': 'v1', 'properties': {'nps': {'rating': 9}}}
    >>> [str(f) for f in applied]
    ['drop:properties.nps.reason']
    """  # noqa: E501 - a doctest's input line
    result: Any = wire
    applied: list[FieldFilter] = []
    for one in filters:
        if one.action is FilterAction.HASH and key is None:
            # Checked before the walk: a filter that would match must not pass unhashed.
            if _find(result, one.keys):
                msg = "is required to hash; the webhook has none"
                raise ValidationError("hash_key", msg)
            continue
        result, hit = _apply(result, one.keys, one.action, key)
        if hit:
            applied.append(one)
    return dict(result), tuple(applied)


def _find(node: Any, keys: tuple[str, ...]) -> bool:
    if isinstance(node, Mapping):
        if keys[0] not in node:
            return False
        return len(keys) == 1 or _find(node[keys[0]], keys[1:])
    if isinstance(node, list | tuple):
        return any(_find(item, keys) for item in node)
    return False


def _apply(
    node: Any, keys: tuple[str, ...], action: FilterAction, key: Secret | None
) -> tuple[Any, bool]:
    if isinstance(node, list | tuple):
        items = [_apply(item, keys, action, key) for item in node]
        if not any(hit for _, hit in items):
            return node, False
        return [item for item, _ in items], True
    if not isinstance(node, Mapping) or keys[0] not in node:
        return node, False
    head, rest = keys[0], keys[1:]
    if rest:
        child, hit = _apply(node[head], rest, action, key)
        if not hit:
            return node, False
        copy = dict(node)
        copy[head] = child
        return copy, True
    copy = dict(node)
    if action is FilterAction.DROP:
        del copy[head]
    else:
        if key is None:  # apply_filters checks first
            raise AssertionError("unreachable")
        copy[head] = hash_value(key, node[head])
    return copy, True
