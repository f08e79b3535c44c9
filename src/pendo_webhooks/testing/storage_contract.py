"""
The storage contract suite: the tests every store passes, for a host to run on its own store.

pendo-webhooks runs these tests against ``InMemoryStorage``, ``SQLiteStorage`` and
``PostgresStorage``; a host that keeps the outbox in its own database runs them against
its store, written to the Protocols in :mod:`pendo_webhooks.storage.protocols`. Each
class covers one part of the seam; :class:`StorageContract` is all of them. Subclass one
in a test module (its name must start with ``Test``) and give it a ``storage`` fixture
that yields a fresh, empty store for each test::

    import pytest

    from pendo_webhooks.testing.storage_contract import StorageContract

    from myapp.webhook_store import MyStore


    class TestMyStore(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            store = MyStore(tmp_path / "outbox.db")
            yield store
            store.close()

A store that keeps only part of the seam (say, webhooks in its own tables but no
outbox yet) subclasses only the classes of the parts it has.

Some tests run threads against the store (it must be safe to share between threads),
and some use `Hypothesis <https://hypothesis.readthedocs.io>`_ to try many values: this
module imports **pytest and hypothesis**, which are test-time dependencies of the host,
never runtime dependencies of pendo-webhooks. Only a test run imports it;
``import pendo_webhooks.testing`` does not.

The tests name the library's messages where a host's store should say the same thing
(a conflict names the id it is about, a stale version says ``"version 1, but version 2"``);
copy them from the failures.

>>> from pendo_webhooks.testing.storage_contract import StorageContract, OutboxQueueContract
>>> issubclass(StorageContract, OutboxQueueContract)
True
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..dispatcher import Attempt, Delivery, DeliveryStatus, WebhookHealth
from ..events import EventCategory, OperationsCategory
from ..exceptions import (
    ConfigurationError,
    ConflictError,
    NotFound,
    StorageError,
    UnknownDelivery,
    UnknownWebhook,
)
from ..pipeline import Exclusion, ExclusionRule
from ..registry import Actor, AuditEntry, RetiredSecret, Webhook, WebhookKind, WebhookRegistry
from ..retry import Verdict
from ..signing import SignatureScheme
from ..storage import AuditQuery, Storage
from ..storage.protocols import (
    BulkHealthStore,
    CountingDeliveryLog,
    HealthStore,
    capabilities,
    claims_exhausted,
)
from ._fakes import FrozenClock


__all__ = [
    "AuditStoreContract",
    "DeliveryLogContract",
    "EnqueueFirstSeenContract",
    "ExclusionStoreContract",
    "FirstSeenStoreContract",
    "HealthStoreContract",
    "OutboxQueueContract",
    "StorageContract",
    "WebhookStoreContract",
]

#: The moment the tests' records are made at.
_T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: How long the tests' claims are leased for.
_LEASE = timedelta(seconds=60)
_ADMIN = Actor("u-1", is_admin=True)
_ids = itertools.count(1)


def _make_webhook(**overrides: object) -> Webhook:
    """
    A valid URL webhook with every optional part filled in; *overrides* replace fields.
    """
    fields: dict[str, object] = {
        "id": f"wh_{next(_ids)}",
        "name": "Contract hook",
        "url": "https://hooks.example.com/catch/1?token=abc",
        "secret": "current-secret!&?<>\"'\\ é",
        "previous_secrets": (
            RetiredSecret(secret="older-secret", expires_at=_T0 + timedelta(hours=5)),
        ),
        "categories": {EventCategory.NPS_SUBMITTED, EventCategory.GUIDE_DISPLAYED},
        "signature_scheme": SignatureScheme.PENDO,
        "signature_header": "X-Custom-Signature",
        "headers": {"X-Team": "growth", "X-Api-Key": "k-123"},
        "filters": ("hash:visitorId", "drop:properties.nps.reason", "drop:userAgent"),
        "hash_key": "pii_hash-key!&?<>\"'\\ é",
        "created_at": _T0,
        "created_by": "u-1",
        "updated_at": _T0,
        "updated_by": "u-1",
    }
    fields.update(overrides)
    return Webhook(**fields)  # type: ignore[arg-type]


def _make_segment(**overrides: object) -> Webhook:
    """
    A valid Segment webhook; *overrides* replace fields.
    """
    fields: dict[str, object] = {
        "id": f"wh_{next(_ids)}",
        "name": "To Segment",
        "kind": WebhookKind.SEGMENT,
        "write_key": "wk-ÄÖÜ-123",
        "categories": {EventCategory.TRACK_EVENT_RECEIVED},
        "filters": ("hash:properties.eventProperties.e-mail ü",),
        "hash_key": "pii_segment-key",
        "created_at": _T0,
        "created_by": "u-1",
        "updated_at": _T0,
        "updated_by": "u-1",
    }
    fields.update(overrides)
    return Webhook(**fields)  # type: ignore[arg-type]


def _entry(webhook_id: str, action: str = "create", **overrides: object) -> AuditEntry:
    """
    An audit entry about *webhook_id*; *overrides* replace fields.
    """
    fields: dict[str, object] = {
        "id": f"aud_{next(_ids)}",
        "at": _T0,
        "actor_id": "u-1",
        "action": action,
        "webhook_id": webhook_id,
        "changes": {"name": (None, "Contract hook")},
    }
    fields.update(overrides)
    return AuditEntry(**fields)  # type: ignore[arg-type]


def _all_entries(storage: Storage) -> list[AuditEntry]:
    """
    Every audit entry, newest first.
    """
    return list(storage.audit_entries(AuditQuery(limit=10_000)))


def _bump(webhook: Webhook, **changes: object) -> Webhook:
    """
    *webhook* with *changes* applied and its version one higher.
    """
    return attrs.evolve(webhook, version=webhook.version + 1, **changes)  # type: ignore[arg-type]


def _exclusion(exc_id: str, kind: str, pattern: str, *, minutes: int = 0) -> Exclusion:
    """
    An exclusion rule created *minutes* after _T0.
    """
    return Exclusion(
        id=exc_id,
        rule=ExclusionRule(kind, pattern),
        created_at=_T0 + timedelta(minutes=minutes),
        created_by="admin-1",
    )


def _exclusion_entry(exc_id: str, action: str = "exclusion_add") -> AuditEntry:
    """
    The audit entry of an exclusion change.
    """
    return AuditEntry(
        id=f"aud_{exc_id}_{action}", at=_T0, actor_id="admin-1", action=action, webhook_id=exc_id
    )


def _hook(storage: Storage, *, enabled: bool = True) -> Webhook:
    """
    A URL webhook stored through a registry (enabled unless told otherwise).
    """
    registry = WebhookRegistry(storage, clock=FrozenClock(_T0))
    created = registry.create(
        _ADMIN, name="Outbox hook", url="https://hooks.example.com/in", categories={"npsSubmitted"}
    )
    return registry.enable(_ADMIN, created.id) if enabled else created


def _delivery(webhook_id: str, **overrides: object) -> Delivery:
    """
    A new pending delivery due at _T0; *overrides* replace fields.
    """
    n = next(_ids)
    fields: dict[str, object] = {
        "id": f"dlv_{n}",
        "webhook_id": webhook_id,
        "event_id": f"{n:040x}",
        "category": "npsSubmitted",
        "body": b'{"n":%d,"x":"\xc3\xa9\x00\xff"}' % n,
        "next_attempt_at": _T0,
        "created_at": _T0,
        "updated_at": _T0,
    }
    fields.update(overrides)
    return Delivery(**fields)  # type: ignore[arg-type]


def _attempt_for(claimed: Delivery, **overrides: object) -> Attempt:
    """
    The attempt row of the next attempt of *claimed*; *overrides* replace fields.
    """
    fields: dict[str, object] = {
        "delivery_id": claimed.id,
        "number": claimed.attempts + 1,
        "started_at": _T0,
        "duration": 0.25,
        "status_code": 503,
        "response_excerpt": b"busy \xff" * 10,
        "verdict": Verdict.RETRY,
        "reason": "HTTP 503, retry 1 of 5 in 5s",
    }
    fields.update(overrides)
    return Attempt(**fields)  # type: ignore[arg-type]


def _finished(claimed: Delivery, status: DeliveryStatus, now: datetime) -> Delivery:
    """
    *claimed* after an attempt that ended in *status* at *now*.
    """
    return attrs.evolve(
        claimed,
        status=status,
        attempts=claimed.attempts + 1,
        next_attempt_at=now,
        updated_at=now,
        last_status=200 if status is DeliveryStatus.DELIVERED else 404,
        last_error=None if status is DeliveryStatus.DELIVERED else "HTTP 404, not retried",
        finished_at=now,
        lease_owner=None,
        lease_until=None,
    )


def _claim(
    store: Storage,
    owner: str = "w1",
    now: datetime = _T0,
    limit: int = 10,
    *,
    webhook_id: str | None = None,
    max_claims: int | None = None,
) -> list[Delivery]:
    return store.claim_due(
        owner=owner,
        now=now,
        lease_until=now + _LEASE,
        limit=limit,
        webhook_id=webhook_id,
        max_claims=max_claims,
    )


def _retried(claimed: Delivery, now: datetime) -> tuple[Delivery, Attempt]:
    """
    *claimed* after an attempt answered 503 at *now* (due again at once), and its attempt row.
    """
    updated = attrs.evolve(
        claimed,
        attempts=claimed.attempts + 1,
        next_attempt_at=now,
        updated_at=now,
        last_status=503,
        last_error="HTTP 503",
        lease_owner=None,
        lease_until=None,
    )
    return updated, _attempt_for(claimed, started_at=now)


def _run_to(store: Storage, webhook_id: str, status: DeliveryStatus, **fields: object) -> Delivery:
    """
    Enqueue one delivery, claim it, and record it as *status*; return what the store holds.
    """
    new = _delivery(webhook_id, **fields)
    assert store.enqueue_deliveries([new]) == [None]
    (claimed,) = _claim(store, now=new.next_attempt_at, webhook_id=webhook_id)
    now = new.next_attempt_at + timedelta(seconds=1)
    done = _finished(claimed, status, now)
    assert store.record_outcome(done, _attempt_for(claimed), owner="w1", now=now)
    return store.get_delivery(new.id)


class WebhookStoreContract:
    """
    Tests of a :class:`~pendo_webhooks.storage.protocols.WebhookStore` (and its audit entries).

    Every field of a webhook round-trips, secrets included; writes are fenced on the
    version; concurrent writers lose nothing and one of them wins a race.

    >>> "test_replace_stale_version_conflicts_and_writes_nothing" in dir(WebhookStoreContract)
    True
    """

    def test_get_unknown_raises(self, storage: Storage) -> None:
        """
        Asking for an id nobody has raises UnknownWebhook (a LookupError) naming the id.
        """
        with pytest.raises(UnknownWebhook, match="wh_nope") as info:
            storage.get_webhook("wh_nope")
        assert isinstance(info.value, LookupError)

    @pytest.mark.parametrize("factory", [_make_webhook, _make_segment], ids=["url", "segment"])
    def test_insert_then_get_round_trips_every_field(
        self, storage: Storage, factory: Callable[..., Webhook]
    ) -> None:
        """
        A stored webhook comes back equal, field for field, secrets included.
        """
        hook = factory()
        storage.insert_webhook(hook, audit=_entry(hook.id))
        got = storage.get_webhook(hook.id)
        assert got == hook
        for field in attrs.fields(Webhook):
            assert getattr(got, field.name) == getattr(hook, field.name), field.name
        assert [s.reveal() for s in got.signing_secrets(_T0)] == [
            s.reveal() for s in hook.signing_secrets(_T0)
        ]
        assert list(got.headers) == list(hook.headers)
        assert got.hash_key is not None
        assert hook.hash_key is not None
        assert got.hash_key.reveal() == hook.hash_key.reveal()

    def test_filters_change_and_go_and_the_hash_key_stays(self, storage: Storage) -> None:
        """
        PII filters are replaced in their order, and removed; the hash key stays with them.
        """
        hook = _make_webhook()
        storage.insert_webhook(hook, audit=_entry(hook.id))
        reordered = _bump(hook, filters=("drop:userAgent", "hash:accountId", "hash:visitorId"))
        storage.replace_webhook(reordered, expected_version=1, audit=_entry(hook.id, "update"))
        assert [str(f) for f in storage.get_webhook(hook.id).filters] == [
            "drop:userAgent",
            "hash:accountId",
            "hash:visitorId",
        ]
        cleared = _bump(reordered, filters=())
        storage.replace_webhook(cleared, expected_version=2, audit=_entry(hook.id, "update"))
        got = storage.get_webhook(hook.id)
        assert got.filters == ()
        assert got == cleared
        assert got.hash_key is not None
        assert got.hash_key.reveal() == "pii_hash-key!&?<>\"'\\ é"
        unfiltered = _make_webhook(filters=(), hash_key=None)
        storage.insert_webhook(unfiltered, audit=_entry(unfiltered.id))
        assert storage.get_webhook(unfiltered.id).hash_key is None

    def test_insert_duplicate_id_conflicts_and_writes_nothing(self, storage: Storage) -> None:
        """
        Inserting a webhook with a taken id raises ConflictError; neither row nor audit changes.
        """
        hook = _make_webhook()
        storage.insert_webhook(hook, audit=_entry(hook.id))
        impostor = _make_webhook(id=hook.id, name="Impostor")
        with pytest.raises(ConflictError, match="already exists"):
            storage.insert_webhook(impostor, audit=_entry(hook.id))
        assert storage.get_webhook(hook.id).name == "Contract hook"
        assert len(_all_entries(storage)) == 1

    def test_replace_at_expected_version(self, storage: Storage) -> None:
        """
        A replacement based on the stored version is stored, with its audit entry.
        """
        hook = _make_webhook()
        storage.insert_webhook(hook, audit=_entry(hook.id))
        new = _bump(hook, name="Renamed", categories={EventCategory.POLL_SUBMITTED})
        storage.replace_webhook(new, expected_version=1, audit=_entry(hook.id, "update"))
        assert storage.get_webhook(hook.id) == new
        assert [e.action for e in _all_entries(storage)] == ["update", "create"]

    def test_replace_stale_version_conflicts_and_writes_nothing(self, storage: Storage) -> None:
        """
        A replacement based on an old version raises ConflictError and leaves row and audit alone.
        """
        hook = _make_webhook()
        storage.insert_webhook(hook, audit=_entry(hook.id))
        v2 = _bump(hook, name="Second")
        storage.replace_webhook(v2, expected_version=1, audit=_entry(hook.id, "update"))
        stale = _bump(hook, name="Based on v1")
        with pytest.raises(ConflictError, match="version 1, but version 2"):
            storage.replace_webhook(stale, expected_version=1, audit=_entry(hook.id, "update"))
        assert storage.get_webhook(hook.id) == v2
        assert len(_all_entries(storage)) == 2

    def test_replace_unknown_raises(self, storage: Storage) -> None:
        """
        Replacing a webhook that does not exist raises UnknownWebhook and audits nothing.
        """
        hook = _make_webhook()
        with pytest.raises(UnknownWebhook):
            storage.replace_webhook(hook, expected_version=1, audit=_entry(hook.id, "update"))
        assert _all_entries(storage) == []

    def test_delete_keeps_audit_history(self, storage: Storage) -> None:
        """
        A deleted webhook is gone everywhere, but its audit entries (and the delete's) remain.
        """
        hook = _make_webhook(enabled=True)
        storage.insert_webhook(hook, audit=_entry(hook.id))
        storage.delete_webhook(hook.id, expected_version=1, audit=_entry(hook.id, "delete"))
        with pytest.raises(UnknownWebhook):
            storage.get_webhook(hook.id)
        assert storage.list_webhooks() == []
        assert storage.webhooks_for(EventCategory.NPS_SUBMITTED) == []
        history = storage.audit_entries(AuditQuery(webhook_id=hook.id))
        assert [e.action for e in history] == ["delete", "create"]

    def test_delete_stale_version_conflicts(self, storage: Storage) -> None:
        """
        Deleting based on an old version raises ConflictError; the webhook stays.
        """
        hook = _make_webhook()
        storage.insert_webhook(hook, audit=_entry(hook.id))
        storage.replace_webhook(_bump(hook), expected_version=1, audit=_entry(hook.id, "update"))
        with pytest.raises(ConflictError):
            storage.delete_webhook(hook.id, expected_version=1, audit=_entry(hook.id, "delete"))
        assert storage.get_webhook(hook.id).version == 2
        assert len(_all_entries(storage)) == 2

    def test_delete_unknown_raises(self, storage: Storage) -> None:
        """
        Deleting an id nobody has raises UnknownWebhook and audits nothing.
        """
        with pytest.raises(UnknownWebhook):
            storage.delete_webhook("wh_nope", expected_version=1, audit=_entry("wh_nope"))
        assert _all_entries(storage) == []

    def test_list_is_oldest_first_then_by_id(self, storage: Storage) -> None:
        """
        list_webhooks returns enabled and disabled webhooks, by creation time, then id.
        """
        late = _make_webhook(id="wh_a", created_at=_T0 + timedelta(seconds=5))
        early_b = _make_webhook(id="wh_c", enabled=True)
        early_a = _make_webhook(id="wh_b")
        for hook in (late, early_b, early_a):
            storage.insert_webhook(hook, audit=_entry(hook.id))
        assert [w.id for w in storage.list_webhooks()] == ["wh_b", "wh_c", "wh_a"]

    def test_webhooks_for_only_enabled_and_subscribed(self, storage: Storage) -> None:
        """
        webhooks_for returns the enabled webhooks subscribed to the category, oldest first.
        """
        on = _make_webhook(id="wh_on", enabled=True)
        off = _make_webhook(id="wh_off")
        other = _make_webhook(id="wh_other", enabled=True, categories={"pollSubmitted"})
        seg = _make_segment(
            id="wh_seg", enabled=True, categories={"npsSubmitted"}, created_at=_T0 - timedelta(1)
        )
        for hook in (on, off, other, seg):
            storage.insert_webhook(hook, audit=_entry(hook.id))
        assert [w.id for w in storage.webhooks_for(EventCategory.NPS_SUBMITTED)] == [
            "wh_seg",
            "wh_on",
        ]
        assert [w.id for w in storage.webhooks_for(EventCategory.POLL_SUBMITTED)] == ["wh_other"]
        assert storage.webhooks_for(EventCategory.ACCOUNT_CREATED) == []

    def test_an_operations_webhook_round_trips_and_gets_no_pendo_events(
        self, storage: Storage
    ) -> None:
        """
        A webhook subscribed to the library's operations events reads back equal (the
        categories are stored as their values, ``pendo_webhooks.webhook.disabled``), and
        no Pendo category finds it.
        """
        hook = _make_webhook(enabled=True, categories=set(OperationsCategory))
        storage.insert_webhook(hook, audit=_entry(hook.id))
        got = storage.get_webhook(hook.id)
        assert got == hook
        assert got.is_operations
        assert storage.list_webhooks() == [hook]
        for category in EventCategory:
            assert storage.webhooks_for(category) == []

    def test_webhooks_for_follows_category_changes(self, storage: Storage) -> None:
        """
        After a replace changes the categories, the category lookup follows.
        """
        hook = _make_webhook(enabled=True, categories={"npsSubmitted"})
        storage.insert_webhook(hook, audit=_entry(hook.id))
        moved = _bump(hook, categories={"pollDisplayed", "visitorCreated"})
        storage.replace_webhook(moved, expected_version=1, audit=_entry(hook.id, "update"))
        assert storage.webhooks_for(EventCategory.NPS_SUBMITTED) == []
        assert storage.webhooks_for(EventCategory.POLL_DISPLAYED) == [moved]
        assert storage.webhooks_for(EventCategory.VISITOR_CREATED) == [moved]

    def test_returned_values_are_immutable(self, storage: Storage) -> None:
        """
        What a backend returns cannot be changed in place, down to the headers mapping.
        """
        hook = _make_webhook()
        storage.insert_webhook(hook, audit=_entry(hook.id))
        got = storage.get_webhook(hook.id)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            got.name = "changed"  # type: ignore[misc]
        with pytest.raises(TypeError):
            got.headers["X-Team"] = "changed"  # type: ignore[index]
        assert isinstance(got.categories, frozenset)
        assert isinstance(got.previous_secrets, tuple)
        assert storage.get_webhook(hook.id).headers["X-Team"] == "growth"

    def test_datetimes_come_back_as_utc(self, storage: Storage) -> None:
        """
        Aware datetimes in any zone are stored as the same instant and returned in UTC.
        """
        plus_two = timezone(timedelta(hours=2))
        at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=plus_two)
        hook = _make_webhook(created_at=at, updated_at=at)
        storage.insert_webhook(hook, audit=_entry(hook.id))
        got = storage.get_webhook(hook.id)
        assert got.created_at == at
        assert got.created_at.utcoffset() == timedelta(0)
        assert got.created_at.microsecond == 891011

    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        name=st.text(
            st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=50
        ).filter(str.strip),
        secret=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=80).filter(
            lambda s: not s.isspace()
        ),
        value=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60),
    )
    def test_any_text_round_trips(
        self, storage: Storage, name: str, secret: str, value: str
    ) -> None:
        """
        Names, secrets and header values of any Unicode text come back exactly.
        """
        hook = _make_webhook(name=name, secret=secret, headers={"X-Value": value})
        storage.insert_webhook(hook, audit=_entry(hook.id))
        got = storage.get_webhook(hook.id)
        assert got.name == name.strip()
        assert got.secret is not None
        assert got.secret.reveal() == secret
        assert got.headers["X-Value"] == value

    def test_concurrent_inserts_all_land(self, storage: Storage) -> None:
        """
        Eight threads inserting 25 webhooks each lose none of them, nor their audit entries.
        """

        def insert(worker: int) -> None:
            for i in range(25):
                hook = _make_webhook(id=f"wh_{worker}_{i}")
                storage.insert_webhook(hook, audit=_entry(hook.id))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(insert, range(8)))
        assert len(storage.list_webhooks()) == 200
        assert len(_all_entries(storage)) == 200

    def test_same_version_replaced_concurrently_has_one_winner(self, storage: Storage) -> None:
        """
        Sixteen threads replacing version 1 at once: exactly one succeeds, the rest conflict.
        """
        hook = _make_webhook()
        storage.insert_webhook(hook, audit=_entry(hook.id))
        barrier = threading.Barrier(16)

        def replace(i: int) -> str:
            barrier.wait()
            try:
                storage.replace_webhook(
                    _bump(hook, name=f"writer {i}"),
                    expected_version=1,
                    audit=_entry(hook.id, "update"),
                )
            except ConflictError:
                return "conflict"
            return f"writer {i}"

        with ThreadPoolExecutor(max_workers=16) as pool:
            outcomes = list(pool.map(replace, range(16)))
        winners = [o for o in outcomes if o != "conflict"]
        assert len(winners) == 1
        stored = storage.get_webhook(hook.id)
        assert stored.name == winners[0]
        assert stored.version == 2
        assert len(_all_entries(storage)) == 2


class AuditStoreContract:
    """
    Tests of an :class:`~pendo_webhooks.storage.protocols.AuditStore`: filters, order, values.

    >>> "test_filters" in dir(AuditStoreContract)
    True
    """

    @pytest.fixture(name="entries")
    def _entries(self, storage: Storage) -> list[AuditEntry]:
        """
        Five entries on two webhooks by two actors, an hour apart, written oldest first.
        """
        a, b = _make_webhook(id="wh_a"), _make_webhook(id="wh_b")
        written = [
            _entry("wh_a", "create", id="aud_1", at=_T0, actor_id="u-1"),
            _entry("wh_b", "create", id="aud_2", at=_T0 + timedelta(hours=1), actor_id="u-2"),
            _entry("wh_a", "update", id="aud_3", at=_T0 + timedelta(hours=2), actor_id="u-2"),
            _entry("wh_a", "enable", id="aud_4", at=_T0 + timedelta(hours=3), actor_id="u-1"),
            _entry("wh_b", "disable", id="aud_5", at=_T0 + timedelta(hours=4), actor_id="system"),
        ]
        storage.insert_webhook(a, audit=written[0])
        storage.insert_webhook(b, audit=written[1])
        storage.replace_webhook(_bump(a), expected_version=1, audit=written[2])
        storage.replace_webhook(_bump(_bump(a)), expected_version=2, audit=written[3])
        storage.replace_webhook(_bump(b), expected_version=1, audit=written[4])
        return written

    def test_newest_first_and_equal_to_what_was_written(
        self, storage: Storage, entries: list[AuditEntry]
    ) -> None:
        """
        Entries come back newest first, each equal to the one written.
        """
        assert _all_entries(storage) == entries[::-1]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"webhook_id": "wh_a"}, ["aud_4", "aud_3", "aud_1"]),
            ({"actor_id": "u-2"}, ["aud_3", "aud_2"]),
            ({"action": "create"}, ["aud_2", "aud_1"]),
            ({"since": _T0 + timedelta(hours=2)}, ["aud_5", "aud_4", "aud_3"]),
            ({"until": _T0 + timedelta(hours=2)}, ["aud_2", "aud_1"]),
            (
                {"since": _T0 + timedelta(hours=1), "until": _T0 + timedelta(hours=4)},
                ["aud_4", "aud_3", "aud_2"],
            ),
            ({"limit": 2}, ["aud_5", "aud_4"]),
            ({"webhook_id": "wh_a", "actor_id": "u-1", "limit": 1}, ["aud_4"]),
            ({"webhook_id": "wh_a", "action": "disable"}, []),
            ({"actor_id": "system"}, ["aud_5"]),
        ],
        ids=lambda v: str(v) if isinstance(v, dict) else None,
    )
    def test_filters(
        self,
        storage: Storage,
        entries: list[AuditEntry],
        query: dict[str, Any],
        expected: list[str],
    ) -> None:
        """
        Each filter narrows the result; since is inclusive, until exclusive; limit keeps newest.
        """
        assert [e.id for e in storage.audit_entries(AuditQuery(**query))] == expected

    def test_since_in_another_zone_is_the_same_instant(
        self, storage: Storage, entries: list[AuditEntry]
    ) -> None:
        """
        A since given in a non-UTC zone means the same instant.
        """
        since = (_T0 + timedelta(hours=3)).astimezone(timezone(timedelta(hours=-7)))
        assert [e.id for e in storage.audit_entries(AuditQuery(since=since))] == ["aud_5", "aud_4"]

    def test_changes_round_trip_with_every_value_shape(self, storage: Storage) -> None:
        """
        Changes holding None, bools, ints, strings, tuples and mappings come back equal.
        """
        hook = _make_webhook()
        changes = {
            "enabled": (False, True),
            "name": ("Old", 'Néw "quoted" <b>'),
            "secret": (None, "<redacted>"),
            "categories": (("npsSubmitted",), ("npsSubmitted", "pollSubmitted")),
            "headers": ({}, {"X-Team": "<redacted>"}),
            "count": (1, 2),
        }
        written = _entry(hook.id, changes=changes)
        storage.insert_webhook(hook, audit=written)
        (got,) = _all_entries(storage)
        assert got == written
        assert got.changes["categories"][1] == ("npsSubmitted", "pollSubmitted")
        assert got.changes["headers"][1] == {"X-Team": "<redacted>"}


class OutboxQueueContract:
    """
    Tests of an :class:`~pendo_webhooks.storage.protocols.OutboxQueue`.

    Enqueueing (one delivery per event and webhook), claiming (leases, exclusive, due
    first), recording (fenced on the lease), releasing and cancelling.

    >>> "test_concurrent_claims_never_overlap" in dir(OutboxQueueContract)
    True
    """

    def test_stored_as_given(self, storage: Storage) -> None:
        """
        An enqueued delivery reads back equal, bytes of its body included.
        """
        webhook = _hook(storage)
        new = _delivery(webhook.id)
        assert storage.enqueue_deliveries([new]) == [None]
        assert storage.get_delivery(new.id) == new
        assert storage.pending_summary() == (1, _T0)

    def test_an_operations_delivery_is_stored_as_given(self, storage: Storage) -> None:
        """
        A delivery of an operations event (its category an ``OperationsCategory``) reads
        back equal, from ``get_delivery`` and from ``list_deliveries``.
        """
        webhook = _hook(storage)
        new = _delivery(webhook.id, category=OperationsCategory.DELIVERY_EXHAUSTED)
        assert storage.enqueue_deliveries([new]) == [None]
        assert storage.get_delivery(new.id) == new
        assert storage.list_deliveries(webhook_id=webhook.id) == [new]

    def test_one_delivery_per_event_and_webhook(self, storage: Storage) -> None:
        """
        A second delivery of the same event to the same webhook is skipped as a duplicate;
        the same event to another webhook is stored.
        """
        first, second = _hook(storage), _hook(storage)
        original = _delivery(first.id)
        storage.enqueue_deliveries([original])
        again = _delivery(first.id, event_id=original.event_id)
        elsewhere = _delivery(second.id, event_id=original.event_id)
        assert storage.enqueue_deliveries([again, elsewhere]) == ["duplicate", None]
        with pytest.raises(UnknownDelivery):
            storage.get_delivery(again.id)
        assert storage.get_delivery(elsewhere.id) == elsewhere

    def test_disabled_and_deleted_webhooks_get_nothing(self, storage: Storage) -> None:
        """
        Deliveries to a disabled or unknown webhook are not stored, and say why.
        """
        disabled = _hook(storage, enabled=False)
        results = storage.enqueue_deliveries([_delivery(disabled.id), _delivery("wh_gone")])
        assert results == ["disabled", "deleted"]
        assert storage.pending_summary() == (0, None)

    def test_a_taken_id_stores_nothing(self, storage: Storage) -> None:
        """
        A delivery id that is taken raises ConflictError, and none of the batch is stored.
        """
        webhook = _hook(storage)
        taken = _delivery(webhook.id)
        storage.enqueue_deliveries([taken])
        fresh = _delivery(webhook.id)
        with pytest.raises(ConflictError, match=taken.id):
            storage.enqueue_deliveries([fresh, _delivery(webhook.id, id=taken.id)])
        with pytest.raises(UnknownDelivery):
            storage.get_delivery(fresh.id)

    def test_pre_leased_deliveries_are_not_due_until_the_lease_lapses(
        self, storage: Storage
    ) -> None:
        """
        A delivery stored already claimed (dispatch's immediate attempt) is due only when
        its lease lapses, and then any worker may take it.
        """
        webhook = _hook(storage)
        leased = _delivery(
            webhook.id, lease_owner="me", lease_until=_T0 + _LEASE, next_attempt_at=_T0 + _LEASE
        )
        storage.enqueue_deliveries([leased])
        assert _claim(storage, now=_T0 + _LEASE - timedelta(microseconds=1)) == []
        (taken,) = _claim(storage, owner="other", now=_T0 + _LEASE)
        assert (taken.id, taken.lease_owner) == (leased.id, "other")

    def test_claims_due_ones_earliest_first_up_to_the_limit(self, storage: Storage) -> None:
        """
        Only deliveries due at *now* are claimed, earliest first, at most *limit*; the claim
        sets the lease and moves next_attempt_at to the lease's end.
        """
        webhook = _hook(storage)
        times = [_T0 + timedelta(seconds=s) for s in (3, 1, 2, 10)]
        rows = [_delivery(webhook.id, next_attempt_at=t) for t in times]
        storage.enqueue_deliveries(rows)
        now = _T0 + timedelta(seconds=5)
        taken = _claim(storage, now=now, limit=2)
        assert {d.id for d in taken} == {rows[1].id, rows[2].id}
        for claimed in taken:
            assert claimed.lease_owner == "w1"
            assert claimed.lease_until == claimed.next_attempt_at == now + _LEASE
            assert claimed.updated_at == now
            assert claimed.body == next(r.body for r in rows if r.id == claimed.id)
        assert [d.id for d in _claim(storage, now=now, limit=5)] == [rows[0].id]
        assert _claim(storage, now=now) == []

    def test_a_claim_is_exclusive_until_its_lease_lapses(self, storage: Storage) -> None:
        """
        Nobody else can claim a leased delivery until the lease ends; then anybody can.
        """
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id)])
        (first,) = _claim(storage, owner="w1")
        assert _claim(storage, owner="w2", now=_T0 + _LEASE - timedelta(seconds=1)) == []
        (second,) = _claim(storage, owner="w2", now=_T0 + _LEASE)
        assert second.id == first.id
        assert second.lease_owner == "w2"

    def test_claim_one_webhooks_deliveries(self, storage: Storage) -> None:
        """
        With webhook_id, only that webhook's due deliveries are claimed (a Segment batch).
        """
        mine, other = _hook(storage), _hook(storage)
        storage.enqueue_deliveries(
            [_delivery(other.id), _delivery(mine.id), _delivery(other.id), _delivery(mine.id)]
        )
        taken = _claim(storage, webhook_id=mine.id, limit=5)
        assert [d.webhook_id for d in taken] == [mine.id, mine.id]
        assert len(_claim(storage, limit=5)) == 2

    def test_concurrent_claims_never_overlap(self, storage: Storage) -> None:
        """
        Eight threads claiming at once split 200 deliveries between them without overlap.
        """
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id) for _ in range(200)])

        def drain(owner: str) -> list[str]:
            got: list[str] = []
            while batch := _claim(storage, owner=owner, limit=7):
                got.extend(d.id for d in batch)
            return got

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(drain, [f"w{i}" for i in range(8)]))
        claimed = [i for r in results for i in r]
        assert len(claimed) == len(set(claimed)) == 200

    def test_records_the_outcome_and_the_attempt(self, storage: Storage) -> None:
        """
        The lease holder's outcome is written with its attempt row, and the lease cleared.
        """
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id)])
        (claimed,) = _claim(storage)
        now = _T0 + timedelta(seconds=2)
        retry_at = now + timedelta(seconds=5)
        row = _attempt_for(claimed, started_at=_T0 + timedelta(seconds=1))
        retried = attrs.evolve(
            claimed,
            attempts=1,
            next_attempt_at=retry_at,
            updated_at=now,
            last_status=503,
            last_error="HTTP 503, retry 1 of 5 in 5s",
            lease_owner=None,
            lease_until=None,
        )
        assert storage.record_outcome(retried, row, owner="w1", now=now)
        assert storage.get_delivery(claimed.id) == retried
        assert storage.list_attempts(claimed.id) == [row]
        assert _claim(storage, now=retry_at - timedelta(microseconds=1)) == []
        (again,) = _claim(storage, now=retry_at)
        assert again.attempts == 1

    @pytest.mark.parametrize("who", ["someone else", "lapsed"])
    def test_a_lost_lease_writes_nothing(self, storage: Storage, who: str) -> None:
        """
        An outcome from a worker that no longer holds the lease (another owner, or the lease
        ran out) is refused and changes nothing: fencing against zombies.
        """
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id)])
        (claimed,) = _claim(storage)
        owner, now = ("w2", _T0) if who == "someone else" else ("w1", _T0 + _LEASE + _LEASE)
        done = _finished(claimed, DeliveryStatus.DELIVERED, now)
        assert not storage.record_outcome(done, _attempt_for(claimed), owner=owner, now=now)
        assert storage.get_delivery(claimed.id) == claimed
        assert storage.list_attempts(claimed.id) == []

    def test_a_new_claim_fences_out_the_old_owner(self, storage: Storage) -> None:
        """
        After w2 re-claims a lapsed lease, w1's late outcome is refused and w2's is kept.
        """
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id)])
        (old,) = _claim(storage, owner="w1")
        later = _T0 + _LEASE
        (new,) = _claim(storage, owner="w2", now=later)
        assert not storage.record_outcome(
            _finished(old, DeliveryStatus.DELIVERED, later), None, owner="w1", now=later
        )
        assert storage.record_outcome(
            _finished(new, DeliveryStatus.FAILED, later), None, owner="w2", now=later
        )
        assert storage.get_delivery(new.id).status is DeliveryStatus.FAILED

    def test_a_finished_delivery_is_never_claimed(self, storage: Storage) -> None:
        """
        Delivered, failed, dead and cancelled deliveries are not due, whatever the time.
        """
        webhook = _hook(storage)
        for status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.DEAD):
            assert _run_to(storage, webhook.id, status).status is status
        assert _claim(storage, now=_T0 + timedelta(days=365)) == []
        assert storage.pending_summary() == (0, None)

    def test_release_makes_own_claims_due_now(self, storage: Storage) -> None:
        """
        Released claims are due again at once; claims of other owners are left alone.
        """
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id), _delivery(webhook.id)])
        (mine,) = _claim(storage, owner="w1", limit=1)
        (theirs,) = _claim(storage, owner="w2", limit=1)
        now = _T0 + timedelta(seconds=1)
        assert storage.release_claims([mine.id, theirs.id], owner="w1", now=now) == 1
        assert storage.release_claims([], owner="w1", now=now) == 0
        released = storage.get_delivery(mine.id)
        assert (released.lease_owner, released.lease_until) == (None, None)
        assert released.next_attempt_at == now
        assert [d.id for d in _claim(storage, owner="w3", now=now)] == [mine.id]

    def test_cancel_ends_every_pending_delivery_of_a_webhook(self, storage: Storage) -> None:
        """
        Cancelling a webhook's deliveries ends the pending ones (leased too) with the reason,
        leaves finished ones and other webhooks' ones alone, and fences out the lease holder.
        """
        webhook, other = _hook(storage), _hook(storage)
        done = _run_to(storage, webhook.id, DeliveryStatus.DELIVERED)
        waiting, leased, elsewhere = (
            _delivery(webhook.id),
            _delivery(webhook.id),
            _delivery(other.id),
        )
        storage.enqueue_deliveries([leased])
        (claimed,) = _claim(storage, webhook_id=webhook.id)
        storage.enqueue_deliveries([waiting, elsewhere])
        now = _T0 + timedelta(minutes=1)
        assert storage.cancel_deliveries(webhook.id, reason="webhook disabled", now=now) == 2
        for delivery_id in (waiting.id, leased.id):
            cancelled = storage.get_delivery(delivery_id)
            assert cancelled.status is DeliveryStatus.CANCELLED
            assert (cancelled.last_error, cancelled.finished_at) == ("webhook disabled", now)
            assert cancelled.lease_owner is None
        assert storage.get_delivery(done.id) == done
        assert storage.get_delivery(elsewhere.id).status is DeliveryStatus.PENDING
        late = _finished(claimed, DeliveryStatus.DELIVERED, now)
        assert not storage.record_outcome(late, None, owner="w1", now=now)
        assert storage.get_delivery(leased.id).status is DeliveryStatus.CANCELLED

    # -- the claim count: the poison-pill limit ------------------------------------------

    def test_claims_without_an_outcome_end_the_delivery_dead(self, storage: Storage) -> None:
        """
        Claimed 3 times, each lease lapsing unrecorded: the 4th claim (``max_claims=3``)
        ends it ``dead`` with :func:`~pendo_webhooks.storage.protocols.claims_exhausted`.
        """
        new = _delivery(_hook(storage).id)
        storage.enqueue_deliveries([new])
        now = _T0
        for _ in range(3):
            (leased,) = _claim(storage, now=now, max_claims=3)
            assert (leased.status, leased.lease_owner) == (DeliveryStatus.PENDING, "w1")
            now = now + _LEASE + timedelta(seconds=1)
        (ended,) = _claim(storage, now=now, max_claims=3)
        assert ended.status is DeliveryStatus.DEAD
        assert (ended.lease_owner, ended.lease_until) == (None, None)
        stored = storage.get_delivery(new.id)
        assert stored.status is DeliveryStatus.DEAD
        assert stored.last_error == claims_exhausted(3)
        assert (stored.finished_at, stored.attempts) == (now, 0)
        assert _claim(storage, now=now + _LEASE * 2, max_claims=3) == []

    def test_without_a_claim_limit_claims_go_on(self, storage: Storage) -> None:
        storage.enqueue_deliveries([_delivery(_hook(storage).id)])
        now = _T0
        for _ in range(8):
            (leased,) = _claim(storage, now=now)
            assert leased.status is DeliveryStatus.PENDING
            now += _LEASE * 2

    def test_released_claims_do_not_count(self, storage: Storage) -> None:
        new = _delivery(_hook(storage).id)
        storage.enqueue_deliveries([new])
        for _ in range(6):
            (leased,) = _claim(storage, max_claims=1)
            assert leased.status is DeliveryStatus.PENDING
            assert storage.release_claims([new.id], owner="w1", now=_T0) == 1
        (leased,) = _claim(storage, max_claims=1)
        assert leased.status is DeliveryStatus.PENDING

    def test_claims_that_end_in_an_outcome_do_not_count(self, storage: Storage) -> None:
        new = _delivery(_hook(storage).id)
        storage.enqueue_deliveries([new])
        now = _T0
        for number in range(1, 7):
            (leased,) = _claim(storage, now=now, max_claims=1)
            assert leased.status is DeliveryStatus.PENDING
            assert storage.record_outcome(*_retried(leased, now), owner="w1", now=now)
            assert storage.get_delivery(new.id).attempts == number
        # One claim lapses unrecorded: that is the one allowed; the next ends it.
        (leased,) = _claim(storage, now=now, max_claims=1)
        assert leased.status is DeliveryStatus.PENDING
        (ended,) = _claim(storage, now=now + _LEASE * 2, max_claims=1)
        assert (ended.status, ended.attempts) == (DeliveryStatus.DEAD, 6)

    def test_a_redelivery_starts_the_claim_count_afresh(self, storage: Storage) -> None:
        new = _delivery(_hook(storage).id)
        storage.enqueue_deliveries([new])
        _claim(storage, max_claims=1)
        (ended,) = _claim(storage, now=_T0 + _LEASE * 2, max_claims=1)
        assert ended.status is DeliveryStatus.DEAD
        later = _T0 + _LEASE * 4
        storage.redeliver(new.id, now=later)
        (leased,) = _claim(storage, now=later, max_claims=1)
        assert (leased.status, leased.lease_owner) == (DeliveryStatus.PENDING, "w1")

    def test_a_delivery_stored_leased_has_used_one_claim(self, storage: Storage) -> None:
        """
        ``dispatch()`` stores its deliveries already claimed: that claim counts too.
        """
        new = _delivery(
            _hook(storage).id,
            lease_owner="host",
            lease_until=_T0 + _LEASE,
            next_attempt_at=_T0 + _LEASE,
        )
        storage.enqueue_deliveries([new])
        (ended,) = _claim(storage, now=_T0 + _LEASE * 2, max_claims=1)
        assert (ended.status, ended.last_error) == (DeliveryStatus.DEAD, claims_exhausted(1))

    def test_claim_deliveries_leases_only_those_due(self, storage: Storage) -> None:
        """
        The chunk claim: the due ones of the ids given are leased, counted like any claim;
        a finished one, one leased by another worker and an unknown id are left alone.
        """
        webhook = _hook(storage)
        due, leased, done = (_delivery(webhook.id) for _ in range(3))
        storage.enqueue_deliveries([due, leased, done])
        _claim(storage)  # all three, by w1
        assert storage.release_claims([due.id, done.id], owner="w1", now=_T0) == 2
        (mine,) = storage.claim_deliveries(
            [done.id], owner="w2", now=_T0, lease_until=_T0 + _LEASE
        )
        finished = _finished(mine, DeliveryStatus.DELIVERED, _T0)
        assert storage.record_outcome(finished, None, owner="w2", now=_T0)
        got = storage.claim_deliveries(
            [due.id, leased.id, done.id, "dlv_unknown", due.id],
            owner="w3",
            now=_T0,
            lease_until=_T0 + _LEASE,
            max_claims=3,
        )
        assert [(d.id, d.lease_owner, d.lease_until) for d in got] == [
            (due.id, "w3", _T0 + _LEASE)
        ]
        assert storage.get_delivery(leased.id).lease_owner == "w1"
        assert storage.claim_deliveries([], owner="w3", now=_T0, lease_until=_T0 + _LEASE) == []

    def test_claim_deliveries_ends_an_exhausted_delivery(self, storage: Storage) -> None:
        new = _delivery(_hook(storage).id)
        storage.enqueue_deliveries([new])
        _claim(storage, max_claims=1)
        later = _T0 + _LEASE * 2
        (ended,) = storage.claim_deliveries(
            [new.id], owner="w2", now=later, lease_until=later + _LEASE, max_claims=1
        )
        assert (ended.status, ended.last_error) == (DeliveryStatus.DEAD, claims_exhausted(1))
        assert storage.get_delivery(new.id).status is DeliveryStatus.DEAD


class DeliveryLogContract:
    """
    Tests of a :class:`~pendo_webhooks.storage.protocols.DeliveryLog`: reads, redelivery, purge.

    They move deliveries along with the queue's methods too, so the store must be a whole
    :class:`~pendo_webhooks.storage.protocols.OutboxStore`.

    >>> "test_purge_empties_old_bodies_and_excerpts_only" in dir(DeliveryLogContract)
    True
    """

    def test_unknown_delivery(self, storage: Storage) -> None:
        """
        Reading an unknown delivery raises UnknownDelivery; its attempts are an empty list.
        """
        with pytest.raises(UnknownDelivery, match="dlv_nope"):
            storage.get_delivery("dlv_nope")
        assert storage.list_attempts("dlv_nope") == []

    def test_lists_newest_first_with_filters(self, storage: Storage) -> None:
        """
        Deliveries list the most recently stored first; webhook, status and limit filter.
        """
        webhook, other = _hook(storage), _hook(storage)
        first = _run_to(storage, webhook.id, DeliveryStatus.DELIVERED)
        second, third = _delivery(other.id), _delivery(webhook.id)
        storage.enqueue_deliveries([second])
        storage.enqueue_deliveries([third])
        assert [d.id for d in storage.list_deliveries()] == [third.id, second.id, first.id]
        assert [d.id for d in storage.list_deliveries(webhook_id=webhook.id)] == [
            third.id,
            first.id,
        ]
        assert [d.id for d in storage.list_deliveries(status=DeliveryStatus.DELIVERED)] == [
            first.id
        ]
        assert [d.id for d in storage.list_deliveries(limit=1)] == [third.id]

    def test_attempts_in_order(self, storage: Storage) -> None:
        """
        A delivery's attempts come back first first, each as recorded.
        """
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id)])
        rows = []
        now = _T0
        for number in (1, 2, 3):
            (claimed,) = _claim(storage, now=now)
            row = _attempt_for(claimed, error_kind="timeout", status_code=None, detail="slow")
            now += timedelta(seconds=1)
            retried = attrs.evolve(claimed, attempts=number, next_attempt_at=now)
            assert storage.record_outcome(retried, row, owner="w1", now=now)
            rows.append(row)
        assert storage.list_attempts(claimed.id) == rows
        assert [a.number for a in rows] == [1, 2, 3]

    def test_a_finished_delivery_starts_over(self, storage: Storage) -> None:
        """
        Redelivering a finished delivery makes it pending and due now with a fresh retry
        budget (attempt_base = attempts), the same body and event id.
        """
        webhook = _hook(storage)
        dead = _run_to(storage, webhook.id, DeliveryStatus.DEAD)
        now = _T0 + timedelta(hours=1)
        again = storage.redeliver(dead.id, now=now)
        assert again == attrs.evolve(
            dead,
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            attempt_base=1,
            redelivered_at=now,
            finished_at=None,
            updated_at=now,
        )
        assert storage.get_delivery(dead.id) == again
        assert [d.id for d in _claim(storage, now=now)] == [dead.id]

    def test_refusals(self, storage: Storage) -> None:
        """
        Redelivering an unknown, pending or purged delivery raises.
        """
        webhook, other = _hook(storage), _hook(storage)
        pending = _delivery(other.id)
        storage.enqueue_deliveries([pending])
        with pytest.raises(UnknownDelivery):
            storage.redeliver("dlv_nope", now=_T0)
        with pytest.raises(ConflictError, match="still pending"):
            storage.redeliver(pending.id, now=_T0)
        done = _run_to(storage, webhook.id, DeliveryStatus.FAILED)
        storage.purge(_T0 + timedelta(days=1))
        with pytest.raises(ConflictError, match="purged"):
            storage.redeliver(done.id, now=_T0)

    def test_redeliver_failed_in_a_window(self, storage: Storage) -> None:
        """
        Only the webhook's failed and dead deliveries created in [since, until) come back.
        """
        webhook, other = _hook(storage), _hook(storage)
        at = [_T0 + timedelta(hours=h) for h in range(4)]
        failed = _run_to(storage, webhook.id, DeliveryStatus.FAILED, created_at=at[1])
        dead = _run_to(storage, webhook.id, DeliveryStatus.DEAD, created_at=at[2])
        _run_to(storage, webhook.id, DeliveryStatus.DEAD, created_at=at[0])
        _run_to(storage, webhook.id, DeliveryStatus.DEAD, created_at=at[3])
        _run_to(storage, webhook.id, DeliveryStatus.DELIVERED, created_at=at[1])
        _run_to(storage, other.id, DeliveryStatus.DEAD, created_at=at[1])
        now = _T0 + timedelta(days=1)
        count = storage.redeliver_failed(webhook.id, since=at[1], until=at[3], now=now)
        assert count == 2
        pending = {d.id for d in storage.list_deliveries(status=DeliveryStatus.PENDING)}
        assert pending == {failed.id, dead.id}

    def test_deliveries_are_counted_by_webhook_status_and_time(self, storage: Storage) -> None:
        """
        The optional CountingDeliveryLog: by webhook, in one status, finished at or after
        *since* (a pending delivery by when it last changed). Skipped for a store without it.
        """
        if not capabilities(storage).delivery_counts:
            pytest.skip("the store counts no deliveries (CountingDeliveryLog is optional)")
        store = cast(CountingDeliveryLog, storage)
        webhook, other = _hook(storage), _hook(storage)
        hour = timedelta(hours=1)
        _run_to(storage, webhook.id, DeliveryStatus.DEAD)  # finished at _T0 + 1s
        _run_to(storage, webhook.id, DeliveryStatus.DEAD, next_attempt_at=_T0 + hour)
        _run_to(storage, other.id, DeliveryStatus.DEAD, next_attempt_at=_T0 + 2 * hour)
        _run_to(storage, webhook.id, DeliveryStatus.DELIVERED, next_attempt_at=_T0 + 2 * hour)
        later = _T0 + 3 * hour
        storage.enqueue_deliveries([_delivery(other.id, created_at=_T0, updated_at=later)])
        second = timedelta(seconds=1)
        dead = DeliveryStatus.DEAD
        assert store.count_by_webhook(status=dead, since=_T0) == {webhook.id: 2, other.id: 1}
        at = _T0 + hour + second  # the second dead delivery's finished_at: counted
        assert store.count_by_webhook(status=dead, since=at) == {webhook.id: 1, other.id: 1}
        elsewhere = at.astimezone(timezone(timedelta(hours=-5)))
        assert store.count_by_webhook(status=dead, since=elsewhere) == {
            webhook.id: 1,
            other.id: 1,
        }
        after = at + timedelta(microseconds=1)
        assert store.count_by_webhook(status=dead, since=after) == {other.id: 1}
        delivered = DeliveryStatus.DELIVERED
        assert store.count_by_webhook(status=delivered, since=_T0) == {webhook.id: 1}
        pending = DeliveryStatus.PENDING
        assert store.count_by_webhook(status=pending, since=later) == {other.id: 1}
        assert store.count_by_webhook(status=pending, since=later + second) == {}
        assert store.count_by_webhook(status=DeliveryStatus.FAILED, since=_T0) == {}

    def test_failed_and_redelivered_deliveries_are_counted_where_they_stand(
        self, storage: Storage
    ) -> None:
        """
        CountingDeliveryLog: a failed delivery counts as failed, not dead; a dead one
        redelivered counts as pending (by its redelivery), no longer as dead; one that
        finishes again counts by its new finish. Skipped for a store without it.
        """
        if not capabilities(storage).delivery_counts:
            pytest.skip("the store counts no deliveries (CountingDeliveryLog is optional)")
        store = cast(CountingDeliveryLog, storage)
        webhook = _hook(storage)
        dead, failed = DeliveryStatus.DEAD, DeliveryStatus.FAILED
        first = _run_to(storage, webhook.id, dead)
        _run_to(storage, webhook.id, dead)
        _run_to(storage, webhook.id, failed)
        assert store.count_by_webhook(status=failed, since=_T0) == {webhook.id: 1}
        assert store.count_by_webhook(status=dead, since=_T0) == {webhook.id: 2}
        later = _T0 + timedelta(days=1)
        storage.redeliver(first.id, now=later)
        assert store.count_by_webhook(status=dead, since=_T0) == {webhook.id: 1}
        pending = DeliveryStatus.PENDING
        assert store.count_by_webhook(status=pending, since=later) == {webhook.id: 1}
        (claimed,) = _claim(storage, now=later, webhook_id=webhook.id)
        again = later + timedelta(seconds=1)
        done = _finished(claimed, dead, again)
        assert storage.record_outcome(done, _attempt_for(claimed), owner="w1", now=again)
        assert store.count_by_webhook(status=dead, since=again) == {webhook.id: 1}
        assert store.count_by_webhook(status=dead, since=_T0) == {webhook.id: 2}
        assert store.count_by_webhook(status=failed, since=again) == {}

    def test_cancelled_deliveries_without_attempts_are_purged_too(self, storage: Storage) -> None:
        """
        A cancelled delivery (no attempt rows) is purged like any finished one.
        """
        webhook = _hook(storage)
        waiting = _delivery(webhook.id)
        storage.enqueue_deliveries([waiting])
        storage.cancel_deliveries(webhook.id, reason="webhook deleted", now=_T0)
        assert storage.purge(_T0 + timedelta(seconds=1)) == 1
        assert storage.get_delivery(waiting.id).body == b""

    def test_purge_empties_old_bodies_and_excerpts_only(self, storage: Storage) -> None:
        """
        Purging empties the body and response excerpts of deliveries finished before the
        cut-off, keeps their metadata, and leaves newer and pending deliveries alone.
        """
        webhook = _hook(storage)
        old = _run_to(storage, webhook.id, DeliveryStatus.DELIVERED)
        young = _run_to(
            storage, webhook.id, DeliveryStatus.FAILED, next_attempt_at=_T0 + timedelta(days=2)
        )
        waiting = _delivery(webhook.id)
        storage.enqueue_deliveries([waiting])
        assert storage.purge(_T0 + timedelta(days=1)) == 1
        purged = storage.get_delivery(old.id)
        assert purged == attrs.evolve(old, body=b"", purged=True)
        (row,) = storage.list_attempts(old.id)
        assert row.response_excerpt == b""
        assert row.status_code == 503
        assert storage.get_delivery(young.id) == young
        assert storage.list_attempts(young.id)[0].response_excerpt != b""
        assert storage.get_delivery(waiting.id) == waiting
        assert storage.purge(_T0 + timedelta(days=1)) == 0

    # -- exchanges: one HTTP request, many deliveries (a Segment batch) -------------------

    def _one_request_for_three(self, storage: Storage) -> tuple[list[Delivery], str]:
        # Three deliveries sent in one request: two delivered on their first attempt, one
        # (redelivered earlier: attempt 3) told to retry; and a fourth, in the same request,
        # whose lease was lost meanwhile. Returns the three recorded and the exchange id.
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id) for _ in range(4)])
        claimed = _claim(storage)
        now = _T0 + timedelta(seconds=2)
        exchange_id = "exc_shared-by-three"
        facts: dict[str, object] = {
            "exchange_id": exchange_id,
            "started_at": _T0 + timedelta(seconds=1),
            "duration": 0.5,
            "status_code": 200,
            "response_excerpt": b'{"success":true} \xff',
        }
        outcomes: list[tuple[Delivery, Attempt | None]] = []
        for n, delivery in enumerate(claimed):
            if n < 2:
                done = _finished(delivery, DeliveryStatus.DELIVERED, now)
                attempt = _attempt_for(
                    delivery, verdict=Verdict.DELIVERED, reason="HTTP 200", **facts
                )
            else:
                done = attrs.evolve(_retried(delivery, now)[0], attempts=3)
                attempt = _attempt_for(delivery, number=3, reason="HTTP 200, retry", **facts)
            outcomes.append((done, attempt))
        lost = claimed[3]
        assert storage.release_claims([lost.id], owner="w1", now=_T0) == 1
        _claim(storage, owner="w2", now=_T0)
        assert storage.record_outcomes(outcomes, owner="w1", now=now) == [True] * 3 + [False]
        return claimed[:3], exchange_id

    def test_one_request_is_one_exchange(self, storage: Storage) -> None:
        """
        Attempts recorded with one ``exchange_id`` (one request for several deliveries)
        read back with it and the same exchange facts, each with its own number, verdict
        and reason; the exchange lists them, by delivery id, and not the one whose lease
        was lost.
        """
        sent, exchange_id = self._one_request_for_three(storage)
        (first,), (second,), (third,) = (storage.list_attempts(d.id) for d in sent)
        assert {a.exchange_id for a in (first, second, third)} == {exchange_id}
        facts = {
            (a.started_at, a.duration, a.status_code, a.error_kind, a.detail, a.response_excerpt)
            for a in (first, second, third)
        }
        assert facts == {
            (_T0 + timedelta(seconds=1), 0.5, 200, None, None, b'{"success":true} \xff')
        }
        assert [(a.number, a.verdict) for a in (first, second, third)] == [
            (1, Verdict.DELIVERED),
            (1, Verdict.DELIVERED),
            (3, Verdict.RETRY),
        ]
        listed = storage.list_exchange_attempts(exchange_id)
        assert listed == sorted([first, second, third], key=lambda a: a.delivery_id)
        assert storage.list_exchange_attempts("exc_nope") == []

    def test_each_url_attempt_is_its_own_exchange(self, storage: Storage) -> None:
        """
        A delivery's attempts, each its own request, have an exchange each: listing one of
        them gives that attempt alone.
        """
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id)])
        now = _T0
        for _ in range(2):
            (claimed,) = _claim(storage, now=now)
            assert storage.record_outcome(*_retried(claimed, now), owner="w1", now=now)
            now += timedelta(seconds=1)
        first, second = storage.list_attempts(claimed.id)
        assert first.exchange_id != second.exchange_id
        assert storage.list_exchange_attempts(first.exchange_id) == [first]
        assert storage.list_exchange_attempts(second.exchange_id) == [second]

    def test_shared_outcomes_share_one_exchange(self, storage: Storage) -> None:
        """
        A batch whose deliveries had different attempt counts (two groups of outcomes)
        is still one exchange: every delivery of every group gets the group's attempt
        with the batch's one exchange id and facts. Recorded through
        :class:`~pendo_webhooks.storage.protocols.SharedOutcomesOutbox` by a store that
        has it, else as the dispatcher then does: each delivery's own copy, all at once.
        """
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id) for _ in range(3)])
        claimed = _claim(storage)
        now = _T0 + timedelta(seconds=2)
        facts: dict[str, object] = {"exchange_id": "exc_one-batch", "started_at": now}
        done = _finished(claimed[0], DeliveryStatus.DELIVERED, now)
        retried = attrs.evolve(_retried(claimed[2], now)[0], attempts=2)
        groups = [
            (
                [claimed[0].id, claimed[1].id],
                done,
                _attempt_for(claimed[0], verdict=Verdict.DELIVERED, reason="HTTP 200", **facts),
            ),
            ([claimed[2].id], retried, _attempt_for(claimed[2], number=2, **facts)),
        ]
        if capabilities(storage).shared_outcomes:
            record = storage.record_shared_outcomes  # type: ignore[attr-defined]
            assert record(groups, owner="w1", now=now) == {d.id for d in claimed}
        else:
            outcomes: list[tuple[Delivery, Attempt | None]] = [
                (attrs.evolve(after, id=i), attrs.evolve(attempt, delivery_id=i))
                for ids, after, attempt in groups
                for i in ids
            ]
            assert storage.record_outcomes(outcomes, owner="w1", now=now) == [True] * 3
        listed = storage.list_exchange_attempts("exc_one-batch")
        assert [(a.delivery_id, a.number) for a in listed] == sorted(
            [(claimed[0].id, 1), (claimed[1].id, 1), (claimed[2].id, 2)]
        )
        assert {(a.started_at, a.status_code, a.response_excerpt) for a in listed} == {
            (now, 503, b"busy \xff" * 10)
        }
        for delivery in claimed:
            assert [a.exchange_id for a in storage.list_attempts(delivery.id)] == ["exc_one-batch"]

    def test_purge_keeps_a_shared_exchange_for_those_not_purged(self, storage: Storage) -> None:
        """
        Purging the deliveries of a shared exchange that finished before the cut-off
        empties their attempts' excerpt only: one still pending (or finished later) keeps
        it, with every other exchange fact, until it is purged too.
        """
        (one, two, three), exchange_id = self._one_request_for_three(storage)
        later = _T0 + timedelta(days=2)
        (claimed,) = storage.claim_deliveries(
            [three.id], owner="w1", now=later, lease_until=later + _LEASE
        )
        finished = _finished(claimed, DeliveryStatus.DELIVERED, later)
        assert storage.record_outcome(finished, _attempt_for(claimed), owner="w1", now=later)
        assert storage.purge(_T0 + timedelta(days=1)) == 2
        excerpts = {
            a.delivery_id: a.response_excerpt for a in storage.list_exchange_attempts(exchange_id)
        }
        assert excerpts == {one.id: b"", two.id: b"", three.id: b'{"success":true} \xff'}
        kept = storage.list_attempts(three.id)[0]
        assert (kept.exchange_id, kept.status_code, kept.response_excerpt) == (
            exchange_id,
            200,
            b'{"success":true} \xff',
        )
        purged = storage.list_attempts(one.id)[0]
        assert (purged.exchange_id, purged.status_code, purged.duration) == (exchange_id, 200, 0.5)
        assert storage.purge(later + timedelta(seconds=2)) == 1
        assert {a.response_excerpt for a in storage.list_exchange_attempts(exchange_id)} == {b""}
        assert [a.number for a in storage.list_attempts(three.id)] == [3, 4]


class FirstSeenStoreContract:
    """
    Tests of a :class:`~pendo_webhooks.storage.protocols.FirstSeenStore`.

    >>> "test_record_known_never_downgrades" in dir(FirstSeenStoreContract)
    True
    """

    def test_claims_return_only_what_is_new(self, storage: Storage) -> None:
        """
        A claim returns the keys that were unknown or API-only, and marks them seen.
        """
        assert storage.record_known(["k:api"], at=_T0) == 1
        assert storage.claim_first_seen(["k:1", "k:api", "k:1"], at=_T0) == {"k:1", "k:api"}
        assert storage.claim_first_seen(["k:1", "k:api", "k:2"], at=_T0) == {"k:2"}
        assert storage.claim_first_seen([], at=_T0) == set()
        assert [storage.first_seen_origin(k) for k in ("k:1", "k:api", "k:none")] == [
            "app",
            "app",
            None,
        ]

    def test_record_known_never_downgrades(self, storage: Storage) -> None:
        """
        Recording a seen key as API-created changes nothing; new ones are counted once.
        """
        storage.claim_first_seen(["k:1"], at=_T0)
        assert storage.record_known(["k:1", "k:2", "k:2"], at=_T0) == 1
        assert storage.first_seen_origin("k:1") == "app"
        assert storage.first_seen_origin("k:2") == "api"
        assert storage.record_known([], at=_T0) == 0

    def test_large_batches(self, storage: Storage) -> None:
        """
        Claims of more keys than one statement binds are split and still exact.
        """
        keys = [f"k:{i}" for i in range(1300)]
        storage.record_known(keys[::3], at=_T0)
        assert storage.claim_first_seen(keys[:700], at=_T0) == set(keys[:700])
        assert storage.claim_first_seen(keys, at=_T0) == set(keys[700:])
        assert storage.claim_first_seen(keys, at=_T0) == set()

    def test_any_text_is_a_key(self, storage: Storage) -> None:
        """
        Keys are opaque: quotes, separators, non-ASCII and NUL survive.
        """
        keys = ["v:'; DROP TABLE first_seen; --", "v:\u4e2d\U0001f600", "v:a\x00b", "v:"]
        assert storage.claim_first_seen(keys, at=_T0) == set(keys)
        assert storage.claim_first_seen(keys, at=_T0) == set()


class ExclusionStoreContract:
    """
    Tests of an :class:`~pendo_webhooks.storage.protocols.ExclusionStore`.

    >>> "test_each_change_bumps_the_version" in dir(ExclusionStoreContract)
    True
    """

    def test_insert_get_list_delete(self, storage: Storage) -> None:
        """
        Exclusions round-trip, list oldest first then by id, and delete for good.
        """
        b = _exclusion("exc_b", "account", "acme", minutes=1)
        a = _exclusion("exc_a", "visitor", "*@acme.com", minutes=1)
        c = _exclusion("exc_c", "ip", "10.0.0.0/8")
        for item in (b, a, c):
            storage.insert_exclusion(item, audit=_exclusion_entry(item.id))
        assert storage.get_exclusion("exc_a") == a
        assert storage.list_exclusions() == [c, a, b]
        storage.delete_exclusion("exc_a", audit=_exclusion_entry("exc_a", "exclusion_remove"))
        assert storage.list_exclusions() == [c, b]
        with pytest.raises(NotFound):
            storage.get_exclusion("exc_a")
        with pytest.raises(NotFound, match="exc_a"):
            storage.delete_exclusion("exc_a", audit=_exclusion_entry("exc_a", "exclusion_remove"))

    def test_each_change_bumps_the_version(self, storage: Storage) -> None:
        """
        The version moves with every insert and delete, and not on reads or failures.
        """
        versions = [storage.exclusions_version()]
        storage.insert_exclusion(
            _exclusion("exc_1", "visitor", "v"), audit=_exclusion_entry("exc_1")
        )
        versions.append(storage.exclusions_version())
        storage.list_exclusions()
        with pytest.raises(ConflictError):
            storage.insert_exclusion(
                _exclusion("exc_2", "visitor", "v"), audit=_exclusion_entry("exc_2")
            )
        versions.append(storage.exclusions_version())
        storage.delete_exclusion("exc_1", audit=_exclusion_entry("exc_1", "exclusion_remove"))
        versions.append(storage.exclusions_version())
        assert versions[0] != versions[1] == versions[2] != versions[3]
        assert len(set(versions)) == 3

    def test_duplicates_conflict_and_write_nothing(self, storage: Storage) -> None:
        """
        A taken id or an equal rule raises ConflictError; no row and no audit entry is written.
        """
        storage.insert_exclusion(
            _exclusion("exc_1", "visitor", "v"), audit=_exclusion_entry("exc_1")
        )
        with pytest.raises(ConflictError, match="already has visitor 'v' \\(exc_1\\)"):
            storage.insert_exclusion(
                _exclusion("exc_2", "visitor", "v"), audit=_exclusion_entry("exc_2")
            )
        with pytest.raises(ConflictError, match="id 'exc_1' already exists"):
            storage.insert_exclusion(
                _exclusion("exc_1", "visitor", "w"), audit=_exclusion_entry("exc_3")
            )
        assert [e.id for e in storage.list_exclusions()] == ["exc_1"]
        assert [e.id for e in storage.audit_entries(AuditQuery())] == ["aud_exc_1_exclusion_add"]

    def test_audit_is_written_with_the_change(self, storage: Storage) -> None:
        """
        The audit entry passed with a change is in the log afterwards.
        """
        storage.insert_exclusion(
            _exclusion("exc_1", "ip", "10.0.0.0/8"), audit=_exclusion_entry("exc_1")
        )
        storage.delete_exclusion("exc_1", audit=_exclusion_entry("exc_1", "exclusion_remove"))
        actions = [e.action for e in storage.audit_entries(AuditQuery(webhook_id="exc_1"))]
        assert actions == ["exclusion_remove", "exclusion_add"]


class EnqueueFirstSeenContract:
    """
    Tests of ``Storage.claim_first_seen_and_enqueue``: a first-seen claim and the
    deliveries it fires, in one transaction.

    >>> "test_an_error_inside_leaves_neither" in dir(EnqueueFirstSeenContract)
    True
    """

    def test_claims_then_stores_what_the_claimed_keys_fire(self, storage: Storage) -> None:
        """
        The callback gets only the keys this call claimed ("api" ones included); what it
        returns is stored; a key claimed before is neither passed on nor claimed again.
        """
        webhook = _hook(storage)
        storage.record_known(["k:api"], at=_T0)
        asked: list[set[str]] = []
        made: dict[str, Delivery] = {}

        def deliveries(claimed: set[str]) -> list[Delivery]:
            asked.append(set(claimed))
            made.update({key: _delivery(webhook.id) for key in sorted(claimed)})
            return [made[key] for key in sorted(claimed)]

        keys = ["k:1", "k:api", "k:1"]
        assert storage.claim_first_seen_and_enqueue(keys, at=_T0, deliveries=deliveries) == (
            {"k:1", "k:api"},
            [None, None],
        )
        assert storage.first_seen_origin("k:api") == "app"
        assert storage.claim_first_seen_and_enqueue(
            ["k:1", "k:2"], at=_T0, deliveries=deliveries
        ) == ({"k:2"}, [None])
        assert asked == [{"k:1", "k:api"}, {"k:2"}]
        for stored in made.values():
            assert storage.get_delivery(stored.id) == stored

    def test_nothing_new_calls_nothing(self, storage: Storage) -> None:
        """
        With no key to claim, the callback is not called and nothing is stored.
        """

        def refuse(claimed: set[str]) -> list[Delivery]:
            raise AssertionError(f"called with {claimed}")  # pragma: no cover - a store that fails

        storage.claim_first_seen(["k:1"], at=_T0)
        assert storage.claim_first_seen_and_enqueue(["k:1"], at=_T0, deliveries=refuse) == (
            set(),
            [],
        )
        assert storage.claim_first_seen_and_enqueue([], at=_T0, deliveries=refuse) == (set(), [])
        assert storage.pending_summary() == (0, None)

    def test_an_error_inside_leaves_neither(self, storage: Storage) -> None:
        """
        An error raised inside the transaction (after the claim, before the deliveries are
        written) leaves no key claimed and nothing stored; the next call claims them.
        """
        webhook = _hook(storage)

        def locked(claimed: set[str]) -> list[Delivery]:
            raise StorageError("database is locked")

        with pytest.raises(StorageError, match="locked"):
            storage.claim_first_seen_and_enqueue(["k:1", "k:2"], at=_T0, deliveries=locked)
        assert storage.first_seen_origin("k:1") is None
        assert storage.first_seen_origin("k:2") is None
        later = _delivery(webhook.id)
        claimed, skipped = storage.claim_first_seen_and_enqueue(
            ["k:1", "k:2"], at=_T0, deliveries=lambda claimed: [later]
        )
        assert (claimed, skipped) == ({"k:1", "k:2"}, [None])
        assert storage.get_delivery(later.id) == later

    def test_a_taken_delivery_id_claims_nothing(self, storage: Storage) -> None:
        """
        A delivery id already taken raises ConflictError, and the keys stay unclaimed.
        """
        webhook = _hook(storage)
        taken = _delivery(webhook.id)
        storage.enqueue_deliveries([taken])
        fresh = _delivery(webhook.id)
        with pytest.raises(ConflictError, match=taken.id):
            storage.claim_first_seen_and_enqueue(
                ["k:1"],
                at=_T0,
                deliveries=lambda claimed: [fresh, _delivery(webhook.id, id=taken.id)],
            )
        assert storage.first_seen_origin("k:1") is None
        with pytest.raises(UnknownDelivery):
            storage.get_delivery(fresh.id)

    def test_skipped_deliveries_say_why_and_the_claim_stands(self, storage: Storage) -> None:
        """
        A delivery to a disabled or deleted webhook is skipped, as by enqueue_deliveries;
        the keys are claimed all the same (the event fired; no webhook wanted it).
        """
        disabled = _hook(storage, enabled=False)
        result = storage.claim_first_seen_and_enqueue(
            ["k:1"],
            at=_T0,
            deliveries=lambda claimed: [_delivery(disabled.id), _delivery("wh_gone")],
        )
        assert result == ({"k:1"}, ["disabled", "deleted"])
        assert storage.first_seen_origin("k:1") == "app"
        assert storage.pending_summary() == (0, None)

    def test_a_host_connection_is_refused_where_it_cannot_be_used(self, storage: Storage) -> None:
        """
        Stores other than PostgreSQL refuse *connection* before writing anything.
        """
        if capabilities(storage).host_connection:
            pytest.skip("a store that writes through a host connection: test it on its own")
        with pytest.raises(ConfigurationError, match="connection"):
            storage.claim_first_seen_and_enqueue(
                ["k:1"], at=_T0, deliveries=lambda claimed: [], connection=object()
            )
        assert storage.first_seen_origin("k:1") is None

    def test_concurrent_calls_claim_each_key_once(self, storage: Storage) -> None:
        """
        Threads racing over the same keys: each key is claimed by exactly one call, and
        exactly one delivery per key is stored.
        """
        webhook = _hook(storage)
        keys = [f"k:{n}" for n in range(40)]

        def race(offset: int) -> set[str]:
            mine = keys[offset:] + keys[:offset]
            claimed, _ = storage.claim_first_seen_and_enqueue(
                mine,
                at=_T0,
                deliveries=lambda claimed: [
                    _delivery(webhook.id, event_id=f"{int(key[2:]):040x}")
                    for key in sorted(claimed)
                ],
            )
            return claimed

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(race, [0, 10, 20, 30]))
        assert sorted(k for claimed in results for k in claimed) == sorted(keys)
        assert len(storage.list_deliveries(limit=1000)) == len(keys)


def _health_store(storage: Storage) -> HealthStore:
    if not capabilities(storage).webhook_health:
        pytest.skip("the store keeps no webhook health (HealthStore is optional)")
    return cast(HealthStore, storage)


class HealthStoreContract:
    """
    The optional :class:`~pendo_webhooks.storage.protocols.HealthStore`: compare-and-set
    health rows, held claims, and the paced release of a backlog. Skipped for a store
    without it.

    >>> "test_only_one_of_concurrent_writers_wins" in dir(HealthStoreContract)
    True
    """

    def test_health_round_trips_by_compare_and_set(self, storage: Storage) -> None:
        store = _health_store(storage)
        assert store.get_webhook_health("wh_none") is None
        later = _T0 + timedelta(hours=1)
        health = WebhookHealth(
            webhook_id="wh_1",
            failing_since=_T0,
            last_success_at=_T0 - timedelta(days=1),
            last_failure_at=later,
            failures=7,
            streak=6,
            outage_since=later,
            next_probe_at=later + timedelta(minutes=1),
            probes=2,
            probe_delivery="dlv_9",
            probe_owner="w1",
            probe_until=later + _LEASE,
            version=99,  # ignored: the store counts
        )
        assert store.put_webhook_health(health, expected_version=0)
        stored = store.get_webhook_health("wh_1")
        assert stored == attrs.evolve(health, version=1)
        assert stored is not None
        assert stored.next_probe_at is not None
        assert stored.next_probe_at.tzinfo == timezone.utc
        assert not store.put_webhook_health(health, expected_version=0)
        blank = WebhookHealth(webhook_id="wh_1")
        assert not store.put_webhook_health(blank, expected_version=2)
        assert store.get_webhook_health("wh_1") == attrs.evolve(health, version=1)
        assert store.put_webhook_health(blank, expected_version=1)
        assert store.get_webhook_health("wh_1") == attrs.evolve(blank, version=2)

    def test_many_webhooks_health_in_one_read(self, storage: Storage) -> None:
        """
        The optional BulkHealthStore: what get_webhook_health gives for each id that has a
        row, and nothing for one without. Skipped for a store without it.
        """
        store = _health_store(storage)
        if not capabilities(storage).bulk_health:
            pytest.skip("the store has no bulk health read (BulkHealthStore is optional)")
        bulk = cast(BulkHealthStore, storage)
        assert bulk.health_of([]) == {}
        assert bulk.health_of(["wh_none"]) == {}
        failing = WebhookHealth(
            webhook_id="wh_1", failing_since=_T0, last_failure_at=_T0, failures=2, streak=2
        )
        assert store.put_webhook_health(failing, expected_version=0)
        assert store.put_webhook_health(WebhookHealth(webhook_id="wh_2"), expected_version=0)
        assert store.put_webhook_health(failing, expected_version=1)
        ids = [f"wh_{n}" for n in range(1, 1200)]  # more than a statement's parameters
        found = bulk.health_of(ids)
        assert found == {
            "wh_1": store.get_webhook_health("wh_1"),
            "wh_2": store.get_webhook_health("wh_2"),
        }
        assert found["wh_1"].version == 2
        assert found["wh_1"].failing_since is not None
        assert found["wh_1"].failing_since.tzinfo == timezone.utc
        assert bulk.health_of({"wh_2", "wh_none"}) == {
            "wh_2": WebhookHealth(webhook_id="wh_2", version=1)
        }

    def test_only_one_of_concurrent_writers_wins(self, storage: Storage) -> None:
        store = _health_store(storage)
        assert store.put_webhook_health(WebhookHealth(webhook_id="wh_1"), expected_version=0)

        def take(owner: int) -> bool:
            taken = WebhookHealth(webhook_id="wh_1", probe_owner=f"w{owner}")
            return store.put_webhook_health(taken, expected_version=1)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(take, range(8)))
        assert results.count(True) == 1
        stored = store.get_webhook_health("wh_1")
        assert stored is not None
        assert (stored.version, stored.probe_owner) == (2, f"w{results.index(True)}")

    def test_held_claims_come_back_later_and_do_not_count(self, storage: Storage) -> None:
        store = _health_store(storage)
        webhook = _hook(storage)
        storage.enqueue_deliveries([_delivery(webhook.id), _delivery(webhook.id)])
        (mine,) = _claim(storage, owner="w1", limit=1)
        (theirs,) = _claim(storage, owner="w2", limit=1)
        until = _T0 + timedelta(hours=6)
        assert store.hold_claims([mine.id, theirs.id], owner="w1", now=_T0, until=until) == 1
        assert store.hold_claims([], owner="w1", now=_T0, until=until) == 0
        held = storage.get_delivery(mine.id)
        assert (held.lease_owner, held.lease_until, held.next_attempt_at) == (None, None, until)
        assert (held.status, held.attempts) == (DeliveryStatus.PENDING, 0)
        assert storage.list_attempts(mine.id) == []
        assert storage.get_delivery(theirs.id).lease_owner == "w2"
        early = _claim(storage, owner="w3", now=until - timedelta(seconds=1))
        assert [d.id for d in early] == [theirs.id]  # its lease lapsed; mine is held
        for _ in range(4):  # held claims are not counted: never dead for it
            (again,) = _claim(storage, owner="w3", now=until, max_claims=1)
            assert again.status is DeliveryStatus.PENDING
            assert store.hold_claims([mine.id], owner="w3", now=until, until=until) == 1

    def test_respread_orders_by_attempts_and_skips_live_leases(self, storage: Storage) -> None:
        store = _health_store(storage)
        webhook, other = _hook(storage), _hook(storage)
        tried, fresh, leased, lapsed = (_delivery(webhook.id) for _ in range(4))
        elsewhere = _delivery(other.id)
        storage.enqueue_deliveries([tried, fresh, leased, lapsed, elsewhere])
        (claimed,) = storage.claim_deliveries(
            [tried.id], owner="w1", now=_T0, lease_until=_T0 + _LEASE
        )
        assert storage.record_outcome(*_retried(claimed, _T0), owner="w1", now=_T0)
        storage.claim_deliveries([lapsed.id], owner="w1", now=_T0, lease_until=_T0 + _LEASE)
        now = _T0 + _LEASE * 2
        storage.claim_deliveries([leased.id], owner="w2", now=now, lease_until=now + _LEASE)
        start, step = now + timedelta(minutes=1), timedelta(milliseconds=100)
        moved = store.respread_pending(webhook.id, start=start, spacing=step, now=now)
        assert sorted(moved) == sorted([fresh.id, lapsed.id, tried.id])
        first, second = sorted([fresh.id, lapsed.id])
        expected = {first: start, second: start + step, tried.id: start + step * 2}
        for delivery_id, due in expected.items():
            stored = storage.get_delivery(delivery_id)
            assert (stored.next_attempt_at, stored.lease_owner) == (due, None)
        assert storage.get_delivery(leased.id).lease_owner == "w2"
        assert storage.get_delivery(elsewhere.id).next_attempt_at == _T0
        one = store.respread_pending(webhook.id, start=_T0, spacing=step, now=now, limit=1)
        assert one == [first]
        assert storage.get_delivery(first).next_attempt_at == _T0
        assert store.respread_pending("wh_none", start=_T0, spacing=step, now=now) == []


class StorageContract(
    WebhookStoreContract,
    AuditStoreContract,
    OutboxQueueContract,
    DeliveryLogContract,
    FirstSeenStoreContract,
    ExclusionStoreContract,
    EnqueueFirstSeenContract,
    HealthStoreContract,
):
    """
    The whole contract of :class:`~pendo_webhooks.storage.protocols.Storage`: every class above.

    Subclass it with a ``storage`` fixture (see the module's docstring) to prove a store
    that implements all of the seam.

    >>> len([name for name in dir(StorageContract) if name.startswith("test_")])
    81
    """
