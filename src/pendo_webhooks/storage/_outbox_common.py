"""
What both outbox backends share: their errors, worded the same way. Strictly private.
"""

from __future__ import annotations

from ..exceptions import ConflictError, UnknownDelivery


__all__ = ["duplicate_delivery", "not_finished", "purged_body", "unknown_delivery"]


def unknown_delivery(delivery_id: str) -> UnknownDelivery:
    """
    The error for an id no delivery has.
    """
    return UnknownDelivery(f"no delivery with id {delivery_id!r}")


def duplicate_delivery(delivery_id: str) -> ConflictError:
    """
    The error for storing a delivery whose id is taken.
    """
    return ConflictError(f"a delivery with id {delivery_id!r} already exists")


def not_finished(delivery_id: str) -> ConflictError:
    """
    The error for redelivering a delivery that is still pending.
    """
    return ConflictError(
        f"delivery {delivery_id!r} is still pending; only finished deliveries can be redelivered"
    )


def purged_body(delivery_id: str) -> ConflictError:
    """
    The error for redelivering a delivery whose body was purged.
    """
    return ConflictError(f"delivery {delivery_id!r} was purged; its body is gone")
