"""
The pendo-webhooks quick start: Pendo's exact bytes, signed, and verified the way a receiver does.

Run it from a checkout with the package installed:

    python examples/quickstart.py

For each of the nine event types it prints the exact wire body, the Pendo hex signature and the
Standard Webhooks headers, then verifies them with the receiver-side helpers.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import datetime, timezone

from pendo_webhooks import EventCategory, Secret
from pendo_webhooks.events import parse_event, to_wire
from pendo_webhooks.signing import SignatureScheme, signer_for, verify
from pendo_webhooks.testing import sample_event


SECRET = Secret("s3cr3t-with-special-chars!&?<>")
#: The attempt time the signatures carry (fixed, so the output is the same on every run).
SIGNED_AT = datetime(2021, 7, 20, 17, 58, tzinfo=timezone.utc)


def show_wire_format() -> None:
    """
    Print every event type's wire body and signatures, and verify them as a receiver would.
    """
    signer = signer_for(SignatureScheme.BOTH, [SECRET])
    for category in EventCategory:
        event = sample_event(category)
        body = to_wire(event)
        headers = signer.sign(body, msg_id=event.unique_id, timestamp=int(SIGNED_AT.timestamp()))
        print(f"== {category.value}: {len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()}")
        print(body.decode("utf-8"))
        for name in sorted(headers):
            print(f"   {name}: {headers[name]}")
        # The receiver's side: the signatures verify and the body parses back to the same event.
        verify(body, headers, [SECRET], clock=lambda: SIGNED_AT)
        assert parse_event(body) == event
        print("   verified: both signatures match, and the body parses back to the same event")


def main() -> int:
    """
    Run the demo.
    """
    print("pendo-webhooks quick start\n")
    show_wire_format()
    return 0


if __name__ == "__main__":
    sys.exit(main())
