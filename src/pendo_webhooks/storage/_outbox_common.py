"""
What both outbox backends share: rows read back as records, and their errors, worded the
same way. The backends differ only in how a stored time reads back (*when*). Strictly private.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from ..events import EventCategory, OperationsCategory
from ..events._category import AnyCategory
from ..exceptions import ConflictError, StorageError, UnknownDelivery, ValidationError
from ..model._delivery import Attempt, Delivery, DeliveryStatus, trusted_delivery


__all__ = [
    "attempt_from_row",
    "claims_exhausted",
    "delivery_from_row",
    "delivery_from_values",
    "duplicate_delivery",
    "load_rows",
    "not_finished",
    "purged_body",
    "record_one_outcome",
    "unknown_delivery",
]

_T = TypeVar("_T")
_R = TypeVar("_R")


def claims_exhausted(max_claims: int) -> str:
    """
    The error a delivery ends ``dead`` with once claimed *max_claims* times without an outcome.

    >>> claims_exhausted(5)[:41]
    'claimed 5 times without an outcome (the w'
    """
    return (
        f"claimed {max_claims} times without an outcome "
        "(the worker died or the lease ran out mid-attempt each time)"
    )


class Row(Protocol):
    """
    A stored row read by column name (``sqlite3.Row``, a psycopg dict row). Strictly private.
    """

    def __getitem__(self, key: str, /) -> Any: ...


# The enums by stored value: a dict look-up, where the enum's own call costs a microsecond.
_CATEGORIES: dict[str, AnyCategory] = {c.value: c for c in (*EventCategory, *OperationsCategory)}
_STATUSES = {s.value: s for s in DeliveryStatus}


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def delivery_from_row(row: Row, when: Callable[[Any], datetime]) -> Delivery:
    """
    The :class:`Delivery` a ``deliveries`` row holds; *when* reads a stored time back.

    A row of the values the library writes is built without the constructor's checks
    (claims read back thousands at a time); anything else goes through them, and
    raises what they find.
    """
    category = _CATEGORIES.get(row["category"])
    status = _STATUSES.get(row["status"])
    attempts, attempt_base = row["attempts"], row["attempt_base"]
    if category is None or status is None or not (_count(attempts) and _count(attempt_base)):
        return _checked_delivery(row, when)

    def maybe(value: Any) -> datetime | None:
        return None if value is None else when(value)

    return trusted_delivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_id=row["event_id"],
        category=category,
        body=bytes(row["body"]),
        status=status,
        attempts=attempts,
        attempt_base=attempt_base,
        next_attempt_at=when(row["next_attempt_at"]),
        created_at=when(row["created_at"]),
        updated_at=when(row["updated_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_until=maybe(row["lease_until"]),
        finished_at=maybe(row["finished_at"]),
        redelivered_at=maybe(row["redelivered_at"]),
        purged=bool(row["purged"]),
    )


def delivery_from_values(
    values: Sequence[Any], when: Callable[[Any], datetime]
) -> Delivery | None:
    """
    :func:`delivery_from_row` for a row's values in ``deliveries``' column order (the
    SQLite store's queries select them so), without looking each up by name; ``None`` for
    a row of values the library does not write (build that one with the checks).
    """
    (
        delivery_id,
        webhook_id,
        event_id,
        category_value,
        body,
        status_value,
        attempts,
        attempt_base,
        next_attempt_at,
        created_at,
        updated_at,
        last_status,
        last_error,
        lease_owner,
        lease_until,
        finished_at,
        redelivered_at,
        purged,
    ) = values
    category = _CATEGORIES.get(category_value)
    status = _STATUSES.get(status_value)
    if category is None or status is None or not (_count(attempts) and _count(attempt_base)):
        return None
    return trusted_delivery(
        id=delivery_id,
        webhook_id=webhook_id,
        event_id=event_id,
        category=category,
        body=bytes(body),
        status=status,
        attempts=attempts,
        attempt_base=attempt_base,
        next_attempt_at=when(next_attempt_at),
        created_at=when(created_at),
        updated_at=when(updated_at),
        last_status=last_status,
        last_error=last_error,
        lease_owner=lease_owner,
        lease_until=None if lease_until is None else when(lease_until),
        finished_at=None if finished_at is None else when(finished_at),
        redelivered_at=None if redelivered_at is None else when(redelivered_at),
        purged=bool(purged),
    )


def _checked_delivery(row: Row, when: Callable[[Any], datetime]) -> Delivery:
    def maybe(value: Any) -> datetime | None:
        return None if value is None else when(value)

    return Delivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_id=row["event_id"],
        category=row["category"],
        body=bytes(row["body"]),
        status=row["status"],
        attempts=row["attempts"],
        attempt_base=row["attempt_base"],
        next_attempt_at=when(row["next_attempt_at"]),
        created_at=when(row["created_at"]),
        updated_at=when(row["updated_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_until=maybe(row["lease_until"]),
        finished_at=maybe(row["finished_at"]),
        redelivered_at=maybe(row["redelivered_at"]),
        purged=bool(row["purged"]),
    )


def attempt_from_row(row: Row, when: Callable[[Any], datetime]) -> Attempt:
    """
    The :class:`Attempt` an attempt row joined to its exchange's holds; *when* reads a time.
    """
    return Attempt(
        delivery_id=row["delivery_id"],
        number=row["number"],
        exchange_id=row["exchange_id"],
        started_at=when(row["started_at"]),
        duration=row["duration"],
        status_code=row["status_code"],
        error_kind=row["error_kind"],
        detail=row["detail"],
        response_excerpt=bytes(row["response_excerpt"]),
        verdict=row["verdict"],
        reason=row["reason"],
    )


def load_rows(rows: Sequence[_R], build: Callable[[_R], _T]) -> list[_T]:
    """
    *build* every row; a row that is not a valid record is a :class:`StorageError`.
    """
    try:
        return [build(row) for row in rows]
    except (ValidationError, ValueError, TypeError, KeyError) as exc:
        msg = f"a stored delivery row is not valid: {exc}"
        raise StorageError(msg) from exc


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


class _BatchRecorder(Protocol):
    def record_outcomes(
        self, outcomes: Sequence[tuple[Delivery, Attempt | None]], *, owner: str, now: datetime
    ) -> list[bool]: ...


def record_one_outcome(
    store: _BatchRecorder,
    delivery: Delivery,
    attempt: Attempt | None,
    *,
    owner: str,
    now: datetime,
) -> bool:
    """
    Write a claimed delivery's new state if *owner* still holds its lease; see OutboxStore.

    ``record_outcome`` of a store whose ``record_outcomes`` does the work: a batch of one.
    """
    return store.record_outcomes([(delivery, attempt)], owner=owner, now=now)[0]
