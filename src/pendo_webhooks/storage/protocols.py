"""
The storage seam: what pendo-webhooks needs from a store, as Protocols a host can implement.

A store is one object implementing :class:`Storage`, which is made of smaller stores, so
each part of the library can be typed by what it actually uses:

* :class:`WebhookStore` and :class:`AuditStore`: webhooks and the audit log of their changes;
* :class:`OutboxStore`: the delivery outbox, itself :class:`OutboxQueue` (enqueue, claim,
  record, release, cancel: what a worker needs) and :class:`DeliveryLog` (get, list,
  attempts, redeliver, purge: the history);
* :class:`FirstSeenStore` and :class:`ExclusionStore`: the event pipeline's state;
* :class:`SecretCodec`: how secrets are encrypted at rest.

Besides, a store may offer *optional capabilities*, each a :func:`~typing.runtime_checkable`
Protocol: :class:`ChainingOutbox` (record an outcome and claim the next delivery in one
transaction), :class:`SharedOutcomesOutbox` (record a Segment batch's outcomes by group),
:class:`HostConnectionOutbox` (write deliveries in the host's own transaction) and
:class:`HealthStore` (each webhook's health: outage-aware retries and auto-disable), and
two summary reads for an admin page: :class:`BulkHealthStore` (many webhooks' health in one
read) and :class:`CountingDeliveryLog` (deliveries counted by webhook, without their bodies).
The engine asks :func:`capabilities` which of them a store has, in one place; a store
without any of them is complete and correct, only slower in places (and, without
:class:`HealthStore`, without outage-aware retries or auto-disable).

The contract suite in :mod:`pendo_webhooks.testing.storage_contract` proves a store
against these Protocols; see the how-to "Keep the outbox in your own database".

>>> from pendo_webhooks.storage import InMemoryStorage
>>> from pendo_webhooks.storage.protocols import Storage, capabilities
>>> store: Storage = InMemoryStorage()
>>> capabilities(store)  # doctest: +NORMALIZE_WHITESPACE
Capabilities(chained_claim=False, shared_outcomes=False, host_connection=False,
             process_local=True, webhook_health=True, bulk_health=True, delivery_counts=True)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import ClassVar, Protocol, runtime_checkable

import attrs

from ..model._delivery import Attempt, Delivery, DeliveryStatus
from ..model._health import WebhookHealth
from ._outbox_common import claims_exhausted
from ._outbox_protocol import ChainingOutbox, DeliveryLog, OutboxQueue, OutboxStore
from ._protocol import AuditStore, SecretCodec, Storage, WebhookStore
from ._protocol_pipeline import ExclusionStore, FirstSeenOrigin, FirstSeenStore


__all__ = [
    "AuditStore",
    "BulkHealthStore",
    "Capabilities",
    "ChainingOutbox",
    "CountingDeliveryLog",
    "DeliveryLog",
    "ExclusionStore",
    "FirstSeenOrigin",
    "FirstSeenStore",
    "HealthStore",
    "HostConnectionOutbox",
    "OutboxQueue",
    "OutboxStore",
    "SecretCodec",
    "SharedOutcome",
    "SharedOutcomesOutbox",
    "Storage",
    "WebhookStore",
    "capabilities",
    "claims_exhausted",
]

#: One group of :meth:`SharedOutcomesOutbox.record_shared_outcomes`: the ids of deliveries
#: that share an outcome, that outcome's delivery state, and its attempt (or ``None``),
#: whose ``delivery_id`` is ignored: every delivery of the group gets it as its own.
SharedOutcome = tuple[Sequence[str], Delivery, Attempt | None]


@runtime_checkable
class SharedOutcomesOutbox(Protocol):
    """
    **Protocol**: An outbox that records outcomes shared by groups of deliveries at once.

    Optional: the dispatcher uses it, when a store has it, instead of
    :meth:`OutboxQueue.record_outcomes` for a Segment batch, whose deliveries mostly share
    one outcome (``SQLiteStorage`` has it).

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.storage.protocols import SharedOutcomesOutbox
    >>> isinstance(InMemoryStorage(), SharedOutcomesOutbox)
    False
    """

    def record_shared_outcomes(
        self, groups: Sequence[SharedOutcome], *, owner: str, now: datetime
    ) -> set[str]:
        """
        Record each group's outcome for every delivery in it, in one transaction.

        Each group is ``(delivery_ids, outcome, attempt)``: every delivery in it gets
        *outcome*'s state (as :meth:`OutboxQueue.record_outcome`) and *attempt* as its
        own (its ``delivery_id`` replaced), each fenced on its own lease. The groups of
        one batch share one ``exchange_id``, and so one exchange: a store writes its
        facts once, linked to every delivery written, and none if no delivery was.

        Returns:
            The ids of the deliveries written.
        """


@runtime_checkable
class HostConnectionOutbox(Protocol):
    """
    **Protocol**: An outbox that can write deliveries in the host's own transaction.

    Optional: ``Dispatcher.enqueue(event, connection=...)`` (the transactional outbox)
    needs it; other stores refuse a *connection* with
    :class:`~pendo_webhooks.exceptions.ConfigurationError`. A store says it has it with
    the class attribute ``accepts_host_connection = True`` (``PostgresStorage`` does).

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.storage.protocols import capabilities
    >>> capabilities(InMemoryStorage()).host_connection
    False
    """

    #: ``True`` if :meth:`enqueue_deliveries` can write through the host's connection.
    accepts_host_connection: ClassVar[bool]

    def enqueue_deliveries(
        self, deliveries: Sequence[Delivery], *, connection: object | None = None
    ) -> list[str | None]:
        """
        Store deliveries as :meth:`OutboxQueue.enqueue_deliveries`, through *connection* if given.
        """


@runtime_checkable
class HealthStore(Protocol):
    """
    **Protocol**: A store that keeps each webhook's health, shared by every worker process.

    Optional: with it, the dispatcher holds a failing destination's deliveries back
    during an outage (one probe at a time, see :class:`~pendo_webhooks.retry.OutagePolicy`)
    and disables a webhook that failed for days; without it, every delivery is retried on
    its own, as before (all the built-in stores have it).

    The engine reads a :class:`~pendo_webhooks.dispatcher.WebhookHealth`, works out the
    next one and writes it back only if nobody wrote in between (compare-and-set on its
    ``version``): two workers can never both take the probe.

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.storage.protocols import HealthStore
    >>> isinstance(InMemoryStorage(), HealthStore)
    True
    """

    def get_webhook_health(self, webhook_id: str) -> WebhookHealth | None:
        """
        Return the webhook's stored health (its ``version`` as stored), or ``None`` if none.
        """

    def put_webhook_health(self, health: WebhookHealth, *, expected_version: int) -> bool:
        """
        Store *health* if the stored version is still *expected_version* (0: none stored).

        The stored copy gets version ``expected_version + 1`` (``health.version`` is
        ignored). One atomic write; a health row stays when its webhook is deleted (it is
        tiny), and is rewritten as blank when the webhook is enabled again.

        Returns:
            Whether it was written (``False``: another writer came first; nothing changed).
        """

    def hold_claims(
        self, delivery_ids: Sequence[str], *, owner: str, now: datetime, until: datetime
    ) -> int:
        """
        Give back claims *owner* holds, unattempted, due again at *until*; return how many.

        Like :meth:`OutboxQueue.release_claims` (the claim is not counted against the
        delivery, nothing else changes: no attempt, same attempt count), but due later.
        """

    def respread_pending(
        self,
        webhook_id: str,
        *,
        start: datetime,
        spacing: timedelta,
        now: datetime,
        limit: int | None = None,
    ) -> list[str]:
        """
        Give the webhook's pending deliveries that no live lease holds new due times.

        In order of (``attempts``, ``id``), the *i*-th (from 0) becomes due at
        ``start + i * spacing``, at most *limit* of them (all by default); a lapsed lease
        is cleared. One atomic write (one ``UPDATE`` in SQL), so it is the same whichever
        worker does it. Returns the ids of the deliveries moved (in any order).
        """


@runtime_checkable
class BulkHealthStore(Protocol):
    """
    **Protocol**: A :class:`HealthStore` that reads many webhooks' health in one query.

    Optional: the settings page (:mod:`pendo_webhooks.portal`) reads every listed
    webhook's health with it, in one read; without it, it reads them one by one with
    :meth:`HealthStore.get_webhook_health` (all the built-in stores have it).

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.storage.protocols import BulkHealthStore
    >>> isinstance(InMemoryStorage(), BulkHealthStore)
    True
    """

    def health_of(self, webhook_ids: Collection[str]) -> dict[str, WebhookHealth]:
        """
        Return the stored health of those of *webhook_ids* that have any, by webhook id.

        Each as :meth:`HealthStore.get_webhook_health` returns it; an id without a stored
        row is left out. One read, however many ids.
        """


@runtime_checkable
class CountingDeliveryLog(Protocol):
    """
    **Protocol**: A delivery log that counts deliveries by webhook without reading them.

    Optional: the settings page (:mod:`pendo_webhooks.portal`) counts each webhook's
    recent dead deliveries with it, in one query; without it, it reads the newest dead
    deliveries (at most 1,000) with :meth:`DeliveryLog.list_deliveries` and counts those
    (all the built-in stores have it).

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.storage.protocols import CountingDeliveryLog
    >>> isinstance(InMemoryStorage(), CountingDeliveryLog)
    True
    """

    def count_by_webhook(self, *, status: DeliveryStatus, since: datetime) -> dict[str, int]:
        """
        Count the deliveries in *status* that got there at or after *since*, by webhook id.

        A delivery counts by when it finished (``finished_at``), or, if it has not (a
        pending one), when it last changed (``updated_at``). Webhooks without any are left
        out. One query, reading no bodies.
        """


@attrs.frozen
class Capabilities:
    """
    Which optional capabilities a store has: what :func:`capabilities` returns.

    Args:
        chained_claim: It is a :class:`ChainingOutbox`.
        shared_outcomes: It is a :class:`SharedOutcomesOutbox`.
        host_connection: It is a :class:`HostConnectionOutbox` that accepts a connection.
        process_local: Its state lives in this process's memory, in this one object (its
            class says so with the attribute ``process_local = True``, as
            ``InMemoryStorage`` does): another instance shares nothing with it, so a
            ``Dispatcher`` must use the registry's own store, not another one.
        webhook_health: It is a :class:`HealthStore`.
        bulk_health: It is a :class:`BulkHealthStore`.
        delivery_counts: It is a :class:`CountingDeliveryLog`.

    >>> found = Capabilities(chained_claim=True, shared_outcomes=False, host_connection=False)
    >>> found.chained_claim, found.process_local
    (True, False)
    """

    chained_claim: bool
    shared_outcomes: bool
    host_connection: bool
    process_local: bool = False
    webhook_health: bool = False
    bulk_health: bool = False
    delivery_counts: bool = False


def capabilities(storage: object) -> Capabilities:
    """
    Return which optional capabilities *storage* has; the one place the engine asks.

    A capability is there when its method (or, for a host connection, the true class
    attribute ``accepts_host_connection``) can be looked up on *storage*; a store is
    process-local when its class has the true attribute ``process_local``.

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> class Postgresish(InMemoryStorage):
    ...     accepts_host_connection = True
    >>> capabilities(Postgresish())  # doctest: +NORMALIZE_WHITESPACE
    Capabilities(chained_claim=False, shared_outcomes=False, host_connection=True,
                 process_local=True, webhook_health=True, bulk_health=True,
                 delivery_counts=True)
    """
    # By attribute lookup, not isinstance(): on Python 3.12+ a runtime-checkable Protocol
    # ignores attributes a proxy forwards through __getattr__, which these lookups see.
    return Capabilities(
        chained_claim=hasattr(storage, "record_outcome_and_claim"),
        shared_outcomes=getattr(storage, "record_shared_outcomes", None) is not None,
        host_connection=bool(getattr(storage, "accepts_host_connection", False)),
        # On the class: a proxy in front of the registry's own in-memory store shares its
        # state, so it must not count as another process-local store.
        process_local=bool(getattr(type(storage), "process_local", False)),
        webhook_health=all(
            hasattr(storage, name)
            for name in (
                "get_webhook_health",
                "put_webhook_health",
                "hold_claims",
                "respread_pending",
            )
        ),
        bulk_health=hasattr(storage, "health_of"),
        delivery_counts=hasattr(storage, "count_by_webhook"),
    )
