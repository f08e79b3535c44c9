"""
Scale-out on one PostgreSQL outbox: deliveries/s with 1, 2 and 4 worker processes.

Run: ``python benchmarks/bench_postgres.py [--dsn DSN] [--per-worker N] [--delay S]
[--concurrency C] [--repeat R]``. Prints figures only; nothing here passes or fails.

A keep-alive HTTP/1.1 receiver (asyncio, its own process) answers ``200`` after
``--delay`` seconds (20 ms by default): a receiver that is slow to answer, the case
where more workers help. For each worker count W in 1, 2, 4:

1. ``N = W x --per-worker`` events are enqueued through ``Dispatcher.enqueue`` into a
   fresh schema (one webhook, signed with both schemes);
2. W worker processes start, each ``Dispatcher.run_worker(concurrency=C)`` on its own
   ``PostgresStorage``; they wait for a start signal so that interpreter start-up is
   not timed;
3. the clock runs from the signal until the outbox has nothing pending (polled every
   10 ms); deliveries/s = N / elapsed.

The best of R runs per W is reported, with its ratio to one worker (target: 4 workers
>= 3x one worker). Every run drops its schema afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import new_unique_id
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import PostgresStorage
from pendo_webhooks.testing import RecordingTransport, sample_event


ADMIN = Actor("bench", is_admin=True)
DEFAULT_DSN = os.environ.get(
    "PENDO_WEBHOOKS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# -- the receiver (its own process) ----------------------------------------------------------

_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            size = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    size = int(value)
            await reader.readexactly(size)
            await asyncio.sleep(delay)
            writer.write(_REPLY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _receive(delay: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: _answer(r, w, delay), "127.0.0.1", 0, backlog=256
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def receiver(delay: float) -> Iterator[str]:
    """
    Start the receiver process; yield its URL.
    """
    process = subprocess.Popen(
        [sys.executable, __file__, "receive", str(delay)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/in"
    finally:
        process.terminate()
        process.wait(10)


# -- a worker (its own process) ---------------------------------------------------------------


def _work(dsn: str, schema: str, concurrency: int, go: str) -> None:
    with PostgresStorage(dsn, schema=schema, max_connections=concurrency + 2) as storage:
        registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
        with Dispatcher(registry) as dispatcher:
            storage.list_webhooks()  # the pool is warm
            while not Path(go).exists():
                time.sleep(0.001)
            dispatcher.run_worker(concurrency=concurrency, poll_interval=0.01)


# -- one measurement --------------------------------------------------------------------------


def run_once(dsn: str, url: str, workers: int, events: int, concurrency: int) -> float:
    """
    Enqueue *events*, drain them with *workers* processes; return deliveries/s.
    """
    schema = f"bench_{secrets.token_hex(4)}"
    storage = PostgresStorage(dsn, schema=schema)
    go = Path(tempfile.mkdtemp()) / "go"
    try:
        registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
        hook = registry.create(
            ADMIN, name="bench", url=url, secret="s3cret", categories=["npsSubmitted"]
        )
        registry.enable(ADMIN, hook.id)
        with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
            for _ in range(events):
                dispatcher.enqueue(sample_event("npsSubmitted", unique_id=new_unique_id()))
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "work", dsn, schema, str(concurrency), str(go)]
            )
            for _ in range(workers)
        ]
        try:
            time.sleep(1.5 + 0.3 * workers)  # interpreters started, pools open
            go.touch()
            started = time.perf_counter()
            while storage.pending_summary()[0]:
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
        delivered = sum(1 for d in storage.list_deliveries(limit=10_000) if d.attempts >= 1)
        assert delivered == events, (delivered, events)
        return events / elapsed
    finally:
        storage.drop_schema()
        go.unlink(missing_ok=True)
        go.parent.rmdir()


def main() -> None:
    """
    Measure 1, 2 and 4 workers and print the figures.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--per-worker", type=int, default=300, help="events per worker")
    parser.add_argument("--delay", type=float, default=0.02, help="receiver delay (s)")
    parser.add_argument("--concurrency", type=int, default=1, help="threads per worker")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with psycopg.connect(args.dsn) as conn:
        version = conn.info.server_version
    print(
        f"# PostgreSQL {version // 10000}.{version % 10000}; "
        f"receiver delay {args.delay * 1000:g} ms"
    )
    print(f"# {args.per_worker} events per worker, concurrency {args.concurrency} per worker")
    ideal = args.concurrency / args.delay
    results: dict[int, float] = {}
    with receiver(args.delay) as url:
        for workers in (1, 2, 4):
            runs = [
                run_once(args.dsn, url, workers, workers * args.per_worker, args.concurrency)
                for _ in range(args.repeat)
            ]
            results[workers] = max(runs)
            print(
                f"{workers} worker(s): {results[workers]:8.1f} deliveries/s "
                f"(ideal {workers * ideal:6.0f}; runs: {', '.join(f'{r:.1f}' for r in runs)})",
                flush=True,
            )
    for workers in (2, 4):
        print(f"{workers} workers / 1 worker: {results[workers] / results[1]:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "receive":
        asyncio.run(_receive(float(sys.argv[2])))
    elif len(sys.argv) > 1 and sys.argv[1] == "work":
        _work(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        main()
