"""
Throughput of the delivery engine against local receivers, next to plain HTTP client loops.

Run: ``python benchmarks/bench_dispatch.py [--number N] [--repeat R] [--quick]``. Prints
figures and the issue-15 targets (MET / NOT MET); nothing here fails on a missed target.

Receivers, each in its own process (so none shares the GIL with the sender): **nginx**
(a C server, so the receiver is not the bottleneck; started by ``benchmarks/_nginx.py`` on
a free loopback port, skipped with the reason where it is not installed:
``apt-get install nginx-light``), a minimal keep-alive asyncio HTTP/1.1 server, and the
stdlib ``http.server`` (the slower kind most hosts test with). All answer ``200`` with an
empty body. Against each, in interleaved rounds (every loop once per round, the order
rotated each round), N deliveries of the 917-byte guideDisplayed sample, one after another:

(a) ``requests.Session().post`` of the N bodies, as a user writes it;
(a') the same with ``session.trust_env = False`` (no proxy/netrc lookups per request);
(a2) ``urllib3.PoolManager().request("POST", ...)`` (requests' connection layer);
(a3) ``http.client.HTTPConnection`` keep-alive, ``request`` + ``getresponse().read()``;
(b) ``Dispatcher.dispatch()`` of N events, one at a time, each to one enabled webhook
    (signed with both schemes), with ``InMemoryStorage``;
(c) the same with ``SQLiteStorage(synchronous="NORMAL")`` (no commit fsynced);
(d) ``SQLiteStorage()``, the default (the enqueue commit fsynced before the request);
(e) ``SQLiteStorage(outcome_synchronous="FULL")``, both commits fsynced (``--extra`` only);
(f) the worker's path: ``enqueue_many()`` of the N events (one fsynced commit), then
    ``drain()``, timed together, with ``SQLiteStorage()``, the default;
(g) slow receivers (asyncio, 50 ms per request): N' deliveries enqueued, then
    ``drain(concurrency=c)`` for c = 1, 4, 16, against the ideal ``c / 0.05 s``.

Each loop gives deliveries/s and CPU time of this process per delivery (the receivers'
CPU is not counted). Figures are medians over the rounds (the best is shown too); ratios
are of medians. Each round also times ``fdatasync`` of a 4 KiB overwrite in the directory
of the SQLite files (100 per round; the median of all), for target (d): at most (a2)'s
time per post + one fdatasync + 0.25 ms per ``dispatch()``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import http.server
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import _nginx
import _report
import requests
import urllib3

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

WARM_UP = 200
HEADERS = {"Content-Type": "application/json"}


class Sample(NamedTuple):
    """One timed loop: deliveries per second, and this process's CPU seconds per delivery."""

    rate: float
    cpu: float


@contextmanager
def timed(n: int, into: list[Sample]) -> Iterator[None]:
    """Time the block (wall clock and this process's CPU) and append its :class:`Sample`."""
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    elapsed = time.perf_counter() - wall
    into.append(Sample(n / elapsed, (time.process_time() - cpu) / n))


def events(n: int) -> list[Event]:
    return [sample_event("guideDisplayed", unique_id=new_unique_id()) for _ in range(n)]


def requests_loop(url: str, bodies: list[bytes], *, trust_env: bool = True) -> Sample:
    """(a) / (a'): a requests.Session().post loop (after WARM_UP posts)."""
    found: list[Sample] = []
    with requests.Session() as session:
        session.trust_env = trust_env
        for body in bodies[:WARM_UP]:
            session.post(url, data=body, headers=HEADERS)
        with timed(len(bodies), found):
            for body in bodies:
                response = session.post(url, data=body, headers=HEADERS)
                assert response.status_code == 200
    return found[0]


def urllib3_loop(url: str, bodies: list[bytes]) -> Sample:
    """(a2): urllib3.PoolManager().request, the connection layer under requests."""
    found: list[Sample] = []
    with urllib3.PoolManager() as pool:
        for body in bodies[:WARM_UP]:
            pool.request("POST", url, body=body, headers=HEADERS)
        with timed(len(bodies), found):
            for body in bodies:
                response = pool.request("POST", url, body=body, headers=HEADERS)
                assert response.status == 200
    return found[0]


def http_client_loop(url: str, bodies: list[bytes]) -> Sample:
    """(a3): one keep-alive http.client.HTTPConnection, the floor for Python on this machine."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    found: list[Sample] = []

    def post(body: bytes) -> int:
        connection.request("POST", parts.path, body=body, headers=HEADERS)
        response = connection.getresponse()
        response.read()
        return response.status

    try:
        for body in bodies[:WARM_UP]:
            post(body)
        with timed(len(bodies), found):
            for body in bodies:
                assert post(body) == 200
    finally:
        connection.close()
    return found[0]


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


def dispatch_loop(storage: Storage, url: str, n: int) -> Sample:
    """(b)-(e): dispatch() one event at a time into a fresh store (after WARM_UP)."""
    found: list[Sample] = []
    with setup(storage, url) as dispatcher:
        for event in events(WARM_UP):  # the connection, the statement cache
            dispatcher.dispatch(event)
        batch = events(n)
        with timed(n, found):
            for event in batch:
                result = dispatcher.dispatch(event)
                assert result.all_delivered, result
    if isinstance(storage, SQLiteStorage):
        storage.close()
    return found[0]


def drain_loop(storage: Storage, url: str, n: int) -> Sample:
    """(f): enqueue_many() then drain() into a fresh store (after WARM_UP)."""
    found: list[Sample] = []
    with setup(storage, url) as dispatcher:
        dispatcher.enqueue_many(events(WARM_UP))
        dispatcher.drain(timeout=600)
        batch = events(n)
        with timed(n, found):
            dispatcher.enqueue_many(batch)
            summary = dispatcher.drain(timeout=600)
    assert summary.delivered == n, summary
    if isinstance(storage, SQLiteStorage):
        storage.close()
    return found[0]


def fdatasync_times(directory: Path, count: int) -> list[float]:
    """Seconds of each of *count* ``fdatasync`` calls, each after a 4 KiB overwrite."""
    path = directory / "fdatasync-probe"
    block = os.urandom(4096)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, bytes(4096 * 64), 0)  # allocated once: later writes do not grow it
        os.fsync(fd)
        found = []
        for i in range(count):
            os.pwrite(fd, block, 4096 * (i % 64))
            start = time.perf_counter()
            os.fdatasync(fd)
            found.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return found


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


# -- the loops of one run, and their report ------------------------------------------------

A, A_LEAN, A2, A3 = "(a)", "(a')", "(a2)", "(a3)"
B, C, D, E, F = "(b)", "(c)", "(d)", "(e)", "(f)"
LABELS = {
    A: "requests.Session().post, as a user writes it",
    A_LEAN: "the same, trust_env=False",
    A2: "urllib3.PoolManager().request",
    A3: "http.client keep-alive",
    B: "dispatch(), InMemoryStorage",
    C: 'dispatch(), SQLiteStorage(synchronous="NORMAL")',
    D: "dispatch(), SQLiteStorage() (the default)",
    E: 'dispatch(), SQLiteStorage(outcome_synchronous="FULL")',
    F: "enqueue_many() + drain(), SQLiteStorage()",
}
#: The issue's ratio targets, of medians, against (a).
RATIO_TARGETS = ((B, 1.5), (F, 1.0))
#: Target (d): at most (a2)'s time per post + one fdatasync + this engine allowance.
ENGINE_ALLOWANCE = 0.25e-3

Loop = Callable[[str], Sample]


def loops(n: int, bodies: list[bytes], tmp: Path, *, extra: bool) -> dict[str, Loop]:
    """Every loop of a round, by key; each takes the receiver's URL."""
    files = iter(range(10**6))

    def sqlite(mode: str = "FULL", outcomes: str = "NORMAL") -> Callable[[], Storage]:
        return lambda: SQLiteStorage(
            tmp / f"outbox-{next(files)}.sqlite3", synchronous=mode, outcome_synchronous=outcomes
        )

    found: dict[str, Loop] = {
        A: lambda url: requests_loop(url, bodies),
        A_LEAN: lambda url: requests_loop(url, bodies, trust_env=False),
        A2: lambda url: urllib3_loop(url, bodies),
        A3: lambda url: http_client_loop(url, bodies),
        B: lambda url: dispatch_loop(InMemoryStorage(), url, n),
        C: lambda url: dispatch_loop(sqlite("NORMAL")(), url, n),
        D: lambda url: dispatch_loop(sqlite()(), url, n),
        E: lambda url: dispatch_loop(sqlite("FULL", "FULL")(), url, n),
        F: lambda url: drain_loop(sqlite()(), url, n),
    }
    if not extra:
        del found[E]
    return found


def run_rounds(
    url: str, table: dict[str, Loop], rounds: int, tmp: Path, syncs: list[float]
) -> dict[str, list[Sample]]:
    """*rounds* interleaved rounds, the order rotated each round; fdatasyncs into *syncs*."""
    samples: dict[str, list[Sample]] = {key: [] for key in table}
    keys = list(table)
    for number in range(rounds):
        shift = number % len(keys)
        for key in keys[shift:] + keys[:shift]:
            samples[key].append(table[key](url))
        syncs.extend(fdatasync_times(tmp, 100))
    return samples


def report(title: str, samples: dict[str, list[Sample]], fdatasync: float) -> None:
    """Print one receiver's table (medians, best, CPU) and the targets."""
    median = {key: statistics.median(s.rate for s in found) for key, found in samples.items()}
    base = median[A]
    print(f"{title}: median of {len(samples[A])} interleaved rounds")
    print(
        f"  {'loop':<58} {'deliv./s':>9} {'ms/deliv.':>9} {'x (a)':>6}"
        f" {'best /s':>8} {'CPU µs/deliv.':>13}"
    )
    for key, found in samples.items():
        rate = median[key]
        cpu = statistics.median(s.cpu for s in found)
        print(
            f"  {key + ' ' + LABELS[key]:<58} {rate:>9,.0f} {1e3 / rate:>9.3f} {rate / base:>6.2f}"
            f" {max(s.rate for s in found):>8,.0f} {cpu * 1e6:>13.0f}"
        )
    print("  targets (ratios of medians):")
    for key, target in RATIO_TARGETS:
        ratio = median[key] / base
        print(f"    {key} >= {target:.1f}x (a): {ratio:.2f}x  {_report.verdict(ratio >= target)}")
    post, took = 1 / median[A2], 1 / median[D]
    limit = post + fdatasync + ENGINE_ALLOWANCE
    print(
        f"    (d) per call <= (a2) {post * 1e3:.3f} ms + fdatasync {fdatasync * 1e3:.3f} ms"
        f" + {ENGINE_ALLOWANCE * 1e3:.2f} ms = {limit * 1e3:.3f} ms: {took * 1e3:.3f} ms"
        f"  {_report.verdict(took <= limit)}"
    )
    print()


Receiver = Callable[[], AbstractContextManager[str]]


def receivers(chosen: list[str]) -> dict[str, tuple[str, Receiver]]:
    """The receivers to run against, by name, with their titles."""
    available: dict[str, tuple[str, Receiver]] = {
        "nginx": ("nginx (C, one worker, keep-alive)", _nginx.nginx),
        "asyncio": ("Minimal asyncio HTTP/1.1 receiver (Python)", receiver),
        "stdlib": (
            "Stdlib receiver (http.server.ThreadingHTTPServer, HTTP/1.1)",
            lambda: receiver(stdlib=True),
        ),
    }
    return {name: available[name] for name in chosen}


def nginx_version() -> str:
    try:
        found = subprocess.run(
            [_nginx.find_nginx(), "-v"], capture_output=True, text=True, check=False
        )
    except _nginx.NginxUnavailable as exc:
        return str(exc)
    return found.stderr.strip().removeprefix("nginx version: ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--number", type=int, default=5000, help="deliveries per timed loop")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument(
        "--quick", action="store_true", help="500 deliveries, 3 rounds, no slow-receiver part"
    )
    parser.add_argument(
        "--receivers", default="nginx,asyncio,stdlib", help="comma-separated, in this order"
    )
    parser.add_argument("--extra", action="store_true", help="also (e): both commits fsynced")
    parser.add_argument("--no-slow", action="store_true", help="skip (g), the slow receiver")
    parser.add_argument("--serve", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve-stdlib", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return
    if args.serve_stdlib:
        _serve_stdlib()
        return
    _nginx.exit_on_sigterm()
    n, r = (500, 3) if args.quick else (args.number, args.repeat)
    chosen = receivers([name.strip() for name in args.receivers.split(",") if name.strip()])

    print("pendo-webhooks dispatch benchmark")
    print(f"  date      {datetime.now(timezone.utc).isoformat(timespec='seconds')}")
    print(f"  machine   {_report.machine()}")
    print(f"  python    {platform.python_implementation()} {platform.python_version()}")
    print(
        f"  clients   requests {requests.__version__}, urllib3 {urllib3.__version__};"
        f" sqlite {sqlite3.sqlite_version}, WAL"
    )
    print(f"  nginx     {nginx_version()}")
    print(f"  load      {n:,} deliveries of a {len(to_wire(events(1)[0]))}-byte body per loop;")
    print(f"            median of {r} interleaved rounds")
    print()
    bodies = [to_wire(e) for e in events(n)]
    with tempfile.TemporaryDirectory(prefix="bench_dispatch_") as directory:
        tmp = Path(directory)
        print(f"  transport {_report.default_transport()} (the Dispatcher's default)")
        print(f"  sqlite files and fdatasync probe in {tmp}")
        print()
        table = loops(n, bodies, tmp, extra=args.extra)
        syncs: list[float] = []
        for title, start in chosen.values():
            try:
                with start() as url:
                    samples = run_rounds(url, table, r, tmp, syncs)
            except _nginx.NginxUnavailable as exc:
                print(f"{title}: skipped: {exc}")
                print()
                continue
            report(title, samples, statistics.median(syncs))
        if syncs:
            print(
                f"fdatasync of a 4 KiB overwrite beside the SQLite files: median"
                f" {statistics.median(syncs) * 1e3:.3f} ms of {len(syncs)}"
                f" (p10 {statistics.quantiles(syncs, n=10)[0] * 1e3:.3f},"
                f" p90 {statistics.quantiles(syncs, n=10)[-1] * 1e3:.3f})"
            )
            print()
    if args.quick or args.no_slow:
        return
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
