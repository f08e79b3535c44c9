"""
The outbox part of :class:`~pendo_webhooks.storage.InMemoryStorage`. Strictly private.

Deliveries live in a dict; the pending ones also sit in a heap ordered by
``next_attempt_at``, so a claim takes the earliest due ones without a scan. Heap
entries go stale when a delivery changes; a stale entry is skipped when it
surfaces, and the heap is rebuilt when stale entries outnumber live ones.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

import attrs

from ..model._delivery import Attempt, Delivery, DeliveryStatus, evolved
from ..model._health import WebhookHealth
from ..model._webhook import Webhook
from ._outbox_common import (
    claims_exhausted,
    duplicate_delivery,
    not_finished,
    purged_body,
    unknown_delivery,
)
from ._outbox_protocol import EnqueueSkip


__all__ = ["MemoryOutbox"]

_PENDING = DeliveryStatus.PENDING
_REDELIVERABLE = frozenset({DeliveryStatus.FAILED, DeliveryStatus.DEAD})


class MemoryOutbox:
    """
    Deliveries and attempts in dicts, guarded by the store's one lock. Strictly private.
    """

    # Set by InMemoryStorage.__init__; shared so that enqueueing sees webhook changes atomically.
    _lock: threading.RLock
    _webhooks: dict[str, Webhook]

    def __init__(self) -> None:
        super().__init__()
        self._deliveries: dict[str, Delivery] = {}
        self._attempts: dict[str, list[Attempt]] = {}
        # The deliveries of each HTTP exchange, by its id (a Segment batch has many).
        self._exchanges: dict[str, list[str]] = {}
        self._event_keys: set[tuple[str, str]] = set()
        self._pending: dict[str, Delivery] = {}
        self._due: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        # Claims per delivery id; claims - attempts is how many ended without an outcome.
        self._claims: dict[str, int] = {}
        # Each webhook's health (the HealthStore part), as last written.
        self._health: dict[str, WebhookHealth] = {}

    # -- machinery (call with the lock held) -----------------------------------------------

    def _put(self, delivery: Delivery) -> None:
        self._deliveries[delivery.id] = delivery
        if delivery.status is _PENDING:
            self._pending[delivery.id] = delivery
            heapq.heappush(self._due, (delivery.next_attempt_at, next(self._seq), delivery.id))
            if len(self._due) > 4 * len(self._pending) + 1000:
                self._due = [
                    (d.next_attempt_at, next(self._seq), d.id) for d in self._pending.values()
                ]
                heapq.heapify(self._due)
        else:
            self._pending.pop(delivery.id, None)

    def _is_live(self, entry: tuple[datetime, int, str]) -> bool:
        found = self._pending.get(entry[2])
        return found is not None and found.next_attempt_at == entry[0]

    def _reopen(self, delivery: Delivery, now: datetime) -> Delivery:
        reopened = attrs.evolve(
            delivery,
            status=_PENDING,
            next_attempt_at=now,
            attempt_base=delivery.attempts,
            redelivered_at=now,
            finished_at=None,
            updated_at=now,
        )
        self._claims[delivery.id] = delivery.attempts
        self._put(reopened)
        return reopened

    # -- the OutboxStore Protocol ----------------------------------------------------------

    def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> list[str | None]:
        """
        Store new deliveries of enabled webhooks, skipping duplicates; see OutboxStore.
        """
        with self._lock:
            results: list[str | None] = []
            taken: set[str] = set()
            for delivery in deliveries:
                if delivery.id in self._deliveries or delivery.id in taken:
                    raise duplicate_delivery(delivery.id)
                taken.add(delivery.id)
            for delivery in deliveries:
                webhook = self._webhooks.get(delivery.webhook_id)
                key = (delivery.webhook_id, delivery.event_id)
                if webhook is None:
                    results.append(EnqueueSkip.DELETED)
                elif not webhook.enabled:
                    results.append(EnqueueSkip.DISABLED)
                elif key in self._event_keys:
                    results.append(EnqueueSkip.DUPLICATE)
                else:
                    self._event_keys.add(key)
                    if delivery.lease_owner is not None:
                        self._claims[delivery.id] = 1  # stored leased: that claim counts
                    self._put(delivery)
                    results.append(None)
            return results

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
        Lease up to *limit* due deliveries to *owner*; see OutboxStore.
        """
        with self._lock:
            if webhook_id is None:
                chosen = self._take_due(now, limit)
            else:
                chosen = sorted(
                    (
                        d
                        for d in self._pending.values()
                        if d.webhook_id == webhook_id and d.next_attempt_at <= now
                    ),
                    key=lambda d: (d.next_attempt_at, d.id),
                )[:limit]
            return [self._lease(d, owner, now, lease_until, max_claims) for d in chosen]

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
        Lease those of *delivery_ids* that are due to *owner*; see OutboxStore.
        """
        with self._lock:
            due = [self._pending.get(i) for i in dict.fromkeys(delivery_ids)]
            return [
                self._lease(d, owner, now, lease_until, max_claims)
                for d in due
                if d is not None and d.next_attempt_at <= now
            ]

    def _lease(
        self,
        delivery: Delivery,
        owner: str,
        now: datetime,
        lease_until: datetime,
        max_claims: int | None,
    ) -> Delivery:
        # One claim (call with the lock held): counted, and the end of a delivery claimed
        # max_claims times without an outcome.
        claims = self._claims.get(delivery.id, 0)
        self._claims[delivery.id] = claims + 1
        if max_claims is not None and claims - delivery.attempts >= max_claims:
            leased = attrs.evolve(
                delivery,
                status=DeliveryStatus.DEAD,
                last_error=claims_exhausted(max_claims),
                finished_at=now,
                lease_owner=None,
                lease_until=None,
                next_attempt_at=now,
                updated_at=now,
            )
        else:
            leased = attrs.evolve(
                delivery,
                lease_owner=owner,
                lease_until=lease_until,
                next_attempt_at=lease_until,
                updated_at=now,
            )
        self._put(leased)
        return leased

    def _take_due(self, now: datetime, limit: int) -> list[Delivery]:
        chosen: dict[str, Delivery] = {}
        while self._due and len(chosen) < limit and self._due[0][0] <= now:
            entry = heapq.heappop(self._due)
            if self._is_live(entry):
                chosen.setdefault(entry[2], self._pending[entry[2]])
        return list(chosen.values())

    def record_outcomes(
        self, outcomes: Sequence[tuple[Delivery, Attempt | None]], *, owner: str, now: datetime
    ) -> list[bool]:
        """
        Record several claimed deliveries' outcomes at once; see OutboxStore.
        """
        with self._lock:
            return [self.record_outcome(d, a, owner=owner, now=now) for d, a in outcomes]

    def record_outcome(
        self, delivery: Delivery, attempt: Attempt | None, *, owner: str, now: datetime
    ) -> bool:
        """
        Write a claimed delivery's new state if *owner* still holds its lease; see OutboxStore.
        """
        with self._lock:
            current = self._pending.get(delivery.id)
            if (
                current is None
                or current.lease_owner != owner
                or current.lease_until is None
                or current.lease_until < now
            ):
                return False
            # The changes come from a Delivery, whose fields were checked when it was made.
            self._put(
                evolved(
                    current,
                    status=delivery.status,
                    attempts=delivery.attempts,
                    next_attempt_at=delivery.next_attempt_at,
                    updated_at=delivery.updated_at,
                    last_status=delivery.last_status,
                    last_error=delivery.last_error,
                    finished_at=delivery.finished_at,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            if attempt is not None:
                self._attempts.setdefault(delivery.id, []).append(attempt)
                self._exchanges.setdefault(attempt.exchange_id, []).append(delivery.id)
            return True

    def release_claims(self, delivery_ids: Sequence[str], *, owner: str, now: datetime) -> int:
        """
        Give back claims *owner* holds: due again at *now*; see OutboxStore.
        """
        with self._lock:
            released = 0
            for delivery_id in delivery_ids:
                current = self._pending.get(delivery_id)
                if current is not None and current.lease_owner == owner:
                    # A claim handed back unattempted is not counted against the delivery.
                    self._claims[delivery_id] = max(self._claims.get(delivery_id, 0) - 1, 0)
                    self._put(
                        attrs.evolve(
                            current,
                            lease_owner=None,
                            lease_until=None,
                            next_attempt_at=now,
                            updated_at=now,
                        )
                    )
                    released += 1
            return released

    # -- the HealthStore Protocol -----------------------------------------------------------

    def get_webhook_health(self, webhook_id: str) -> WebhookHealth | None:
        """
        Return the webhook's stored health, or None; see HealthStore.
        """
        with self._lock:
            return self._health.get(webhook_id)

    def put_webhook_health(self, health: WebhookHealth, *, expected_version: int) -> bool:
        """
        Store *health* if the stored version is still *expected_version*; see HealthStore.
        """
        with self._lock:
            current = self._health.get(health.webhook_id)
            if (0 if current is None else current.version) != expected_version:
                return False
            self._health[health.webhook_id] = attrs.evolve(health, version=expected_version + 1)
            return True

    def health_of(self, webhook_ids: Collection[str]) -> dict[str, WebhookHealth]:
        """
        Return the stored health of those of *webhook_ids* that have any; see BulkHealthStore.
        """
        with self._lock:
            return {i: self._health[i] for i in webhook_ids if i in self._health}

    def hold_claims(
        self, delivery_ids: Sequence[str], *, owner: str, now: datetime, until: datetime
    ) -> int:
        """
        Give back claims *owner* holds, due again at *until*; see HealthStore.
        """
        with self._lock:
            held = 0
            for delivery_id in delivery_ids:
                current = self._pending.get(delivery_id)
                if current is not None and current.lease_owner == owner:
                    self._claims[delivery_id] = max(self._claims.get(delivery_id, 0) - 1, 0)
                    self._put(
                        attrs.evolve(
                            current,
                            lease_owner=None,
                            lease_until=None,
                            next_attempt_at=until,
                            updated_at=now,
                        )
                    )
                    held += 1
            return held

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
        Give the webhook's unleased pending deliveries new due times; see HealthStore.
        """
        with self._lock:
            chosen = sorted(
                (
                    d
                    for d in self._pending.values()
                    if d.webhook_id == webhook_id
                    and (d.lease_until is None or d.lease_until < now)
                ),
                key=lambda d: (d.attempts, d.id),
            )[:limit]
            for number, delivery in enumerate(chosen):
                self._put(
                    attrs.evolve(
                        delivery,
                        lease_owner=None,
                        lease_until=None,
                        next_attempt_at=start + spacing * number,
                        updated_at=now,
                    )
                )
            return [d.id for d in chosen]

    def cancel_deliveries(self, webhook_id: str, *, reason: str, now: datetime) -> int:
        """
        Cancel every pending delivery of a webhook; see OutboxStore.
        """
        with self._lock:
            doomed = [d for d in self._pending.values() if d.webhook_id == webhook_id]
            for delivery in doomed:
                self._put(
                    attrs.evolve(
                        delivery,
                        status=DeliveryStatus.CANCELLED,
                        last_error=reason,
                        finished_at=now,
                        updated_at=now,
                        lease_owner=None,
                        lease_until=None,
                    )
                )
            return len(doomed)

    def get_delivery(self, delivery_id: str) -> Delivery:
        """
        Return one delivery, or raise UnknownDelivery.
        """
        with self._lock:
            try:
                return self._deliveries[delivery_id]
            except KeyError:
                raise unknown_delivery(delivery_id) from None

    def list_deliveries(
        self,
        *,
        webhook_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """
        Return up to *limit* deliveries, newest first; see OutboxStore.
        """
        with self._lock:
            found = [
                d
                for d in self._deliveries.values()
                if (webhook_id is None or d.webhook_id == webhook_id)
                and (status is None or d.status is status)
            ]
        found.reverse()  # insertion order, newest first
        return found[:limit]

    def count_by_webhook(self, *, status: DeliveryStatus, since: datetime) -> dict[str, int]:
        """
        Count the deliveries in *status* since *since* by webhook; see CountingDeliveryLog.
        """
        with self._lock:
            return dict(
                Counter(
                    d.webhook_id
                    for d in self._deliveries.values()
                    if d.status is status and (d.finished_at or d.updated_at) >= since
                )
            )

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        """
        Return a delivery's attempts, first first.
        """
        with self._lock:
            return list(self._attempts.get(delivery_id, ()))

    def list_exchange_attempts(self, exchange_id: str) -> list[Attempt]:
        """
        Return the attempts of one HTTP exchange, one per delivery, by delivery id.
        """
        with self._lock:
            return sorted(
                (
                    a
                    for delivery_id in dict.fromkeys(self._exchanges.get(exchange_id, ()))
                    for a in self._attempts.get(delivery_id, ())
                    if a.exchange_id == exchange_id
                ),
                key=lambda a: (a.delivery_id, a.number),
            )

    def redeliver(self, delivery_id: str, *, now: datetime) -> Delivery:
        """
        Make a finished delivery pending again with a fresh retry budget; see OutboxStore.
        """
        with self._lock:
            current = self.get_delivery(delivery_id)
            if current.status is _PENDING:
                raise not_finished(delivery_id)
            if current.purged:
                raise purged_body(delivery_id)
            return self._reopen(current, now)

    def redeliver_failed(
        self, webhook_id: str, *, since: datetime, until: datetime, now: datetime
    ) -> int:
        """
        Redeliver a webhook's failed and dead deliveries created in ``[since, until)``.
        """
        with self._lock:
            chosen = [
                d
                for d in self._deliveries.values()
                if d.webhook_id == webhook_id
                and d.status in _REDELIVERABLE
                and not d.purged
                and since <= d.created_at < until
            ]
            for delivery in chosen:
                self._reopen(delivery, now)
            return len(chosen)

    def purge(self, older_than: datetime) -> int:
        """
        Empty bodies and response excerpts of deliveries finished before *older_than*.
        """
        with self._lock:
            chosen = [
                d
                for d in self._deliveries.values()
                if d.finished_at is not None
                and d.status is not _PENDING
                and not d.purged
                and d.finished_at < older_than
            ]
            for delivery in chosen:
                self._put(attrs.evolve(delivery, body=b"", purged=True))
                attempts = self._attempts.get(delivery.id)
                if attempts:
                    self._attempts[delivery.id] = [
                        attrs.evolve(a, response_excerpt=b"") for a in attempts
                    ]
            return len(chosen)

    def pending_summary(self) -> tuple[int, datetime | None]:
        """
        Return how many deliveries are pending and the earliest ``next_attempt_at``.
        """
        with self._lock:
            while self._due and not self._is_live(self._due[0]):
                heapq.heappop(self._due)
            return len(self._pending), (self._due[0][0] if self._due else None)
