"""
The :class:`OutboxStore` Protocol: what the dispatcher needs to keep deliveries durable.

Strictly private; import :class:`OutboxStore` from :mod:`pendo_webhooks.storage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..model._delivery import Attempt, Delivery, DeliveryStatus


__all__ = ["ChainingOutbox", "DeliveryLog", "EnqueueSkip", "OutboxQueue", "OutboxStore"]


class EnqueueSkip:
    """
    Why :meth:`OutboxStore.enqueue_deliveries` did not store a delivery. Strictly private.
    """

    #: The webhook already has a delivery of this event (same ``event_id``).
    DUPLICATE = "duplicate"
    #: The webhook is disabled.
    DISABLED = "disabled"
    #: No webhook has this id any more.
    DELETED = "deleted"


class OutboxQueue(Protocol):
    """
    **Protocol**: The queue half of the outbox: enqueue, claim, record, release, cancel.

    What a worker needs to move deliveries along; :class:`OutboxStore` adds the
    history (:class:`DeliveryLog`).

    The dispatcher never holds a transaction open across network I/O: it
    *claims* due deliveries (one short transaction that gives them a lease:
    an owner and an expiry), sends without any transaction, then *records* each
    outcome in another short transaction that only writes if the lease is still
    its own (fencing). A worker that dies mid-way loses nothing: its claimed
    deliveries become due again when their lease lapses. While a lease is held,
    ``next_attempt_at`` is the lease's expiry, so "due" is simply "pending and
    ``next_attempt_at <= now``".

    Times are aware datetimes; lists are fresh lists of immutable values.

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.storage.protocols import OutboxQueue
    >>> queue: OutboxQueue = InMemoryStorage()
    >>> queue.pending_summary()
    (0, None)
    """

    def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> list[str | None]:
        """
        Store new deliveries in one transaction; return, per delivery, ``None`` or why not.

        A delivery is stored only if its webhook still exists and is enabled (checked in
        the same transaction, so a concurrent disable or delete is seen in one order or
        the other) and no delivery of the same ``event_id`` to the same webhook exists.
        Deliveries may come already leased (the dispatcher's immediate attempt).

        Returns:
            One entry per delivery, in order: ``None`` if stored, else why not:
            ``"duplicate"``, ``"disabled"`` or ``"deleted"``.

        Raises:
            ConflictError: If a delivery id is already taken.
        """

    def claim_due(
        self,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        webhook_id: str | None = None,
        max_claims: int | None = None,
    ) -> list[Delivery]:
        """
        Lease up to *limit* due deliveries to *owner* until *lease_until*, earliest due first.

        Due means pending with ``next_attempt_at <= now``, which includes deliveries
        whose previous lease lapsed. With *webhook_id*, only that webhook's deliveries
        are claimed (a Segment batch). One transaction; the returned deliveries carry
        the new lease and their body.

        Every claim is counted with the delivery, in the same statement. A claim that
        ends without an outcome (the worker died, or the lease ran out mid-attempt) is
        one claim more than the delivery has attempts; :meth:`release_claims` takes its
        claim back, a redelivery forgives the past. With *max_claims*, a due delivery
        already claimed *max_claims* times without an outcome is not leased: it ends
        ``dead``, with :func:`claims_exhausted` as its error, and is returned so, for
        the caller to report (the poison-pill limit of a queue).
        """

    def claim_deliveries(
        self,
        delivery_ids: Sequence[str],
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        max_claims: int | None = None,
    ) -> list[Delivery]:
        """
        Lease those of *delivery_ids* that are due to *owner* until *lease_until*.

        For a caller that stored deliveries unclaimed and works through them a chunk at a
        time (``Dispatcher.dispatch_many``). One that is not due (finished, or leased by
        another worker) is left alone and not returned; the claims count as
        :meth:`claim_due`'s do. One transaction; in no particular order.
        """

    def record_outcome(
        self, delivery: Delivery, attempt: Attempt | None, *, owner: str, now: datetime
    ) -> bool:
        """
        Write a claimed delivery's new state (and *attempt*, if any), if *owner* still holds it.

        The write happens only while the stored delivery is pending, leased to
        *owner*, and the lease has not lapsed at *now*; it writes ``status``,
        ``attempts``, ``next_attempt_at``, ``updated_at``, ``last_status``,
        ``last_error`` and ``finished_at`` from *delivery*, clears the lease, and
        inserts *attempt*, all in one transaction.

        *attempt* is the delivery's part in one HTTP exchange (its ``exchange_id``).
        Attempts with the same ``exchange_id`` (a Segment batch's, recorded together or
        apart) carry the same exchange facts (``started_at``, ``duration``,
        ``status_code``, ``error_kind``, ``detail``, ``response_excerpt``): a store may
        keep them once, and must give every such attempt back with them.

        Returns:
            Whether it was written (``False``: the lease was lost; nothing changed).
        """

    def record_outcomes(
        self, outcomes: Sequence[tuple[Delivery, Attempt | None]], *, owner: str, now: datetime
    ) -> list[bool]:
        """
        Do :meth:`record_outcome` for each pair, all in one transaction (a Segment batch).

        Each delivery appears at most once. Each pair is fenced on its own: a delivery
        whose lease was lost is not written, and does not stop the others.

        Returns:
            Per pair, in order, whether it was written.
        """

    def release_claims(self, delivery_ids: Sequence[str], *, owner: str, now: datetime) -> int:
        """
        Give back claims *owner* holds and has not started: due again at *now*; return how many.
        """

    def cancel_deliveries(self, webhook_id: str, *, reason: str, now: datetime) -> int:
        """
        Cancel every pending delivery of a webhook (leased ones too); return how many.

        Cancelled deliveries keep *reason* as ``last_error`` and lose their lease,
        so an attempt in flight cannot record its outcome over the cancellation.
        """

    def pending_summary(self) -> tuple[int, datetime | None]:
        """
        Return how many deliveries are pending and the earliest ``next_attempt_at`` among them.
        """


class DeliveryLog(Protocol):
    """
    **Protocol**: The history half of the outbox: read deliveries and attempts, redeliver, purge.

    What an admin screen or a replay needs; :class:`OutboxStore` adds the queue
    (:class:`OutboxQueue`).

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.storage.protocols import DeliveryLog
    >>> log: DeliveryLog = InMemoryStorage()
    >>> log.list_deliveries()
    []
    """

    def get_delivery(self, delivery_id: str) -> Delivery:
        """
        Return one delivery.

        Raises:
            UnknownDelivery: If no delivery has this id.
        """

    def list_deliveries(
        self,
        *,
        webhook_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """
        Return up to *limit* deliveries, the most recently stored first; filters must match.
        """

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        """
        Return a delivery's attempts, first first (empty for an unknown id).

        Each as recorded, with its ``exchange_id``; a purged delivery's have an empty
        ``response_excerpt``.
        """

    def list_exchange_attempts(self, exchange_id: str) -> list[Attempt]:
        """
        Return the attempts of one HTTP exchange, one per delivery it carried, by delivery id.

        One for a URL delivery's exchange; a Segment batch's names every delivery in the
        batch whose outcome was written. Empty for an unknown id. As
        :meth:`list_attempts`, a purged delivery's has an empty ``response_excerpt``.
        """

    def redeliver(self, delivery_id: str, *, now: datetime) -> Delivery:
        """
        Make a finished delivery pending again, due at *now*, with a fresh retry budget.

        The body and event id stay; attempt numbers go on counting
        (``attempt_base`` becomes ``attempts``); ``redelivered_at`` is *now*.

        Raises:
            UnknownDelivery: If no delivery has this id.
            ConflictError: If it is still pending, or its body was purged.
        """

    def redeliver_failed(
        self, webhook_id: str, *, since: datetime, until: datetime, now: datetime
    ) -> int:
        """
        Redeliver (as :meth:`redeliver`) the webhook's failed and dead deliveries.

        Only those created in ``[since, until)`` whose body was not purged; one
        transaction. Returns how many.
        """

    def purge(self, older_than: datetime) -> int:
        """
        Empty the bodies and response excerpts of deliveries finished before *older_than*.

        Their metadata (status, times, attempt rows) stays. A purged delivery's attempts
        read back with an empty ``response_excerpt``; an exchange shared with deliveries
        not purged yet keeps its excerpt for them, and a store forgets it once none of its
        deliveries needs it (an exchange no delivery refers to any more goes entirely).
        Returns how many deliveries were purged.
        """


class OutboxStore(OutboxQueue, DeliveryLog, Protocol):
    """
    **Protocol**: Keeps deliveries and their attempts between and across processes.

    The queue (:class:`OutboxQueue`) and the history (:class:`DeliveryLog`) in one store.
    The dispatcher never holds a transaction open across network I/O: it
    *claims* due deliveries (one short transaction that gives them a lease:
    an owner and an expiry), sends without any transaction, then *records* each
    outcome in another short transaction that only writes if the lease is still
    its own (fencing). A worker that dies mid-way loses nothing: its claimed
    deliveries become due again when their lease lapses. While a lease is held,
    ``next_attempt_at`` is the lease's expiry, so "due" is simply "pending and
    ``next_attempt_at <= now``".

    Times are aware datetimes; lists are fresh lists of immutable values.

    >>> from pendo_webhooks.storage import InMemoryStorage, OutboxStore
    >>> outbox: OutboxStore = InMemoryStorage()
    >>> outbox.pending_summary()
    (0, None)
    """


@runtime_checkable
class ChainingOutbox(Protocol):
    """
    **Protocol**: An outbox that records an outcome and claims the next delivery at once.

    Optional: a one-thread worker uses it when a store has it (``SQLiteStorage`` and
    ``PostgresStorage`` do). Import it from :mod:`pendo_webhooks.storage.protocols`.

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.storage.protocols import ChainingOutbox
    >>> isinstance(InMemoryStorage(), ChainingOutbox)
    False
    """

    def record_outcome_and_claim(
        self,
        delivery: Delivery,
        attempt: Attempt | None,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        max_claims: int | None = None,
    ) -> tuple[bool, list[Delivery]]:
        """
        :meth:`OutboxStore.record_outcome`, then claim up to one due delivery, in one go.
        """
