"""
Throughput and memory of first-seen tracking on SQLite.

Run: ``python benchmarks/bench_tracker.py [--observations N] [--visitors V] [--accounts A]
[--batch B] [--cache C] [--synchronous FULL|NORMAL] [--pattern uniform|zipf]``. Prints
figures only; nothing here passes or fails.

N observations (default 1,000,000) over V distinct visitors (default 100,000) in A accounts
(default 10,000) go through ``FirstSeenTracker.observe_many`` in batches of B (default
1,000: one SQLite transaction each) on a fresh ``SQLiteStorage`` file. Visitors are drawn
uniformly at random (the worst case for the tracker's cache: most sightings miss it and ask
SQLite), or from a Zipf-like skew with ``--pattern zipf`` (a few very active visitors, a
long tail: closer to real traffic). Observations are built just before each batch, outside
the timed section; the "end to end" figure includes building them.

Printed: observations/s, the number of events fired (one visitorCreated per distinct
visitor, one accountCreated per account), and the process RSS at 10%, 50% and 100% of the
run, to show that memory does not grow with the number of visitors seen.
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

from pendo_webhooks.events import App, Subscription
from pendo_webhooks.pipeline import DEFAULT_CACHE_SIZE, FirstSeenTracker, Observation
from pendo_webhooks.storage import SQLiteStorage


APP = App(id=-323232, name="bench", platform="web")
SUBSCRIPTION = Subscription(id=1, name="bench")
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


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
    args = parser.parse_args()

    print(
        f"python {platform.python_version()} sqlite {sqlite3.sqlite_version} "
        f"{platform.system()} {platform.machine()} cpus={os.cpu_count()}"
    )
    print(
        f"{args.observations:,} observations, {args.visitors:,} visitors, "
        f"{args.accounts:,} accounts, batches of {args.batch:,}, cache {args.cache:,} keys, "
        f"synchronous={args.synchronous}, {args.pattern}"
    )
    rng = random.Random(20260101)
    pick = visitor_picker(args.pattern, args.visitors, rng)
    checkpoints = {args.observations * p // 100: p for p in (10, 50, 100)}
    fired: Counter[str] = Counter()
    tracked = built = 0.0
    done = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        with SQLiteStorage(path, synchronous=args.synchronous) as storage:
            tracker = FirstSeenTracker(storage, cache_size=args.cache)
            print(f"  RSS before: {rss_mib():7.1f} MiB")
            while done < args.observations:
                size = min(args.batch, args.observations - done)
                start = time.perf_counter()
                batch = []
                for _ in range(size):
                    v = pick()
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
                        )
                    )
                middle = time.perf_counter()
                events = tracker.observe_many(batch)
                end = time.perf_counter()
                built += middle - start
                tracked += end - middle
                fired.update(str(e.category) for e in events)
                before, done = done, done + size
                for mark, percent in checkpoints.items():
                    if before < mark <= done:
                        print(
                            f"  {percent:3d}%: {done:>9,} observations, "
                            f"{fired['visitorCreated']:>7,} visitors seen, "
                            f"RSS {rss_mib():7.1f} MiB, "
                            f"{done / tracked:>9,.0f} obs/s so far"
                        )
            db_size = path.stat().st_size + sum(
                p.stat().st_size for p in Path(tmp).glob("bench.sqlite3-*")
            )
    print(
        f"  visitorCreated {fired['visitorCreated']:,}, accountCreated {fired['accountCreated']:,}"
    )
    print(
        f"  tracker only:  {args.observations / tracked:>10,.0f} observations/s ({tracked:.2f} s)"
    )
    print(
        f"  end to end:    {args.observations / (tracked + built):>10,.0f} observations/s "
        f"(building observations {built:.2f} s)"
    )
    print(f"  database:      {db_size / 2**20:.1f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
