"""
The delivery engine: :class:`Dispatcher` stores, signs, sends and retries webhook deliveries.

Every delivery lives in the store's outbox from the moment it is created, so a
process may die at any line and another picks up (at least once, never lost):

* :meth:`Dispatcher.dispatch` serializes the event once, stores one
  :class:`Delivery` per enabled, subscribed webhook (already claimed by this
  dispatcher) and makes one immediate attempt each;
* :meth:`Dispatcher.run_due`, :meth:`~Dispatcher.drain` and
  :meth:`~Dispatcher.run_worker` claim due deliveries (a lease: an owner and an
  expiry), attempt them with no transaction open, and record each outcome only
  while the lease is still theirs;
* each attempt re-reads its webhook, so a webhook disabled, deleted or unsubscribed
  meanwhile gets no request (the delivery is ``cancelled``), signs afresh (new
  ``webhook-timestamp``, same ``webhook-id`` and body bytes), and stores an
  :class:`Attempt` row; the :class:`~pendo_webhooks.retry.RetryPolicy` decides what
  follows, and a ``410 Gone`` disables the webhook (audited as ``"system"``);
* a Segment webhook's deliveries hold ``track`` messages and go out together:
  attempting one claims the webhook's other due ones, and they are sent as
  ``POST <endpoint>/v1/batch`` bodies joined from the stored bytes (at most 2,500
  messages and 475,000 bytes each), with the write key read at send time; the
  batch's outcome is each delivery's, one :class:`Attempt` row each;
* a message over its limit (32,768 bytes for Segment, *max_body_bytes* for URL
  webhooks) is stored ``failed`` with the reason, and never sent;
* :meth:`Dispatcher.enqueue_many` and :meth:`Dispatcher.dispatch_many` store many
  events in one transaction (the bulk path).

>>> from pendo_webhooks.registry import Actor, WebhookRegistry
>>> from pendo_webhooks.storage import InMemoryStorage
>>> from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
>>> registry = WebhookRegistry(InMemoryStorage())
>>> admin = Actor("u-1", is_admin=True)
>>> hook = registry.create(admin, name="NPS", url="https://hooks.example.com/in",
...                        secret="s3cr3t!", categories={"npsSubmitted"})
>>> _ = registry.enable(admin, hook.id)
>>> clock = FrozenClock()
>>> transport = RecordingTransport([503])
>>> dispatcher = Dispatcher(registry, transport=transport, clock=clock, sleep=clock.sleep)
>>> dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id).outcome
<Outcome.RETRY: 'retry'>
>>> dispatcher.drain(timeout=600).delivered
1
>>> [r.headers["webhook-id"] == transport.requests[0].headers["webhook-id"]
...  for r in transport.requests]
[True, True]
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import attrs

from ._attempt import Exchange, SignerCache, exchange, host_of, settle, unwanted, url_request
from ._clock import Clock, utcnow
from ._delivery import Attempt, Delivery, DeliveryStatus, trusted_delivery
from ._dispatch_admin import AdminMixin
from ._dispatch_args import count_arg, seconds_arg
from ._dispatch_running import MAX_THREADS, ClaimNext, RunningMixin
from ._dispatch_segment import SegmentMixin, exhausted, released
from ._exclusions import ExclusionMatcher, StoredExclusions
from ._gate import (
    DEFAULT_MAX_BODY_BYTES,
    Decision,
    DestinationResolver,
    SkipReason,
    describe,
    evaluate,
    event_gate,
    payload_measure,
)
from ._ids import sorted_id
from ._outcomes import DeliveryOutcome, DispatchResult, DrainSummary, Outcome, TestResult
from ._segment import MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, too_large_reason
from ._webhook import Webhook, WebhookKind
from .events import Event, EventCategory
from .exceptions import ConfigurationError, PendoWebhooksError, UnknownWebhook, ValidationError
from .formatters import Formatter, SegmentFormatter, URLFormatter
from .registry import WebhookRegistry
from .retry import RetryPolicy, Verdict
from .storage import Storage
from .storage._host_connection import enqueue_through
from .storage._outbox_protocol import EnqueueSkip
from .storage.protocols import capabilities
from .transports import OutgoingRequest, RequestsTransport, Transport


__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CLAIMS",
    "Attempt",
    "Delivery",
    "DeliveryOutcome",
    "DeliveryStatus",
    "DispatchResult",
    "Dispatcher",
    "DrainSummary",
    "Outcome",
    "TestResult",
]

#: How long a claim holds unless told otherwise: longer than any attempt can take
#: (the transport's deadline is at most 30 s), plus a margin.
DEFAULT_LEASE = timedelta(seconds=60)

#: How many claims of one delivery may end without an outcome before it ends ``dead``.
#: A healthy delivery has none: every claim ends in an outcome, or is handed back. Each
#: worker killed mid-attempt, or attempt that outlived its lease, adds one; five of them
#: on one delivery say the delivery itself is the cause (a poison pill), not bad luck.
DEFAULT_MAX_CLAIMS = 5

#: dispatch_many claims URL deliveries this many per dispatch thread at a time (a Segment
#: webhook's, one batch's worth): a host killed mid-call strands at most one such chunk
#: for a lease, and the rest are due at once for any worker.
CHUNK_PER_THREAD = 4

#: A lease must be at least this many times the transport's deadline: a claimed delivery
#: (or a Segment batch) is still attempted while half of its lease is left, so half a
#: lease must cover a whole attempt; the other half covers the store's writes and pauses.
LEASE_PER_DEADLINE = 2

logger = logging.getLogger("pendo_webhooks")

_SKIPPED = {
    EnqueueSkip.DUPLICATE: "duplicate: this event was already enqueued for this webhook",
    EnqueueSkip.DISABLED: "webhook disabled",
    EnqueueSkip.DELETED: "webhook deleted",
}


class Dispatcher(RunningMixin, AdminMixin, SegmentMixin):
    """
    Delivers events to the registry's webhooks through the store's outbox; synchronous.

    Args:
        registry: Where webhooks are looked up, and which disables a webhook on 410.
        storage: The store holding the outbox; the registry's store by default (for a
            process-local store, such as :class:`~pendo_webhooks.storage.InMemoryStorage`,
            it must be that one).
        transport: Sends requests; by default a
            :class:`~pendo_webhooks.transports.RequestsTransport` guarded by the
            registry's destination policy, closed by :meth:`close`.
        retry: Decides what follows each attempt.
        clock: Returns the current aware UTC time.
        sleep: How :meth:`drain` waits for the next due time.
        rng: Jitters retry waits (a :class:`random.Random`); seed it for exact tests.
        lease_duration: How long a claim holds (seconds or a timedelta): at least twice
            the transport's ``deadline`` (when it has one; 15 s for the default
            transport), since an attempt may start with half its lease left. A worker
            killed mid-attempt delays that delivery by at most this much.
        max_claims: How many claims of one delivery may end without an outcome (its
            worker died, or its attempt outlived the lease) before the next claim ends it
            ``dead``, with the reason, instead of sending it again; 5 by default. Claims
            handed back unattempted do not count; a redelivery starts afresh.
        dispatch_threads: Threads for :meth:`dispatch`'s immediate attempts when an
            event goes to several webhooks, so one slow receiver delays no other.
        ids: Makes delivery ids from the prefix ``"dlv"``. By default they sort in
            the order they were made (to the millisecond; 96 random bits follow), so
            a store's indexes on them grow at one end.
        max_body_bytes: The largest URL webhook body sent (256 KB by default). A larger
            one is stored as ``failed`` with the reason, and never sent. Segment
            messages have Segment's own limit of 32,768 bytes.

    Raises:
        ConfigurationError: If an argument is of the wrong kind or out of range, or the
            lease is too short for the transport's deadline.

    A host process dispatches; a worker process (or a thread) delivers the retries:

    >>> from pendo_webhooks.registry import Actor, WebhookRegistry
    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.testing import RecordingTransport, sample_event
    >>> registry = WebhookRegistry(InMemoryStorage())
    >>> admin = Actor("u-1", is_admin=True)
    >>> hook = registry.create(admin, name="Zapier", url="https://hooks.example.com/z",
    ...                        categories={"guideDisplayed"})
    >>> with Dispatcher(registry, transport=RecordingTransport([404])) as dispatcher:
    ...     dispatcher.send_test(admin, hook.id).error
    ...     _ = registry.enable(admin, hook.id)
    ...     [str(o.outcome) for o in dispatcher.dispatch(sample_event("guideDisplayed"))]
    ...     [str(o.outcome) for o in dispatcher.run_due()]
    'HTTP 404'
    ['delivered']
    []
    """

    def __init__(
        self,
        registry: WebhookRegistry,
        storage: Storage | None = None,
        *,
        transport: Transport | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - a frozen value
        clock: Clock = utcnow,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
        lease_duration: float | timedelta = DEFAULT_LEASE,
        dispatch_threads: int = 4,
        ids: Callable[[str], str] = sorted_id,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_claims: int = DEFAULT_MAX_CLAIMS,
    ) -> None:
        if not isinstance(registry, WebhookRegistry):
            raise ConfigurationError("registry: must be a WebhookRegistry")
        storage = registry.storage if storage is None else storage
        if capabilities(storage).process_local and storage is not registry.storage:
            msg = (
                f"storage: a {type(storage).__name__} keeps its state in this process only, "
                "so it must be the registry's own store"
            )
            raise ConfigurationError(msg)
        if not isinstance(retry, RetryPolicy):
            raise ConfigurationError("retry: must be a RetryPolicy")
        for name, value in (("clock", clock), ("sleep", sleep), ("ids", ids)):
            if not callable(value):
                raise ConfigurationError(f"{name}: must be callable")
        if rng is not None and not isinstance(rng, random.Random):
            raise ConfigurationError("rng: must be a random.Random")
        try:
            lease = timedelta(seconds=seconds_arg("lease_duration", lease_duration))
            threads = count_arg("dispatch_threads", dispatch_threads, most=MAX_THREADS)
            self.max_body_bytes = count_arg("max_body_bytes", max_body_bytes, most=2**31)
            self.max_claims = count_arg("max_claims", max_claims, most=1000)
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        self.registry = registry
        self.storage: Storage = storage
        self._owns_transport = transport is None
        self.transport: Transport = (
            RequestsTransport(destinations=registry.destinations)
            if transport is None
            else transport
        )
        try:
            check_lease(lease, self.transport)
        except ConfigurationError:
            if self._owns_transport:
                self._close_transport()
            raise
        self.retry = retry
        self.clock = clock
        self._sleep = sleep
        self._rng = random.Random() if rng is None else rng  # noqa: S311 - jitter, not secrets
        self.lease_duration = lease
        self._threads = threads
        self._ids = ids
        self._token = secrets.token_hex(6)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._signers = SignerCache()
        self._formatters: dict[WebhookKind, Formatter] = {
            WebhookKind.URL: URLFormatter(),
            WebhookKind.SEGMENT: SegmentFormatter(),
        }
        self._exclusions = StoredExclusions(storage)

    def __repr__(self) -> str:
        return (
            f"<Dispatcher(owner={self.owner!r}, storage={self.storage!r}, "
            f"lease_duration={self.lease_duration.total_seconds():g}s)>"
        )

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """
        Stop the dispatch threads, and close the transport if the dispatcher made it.
        """
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._close_transport()

    def _close_transport(self) -> None:
        """
        Close the transport if the dispatcher made it; :meth:`close` does it too.
        """
        if self._owns_transport and isinstance(self.transport, RequestsTransport):
            self.transport.close()

    @property
    def owner(self) -> str:
        """
        The lease owner this dispatcher claims as: random per instance, plus the process id.
        """
        return f"{self._token}-{os.getpid()}"

    # -- enqueueing ------------------------------------------------------------------------

    def dispatch(self, event: Event) -> DispatchResult:
        """
        Store *event* for every enabled webhook subscribed to it, and attempt each once now.

        The message is serialized once per kind of webhook (Pendo's body for URL
        webhooks, a Segment ``track`` message for Segment ones); all the deliveries are
        stored in one transaction, already claimed by this dispatcher, then attempted (in
        parallel when there are several) and recorded. A Segment delivery goes out in a
        batch with its webhook's other due deliveries. A failed attempt is retried later
        by :meth:`run_due` and friends. A message over its size limit is stored as
        ``failed``, with the reason, and never sent.

        Returns:
            One :class:`DeliveryOutcome` per subscribed, enabled webhook.

        Raises:
            ValidationError: If *event* is not an event.
            PayloadError: If the event cannot be serialized (nothing is stored).
            StorageError: If the store fails (nothing was attempted).
        """
        return self._enqueue([event], attempt=True)[0]

    def dispatch_many(self, events: Iterable[Event]) -> list[DispatchResult]:
        """
        Store many events in one transaction, like :meth:`enqueue_many`, and attempt them now.

        The bulk form of :meth:`dispatch`: every delivery is stored before anything is
        sent; then they are claimed and attempted a chunk at a time: each Segment
        webhook's deliveries in batches (up to 2,500 messages and 475,000 bytes each),
        every URL webhook delivery once, four per dispatch thread at a time. Only the
        first chunk is stored claimed; the rest wait due, so a host killed mid-call
        strands one chunk for a lease, and a worker may take the rest meanwhile (they are
        then reported pending). Whatever could not be sent while its claim was fresh is
        handed back, due at once, for :meth:`run_due` and friends, like every retry.

        Returns:
            One :class:`DispatchResult` per event, in order.

        Raises:
            ValidationError: If an item is not an event (nothing is stored).
            PayloadError: If an event cannot be serialized (nothing is stored).
            StorageError: If the store fails.

        >>> from pendo_webhooks.registry import Actor, WebhookRegistry
        >>> from pendo_webhooks.storage import InMemoryStorage
        >>> from pendo_webhooks.testing import RecordingTransport, sample_event
        >>> registry = WebhookRegistry(InMemoryStorage())
        >>> admin = Actor("u-1", is_admin=True)
        >>> hook = registry.create(admin, name="Segment", kind="segment", write_key="wk",
        ...                        categories={"accountCreated"})
        >>> _ = registry.enable(admin, hook.id)
        >>> transport = RecordingTransport()
        >>> dispatcher = Dispatcher(registry, transport=transport)
        >>> events = [sample_event("accountCreated", unique_id=f"a{i}") for i in range(4)]
        >>> [str(r.for_webhook(hook.id).outcome) for r in dispatcher.dispatch_many(events)]
        ['delivered', 'delivered', 'delivered', 'delivered']
        >>> len(transport.requests)
        1
        """
        return self._enqueue(events, attempt=True)

    def enqueue(self, event: Event, *, connection: object | None = None) -> DispatchResult:
        """
        Store *event* like :meth:`dispatch`, without attempting it (a worker process will).

        Outcomes are :attr:`Outcome.PENDING` for stored deliveries, :attr:`Outcome.FAILED`
        for a message over its size limit, and :attr:`Outcome.SKIPPED` otherwise.

        With *connection* (the transactional outbox; PostgresStorage only), the
        deliveries are written through the host's own psycopg connection, in its open
        transaction: they commit with the host's business change or roll back with it,
        and a worker sends them only once committed (``examples/transactional_outbox.py``).

        Raises:
            ConfigurationError: If *connection* is given but the store cannot use it.
        """
        return self._enqueue([event], attempt=False, connection=connection)[0]

    def enqueue_many(
        self, events: Iterable[Event], *, connection: object | None = None
    ) -> list[DispatchResult]:
        """
        Store many events like :meth:`enqueue`, all in one transaction: the bulk path.

        Each event is serialized once per kind of webhook, the subscribed webhooks are
        looked up once per category, and every delivery of every event is written in
        one transaction (the host's, with *connection*: see :meth:`enqueue`). Nothing
        is attempted; :meth:`run_due`, :meth:`drain` or a worker sends them (Segment
        webhooks' in batches of up to 2,500).

        Returns:
            One :class:`DispatchResult` per event, in order.

        Raises:
            ValidationError: If an item is not an event (nothing is stored).
            PayloadError: If an event cannot be serialized (nothing is stored).
            StorageError: If the store fails (nothing is stored).

        >>> from pendo_webhooks.registry import Actor, WebhookRegistry
        >>> from pendo_webhooks.storage import InMemoryStorage
        >>> from pendo_webhooks.testing import RecordingTransport, sample_event
        >>> registry = WebhookRegistry(InMemoryStorage())
        >>> admin = Actor("u-1", is_admin=True)
        >>> hook = registry.create(admin, name="Segment", kind="segment", write_key="wk",
        ...                        categories={"visitorCreated"})
        >>> _ = registry.enable(admin, hook.id)
        >>> transport = RecordingTransport()
        >>> dispatcher = Dispatcher(registry, transport=transport)
        >>> events = [sample_event("visitorCreated", unique_id=f"v{i}") for i in range(3)]
        >>> [str(r.for_webhook(hook.id).outcome) for r in dispatcher.enqueue_many(events)]
        ['pending', 'pending', 'pending']
        >>> dispatcher.drain(timeout=10).delivered, len(transport.requests)
        (3, 1)
        """
        return self._enqueue(events, attempt=False, connection=connection)

    def _enqueue(
        self, events: Iterable[Event], *, attempt: bool, connection: object | None = None
    ) -> list[DispatchResult]:
        batch = self._batch(attempt)
        plans = self._plan_all(events, batch, attempt=attempt)
        batch_deliveries = _planned(plans)
        if batch_deliveries:
            skipped = (
                self.storage.enqueue_deliveries(batch_deliveries)
                if connection is None
                else enqueue_through(self.storage, batch_deliveries, connection)
            )
            _sort(plans, skipped)
        return self._settle(plans, attempt=attempt)

    def _enqueue_first_seen(
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

        _, skipped = self.storage.claim_first_seen_and_enqueue(
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
        now = self.clock()
        if not attempt:
            return _Batch(now=now, lease_until=None, owner=None)
        # The owner once per call: it asks for the process id.
        return _Batch(now=now, lease_until=now + self.lease_duration, owner=self.owner)

    def _subscribed(self, category: EventCategory, batch: _Batch) -> list[Webhook]:
        """
        The webhooks subscribed to *category*, read once per batch, and the exclusion list
        once some webhook listens.
        """
        webhooks = batch.subscribed.get(category)
        if webhooks is None:
            webhooks = batch.subscribed[category] = self.registry.subscribed(category)
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
        bodies: dict[WebhookKind, bytes] = {}
        for webhook in webhooks:
            body = bodies.get(webhook.kind)
            if body is None:
                body = bodies[webhook.kind] = self._formatters[webhook.kind].format(event)
            limit = self.max_body_bytes if webhook.kind is WebhookKind.URL else MAX_MESSAGE_BYTES
            # Every value is of the right type already: the unchecked constructor.
            delivery = trusted_delivery(
                id=self._ids("dlv"),
                webhook_id=webhook.id,
                event_id=event.unique_id,
                category=category,
                body=body,
                next_attempt_at=batch.lease_until or now,
                created_at=now,
                updated_at=now,
                lease_owner=batch.owner,
                lease_until=batch.lease_until,
            )
            if len(body) > limit:
                # Never sent (over Segment's 32 KB message limit): stored finished, so the
                # reason stays on record.
                delivery = attrs.evolve(
                    delivery,
                    status=DeliveryStatus.FAILED,
                    next_attempt_at=now,
                    last_error=too_large_reason(len(body), limit),
                    finished_at=now,
                    lease_owner=None,
                    lease_until=None,
                )
            plan.planned.append((webhook, delivery))
        return plan

    def _attempt_all(
        self, stored: list[tuple[Webhook, Delivery]], *, guard_lease: bool = False
    ) -> list[DeliveryOutcome]:
        attempt = self._attempt_guarded if guard_lease else self._attempt_now
        if len(stored) <= 1:
            return [attempt(delivery, webhook) for webhook, delivery in stored]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self._threads, thread_name_prefix="pendo-webhooks-dispatch"
                )
            pool = self._pool
        return list(pool.map(lambda pair: attempt(pair[1], pair[0]), stored))

    def _attempt_guarded(self, delivery: Delivery, webhook: Webhook) -> DeliveryOutcome:
        if self._lease_too_short([delivery]):
            self._release([delivery])
            return released([delivery])[0]
        return self._attempt_now(delivery, webhook)

    def _attempt_now(self, delivery: Delivery, webhook: Webhook) -> DeliveryOutcome:
        """
        Attempt a just-stored delivery; for Segment, in a batch with the webhook's due ones.
        """
        if webhook.kind is WebhookKind.URL:
            return self._attempt(delivery, webhook)[0]
        found = self._attempt_batch([delivery], webhook)
        return next((o for o in found if o.delivery_id == delivery.id), found[0])

    def _chunks(
        self, pairs: Sequence[tuple[Webhook, Delivery]]
    ) -> list[list[tuple[Webhook, Delivery]]]:
        """
        *pairs* in the chunks dispatch_many claims and attempts them in, in order.

        Each Segment webhook's deliveries in one batch's worth each, then the URL
        deliveries, ``CHUNK_PER_THREAD`` per dispatch thread each.
        """
        batches: dict[str, list[tuple[Webhook, Delivery]]] = {}
        singles: list[tuple[Webhook, Delivery]] = []
        for pair in pairs:
            if pair[0].kind is WebhookKind.SEGMENT:
                batches.setdefault(pair[0].id, []).append(pair)
            else:
                singles.append(pair)
        chunks = [
            group[i : i + MAX_BATCH_MESSAGES]
            for group in batches.values()
            for i in range(0, len(group), MAX_BATCH_MESSAGES)
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
            if webhook.kind is WebhookKind.SEGMENT:
                found = self._attempt_batch([d for _, d in waiting], webhook)
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
        now = self.clock()
        got = {
            d.id: d
            for d in self.storage.claim_deliveries(
                [d.id for _, d in chunk if d.lease_owner is None],
                owner=self.owner,
                now=now,
                lease_until=now + self.lease_duration,
                max_claims=self.max_claims,
            )
        }
        ready: list[tuple[Webhook, Delivery]] = []
        for webhook, delivery in chunk:
            current = delivery if delivery.lease_owner is not None else got.get(delivery.id)
            if current is None:
                outcomes[delivery.id] = _taken(delivery)
            elif current.status is not DeliveryStatus.PENDING:
                outcomes[delivery.id] = exhausted(current)
            else:
                ready.append((webhook, current))
        return ready

    def explain(self, event: Event) -> list[Decision]:
        """
        Say, for every registered webhook, whether *event* would be sent to it, and why not.

        Nothing is sent or stored. The rules and their order are those of
        :func:`~pendo_webhooks.pipeline.evaluate`: excluded visitor, account or source
        IP, an agent too old for NPS and polls; then per webhook: disabled, not subscribed,
        destination refused by the registry's destination policy (and, if the transport
        offers ``check_destination(url)``, by what the name resolves to), payload too large.
        :meth:`dispatch` reports the event-wide reasons the same way, as skipped outcomes.

        Raises:
            ValidationError: If *event* is not an event.

        >>> from pendo_webhooks.registry import Actor, WebhookRegistry
        >>> from pendo_webhooks.storage import InMemoryStorage
        >>> from pendo_webhooks.testing import RecordingTransport, sample_event
        >>> registry = WebhookRegistry(InMemoryStorage())
        >>> admin = Actor("u-1", is_admin=True)
        >>> hook = registry.create(admin, name="NPS", url="https://hooks.example.com/n",
        ...                        categories={"npsSubmitted"})
        >>> dispatcher = Dispatcher(registry, transport=RecordingTransport())
        >>> [d.text for d in dispatcher.explain(sample_event("npsSubmitted"))]
        ['the webhook is disabled']
        >>> _ = registry.enable(admin, hook.id)
        >>> old = sample_event("npsSubmitted", agent_version="2.32.9")
        >>> [d.text for d in dispatcher.explain(old)]
        ['NPS and poll events need Pendo agent 2.33.0 or later: agent 2.32.9']
        """
        if not isinstance(getattr(event, "category", None), EventCategory):
            raise ValidationError("event", f"must be an event, not {type(event).__name__}")
        check: DestinationResolver | None = getattr(self.transport, "check_destination", None)
        return evaluate(
            event,
            self.storage.list_webhooks(),
            exclusions=self._exclusions.current(),
            destinations=self.registry.destinations,
            resolve=check if callable(check) else None,
            measure=payload_measure(
                event, max_body_bytes=self.max_body_bytes, formatters=self._formatters
            ),
        )

    # -- claiming, attempting, recording ---------------------------------------------------

    def _claim(self, limit: int, webhook_id: str | None = None) -> list[Delivery]:
        now = self.clock()
        return self.storage.claim_due(
            owner=self.owner,
            now=now,
            lease_until=now + self.lease_duration,
            limit=limit,
            webhook_id=webhook_id,
            max_claims=self.max_claims,
        )

    def _release(self, deliveries: Sequence[Delivery]) -> None:
        self.storage.release_claims([d.id for d in deliveries], owner=self.owner, now=self.clock())

    def _current_webhook(self, webhook_id: str) -> Webhook | None:
        try:
            return self.storage.get_webhook(webhook_id)
        except UnknownWebhook:
            return None

    def _attempt_claimed(
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
            return self._attempt_batch([delivery], webhook), None
        outcome, claimed = self._attempt(delivery, webhook, claim_next)
        return [outcome], claimed

    def _attempt_batch(
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
            sent = self._send_url(webhook, delivery.body, delivery.event_id)
            return self._record(delivery, webhook, sent, claim_next)
        except Exception as exc:  # noqa: BLE001 - C4: one delivery never blocks the others
            return self._unexpected(delivery, exc), None

    def _send_url(self, webhook: Webhook, body: bytes, event_id: str) -> Exchange:
        """
        Sign *body* for *webhook* afresh and send it once; never raise.
        """

        def build(now: datetime) -> OutgoingRequest:
            return url_request(webhook, body, event_id=event_id, now=now, signers=self._signers)

        return exchange(self.transport, build, clock=self.clock)

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
        now = self.clock()
        decision = self.retry.decide(
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
            written = self.storage.record_outcome(updated, attempt, owner=self.owner, now=now)
        else:
            written, claimed = claim_next.outbox.record_outcome_and_claim(
                updated,
                attempt,
                owner=self.owner,
                now=now,
                lease_until=now + self.lease_duration,
                max_claims=self.max_claims,
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
                self._release(claimed)
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
        now = self.clock()
        cancelled = attrs.evolve(
            delivery,
            status=DeliveryStatus.CANCELLED,
            last_error=why,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_until=None,
        )
        if not self.storage.record_outcome(cancelled, None, owner=self.owner, now=now):
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
        current = self.storage.get_delivery(delivery.id)
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
            self.registry.disable_by_system(webhook.id, reason=reason)
        except PendoWebhooksError as exc:
            logger.warning("webhook %s answered 410 but was not disabled: %s", webhook.id, exc)
            return
        logger.info("webhook %s disabled by the system: %s", webhook.id, reason)


def check_lease(lease: timedelta, transport: object) -> None:
    """
    Refuse a lease too short for *transport*'s ``deadline`` (if it says one).

    An attempt may start with half its lease left (see ``LEASE_PER_DEADLINE``), so the
    lease must be at least twice the deadline. Strictly private; the CLI asks it too.

    Raises:
        ConfigurationError: Naming both figures.

    >>> from pendo_webhooks.exceptions import ConfigurationError
    >>> from pendo_webhooks.transports import RequestsTransport
    >>> with RequestsTransport(deadline=15) as transport:
    ...     check_lease(timedelta(seconds=30), transport)
    ...     try:
    ...         check_lease(timedelta(seconds=20), transport)
    ...     except ConfigurationError as exc:
    ...         print(str(exc)[:75])
    lease_duration: 20 s cannot cover the transport's deadline of 15 s: it must
    """
    deadline = getattr(transport, "deadline", None)
    if isinstance(deadline, bool) or not isinstance(deadline, int | float):
        return  # a transport that does not say: max_claims is what bounds it
    least = LEASE_PER_DEADLINE * float(deadline)
    seconds = lease.total_seconds()
    if seconds < least:
        msg = (
            f"lease_duration: {seconds:g} s cannot cover the transport's deadline of "
            f"{deadline:g} s: it must be at least {least:g} s (twice the deadline, since "
            "an attempt may start with half its lease left)"
        )
        raise ConfigurationError(msg)


def _skipped(webhook_id: str, reason: str) -> DeliveryOutcome:
    return DeliveryOutcome(
        webhook_id=webhook_id, delivery_id=None, outcome=Outcome.SKIPPED, reason=reason
    )


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
    return [
        DeliveryOutcome(webhook_id=w.id, delivery_id=d.id, outcome=Outcome.PENDING)
        for w, d in stored
    ]


def _taken(delivery: Delivery) -> DeliveryOutcome:
    # Stored unclaimed by dispatch_many, and claimed by a worker before its chunk's turn.
    return DeliveryOutcome(
        webhook_id=delivery.webhook_id,
        delivery_id=delivery.id,
        outcome=Outcome.PENDING,
        reason="claimed by another worker before its turn",
    )


def _too_large(delivery: Delivery) -> DeliveryOutcome:
    return DeliveryOutcome(
        webhook_id=delivery.webhook_id,
        delivery_id=delivery.id,
        outcome=Outcome.FAILED,
        reason=delivery.last_error,
    )


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
