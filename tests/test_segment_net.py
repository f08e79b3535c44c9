"""
Segment webhooks against a real HTTP receiver on loopback (tests/servers.py).

What a fake transport cannot show: the batch bodies and headers as they arrive on the wire,
the receiver's own count of messages per batch, retries through a real socket, and
urllib3's debug log lines. Time between attempts is the injected clock's.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from pendo_webhooks.channels._segment import batch_request
from pendo_webhooks.dispatcher import DeliveryStatus, Dispatcher, Outcome
from pendo_webhooks.events import Event, new_unique_id
from pendo_webhooks.exceptions import PendoWebhooksError
from pendo_webhooks.formatters import (
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    SegmentFormatter,
)
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.storage import Storage
from pendo_webhooks.testing import FrozenClock, sample_event
from pendo_webhooks.transports import OutgoingRequest

from .conftest import START, use_each_transport
from .servers import Receiver, RecordedRequest, Reply


# Every test here runs once per guarded transport (Urllib3Transport, RequestsTransport).
TransportClass: Any = None
GuardedTransport = Any
_each_transport = use_each_transport(__name__)


pytestmark = pytest.mark.slow

ADMIN = Actor("u-1", is_admin=True)
WRITE_KEY = "WK-net-s3cr3t-Zq9"
TOKEN = base64.b64encode(f"{WRITE_KEY}:".encode()).decode("ascii")
LOCAL = DestinationPolicy.local_testing()
RETRY = RetryPolicy(schedule=[5, 30, 60], jitter=0)


class Setup:
    """
    A registry and a dispatcher with a real transport, on one store and a frozen clock.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.clock = FrozenClock(START)
        self.registry = WebhookRegistry(storage, destinations=LOCAL, clock=self.clock)
        self.transport = TransportClass(destinations=LOCAL)
        self.dispatcher = Dispatcher(
            self.registry,
            transport=self.transport,
            retry=RETRY,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng=random.Random(3),
        )

    def hook(self, endpoint: str, **overrides: Any) -> Webhook:
        created = self.registry.create(
            ADMIN,
            name="Segment on loopback",
            kind="segment",
            write_key=WRITE_KEY,
            segment_endpoint=endpoint,
            categories=["trackEventReceived", "npsSubmitted"],
            **overrides,
        )
        return self.registry.enable(ADMIN, created.id)

    def close(self) -> None:
        self.dispatcher.close()
        self.transport.close()


@pytest.fixture(name="setup")
def _setup(outbox: Storage) -> Iterator[Setup]:
    built = Setup(outbox)
    yield built
    built.close()


def track(**overrides: Any) -> Event:
    """A track event with a fresh uniqueId (unless one is given)."""
    overrides.setdefault("unique_id", new_unique_id())
    return sample_event("trackEventReceived", **overrides)


def items(request: RecordedRequest) -> list[bytes]:
    """The exact bytes of each message of a batch as received (a JSON scanner finds them)."""
    body = request.body
    if (request.header("Content-Encoding") or "") == "gzip":
        body = gzip.decompress(body)
    text = body.decode("utf-8")
    assert text.startswith('{"batch":[')
    decoder = json.JSONDecoder()
    pos, found = len('{"batch":['), []
    while text[pos] != "]":
        _, end = decoder.raw_decode(text, pos)
        found.append(text[pos:end].encode("utf-8"))
        pos = end + 1 if text[end] == "," else end
    return found


def message_ids(request: RecordedRequest) -> list[str]:
    """The messageIds of a batch as received."""
    return [json.loads(m)["messageId"] for m in items(request)]


def test_a_batch_as_the_receiver_sees_it(setup: Setup) -> None:
    """
    The receiver gets POST /v1/batch under the endpoint's path, JSON, Basic auth with the
    write key and an empty password, and the stored messages byte for byte.
    """
    with Receiver() as receiver:
        hook = setup.hook(receiver.url_for("/segment"))
        events = [track() for _ in range(20)]
        setup.dispatcher.enqueue_many(events)
        summary = setup.dispatcher.drain(timeout=60)
        (request,) = receiver.requests
    assert summary.delivered == 20
    assert (request.method, request.path) == ("POST", "/segment/v1/batch")
    assert request.header("Authorization") == f"Basic {TOKEN}"
    assert base64.b64decode(TOKEN) == f"{WRITE_KEY}:".encode()
    assert request.header("Content-Type") == "application/json"
    stored = {d.event_id: d.body for d in setup.storage.list_deliveries(webhook_id=hook.id)}
    assert sorted(items(request)) == sorted(stored.values())
    assert sorted(message_ids(request)) == sorted(e.unique_id for e in events)


def test_503_then_200_delivers_the_whole_batch(setup: Setup) -> None:
    """
    503 then 200: every message of the batch is delivered, with the same messageIds and
    bytes both times, and two attempts each.
    """
    with Receiver(replies=[Reply(status=503)]) as receiver:
        setup.hook(receiver.url)
        events = [track() for _ in range(10)]
        setup.dispatcher.enqueue_many(events)
        summary = setup.dispatcher.drain(timeout=600)
        first, second = receiver.requests
    assert (summary.delivered, summary.retried, summary.pending) == (10, 10, 0)
    assert sorted(message_ids(first)) == sorted(e.unique_id for e in events)
    assert sorted(items(first)) == sorted(items(second))
    for delivery in setup.storage.list_deliveries():
        assert delivery.status is DeliveryStatus.DELIVERED
        attempts = setup.storage.list_attempts(delivery.id)
        assert [a.status_code for a in attempts] == [503, 200]


def test_400_is_final(setup: Setup) -> None:
    """
    A 400 from Segment fails the batch's messages for good: one request, no retry.
    """
    with Receiver(replies=[Reply(status=400, body=b'{"success":false}')]) as receiver:
        setup.hook(receiver.url)
        setup.dispatcher.enqueue_many([track(), track()])
        summary = setup.dispatcher.drain(timeout=600)
        assert len(receiver.requests) == 1
    assert (summary.failed, summary.pending) == (2, 0)


@pytest.mark.parametrize("size", [MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1])
def test_the_32_kb_boundary(setup: Setup, size: int) -> None:
    """
    A message of exactly 32,768 bytes is sent; one of 32,769 is failed at enqueue and the
    receiver sees no request at all (not even a connection).
    """
    formatter = SegmentFormatter()
    unique_id = new_unique_id()
    base = len(formatter.format(track(unique_id=unique_id, event_properties={"pad": ""})))
    event = track(unique_id=unique_id, event_properties={"pad": "p" * (size - base)})
    assert len(formatter.format(event)) == size
    with Receiver() as receiver:
        setup.hook(receiver.url)
        outcome = setup.dispatcher.dispatch(event).outcomes[0]
        requests, connections = receiver.requests, receiver.connections
    if size == MAX_MESSAGE_BYTES:
        assert outcome.outcome is Outcome.DELIVERED
        assert [len(m) for r in requests for m in items(r)] == [size]
    else:
        assert outcome.outcome is Outcome.FAILED
        assert outcome.reason == "payload too large: 32769 bytes > 32768"
        assert (requests, connections) == ([], 0)


def test_6000_messages_respect_both_batch_limits(setup: Setup) -> None:
    """
    6,000 queued messages of ~1 KB arrive in batches that each hold at most 2,500 messages
    and 475,000 bytes, and together every messageId exactly once.
    """
    events = [track(event_properties={"note": "n" * 380}) for _ in range(6_000)]
    sizes = {len(SegmentFormatter().format(e)) for e in events[:50]}
    assert min(sizes) >= 1_000
    with Receiver() as receiver:
        setup.hook(receiver.url)
        setup.dispatcher.enqueue_many(events)
        summary = setup.dispatcher.drain(timeout=60)
        requests = receiver.requests
    assert (summary.delivered, summary.pending) == (6_000, 0)
    assert all(len(r.body) <= MAX_BATCH_BYTES for r in requests)
    assert all(len(items(r)) <= MAX_BATCH_MESSAGES for r in requests)
    received = [i for r in requests for i in message_ids(r)]
    assert len(received) == 6_000
    assert set(received) == {e.unique_id for e in events}
    # And the batches are full, not trickled: only a claim's last batch may be short (a
    # claim takes at most 2,500 messages).
    total = sum(len(r.body) for r in requests)
    claims = -(-6_000 // MAX_BATCH_MESSAGES)
    assert len(requests) <= -(-total // MAX_BATCH_BYTES) + claims


def test_gzip_on_the_wire(setup: Setup) -> None:
    """
    With segment_gzip, the receiver gets Content-Encoding: gzip and a body that inflates to
    the batch.
    """
    with Receiver() as receiver:
        setup.hook(receiver.url, segment_gzip=True)
        event = track()
        assert setup.dispatcher.dispatch(event).outcomes[0].outcome is Outcome.DELIVERED
        (request,) = receiver.requests
    assert request.header("Content-Encoding") == "gzip"
    assert items(request) == [SegmentFormatter().format(event)]


def test_the_test_button(setup: Setup) -> None:
    """
    The Test button sends one sample track in a batch of one to the real receiver.
    """
    with Receiver(replies=[Reply(status=200, body=b'{"success":true}')]) as receiver:
        created = setup.registry.create(
            ADMIN,
            name="Segment test",
            kind="segment",
            write_key=WRITE_KEY,
            segment_endpoint=receiver.url,
            categories=["npsSubmitted"],
        )
        result = setup.dispatcher.send_test(ADMIN, created.id)
        (request,) = receiver.requests
    assert result.accepted
    assert result.response_excerpt == '{"success":true}'
    assert message_ids(request) == [result.event_id]
    assert json.loads(items(request)[0])["event"] == "npsSubmitted"
    assert request.header("Authorization") == f"Basic {TOKEN}"


def test_write_key_never_in_logs_or_errors(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    """
    At DEBUG, with urllib3's own logging on, through a success, a refused connection and a
    Test of a dead endpoint, no log line, error or outcome shows the write key or its token.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG), Receiver() as receiver:
        logging.getLogger("urllib3").setLevel(logging.DEBUG)
        hook = setup.hook(receiver.url)
        texts += [repr(o) for o in setup.dispatcher.dispatch(track()).outcomes]
        dead = setup.hook(f"http://127.0.0.1:{closed_port}/")
        texts += [repr(o) for o in setup.dispatcher.dispatch(track()).outcomes]
        result = setup.dispatcher.send_test(ADMIN, dead.id)
        texts += [repr(result), str(result.error)]
        try:
            setup.transport.send(_request_to(dead, closed_port))
        except PendoWebhooksError as exc:
            texts += [str(exc), repr(exc)]
        else:  # pragma: no cover - the port is closed
            pytest.fail("a closed port answered")
        for delivery in setup.storage.list_deliveries():
            texts.append(str(delivery.last_error))
            texts += [str(a.detail) for a in setup.storage.list_attempts(delivery.id)]
    assert hook.id in caplog.text
    assert "urllib3" in {r.name.split(".")[0] for r in caplog.records}
    assert not result.accepted
    assert "connect" in str(result.error)
    for text in [caplog.text, *texts]:
        assert WRITE_KEY not in text
        assert TOKEN not in text


def _request_to(webhook: Webhook, port: int) -> OutgoingRequest:
    """A batch request with the write key's Authorization header, to a closed port."""
    assert webhook.write_key is not None
    return batch_request(
        endpoint=f"http://127.0.0.1:{port}/",
        write_key=webhook.write_key,
        messages=[b"{}"],
        now=START,
    )
