"""
Scale-out on PostgreSQL: worker processes drain one outbox; one of them is killed with SIGKILL.

Receipts are counted at the receiver, in this process, never inside a process that is killed
(RELIABILITY.md C3). Each worker tags its requests with its pid (an ``X-Worker`` header added
by a wrapping transport), so the receiver knows who sent what.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pendo_webhooks.dispatcher import DeliveryStatus, Dispatcher
from pendo_webhooks.events import new_unique_id
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.testing import RecordingTransport, sample_event

from .conftest import fresh_pg_schema, postgres_dsn
from .servers import Receiver


try:
    from psycopg import sql

    from pendo_webhooks.storage import PostgresStorage
except ImportError:  # the test then skips (or fails) through the dsn fixture
    pass

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("dsn")]

EVENTS = 5000
WORKERS = 4
CONCURRENCY = 4  # a worker's claims in flight: the most its death can duplicate
# The victim's claims come back after its short lease; the survivors' leases are long, so a
# slow machine cannot make one of their attempts outlive its lease and be sent twice.
VICTIM_LEASE = 2.0
SURVIVOR_LEASE = 60.0
ADMIN = Actor("u-1", is_admin=True)

# One worker process: run_worker on the schema, every request tagged with the worker's pid.
WORKER = textwrap.dedent(
    """
    import os, sys
    import attrs
    from pendo_webhooks.dispatcher import Dispatcher
    from pendo_webhooks.guard import DestinationPolicy
    from pendo_webhooks.registry import WebhookRegistry
    from pendo_webhooks.storage import PostgresStorage
    from pendo_webhooks.transports import RequestsTransport

    class Tagged:
        def __init__(self, inner):
            self.inner = inner

        def send(self, request):
            headers = {**request.headers, "X-Worker": str(os.getpid())}
            return self.inner.send(attrs.evolve(request, headers=headers))

    dsn, schema, concurrency, lease = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with PostgresStorage(dsn, schema=schema, max_connections=concurrency + 2) as storage:
        registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
        transport = Tagged(RequestsTransport(destinations=registry.destinations))
        with Dispatcher(registry, transport=transport, lease_duration=float(lease)) as d:
            d.run_worker(concurrency=concurrency, poll_interval=0.05)
    """
)


@pytest.fixture(name="dsn")
def _dsn() -> str:
    return postgres_dsn()


@pytest.fixture(name="store")
def _store(dsn: str) -> Iterator[PostgresStorage]:
    store = PostgresStorage(dsn, schema=fresh_pg_schema())
    try:
        yield store
    finally:
        store.drop_schema()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """
    Poll *condition* until it holds; fail with *what* after *timeout* seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def attempts_per_delivery(store: PostgresStorage) -> collections.Counter[int]:
    """
    How many deliveries have how many attempt rows.
    """
    rows = store._read(
        "counting attempts",
        sql.SQL(
            "SELECT d.id, count(a.number) AS n FROM {schema}.deliveries AS d"
            " LEFT JOIN {schema}.delivery_attempts AS a ON a.delivery_id = d.id GROUP BY d.id"
        ).format(schema=sql.Identifier(store.schema)),
    )
    return collections.Counter(int(row["n"]) for row in rows)


def test_four_workers_one_killed_lose_nothing_and_never_double_claim(
    dsn: str, store: PostgresStorage, tmp_path: Any
) -> None:
    """
    Four worker processes drain 5,000 deliveries to a local receiver; one is SIGKILLed mid-run.
    Every event reaches the receiver, none is left pending, and the only repeats are the
    killed worker's claims in flight (sent by it, then by one survivor after its lease
    lapsed): no survivor ever sends an event twice or one another survivor sent.
    """
    with Receiver() as receiver:
        registry = WebhookRegistry(store, destinations=DestinationPolicy.local_testing())
        hook = registry.create(
            ADMIN, name="scale", url=receiver.url_for("/in"), categories=["npsSubmitted"]
        )
        registry.enable(ADMIN, hook.id)
        with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
            results = dispatcher.enqueue_many(
                sample_event("npsSubmitted", unique_id=new_unique_id()) for _ in range(EVENTS)
            )
        expected = {r.event_id for r in results}
        assert len(expected) == EVENTS
        log_path = tmp_path / "workers.log"
        with log_path.open("wb") as log:
            workers = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        WORKER,
                        dsn,
                        store.schema,
                        str(CONCURRENCY),
                        str(lease),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                for lease in [VICTIM_LEASE] + [SURVIVOR_LEASE] * (WORKERS - 1)
            ]
            try:
                victim = workers[0]

                def sent_by_victim() -> int:
                    return sum(r.header("X-Worker") == str(victim.pid) for r in receiver.requests)

                wait_for(lambda: sent_by_victim() >= 200, 60, "the victim's first 200 sends")
                victim.send_signal(signal.SIGKILL)
                victim.wait(10)
                seen_at_kill = len(receiver.requests)

                def received() -> set[str | None]:
                    return {r.header("webhook-id") for r in receiver.requests}

                wait_for(lambda: received() >= expected, 90, "every event at the receiver")
                wait_for(lambda: store.pending_summary()[0] == 0, 30, "nothing pending")
                for worker in workers[1:]:
                    worker.send_signal(signal.SIGTERM)
                codes = [worker.wait(30) for worker in workers[1:]]
            finally:
                for worker in workers:
                    if worker.poll() is None:
                        worker.kill()
                        worker.wait()
        requests = receiver.requests
    output = log_path.read_text()
    assert codes == [0] * (WORKERS - 1), output
    assert victim.returncode == -signal.SIGKILL
    assert 0 < seen_at_kill < EVENTS

    by_event: dict[str | None, list[str | None]] = collections.defaultdict(list)
    for request in requests:
        by_event[request.header("webhook-id")].append(request.header("X-Worker"))
    assert set(by_event) == expected
    senders = {s for sent in by_event.values() for s in sent}
    assert senders == {str(w.pid) for w in workers}  # all four took part
    repeated = {event: sent for event, sent in by_event.items() if len(sent) > 1}
    for event, sent in repeated.items():
        # Sent by the victim (its claim in flight when it died), then once by a survivor.
        assert sent[0] == str(victim.pid), (event, sent)
        assert len(sent) == 2, (event, sent)
        assert sent[1] != str(victim.pid), (event, sent)
    assert len(repeated) <= CONCURRENCY, repeated
    statuses = collections.Counter(d.status for d in store.list_deliveries(limit=EVENTS))
    assert statuses == {DeliveryStatus.DELIVERED: EVENTS}
    # Exactly one recorded attempt each: the victim recorded none it did not finish.
    assert attempts_per_delivery(store) == {1: EVENTS}
    assert store.pending_summary() == (0, None)
