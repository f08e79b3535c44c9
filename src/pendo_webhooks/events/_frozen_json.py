"""
Deep-frozen JSON values, so a frozen event's open-ended ``event_properties`` stay frozen.

Strictly private. :class:`FrozenDict` and :class:`FrozenList` subclass ``dict`` and ``list``,
so they compare equal to plain ones, ``json.dumps`` writes them natively (keeping key order),
and code that expects a ``dict`` keeps working; every method that would change them raises
``TypeError``, as changing a tuple does. Both are hashable.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from ..exceptions import ValidationError
from ._checks import INT64_MAX, INT64_MIN, MAX_JSON_DEPTH, has_lone_surrogate


__all__ = ["FrozenDict", "FrozenList", "freeze_json", "json_path"]

_PLAIN_KEY_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*", re.ASCII)


def _read_only(self: object, *_: object, **__: object) -> NoReturn:
    raise TypeError(f"{type(self).__name__} is read-only; build a new value instead")


class FrozenDict(dict[str, Any]):
    """
    A ``dict`` that cannot be changed; equal to a plain ``dict`` with the same items.

    >>> d = FrozenDict({"plan": "pro"})
    >>> d == {"plan": "pro"}, hash(d) == hash(FrozenDict({"plan": "pro"}))
    (True, True)
    >>> d["plan"] = "basic"
    Traceback (most recent call last):
      ...
    TypeError: FrozenDict is read-only; build a new value instead
    """

    __slots__ = ()

    __setitem__ = _read_only
    __delitem__ = _read_only
    __ior__ = _read_only
    clear = _read_only
    pop = _read_only
    popitem = _read_only
    setdefault = _read_only
    update = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


class FrozenList(list[Any]):
    """
    A ``list`` that cannot be changed; equal to a plain ``list`` with the same items.

    >>> FrozenList([1, 2]) == [1, 2]
    True
    """

    __slots__ = ()

    __setitem__ = _read_only
    __delitem__ = _read_only
    __iadd__ = _read_only
    __imul__ = _read_only
    append = _read_only
    clear = _read_only
    extend = _read_only
    insert = _read_only
    pop = _read_only
    remove = _read_only
    reverse = _read_only
    sort = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (list(self),))

    def __repr__(self) -> str:
        return f"FrozenList({list.__repr__(self)})"


def json_path(path: str, key: str) -> str:
    """
    *path* extended by object key *key*: ``.key``, or ``["a.b"]`` when the key is not plain.

    >>> json_path("event_properties", "plan"), json_path("", "a.b")
    ('event_properties.plan', '["a.b"]')
    """
    if _PLAIN_KEY_RE.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def freeze_json(value: Any, path: str, depth: int = 0) -> Any:
    """
    A deep-frozen copy of the JSON value *value*, or a :class:`ValidationError` naming the path.

    Objects must have string keys, numbers must be finite, integers must fit in 64 bits,
    strings must be encodable as UTF-8, and nesting must stay within ``MAX_JSON_DEPTH``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if has_lone_surrogate(value):
            raise ValidationError(path, "must not contain lone surrogates (U+D800..U+DFFF)")
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(path, "must fit in a signed 64-bit integer")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(path, "must be finite (NaN and infinities are not JSON)")
        return value
    if isinstance(value, (Mapping, list, tuple)):
        if depth >= MAX_JSON_DEPTH:
            raise ValidationError(path, f"must not nest more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(value, Mapping):
            return _freeze_object(value, path, depth + 1)
        return FrozenList(freeze_json(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    raise ValidationError(
        path,
        "must be JSON (an object, array, string, number, boolean or null),"
        f" not {type(value).__name__}",
    )


def _freeze_object(value: Mapping[Any, Any], path: str, depth: int) -> FrozenDict:
    items: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValidationError(path, f"object keys must be strings, not {type(key).__name__}")
        if has_lone_surrogate(key):
            raise ValidationError(
                path, "object keys must not contain lone surrogates (U+D800..U+DFFF)"
            )
        items[key] = freeze_json(item, json_path(path, key), depth)
    return FrozenDict(items)
