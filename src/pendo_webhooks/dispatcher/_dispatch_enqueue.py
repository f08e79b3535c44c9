"""
The dispatcher's enqueuer: from events to stored deliveries (and, to dispatch, their first
attempt).

Each event is serialized once per kind of webhook, the subscribed webhooks are read once
per category, and every delivery of a call is written in one transaction; to dispatch,
the stored deliveries are then attempted through the deliverer (a chunk at a time for
many events). Strictly private; the :class:`~pendo_webhooks.dispatcher.Dispatcher` holds
one and delegates to it (its public methods carry the documentation).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Protocol

import attrs

from ..channels import ChannelTable, format_for
from ..channels._filtering import unsupported_reason
from ..channels._segment import too_large_reason
from ..events import Event, EventCategory
from ..exceptions import ValidationError
from ..model._delivery import Delivery, DeliveryStatus, fresh_delivery
from ..model._exclusions import ExclusionMatcher, StoredExclusions
from ..model._outcomes import DeliveryOutcome, DispatchResult, Outcome
from ..model._webhook import Webhook
from ..pipeline._gate import (
    Decision,
    DestinationResolver,
    SkipReason,
    describe,
    evaluate,
    event_gate,
    payload_measure,
)
from ..registry import WebhookRegistry
from ..storage import Storage
from ..storage._host_connection import enqueue_through
from ..storage._outbox_protocol import EnqueueSkip
from ._deliver import Deliverer
from ._deliver_claims import Claimer
from ._deliver_outcome import outcome_of
from ._dispatch_shared import SharedBatches


__all__ = ["CHUNK_PER_THREAD", "Enqueuer"]

#: dispatch_many claims URL deliveries this many per dispatch thread at a time (a Segment
#: webhook's, one batch's worth): a host killed mid-call strands at most one such chunk
#: for a lease, and the rest are due at once for any worker.
CHUNK_PER_THREAD = 4

_SKIPPED = {
    EnqueueSkip.DUPLICATE: "duplicate: this event was already enqueued for this webhook",
    EnqueueSkip.DISABLED: "webhook disabled",
    EnqueueSkip.DELETED: "webhook deleted",
}


class Enqueuer:
    """
    Plans, stores and (to dispatch) attempts the deliveries of events. Strictly private.

    Args:
        registry: Which webhooks are subscribed to a category.
        storage: The store the deliveries go to.
        claims: The lease a dispatched delivery is stored with; claims later chunks.
        deliverer: Attempts the stored deliveries, to dispatch.
        transport: Asked, by explain, whether a destination resolves to a refused address.
        ids: Makes delivery ids.
        threads: Threads for dispatch's immediate attempts.
        channels: The channel of each webhook kind: formats, limits, batches.
    """

    def __init__(
        self,
        *,
        registry: WebhookRegistry,
        storage: Storage,
        claims: Claimer,
        deliverer: Deliverer,
        transport: object,
        ids: Callable[[str], str],
        threads: int,
        channels: ChannelTable,
    ) -> None:
        self._registry = registry
        self._storage = storage
        self._claims = claims
        self._clock = claims.clock
        self._deliverer = deliverer
        self._transport = transport
        self._ids = ids
        self._threads = threads
        self._channels = channels
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._exclusions = StoredExclusions(storage)
        self._shared = SharedBatches(deliverer=deliverer, claims=claims)
        # SQLiteStorage's: a lone event planned from what the store last read, and stored
        # only if none of it changed since (see _enqueue_cached).
        cached = getattr(storage, "_cached_webhooks_for", None)
        if_current = getattr(storage, "_enqueue_if_current", None)
        self._cached: tuple[CachedWebhooks, StoreIfCurrent] | None = (
            (cached, if_current)
            if cached is not None and if_current is not None and registry.storage is storage
            else None
        )

    def close(self) -> None:
        """
        Stop the dispatch threads (once they finish).
        """
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def explain(self, event: Event) -> list[Decision]:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.explain`.
        """
        if not isinstance(getattr(event, "category", None), EventCategory):
            raise ValidationError("event", f"must be an event, not {type(event).__name__}")
        check: DestinationResolver | None = getattr(self._transport, "check_destination", None)
        return evaluate(
            event,
            self._storage.list_webhooks(),
            exclusions=self._exclusions.current(),
            destinations=self._registry.destinations,
            resolve=check if callable(check) else None,
            measure=payload_measure(event, channels=self._channels),
        )

    def enqueue(
        self, events: Iterable[Event], *, attempt: bool, connection: object | None = None
    ) -> list[DispatchResult]:
        if (
            self._cached is not None
            and connection is None
            and type(events) is list
            and len(events) == 1
        ):
            found = self._enqueue_cached(events[0], attempt=attempt)
            if found is not None:
                return found
        batch = self._batch(attempt)
        plans = self._plan_all(events, batch, attempt=attempt)
        batch_deliveries = _planned(plans)
        if batch_deliveries:
            skipped = (
                self._storage.enqueue_deliveries(batch_deliveries)
                if connection is None
                else enqueue_through(self._storage, batch_deliveries, connection)
            )
            _sort(plans, skipped)
        return self._settle(plans, attempt=attempt)

    def _enqueue_cached(self, event: Event, *, attempt: bool) -> list[DispatchResult] | None:
        """
        Plan *event* from the store's last reads and store it in one statement; or ``None``.

        The subscribed webhooks and the exclusion list as last read, with the versions
        they were read at; the store writes the delivery only if both versions are still
        the stored ones, atomically with the write, so an admin change committed before
        this call is never missed. ``None`` (nothing stored) when that cannot be shown:
        nothing read yet, not exactly one delivery (an event the exclusions or agent rules
        gate is confirmed by a fresh read too), or the store did not store it; the caller
        then plans afresh, the ordinary way.
        """
        assert self._cached is not None  # noqa: S101 - enqueue checked
        cached_webhooks, store_if_current = self._cached
        category = getattr(event, "category", None)
        if not isinstance(category, EventCategory):
            return None
        webhooks = cached_webhooks(category)
        exclusions = self._exclusions.cached()
        if webhooks is None or exclusions is None or len(webhooks[1]) != 1:
            return None
        batch = self._batch(attempt)
        batch.subscribed[category] = list(webhooks[1])
        batch.exclusions = exclusions[1]
        plan = self._plan(event, batch)
        if len(plan.planned) != 1:
            return None
        skipped = store_if_current(plan.planned[0][1], versions=(webhooks[0], exclusions[0]))
        if skipped is None:
            return None
        _sort([plan], skipped)
        return self._settle([plan], attempt=attempt)

    def enqueue_first_seen(
        self,
        keys: Collection[str],
        *,
        at: datetime,
        categories: Iterable[EventCategory],
        events: Callable[[set[str]], list[Event]],
        attempt: bool,
        connection: object | None = None,
    ) -> list[DispatchResult]:
        """
        Claim first-seen *keys* and store the deliveries of the events they fire, atomically.

        The enqueue path of :meth:`enqueue_many` (or :meth:`dispatch_many`, with
        *attempt*), with the claim in the same transaction
        (``Storage.claim_first_seen_and_enqueue``): *events* makes the events of the keys
        this call claimed. What the planning reads from the store (the webhooks subscribed
        to *categories*, the exclusion list) is read before the transaction, so inside it
        the deliveries are only formatted. For ``FirstSeenTracker``. Strictly private.
        """
        batch = self._batch(attempt)
        for category in categories:
            self._subscribed(category, batch)
        plans: list[_Plan] = []

        def deliveries(claimed: set[str]) -> list[Delivery]:
            # Called inside the store's transaction, perhaps more than once (a retry).
            plans[:] = self._plan_all(events(claimed), batch, attempt=attempt)
            return _planned(plans)

        _, skipped = self._storage.claim_first_seen_and_enqueue(
            keys, at=at, deliveries=deliveries, connection=connection
        )
        _sort(plans, skipped)
        return self._settle(plans, attempt=attempt)

    def _plan_all(self, events: Iterable[Event], batch: _Batch, *, attempt: bool) -> list[_Plan]:
        """
        Plan each event's deliveries; to attempt many, only the first chunk stays claimed.
        """
        plans = [self._plan(event, batch) for event in events]
        if attempt and len(plans) > 1:
            self._claim_first_chunk(plans)
        return plans

    def _batch(self, attempt: bool) -> _Batch:
        now = self._clock()
        if not attempt:
            return _Batch(now=now, lease_until=None, owner=None)
        # The owner once per call: it asks for the process id.
        return _Batch(
            now=now, lease_until=now + self._claims.lease_duration, owner=self._claims.owner
        )

    def _subscribed(self, category: EventCategory, batch: _Batch) -> list[Webhook]:
        """
        The webhooks subscribed to *category*, read once per batch, and the exclusion list
        once some webhook listens.
        """
        webhooks = batch.subscribed.get(category)
        if webhooks is None:
            webhooks = batch.subscribed[category] = self._registry.subscribed(category)
        if webhooks and batch.exclusions is None:
            batch.exclusions = self._exclusions.current()
        return webhooks

    def _settle(self, plans: list[_Plan], *, attempt: bool) -> list[DispatchResult]:
        """
        Attempt the stored deliveries now (with *attempt*), or report them pending.
        """
        if attempt and len(plans) > 1:
            stored = [pair for plan in plans for pair in plan.stored]
            by_delivery = {o.delivery_id: o for o in self._attempt_stored(stored)}
            for plan in plans:
                for webhook, delivery in plan.stored:
                    plan.outcomes[webhook.id] = by_delivery[delivery.id]
        else:
            for plan in plans:
                settled = self._attempt_all(plan.stored) if attempt else _pending(plan.stored)
                for outcome in settled:
                    plan.outcomes[outcome.webhook_id] = outcome
        return [plan.result() for plan in plans]

    def _plan(self, event: Event, batch: _Batch) -> _Plan:
        """
        Decide *event*'s deliveries: one per subscribed webhook, its message formatted once.
        """
        category = getattr(event, "category", None)
        if not isinstance(category, EventCategory):
            raise ValidationError("event", f"must be an event, not {type(event).__name__}")
        webhooks = self._subscribed(category, batch)
        plan = _Plan(event=event, webhooks=webhooks)
        if not webhooks or batch.exclusions is None:
            return plan
        gate = event_gate(event, batch.exclusions)
        if gate is not None:
            plan.gated = _gated(event, webhooks, *gate)
            return plan
        now = batch.now
        # Formatted once per channel (a channel may serve more than one kind), and once per
        # set of PII filters (with the key they hash with).
        bodies: dict[object, bytes | None] = {}
        for webhook in webhooks:
            channel = self._channels.for_webhook(webhook)
            key = (
                (id(channel), webhook.filters, webhook.hash_key)
                if webhook.filters
                else id(channel)
            )
            if key in bodies:
                found = bodies[key]
            else:
                found = bodies[key] = format_for(channel, event, webhook)[0]
            body = b"" if found is None else found
            limit = channel.max_message_bytes
            # Every value is of the right type already: the unchecked positional builder.
            delivery = fresh_delivery(
                self._ids("dlv"),
                webhook.id,
                event.unique_id,
                category,
                body,
                batch.lease_until or now,
                now,
                batch.owner,
                batch.lease_until,
            )
            if found is None:
                refused: str | None = unsupported_reason(channel, webhook)
            elif len(body) > limit:
                refused = too_large_reason(len(body), limit)
            else:
                refused = channel.refuse(body)
            if refused is not None:
                # Never sent (over a message limit: Segment's 32 KB, its messageId length;
                # PII filters its channel cannot apply):
                # stored finished, so the reason stays on record.
                delivery = attrs.evolve(
                    delivery,
                    status=DeliveryStatus.FAILED,
                    next_attempt_at=now,
                    last_error=refused,
                    finished_at=now,
                    lease_owner=None,
                    lease_until=None,
                )
            plan.planned.append((webhook, delivery))
        return plan

    def _attempt_all(
        self, stored: list[tuple[Webhook, Delivery]], *, guard_lease: bool = False
    ) -> list[DeliveryOutcome]:
        # dispatch(): a batching channel's callers share requests (see SharedBatches).
        attempt = self._deliverer.attempt_guarded if guard_lease else self._attempt_one
        if len(stored) <= 1:
            return [attempt(delivery, webhook) for webhook, delivery in stored]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self._threads, thread_name_prefix="pendo-webhooks-dispatch"
                )
            pool = self._pool
        return list(pool.map(lambda pair: attempt(pair[1], pair[0]), stored))

    def _attempt_one(self, delivery: Delivery, webhook: Webhook) -> DeliveryOutcome:
        if self._channels.for_webhook(webhook).max_batch_messages > 1:
            return self._shared.attempt(delivery, webhook)
        return self._deliverer.attempt_now(delivery, webhook)

    def _chunks(
        self, pairs: Sequence[tuple[Webhook, Delivery]]
    ) -> list[list[tuple[Webhook, Delivery]]]:
        """
        *pairs* in the chunks dispatch_many claims and attempts them in, in order.

        Each batching webhook's (Segment's) deliveries in one batch's worth each, then the
        others (URL webhooks'), ``CHUNK_PER_THREAD`` per dispatch thread each.
        """
        batches: dict[str, tuple[int, list[tuple[Webhook, Delivery]]]] = {}
        singles: list[tuple[Webhook, Delivery]] = []
        for pair in pairs:
            most = self._channels.for_webhook(pair[0]).max_batch_messages
            if most > 1:
                batches.setdefault(pair[0].id, (most, []))[1].append(pair)
            else:
                singles.append(pair)
        chunks = [
            group[i : i + most]
            for most, group in batches.values()
            for i in range(0, len(group), most)
        ]
        size = CHUNK_PER_THREAD * self._threads
        chunks.extend(singles[i : i + size] for i in range(0, len(singles), size))
        return chunks

    def _claim_first_chunk(self, plans: list[_Plan]) -> None:
        """
        Leave only the first chunk of *plans*' deliveries claimed; the rest are stored due.

        So a host killed in the middle of dispatch_many strands one chunk for a lease, not
        all of them: any worker takes the rest at once. :meth:`_attempt_stored` claims
        them a chunk at a time.
        """
        claimed = [(w, d) for plan in plans for w, d in plan.planned if d.lease_owner is not None]
        chunks = self._chunks(claimed)
        if len(chunks) <= 1:
            return
        first = {d.id for _, d in chunks[0]}
        for plan in plans:
            plan.planned = [
                (w, d)
                if d.id in first or d.lease_owner is None
                else (
                    w,
                    attrs.evolve(
                        d, lease_owner=None, lease_until=None, next_attempt_at=d.created_at
                    ),
                )
                for w, d in plan.planned
            ]

    def _attempt_stored(self, stored: list[tuple[Webhook, Delivery]]) -> list[DeliveryOutcome]:
        """
        Attempt many just-stored deliveries a chunk at a time (see :meth:`_chunks`).

        Each chunk is claimed just before its turn (the first was stored claimed): one
        another worker took meanwhile is reported pending. Segment deliveries go in
        batches, URL ones alone; a URL delivery whose lease is half gone before its turn
        comes is handed back (pending, due at once) rather than sent late.
        """
        outcomes: dict[str, DeliveryOutcome] = {}
        for chunk in self._chunks(stored):
            # A Segment batch takes its webhook's due deliveries along: ours of a later chunk too.
            waiting = [(w, d) for w, d in chunk if d.id not in outcomes]
            if any(d.lease_owner is None for _, d in waiting):
                waiting = self._claim_chunk(waiting, outcomes)
            if not waiting:
                continue
            webhook = waiting[0][0]
            if self._channels.for_webhook(webhook).max_batch_messages > 1:
                found = self._deliverer.attempt_batch([d for _, d in waiting], webhook)
            else:
                found = self._attempt_all(waiting, guard_lease=True)
            for outcome in found:
                if outcome.delivery_id is not None:
                    outcomes.setdefault(outcome.delivery_id, outcome)
        return list(outcomes.values())

    def _claim_chunk(
        self, chunk: list[tuple[Webhook, Delivery]], outcomes: dict[str, DeliveryOutcome]
    ) -> list[tuple[Webhook, Delivery]]:
        """
        Claim *chunk*'s unclaimed deliveries; return those now ours, put the others' outcomes.
        """
        got = {
            d.id: d
            for d in self._claims.claim_ids([d.id for _, d in chunk if d.lease_owner is None])
        }
        ready: list[tuple[Webhook, Delivery]] = []
        for webhook, delivery in chunk:
            current = delivery if delivery.lease_owner is not None else got.get(delivery.id)
            if current is None:
                outcomes[delivery.id] = _taken(delivery)
            elif current.status is not DeliveryStatus.PENDING:
                outcomes[delivery.id] = self._deliverer.ended(current)
            else:
                ready.append((webhook, current))
        return ready


def _skipped(webhook_id: str, reason: str) -> DeliveryOutcome:
    return outcome_of(webhook_id, None, Outcome.SKIPPED, reason)


def _gated(
    event: Event, webhooks: Sequence[Webhook], reason: SkipReason, detail: str
) -> DispatchResult:
    # An event-wide reason (exclusion, agent version): every subscribed webhook skips it,
    # with the text explain() gives.
    text = describe(reason, detail)
    return DispatchResult(
        event_id=event.unique_id,
        category=event.category,
        outcomes=tuple(_skipped(w.id, text) for w in webhooks),
    )


def _pending(stored: list[tuple[Webhook, Delivery]]) -> list[DeliveryOutcome]:
    return [outcome_of(w.id, d.id, Outcome.PENDING) for w, d in stored]


def _taken(delivery: Delivery) -> DeliveryOutcome:
    # Stored unclaimed by dispatch_many, and claimed by a worker before its chunk's turn.
    return outcome_of(
        delivery.webhook_id,
        delivery.id,
        Outcome.PENDING,
        "claimed by another worker before its turn",
    )


def _too_large(delivery: Delivery) -> DeliveryOutcome:
    return outcome_of(delivery.webhook_id, delivery.id, Outcome.FAILED, delivery.last_error)


def _planned(plans: list[_Plan]) -> list[Delivery]:
    """
    Every delivery *plans* will store, in order.
    """
    return [d for plan in plans for _, d in plan.planned]


def _sort(plans: list[_Plan], skipped: Sequence[str | None]) -> None:
    """
    Sort each plan's deliveries into stored, skipped (*skipped*: the store's word on each,
    in order) or too large.
    """
    found = iter(skipped)
    for plan in plans:
        for webhook, delivery in plan.planned:
            why = next(found)
            if why is not None:
                plan.outcomes[webhook.id] = _skipped(webhook.id, _SKIPPED.get(why, why))
            elif delivery.status is DeliveryStatus.FAILED:
                plan.outcomes[webhook.id] = _too_large(delivery)
            else:
                plan.stored.append((webhook, delivery))


class CachedWebhooks(Protocol):
    """
    SQLiteStorage's webhooks subscribed to a category as last read, with their version.
    """

    def __call__(self, category: EventCategory, /) -> tuple[int, tuple[Webhook, ...]] | None: ...


class StoreIfCurrent(Protocol):
    """
    SQLiteStorage's enqueue of one delivery planned at ``versions``; ``None``: not stored.
    """

    def __call__(
        self, delivery: Delivery, /, *, versions: tuple[int, int]
    ) -> list[str | None] | None: ...


@attrs.define
class _Batch:
    """
    What the events of one enqueue share: the time, the lease, and what was read. Private.
    """

    now: datetime
    lease_until: datetime | None
    owner: str | None
    subscribed: dict[EventCategory, list[Webhook]] = attrs.Factory(dict)
    exclusions: ExclusionMatcher | None = None


@attrs.define
class _Plan:
    """
    One event's deliveries on their way into the store. Strictly private.
    """

    event: Event
    webhooks: Sequence[Webhook]
    planned: list[tuple[Webhook, Delivery]] = attrs.Factory(list)
    stored: list[tuple[Webhook, Delivery]] = attrs.Factory(list)
    outcomes: dict[str, DeliveryOutcome] = attrs.Factory(dict)
    gated: DispatchResult | None = None

    def result(self) -> DispatchResult:
        """
        The event's result: one outcome per subscribed webhook, in their order.
        """
        if self.gated is not None:
            return self.gated
        return DispatchResult(
            event_id=self.event.unique_id,
            category=self.event.category,
            outcomes=tuple(self.outcomes[w.id] for w in self.webhooks),
        )
