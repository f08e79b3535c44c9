"""
The Segment part of :class:`~pendo_webhooks.dispatcher.Dispatcher`: batched delivery.

A Segment webhook's deliveries hold ``track`` messages (serialized once, at enqueue, by
:class:`~pendo_webhooks.formatters.SegmentFormatter`). When one of them is attempted,
the dispatcher claims the webhook's other due deliveries too (up to
:data:`~pendo_webhooks.formatters.MAX_BATCH_MESSAGES` in all), cuts them into batches
within Segment's limits, and sends each batch as one ``POST <endpoint>/v1/batch`` whose
body joins the stored bytes as they are. The write key is read from the webhook at send
time and goes only into the ``Authorization`` header of the request.

The batch's outcome is each delivery's outcome: every delivery gets its own
:class:`Attempt` row and the retry policy's decision for its own attempt number (the
jitter is drawn once per batch, so deliveries that failed together are retried together);
all of a batch's outcomes are written in one transaction, each fenced on its own lease.

Strictly private; a base class of the Dispatcher.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

import attrs

from ._attempt import Exchange, exchange, host_of, settle, unwanted
from ._clock import Clock
from ._delivery import Attempt, Delivery, DeliveryStatus
from ._outcomes import DeliveryOutcome, Outcome
from ._secret import Secret
from ._segment import (
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    basic_auth,
    batch_request,
    plan_batches,
    too_large_reason,
)
from ._webhook import Webhook
from .exceptions import ConfigurationError
from .retry import Decision, RetryPolicy, Verdict
from .storage import Storage
from .storage.protocols import SharedOutcomesOutbox, capabilities
from .transports import OutgoingRequest, Transport, TransportResponse


__all__ = ["SegmentMixin", "exhausted", "released"]

logger = logging.getLogger("pendo_webhooks")

_Row = tuple[Delivery, Attempt | None]
_RecordShared = Callable[..., set[str]]
_REDACTED = b"<redacted>"
_CLOSED_STATUS = {
    Outcome.CANCELLED: DeliveryStatus.CANCELLED,
    Outcome.FAILED: DeliveryStatus.FAILED,
}


class SegmentMixin:
    """
    Sends Segment webhooks' deliveries in batches. Strictly private: a base of the Dispatcher.
    """

    storage: Storage
    clock: Clock
    retry: RetryPolicy
    transport: Transport
    lease_duration: timedelta
    _rng: random.Random

    if TYPE_CHECKING:

        @property
        def owner(self) -> str: ...

        def _claim(self, limit: int, webhook_id: str | None = None) -> list[Delivery]: ...

        def _release(self, deliveries: Sequence[Delivery]) -> None: ...

        def _lost(self, delivery: Delivery) -> DeliveryOutcome: ...

        def _disable_gone(self, webhook: Webhook) -> None: ...

    def _send_segment(self, webhook: Webhook, messages: Sequence[bytes]) -> tuple[Exchange, bytes]:
        """
        Send *messages* to *webhook* as one batch, once; return what happened and the body sent.
        """
        sent_body: list[bytes] = []

        def build(now: datetime) -> OutgoingRequest:
            if webhook.write_key is None:  # pragma: no cover - the model requires one
                raise ConfigurationError("a Segment webhook needs a write key")
            request = batch_request(
                endpoint=webhook.destination,
                write_key=webhook.write_key,
                messages=messages,
                now=now,
                gzip_body=webhook.segment_gzip,
                headers=webhook.headers,
            )
            sent_body.append(request.body)
            return request

        sent = exchange(self.transport, build, clock=self.clock)
        if sent.response is not None and webhook.write_key is not None:
            sent = _scrubbed(sent, sent.response, webhook.write_key)
        return sent, (sent_body[0] if sent_body else b"")

    def _attempt_segment(
        self, claimed: Sequence[Delivery], webhook: Webhook
    ) -> list[DeliveryOutcome]:
        """
        Attempt *claimed* (leased to us, all *webhook*'s) with its other due deliveries.

        Returns one outcome per delivery attempted, *claimed* first.
        """
        room = MAX_BATCH_MESSAGES - len(claimed)
        more = self._claim(room, webhook.id) if room > 0 else []
        # A claim may end a delivery dead (claimed too often without an outcome): not sent.
        ended = [exhausted(d) for d in more if d.status is not DeliveryStatus.PENDING]
        if ended:
            more = [d for d in more if d.status is DeliveryStatus.PENDING]
        return self._deliver_segment([*claimed, *more], webhook) + ended

    def _deliver_segment(
        self, deliveries: Sequence[Delivery], webhook: Webhook
    ) -> list[DeliveryOutcome]:
        outcomes: list[DeliveryOutcome] = []
        closed: list[tuple[Delivery, Outcome, str]] = []
        sendable: list[Delivery] = []
        for delivery in deliveries:
            why = unwanted(delivery, webhook)
            if why is not None:
                closed.append((delivery, Outcome.CANCELLED, why))
            elif len(delivery.body) > MAX_MESSAGE_BYTES:
                # Refused at enqueue; only a delivery stored by other means gets here.
                reason = too_large_reason(len(delivery.body), MAX_MESSAGE_BYTES)
                closed.append((delivery, Outcome.FAILED, reason))
            else:
                sendable.append(delivery)
        if closed:
            outcomes.extend(self._close(closed))
        start = 0
        for number, count in enumerate(plan_batches(len(d.body) for d in sendable)):
            batch = sendable[start : start + count]
            rest = sendable[start:]
            start += count
            if number and self._lease_too_short(batch):
                # Half the lease is gone: another batch could outlive it. Hand the rest back.
                self._release(rest)
                outcomes.extend(released(rest))
                break
            sent_outcomes, disabled = self._send_batch(batch, webhook)
            outcomes.extend(sent_outcomes)
            if disabled:
                later = [(d, Outcome.CANCELLED, "webhook disabled") for d in sendable[start:]]
                outcomes.extend(self._close(later))
                break
        return outcomes

    def _lease_too_short(self, batch: Sequence[Delivery]) -> bool:
        now = self.clock()
        # Claimed deliveries always carry their lease; one without counts as lapsing now.
        ends = [now if d.lease_until is None else d.lease_until for d in batch]
        return min(ends) - now < self.lease_duration / 2

    def _send_batch(
        self, batch: Sequence[Delivery], webhook: Webhook
    ) -> tuple[list[DeliveryOutcome], bool]:
        """
        Send one batch, decide and record every delivery's outcome; return them, and a 410.
        """
        sent, body = self._send_segment(webhook, [d.body for d in batch])
        now = self.clock()
        # One jitter draw for the whole batch, so its deliveries come due together again.
        share = self._rng.random()

        def rng(low: float, high: float) -> float:
            return low + (high - low) * share

        decisions: dict[int, Decision] = {}

        def decide(delivery: Delivery) -> Decision:
            number = delivery.attempt_number - delivery.attempt_base
            decision = decisions.get(number)
            if decision is None:
                decision = decisions[number] = self.retry.decide(
                    attempt=number,
                    status=sent.status,
                    error_kind=sent.error_kind,
                    retry_after=sent.retry_after,
                    now=now,
                    rng=rng,
                )
            return decision

        if capabilities(self.storage).shared_outcomes:
            shared = cast(SharedOutcomesOutbox, self.storage).record_shared_outcomes
            outcomes = self._record_shared(shared, batch, sent, decide, now)
        else:
            rows: list[_Row] = [settle(d, sent, decide(d), now=now) for d in batch]
            written = self.storage.record_outcomes(rows, owner=self.owner, now=now)
            outcomes = [
                _outcome(before, after, attempt, sent) if ok else self._lost(before)
                for before, (after, attempt), ok in zip(batch, rows, written, strict=True)
            ]
        gone = any(d.disable_webhook for d in decisions.values())
        if gone:
            self._disable_gone(webhook)
        verdicts = {d.verdict for d in decisions.values()}
        level = logging.DEBUG if verdicts == {Verdict.DELIVERED} else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(
                level,
                "segment batch to webhook %s (%s): %d messages, %d bytes: %s in %.3f s, %s",
                webhook.id,
                host_of(webhook.destination),
                len(batch),
                len(body),
                sent.describe(),
                sent.duration,
                "; ".join(sorted({d.reason for d in decisions.values()})),
            )
        return outcomes, gone

    def _record_shared(
        self,
        record: _RecordShared,
        batch: Sequence[Delivery],
        sent: Exchange,
        decide: Callable[[Delivery], Decision],
        now: datetime,
    ) -> list[DeliveryOutcome]:
        """
        Record a batch's outcomes through the store's set-based fast path.

        Deliveries with the same attempt counts get the same decision, state and attempt
        row (but for their ids), so each such group is settled once and written as one.
        """
        groups: dict[tuple[int, int], list[Delivery]] = {}
        for delivery in batch:
            groups.setdefault((delivery.attempts, delivery.attempt_base), []).append(delivery)
        settled = {
            key: settle(members[0], sent, decide(members[0]), now=now)
            for key, members in groups.items()
        }
        written = record(
            [([d.id for d in members], *settled[key]) for key, members in groups.items()],
            owner=self.owner,
            now=now,
        )
        # What a group's outcomes have in common, worked out once per group.
        shared = {
            key: _outcome(members[0], *settled[key], sent) for key, members in groups.items()
        }
        outcomes: list[DeliveryOutcome] = []
        for d in batch:
            if d.id not in written:
                outcomes.append(self._lost(d))
                continue
            common = shared[d.attempts, d.attempt_base]
            outcomes.append(
                DeliveryOutcome(
                    webhook_id=d.webhook_id,
                    delivery_id=d.id,
                    outcome=common.outcome,
                    reason=common.reason,
                    attempt=common.attempt,
                    status_code=common.status_code,
                    error_kind=common.error_kind,
                    next_attempt_at=common.next_attempt_at,
                )
            )
        return outcomes

    def _close(self, closed: Sequence[tuple[Delivery, Outcome, str]]) -> list[DeliveryOutcome]:
        """
        Finish deliveries that are not sent (cancelled, or failed for their size), in one write.
        """
        now = self.clock()
        rows: list[_Row] = [
            (
                attrs.evolve(
                    delivery,
                    status=_CLOSED_STATUS[outcome],
                    last_error=why,
                    finished_at=now,
                    updated_at=now,
                    lease_owner=None,
                    lease_until=None,
                ),
                None,
            )
            for delivery, outcome, why in closed
        ]
        written = self.storage.record_outcomes(rows, owner=self.owner, now=now)
        results: list[DeliveryOutcome] = []
        for (delivery, outcome, why), ok in zip(closed, written, strict=True):
            if not ok:
                results.append(self._lost(delivery))
                continue
            logger.info(
                "delivery %s to webhook %s %s: %s", delivery.id, delivery.webhook_id, outcome, why
            )
            results.append(
                DeliveryOutcome(
                    webhook_id=delivery.webhook_id,
                    delivery_id=delivery.id,
                    outcome=outcome,
                    reason=why,
                )
            )
        return results


def _scrubbed(sent: Exchange, response: TransportResponse, write_key: Secret) -> Exchange:
    # A receiver that echoes the request (a debugging proxy, say) must not get the write
    # key into the stored response excerpt.
    body = response.body
    key = write_key.reveal().encode("utf-8")
    token = basic_auth(write_key).split(" ", 1)[1].encode("ascii")
    if key not in body and token not in body:
        return sent
    body = body.replace(key, _REDACTED).replace(token, _REDACTED)
    return attrs.evolve(sent, response=attrs.evolve(response, body=body))


def _outcome(
    before: Delivery, after: Delivery, attempt: Attempt | None, sent: Exchange
) -> DeliveryOutcome:
    return DeliveryOutcome(
        webhook_id=before.webhook_id,
        delivery_id=before.id,
        outcome=Outcome(after.status.value) if after.status.is_finished else Outcome.RETRY,
        reason=after.last_error,
        attempt=None if attempt is None else attempt.number,
        status_code=sent.status,
        error_kind=sent.error_kind,
        next_attempt_at=None if after.status.is_finished else after.next_attempt_at,
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
    return DeliveryOutcome(
        webhook_id=delivery.webhook_id,
        delivery_id=delivery.id,
        outcome=Outcome(delivery.status.value),
        reason=delivery.last_error,
    )


def released(deliveries: Sequence[Delivery]) -> list[DeliveryOutcome]:
    """
    The outcomes of claims handed back unattempted because their lease was running short.
    """
    return [
        DeliveryOutcome(
            webhook_id=d.webhook_id,
            delivery_id=d.id,
            outcome=Outcome.PENDING,
            reason="released unattempted: the claim's lease was running short",
        )
        for d in deliveries
    ]
