"""
The Storage contract: every backend (see ``STORAGE_BACKENDS`` in conftest) passes these tests.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pendo_webhooks.events import EventCategory
from pendo_webhooks.exceptions import ConflictError, UnknownWebhook, ValidationError
from pendo_webhooks.registry import AuditEntry, RetiredSecret, Webhook, WebhookKind
from pendo_webhooks.signing import SignatureScheme
from pendo_webhooks.storage import AuditQuery, Storage

from .conftest import START


T0 = START
_ids = itertools.count(1)


def make_webhook(**overrides: object) -> Webhook:
    """
    A valid URL webhook with every optional part filled in; *overrides* replace fields.
    """
    fields: dict[str, object] = {
        "id": f"wh_{next(_ids)}",
        "name": "Contract hook",
        "url": "https://hooks.example.com/catch/1?token=abc",
        "secret": "current-secret!&?<>\"'\\ é",
        "previous_secrets": (
            RetiredSecret(secret="older-secret", expires_at=T0 + timedelta(hours=5)),
        ),
        "categories": {EventCategory.NPS_SUBMITTED, EventCategory.GUIDE_DISPLAYED},
        "signature_scheme": SignatureScheme.PENDO,
        "signature_header": "X-Custom-Signature",
        "headers": {"X-Team": "growth", "X-Api-Key": "k-123"},
        "created_at": T0,
        "created_by": "u-1",
        "updated_at": T0,
        "updated_by": "u-1",
    }
    fields.update(overrides)
    return Webhook(**fields)  # type: ignore[arg-type]


def make_segment(**overrides: object) -> Webhook:
    """
    A valid Segment webhook; *overrides* replace fields.
    """
    fields: dict[str, object] = {
        "id": f"wh_{next(_ids)}",
        "name": "To Segment",
        "kind": WebhookKind.SEGMENT,
        "write_key": "wk-ÄÖÜ-123",
        "categories": {EventCategory.TRACK_EVENT_RECEIVED},
        "created_at": T0,
        "created_by": "u-1",
        "updated_at": T0,
        "updated_by": "u-1",
    }
    fields.update(overrides)
    return Webhook(**fields)  # type: ignore[arg-type]


def entry(webhook_id: str, action: str = "create", **overrides: object) -> AuditEntry:
    """
    An audit entry about *webhook_id*; *overrides* replace fields.
    """
    fields: dict[str, object] = {
        "id": f"aud_{next(_ids)}",
        "at": T0,
        "actor_id": "u-1",
        "action": action,
        "webhook_id": webhook_id,
        "changes": {"name": (None, "Contract hook")},
    }
    fields.update(overrides)
    return AuditEntry(**fields)  # type: ignore[arg-type]


def all_entries(storage: Storage) -> list[AuditEntry]:
    """
    Every audit entry, newest first.
    """
    return list(storage.audit_entries(AuditQuery(limit=10_000)))


def bump(webhook: Webhook, **changes: object) -> Webhook:
    """
    *webhook* with *changes* applied and its version one higher.
    """
    return attrs.evolve(webhook, version=webhook.version + 1, **changes)  # type: ignore[arg-type]


class TestWebhooks:
    def test_get_unknown_raises(self, storage: Storage) -> None:
        """
        Asking for an id nobody has raises UnknownWebhook (a LookupError) naming the id.
        """
        with pytest.raises(UnknownWebhook, match="wh_nope") as info:
            storage.get_webhook("wh_nope")
        assert isinstance(info.value, LookupError)

    @pytest.mark.parametrize("factory", [make_webhook, make_segment], ids=["url", "segment"])
    def test_insert_then_get_round_trips_every_field(self, storage: Storage, factory) -> None:
        """
        A stored webhook comes back equal, field for field, secrets included.
        """
        hook = factory()
        storage.insert_webhook(hook, audit=entry(hook.id))
        got = storage.get_webhook(hook.id)
        assert got == hook
        for field in attrs.fields(Webhook):
            assert getattr(got, field.name) == getattr(hook, field.name), field.name
        assert [s.reveal() for s in got.signing_secrets(T0)] == [
            s.reveal() for s in hook.signing_secrets(T0)
        ]
        assert list(got.headers) == list(hook.headers)

    def test_insert_duplicate_id_conflicts_and_writes_nothing(self, storage: Storage) -> None:
        """
        Inserting a webhook with a taken id raises ConflictError; neither row nor audit changes.
        """
        hook = make_webhook()
        storage.insert_webhook(hook, audit=entry(hook.id))
        impostor = make_webhook(id=hook.id, name="Impostor")
        with pytest.raises(ConflictError, match="already exists"):
            storage.insert_webhook(impostor, audit=entry(hook.id))
        assert storage.get_webhook(hook.id).name == "Contract hook"
        assert len(all_entries(storage)) == 1

    def test_replace_at_expected_version(self, storage: Storage) -> None:
        """
        A replacement based on the stored version is stored, with its audit entry.
        """
        hook = make_webhook()
        storage.insert_webhook(hook, audit=entry(hook.id))
        new = bump(hook, name="Renamed", categories={EventCategory.POLL_SUBMITTED})
        storage.replace_webhook(new, expected_version=1, audit=entry(hook.id, "update"))
        assert storage.get_webhook(hook.id) == new
        assert [e.action for e in all_entries(storage)] == ["update", "create"]

    def test_replace_stale_version_conflicts_and_writes_nothing(self, storage: Storage) -> None:
        """
        A replacement based on an old version raises ConflictError and leaves row and audit alone.
        """
        hook = make_webhook()
        storage.insert_webhook(hook, audit=entry(hook.id))
        v2 = bump(hook, name="Second")
        storage.replace_webhook(v2, expected_version=1, audit=entry(hook.id, "update"))
        stale = bump(hook, name="Based on v1")
        with pytest.raises(ConflictError, match="version 1, but version 2"):
            storage.replace_webhook(stale, expected_version=1, audit=entry(hook.id, "update"))
        assert storage.get_webhook(hook.id) == v2
        assert len(all_entries(storage)) == 2

    def test_replace_unknown_raises(self, storage: Storage) -> None:
        """
        Replacing a webhook that does not exist raises UnknownWebhook and audits nothing.
        """
        hook = make_webhook()
        with pytest.raises(UnknownWebhook):
            storage.replace_webhook(hook, expected_version=1, audit=entry(hook.id, "update"))
        assert all_entries(storage) == []

    def test_delete_keeps_audit_history(self, storage: Storage) -> None:
        """
        A deleted webhook is gone everywhere, but its audit entries (and the delete's) remain.
        """
        hook = make_webhook(enabled=True)
        storage.insert_webhook(hook, audit=entry(hook.id))
        storage.delete_webhook(hook.id, expected_version=1, audit=entry(hook.id, "delete"))
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
        hook = make_webhook()
        storage.insert_webhook(hook, audit=entry(hook.id))
        storage.replace_webhook(bump(hook), expected_version=1, audit=entry(hook.id, "update"))
        with pytest.raises(ConflictError):
            storage.delete_webhook(hook.id, expected_version=1, audit=entry(hook.id, "delete"))
        assert storage.get_webhook(hook.id).version == 2
        assert len(all_entries(storage)) == 2

    def test_delete_unknown_raises(self, storage: Storage) -> None:
        """
        Deleting an id nobody has raises UnknownWebhook and audits nothing.
        """
        with pytest.raises(UnknownWebhook):
            storage.delete_webhook("wh_nope", expected_version=1, audit=entry("wh_nope"))
        assert all_entries(storage) == []

    def test_list_is_oldest_first_then_by_id(self, storage: Storage) -> None:
        """
        list_webhooks returns enabled and disabled webhooks, by creation time, then id.
        """
        late = make_webhook(id="wh_a", created_at=T0 + timedelta(seconds=5))
        early_b = make_webhook(id="wh_c", enabled=True)
        early_a = make_webhook(id="wh_b")
        for hook in (late, early_b, early_a):
            storage.insert_webhook(hook, audit=entry(hook.id))
        assert [w.id for w in storage.list_webhooks()] == ["wh_b", "wh_c", "wh_a"]

    def test_webhooks_for_only_enabled_and_subscribed(self, storage: Storage) -> None:
        """
        webhooks_for returns the enabled webhooks subscribed to the category, oldest first.
        """
        on = make_webhook(id="wh_on", enabled=True)
        off = make_webhook(id="wh_off")
        other = make_webhook(id="wh_other", enabled=True, categories={"pollSubmitted"})
        seg = make_segment(
            id="wh_seg", enabled=True, categories={"npsSubmitted"}, created_at=T0 - timedelta(1)
        )
        for hook in (on, off, other, seg):
            storage.insert_webhook(hook, audit=entry(hook.id))
        assert [w.id for w in storage.webhooks_for(EventCategory.NPS_SUBMITTED)] == [
            "wh_seg",
            "wh_on",
        ]
        assert [w.id for w in storage.webhooks_for(EventCategory.POLL_SUBMITTED)] == ["wh_other"]
        assert storage.webhooks_for(EventCategory.ACCOUNT_CREATED) == []

    def test_webhooks_for_follows_category_changes(self, storage: Storage) -> None:
        """
        After a replace changes the categories, the category lookup follows.
        """
        hook = make_webhook(enabled=True, categories={"npsSubmitted"})
        storage.insert_webhook(hook, audit=entry(hook.id))
        moved = bump(hook, categories={"pollDisplayed", "visitorCreated"})
        storage.replace_webhook(moved, expected_version=1, audit=entry(hook.id, "update"))
        assert storage.webhooks_for(EventCategory.NPS_SUBMITTED) == []
        assert storage.webhooks_for(EventCategory.POLL_DISPLAYED) == [moved]
        assert storage.webhooks_for(EventCategory.VISITOR_CREATED) == [moved]

    def test_returned_values_are_immutable(self, storage: Storage) -> None:
        """
        What a backend returns cannot be changed in place, down to the headers mapping.
        """
        hook = make_webhook()
        storage.insert_webhook(hook, audit=entry(hook.id))
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
        hook = make_webhook(created_at=at, updated_at=at)
        storage.insert_webhook(hook, audit=entry(hook.id))
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
        secret=st.text(
            st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80
        ).filter(lambda s: not s.isspace()),
        value=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60),
    )
    def test_any_text_round_trips(
        self, storage: Storage, name: str, secret: str, value: str
    ) -> None:
        """
        Names, secrets and header values of any Unicode text come back exactly.
        """
        hook = make_webhook(name=name, secret=secret, headers={"X-Value": value})
        storage.insert_webhook(hook, audit=entry(hook.id))
        got = storage.get_webhook(hook.id)
        assert got.name == name.strip()
        assert got.secret is not None
        assert got.secret.reveal() == secret
        assert got.headers["X-Value"] == value


class TestAudit:
    @pytest.fixture(name="entries")
    def _entries(self, storage: Storage) -> list[AuditEntry]:
        """
        Five entries on two webhooks by two actors, an hour apart, written oldest first.
        """
        a, b = make_webhook(id="wh_a"), make_webhook(id="wh_b")
        written = [
            entry("wh_a", "create", id="aud_1", at=T0, actor_id="u-1"),
            entry("wh_b", "create", id="aud_2", at=T0 + timedelta(hours=1), actor_id="u-2"),
            entry("wh_a", "update", id="aud_3", at=T0 + timedelta(hours=2), actor_id="u-2"),
            entry("wh_a", "enable", id="aud_4", at=T0 + timedelta(hours=3), actor_id="u-1"),
            entry("wh_b", "disable", id="aud_5", at=T0 + timedelta(hours=4), actor_id="system"),
        ]
        storage.insert_webhook(a, audit=written[0])
        storage.insert_webhook(b, audit=written[1])
        storage.replace_webhook(bump(a), expected_version=1, audit=written[2])
        storage.replace_webhook(bump(bump(a)), expected_version=2, audit=written[3])
        storage.replace_webhook(bump(b), expected_version=1, audit=written[4])
        return written

    def test_newest_first_and_equal_to_what_was_written(
        self, storage: Storage, entries: list[AuditEntry]
    ) -> None:
        """
        Entries come back newest first, each equal to the one written.
        """
        assert all_entries(storage) == entries[::-1]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"webhook_id": "wh_a"}, ["aud_4", "aud_3", "aud_1"]),
            ({"actor_id": "u-2"}, ["aud_3", "aud_2"]),
            ({"action": "create"}, ["aud_2", "aud_1"]),
            ({"since": T0 + timedelta(hours=2)}, ["aud_5", "aud_4", "aud_3"]),
            ({"until": T0 + timedelta(hours=2)}, ["aud_2", "aud_1"]),
            (
                {"since": T0 + timedelta(hours=1), "until": T0 + timedelta(hours=4)},
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
        self, storage: Storage, entries: list[AuditEntry], query: dict, expected: list[str]
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
        since = (T0 + timedelta(hours=3)).astimezone(timezone(timedelta(hours=-7)))
        assert [e.id for e in storage.audit_entries(AuditQuery(since=since))] == ["aud_5", "aud_4"]

    def test_changes_round_trip_with_every_value_shape(self, storage: Storage) -> None:
        """
        Changes holding None, bools, ints, strings, tuples and mappings come back equal.
        """
        hook = make_webhook()
        changes = {
            "enabled": (False, True),
            "name": ("Old", 'Néw "quoted" <b>'),
            "secret": (None, "<redacted>"),
            "categories": (("npsSubmitted",), ("npsSubmitted", "pollSubmitted")),
            "headers": ({}, {"X-Team": "<redacted>"}),
            "count": (1, 2),
        }
        written = entry(hook.id, changes=changes)
        storage.insert_webhook(hook, audit=written)
        (got,) = all_entries(storage)
        assert got == written
        assert got.changes["categories"][1] == ("npsSubmitted", "pollSubmitted")
        assert got.changes["headers"][1] == {"X-Team": "<redacted>"}


class TestConcurrency:
    def test_concurrent_inserts_all_land(self, storage: Storage) -> None:
        """
        Eight threads inserting 25 webhooks each lose none of them, nor their audit entries.
        """

        def insert(worker: int) -> None:
            for i in range(25):
                hook = make_webhook(id=f"wh_{worker}_{i}")
                storage.insert_webhook(hook, audit=entry(hook.id))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(insert, range(8)))
        assert len(storage.list_webhooks()) == 200
        assert len(all_entries(storage)) == 200

    def test_same_version_replaced_concurrently_has_one_winner(self, storage: Storage) -> None:
        """
        Sixteen threads replacing version 1 at once: exactly one succeeds, the rest conflict.
        """
        hook = make_webhook()
        storage.insert_webhook(hook, audit=entry(hook.id))
        barrier = threading.Barrier(16)

        def replace(i: int) -> str:
            barrier.wait()
            try:
                storage.replace_webhook(
                    bump(hook, name=f"writer {i}"),
                    expected_version=1,
                    audit=entry(hook.id, "update"),
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
        assert len(all_entries(storage)) == 2


def test_bad_audit_query_values_name_the_field() -> None:
    """
    A query with a bad limit or a naive datetime raises ValidationError naming the field.
    """
    for kwargs, field in [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"limit": True}, "limit"),
        ({"since": datetime(2026, 1, 1)}, "since"),
        ({"until": "yesterday"}, "until"),
    ]:
        with pytest.raises(ValidationError) as info:
            AuditQuery(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
