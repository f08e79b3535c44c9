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

import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta

from .._clock import Clock, utcnow
from ..channels import Channel, channel_table
from ..events import Event, EventCategory
from ..events._ids import sorted_id
from ..exceptions import ConfigurationError, ValidationError
from ..model._delivery import Attempt, Delivery, DeliveryStatus
from ..model._outcomes import DeliveryOutcome, DispatchResult, DrainSummary, Outcome, TestResult
from ..pipeline._gate import DEFAULT_MAX_BODY_BYTES, Decision
from ..registry import Actor, WebhookKind, WebhookRegistry
from ..retry import RetryPolicy
from ..storage import Storage
from ..storage.protocols import capabilities
from ..transports import RequestsTransport, Transport, Urllib3Transport
from ._deliver import Deliverer
from ._deliver_claims import Claimer
from ._dispatch_admin import AdminReads
from ._dispatch_args import count_arg, seconds_arg
from ._dispatch_enqueue import Enqueuer
from ._dispatch_running import MAX_THREADS, DispatchRunner


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

#: A lease must be at least this many times the transport's deadline: a claimed delivery
#: (or a Segment batch) is still attempted while half of its lease is left, so half a
#: lease must cover a whole attempt; the other half covers the store's writes and pauses.
LEASE_PER_DEADLINE = 2

# The transports a dispatcher makes itself (and so closes).
_OWNED = (Urllib3Transport, RequestsTransport)


class Dispatcher:
    """
    Delivers events to the registry's webhooks through the store's outbox; synchronous.

    Args:
        registry: Where webhooks are looked up, and which disables a webhook on 410.
        storage: The store holding the outbox; the registry's store by default (for a
            process-local store, such as :class:`~pendo_webhooks.storage.InMemoryStorage`,
            it must be that one).
        transport: Sends requests; by default a
            :class:`~pendo_webhooks.transports.Urllib3Transport` guarded by the
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
        channels: Channels in place of the built-in ones, by webhook kind (see
            :mod:`pendo_webhooks.channels`): the kinds not given keep theirs. A URL channel
            given here brings its own body limit. For example
            ``{"segment": SegmentChannel(formatter=SegmentFormatter(library_name="acme"))}``
            names your product in every Segment message. Give every dispatcher sharing a
            store (the host's, the workers') the same channels.

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
        channels: Mapping[WebhookKind | str, Channel] | None = None,
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
        table = channel_table(channels, max_body_bytes=self.max_body_bytes)
        self.registry = registry
        self.storage: Storage = storage
        self._owns_transport = transport is None
        self.transport: Transport = (
            Urllib3Transport(destinations=registry.destinations)
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
        self.lease_duration = lease
        self._claims = Claimer(
            storage, clock=clock, lease_duration=lease, max_claims=self.max_claims
        )
        self._deliverer = Deliverer(
            storage=storage,
            registry=registry,
            claims=self._claims,
            channels=table,
            transport=self.transport,
            retry=retry,
            clock=clock,
            rng=random.Random() if rng is None else rng,  # noqa: S311 - jitter, not secrets
            hooks=registry.hooks,
        )
        self._enqueuer = Enqueuer(
            registry=registry,
            storage=storage,
            claims=self._claims,
            deliverer=self._deliverer,
            transport=self.transport,
            ids=ids,
            threads=threads,
            channels=table,
        )
        self._runner = DispatchRunner(
            outbox=storage, claims=self._claims, deliverer=self._deliverer, sleep=sleep
        )
        self._admin = AdminReads(
            registry=registry, storage=storage, clock=clock, deliverer=self._deliverer
        )

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
        self._enqueuer.close()
        self._close_transport()

    def _close_transport(self) -> None:
        """
        Close the transport if the dispatcher made it; :meth:`close` does it too.
        """
        if self._owns_transport and isinstance(self.transport, _OWNED):
            self.transport.close()

    @property
    def owner(self) -> str:
        """
        The lease owner this dispatcher claims as: random per instance, plus the process id.
        """
        return self._claims.owner

    # -- enqueueing (the enqueuer) ----------------------------------------------------------

    def dispatch(self, event: Event) -> DispatchResult:
        """
        Store *event* for every enabled webhook subscribed to it, and attempt each once now.

        The message is serialized once per kind of webhook (Pendo's body for URL
        webhooks, a Segment ``track`` message for Segment ones); all the deliveries are
        stored in one transaction, already claimed by this dispatcher, then attempted (in
        parallel when there are several) and recorded. A Segment delivery goes out in a
        batch with its webhook's other due deliveries, and concurrent calls share
        requests: calls that store a Segment delivery while a request to that webhook is
        in flight wait for it, then go together in the next one (each call still returns
        its own outcome; the wait is at most that one request, within the transport's
        deadline). So N threads calling once per event make far fewer than N requests; a
        lone caller's event is sent at once, in a batch of one (:meth:`enqueue` plus a
        worker batches those). A failed attempt is retried later
        by :meth:`run_due` and friends. A message over its size limit is stored as
        ``failed``, with the reason, and never sent.

        Returns:
            One :class:`DeliveryOutcome` per subscribed, enabled webhook.

        Raises:
            ValidationError: If *event* is not an event.
            PayloadError: If the event cannot be serialized (nothing is stored).
            StorageError: If the store fails (nothing was attempted).
        """
        return self._enqueuer.enqueue([event], attempt=True)[0]

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
        return self._enqueuer.enqueue(events, attempt=True)

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
        return self._enqueuer.enqueue([event], attempt=False, connection=connection)[0]

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
        return self._enqueuer.enqueue(events, attempt=False, connection=connection)

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

        For ``FirstSeenTracker`` (see :meth:`Enqueuer.enqueue_first_seen
        <pendo_webhooks.dispatcher._dispatch_enqueue.Enqueuer.enqueue_first_seen>`). Strictly
        private.
        """
        return self._enqueuer.enqueue_first_seen(
            keys,
            at=at,
            categories=categories,
            events=events,
            attempt=attempt,
            connection=connection,
        )

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
        return self._enqueuer.explain(event)

    # -- running (the runner) ---------------------------------------------------------------

    def run_due(self, *, limit: int = 100, concurrency: int = 1) -> list[DeliveryOutcome]:
        """
        Attempt deliveries whose time has come (retries, and those of crashed workers).

        Claims only as many as it can start at once (*concurrency* threads), so no
        claim waits long enough for its lease to lapse; stops when nothing is due or
        *limit* deliveries were attempted. A Segment webhook's delivery takes that
        webhook's other due deliveries along in its batch (up to 2,500 in all), so
        one call may attempt more than *limit* of them.

        Raises:
            ValidationError: If *limit* or *concurrency* is out of range.
            StorageError: If the store fails.
        """
        return self._runner.run_due(limit=limit, concurrency=concurrency)

    def drain(self, timeout: float | timedelta = 60.0, *, concurrency: int = 1) -> DrainSummary:
        """
        Deliver until nothing is pending, sleeping (with *sleep*) until each next due time.

        Gives up once *timeout* (seconds or a timedelta, measured with *clock*) has
        passed; attempts under way then are finished.

        Returns:
            What happened, and how many deliveries are still pending.

        Raises:
            ValidationError: If *timeout* or *concurrency* is out of range.
            StorageError: If the store fails.
        """
        return self._runner.drain(timeout, concurrency=concurrency)

    def run_worker(
        self,
        stop_event: threading.Event | None = None,
        *,
        concurrency: int = 1,
        poll_interval: float = 1.0,
        install_signal_handlers: bool = True,
    ) -> DrainSummary:
        """
        Deliver due deliveries until *stop_event* is set or SIGTERM/SIGINT arrives.

        For a worker process: it polls the store at least every *poll_interval*
        seconds. On stop it finishes the attempts in flight and releases claims it
        has not started, so another worker takes them at once. Signal handlers are
        installed only in the main thread, and removed on return; a second signal
        acts as usual. Store errors are logged and retried after *poll_interval*.

        Returns:
            What happened while it ran.

        Raises:
            ValidationError: If *concurrency* or *poll_interval* is out of range.
        """
        return self._runner.run_worker(
            stop_event,
            concurrency=concurrency,
            poll_interval=poll_interval,
            install_signal_handlers=install_signal_handlers,
        )

    # -- admin (the admin reads) ------------------------------------------------------------

    def send_test(
        self, actor: Actor, webhook_id: str, category: EventCategory | str | None = None
    ) -> TestResult:
        """
        Send a sample event once, the admin's "Test" button; nothing is stored or retried.

        Works while the webhook is still disabled. The sample
        (:func:`~pendo_webhooks.testing.sample_event`) is of *category*, or of the
        webhook's first category in :class:`EventCategory` order, with a fresh
        ``uniqueId`` and the current time; it is signed like a real attempt. A Segment
        webhook gets it as one ``track`` message in a batch of one, with its write key.

        Raises:
            PermissionDenied: If *actor* may not test webhooks (action ``"test"``).
            UnknownWebhook: If no webhook has this id.
            ValidationError: If *category* is unknown.
        """
        return self._admin.send_test(actor, webhook_id, category)

    def redeliver(self, delivery_id: str) -> Delivery:
        """
        Send a finished delivery again: same body bytes, same ``webhook-id``.

        It becomes pending and due now, with a fresh retry budget (attempt numbers go
        on counting); the next :meth:`run_due` (or worker) sends it. A cancelled
        delivery whose webhook is still disabled is cancelled again at that point.

        Raises:
            UnknownDelivery: If no delivery has this id.
            ConflictError: If it is still pending, or was purged.
        """
        return self._admin.redeliver(delivery_id)

    def redeliver_failed(
        self, webhook_id: str, since: datetime, until: datetime | None = None
    ) -> int:
        """
        Redeliver (as :meth:`redeliver`) a webhook's failed and dead deliveries.

        Only those created in ``[since, until)`` (*until* open-ended by default) whose
        body was not purged. Returns how many.

        Raises:
            ValidationError: If *since* or *until* is not an aware datetime.
        """
        return self._admin.redeliver_failed(webhook_id, since, until)

    def purge(self, older_than: datetime) -> int:
        """
        Empty the bodies and response excerpts of deliveries finished before *older_than*.

        Their metadata stays; purged deliveries cannot be redelivered. Returns how many.

        Raises:
            ValidationError: If *older_than* is not an aware datetime.
        """
        return self._admin.purge(older_than)

    def deliveries(
        self,
        actor: Actor,
        *,
        webhook_id: str | None = None,
        status: DeliveryStatus | str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """
        Return up to *limit* deliveries, newest first, for an admin UI; filters must match.

        Raises:
            PermissionDenied: If *actor* may not read webhooks.
            ValidationError: For an unknown *status* or a *limit* outside 1 to 10,000.
        """
        return self._admin.deliveries(actor, webhook_id=webhook_id, status=status, limit=limit)

    def attempts(self, actor: Actor, delivery_id: str) -> list[Attempt]:
        """
        Return a delivery's attempts, first first, for an admin UI.

        Raises:
            UnknownDelivery: If no delivery has this id.
            PermissionDenied: If *actor* may not read its webhook.
        """
        return self._admin.attempts(actor, delivery_id)

    def exchange_attempts(self, actor: Actor, exchange_id: str) -> list[Attempt]:
        """
        Return the attempts of one HTTP exchange (an ``Attempt.exchange_id``), by delivery id.

        What else went out in the same request: one attempt for a URL delivery, one per
        delivery of a Segment batch, each with its own verdict. Empty for an unknown id.

        Raises:
            PermissionDenied: If *actor* may not read the exchange's webhook.
        """
        return self._admin.exchange_attempts(actor, exchange_id)


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
