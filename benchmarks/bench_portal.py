"""
The settings page's list (with "Needs attention") on a SQLite store with a busy outbox.

Run: ``python benchmarks/bench_portal.py [--webhooks 50] [--deliveries 10000] [--dead 2000]
[--loads 20]``. Prints figures; nothing here fails.

One ``SQLiteStorage`` file in a temporary directory: *webhooks* enabled URL webhooks, each
with a health row (every fifth one failing), and *deliveries* deliveries with 1 KiB bodies
spread evenly over them, of which *dead* went dead in the last six days and the rest were
delivered. The deliveries are enqueued through the store, then given their final state by
one ``UPDATE`` on the file (the outcome path is not what is measured here). Then ``GET /``
of the ``Portal`` (as a WSGI server calls it, from this thread) is timed *loads* times,
after one warm-up load; the SQL statements one load runs are counted with sqlite3's trace
callback on the store's connection of this thread. Then the store's reads the page's "Needs
attention" makes are timed on their own (best of *loads*): each webhook's health one by one
against ``health_of`` (one read), and the newest 1,000 dead deliveries (with their bodies)
against ``count_by_webhook`` (one count); the latter of each only where the store has it.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

from pendo_webhooks.dispatcher import Delivery, DeliveryStatus, Dispatcher, WebhookHealth
from pendo_webhooks.portal import Portal
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.testing import FrozenClock, RecordingTransport


ADMIN = Actor("bench-admin", is_admin=True)
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _fill(storage: SQLiteStorage, path: Path, args: argparse.Namespace) -> list[str]:
    registry = WebhookRegistry(storage, clock=FrozenClock(NOW - timedelta(days=30)))
    ids = []
    for n in range(args.webhooks):
        hook = registry.create(
            ADMIN,
            name=f"Hook {n}",
            url=f"https://hooks.example.com/{n}",
            categories={"npsSubmitted"},
        )
        ids.append(registry.enable(ADMIN, hook.id).id)
        failing = n % 5 == 0
        health = WebhookHealth(
            webhook_id=hook.id,
            failing_since=NOW - timedelta(hours=3) if failing else None,
            last_failure_at=NOW - timedelta(hours=1) if failing else None,
            last_success_at=NOW - timedelta(days=1),
            failures=4 if failing else 0,
            streak=4 if failing else 0,
        )
        storage.put_webhook_health(health, expected_version=0)
    body = b'{"event":"npsSubmitted","pad":"' + b"x" * 990 + b'"}'
    start = NOW - timedelta(days=6)
    batch = []
    for n in range(args.deliveries):
        at = start + timedelta(seconds=n * 50)
        batch.append(
            Delivery(
                id=f"dlv_{n:06d}",
                webhook_id=ids[n % len(ids)],
                event_id=f"{n:040x}",
                category="npsSubmitted",
                body=body,
                next_attempt_at=at,
                created_at=at,
                updated_at=at,
            )
        )
    for first in range(0, len(batch), 1000):
        storage.enqueue_deliveries(batch[first : first + 1000])
    every = max(1, args.deliveries // max(1, args.dead))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE deliveries SET status = CASE WHEN rowid % ? = 0 AND rowid / ? <= ? "
            "THEN 'dead' ELSE 'delivered' END, attempts = 1, finished_at = updated_at",
            (every, every, args.dead),
        )
        (dead,) = conn.execute("SELECT count(*) FROM deliveries WHERE status = 'dead'").fetchone()
    conn.close()
    return [str(dead)]


def _get(portal: Portal) -> bytes:
    environ: dict[str, Any] = {"PATH_INFO": "/", "REQUEST_METHOD": "GET", "bench.actor": ADMIN}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    body = b"".join(portal(environ, lambda status, _headers: statuses.append(status)))
    assert statuses == ["200 OK"], statuses
    return body


def _best(loads: int, call: Any) -> float:
    times = []
    for _ in range(loads):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return min(times) * 1000


def _reads(storage: SQLiteStorage, loads: int) -> list[str]:
    ids = [w.id for w in storage.list_webhooks()]
    since = NOW - timedelta(days=7)
    one_by_one = _best(loads, lambda: [storage.get_webhook_health(i) for i in ids])
    scan = _best(loads, lambda: storage.list_deliveries(status=DeliveryStatus.DEAD, limit=1000))
    lines = [
        f"health, {len(ids)} x get_webhook_health: {one_by_one:.2f} ms",
        f"dead, list_deliveries(status=dead, limit=1000): {scan:.2f} ms",
    ]
    if hasattr(storage, "health_of"):
        bulk = _best(loads, lambda: storage.health_of(ids))
        lines.insert(1, f"health, health_of({len(ids)} ids): {bulk:.2f} ms")
    if hasattr(storage, "count_by_webhook"):
        counted = _best(
            loads, lambda: storage.count_by_webhook(status=DeliveryStatus.DEAD, since=since)
        )
        lines.append(f"dead, count_by_webhook(status=dead, since): {counted:.2f} ms")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--webhooks", type=int, default=50)
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--dead", type=int, default=2_000)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "portal.sqlite3"
        with SQLiteStorage(path) as storage:
            (dead,) = _fill(storage, path, args)
            clock = FrozenClock(NOW)
            registry = WebhookRegistry(storage, clock=clock)
            dispatcher = Dispatcher(registry, transport=RecordingTransport([200]), clock=clock)
            portal = Portal(dispatcher, actor=lambda environ: environ.get("bench.actor"))
            statements: list[str] = []
            connection = storage._connection()  # this thread's, to count SQL
            connection.set_trace_callback(statements.append)
            page = _get(portal)  # warm-up: templates compiled, caches filled
            per_load = len(statements)
            connection.set_trace_callback(None)
            times = []
            for _ in range(args.loads):
                began = time.perf_counter()
                _get(portal)
                times.append(time.perf_counter() - began)
            reads = _reads(storage, args.loads)
    text = page.decode()
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")
    print(
        f"{args.webhooks} webhooks, {args.deliveries:,} deliveries ({dead} dead, last 6 days), "
        f"1 KiB bodies"
    )
    print(
        f"GET / : median {statistics.median(times) * 1000:.1f} ms, "
        f"best {min(times) * 1000:.1f} ms over {args.loads} loads"
    )
    print(f"SQL statements in one load: {per_load}")
    counted = "at least" if "at least" in text else "exact"
    print(f"dead counts shown: {counted}; page {len(page):,} bytes")
    print("The store's reads, best of", args.loads)
    for line in reads:
        print(f"  {line}")


if __name__ == "__main__":
    main()
