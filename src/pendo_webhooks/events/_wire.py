"""
Reading Pendo's wire format: :func:`parse_event`, and the library's cattrs converter.

Strictly private; import the names from :mod:`pendo_webhooks.events`.

Both directions go through one cattrs converter that this module owns (never cattrs' global
one). Unstructuring uses the hand-written, fast hooks of :mod:`._serialize`, which spell out
Pendo's key order; structuring uses hooks cattrs generates, where each field's hook runs the
same check as the model's validator, so that one parse reports every problem, each under
its wire path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, TypeVar, overload

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, override

from ..exceptions import (
    ConfigurationError,
    InvalidEventPayload,
    UnexpectedEventType,
    UnknownEventType,
    ValidationError,
)
from . import _checks as checks
from ._category import EventCategory
from ._checks import ONE_MILLISECOND, ONE_SECOND
from ._frozen_json import freeze_json
from ._models import EVENT_TYPES, Event, _Envelope
from ._serialize import UNSTRUCTURE
from ._values import (
    App,
    FieldCheck,
    GuideProperties,
    GuideStep,
    GuideUser,
    NpsResponse,
    PollResponse,
    Subscription,
)


__all__ = ["EVENT_CLASSES", "make_converter", "parse_event"]

#: Each category's event class.
EVENT_CLASSES: Mapping[EventCategory, type[Event]] = MappingProxyType(
    {cls.category: cls for cls in EVENT_TYPES}
)
_BY_NAME: dict[str, type[Event]] = {cls.category.value: cls for cls in EVENT_TYPES}

#: Attributes that are host metadata: never read from the wire nor written to it.
HOST_ONLY = frozenset({"agent_version", "source_ip"})

_NESTED_TYPES = (GuideUser, GuideStep, App, Subscription, NpsResponse, PollResponse)


def camel(name: str) -> str:
    """
    The wire key for a Python attribute name: ``guide_step_id`` -> ``guideStepId``.
    """
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _wire_attributes(cls: type) -> list[attrs.Attribute[Any]]:
    return [a for a in attrs.fields(cls) if a.name not in HOST_ONLY]


_ENVELOPE_NAMES = frozenset(a.name for a in _wire_attributes(_Envelope))


def _wire_paths(cls: type) -> dict[str, str]:
    # Attribute name -> wire path, relative to the object the class is read from.
    if not issubclass(cls, _Envelope):
        return {a.name: camel(a.name) for a in _wire_attributes(cls)}
    return {
        a.name: camel(a.name) if a.name in _ENVELOPE_NAMES else f"properties.{camel(a.name)}"
        for a in _wire_attributes(cls)
    }


_WIRE_PATHS: dict[type, dict[str, str]] = {
    cls: _wire_paths(cls) for cls in (*_NESTED_TYPES, GuideProperties, *EVENT_TYPES)
}


# ---------------------------------------------------------------------------------------
# Parsing


class _Skipped(Exception):
    """A property that was not looked at because ``properties`` itself is unusable."""


_MISSING: Any = object()
_SKIPPED: Any = object()

_CheckHook = Callable[[Any, Any], Any]


def _check_hook(
    check: Callable[[Any, str], object], converter: Callable[[Any], Any] | None
) -> _CheckHook:
    if converter is None:

        def hook(value: Any, _: Any) -> Any:
            return check(value, "")

        return hook

    def convert_and_check(value: Any, _: Any) -> Any:
        return check(converter(value), "")

    return convert_and_check


def _epoch_hook(unit: timedelta) -> _CheckHook:
    def hook(value: Any, _: Any) -> Any:
        return checks.from_epoch(value, "", unit)

    return hook


def _object_hook(structure: _CheckHook) -> _CheckHook:
    def hook(value: Any, type_: Any) -> Any:
        checks.check_mapping(value, "")
        return structure(value, type_)

    return hook


def _json_object_hook(value: Any, _: Any) -> Any:
    checks.check_mapping(value, "")
    return freeze_json(value, "")


def _attribute_hook(conv: cattrs.Converter, attribute: attrs.Attribute[Any]) -> _CheckHook:
    converter: object = attribute.converter
    type_: Any = attribute.type
    if converter is checks.to_utc_seconds:
        return _epoch_hook(ONE_SECOND)
    if converter is checks.to_utc_millis:
        return _epoch_hook(ONE_MILLISECOND)
    if attribute.name == "event_properties":
        return _json_object_hook
    if attribute.name == "steps":

        def steps(value: Any, _: Any) -> Any:
            checks.check_array(value, "")
            return conv.structure(value, type_)

        return steps
    if attrs.has(type_):
        return conv.get_structure_hook(type_)
    validator = attribute.validator
    if not isinstance(validator, FieldCheck):  # pragma: no cover - a model bug
        raise TypeError(f"{attribute.name} has no FieldCheck validator")
    return _check_hook(validator.check, converter if callable(converter) else None)


def _top_level(hook: _CheckHook) -> _CheckHook:
    def top(value: Any, type_: Any) -> Any:
        if value is _MISSING:
            raise ValidationError("", "required")
        if value is _SKIPPED:
            raise _Skipped
        return hook(value, type_)

    return top


def make_converter() -> cattrs.Converter:
    """
    Create the converter: hand-written unstructure hooks, generated structure hooks.
    """
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    overrides: dict[str, Any]
    for nested in (*_NESTED_TYPES, GuideProperties):  # dependencies first
        overrides = {
            a.name: override(rename=camel(a.name), struct_hook=_attribute_hook(conv, a))
            for a in _wire_attributes(nested)
        }
        fn = make_dict_structure_fn(nested, conv, _cattrs_use_linecache=False, **overrides)
        conv.register_structure_hook(nested, _object_hook(fn))
    for event in EVENT_TYPES:
        # Events are structured from a flat dict keyed by attribute name (see _flatten).
        overrides = {name: override(omit=True) for name in HOST_ONLY}
        for a in _wire_attributes(event):
            overrides[a.name] = override(struct_hook=_top_level(_attribute_hook(conv, a)))
        fn = make_dict_structure_fn(event, conv, _cattrs_use_linecache=False, **overrides)
        conv.register_structure_hook(event, fn)
    for cls, unstructure in UNSTRUCTURE.items():
        conv.register_unstructure_hook(cls, unstructure)
    return conv


_CONVERTER = make_converter()


def _flatten(raw: Mapping[str, Any], cls: type[Event], problems: list[str]) -> dict[str, Any]:
    # Envelope keys from the top level, properties from "properties"; only keys we know,
    # so an unknown property can never shadow an envelope key.
    properties = raw.get("properties", _MISSING)
    if properties is _MISSING:
        problems.append("properties: required")
    elif not isinstance(properties, Mapping):
        problems.append(f"properties: must be an object, not {type(properties).__name__}")
    flat: dict[str, Any] = {}
    for name, path in _WIRE_PATHS[cls].items():
        if name in _ENVELOPE_NAMES:
            flat[name] = raw.get(path, _MISSING)
        elif isinstance(properties, Mapping):
            flat[name] = properties.get(path.removeprefix("properties."), _MISSING)
        else:
            flat[name] = _SKIPPED
    return flat


def _join(path: str, suffix: str) -> str:
    if not suffix:
        return path
    if not path or suffix.startswith("["):
        return path + suffix
    return f"{path}.{suffix}"


_Note = TypeVar("_Note", AttributeValidationNote, IterableValidationNote)


def _note(exc: BaseException, kind: type[_Note]) -> _Note | None:
    # The note cattrs attached to a sub-exception, saying which attribute or item it is about.
    return next((n for n in getattr(exc, "__notes__", ()) if isinstance(n, kind)), None)


def _problems(exc: BaseException, path: str) -> Iterator[str]:
    if isinstance(exc, cattrs.ClassValidationError):
        names = _WIRE_PATHS.get(exc.cl, {})
        for sub in exc.exceptions:
            note = _note(sub, AttributeValidationNote)
            if note is not None:
                yield from _problems(sub, _join(path, names.get(note.name, note.name)))
            elif isinstance(sub, ValidationError):  # the constructor's rule across fields
                yield f"{_join(path, names.get(sub.field, sub.field))}: {sub.reason}"
            else:  # pragma: no cover - cattrs notes every other error
                yield from _problems(sub, path)
    elif isinstance(exc, cattrs.IterableValidationError):
        for sub in exc.exceptions:
            item = _note(sub, IterableValidationNote)
            yield from _problems(sub, path if item is None else f"{path}[{item.index}]")
    elif isinstance(exc, ValidationError):
        yield f"{_join(path, exc.field) or '$'}: {exc.reason}"
    elif isinstance(exc, KeyError):
        yield f"{path}: required"
    elif not isinstance(exc, _Skipped):
        yield f"{path or '$'}: invalid ({type(exc).__name__})"


class _DuplicateKey(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:  # pragma: no branch - a duplicate is always found
            if key in seen:
                raise _DuplicateKey(f"duplicate key {json.dumps(key)}")
            seen.add(key)
    return obj


_DECODE = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys).decode


def _load(data: object) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEventPayload([f"$: not valid UTF-8 (at byte {exc.start})"]) from None
    if not isinstance(data, str):
        raise InvalidEventPayload(
            [f"$: must be bytes, str or a mapping, not {type(data).__name__}"]
        )
    if data.startswith("\ufeff"):
        raise InvalidEventPayload(["$: invalid JSON: starts with a byte order mark"])
    try:
        loaded = _DECODE(data)
    except json.JSONDecodeError as exc:
        raise InvalidEventPayload([f"$: invalid JSON: {exc}"]) from None
    except RecursionError:
        raise InvalidEventPayload(["$: invalid JSON: nested too deeply"]) from None
    except ValueError as exc:  # NaN/Infinity, a duplicate key, an integer too long to read
        raise InvalidEventPayload([f"$: invalid JSON: {exc}"]) from None
    if not isinstance(loaded, dict):
        raise InvalidEventPayload([f"$: must be a JSON object, not {type(loaded).__name__}"])
    return loaded


EventT = TypeVar("EventT", bound=Event)


@overload
def parse_event(data: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> Event: ...
@overload
def parse_event(
    data: bytes | bytearray | memoryview | str | Mapping[str, Any], expected: type[EventT]
) -> EventT: ...


def parse_event(
    data: bytes | bytearray | memoryview | str | Mapping[str, Any],
    expected: type[EventT] | None = None,
) -> Event:
    """
    Read a Pendo webhook body (or its already-decoded JSON object) into its event class.

    Without *expected*, the result is typed as the union :data:`Event`: narrow it with
    ``isinstance`` or ``match`` before reading a type's own attributes. With the event class
    a handler expects, the result is typed as that class, and a body of another type is
    refused.

    Bytes must be UTF-8. Unknown keys, at the top level or in ``properties``, are ignored,
    so newer senders stay readable; known keys must have exactly the wire type (no ``"5"``
    for ``5``, no ``true`` for ``1``). Host metadata (``agent_version``, ``source_ip``) is
    never on the wire, so it is ``None`` on the result.

    Args:
        data: The request body, or its decoded JSON object.
        expected: The event class the caller expects, such as
            :class:`~pendo_webhooks.events.NpsSubmitted`.

    Raises:
        UnknownEventType: If ``event`` is a string naming no :class:`EventCategory`.
        UnexpectedEventType: If *expected* is given and ``event`` names another type
            (also an :class:`~pendo_webhooks.exceptions.InvalidEventPayload`).
        ConfigurationError: If *expected* is not an event class.
        InvalidEventPayload: Listing every problem, each as ``"<wire path>: <reason>"``
            (``"properties.nps.rating: must be between 0 and 10"``; ``$`` is the whole body):
            bytes that are not UTF-8, invalid JSON (NaN and duplicate keys included), a
            missing or non-string ``event``, missing keys, wrong types and bad values.

    >>> from pendo_webhooks.events import to_wire
    >>> from pendo_webhooks.testing import sample_event
    >>> e = sample_event("npsSubmitted")
    >>> parse_event(to_wire(e)) == e
    True
    >>> parse_event(b'{"event": "npsSubmitted", "properties": {"nps": {"rating": 11}}}')
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.InvalidEventPayload: app: required; accountId: required; ...
    >>> from pendo_webhooks.events import NpsSubmitted
    >>> parse_event(to_wire(e), NpsSubmitted).nps.rating
    9
    >>> from pendo_webhooks.exceptions import UnexpectedEventType
    >>> try:
    ...     parse_event(to_wire(sample_event("guideDisplayed")), NpsSubmitted)
    ... except UnexpectedEventType as exc:
    ...     print(exc)
    event: expected 'npsSubmitted', got 'guideDisplayed'
    """
    if expected is not None and expected not in EVENT_TYPES:
        raise ConfigurationError(f"expected: must be an event class, not {expected!r}")
    raw = _load(data)
    name = raw.get("event", _MISSING)
    if name is _MISSING:
        raise InvalidEventPayload(["event: required"])
    if not isinstance(name, str):
        raise InvalidEventPayload([f"event: must be a string, not {type(name).__name__}"])
    cls = _BY_NAME.get(name)
    if cls is None:
        raise UnknownEventType(name)
    if expected is not None and cls is not expected:
        raise UnexpectedEventType(expected.category.value, name)
    problems: list[str] = []
    flat = _flatten(raw, cls, problems)
    try:
        event: Event = _CONVERTER.structure(flat, cls)
    except cattrs.BaseValidationError as exc:
        problems.extend(_problems(exc, ""))
    except ValidationError as exc:  # pragma: no cover - cattrs < 26 does not wrap these
        problems.append(f"{_WIRE_PATHS[cls].get(exc.field, exc.field)}: {exc.reason}")
    if problems:
        raise InvalidEventPayload(problems)
    return event
