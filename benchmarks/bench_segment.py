"""
Segment delivery end to end: pendo-webhooks (SQLite outbox, batches) beside Segment's own client.

Run: ``python benchmarks/bench_segment.py [--events N] [--repeat R]``. Prints figures only;
nothing here passes or fails.

A fast keep-alive HTTP/1.1 receiver runs in its own process (so it does not share the
sender's GIL), answers every POST ``200 {}`` and counts the messages it got. Both senders
get the same N events (the nine sample types, fresh uniqueIds), built before the clock
starts, and are timed from the first event handed over until the receiver has them all:

* **pendo-webhooks**: ``Dispatcher.dispatch_many()`` in chunks (2,500 events by default,
  from one host thread unless ``--threads``) into a ``SQLiteStorage`` file (WAL,
  ``synchronous=FULL``: every event is durable on disk before anything is sent and stays
  so until the receiver acknowledged it), ``POST /v1/batch`` bodies of up to 475,000
  bytes joined from the stored bytes, every outcome and attempt row written back; then
  ``drain()`` (nothing is left).
* **segment-analytics-python** (``pip install segment-analytics-python``; a benchmark-only
  dependency): ``Client(host=<receiver>)`` in its default asynchronous mode, one
  ``track()`` per event with the same fields, then ``flush()``. Its queue is in memory,
  so what it holds is lost if the process dies; ``max_queue_size`` is raised to N so that
  it drops nothing (its default of 10,000 would silently drop events).

Each figure is the best of R runs; the two alternate so that both see the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import socket
import socketserver
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import attrs

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import Event, new_unique_id, to_wire_dict
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage
from pendo_webhooks.testing import sample_events
from pendo_webhooks.transports import RequestsTransport


WRITE_KEY = "bench-write-key"
LOCAL = DestinationPolicy.local_testing()

# ---------------------------------------------------------------------------------------
# The receiver (its own process)

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = self.messages = self.bytes = 0

    def as_json(self) -> bytes:
        with self.lock:
            data = {"requests": self.requests, "messages": self.messages, "bytes": self.bytes}
        return json.dumps(data).encode()


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stats = self.server.stats
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            method, path = line.split(b" ", 2)[:2]
            length = 0
            while True:
                header = self.rfile.readline(65537)
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = self.rfile.read(length) if length else b""
            if method == b"GET" and path == b"/stats":
                payload = stats.as_json()
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload)}\r\n\r\n"
                self.wfile.write(head.encode() + payload)
                continue
            if path == b"/reset":
                with stats.lock:
                    stats.requests = stats.messages = stats.bytes = 0
            else:
                # Compact (ours) and spaced (json.dumps defaults, Segment's client) JSON.
                count = body.count(b'"messageId":')
                with stats.lock:
                    stats.requests += 1
                    stats.messages += count
                    stats.bytes += len(body)
            self.wfile.write(_OK)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stats = _Stats()


def _serve(conn: Any) -> None:
    server = _Server()
    conn.send(server.server_address[1])
    server.serve_forever(poll_interval=0.1)


class Receiver:
    """The counting receiver, in a child process."""

    def __init__(self) -> None:
        parent, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        self.url = f"http://127.0.0.1:{parent.recv()}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/stats") as response:  # noqa: S310
            data: dict[str, int] = json.loads(response.read())
        return data

    def reset(self) -> None:
        request = urllib.request.Request(self.url + "/reset", data=b"", method="POST")  # noqa: S310
        with urllib.request.urlopen(request) as response:  # noqa: S310
            response.read()

    def close(self) -> None:
        self.process.terminate()
        self.process.join(5)


# ---------------------------------------------------------------------------------------
# The two senders


def make_events(n: int) -> list[Event]:
    """N events: the nine sample types in turn, each with a fresh uniqueId."""
    samples = sample_events()
    return [attrs.evolve(samples[i % len(samples)], unique_id=new_unique_id()) for i in range(n)]


def run_ours(
    events: list[Event],
    receiver: Receiver,
    directory: Path | None,
    chunk: int,
    threads: int,
) -> float:
    """Seconds from enqueue to the last acknowledged batch, on a fresh SQLite file (or memory)."""
    path = None if directory is None else directory / f"bench-{time.monotonic_ns()}.sqlite3"
    store = InMemoryStorage() if path is None else SQLiteStorage(path)
    with contextlib.ExitStack() as stack, RequestsTransport(destinations=LOCAL) as transport:
        storage = stack.enter_context(store) if isinstance(store, SQLiteStorage) else store
        registry = WebhookRegistry(storage, destinations=LOCAL)
        admin = Actor("bench", is_admin=True)
        hook = registry.create(
            admin,
            name="Segment bench",
            kind="segment",
            write_key=WRITE_KEY,
            segment_endpoint=receiver.url,
            categories={e.category for e in events},
        )
        registry.enable(admin, hook.id)
        with Dispatcher(registry, transport=transport) as dispatcher:
            chunks = [events[i : i + chunk] for i in range(0, len(events), chunk)]
            started = time.perf_counter()
            # One host thread by default, like the official client's caller. (Two, with
            # --threads 2, were slower: each thread's SQLite statements give the GIL up
            # row by row and wait up to the 5 ms switch interval to get it back while the
            # other thread formats, and the two queue for SQLite's one write lock.)
            with ThreadPoolExecutor(threads) as pool:
                done = pool.map(dispatcher.dispatch_many, chunks)
                delivered = sum(r.all_delivered for results in done for r in results)
            summary = dispatcher.drain(timeout=600)
            elapsed = time.perf_counter() - started
        delivered += summary.delivered
        if delivered != len(events) or summary.pending:
            sys.exit(f"pendo-webhooks delivered {delivered} of {len(events)}")
    for suffix in ("", "-wal", "-shm") if path is not None else ():
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    return elapsed


def segment_calls(events: list[Event]) -> list[dict[str, Any]]:
    """The same events as keyword arguments of the official client's track()."""
    calls = []
    for event in events:
        wire = to_wire_dict(event)
        calls.append(
            {
                "user_id": wire["visitorId"],
                "event": wire["event"],
                "properties": wire["properties"],
                "context": {
                    "groupId": wire["accountId"],
                    "userAgent": wire["userAgent"],
                    "pendo": {"app": wire["app"], "subscription": wire["subscription"]},
                },
                "timestamp": event.timestamp,
                "message_id": wire["uniqueId"],
            }
        )
    return calls


def run_official(calls: list[dict[str, Any]], receiver: Receiver) -> float:
    """Seconds from the first track() until flush() returned, with segment-analytics-python."""
    from segment.analytics.client import Client  # noqa: PLC0415 - optional dependency

    client = Client(write_key=WRITE_KEY, host=receiver.url, max_queue_size=len(calls) + 1)
    started = time.perf_counter()
    for call in calls:
        client.track(**call)
    client.flush()
    elapsed = time.perf_counter() - started
    client.shutdown()
    return elapsed


def measured(run: Callable[[], float], receiver: Receiver, n: int) -> tuple[float, int]:
    """Run once against a reset receiver; return the seconds and the receiver's request count."""
    receiver.reset()
    seconds = run()
    stats = receiver.stats()
    if stats["messages"] != n:
        sys.exit(f"the receiver got {stats['messages']} messages, not {n}")
    return seconds, stats["requests"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per sender; the best counts")
    parser.add_argument("--chunk", type=int, default=2_500, help="events per dispatch_many()")
    parser.add_argument("--threads", type=int, default=1, help="host threads calling it")
    args = parser.parse_args()
    n = args.events
    try:
        import segment.analytics  # noqa: F401, PLC0415
    except ImportError:
        sys.exit("pip install segment-analytics-python (a benchmark-only dependency)")

    events = make_events(n)
    calls = segment_calls(events)
    receiver = Receiver()
    ours: list[tuple[float, int]] = []
    memory: list[tuple[float, int]] = []
    official: list[tuple[float, int]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeat):
                ours.append(
                    measured(
                        lambda: run_ours(events, receiver, Path(tmp), args.chunk, args.threads),
                        receiver,
                        n,
                    )
                )
                official.append(measured(lambda: run_official(calls, receiver), receiver, n))
                memory.append(
                    measured(
                        lambda: run_ours(events, receiver, None, args.chunk, args.threads),
                        receiver,
                        n,
                    )
                )
    finally:
        receiver.close()

    best_ours, best_memory, best_official = min(ours), min(memory), min(official)
    print(f"Segment delivery, {n:,} events, best of {args.repeat}")
    print(f"  {platform.platform()}, CPython {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"  {date.today().isoformat()}")
    for label, (seconds, requests) in (
        ("pendo-webhooks (SQLite outbox, synchronous=FULL)", best_ours),
        ("pendo-webhooks (InMemoryStorage: not durable)", best_memory),
        ("segment-analytics-python (async client + flush)", best_official),
    ):
        print(f"  {label:<52} {n / seconds:>9,.0f} events/s  {requests:>4} requests")
    print(f"  ratio ours / official: {best_official[0] / best_ours[0]:.2f}x (target >= 1.5x)")
    print(f"  in memory / official: {best_official[0] / best_memory[0]:.2f}x")
    print("  all runs (s): ours", [round(s, 3) for s, _ in ours])
    print("               memory", [round(s, 3) for s, _ in memory])
    print("               official", [round(s, 3) for s, _ in official])


if __name__ == "__main__":
    main()
