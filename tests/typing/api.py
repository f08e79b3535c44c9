"""
Type-checked only, never run: the public API as a user writes it.

mypy --strict checks that implementations satisfy the Protocols structurally.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pendo_webhooks import EventCategory, Secret
from pendo_webhooks.dispatcher import (
    Attempt,
    Delivery,
    DeliveryOutcome,
    DeliveryStatus,
    Dispatcher,
    DispatchResult,
    DrainSummary,
    TestResult,
)
from pendo_webhooks.events import Event, parse_event, to_wire
from pendo_webhooks.formatters import Formatter, SegmentFormatter, URLFormatter
from pendo_webhooks.pipeline import Decision, FirstSeenTracker, TrackerStore
from pendo_webhooks.registry import Actor, AdminOnly, PermissionPolicy, WebhookRegistry
from pendo_webhooks.signing import (
    CombinedSigner,
    PendoSigner,
    SignatureScheme,
    Signer,
    StandardSigner,
    UnsignedSigner,
    signer_for,
    verify,
)
from pendo_webhooks.storage import (
    AuditStore,
    ExclusionStore,
    FirstSeenStore,
    InMemoryStorage,
    OutboxStore,
    PlaintextCodec,
    PostgresStorage,
    SecretCodec,
    SQLiteStorage,
    Storage,
    WebhookStore,
)
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import OutgoingRequest, RequestsTransport, Transport


secret: Secret = Secret("any text, special chars ok!&?<>")
category: EventCategory = EventCategory.NPS_SUBMITTED

event: Event = sample_event(EventCategory.NPS_SUBMITTED, visitor_id="v-1")
body: bytes = to_wire(event)
again: Event = parse_event(body)

pendo_signer: Signer = PendoSigner(secret, header="X-Pendo-Signature")
standard_signer: Signer = StandardSigner([secret, Secret.generate()])
unsigned_signer: Signer = UnsignedSigner()
combined_signer: Signer = CombinedSigner([standard_signer, pendo_signer])
built: Signer = signer_for(SignatureScheme.BOTH, [secret])
signed: dict[str, str] = built.sign(b"{}", msg_id="m", timestamp=0)
verify(b"{}", signed, [secret, "previous secret"], scheme="standard")

transport: Transport = RequestsTransport()
request: OutgoingRequest = OutgoingRequest(url="https://hooks.example.com/x", body=b"{}")

memory: Storage = InMemoryStorage()
sqlite: Storage = SQLiteStorage(Path("x.sqlite3"))
webhooks: WebhookStore = memory
audit_store: AuditStore = sqlite
policy: PermissionPolicy = AdminOnly()
codec: SecretCodec = PlaintextCodec()
registry: WebhookRegistry = WebhookRegistry(memory, policy=policy)
admin: Actor = Actor("u-1", is_admin=True)

outbox: OutboxStore = memory
recording: Transport = RecordingTransport([503, 200])
dispatcher = Dispatcher(
    registry, memory, transport=recording, clock=FrozenClock(), sleep=FrozenClock().sleep
)
result: DispatchResult = dispatcher.dispatch(event)
due: list[DeliveryOutcome] = dispatcher.run_due(limit=10, concurrency=4)
summary: DrainSummary = dispatcher.drain(60, concurrency=2)
worker: DrainSummary = dispatcher.run_worker(threading.Event(), install_signal_handlers=False)
tested: TestResult = dispatcher.send_test(admin, "wh_1")
replayed: Delivery = dispatcher.redeliver("dlv_1")
listed: list[Delivery] = dispatcher.deliveries(admin, status=DeliveryStatus.DEAD)
attempts: list[Attempt] = dispatcher.attempts(admin, "dlv_1")

first_seen: FirstSeenStore = memory
exclusion_store: ExclusionStore = sqlite
tracker_store: TrackerStore = sqlite
tracker: FirstSeenTracker = FirstSeenTracker(sqlite, parent_accounts=True)
decisions: list[Decision] = dispatcher.explain(event)

url_formatter: Formatter = URLFormatter()
segment_formatter: Formatter = SegmentFormatter(library_name="acme", library_version="1.0")
segment_message: bytes = segment_formatter.format(event)
many: list[DispatchResult] = dispatcher.enqueue_many([event])
sent_now: list[DispatchResult] = dispatcher.dispatch_many([event])

postgres: Storage = PostgresStorage("postgresql://app@db.internal/product")
durable_outcomes: Storage = SQLiteStorage(Path("y.sqlite3"), outcome_synchronous="FULL")
