"""
Shared batches: concurrent ``dispatch()`` calls to one Segment webhook share its requests.

A batching channel (Segment) sends many messages in one request, but a host calls
``dispatch()`` once per event, from many threads (a web server's request handlers). Each
call used to send its own batch of one. Here they commit as a group, as a database does
with its log: the first caller for a webhook sends at once; callers that store their
delivery while that request is in flight wait for it, then the first of them sends all
their deliveries together, and each returns its own outcome.

So nothing waits for a timer: a lone caller sends at once (as before), and a caller that
arrives during a send waits at most for that one request, then for its own batch's (each
within the transport's deadline). N concurrent callers make about as many requests as
sends overlap, not N. Every delivery is stored (claimed, as ``dispatch()`` stores it)
before it waits, so a crash loses nothing: its lease lapses and a worker sends it.

Strictly private; the enqueuer holds one.
"""

from __future__ import annotations

import threading

from ..model._delivery import Delivery
from ..model._outcomes import DeliveryOutcome
from ..model._webhook import Webhook
from ._deliver import Deliverer
from ._deliver_claims import Claimer
from ._deliver_outcome import released


__all__ = ["SharedBatches"]

#: Why a delivery whose caller waited too long for a shared batch was handed back.
WAITED_TOO_LONG = "handed back: half its lease went waiting for a shared batch"


class SharedBatches:
    """
    Group commit of batching webhooks' just-stored deliveries. Strictly private.

    Args:
        deliverer: Sends a webhook's claimed deliveries as batches.
        claims: Tells whether a claim is too far gone to start; takes claims back.
    """

    def __init__(self, *, deliverer: Deliverer, claims: Claimer) -> None:
        self._deliverer = deliverer
        self._claims = claims
        self._cond = threading.Condition()
        # By webhook id: the deliveries stored and waiting for the next batch, and whether
        # a batch of that webhook is in flight.
        self._waiting: dict[str, list[Delivery]] = {}
        self._sending: set[str] = set()
        # By delivery id: the outcome of a waiting caller's delivery, sent by another.
        self._done: dict[str, DeliveryOutcome] = {}

    def attempt(self, delivery: Delivery, webhook: Webhook) -> DeliveryOutcome:
        """
        Send a just-stored, claimed *delivery* of a batching *webhook*, with the others
        stored meanwhile; return its outcome.
        """
        key = webhook.id
        with self._cond:
            self._waiting.setdefault(key, []).append(delivery)
            self._cond.notify_all()
            while True:
                done = self._done.pop(delivery.id, None)
                if done is not None:
                    return done  # sent in a batch another caller led
                if key not in self._sending:
                    break
                self._cond.wait()
            # Still waiting, so still here: this caller sends them all.
            batch = self._waiting.pop(key)
            self._sending.add(key)
        found: dict[str | None, DeliveryOutcome] = {}
        try:
            found = {o.delivery_id: o for o in self._send(batch, webhook)}
        finally:
            with self._cond:
                self._sending.discard(key)
                for other in batch:
                    if other.id != delivery.id:
                        self._done[other.id] = found.get(other.id) or released([other])[0]
                self._cond.notify_all()
        return found.get(delivery.id) or released([delivery])[0]

    def _send(self, batch: list[Delivery], webhook: Webhook) -> list[DeliveryOutcome]:
        if len(batch) > 1 and self._claims.running_short(batch):
            # Waiting ate half a lease (a very slow receiver): hand them back, due at once.
            self._claims.release(batch)
            return released(batch, WAITED_TOO_LONG)
        return self._deliverer.attempt_batch(batch, webhook)
