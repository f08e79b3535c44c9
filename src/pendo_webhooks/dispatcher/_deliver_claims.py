"""
The dispatcher's claims on the outbox: who it claims as, for how long, and what it gives back.

One :class:`Claimer` object is shared by the enqueuer, the deliverer and the runner of a
:class:`~pendo_webhooks.dispatcher.Dispatcher`, so all three claim as the same owner with
the same lease. Strictly private.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from datetime import timedelta

from .._clock import Clock
from ..model._delivery import Delivery
from ..storage.protocols import OutboxQueue


__all__ = ["Claimer"]


class Claimer:
    """
    Claims due deliveries for one owner, with one lease; hands claims back. Strictly private.

    Args:
        outbox: The store's queue.
        clock: The current aware UTC time.
        lease_duration: How long a claim holds.
        max_claims: How many claims without an outcome end a delivery ``dead``.
    """

    def __init__(
        self, outbox: OutboxQueue, *, clock: Clock, lease_duration: timedelta, max_claims: int
    ) -> None:
        self.outbox = outbox
        self.clock = clock
        self.lease_duration = lease_duration
        self.max_claims = max_claims
        self._token = secrets.token_hex(6)

    @property
    def owner(self) -> str:
        """
        The lease owner: random per instance, plus the process id (asked each time: a fork).
        """
        return f"{self._token}-{os.getpid()}"

    def claim(self, limit: int, webhook_id: str | None = None) -> list[Delivery]:
        """
        Claim up to *limit* due deliveries (of *webhook_id* only, if given).
        """
        now = self.clock()
        return self.outbox.claim_due(
            owner=self.owner,
            now=now,
            lease_until=now + self.lease_duration,
            limit=limit,
            webhook_id=webhook_id,
            max_claims=self.max_claims,
        )

    def claim_ids(self, ids: Sequence[str]) -> list[Delivery]:
        """
        Claim the deliveries *ids* that are still due and unclaimed.
        """
        now = self.clock()
        return self.outbox.claim_deliveries(
            ids,
            owner=self.owner,
            now=now,
            lease_until=now + self.lease_duration,
            max_claims=self.max_claims,
        )

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """
        Hand claims back unattempted: due at once for any worker.
        """
        self.outbox.release_claims([d.id for d in deliveries], owner=self.owner, now=self.clock())

    def running_short(self, batch: Sequence[Delivery]) -> bool:
        """
        Whether less than half a lease is left on some claim of *batch*: too late to start.
        """
        now = self.clock()
        # Claimed deliveries always carry their lease; one without counts as lapsing now.
        ends = [now if d.lease_until is None else d.lease_until for d in batch]
        return min(ends) - now < self.lease_duration / 2
