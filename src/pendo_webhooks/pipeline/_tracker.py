"""
:class:`FirstSeenTracker`: ``visitorCreated``, ``accountCreated`` and
``parentChildAccountCreated`` from in-app activity, once each.

Strictly private; import these names from :mod:`pendo_webhooks.pipeline`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import attrs

from .._clock import Clock, utcnow
from ..events import _checks as checks
from ..events._agent_version import AgentVersion
from ..events._category import EventCategory
from ..events._ids import sorted_unique_id
from ..events._models import (
    AccountCreated,
    Event,
    IPAddress,
    ParentChildAccountCreated,
    VisitorCreated,
    _to_agent_version,
    _to_ip,
)
from ..events._values import ID, INT64, TEXT, UTC, App, Subscription, instance_of
from ..exceptions import ConfigurationError, ValidationError
from ..model._delivery import slot_setters
from ..model._exclusions import (
    EMPTY_MATCHER,
    ExclusionMatcher,
    ExclusionRule,
    ExclusionSource,
    StoredExclusions,
)
from ..model._outcomes import DispatchResult
from ..storage._protocol_pipeline import FirstSeenStore
from ._gate import observation_gate


class Dispatcher(Protocol):
    """
    What the tracker needs of a :class:`pendo_webhooks.dispatcher.Dispatcher`.

    A structural type under the same name, so the pipeline never imports the dispatcher,
    not even for annotations: the two sit side by side (the dispatcher gates with the
    pipeline's rules; the tracker hands its events to the dispatcher it is given), and the
    API pages still read ``dispatcher: Dispatcher``. Not exported.
    """

    @property
    def storage(self) -> object: ...

    def _enqueue_first_seen(
        self,
        keys: Collection[str],
        *,
        at: datetime,
        categories: Iterable[EventCategory],
        events: Callable[[set[str]], list[Event]],
        attempt: bool,
        connection: object | None = None,
    ) -> list[DispatchResult]: ...


__all__ = [
    "DEFAULT_CACHE_SIZE",
    "NO_ACCOUNT_ID",
    "FirstSeenTracker",
    "Observation",
    "TrackerStore",
    "sample_group_for",
]

#: How many recently seen keys a tracker remembers, so repeat sightings skip the store.
DEFAULT_CACHE_SIZE = 16_384

#: The envelope ``accountId`` of a ``visitorCreated`` whose visitor has no account: events
#: need a non-empty account id, and Pendo publishes nothing for this case (our choice).
NO_ACCOUNT_ID = "(none)"

_OPTIONAL_ID = attrs.validators.optional(ID)
_OPTIONAL_INT64 = attrs.validators.optional(INT64)

_FIRST_SEEN = (EventCategory.VISITOR_CREATED, EventCategory.ACCOUNT_CREATED)
_WITH_PAIRS = (*_FIRST_SEEN, EventCategory.PARENT_CHILD_ACCOUNT_CREATED)


def sample_group_for(visitor_id: str) -> int:
    """
    Return a visitor's sample group: a stable number from 0 to 99 derived from its id.

    The same id gives the same group in every process and every version (the first eight
    bytes of its BLAKE2b digest, modulo 100).

    >>> sample_group_for("Webhook Visitor") == sample_group_for("Webhook Visitor")
    True
    >>> 0 <= sample_group_for("ann@acme.com") < 100
    True
    """
    digest = hashlib.blake2b(visitor_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100


@attrs.frozen(kw_only=True)
class Observation:
    """
    One piece of in-app activity the host reports: who was active, where, and when.

    Attributes:
        visitor_id: The visitor (non-empty).
        account_id: The visitor's account, or ``None`` when there is none.
        parent_account_id: The account's parent, when the host has parent accounts
            (needs *account_id*; ignored by a tracker without ``parent_accounts``).
        app: The :class:`~pendo_webhooks.events.App`.
        subscription: The :class:`~pendo_webhooks.events.Subscription`.
        user_agent: The visitor's browser user agent.
        browser_name: Such as ``"Chrome"``.
        browser_version: Such as ``"91.0.4472"``.
        sample_group: The visitor's sample group; :func:`sample_group_for` its id if
            ``None``.
        at: When it happened (aware; becomes the events' ``timestamp``).
        source_ip: The visitor's IP address, if known (matched against IP exclusions).
        agent_version: The Pendo agent version, if known (carried into the events).

    Raises:
        ValidationError: Naming the field, for any bad value.

    >>> from datetime import datetime, timezone
    >>> from pendo_webhooks.events import App, Subscription
    >>> obs = Observation(
    ...     visitor_id="ann@acme.com", account_id="acme",
    ...     app=App(id=-323232, name="web", platform="web"),
    ...     subscription=Subscription(id=1, name="prod"),
    ...     at=datetime(2026, 1, 1, tzinfo=timezone.utc), source_ip="203.0.113.7",
    ... )
    >>> obs.source_ip
    IPv4Address('203.0.113.7')
    """

    visitor_id: str = attrs.field(validator=ID)
    account_id: str | None = attrs.field(default=None, validator=_OPTIONAL_ID)
    parent_account_id: str | None = attrs.field(default=None, validator=_OPTIONAL_ID)
    app: App = attrs.field(validator=instance_of(App, "an"))
    subscription: Subscription = attrs.field(validator=instance_of(Subscription))
    user_agent: str = attrs.field(default="", validator=TEXT)
    browser_name: str = attrs.field(default="", validator=TEXT)
    browser_version: str = attrs.field(default="", validator=TEXT)
    sample_group: int | None = attrs.field(default=None, validator=_OPTIONAL_INT64)
    at: datetime = attrs.field(converter=checks.to_utc_seconds, validator=UTC)
    source_ip: IPAddress | None = attrs.field(default=None, converter=_to_ip)
    agent_version: AgentVersion | None = attrs.field(default=None, converter=_to_agent_version)

    def __attrs_post_init__(self) -> None:
        if self.parent_account_id is not None and self.account_id is None:
            raise ValidationError("parent_account_id", "needs an account_id (the child)")


def _visitor_key(visitor_id: str) -> str:
    return "v:" + visitor_id


def _account_key(account_id: str) -> str:
    return "a:" + account_id


def _joined(parent: str | None, account: str) -> str:
    return account if parent is None else f"{parent}::{account}"


def _pair_key(parent: str, child: str) -> str:
    # Length-prefixed: ids may contain any separator.
    return f"p:{len(parent)}:{parent}{child}"


_E = TypeVar("_E", VisitorCreated, AccountCreated)
_SETTERS = {cls: slot_setters(cls) for cls in (VisitorCreated, AccountCreated)}


def _trusted(cls: type[_E], values: dict[str, Any]) -> _E:
    """
    Build a first-seen event from values already checked, without checking them again.

    Every value comes from a validated :class:`Observation` (the time already in whole UTC
    seconds, the IP and version already converted), the tracker's checked settings, or
    a checked ``unique_id``: the public constructor would only repeat the checks, at 10 to
    15 us an event. A property test compares the two.
    """
    event = object.__new__(cls)
    for name, setter in _SETTERS[cls]:
        setter(event, values[name])
    return event


class TrackerStore(FirstSeenStore, ExclusionSource, Protocol):
    """
    **Protocol**: What a :class:`FirstSeenTracker` needs from a store (every
    :class:`~pendo_webhooks.storage.Storage` has it).
    """


class _Cache:
    """
    A bounded, thread-safe LRU set of keys known to be seen in the app. Strictly private.

    Only keys the store has confirmed as ``"app"`` go in, and that never changes back, so a
    hit is always right; a miss just asks the store.
    """

    __slots__ = ("_keys", "_lock", "_size")

    def __init__(self, size: int) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def __len__(self) -> int:
        return len(self._keys)

    def missing(self, keys: Iterable[str]) -> list[str]:
        found: list[str] = []
        with self._lock:
            cached = self._keys
            for key in keys:
                if key in cached:
                    cached.move_to_end(key)
                else:
                    found.append(key)
        return found

    def add(self, keys: Iterable[str]) -> None:
        if not self._size:
            return
        with self._lock:
            cached = self._keys
            for key in keys:
                cached[key] = None
                cached.move_to_end(key)
            while len(cached) > self._size:
                cached.popitem(last=False)


class FirstSeenTracker:
    """
    Turns in-app activity into ``visitorCreated``, ``accountCreated`` and (with parent
    accounts) ``parentChildAccountCreated`` events, each fired once per store.

    The first sighting of a visitor in the app returns a
    :class:`~pendo_webhooks.events.VisitorCreated`; of an account, an
    :class:`~pendo_webhooks.events.AccountCreated` (its ``visitor_id`` is the visitor whose
    session created it); of a parent-child pair, with *parent_accounts*, a
    :class:`~pendo_webhooks.events.ParentChildAccountCreated`. Then, with parent accounts,
    every envelope's ``accountId`` is ``"<parent>::<child>"`` and the account that is
    "created" is the child. Visitors and accounts recorded with :meth:`record_api_created`
    are known but fire nothing until they are first seen in the app.

    Each key is *claimed* once across threads and processes sharing one store: the store's
    :meth:`~pendo_webhooks.storage.FirstSeenStore.claim_first_seen` is atomic, and a
    bounded cache of recently seen keys in front of it spares the store repeat sightings
    without holding the whole set in memory. A call that raises recorded nothing, so
    calling again with the same observations is safe and fires what is still new.

    Observations of an excluded visitor, account (the parent too) or source IP address
    fire nothing and are not recorded: if the rule is removed, the next sighting is a
    first one.

    What becomes of the events depends on the method:

    * :meth:`observe_and_dispatch`, :meth:`observe_and_enqueue` (and their ``_many``
      forms) write the sighting and the events' deliveries in ONE transaction of the
      store, so every first sighting reaches the outbox **at least once, never zero**: a
      crash or an error before the commit leaves nothing recorded (the next sighting
      fires again); after it, the deliveries are in the outbox and a worker sends them.
    * :meth:`observe` and :meth:`observe_many` commit the sighting and return the events:
      from then on they exist only in the host's hands. An event the host loses before
      storing it (the process dies, a dispatch raises) is never fired again.

    Args:
        storage: Where first-seen keys are kept (and, unless *exclusions* is given, the
            exclusion list is read from).
        parent_accounts: Whether the host uses parent accounts.
        exclusions: A fixed list (rules or a matcher) instead of the store's.
        clock: Returns the current aware UTC time (recorded with each key).
        id_factory: Makes each event's ``unique_id``; by default 40 lowercase hex
            characters, like ``new_unique_id``'s, that sort in the order they were made
            (to the millisecond; 112 random bits follow), so the outbox's index on event
            ids grows at one end.
        cache_size: How many recently seen keys to remember (0 turns the cache off).
        no_account_id: The ``accountId`` of a ``visitorCreated`` whose visitor has no
            account.

    Raises:
        ConfigurationError: For a bad *cache_size*.

    >>> from datetime import datetime, timezone
    >>> from pendo_webhooks.events import App, Subscription
    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> tracker = FirstSeenTracker(InMemoryStorage())
    >>> tracker.record_api_created(visitor_ids=["bob"])
    1
    >>> obs = Observation(
    ...     visitor_id="bob", account_id="acme", app=App(id=-323232, name="web", platform="web"),
    ...     subscription=Subscription(id=1, name="prod"),
    ...     at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ... )
    >>> [str(e.category) for e in tracker.observe(obs)]
    ['visitorCreated', 'accountCreated']
    >>> tracker.observe(obs)
    []
    """

    def __init__(
        self,
        storage: TrackerStore,
        *,
        parent_accounts: bool = False,
        exclusions: ExclusionMatcher | Iterable[ExclusionRule] | None = None,
        clock: Clock = utcnow,
        id_factory: Callable[[], str] = sorted_unique_id,
        cache_size: int = DEFAULT_CACHE_SIZE,
        no_account_id: str = NO_ACCOUNT_ID,
    ) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            msg = "cache_size: must be a non-negative integer"
            raise ConfigurationError(msg)
        try:
            checks.identifier(no_account_id, "no_account_id")
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        self._storage = storage
        self._parent_accounts = bool(parent_accounts)
        self._stored: StoredExclusions | None = None
        self._fixed: ExclusionMatcher = EMPTY_MATCHER
        if exclusions is None:
            self._stored = StoredExclusions(storage)
        elif isinstance(exclusions, ExclusionMatcher):
            self._fixed = exclusions
        else:
            self._fixed = ExclusionMatcher(exclusions)
        self._clock = clock
        self._ids = id_factory
        self._cache = _Cache(cache_size)
        self._no_account_id = no_account_id

    def __repr__(self) -> str:
        return (
            f"<FirstSeenTracker(parent_accounts={self._parent_accounts}, "
            f"cached_keys={len(self._cache)})>"
        )

    def observe(self, observation: Observation) -> list[Event]:
        """
        Record one sighting; return the events it fires (none for a repeat).

        The sighting is committed before this returns, and the events live only in what it
        returns: the host must store or dispatch them itself. If the process dies, or
        anything raises, before they are stored, they are lost for good (the next sighting
        is a repeat). :meth:`observe_and_dispatch` and :meth:`observe_and_enqueue` store
        them in the same transaction as the sighting instead.

        Raises:
            ValidationError: If *observation* is not an :class:`Observation`.
            StorageError: If the store fails; nothing was recorded.
        """
        return self.observe_many((observation,))

    def observe_many(self, observations: Iterable[Observation]) -> list[Event]:
        """
        Record many sightings in one store transaction; return the events, in order.

        For each observation, in order: ``visitorCreated``, ``accountCreated``,
        ``parentChildAccountCreated``, for whatever is new. A visitor seen twice in the
        batch fires once, for its first observation. The call is all or nothing, and holds
        the store's write lock while it records: pass batches of a few thousand at most.
        As with :meth:`observe`, the events returned are the host's to keep.

        Raises:
            ValidationError: If an item is not an :class:`Observation`.
            StorageError: If the store fails; nothing was recorded.
        """
        wanted, pending = self._pending(observations)
        if not pending:
            return []
        claimed = self._storage.claim_first_seen(pending, at=self._clock())
        self._cache.add(pending)
        return self._events(pending, wanted, claimed)

    def observe_and_dispatch(
        self, observation: Observation, dispatcher: Dispatcher
    ) -> list[DispatchResult]:
        """
        Record one sighting and store its events' deliveries atomically; then attempt them.

        Like ``dispatcher.dispatch`` for each event :meth:`observe` would return, except
        that the sighting and the deliveries are written in ONE transaction of the store
        (both or neither): a crash or an error at any point leaves either both (the
        deliveries are in the outbox; a worker sends what the attempt did not) or neither
        (the next sighting fires again). At least once, never zero.

        Returns:
            One ``DispatchResult`` per event fired, in order.

        Raises:
            ValidationError: If *observation* is not an :class:`Observation`, or
                *dispatcher* not a ``Dispatcher``.
            ConfigurationError: If *dispatcher* does not use this tracker's store.
            StorageError: If the store fails; nothing was recorded, so calling again
                fires the events.
            PayloadError: If an event cannot be serialized; nothing was recorded.

        >>> from datetime import datetime, timezone
        >>> from pendo_webhooks.dispatcher import Dispatcher
        >>> from pendo_webhooks.events import App, Subscription
        >>> from pendo_webhooks.registry import Actor, WebhookRegistry
        >>> from pendo_webhooks.storage import InMemoryStorage
        >>> from pendo_webhooks.testing import RecordingTransport
        >>> storage = InMemoryStorage()
        >>> registry = WebhookRegistry(storage)
        >>> admin = Actor("u-1", is_admin=True)
        >>> hook = registry.create(admin, name="CRM", url="https://hooks.example.com/crm",
        ...                        categories={"visitorCreated"})
        >>> _ = registry.enable(admin, hook.id)
        >>> dispatcher = Dispatcher(registry, transport=RecordingTransport())
        >>> tracker = FirstSeenTracker(storage)
        >>> seen = Observation(
        ...     visitor_id="ann", account_id="acme",
        ...     app=App(id=-323232, name="web", platform="web"),
        ...     subscription=Subscription(id=1, name="prod"),
        ...     at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        ... )
        >>> [(str(r.category), [str(o.outcome) for o in r])
        ...  for r in tracker.observe_and_dispatch(seen, dispatcher)]
        [('visitorCreated', ['delivered']), ('accountCreated', [])]
        >>> tracker.observe_and_dispatch(seen, dispatcher)
        []
        """
        return self._observe_into((observation,), dispatcher, attempt=True)

    def observe_many_and_dispatch(
        self, observations: Iterable[Observation], dispatcher: Dispatcher
    ) -> list[DispatchResult]:
        """
        :meth:`observe_many` and ``dispatcher.dispatch_many`` in one: the sightings and
        every delivery of the events they fire are written in one transaction, then
        attempted (see :meth:`observe_and_dispatch`).

        Returns:
            One ``DispatchResult`` per event fired, in order.

        Raises:
            ValidationError: If an item is not an :class:`Observation`, or *dispatcher*
                not a ``Dispatcher``.
            ConfigurationError: If *dispatcher* does not use this tracker's store.
            StorageError: If the store fails; nothing was recorded, so calling again
                fires the events.
            PayloadError: If an event cannot be serialized; nothing was recorded.
        """
        return self._observe_into(observations, dispatcher, attempt=True)

    def observe_and_enqueue(
        self,
        observation: Observation,
        dispatcher: Dispatcher,
        *,
        connection: object | None = None,
    ) -> list[DispatchResult]:
        """
        Like :meth:`observe_and_dispatch`, without attempting (a worker sends them).

        With *connection* (PostgresStorage only), the sighting and the deliveries are
        written through the host's own psycopg connection, in its transaction, as
        ``Dispatcher.enqueue(connection=...)`` does: they commit or roll back with the
        host's change.

        Returns:
            One ``DispatchResult`` per event fired, in order (outcomes ``pending``).

        Raises:
            ValidationError: If an item is not an :class:`Observation`, or *dispatcher*
                not a ``Dispatcher``.
            ConfigurationError: If *dispatcher* does not use this tracker's store, or if
                *connection* is given but the store cannot use it.
            StorageError: If the store fails; nothing was recorded, so calling again
                fires the events.
            PayloadError: If an event cannot be serialized; nothing was recorded.
        """
        return self._observe_into((observation,), dispatcher, attempt=False, connection=connection)

    def observe_many_and_enqueue(
        self,
        observations: Iterable[Observation],
        dispatcher: Dispatcher,
        *,
        connection: object | None = None,
    ) -> list[DispatchResult]:
        """
        :meth:`observe_and_enqueue` for many observations: one transaction in all.

        Returns:
            One ``DispatchResult`` per event fired, in order.

        Raises:
            ValidationError: If an item is not an :class:`Observation`, or *dispatcher*
                not a ``Dispatcher``.
            ConfigurationError: If *dispatcher* does not use this tracker's store, or if
                *connection* is given but the store cannot use it.
            StorageError: If the store fails; nothing was recorded, so calling again
                fires the events.
            PayloadError: If an event cannot be serialized; nothing was recorded.

        >>> from datetime import datetime, timezone
        >>> from pendo_webhooks.dispatcher import Dispatcher
        >>> from pendo_webhooks.events import App, Subscription
        >>> from pendo_webhooks.registry import Actor, WebhookRegistry
        >>> from pendo_webhooks.storage import InMemoryStorage
        >>> from pendo_webhooks.testing import RecordingTransport
        >>> storage = InMemoryStorage()
        >>> registry = WebhookRegistry(storage)
        >>> admin = Actor("u-1", is_admin=True)
        >>> hook = registry.create(admin, name="CRM", url="https://hooks.example.com/crm",
        ...                        categories={"visitorCreated"})
        >>> _ = registry.enable(admin, hook.id)
        >>> dispatcher = Dispatcher(registry, transport=RecordingTransport())
        >>> tracker = FirstSeenTracker(storage)
        >>> seen = [
        ...     Observation(visitor_id=v, app=App(id=1, name="web", platform="web"),
        ...                 subscription=Subscription(id=1, name="prod"),
        ...                 at=datetime(2026, 1, 1, tzinfo=timezone.utc))
        ...     for v in ("ann", "bob", "ann")
        ... ]
        >>> [str(r.for_webhook(hook.id).outcome)
        ...  for r in tracker.observe_many_and_enqueue(seen, dispatcher)]
        ['pending', 'pending']
        >>> dispatcher.drain(timeout=10).delivered
        2
        """
        return self._observe_into(observations, dispatcher, attempt=False, connection=connection)

    def record_api_created(
        self, *, visitor_ids: Iterable[str] = (), account_ids: Iterable[str] = ()
    ) -> int:
        """
        Record visitors and accounts created through an API or a bulk metadata import.

        They fire nothing now, and fire once when first seen in the app. Ids already known
        are left as they are. Returns how many ids were new.

        Raises:
            ValidationError: For an empty id or one that is not text (``visitor_ids`` or
                ``account_ids``); nothing was recorded.
        """
        keys = [_visitor_key(checks.identifier(v, "visitor_ids")) for v in visitor_ids]
        keys += [_account_key(checks.identifier(a, "account_ids")) for a in account_ids]
        if not keys:
            return 0
        return self._storage.record_known(keys, at=self._clock())

    # -- machinery -------------------------------------------------------------------------

    def _pending(
        self, observations: Iterable[Observation]
    ) -> tuple[dict[str, Observation], list[str]]:
        """
        The keys the observations touch (each with its first observation), and those of
        them the cache does not know.
        """
        batch = list(observations)
        for item in batch:
            if not isinstance(item, Observation):
                msg = f"must hold Observation values, not {type(item).__name__}"
                raise ValidationError("observations", msg)
        matcher = self._fixed if self._stored is None else self._stored.current()
        wanted: dict[str, Observation] = {}
        for obs in batch:
            for key in self._keys(obs, matcher):
                wanted.setdefault(key, obs)
        return wanted, self._cache.missing(wanted)

    def _events(
        self, pending: list[str], wanted: dict[str, Observation], claimed: Collection[str]
    ) -> list[Event]:
        return [self._event(key, wanted[key]) for key in pending if key in claimed]

    def _observe_into(
        self,
        observations: Iterable[Observation],
        dispatcher: Dispatcher,
        *,
        attempt: bool,
        connection: object | None = None,
    ) -> list[DispatchResult]:
        enqueue = getattr(dispatcher, "_enqueue_first_seen", None)
        if not callable(enqueue):
            msg = f"must be a Dispatcher, not {type(dispatcher).__name__}"
            raise ValidationError("dispatcher", msg)
        if dispatcher.storage is not self._storage:
            msg = (
                "dispatcher: must use this tracker's store (a sighting and its deliveries "
                "are written in one transaction of one store)"
            )
            raise ConfigurationError(msg)
        wanted, pending = self._pending(observations)
        if not pending:
            return []
        results = dispatcher._enqueue_first_seen(
            pending,
            at=self._clock(),
            categories=_WITH_PAIRS if self._parent_accounts else _FIRST_SEEN,
            events=lambda claimed: self._events(pending, wanted, claimed),
            attempt=attempt,
            connection=connection,
        )
        self._cache.add(pending)
        return results

    def _keys(self, obs: Observation, matcher: ExclusionMatcher) -> list[str]:
        account = obs.account_id
        parent = obs.parent_account_id if self._parent_accounts else None
        if matcher:
            # The envelope's account id, as the dispatcher's gate will see it.
            accounts = [] if account is None else [_joined(parent, account)]
            if observation_gate(matcher, obs.visitor_id, accounts, obs.source_ip):
                return []
        keys = [_visitor_key(obs.visitor_id)]
        if account is not None:
            keys.append(_account_key(account))
            if parent is not None:
                keys.append(_pair_key(parent, account))
        return keys

    def _event(self, key: str, obs: Observation) -> Event:
        parent = obs.parent_account_id if self._parent_accounts else None
        account = obs.account_id or self._no_account_id
        envelope: dict[str, Any] = {
            "app": obs.app,
            "account_id": _joined(parent, account),
            "subscription": obs.subscription,
            "user_agent": obs.user_agent,
            "timestamp": obs.at,
            "visitor_id": obs.visitor_id,
            "unique_id": checks.unique_id(self._ids(), "unique_id"),
            "agent_version": obs.agent_version,
            "source_ip": obs.source_ip,
        }
        if key[0] == "v":
            group = obs.sample_group
            envelope["browser_name"] = obs.browser_name
            envelope["browser_version"] = obs.browser_version
            envelope["sample_group"] = sample_group_for(obs.visitor_id) if group is None else group
            return _trusted(VisitorCreated, envelope)
        if key[0] == "a":
            return _trusted(AccountCreated, envelope)
        if parent is not None:  # a pair key is only ever made with a parent
            return ParentChildAccountCreated(
                **envelope, parent_account_id=parent, child_account_id=account
            )
        raise AssertionError("unreachable")
