"""
The deliverer: attempts claimed deliveries and records their outcomes, never raising.

A URL webhook's delivery is signed afresh and sent alone; a Segment webhook's deliveries
hold ``track`` messages (serialized once, at enqueue, by
:class:`~pendo_webhooks.formatters.SegmentFormatter`) and go out together: attempting one
claims the webhook's other due deliveries too (up to
:data:`~pendo_webhooks.formatters.MAX_BATCH_MESSAGES` in all), cuts them into batches
within Segment's limits, and sends each batch as one ``POST <endpoint>/v1/batch`` whose
body joins the stored bytes as they are. The write key is read from the webhook at send
time and goes only into the ``Authorization`` header of the request.

A batch's outcome is each delivery's outcome: every delivery gets its own
:class:`Attempt` row and the retry policy's decision for its own attempt number (the
jitter is drawn once per batch, so deliveries that failed together are retried together);
all of a batch's outcomes are written in one transaction, each fenced on its own lease.

Strictly private; the :class:`~pendo_webhooks.dispatcher.Dispatcher` holds one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

import attrs

from ._attempt import Exchange, SignerCache, exchange, host_of, settle, unwanted, url_request
from ._clock import Clock
from ._deliver_claims import Claims
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
from ._webhook import Webhook, WebhookKind
from .exceptions import ConfigurationError, PendoWebhooksError, UnknownWebhook
from .registry import WebhookRegistry
from .retry import Decision, RetryPolicy, Verdict
from .storage import Storage
from .storage.protocols import ChainingOutbox, SharedOutcomesOutbox, capabilities
from .transports import OutgoingRequest, Transport, TransportResponse


__all__ = ["ClaimNext", "Deliverer", "exhausted", "released"]

logger = logging.getLogger("pendo_webhooks")

_Row = tuple[Delivery, Attempt | None]
_RecordShared = Callable[..., set[str]]
_REDACTED = b"<redacted>"
_CLOSED_STATUS = {
    Outcome.CANCELLED: DeliveryStatus.CANCELLED,
    Outcome.FAILED: DeliveryStatus.FAILED,
}


@attrs.frozen
class ClaimNext:
    """
    A one-thread runner's request: record an outcome and claim the next due delivery.

    Passed to :meth:`Deliverer.attempt_claimed`, down to its recording, which then records through
    *outbox*'s ``record_outcome_and_claim`` (one transaction for both) and returns what
    it claimed: ``None`` where no claim was made (a cancellation, a Segment batch, a
    bug), ``[]`` where nothing was due. Strictly private.

    Args:
        outbox: The store, as the :class:`~pendo_webhooks.storage.protocols.ChainingOutbox`
            it is.
    """

    outbox: ChainingOutbox


class Deliverer:
    """
    Attempts claimed deliveries, records each outcome (fenced on its lease). Strictly private.

    Args:
        storage: The store (its outbox, and its webhooks, re-read at each attempt).
        registry: Disables a webhook that answered 410.
        claims: Claims a Segment batch's other due deliveries; gives claims back.
        transport: Sends the requests.
        retry: Decides what follows each attempt.
        clock: The current aware UTC time.
        rng: Jitters retry waits.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        registry: WebhookRegistry,
        claims: Claims,
        transport: Transport,
        retry: RetryPolicy,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self._storage = storage
        self._registry = registry
        self._claims = claims
        self._transport = transport
        self._retry = retry
        self._clock = clock
        self._rng = rng
        self._signers = SignerCache()

    def _current_webhook(self, webhook_id: str) -> Webhook | None:
        try:
            return self._storage.get_webhook(webhook_id)
        except UnknownWebhook:
            return None

    def attempt_claimed(
        self, delivery: Delivery, claim_next: ClaimNext | None = None
    ) -> tuple[list[DeliveryOutcome], list[Delivery] | None]:
        """
        Attempt a claimed delivery against its webhook as it is now; never raise.

        A Segment webhook's delivery takes the webhook's other due deliveries along in
        its batch; their outcomes are returned too. With *claim_next*, a URL delivery's
        outcome is recorded in the transaction that claims the next due delivery.

        Returns:
            The outcomes, and what was claimed along with them (``None``: no claim was
            made; a cancellation, a Segment batch, a bug or no *claim_next*).
        """
        if delivery.status is not DeliveryStatus.PENDING:
            return [exhausted(delivery)], None
        try:
            webhook = self._current_webhook(delivery.webhook_id)
        except Exception as exc:  # noqa: BLE001 - a broken store must not stop the loop
            return [self._unexpected(delivery, exc)], None
        if webhook is not None and webhook.kind is WebhookKind.SEGMENT:
            return self.attempt_batch([delivery], webhook), None
        outcome, claimed = self._attempt(delivery, webhook, claim_next)
        return [outcome], claimed

    def attempt_batch(
        self, deliveries: Sequence[Delivery], webhook: Webhook
    ) -> list[DeliveryOutcome]:
        """
        Attempt claimed Segment deliveries (of *webhook*) in batches; never raise.

        Deliveries the webhook no longer wants (disabled, unsubscribed) are cancelled
        there, one by one. An exception here is a bug: the deliveries stay leased and
        come back later.
        """
        try:
            return self._attempt_segment(deliveries, webhook)
        except Exception as exc:  # noqa: BLE001 - C4: one delivery never blocks the others
            return [self._unexpected(delivery, exc) for delivery in deliveries]

    def _attempt(
        self, delivery: Delivery, webhook: Webhook | None, claim_next: ClaimNext | None = None
    ) -> tuple[DeliveryOutcome, list[Delivery] | None]:
        """
        Attempt a claimed delivery once and record the outcome; never raise.

        Returns the outcome, and what *claim_next* claimed with it (``None``: no claim).
        An exception here is a bug (sending errors are outcomes): the delivery stays
        pending and leased, and comes back when the lease lapses.
        """
        try:
            why = unwanted(delivery, webhook)
            if webhook is None or why is not None:
                return self._cancel(delivery, why or "webhook deleted"), None
            sent = self.send_url(webhook, delivery.body, delivery.event_id)
            return self._record(delivery, webhook, sent, claim_next)
        except Exception as exc:  # noqa: BLE001 - C4: one delivery never blocks the others
            return self._unexpected(delivery, exc), None

    def send_url(self, webhook: Webhook, body: bytes, event_id: str) -> Exchange:
        """
        Sign *body* for *webhook* afresh and send it once; never raise.
        """

        def build(now: datetime) -> OutgoingRequest:
            return url_request(webhook, body, event_id=event_id, now=now, signers=self._signers)

        return exchange(self._transport, build, clock=self._clock)

    def _record(
        self,
        delivery: Delivery,
        webhook: Webhook,
        sent: Exchange,
        claim_next: ClaimNext | None = None,
    ) -> tuple[DeliveryOutcome, list[Delivery] | None]:
        """
        Decide what follows *sent*, store it with its attempt row (fenced), act on a 410.

        With *claim_next* (a one-thread runner), the same transaction claims the next due
        delivery; returns the outcome and that claim (``None`` without *claim_next*).
        """
        now = self._clock()
        decision = self._retry.decide(
            attempt=delivery.attempt_number - delivery.attempt_base,
            status=sent.status,
            error_kind=sent.error_kind,
            retry_after=sent.retry_after,
            now=now,
            rng=self._rng.uniform,
        )
        updated, attempt = settle(delivery, sent, decision, now=now)
        claimed: list[Delivery] | None = None
        if claim_next is None:
            written = self._storage.record_outcome(
                updated, attempt, owner=self._claims.owner, now=now
            )
        else:
            written, claimed = claim_next.outbox.record_outcome_and_claim(
                updated,
                attempt,
                owner=self._claims.owner,
                now=now,
                lease_until=now + self._claims.lease_duration,
                max_claims=self._claims.max_claims,
            )
            if not written and claimed:
                # The claim may have ended this very delivery (its lease had lapsed, and it
                # was claimed too often): _lost reports that, once.
                claimed = [
                    d for d in claimed if d.id != delivery.id or d.status is DeliveryStatus.PENDING
                ]
        try:
            if decision.disable_webhook:
                self._disable_gone(webhook)
            if not written:
                return self._lost(delivery), claimed
        except BaseException:
            if claimed:  # nobody will attempt them now: give them back at once
                self._claims.release(claimed)
            raise
        outcome = DeliveryOutcome(
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
            outcome=Outcome(decision.verdict.value),
            reason=updated.last_error,
            attempt=attempt.number,
            status_code=sent.status,
            error_kind=sent.error_kind,
            next_attempt_at=decision.next_attempt_at,
        )
        level = logging.DEBUG if decision.verdict is Verdict.DELIVERED else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(
                level,
                "delivery %s to webhook %s (%s), attempt %d: %s in %.3f s, %s",
                delivery.id,
                delivery.webhook_id,
                host_of(webhook.destination),
                attempt.number,
                sent.describe(),
                sent.duration,
                decision.reason,
            )
        return outcome, claimed

    def _cancel(self, delivery: Delivery, why: str) -> DeliveryOutcome:
        now = self._clock()
        cancelled = attrs.evolve(
            delivery,
            status=DeliveryStatus.CANCELLED,
            last_error=why,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_until=None,
        )
        if not self._storage.record_outcome(cancelled, None, owner=self._claims.owner, now=now):
            return self._lost(delivery)
        logger.info(
            "delivery %s to webhook %s cancelled: %s", delivery.id, delivery.webhook_id, why
        )
        return DeliveryOutcome(
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
            outcome=Outcome.CANCELLED,
            reason=why,
        )

    def _lost(self, delivery: Delivery) -> DeliveryOutcome:
        # Someone else changed it meanwhile (a cancellation, or a claim after our lease
        # lapsed): report what the store holds now.
        current = self._storage.get_delivery(delivery.id)
        logger.warning(
            "delivery %s to webhook %s: lease lost before the outcome was recorded (now %s)",
            delivery.id,
            delivery.webhook_id,
            current.status,
        )
        # Cancelled, or ended by a claim (claimed too often): the store's reason says why.
        ended = current.status in {DeliveryStatus.CANCELLED, DeliveryStatus.DEAD}
        return DeliveryOutcome(
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
            outcome=Outcome(current.status.value),
            reason=current.last_error if ended else "lease lost; outcome not recorded",
        )

    def _unexpected(self, delivery: Delivery, exc: Exception) -> DeliveryOutcome:
        # Only the type: the text of an unexpected error might quote a URL or a body.
        logger.error(
            "delivery %s to webhook %s: unexpected %s; it stays pending until its lease lapses",
            delivery.id,
            delivery.webhook_id,
            type(exc).__name__,
        )
        return DeliveryOutcome(
            webhook_id=delivery.webhook_id,
            delivery_id=delivery.id,
            outcome=Outcome.PENDING,
            reason=f"unexpected {type(exc).__name__}; retried when the lease lapses",
        )

    def _disable_gone(self, webhook: Webhook) -> None:
        reason = f"HTTP 410 Gone from {host_of(webhook.destination)}"
        try:
            self._registry.disable_by_system(webhook.id, reason=reason)
        except PendoWebhooksError as exc:
            logger.warning("webhook %s answered 410 but was not disabled: %s", webhook.id, exc)
            return
        logger.info("webhook %s disabled by the system: %s", webhook.id, reason)

    def attempt_guarded(self, delivery: Delivery, webhook: Webhook) -> DeliveryOutcome:
        if self._claims.running_short([delivery]):
            self._claims.release([delivery])
            return released([delivery])[0]
        return self.attempt_now(delivery, webhook)

    def attempt_now(self, delivery: Delivery, webhook: Webhook) -> DeliveryOutcome:
        """
        Attempt a just-stored delivery; for Segment, in a batch with the webhook's due ones.
        """
        if webhook.kind is WebhookKind.URL:
            return self._attempt(delivery, webhook)[0]
        found = self.attempt_batch([delivery], webhook)
        return next((o for o in found if o.delivery_id == delivery.id), found[0])

    def send_segment(self, webhook: Webhook, messages: Sequence[bytes]) -> tuple[Exchange, bytes]:
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

        sent = exchange(self._transport, build, clock=self._clock)
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
        more = self._claims.claim(room, webhook.id) if room > 0 else []
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
            if number and self._claims.running_short(batch):
                # Half the lease is gone: another batch could outlive it. Hand the rest back.
                self._claims.release(rest)
                outcomes.extend(released(rest))
                break
            sent_outcomes, disabled = self._send_batch(batch, webhook)
            outcomes.extend(sent_outcomes)
            if disabled:
                later = [(d, Outcome.CANCELLED, "webhook disabled") for d in sendable[start:]]
                outcomes.extend(self._close(later))
                break
        return outcomes

    def _send_batch(
        self, batch: Sequence[Delivery], webhook: Webhook
    ) -> tuple[list[DeliveryOutcome], bool]:
        """
        Send one batch, decide and record every delivery's outcome; return them, and a 410.
        """
        sent, body = self.send_segment(webhook, [d.body for d in batch])
        now = self._clock()
        # One jitter draw for the whole batch, so its deliveries come due together again.
        share = self._rng.random()

        def rng(low: float, high: float) -> float:
            return low + (high - low) * share

        decisions: dict[int, Decision] = {}

        def decide(delivery: Delivery) -> Decision:
            number = delivery.attempt_number - delivery.attempt_base
            decision = decisions.get(number)
            if decision is None:
                decision = decisions[number] = self._retry.decide(
                    attempt=number,
                    status=sent.status,
                    error_kind=sent.error_kind,
                    retry_after=sent.retry_after,
                    now=now,
                    rng=rng,
                )
            return decision

        if capabilities(self._storage).shared_outcomes:
            shared = cast(SharedOutcomesOutbox, self._storage).record_shared_outcomes
            outcomes = self._record_shared(shared, batch, sent, decide, now)
        else:
            rows: list[_Row] = [settle(d, sent, decide(d), now=now) for d in batch]
            written = self._storage.record_outcomes(rows, owner=self._claims.owner, now=now)
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
            owner=self._claims.owner,
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
        now = self._clock()
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
        written = self._storage.record_outcomes(rows, owner=self._claims.owner, now=now)
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
