"""
A lone enqueue on SQLite is one statement: planned from the store's last reads, stored only
while neither the webhooks nor the exclusion list changed since they were read.

Every admin change committed before an enqueue is honoured, whichever store instance (or
process) made it: the versions are compared in the INSERT itself, and a call that finds
them moved stores nothing and is planned again the ordinary way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pendo_webhooks import Actor, Dispatcher, WebhookRegistry
from pendo_webhooks.dispatcher import Outcome
from pendo_webhooks.events import EventCategory, new_unique_id
from pendo_webhooks.exceptions import ConflictError, StorageError, ValidationError
from pendo_webhooks.model._webhook import Webhook
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage
from pendo_webhooks.storage._sqlite_outbox import SQLiteOutbox, _IfCurrent
from pendo_webhooks.testing import RecordingTransport, sample_event

from .test_outbox_contract import delivery, hook


ADMIN = Actor("admin", is_admin=True)
NPS = EventCategory.NPS_SUBMITTED


@pytest.fixture(name="path")
def _path(tmp_path: Path) -> Path:
    return tmp_path / "one-statement.sqlite3"


@pytest.fixture(name="store")
def _store(path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(path) as storage:
        yield storage


def versions(store: SQLiteStorage) -> tuple[int, int]:
    row = store._query(
        "SELECT (SELECT version FROM webhooks_version), (SELECT version FROM exclusions_version)"
    )[0]
    return int(row[0]), int(row[1])


def traced(store: SQLiteStorage) -> list[str]:
    """Every statement this thread's connection runs from now on."""
    seen: list[str] = []
    store._connection().set_trace_callback(lambda sql: seen.append(" ".join(sql.split())))
    return seen


def stored_ids(store: SQLiteStorage) -> set[str]:
    return {d.id for d in store.list_deliveries(limit=1000)}


# -- the store -----------------------------------------------------------------------------


def test_at_the_current_versions_it_is_one_autocommit_statement(store: SQLiteStorage) -> None:
    webhook = hook(store)
    new, at = delivery(webhook.id), versions(store)
    seen = traced(store)
    assert store._enqueue_if_current(new, versions=at) == [None]
    assert len(seen) == 1
    assert seen[0].startswith("INSERT INTO deliveries")
    assert stored_ids(store) == {new.id}


@pytest.mark.parametrize("moved", [(1, 0), (0, 1)])
def test_moved_versions_store_nothing(store: SQLiteStorage, moved: tuple[int, int]) -> None:
    webhook = hook(store)
    at = versions(store)
    planned_at = (at[0] - moved[0], at[1] - moved[1])
    assert store._enqueue_if_current(delivery(webhook.id), versions=planned_at) is None
    assert stored_ids(store) == set()


def test_a_skipped_delivery_stores_nothing_and_says_none(store: SQLiteStorage) -> None:
    webhook = hook(store)
    first = delivery(webhook.id)
    assert store.enqueue_deliveries([first]) == [None]
    again = delivery(webhook.id, event_id=first.event_id)
    assert store._enqueue_if_current(again, versions=versions(store)) is None
    disabled = hook(store, enabled=False)
    assert store._enqueue_if_current(delivery(disabled.id), versions=versions(store)) is None
    assert stored_ids(store) == {first.id}


def test_a_taken_delivery_id_is_a_conflict(store: SQLiteStorage) -> None:
    webhook = hook(store)
    taken = delivery(webhook.id)
    store.enqueue_deliveries([taken])
    with pytest.raises(ConflictError):
        store._enqueue_if_current(delivery(webhook.id, id=taken.id), versions=versions(store))


def test_a_closed_connection_is_a_storage_error_and_is_replaced(store: SQLiteStorage) -> None:
    webhook = hook(store)
    at = versions(store)
    store._connection().close()
    with pytest.raises(StorageError, match="writing to"):
        store._enqueue_if_current(delivery(webhook.id), versions=at)
    assert store._enqueue_if_current(delivery(webhook.id), versions=at) == [None]


def test_a_group_stores_the_current_calls_and_none_of_the_stale(store: SQLiteStorage) -> None:
    webhook = hook(store)
    at = versions(store)
    current, stale = _IfCurrent((delivery(webhook.id),)), _IfCurrent((delivery(webhook.id),))
    current.versions, stale.versions = at, (at[0] - 1, at[1])
    plain = [delivery(webhook.id), delivery(webhook.id)]
    found = SQLiteOutbox._enqueue_group(store, [stale, plain, current])
    assert found == [None, [None, None], [None]]
    assert stored_ids(store) == {plain[0].id, plain[1].id, current[0].id}


# -- the dispatcher ------------------------------------------------------------------------


def segment_hook(registry: WebhookRegistry, name: str = "Segment") -> Webhook:
    created = registry.create(
        ADMIN,
        name=name,
        kind="segment",
        write_key="wk",
        segment_endpoint="https://api.segment.io",
        categories={NPS},
    )
    return registry.enable(ADMIN, created.id)


def event(**fields: object) -> object:
    return sample_event(NPS, unique_id=new_unique_id(), **fields)


@pytest.fixture(name="world")
def _world(store: SQLiteStorage) -> Iterator[tuple[WebhookRegistry, Dispatcher, Webhook]]:
    registry = WebhookRegistry(store)
    webhook = segment_hook(registry)
    with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
        dispatcher.enqueue(event())  # reads the webhooks and the exclusions
        yield registry, dispatcher, webhook


def test_a_warm_enqueue_is_one_statement(
    store: SQLiteStorage, world: tuple[WebhookRegistry, Dispatcher, Webhook]
) -> None:
    _, dispatcher, webhook = world
    seen = traced(store)
    result = dispatcher.enqueue(event())
    assert result.for_webhook(webhook.id).outcome is Outcome.PENDING
    assert len(seen) == 1
    assert "webhooks_version" in seen[0]
    assert "exclusions_version" in seen[0]


def test_a_warm_dispatch_sends_what_it_stored_in_one_statement(
    store: SQLiteStorage, world: tuple[WebhookRegistry, Dispatcher, Webhook]
) -> None:
    _, dispatcher, webhook = world
    seen = traced(store)
    result = dispatcher.dispatch(event())
    assert result.for_webhook(webhook.id).outcome is Outcome.DELIVERED
    assert [s for s in seen if s.startswith("INSERT INTO deliveries")] == seen[:1]
    assert "BEGIN IMMEDIATE" not in seen[:1]


def test_an_exclusion_another_store_committed_is_honoured(
    store: SQLiteStorage, path: Path, world: tuple[WebhookRegistry, Dispatcher, Webhook]
) -> None:
    _, dispatcher, webhook = world
    before = stored_ids(store)
    with SQLiteStorage(path) as elsewhere:
        WebhookRegistry(elsewhere).add_exclusion(ADMIN, "account", "Webhook Account")
    result = dispatcher.enqueue(event())
    assert result.for_webhook(webhook.id).outcome is Outcome.SKIPPED
    assert stored_ids(store) == before
    # Once read, the exclusion gates from the cache; the planning is confirmed all the same.
    again = dispatcher.enqueue(event())
    assert again.for_webhook(webhook.id).outcome is Outcome.SKIPPED
    assert stored_ids(store) == before


def test_a_webhook_another_store_disabled_gets_nothing(
    store: SQLiteStorage, path: Path, world: tuple[WebhookRegistry, Dispatcher, Webhook]
) -> None:
    _, dispatcher, webhook = world
    before = stored_ids(store)
    with SQLiteStorage(path) as elsewhere:
        WebhookRegistry(elsewhere).disable(ADMIN, webhook.id)
    result = dispatcher.enqueue(event())
    assert result.outcomes == ()
    assert stored_ids(store) == before


def test_a_webhook_another_store_created_gets_its_delivery(
    store: SQLiteStorage, path: Path, world: tuple[WebhookRegistry, Dispatcher, Webhook]
) -> None:
    _, dispatcher, webhook = world
    with SQLiteStorage(path) as elsewhere:
        other = segment_hook(WebhookRegistry(elsewhere), "Another")
    result = dispatcher.enqueue(event())
    assert {o.webhook_id for o in result.outcomes} == {webhook.id, other.id}
    assert all(o.outcome is Outcome.PENDING for o in result.outcomes)


def test_a_duplicate_is_reported_as_one(
    world: tuple[WebhookRegistry, Dispatcher, Webhook],
) -> None:
    _, dispatcher, webhook = world
    twice = event()
    assert dispatcher.enqueue(twice).for_webhook(webhook.id).outcome is Outcome.PENDING
    again = dispatcher.enqueue(twice).for_webhook(webhook.id)
    assert again.outcome is Outcome.SKIPPED
    assert again.reason is not None
    assert "duplicate" in again.reason


def test_two_subscribed_webhooks_are_stored_the_ordinary_way(
    store: SQLiteStorage, world: tuple[WebhookRegistry, Dispatcher, Webhook]
) -> None:
    registry, dispatcher, _ = world
    segment_hook(registry, "Second")
    dispatcher.enqueue(event())  # reads the new webhook list
    seen = traced(store)
    result = dispatcher.enqueue(event())
    assert [o.outcome for o in result.outcomes] == [Outcome.PENDING] * 2
    assert "BEGIN IMMEDIATE" in seen


def test_a_non_event_is_still_refused(
    world: tuple[WebhookRegistry, Dispatcher, Webhook],
) -> None:
    _, dispatcher, _ = world
    with pytest.raises(ValidationError):
        dispatcher.enqueue("not an event")  # type: ignore[arg-type]


def test_many_events_are_stored_the_ordinary_way(
    store: SQLiteStorage, world: tuple[WebhookRegistry, Dispatcher, Webhook]
) -> None:
    _, dispatcher, _ = world
    seen = traced(store)
    results = dispatcher.enqueue_many([event(), event()])
    assert len(results) == 2
    assert "BEGIN IMMEDIATE" in seen


def test_a_dispatcher_on_another_store_than_its_registry_reads_every_time(
    store: SQLiteStorage, path: Path
) -> None:
    registry = WebhookRegistry(store)
    segment_hook(registry)
    with SQLiteStorage(path) as other, Dispatcher(registry, other) as dispatcher:
        assert dispatcher._enqueuer._cached is None
        dispatcher.enqueue(event())
        assert len(other.list_deliveries()) == 1


def test_other_stores_take_the_ordinary_way() -> None:
    registry = WebhookRegistry(InMemoryStorage())
    with Dispatcher(registry) as dispatcher:
        assert dispatcher._enqueuer._cached is None


def test_a_version_moved_by_hand_is_planned_again(
    store: SQLiteStorage, world: tuple[WebhookRegistry, Dispatcher, Webhook]
) -> None:
    _, dispatcher, _ = world
    before = stored_ids(store)
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("UPDATE exclusions_version SET version = version + 1")
    finally:
        other.close()
    # The version moved behind the store's back (no rule changed): planned again, stored.
    dispatcher.enqueue(event())
    assert len(stored_ids(store) - before) == 1
