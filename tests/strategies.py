"""
Hypothesis strategies for events, reusable by every test module.

* ``events()`` / ``events_of(cls)``: always-valid events, with text that includes the empty
  string, non-ASCII and the characters Pendo escapes (``<>&``, U+2028, U+2029).
* ``wild_event_kwargs()``: a class and constructor arguments that are often invalid (lone
  surrogates, empty ids, out-of-range and mistyped numbers, naive datetimes, ...); nested
  values that failed their own checks arrive as :data:`INVALID`, which no constructor
  accepts.
* ``json_values()``: any JSON value, as ``json.loads`` would return it.

The default ``st.text()`` never yields surrogates, so ``wild_text()`` mixes them in.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
from hypothesis import strategies as st

from pendo_webhooks import events as ev
from pendo_webhooks.exceptions import ValidationError


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: Characters Pendo's serializer escapes; always worth mixing in.
SPECIALS = '<>&\u2028\u2029"\\/\x00\x1f\u00e9\u4e2d\U0001f600'

#: What a nested value becomes when its own constructor refused the drawn arguments.
INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID"})()

_CHARS = st.one_of(st.characters(codec="utf-8"), st.sampled_from(SPECIALS))
_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


def clean_text(min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[str]:
    """Text UTF-8 can encode: empty, ASCII, non-ASCII, escapable characters."""
    return st.text(_CHARS, min_size=min_size, max_size=max_size)


def wild_text() -> st.SearchStrategy[str]:
    """Text that may be empty and may hold lone surrogates."""
    return st.text(st.one_of(_CHARS, _SURROGATES), max_size=12)


def identifiers() -> st.SearchStrategy[str]:
    """Non-empty clean text."""
    return clean_text(min_size=1)


def unique_ids() -> st.SearchStrategy[str]:
    """Valid uniqueIds: 1 to 100 characters from [A-Za-z0-9_-]."""
    return st.from_regex(r"[A-Za-z0-9_-]{1,100}", fullmatch=True)


def int64s() -> st.SearchStrategy[int]:
    """Integers that fit in a signed 64-bit integer."""
    return st.integers(INT64_MIN, INT64_MAX)


def _offsets() -> st.SearchStrategy[timezone]:
    return st.builds(
        timezone,
        st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
    )


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Aware datetimes in UTC or at any fixed offset, away from datetime's limits."""
    return st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.one_of(st.just(timezone.utc), _offsets()),
    )


def wild_datetimes() -> st.SearchStrategy[Any]:
    """Aware, naive, and near-the-limits datetimes (offsets may push them out of range)."""
    return _wild(
        aware_datetimes(),
        st.datetimes(),
        st.datetimes(timezones=_offsets()),
        st.sampled_from([datetime.min, datetime.max]).map(
            lambda d: d.replace(tzinfo=timezone(timedelta(hours=5)))
        ),
    )


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value: null, booleans, 64-bit integers, finite floats, text, arrays, objects."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        int64s(),
        st.floats(allow_nan=False, allow_infinity=False),
        clean_text(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(clean_text(), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def json_objects() -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects."""
    return st.dictionaries(clean_text(), json_values(), max_size=5)


# ---------------------------------------------------------------------------------------
# Valid values


def apps() -> st.SearchStrategy[ev.App]:
    return st.builds(ev.App, id=int64s(), name=clean_text(), platform=clean_text())


def subscriptions() -> st.SearchStrategy[ev.Subscription]:
    return st.builds(ev.Subscription, id=int64s(), name=clean_text())


def guide_users() -> st.SearchStrategy[ev.GuideUser]:
    return st.builds(ev.GuideUser, username=clean_text())


def guide_steps() -> st.SearchStrategy[ev.GuideStep]:
    return st.builds(
        ev.GuideStep,
        id=identifiers(),
        last_updated_at=aware_datetimes(),
        reset_at=st.one_of(st.just(datetime(1970, 1, 1, tzinfo=timezone.utc)), aware_datetimes()),
        type=clean_text(),
    )


def guide_properties() -> st.SearchStrategy[ev.GuideProperties]:
    return st.builds(
        ev.GuideProperties,
        created_at=aware_datetimes(),
        created_by_user=guide_users(),
        id=identifiers(),
        last_updated_at=aware_datetimes(),
        last_updated_by_user=guide_users(),
        name=clean_text(),
        steps=st.lists(guide_steps(), max_size=3),
    )


def nps_responses() -> st.SearchStrategy[ev.NpsResponse]:
    return st.builds(
        ev.NpsResponse,
        rating=st.integers(0, 10),
        reason=clean_text(),
        source=st.sampled_from(["web", "email"]),
    )


def poll_answers() -> st.SearchStrategy[Any]:
    return st.one_of(
        clean_text(),
        int64s(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(clean_text(), max_size=3).map(tuple),
    )


def poll_responses() -> st.SearchStrategy[ev.PollResponse]:
    return st.builds(
        ev.PollResponse, id=identifiers(), question=clean_text(), response=poll_answers()
    )


_ENVELOPE = {
    "app": apps(),
    "account_id": identifiers(),
    "subscription": subscriptions(),
    "user_agent": clean_text(),
    "timestamp": aware_datetimes(),
    "visitor_id": identifiers(),
    "unique_id": unique_ids(),
}
_GUIDE = {
    "guide_id": identifiers(),
    "guide_properties": guide_properties(),
    "guide_step_id": identifiers(),
    "language": clean_text(),
}
_PROPERTIES: dict[type, dict[str, st.SearchStrategy[Any]]] = {
    ev.GuideDisplayed: _GUIDE,
    ev.NpsDisplayed: _GUIDE,
    ev.PollDisplayed: _GUIDE,
    ev.NpsSubmitted: {**_GUIDE, "nps": nps_responses()},
    ev.PollSubmitted: {**_GUIDE, "poll": poll_responses()},
    ev.TrackEventReceived: {
        "event_properties": json_objects(),
        "name": identifiers(),
        "source": clean_text(),
    },
    ev.VisitorCreated: {
        "browser_name": clean_text(),
        "browser_version": clean_text(),
        "sample_group": int64s(),
    },
    ev.AccountCreated: {},
    ev.ParentChildAccountCreated: {
        "parent_account_id": identifiers(),
        "child_account_id": identifiers(),
    },
}

#: Every event class.
EVENT_CLASSES: tuple[type[ev.Event], ...] = tuple(ev.EVENT_CLASSES.values())


def events_of(cls: type[ev.Event]) -> st.SearchStrategy[ev.Event]:
    """Valid events of one class (host metadata left out)."""
    fields = {**_ENVELOPE, **_PROPERTIES[cls]}
    if cls is ev.ParentChildAccountCreated:
        del fields["account_id"]
    return st.builds(cls, **fields)


def events() -> st.SearchStrategy[ev.Event]:
    """Valid events of every class."""
    return st.one_of([events_of(cls) for cls in EVENT_CLASSES])


# ---------------------------------------------------------------------------------------
# Wild values: often invalid


def _wild(valid: st.SearchStrategy[Any], *extra: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Mostly valid, so that whole events often get built; otherwise an edge case or junk.
    bad = st.one_of(
        *extra,
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        wild_text(),
        st.just(INVALID),
    )
    return st.integers(0, 9).flatmap(lambda roll: valid if roll < 9 else bad)


def _wild_int(valid: st.SearchStrategy[int] | None = None) -> st.SearchStrategy[Any]:
    edges = st.sampled_from([INT64_MIN - 1, INT64_MAX + 1, 2**200, -1, 11])
    return _wild(int64s() if valid is None else valid, edges)


def _try_build(cls: type, kwargs: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    def build(values: dict[str, Any]) -> Any:
        try:
            return cls(**values)
        except ValidationError:
            return INVALID

    return kwargs.map(build)


def _wild_text(valid: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Any]:
    return _wild(clean_text() if valid is None else valid, wild_text())


_WILD_STEP = _try_build(
    ev.GuideStep,
    st.fixed_dictionaries(
        {
            "id": _wild_text(identifiers()),
            "last_updated_at": wild_datetimes(),
            "reset_at": wild_datetimes(),
            "type": _wild_text(),
        }
    ),
)
_WILD_USER = _try_build(ev.GuideUser, st.fixed_dictionaries({"username": _wild_text()}))
_WILD_GUIDE = {
    "guide_id": _wild_text(identifiers()),
    "guide_properties": _try_build(
        ev.GuideProperties,
        st.fixed_dictionaries(
            {
                "created_at": wild_datetimes(),
                "created_by_user": _WILD_USER,
                "id": _wild_text(identifiers()),
                "last_updated_at": wild_datetimes(),
                "last_updated_by_user": _WILD_USER,
                "name": _wild_text(),
                "steps": _wild(st.lists(_WILD_STEP, max_size=2)),
            }
        ),
    ),
    "guide_step_id": _wild_text(identifiers()),
    "language": _wild_text(),
}
_WILD_ENVELOPE = {
    "app": _try_build(
        ev.App,
        st.fixed_dictionaries({"id": _wild_int(), "name": _wild_text(), "platform": _wild_text()}),
    ),
    "account_id": _wild_text(identifiers()),
    "subscription": _try_build(
        ev.Subscription,
        st.fixed_dictionaries({"id": _wild_int(), "name": _wild_text()}),
    ),
    "user_agent": _wild_text(),
    "timestamp": wild_datetimes(),
    "visitor_id": _wild_text(identifiers()),
    "unique_id": _wild(unique_ids(), st.text(max_size=110), st.just("a" * 101)),
}
_WILD_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        wild_text(),
        st.sampled_from([object(), {1, 2}, b"x"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.one_of(wild_text(), st.integers()), inner, max_size=3),
    ),
    max_leaves=8,
)
_WILD_PROPERTIES: dict[type, dict[str, st.SearchStrategy[Any]]] = {
    ev.GuideDisplayed: _WILD_GUIDE,
    ev.NpsDisplayed: _WILD_GUIDE,
    ev.PollDisplayed: _WILD_GUIDE,
    ev.NpsSubmitted: {
        **_WILD_GUIDE,
        "nps": _try_build(
            ev.NpsResponse,
            st.fixed_dictionaries(
                {
                    "rating": _wild_int(st.integers(-2, 12)),
                    "reason": _wild_text(),
                    "source": _wild_text(st.sampled_from(["web", "email", "WEB"])),
                }
            ),
        ),
    },
    ev.PollSubmitted: {
        **_WILD_GUIDE,
        "poll": _try_build(
            ev.PollResponse,
            st.fixed_dictionaries(
                {
                    "id": _wild_text(identifiers()),
                    "question": _wild_text(),
                    "response": _wild(
                        poll_answers(), st.lists(_wild_text(), max_size=3), st.floats()
                    ),
                }
            ),
        ),
    },
    ev.TrackEventReceived: {
        "event_properties": _wild(json_objects(), st.dictionaries(wild_text(), _WILD_JSON)),
        "name": _wild_text(identifiers()),
        "source": _wild_text(),
    },
    ev.VisitorCreated: {
        "browser_name": _wild_text(),
        "browser_version": _wild_text(),
        "sample_group": _wild_int(),
    },
    ev.AccountCreated: {},
    ev.ParentChildAccountCreated: {
        "parent_account_id": _wild_text(identifiers()),
        "child_account_id": _wild_text(identifiers()),
    },
}


@st.composite
def wild_event_kwargs(draw: st.DrawFn) -> tuple[type[ev.Event], dict[str, Any]]:
    """An event class and constructor arguments for it, often invalid ones."""
    cls = draw(st.sampled_from(EVENT_CLASSES))
    kwargs = draw(st.fixed_dictionaries({**_WILD_ENVELOPE, **_WILD_PROPERTIES[cls]}))
    if cls is ev.ParentChildAccountCreated and draw(st.booleans()):
        del kwargs["account_id"]
    return cls, kwargs


def field_names(cls: type) -> list[str]:
    """The attrs field names of *cls*."""
    return [a.name for a in attrs.fields(cls)]
