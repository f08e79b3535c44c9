"""
The agent-version gate and the decisions behind ``Dispatcher.explain``: every reason, in the
fixed order, from the pure :func:`evaluate` and through the Dispatcher.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from pendo_webhooks.dispatcher import Dispatcher, Outcome
from pendo_webhooks.events import AgentVersion, EventCategory
from pendo_webhooks.exceptions import (
    DestinationBlocked,
    PayloadTooLarge,
    TransportError,
    ValidationError,
)
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.pipeline import (
    DEFAULT_MAX_BODY_BYTES,
    Decision,
    ExclusionMatcher,
    ExclusionRule,
    SkipReason,
    evaluate,
    event_gate,
    is_agent_too_old,
    payload_measure,
)
from pendo_webhooks.registry import Actor, Webhook, WebhookKind, WebhookRegistry
from pendo_webhooks.storage import Storage
from pendo_webhooks.testing import RecordingTransport, sample_event


T = datetime(2026, 1, 1, tzinfo=timezone.utc)
SURVEYS = ["npsDisplayed", "npsSubmitted", "pollDisplayed", "pollSubmitted"]
OTHERS = [c.value for c in EventCategory if c.value not in SURVEYS]


def webhook(webhook_id: str = "wh_1", **overrides: Any) -> Webhook:
    values: dict[str, Any] = {
        "id": webhook_id,
        "name": "hook",
        "url": "https://hooks.example.com/x?token=abc",
        "categories": [c.value for c in EventCategory],
        "enabled": True,
        "created_at": T,
        "created_by": "u",
        "updated_at": T,
        "updated_by": "u",
    }
    return Webhook(**{**values, **overrides})


def segment_webhook(webhook_id: str = "wh_seg", **overrides: Any) -> Webhook:
    return webhook(webhook_id, kind="segment", url=None, write_key="wk", **overrides)


def reasons(decisions: list[Decision]) -> list[SkipReason | None]:
    return [d.reason for d in decisions]


class TestAgentVersionGate:
    @pytest.mark.parametrize("category", SURVEYS)
    @pytest.mark.parametrize(
        ("version", "blocked"),
        [
            ("2.32.9", True),
            ("2.33.0", False),
            ("2.100.0", False),
            ("2.33.0-beta.1", True),
            ("2.33.0-rc.9", True),
            ("2.33.0_prod", False),
            ("2.33.1-alpha", False),
            ("1.99.99", True),
            ("3.0.0", False),
            (None, False),
        ],
    )
    def test_survey_events(self, category: str, version: str | None, blocked: bool) -> None:
        """
        NPS and poll events below 2.33.0 (pre-releases of 2.33.0 too) are held back; 2.33.0,
        later versions and events without a version are delivered.
        """
        event = sample_event(category, agent_version=version)
        parsed = None if version is None else AgentVersion.parse(version)
        assert is_agent_too_old(event.category, parsed) is blocked
        gate = event_gate(event)
        assert (gate is not None) is blocked
        if blocked:
            assert gate == (SkipReason.AGENT_TOO_OLD, f"agent {version}")

    @pytest.mark.parametrize("category", OTHERS)
    def test_other_events_are_never_gated_by_version(self, category: str) -> None:
        """
        Guide, track and first-seen events go out whatever the agent version.
        """
        assert event_gate(sample_event(category, agent_version="0.0.1")) is None

    def test_every_webhook_gets_the_gate_reason(self) -> None:
        """
        An event-level reason applies to every webhook, disabled and unsubscribed ones too.
        """
        hooks = [
            webhook("a"),
            webhook("b", enabled=False),
            webhook("c", categories=["guideDisplayed"]),
        ]
        decisions = evaluate(sample_event("pollSubmitted", agent_version="2.32.9"), hooks)
        assert [d.webhook_id for d in decisions] == ["a", "b", "c"]
        assert reasons(decisions) == [SkipReason.AGENT_TOO_OLD] * 3
        assert {d.text for d in decisions} == {
            "NPS and poll events need Pendo agent 2.33.0 or later: agent 2.32.9"
        }


class TestEvaluate:
    def test_per_webhook_reasons_in_order(self) -> None:
        """
        Disabled comes before not subscribed, which comes before a blocked destination,
        which comes before the size limit; otherwise the event will be sent.
        """
        event = sample_event("guideDisplayed")
        hooks = [
            webhook(
                "disabled", enabled=False, url="http://127.0.0.1/", categories=["npsSubmitted"]
            ),
            webhook("unsubscribed", url="http://127.0.0.1/", categories=["npsSubmitted"]),
            webhook("blocked", url="http://127.0.0.1/"),
            webhook("ok"),
        ]
        decisions = evaluate(event, hooks, destinations=DestinationPolicy())
        assert reasons(decisions) == [
            SkipReason.WEBHOOK_DISABLED,
            SkipReason.NOT_SUBSCRIBED,
            SkipReason.DESTINATION_BLOCKED,
            None,
        ]
        assert [d.will_send for d in decisions] == [False, False, False, True]
        assert decisions[1].detail == "guideDisplayed"
        assert "http" in decisions[2].detail
        assert decisions[3].text == "will send"

    def test_disabled_detail_is_the_disable_reason(self) -> None:
        """
        A disabled webhook's decision carries why it was disabled.
        """
        hook = webhook(enabled=False, disabled_reason="410 Gone", disabled_by="system")
        (decision,) = evaluate(sample_event("guideDisplayed"), [hook])
        assert decision.text == "the webhook is disabled: 410 Gone"

    def test_exclusions_come_before_everything(self) -> None:
        """
        An excluded visitor, account or IP skips every webhook with that reason.
        """
        event = sample_event("guideDisplayed", source_ip="198.51.100.7")
        hooks = [webhook("a"), webhook("b", enabled=False)]
        for rule, reason in [
            (ExclusionRule("visitor", "Webhook*"), SkipReason.VISITOR_EXCLUDED),
            (ExclusionRule("account", "*Account"), SkipReason.ACCOUNT_EXCLUDED),
            (ExclusionRule("ip", "198.51.100.0/24"), SkipReason.IP_EXCLUDED),
        ]:
            decisions = evaluate(event, hooks, exclusions=ExclusionMatcher([rule]))
            assert reasons(decisions) == [reason, reason]
            assert rule.pattern in decisions[0].detail

    def test_without_a_policy_no_destination_check(self) -> None:
        """
        With no destination policy given, the URL is not checked.
        """
        (decision,) = evaluate(sample_event("guideDisplayed"), [webhook(url="http://10.0.0.1/")])
        assert decision.will_send

    def test_refusals_never_show_the_query_string(self) -> None:
        """
        A blocked destination's detail says why without echoing the URL's query.
        """
        hook = webhook(url="https://127.0.0.1/hook?token=s3cr3t")
        (decision,) = evaluate(
            sample_event("guideDisplayed"), [hook], destinations=DestinationPolicy()
        )
        assert decision.reason is SkipReason.DESTINATION_BLOCKED
        assert "s3cr3t" not in decision.text

    def test_resolve_check_blocks_on_refusal_only(self) -> None:
        """
        A resolver refusal blocks; a name that does not resolve is not a refusal.
        """
        seen: list[str] = []

        def refuse(url: str) -> None:
            seen.append(url)
            raise DestinationBlocked("blocked", "hooks.example.com resolves to 10.0.0.5")

        def no_dns(url: str) -> None:
            raise TransportError("dns", "no such host")

        event = sample_event("guideDisplayed")
        hooks = [webhook(url="HTTPS://Hooks.Example.com/x")]
        (blocked,) = evaluate(event, hooks, destinations=DestinationPolicy(), resolve=refuse)
        assert blocked.reason is SkipReason.DESTINATION_BLOCKED
        assert blocked.detail == "hooks.example.com resolves to 10.0.0.5"
        assert seen == ["https://hooks.example.com/x"]
        (unresolved,) = evaluate(event, hooks, destinations=DestinationPolicy(), resolve=no_dns)
        assert unresolved.will_send
        (fine,) = evaluate(event, hooks, destinations=DestinationPolicy(), resolve=seen.append)
        assert fine.will_send

    def test_url_body_limit(self) -> None:
        """
        A URL webhook's body over the limit is not sent; the detail gives size and limit.
        """
        event = sample_event("guideDisplayed")
        hooks = [webhook()]
        assert evaluate(event, hooks, measure=payload_measure(event, max_body_bytes=917))[
            0
        ].will_send
        (decision,) = evaluate(event, hooks, measure=payload_measure(event, max_body_bytes=916))
        assert decision.reason is SkipReason.PAYLOAD_TOO_LARGE
        assert decision.detail == "917 bytes > 916"
        assert DEFAULT_MAX_BODY_BYTES == 256 * 1024

    def test_segment_message_limit(self) -> None:
        """
        A Segment message over 32,768 bytes is not sent, while a URL webhook still gets it.
        """
        big = sample_event("trackEventReceived", event_properties={"pad": "x" * 33_000})
        decisions = evaluate(big, [segment_webhook(), webhook()])
        assert reasons(decisions) == [SkipReason.PAYLOAD_TOO_LARGE, None]
        assert decisions[0].detail.endswith("bytes > 32768")

    def test_measure_is_computed_once_per_kind(self) -> None:
        """
        The default measure formats the event once per webhook kind, not per webhook.
        """
        calls: list[str] = []
        event = sample_event("guideDisplayed")
        inner = payload_measure(event)

        def counting(hook: Webhook) -> tuple[int, int]:
            calls.append(hook.id)
            return inner(hook)

        evaluate(event, [webhook("a"), webhook("b"), segment_webhook()], measure=counting)
        assert calls == ["a", "b", "wh_seg"]
        sizes = [inner(h) for h in (webhook("a"), webhook("b"), segment_webhook())]
        assert sizes[0] == sizes[1] == (917, DEFAULT_MAX_BODY_BYTES)
        assert sizes[2][1] == 32_768

    def test_formatters_can_be_replaced(self) -> None:
        """
        A measure built with the dispatcher's formatters measures what it would store.
        """

        class Padded:
            def format(self, event: Any) -> bytes:
                return b"x" * 40_000

        event = sample_event("guideDisplayed")
        measure = payload_measure(event, formatters={WebhookKind.SEGMENT: Padded()})
        assert measure(segment_webhook()) == (40_000, 32_768)
        assert measure(webhook()) == (917, DEFAULT_MAX_BODY_BYTES)

    def test_a_measure_may_raise_payload_too_large(self) -> None:
        """
        A measure that raises PayloadTooLarge counts as too large, with its figures.
        """

        def refuse(_: Webhook) -> tuple[int, int]:
            raise PayloadTooLarge(40_000, 32_768)

        (decision,) = evaluate(sample_event("guideDisplayed"), [webhook()], measure=refuse)
        assert decision.reason is SkipReason.PAYLOAD_TOO_LARGE
        assert decision.detail == "40000 bytes > 32768"

    def test_no_webhooks_no_decisions(self) -> None:
        """
        With no webhooks there is nothing to decide, gated or not.
        """
        assert evaluate(sample_event("guideDisplayed"), []) == []
        assert evaluate(sample_event("npsSubmitted", agent_version="1.0.0"), iter([])) == []


class TestDecision:
    def test_reason_exactly_when_not_sending(self) -> None:
        """
        A Decision has a reason if and only if it will not send.
        """
        with pytest.raises(ValidationError) as info:
            Decision(webhook_id="w", will_send=True, reason=SkipReason.WEBHOOK_DISABLED)
        assert info.value.field == "reason"
        with pytest.raises(ValidationError):
            Decision(webhook_id="w", will_send=False)

    def test_texts(self) -> None:
        """
        Every reason has a human text; details are appended.
        """
        assert all(reason.text for reason in SkipReason)
        assert len({reason.text for reason in SkipReason}) == len(SkipReason)
        assert Decision(webhook_id="w", will_send=True, detail="note").text == "will send (note)"
        skip = Decision(webhook_id="w", will_send=False, reason=SkipReason.NOT_SUBSCRIBED)
        assert skip.text == "the webhook is not subscribed to this event category"
        assert str(SkipReason.PAYLOAD_TOO_LARGE) == "payload_too_large"
        assert SkipReason("ip_excluded") is SkipReason.IP_EXCLUDED


ADMIN = Actor("u-1", is_admin=True)
LOCAL = DestinationPolicy.local_testing()


class World:
    """
    A registry, a recording transport and a dispatcher over one store.
    """

    def __init__(self, storage: Storage, transport: RecordingTransport | None = None) -> None:
        self.storage = storage
        self.registry = WebhookRegistry(storage, destinations=LOCAL)
        self.transport = RecordingTransport() if transport is None else transport
        self.dispatcher = Dispatcher(self.registry, transport=self.transport)

    def hook(self, name: str, *, enabled: bool = True, **overrides: Any) -> Webhook:
        values: dict[str, Any] = {
            "name": name,
            "url": "https://hooks.example.com/in?token=QUERYMARK",
            "categories": ["npsSubmitted", "guideDisplayed"],
        }
        created = self.registry.create(ADMIN, **{**values, **overrides})
        return self.registry.enable(ADMIN, created.id) if enabled else created

    def stored(self) -> list[Any]:
        return list(self.storage.list_deliveries())


@pytest.fixture(name="world")
def _world(storage: Storage) -> Iterator[World]:
    world = World(storage)
    yield world
    world.dispatcher.close()


class TestDispatcherExplain:
    def test_every_webhook_with_its_reason_and_nothing_sent_or_stored(self, world: World) -> None:
        """
        explain lists every registered webhook, enabled or not, subscribed or not, and
        neither sends a request nor stores a delivery.
        """
        disabled = world.hook("off", enabled=False)
        other = world.hook("tracks", categories=["trackEventReceived"])
        local = world.hook("local", url="http://127.0.0.1:9/in")
        fine = world.hook("fine")
        decisions = world.dispatcher.explain(sample_event("npsSubmitted"))
        assert [(d.webhook_id, d.reason) for d in decisions] == [
            (disabled.id, SkipReason.WEBHOOK_DISABLED),
            (other.id, SkipReason.NOT_SUBSCRIBED),
            (local.id, None),
            (fine.id, None),
        ]
        assert world.transport.requests == []
        assert world.stored() == []

    def test_the_registry_policy_judges_destinations(self, world: World) -> None:
        """
        A destination the registry's policy refuses now is reported as blocked.
        """
        local = world.hook("local", url="http://127.0.0.1:9/in")
        strict = Dispatcher(WebhookRegistry(world.storage), transport=world.transport)
        (decision,) = strict.explain(sample_event("npsSubmitted"))
        assert (decision.webhook_id, decision.reason) == (
            local.id,
            SkipReason.DESTINATION_BLOCKED,
        )
        strict.close()

    def test_a_transport_resolve_check_is_used(self, world: World) -> None:
        """
        A transport offering check_destination(url) lets explain see resolver refusals.
        """

        class Resolving(RecordingTransport):
            def __init__(self) -> None:
                super().__init__()
                self.checked: list[str] = []

            def check_destination(self, url: str) -> None:
                self.checked.append(url)
                raise DestinationBlocked("blocked", "hooks.example.com resolves to 10.0.0.1")

        resolving = Resolving()
        hook = world.hook("hook")
        dispatcher = Dispatcher(world.registry, transport=resolving)
        (decision,) = dispatcher.explain(sample_event("npsSubmitted"))
        assert decision.webhook_id == hook.id
        assert decision.reason is SkipReason.DESTINATION_BLOCKED
        assert decision.detail == "hooks.example.com resolves to 10.0.0.1"
        assert resolving.checked == [hook.url]
        assert resolving.requests == []

    def test_exclusions_and_agent_gate(self, world: World) -> None:
        """
        Stored exclusions and the agent gate come first, and a change is seen at once.
        """
        world.hook("hook")
        rule = world.registry.add_exclusion(ADMIN, "visitor", "Webhook *")
        (decision,) = world.dispatcher.explain(sample_event("npsSubmitted"))
        assert decision.reason is SkipReason.VISITOR_EXCLUDED
        world.registry.remove_exclusion(ADMIN, rule.id)
        (decision,) = world.dispatcher.explain(sample_event("npsSubmitted"))
        assert decision.will_send
        (decision,) = world.dispatcher.explain(
            sample_event("npsSubmitted", agent_version="2.33.0-rc.1")
        )
        assert decision.reason is SkipReason.AGENT_TOO_OLD

    def test_the_dispatcher_body_limit_applies(self, world: World) -> None:
        """
        explain measures with the dispatcher's own limit, and dispatch agrees: too large.
        """
        hook = world.hook("hook")
        small = Dispatcher(world.registry, transport=world.transport, max_body_bytes=900)
        (decision,) = small.explain(sample_event("guideDisplayed"))
        assert decision.reason is SkipReason.PAYLOAD_TOO_LARGE
        assert decision.detail == "917 bytes > 900"
        outcome = small.dispatch(sample_event("guideDisplayed")).for_webhook(hook.id)
        assert outcome.outcome is Outcome.FAILED
        assert world.transport.requests == []
        small.close()

    def test_not_an_event(self, world: World) -> None:
        """
        explain refuses anything that is not an event, naming the argument.
        """
        with pytest.raises(ValidationError) as info:
            world.dispatcher.explain({"event": "npsSubmitted"})  # type: ignore[arg-type]
        assert info.value.field == "event"


class TestDispatchGate:
    @pytest.mark.parametrize("method", ["dispatch", "enqueue"])
    @pytest.mark.parametrize(
        "case",
        [
            ("visitor", "*@acme.com", {"visitor_id": "ann@acme.com"}, SkipReason.VISITOR_EXCLUDED),
            ("account", "acme", {"account_id": "parent::acme"}, SkipReason.ACCOUNT_EXCLUDED),
            ("ip", "203.0.113.0/24", {"source_ip": "203.0.113.50"}, SkipReason.IP_EXCLUDED),
        ],
        ids=["visitor", "account", "ip"],
    )
    def test_excluded_events_are_never_delivered(
        self, world: World, method: str, case: tuple[str, str, dict[str, Any], SkipReason]
    ) -> None:
        """
        An excluded event is skipped for every subscribed webhook with explain's reason:
        no request, no stored delivery.
        """
        kind, pattern, overrides, reason = case
        hooks = [world.hook("a"), world.hook("b")]
        world.registry.add_exclusion(ADMIN, kind, pattern)
        event = sample_event("npsSubmitted", **overrides)
        result = getattr(world.dispatcher, method)(event)
        decisions = world.dispatcher.explain(event)
        assert [o.webhook_id for o in result] == [h.id for h in hooks]
        assert {o.outcome for o in result} == {Outcome.SKIPPED}
        assert {o.delivery_id for o in result} == {None}
        assert [o.reason for o in result] == [d.text for d in decisions]
        assert all(d.reason is reason for d in decisions)
        assert result.event_id == event.unique_id
        assert world.transport.requests == []
        assert world.stored() == []

    @pytest.mark.parametrize(
        ("version", "delivered"),
        [
            ("2.32.9", False),
            ("2.33.0-beta.2", False),
            ("2.33.0", True),
            ("2.100.0", True),
            (None, True),
        ],
    )
    def test_agent_version_gate(self, world: World, version: str | None, delivered: bool) -> None:
        """
        NPS events from agents below 2.33.0 are skipped with the reason; others go out.
        """
        hook = world.hook("nps")
        world.transport.add(200)
        result = world.dispatcher.dispatch(sample_event("npsSubmitted", agent_version=version))
        outcome = result.for_webhook(hook.id)
        if delivered:
            assert outcome.outcome is Outcome.DELIVERED
            assert len(world.transport.requests) == 1
        else:
            assert outcome.outcome is Outcome.SKIPPED
            assert outcome.reason == f"{SkipReason.AGENT_TOO_OLD.text}: agent {version}"
            assert world.transport.requests == []
            assert world.stored() == []

    def test_lifting_an_exclusion_delivers_again(self, world: World) -> None:
        """
        Removing the rule lets the next event through; events skipped before stay skipped.
        """
        hook = world.hook("a")
        rule = world.registry.add_exclusion(ADMIN, "account", "Webhook Account")
        skipped = world.dispatcher.dispatch(sample_event("guideDisplayed"))
        assert skipped.for_webhook(hook.id).outcome is Outcome.SKIPPED
        world.registry.remove_exclusion(ADMIN, rule.id)
        world.transport.add(204)
        delivered = world.dispatcher.dispatch(sample_event("guideDisplayed"))
        assert delivered.for_webhook(hook.id).outcome is Outcome.DELIVERED
        assert len(world.stored()) == 1

    def test_no_subscribers_no_gate_read(self, storage: Storage) -> None:
        """
        With nobody subscribed, dispatch returns an empty result without reading the list.
        """

        class NoExclusions:
            def __getattr__(self, name: str) -> Any:
                if name == "exclusions_version":
                    raise AssertionError("the exclusion list was read")
                return getattr(storage, name)

        registry = WebhookRegistry(storage)
        dispatcher = Dispatcher(registry, NoExclusions(), transport=RecordingTransport())  # type: ignore[arg-type]
        assert len(dispatcher.dispatch(sample_event("npsSubmitted"))) == 0
        dispatcher.close()
