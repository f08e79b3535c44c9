"""
The claim-and-attempt loop behind ``run_due``, ``drain`` and ``run_worker``. Strictly private.

A :class:`Runner` keeps up to *concurrency* attempts in flight on its own threads and
claims due deliveries only as threads free up. A claim is therefore never older than
the moment its attempt starts, so a lease cannot lapse while a delivery waits its
turn behind slow receivers, and a killed worker holds at most *concurrency* claims.
With one thread, a store that can record an outcome and claim the next delivery in
one transaction is asked to (*attempt_chained*): the same rule, one transaction less
per delivery.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import FrameType
from typing import Any

from ..model._delivery import Delivery
from ..model._outcomes import DeliveryOutcome
from ._deliver_outcome import released


__all__ = ["Runner", "pause", "stop_on_signals"]

#: Longest single wait while a worker idles, so a signal is noticed promptly.
_SLICE = 0.1


def _never() -> bool:
    return False


_Chained = Callable[[Delivery], tuple[Sequence[DeliveryOutcome], list[Delivery] | None]]


class Runner:
    """
    Claims due deliveries as threads free up, attempts them, collects the outcomes.

    Args:
        claim: Claims up to *n* due deliveries.
        attempt: Attempts one claimed delivery and records its outcome; never raises.
            It returns that outcome, and those of any deliveries it claimed and
            attempted along with it (a Segment batch).
        release: Gives claims back unattempted.
        concurrency: Attempts in flight at most (1: in the calling thread).
        attempt_chained: Like *attempt*, and also returns the next due delivery if
            it claimed it while recording (``None``: it did not try; ``[]``:
            nothing was due). Used with concurrency 1 only.
    """

    def __init__(
        self,
        *,
        claim: Callable[[int], list[Delivery]],
        attempt: Callable[[Delivery], Sequence[DeliveryOutcome]],
        release: Callable[[Sequence[Delivery]], object],
        concurrency: int,
        attempt_chained: _Chained | None = None,
    ) -> None:
        self._claim = claim
        self._attempt = attempt
        self._attempt_chained = attempt_chained
        self._release = release
        self._concurrency = concurrency
        self._pool = (
            ThreadPoolExecutor(concurrency, thread_name_prefix="pendo-webhooks-worker")
            if concurrency > 1
            else None
        )

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """
        Wait for attempts in flight, then stop the threads.
        """
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def run(
        self, *, budget: int | None = None, stop: Callable[[], bool] = _never
    ) -> list[DeliveryOutcome]:
        """
        Attempt due deliveries until none is due, *budget* were claimed, or *stop* says so.

        Attempts in flight when *stop* turns true are finished, not abandoned.
        """
        if self._pool is None:
            return self._run_inline(budget, stop)
        return self._run_pooled(self._pool, budget, stop)

    def _run_inline(self, budget: int | None, stop: Callable[[], bool]) -> list[DeliveryOutcome]:
        outcomes: list[DeliveryOutcome] = []
        ahead: list[Delivery] | None = None  # claimed along with the last outcome
        try:
            while (budget is None or len(outcomes) < budget) and not stop():
                claimed = self._claim(1) if ahead is None else ahead
                ahead = None
                if not claimed:
                    break
                last = budget is not None and len(outcomes) + 1 >= budget
                if self._attempt_chained is None or last:
                    outcomes.extend(self._attempt(claimed[0]))
                else:
                    found, ahead = self._attempt_chained(claimed[0])
                    outcomes.extend(found)
        finally:
            if ahead:  # the loop ended first (stopped, or a batch filled the budget)
                self._release(ahead)
        return outcomes

    def _run_pooled(
        self, pool: ThreadPoolExecutor, budget: int | None, stop: Callable[[], bool]
    ) -> list[DeliveryOutcome]:
        outcomes: list[DeliveryOutcome] = []
        in_flight: set[Future[Sequence[DeliveryOutcome]]] = set()
        claimed_total = 0
        more = True
        while True:
            if more and not stop():
                # At least one thread is free here, and (while *more*) some budget is left.
                free = self._concurrency - len(in_flight)
                if budget is not None:
                    free = min(free, budget - claimed_total)
                batch = self._claim(free)
                claimed_total += len(batch)
                # A short claim means nothing more is due right now.
                more = len(batch) == free and (budget is None or claimed_total < budget)
                in_flight.update(pool.submit(self._start, d, stop) for d in batch)
            if not in_flight:
                return outcomes
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                in_flight.discard(future)
                outcomes.extend(future.result())

    def _start(self, delivery: Delivery, stop: Callable[[], bool]) -> Sequence[DeliveryOutcome]:
        if stop():
            self._release([delivery])
            return released([delivery], "released unattempted at shutdown")
        return self._attempt(delivery)


def pause(seconds: float, stopping: Callable[[], bool], event: threading.Event) -> None:
    """
    Wait up to *seconds*, waking early once *event* is set or *stopping* says so.
    """
    remaining = seconds
    while remaining > 0 and not stopping():
        step = min(remaining, _SLICE)
        if event.wait(step):
            return
        remaining -= step


@contextlib.contextmanager
def stop_on_signals(enabled: bool) -> Iterator[Callable[[], bool]]:
    """
    Yield a callable telling whether SIGTERM or SIGINT arrived while the block ran.

    Handlers are installed only if *enabled* and in the main thread, and are put back
    afterwards. The handler only sets a flag (taking a lock in a signal handler can
    deadlock); after the first signal the previous handlers are back, so a second
    one acts as it would have without us (SIGINT raises KeyboardInterrupt).
    """
    received: list[int] = []
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield lambda: bool(received)
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        _restore(previous)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield lambda: bool(received)
    finally:
        _restore(previous)


def _restore(previous: dict[int, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, signal.SIG_DFL if old is None else old)
