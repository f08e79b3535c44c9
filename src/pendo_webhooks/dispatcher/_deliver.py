"""
The deliverer: one delivery flow for every kind of webhook, never raising.

Claimed deliveries of one webhook go through the same steps whatever its kind; the
webhook's :class:`~pendo_webhooks.channels.Channel` supplies what differs:

1. **unwanted**: a delivery its webhook no longer wants (deleted, disabled, unsubscribed)
   is cancelled, one the channel refuses (too large) failed; neither is sent;
2. **exchange**: the others are cut into batches (:meth:`Channel.plan`; a URL delivery is
   a batch of one) and each batch is sent once, its request built at send time
   (:meth:`Channel.request`), what came back scrubbed (:meth:`Channel.scrub`);
3. **decide**: the retry policy decides what follows for each delivery's own attempt
   number (the jitter is drawn once per batch, so deliveries that failed together are
   retried together);
4. **settle**: each delivery's next state and its :class:`Attempt` row
   (:func:`~pendo_webhooks.dispatcher._attempt.settle`, the one place attempt rows are made);
5. **record**: all of a batch's outcomes in one transaction, each fenced on its own lease
   (a delivery whose lease was lost reports what the store holds now); a 410 disables the
   webhook, and its later batches are cancelled.

A channel that batches (Segment) takes its webhook's other due deliveries along when one
is attempted, up to :attr:`Channel.max_batch_messages`; between batches, one whose claims
have less than half their lease left is handed back rather than sent late.

Strictly private; the :class:`~pendo_webhooks.dispatcher.Dispatcher` holds one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

import attrs

from .._clock import Clock
from ..channels import Channel, ChannelTable, Message
from ..exceptions import PendoWebhooksError, UnknownWebhook
from ..instrumentation import AttemptFinished, DeliveryChanged, DeliveryState, Hooks
from ..model._delivery import Attempt, Delivery, DeliveryStatus
from ..model._outcomes import DeliveryOutcome, Outcome
from ..model._webhook import Webhook
from ..registry import WebhookRegistry
from ..retry import Decision, RetryPolicy, Verdict
from ..storage import Storage
from ..storage.protocols import ChainingOutbox, SharedOutcomesOutbox, capabilities
from ..transports import OutgoingRequest, Transport
from ._attempt import Exchange, exchange, host_of, settle, unwanted
from ._deliver_claims import Claimer
from ._deliver_outcome import exhausted, outcome_of, released, settled_batch, unexpected
from ._health import HealthKeeper, Observed


__all__ = ["ClaimNext", "Deliverer"]

logger = logging.getLogger("pendo_webhooks")

_Row = tuple[Delivery, Attempt | None]
_CLOSED_STATUS = {
    Outcome.CANCELLED: DeliveryStatus.CANCELLED,
    Outcome.FAILED: DeliveryStatus.FAILED,
}
# What each recorded outcome tells the hooks; pending and skipped ones tell them nothing.
_SIGNALLED = {
    Outcome.DELIVERED: DeliveryState.DELIVERED,
    Outcome.RETRY: DeliveryState.RETRY_SCHEDULED,
    Outcome.DEAD: DeliveryState.DEAD,
    Outcome.FAILED: DeliveryState.FAILED,
    Outcome.CANCELLED: DeliveryState.CANCELLED,
}


@attrs.frozen
class ClaimNext:
    """
    A one-thread runner's request: record an outcome and claim the next due delivery.

    Passed to :meth:`Deliverer.attempt_claimed`, down to where a batch of one is
    recorded, which then records through *outbox*'s ``record_outcome_and_claim`` (one
    transaction for both) and returns what it claimed: ``None`` where no claim was made
    (a cancellation, a batching channel's delivery, a bug), ``[]`` where nothing was due.
    Strictly private.

    Args:
        outbox: The store, as the :class:`~pendo_webhooks.storage.protocols.ChainingOutbox`
            it is.
    """

    outbox: ChainingOutbox


class Deliverer:
    """
    Attempts claimed deliveries and records each outcome (fenced on its lease). Strictly private.

    Args:
        storage: The store (its outbox, and its webhooks, re-read at each attempt).
        registry: Disables a webhook that answered 410.
        claims: Claims a batch's other due deliveries; gives claims back.
        channels: The channel of each webhook kind.
        transport: Sends the requests.
        retry: Decides what follows each attempt.
        clock: The current aware UTC time.
        rng: Jitters retry waits.
        health: Keeps each webhook's health: holds deliveries during an outage, probes,
            auto-disables.
        hooks: Told of each exchange and each state change, once it is recorded.
    """

    def __init__(
        self,
        *,
        storage: Storage,
        registry: WebhookRegistry,
        claims: Claimer,
        channels: ChannelTable,
        transport: Transport,
        retry: RetryPolicy,
        clock: Clock,
        rng: random.Random,
        health: HealthKeeper,
        hooks: Hooks | None = None,
    ) -> None:
        self._storage = storage
        self._health = health
        self._registry = registry
        self._claims = claims
        self._channels = channels
        self._transport = transport
        self._retry = retry
        self._clock = clock
        self._rng = rng
        self._hooks = Hooks() if hooks is None else hooks

    # -- entry points ----------------------------------------------------------------------

    def attempt_claimed(
        self, delivery: Delivery, claim_next: ClaimNext | None = None
    ) -> tuple[list[DeliveryOutcome], list[Delivery] | None]:
        """
        Attempt a claimed delivery against its webhook as it is now; never raise.

        A batching channel's delivery takes the webhook's other due deliveries along; their
        outcomes are returned too. With *claim_next*, a delivery of a channel without
        batches is recorded in the transaction that claims the next due delivery.

        Returns:
            The outcomes, and what was claimed along with them (``None``: no claim was
            made; a cancellation, a batching channel, a bug or no *claim_next*).
        """
        if delivery.status is not DeliveryStatus.PENDING:
            return [self.ended(delivery)], None
        try:
            webhook = self._current_webhook(delivery.webhook_id)
        except Exception as exc:  # noqa: BLE001 - a broken store must not stop the loop
            return [unexpected(delivery, exc)], None
        return self._deliver([delivery], webhook, claim_next)

    def attempt_now(self, delivery: Delivery, webhook: Webhook) -> DeliveryOutcome:
        """
        Attempt a just-stored delivery (with its webhook's due ones, for a batching channel).
        """
        found, _ = self._deliver([delivery], webhook)
        # Its own outcome: a batch's closed (cancelled) deliveries may be reported first.
        return next((o for o in found if o.delivery_id == delivery.id), found[0])

    def attempt_guarded(self, delivery: Delivery, webhook: Webhook) -> DeliveryOutcome:
        """
        Like :meth:`attempt_now`, unless the claim is half gone: then hand it back.
        """
        if self._claims.running_short([delivery]):
            self._claims.release([delivery])
            return released([delivery])[0]
        return self.attempt_now(delivery, webhook)

    def attempt_batch(
        self, deliveries: Sequence[Delivery], webhook: Webhook
    ) -> list[DeliveryOutcome]:
        """
        Attempt claimed deliveries of *webhook* together (with its other due ones).
        """
        return self._deliver(deliveries, webhook)[0]

    def send(
        self, webhook: Webhook, channel: Channel, messages: Sequence[Message]
    ) -> tuple[Exchange, bytes]:
        """
        Send *messages* to *webhook* through *channel* as one request, once; return what
        happened and the body sent. Nothing is recorded (the "Test" button).
        """
        return self._exchange(webhook, channel, messages)

    def ended(self, delivery: Delivery) -> DeliveryOutcome:
        """
        The outcome of a delivery its claim ended (claimed too often without an outcome).
        """
        outcome = exhausted(delivery)
        self._signal([outcome])
        return outcome

    def channel(self, webhook: Webhook) -> Channel:
        """
        The channel of *webhook*'s kind.
        """
        return self._channels.for_webhook(webhook)

    # -- the flow --------------------------------------------------------------------------

    def _current_webhook(self, webhook_id: str) -> Webhook | None:
        try:
            return self._storage.get_webhook(webhook_id)
        except UnknownWebhook:
            return None

    def _deliver(
        self,
        claimed: Sequence[Delivery],
        webhook: Webhook | None,
        claim_next: ClaimNext | None = None,
    ) -> tuple[list[DeliveryOutcome], list[Delivery] | None]:
        """
        unwanted → exchange → decide → settle → record, for *claimed* (all *webhook*'s).

        Returns one outcome per delivery attempted, *claimed* first, and what *claim_next*
        claimed. An exception here is a bug (sending errors are outcomes): *claimed* stays
        pending and leased, and comes back when the lease lapses.
        """
        try:
            if webhook is None:
                deleted = [(d, Outcome.CANCELLED, "webhook deleted") for d in claimed]
                return self._close(deleted), None
            channel = self._channels.for_webhook(webhook)
            deliveries, ended = self._take_due(claimed, webhook, channel)
            closed: list[tuple[Delivery, Outcome, str]] = []
            sendable: list[Delivery] = []
            for delivery in deliveries:
                why = unwanted(delivery, webhook)
                if why is None:
                    refused = channel.refuse(delivery.body)
                    if refused is None:
                        sendable.append(delivery)
                        continue
                    closed.append((delivery, Outcome.FAILED, refused))
                else:
                    closed.append((delivery, Outcome.CANCELLED, why))
            outcomes = self._close(closed) if closed else []
            # During an outage: one probe at most, the others held (no attempt spent).
            sendable, held = self._gate(webhook, sendable)
            outcomes.extend(held)
            claimed_next = None
            start = 0
            for number, count in enumerate(channel.plan([len(d.body) for d in sendable])):
                batch = sendable[start : start + count]
                if number and self._claims.running_short(batch):
                    # Half the lease is gone: another batch could outlive it. Hand the rest back.
                    rest = sendable[start:]
                    self._claims.release(rest)
                    outcomes.extend(released(rest))
                    break
                start += count
                found, gone, claimed_next = self._send(batch, webhook, channel, claim_next)
                outcomes.extend(found)
                if gone:
                    later = [(d, Outcome.CANCELLED, "webhook disabled") for d in sendable[start:]]
                    if later:
                        outcomes.extend(self._close(later))
                    break
            if ended:
                outcomes.extend(ended)
        except Exception as exc:  # noqa: BLE001 - C4: one delivery never blocks the others
            return [unexpected(delivery, exc) for delivery in claimed], None
        return outcomes, claimed_next

    def _gate(
        self, webhook: Webhook, sendable: list[Delivery]
    ) -> tuple[list[Delivery], list[DeliveryOutcome]]:
        """
        The health keeper's gate; a store error there sends them all, as without health.
        """
        try:
            return self._health.gate(webhook, sendable)
        except PendoWebhooksError as exc:
            logger.warning("webhook %s: health not read, sending anyway: %s", webhook.id, exc)
            return sendable, []

    def _observe(self, webhook: Webhook, sent: Exchange, now: datetime) -> Observed | None:
        try:
            return self._health.observe(webhook, sent, now)
        except PendoWebhooksError as exc:
            logger.warning("webhook %s: health not updated: %s", webhook.id, exc)
            return None

    def _take_due(
        self, claimed: Sequence[Delivery], webhook: Webhook, channel: Channel
    ) -> tuple[Sequence[Delivery], list[DeliveryOutcome]]:
        """
        *claimed* and the webhook's other due deliveries, up to a batch; and those a claim
        ended (claimed too often without an outcome: not sent).
        """
        room = channel.max_batch_messages - len(claimed)
        if room <= 0:
            return claimed, []
        more = self._claims.claim(room, webhook.id)
        ended = [self.ended(d) for d in more if d.status is not DeliveryStatus.PENDING]
        if ended:
            more = [d for d in more if d.status is DeliveryStatus.PENDING]
        return [*claimed, *more], ended

    def _exchange(
        self, webhook: Webhook, channel: Channel, messages: Sequence[Message]
    ) -> tuple[Exchange, bytes]:
        """
        Build the request at send time, send it once, scrub what came back; never raise.
        """
        sent_body: list[bytes] = []

        def build(now: datetime) -> OutgoingRequest:
            request = channel.request(webhook, messages, now=now)
            sent_body.append(request.body)
            return request

        sent = exchange(self._transport, build, clock=self._clock)
        response = sent.response
        if response is not None:
            body = channel.scrub(webhook, response.body)
            if body is not response.body:
                sent = attrs.evolve(sent, response=attrs.evolve(response, body=body))
        if sent.detail:
            raw = sent.detail.encode("utf-8", "replace")
            detail = channel.scrub(webhook, raw)
            if detail is not raw:
                sent = attrs.evolve(sent, detail=detail.decode("utf-8", "replace"))
        return sent, (sent_body[0] if sent_body else b"")

    def _send(
        self,
        batch: Sequence[Delivery],
        webhook: Webhook,
        channel: Channel,
        claim_next: ClaimNext | None,
    ) -> tuple[list[DeliveryOutcome], bool, list[Delivery] | None]:
        """
        Send one batch, decide, settle and record each delivery's outcome.

        Returns the outcomes, whether the webhook answered 410, and what *claim_next*
        claimed (``None``: no claim was made).
        """
        sent, body = self._exchange(webhook, channel, batch)
        now = self._clock()
        observed = self._observe(webhook, sent, now)
        claimed: list[Delivery] | None = None
        if channel.max_batch_messages == 1:
            # A channel without batches: the store's single-outcome path, chained if asked.
            # One decision: its jitter is random.uniform's, as a batch's first draw would be.
            decision = self._decide(batch[0], sent, now, self._rng.uniform, observed)
            decisions = [decision]
            rows: list[_Row] = [settle(batch[0], sent, decision, now=now)]
            written, claimed = self._record_one(rows[0], claim_next, now)
        else:
            decide, memo = self._decider(sent, now, observed)
            if capabilities(self._storage).shared_outcomes:
                rows, written = self._record_shared(batch, sent, decide, now)
            else:
                rows = [settle(d, sent, decide(d), now=now) for d in batch]
                written = self._storage.record_outcomes(rows, owner=self._claims.owner, now=now)
            decisions = list(memo.values())
        try:
            gone = False
            delivered = True
            for decision in decisions:
                gone = gone or decision.disable_webhook
                delivered = delivered and decision.verdict is Verdict.DELIVERED
            if gone:
                self._disable_gone(webhook)
            else:
                self._health.follow_up(webhook, observed)
            outcomes = settled_batch(batch, rows, written, sent, self._lost)
        except BaseException:
            if claimed:  # nobody will attempt them now: give them back at once
                self._claims.release(claimed)
            raise
        if self._hooks:
            self._hooks.emit(
                AttemptFinished(
                    webhook_id=webhook.id,
                    kind=str(webhook.kind),
                    host=host_of(webhook.destination),
                    deliveries=len(batch),
                    status=sent.status,
                    error_kind=sent.error_kind,
                    duration=sent.duration,
                    at=now,
                )
            )
            self._signal([o for o, ok in zip(outcomes, written, strict=True) if ok], now)
        level = logging.DEBUG if delivered else logging.INFO
        if logger.isEnabledFor(level):
            self._log(
                batch,
                level=level,
                webhook=webhook,
                channel=channel,
                sent=sent,
                body=body,
                decisions=decisions,
                rows=rows,
            )
        return outcomes, gone, claimed

    def _decider(
        self, sent: Exchange, now: datetime, observed: Observed | None = None
    ) -> tuple[Callable[[Delivery], Decision], dict[int, Decision]]:
        """
        A memo of the retry policy's decisions on *sent*, by attempt number, and the memo.

        The jitter is drawn once per batch, when first needed (as ``random.uniform``
        would: ``low + (high - low) * random()``).
        """
        share: list[float] = []
        decisions: dict[int, Decision] = {}

        def rng(low: float, high: float) -> float:
            if not share:
                share.append(self._rng.random())
            return low + (high - low) * share[0]

        def decide(delivery: Delivery) -> Decision:
            number = delivery.attempt_number - delivery.attempt_base
            decision = decisions.get(number)
            if decision is None:
                decision = decisions[number] = self._decide(delivery, sent, now, rng, observed)
            return decision

        return decide, decisions

    def _decide(
        self,
        delivery: Delivery,
        sent: Exchange,
        now: datetime,
        rng: Callable[[float, float], float],
        observed: Observed | None = None,
    ) -> Decision:
        """
        The retry policy's decision on *sent* for *delivery*'s own attempt number.

        During an outage (*observed* says so), a retry waits with the held deliveries.
        """
        decision = self._retry.decide(
            attempt=delivery.attempt_number - delivery.attempt_base,
            status=sent.status,
            error_kind=sent.error_kind,
            retry_after=sent.retry_after,
            now=now,
            rng=rng,
        )
        return HealthKeeper.held(decision, observed)

    def _record_one(
        self, row: _Row, claim_next: ClaimNext | None, now: datetime
    ) -> tuple[list[bool], list[Delivery] | None]:
        """
        Record the one delivery of a channel without batches; with *claim_next*, claim the
        next due delivery in the same transaction.

        Returns whether it was written, and what was claimed.
        """
        updated, attempt = row
        if claim_next is None:
            return [
                self._storage.record_outcome(updated, attempt, owner=self._claims.owner, now=now)
            ], None
        written, claimed = claim_next.outbox.record_outcome_and_claim(
            updated,
            attempt,
            owner=self._claims.owner,
            now=now,
            lease_until=now + self._claims.lease_duration,
            max_claims=self._claims.max_claims,
        )
        if not written and claimed:
            # The claim may have ended this very delivery (its lease had lapsed, and it was
            # claimed too often): _lost reports that, once.
            claimed = [
                d for d in claimed if d.id != updated.id or d.status is DeliveryStatus.PENDING
            ]
        return [written], claimed

    def _record_shared(
        self,
        batch: Sequence[Delivery],
        sent: Exchange,
        decide: Callable[[Delivery], Decision],
        now: datetime,
    ) -> tuple[list[_Row], list[bool]]:
        """
        Record a batch's outcomes through the store's set-based fast path.

        Deliveries with the same attempt counts get the same decision, state and attempt
        row (but for their ids), so each such group is settled once and written as one.
        Returns each delivery's row as settled for its group (its own id aside), and
        whether it was written.
        """
        groups: dict[tuple[int, int], list[Delivery]] = {}
        for delivery in batch:
            groups.setdefault((delivery.attempts, delivery.attempt_base), []).append(delivery)
        by_group = {
            key: settle(members[0], sent, decide(members[0]), now=now)
            for key, members in groups.items()
        }
        record = cast(SharedOutcomesOutbox, self._storage).record_shared_outcomes
        written = record(
            [([d.id for d in members], *by_group[key]) for key, members in groups.items()],
            owner=self._claims.owner,
            now=now,
        )
        rows: list[_Row] = [by_group[d.attempts, d.attempt_base] for d in batch]
        return rows, [d.id in written for d in batch]

    def _log(
        self,
        batch: Sequence[Delivery],
        *,
        level: int,
        webhook: Webhook,
        channel: Channel,
        sent: Exchange,
        body: bytes,
        decisions: list[Decision],
        rows: list[_Row],
    ) -> None:
        if channel.max_batch_messages == 1:
            attempt = rows[0][1]
            logger.log(
                level,
                "delivery %s to webhook %s (%s), attempt %d: %s in %.3f s, %s",
                batch[0].id,
                batch[0].webhook_id,
                host_of(webhook.destination),
                0 if attempt is None else attempt.number,
                sent.describe(),
                sent.duration,
                decisions[0].reason,
            )
            return
        logger.log(
            level,
            "%s batch to webhook %s (%s): %d messages, %d bytes: %s in %.3f s, %s",
            webhook.kind,
            webhook.id,
            host_of(webhook.destination),
            len(batch),
            len(body),
            sent.describe(),
            sent.duration,
            "; ".join(sorted({d.reason for d in decisions})),
        )

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
            result = outcome_of(delivery.webhook_id, delivery.id, outcome, why)
            results.append(result)
            self._signal([result], now)
        return results

    def _signal(self, outcomes: Sequence[DeliveryOutcome], now: datetime | None = None) -> None:
        """
        Tell the hooks of recorded *outcomes* (those that changed a delivery's state).
        """
        if not self._hooks:
            return
        at = self._clock() if now is None else now
        for outcome in outcomes:
            state = _SIGNALLED.get(outcome.outcome)
            if state is None or outcome.delivery_id is None:
                continue
            self._hooks.emit(
                DeliveryChanged(
                    webhook_id=outcome.webhook_id,
                    delivery_id=outcome.delivery_id,
                    state=state,
                    attempt=outcome.attempt,
                    reason=outcome.reason,
                    next_attempt_at=outcome.next_attempt_at,
                    at=at,
                )
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
        if self._hooks:
            self._hooks.emit(
                DeliveryChanged(
                    webhook_id=delivery.webhook_id,
                    delivery_id=delivery.id,
                    state=DeliveryState.LEASE_LOST,
                    reason=f"lease lost; the store holds it {current.status}",
                    at=self._clock(),
                )
            )
        # Cancelled, or ended by a claim (claimed too often): the store's reason says why.
        ended = current.status in {DeliveryStatus.CANCELLED, DeliveryStatus.DEAD}
        return outcome_of(
            delivery.webhook_id,
            delivery.id,
            Outcome(current.status.value),
            current.last_error if ended else "lease lost; outcome not recorded",
        )

    def _disable_gone(self, webhook: Webhook) -> None:
        reason = f"HTTP 410 Gone from {host_of(webhook.destination)}"
        try:
            self._registry.disable_by_system(webhook.id, reason=reason)
        except PendoWebhooksError as exc:
            logger.warning("webhook %s answered 410 but was not disabled: %s", webhook.id, exc)
            return
        logger.info("webhook %s disabled by the system: %s", webhook.id, reason)
