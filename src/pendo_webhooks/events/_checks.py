"""
Field checks shared by the event models (construction) and the wire parser.

Strictly private. Every check takes ``(value, field)``, returns the value when it is
acceptable and raises :class:`~pendo_webhooks.exceptions.ValidationError` naming *field*
otherwise. The models call them with Python attribute paths (``nps.rating``); the parser
calls them with ``""`` and puts the wire path in front itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

from ..exceptions import ValidationError


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: The Unix epoch as an aware UTC datetime.
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_SECOND = timedelta(seconds=1)
ONE_MILLISECOND = timedelta(milliseconds=1)

_UNIQUE_ID_RE = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
UNIQUE_ID_MAX_LENGTH = 100

#: Deepest nesting of arrays and objects accepted in ``event_properties``.
MAX_JSON_DEPTH = 64

NPS_SOURCES = ("web", "email")


def _fail(field: str, reason: str) -> NoReturn:
    raise ValidationError(field, reason)


def _kind(value: object) -> str:
    return type(value).__name__


def has_lone_surrogate(value: str) -> bool:
    """
    Whether *value* holds a code point in U+D800..U+DFFF, which UTF-8 cannot encode.
    """
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text(value: Any, field: str) -> str:
    """
    A string, possibly empty, that UTF-8 can encode.
    """
    if type(value) is str and value.isascii():  # the common case, decided at once
        return value
    if not isinstance(value, str):
        _fail(field, f"must be a string, not {_kind(value)}")
    if has_lone_surrogate(value):
        _fail(field, "must not contain lone surrogates (U+D800..U+DFFF)")
    return value


def identifier(value: Any, field: str) -> str:
    """
    A non-empty :func:`text`.
    """
    checked = text(value, field)
    if not checked:
        _fail(field, "must not be empty")
    return checked


def unique_id(value: Any, field: str) -> str:
    """
    A de-duplication key: 1 to 100 characters from ``[A-Za-z0-9_-]``.
    """
    checked = identifier(value, field)
    if len(checked) > UNIQUE_ID_MAX_LENGTH:
        _fail(field, f"must be at most {UNIQUE_ID_MAX_LENGTH} characters")
    if _UNIQUE_ID_RE.fullmatch(checked) is None:
        _fail(field, "may only contain A-Z, a-z, 0-9, '_' and '-'")
    return checked


def is_integer(value: object) -> bool:
    """
    Whether *value* is an ``int`` and not a ``bool``.
    """
    return isinstance(value, int) and not isinstance(value, bool)


def int64(value: Any, field: str) -> int:
    """
    An ``int`` (``bool`` is not one) that fits in a signed 64-bit integer.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(field, f"must be an integer, not {_kind(value)}")
    if not INT64_MIN <= value <= INT64_MAX:
        _fail(field, "must fit in a signed 64-bit integer")
    return value


def nps_rating(value: Any, field: str) -> int:
    """
    An NPS rating: an ``int`` from 0 to 10.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(field, f"must be an integer, not {_kind(value)}")
    if not 0 <= value <= 10:
        _fail(field, "must be between 0 and 10")
    return value


def nps_source(value: Any, field: str) -> str:
    """
    Where an NPS answer came from: ``"web"`` or ``"email"``.
    """
    checked = text(value, field)
    if checked not in NPS_SOURCES:
        _fail(field, "must be 'web' or 'email'")
    return checked


def finite_float(value: float, field: str) -> float:
    """
    A ``float`` that is neither NaN nor infinite.
    """
    if not math.isfinite(value):
        _fail(field, "must be finite (NaN and infinities are not JSON)")
    return value


def poll_response(value: Any, field: str) -> str | int | float | tuple[str, ...]:
    """
    A poll answer: a string, a number, or a tuple of strings (one per chosen option).
    """
    if isinstance(value, str):
        return text(value, field)
    if is_integer(value):
        return int64(value, field)
    if isinstance(value, float):
        return finite_float(value, field)
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            text(item, f"{field}[{i}]")
        return value
    _fail(field, f"must be a string, a number or a list of strings, not {_kind(value)}")


def tuple_from_list(value: Any) -> Any:
    """
    Converter: a ``list`` becomes a ``tuple``; anything else is left for the validator.
    """
    return tuple(value) if isinstance(value, list) else value


def aware_utc(value: Any, field: str) -> datetime:
    """
    An aware UTC datetime (the converters below have already normalized good input).
    """
    if not isinstance(value, datetime):
        _fail(field, f"must be a datetime, not {_kind(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        _fail(field, "must be timezone-aware (naive datetimes are ambiguous)")
    if value.tzinfo is not timezone.utc:
        _fail(field, "must be within datetime's range once converted to UTC")
    return value


def _to_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        return None
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        return None


def to_utc_seconds(value: datetime) -> datetime:
    """
    Converter: an aware datetime in UTC, truncated to the whole second.

    Anything else is returned unchanged for the validator to reject with the field's name.
    """
    utc = _to_utc(value)
    if utc is None:
        return value
    return utc.replace(microsecond=0, fold=0)


def to_utc_millis(value: datetime) -> datetime:
    """
    Converter: an aware datetime in UTC, truncated to the whole millisecond.

    Anything else is returned unchanged for the validator to reject with the field's name.
    """
    utc = _to_utc(value)
    if utc is None:
        return value
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000, fold=0)


def from_epoch(value: Any, field: str, unit: timedelta) -> datetime:
    """
    The aware UTC datetime *value* units after the epoch (the wire's integer timestamps).
    """
    count = int64(value, field)
    try:
        return EPOCH + count * unit
    except OverflowError:
        _fail(field, "is outside the range of dates this library supports (years 1 to 9999)")


def check_mapping(value: Any, field: str) -> Mapping[Any, Any]:
    """
    A :class:`~collections.abc.Mapping` (a JSON object).
    """
    if not isinstance(value, Mapping):
        _fail(field, f"must be an object, not {_kind(value)}")
    return value


def check_array(value: Any, field: str) -> list[Any] | tuple[Any, ...]:
    """
    A ``list`` or ``tuple`` (a JSON array).
    """
    if not isinstance(value, (list, tuple)):
        _fail(field, f"must be an array, not {_kind(value)}")
    return value
