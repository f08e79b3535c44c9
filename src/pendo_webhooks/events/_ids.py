"""
Every id the library mints, in one place.

Random ids, :func:`new_id` (webhooks, audit entries) and :func:`new_unique_id` (an
event's ``uniqueId``), published as :func:`pendo_webhooks.registry.new_id` and
:func:`pendo_webhooks.events.new_unique_id`; and their time-ordered twins,
:func:`sorted_id` (what :class:`~pendo_webhooks.dispatcher.Dispatcher` names
deliveries with) and :func:`sorted_unique_id` (first-seen events).

Strictly private; import the public two from where they are documented.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time


__all__ = ["new_id", "new_unique_id", "sorted_id", "sorted_unique_id"]

_URLSAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The same 64 characters in ASCII order, so that encoded times compare as the times do.
_SORTED = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_TO_SORTED = bytes.maketrans(_URLSAFE, _SORTED)

_last = threading.local()
_now_ns = time.time_ns


def _time_part(millis: int) -> str:
    # 48 bits of milliseconds since the epoch as 8 characters of _SORTED.
    return base64.urlsafe_b64encode(millis.to_bytes(6, "big")).translate(_TO_SORTED).decode()


def new_id(prefix: str) -> str:
    """
    Return *prefix*, an underscore, and 24 random URL-safe characters (144 random bits).

    >>> new_id("wh").startswith("wh_"), len(new_id("wh"))
    (True, 27)
    """
    return f"{prefix}_{secrets.token_urlsafe(18)}"


def new_unique_id() -> str:
    """
    Mint a fresh ``uniqueId``: 40 lowercase hex characters from :mod:`secrets`.

    >>> u = new_unique_id()
    >>> len(u), u == u.lower(), u != new_unique_id()
    (40, True, True)
    """
    return secrets.token_hex(20)


def sorted_id(prefix: str) -> str:
    """
    Return *prefix*, an underscore and 24 URL-safe characters, in creation order.

    The first 8 characters are the time in milliseconds, spelled so that ids made later
    sort after (as text, byte by byte) ids made in an earlier millisecond; the other 16
    are random (96 bits). The shape is that of
    :func:`~pendo_webhooks.registry.new_id`, but a store's indexes on these ids grow at
    one end instead of everywhere: a batch of new deliveries, their outcomes and their
    attempt rows touch a few pages instead of one page per row.

    >>> first, second = sorted_id("dlv"), sorted_id("dlv")
    >>> first.startswith("dlv_"), len(first), first != second
    (True, 28, True)
    """
    millis = _now_ns() // 1_000_000
    cached = getattr(_last, "pair", None)
    if cached is None or cached[0] != millis:
        cached = _last.pair = (millis, _time_part(millis))
    return f"{prefix}_{cached[1]}{secrets.token_urlsafe(12)}"


def sorted_unique_id() -> str:
    """
    Return a ``uniqueId`` like ``new_unique_id``'s (40 lowercase hex characters), in
    creation order: 12 for the time in milliseconds, then 28 random (112 bits).

    What :class:`~pendo_webhooks.pipeline.FirstSeenTracker` names its events with: the
    outbox's index on (webhook, event id) then grows at one end, so storing a batch of
    first-seen deliveries touches a few pages instead of one page per row.

    >>> first, second = sorted_unique_id(), sorted_unique_id()
    >>> len(first), first == first.lower(), first[:12] <= second[:12], first != second
    (40, True, True, True)
    """
    return f"{_now_ns() // 1_000_000:012x}{secrets.token_hex(14)}"
