"""The wire format: Pendo's exact bytes out, every problem reported on the way in."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pendo_webhooks import events as ev
from pendo_webhooks.events import EventCategory, parse_event, to_wire, to_wire_dict
from pendo_webhooks.events._wire import _CONVERTER
from pendo_webhooks.exceptions import (
    ConfigurationError,
    InvalidEventPayload,
    PayloadError,
    UnexpectedEventType,
    UnknownEventType,
    ValidationError,
)
from pendo_webhooks.testing import sample_event, sample_events

from . import strategies as hs


DATA = Path(__file__).parent / "data"
KNOWN_SHA256 = "7bdd459447ab0e01e83bed0056d94c6f95528a1b1fe1d218b6ffddb1bb9870ff"
SAMPLE_FILES = sorted(DATA.glob("*.json"))

ENVELOPE_ORDER = [
    "app",
    "accountId",
    "subscription",
    "userAgent",
    "event",
    "properties",
    "timestamp",
    "visitorId",
    "uniqueId",
]
GUIDE_ORDER = ["guideId", "guideProperties", "guideStepId", "language"]
PROPERTIES_ORDER = {
    "guideDisplayed": GUIDE_ORDER,
    "npsDisplayed": GUIDE_ORDER,
    "pollDisplayed": GUIDE_ORDER,
    "npsSubmitted": [*GUIDE_ORDER, "nps"],
    "pollSubmitted": [*GUIDE_ORDER, "poll"],
    "trackEventReceived": ["eventProperties", "name", "source"],
    "visitorCreated": ["browserName", "browserVersion", "sampleGroup"],
    "accountCreated": [],
    "parentChildAccountCreated": ["parentAccountId", "childAccountId"],
}


def wire_dict(category: str = "npsSubmitted", **overrides: Any) -> dict[str, Any]:
    """A sample's wire JSON as plain dicts, to be broken by a test."""
    data: dict[str, Any] = json.loads(to_wire(sample_event(category, **overrides)))
    return data


def problems(data: object) -> tuple[str, ...]:
    """The problems ``parse_event`` reports for *data* (it must refuse it)."""
    with pytest.raises(InvalidEventPayload) as info:
        parse_event(data)  # type: ignore[arg-type]
    return info.value.errors


# ---------------------------------------------------------------------------------------
# Known answers


def test_guide_displayed_known_answer() -> None:
    """
    Pendo's guideDisplayed sample is 917 bytes with the SHA-256 in WIRE.md; it parses and
    serializes back byte for byte, and the sample event serializes to exactly those bytes.
    """
    body = (DATA / "guideDisplayed.json").read_bytes()
    assert len(body) == 917
    assert hashlib.sha256(body).hexdigest() == KNOWN_SHA256
    event = parse_event(body)
    assert isinstance(event, ev.GuideDisplayed)
    assert to_wire(event) == body
    assert to_wire(sample_event(EventCategory.GUIDE_DISPLAYED)) == body


def test_guide_displayed_values() -> None:
    """
    The parsed sample has Pendo's values: epoch seconds and milliseconds become UTC times.
    """
    event = parse_event((DATA / "guideDisplayed.json").read_bytes())
    assert isinstance(event, ev.GuideDisplayed)
    assert event.app == ev.App(id=-323232, name="test_application", platform="web")
    assert event.subscription.id == 4802463602049999
    assert event.timestamp.isoformat() == "2021-07-20T17:57:56+00:00"
    assert event.guide_properties.created_at.isoformat() == "2021-03-10T21:16:52.615000+00:00"
    assert event.guide_properties.steps[0].type == "building-block"
    assert event.language == "en-US"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_sample_files_round_trip_byte_for_byte(path: Path) -> None:
    """
    Every Pendo-shaped sample under tests/data parses and serializes to the same bytes,
    into the event ``sample_event`` gives for its category.
    """
    body = path.read_bytes()
    assert not body.endswith(b"\n")
    event = parse_event(body)
    assert to_wire(event) == body
    assert event == sample_event(path.stem)


def test_sample_files_cover_wire_md_snippets() -> None:
    """
    The five samples WIRE.md names are present.
    """
    assert {p.stem for p in SAMPLE_FILES} >= {
        "guideDisplayed",
        "trackEventReceived",
        "visitorCreated",
        "npsSubmitted",
        "accountCreated",
    }


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e.category.value)
def test_key_order_is_pendos(event: ev.Event) -> None:
    """
    Top-level keys and ``properties`` keys come in WIRE.md's order, for every event type.
    """
    data = json.loads(to_wire(event))
    assert list(data) == ENVELOPE_ORDER
    assert data["event"] == event.category.value
    assert list(data["properties"]) == PROPERTIES_ORDER[event.category.value]
    assert list(data["app"]) == ["id", "name", "platform"]
    assert list(data["subscription"]) == ["id", "name"]


def test_nested_key_order() -> None:
    """
    Guide properties, steps, nps and poll objects keep WIRE.md's key order.
    """
    props = wire_dict("pollSubmitted")["properties"]
    assert list(props["guideProperties"]) == [
        "createdAt",
        "createdByUser",
        "id",
        "lastUpdatedAt",
        "lastUpdatedByUser",
        "name",
        "steps",
    ]
    assert list(props["guideProperties"]["steps"][0]) == ["id", "lastUpdatedAt", "resetAt", "type"]
    assert list(props["poll"]) == ["id", "question", "response"]
    assert list(wire_dict("npsSubmitted")["properties"]["nps"]) == ["rating", "reason", "source"]


def test_parent_child_wire_shape() -> None:
    """
    parentChildAccountCreated carries both sides in properties and the pair as accountId.
    """
    data = wire_dict("parentChildAccountCreated", parent_account_id="P", child_account_id="C")
    assert data["accountId"] == "P::C"
    assert data["properties"] == {"parentAccountId": "P", "childAccountId": "C"}


# ---------------------------------------------------------------------------------------
# Serialization details


def test_html_characters_and_line_separators_are_escaped() -> None:
    """
    ``<``, ``>``, ``&``, U+2028 and U+2029 are written as \\u escapes, like Go's encoder.
    """
    event = sample_event("accountCreated", user_agent="<b>&</b>\u2028\u2029")
    body = to_wire(event)
    assert b'"userAgent":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e\\u2028\\u2029"' in body
    for raw in (b"<", b">", b"&", "\u2028".encode(), "\u2029".encode()):
        assert raw not in body
    assert parse_event(body) == event


def test_non_ascii_is_utf8_and_controls_are_escaped() -> None:
    """
    Non-ASCII text is raw UTF-8 (not \\u escapes); quotes, backslashes and control
    characters use JSON's escapes; ``/`` is left alone.
    """
    text = 'caf\u00e9 \u4e2d \U0001f600 "q" \\ / \x00 \n'
    body = to_wire(sample_event("accountCreated", visitor_id=text))
    expected = '"visitorId":"caf\u00e9 \u4e2d \U0001f600 \\"q\\" \\\\ / \\u0000 \\n"'
    assert expected.encode("utf-8") in body
    assert parse_event(body).visitor_id == text


def test_compact_no_spaces_no_newline() -> None:
    """
    Compact separators and no trailing newline.
    """
    body = to_wire(sample_event("visitorCreated"))
    assert b'"browserName":"Chrome","browserVersion":"91.0.4472","sampleGroup":17}' in body
    assert not body.endswith(b"\n")
    compact = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":"))
    assert body == compact.encode("utf-8")


def test_host_metadata_never_on_the_wire() -> None:
    """
    ``agent_version`` and ``source_ip`` change nothing in the bytes, and parse back as None.
    """
    plain = to_wire(sample_event("npsSubmitted"))
    tagged = sample_event("npsSubmitted", agent_version="2.40.0", source_ip="192.0.2.1")
    assert to_wire(tagged) == plain
    parsed = parse_event(plain)
    assert parsed.agent_version is None
    assert parsed.source_ip is None


def test_epoch_zero_and_negative_times_round_trip() -> None:
    """
    ``resetAt: 0`` round-trips, and times before the epoch use floor division.
    """
    data = wire_dict("guideDisplayed")
    data["properties"]["guideProperties"]["steps"][0]["resetAt"] = 0
    data["properties"]["guideProperties"]["createdAt"] = -1
    data["timestamp"] = -62135596800  # 0001-01-01T00:00:00Z
    event = parse_event(data)
    assert isinstance(event, ev.GuideDisplayed)
    assert event.guide_properties.steps[0].reset_at.timestamp() == 0
    body = to_wire(event)
    assert b'"resetAt":0,' in body
    assert b'"createdAt":-1,' in body
    assert b'"timestamp":-62135596800,' in body


def test_poll_response_kinds_on_the_wire() -> None:
    """
    A tuple answer is a JSON array; numbers stay numbers.
    """
    for response, expected in [(("a", "b"), ["a", "b"]), (7, 7), (2.5, 2.5), ("x", "x")]:
        poll = ev.PollResponse(id="p", question="q", response=response)
        event = sample_event("pollSubmitted", poll=poll)
        assert json.loads(to_wire(event))["properties"]["poll"]["response"] == expected
        assert parse_event(to_wire(event)) == event


def test_to_wire_dict_matches_to_wire_and_is_fresh() -> None:
    """
    ``to_wire_dict`` is what ``to_wire`` serializes; each call returns a new dict.
    """
    event = sample_event("trackEventReceived")
    first = to_wire_dict(event)
    assert first == json.loads(to_wire(event))
    first["visitorId"] = "changed"
    assert to_wire_dict(event)["visitorId"] == "Webhook Visitor"
    assert _CONVERTER.unstructure(event) == to_wire_dict(event)


def test_the_converter_is_our_own() -> None:
    """
    The library's converter is not cattrs' global one, which stays untouched.
    """
    assert _CONVERTER is not cattrs.global_converter
    assert cattrs.unstructure(ev.GuideUser(username="u")) == {"username": "u"}


@pytest.mark.parametrize(
    "value", [None, {"event": "guideDisplayed"}, "x", ev.GuideUser(username="u")]
)
def test_to_wire_refuses_non_events(value: object) -> None:
    """
    Anything but an event raises PayloadError, from ``to_wire`` and ``to_wire_dict``.
    """
    with pytest.raises(PayloadError, match="not an event"):
        to_wire(value)  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="not an event"):
        to_wire_dict(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("category", "attribute", "value"),
    [
        ("accountCreated", "visitor_id", "\ud800"),
        ("trackEventReceived", "event_properties", {"a": float("nan")}),
        ("trackEventReceived", "event_properties", {"a": object()}),
        ("accountCreated", "timestamp", "not a datetime"),
    ],
)
def test_to_wire_on_a_tampered_event_raises_payload_error(
    category: str, attribute: str, value: object
) -> None:
    """
    Construction prevents unserializable values; if one is forced in, ``to_wire`` raises
    PayloadError rather than crashing or emitting invalid JSON.
    """
    event = sample_event(category)
    object.__setattr__(event, attribute, value)
    with pytest.raises(PayloadError, match="cannot be serialized"):
        to_wire(event)


# ---------------------------------------------------------------------------------------
# Input forms


def test_parse_accepts_bytes_str_and_mappings() -> None:
    """
    Bytes, bytearray, memoryview, str and an already-decoded mapping give the same event.
    """
    body = (DATA / "npsSubmitted.json").read_bytes()
    expected = sample_event("npsSubmitted")
    for data in (body, bytearray(body), memoryview(body), body.decode(), json.loads(body)):
        assert parse_event(data) == expected


def test_parse_accepts_json_with_whitespace() -> None:
    """
    Pretty-printed JSON parses to the same event (the library never re-signs parsed bytes).
    """
    pretty = json.dumps(wire_dict(), indent=2)
    assert parse_event(pretty) == sample_event("npsSubmitted")


def test_parse_accepts_tuples_in_a_mapping() -> None:
    """
    A mapping built in Python may use tuples for arrays.
    """
    data = wire_dict("pollSubmitted", poll=ev.PollResponse(id="p", question="", response=["a"]))
    data["properties"]["guideProperties"]["steps"] = tuple(
        data["properties"]["guideProperties"]["steps"]
    )
    data["properties"]["poll"]["response"] = ("a",)
    assert parse_event(data).poll.response == ("a",)  # type: ignore[union-attr]


def test_unknown_keys_are_ignored() -> None:
    """
    Keys we do not know, at any level, are ignored (forward compatible); an unknown key in
    ``properties`` named like an envelope key does not shadow it.
    """
    data = wire_dict()
    data["newTopLevel"] = {"x": 1}
    data["properties"]["timestamp"] = "not this one"
    data["properties"]["visitorId"] = ""
    data["properties"]["nps"]["comment"] = None
    data["app"]["region"] = "eu"
    data["properties"]["guideProperties"]["steps"][0]["extra"] = [1]
    assert parse_event(data) == sample_event("npsSubmitted")


# ---------------------------------------------------------------------------------------
# Refused input: the whole body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{}", "$: not valid UTF-8 (at byte 0)"),
        (b'{"a":"\xed\xa0\x80"}', "$: not valid UTF-8 (at byte 6)"),
        ("", "$: invalid JSON: Expecting value"),
        ("{", "$: invalid JSON"),
        ('{"event": "x"} trailing', "$: invalid JSON: Extra data"),
        ("\ufeff{}", "$: invalid JSON: starts with a byte order mark"),
        (b"\xef\xbb\xbf{}", "$: invalid JSON: starts with a byte order mark"),
        ('{"a": NaN}', "$: invalid JSON: NaN is not JSON"),
        ('{"a": Infinity}', "$: invalid JSON: Infinity is not JSON"),
        ('{"a": -Infinity}', "$: invalid JSON: -Infinity is not JSON"),
        ('{"a": 1, "a": 2}', '$: invalid JSON: duplicate key "a"'),
        ('{"o": {"\\u00e9": 1, "\\u00e9": 2}}', '$: invalid JSON: duplicate key "\\u00e9"'),
        ('{"a": ' + "1" * 5000 + "}", "$: invalid JSON: Exceeds the limit"),
        ("[" * 100_000 + "]" * 100_000, "$: invalid JSON: nested too deeply"),
        ("[]", "$: must be a JSON object, not list"),
        ('"guideDisplayed"', "$: must be a JSON object, not str"),
        ("null", "$: must be a JSON object, not NoneType"),
        (42, "$: must be bytes, str or a mapping, not int"),
        (None, "$: must be bytes, str or a mapping, not NoneType"),
        ([("event", "guideDisplayed")], "$: must be bytes, str or a mapping, not list"),
    ],
)
def test_unreadable_bodies(data: object, message: str) -> None:
    """
    Undecodable bytes, invalid JSON (NaN, duplicate keys, absurd integers and nesting
    included) and non-objects are one InvalidEventPayload problem at ``$``, never a crash.
    """
    found = problems(data)
    assert len(found) == 1
    assert found[0].startswith(message)


def test_event_missing_or_not_a_string() -> None:
    """
    A missing ``event`` or one that is not a string is an InvalidEventPayload.
    """
    data = wire_dict()
    del data["event"]
    assert problems(data) == ("event: required",)
    assert problems({**data, "event": 5}) == ("event: must be a string, not int",)
    assert problems({**data, "event": None}) == ("event: must be a string, not NoneType",)


@pytest.mark.parametrize("name", ["pageViewed", "", "GuideDisplayed", "guideDisplayed ", "\ud800"])
def test_unknown_event_names(name: str) -> None:
    """
    A string ``event`` naming no category raises UnknownEventType carrying it as found.
    """
    with pytest.raises(UnknownEventType) as info:
        parse_event({**wire_dict(), "event": name})
    assert info.value.event == name
    str(info.value).encode("utf-8")


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: str(e.category))
def test_parse_with_the_expected_class_returns_it(event: ev.Event) -> None:
    """
    Given the event class the body has, parse_event returns the same event as without it.
    """
    parsed = parse_event(to_wire(event), type(event))
    assert type(parsed) is type(event)
    assert parsed == event


def test_parse_with_another_class_names_both_types() -> None:
    """
    A body of another known type raises UnexpectedEventType (an InvalidEventPayload) naming
    the type asked for and the one found, even when the rest of the body is broken.
    """
    body = to_wire(sample_event("guideDisplayed"))
    with pytest.raises(UnexpectedEventType) as info:
        parse_event(body, ev.NpsSubmitted)
    assert (info.value.expected, info.value.actual) == ("npsSubmitted", "guideDisplayed")
    assert str(info.value) == "event: expected 'npsSubmitted', got 'guideDisplayed'"
    assert isinstance(info.value, InvalidEventPayload)
    with pytest.raises(UnexpectedEventType, match="'pollSubmitted'"):
        parse_event({"event": "npsSubmitted"}, ev.PollSubmitted)


def test_parse_with_the_expected_class_still_reports_problems() -> None:
    """
    The expected class changes nothing else: unknown names and bad fields raise as before.
    """
    with pytest.raises(UnknownEventType):
        parse_event({**wire_dict(), "event": "pageViewed"}, ev.NpsSubmitted)
    with pytest.raises(InvalidEventPayload, match="event: required"):
        parse_event({}, ev.NpsSubmitted)
    with pytest.raises(InvalidEventPayload) as info:
        parse_event({"event": "npsSubmitted"}, ev.NpsSubmitted)
    assert type(info.value) is InvalidEventPayload
    assert "visitorId: required" in info.value.errors


@pytest.mark.parametrize("expected", [dict, ev.NpsResponse, "npsSubmitted", ev.EventCategory, []])
def test_parse_refuses_an_expected_that_is_not_an_event_class(expected: Any) -> None:
    """
    Anything but one of the nine event classes as *expected* is a ConfigurationError.
    """
    with pytest.raises(ConfigurationError, match="expected: must be an event class"):
        parse_event(to_wire(sample_event("npsSubmitted")), expected)


# ---------------------------------------------------------------------------------------
# Refused input: fields, each under its wire path


def test_every_problem_is_listed_with_its_wire_path() -> None:
    """
    One parse reports all problems at once, each as "<wire path>: <reason>".
    """
    data = wire_dict()
    data["properties"]["nps"]["rating"] = 11
    data["properties"]["nps"]["source"] = "sms"
    data["visitorId"] = ""
    data["timestamp"] = "1626803876"
    del data["app"]["name"]
    data["subscription"]["id"] = 2**64
    data["properties"]["guideProperties"]["steps"][0]["resetAt"] = 1.5
    data["properties"]["guideProperties"]["createdByUser"] = "pendo-user"
    data["uniqueId"] = "a.b"
    assert set(problems(data)) == {
        "app.name: required",
        "subscription.id: must fit in a signed 64-bit integer",
        "timestamp: must be an integer, not str",
        "visitorId: must not be empty",
        "uniqueId: may only contain A-Z, a-z, 0-9, '_' and '-'",
        "properties.guideProperties.createdByUser: must be an object, not str",
        "properties.guideProperties.steps[0].resetAt: must be an integer, not float",
        "properties.nps.rating: must be between 0 and 10",
        "properties.nps.source: must be 'web' or 'email'",
    }


def test_missing_keys_are_required() -> None:
    """
    Every envelope and property key is required, at every level; all are listed.
    """
    assert problems(b'{"event":"npsSubmitted","properties":{"nps":{"rating":11}}}') == (
        "app: required",
        "accountId: required",
        "subscription: required",
        "userAgent: required",
        "timestamp: required",
        "visitorId: required",
        "uniqueId: required",
        "properties.guideId: required",
        "properties.guideProperties: required",
        "properties.guideStepId: required",
        "properties.language: required",
        "properties.nps.rating: must be between 0 and 10",
        "properties.nps.reason: required",
        "properties.nps.source: required",
    )


def test_parent_child_account_id_is_required_on_the_wire() -> None:
    """
    ``accountId`` has a default in Python, but the wire must carry it.
    """
    data = wire_dict("parentChildAccountCreated")
    del data["accountId"]
    assert problems(data) == ("accountId: required",)


def test_parent_child_mismatch_on_the_wire() -> None:
    """
    A body whose accountId is not "<parent>::<child>" is refused, under ``accountId``.
    """
    data = wire_dict("parentChildAccountCreated")
    data["accountId"] = "someone else"
    assert problems(data) == (
        "accountId: must be the parent and child account ids joined by '::'",
    )


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ("missing", "properties: required"),
        (None, "properties: must be an object, not NoneType"),
        ([], "properties: must be an object, not list"),
        ("{}", "properties: must be an object, not str"),
    ],
)
def test_properties_must_be_an_object(properties: object, message: str) -> None:
    """
    A missing or non-object ``properties`` is one problem, not one per property; other
    problems are still reported.
    """
    data = wire_dict()
    if properties == "missing":
        del data["properties"]
    else:
        data["properties"] = properties
    data["visitorId"] = 7
    assert problems(data) == (message, "visitorId: must be a string, not int")


def test_account_created_properties_may_be_any_object() -> None:
    """
    accountCreated has no properties; extra ones are ignored, but it must be an object.
    """
    data = wire_dict("accountCreated")
    data["properties"] = {"future": True}
    assert parse_event(data) == sample_event("accountCreated")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("timestamp",), 1626803876.0, "timestamp: must be an integer, not float"),
        (("timestamp",), True, "timestamp: must be an integer, not bool"),
        (("timestamp",), 2**62, "timestamp: is outside the range"),
        (("timestamp",), -(2**40), "timestamp: is outside the range"),
        (("timestamp",), 2**63, "timestamp: must fit in a signed 64-bit integer"),
        (("app", "id"), "-323232", "app.id: must be an integer, not str"),
        (("app", "id"), False, "app.id: must be an integer, not bool"),
        (("app",), [], "app: must be an object, not list"),
        (("accountId",), "", "accountId: must not be empty"),
        (("accountId",), "\ud800", "accountId: must not contain lone surrogates"),
        (("userAgent",), None, "userAgent: must be a string, not NoneType"),
        (("uniqueId",), "x" * 101, "uniqueId: must be at most 100 characters"),
        (
            ("properties", "nps", "rating"),
            True,
            "properties.nps.rating: must be an integer, not bool",
        ),
        (
            ("properties", "nps", "rating"),
            9.0,
            "properties.nps.rating: must be an integer, not float",
        ),
        (("properties", "nps", "rating"), -1, "properties.nps.rating: must be between 0 and 10"),
        (("properties", "nps"), 9, "properties.nps: must be an object, not int"),
        (
            ("properties", "guideProperties", "steps"),
            {},
            "properties.guideProperties.steps: must be an array, not dict",
        ),
        (
            ("properties", "guideProperties", "steps"),
            "s",
            "properties.guideProperties.steps: must be an array, not str",
        ),
        (
            ("properties", "guideProperties", "steps", 0),
            None,
            "properties.guideProperties.steps[0]: must be an object, not NoneType",
        ),
        (
            ("properties", "guideProperties", "steps", 0, "id"),
            "",
            "properties.guideProperties.steps[0].id: must not be empty",
        ),
        (
            ("properties", "guideProperties", "lastUpdatedAt"),
            10**20,
            "properties.guideProperties.lastUpdatedAt: must fit",
        ),
        (
            ("properties", "guideProperties", "lastUpdatedByUser", "username"),
            1,
            "properties.guideProperties.lastUpdatedByUser.username: must be a string, not int",
        ),
        (
            ("properties", "language"),
            "\udfff",
            "properties.language: must not contain lone surrogates",
        ),
    ],
)
def test_field_problems(path: tuple[Any, ...], value: object, message: str) -> None:
    """
    A bad value anywhere is reported under its wire path, with no silent coercion.
    """
    data = wire_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    found = problems(data)
    assert len(found) == 1
    assert found[0].startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"a": 1e400}', "properties.eventProperties.a: must be finite"),
        (
            '{"a": [1, "\\ud800"]}',
            "properties.eventProperties.a[1]: must not contain lone surrogates",
        ),
        (
            '{"a.b": {"c": 9223372036854775808}}',
            'properties.eventProperties["a.b"].c: must fit in a signed 64-bit integer',
        ),
        (
            '{"\\udc00": 1}',
            "properties.eventProperties: object keys must not contain lone surrogates",
        ),
        ("[]", "properties.eventProperties: must be an object, not list"),
        ('"{}"', "properties.eventProperties: must be an object, not str"),
        ("[" * 70 + "]" * 70, "properties.eventProperties: must be an object"),
        (
            '{"x":' + "[" * 70 + "]" * 70 + "}",
            "properties.eventProperties.x"
            + "[0]" * 63
            + ": must not nest more than 64 levels deep",
        ),
    ],
)
def test_event_properties_problems(body: str, message: str) -> None:
    """
    eventProperties must be a JSON object a Go or JavaScript receiver can represent; the
    path goes down to the culprit.
    """
    text = to_wire(sample_event("trackEventReceived")).decode()
    text = text.replace('{"fromTier":"basic","toTier":"pro"}', body)
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith(message)


def test_event_properties_round_trip_keeps_key_order() -> None:
    """
    eventProperties keep their key order through parse and serialize.
    """
    text = to_wire(sample_event("trackEventReceived")).decode()
    text = text.replace('{"fromTier":"basic","toTier":"pro"}', '{"z":1,"a":{"y":[],"b":null}}')
    assert to_wire(parse_event(text)).decode() == text


class _BrokenMapping(Mapping[str, Any]):
    """A mapping whose every lookup fails with an unexpected error."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("broken")

    def __iter__(self) -> Any:
        return iter(["id"])

    def __len__(self) -> int:
        return 1


def test_unexpected_errors_inside_a_mapping_are_reported_not_raised() -> None:
    """
    A caller's mapping that fails on lookup is reported under its path with the error type.
    """
    data = wire_dict()
    data["app"] = _BrokenMapping()
    assert problems(data) == (
        "app.id: invalid (RuntimeError)",
        "app.name: invalid (RuntimeError)",
        "app.platform: invalid (RuntimeError)",
    )


def test_problem_messages_are_utf8_safe() -> None:
    """
    Even for input full of lone surrogates, messages can be logged as UTF-8.
    """
    data = wire_dict()
    data["visitorId"] = "\ud800"
    data["properties"]["language"] = "\udfff"
    with pytest.raises(InvalidEventPayload) as info:
        parse_event(data)
    str(info.value).encode("utf-8")
    assert len(info.value.errors) == 2


# ---------------------------------------------------------------------------------------
# Property-based


@pytest.mark.parametrize("cls", hs.EVENT_CLASSES, ids=lambda c: c.__name__)
@given(data=st.data())
def test_round_trip_for_every_event_type(cls: type[ev.Event], data: st.DataObject) -> None:
    """
    For any valid event of each type: ``parse_event(to_wire(e)) == e``, the bytes are
    stable, valid UTF-8 JSON, and carry none of the characters Pendo escapes.
    """
    event = data.draw(hs.events_of(cls))
    body = to_wire(event)
    parsed = parse_event(body)
    assert parsed == event
    assert to_wire(parsed) == body
    text = body.decode("utf-8")
    assert json.loads(text) == json.loads(json.dumps(to_wire_dict(event)))
    for char in "<>&\u2028\u2029":
        assert char not in text


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(hs.wild_event_kwargs())
def test_construction_raises_or_round_trip_holds(drawn: tuple[type, dict[str, Any]]) -> None:
    """
    For any drawn arguments (lone surrogates, empty strings, non-ASCII, huge or mistyped
    numbers, naive datetimes ...), either construction raises our ValidationError or the
    wire round trip holds exactly.
    """
    cls, kwargs = drawn
    try:
        event = cls(**kwargs)
    except ValidationError:
        return
    body = to_wire(event)
    assert parse_event(body) == event
    assert to_wire(parse_event(body)) == body


def _set_at(data: Any, path: list[Any], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[list[Any]]:
    found: list[list[Any]] = []
    items: Any = data.items() if isinstance(data, Mapping) else enumerate(data)
    for key, value in items:
        found.append([*prefix, key])
        if isinstance(value, (dict, list)) and value:
            found.extend(_paths(value, (*prefix, key)))
    return found


_JUNK = st.one_of(
    hs.json_values(max_leaves=4),
    st.sampled_from([None, True, 0, -1, 11, 2**63, 1.5, "", "\ud800", [], {}, "a.b"]),
    hs.wild_text(),
)


@given(hs.events(), st.data())
def test_parse_never_crashes_on_corrupted_bodies(event: ev.Event, data: st.DataObject) -> None:
    """
    Replacing any value of a valid body by junk either still parses (and then round-trips)
    or raises InvalidEventPayload / UnknownEventType with UTF-8-safe messages.
    """
    wire = json.loads(to_wire(event))
    path = data.draw(st.sampled_from(_paths(wire)))
    _set_at(wire, path, data.draw(_JUNK))
    try:
        parsed = parse_event(wire)
    except (InvalidEventPayload, UnknownEventType) as exc:
        str(exc).encode("utf-8")
        return
    assert parse_event(to_wire(parsed)) == parsed


@given(st.one_of(st.binary(max_size=64), st.text(max_size=64)))
def test_parse_never_crashes_on_arbitrary_input(data: bytes | str) -> None:
    """
    Arbitrary bytes or text raise only our typed errors.
    """
    with pytest.raises((InvalidEventPayload, UnknownEventType)):
        parse_event(data)


def test_every_event_class_has_a_wire_layout() -> None:
    """
    Each class's wire keys are exactly its non-metadata attributes, camel-cased.
    """
    for event in sample_events():
        data = json.loads(to_wire(event))
        names = {a.name for a in attrs.fields(type(event))} - {"agent_version", "source_ip"}
        keys = (set(data) | set(data["properties"])) - {"event", "properties"}
        camel = {
            n.split("_")[0] + "".join(w.capitalize() for w in n.split("_")[1:]) for n in names
        }
        assert keys == camel
