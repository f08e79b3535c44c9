"""
FirstSeenTracker: which sightings fire which events, exactly once across threads and
processes, API-created records, exclusions, the bounded cache, and the first-seen storage
contract.

Tests taking ``storage`` run against every backend (see conftest).
"""

from __future__ import annotations

import ipaddress
import json
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Collection
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import (
    AccountCreated,
    AgentVersion,
    App,
    Event,
    ParentChildAccountCreated,
    Subscription,
    VisitorCreated,
    parse_event,
    to_wire,
)
from pendo_webhooks.exceptions import ConfigurationError, StorageError, ValidationError
from pendo_webhooks.pipeline import (
    NO_ACCOUNT_ID,
    ExclusionMatcher,
    ExclusionRule,
    FirstSeenTracker,
    Observation,
    sample_group_for,
)
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage, _sqlite_pipeline
from pendo_webhooks.testing import RecordingTransport
from pendo_webhooks.testing.storage_contract import FirstSeenStoreContract

from .conftest import START, FrozenClock


APP = App(id=-323232, name="test_application", platform="web")
SUBSCRIPTION = Subscription(id=4802463602049999, name="test_application")
ADMIN = Actor("admin-1", is_admin=True)
SRC = Path(__file__).resolve().parents[1] / "src"


def obs(visitor: str = "v-1", account: str | None = "acme", **overrides: Any) -> Observation:
    values: dict[str, Any] = {
        "visitor_id": visitor,
        "account_id": account,
        "app": APP,
        "subscription": SUBSCRIPTION,
        "user_agent": "Mozilla/5.0",
        "browser_name": "Chrome",
        "browser_version": "91.0.4472",
        "at": START,
    }
    return Observation(**{**values, **overrides})


def kinds(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(str(e.category), e.visitor_id, e.account_id) for e in events]


def sequential_ids() -> Any:
    counter = iter(range(1, 1_000_000))
    return lambda: f"{next(counter):040x}"


@pytest.fixture(name="tracker")
def _tracker(storage: Storage, clock: FrozenClock) -> FirstSeenTracker:
    return FirstSeenTracker(storage, clock=clock, id_factory=sequential_ids())


class TestObservation:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("visitor_id", ""),
            ("visitor_id", None),
            ("account_id", ""),
            ("parent_account_id", ""),
            ("app", "web"),
            ("subscription", None),
            ("user_agent", 5),
            ("browser_name", "bad\udc00"),
            ("browser_version", None),
            ("sample_group", 2**63),
            ("sample_group", True),
            ("at", datetime(2026, 1, 1)),
            ("at", "2026-01-01"),
            ("source_ip", "10.0.0"),
            ("agent_version", "2.33"),
        ],
    )
    def test_bad_values_name_the_field(self, field: str, value: Any) -> None:
        """
        Every field is checked at construction; the error names it.
        """
        with pytest.raises(ValidationError) as info:
            obs(**{field: value})
        assert info.value.field == field

    def test_parent_needs_an_account(self) -> None:
        """
        A parent account without the (child) account is refused.
        """
        with pytest.raises(ValidationError) as info:
            obs(account=None, parent_account_id="P")
        assert info.value.field == "parent_account_id"

    @settings(max_examples=300, deadline=None)
    @given(
        text=st.one_of(
            st.lists(
                st.one_of(
                    st.integers(0, 300).map(str),
                    st.sampled_from(["", "00", "01", "007", "+1", " 1", "1_0", "\u0661", "\xb2"]),
                ),
                min_size=3,
                max_size=5,
            ).map(".".join),
            st.ip_addresses().map(str),
            st.text(max_size=20),
        )
    )
    def test_text_ips_parse_exactly_as_ipaddress_does(self, text: str) -> None:
        """
        A text source IP becomes what ipaddress.ip_address makes of it (the dotted-quad
        fast path included), and text that ipaddress refuses is a ValidationError.
        """
        try:
            expected = ipaddress.ip_address(text)
        except ValueError:
            with pytest.raises(ValidationError, match="source_ip"):
                obs(source_ip=text)
        else:
            found = obs(source_ip=text).source_ip
            assert (found, type(found)) == (expected, type(expected))

    def test_conversions(self) -> None:
        """
        Text IPs and versions are parsed; the time becomes whole seconds in UTC.
        """
        east = timezone(timedelta(hours=2))
        o = obs(
            source_ip="2001:db8::1",
            agent_version="2.33.0",
            at=datetime(2026, 1, 1, 2, 0, 0, 999_999, tzinfo=east),
        )
        assert str(o.source_ip) == "2001:db8::1"
        assert o.agent_version == AgentVersion.parse("2.33.0")
        assert o.at == START
        assert o.at.tzinfo is timezone.utc


class TestFirstSightings:
    def test_first_visit_fires_visitor_then_account_with_the_envelope(
        self, storage: Storage, clock: FrozenClock
    ) -> None:
        """
        A new visitor of a new account fires visitorCreated then accountCreated, carrying the
        observation's envelope values and host metadata.
        """
        tracker = FirstSeenTracker(storage, clock=clock, id_factory=sequential_ids())
        events = tracker.observe(
            obs(source_ip="203.0.113.9", agent_version="2.40.1", sample_group=42)
        )
        assert kinds(events) == [
            ("visitorCreated", "v-1", "acme"),
            ("accountCreated", "v-1", "acme"),
        ]
        visitor, account = events
        assert isinstance(visitor, VisitorCreated)
        assert isinstance(account, AccountCreated)
        assert (visitor.browser_name, visitor.browser_version, visitor.sample_group) == (
            "Chrome",
            "91.0.4472",
            42,
        )
        for event in events:
            assert (event.app, event.subscription, event.user_agent) == (
                APP,
                SUBSCRIPTION,
                "Mozilla/5.0",
            )
            assert event.timestamp == START
            assert str(event.source_ip) == "203.0.113.9"
            assert str(event.agent_version) == "2.40.1"
            assert parse_event(to_wire(event)) == event
        assert [e.unique_id for e in events] == [f"{1:040x}", f"{2:040x}"]

    def test_repeats_fire_nothing(self, tracker: FirstSeenTracker) -> None:
        """
        The same visitor and account seen again (later, elsewhere) fire nothing.
        """
        assert len(tracker.observe(obs())) == 2
        assert tracker.observe(obs()) == []
        assert tracker.observe(obs(at=START + timedelta(days=3), user_agent="other")) == []

    def test_a_known_visitor_in_a_new_account_fires_only_the_account(
        self, tracker: FirstSeenTracker
    ) -> None:
        """
        accountCreated's visitor is the one whose session created the account.
        """
        tracker.observe(obs("ann", "acme"))
        assert kinds(tracker.observe(obs("ann", "globex"))) == [
            ("accountCreated", "ann", "globex")
        ]
        assert kinds(tracker.observe(obs("bob", "globex"))) == [
            ("visitorCreated", "bob", "globex")
        ]

    def test_sample_group_is_derived_from_the_visitor_when_not_given(
        self, tracker: FirstSeenTracker
    ) -> None:
        """
        Without a sample group, a stable one from 0 to 99 is derived from the visitor id.
        """
        (visitor, _) = tracker.observe(obs("ann@acme.com"))
        assert isinstance(visitor, VisitorCreated)
        assert visitor.sample_group == sample_group_for("ann@acme.com")
        groups = {sample_group_for(f"visitor-{i}") for i in range(2000)}
        assert groups == set(range(100))

    def test_sample_group_is_a_fixed_function(self) -> None:
        """
        The derivation is pinned: the same ids give the same groups in every version.
        """
        assert [sample_group_for(v) for v in ("Webhook Visitor", "ann@acme.com", "")] == [
            57,
            24,
            76,
        ]

    def test_visitor_without_account(self, storage: Storage) -> None:
        """
        A visitor without an account fires visitorCreated only, with the placeholder account.
        """
        tracker = FirstSeenTracker(storage)
        assert kinds(tracker.observe(obs("anon", None))) == [
            ("visitorCreated", "anon", NO_ACCOUNT_ID)
        ]
        custom = FirstSeenTracker(storage, no_account_id="unassigned")
        assert kinds(custom.observe(obs("anon-2", None))) == [
            ("visitorCreated", "anon-2", "unassigned")
        ]

    def test_batch_order_and_duplicates(self, tracker: FirstSeenTracker) -> None:
        """
        observe_many returns events in observation order; a visitor twice in a batch fires
        once, for its first observation.
        """
        batch = [
            obs("a", "x", user_agent="first"),
            obs("b", "x"),
            obs("a", "y", user_agent="second"),
            obs("c", None),
        ]
        events = tracker.observe_many(batch)
        assert kinds(events) == [
            ("visitorCreated", "a", "x"),
            ("accountCreated", "a", "x"),
            ("visitorCreated", "b", "x"),
            ("accountCreated", "a", "y"),
            ("visitorCreated", "c", NO_ACCOUNT_ID),
        ]
        assert events[0].user_agent == "first"
        assert tracker.observe_many([]) == []
        assert tracker.observe_many(iter(batch)) == []

    def test_non_observations_are_refused_before_anything_is_recorded(
        self, tracker: FirstSeenTracker, storage: Storage
    ) -> None:
        """
        A batch holding something other than an Observation records nothing.
        """
        with pytest.raises(ValidationError) as info:
            tracker.observe_many([obs("a"), {"visitor_id": "b"}])  # type: ignore[list-item]
        assert info.value.field == "observations"
        assert storage.first_seen_origin("v:a") is None


class TestParentAccounts:
    def test_pairs_fire_once_and_the_envelope_joins_the_ids(self, storage: Storage) -> None:
        """
        With parent accounts, the first pair fires parentChildAccountCreated, and every
        envelope's accountId is "<parent>::<child>".
        """
        tracker = FirstSeenTracker(storage, parent_accounts=True)
        events = tracker.observe(obs("ann", "child", parent_account_id="parent"))
        assert kinds(events) == [
            ("visitorCreated", "ann", "parent::child"),
            ("accountCreated", "ann", "parent::child"),
            ("parentChildAccountCreated", "ann", "parent::child"),
        ]
        pair = events[2]
        assert isinstance(pair, ParentChildAccountCreated)
        assert (pair.parent_account_id, pair.child_account_id) == ("parent", "child")
        assert tracker.observe(obs("bob", "child", parent_account_id="parent")) != []
        assert tracker.observe(obs("cy", "child", parent_account_id="parent"))[1:] == []

    def test_a_known_child_under_a_new_parent_fires_only_the_pair(self, storage: Storage) -> None:
        """
        The account is the child; a new parent for it is a new pair, not a new account.
        """
        tracker = FirstSeenTracker(storage, parent_accounts=True)
        tracker.observe(obs("ann", "child", parent_account_id="p1"))
        assert kinds(tracker.observe(obs("ann", "child", parent_account_id="p2"))) == [
            ("parentChildAccountCreated", "ann", "p2::child")
        ]

    def test_pair_keys_are_unambiguous(self, storage: Storage) -> None:
        """
        Ids containing "::" cannot make two different pairs collide.
        """
        tracker = FirstSeenTracker(storage, parent_accounts=True)
        first = tracker.observe(obs("ann", "b::c", parent_account_id="a"))
        second = tracker.observe(obs("ann", "c", parent_account_id="a::b"))
        assert [str(e.category) for e in first][-1] == "parentChildAccountCreated"
        assert [str(e.category) for e in second] == [
            "accountCreated",
            "parentChildAccountCreated",
        ]

    def test_parents_are_ignored_without_the_option(self, tracker: FirstSeenTracker) -> None:
        """
        A tracker without parent accounts ignores the parent: no pair, plain account ids.
        """
        assert kinds(tracker.observe(obs("ann", "child", parent_account_id="parent"))) == [
            ("visitorCreated", "ann", "child"),
            ("accountCreated", "ann", "child"),
        ]


class TestApiCreated:
    def test_api_created_visitor_fires_exactly_once_when_first_seen(
        self, tracker: FirstSeenTracker, storage: Storage
    ) -> None:
        """
        A visitor created through the API fires nothing then, exactly one visitorCreated
        when first seen in the app, and nothing after.
        """
        assert tracker.record_api_created(visitor_ids=["ann"], account_ids=["acme"]) == 2
        assert storage.first_seen_origin("v:ann") == "api"
        events = tracker.observe(obs("ann", "acme"))
        assert kinds(events) == [
            ("visitorCreated", "ann", "acme"),
            ("accountCreated", "ann", "acme"),
        ]
        assert storage.first_seen_origin("v:ann") == "app"
        assert tracker.observe(obs("ann", "acme")) == []
        assert tracker.record_api_created(visitor_ids=["ann"]) == 0
        assert tracker.observe(obs("ann", "acme")) == []

    def test_api_created_after_an_app_sighting_changes_nothing(
        self, tracker: FirstSeenTracker, storage: Storage
    ) -> None:
        """
        Importing ids already seen in the app leaves them seen; duplicates count once.
        """
        tracker.observe(obs("ann", "acme"))
        assert tracker.record_api_created(visitor_ids=["ann", "bob", "bob"]) == 1
        assert storage.first_seen_origin("v:ann") == "app"
        assert tracker.record_api_created() == 0

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"visitor_ids": ["ok", ""]}, "visitor_ids"),
            ({"account_ids": [None]}, "account_ids"),
        ],
    )
    def test_bad_ids_record_nothing(
        self, tracker: FirstSeenTracker, storage: Storage, kwargs: dict[str, Any], field: str
    ) -> None:
        """
        An empty or non-text id is a ValidationError and nothing is recorded.
        """
        with pytest.raises(ValidationError) as info:
            tracker.record_api_created(**kwargs)
        assert info.value.field == field
        assert storage.first_seen_origin("v:ok") is None


class TestExclusions:
    def test_excluded_visitors_fire_nothing_and_are_not_recorded(
        self, storage: Storage, clock: FrozenClock
    ) -> None:
        """
        An excluded visitor fires nothing; once the rule is removed, the next sighting is
        a first one.
        """
        registry = WebhookRegistry(storage, clock=clock)
        tracker = FirstSeenTracker(storage)
        rule = registry.add_exclusion(ADMIN, "visitor", "*@test.example")
        assert tracker.observe(obs("qa@test.example", "new-account")) == []
        assert storage.first_seen_origin("v:qa@test.example") is None
        assert storage.first_seen_origin("a:new-account") is None
        registry.remove_exclusion(ADMIN, rule.id)
        assert len(tracker.observe(obs("qa@test.example", "new-account"))) == 2

    @pytest.mark.parametrize(
        ("kind", "pattern"),
        [("account", "acme"), ("account", "parent"), ("ip", "10.0.0.0/8")],
    )
    def test_excluded_accounts_and_ips(self, storage: Storage, kind: str, pattern: str) -> None:
        """
        A sighting from an excluded account (or its parent) or source range fires nothing.
        """
        tracker = FirstSeenTracker(storage, parent_accounts=True)
        WebhookRegistry(storage).add_exclusion(ADMIN, kind, pattern)
        sighting = obs("ann", "acme", parent_account_id="parent", source_ip="10.2.3.4")
        assert tracker.observe(sighting) == []
        assert len(tracker.observe(obs("bob", "globex", source_ip="11.2.3.4"))) == 2

    def test_a_fixed_list_replaces_the_stored_one(self, storage: Storage) -> None:
        """
        Rules (or a matcher) given to the tracker are used instead of the store's list.
        """
        WebhookRegistry(storage).add_exclusion(ADMIN, "visitor", "stored")
        by_rules = FirstSeenTracker(storage, exclusions=[ExclusionRule("visitor", "fixed")])
        assert by_rules.observe(obs("fixed", None)) == []
        assert len(by_rules.observe(obs("stored", None))) == 1
        by_matcher = FirstSeenTracker(
            InMemoryStorage(), exclusions=ExclusionMatcher([ExclusionRule("account", "acme")])
        )
        assert by_matcher.observe(obs("ann", "acme")) == []


class CountingStorage:
    """
    Wraps a Storage, counting claim calls and optionally failing the next ones.
    """

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.claims: list[list[str]] = []
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def claim_first_seen(self, keys: Collection[str], *, at: datetime) -> set[str]:
        if self.failures:
            self.failures -= 1
            raise StorageError("disk on fire")
        self.claims.append(list(keys))
        return self.inner.claim_first_seen(keys, at=at)


class TestCacheAndFailures:
    def test_cached_keys_skip_the_store(self, storage: Storage) -> None:
        """
        Repeat sightings of recently seen keys do not reach the store.
        """
        counting = CountingStorage(storage)
        tracker = FirstSeenTracker(counting)  # type: ignore[arg-type]
        tracker.observe(obs("ann", "acme"))
        tracker.observe(obs("ann", "acme"))
        tracker.observe(obs("bob", "acme"))
        assert counting.claims == [["v:ann", "a:acme"], ["v:bob"]]

    def test_the_cache_is_bounded(self, storage: Storage) -> None:
        """
        The cache never holds more than cache_size keys; evicted keys ask the store again,
        which still says they were seen.
        """
        counting = CountingStorage(storage)
        tracker = FirstSeenTracker(counting, cache_size=3)  # type: ignore[arg-type]
        fired = tracker.observe_many([obs(f"v{i}", None) for i in range(10)])
        assert len(fired) == 10
        assert repr(tracker) == "<FirstSeenTracker(parent_accounts=False, cached_keys=3)>"
        assert tracker.observe(obs("v0", None)) == []
        assert counting.claims[-1] == ["v:v0"]
        assert tracker.observe(obs("v0", None)) == []
        assert counting.claims[-1] == ["v:v0"]
        assert len(counting.claims) == 2

    def test_without_a_cache_every_sighting_asks_the_store(self, storage: Storage) -> None:
        """
        cache_size=0 turns the cache off; events still fire once.
        """
        counting = CountingStorage(storage)
        tracker = FirstSeenTracker(counting, cache_size=0)  # type: ignore[arg-type]
        assert len(tracker.observe(obs())) == 2
        assert tracker.observe(obs()) == []
        assert len(counting.claims) == 2
        assert "cached_keys=0" in repr(tracker)

    def test_a_failed_call_records_nothing_and_a_retry_fires(self, storage: Storage) -> None:
        """
        A storage error propagates, nothing is cached or recorded, and the retry fires.
        """
        counting = CountingStorage(storage)
        counting.failures = 1
        tracker = FirstSeenTracker(counting)  # type: ignore[arg-type]
        with pytest.raises(StorageError):
            tracker.observe(obs())
        assert storage.first_seen_origin("v:v-1") is None
        assert len(tracker.observe(obs())) == 2

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"cache_size": -1}, "cache_size"),
            ({"cache_size": True}, "cache_size"),
            ({"cache_size": 1.5}, "cache_size"),
            ({"no_account_id": ""}, "no_account_id"),
        ],
    )
    def test_bad_configuration(self, kwargs: dict[str, Any], message: str) -> None:
        """
        Bad constructor arguments raise ConfigurationError naming the argument.
        """
        with pytest.raises(ConfigurationError, match=message):
            FirstSeenTracker(InMemoryStorage(), **kwargs)


def test_observe_and_dispatch_needs_a_dispatcher_on_the_same_store(storage: Storage) -> None:
    """
    observe_and_dispatch stores the deliveries in the tracker's store: an object that only
    has ``dispatch`` is refused (it could not share the transaction), and so is a
    dispatcher on another store; neither records anything.
    """

    class Sink:
        def dispatch(self, event: Event) -> str:
            return str(event.category)

    tracker = FirstSeenTracker(storage)
    with pytest.raises(ValidationError, match="dispatcher: must be a Dispatcher, not Sink"):
        tracker.observe_and_dispatch(obs(), Sink())  # type: ignore[arg-type]
    elsewhere = Dispatcher(WebhookRegistry(InMemoryStorage()), transport=RecordingTransport())
    with pytest.raises(ConfigurationError, match="this tracker's store"):
        tracker.observe_and_dispatch(obs(), elsewhere)
    assert storage.first_seen_origin("v:v-1") is None
    assert len(tracker.observe(obs())) == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sightings=st.lists(
        st.tuples(
            st.sampled_from("abcdef"),
            st.one_of(st.none(), st.sampled_from("XYZ")),
            st.one_of(st.none(), st.sampled_from("PQ")),
        ),
        max_size=30,
    ),
    imported=st.lists(st.sampled_from("abcXY"), max_size=4),
    batch=st.integers(min_value=1, max_value=7),
    cache_size=st.sampled_from([0, 1, 3, 100]),
)
def test_matches_a_simple_model(
    sightings: list[tuple[str, str | None, str | None]],
    imported: list[str],
    batch: int,
    cache_size: int,
) -> None:
    """
    For any sightings, batching and cache size, exactly the first sighting of each visitor,
    account and pair fires, in order, whatever was imported through the API before.
    """
    tracker = FirstSeenTracker(InMemoryStorage(), parent_accounts=True, cache_size=cache_size)
    tracker.record_api_created(
        visitor_ids=[i for i in imported if i.islower()],
        account_ids=[i for i in imported if i.isupper()],
    )
    observations = [
        obs(v, a, parent_account_id=p if a is not None else None) for v, a, p in sightings
    ]
    fired: list[tuple[str, str, str]] = []
    for start in range(0, len(observations), batch):
        fired += kinds(tracker.observe_many(observations[start : start + batch]))
    expected: list[tuple[str, str, str]] = []
    seen: set[tuple[str, ...]] = set()
    for v, a, p in sightings:
        parent = p if a is not None else None
        account = NO_ACCOUNT_ID if a is None else a if parent is None else f"{parent}::{a}"
        for key, category in (
            (("v", v), "visitorCreated"),
            (("a", a) if a is not None else None, "accountCreated"),
            (("p", parent, a) if parent is not None else None, "parentChildAccountCreated"),
        ):
            if key is not None and key not in seen:
                seen.add(key)
                expected.append((category, v, account))
    assert fired == expected


class TestFirstSeenStorageContract(FirstSeenStoreContract):
    """
    The FirstSeenStore contract (shipped in pendo_webhooks.testing), on every backend.
    """


class TestSQLite:
    def test_durable_across_reopening(self, tmp_path: Path, clock: FrozenClock) -> None:
        """
        What was seen stays seen after the file is closed and reopened.
        """
        path = tmp_path / "x.sqlite3"
        with SQLiteStorage(path) as storage:
            assert len(FirstSeenTracker(storage, clock=clock).observe(obs())) == 2
        with SQLiteStorage(path) as storage:
            assert FirstSeenTracker(storage).observe(obs()) == []

    def test_rows_hold_origin_and_times(self, tmp_path: Path, clock: FrozenClock) -> None:
        """
        Rows record the origin, when the key became known and when it was first seen.
        """
        path = tmp_path / "x.sqlite3"
        with SQLiteStorage(path) as storage:
            tracker = FirstSeenTracker(storage, clock=clock)
            tracker.record_api_created(visitor_ids=["ann"])
            clock.advance(seconds=60)
            tracker.observe(obs("ann", None))
        conn = sqlite3.connect(path)
        try:
            row = conn.execute("SELECT * FROM first_seen WHERE key = 'v:ann'").fetchone()
        finally:
            conn.close()
        base = int(START.timestamp())
        assert row == ("v:ann", "app", base, base + 60)

    def test_without_returning(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """
        On SQLite before 3.35 (no RETURNING), claims use change counts and stay exact.
        """
        monkeypatch.setattr(_sqlite_pipeline, "HAS_RETURNING", False)
        with SQLiteStorage(tmp_path / "x.sqlite3") as storage:
            storage.record_known(["k:api"], at=START)
            assert storage.claim_first_seen(["k:1", "k:api", "k:1"], at=START) == {
                "k:1",
                "k:api",
            }
            assert storage.claim_first_seen(["k:1", "k:api", "k:2"], at=START) == {"k:2"}

    def test_threads_fire_each_visitor_exactly_once(self, tmp_path: Path) -> None:
        """
        8 threads reporting the same 1,000 new visitors (each its own order and batches)
        fire exactly 1,000 visitorCreated and 50 accountCreated in all.
        """
        with SQLiteStorage(tmp_path / "x.sqlite3") as storage:
            tracker = FirstSeenTracker(storage)
            counts: Counter[str] = Counter()
            lock = threading.Lock()
            barrier = threading.Barrier(8)

            def report(seed: int) -> None:
                sightings = [obs(f"v{i}", f"a{i % 50}") for i in range(1000)]
                random.Random(seed).shuffle(sightings)
                barrier.wait()
                fired: list[Event] = []
                for start in range(0, 1000, 1 + seed * 7):
                    fired += tracker.observe_many(sightings[start : start + 1 + seed * 7])
                with lock:
                    counts.update(f"{e.category}:{e.visitor_id}" for e in fired)
                    counts.update(str(e.category) for e in fired)

            threads = [threading.Thread(target=report, args=(seed,)) for seed in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert counts["visitorCreated"] == 1000
        assert counts["accountCreated"] == 50
        assert all(counts[f"visitorCreated:v{i}"] == 1 for i in range(1000)), (
            "a visitor fired twice or never"
        )

    @pytest.mark.slow
    def test_processes_and_threads_fire_each_visitor_exactly_once(self, tmp_path: Path) -> None:
        """
        2 processes of 8 threads each, reporting the same 1,000 new visitors on one SQLite
        file, fire exactly 1,000 visitorCreated events in all (counted from what each
        thread got back).
        """
        path = tmp_path / "x.sqlite3"
        go = tmp_path / "go"
        SQLiteStorage(path).close()  # create the schema once, up front
        script = textwrap.dedent(
            f"""
            import json, random, sys, threading, time
            from datetime import datetime, timezone
            from pathlib import Path
            from pendo_webhooks.events import App, Subscription
            from pendo_webhooks.pipeline import FirstSeenTracker, Observation
            from pendo_webhooks.storage import SQLiteStorage

            storage = SQLiteStorage({str(path)!r})
            tracker = FirstSeenTracker(storage)
            app = App(id=-323232, name="web", platform="web")
            sub = Subscription(id=1, name="prod")
            at = datetime(2026, 1, 1, tzinfo=timezone.utc)
            fired = []
            lock = threading.Lock()

            def report(seed):
                rng = random.Random(seed)
                sightings = [
                    Observation(visitor_id=f"v{{i}}", account_id=f"a{{i % 50}}", app=app,
                                subscription=sub, at=at)
                    for i in range(1000)
                ]
                rng.shuffle(sightings)
                mine = []
                start = 0
                while start < len(sightings):
                    size = rng.randint(1, 40)
                    mine += tracker.observe_many(sightings[start:start + size])
                    start += size
                with lock:
                    fired.extend(f"{{e.category}}:{{e.visitor_id}}" for e in mine)

            print("ready", flush=True)
            while not Path({str(go)!r}).exists():
                time.sleep(0.01)
            seed0 = int(sys.argv[1]) * 100
            threads = [threading.Thread(target=report, args=(seed0 + i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            storage.close()
            print(json.dumps(fired))
            """
        )
        env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(n)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for n in range(2)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
            go.touch()
            outputs = [proc.communicate(timeout=120) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err
        fired = [item for out, _ in outputs for item in json.loads(out.strip().splitlines()[-1])]
        per_process = [len(json.loads(out.strip().splitlines()[-1])) for out, _ in outputs]
        visitors = Counter(f for f in fired if f.startswith("visitorCreated:"))
        assert sum(visitors.values()) == 1000
        assert set(visitors) == {f"visitorCreated:v{i}" for i in range(1000)}
        assert max(visitors.values()) == 1
        assert sum(1 for f in fired if f.startswith("accountCreated:")) == 50
        assert sum(per_process) == 1050


@settings(max_examples=80, deadline=None)
@given(
    visitor=st.text(min_size=1, max_size=12),
    account=st.one_of(st.none(), st.text(min_size=1, max_size=12)),
    group=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    source_ip=st.one_of(st.none(), st.ip_addresses().map(str)),
    agent_version=st.sampled_from([None, "2.41.0", "2.33.0-beta.1"]),
    user_agent=st.text(max_size=12),
)
def test_tracker_events_equal_the_validated_constructors(
    *,
    visitor: str,
    account: str | None,
    group: int | None,
    source_ip: str | None,
    agent_version: str | None,
    user_agent: str,
) -> None:
    """
    The tracker builds its events without re-running the checks; they are the very events
    the public constructors make from the same values (host metadata and hash included).
    """
    if any("\ud800" <= c <= "\udfff" for c in visitor + (account or "") + user_agent):
        return  # refused by Observation itself
    seen = obs(
        visitor,
        account,
        sample_group=group,
        source_ip=source_ip,
        agent_version=agent_version,
        user_agent=user_agent,
    )
    for event in FirstSeenTracker(InMemoryStorage()).observe(seen):
        fields = {f.name: getattr(event, f.name) for f in attrs.fields(type(event))}
        rebuilt = type(event)(**fields)
        assert event == rebuilt
        assert hash(event) == hash(rebuilt)
        assert (event.agent_version, event.source_ip) == (
            rebuilt.agent_version,
            rebuilt.source_ip,
        )
        assert to_wire(event) == to_wire(rebuilt)
