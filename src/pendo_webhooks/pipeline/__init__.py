"""
The event pipeline before delivery: first-seen tracking, the exclusion list, the
agent-version gate, and the decisions behind ``Dispatcher.explain``.

* :class:`FirstSeenTracker` turns in-app activity (:class:`Observation`) into
  ``visitorCreated``, ``accountCreated`` and ``parentChildAccountCreated`` events, each
  fired once across threads and processes; ``observe_and_dispatch`` stores a sighting and
  its deliveries in one transaction, so none is lost between the two.
* The exclusion list (:class:`ExclusionRule`; managed with
  ``WebhookRegistry.add_exclusion``/``remove_exclusion``) keeps the events of visitors,
  accounts and source IP ranges away from every webhook. :class:`ExclusionMatcher` is the
  compiled list, :class:`StoredExclusions` the store's list, recompiled only after a change.
* :func:`is_agent_too_old`: NPS and poll events from a Pendo agent older than 2.33.0 are
  not delivered.
* :func:`evaluate` says, for each webhook, whether an event would be sent and why not
  (:class:`Decision`, :class:`SkipReason`), in a fixed order: excluded visitor, excluded
  account, excluded IP, agent too old; then per webhook: disabled, not subscribed,
  destination blocked, payload too large.

>>> from datetime import datetime, timezone
>>> from pendo_webhooks.events import App, Subscription
>>> from pendo_webhooks.registry import Actor, WebhookRegistry
>>> from pendo_webhooks.storage import InMemoryStorage
>>> storage = InMemoryStorage()
>>> registry = WebhookRegistry(storage)
>>> rule = registry.add_exclusion(Actor("u-1", is_admin=True), "visitor", "*@test.example")
>>> tracker = FirstSeenTracker(storage)
>>> def seen(visitor_id):
...     return Observation(
...         visitor_id=visitor_id, account_id="acme",
...         app=App(id=-323232, name="web", platform="web"),
...         subscription=Subscription(id=1, name="prod"),
...         at=datetime(2026, 1, 1, tzinfo=timezone.utc),
...     )
>>> tracker.observe(seen("qa@test.example"))
[]
>>> [str(e.category) for e in tracker.observe(seen("ann@acme.com"))]
['visitorCreated', 'accountCreated']
"""

from __future__ import annotations

from ..model._exclusions import (
    MAX_PATTERN_LENGTH,
    Exclusion,
    ExclusionKind,
    ExclusionMatcher,
    ExclusionRule,
    ExclusionSource,
    StoredExclusions,
)
from ._gate import (
    DEFAULT_MAX_BODY_BYTES,
    Decision,
    DestinationResolver,
    PayloadMeasure,
    SkipReason,
    describe,
    evaluate,
    event_gate,
    is_agent_too_old,
    payload_measure,
)
from ._tracker import (
    DEFAULT_CACHE_SIZE,
    NO_ACCOUNT_ID,
    FirstSeenTracker,
    Observation,
    TrackerStore,
    sample_group_for,
)


__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_PATTERN_LENGTH",
    "NO_ACCOUNT_ID",
    "Decision",
    "DestinationResolver",
    "Exclusion",
    "ExclusionKind",
    "ExclusionMatcher",
    "ExclusionRule",
    "ExclusionSource",
    "FirstSeenTracker",
    "Observation",
    "PayloadMeasure",
    "SkipReason",
    "StoredExclusions",
    "TrackerStore",
    "describe",
    "evaluate",
    "event_gate",
    "is_agent_too_old",
    "payload_measure",
    "sample_group_for",
]
