"""
Crash safety: worker processes share one SQLite outbox; one is killed with SIGKILL mid-run.

Receipts are counted at the receiver, in this process, never inside the process that is
killed (RELIABILITY.md C3: a killed process takes its own bookkeeping with it).
"""

from __future__ import annotations

import collections
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pendo_webhooks.dispatcher import DeliveryStatus, Dispatcher
from pendo_webhooks.events import new_unique_id
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.testing import RecordingTransport, sample_event

from .servers import Receiver


pytestmark = pytest.mark.slow

EVENTS = 2000
WORKERS = 3
CONCURRENCY = 4  # a worker's claims in flight: the most a kill can duplicate
LEASE = 2.0
WORKER = Path(__file__).with_name("crash_worker.py")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """
    Poll *condition* until it holds; fail with *what* after *timeout* seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_killed_worker_loses_nothing(tmp_path: Path) -> None:
    """
    Three worker processes drain 2,000 deliveries to a local receiver; one is SIGKILLed
    while the receiver is busy. Every event still reaches the receiver, none is left
    pending, duplicates are at most the killed worker's claims in flight, the surviving
    workers stop cleanly on SIGTERM, and the database passes its integrity check.
    """
    path = tmp_path / "outbox.sqlite3"
    admin = Actor("u-1", is_admin=True)
    with Receiver() as receiver:
        with SQLiteStorage(path, synchronous="NORMAL") as storage:
            registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
            hook = registry.create(
                admin, name="crash", url=receiver.url_for("/in"), categories=["npsSubmitted"]
            )
            registry.enable(admin, hook.id)
            with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
                expected = {
                    dispatcher.enqueue(
                        sample_event("npsSubmitted", unique_id=new_unique_id())
                    ).event_id
                    for _ in range(EVENTS)
                }
        logs = [(tmp_path / f"worker-{n}.log").open("wb") for n in range(WORKERS)]
        workers = [
            subprocess.Popen(
                [sys.executable, str(WORKER), "work", str(path), str(CONCURRENCY), str(LEASE)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        try:
            wait_for(lambda: len(receiver.requests) >= 300, 30, "the first 300 receipts")
            workers[0].send_signal(signal.SIGKILL)
            seen_at_kill = len(receiver.requests)
            workers[0].wait(10)

            def received() -> set[str | None]:
                return {r.header("webhook-id") for r in receiver.requests}

            wait_for(lambda: received() >= expected, 30, "every event at the receiver")
            with SQLiteStorage(path) as storage:
                wait_for(lambda: storage.pending_summary()[0] == 0, 15, "nothing pending")
                statuses = collections.Counter(
                    d.status for d in storage.list_deliveries(limit=10_000)
                )
            for worker in workers[1:]:
                worker.send_signal(signal.SIGTERM)
            codes = [worker.wait(15) for worker in workers[1:]]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
            for log in logs:
                log.close()
        requests = receiver.requests
    output = "\n".join((tmp_path / f"worker-{n}.log").read_text() for n in range(WORKERS))
    assert codes == [0] * (WORKERS - 1), output
    assert workers[0].returncode == -signal.SIGKILL
    assert 0 < seen_at_kill < EVENTS
    counts = collections.Counter(r.header("webhook-id") for r in requests)
    assert set(counts) == expected
    duplicates = len(requests) - len(counts)
    assert duplicates <= CONCURRENCY, counts.most_common(CONCURRENCY + 1)
    assert statuses == {DeliveryStatus.DELIVERED: EVENTS}
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


def test_processes_enqueue_and_deliver_at_the_same_time(tmp_path: Path) -> None:
    """
    Two processes enqueue 500 events each while two worker processes deliver from the same
    SQLite file: no "database is locked", every event delivered exactly once (no crash, long
    leases), nothing left pending.
    """
    path = tmp_path / "outbox.sqlite3"
    admin = Actor("u-1", is_admin=True)
    with Receiver() as receiver:
        with SQLiteStorage(path) as storage:
            registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
            hook = registry.create(
                admin, name="busy", url=receiver.url_for("/in"), categories=["npsSubmitted"]
            )
            registry.enable(admin, hook.id)
        log_path = tmp_path / "processes.log"
        with log_path.open("wb") as log:
            commands = [["enqueue", str(path), "500"]] * 2 + [["work", str(path), "4", "30"]] * 2
            processes = [
                subprocess.Popen(
                    [sys.executable, str(WORKER), *command], stdout=log, stderr=subprocess.STDOUT
                )
                for command in commands
            ]
            try:
                enqueuers, workers = processes[:2], processes[2:]
                assert [p.wait(60) for p in enqueuers] == [0, 0], log_path.read_text()
                wait_for(lambda: len(receiver.requests) >= 1000, 30, "1,000 receipts")
                with SQLiteStorage(path) as storage:
                    wait_for(lambda: storage.pending_summary()[0] == 0, 15, "nothing pending")
                    statuses = collections.Counter(
                        d.status for d in storage.list_deliveries(limit=10_000)
                    )
                for worker in workers:
                    worker.send_signal(signal.SIGTERM)
                assert [w.wait(15) for w in workers] == [0, 0], log_path.read_text()
            finally:
                for process in processes:
                    if process.poll() is None:
                        process.kill()
                        process.wait()
        requests = receiver.requests
    output = log_path.read_text()
    assert "locked" not in output
    assert output == ""
    ids = [r.header("webhook-id") for r in requests]
    assert len(ids) == len(set(ids)) == 1000
    assert statuses == {DeliveryStatus.DELIVERED: 1000}
