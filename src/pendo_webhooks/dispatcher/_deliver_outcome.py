"""
How the engine reports what happened to a delivery: every :class:`DeliveryOutcome` it
returns is built by :func:`outcome_of`. Strictly private.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from ..model._delivery import Attempt, Delivery
from ..model._outcomes import DeliveryOutcome, Outcome
from ._attempt import Exchange


__all__ = ["exhausted", "outcome_of", "released", "settled", "unexpected"]

logger = logging.getLogger("pendo_webhooks")

#: Why a claim handed back unattempted, lease running short, is still pending.
RELEASED_SHORT = "released unattempted: the claim's lease was running short"


def outcome_of(
    webhook_id: str,
    delivery_id: str | None,
    outcome: Outcome,
    reason: str | None = None,
    *,
    attempt: int | None = None,
    status_code: int | None = None,
    error_kind: str | None = None,
    next_attempt_at: datetime | None = None,
) -> DeliveryOutcome:
    """
    The one place a :class:`DeliveryOutcome` is made.

    >>> outcome_of("wh_1", None, Outcome.SKIPPED, "webhook disabled").reason
    'webhook disabled'
    """
    return DeliveryOutcome(
        webhook_id=webhook_id,
        delivery_id=delivery_id,
        outcome=outcome,
        reason=reason,
        attempt=attempt,
        status_code=status_code,
        error_kind=error_kind,
        next_attempt_at=next_attempt_at,
    )


def settled(
    before: Delivery, after: Delivery, attempt: Attempt | None, sent: Exchange
) -> DeliveryOutcome:
    """
    The outcome of an attempt that *sent*, moving *before* to *after* (as recorded).
    """
    finished = after.status.is_finished
    return outcome_of(
        before.webhook_id,
        before.id,
        Outcome(after.status.value) if finished else Outcome.RETRY,
        after.last_error,
        attempt=None if attempt is None else attempt.number,
        status_code=sent.status,
        error_kind=sent.error_kind,
        next_attempt_at=None if finished else after.next_attempt_at,
    )


def exhausted(delivery: Delivery) -> DeliveryOutcome:
    """
    The outcome of a delivery its claim ended ``dead``: claimed too often without an outcome.
    """
    logger.warning(
        "delivery %s to webhook %s: %s",
        delivery.id,
        delivery.webhook_id,
        delivery.last_error,
    )
    return outcome_of(
        delivery.webhook_id, delivery.id, Outcome(delivery.status.value), delivery.last_error
    )


def released(
    deliveries: Sequence[Delivery], reason: str = RELEASED_SHORT
) -> list[DeliveryOutcome]:
    """
    The outcomes of claims handed back unattempted (pending, due at once), for *reason*.
    """
    return [outcome_of(d.webhook_id, d.id, Outcome.PENDING, reason) for d in deliveries]


def unexpected(delivery: Delivery, exc: BaseException) -> DeliveryOutcome:
    """
    The outcome of a bug met while attempting *delivery*: it stays pending and leased.
    """
    # Only the type: the text of an unexpected error might quote a URL or a body.
    logger.error(
        "delivery %s to webhook %s: unexpected %s; it stays pending until its lease lapses",
        delivery.id,
        delivery.webhook_id,
        type(exc).__name__,
    )
    return outcome_of(
        delivery.webhook_id,
        delivery.id,
        Outcome.PENDING,
        f"unexpected {type(exc).__name__}; retried when the lease lapses",
    )
