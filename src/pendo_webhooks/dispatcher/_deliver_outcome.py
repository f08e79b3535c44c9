"""
How the engine reports what happened to a delivery: every :class:`DeliveryOutcome` it
returns is built by :func:`outcome_of` (or, for a batch's deliveries that share one,
copied from one so built by :func:`settled_batch`). Strictly private.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from ..model._delivery import Attempt, Delivery, slot_setters
from ..model._outcomes import DeliveryOutcome, Outcome
from ._attempt import Exchange


__all__ = ["exhausted", "outcome_of", "released", "settled", "settled_batch", "unexpected"]

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


# DeliveryOutcome's fields' setters (attrs' slots: they skip the frozen __setattr__, as
# its generated __init__ does), in field order, for _copied.
(
    _set_webhook_id,
    _set_delivery_id,
    _set_outcome,
    _set_reason,
    _set_attempt,
    _set_status_code,
    _set_error_kind,
    _set_next_attempt_at,
) = (setter for _, setter in slot_setters(DeliveryOutcome))
_new = object.__new__


def _copied(template: DeliveryOutcome, webhook_id: str, delivery_id: str) -> DeliveryOutcome:
    # *template* for another delivery: equal to outcome_of with its values and these ids.
    record = _new(DeliveryOutcome)
    _set_webhook_id(record, webhook_id)
    _set_delivery_id(record, delivery_id)
    _set_outcome(record, template.outcome)
    _set_reason(record, template.reason)
    _set_attempt(record, template.attempt)
    _set_status_code(record, template.status_code)
    _set_error_kind(record, template.error_kind)
    _set_next_attempt_at(record, template.next_attempt_at)
    return record


def settled_batch(
    batch: Sequence[Delivery],
    rows: Sequence[tuple[Delivery, Attempt | None]],
    written: Sequence[bool],
    sent: Exchange,
    lost: Callable[[Delivery], DeliveryOutcome],
) -> list[DeliveryOutcome]:
    """
    Per delivery of *batch*: :func:`settled` if its row was *written*, else ``lost(it)``.

    A Segment batch's deliveries that share a decision share one row (the same tuple):
    each such row is settled once, and its outcome copied for the others with their own
    ids, which is all :func:`settled` takes from a delivery. Equal to settling each.
    """
    settled_rows: dict[int, DeliveryOutcome] = {}  # by id(row): *rows* holds them all
    outcomes: list[DeliveryOutcome] = []
    for before, row, ok in zip(batch, rows, written, strict=True):
        if not ok:
            outcomes.append(lost(before))
            continue
        template = settled_rows.get(id(row))
        if template is None:
            template = settled_rows[id(row)] = settled(before, row[0], row[1], sent)
            outcomes.append(template)
        else:
            outcomes.append(_copied(template, before.webhook_id, before.id))
    return outcomes


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
