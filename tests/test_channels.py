"""
Channels: the kind is looked up in one table; a host configures or replaces a kind's channel.

* ``Dispatcher(channels=...)`` replaces the given kinds' channels and keeps the others;
  a key that is not a storable webhook kind, or a value that is not a Channel, is refused
  before anything is built;
* ``SegmentFormatter(library_name=...)`` reaches the stored and sent messages (and the
  "Test" button) through a Segment channel;
* a host channel replacing URL handling formats at enqueue and builds each request;
* credentials are scrubbed out of stored response excerpts and errors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import pytest

from pendo_webhooks.channels import (
    Channel,
    Message,
    SegmentChannel,
    URLChannel,
    channel_table,
)
from pendo_webhooks.dispatcher import Dispatcher, Outcome
from pendo_webhooks.events import Event
from pendo_webhooks.exceptions import ConfigurationError, TransportError, ValidationError
from pendo_webhooks.formatters import SegmentFormatter
from pendo_webhooks.registry import Actor, Webhook, WebhookKind, WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage
from pendo_webhooks.testing import RecordingTransport, sample_event
from pendo_webhooks.transports import OutgoingRequest


ADMIN = Actor("u-1", is_admin=True)


def _registry() -> WebhookRegistry:
    return WebhookRegistry(InMemoryStorage())


def _segment(registry: WebhookRegistry, write_key: str = "wk-secret-123") -> Webhook:
    hook = registry.create(
        ADMIN, name="S", kind="segment", write_key=write_key, categories={"accountCreated"}
    )
    return registry.enable(ADMIN, hook.id)


def _url(registry: WebhookRegistry) -> Webhook:
    hook = registry.create(
        ADMIN, name="U", url="https://hooks.example.com/in", categories={"accountCreated"}
    )
    return registry.enable(ADMIN, hook.id)


class Shouting:
    """
    A host channel for URL webhooks: a plain-text body, sent alone, unsigned.
    """

    max_message_bytes = 1_000
    max_batch_messages = 1

    def format(self, event: Event) -> bytes:
        return f"{event.category}!".upper().encode()

    def refuse(self, body: bytes) -> str | None:
        return "too loud" if body.startswith(b"NO") else None

    def plan(self, sizes: Sequence[int]) -> list[int]:
        return [1] * len(sizes)

    def request(
        self, webhook: Webhook, messages: Sequence[Message], *, now: datetime
    ) -> OutgoingRequest:
        (message,) = messages
        return OutgoingRequest(
            url=webhook.destination, body=message.body, headers={"X-Event": message.event_id}
        )

    def scrub(self, webhook: Webhook, data: bytes) -> bytes:
        return data.replace(b"hush", b"<redacted>") if b"hush" in data else data


class TestTable:
    def test_defaults_and_replacements(self) -> None:
        table = channel_table()
        assert isinstance(table.for_kind(WebhookKind.URL), URLChannel)
        assert isinstance(table.for_kind(WebhookKind.SEGMENT), SegmentChannel)
        shouting = Shouting()
        assert isinstance(shouting, Channel)
        assert channel_table({WebhookKind.URL: shouting}).for_kind(WebhookKind.URL) is shouting

    def test_an_unknown_kind_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="no webhook kind 'slack'"):
            channel_table({"slack": Shouting()})

    def test_a_non_channel_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="must be a Channel, not str"):
            channel_table({"url": "loud"})  # type: ignore[dict-item]

    def test_the_dispatcher_refuses_before_building_a_transport(self) -> None:
        with pytest.raises(ConfigurationError, match="no webhook kind"):
            Dispatcher(_registry(), channels={"carrier-pigeon": Shouting()})

    def test_a_url_channel_checks_its_limit(self) -> None:
        with pytest.raises(ValidationError, match="max_body_bytes"):
            URLChannel(max_body_bytes=0)


class TestSegmentLibraryName:
    def test_stored_sent_and_tested_messages_carry_it(self) -> None:
        registry = _registry()
        hook = _segment(registry)
        transport = RecordingTransport()
        channel = SegmentChannel(formatter=SegmentFormatter(library_name="acme-sync"))
        with Dispatcher(registry, transport=transport, channels={"segment": channel}) as d:
            outcome = d.dispatch(sample_event("accountCreated")).for_webhook(hook.id)
            assert outcome.outcome is Outcome.DELIVERED
            stored = registry.storage.get_delivery(outcome.delivery_id or "")
            assert json.loads(stored.body)["context"]["library"]["name"] == "acme-sync"
            sent = json.loads(transport.requests[0].body)
            assert sent["batch"][0]["context"]["library"]["name"] == "acme-sync"
            test = d.send_test(ADMIN, hook.id)
            assert json.loads(test.request_body)["batch"][0]["context"]["library"]["name"] == (
                "acme-sync"
            )


class TestHostChannel:
    def test_it_formats_sends_and_scrubs(self) -> None:
        registry = _registry()
        hook = _url(registry)
        transport = RecordingTransport([TransportError("error", "peer said hush")])
        with Dispatcher(registry, transport=transport, channels={"url": Shouting()}) as d:
            event = sample_event("accountCreated")
            outcome = d.dispatch(event).for_webhook(hook.id)
            assert outcome.outcome is Outcome.RETRY
            assert "hush" not in (outcome.reason or "")
            assert "<redacted>" in (outcome.reason or "")
            (attempt,) = registry.storage.list_attempts(outcome.delivery_id or "")
            assert "hush" not in (attempt.detail or "")
        (request,) = transport.requests
        assert request.body == b"ACCOUNTCREATED!"
        assert request.headers == {"X-Event": event.unique_id}

    def test_a_refused_body_fails_unsent(self) -> None:
        registry = _registry()
        hook = _url(registry)

        class Refusing(Shouting):
            def format(self, event: Event) -> bytes:
                return b"NO " + super().format(event)

        transport = RecordingTransport()
        with Dispatcher(registry, transport=transport, channels={"url": Refusing()}) as d:
            outcome = d.dispatch(sample_event("accountCreated")).for_webhook(hook.id)
        assert (outcome.outcome, outcome.reason) == (Outcome.FAILED, "too loud")
        assert transport.requests == []

    def test_the_test_button_uses_it(self) -> None:
        registry = _registry()
        hook = _url(registry)
        transport = RecordingTransport()
        with Dispatcher(registry, transport=transport, channels={"url": Shouting()}) as d:
            result = d.send_test(ADMIN, hook.id, "accountCreated")
        assert result.accepted
        assert result.request_body == b"ACCOUNTCREATED!"


class TestSegmentScrub:
    def test_a_webhook_without_write_key_is_left_alone(self) -> None:
        registry = _registry()
        hook = _url(registry)
        data = b"nothing to hide"
        assert SegmentChannel().scrub(hook, data) is data

    def test_an_echoed_key_in_an_error_is_scrubbed(self) -> None:
        registry = _registry()
        hook = _segment(registry)
        transport = RecordingTransport([TransportError("error", "bad key wk-secret-123")])
        with Dispatcher(registry, transport=transport) as d:
            outcome = d.dispatch(sample_event("accountCreated")).for_webhook(hook.id)
        assert outcome.outcome is Outcome.RETRY
        assert "wk-secret-123" not in (outcome.reason or "")
        (attempt,) = registry.storage.list_attempts(outcome.delivery_id or "")
        assert "wk-secret-123" not in (attempt.detail or "")
