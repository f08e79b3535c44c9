"""
Worker processes for test_crash.py, run as ``python crash_worker.py MODE DB ...``.

* ``work DB CONCURRENCY LEASE``: run ``Dispatcher.run_worker`` on the SQLite outbox until
  SIGTERM (a clean stop) or SIGKILL (the crash under test);
* ``enqueue DB COUNT``: enqueue COUNT npsSubmitted events, one transaction each, and exit;
* ``observe STORE VISITORS POINT COUNT``: report visitors 0 .. VISITORS-1 (visitor ``i`` in
  account ``i % 7``) to ``FirstSeenTracker.observe_many_and_dispatch``, in batches of 4, from
  the first, and SIGKILL itself the COUNTth time it reaches POINT: ``inside`` (in the atomic
  transaction, the keys claimed and the deliveries not yet written), ``committed`` (just
  after the commit, before the attempt) or ``sending`` (a request in flight); ``none``
  never. STORE is a SQLite file, or ``postgresql://...#SCHEMA``.

Loopback receivers are allowed. Nothing is printed.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timezone

from pendo_webhooks.dispatcher import Delivery, Dispatcher
from pendo_webhooks.events import App, Subscription, new_unique_id
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.pipeline import FirstSeenTracker, Observation
from pendo_webhooks.registry import WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage, Storage
from pendo_webhooks.testing import RecordingTransport, sample_event
from pendo_webhooks.transports import RequestsTransport


#: Observations per observe_many_and_dispatch call in ``observe`` mode.
BATCH = 4


def open_store(where: str) -> Storage:
    """
    A SQLite file, or ``postgresql://...#SCHEMA``.
    """
    if where.startswith("postgresql://"):
        from pendo_webhooks.storage import PostgresStorage  # noqa: PLC0415 - needs psycopg

        dsn, schema = where.rsplit("#", 1)
        return PostgresStorage(dsn, schema=schema, max_connections=2)
    return SQLiteStorage(where)


def observe(where: str, visitors: int, point: str, count: int) -> int:
    """
    Report every visitor from the first, dying at the COUNTth time POINT is reached.
    """
    reached = itertools.count(1)

    def checkpoint(name: str) -> None:
        if name == point and next(reached) == count:
            os.kill(os.getpid(), signal.SIGKILL)

    storage = open_store(where)
    atomic = storage.claim_first_seen_and_enqueue

    def claim_and_enqueue(
        keys: Collection[str],
        *,
        at: datetime,
        deliveries: Callable[[set[str]], Sequence[Delivery]],
        connection: object | None = None,
    ) -> tuple[set[str], list[str | None]]:
        def planned(claimed: set[str]) -> Sequence[Delivery]:
            made = deliveries(claimed)
            checkpoint("inside")
            return made

        done = atomic(keys, at=at, deliveries=planned, connection=connection)
        checkpoint("committed")
        return done

    storage.claim_first_seen_and_enqueue = claim_and_enqueue  # type: ignore[method-assign]
    transport = RecordingTransport(on_send=lambda _request: checkpoint("sending"))
    app = App(id=-323232, name="crash", platform="web")
    subscription = Subscription(id=1, name="crash")
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with Dispatcher(WebhookRegistry(storage), transport=transport) as dispatcher:
        tracker = FirstSeenTracker(storage)
        for start in range(0, visitors, BATCH):
            batch = [
                Observation(
                    visitor_id=f"visitor-{i}",
                    account_id=f"acct-{i % 7}",
                    app=app,
                    subscription=subscription,
                    at=at,
                )
                for i in range(start, min(start + BATCH, visitors))
            ]
            tracker.observe_many_and_dispatch(batch, dispatcher)
    storage.close()  # type: ignore[attr-defined]
    return 0


def main(argv: list[str]) -> int:
    """
    Run one worker until it is told to stop, or enqueue and exit.
    """
    mode, path = argv[1], argv[2]
    if mode == "observe":
        return observe(path, int(argv[3]), argv[4], int(argv[5]))
    with SQLiteStorage(path, synchronous="NORMAL") as storage:
        registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
        if mode == "enqueue":
            with Dispatcher(registry) as dispatcher:
                for _ in range(int(argv[3])):
                    dispatcher.enqueue(sample_event("npsSubmitted", unique_id=new_unique_id()))
            return 0
        concurrency, lease = int(argv[3]), float(argv[4])
        # A short lease needs a deadline it covers (at most half the lease).
        transport = RequestsTransport(destinations=registry.destinations, deadline=lease / 2)
        with transport, Dispatcher(registry, transport=transport, lease_duration=lease) as d:
            d.run_worker(concurrency=concurrency, poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
