"""
The running part of :class:`~pendo_webhooks.dispatcher.Dispatcher`: ``run_due``, ``drain``
and ``run_worker``, all driving one claim-and-attempt :class:`Runner`.

Strictly private; a base class of the Dispatcher.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, cast

import attrs

from ._clock import Clock
from ._delivery import Delivery
from ._dispatch_args import count_arg, seconds_arg
from ._outcomes import DeliveryOutcome, DrainSummary, Outcome
from ._runner import Runner, pause, stop_on_signals
from .exceptions import PendoWebhooksError
from .storage import Storage
from .storage.protocols import ChainingOutbox, capabilities


__all__ = ["MAX_THREADS", "ClaimNext", "RunningMixin"]

#: The most threads one call may use.
MAX_THREADS = 256
_MAX_LIMIT = 10_000
# How long to idle when work is due but could not be claimed (another worker took it).
_IDLE_PAUSE = 0.05

logger = logging.getLogger("pendo_webhooks")


@attrs.frozen
class ClaimNext:
    """
    A one-thread runner's request: record an outcome and claim the next due delivery.

    Passed down ``_attempt_claimed`` to ``_record``, which then records through
    *outbox*'s ``record_outcome_and_claim`` (one transaction for both) and returns what
    it claimed: ``None`` where no claim was made (a cancellation, a Segment batch, a
    bug), ``[]`` where nothing was due. Strictly private.

    Args:
        outbox: The store, as the :class:`~pendo_webhooks.storage.protocols.ChainingOutbox`
            it is.
    """

    outbox: ChainingOutbox


class RunningMixin:
    """
    Claims and attempts due deliveries. Strictly private: a base of the Dispatcher.
    """

    storage: Storage
    clock: Clock
    _sleep: Callable[[float], object]

    if TYPE_CHECKING:

        @property
        def owner(self) -> str: ...

        def _claim(self, limit: int, webhook_id: str | None = None) -> list[Delivery]: ...

        def _attempt_claimed(
            self, delivery: Delivery, claim_next: ClaimNext | None = None
        ) -> tuple[list[DeliveryOutcome], list[Delivery] | None]: ...

        def _release(self, deliveries: Sequence[Delivery]) -> None: ...

    def _runner(self, concurrency: int) -> Runner:
        claim_next = (
            ClaimNext(cast(ChainingOutbox, self.storage))
            if capabilities(self.storage).chained_claim
            else None
        )

        def attempt(delivery: Delivery) -> Sequence[DeliveryOutcome]:
            return self._attempt_claimed(delivery)[0]

        def attempt_chained(
            delivery: Delivery,
        ) -> tuple[Sequence[DeliveryOutcome], list[Delivery] | None]:
            return self._attempt_claimed(delivery, claim_next)

        return Runner(
            claim=self._claim,
            attempt=attempt,
            release=self._release,
            concurrency=count_arg("concurrency", concurrency, most=MAX_THREADS),
            attempt_chained=None if claim_next is None else attempt_chained,
        )

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
        limit = count_arg("limit", limit, most=_MAX_LIMIT)
        with self._runner(concurrency) as runner:
            return runner.run(budget=limit)

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
        deadline = self.clock() + timedelta(seconds=seconds_arg("timeout", timeout))
        counts: Counter[Outcome] = Counter()

        def expired() -> bool:
            return self.clock() >= deadline

        with self._runner(concurrency) as runner:
            while True:
                outcomes = runner.run(stop=expired)
                counts.update(o.outcome for o in outcomes)
                pending, next_due = self.storage.pending_summary()
                now = self.clock()
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
        interval = seconds_arg("poll_interval", poll_interval)
        event = threading.Event() if stop_event is None else stop_event
        counts: Counter[Outcome] = Counter()
        with self._runner(concurrency) as runner, stop_on_signals(install_signal_handlers) as sig:
            logger.info("worker %s started (concurrency %d)", self.owner, concurrency)

            def stopping() -> bool:
                return event.is_set() or sig()

            while not stopping():
                try:
                    outcomes = runner.run(stop=stopping)
                    counts.update(o.outcome for o in outcomes)
                    _, next_due = self.storage.pending_summary()
                except PendoWebhooksError as exc:
                    logger.warning("worker %s: %s; retrying in %g s", self.owner, exc, interval)
                    pause(interval, stopping, event)
                    continue
                wait = interval
                if next_due is not None:
                    wait = min(max((next_due - self.clock()).total_seconds(), 0.0), interval)
                pause(wait if wait > 0 or outcomes else _IDLE_PAUSE, stopping, event)
        logger.info("worker %s stopped", self.owner)
        return DrainSummary(counts=counts, pending=self.storage.pending_summary()[0])
