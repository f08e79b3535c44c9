"""
Throughput and memory of first-seen tracking on SQLite.

Run: ``python benchmarks/bench_tracker.py [--observations N] [--visitors V] [--accounts A]
[--batch B] [--cache C] [--synchronous FULL|NORMAL] [--pattern uniform|zipf] [--atomic]
[--realistic] [--two-step]``. Prints figures only; nothing here passes or fails.

N observations (default 1,000,000) over V distinct visitors (default 100,000) in A accounts
(default 10,000) go through ``FirstSeenTracker.observe_many`` in batches of B (default
1,000: one SQLite transaction each) on a fresh ``SQLiteStorage`` file. Visitors are drawn
uniformly at random (the worst case for the tracker's cache: most sightings miss it and ask
SQLite), or from a Zipf-like skew with ``--pattern zipf`` (a few very active visitors, a
long tail: closer to real traffic). Observations are built just before each batch, outside
the timed section; the "end to end" figure includes building them.

With ``--atomic``, the batches go through ``FirstSeenTracker.observe_many_and_enqueue``
instead: each batch's sightings AND the deliveries of the events they fire (one enabled URL
webhook subscribed to ``visitorCreated`` and ``accountCreated``, so one delivery per event)
are written in one transaction; nothing is sent. ``--two-step`` stores the same deliveries
the way a host did before that existed, for comparison: ``observe_many``, then
``Dispatcher.enqueue_many`` of the events (two transactions; a crash between them loses the
events). With ``--realistic``, every observation
carries a source IP address and an agent version, and the store holds three exclusion rules
(a visitor pattern, an account pattern, an IP range) that the tracker (and, with
``--atomic``, the dispatcher's gate) checks each observation against; about 1% of visitors
are in the excluded range.

Printed: observations/s, the number of events fired (one visitorCreated per distinct
visitor, one accountCreated per account; with ``--atomic``, the deliveries stored), and the
process RSS at every 10% of the run, to show that memory does not grow with the number of
visitors seen.
"""

from __future__ import annotations

import argparse
import bisect
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import App, Subscription
from pendo_webhooks.pipeline import DEFAULT_CACHE_SIZE, FirstSeenTracker, Observation
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.testing import RecordingTransport


APP = App(id=-323232, name="bench", platform="web")
SUBSCRIPTION = Subscription(id=1, name="bench")
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
ADMIN = Actor("bench", is_admin=True)
#: The realistic case's rules: QA accounts by e-mail, internal accounts, the office network.
RULES = (("visitor", "*@qa.example.com"), ("account", "internal-*"), ("ip", "10.20.0.0/16"))


def rss_mib() -> float:
    """The current resident set size in MiB (Linux), else the peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def visitor_picker(pattern: str, visitors: int, rng: random.Random) -> Callable[[], int]:
    """Return a function drawing a visitor index."""
    if pattern == "uniform":
        return lambda: rng.randrange(visitors)
    # Zipf-like with s = 1: weight 1 / (rank + 1), drawn by bisecting the cumulative weights.
    cumulative: list[float] = []
    total = 0.0
    for rank in range(visitors):
        total += 1.0 / (rank + 1)
        cumulative.append(total)
    return lambda: bisect.bisect_left(cumulative, rng.random() * total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--visitors", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--cache", type=int, default=DEFAULT_CACHE_SIZE)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument("--pattern", default="uniform", choices=["uniform", "zipf"])
    parser.add_argument("--atomic", action="store_true", help="observe_many_and_enqueue")
    parser.add_argument("--realistic", action="store_true", help="IPs, agent versions, rules")
    parser.add_argument("--two-step", action="store_true", help="observe_many + enqueue_many")
    args = parser.parse_args()

    print(
        f"python {platform.python_version()} sqlite {sqlite3.sqlite_version} "
        f"{platform.system()} {platform.machine()} cpus={os.cpu_count()}"
    )
    print(
        f"{args.observations:,} observations, {args.visitors:,} visitors, "
        f"{args.accounts:,} accounts, batches of {args.batch:,}, cache {args.cache:,} keys, "
        f"synchronous={args.synchronous}, {args.pattern}"
        + (
            ", atomic observe-and-enqueue"
            if args.atomic
            else ", observe_many + enqueue_many"
            if args.two_step
            else ", observe_many"
        )
        + (", realistic (IP, agent version, 3 exclusion rules)" if args.realistic else "")
    )
    rng = random.Random(20260101)
    pick = visitor_picker(args.pattern, args.visitors, rng)
    checkpoints = {args.observations * p // 100: p for p in range(10, 101, 10)}
    fired: Counter[str] = Counter()
    stored = 0
    tracked = built = 0.0
    cpu_tracked = cpu_built = 0.0
    done = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        with SQLiteStorage(path, synchronous=args.synchronous) as storage:
            registry = WebhookRegistry(storage)
            if args.realistic:
                for kind, pattern in RULES:
                    registry.add_exclusion(ADMIN, kind, pattern)
            hook = registry.create(
                ADMIN,
                name="bench",
                url="https://hooks.example.com/bench",
                categories={"visitorCreated", "accountCreated"},
            )
            registry.enable(ADMIN, hook.id)
            dispatcher = Dispatcher(registry, transport=RecordingTransport())
            tracker = FirstSeenTracker(storage, cache_size=args.cache)
            # A host has each visitor's address as text already (from its web framework);
            # 1 visitor in 100 browses from the excluded office network.
            ips = (
                [
                    f"10.20.{v % 256}.{v % 199}" if v % 100 == 0 else f"198.51.{v % 256}.{v % 199}"
                    for v in range(args.visitors)
                ]
                if args.realistic
                else []
            )
            agent_version = "2.41.0" if args.realistic else None
            print(f"  RSS before: {rss_mib():7.1f} MiB")
            while done < args.observations:
                size = min(args.batch, args.observations - done)
                start, cpu_start = time.perf_counter(), time.process_time()
                batch = []
                for _ in range(size):
                    v = pick()
                    ip = ips[v] if ips else None
                    batch.append(
                        Observation(
                            visitor_id=f"visitor-{v}@example.com",
                            account_id=f"account-{v % args.accounts}",
                            app=APP,
                            subscription=SUBSCRIPTION,
                            user_agent=USER_AGENT,
                            browser_name="Chrome",
                            browser_version="120.0",
                            at=AT,
                            source_ip=ip,
                            agent_version=agent_version,
                        )
                    )
                middle, cpu_middle = time.perf_counter(), time.process_time()
                if args.atomic:
                    results = tracker.observe_many_and_enqueue(batch, dispatcher)
                    end, cpu_end = time.perf_counter(), time.process_time()
                    fired.update(str(r.category) for r in results)
                    stored += sum(len(r.outcomes) for r in results)
                else:
                    events = tracker.observe_many(batch)
                    if args.two_step:
                        stored += sum(len(r.outcomes) for r in dispatcher.enqueue_many(events))
                    end, cpu_end = time.perf_counter(), time.process_time()
                    fired.update(str(e.category) for e in events)
                built += middle - start
                tracked += end - middle
                cpu_built += cpu_middle - cpu_start
                cpu_tracked += cpu_end - cpu_middle
                before, done = done, done + size
                for mark, percent in checkpoints.items():
                    if before < mark <= done:
                        print(
                            f"  {percent:3d}%: {done:>9,} observations, "
                            f"{fired['visitorCreated']:>7,} visitors seen, "
                            f"RSS {rss_mib():7.1f} MiB, "
                            f"{done / (tracked + built):>9,.0f} obs/s end to end so far"
                        )
            dispatcher.close()
            db_size = path.stat().st_size + sum(
                p.stat().st_size for p in Path(tmp).glob("bench.sqlite3-*")
            )
    print(
        f"  visitorCreated {fired['visitorCreated']:,}, accountCreated {fired['accountCreated']:,}"
        + (f", deliveries stored {stored:,}" if args.atomic or args.two_step else "")
    )
    print(
        f"  tracker only:  {args.observations / tracked:>10,.0f} observations/s ({tracked:.2f} s)"
    )
    print(
        f"  end to end:    {args.observations / (tracked + built):>10,.0f} observations/s "
        f"(building observations {built:.2f} s)"
    )
    print(
        f"  CPU time:      {args.observations / (cpu_tracked + cpu_built):>10,.0f} observations "
        f"per CPU second end to end (tracker {cpu_tracked:.2f} s, building {cpu_built:.2f} s; "
        "the figure a busy machine disturbs least)"
    )
    print(f"  database:      {db_size / 2**20:.1f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
