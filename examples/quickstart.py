"""
The pendo-webhooks quick start: the whole life of a webhook on the embedded SQLite store.

Run it from a checkout with the package installed:

    python examples/quickstart.py [--db PATH]

1. Pendo's exact bytes: the guideDisplayed sample, its Pendo hex and Standard Webhooks signatures.
2. An admin registers a webhook on a SQLite file, tests it (the "Test" button), and enables it.
3. One event of every type is dispatched to a local receiver that verifies every signature.
4. The receiver has an outage (503, 503): the delivery is retried until it is delivered.

Everything runs on this machine: the receiver listens on 127.0.0.1, so the registry and the
transport are built with ``DestinationPolicy.local_testing()`` (the default policy refuses
loopback destinations).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from pendo_webhooks import (
    Actor,
    DestinationPolicy,
    Dispatcher,
    EventCategory,
    RetryPolicy,
    Secret,
    SQLiteStorage,
    WebhookRegistry,
)
from pendo_webhooks.events import new_unique_id, to_wire
from pendo_webhooks.signing import SignatureScheme, signer_for, verify
from pendo_webhooks.testing import LocalReceiver, sample_event


SECRET = "s3cr3t-with-special-chars!&?<>"
#: The attempt time the step-1 signatures carry (fixed, so they match the known answers in
#: docs/reference/wire-format.md).
SIGNED_AT = datetime(2021, 7, 20, 17, 58, tzinfo=timezone.utc)
#: Short waits so the outage in step 4 takes a second, not the real schedule's 5 s and 30 s.
DEMO_RETRY = RetryPolicy(schedule=[0.3, 0.6, 1.0, 1.0, 1.0])


def wire_format() -> None:
    """
    Step 1: Pendo's exact bytes and both signatures, verified the way a receiver does.
    """
    event = sample_event(EventCategory.GUIDE_DISPLAYED)
    body = to_wire(event)
    secret = Secret(SECRET)
    headers = signer_for(SignatureScheme.BOTH, [secret]).sign(
        body, msg_id=event.unique_id, timestamp=int(SIGNED_AT.timestamp())
    )
    print(f"guideDisplayed: {len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()}")
    for name in sorted(headers):
        print(f"  {name}: {headers[name]}")
    verify(body, headers, [secret], clock=lambda: SIGNED_AT)
    print("  verified by the receiver-side helpers")


def lifecycle(db: Path) -> int:
    """
    Steps 2-4 on the SQLite file *db*; returns the exit status.
    """
    admin = Actor("admin@example.com", is_admin=True)
    local = DestinationPolicy.local_testing()
    with (
        SQLiteStorage(db) as storage,
        LocalReceiver(secrets=[SECRET]) as receiver,
    ):
        registry = WebhookRegistry(storage, destinations=local)
        with Dispatcher(registry, retry=DEMO_RETRY) as dispatcher:
            print(f"\nstore {db}")
            hook = registry.create(
                admin,
                name="Everything to the local receiver",
                url=receiver.url,
                secret=SECRET,
                categories=set(EventCategory),
            )
            print(f"created  {hook.id} (enabled={hook.enabled})")

            test = dispatcher.send_test(admin, hook.id)
            print(f"tested   HTTP {test.status} in {test.latency * 1000:.0f} ms, {test.category}")
            hook = registry.enable(admin, hook.id)
            print(f"enabled  {hook.id} (enabled={hook.enabled})")

            print("\ndispatching one event of every type")
            for category in EventCategory:
                result = dispatcher.dispatch(sample_event(category, unique_id=new_unique_id()))
                outcome = result.for_webhook(hook.id)
                print(f"  {category.value:<26} {outcome.outcome.value}")

            print("\nthe receiver goes down: it answers 503 twice")
            receiver.queue(503, 503)
            event = sample_event(EventCategory.NPS_SUBMITTED, unique_id=new_unique_id())
            first = dispatcher.dispatch(event).for_webhook(hook.id)
            print(f"  attempt 1: {first.outcome.value} ({first.reason})")
            summary = dispatcher.drain(timeout=30)
            print(f"  drain: {summary.attempts} more attempts, {summary.delivered} delivered")

            delivery = dispatcher.deliveries(admin, webhook_id=hook.id, limit=1000)
            by_event = {d.event_id: d for d in delivery}
            final = by_event[event.unique_id]
            print(f"  delivery {final.id}: {final.status.value} after {final.attempts} attempts")

        received = receiver.requests
        verified = sum(1 for r in received if r.verified)
        outage = [r for r in received if r.header("webhook-id") == event.unique_id]
        same_body = len({r.body for r in outage}) == 1
        print(f"\nreceiver: {len(received)} requests, {verified} with valid signatures")
        print(f"  the outage: {len(outage)} requests, one webhook-id, same bytes: {same_body}")
        all_good = verified == len(received) and same_body and final.status.value == "delivered"
        return 0 if all_good else 1


def main(argv: list[str] | None = None) -> int:
    """
    Run the demo.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--db", type=Path, help="SQLite file (default: a new temporary file)")
    args = parser.parse_args(argv)
    db: Path = args.db or Path(tempfile.mkdtemp(prefix="pendo-webhooks-")) / "webhooks.sqlite3"
    print("pendo-webhooks quick start\n")
    wire_format()
    return lifecycle(db)


if __name__ == "__main__":
    sys.exit(main())
