"""
No first-seen event is lost between the sighting and the outbox (issue 13).

``FirstSeenTracker.observe_and_dispatch`` (and its batch and enqueue-only forms) write the
sighting and the deliveries of the events it fires in one transaction: a failure before the
commit leaves nothing recorded, so the next call fires again; after it, the deliveries are in
the outbox. Tests taking ``storage`` run against every backend (see conftest); the crash tests
SIGKILL a host process at seeded random points and replay its input.
"""

from __future__ import annotations

import collections
import json
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pendo_webhooks import testing
from pendo_webhooks.dispatcher import Delivery, DeliveryStatus, Dispatcher, Outcome
from pendo_webhooks.events import App, Subscription
from pendo_webhooks.exceptions import ConfigurationError, StorageError
from pendo_webhooks.pipeline import FirstSeenTracker, Observation
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.testing import RecordingTransport

from .conftest import START, FrozenClock, fresh_pg_schema, postgres_dsn


APP = App(id=-323232, name="test_application", platform="web")
SUBSCRIPTION = Subscription(id=4802463602049999, name="test_application")
ADMIN = Actor("admin-1", is_admin=True)
WORKER = Path(__file__).with_name("crash_worker.py")


def obs(visitor: str = "v-1", account: str | None = "acme", **extra: Any) -> Observation:
    return Observation(
        visitor_id=visitor,
        account_id=account,
        app=APP,
        subscription=SUBSCRIPTION,
        at=START,
        **extra,
    )


def subscribe(storage: Storage, *categories: str) -> Webhook:
    """
    An enabled URL webhook subscribed to *categories* (both first-seen ones by default).
    """
    registry = WebhookRegistry(storage, clock=FrozenClock())
    hook = registry.create(
        ADMIN,
        name="CRM",
        url="https://hooks.example.com/crm",
        categories=set(categories or ("visitorCreated", "accountCreated")),
    )
    return registry.enable(ADMIN, hook.id)


def outbox(storage: Storage) -> collections.Counter[tuple[str, str]]:
    """
    (category, visitor or account id) of every delivery in the outbox, counted.
    """
    found: collections.Counter[tuple[str, str]] = collections.Counter()
    for d in storage.list_deliveries(limit=100_000):
        body = json.loads(d.body)
        found[
            str(d.category),
            body["visitorId" if body["event"] == "visitorCreated" else "accountId"],
        ] += 1
    return found


def fail_once_inside(monkeypatch: pytest.MonkeyPatch, storage: Storage) -> list[int]:
    """
    Make the next atomic write fail with "database is locked" INSIDE its transaction, after
    the keys were claimed and the deliveries planned; return a list that counts failures.
    """
    atomic = storage.claim_first_seen_and_enqueue
    failures: list[int] = []

    def once(
        keys: Collection[str],
        *,
        at: datetime,
        deliveries: Callable[[set[str]], Sequence[Delivery]],
        connection: object | None = None,
    ) -> tuple[set[str], list[str | None]]:
        def locked(claimed: set[str]) -> Sequence[Delivery]:
            made = deliveries(claimed)
            if not failures:
                failures.append(len(made))
                raise StorageError("database is locked")
            return made

        return atomic(keys, at=at, deliveries=locked, connection=connection)

    monkeypatch.setattr(storage, "claim_first_seen_and_enqueue", once)
    return failures


@pytest.fixture(name="dispatcher")
def _dispatcher(storage: Storage) -> Iterator[Dispatcher]:
    with Dispatcher(WebhookRegistry(storage), transport=RecordingTransport()) as dispatcher:
        yield dispatcher


class TestAtomicObserve:
    def test_the_sighting_and_its_deliveries_are_stored_and_attempted(
        self, storage: Storage, dispatcher: Dispatcher
    ) -> None:
        """
        observe_and_dispatch returns one result per event, each delivered; a second
        sighting of the same visitor fires nothing and stores nothing more.
        """
        hook = subscribe(storage)
        tracker = FirstSeenTracker(storage)
        results = tracker.observe_and_dispatch(obs(), dispatcher)
        assert [(r.category, r.for_webhook(hook.id).outcome) for r in results] == [
            ("visitorCreated", Outcome.DELIVERED),
            ("accountCreated", Outcome.DELIVERED),
        ]
        assert tracker.observe_and_dispatch(obs(), dispatcher) == []
        assert FirstSeenTracker(storage).observe_and_dispatch(obs(), dispatcher) == []
        assert outbox(storage) == {("visitorCreated", "v-1"): 1, ("accountCreated", "acme"): 1}

    @pytest.mark.parametrize("batch", [False, True])
    def test_a_failed_enqueue_records_nothing_and_the_retry_fires(
        self,
        storage: Storage,
        dispatcher: Dispatcher,
        monkeypatch: pytest.MonkeyPatch,
        batch: bool,
    ) -> None:
        """
        "database is locked" inside the atomic transaction: the call raises, neither the
        sighting nor a delivery is stored, and calling again fires the events; a third call
        fires nothing (issue 13: this lost 20 of 20 events).
        """
        subscribe(storage)
        tracker = FirstSeenTracker(storage)
        failures = fail_once_inside(monkeypatch, storage)
        sightings = [obs(f"v-{n}", "acme") for n in range(10)]

        def call() -> list[Any]:
            if batch:
                return tracker.observe_many_and_dispatch(sightings, dispatcher)
            return [r for o in sightings for r in tracker.observe_and_dispatch(o, dispatcher)]

        with pytest.raises(StorageError, match="database is locked"):
            call()
        assert failures[0] >= 1
        assert storage.first_seen_origin("v:v-0") is None
        assert storage.first_seen_origin("a:acme") is None
        assert outbox(storage) == {}
        assert len(call()) == 11
        assert call() == []
        expected = {("visitorCreated", f"v-{n}"): 1 for n in range(10)}
        assert outbox(storage) == {**expected, ("accountCreated", "acme"): 1}

    def test_a_failure_after_the_commit_leaves_the_deliveries_to_a_worker(
        self, storage: Storage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        If anything fails after the commit (here: the attempt), the call raises, but the
        deliveries are in the outbox; calling again fires nothing, and a worker delivers
        them once the lease lapses.
        """
        hook = subscribe(storage, "visitorCreated")
        clock = testing.FrozenClock(START)
        transport = RecordingTransport()
        dispatcher = Dispatcher(
            WebhookRegistry(storage), transport=transport, clock=clock, sleep=clock.sleep
        )
        tracker = FirstSeenTracker(storage)

        def broken(*args: object, **kwargs: object) -> list[Any]:
            raise RuntimeError("the process dies here")

        with monkeypatch.context() as patch:
            patch.setattr(dispatcher._enqueuer, "_settle", broken)
            with pytest.raises(RuntimeError):
                tracker.observe_and_dispatch(obs(account=None), dispatcher)
        assert tracker.observe_and_dispatch(obs(account=None), dispatcher) == []
        (stored,) = storage.list_deliveries()
        assert (stored.webhook_id, stored.status) == (hook.id, DeliveryStatus.PENDING)
        assert transport.requests == []
        clock.advance(dispatcher.lease_duration)
        assert dispatcher.drain(timeout=10).delivered == 1
        assert json.loads(transport.requests[0].body)["visitorId"] == "v-1"

    def test_enqueue_only_leaves_them_pending_for_a_worker(
        self, storage: Storage, dispatcher: Dispatcher
    ) -> None:
        """
        observe_many_and_enqueue stores without attempting; the worker sends them.
        """
        hook = subscribe(storage)
        tracker = FirstSeenTracker(storage)
        results = tracker.observe_many_and_enqueue([obs("a"), obs("b"), obs("a")], dispatcher)
        assert [(r.category, r.for_webhook(hook.id).outcome) for r in results] == [
            ("visitorCreated", Outcome.PENDING),
            ("accountCreated", Outcome.PENDING),
            ("visitorCreated", Outcome.PENDING),
        ]
        assert tracker.observe_and_enqueue(obs("b"), dispatcher) == []
        assert dispatcher.drain(timeout=10).delivered == 3

    def test_parent_accounts_and_unsubscribed_categories(
        self, storage: Storage, dispatcher: Dispatcher
    ) -> None:
        """
        With parent accounts, the pair's event is delivered too; an event no webhook
        subscribes to is recorded as fired, with no delivery.
        """
        hook = subscribe(storage, "parentChildAccountCreated")
        tracker = FirstSeenTracker(storage, parent_accounts=True)
        results = tracker.observe_and_dispatch(obs(parent_account_id="corp"), dispatcher)
        assert [r.category for r in results] == [
            "visitorCreated",
            "accountCreated",
            "parentChildAccountCreated",
        ]
        assert [len(r.outcomes) for r in results] == [0, 0, 1]
        assert results[2].for_webhook(hook.id).outcome is Outcome.DELIVERED
        assert storage.first_seen_origin("v:v-1") == "app"

    def test_a_host_connection_is_refused_by_stores_that_cannot_use_it(
        self, storage: Storage, dispatcher: Dispatcher
    ) -> None:
        """
        observe_and_enqueue(connection=...) on a store other than PostgreSQL raises
        ConfigurationError and records nothing.
        """
        if not isinstance(storage, InMemoryStorage | SQLiteStorage):
            pytest.skip("PostgresStorage takes a host connection (TestPostgresHostConnection)")
        tracker = FirstSeenTracker(storage)
        with pytest.raises(ConfigurationError, match="PostgresStorage"):
            tracker.observe_and_enqueue(obs(), dispatcher, connection=object())
        assert storage.first_seen_origin("v:v-1") is None


# -- PostgreSQL: through the host's own connection ----------------------------------------------


@pytest.fixture(name="pg")
def _pg() -> Iterator[tuple[Any, str]]:
    dsn = postgres_dsn()
    from pendo_webhooks.storage import PostgresStorage  # noqa: PLC0415 - needs psycopg

    storage = PostgresStorage(dsn, schema=fresh_pg_schema(), max_connections=4)
    try:
        yield storage, dsn
    finally:
        storage.drop_schema()
        storage.close()


class TestPostgresHostConnection:
    def test_the_sighting_commits_and_rolls_back_with_the_host(self, pg: tuple[Any, str]) -> None:
        """
        Inside the host's transaction, sighting and deliveries are invisible until the host
        commits; a rollback takes both, so the next call fires again.
        """
        import psycopg  # noqa: PLC0415 - only with the postgres extra

        storage, dsn = pg
        subscribe(storage, "visitorCreated")
        tracker = FirstSeenTracker(storage, cache_size=0)
        with Dispatcher(WebhookRegistry(storage), transport=RecordingTransport()) as dispatcher:
            with psycopg.connect(dsn) as host:
                host.execute("SELECT 1")  # the host's business change
                assert len(tracker.observe_and_enqueue(obs(), dispatcher, connection=host)) == 2
                assert storage.first_seen_origin("v:v-1") is None
                host.rollback()
                assert storage.first_seen_origin("v:v-1") is None
                assert outbox(storage) == {}
                assert len(tracker.observe_and_enqueue(obs(), dispatcher, connection=host)) == 2
                host.commit()
            assert outbox(storage) == {("visitorCreated", "v-1"): 1}
            assert tracker.observe_and_enqueue(obs(), dispatcher) == []

    @pytest.mark.parametrize("autocommit", [False, True])
    def test_an_idle_connection(self, pg: tuple[Any, str], autocommit: bool) -> None:
        """
        An idle connection: without autocommit, the host's transaction is opened and left
        for the host to end; with autocommit, the two writes commit together at once.
        """
        import psycopg  # noqa: PLC0415 - only with the postgres extra
        from psycopg.pq import TransactionStatus  # noqa: PLC0415

        storage, dsn = pg
        subscribe(storage, "visitorCreated")
        tracker = FirstSeenTracker(storage, cache_size=0)
        with (
            Dispatcher(WebhookRegistry(storage), transport=RecordingTransport()) as dispatcher,
            psycopg.connect(dsn, autocommit=autocommit) as host,
        ):
            tracker.observe_and_enqueue(obs(), dispatcher, connection=host)
            status = host.info.transaction_status
            if autocommit:
                assert status is TransactionStatus.IDLE
            else:
                assert status is TransactionStatus.INTRANS
                assert storage.first_seen_origin("v:v-1") is None
                host.commit()
        assert outbox(storage) == {("visitorCreated", "v-1"): 1}

    def test_a_failure_inside_leaves_the_host_transaction_clean(
        self, pg: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        A failure inside the atomic write rolls back only its savepoint: the host's own
        change survives and commits, without the sighting; the retry fires.
        """
        import psycopg  # noqa: PLC0415 - only with the postgres extra

        storage, dsn = pg
        subscribe(storage, "visitorCreated")
        tracker = FirstSeenTracker(storage, cache_size=0)
        fail_once_inside(monkeypatch, storage)
        with (
            Dispatcher(WebhookRegistry(storage), transport=RecordingTransport()) as dispatcher,
            psycopg.connect(dsn) as host,
        ):
            host.execute("CREATE TEMP TABLE orders (id int)")
            host.execute("INSERT INTO orders VALUES (1)")
            with pytest.raises(StorageError, match="locked"):
                tracker.observe_and_enqueue(obs(), dispatcher, connection=host)
            assert host.execute("SELECT count(*) FROM orders").fetchone() == (1,)
            host.commit()
            assert storage.first_seen_origin("v:v-1") is None
            assert len(tracker.observe_and_enqueue(obs(), dispatcher, connection=host)) == 2
            host.commit()
        assert outbox(storage) == {("visitorCreated", "v-1"): 1}


# -- crash safety: SIGKILL at seeded random points, replay from the start -----------------------

VISITORS = 400
KILLS = 25
ACCOUNTS = 7  # visitor i is in account i % 7 (crash_worker.py)


def run_host(where: str, point: str, count: int, log: Path) -> int:
    """
    Run one host process over the whole input; return its exit code.
    """
    with log.open("ab") as out:
        child = subprocess.run(
            [sys.executable, str(WORKER), "observe", where, str(VISITORS), point, str(count)],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    return child.returncode


def kill_and_replay(storage: Storage, where: str, tmp_path: Path, seed: int) -> None:
    """
    Kill the host KILLS times at seeded random points, replaying the input from the first
    visitor each time, then once more to the end; every visitor's visitorCreated (and
    every account's accountCreated) must then be in the outbox.
    """
    subscribe(storage)
    rng = random.Random(seed)
    log = tmp_path / "hosts.log"
    points: collections.Counter[str] = collections.Counter()
    for _ in range(KILLS):
        # Each call is a batch of 4 visitors (crash_worker.BATCH) and sends up to 8 requests.
        point = rng.choice(["inside", "committed", "sending"])
        code = run_host(where, point, rng.randint(1, 16 if point == "sending" else 5), log)
        if code == -signal.SIGKILL:
            points[point] += 1
        else:  # the input ran out before the kill point: nothing left to interrupt
            assert code == 0, log.read_text()
    assert run_host(where, "none", 0, log) == 0, log.read_text()
    assert sum(points.values()) >= KILLS // 2, points
    assert set(points) == {"inside", "committed", "sending"}, points
    found = outbox(storage)
    missing = [v for v in range(VISITORS) if found[("visitorCreated", f"visitor-{v}")] == 0]
    assert missing == []
    assert all(found[("accountCreated", f"acct-{a}")] >= 1 for a in range(ACCOUNTS))
    # A kill after the commit leaves the sighting recorded, so the replay fires nothing
    # again; a kill before it leaves nothing: each is in the outbox exactly once.
    assert max(found.values()) == 1, found.most_common(3)
    assert len(found) == VISITORS + ACCOUNTS


@pytest.mark.slow
def test_sqlite_host_killed_at_random_loses_no_first_sighting(tmp_path: Path) -> None:
    """
    A host observing 400 new visitors on SQLite is SIGKILLed 25 times at seeded random
    points (inside the atomic transaction, just after its commit, mid-request) and
    replays its input from the start each time: every visitor's visitorCreated is in the
    outbox, once.
    """
    path = tmp_path / "webhooks.sqlite3"
    with SQLiteStorage(path) as storage:
        kill_and_replay(storage, str(path), tmp_path, seed=13)


@pytest.mark.slow
def test_postgres_host_killed_at_random_loses_no_first_sighting(
    pg: tuple[Any, str], tmp_path: Path
) -> None:
    """
    The same on PostgreSQL.
    """
    storage, dsn = pg
    kill_and_replay(storage, f"{dsn}#{storage.schema}", tmp_path, seed=31)
