"""
The OutboxStore contract: every backend passes these tests.

The contract's tests ship in :mod:`pendo_webhooks.testing.storage_contract` (a host runs
them on its own store); the classes here run them on every backend through conftest's
``storage`` fixture. The model-based tests and those about one backend's internals stay
here, with the helpers other test modules build on.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from pendo_webhooks.dispatcher import Delivery, DeliveryStatus
from pendo_webhooks.exceptions import (
    StorageError,
)
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.testing import FrozenClock
from pendo_webhooks.testing.storage_contract import (
    DeliveryLogContract,
    EnqueueFirstSeenContract,
    HealthStoreContract,
    OutboxQueueContract,
)
from pendo_webhooks.testing.storage_contract import _attempt_for as attempt_for
from pendo_webhooks.testing.storage_contract import _claim as claim
from pendo_webhooks.testing.storage_contract import _delivery as delivery
from pendo_webhooks.testing.storage_contract import _finished as finished
from pendo_webhooks.testing.storage_contract import _hook as hook
from pendo_webhooks.testing.storage_contract import _run_to as run_to

from .conftest import START


__all__ = ["LEASE", "T0", "attempt_for", "claim", "delivery", "finished", "hook", "run_to"]

T0 = START
LEASE = timedelta(seconds=60)


class TestOutboxQueue(OutboxQueueContract):
    """
    The OutboxQueue contract (enqueue, claim, record, release, cancel), on every backend.
    """


class TestHealthStore(HealthStoreContract):
    """
    The optional HealthStore contract, on every backend.
    """


class TestDeliveryLog(DeliveryLogContract):
    """
    The DeliveryLog contract (reads, redeliver, purge), on every backend.
    """


class TestClaimFirstSeenAndEnqueue(EnqueueFirstSeenContract):
    """
    ``Storage.claim_first_seen_and_enqueue``, on every backend.
    """


# -- a model-based test: random sequences of outbox calls against a plain model -----------------


class OutboxMachine(RuleBasedStateMachine):
    """
    Enqueue, claim, record, release, cancel and time passing, against a model of which
    deliveries are pending, finished and leased by whom.
    """

    claimed = Bundle("claimed")

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.clock = FrozenClock(T0)
        self.webhook = hook(self.store)
        self.status: dict[str, DeliveryStatus] = {}
        self.leases: dict[str, tuple[str, datetime]] = {}

    def make_store(self) -> Storage:
        return InMemoryStorage()

    @rule(n=st.integers(1, 4))
    def enqueue(self, n: int) -> None:
        rows = [delivery(self.webhook.id, next_attempt_at=self.clock()) for _ in range(n)]
        assert self.store.enqueue_deliveries(rows) == [None] * n
        self.status.update({r.id: DeliveryStatus.PENDING for r in rows})

    @rule(target=claimed, owner=st.sampled_from(["a", "b"]), limit=st.integers(1, 3))
    def claim(self, owner: str, limit: int) -> object:
        now = self.clock()
        taken = claim(self.store, owner=owner, now=now, limit=limit)
        free = [
            i
            for i, s in self.status.items()
            if s is DeliveryStatus.PENDING and (i not in self.leases or self.leases[i][1] <= now)
        ]
        assert len(taken) == min(limit, len(free))
        for d in taken:
            assert d.id in free
            self.leases[d.id] = (owner, now + LEASE)
        return multiple(*[(d, owner) for d in taken])

    @rule(item=consumes(claimed), delivered=st.booleans())
    def record(self, item: tuple[Delivery, str], delivered: bool) -> None:
        claimed, owner = item
        now = self.clock()
        status = DeliveryStatus.DELIVERED if delivered else DeliveryStatus.FAILED
        written = self.store.record_outcome(
            finished(claimed, status, now), None, owner=owner, now=now
        )
        lease = self.leases.get(claimed.id)
        expected = (
            self.status[claimed.id] is DeliveryStatus.PENDING
            and lease is not None
            and lease[0] == owner
            and lease[1] >= now
        )
        assert written == expected
        if written:
            self.status[claimed.id] = status
            del self.leases[claimed.id]

    @rule(item=consumes(claimed))
    def release(self, item: tuple[Delivery, str]) -> None:
        claimed, owner = item
        lease = self.leases.get(claimed.id)
        released = self.store.release_claims([claimed.id], owner=owner, now=self.clock())
        pending = self.status[claimed.id] is DeliveryStatus.PENDING
        mine = pending and lease is not None and lease[0] == owner
        assert released == int(mine)
        if mine:
            del self.leases[claimed.id]

    @rule()
    def cancel(self) -> None:
        pending = [i for i, s in self.status.items() if s is DeliveryStatus.PENDING]
        count = self.store.cancel_deliveries(self.webhook.id, reason="gone", now=self.clock())
        assert count == len(pending)
        for delivery_id in pending:
            self.status[delivery_id] = DeliveryStatus.CANCELLED
            self.leases.pop(delivery_id, None)

    @rule(seconds=st.sampled_from([1, 30, 59, 60, 61, 600]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def agrees_with_the_model(self) -> None:
        pending = [i for i, s in self.status.items() if s is DeliveryStatus.PENDING]
        assert self.store.pending_summary()[0] == len(pending)
        for delivery_id, status in self.status.items():
            assert self.store.get_delivery(delivery_id).status is status


class SQLiteOutboxMachine(OutboxMachine):
    """
    The same, on a fresh SQLite file per example.
    """

    def make_store(self) -> Storage:
        self.directory = tempfile.TemporaryDirectory()
        return SQLiteStorage(Path(self.directory.name) / "outbox.sqlite3")

    def teardown(self) -> None:
        assert isinstance(self.store, SQLiteStorage)
        self.store.close()
        self.directory.cleanup()


_MODEL_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
OutboxMachine.TestCase.settings = _MODEL_SETTINGS
SQLiteOutboxMachine.TestCase.settings = _MODEL_SETTINGS
TestOutboxModel = OutboxMachine.TestCase
TestSQLiteOutboxModel = SQLiteOutboxMachine.TestCase


def test_memory_heap_stays_small_under_churn() -> None:
    """
    Claiming and releasing one delivery thousands of times keeps it claimable (the stale
    heap entries are compacted away).
    """
    store = InMemoryStorage()
    webhook = hook(store)
    store.enqueue_deliveries([delivery(webhook.id)])
    for _ in range(3000):
        (claimed,) = claim(store)
        assert store.release_claims([claimed.id], owner="w1", now=T0) == 1
    assert len(store._due) < 1100
    assert [d.webhook_id for d in claim(store)] == [webhook.id]


def test_sqlite_rows_that_do_not_load_raise_storage_error(tmp_path: Path) -> None:
    """
    A row that cannot be a Delivery (edited by hand, say) raises StorageError, and a
    constraint failure other than a taken id surfaces as StorageError too.
    """
    with SQLiteStorage(tmp_path / "outbox.sqlite3") as store:
        webhook = hook(store)
        new = delivery(webhook.id)
        store.enqueue_deliveries([new])
        raw = sqlite3.connect(store.path)
        raw.execute("UPDATE deliveries SET category = 'pageViewed'")
        raw.execute(
            "CREATE TRIGGER no_more BEFORE INSERT ON deliveries "
            "BEGIN SELECT RAISE(ABORT, 'no more deliveries'); END"
        )
        raw.commit()
        raw.close()
        with pytest.raises(StorageError, match="not valid"):
            store.get_delivery(new.id)
        with pytest.raises(StorageError, match="no more deliveries"):
            store.enqueue_deliveries([delivery(webhook.id)])


def test_thread_safety_of_memory_claims_and_records() -> None:
    """
    Claims and records racing from many threads on one InMemoryStorage leave every
    delivery delivered exactly once.
    """
    store = InMemoryStorage()
    webhook = hook(store)
    store.enqueue_deliveries([delivery(webhook.id) for _ in range(300)])
    recorded: list[str] = []
    lock = threading.Lock()

    def work(owner: str) -> None:
        while batch := claim(store, owner=owner, limit=3):
            for claimed in batch:
                done = finished(claimed, DeliveryStatus.DELIVERED, T0)
                assert store.record_outcome(done, None, owner=owner, now=T0)
                with lock:
                    recorded.append(claimed.id)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(recorded) == sorted({*recorded})
    assert len(recorded) == 300
    assert store.pending_summary() == (0, None)
