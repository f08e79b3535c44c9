"""
Group commit: enqueue calls that overlap share one SQLite transaction, and nothing else changes.

The groups are made deterministic by holding the leader (or SQLite's write lock) until the
followers are queued; waiting for them is a bounded wait on a condition, not a sleep.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from pendo_webhooks.exceptions import ConflictError
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.storage._sqlite_core import PID
from pendo_webhooks.storage._sqlite_group import Coalescer
from pendo_webhooks.storage._sqlite_outbox import SQLiteOutbox

from .test_outbox_contract import delivery, hook


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until *condition* holds: threads reaching a known point."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.001)


class Probe:
    """A Coalescer over doubling functions; the first call alone blocks until released."""

    def __init__(self, *, fail_group: bool = False) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.groups: list[list[int]] = []
        self.alone: list[int] = []
        self.fail_group = fail_group
        self.coalescer: Coalescer[int, int] = Coalescer(self.group, alone=self.one)

    def one(self, item: int) -> int:
        self.alone.append(item)
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(30)
        if item < 0:
            raise ValueError(f"negative {item}")
        return item * 2

    def group(self, items: list[int]) -> list[int]:
        self.groups.append(items)
        if self.fail_group:
            raise ValueError("the group failed")
        return [i * 2 for i in items]

    def waiting(self) -> int:
        return len(self.coalescer._queue)

    def run(self, first: int, others: list[int]) -> list[Future[int]]:
        """Call with *first* (which blocks), queue *others* behind it, then release."""
        pool = ThreadPoolExecutor(len(others) + 1)
        futures = [pool.submit(self.coalescer, first)]
        assert self.entered.wait(30)
        futures += [pool.submit(self.coalescer, item) for item in others]
        wait_until(lambda: self.waiting() == len(others), "the followers are queued")
        self.release.set()
        pool.shutdown(wait=True)
        return futures


def test_a_call_alone_runs_alone() -> None:
    probe = Probe()
    probe.entered.set()  # nothing blocks
    assert probe.coalescer(4) == 8
    assert probe.alone == [4]
    assert probe.groups == []
    assert repr(probe.coalescer) == "<Coalescer(0 waiting)>"


def test_callers_that_overlap_share_one_group() -> None:
    probe = Probe()
    futures = probe.run(1, [2, 3, 4])
    assert [f.result() for f in futures] == [2, 4, 6, 8]
    assert probe.alone == [1]
    assert len(probe.groups) == 1
    assert sorted(probe.groups[0]) == [2, 3, 4]
    assert probe.waiting() == 0
    assert probe.coalescer(5) == 10  # nobody leads any more: the next call runs alone


def test_one_caller_waiting_runs_alone_next() -> None:
    probe = Probe()
    futures = probe.run(1, [2])
    assert [f.result() for f in futures] == [2, 4]
    assert probe.alone == [1, 2]
    assert probe.groups == []


def test_a_failed_group_runs_each_call_alone_with_its_own_error() -> None:
    probe = Probe(fail_group=True)
    futures = probe.run(1, [2, -3, 4])
    assert futures[0].result() == 2
    assert futures[1].result() == 4
    with pytest.raises(ValueError, match="negative -3"):
        futures[2].result()
    assert futures[3].result() == 8
    assert sorted(probe.alone) == [-3, 1, 2, 4]
    assert len(probe.groups) == 1


def test_a_failing_leader_still_hands_over() -> None:
    probe = Probe()
    futures = probe.run(-1, [2, 3])
    with pytest.raises(ValueError, match="negative -1"):
        futures[0].result()
    assert [f.result() for f in futures[1:]] == [4, 6]
    assert sorted(probe.groups[0]) == [2, 3]


def test_a_base_exception_in_a_group_wakes_every_member() -> None:
    class Stop(BaseException):
        pass

    def group(items: list[int]) -> list[int]:
        if 2 in items:
            raise Stop
        return [i * 2 for i in items]

    probe = Probe()
    probe.coalescer = Coalescer(group, alone=probe.one)
    pool = ThreadPoolExecutor(4)
    first = pool.submit(probe.coalescer, 1)
    assert probe.entered.wait(30)
    others = [pool.submit(probe.coalescer, i) for i in (2, 3, 4)]
    wait_until(lambda: probe.waiting() == 3, "the followers are queued")
    probe.release.set()
    pool.shutdown(wait=True)
    assert first.result() == 2
    # The group's leader (whichever queued first) raised Stop; the others ran alone.
    stopped = 0
    for item, future in zip((2, 3, 4), others, strict=True):
        try:
            assert future.result() == item * 2
        except Stop:
            stopped += 1
    assert stopped == 1
    assert probe.coalescer(5) == 10


# -- on SQLite -----------------------------------------------------------------------------


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(tmp_path / "group.sqlite3") as storage:
        yield storage


def commits_of(store: SQLiteStorage) -> list[str]:
    """Record the COMMITs of every connection the store opens from now on."""
    seen: list[str] = []
    original = store._open

    def traced(mode: str) -> object:
        slot = original(mode)
        slot.conn.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
        return slot

    store._open = traced  # type: ignore[method-assign]
    return seen


def held_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the file's write lock until it commits."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_sqlite_enqueues_at_once_share_one_commit(store: SQLiteStorage) -> None:
    webhook = hook(store)
    calls = [[delivery(webhook.id)] for _ in range(5)] + [[]]
    duplicate = delivery(webhook.id, event_id=calls[0][0].event_id)
    calls.append([duplicate])
    commits = commits_of(store)
    blocker = held_write_lock(store.path)
    pool = ThreadPoolExecutor(len(calls))
    futures = [pool.submit(store.enqueue_deliveries, calls[0])]
    coalescer = store._enqueues
    wait_until(lambda: not coalescer._queue and coalescer._leading, "the first call leads")
    futures += [pool.submit(store.enqueue_deliveries, c) for c in calls[1:]]
    wait_until(lambda: len(coalescer._queue) == len(calls) - 1, "the others are queued")
    blocker.execute("COMMIT")
    blocker.close()
    pool.shutdown(wait=True)
    assert [f.result() for f in futures] == [[None]] * 5 + [[], ["duplicate"]]
    assert len(commits) == 2  # the first call alone, then everyone else together
    stored = {d.id for d in store.list_deliveries(limit=100)}
    assert stored == {c[0].id for c in calls[:5]}


def test_sqlite_group_with_a_taken_id_fails_only_that_call(store: SQLiteStorage) -> None:
    webhook = hook(store)
    taken = delivery(webhook.id)
    assert store.enqueue_deliveries([taken]) == [None]
    calls = [[delivery(webhook.id)] for _ in range(3)]
    reused = delivery(webhook.id, id=taken.id)
    calls.insert(2, [reused])
    blocker = held_write_lock(store.path)
    pool = ThreadPoolExecutor(len(calls))
    futures = [pool.submit(store.enqueue_deliveries, calls[0])]
    coalescer = store._enqueues
    wait_until(lambda: not coalescer._queue and coalescer._leading, "the first call leads")
    futures += [pool.submit(store.enqueue_deliveries, c) for c in calls[1:]]
    wait_until(lambda: len(coalescer._queue) == len(calls) - 1, "the others are queued")
    blocker.execute("COMMIT")
    blocker.close()
    pool.shutdown(wait=True)
    with pytest.raises(ConflictError):
        futures[2].result()
    assert [futures[i].result() for i in (0, 1, 3)] == [[None]] * 3
    stored = {d.id for d in store.list_deliveries(limit=100)}
    assert stored == {taken.id} | {c[0].id for c in calls if c[0] is not reused}


def test_sqlite_outbox_group_splits_results_by_call(store: SQLiteStorage) -> None:
    webhook = hook(store)
    a, b, c = (delivery(webhook.id) for _ in range(3))
    found = SQLiteOutbox._enqueue_group(store, [[a, b], [], [c]])
    assert found == [[None, None], [], [None]]


def test_a_forked_child_starts_a_coalescer_of_its_own(store: SQLiteStorage) -> None:
    webhook = hook(store)
    parent = store._enqueues
    parent._leading = True  # as if a thread of the parent led a group at the fork
    pid = PID[0]
    PID[0] = -1  # what the at-fork hook does in the child
    try:
        first = delivery(webhook.id)
        assert store.enqueue_deliveries([first]) == [None]
        assert store._enqueues is not parent
    finally:
        PID[0] = pid
    parent._leading = False
    assert store.get_delivery(first.id).id == first.id


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_the_process_id_follows_a_fork() -> None:
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child, which exits at once
        os._exit(0 if PID[0] == os.getpid() else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert PID[0] == os.getpid()
