"""
A new delivery's commit (its fsync) may run while its first attempt is sent.

``SQLiteStorage.enqueue_deliveries_overlapped`` runs the statements on the calling
thread (so what was stored or skipped is known at once) and the ``COMMIT`` on the
store's committer thread. These tests pin what must hold regardless:

* the dispatcher writes an outcome, and ``dispatch()`` returns, only once the
  delivery is durable; a commit that fails is the caller's ``StorageError``, and
  nothing of it is left in the file;
* the calling thread's connection is never used while its commit is in flight;
* at ``synchronous="NORMAL"`` (no fsync to hide) the commit runs inline;
* stores without the method (InMemoryStorage) take the plain path.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pendo_webhooks.dispatcher import DeliveryStatus, Outcome
from pendo_webhooks.exceptions import ConflictError, StorageError
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage
from pendo_webhooks.storage._outbox_protocol import SkipReason
from pendo_webhooks.storage._sqlite_core import SQLiteCore
from pendo_webhooks.testing import RecordingTransport

from .test_dispatcher import ADMIN, event, make_world
from .test_outbox_contract import delivery, hook


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(tmp_path / "overlap.sqlite3") as storage:
        yield storage


def rows_in_file(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])
    finally:
        conn.close()


def failing_commit(store: SQLiteStorage) -> None:
    """
    Make *store*'s commits fail the way a full disk would: rolled back, StorageError.
    """

    def commit(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")
        msg = f"writing to {store.path} failed: database or disk is full"
        raise StorageError(msg)

    store._commit = commit  # type: ignore[method-assign]


class TestStore:
    def test_results_are_known_before_the_commit_and_durable_after_wait(
        self, store: SQLiteStorage
    ) -> None:
        """
        Stored / skipped comes back at once; after wait() another connection sees the rows.
        """
        on, off = hook(store), hook(store, enabled=False)
        first = delivery(on.id)
        pending = store.enqueue_deliveries_overlapped(
            [first, delivery(off.id), delivery(on.id, event_id=first.event_id)]
        )
        assert pending.results == [None, SkipReason.DISABLED, SkipReason.DUPLICATE]
        pending.wait()
        assert pending.succeeded()
        assert "committed" in repr(pending)
        assert rows_in_file(store.path) == 1

    def test_the_thread_waits_for_its_own_commit_before_reusing_the_connection(
        self, store: SQLiteStorage
    ) -> None:
        """
        A read right after (no wait()) sees the delivery: the commit is awaited first.
        """
        webhook = hook(store)
        new = delivery(webhook.id)
        store.enqueue_deliveries_overlapped([new])
        assert store.get_delivery(new.id).status is DeliveryStatus.PENDING

    def test_close_waits_for_a_commit_in_flight(self, tmp_path: Path) -> None:
        """
        Closing the store right after an overlapped enqueue keeps the delivery.
        """
        path = tmp_path / "close.sqlite3"
        store = SQLiteStorage(path)
        new = delivery(hook(store).id)
        store.enqueue_deliveries_overlapped([new])
        store.close()
        assert rows_in_file(path) == 1
        with SQLiteStorage(path) as again:
            assert again.get_delivery(new.id).id == new.id

    def test_a_commit_that_fails_raises_on_wait_and_keeps_nothing(
        self, store: SQLiteStorage
    ) -> None:
        """
        A real COMMIT failure (a deferred foreign key) on the committer thread.
        """
        conn = store._connection()
        conn.execute("PRAGMA defer_foreign_keys = ON")
        store._begin(conn)
        conn.execute(
            "INSERT INTO delivery_attempts (delivery_id, number, started_at, duration,"
            " response_excerpt, verdict, reason) VALUES ('dlv_none', 1, '', 0, X'', 'x', 'x')"
        )
        pending = store._commit_soon([None])
        assert not pending.succeeded()
        with pytest.raises(StorageError, match=r"writing to .* failed: FOREIGN KEY"):
            pending.wait()
        assert conn.execute("SELECT count(*) FROM delivery_attempts").fetchone()[0] == 0
        # The connection is usable again, for the store's next write.
        webhook = hook(store)
        assert store.enqueue_deliveries([delivery(webhook.id)]) == [None]

    def test_statements_that_fail_raise_at_once_and_roll_back(self, store: SQLiteStorage) -> None:
        """
        A taken delivery id fails before any commit is started; nothing is kept.
        """
        webhook = hook(store)
        taken = delivery(webhook.id)
        store.enqueue_deliveries([taken])
        with pytest.raises(ConflictError, match=taken.id):
            store.enqueue_deliveries_overlapped(
                [delivery(webhook.id), delivery(webhook.id, id=taken.id)]
            )
        assert rows_in_file(store.path) == 1

    def test_a_sqlite_error_in_the_statements_is_a_storage_error(
        self, store: SQLiteStorage
    ) -> None:
        """
        Any other sqlite3 error rolls back and comes out as StorageError.
        """
        webhook = hook(store)
        store._connection().execute(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON deliveries "
            "BEGIN SELECT RAISE(ABORT, 'no room'); END"
        )
        with pytest.raises(StorageError, match="no room"):
            store.enqueue_deliveries_overlapped([delivery(webhook.id)])
        assert not store._connection().in_transaction

    def test_at_normal_the_commit_runs_inline(self, tmp_path: Path) -> None:
        """
        Without an fsync to hide, no committer thread is started.
        """
        with SQLiteStorage(tmp_path / "n.sqlite3", synchronous="NORMAL") as store:
            webhook = hook(store)
            pending = store.enqueue_deliveries_overlapped([delivery(webhook.id)])
            assert store._committer is None
            assert pending.succeeded()
            failing_commit(store)
            pending = store.enqueue_deliveries_overlapped([delivery(webhook.id)])
            with pytest.raises(StorageError, match="disk is full"):
                pending.wait()
        assert rows_in_file(tmp_path / "n.sqlite3") == 1

    def test_commits_from_many_threads(self, store: SQLiteStorage) -> None:
        """
        Eight threads enqueue overlapped at once: every delivery is stored, once.
        """
        webhook = hook(store)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(25):
                    store.enqueue_deliveries_overlapped([delivery(webhook.id)]).wait()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert rows_in_file(store.path) == 200


class TestDispatcher:
    def test_dispatch_takes_the_overlapped_path_on_sqlite(self, store: SQLiteStorage) -> None:
        """
        dispatch() on a FULL SQLite store: one overlapped enqueue, outcome recorded after it.
        """
        world = make_world(store)
        webhook = world.hook()
        calls: list[int] = []
        original = store.enqueue_deliveries_overlapped

        def spy(deliveries):  # type: ignore[no-untyped-def]
            calls.append(len(deliveries))
            return original(deliveries)

        store.enqueue_deliveries_overlapped = spy  # type: ignore[method-assign]
        with world.dispatcher() as dispatcher:
            result = dispatcher.dispatch(event())
        assert calls == [1]
        outcome = result.for_webhook(webhook.id)
        assert outcome.outcome is Outcome.DELIVERED
        assert outcome.delivery_id is not None
        assert store.get_delivery(outcome.delivery_id).status is DeliveryStatus.DELIVERED
        assert [a.number for a in store.list_attempts(outcome.delivery_id)] == [1]

    def test_several_webhooks_share_one_overlapped_commit(self, store: SQLiteStorage) -> None:
        """
        Two URL webhooks: both attempts (on the dispatch threads) wait for the one commit.
        """
        world = make_world(store)
        hooks = [world.hook(), world.hook(name="Other")]
        with world.dispatcher() as dispatcher:
            result = dispatcher.dispatch(event())
        for webhook in hooks:
            found = result.for_webhook(webhook.id)
            assert found.outcome is Outcome.DELIVERED
            assert found.delivery_id is not None
            assert store.get_delivery(found.delivery_id).status is DeliveryStatus.DELIVERED

    def test_a_failed_commit_is_raised_after_the_attempt(self, store: SQLiteStorage) -> None:
        """
        The request went out meanwhile; dispatch() raises, and no row or outcome is left.
        """
        world = make_world(store)
        world.hook()
        world.hook(name="Other")
        failing_commit(store)
        with world.dispatcher() as dispatcher, pytest.raises(StorageError, match="disk is full"):
            dispatcher.dispatch(event())
        # Both were sent (at least once: a host retrying dispatch() sends the same webhook-id).
        assert len(world.transport.requests) == 2
        assert rows_in_file(store.path) == 0

    def test_a_webhook_disabled_meanwhile_leaves_the_delivery_cancelled(
        self, store: SQLiteStorage
    ) -> None:
        """
        Disabled while the commit runs: the fenced outcome loses, the delivery stays cancelled.
        """
        world = make_world(store)
        webhook = world.hook()
        with world.dispatcher() as dispatcher:
            original = SQLiteCore._commit_soon

            def disable_meanwhile(self, results):  # type: ignore[no-untyped-def]
                pending = original(self, results)
                world.registry.disable(ADMIN, webhook.id)
                return pending

            store._commit_soon = disable_meanwhile.__get__(store)  # type: ignore[method-assign]
            result = dispatcher.dispatch(event())
        found = result.for_webhook(webhook.id)
        assert found.outcome is Outcome.CANCELLED
        assert found.delivery_id is not None
        assert store.get_delivery(found.delivery_id).status is DeliveryStatus.CANCELLED

    def test_in_memory_and_segment_take_the_plain_path(self) -> None:
        """
        A store without the method is used as before.
        """
        world = make_world(InMemoryStorage())
        webhook = world.hook()
        world.transport = RecordingTransport()
        with world.dispatcher() as dispatcher:
            assert not dispatcher._can_overlap([(webhook, delivery(webhook.id))])
            result = dispatcher.dispatch(event())
        assert result.for_webhook(webhook.id).outcome is Outcome.DELIVERED
