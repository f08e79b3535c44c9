"""
Worker processes for test_crash.py, run as ``python crash_worker.py MODE DB ...``.

* ``work DB CONCURRENCY LEASE``: run ``Dispatcher.run_worker`` on the SQLite outbox until
  SIGTERM (a clean stop) or SIGKILL (the crash under test);
* ``enqueue DB COUNT``: enqueue COUNT npsSubmitted events, one transaction each, and exit.

Loopback receivers are allowed. Nothing is printed.
"""

from __future__ import annotations

import sys

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import new_unique_id
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.testing import sample_event


def main(argv: list[str]) -> int:
    """
    Run one worker until it is told to stop, or enqueue and exit.
    """
    mode, path = argv[1], argv[2]
    with SQLiteStorage(path, synchronous="NORMAL") as storage:
        registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
        if mode == "enqueue":
            with Dispatcher(registry) as dispatcher:
                for _ in range(int(argv[3])):
                    dispatcher.enqueue(sample_event("npsSubmitted", unique_id=new_unique_id()))
            return 0
        concurrency, lease = int(argv[3]), float(argv[4])
        with Dispatcher(registry, lease_duration=lease) as dispatcher:
            dispatcher.run_worker(concurrency=concurrency, poll_interval=0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
