"""
Segment delivery end to end: pendo-webhooks (SQLite outbox, batches) beside Segment's own client.

Run: ``python benchmarks/bench_segment.py [--events N] [--repeat R] [--quick]``. Prints
figures and the issue-15 targets (MET / NOT MET); nothing here fails on a missed target.

Receivers, each in its own process: **nginx** (a C server, started by
``benchmarks/_nginx.py`` on a free loopback port, answering every POST ``200
{"success":true}`` as Segment does; skipped with the reason where it is not installed:
``apt-get install nginx-light``), and a fast keep-alive Python HTTP/1.1 receiver that answers
``200 {}`` and counts the messages it got (every run against it checks that all N arrived;
against nginx each sender checks its own outcomes instead). Every sender gets the same N
events (the nine sample types, fresh uniqueIds), built before the clock starts, and is timed
from the first event handed over until the receiver has them all:

* **pendo-webhooks, durable**: ``Dispatcher.dispatch_many()`` in chunks (2,500 events by
  default, from one host thread unless ``--threads``) into a ``SQLiteStorage()`` file (the
  default: WAL, ``synchronous=FULL``: every event is durable on disk before anything is sent
  and stays so until the receiver acknowledged it), ``POST /v1/batch`` bodies of up to
  475,000 bytes joined from the stored bytes, every outcome and attempt row written back;
  then ``drain()`` (nothing is left). The Dispatcher's default transport.
* **pendo-webhooks, in memory**: the same with ``InMemoryStorage`` (not durable).
* **pendo-webhooks, one event per call** (how a request handler calls it): ``enqueue()`` of
  each event on its own (each call returns once its delivery is committed) into a
  ``SQLiteStorage(synchronous="NORMAL")`` file (committed to the WAL, so it survives a crash
  of the application, which the official client's in-memory queue does not), then ``drain()``
  (batches of up to 475,000 bytes). ``--per-event-threads T`` makes T host threads call it
  at once (default 1, like a loop).
* **segment-analytics-python** (the ``bench`` extra; a benchmark-only dependency):
  ``Client(host=<receiver>)`` in its default asynchronous mode, one ``track()`` per event
  with the same fields, then ``flush()``. Its queue is in memory, so what it holds is lost
  if the process dies; ``max_queue_size`` is raised to N so that it drops nothing (its
  default of 10,000 would silently drop events).

The senders alternate within each round; figures are medians of the rounds (the best is
shown too), and the targets are ratios of medians against the official client.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import multiprocessing
import platform
import socket
import socketserver
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import _nginx
import _report
import attrs

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import Event, new_unique_id, to_wire_dict
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage
from pendo_webhooks.testing import sample_events


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

    counts = True

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


class NginxReceiver:
    """nginx answering ``200 {"success":true}``; it counts nothing (the senders check)."""

    counts = False

    def __init__(self, url: str) -> None:
        self.url = url

    def stats(self) -> dict[str, int]:
        return {}

    def reset(self) -> None:
        pass


AnyReceiver = Receiver | NginxReceiver


@contextlib.contextmanager
def python_receiver() -> Iterator[AnyReceiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.close()


@contextlib.contextmanager
def nginx_receiver() -> Iterator[AnyReceiver]:
    with _nginx.nginx('{"success":true}', content_type="application/json", path="") as url:
        yield NginxReceiver(url)


#: The receivers, by name: a title and how to start one.
RECEIVERS: dict[str, tuple[str, Callable[[], contextlib.AbstractContextManager[AnyReceiver]]]] = {
    "nginx": ('nginx (C, one worker, answers 200 {"success":true})', nginx_receiver),
    "python": ("Python counting receiver (threaded, keep-alive)", python_receiver),
}


# ---------------------------------------------------------------------------------------
# The senders


def make_events(n: int) -> list[Event]:
    """N events: the nine sample types in turn, each with a fresh uniqueId."""
    samples = sample_events()
    return [attrs.evolve(samples[i % len(samples)], unique_id=new_unique_id()) for i in range(n)]


def run_ours(
    events: list[Event],
    receiver: AnyReceiver,
    directory: Path | None,
    chunk: int,
    threads: int,
) -> float:
    """Seconds from enqueue to the last acknowledged batch, on a fresh SQLite file (or memory)."""
    path = None if directory is None else directory / f"bench-{time.monotonic_ns()}.sqlite3"
    store = InMemoryStorage() if path is None else SQLiteStorage(path)
    with contextlib.ExitStack() as stack:
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
        with Dispatcher(registry) as dispatcher:
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


def run_per_event(
    events: list[Event], receiver: AnyReceiver, directory: Path, threads: int
) -> float:
    """Seconds from the first enqueue() (one event per call) until drain() delivered them all."""
    path = directory / f"per-event-{time.monotonic_ns()}.sqlite3"
    with SQLiteStorage(path, synchronous="NORMAL") as storage:
        registry = WebhookRegistry(storage, destinations=LOCAL)
        admin = Actor("bench", is_admin=True)
        hook = registry.create(
            admin,
            name="Segment bench, per event",
            kind="segment",
            write_key=WRITE_KEY,
            segment_endpoint=receiver.url,
            categories={e.category for e in events},
        )
        registry.enable(admin, hook.id)
        with Dispatcher(registry) as dispatcher:
            started = time.perf_counter()
            if threads == 1:
                for event in events:
                    dispatcher.enqueue(event)
            else:
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(dispatcher.enqueue, events))
            summary = dispatcher.drain(timeout=600)
            elapsed = time.perf_counter() - started
        if summary.delivered != len(events) or summary.pending:
            sys.exit(f"pendo-webhooks (per event) delivered {summary.delivered} of {len(events)}")
    for suffix in ("", "-wal", "-shm"):
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


def run_official(calls: list[dict[str, Any]], receiver: AnyReceiver) -> float:
    """Seconds from the first track() until flush() returned, with segment-analytics-python."""
    from segment.analytics.client import Client  # noqa: PLC0415 - optional dependency

    failed: list[int] = []
    client = Client(
        write_key=WRITE_KEY,
        host=receiver.url,
        max_queue_size=len(calls) + 1,
        on_error=lambda _error, batch: failed.append(len(batch)),
    )
    started = time.perf_counter()
    queued = sum(client.track(**call)[0] for call in calls)
    client.flush()
    elapsed = time.perf_counter() - started
    client.shutdown()
    if queued != len(calls) or failed:
        sys.exit(f"the official client queued {queued} of {len(calls)}, {sum(failed)} failed")
    return elapsed


class Run(NamedTuple):
    """One timed run of one sender: seconds, and the requests the receiver counted (or 0)."""

    seconds: float
    requests: int


def measured(run: Callable[[], float], receiver: AnyReceiver, n: int) -> Run:
    """Run once against a reset receiver; where it counts, check that it got all *n*."""
    receiver.reset()
    seconds = run()
    stats = receiver.stats()
    if receiver.counts and stats["messages"] != n:
        sys.exit(f"the receiver got {stats['messages']} messages, not {n}")
    return Run(seconds, stats.get("requests", 0))


# ---------------------------------------------------------------------------------------
# The report

DURABLE, MEMORY, OFFICIAL, PER_EVENT = "durable", "memory", "official", "per-event"
#: What each sender key means, as the table prints it.
LABELS = {
    DURABLE: "pendo-webhooks, SQLiteStorage() (durable default), batches",
    MEMORY: "pendo-webhooks, InMemoryStorage (not durable), batches",
    OFFICIAL: "segment-analytics-python (async client, track() each + flush)",
    PER_EVENT: 'pendo-webhooks, one event per call, SQLite synchronous="NORMAL"',
}
#: The issue's targets: (sender, against, at least this ratio of medians, what it is).
TARGETS = [
    (DURABLE, OFFICIAL, 1.5, "batch path, durable default store"),
    (PER_EVENT, OFFICIAL, 1.0, "one event per call + drain"),
]


def median_seconds(runs: list[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def report(title: str, n: int, results: dict[str, list[Run]]) -> None:
    """One receiver's table (medians and best, events/s) and the targets it can check."""
    print(f"{title}: {n:,} events, median of {len(results[OFFICIAL])} interleaved rounds")
    print(f"  {'sender':<62} {'events/s':>9} {'best':>9} {'x official':>10} {'requests':>8}")
    official = median_seconds(results[OFFICIAL])
    for key, runs in results.items():
        seconds = median_seconds(runs)
        best = min(r.seconds for r in runs)
        requests = f"{runs[0].requests:>8}" if runs[0].requests else f"{'-':>8}"
        print(
            f"  {LABELS[key]:<62} {n / seconds:>9,.0f} {n / best:>9,.0f}"
            f" {official / seconds:>9.2f}x {requests}"
        )
    print("  targets (ratios of medians):")
    for key, against, target, name in TARGETS:
        if key not in results:
            print(f"    {name} >= {target:.1f}x the official client: not measured in this run")
            continue
        ratio = median_seconds(results[against]) / median_seconds(results[key])
        met = _report.verdict(ratio >= target)
        print(f"    {name} >= {target:.1f}x the official client: {ratio:.2f}x  {met}")
    print("  all runs (s):")
    for key, runs in results.items():
        print(f"    {key:<10} {[round(r.seconds, 3) for r in runs]}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the median counts")
    parser.add_argument("--quick", action="store_true", help="2,000 events, 3 rounds")
    parser.add_argument("--chunk", type=int, default=2_500, help="events per dispatch_many()")
    parser.add_argument("--threads", type=int, default=1, help="host threads calling it")
    parser.add_argument("--receivers", default="nginx,python", help="comma-separated")
    parser.add_argument(
        "--per-event-threads", type=int, default=1, help="host threads calling enqueue() per event"
    )
    parser.add_argument(
        "--senders",
        default=",".join((DURABLE, OFFICIAL, MEMORY, PER_EVENT)),
        help="comma-separated, of: durable, official, memory, per-event",
    )
    args = parser.parse_args()
    n, repeat = (2_000, 3) if args.quick else (args.events, args.repeat)
    try:
        import segment.analytics  # noqa: F401, PLC0415
    except ImportError:
        sys.exit(
            "pip install -e '.[bench]' (segment-analytics-python, a benchmark-only dependency)"
        )
    _nginx.exit_on_sigterm()
    if args.per_event_threads > 1:
        LABELS[PER_EVENT] += f", {args.per_event_threads} threads"

    events = make_events(n)
    calls = segment_calls(events)
    print("pendo-webhooks Segment benchmark")
    print(f"  date      {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(f"  machine   {_report.machine()}")
    print(f"  python    CPython {platform.python_version()}")
    print(f"  transport {_report.default_transport()} (the Dispatcher's default)")
    print()
    with tempfile.TemporaryDirectory() as tmp:
        senders: dict[str, Callable[[AnyReceiver], float]] = {
            DURABLE: lambda r: run_ours(events, r, Path(tmp), args.chunk, args.threads),
            OFFICIAL: lambda r: run_official(calls, r),
            MEMORY: lambda r: run_ours(events, r, None, args.chunk, args.threads),
            PER_EVENT: lambda r: run_per_event(events, r, Path(tmp), args.per_event_threads),
        }
        chosen = {x.strip() for x in args.senders.split(",")} | {OFFICIAL}
        senders = {key: send for key, send in senders.items() if key in chosen}
        for name in filter(None, (x.strip() for x in args.receivers.split(","))):
            title, start = RECEIVERS[name]
            results: dict[str, list[Run]] = {key: [] for key in senders}
            try:
                with start() as receiver:
                    for _ in range(repeat):
                        for key, send in senders.items():
                            run = functools.partial(send, receiver)
                            results[key].append(measured(run, receiver, n))
            except _nginx.NginxUnavailable as exc:
                print(f"{title}: skipped: {exc}")
                print()
                continue
            report(title, n, results)


if __name__ == "__main__":
    main()
