"""
SQLiteStorage's webhook reads reuse what they found while ``webhooks_version`` is unchanged.

The version is bumped by triggers (schema migration 5), so a change made by any
connection, any process, or plain SQL is seen by the very next read; an unchanged
version costs one probe instead of the join.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pendo_webhooks.events import EventCategory
from pendo_webhooks.exceptions import StorageError, UnknownWebhook
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.storage._schema import LATEST_VERSION

from .test_sqlite_storage import undo_migration_8, undo_pii_filters


ADMIN = Actor("u-1", is_admin=True)
NPS = EventCategory.NPS_SUBMITTED
POLL = EventCategory.POLL_SUBMITTED


@pytest.fixture(name="path")
def _path(tmp_path: Path) -> Path:
    return tmp_path / "reads.sqlite3"


@pytest.fixture(name="store")
def _store(path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(path) as storage:
        yield storage


def version_of(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT version FROM webhooks_version").fetchone()[0])
    finally:
        conn.close()


def raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


def enabled_hook(registry: WebhookRegistry, name: str = "Hook") -> str:
    created = registry.create(
        ADMIN, name=name, url="https://hooks.example.com/in", categories={NPS, POLL}
    )
    return registry.enable(ADMIN, created.id).id


def test_every_registry_change_bumps_the_version(store: SQLiteStorage, path: Path) -> None:
    """
    Create, edit, enable, disable, rotate and delete each move the counter on.
    """
    registry = WebhookRegistry(store)
    seen = [version_of(path)]
    created = registry.create(
        ADMIN, name="Hook", url="https://hooks.example.com/in", categories={NPS}
    )
    seen.append(version_of(path))
    registry.update(ADMIN, created.id, name="Renamed", categories={NPS, POLL})
    seen.append(version_of(path))
    registry.enable(ADMIN, created.id)
    seen.append(version_of(path))
    registry.rotate_secret(ADMIN, created.id)
    seen.append(version_of(path))
    registry.disable(ADMIN, created.id)
    seen.append(version_of(path))
    registry.delete(ADMIN, created.id)
    seen.append(version_of(path))
    assert seen == sorted(set(seen)), seen  # strictly increasing


def test_an_unchanged_version_reads_only_the_counter(store: SQLiteStorage) -> None:
    """
    A second read with nothing changed runs one probe, not the join; the result is equal.
    """
    hook_id = enabled_hook(WebhookRegistry(store))
    first = store.webhooks_for(NPS)
    one = store.get_webhook(hook_id)
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    assert store.webhooks_for(NPS) == first
    assert store.get_webhook(hook_id) is one
    assert len(statements) == 2
    assert all("webhooks_version" in s and "webhook_rows" not in s for s in statements)


def test_the_returned_list_is_the_callers_own(store: SQLiteStorage) -> None:
    """
    Emptying a returned list does not empty the next answer.
    """
    enabled_hook(WebhookRegistry(store))
    store.webhooks_for(NPS).clear()
    assert len(store.webhooks_for(NPS)) == 1


@pytest.mark.parametrize(
    ("sql", "nps", "poll"),
    [
        ("UPDATE webhooks SET enabled = 0", 0, 0),
        ("DELETE FROM webhook_categories WHERE category = 'npsSubmitted'", 0, 1),
        (
            (
                "UPDATE webhook_categories SET category = 'guideDisplayed'"
                " WHERE category = 'pollSubmitted'"
            ),
            1,
            0,
        ),
        ("DELETE FROM webhooks", 0, 0),
    ],
)
def test_a_change_by_another_connection_is_seen_at_once(
    store: SQLiteStorage, path: Path, sql: str, nps: int, poll: int
) -> None:
    """
    Plain SQL from another connection (another process, say) invalidates what was kept.
    """
    enabled_hook(WebhookRegistry(store))
    assert (len(store.webhooks_for(NPS)), len(store.webhooks_for(POLL))) == (1, 1)
    raw(path, "PRAGMA foreign_keys = OFF")
    raw(path, sql)
    assert (len(store.webhooks_for(NPS)), len(store.webhooks_for(POLL))) == (nps, poll)


def test_a_webhook_added_elsewhere_is_found(store: SQLiteStorage, path: Path) -> None:
    """
    A second store on the same file creates a webhook; the first one finds it next read.
    """
    registry = WebhookRegistry(store)
    enabled_hook(registry)
    assert len(store.webhooks_for(NPS)) == 1
    with SQLiteStorage(path) as other:
        second = enabled_hook(WebhookRegistry(other), name="Second")
    assert [w.id for w in store.webhooks_for(NPS)][-1] == second
    assert store.get_webhook(second).name == "Second"


def test_a_deleted_webhook_is_unknown_at_once(store: SQLiteStorage, path: Path) -> None:
    """
    get_webhook after a delete by another connection raises, although it was just found.
    """
    hook_id = enabled_hook(WebhookRegistry(store))
    store.get_webhook(hook_id)
    raw(path, "DELETE FROM webhooks WHERE id = ?", (hook_id,))
    with pytest.raises(UnknownWebhook):
        store.get_webhook(hook_id)


def test_threads_reading_while_another_writes_never_see_an_older_state(
    store: SQLiteStorage,
) -> None:
    """
    Readers racing a writer: once a rename committed, no read returns the old name.
    """
    registry = WebhookRegistry(store)
    hook_id = enabled_hook(registry)
    stale: list[tuple[int, str]] = []
    done = threading.Event()
    committed = [0]

    def read() -> None:
        while not done.is_set():
            floor = committed[0]
            name = store.get_webhook(hook_id).name
            if int(name.split()[-1]) < floor:
                stale.append((floor, name))  # pragma: no cover - the failure

    registry.update(ADMIN, hook_id, name="Hook 0")
    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for n in range(1, 60):
        registry.update(ADMIN, hook_id, name=f"Hook {n}")
        committed[0] = n
    done.set()
    for reader in readers:
        reader.join()
    assert stale == []
    assert store.get_webhook(hook_id).name == "Hook 59"


def test_a_version_4_file_is_migrated_and_keeps_its_webhooks(path: Path) -> None:
    """
    A file from before the counter (schema 4) gets it on open, and reads work at once.
    """
    with SQLiteStorage(path) as store:
        hook_id = enabled_hook(WebhookRegistry(store))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    ).fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("DROP TABLE webhooks_version")
    conn.execute("DROP TABLE settings")  # migration 6's, which comes after
    conn.execute("ALTER TABLE deliveries DROP COLUMN claims")  # and migration 7's
    undo_migration_8(conn)  # and 8's
    undo_pii_filters(conn)  # and the PII filters'
    conn.execute("DELETE FROM schema_migrations WHERE version >= 5")
    conn.execute("PRAGMA user_version = 4")
    conn.execute("COMMIT")
    conn.close()
    with SQLiteStorage(path) as store:
        assert [w.id for w in store.webhooks_for(NPS)] == [hook_id]
        WebhookRegistry(store).disable(ADMIN, hook_id)
        assert store.webhooks_for(NPS) == []
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    conn.close()


def test_a_broken_counter_is_a_storage_error(store: SQLiteStorage, path: Path) -> None:
    """
    A file whose counter table was dropped (by hand, say) fails reads with StorageError.
    """
    hook_id = enabled_hook(WebhookRegistry(store))
    raw(path, "DROP TABLE webhooks_version")
    with pytest.raises(StorageError, match=r"reading .* failed: no such table"):
        store.get_webhook(hook_id)
