"""
The exclusion list: rules and their normalization, the matcher (wildcards, CIDR ranges),
the event gate's order, the storage contract, and the registry's audited admin calls.

Tests taking ``storage`` run against every backend (see conftest).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendo_webhooks.exceptions import (
    ConflictError,
    PermissionDenied,
    StorageError,
    ValidationError,
)
from pendo_webhooks.model._exclusions import EMPTY_MATCHER
from pendo_webhooks.pipeline import (
    MAX_PATTERN_LENGTH,
    Exclusion,
    ExclusionKind,
    ExclusionMatcher,
    ExclusionRule,
    SkipReason,
    StoredExclusions,
    event_gate,
)
from pendo_webhooks.registry import Actor, AuditEntry, WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage, Storage
from pendo_webhooks.testing import sample_event
from pendo_webhooks.testing.storage_contract import ExclusionStoreContract

from .conftest import START, FrozenClock


ADMIN = Actor("admin-1", is_admin=True)
USER = Actor("user-1")


def matcher(*rules: tuple[str, str]) -> ExclusionMatcher:
    return ExclusionMatcher(ExclusionRule(kind, pattern) for kind, pattern in rules)


def exclusion(exc_id: str, kind: str, pattern: str, *, minutes: int = 0) -> Exclusion:
    return Exclusion(
        id=exc_id,
        rule=ExclusionRule(kind, pattern),
        created_at=START + timedelta(minutes=minutes),
        created_by="admin-1",
    )


def entry(exc_id: str, action: str = "exclusion_add") -> AuditEntry:
    return AuditEntry(
        id=f"aud_{exc_id}_{action}", at=START, actor_id="admin-1", action=action, webhook_id=exc_id
    )


class TestRules:
    def test_kinds_accept_enum_or_text(self) -> None:
        """
        The kind is an ExclusionKind, given as the enum or its text.
        """
        assert ExclusionRule("visitor", "v").kind is ExclusionKind.VISITOR
        assert ExclusionRule(ExclusionKind.ACCOUNT, "a").kind is ExclusionKind.ACCOUNT
        assert str(ExclusionKind.IP) == "ip"

    @pytest.mark.parametrize("kind", ["user", "", "VISITOR", 3])
    def test_unknown_kind_names_the_field(self, kind: Any) -> None:
        """
        An unknown kind is a ValidationError naming "kind".
        """
        with pytest.raises(ValidationError) as info:
            ExclusionRule(kind, "x")
        assert info.value.field == "kind"

    @pytest.mark.parametrize(
        "pattern",
        ["", "*", "**", "***", "x" * (MAX_PATTERN_LENGTH + 1), "bad\ud800", 7, None],
        ids=["empty", "star", "stars", "three-stars", "too-long", "surrogate", "int", "none"],
    )
    def test_bad_id_patterns_name_the_field(self, pattern: Any) -> None:
        """
        Empty, everything-matching, over-long, unencodable or non-text patterns are refused.
        """
        with pytest.raises(ValidationError) as info:
            ExclusionRule("visitor", pattern)
        assert info.value.field == "pattern"

    def test_id_patterns_are_kept_as_given_but_stars_collapse(self) -> None:
        """
        Ids are not trimmed or case-folded; runs of '*' become one.
        """
        assert ExclusionRule("visitor", " Ann@Acme.com ").pattern == " Ann@Acme.com "
        assert ExclusionRule("account", "a**b***").pattern == "a*b*"
        assert ExclusionRule("visitor", "x" * MAX_PATTERN_LENGTH).pattern == "x" * 500

    @pytest.mark.parametrize(
        ("given", "stored"),
        [
            ("203.0.113.7", "203.0.113.7"),
            ("203.0.113.7/32", "203.0.113.7"),
            (" 10.0.0.0/8 ", "10.0.0.0/8"),
            ("2001:DB8::/32", "2001:db8::/32"),
            ("2001:db8:0:0:0:0:0:1/128", "2001:db8::1"),
            ("0.0.0.0/0", "0.0.0.0/0"),
        ],
    )
    def test_ip_patterns_are_normalized(self, given: str, stored: str) -> None:
        """
        IP patterns are written as ipaddress writes them; one address drops its /32 or /128.
        """
        assert ExclusionRule("ip", given).pattern == stored

    @pytest.mark.parametrize("pattern", ["10.0.0.1/8", "not-an-ip", "10.0.0.*", "300.1.1.1", ""])
    def test_bad_ip_patterns_name_the_field(self, pattern: str) -> None:
        """
        Host bits, names, wildcards and out-of-range octets are refused, naming "pattern".
        """
        with pytest.raises(ValidationError) as info:
            ExclusionRule("ip", pattern)
        assert info.value.field == "pattern"

    def test_host_bits_message_suggests_the_network(self) -> None:
        """
        A CIDR with host bits set says which network was probably meant.
        """
        with pytest.raises(ValidationError, match=r"did you mean 192\.168\.1\.0/24"):
            ExclusionRule("ip", "192.168.1.77/24")

    def test_equal_rules_are_equal_after_normalization(self) -> None:
        """
        Two spellings of one rule compare equal (and hash alike).
        """
        assert ExclusionRule("ip", "10.0.0.1/32") == ExclusionRule("ip", "10.0.0.1")
        assert len({ExclusionRule("visitor", "a**"), ExclusionRule("visitor", "a*")}) == 1

    def test_exclusion_record_checks_its_fields(self) -> None:
        """
        A stored record needs an id, a rule, an aware time and an actor id.
        """
        with pytest.raises(ValidationError):
            Exclusion(id="", rule=ExclusionRule("visitor", "v"), created_at=START, created_by="u")
        with pytest.raises(TypeError):
            Exclusion(id="e", rule="visitor:v", created_at=START, created_by="u")  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            Exclusion(
                id="e",
                rule=ExclusionRule("visitor", "v"),
                created_at=START.replace(tzinfo=None),
                created_by="u",
            )


class TestIdMatching:
    @pytest.mark.parametrize(
        ("pattern", "text", "expected"),
        [
            ("ann@acme.com", "ann@acme.com", True),
            ("ann@acme.com", "Ann@acme.com", False),
            ("ann@acme.com", "ann@acme.com ", False),
            ("*@acme.com", "ann@acme.com", True),
            ("*@acme.com", "@acme.com", True),
            ("*@acme.com", "ann@acme.co", False),
            ("*@acme.com", "ann@ACME.com", False),
            ("test-*", "test-", True),
            ("test-*", "test-42", True),
            ("test-*", "tes", False),
            ("*bot*", "googlebot-2", True),
            ("*bot*", "robot", True),
            ("*bot*", "bo", False),
            ("a*b*c", "abc", True),
            ("a*b*c", "aXbYc", True),
            ("a*b*c", "acb", False),
            ("a*b*c", "abcb", False),
            ("a*b*c", "axxc", False),  # the ends fit, the middle is missing
            ("ab*ba", "aba", False),
            ("ab*ba", "abba", True),
            ("a?c", "abc", False),
            ("a?c", "a?c", True),
            ("[ab]", "a", False),
            ("[ab]", "[ab]", True),
            ("a.c", "abc", False),
            ("x\\*", "x\\yz", True),
        ],
    )
    def test_only_star_is_special_and_case_matters(
        self, pattern: str, text: str, expected: bool
    ) -> None:
        """
        '*' matches any run (the empty one too); '?', '[', '.' and '\\' are plain characters.
        """
        found = matcher(("visitor", pattern)).visitor(text)
        assert (found is not None) is expected
        if expected:
            assert found == ExclusionRule("visitor", pattern)

    @given(
        pattern=st.text("ab*", min_size=1, max_size=8).filter(lambda p: set(p) != {"*"}),
        text=st.text("ab", max_size=10),
    )
    def test_agrees_with_a_regular_expression(self, pattern: str, text: str) -> None:
        """
        For any pattern and text, the matcher agrees with the equivalent regular expression.
        """
        regex = ".*".join(re.escape(part) for part in pattern.split("*"))
        expected = re.fullmatch(regex, text, re.DOTALL) is not None
        assert (matcher(("account", pattern)).account(text) is not None) is expected

    def test_adversarial_pattern_does_not_backtrack(self) -> None:
        """
        A pattern that makes naive regex matching explode finishes at once (no backtracking).
        """
        found = matcher(("visitor", "*a*a*a*a*a*a*a*a*a*a*b")).visitor("a" * 20_000)
        assert found is None

    def test_kinds_do_not_mix(self) -> None:
        """
        A visitor rule never matches an account, and the reverse.
        """
        m = matcher(("visitor", "x"), ("account", "y"))
        assert m.visitor("x") is not None
        assert m.account("x") is None
        assert m.account("y") is not None
        assert m.visitor("y") is None

    def test_first_matching_rule_is_returned_exact_first(self) -> None:
        """
        An exact rule wins over a wildcard; among wildcards, the first given wins.
        """
        m = matcher(("visitor", "a*"), ("visitor", "*z"), ("visitor", "az"))
        assert m.visitor("az") == ExclusionRule("visitor", "az")
        assert m.visitor("a-z") == ExclusionRule("visitor", "a*")

    def test_empty_matcher(self) -> None:
        """
        A matcher without rules is falsy and matches nothing.
        """
        assert not EMPTY_MATCHER
        assert ExclusionMatcher().visitor("x") is None
        assert ExclusionMatcher().ip("10.0.0.1") is None
        assert repr(EMPTY_MATCHER) == "<ExclusionMatcher(empty=True)>"

    def test_accepts_stored_records_and_refuses_other_values(self) -> None:
        """
        Exclusion records compile like their rules; anything else is a ValidationError.
        """
        m = ExclusionMatcher([exclusion("exc_1", "account", "acme")])
        assert m.account("acme") is not None
        with pytest.raises(ValidationError) as info:
            ExclusionMatcher(["visitor:x"])  # type: ignore[list-item]
        assert info.value.field == "exclusions"


class TestIpMatching:
    @pytest.mark.parametrize(
        ("pattern", "address", "expected"),
        [
            ("203.0.113.0/24", "203.0.113.255", True),
            ("203.0.113.0/24", "203.0.114.0", False),
            ("203.0.113.7", "203.0.113.7", True),
            ("203.0.113.7", "203.0.113.8", False),
            ("10.0.0.0/8", "::ffff:10.9.8.7", True),
            ("10.0.0.0/8", "::ffff:11.9.8.7", False),
            ("2001:db8::/32", "2001:db8:ffff::1", True),
            ("2001:db8::/32", "2001:db9::1", False),
            ("::ffff:0:0/96", "10.0.0.1", False),
            ("0.0.0.0/0", "198.51.100.1", True),
        ],
    )
    def test_cidr_ranges(self, pattern: str, address: str, expected: bool) -> None:
        """
        Addresses match their ranges; an IPv4-mapped IPv6 address matches IPv4 rules too.
        """
        m = matcher(("ip", pattern))
        assert (m.ip(address) is not None) is expected
        assert (m.ip(ipaddress.ip_address(address)) is not None) is expected

    def test_bad_address_text_names_the_field(self) -> None:
        """
        Text that is not an address is a ValidationError naming "source_ip".
        """
        with pytest.raises(ValidationError) as info:
            matcher(("ip", "10.0.0.0/8")).ip("10.0.0")
        assert info.value.field == "source_ip"


class TestEventGate:
    def test_visitor_then_account_then_ip_then_agent(self) -> None:
        """
        When several rules apply, the first in the fixed order is the reason.
        """
        event = sample_event(
            "npsSubmitted", source_ip="10.1.1.1", agent_version="2.0.0", visitor_id="v@x.io"
        )
        rules = [("ip", "10.0.0.0/8"), ("account", "Webhook*"), ("visitor", "*@x.io")]
        expected = [
            SkipReason.VISITOR_EXCLUDED,
            SkipReason.ACCOUNT_EXCLUDED,
            SkipReason.IP_EXCLUDED,
            SkipReason.AGENT_TOO_OLD,
        ]
        for active in range(3, -1, -1):
            gate = event_gate(event, matcher(*rules[:active]))
            assert gate is not None
            assert gate[0] is expected[3 - active]
        clean = sample_event("npsSubmitted", account_id="other", source_ip="11.0.0.1")
        assert event_gate(clean, matcher(*rules)) is None

    def test_detail_names_the_rule(self) -> None:
        """
        The detail says which rule matched.
        """
        gate = event_gate(sample_event("guideDisplayed"), matcher(("account", "Webhook *")))
        assert gate == (SkipReason.ACCOUNT_EXCLUDED, "matches account rule 'Webhook *'")

    @pytest.mark.parametrize("pattern", ["P", "C", "P::C", "P:*", "*:C"])
    def test_parent_and_child_of_a_joined_account(self, pattern: str) -> None:
        """
        An envelope account "P::C" is excluded by a rule on the parent, the child or the pair.
        """
        event = sample_event("guideDisplayed", account_id="P::C")
        gate = event_gate(event, matcher(("account", pattern)))
        assert gate is not None
        assert gate[0] is SkipReason.ACCOUNT_EXCLUDED

    def test_every_split_of_an_id_with_double_colons(self) -> None:
        """
        Where ids themselves hold "::", every split is checked, so a rule only matches more.
        """
        event = sample_event("guideDisplayed", account_id="a::b::c")
        for pattern in ("a", "b::c", "a::b", "c"):
            assert event_gate(event, matcher(("account", pattern))) is not None
        assert event_gate(event, matcher(("account", "b"))) is None

    @pytest.mark.parametrize("pattern", ["Parent Co", "Child Co"])
    def test_parent_child_event_sides(self, pattern: str) -> None:
        """
        A parentChildAccountCreated is excluded by a rule on either side.
        """
        event = sample_event(
            "parentChildAccountCreated", parent_account_id="Parent Co", child_account_id="Child Co"
        )
        gate = event_gate(event, matcher(("account", pattern)))
        assert gate is not None
        assert gate[0] is SkipReason.ACCOUNT_EXCLUDED

    def test_events_without_a_source_ip_pass_ip_rules(self) -> None:
        """
        IP rules apply only when the host gave the event's source IP.
        """
        assert event_gate(sample_event("guideDisplayed"), matcher(("ip", "0.0.0.0/0"))) is None
        blocked = sample_event("guideDisplayed", source_ip="198.51.100.1")
        assert event_gate(blocked, matcher(("ip", "0.0.0.0/0"))) is not None


class TestStorageContract(ExclusionStoreContract):
    """
    The ExclusionStore contract (shipped in pendo_webhooks.testing), on every backend.
    """


def test_sqlite_exclusions_survive_reopening(tmp_path: Path) -> None:
    """
    The list and its version are durable in the SQLite file.
    """
    path = tmp_path / "x.sqlite3"
    with SQLiteStorage(path) as storage:
        storage.insert_exclusion(exclusion("exc_1", "ip", "10.0.0.0/8"), audit=entry("exc_1"))
        version = storage.exclusions_version()
    with SQLiteStorage(path) as storage:
        assert [e.rule for e in storage.list_exclusions()] == [ExclusionRule("ip", "10.0.0.0/8")]
        assert storage.exclusions_version() == version


def test_sqlite_refuses_a_corrupt_stored_rule(tmp_path: Path) -> None:
    """
    A stored rule that no longer validates is reported as a StorageError naming its row.
    """
    path = tmp_path / "x.sqlite3"
    with SQLiteStorage(path) as storage:
        storage.insert_exclusion(exclusion("exc_1", "visitor", "v"), audit=entry("exc_1"))
        with storage._transaction() as conn:
            conn.execute("UPDATE exclusions SET pattern = '*' WHERE id = 'exc_1'")
        with pytest.raises(StorageError, match="exc_1"):
            storage.list_exclusions()


class CountingStore:
    """
    An exclusion source that counts how often the list is read.
    """

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.list_calls = 0

    def list_exclusions(self) -> Iterable[Exclusion]:
        self.list_calls += 1
        return self.inner.list_exclusions()

    def exclusions_version(self) -> int:
        return self.inner.exclusions_version()


class TestStoredExclusions:
    def test_recompiles_only_after_a_change(self, storage: Storage) -> None:
        """
        The list is read once per change, however often the matcher is asked for.
        """
        counting = CountingStore(storage)
        stored = StoredExclusions(counting)
        first = stored.current()
        assert not first
        assert stored.current() is first
        assert counting.list_calls == 1
        storage.insert_exclusion(exclusion("exc_1", "visitor", "v"), audit=entry("exc_1"))
        second = stored.current()
        assert second.visitor("v") is not None
        assert stored.current() is second
        assert counting.list_calls == 2
        assert repr(stored) == "<StoredExclusions>"

    def test_sees_a_change_made_through_another_connection(self, tmp_path: Path) -> None:
        """
        Another process's change (another SQLiteStorage on the file) is seen on the next call.
        """
        path = tmp_path / "x.sqlite3"
        with SQLiteStorage(path) as mine, SQLiteStorage(path) as theirs:
            stored = StoredExclusions(mine)
            assert stored.current().account("acme") is None
            theirs.insert_exclusion(exclusion("exc_1", "account", "acme"), audit=entry("exc_1"))
            assert stored.current().account("acme") is not None
            theirs.delete_exclusion("exc_1", audit=entry("exc_1", "exclusion_remove"))
            assert stored.current().account("acme") is None


class TestRegistry:
    @pytest.fixture(name="registry")
    def _registry(self, storage: Storage, clock: FrozenClock) -> WebhookRegistry:
        counter = iter(range(1, 10_000))
        return WebhookRegistry(storage, clock=clock, ids=lambda p: f"{p}_{next(counter)}")

    def test_add_list_remove_are_audited(
        self, registry: WebhookRegistry, clock: FrozenClock
    ) -> None:
        """
        Adding and removing rules is audited with the rule's id, kind and pattern.
        """
        rule = registry.add_exclusion(ADMIN, "visitor", "*@acme.com")
        assert rule == Exclusion(
            id="exc_1",
            rule=ExclusionRule("visitor", "*@acme.com"),
            created_at=clock.now,
            created_by="admin-1",
        )
        clock.advance(seconds=5)
        other = registry.add_exclusion(ADMIN, ExclusionKind.IP, "10.0.0.0/8")
        assert registry.exclusions(ADMIN) == [rule, other]
        registry.remove_exclusion(ADMIN, rule.id)
        assert registry.exclusions(ADMIN) == [other]
        log = registry.audit(ADMIN, webhook_id=rule.id)
        assert [(e.action, e.actor_id) for e in log] == [
            ("exclusion_remove", "admin-1"),
            ("exclusion_add", "admin-1"),
        ]
        assert log[1].changes == {"kind": (None, "visitor"), "pattern": (None, "*@acme.com")}
        assert log[0].changes == {"kind": ("visitor", None), "pattern": ("*@acme.com", None)}
        assert [e.webhook_id for e in registry.audit(ADMIN, action="exclusion_add")] == [
            other.id,
            rule.id,
        ]

    def test_adding_an_existing_rule_returns_it_unchanged(
        self, registry: WebhookRegistry, storage: Storage
    ) -> None:
        """
        Adding a rule that is already listed (in any spelling) changes nothing.
        """
        first = registry.add_exclusion(ADMIN, "ip", "203.0.113.7")
        version = storage.exclusions_version()
        again = registry.add_exclusion(ADMIN, "ip", "203.0.113.7/32")
        assert again == first
        assert storage.exclusions_version() == version
        assert len(registry.audit(ADMIN, action="exclusion_add")) == 1

    def test_a_concurrent_add_of_the_same_rule_returns_theirs(self, storage: Storage) -> None:
        """
        If another admin adds the same rule between the check and the insert, theirs is kept.
        """
        theirs = exclusion("exc_theirs", "account", "acme")

        class Racing:
            def __init__(self) -> None:
                self.raced = False

            def __getattr__(self, name: str) -> Any:
                return getattr(storage, name)

            def list_exclusions(self) -> list[Exclusion]:
                if not self.raced:
                    self.raced = True
                    storage.insert_exclusion(theirs, audit=entry(theirs.id))
                    return []
                return list(storage.list_exclusions())

        registry = WebhookRegistry(Racing())  # type: ignore[arg-type]
        assert registry.add_exclusion(ADMIN, "account", "acme") == theirs
        assert len(storage.list_exclusions()) == 1

    def test_a_conflict_that_is_not_the_same_rule_propagates(self, storage: Storage) -> None:
        """
        An id collision (not an equal rule) is not hidden.
        """
        storage.insert_exclusion(exclusion("exc_1", "visitor", "v"), audit=entry("exc_1"))
        registry = WebhookRegistry(storage, ids=lambda prefix: f"{prefix}_1")
        with pytest.raises(ConflictError):
            registry.add_exclusion(ADMIN, "visitor", "w")

    def test_bad_values_name_the_field_and_store_nothing(
        self, registry: WebhookRegistry, storage: Storage
    ) -> None:
        """
        A bad kind or pattern is a ValidationError and writes nothing.
        """
        with pytest.raises(ValidationError) as info:
            registry.add_exclusion(ADMIN, "email", "x")
        assert info.value.field == "kind"
        with pytest.raises(ValidationError) as info:
            registry.add_exclusion(ADMIN, "ip", "10.0.0.0/33")
        assert info.value.field == "pattern"
        assert storage.list_exclusions() == []

    def test_remove_unknown_raises_not_found(self, registry: WebhookRegistry) -> None:
        """
        Removing an id that is not listed raises NotFound (also a LookupError).
        """
        with pytest.raises(LookupError, match="exc_nope"):
            registry.remove_exclusion(ADMIN, "exc_nope")

    @pytest.mark.parametrize("call", ["add", "remove", "list"])
    def test_non_admins_are_refused_before_storage(
        self, registry: WebhookRegistry, storage: Storage, call: str
    ) -> None:
        """
        The default policy lets only admins manage or read the list; storage is untouched.
        """
        rule = registry.add_exclusion(ADMIN, "visitor", "v")
        before = (storage.list_exclusions(), storage.exclusions_version())
        calls = {
            "add": lambda: registry.add_exclusion(USER, "visitor", "w"),
            "remove": lambda: registry.remove_exclusion(USER, rule.id),
            "list": lambda: registry.exclusions(USER),
        }
        with pytest.raises(PermissionDenied, match="user-1"):
            calls[call]()
        assert (storage.list_exclusions(), storage.exclusions_version()) == before

    def test_a_custom_policy_sees_the_actions(self, storage: Storage) -> None:
        """
        A host policy is asked with "exclusion_add", "exclusion_remove" and "read".
        """
        asked: list[tuple[str, str | None]] = []

        class Recording:
            def check(self, actor: Actor, action: str, webhook_id: str | None) -> None:
                asked.append((action, webhook_id))

        registry = WebhookRegistry(storage, policy=Recording())
        rule = registry.add_exclusion(USER, "visitor", "v")
        registry.exclusions(USER)
        registry.remove_exclusion(USER, rule.id)
        assert asked == [("exclusion_add", None), ("read", None), ("exclusion_remove", rule.id)]


@given(
    networks=st.lists(
        st.one_of(
            st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
            st.tuples(st.ip_addresses(v=6), st.integers(0, 128)),
        ),
        min_size=1,
        max_size=5,
    ),
    address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
)
def test_ip_rules_match_as_ipaddress_says_first_rule_first(
    networks: list[tuple[Any, int]], address: Any
) -> None:
    """
    The matcher returns the first IP rule whose range holds the address (or its IPv4 form,
    for an IPv4-mapped IPv6 address), exactly as ipaddress decides containment.
    """
    rules = [
        ExclusionRule("ip", str(ipaddress.ip_network(f"{ip}/{bits}", strict=False)))
        for ip, bits in networks
    ]
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    expected = next(
        (
            rule
            for rule in rules
            if any(c in ipaddress.ip_network(rule.pattern) for c in candidates)
        ),
        None,
    )
    assert ExclusionMatcher(rules).ip(address) == expected
