"""Event models: construction checks, normalization, immutability, samples."""

from __future__ import annotations

import copy
import ipaddress
import pickle
import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendo_webhooks import events as ev
from pendo_webhooks.events import (
    EVENT_CLASSES,
    MIN_SURVEY_AGENT_VERSION,
    SURVEY_CATEGORIES,
    AgentVersion,
    EventCategory,
    GuideStep,
    NpsResponse,
    PollResponse,
    new_unique_id,
)
from pendo_webhooks.events._frozen_json import FrozenDict, FrozenList
from pendo_webhooks.exceptions import InvalidVersion, UnknownEventType, ValidationError
from pendo_webhooks.testing import sample_event, sample_events

from . import strategies as hs


UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def raises_on(field: str, match: str = "") -> Any:
    """``pytest.raises(ValidationError)`` that also checks the field named."""
    return pytest.raises(ValidationError, match=rf"^{re.escape(field)}: .*{match}")


def step(**overrides: Any) -> GuideStep:
    values: dict[str, Any] = {
        "id": "s1",
        "last_updated_at": EPOCH,
        "reset_at": EPOCH,
        "type": "",
    }
    return GuideStep(**{**values, **overrides})


# ---------------------------------------------------------------------------------------
# Categories and classes


def test_categories_are_the_nine_wire_names() -> None:
    """
    EventCategory has exactly WIRE.md's nine ``event`` values, and ``str`` gives the value.
    """
    assert [c.value for c in EventCategory] == [
        "guideDisplayed",
        "trackEventReceived",
        "npsDisplayed",
        "npsSubmitted",
        "pollDisplayed",
        "pollSubmitted",
        "visitorCreated",
        "accountCreated",
        "parentChildAccountCreated",
    ]
    assert str(EventCategory.NPS_SUBMITTED) == "npsSubmitted"


def test_event_classes_cover_every_category() -> None:
    """
    EVENT_CLASSES maps each category to the class whose ``category`` it is, read-only.
    """
    assert set(EVENT_CLASSES) == set(EventCategory)
    for category, cls in EVENT_CLASSES.items():
        assert cls.category is category
    with pytest.raises(TypeError):
        EVENT_CLASSES[EventCategory.GUIDE_DISPLAYED] = ev.AccountCreated  # type: ignore[index]


def test_survey_categories_and_minimum_agent() -> None:
    """
    The four NPS and poll categories are the survey ones; they need agent 2.33.0.
    """
    assert {c.value for c in SURVEY_CATEGORIES} == {
        "npsDisplayed",
        "npsSubmitted",
        "pollDisplayed",
        "pollSubmitted",
    }
    assert AgentVersion.parse("2.33.0") == MIN_SURVEY_AGENT_VERSION


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e.category.value)
def test_events_are_frozen(event: ev.Event) -> None:
    """
    Assigning to an event attribute raises; ``attrs.evolve`` makes a checked copy instead.
    """
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.visitor_id = "someone else"  # type: ignore[misc]
    changed = attrs.evolve(event, visitor_id="someone else")
    assert changed.visitor_id == "someone else"
    assert event.visitor_id == "Webhook Visitor"
    with raises_on("visitor_id", "empty"):
        attrs.evolve(event, visitor_id="")


@pytest.mark.parametrize("cls", list(EVENT_CLASSES.values()), ids=lambda c: c.__name__)
def test_events_take_keywords_only(cls: type) -> None:
    """
    Positional arguments are refused, so call sites always name what they set.
    """
    with pytest.raises(TypeError):
        cls("x")


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e.category.value)
def test_events_compare_hash_and_pickle(event: ev.Event) -> None:
    """
    Events are equal by value, hashable, and survive pickle, copy and deepcopy.
    """
    twin = sample_event(event.category)
    assert twin == event
    assert hash(twin) == hash(event)
    assert len({event, twin}) == 1
    assert pickle.loads(pickle.dumps(event)) == event
    assert copy.copy(event) == event
    assert copy.deepcopy(event) == event
    assert event != attrs.evolve(event, unique_id=new_unique_id())


# ---------------------------------------------------------------------------------------
# unique_id


def test_new_unique_id_is_40_lowercase_hex_and_fresh() -> None:
    """
    ``new_unique_id`` mints 40 lowercase hex characters, different every call.
    """
    ids = {new_unique_id() for _ in range(50)}
    assert len(ids) == 50
    for unique_id in ids:
        assert re.fullmatch(r"[0-9a-f]{40}", unique_id)
        assert sample_event("accountCreated", unique_id=unique_id).unique_id == unique_id


@pytest.mark.parametrize("unique_id", ["a", "A-z_09", "x" * 100, "msg_p5jXN8AQM9LWM0D4loKWxJek"])
def test_unique_id_accepts_url_safe_ids(unique_id: str) -> None:
    """
    1 to 100 characters from [A-Za-z0-9_-] are accepted.
    """
    assert sample_event("accountCreated", unique_id=unique_id).unique_id == unique_id


@pytest.mark.parametrize(
    ("unique_id", "reason"),
    [
        ("", "must not be empty"),
        ("x" * 101, "at most 100"),
        ("a.b", "may only contain"),
        ("a b", "may only contain"),
        ("caf\u00e9", "may only contain"),
        ("a\n", "may only contain"),
        ("\ud800", "surrogates"),
        (5, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_unique_id_rejects(unique_id: object, reason: str) -> None:
    """
    Empty, too long, a '.' (Standard Webhooks signs "id.ts.body"), or other characters.
    """
    with raises_on("unique_id", reason):
        sample_event("accountCreated", unique_id=unique_id)


# ---------------------------------------------------------------------------------------
# Strings


_ID_FIELDS = [
    ("accountCreated", "visitor_id"),
    ("accountCreated", "account_id"),
    ("guideDisplayed", "guide_id"),
    ("guideDisplayed", "guide_step_id"),
    ("trackEventReceived", "name"),
    ("parentChildAccountCreated", "parent_account_id"),
    ("parentChildAccountCreated", "child_account_id"),
]


@pytest.mark.parametrize(("category", "field"), _ID_FIELDS)
def test_ids_must_not_be_empty(category: str, field: str) -> None:
    """
    Ids are required to be non-empty; the error names the field.
    """
    with raises_on(field, "must not be empty"):
        sample_event(category, **{field: ""})


def test_nested_ids_must_not_be_empty() -> None:
    """
    Guide, step and poll ids are non-empty too.
    """
    guide = sample_event("guideDisplayed").guide_properties
    with raises_on("guide_properties.id", "empty"):
        attrs.evolve(guide, id="")
    with raises_on("guide_step.id", "empty"):
        step(id="")
    with raises_on("poll.id", "empty"):
        PollResponse(id="", question="q", response="a")


@pytest.mark.parametrize(
    ("category", "field"),
    [
        ("guideDisplayed", "language"),
        ("guideDisplayed", "user_agent"),
        ("trackEventReceived", "source"),
        ("visitorCreated", "browser_name"),
        ("visitorCreated", "browser_version"),
    ],
)
def test_empty_strings_allowed_where_pendo_sends_them(category: str, field: str) -> None:
    """
    ``language``, ``type``, ``reason`` and other free text may be ``""``.
    """
    assert getattr(sample_event(category, **{field: ""}), field) == ""
    assert step(type="").type == ""
    assert NpsResponse(rating=0, reason="", source="web").reason == ""


_TEXT_FIELDS = [
    ("guideDisplayed", "visitor_id"),
    ("guideDisplayed", "account_id"),
    ("guideDisplayed", "user_agent"),
    ("guideDisplayed", "language"),
    ("guideDisplayed", "guide_id"),
    ("trackEventReceived", "name"),
    ("trackEventReceived", "source"),
    ("visitorCreated", "browser_name"),
    ("parentChildAccountCreated", "child_account_id"),
]


@pytest.mark.parametrize(("category", "field"), _TEXT_FIELDS)
@pytest.mark.parametrize("bad", ["\ud800", "ok\udfff", "a\ud83d"])
def test_lone_surrogates_are_rejected(category: str, field: str, bad: str) -> None:
    """
    A string UTF-8 cannot encode is a ValidationError at construction, never a crash later.
    """
    with raises_on(field, "lone surrogates"):
        sample_event(category, **{field: bad})


def test_lone_surrogates_rejected_in_nested_values() -> None:
    """
    Nested strings are checked too, and named by their usual place.
    """
    with raises_on("nps.reason", "surrogates"):
        NpsResponse(rating=1, reason="\udc00", source="web")
    with raises_on("app.name", "surrogates"):
        ev.App(id=1, name="\ud800", platform="web")
    with raises_on("guide_user.username", "surrogates"):
        ev.GuideUser(username="\ud800")
    with raises_on("poll.response[1]", "surrogates"):
        PollResponse(id="p", question="q", response=["ok", "\ud800"])


def test_non_bmp_and_special_characters_are_fine() -> None:
    """
    Real surrogate pairs' characters (emoji), NUL, and escapable characters are valid text.
    """
    text = "\U0001f600 \x00 <>&\u2028\u2029 \u4e2d"
    assert sample_event("accountCreated", user_agent=text).user_agent == text


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("visitor_id", 5, "must be a string, not int"),
        ("visitor_id", None, "must be a string, not NoneType"),
        ("visitor_id", b"v", "must be a string, not bytes"),
        ("app", {"id": 1}, "must be an App, not dict"),
        ("subscription", None, "must be a Subscription"),
        ("timestamp", 1626803876, "must be a datetime, not int"),
        ("timestamp", "2021-07-20T17:57:56Z", "must be a datetime, not str"),
        ("timestamp", date(2021, 7, 20), "must be a datetime, not date"),
    ],
)
def test_wrong_types_name_the_field(field: str, value: object, reason: str) -> None:
    """
    A value of the wrong type raises ValidationError naming the field and the type found.
    """
    with raises_on(field, re.escape(reason)):
        sample_event("accountCreated", **{field: value})


# ---------------------------------------------------------------------------------------
# Numbers


@pytest.mark.parametrize("rating", [0, 5, 10])
def test_nps_rating_in_range(rating: int) -> None:
    """
    Ratings 0 to 10 are accepted.
    """
    assert NpsResponse(rating=rating, reason="", source="web").rating == rating


@pytest.mark.parametrize(
    ("rating", "reason"),
    [
        (-1, "between 0 and 10"),
        (11, "between 0 and 10"),
        (True, "must be an integer, not bool"),
        (False, "must be an integer, not bool"),
        (9.0, "must be an integer, not float"),
        ("9", "must be an integer, not str"),
        (None, "must be an integer"),
    ],
)
def test_nps_rating_out_of_range_or_not_int(rating: object, reason: str) -> None:
    """
    A rating outside 0..10, a bool, a float or a string raises, naming ``nps.rating``.
    """
    with raises_on("nps.rating", reason):
        NpsResponse(rating=rating, reason="", source="web")  # type: ignore[arg-type]


@pytest.mark.parametrize("source", ["web", "email"])
def test_nps_source_web_or_email(source: str) -> None:
    """
    ``source`` is ``"web"`` or ``"email"``.
    """
    assert NpsResponse(rating=1, reason="", source=source).source == source  # type: ignore[arg-type]


@pytest.mark.parametrize("source", ["", "WEB", "sms", 1])
def test_nps_source_other_values(source: object) -> None:
    """
    Any other source is refused.
    """
    with raises_on("nps.source"):
        NpsResponse(rating=1, reason="", source=source)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-(2**63), 2**63 - 1, 0, -323232])
def test_int64_ids_at_the_limits(value: int) -> None:
    """
    App and subscription ids and the sample group take any signed 64-bit integer.
    """
    assert ev.App(id=value, name="", platform="web").id == value
    assert ev.Subscription(id=value, name="").id == value
    assert sample_event("visitorCreated", sample_group=value).sample_group == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (2**63, "64-bit"),
        (-(2**63) - 1, "64-bit"),
        pytest.param(10**5000, "64-bit", id="10**5000"),
        (True, "not bool"),
        (1.0, "not float"),
        ("1", "not str"),
    ],
)
def test_int64_rejects(value: object, reason: str) -> None:
    """
    Integers beyond int64, bools, floats and strings are refused, naming the field.
    """
    with raises_on("app.id", reason):
        ev.App(id=value, name="", platform="web")  # type: ignore[arg-type]
    with raises_on("subscription.id", reason):
        ev.Subscription(id=value, name="")  # type: ignore[arg-type]
    with raises_on("sample_group", reason):
        sample_event("visitorCreated", sample_group=value)


# ---------------------------------------------------------------------------------------
# Datetimes


def test_timestamp_is_truncated_to_whole_seconds_in_utc() -> None:
    """
    An aware timestamp at any offset is stored in UTC, truncated to the second.
    """
    plus_two = timezone(timedelta(hours=2))
    event = sample_event(
        "accountCreated", timestamp=datetime(2021, 7, 20, 19, 57, 56, 999_999, tzinfo=plus_two)
    )
    assert event.timestamp == datetime(2021, 7, 20, 17, 57, 56, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC
    assert event.timestamp.microsecond == 0


def test_guide_times_are_truncated_to_whole_milliseconds_in_utc() -> None:
    """
    Guide and step times keep milliseconds and drop the microseconds below them.
    """
    minus_five = timezone(timedelta(hours=-5))
    s = step(
        last_updated_at=datetime(2021, 1, 1, 0, 0, 0, 123_999, tzinfo=minus_five),
        reset_at=datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC),
    )
    assert s.last_updated_at == datetime(2021, 1, 1, 5, 0, 0, 123_000, tzinfo=UTC)
    assert s.last_updated_at.tzinfo is UTC
    # Before the epoch, truncation still goes back in time, as the wire's floor does.
    assert s.reset_at == datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)


def test_reset_at_epoch_zero_is_valid() -> None:
    """
    Pendo sends ``resetAt: 0`` for a step never reset; the epoch is a valid datetime.
    """
    assert step(reset_at=EPOCH).reset_at == EPOCH


def test_fold_is_cleared() -> None:
    """
    ``fold=1`` does not survive normalization, so equal instants give equal events.
    """
    folded = datetime(2021, 7, 20, 17, 57, 56, fold=1, tzinfo=UTC)
    assert sample_event("accountCreated", timestamp=folded).timestamp.fold == 0


@pytest.mark.parametrize(
    ("category", "field"),
    [("accountCreated", "timestamp")],
)
def test_naive_datetimes_are_rejected(category: str, field: str) -> None:
    """
    A naive datetime is ambiguous: ValidationError naming the field.
    """
    with raises_on(field, "timezone-aware"):
        sample_event(category, **{field: datetime(2021, 7, 20, 17, 57, 56)})
    with raises_on("guide_step.reset_at", "timezone-aware"):
        step(reset_at=datetime(2021, 1, 1))
    with raises_on("guide_properties.created_at", "timezone-aware"):
        attrs.evolve(
            sample_event("guideDisplayed").guide_properties, created_at=datetime(2021, 1, 1)
        )


class _NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> None:
        return None


def test_tzinfo_without_offset_is_naive() -> None:
    """
    A tzinfo whose ``utcoffset`` is None makes the datetime naive, so it is refused.
    """
    with raises_on("timestamp", "timezone-aware"):
        sample_event("accountCreated", timestamp=datetime(2021, 1, 1, tzinfo=_NoOffset()))


@pytest.mark.parametrize(
    "moment",
    [
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_datetimes_that_leave_the_range_in_utc_are_rejected(moment: datetime) -> None:
    """
    Converting to UTC must not overflow into a crash: it is a ValidationError.
    """
    with raises_on("timestamp", "range"):
        sample_event("accountCreated", timestamp=moment)


# ---------------------------------------------------------------------------------------
# Guide properties and poll responses


def test_steps_list_becomes_a_tuple() -> None:
    """
    ``steps`` accepts a list and stores a tuple, so the event stays immutable and hashable.
    """
    guide = attrs.evolve(sample_event("guideDisplayed").guide_properties, steps=[step(), step()])
    assert guide.steps == (step(), step())
    assert isinstance(guide.steps, tuple)
    assert attrs.evolve(guide, steps=[]).steps == ()


@pytest.mark.parametrize(
    ("steps", "field", "reason"),
    [
        ("abc", "guide_properties.steps", "must be a tuple of GuideStep, not str"),
        (None, "guide_properties.steps", "not NoneType"),
        ([{"id": "s"}], "guide_properties.steps[0]", "must be a GuideStep, not dict"),
    ],
)
def test_steps_must_be_guide_steps(steps: object, field: str, reason: str) -> None:
    """
    Anything but a sequence of GuideStep is refused; a bad item is named by its index.
    """
    guide = sample_event("guideDisplayed").guide_properties
    with raises_on(field, reason):
        attrs.evolve(guide, steps=steps)


@pytest.mark.parametrize(
    ("response", "stored"),
    [
        ("Very useful", "Very useful"),
        ("", ""),
        (4, 4),
        (4.5, 4.5),
        (["a", "b"], ("a", "b")),
        ((), ()),
    ],
)
def test_poll_response_kinds(response: object, stored: object) -> None:
    """
    A poll answer is text, a number, or a list of strings (stored as a tuple).
    """
    assert PollResponse(id="p", question="", response=response).response == stored  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("response", "field", "reason"),
    [
        (True, "poll.response", "not bool"),
        (None, "poll.response", "not NoneType"),
        ({"a": 1}, "poll.response", "not dict"),
        (float("nan"), "poll.response", "finite"),
        (float("inf"), "poll.response", "finite"),
        (2**64, "poll.response", "64-bit"),
        (["a", 1], "poll.response[1]", "must be a string"),
    ],
)
def test_poll_response_rejects(response: object, field: str, reason: str) -> None:
    """
    Bools, null, objects, NaN, infinities, huge ints and non-string list items are refused.
    """
    with raises_on(field, reason):
        PollResponse(id="p", question="", response=response)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# event_properties


def test_event_properties_are_a_deep_frozen_copy() -> None:
    """
    The stored properties equal the input but are a copy: changing the input later, or the
    stored value at any depth, has no effect (the latter raises TypeError).
    """
    given_props: dict[str, Any] = {"plan": {"tiers": ["basic", "pro"]}, "n": 1}
    event = sample_event("trackEventReceived", event_properties=given_props)
    given_props["plan"]["tiers"].append("enterprise")
    given_props["n"] = 2
    assert event.event_properties == {"plan": {"tiers": ["basic", "pro"]}, "n": 1}
    props = event.event_properties
    assert isinstance(props, dict)
    with pytest.raises(TypeError, match="read-only"):
        props["n"] = 3
    with pytest.raises(TypeError, match="read-only"):
        props["plan"]["x"] = 1
    with pytest.raises(TypeError, match="read-only"):
        props["plan"]["tiers"].append("x")
    assert hash(event) == hash(sample_event("trackEventReceived", event_properties=props))


def test_event_properties_accept_any_json() -> None:
    """
    Nested objects and arrays, null, booleans, numbers, and a tuple (taken as an array).
    """
    value = {
        "a": None,
        "b": True,
        "c": -(2**63),
        "d": 1.5,
        "e": "",
        "f": [1, [2, {"g": []}]],
        "h": (1, 2),
        "\u00e9": {},
    }
    event = sample_event("trackEventReceived", event_properties=value)
    assert event.event_properties == {**value, "h": [1, 2]}


_DEEP: dict[str, Any] = {}
_cursor = _DEEP
for _ in range(70):
    _cursor["x"] = {}
    _cursor = _cursor["x"]
_CYCLE: dict[str, Any] = {}
_CYCLE["self"] = _CYCLE


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        ({"a": float("nan")}, "event_properties.a", "finite"),
        ({"a": [1, float("-inf")]}, "event_properties.a[1]", "finite"),
        ({"a": 2**63}, "event_properties.a", "64-bit"),
        ({"a": {1, 2}}, "event_properties.a", "must be JSON"),
        ({"a": b"x"}, "event_properties.a", "not bytes"),
        ({"a": object()}, "event_properties.a", "must be JSON"),
        ({"a": "\ud800"}, "event_properties.a", "surrogates"),
        ({"a": {1: "x"}}, "event_properties.a", "keys must be strings, not int"),
        ({"\ud800": 1}, "event_properties", "keys must not contain lone surrogates"),
        ({"a.b": [None, float("nan")]}, 'event_properties["a.b"][1]', "finite"),
        (_DEEP, "event_properties" + ".x" * 64, "nest more than 64"),
        (_CYCLE, "event_properties" + ".self" * 64, "nest more than 64"),
        ([1], "event_properties", "must be a mapping, not list"),
        (None, "event_properties", "must be a mapping"),
    ],
)
def test_event_properties_must_be_json(value: object, field: str, reason: str) -> None:
    """
    Non-JSON values are refused with the path to the culprit, cycles included.
    """
    with raises_on(field, reason):
        sample_event("trackEventReceived", event_properties=value)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.__setitem__("k", 1),
        lambda d: d.__delitem__("a"),
        lambda d: d.clear(),
        lambda d: d.pop("a"),
        lambda d: d.popitem(),
        lambda d: d.setdefault("k", 1),
        lambda d: d.update(k=1),
        lambda d: d.__ior__({"k": 1}),
    ],
)
def test_frozen_dict_refuses_every_change(mutate: Any) -> None:
    """
    Every mutating ``dict`` method of the stored properties raises TypeError.
    """
    d = FrozenDict({"a": 1})
    with pytest.raises(TypeError, match="FrozenDict is read-only"):
        mutate(d)
    assert d == {"a": 1}


@pytest.mark.parametrize(
    "mutate",
    [
        lambda x: x.__setitem__(0, 1),
        lambda x: x.__delitem__(0),
        lambda x: x.__iadd__([1]),
        lambda x: x.__imul__(2),
        lambda x: x.append(1),
        lambda x: x.clear(),
        lambda x: x.extend([1]),
        lambda x: x.insert(0, 1),
        lambda x: x.pop(),
        lambda x: x.remove(1),
        lambda x: x.reverse(),
        lambda x: x.sort(),
    ],
)
def test_frozen_list_refuses_every_change(mutate: Any) -> None:
    """
    Every mutating ``list`` method of a stored array raises TypeError.
    """
    x = FrozenList([1, 2])
    with pytest.raises(TypeError, match="FrozenList is read-only"):
        mutate(x)
    assert x == [1, 2]


def test_frozen_values_copy_pickle_and_repr() -> None:
    """
    Frozen values pickle, copy and deep-copy to equal frozen values, and say what they are.
    """
    value = FrozenDict({"a": FrozenList([1, FrozenDict({"b": None})])})
    for clone in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
        assert clone == value
        assert type(clone) is FrozenDict
    assert type(copy.deepcopy(value)["a"]) is FrozenList
    assert repr(value) == "FrozenDict({'a': FrozenList([1, FrozenDict({'b': None})])})"
    assert hash(FrozenList([1])) == hash((1,))


# ---------------------------------------------------------------------------------------
# Host metadata


def test_agent_version_accepts_text_or_version_and_is_not_compared() -> None:
    """
    ``agent_version`` takes text or an AgentVersion, and is ignored by ``==`` and ``hash``.
    """
    plain = sample_event("npsSubmitted")
    with_text = sample_event("npsSubmitted", agent_version="2.33.0")
    with_version = sample_event("npsSubmitted", agent_version=AgentVersion.parse("2.40.1"))
    assert plain.agent_version is None
    assert with_text.agent_version == AgentVersion.parse("2.33.0")
    assert with_version.agent_version == AgentVersion.parse("2.40.1")
    assert plain == with_text == with_version
    assert hash(plain) == hash(with_text)


@pytest.mark.parametrize(("value", "reason"), [("2.33", "look like"), (2.33, "not float")])
def test_bad_agent_version_raises_invalid_version(value: object, reason: str) -> None:
    """
    An unparseable or mistyped agent version raises InvalidVersion naming ``agent_version``.
    """
    with pytest.raises(InvalidVersion, match=f"^agent_version: .*{reason}"):
        sample_event("pollSubmitted", agent_version=value)


def test_source_ip_accepts_text_or_address_and_is_not_compared() -> None:
    """
    ``source_ip`` takes IPv4 or IPv6 text or an address object, and is ignored by ``==``.
    """
    v4 = sample_event("visitorCreated", source_ip="203.0.113.7")
    v6 = sample_event("visitorCreated", source_ip=ipaddress.ip_address("2001:db8::1"))
    assert v4.source_ip == ipaddress.IPv4Address("203.0.113.7")
    assert v6.source_ip == ipaddress.IPv6Address("2001:db8::1")
    assert v4 == v6 == sample_event("visitorCreated")


@pytest.mark.parametrize(
    ("value", "reason"),
    [("localhost", "IPv4 or IPv6"), ("10.0.0.256", "IPv4 or IPv6"), (167772161, "not int")],
)
def test_bad_source_ip(value: object, reason: str) -> None:
    """
    Text that is not an address, or another type, raises ValidationError naming ``source_ip``.
    """
    with raises_on("source_ip", reason):
        sample_event("visitorCreated", source_ip=value)


# ---------------------------------------------------------------------------------------
# parentChildAccountCreated


def test_parent_child_account_id_defaults_to_the_joined_pair() -> None:
    """
    Without ``account_id`` the envelope account is ``"<parent>::<child>"``.
    """
    event = sample_event("parentChildAccountCreated", parent_account_id="P", child_account_id="C")
    assert event.account_id == "P::C"
    assert sample_event("parentChildAccountCreated").account_id == (
        "Webhook Parent Account::Webhook Account"
    )


def test_parent_child_account_id_may_be_given_if_it_matches() -> None:
    """
    An explicit ``account_id`` equal to the joined pair is accepted.
    """
    event = sample_event(
        "parentChildAccountCreated", parent_account_id="P", child_account_id="C", account_id="P::C"
    )
    assert event.account_id == "P::C"


@pytest.mark.parametrize("account_id", ["C::P", "P", "P::C::", "Webhook Account"])
def test_parent_child_account_id_mismatch_is_rejected(account_id: str) -> None:
    """
    An ``account_id`` that is not the joined pair raises ValidationError naming it.
    """
    with raises_on("account_id", "joined by '::'"):
        sample_event(
            "parentChildAccountCreated",
            parent_account_id="P",
            child_account_id="C",
            account_id=account_id,
        )


def test_parent_child_evolve_must_keep_account_id_consistent() -> None:
    """
    ``attrs.evolve`` copies ``account_id``, so changing one side alone is a mismatch.
    """
    event = sample_event("parentChildAccountCreated")
    with raises_on("account_id"):
        attrs.evolve(event, parent_account_id="Other")
    moved = attrs.evolve(event, parent_account_id="Other", account_id="Other::Webhook Account")
    assert moved.parent_account_id == "Other"


# ---------------------------------------------------------------------------------------
# sample_event


@pytest.mark.parametrize("category", list(EventCategory), ids=str)
def test_sample_event_for_each_category(category: EventCategory) -> None:
    """
    Each category (or its wire name) gives an event of its class, the same every time.
    """
    event = sample_event(category)
    assert type(event) is EVENT_CLASSES[category]
    assert event == sample_event(category.value)
    assert re.fullmatch(r"[0-9a-f]{40}", event.unique_id)
    assert event.timestamp == datetime(2021, 7, 20, 17, 57, 56, tzinfo=UTC)


def test_sample_events_one_of_each_with_distinct_ids() -> None:
    """
    ``sample_events`` has one event per category, in order, with distinct unique ids.
    """
    samples = sample_events()
    assert [e.category for e in samples] == list(EventCategory)
    assert len({e.unique_id for e in samples}) == len(samples)
    assert samples[0].unique_id == "f9610795860d89fe29491846fe297bcc922e460b"


def test_sample_event_overrides_go_through_the_constructor() -> None:
    """
    Overrides replace attributes and are checked like any constructor argument.
    """
    event = sample_event(
        "npsSubmitted", visitor_id="v-1", nps=NpsResponse(rating=0, reason="", source="email")
    )
    assert event.visitor_id == "v-1"
    assert event.nps.rating == 0
    with raises_on("visitor_id", "empty"):
        sample_event("npsSubmitted", visitor_id="")


def test_sample_event_unknown_override_name() -> None:
    """
    An override that names no attribute raises ValidationError naming it.
    """
    with raises_on("guide_id", "AccountCreated has no such attribute"):
        sample_event("accountCreated", guide_id="g")


@pytest.mark.parametrize("category", ["pageViewed", "", "GUIDE_DISPLAYED", 3, None])
def test_sample_event_unknown_category(category: object) -> None:
    """
    A category that is not an EventCategory (or its value) raises UnknownEventType.
    """
    with pytest.raises(UnknownEventType) as info:
        sample_event(category)  # type: ignore[arg-type]
    assert info.value.event == category


# ---------------------------------------------------------------------------------------
# Property-based


@given(hs.events())
def test_valid_events_rebuild_equal(event: ev.Event) -> None:
    """
    Any valid event rebuilt from its own attributes is equal to it (normalization is stable).
    """
    values = {a.name: getattr(event, a.name) for a in attrs.fields(type(event))}
    assert type(event)(**values) == event


@given(hs.wild_event_kwargs())
def test_wild_arguments_raise_only_validation_errors(drawn: tuple[type, dict[str, Any]]) -> None:
    """
    For any arguments, construction either succeeds or raises ValidationError; an error
    message always names a field and is valid UTF-8 text.
    """
    cls, kwargs = drawn
    error: ValidationError | None = None
    try:
        cls(**kwargs)
    except ValidationError as exc:
        error = exc
    if error is not None:
        assert error.field
        str(error).encode("utf-8")


@given(st.sampled_from(list(EventCategory)), st.sampled_from(["agent_version", "source_ip"]))
def test_metadata_never_breaks_equality(category: EventCategory, name: str) -> None:
    """
    Host metadata never changes whether two events are equal.
    """
    value = {"agent_version": "1.0.0", "source_ip": "192.0.2.1"}[name]
    assert sample_event(category, **{name: value}) == sample_event(category)
