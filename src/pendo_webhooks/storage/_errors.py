"""
The errors every storage backend raises, worded the same way. Strictly private.
"""

from __future__ import annotations

from ..exceptions import ConflictError, UnknownWebhook


__all__ = ["duplicate_webhook", "stale_version", "unknown_webhook"]


def unknown_webhook(webhook_id: str) -> UnknownWebhook:
    """
    The error for an id no webhook has.
    """
    return UnknownWebhook(f"no webhook with id {webhook_id!r}")


def stale_version(webhook_id: str, expected: int, found: int) -> ConflictError:
    """
    The error for a change based on a version that is no longer the stored one.
    """
    return ConflictError(
        f"webhook {webhook_id!r} was changed by someone else: the change is based on "
        f"version {expected}, but version {found} is stored; reload it and try again"
    )


def duplicate_webhook(webhook_id: str) -> ConflictError:
    """
    The error for inserting a webhook whose id is taken.
    """
    return ConflictError(f"a webhook with id {webhook_id!r} already exists")
