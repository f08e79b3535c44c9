"""
Throughput of the delivery engine against a local receiver, next to a plain requests loop.

Run: ``python benchmarks/bench_dispatch.py [--number N] [--repeat R]``. Prints figures only;
nothing here passes or fails.

A minimal keep-alive HTTP/1.1 receiver (asyncio) runs in its own process (so it does not
share the GIL with the dispatcher) and answers ``200`` with an empty body, at once or after
a fixed delay. (a)-(e) run against it, and again against a stdlib ``http.server`` receiver
(also its own process), the slower kind most hosts test with. Then, in one run:

(a) ``requests.Session().post`` of N sample bodies, one after the other (the baseline);
(b) ``Dispatcher.dispatch()`` of N events, one at a time, each to one enabled webhook
    (signed with both schemes), with ``InMemoryStorage``;
(c) the same with ``SQLiteStorage(synchronous="NORMAL")`` (no commit fsynced) and
    (d) ``SQLiteStorage()``, the default (``synchronous="FULL"``,
    ``outcome_synchronous="NORMAL"``): two commits per delivery, store + claim (fsynced
    before the request is sent) and attempt row + status (not fsynced);
(e) ``SQLiteStorage(outcome_synchronous="FULL")``: both commits fsynced, for comparison;
(f) the worker's path: ``enqueue_many()`` of the N events (one fsynced commit), then
    ``drain()`` (one claim and one outcome per delivery, none fsynced), timed together,
    with ``SQLiteStorage()``, the default;
(g) slow receivers (50 ms per request): N' deliveries enqueued, then ``drain(concurrency=c)``
    for c = 1, 4, 16, against the ideal ``c / 0.05 s``.

Each of (a)-(f) is the best of R timed loops (deliveries/s, and the ratio to (a)'s best),
then the ratio of the medians: on a shared machine the best of a few rounds swings.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import requests

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import Event, new_unique_id, to_wire
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.testing import sample_event


ADMIN = Actor("bench", is_admin=True)
SLOW_DELAY = 0.05


# -- the receiver (runs in a child process) ------------------------------------------------

_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


async def _handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if delay:
                await asyncio.sleep(delay)
            writer.write(_REPLY)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def _serve(delay: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, delay), "127.0.0.1", 0, backlog=256
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


class _StdlibHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _serve_stdlib() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StdlibHandler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


@contextmanager
def receiver(delay: float = 0.0, *, stdlib: bool = False) -> Iterator[str]:
    """Start a receiver process (asyncio, or http.server if *stdlib*); yield its URL."""
    how = ["--serve-stdlib"] if stdlib else ["--serve", str(delay)]
    child = subprocess.Popen([sys.executable, __file__, *how], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        child.kill()
        child.wait()


# -- the measurements ----------------------------------------------------------------------


def events(n: int) -> list[Event]:
    return [sample_event("guideDisplayed", unique_id=new_unique_id()) for _ in range(n)]


def plain_rate(url: str, bodies: list[bytes]) -> float:
    """Deliveries/s of a plain requests.Session().post loop (after 200 to warm up)."""
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    for body in bodies[:200]:
        session.post(url, data=body, headers=headers)
    start = time.perf_counter()
    for body in bodies:
        response = session.post(url, data=body, headers=headers)
        assert response.status_code == 200
    rate = len(bodies) / (time.perf_counter() - start)
    session.close()
    return rate


def setup(storage: Storage, url: str) -> Dispatcher:
    registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
    hook = registry.create(
        ADMIN,
        name="bench",
        url=url,
        secret="s3cr3t-with-special-chars!&?<>",
        categories={"guideDisplayed"},
    )
    registry.enable(ADMIN, hook.id)
    return Dispatcher(registry)


def dispatch_rate(storage: Storage, url: str, n: int) -> float:
    """Deliveries/s of dispatch() into a fresh store (after 200 to warm up)."""
    with setup(storage, url) as dispatcher:
        for event in events(200):  # the connection, the statement cache
            dispatcher.dispatch(event)
        batch = events(n)
        start = time.perf_counter()
        for event in batch:
            result = dispatcher.dispatch(event)
            assert result.all_delivered, result
        rate = n / (time.perf_counter() - start)
    if isinstance(storage, SQLiteStorage):
        storage.close()
    return rate


def drain_rate(storage: Storage, url: str, n: int) -> float:
    """Deliveries/s of enqueue_many() then drain() into a fresh store (after 200 to warm up)."""
    with setup(storage, url) as dispatcher:
        dispatcher.enqueue_many(events(200))
        dispatcher.drain(timeout=600)
        batch = events(n)
        start = time.perf_counter()
        dispatcher.enqueue_many(batch)
        summary = dispatcher.drain(timeout=600)
        rate = n / (time.perf_counter() - start)
    assert summary.delivered == n, summary
    if isinstance(storage, SQLiteStorage):
        storage.close()
    return rate


def slow_drain(url: str, n: int, concurrency: int) -> float:
    with setup(InMemoryStorage(), url) as dispatcher:
        for event in events(n):
            dispatcher.enqueue(event)
        start = time.perf_counter()
        summary = dispatcher.drain(timeout=600, concurrency=concurrency)
        elapsed = time.perf_counter() - start
    assert summary.delivered == n, summary
    assert summary.pending == 0, summary
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--number", type=int, default=5000, help="deliveries per timed loop")
    parser.add_argument("--repeat", type=int, default=3, help="timed loops; the best counts")
    parser.add_argument("--serve", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve-stdlib", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return
    if args.serve_stdlib:
        _serve_stdlib()
        return
    n, r = args.number, args.repeat
    tmp = Path(tempfile.mkdtemp(prefix="bench_dispatch_"))
    files = iter(range(10**6))

    def sqlite(mode: str, outcomes: str = "NORMAL") -> Callable[[], Storage]:
        return lambda: SQLiteStorage(
            tmp / f"outbox-{next(files)}.sqlite3",
            synchronous=mode,
            outcome_synchronous=outcomes,
        )

    stores: dict[str, Callable[[], Storage]] = {
        "(b) dispatch(), InMemoryStorage": InMemoryStorage,
        "(c) dispatch(), SQLiteStorage synchronous=NORMAL": sqlite("NORMAL"),
        "(d) dispatch(), SQLiteStorage() (FULL, outcomes NORMAL)": sqlite("FULL"),
        "(e) dispatch(), SQLiteStorage(outcome_synchronous=FULL)": sqlite("FULL", "FULL"),
    }
    drain_label = "(f) enqueue_many() + drain(), SQLiteStorage()"

    print("pendo-webhooks dispatch benchmark")
    print(f"  date      {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(f"  machine   {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"  python    {platform.python_implementation()} {platform.python_version()}")
    print(f"  sqlite    {sqlite3.sqlite_version}, WAL; requests {requests.__version__}")
    print(f"  load      {n:,} deliveries of a {len(to_wire(events(1)[0]))}-byte body; best of {r}")
    print()
    bodies = [to_wire(e) for e in events(n)]
    for title, stdlib in (
        ("Fast receiver (minimal asyncio HTTP/1.1 server)", False),
        ("Stdlib receiver (http.server.ThreadingHTTPServer, HTTP/1.1)", True),
    ):
        plain_label = "(a) requests.Session().post loop"
        rates: dict[str, list[float]] = {k: [] for k in [plain_label, *stores, drain_label]}
        with receiver(stdlib=stdlib) as url:
            # Interleaved rounds, so a busy moment on the machine hits every variant alike.
            for _ in range(r):
                rates[plain_label].append(plain_rate(url, bodies))
                for label, make in stores.items():
                    rates[label].append(dispatch_rate(make(), url, n))
                rates[drain_label].append(drain_rate(sqlite("FULL")(), url, n))
        plain, plain_median = max(rates[plain_label]), statistics.median(rates[plain_label])
        print(f"{title}: best of {r}, then the median's ratio")
        for label, found in rates.items():
            rate = max(found)
            print(
                f"  {label:<58} {rate:>9,.0f} /s {1e3 / rate:>7.3f} ms  {rate / plain:>5.2f}x (a)"
                f"  median {statistics.median(found) / plain_median:>5.2f}x"
            )
        print()
    print(f"(g) Slow receiver ({SLOW_DELAY * 1e3:.0f} ms per request), drain(concurrency=c)")
    with receiver(SLOW_DELAY) as url:
        for concurrency in (1, 4, 16):
            count = max(60, 40 * concurrency)
            rate = slow_drain(url, count, concurrency)
            ideal = concurrency / SLOW_DELAY
            print(
                f"  c={concurrency:<3} {count:>5} deliveries {rate:>9,.1f} /s"
                f"  ideal {ideal:>6,.0f} /s  {rate / ideal:>6.1%}"
            )


if __name__ == "__main__":
    sys.exit(main())
