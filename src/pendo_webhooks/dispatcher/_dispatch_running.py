"""
The dispatcher's runner: ``run_due``, ``drain`` and ``run_worker``, all driving one
claim-and-attempt :class:`~pendo_webhooks.dispatcher._runner.Runner` over the deliverer.

Strictly private; the :class:`~pendo_webhooks.dispatcher.Dispatcher` holds one and
delegates to it (its public methods carry the documentation).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import cast

from ..exceptions import PendoWebhooksError
from ..model._delivery import Delivery
from ..model._outcomes import DeliveryOutcome, DrainSummary, Outcome
from ..storage.protocols import ChainingOutbox, OutboxQueue, capabilities
from ._deliver import ClaimNext, Deliverer
from ._deliver_claims import Claimer
from ._dispatch_args import count_arg, seconds_arg
from ._runner import Runner, pause, stop_on_signals


__all__ = ["MAX_THREADS", "DispatchRunner"]

#: The most threads one call may use.
MAX_THREADS = 256
_MAX_LIMIT = 10_000
# How long to idle when work is due but could not be claimed (another worker took it).
_IDLE_PAUSE = 0.05

logger = logging.getLogger("pendo_webhooks")


class DispatchRunner:
    """
    Claims and attempts due deliveries: run_due, drain, run_worker. Strictly private.

    Args:
        outbox: The store's queue (its pending summary; a chained claim if it can).
        claims: Claims and releases, as the dispatcher's owner.
        deliverer: Attempts each claimed delivery.
        sleep: How drain waits for the next due time.
    """

    def __init__(
        self,
        *,
        outbox: OutboxQueue,
        claims: Claimer,
        deliverer: Deliverer,
        sleep: Callable[[float], object],
    ) -> None:
        self._outbox = outbox
        self._claims = claims
        self._deliverer = deliverer
        self._sleep = sleep
        self._clock = claims.clock

    def _runner(self, concurrency: int) -> Runner:
        claim_next = (
            ClaimNext(cast(ChainingOutbox, self._outbox))
            if capabilities(self._outbox).chained_claim
            else None
        )
        attempt_claimed = self._deliverer.attempt_claimed

        def attempt(delivery: Delivery) -> Sequence[DeliveryOutcome]:
            return attempt_claimed(delivery)[0]

        def attempt_chained(
            delivery: Delivery,
        ) -> tuple[Sequence[DeliveryOutcome], list[Delivery] | None]:
            return attempt_claimed(delivery, claim_next)

        return Runner(
            claim=self._claims.claim,
            attempt=attempt,
            release=self._claims.release,
            concurrency=count_arg("concurrency", concurrency, most=MAX_THREADS),
            attempt_chained=None if claim_next is None else attempt_chained,
        )

    def run_due(self, *, limit: int = 100, concurrency: int = 1) -> list[DeliveryOutcome]:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.run_due`.
        """
        limit = count_arg("limit", limit, most=_MAX_LIMIT)
        with self._runner(concurrency) as runner:
            return runner.run(budget=limit)

    def drain(self, timeout: float | timedelta = 60.0, *, concurrency: int = 1) -> DrainSummary:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.drain`.
        """
        deadline = self._clock() + timedelta(seconds=seconds_arg("timeout", timeout))
        counts: Counter[Outcome] = Counter()

        def expired() -> bool:
            return self._clock() >= deadline

        with self._runner(concurrency) as runner:
            while True:
                outcomes = runner.run(stop=expired)
                counts.update(o.outcome for o in outcomes)
                pending, next_due = self._outbox.pending_summary()
                now = self._clock()
                if not pending or now >= deadline:
                    return DrainSummary(counts=counts, pending=pending, timed_out=bool(pending))
                wait = min(next_due or deadline, deadline) - now
                seconds = wait.total_seconds()
                if seconds > 0 or not outcomes:
                    self._sleep(max(seconds, _IDLE_PAUSE))

    def run_worker(
        self,
        stop_event: threading.Event | None = None,
        *,
        concurrency: int = 1,
        poll_interval: float = 1.0,
        install_signal_handlers: bool = True,
    ) -> DrainSummary:
        """
        See :meth:`~pendo_webhooks.dispatcher.Dispatcher.run_worker`.
        """
        interval = seconds_arg("poll_interval", poll_interval)
        event = threading.Event() if stop_event is None else stop_event
        counts: Counter[Outcome] = Counter()
        with self._runner(concurrency) as runner, stop_on_signals(install_signal_handlers) as sig:
            logger.info("worker %s started (concurrency %d)", self._claims.owner, concurrency)

            def stopping() -> bool:
                return event.is_set() or sig()

            while not stopping():
                try:
                    outcomes = runner.run(stop=stopping)
                    counts.update(o.outcome for o in outcomes)
                    _, next_due = self._outbox.pending_summary()
                except PendoWebhooksError as exc:
                    logger.warning(
                        "worker %s: %s; retrying in %g s", self._claims.owner, exc, interval
                    )
                    pause(interval, stopping, event)
                    continue
                wait = interval
                if next_due is not None:
                    wait = min(max((next_due - self._clock()).total_seconds(), 0.0), interval)
                pause(wait if wait > 0 or outcomes else _IDLE_PAUSE, stopping, event)
        logger.info("worker %s stopped", self._claims.owner)
        return DrainSummary(counts=counts, pending=self._outbox.pending_summary()[0])
