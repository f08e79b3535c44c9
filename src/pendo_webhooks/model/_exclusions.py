"""
The exclusion list: rules, the stored record, and a compiled matcher.

Rules are of three kinds: visitor ids and account ids (exact, or with ``*`` wildcards) and
source IP addresses or CIDR ranges. Id patterns are case-sensitive, like the ids
themselves, and ``*`` is the only special character: it matches any run of characters,
the empty one included. Nothing else (``?``, ``[``, ``\\``) has a meaning.

Strictly private; import these names from :mod:`pendo_webhooks.pipeline`.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, TypeAlias

import attrs

from ..events import _checks as checks
from ..exceptions import ConflictError, InvalidType, UnknownExclusion, ValidationError
from ._webhook import _as_utc, _check_aware, check_trimmed_text


__all__ = [
    "EMPTY_MATCHER",
    "MAX_PATTERN_LENGTH",
    "Exclusion",
    "ExclusionKind",
    "ExclusionMatcher",
    "ExclusionRule",
    "ExclusionSource",
    "StoredExclusions",
    "duplicate_exclusion",
    "unknown_exclusion",
]

#: The longest pattern accepted, in characters.
MAX_PATTERN_LENGTH = 500

_IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class ExclusionKind(str, enum.Enum):
    """
    What an exclusion rule matches.

    >>> ExclusionKind("ip") is ExclusionKind.IP
    True
    """

    VISITOR = "visitor"
    ACCOUNT = "account"
    IP = "ip"

    def __str__(self) -> str:
        return self.value


def _to_kind(value: ExclusionKind | str) -> ExclusionKind:
    try:
        return ExclusionKind(value)
    except ValueError:
        msg = "must be 'visitor', 'account' or 'ip'"
        raise ValidationError("kind", msg) from None


def _id_pattern(value: str) -> str:
    checks.identifier(value, "pattern")
    if len(value) > MAX_PATTERN_LENGTH:
        raise ValidationError("pattern", f"must be at most {MAX_PATTERN_LENGTH} characters")
    while "**" in value:
        value = value.replace("**", "*")
    if value == "*":
        raise ValidationError(
            "pattern", "'*' alone would exclude everyone; disable the webhooks instead"
        )
    return value


def _ip_pattern(value: str) -> str:
    checks.identifier(value, "pattern")
    text = value.strip()
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            fixed = ipaddress.ip_network(text, strict=False)
            msg = f"has host bits set; did you mean {fixed}?"
            raise ValidationError("pattern", msg) from None
        msg = "must be an IPv4 or IPv6 address, or a CIDR range such as 203.0.113.0/24"
        raise ValidationError("pattern", msg) from None
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


@attrs.frozen
class ExclusionRule:
    """
    One entry of the exclusion list: a kind and a pattern.

    *pattern* is normalized: repeated ``*`` collapse into one, and IP patterns are written
    the way :mod:`ipaddress` writes them (a single address without ``/32`` or ``/128``).

    Attributes:
        kind: :attr:`ExclusionKind.VISITOR`, :attr:`~ExclusionKind.ACCOUNT` or
            :attr:`~ExclusionKind.IP` (or their text).
        pattern: For ids, the id itself or a ``*`` pattern (case-sensitive, at most 500
            characters, not ``*`` alone); for ``ip``, an address or a CIDR range without
            host bits.

    Raises:
        ValidationError: Naming ``kind`` or ``pattern``.

    >>> ExclusionRule("visitor", "*@acme.com")
    ExclusionRule(kind=<ExclusionKind.VISITOR: 'visitor'>, pattern='*@acme.com')
    >>> ExclusionRule("ip", "2001:DB8::/32").pattern
    '2001:db8::/32'
    >>> ExclusionRule("ip", "10.1.2.3/8")
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.ValidationError: pattern: has host bits set; did you mean 10.0.0.0/8?
    """

    kind: ExclusionKind = attrs.field(converter=_to_kind)
    pattern: str

    def __attrs_post_init__(self) -> None:
        if self.kind is ExclusionKind.IP:
            normal = _ip_pattern(self.pattern)
        else:
            normal = _id_pattern(self.pattern)
        # Frozen: normalizing here is the one place a field is set after construction.
        object.__setattr__(self, "pattern", normal)


def _check_id(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    check_trimmed_text(attribute.name, value, max_length=200)


def _check_rule(_: object, __: attrs.Attribute[ExclusionRule], value: object) -> None:
    if not isinstance(value, ExclusionRule):
        msg = f"must be an ExclusionRule, not {type(value).__name__}"
        raise InvalidType("rule", msg)


@attrs.frozen(kw_only=True)
class Exclusion:
    """
    A stored exclusion rule, as the registry lists it.

    Attributes:
        id: ``"exc_"`` plus random URL-safe characters; what
            :meth:`~pendo_webhooks.registry.WebhookRegistry.remove_exclusion` takes.
        rule: The :class:`ExclusionRule`.
        created_at: When it was added (aware UTC).
        created_by: The id of the actor who added it.

    >>> from datetime import datetime, timezone
    >>> e = Exclusion(
    ...     id="exc_1", rule=ExclusionRule("account", "test-*"),
    ...     created_at=datetime(2026, 1, 1, tzinfo=timezone.utc), created_by="u-1",
    ... )
    >>> e.rule.pattern
    'test-*'
    """

    id: str = attrs.field(validator=_check_id)
    rule: ExclusionRule = attrs.field(validator=_check_rule)
    created_at: datetime = attrs.field(converter=_as_utc, validator=_check_aware)
    created_by: str = attrs.field(validator=_check_id)


class _Glob:
    """
    A pattern whose only special character is ``*``. Strictly private.

    Matching is linear in the text for each part: the first part must be a prefix, the last
    a suffix, and the ones between are found left to right (the leftmost match of each is
    always as good as any other, because ``*`` matches anything), so no input can make it
    backtrack.
    """

    __slots__ = ("_middle", "_min_length", "_prefix", "_suffix")

    def __init__(self, pattern: str) -> None:
        parts = pattern.split("*")
        self._prefix = parts[0]
        self._suffix = parts[-1]
        self._middle = tuple(p for p in parts[1:-1] if p)
        self._min_length = len(pattern) - pattern.count("*")

    def matches(self, text: str) -> bool:
        if len(text) < self._min_length:
            return False
        if not (text.startswith(self._prefix) and text.endswith(self._suffix)):
            return False
        position, end = len(self._prefix), len(text) - len(self._suffix)
        for part in self._middle:
            found = text.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True


class _IdRules:
    """
    The visitor or account rules of a matcher. Strictly private.
    """

    __slots__ = ("_exact", "_globs")

    def __init__(self, rules: Iterable[ExclusionRule]) -> None:
        self._exact: dict[str, ExclusionRule] = {}
        self._globs: list[tuple[_Glob, ExclusionRule]] = []
        for rule in rules:
            if "*" in rule.pattern:
                self._globs.append((_Glob(rule.pattern), rule))
            else:
                self._exact.setdefault(rule.pattern, rule)

    def __bool__(self) -> bool:
        return bool(self._exact or self._globs)

    def match(self, text: str) -> ExclusionRule | None:
        rule = self._exact.get(text)
        if rule is not None:
            return rule
        for glob, rule in self._globs:
            if glob.matches(text):
                return rule
        return None


class ExclusionMatcher:
    """
    The exclusion list compiled for matching: exact ids in a hash table, ``*`` patterns
    matched without backtracking, IP ranges with :mod:`ipaddress`.

    Immutable and thread-safe. An IPv4-mapped IPv6 source address (``::ffff:a.b.c.d``)
    matches IPv4 rules too. Each method returns the first rule that matches, or ``None``.

    Args:
        rules: :class:`ExclusionRule` values (or :class:`Exclusion` records).

    >>> m = ExclusionMatcher([ExclusionRule("visitor", "*@acme.com"),
    ...                       ExclusionRule("ip", "10.0.0.0/8")])
    >>> m.visitor("ann@acme.com").pattern, m.visitor("ann@acme.co")
    ('*@acme.com', None)
    >>> m.ip("::ffff:10.1.2.3").pattern
    '10.0.0.0/8'
    >>> bool(ExclusionMatcher()), bool(m)
    (False, True)
    """

    __slots__ = ("_accounts", "_networks", "_v4", "_visitors")

    def __init__(self, rules: Iterable[ExclusionRule | Exclusion] = ()) -> None:
        plain = [r.rule if isinstance(r, Exclusion) else r for r in rules]
        for rule in plain:
            if not isinstance(rule, ExclusionRule):
                msg = f"must hold ExclusionRule or Exclusion values, not {type(rule).__name__}"
                raise ValidationError("exclusions", msg)
        self._visitors = _IdRules(r for r in plain if r.kind is ExclusionKind.VISITOR)
        self._accounts = _IdRules(r for r in plain if r.kind is ExclusionKind.ACCOUNT)
        self._networks: tuple[tuple[_IPNetwork, ExclusionRule], ...] = tuple(
            (ipaddress.ip_network(r.pattern), r) for r in plain if r.kind is ExclusionKind.IP
        )
        # The IPv4 ranges as (network, mask) integers, in order: an IPv4 address, the
        # common case, is matched with two integer operations per range.
        self._v4: tuple[tuple[int, int, ExclusionRule], ...] = tuple(
            (int(net.network_address), int(net.netmask), r)
            for net, r in self._networks
            if isinstance(net, ipaddress.IPv4Network)
        )

    def __bool__(self) -> bool:
        return bool(self._visitors or self._accounts or self._networks)

    def __repr__(self) -> str:
        return f"<ExclusionMatcher(empty={not self})>"

    def visitor(self, visitor_id: str) -> ExclusionRule | None:
        """
        Return the rule that excludes *visitor_id*, or ``None``.
        """
        return self._visitors.match(visitor_id)

    def account(self, account_id: str) -> ExclusionRule | None:
        """
        Return the rule that excludes *account_id*, or ``None``.
        """
        return self._accounts.match(account_id)

    def ip(
        self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | str
    ) -> ExclusionRule | None:
        """
        Return the rule that excludes the source *address*, or ``None``.

        Raises:
            ValidationError: If *address* is text that is not an IP address.
        """
        if not self._networks:
            return None
        if type(address) is ipaddress.IPv4Address:
            number = int(address)
            for start, mask, rule in self._v4:
                if number & mask == start:
                    return rule
            return None
        if isinstance(address, str):
            try:
                address = ipaddress.ip_address(address)
            except ValueError:
                raise ValidationError("source_ip", "must be an IPv4 or IPv6 address") from None
        candidates: tuple[_IPAddress, ...] = (address,)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates = (address, address.ipv4_mapped)
        for network, rule in self._networks:
            if any(c in network for c in candidates):
                return rule
        return None


#: A matcher that excludes nothing.
EMPTY_MATCHER = ExclusionMatcher()


class ExclusionSource(Protocol):
    """
    **Protocol**: The part of a store that :class:`StoredExclusions` reads.
    """

    def list_exclusions(self) -> Iterable[Exclusion]:
        """
        Return every exclusion, oldest first.
        """

    def exclusions_version(self) -> int:
        """
        Return a number that changes whenever the exclusion list changes.
        """


class StoredExclusions:
    """
    The store's exclusion list as a matcher, compiled once and rebuilt only after a change.

    Each :meth:`current` asks the store for its exclusion version (one small read) and
    recompiles only when it moved, so every process sees an admin's change on its next
    event without reloading the list every time. Thread-safe.

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> stored = StoredExclusions(InMemoryStorage())
    >>> bool(stored.current())
    False
    """

    __slots__ = ("_cached", "_store")

    def __init__(self, store: ExclusionSource) -> None:
        self._store = store
        self._cached: tuple[int, ExclusionMatcher] | None = None

    def __repr__(self) -> str:
        return "<StoredExclusions>"

    def cached(self) -> tuple[int, ExclusionMatcher] | None:
        """
        The exclusion version and matcher :meth:`current` last found, without asking the
        store (``None`` before the first).
        """
        return self._cached

    def current(self) -> ExclusionMatcher:
        """
        Return the matcher for the list as it is stored now.
        """
        version = self._store.exclusions_version()
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached[1]
        # No lock: two threads may both rebuild after a change, which is harmless, and the
        # pair is replaced in one assignment. The version was read before the list, so a
        # change landing in between is kept under the older number and rebuilt next time.
        rules = list(self._store.list_exclusions())
        matcher = ExclusionMatcher(rules) if rules else EMPTY_MATCHER
        self._cached = (version, matcher)
        return matcher


def unknown_exclusion(exclusion_id: str) -> UnknownExclusion:
    """
    The error for an id no exclusion has.
    """
    return UnknownExclusion(f"no exclusion with id {exclusion_id!r}")


def duplicate_exclusion(exclusion: Exclusion, existing_id: str) -> ConflictError:
    """
    The error for adding an exclusion whose id or rule is already on the list.
    """
    if existing_id == exclusion.id:
        return ConflictError(f"an exclusion with id {exclusion.id!r} already exists")
    rule = exclusion.rule
    return ConflictError(
        f"the exclusion list already has {rule.kind.value} {rule.pattern!r} ({existing_id})"
    )
