"""
Time, injected: everything that reads the clock takes a :data:`Clock`.

Strictly private; the public names are re-exported from :mod:`pendo_webhooks.typing`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone


#: A callable returning the current time as an aware UTC datetime.
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """
    Return the current time as an aware UTC datetime (the default :data:`Clock`).
    """
    return datetime.now(timezone.utc)
