"""
Argument checks the Dispatcher's calls share: each raises ValidationError naming the argument.

Strictly private.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..exceptions import ValidationError


__all__ = ["aware_arg", "count_arg", "seconds_arg"]


def count_arg(name: str, value: int, *, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        msg = f"must be an integer from 1 to {most}, got {value!r}"
        raise ValidationError(name, msg)
    return value


def seconds_arg(name: str, value: float | timedelta) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not 0 < seconds <= 10**8
    ):
        msg = f"must be a positive number of seconds (or a timedelta), got {value!r}"
        raise ValidationError(name, msg)
    return float(seconds)


def aware_arg(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationError(name, "must be a timezone-aware datetime")
    return value.astimezone(timezone.utc)
