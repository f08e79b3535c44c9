"""
Alerts (issue 16): a host callback and operations webhooks, told of exhausted deliveries,
disabled webhooks and recovered ones.

The engine paths run on every store (``outbox``: memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import pytest
import standardwebhooks

from pendo_webhooks.alerts import (
    OPERATIONS_CATEGORIES,
    Alert,
    Alerts,
    OperationsCategory,
    sample_alert,
)
from pendo_webhooks.dispatcher import Delivery, DeliveryStatus, Dispatcher
from pendo_webhooks.events import Event, new_unique_id
from pendo_webhooks.exceptions import (
    ConfigurationError,
    InvalidEventPayload,
    UnknownEventType,
    ValidationError,
)
from pendo_webhooks.instrumentation import (
    DeliveryChanged,
    DeliveryState,
    WebhookChanged,
    WebhookState,
)
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.schemas import operations_schema
from pendo_webhooks.signing import verify
from pendo_webhooks.storage import InMemoryStorage, Storage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import OutgoingRequest

from .conftest import START


ADMIN = Actor("u-1", is_admin=True)
OPS_URL = "https://ops.example.com/alerts"
OPS_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ONE_TRY = RetryPolicy(max_retries=0)


class World:
    """
    A registry with the Alerts hook, a Pendo webhook, and (optionally) an operations webhook.
    """

    def __init__(self, storage: Storage, *, operations: bool = True, **alert_options: Any) -> None:
        self.storage = storage
        self.clock = FrozenClock(START)
        self.paged: list[Alert] = []
        self.alerts = Alerts(
            storage, callback=self.paged.append, clock=self.clock, **alert_options
        )
        self.registry = WebhookRegistry(storage, clock=self.clock, hooks=[self.alerts])
        self.nps = self.make(
            name="NPS", url="https://hooks.example.com/nps", categories=["npsSubmitted"]
        )
        self.ops: Webhook | None = None
        if operations:
            self.ops = self.make(
                name="Ops", url=OPS_URL, categories=OPERATIONS_CATEGORIES, secret=OPS_SECRET
            )

    def make(self, **fields: Any) -> Webhook:
        fields.setdefault("secret", "s3cret")
        hook = self.registry.create(ADMIN, **fields)
        return self.registry.enable(ADMIN, hook.id)

    def dispatcher(self, transport: RecordingTransport, **options: Any) -> Dispatcher:
        return Dispatcher(
            self.registry, self.storage, transport=transport, clock=self.clock, **options
        )

    def ops_deliveries(self) -> list[Delivery]:
        assert self.ops is not None
        return self.storage.list_deliveries(webhook_id=self.ops.id)

    @staticmethod
    def to_ops(transport: RecordingTransport) -> list[OutgoingRequest]:
        return [r for r in transport.requests if r.url == OPS_URL]


def fresh() -> Event:
    return sample_event("npsSubmitted", unique_id=new_unique_id())


def body_of(request: OutgoingRequest) -> dict[str, Any]:
    loaded = json.loads(request.body)
    assert isinstance(loaded, dict)
    return loaded


class TestDeliveryExhausted:
    def test_one_alert_to_the_callback_and_one_signed_operations_delivery(
        self, outbox: Storage
    ) -> None:
        world = World(outbox)
        transport = RecordingTransport([503, 503, 503], default=200)
        policy = RetryPolicy(max_retries=2, schedule=[10], jitter=0)
        with world.dispatcher(transport, retry=policy) as dispatcher:
            result = dispatcher.dispatch(sample_event("npsSubmitted"))
            for _ in range(2):
                world.clock.advance(timedelta(seconds=10))
                dispatcher.run_due()
            dispatcher.run_due()
        dead_id = result.for_webhook(world.nps.id).delivery_id
        assert outbox.get_delivery(dead_id).status is DeliveryStatus.DEAD

        (alert,) = world.paged
        assert (alert.kind, alert.webhook_id, alert.delivery_id) == (
            OperationsCategory.DELIVERY_EXHAUSTED,
            world.nps.id,
            dead_id,
        )
        assert (alert.attempts, alert.event, alert.operations) == (3, "npsSubmitted", False)
        assert alert.reason is not None
        assert alert.reason.startswith("HTTP 503")

        (stored,) = world.ops_deliveries()
        assert stored.status is DeliveryStatus.DELIVERED
        assert (stored.event_id, stored.category) == (alert.id, alert.kind)
        (request,) = world.to_ops(transport)
        assert request.body == stored.body == alert.to_body()
        at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), START.tzinfo)
        verify(request.body, request.headers, OPS_SECRET, clock=lambda: at)
        # The Standard Webhooks reference package accepts it too.
        headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
        wh = standardwebhooks.Webhook(OPS_SECRET)
        wh._Webhook__verify_timestamp = lambda _ts: at  # type: ignore[attr-defined]  # frozen clock
        assert wh.verify(request.body, headers) == body_of(request)

        body = body_of(request)
        assert body["type"] == "pendo_webhooks.delivery.exhausted"
        assert body["timestamp"] == "2026-01-01T00:00:20.000Z"
        assert body["data"] == {
            "webhook_id": world.nps.id,
            "webhook_name": "NPS",
            "delivery_id": dead_id,
            "event_id": outbox.get_delivery(dead_id).event_id,
            "event": "npsSubmitted",
            "attempts": 3,
            "reason": alert.reason,
        }

    def test_a_failed_delivery_is_no_alert(self, outbox: Storage) -> None:
        world = World(outbox)
        with world.dispatcher(RecordingTransport(default=404)) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
        assert world.paged == []
        assert world.ops_deliveries() == []

    def test_without_an_operations_webhook_the_callback_still_hears(self, outbox: Storage) -> None:
        world = World(outbox, operations=False)
        with world.dispatcher(RecordingTransport(default=503), retry=ONE_TRY) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
        assert [a.kind.short for a in world.paged] == ["delivery.exhausted"]
        assert len(outbox.list_deliveries()) == 1

    def test_operations_off_keeps_alerts_to_the_callback(self, outbox: Storage) -> None:
        world = World(outbox, operations=False)
        world.alerts.operations = False
        world.ops = world.make(name="Ops", url=OPS_URL, categories=OPERATIONS_CATEGORIES)
        with world.dispatcher(RecordingTransport(default=503), retry=ONE_TRY) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
        assert len(world.paged) == 1
        assert world.ops_deliveries() == []
        assert world.alerts.sweep(START) == 0

    def test_the_operations_delivery_is_retried_on_503_by_the_same_policy(
        self, outbox: Storage
    ) -> None:
        world = World(outbox)
        transport = RecordingTransport([503, 503, 503, 200])
        policy = RetryPolicy(max_retries=1, schedule=[30], jitter=0)
        with world.dispatcher(transport, retry=policy) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
            world.clock.advance(timedelta(seconds=30))
            dispatcher.run_due()  # the NPS retry: dead
            dispatcher.run_due()  # the ops delivery, if that run did not take it: 503
            (stored,) = world.ops_deliveries()
            assert stored.status is DeliveryStatus.PENDING
            assert stored.next_attempt_at == START + timedelta(seconds=60)
            world.clock.advance(timedelta(seconds=30))
            dispatcher.run_due()
        (stored,) = world.ops_deliveries()
        assert stored.status is DeliveryStatus.DELIVERED
        assert [a.status_code for a in outbox.list_attempts(stored.id)] == [503, 200]
        ops_requests = world.to_ops(transport)
        assert len(ops_requests) == 2
        assert ops_requests[0].headers["webhook-id"] == ops_requests[1].headers["webhook-id"]
        assert ops_requests[0].body == ops_requests[1].body

    def test_a_dead_operations_delivery_does_not_alert_itself(self, outbox: Storage) -> None:
        world = World(outbox)
        transport = RecordingTransport(default=503)  # everything is down, ops included
        with world.dispatcher(transport, retry=ONE_TRY) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
            for _ in range(3):
                dispatcher.run_due()
        (ops_delivery,) = world.ops_deliveries()
        assert ops_delivery.status is DeliveryStatus.DEAD
        # Two alerts: the NPS delivery, then the ops delivery (to the callback only).
        assert [(a.webhook_id, a.operations) for a in world.paged] == [
            (world.nps.id, False),
            (world.ops.id if world.ops else "", True),
        ]
        assert world.paged[1].event == "pendo_webhooks.delivery.exhausted"
        assert len(outbox.list_deliveries()) == 2
        assert len(transport.requests) == 2
        # A sweep does not bring it back either.
        assert world.alerts.sweep(START) == 0
        assert len(outbox.list_deliveries()) == 2

    def test_two_operations_webhooks_do_not_ping_pong(self, outbox: Storage) -> None:
        world = World(outbox)
        world.make(
            name="Ops 2", url="https://ops2.example.com/in", categories=["delivery.exhausted"]
        )
        transport = RecordingTransport(default=503)
        with world.dispatcher(transport, retry=ONE_TRY) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
            dispatcher.run_due()
            dispatcher.run_due()
        # One Pendo delivery, one alert to each ops webhook; their deaths go nowhere.
        assert len(outbox.list_deliveries()) == 3
        assert [a.operations for a in world.paged] == [False, True, True]


class TestWebhookAlerts:
    def test_a_410_system_disable_is_webhook_disabled(self, outbox: Storage) -> None:
        world = World(outbox)
        transport = RecordingTransport([410])
        with world.dispatcher(transport) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
            dispatcher.run_due()
        (alert,) = world.paged
        assert (alert.kind, alert.webhook_id, alert.by) == (
            OperationsCategory.WEBHOOK_DISABLED,
            world.nps.id,
            "system",
        )
        assert alert.reason == "HTTP 410 Gone from hooks.example.com"
        (stored,) = world.ops_deliveries()
        assert stored.status is DeliveryStatus.DELIVERED
        (request,) = world.to_ops(transport)
        assert body_of(request) == {
            "type": "pendo_webhooks.webhook.disabled",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "data": {
                "webhook_id": world.nps.id,
                "webhook_name": "NPS",
                "by": "system",
                "reason": "HTTP 410 Gone from hooks.example.com",
            },
        }

    def test_an_admin_disable_is_no_alert_by_default(self, outbox: Storage) -> None:
        world = World(outbox)
        world.registry.disable(ADMIN, world.nps.id, reason="maintenance")
        assert world.paged == []
        assert world.ops_deliveries() == []

    def test_an_admin_disable_alerts_when_asked(self, outbox: Storage) -> None:
        world = World(outbox, admin_disables=True)
        world.registry.disable(ADMIN, world.nps.id, reason="maintenance")
        (alert,) = world.paged
        assert (alert.kind.short, alert.by, alert.reason) == (
            "webhook.disabled",
            ADMIN.id,
            "maintenance",
        )
        assert len(world.ops_deliveries()) == 1

    def test_a_recovered_signal_is_webhook_recovered(self, outbox: Storage) -> None:
        world = World(outbox)
        world.clock.advance(timedelta(minutes=5))
        world.registry.hooks.emit(
            WebhookChanged(
                webhook_id=world.nps.id,
                state=WebhookState.RECOVERED,
                by="system",
                reason="HTTP 200 after 5 minutes failing",
                at=world.clock(),
            )
        )
        (alert,) = world.paged
        assert (alert.kind.short, alert.webhook_id, alert.by) == (
            "webhook.recovered",
            world.nps.id,
            None,
        )
        transport = RecordingTransport()
        with world.dispatcher(transport) as dispatcher:
            dispatcher.run_due()
        (request,) = transport.requests
        assert body_of(request) == {
            "type": "pendo_webhooks.webhook.recovered",
            "timestamp": "2026-01-01T00:05:00.000Z",
            "data": {
                "webhook_id": world.nps.id,
                "webhook_name": "NPS",
                "reason": "HTTP 200 after 5 minutes failing",
            },
        }

    def test_failing_and_enabled_are_no_alerts(self, outbox: Storage) -> None:
        world = World(outbox)
        for state in (WebhookState.FAILING, WebhookState.ENABLED):
            world.alerts(
                WebhookChanged(webhook_id=world.nps.id, state=state, by="system", at=START)
            )
        world.alerts(
            DeliveryChanged(
                webhook_id=world.nps.id,
                delivery_id="dlv_x",
                state=DeliveryState.RETRY_SCHEDULED,
                at=START,
            )
        )
        assert world.paged == []

    def test_a_disabled_operations_webhook_is_told_to_the_others(self, outbox: Storage) -> None:
        world = World(outbox)
        other = world.make(
            name="Ops 2", url="https://ops2.example.com/in", categories=["webhook.disabled"]
        )
        assert world.ops is not None
        transport = RecordingTransport([410], default=200)
        with world.dispatcher(transport) as dispatcher:
            dispatcher.send_test(ADMIN, world.ops.id)  # not stored: no alert
            world.registry.disable_by_system(world.ops.id, reason="HTTP 410 Gone")
            dispatcher.run_due()
        (alert,) = world.paged
        assert alert.operations is True  # about an operations webhook
        # Not sent: an alert about an operations webhook stays in the callback and the log.
        assert outbox.list_deliveries(webhook_id=other.id) == []

    def test_a_deleted_webhook_is_told_without_its_name(self, outbox: Storage) -> None:
        world = World(outbox)
        world.registry.delete(ADMIN, world.nps.id)
        world.alerts(
            WebhookChanged(
                webhook_id=world.nps.id, state=WebhookState.RECOVERED, by="system", at=START
            )
        )
        (alert,) = world.paged
        assert (alert.webhook_name, alert.operations) == (None, False)


class TestTheHookNeverStopsDelivery:
    def test_a_raising_callback_is_logged_and_the_delivery_goes_on(
        self, outbox: Storage, caplog: pytest.LogCaptureFixture
    ) -> None:
        world = World(outbox)

        def broken(alert: Alert) -> None:
            raise RuntimeError("pager down " + alert.id)

        world.alerts.callback = broken
        transport = RecordingTransport([503])
        with caplog.at_level(logging.WARNING, logger="pendo_webhooks"):
            with world.dispatcher(transport, retry=ONE_TRY) as dispatcher:
                dispatcher.dispatch(sample_event("npsSubmitted"))
                dispatcher.run_due()
        assert "alert callback raised RuntimeError; ignored" in caplog.text
        assert "pager down" not in caplog.text
        (stored,) = world.ops_deliveries()
        assert stored.status is DeliveryStatus.DELIVERED

    def test_a_broken_store_is_logged_not_raised(self, caplog: pytest.LogCaptureFixture) -> None:
        class Broken(InMemoryStorage):
            def list_webhooks(self) -> list[Webhook]:
                raise OSError("disk gone")

        alerts = Alerts(Broken())
        with caplog.at_level(logging.WARNING, logger="pendo_webhooks"):
            alerts(
                WebhookChanged(
                    webhook_id="wh_1", state=WebhookState.DISABLED, by="system", at=START
                )
            )
        assert "alerts: OSError while handling WebhookChanged; ignored" in caplog.text

    def test_an_unreadable_delivery_is_told_but_not_sent(self) -> None:
        paged: list[Alert] = []
        alerts = Alerts(InMemoryStorage(), callback=paged.append)
        alerts(
            DeliveryChanged(
                webhook_id="wh_1",
                delivery_id="dlv_gone",
                state=DeliveryState.DEAD,
                attempt=6,
                reason="HTTP 503",
                at=START,
            )
        )
        (alert,) = paged
        assert (alert.delivery_id, alert.attempts, alert.operations) == ("dlv_gone", 6, True)
        assert alerts.enqueue(alert) == 0

    def test_a_callback_must_be_callable(self) -> None:
        with pytest.raises(ConfigurationError, match="callback: must be callable, not str"):
            Alerts(InMemoryStorage(), callback="page me")  # type: ignore[arg-type]


class TestSweep:
    """
    The crash window: a change stored, the process gone before the hook ran.
    """

    def crashed(self, storage: Storage) -> tuple[World, Dispatcher, RecordingTransport]:
        world = World(storage)
        # The process that made the changes had no Alerts hook: as if it died before it ran.
        bare = WebhookRegistry(storage, clock=world.clock)
        transport = RecordingTransport([503, 410])
        dispatcher = Dispatcher(
            bare, storage, transport=transport, clock=world.clock, retry=ONE_TRY
        )
        return world, dispatcher, transport

    def test_a_lost_alert_is_stored_once_by_the_sweep(self, outbox: Storage) -> None:
        world, dispatcher, _ = self.crashed(outbox)
        with dispatcher:
            dispatcher.dispatch(fresh())
            dispatcher.dispatch(fresh())  # 410: disabled by system
        assert world.ops_deliveries() == []
        assert world.alerts.sweep(START) == 2
        assert sorted(d.category.value for d in world.ops_deliveries()) == [
            "pendo_webhooks.delivery.exhausted",
            "pendo_webhooks.webhook.disabled",
        ]
        assert world.alerts.sweep(START) == 0  # idempotent: the ids are the same
        assert world.paged == []  # the callback is not called again by a sweep

    def test_the_sweep_and_the_hook_make_the_same_alerts(self, outbox: Storage) -> None:
        world = World(outbox)
        transport = RecordingTransport([503, 410])
        with world.dispatcher(transport, retry=ONE_TRY) as dispatcher:
            dispatcher.dispatch(fresh())
            dispatcher.dispatch(fresh())
        assert len(world.ops_deliveries()) == 2
        assert world.alerts.sweep(START) == 0
        assert len(world.ops_deliveries()) == 2

    def test_the_sweep_looks_only_since(self, outbox: Storage) -> None:
        world, dispatcher, _ = self.crashed(outbox)
        with dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
        assert world.alerts.sweep(START + timedelta(seconds=1)) == 0

    def test_an_admin_disable_is_swept_only_when_asked(self, outbox: Storage) -> None:
        world = World(outbox, admin_disables=False)
        WebhookRegistry(outbox, clock=world.clock).disable(ADMIN, world.nps.id, reason="later")
        assert world.alerts.sweep(START) == 0
        world.alerts.admin_disables = True
        assert world.alerts.sweep(START) == 1
        (stored,) = world.ops_deliveries()
        assert json.loads(stored.body)["data"]["reason"] == "later"

    def test_an_operations_webhook_hears_only_what_happened_after_it_was_made(
        self, outbox: Storage
    ) -> None:
        world = World(outbox, operations=False)
        with Dispatcher(
            world.registry,
            outbox,
            transport=RecordingTransport([503]),
            clock=world.clock,
            retry=ONE_TRY,
        ) as dispatcher:
            dispatcher.dispatch(sample_event("npsSubmitted"))
        world.clock.advance(timedelta(hours=1))
        world.ops = world.make(name="Ops", url=OPS_URL, categories=OPERATIONS_CATEGORIES)
        assert world.alerts.sweep(START) == 0


class TestOperationsWebhooks:
    def test_the_test_button_sends_a_sample_alert(self) -> None:
        world = World(InMemoryStorage())
        assert world.ops is not None
        transport = RecordingTransport()
        with world.dispatcher(transport) as dispatcher:
            result = dispatcher.send_test(ADMIN, world.ops.id)
            other = dispatcher.send_test(ADMIN, world.ops.id, "webhook.recovered")
            third = dispatcher.send_test(ADMIN, world.ops.id, OperationsCategory.WEBHOOK_DISABLED)
        assert result.accepted
        assert result.category is OperationsCategory.DELIVERY_EXHAUSTED
        assert other.category is OperationsCategory.WEBHOOK_RECOVERED
        assert third.category is OperationsCategory.WEBHOOK_DISABLED
        first, second, last = transport.requests
        assert body_of(last)["data"]["by"] == "system"
        assert body_of(first)["type"] == "pendo_webhooks.delivery.exhausted"
        assert body_of(second)["data"]["reason"] == "test alert: answering again"
        assert first.headers["webhook-id"] == result.event_id
        assert result.event_id.startswith("alr_")
        assert world.storage.list_deliveries() == []

    def test_pendo_events_never_reach_an_operations_webhook(self) -> None:
        world = World(InMemoryStorage())
        transport = RecordingTransport()
        with world.dispatcher(transport) as dispatcher:
            result = dispatcher.dispatch(sample_event("npsSubmitted"))
        assert [o.webhook_id for o in result] == [world.nps.id]

    def test_categories_cannot_mix(self) -> None:
        world = World(InMemoryStorage(), operations=False)
        with pytest.raises(ValidationError, match="cannot mix Pendo events and operations"):
            world.registry.create(
                ADMIN,
                name="Mixed",
                url=OPS_URL,
                categories=["npsSubmitted", "webhook.disabled"],
            )

    def test_segment_cannot_be_an_operations_webhook(self) -> None:
        world = World(InMemoryStorage(), operations=False)
        with pytest.raises(ValidationError, match="URL webhooks only, not to Segment"):
            world.registry.create(
                ADMIN,
                name="Seg",
                kind="segment",
                write_key="wk",
                categories=OPERATIONS_CATEGORIES,
            )

    def test_an_unknown_category_is_refused(self) -> None:
        with pytest.raises(ValidationError, match=r"unknown event category 'webhook\.exploded'"):
            World(InMemoryStorage(), operations=False).registry.create(
                ADMIN, name="X", url=OPS_URL, categories=["webhook.exploded"]
            )

    def test_operations_webhooks_survive_the_store(self, storage: Storage) -> None:
        world = World(storage)
        assert world.ops is not None
        again = storage.get_webhook(world.ops.id)
        assert again.is_operations
        assert again.categories == frozenset(OPERATIONS_CATEGORIES)
        assert not storage.get_webhook(world.nps.id).is_operations


class TestAlertValue:
    def test_kinds_short_and_long(self) -> None:
        a = Alert(kind="delivery.exhausted", webhook_id="wh_1", at=START)
        b = Alert(kind="pendo_webhooks.delivery.exhausted", webhook_id="wh_1", at=START)
        assert a == b

    def test_a_bad_kind_or_time_is_refused(self) -> None:
        with pytest.raises(ValidationError, match=r"kind: must be one of 'delivery\.exhausted'"):
            Alert(kind="nope", webhook_id="wh_1", at=START)
        with pytest.raises(ValidationError, match="at: must be a timezone-aware datetime"):
            Alert(kind="webhook.disabled", webhook_id="wh_1", at=datetime(2026, 1, 1))

    def test_ids_tell_occurrences_apart(self) -> None:
        first = Alert(
            kind="delivery.exhausted", webhook_id="w", delivery_id="d", attempts=6, at=START
        )
        later = Alert(
            kind="delivery.exhausted",
            webhook_id="w",
            delivery_id="d",
            attempts=6,
            at=START + timedelta(hours=1),
        )
        again = Alert(
            kind="delivery.exhausted", webhook_id="w", delivery_id="d", attempts=12, at=START
        )
        assert first.id == later.id != again.id
        off = Alert(kind="webhook.disabled", webhook_id="w", at=START)
        on = Alert(kind="webhook.recovered", webhook_id="w", at=START)
        assert len({off.id, on.id, first.id}) == 3


class TestSchemas:
    @pytest.mark.parametrize("kind", list(OperationsCategory), ids=str)
    def test_every_body_fits_its_schema_and_the_any_schema(self, kind: OperationsCategory) -> None:
        body = json.loads(sample_alert(kind, START).to_body())
        for schema in (
            operations_schema(kind),
            operations_schema(kind.short),
            operations_schema(),
        ):
            jsonschema.Draft202012Validator.check_schema(schema)
            jsonschema.Draft202012Validator(schema).validate(body)

    def test_a_body_of_another_kind_does_not_fit(self) -> None:
        body = json.loads(sample_alert(OperationsCategory.WEBHOOK_RECOVERED, START).to_body())
        body["type"] = "pendo_webhooks.delivery.exhausted"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(operations_schema()).validate(body)

    def test_an_unknown_kind(self) -> None:
        with pytest.raises(UnknownEventType, match="unknown event type: 'nope'"):
            operations_schema("nope")

    def test_the_real_bodies_fit(self, outbox: Storage) -> None:
        world = World(outbox)
        with world.dispatcher(RecordingTransport([503, 410]), retry=ONE_TRY) as dispatcher:
            dispatcher.dispatch(fresh())
            dispatcher.dispatch(fresh())
        validator = jsonschema.Draft202012Validator(operations_schema())
        bodies = [json.loads(d.body) for d in world.ops_deliveries()]
        assert len(bodies) == 2
        for body in bodies:
            validator.validate(body)


class TestSweepArguments:
    def test_since_must_be_aware(self) -> None:
        alerts = Alerts(InMemoryStorage())
        with pytest.raises(ValidationError, match="since: must be a timezone-aware datetime"):
            alerts.sweep(datetime(2026, 1, 1))

    @pytest.mark.parametrize("limit", [0, 10_001, True, 1.5])
    def test_limit_is_bounded(self, limit: object) -> None:
        alerts = Alerts(InMemoryStorage())
        with pytest.raises(ValidationError, match="limit: must be an int from 1 to 10000"):
            alerts.sweep(START, limit=limit)  # type: ignore[arg-type]


class TestReadingABody:
    @pytest.mark.parametrize("kind", list(OperationsCategory), ids=str)
    def test_every_sample_reads_back_equal(self, kind: OperationsCategory) -> None:
        sent = sample_alert(kind, START + timedelta(microseconds=123_000))
        assert Alert.from_body(sent.to_body()) == sent
        assert Alert.from_body(sent.to_body().decode()) == sent

    def test_unknown_keys_are_ignored(self) -> None:
        sent = sample_alert(OperationsCategory.WEBHOOK_RECOVERED, START)
        wire = sent.to_wire_dict()
        wire["extra"] = 1
        wire["data"]["extra"] = {"x": 1}
        assert Alert.from_body(json.dumps(wire)) == sent

    def test_null_where_allowed(self) -> None:
        wire = sample_alert(OperationsCategory.WEBHOOK_RECOVERED, START).to_wire_dict()
        wire["data"].update(webhook_name=None, reason=None)
        got = Alert.from_body(json.dumps(wire))
        assert (got.webhook_name, got.reason) == (None, None)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"{", r"\$: not JSON"),
            (b"[]", r"\$: must be a JSON object"),
            (
                b'{"type": "pendo_webhooks.webhook.disabled", "timestamp": "2026-01-01"}',
                "timestamp: must be an ISO 8601 UTC time ending in Z; data: must be a JSON",
            ),
            (
                b'{"type": "pendo_webhooks.webhook.disabled", "timestamp": "nopeZ", "data": {}}',
                "timestamp: must be an ISO 8601",
            ),
        ],
    )
    def test_a_bad_body_says_where(self, body: bytes, message: str) -> None:
        with pytest.raises(InvalidEventPayload, match=message):
            Alert.from_body(body)

    def test_wrong_types_are_named(self) -> None:
        wire = sample_alert(OperationsCategory.DELIVERY_EXHAUSTED, START).to_wire_dict()
        wire["data"].update(attempts=True, webhook_id=None, reason=7)
        with pytest.raises(InvalidEventPayload) as info:
            Alert.from_body(json.dumps(wire))
        assert info.value.errors == (
            "data.webhook_id: must be a string",
            "data.attempts: must be an integer",
            "data.reason: must be a string or null",
        )

    @pytest.mark.parametrize("kind", ["npsSubmitted", ["x"], None])
    def test_an_unknown_type(self, kind: object) -> None:
        with pytest.raises(UnknownEventType):
            Alert.from_body(json.dumps({"type": kind}))

    def test_verify_then_read(self, outbox: Storage) -> None:
        world = World(outbox)
        transport = RecordingTransport([410])
        with world.dispatcher(transport) as dispatcher:
            dispatcher.dispatch(fresh())
            dispatcher.run_due()
        (request,) = world.to_ops(transport)
        at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), START.tzinfo)
        verify(request.body, request.headers, OPS_SECRET, clock=lambda: at)
        (told,) = world.paged
        assert Alert.from_body(request.body) == told
