"""
PII filters: the model, the registry's checks and audit, the stores, the enqueue path,
the Test button, explain, and the property that a filtered body stays valid.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import pickle
import re
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pendo_webhooks.channels import SegmentChannel, URLChannel, format_for
from pendo_webhooks.cli import _common as common
from pendo_webhooks.cli import main
from pendo_webhooks.dispatcher import DeliveryStatus, Dispatcher
from pendo_webhooks.events import EventCategory, parse_event, to_wire_dict
from pendo_webhooks.exceptions import PayloadError, ValidationError
from pendo_webhooks.formatters import URLFormatter
from pendo_webhooks.model._filters import apply_filters, to_filters
from pendo_webhooks.pipeline import SkipReason, evaluate
from pendo_webhooks.registry import (
    Actor,
    FieldFilter,
    FilterAction,
    Webhook,
    WebhookRegistry,
    filterable_paths,
    hash_value,
    new_hash_key,
)
from pendo_webhooks.schemas import event_schema, segment_schema
from pendo_webhooks.signing import Secret
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event

from . import strategies
from .test_pii_golden import FILTERS, GOLDEN


ADMIN = Actor("u-1", is_admin=True)
URL = "https://hooks.example.com/in"
KEY = "pii_test-key-not-shown"
SECRET = "s3cret!"


def keys(*texts: str) -> Iterator[Secret]:
    """
    A hash key source that hands out *texts* in turn.
    """
    return iter(Secret(t) for t in texts)


def registry_on(storage: Storage, *texts: str) -> WebhookRegistry:
    source = keys(*(texts or (KEY,)))
    return WebhookRegistry(storage, clock=FrozenClock(), hash_keys=lambda: next(source))


@pytest.fixture(name="registry")
def _registry() -> WebhookRegistry:
    return registry_on(InMemoryStorage(), KEY, "pii_second-key")


def url_hook(registry: WebhookRegistry, *filters: str, **overrides: Any) -> Webhook:
    fields: dict[str, Any] = {
        "name": "Hook",
        "url": URL,
        "secret": SECRET,
        "categories": ["npsSubmitted"],
        "filters": filters,
    }
    fields.update(overrides)
    hook = registry.create(ADMIN, **fields)
    return registry.enable(ADMIN, hook.id)


# -- the model -------------------------------------------------------------------------------


class TestFieldFilter:
    def test_parse_and_text_round_trip(self) -> None:
        """
        A filter reads back from its text; both actions.
        """
        for text in ("drop:properties.nps.reason", "hash:visitorId"):
            assert str(FieldFilter.parse(text)) == text
        assert FieldFilter.parse(" hash :visitorId").action is FilterAction.HASH

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("visitorId", "is not '<action>:<path>'"),
            ("erase:visitorId", "must be one of 'drop', 'hash'"),
            ("drop:", "a path must be 1 to 300 characters"),
            ("drop:" + "a" * 301, "a path must be 1 to 300 characters"),
            ("drop:.visitorId", "is not a dotted path"),
            ("drop:properties. nps", "no surrounding spaces"),
            ("drop:" + ".".join("a" * 13), "more than 12 keys deep"),
            ("drop:a\tb", "must not contain control characters"),
        ],
    )
    def test_bad_filters_name_the_field(self, text: str, message: str) -> None:
        """
        Every bad filter is a ValidationError naming ``filters`` and saying what is wrong.
        """
        with pytest.raises(ValidationError, match=message) as info:
            FieldFilter.parse(text)
        assert info.value.field == "filters"

    def test_a_path_must_be_text(self) -> None:
        """
        A path that is not text is an InvalidType naming ``filters``.
        """
        with pytest.raises(TypeError, match="a path must be text, not int"):
            FieldFilter(3, "drop")  # type: ignore[arg-type]

    def test_filters_collection_rules(self) -> None:
        """
        Not a string, at most 50, no path twice, none below another.
        """
        with pytest.raises(ValidationError, match="must be a collection"):
            Webhook(**_fields(filters="drop:userAgent"))
        with pytest.raises(ValidationError, match="at most 50 filters"):
            Webhook(**_fields(filters=[f"drop:properties.x{i}" for i in range(51)]))
        with pytest.raises(ValidationError, match="'userAgent' is given more than once"):
            Webhook(**_fields(filters=["drop:userAgent", "drop:userAgent"]))
        with pytest.raises(ValidationError, match=re.escape("lies below 'drop:properties.nps'")):
            Webhook(**_fields(filters=["hash:properties.nps.reason", "drop:properties.nps"]))

    def test_filters_pickle(self) -> None:
        """
        Filters and webhooks with them pickle to equal values.
        """
        hook = Webhook(**_fields(filters=["hash:visitorId"], hash_key=KEY))
        assert pickle.loads(pickle.dumps(hook)) == hook
        assert pickle.loads(pickle.dumps(hook.filters[0])) == hook.filters[0]


def _fields(**overrides: Any) -> dict[str, Any]:
    t = FrozenClock()()
    fields: dict[str, Any] = {
        "id": "wh_1",
        "name": "n",
        "url": URL,
        "categories": ["npsSubmitted"],
        "created_at": t,
        "created_by": "u",
        "updated_at": t,
        "updated_by": "u",
    }
    fields.update(overrides)
    return fields


class TestWebhookModel:
    def test_a_hash_filter_needs_a_key(self) -> None:
        """
        A webhook that hashes without a hash key is refused, naming ``hash_key``.
        """
        with pytest.raises(ValidationError, match="hash_key: is required while a filter hashes"):
            Webhook(**_fields(filters=["hash:visitorId"]))
        assert Webhook(**_fields(filters=["drop:visitorId"])).hash_key is None

    def test_the_key_never_shows(self) -> None:
        """
        Neither the repr nor str of a webhook, its key or an error shows the key.
        """
        hook = Webhook(**_fields(filters=["hash:visitorId"], hash_key=KEY))
        assert KEY not in repr(hook)
        assert repr(hook).endswith("filters=1)>")
        assert repr(hook.hash_key) == "Secret('<redacted>')"
        with pytest.raises(ValidationError) as info:
            Webhook(**_fields(filters=["hash:visitorId"], hash_key=" "))
        assert KEY not in str(info.value)
        assert info.value.field == "hash_key"

    def test_new_hash_keys_are_random(self) -> None:
        """
        Two generated keys differ.
        """
        assert new_hash_key() != new_hash_key()


class TestHashing:
    def test_same_value_same_key_same_hash_and_keys_differ(self) -> None:
        """
        One key hashes one value the same every time; another key differently.
        """
        one, two = Secret("pii_a"), Secret("pii_b")
        assert hash_value(one, "ann") == hash_value(one, "ann")
        assert hash_value(one, "ann") != hash_value(two, "ann")
        expected = hmac.new(b"pii_a", b"ann", hashlib.sha256).hexdigest()
        assert hash_value(one, "ann") == expected

    def test_non_text_is_hashed_as_compact_sorted_json(self) -> None:
        """
        Numbers, lists and objects hash as their compact JSON text, keys sorted.
        """
        key = Secret("pii_a")
        assert hash_value(key, 42) == hash_value(key, "42")
        assert hash_value(key, {"b": 1, "a": [True]}) == hash_value(key, '{"a":[true],"b":1}')

    def test_apply_filters_through_lists_and_missing_keys(self) -> None:
        """
        A path through a list filters every item; a missing path changes nothing.
        """
        wire = {"steps": [{"id": "a", "t": 1}, {"t": 2}, "x"], "keep": {"k": 1}}
        filtered, applied = apply_filters(
            wire, to_filters(["drop:steps.t", "hash:steps.id", "drop:keep.none"]), Secret("k")
        )
        assert filtered == {
            "steps": [{"id": hash_value(Secret("k"), "a")}, {}, "x"],
            "keep": {"k": 1},
        }
        assert [str(f) for f in applied] == ["drop:steps.t", "hash:steps.id"]
        assert wire["steps"][0] == {"id": "a", "t": 1}  # the input is not changed
        with pytest.raises(ValidationError, match="hash_key: is required to hash"):
            apply_filters(wire, to_filters(["hash:steps.id"]), None)
        unchanged, none = apply_filters(wire, to_filters(["hash:nothing.here"]), None)
        assert (unchanged, none) == (wire, ())


# -- the registry ----------------------------------------------------------------------------


class TestRegistry:
    def test_create_generates_a_key_and_audits_without_it(self, registry: WebhookRegistry) -> None:
        """
        A hashing webhook gets a key from the registry's source; the audit shows the
        filters and the key only as redacted.
        """
        hook = url_hook(registry, "drop:properties.nps.reason", "hash:visitorId")
        assert hook.hash_key is not None
        assert hook.hash_key.reveal() == KEY
        (_enable, create) = registry.audit(ADMIN, webhook_id=hook.id)
        assert create.changes["filters"] == (
            None,
            ("drop:properties.nps.reason", "hash:visitorId"),
        )
        assert create.changes["hash_key"] == (None, "<redacted>")
        assert KEY not in json.dumps({k: list(v) for k, v in create.changes.items()}, default=str)

    def test_a_dropping_webhook_has_no_key(self, registry: WebhookRegistry) -> None:
        """
        Only hashing needs a key: a webhook that only drops has none.
        """
        assert url_hook(registry, "drop:userAgent").hash_key is None

    def test_update_adds_the_key_once_and_keeps_it(self, registry: WebhookRegistry) -> None:
        """
        The first hash filter brings a key; removing the filters keeps it, so hashes are
        stable when hashing comes back.
        """
        hook = url_hook(registry, "drop:userAgent")
        hashed = registry.update(ADMIN, hook.id, filters=["hash:visitorId"])
        assert hashed.hash_key is not None
        assert hashed.hash_key.reveal() == KEY
        entry = registry.audit(ADMIN, webhook_id=hook.id)[0]
        assert entry.changes["filters"] == (("drop:userAgent",), ("hash:visitorId",))
        assert entry.changes["hash_key"] == (None, "<redacted>")
        cleared = registry.update(ADMIN, hook.id, filters=None)
        assert cleared.filters == ()
        assert cleared.hash_key == hashed.hash_key
        again = registry.update(ADMIN, hook.id, filters=["hash:accountId"])
        assert again.hash_key == hashed.hash_key
        assert registry.update(ADMIN, hook.id, filters=["hash:accountId"]) == again

    @pytest.mark.parametrize("category", list(EventCategory), ids=str)
    def test_a_path_the_event_type_lacks_is_refused(
        self, registry: WebhookRegistry, category: EventCategory
    ) -> None:
        """
        For every event type: a path its body does not have is refused, naming the
        filter, the path and the subscribed types.
        """
        missing = (
            "properties.poll.response"
            if category is EventCategory.NPS_SUBMITTED
            else "properties.nps.reason"
        )
        with pytest.raises(ValidationError) as info:
            registry.create(
                ADMIN,
                name="x",
                url=URL,
                categories=[category],
                filters=[f"drop:{missing}"],
            )
        assert info.value.field == "filters"
        assert str(info.value).startswith(
            f"filters: 'drop:{missing}': no field {missing!r} in the events this webhook "
            f"is subscribed to ({category.value})"
        )
        assert registry.list(ADMIN) == []

    def test_a_path_is_enough_in_one_subscribed_type(self, registry: WebhookRegistry) -> None:
        """
        A path need only be in one of the subscribed types; a near miss gets a hint.
        """
        hook = url_hook(
            registry, "drop:properties.nps.reason", categories=["npsSubmitted", "guideDisplayed"]
        )
        assert [str(f) for f in hook.filters] == ["drop:properties.nps.reason"]
        with pytest.raises(
            ValidationError, match=re.escape("did you mean 'properties.nps.reason'")
        ):
            registry.update(ADMIN, hook.id, filters=["drop:properties.nps.reasons"])

    def test_changing_categories_rechecks_the_filters(self, registry: WebhookRegistry) -> None:
        """
        Unsubscribing from the only type with a filtered path is refused; nothing changes.
        """
        hook = url_hook(registry, "drop:properties.nps.reason")
        with pytest.raises(ValidationError, match=re.escape("no field 'properties.nps.reason'")):
            registry.update(ADMIN, hook.id, categories=["guideDisplayed"])
        assert registry.get(ADMIN, hook.id).categories == {EventCategory.NPS_SUBMITTED}

    @pytest.mark.parametrize(
        ("kind", "text", "why"),
        [
            ("url", "drop:uniqueId", "de-duplication key"),
            ("url", "hash:event", "names the event type"),
            ("url", "drop:timestamp", "when the event happened"),
            ("url", "drop:properties", "filter the fields inside it"),
            ("url", "hash:properties.nps.rating", "must keep its type"),
            ("url", "hash:properties.nps.source", "one of a fixed set of values"),
            ("url", "hash:app", "drop it instead"),
            ("segment", "drop:visitorId", "needs a userId or an anonymousId"),
        ],
    )
    def test_a_filter_that_would_break_the_body_is_refused(
        self, registry: WebhookRegistry, kind: str, text: str, why: str
    ) -> None:
        """
        Fixed fields, hashes of non-text fields, and Segment's visitor are refused, saying why.
        """
        destination = {"url": URL} if kind == "url" else {"kind": "segment", "write_key": "wk-1"}
        with pytest.raises(ValidationError, match=why) as info:
            registry.create(
                ADMIN, name="x", categories=["npsSubmitted"], filters=[text], **destination
            )
        assert info.value.field == "filters"
        assert f"{text!r} is not allowed" in str(info.value)

    def test_free_form_event_properties_take_any_key(self, registry: WebhookRegistry) -> None:
        """
        Any key below eventProperties may be dropped or hashed.
        """
        hook = url_hook(
            registry,
            "hash:properties.eventProperties.email",
            "drop:properties.eventProperties.address.street",
            categories=["trackEventReceived"],
        )
        assert len(hook.filters) == 2

    def test_filterable_paths_per_kind(self) -> None:
        """
        The catalogue leaves fixed paths out and knows Segment's visitor rule.
        """
        url = filterable_paths(EventCategory.VISITOR_CREATED)
        assert "uniqueId" not in url
        assert "event" not in url
        assert url["visitorId"] == frozenset(FilterAction)
        assert filterable_paths("visitorCreated", "segment")["visitorId"] == {FilterAction.HASH}
        with pytest.raises(ValidationError, match="unknown event category"):
            filterable_paths("pageViewed")


# -- the stores ------------------------------------------------------------------------------


class _PrefixCodec:
    def encode(self, plaintext: str) -> str:
        return "enc:" + plaintext[::-1]

    def decode(self, stored: str) -> str:
        return stored.removeprefix("enc:")[::-1]


def test_sqlite_keeps_the_hash_key_through_its_codec(tmp_path: Path) -> None:
    """
    The hash key is stored like secrets: through the codec, never as plain text.
    """
    path = tmp_path / "hooks.db"
    with SQLiteStorage(path, secret_codec=_PrefixCodec()) as storage:
        hook = url_hook(registry_on(storage), "hash:visitorId")
        assert storage.get_webhook(hook.id) == hook
    conn = sqlite3.connect(path)
    filters, stored_key = conn.execute("SELECT filters, hash_key FROM webhooks").fetchone()
    audit = " ".join(row[0] for row in conn.execute("SELECT changes FROM audit_log"))
    conn.close()
    assert json.loads(filters) == [{"path": "visitorId", "action": "hash"}]
    assert stored_key == "enc:" + KEY[::-1]
    assert KEY not in audit
    assert KEY[::-1] not in audit


# -- the enqueue path ------------------------------------------------------------------------


def test_dispatch_sends_and_signs_the_filtered_bytes(registry: WebhookRegistry) -> None:
    """
    What is stored is filtered, and it is what is signed and sent.
    """
    hook = url_hook(registry, "drop:properties.nps.reason", "hash:visitorId")
    transport = RecordingTransport()
    with Dispatcher(registry, transport=transport) as dispatcher:
        (outcome,) = dispatcher.dispatch(sample_event("npsSubmitted")).outcomes
    (request,) = transport.requests
    stored = registry.storage.get_delivery(str(outcome.delivery_id)).body
    assert request.body == stored
    body = json.loads(stored)
    assert "reason" not in body["properties"]["nps"]
    assert body["visitorId"] == hash_value(Secret(KEY), "Webhook Visitor")
    expected = hmac.new(SECRET.encode(), stored, hashlib.sha256).hexdigest()
    assert request.headers["X-Pendo-Signature"] == expected
    assert hook.hash_key is not None


def test_hashes_are_stable_per_webhook_and_differ_between_webhooks(
    registry: WebhookRegistry,
) -> None:
    """
    One visitor hashes the same in every event to one webhook, differently to another;
    an unfiltered webhook gets the event as it is.
    """
    first = url_hook(registry, "hash:visitorId")
    second = url_hook(registry, "hash:visitorId")
    plain = url_hook(registry)
    with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
        results = dispatcher.enqueue_many(
            [sample_event("npsSubmitted"), sample_event("npsSubmitted", unique_id="b" * 40)]
        )
    seen: dict[str, set[str]] = {first.id: set(), second.id: set(), plain.id: set()}
    for result in results:
        for outcome in result.outcomes:
            body = json.loads(registry.storage.get_delivery(str(outcome.delivery_id)).body)
            seen[outcome.webhook_id].add(body["visitorId"])
    assert len(seen[first.id]) == len(seen[second.id]) == 1
    assert seen[first.id] != seen[second.id]
    assert seen[plain.id] == {"Webhook Visitor"}


class _PlainChannel:
    """A host channel without format_filtered."""

    max_message_bytes = 10_000
    max_batch_messages = 1

    def format(self, event: Any) -> bytes:
        return b"{}"

    def refuse(self, body: bytes) -> str | None:
        return None

    def plan(self, sizes: Any) -> list[int]:
        return [1] * len(sizes)

    def request(self, webhook: Any, messages: Any, *, now: Any) -> Any:
        raise AssertionError("never sent")

    def scrub(self, webhook: Any, data: bytes) -> bytes:
        return data


class _NoFilterFormatter:
    def format(self, event: Any) -> bytes:
        return b"{}"


@pytest.mark.parametrize(
    "channel",
    [_PlainChannel(), URLChannel(formatter=_NoFilterFormatter())],
    ids=["channel", "formatter"],
)
def test_a_channel_that_cannot_filter_sends_nothing(
    registry: WebhookRegistry, channel: Any
) -> None:
    """
    Fail closed: the delivery is stored failed with the reason, explain and the Test
    button say so, and nothing is sent unfiltered.
    """
    hook = url_hook(registry, "drop:userAgent")
    transport = RecordingTransport()
    with Dispatcher(registry, transport=transport, channels={"url": channel}) as dispatcher:
        (outcome,) = dispatcher.dispatch(sample_event("npsSubmitted")).outcomes
        (decision,) = dispatcher.explain(sample_event("npsSubmitted"))
        tested = dispatcher.send_test(ADMIN, hook.id)
    assert transport.requests == []
    delivery = registry.storage.get_delivery(str(outcome.delivery_id))
    assert delivery.status is DeliveryStatus.FAILED
    assert "PII filters: the url channel" in str(delivery.last_error)
    assert decision.reason is SkipReason.FILTERS_UNSUPPORTED
    assert not tested.accepted
    assert "cannot apply them" in str(tested.error)


def test_format_for_rejects_a_formatter_that_returns_no_bytes() -> None:
    """
    A formatter whose format_filtered returns something else counts as unable to filter.
    """

    class Odd:
        def format(self, event: Any) -> bytes:
            return b"{}"

        def format_filtered(self, event: Any, wire: Any) -> str:
            return "{}"

    hook = Webhook(**_fields(filters=["drop:userAgent"]))
    assert format_for(URLChannel(formatter=Odd()), sample_event("npsSubmitted"), hook)[0] is None


def test_explain_and_the_test_button_show_the_filters(registry: WebhookRegistry) -> None:
    """
    explain says which filters change this event; the Test button sends the filtered body.
    """
    hook = url_hook(
        registry,
        "drop:properties.nps.reason",
        "hash:properties.eventProperties.email",
        categories=["npsSubmitted", "trackEventReceived"],
    )
    transport = RecordingTransport()
    with Dispatcher(registry, transport=transport) as dispatcher:
        (decision,) = dispatcher.explain(sample_event("npsSubmitted"))
        (other,) = dispatcher.explain(sample_event("trackEventReceived"))
        tested = dispatcher.send_test(ADMIN, hook.id, "npsSubmitted")
    assert decision.text == "will send (filtered: drop:properties.nps.reason)"
    assert decision.filters == ("drop:properties.nps.reason",)
    assert other.text == "will send (no PII filter matches this event)"
    assert tested.filters == ("drop:properties.nps.reason",)
    assert b'"reason"' not in tested.request_body
    assert transport.requests[0].body == tested.request_body


def test_a_filtered_body_is_measured_for_its_limit(registry: WebhookRegistry) -> None:
    """
    explain measures a filtered webhook's own (smaller) message against the limit.
    """
    filtered = url_hook(registry, "drop:userAgent")
    plain = url_hook(registry)
    with Dispatcher(registry, transport=RecordingTransport(), max_body_bytes=900) as d:
        decisions = {x.webhook_id: x for x in d.explain(sample_event("npsSubmitted"))}
    assert decisions[filtered.id].will_send
    assert decisions[plain.id].reason is SkipReason.PAYLOAD_TOO_LARGE


def test_url_goldens_with_hashes_only_still_parse() -> None:
    """
    A golden body that only hashes (a parent-child one: its accountId part by part) is
    still a body parse_event accepts.
    """
    body = (GOLDEN / "url" / "parentChildAccountCreated.json").read_bytes()
    assert all(f.startswith("hash:") for f in FILTERS[EventCategory.PARENT_CHILD_ACCOUNT_CREATED])
    event = parse_event(body)
    assert event.category is EventCategory.PARENT_CHILD_ACCOUNT_CREATED


# -- the property: a filtered body is still valid --------------------------------------------

_SEGMENT_PLACES: Mapping[str, tuple[str, ...]] = {
    "visitorId": ("userId",),
    "accountId": ("context", "groupId"),
    "userAgent": ("context", "userAgent"),
    "app": ("context", "pendo", "app"),
    "subscription": ("context", "pendo", "subscription"),
}


def _relax(schema: dict[str, Any], defs: dict[str, Any], keys: list[str]) -> None:
    """
    Make *keys* (a dropped path) optional in *schema*, copying shared definitions on the way.
    """
    node = schema
    for i, key in enumerate(keys):
        while "$ref" in node or node.get("type") == "array":
            if "$ref" in node:
                resolved = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[1]])
                node.update(resolved)
            else:
                node = node["items"]
        if i == len(keys) - 1:
            node["required"] = [k for k in node.get("required", []) if k != key]
            return
        node = node["properties"][key]


def _usable_key(key: str) -> bool:
    # A key a dotted path can name (one with a dot cannot be filtered: a known limit).
    try:
        FieldFilter(f"properties.eventProperties.{key}", "drop")
    except ValidationError:
        return False
    return "." not in key


@st.composite
def filtered_webhooks(draw: st.DrawFn, kind: str) -> tuple[Any, Webhook]:
    event = draw(strategies.events())
    paths = filterable_paths(event.category, kind)
    concrete = sorted(p for p in paths if not p.endswith("*"))
    free = [
        f"properties.eventProperties.{k}"
        for k in to_wire_dict(event)["properties"].get("eventProperties", {})
        if _usable_key(k)
    ]
    chosen = draw(st.lists(st.sampled_from(concrete + free), unique=True, max_size=8))
    filters: list[str] = []
    for path in chosen:
        candidate = FieldFilter(path, "drop")
        if any(
            candidate.covers(f) or f.covers(candidate) for f in map(FieldFilter.parse, filters)
        ):
            continue
        allowed = sorted(a.value for a in paths.get(path, frozenset(FilterAction)))
        filters.append(f"{draw(st.sampled_from(allowed))}:{path}")
    destination = (
        {"url": URL} if kind == "url" else {"url": None, "kind": "segment", "write_key": "wk"}
    )
    hook = Webhook(
        **{
            **_fields(categories=[event.category], filters=filters, hash_key=KEY),
            **destination,
        }
    )
    return event, hook


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filtered_webhooks("url"))
def test_a_filtered_url_body_is_valid_for_its_event_type(case: tuple[Any, Webhook]) -> None:
    """
    Property: whatever the registry allows, the filtered body validates against its event
    type's schema, with the dropped fields made optional (and nothing else).
    """
    event, hook = case
    body, _ = format_for(URLChannel(), event, hook)
    assert body is not None
    schema = event_schema(event.category)
    for f in hook.filters:
        if f.action is FilterAction.DROP:
            _relax(schema, schema["$defs"], list(f.keys))
    Draft202012Validator(schema).validate(json.loads(body))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filtered_webhooks("segment"))
def test_a_filtered_segment_message_is_a_valid_track(case: tuple[Any, Webhook]) -> None:
    """
    Property: the filtered Segment message is a valid track message (dropped fields
    optional), with a userId or anonymousId, its event name and messageId.
    """
    event, hook = case
    body, _ = format_for(SegmentChannel(), event, hook)
    assert body is not None
    message = json.loads(body)
    schema = segment_schema()
    target = schema["$defs"][f"Segment{type(event).__name__}"]
    for f in hook.filters:
        if f.action is FilterAction.DROP:
            keys = list(f.keys)
            if keys[0] in _SEGMENT_PLACES:
                keys = [*_SEGMENT_PLACES[keys[0]], *keys[1:]]
            _relax(target, schema["$defs"], keys)
            if keys[:2] == ["context", "pendo"] and "pendo" not in message["context"]:
                _relax(target, schema["$defs"], ["context", "pendo"])
    Draft202012Validator(schema).validate(message)
    assert message["type"] == "track"
    assert message["event"] == event.category.value
    assert ("userId" in message) != ("anonymousId" in message)
    assert message["messageId"] == event.unique_id


def test_hashing_keeps_an_anonymous_visitor_anonymous_in_segment() -> None:
    """
    A hashed anonymous visitor stays an anonymousId (prefix kept).
    """
    event = attrs.evolve(sample_event("guideDisplayed"), visitor_id="_PENDO_T_x1Yz")
    hook = Webhook(
        **{
            **_fields(categories=["guideDisplayed"], filters=["hash:visitorId"], hash_key=KEY),
            "url": None,
            "kind": "segment",
            "write_key": "wk",
        }
    )
    body, _ = format_for(SegmentChannel(), event, hook)
    assert body is not None
    message = json.loads(body)
    assert "userId" not in message
    assert message["anonymousId"] == hash_value(Secret(KEY), "_PENDO_T_x1Yz")
    assert message["anonymousId"].startswith("_PENDO_T_")


# -- the console script ----------------------------------------------------------------------


@pytest.fixture(name="cli")
def _cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Any:
    """
    Run ``main()`` in this process from *tmp_path*; returns (code, out, err).
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(common.ENV_DB, raising=False)
    monkeypatch.delenv(common.ENV_ACTOR, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args[:2], "--db", "hooks.db", *args[2:]])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return run


def test_cli_create_update_show_filters(cli: Any, tmp_path: Path) -> None:
    """
    --drop and --hash make filters in their order, show lists them (never the key),
    --drop/--hash on update replace them and --no-filters removes them.
    """
    code, out, err = cli(
        "webhooks", "create", "--actor", "ann", "--name", "NPS", "--url", URL,
        "--event", "npsSubmitted", "--secret", SECRET,
        "--hash", "visitorId", "--drop", "properties.nps.reason", "--json",
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    assert created["filters"] == ["hash:visitorId", "drop:properties.nps.reason"]
    assert created["has_hash_key"] is True
    with SQLiteStorage(tmp_path / "hooks.db") as storage:
        stored = storage.get_webhook(created["id"]).hash_key
    assert stored is not None
    key = stored.reveal()
    assert key.startswith("pii_")
    assert key not in out
    assert key not in err
    code, out, _ = cli("webhooks", "show", created["id"])
    assert code == 0
    assert "filters: hash:visitorId, drop:properties.nps.reason" in out.splitlines()
    assert key not in out
    code, out, _ = cli(
        "webhooks", "update", "--actor", "ann", created["id"], "--drop", "userAgent", "--json"
    )
    assert json.loads(out)["filters"] == ["drop:userAgent"]
    code, out, _ = cli("webhooks", "update", "--actor", "ann", created["id"], "--no-filters")
    assert code == 0
    code, out, _ = cli("webhooks", "show", created["id"], "--json")
    assert json.loads(out)["filters"] == []
    assert json.loads(out)["has_hash_key"] is True


def test_cli_refuses_a_missing_path_in_one_line(cli: Any) -> None:
    """
    A path none of the events has is bad input (exit 3), said in one line naming the flag.
    """
    code, out, err = cli(
        "webhooks", "create", "--actor", "ann", "--name", "G", "--url", URL,
        "--event", "guideDisplayed", "--drop", "properties.nps.reason",
    )  # fmt: skip
    assert code == common.EXIT_BAD_INPUT
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "--drop/--hash" in err
    assert "no field 'properties.nps.reason'" in err


def test_cli_no_filters_cannot_go_with_drop(cli: Any) -> None:
    """
    --no-filters with --drop is a usage error.
    """
    code, _, err = cli(
        "webhooks", "update", "--actor", "ann", "wh_1", "--no-filters", "--drop", "userAgent"
    )
    assert code == common.EXIT_USAGE
    assert "--no-filters cannot go with --drop or --hash" in err


def test_cli_test_button_shows_the_filters(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    ``webhooks test`` says which filters changed the sample it sent.
    """
    transport = RecordingTransport()
    code, out, err = cli(
        "webhooks", "create", "--actor", "ann", "--name", "NPS", "--url", URL,
        "--event", "npsSubmitted", "--secret", SECRET, "--drop", "userAgent", "--json",
    )  # fmt: skip
    hook_id = json.loads(out)["id"]
    real = Dispatcher.__init__

    def recording(self: Dispatcher, registry: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["transport"] = transport
        real(self, registry, *args, **kwargs)

    monkeypatch.setattr(Dispatcher, "__init__", recording)
    code, out, err = cli("webhooks", "test", "--actor", "ann", hook_id)
    assert code == 0, err
    assert "filtered: drop:userAgent" in out.splitlines()
    assert b"userAgent" not in transport.requests[0].body
    code, out, _ = cli("webhooks", "test", "--actor", "ann", hook_id, "--json")
    assert json.loads(out)["filters"] == ["drop:userAgent"]


def test_small_edges() -> None:
    """
    An action prints as its value; a hash filter over a list needs the key too; a wire
    dict JSON cannot hold is a PayloadError; an unfiltered webhook's PayloadError in
    explain's measure is not taken for a filter problem.
    """
    assert str(FilterAction.DROP) == "drop"
    with pytest.raises(ValidationError, match="hash_key"):
        apply_filters({"steps": [{"id": "a"}]}, to_filters(["hash:steps.id"]), None)
    assert apply_filters({"steps": ["a"]}, to_filters(["hash:steps.id"]), None)[1] == ()
    event = sample_event("npsSubmitted")
    with pytest.raises(PayloadError, match="npsSubmitted cannot be serialized: ValueError"):
        URLFormatter().format_filtered(event, {"event": "npsSubmitted", "x": float("nan")})
    hook = Webhook(**_fields(enabled=True))

    def broken(webhook: Webhook) -> tuple[int, int]:
        raise PayloadError("cannot be serialized")

    with pytest.raises(PayloadError):
        evaluate(event, [hook], measure=broken)


def test_an_operations_webhook_takes_no_filters(registry: WebhookRegistry) -> None:
    """
    Operations webhooks carry the library's alerts, not visitor data: filters are refused.
    """
    with pytest.raises(ValidationError, match="takes no PII filters") as info:
        registry.create(
            ADMIN,
            name="ops",
            url=URL,
            categories=["pendo_webhooks.delivery.exhausted"],
            filters=["drop:userAgent"],
        )
    assert info.value.field == "filters"
    ops = registry.create(
        ADMIN, name="ops", url=URL, categories=["pendo_webhooks.delivery.exhausted"]
    )
    with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
        tested = dispatcher.send_test(ADMIN, ops.id)
    assert tested.filters == ()
