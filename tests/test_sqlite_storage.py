"""
SQLiteStorage beyond the shared contract: the file, its checks, transactions, threads, processes.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pendo_webhooks.dispatcher import Delivery, DeliveryStatus
from pendo_webhooks.exceptions import (
    ConfigurationError,
    StorageError,
    UnknownWebhook,
    ValidationError,
)
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import AuditQuery, PlaintextCodec, SQLiteStorage
from pendo_webhooks.storage._schema import (
    APPLICATION_ID,
    DEAD_INDEX_MIGRATION,
    LATEST_VERSION,
    MIGRATIONS,
    PII_FILTERS_MIGRATION,
    apply_migrations,
)
from pendo_webhooks.storage._sqlite_core import switch_to_wal

from .test_storage_contract import entry, make_segment, make_webhook


ADMIN = Actor("u-1", is_admin=True)
SPECIAL_SECRET = "!&?<>\"'\\ ünïcødé ✓ 秘密 \t$%{}[];--"


@pytest.fixture(name="path")
def _path(tmp_path: Path) -> Path:
    return tmp_path / "webhooks.sqlite3"


@pytest.fixture(name="store")
def _store(path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(path) as storage:
        yield storage


def raw(path: Path) -> sqlite3.Connection:
    """
    A plain sqlite3 connection to *path*, in autocommit mode, for looking behind the API.
    """
    return sqlite3.connect(path, isolation_level=None)


def undo_migration_9(conn: sqlite3.Connection) -> None:
    """
    Take a file back to before migration 9: no webhook health.
    """
    conn.execute("DROP TABLE webhook_health")
    conn.execute("DELETE FROM schema_migrations WHERE version = 9")


def undo_migration_8(conn: sqlite3.Connection) -> None:
    """
    Take a file back to before migration 8 (and 9): attempts holding their exchange's facts
    again.

    Only for files whose attempts do not matter (they are dropped).
    """
    undo_migration_9(conn)
    (create,) = (s for s in MIGRATIONS[1].statements if "TABLE delivery_attempts" in s)
    conn.execute("DROP TABLE delivery_attempts")
    conn.execute("DROP TABLE delivery_exchanges")
    conn.execute(create)
    conn.execute("DELETE FROM schema_migrations WHERE version = 8")


def undo_dead_index(conn: sqlite3.Connection) -> None:
    """
    Take a file back to before the dead-deliveries index migration: no such index.
    """
    conn.execute("DROP INDEX deliveries_unhappy_by_time")
    conn.execute("DELETE FROM schema_migrations WHERE version = ?", (DEAD_INDEX_MIGRATION,))


def undo_pii_filters(conn: sqlite3.Connection) -> None:
    """
    Take a file back to before the PII filters migration (and the later ones): no filters or
    hash key columns.
    """
    undo_dead_index(conn)
    conn.execute("ALTER TABLE webhooks DROP COLUMN filters")
    conn.execute("ALTER TABLE webhooks DROP COLUMN hash_key")
    conn.execute("DELETE FROM schema_migrations WHERE version = ?", (PII_FILTERS_MIGRATION,))


def digest(path: Path) -> str:
    """
    The SHA-256 of a file's bytes.
    """
    return hashlib.sha256(path.read_bytes()).hexdigest()


class TestSchema:
    def test_new_file_gets_our_schema(self, store: SQLiteStorage, path: Path) -> None:
        """
        A new file is created in WAL mode, marked as ours, at the latest schema version.
        """
        conn = raw(path)
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"schema_migrations", "webhooks", "webhook_categories", "audit_log"} <= tables
        migrations = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
        assert [v for v, _ in migrations] == list(range(1, LATEST_VERSION + 1))
        conn.close()

    def test_reopening_keeps_data_and_does_not_migrate_again(self, path: Path) -> None:
        """
        A second open of the same file sees the data and applies no migration twice.
        """
        hook = make_webhook()
        with SQLiteStorage(path) as first:
            first.insert_webhook(hook, audit=entry(hook.id))
        with SQLiteStorage(path) as second:
            assert second.get_webhook(hook.id) == hook
        conn = raw(path)
        applied = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
        assert applied == LATEST_VERSION
        conn.close()

    def test_migration_7_adds_the_claim_count_to_existing_deliveries(self, path: Path) -> None:
        """
        A version 6 file keeps its deliveries; they start with no claims, and claims are
        counted (max_claims) once migrated.
        """
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        with SQLiteStorage(path) as storage:
            registry = WebhookRegistry(storage)
            created = registry.create(
                ADMIN, name="Old", url="https://hooks.example.com/", categories={"npsSubmitted"}
            )
            registry.enable(ADMIN, created.id)
            new = Delivery(
                id="dlv_old",
                webhook_id=created.id,
                event_id="e" * 40,
                category="npsSubmitted",
                body=b"{}",
                next_attempt_at=start,
                created_at=start,
                updated_at=start,
            )
            storage.enqueue_deliveries([new])
        conn = raw(path)
        undo_pii_filters(conn)
        undo_migration_8(conn)
        conn.execute("ALTER TABLE deliveries DROP COLUMN claims")
        conn.execute("DELETE FROM schema_migrations WHERE version = 7")
        conn.execute("PRAGMA user_version = 6")
        conn.close()
        with SQLiteStorage(path) as storage:
            conn = raw(path)
            assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
            assert conn.execute("SELECT claims FROM deliveries").fetchone()[0] == 0
            for hour in range(2):
                now = start + timedelta(hours=hour)
                (claimed,) = storage.claim_due(
                    owner="w",
                    now=now,
                    lease_until=now + timedelta(minutes=1),
                    limit=1,
                    max_claims=1,
                )
            assert claimed.status is DeliveryStatus.DEAD
            assert conn.execute("SELECT claims FROM deliveries").fetchone()[0] == 2
            name = conn.execute("SELECT name FROM schema_migrations WHERE version = 7").fetchone()
            assert name == ("delivery claim count",)
            conn.close()

    def test_an_empty_file_of_ours_is_migrated(self, path: Path) -> None:
        """
        A file carrying our application_id at version 0 gets the schema.
        """
        conn = raw(path)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.close()
        with SQLiteStorage(path) as storage:
            assert storage.list_webhooks() == []

    def test_connection_settings(self, path: Path) -> None:
        """
        Connections use foreign keys, the chosen synchronous mode and the busy timeout.
        """
        with SQLiteStorage(path, synchronous="normal", busy_timeout=2.5) as storage:
            conn = storage._connection()
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        with SQLiteStorage(path) as storage:
            assert storage._connection().execute("PRAGMA synchronous").fetchone()[0] == 2


def _random_bytes(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 20)


def _text(path: Path) -> None:
    path.write_text("not a database\n" * 100)


def _truncated(path: Path) -> None:
    scratch = path.with_name("scratch.sqlite3")
    with SQLiteStorage(scratch) as storage:
        hook = make_webhook()
        storage.insert_webhook(hook, audit=entry(hook.id))
    path.write_bytes(scratch.read_bytes()[:1000])


def _foreign_tables(path: Path) -> None:
    conn = raw(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.close()


def _foreign_wal(path: Path) -> None:
    conn = raw(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.close()


def _foreign_application_id(path: Path) -> None:
    conn = raw(path)
    conn.execute("PRAGMA application_id = 42")
    conn.close()


def _newer_schema(path: Path) -> None:
    conn = raw(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    conn.close()


class TestRefusesFilesThatAreNotOurs:
    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (_random_bytes, "not a usable SQLite database"),
            (_text, "not a usable SQLite database"),
            (_truncated, "not a usable SQLite database"),
            (_foreign_tables, "is not a pendo-webhooks database"),
            (_foreign_wal, "is not a pendo-webhooks database"),
            (_foreign_application_id, "is not a pendo-webhooks database"),
            (_newer_schema, "newer than this version of pendo-webhooks"),
        ],
        ids=lambda v: getattr(v, "__name__", "").strip("_") or None,
    )
    def test_raises_storage_error_and_leaves_the_file_unchanged(
        self, path: Path, make, message: str
    ) -> None:
        """
        A corrupt, foreign or too-new file raises StorageError naming it; not one byte changes.
        """
        make(path)
        before = digest(path)
        with pytest.raises(StorageError, match=message) as info:
            SQLiteStorage(path)
        assert str(path) in str(info.value)
        assert digest(path) == before
        assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name)) == [
            path.name
        ]

    def test_a_directory_is_refused(self, tmp_path: Path) -> None:
        """
        A path that cannot be opened (a directory) raises StorageError, not sqlite3's error.
        """
        with pytest.raises(StorageError, match="cannot open"):
            SQLiteStorage(tmp_path)


def test_a_file_locked_by_another_writer_cannot_be_prepared(path: Path) -> None:
    """
    If another connection holds the write lock while the file is set up, StorageError names it.
    """
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match=r"cannot use .*locked"):
            SQLiteStorage(path, busy_timeout=0.05)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with SQLiteStorage(path) as storage:
        assert storage.list_webhooks() == []


def test_migrations_already_applied_are_skipped(path: Path) -> None:
    """
    apply_migrations runs only the migrations after the given version.
    """
    conn = raw(path)
    apply_migrations(conn, LATEST_VERSION, "2026-01-01T00:00:00+00:00")
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
    conn.close()


class TestConfiguration:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {"path": ":memory:"},
            {"path": ""},
            {"path": "file:webhooks.sqlite3?mode=rwc"},
            {"synchronous": "OFF"},
            {"synchronous": 2},
            {"busy_timeout": 0},
            {"busy_timeout": -1},
            {"busy_timeout": 601},
            {"busy_timeout": True},
            {"busy_timeout": "10"},
        ],
    )
    def test_bad_arguments_raise_configuration_error(self, path: Path, kwargs: dict) -> None:
        """
        Unusable constructor arguments raise ConfigurationError before any file is created.
        """
        kwargs = {"path": path, **kwargs}
        with pytest.raises(ConfigurationError):
            SQLiteStorage(**kwargs)
        assert not path.exists()

    def test_repr_path_and_context_manager(self, path: Path) -> None:
        """
        The repr shows the path (and whether it is closed); leaving the with-block closes it.
        """
        with SQLiteStorage(str(path)) as storage:
            assert storage.path == path
            assert repr(storage) == f"<SQLiteStorage(path={str(path)!r})>"
        assert repr(storage) == f"<SQLiteStorage(path={str(path)!r}, closed)>"

    def test_closed_storage_raises_everywhere(self, path: Path) -> None:
        """
        After close() every call raises StorageError, from any thread; closing twice is fine.
        """
        storage = SQLiteStorage(path)
        storage.close()
        storage.close()
        with pytest.raises(StorageError, match="closed"):
            storage.list_webhooks()
        errors: list[BaseException] = []

        def use() -> None:
            try:
                storage.get_webhook("wh_x")
            except StorageError as exc:
                errors.append(exc)

        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
        assert len(errors) == 1


class TestTransactions:
    def test_a_failed_write_leaves_nothing_half_written(self, store: SQLiteStorage) -> None:
        """
        If the audit entry cannot be written, the webhook row and its categories roll back too.
        """
        first = make_webhook()
        store.insert_webhook(first, audit=entry(first.id, id="aud_taken"))
        second = make_webhook(enabled=True)
        with pytest.raises(StorageError, match="UNIQUE") as info:
            store.insert_webhook(second, audit=entry(second.id, id="aud_taken"))
        assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
        with pytest.raises(UnknownWebhook):
            store.get_webhook(second.id)
        conn = raw(store.path)
        assert conn.execute(
            "SELECT count(*) FROM webhook_categories WHERE webhook_id = ?", (second.id,)
        ).fetchone() == (0,)
        conn.close()

    def test_a_failed_replace_rolls_back(self, store: SQLiteStorage) -> None:
        """
        A replace whose audit insert fails keeps the old row and its old categories.
        """
        hook = make_webhook(enabled=True)
        store.insert_webhook(hook, audit=entry(hook.id, id="aud_taken"))
        moved = make_webhook(id=hook.id, version=2, categories={"pollSubmitted"}, enabled=True)
        with pytest.raises(StorageError):
            store.replace_webhook(moved, expected_version=1, audit=entry(hook.id, id="aud_taken"))
        assert store.get_webhook(hook.id) == hook
        assert store.webhooks_for(next(iter(hook.categories))) == [hook]

    def test_a_held_write_lock_times_out_as_storage_error(self, path: Path) -> None:
        """
        While another connection holds the write lock past busy_timeout, a write fails cleanly.
        """
        with SQLiteStorage(path, busy_timeout=0.05) as storage:
            blocker = raw(path)
            blocker.execute("BEGIN IMMEDIATE")
            hook = make_webhook()
            with pytest.raises(StorageError, match="locked"):
                storage.insert_webhook(hook, audit=entry(hook.id))
            blocker.execute("ROLLBACK")
            blocker.close()
            storage.insert_webhook(hook, audit=entry(hook.id))
            assert storage.get_webhook(hook.id) == hook

    def test_reads_wrap_sqlite_errors(self, store: SQLiteStorage) -> None:
        """
        A read that SQLite refuses comes out as StorageError, chained to sqlite3's error.
        """
        conn = raw(store.path)
        conn.execute("DROP VIEW webhook_rows")
        conn.close()
        with pytest.raises(StorageError, match="reading") as info:
            store.list_webhooks()
        assert isinstance(info.value.__cause__, sqlite3.Error)


class TestStoredRows:
    def test_invalid_stored_row_raises_storage_error(self, store: SQLiteStorage) -> None:
        """
        A row edited behind the library's back into an invalid webhook raises StorageError.
        """
        hook = make_webhook()
        store.insert_webhook(hook, audit=entry(hook.id))
        conn = raw(store.path)
        conn.execute("UPDATE webhooks SET headers = '{not json' WHERE id = ?", (hook.id,))
        conn.close()
        with pytest.raises(StorageError, match=hook.id):
            store.get_webhook(hook.id)

    def test_invalid_audit_row_raises_storage_error(self, store: SQLiteStorage) -> None:
        """
        An audit row whose changes are not JSON raises StorageError naming the entry.
        """
        hook = make_webhook()
        store.insert_webhook(hook, audit=entry(hook.id, id="aud_bad"))
        conn = raw(store.path)
        conn.execute("UPDATE audit_log SET changes = 'nope' WHERE id = 'aud_bad'")
        conn.close()
        with pytest.raises(StorageError, match="aud_bad"):
            store.audit_entries(AuditQuery())

    def test_rows_stored_under_looser_rules_still_load(self, store: SQLiteStorage) -> None:
        """
        A name with a bidi override and a whitespace-only secret, refused for new input
        today, were accepted before: such rows still load and sign, and only new input is
        held to the rules (refusing the row would break every read of the webhooks).
        """
        registry = WebhookRegistry(store)
        hook = registry.create(
            ADMIN, name="Invoices", url="https://hooks.example.com/x", categories=["npsSubmitted"]
        )
        conn = raw(store.path)
        conn.execute(
            "UPDATE webhooks SET name = ?, secret = ? WHERE id = ?",
            ("Invoices\u202egnp.exe", "   ", hook.id),
        )
        conn.close()
        (listed,) = store.list_webhooks()
        assert listed.name == "Invoices\u202egnp.exe"
        assert listed.secret is not None
        assert listed.secret.reveal() == "   "
        renamed = registry.update(ADMIN, hook.id, name="Invoices (renamed)")
        assert renamed.name == "Invoices (renamed)"
        assert renamed.secret is not None
        assert renamed.secret.reveal() == "   "
        with pytest.raises(ValidationError, match="U\\+202E"):
            registry.update(ADMIN, hook.id, name="Invoices\u202egnp.exe")

    def test_sql_metacharacters_are_data(self, store: SQLiteStorage) -> None:
        """
        Quotes, semicolons and comments in values are stored as text, never run as SQL.
        """
        evil = "x'); DROP TABLE webhooks; --"
        hook = make_webhook(id="wh_'; DROP TABLE audit_log; --", name=evil)
        store.insert_webhook(hook, audit=entry(hook.id, actor_id=evil))
        assert store.get_webhook(hook.id).name == evil
        assert store.audit_entries(AuditQuery(actor_id=evil))[0].webhook_id == hook.id
        assert len(store.list_webhooks()) == 1


class TestSecretsAtRest:
    def test_special_secret_round_trips_through_the_file(self, path: Path) -> None:
        """
        A secret full of quotes, backslashes and non-ASCII comes back exactly after a reopen.
        """
        with SQLiteStorage(path) as storage:
            hook = WebhookRegistry(storage).create(
                ADMIN,
                name="Special",
                url="https://hooks.example.com/x",
                secret=SPECIAL_SECRET,
                categories=["npsSubmitted"],
            )
        with SQLiteStorage(path) as reopened:
            got = reopened.get_webhook(hook.id)
        assert got.secret is not None
        assert got.secret.reveal() == SPECIAL_SECRET
        assert got.secret.pendo_key == SPECIAL_SECRET.encode("utf-8")

    def test_secrets_live_in_the_webhook_row_only(self, store: SQLiteStorage) -> None:
        """
        Secrets and write keys are in their webhook rows, and nowhere in the audit table.
        """
        registry = WebhookRegistry(store)
        hook = registry.create(
            ADMIN,
            name="URL",
            url="https://hooks.example.com/x",
            secret="SECRET-MARKER-1",
            categories=["npsSubmitted"],
        )
        registry.rotate_secret(ADMIN, hook.id, "SECRET-MARKER-2")
        registry.create(
            ADMIN,
            name="Seg",
            kind="segment",
            write_key="WRITE-KEY-MARKER",
            categories=["npsSubmitted"],
        )
        conn = raw(store.path)
        audit_text = json.dumps(conn.execute("SELECT * FROM audit_log").fetchall())
        webhook_text = json.dumps(conn.execute("SELECT * FROM webhooks").fetchall())
        conn.close()
        for marker in ("SECRET-MARKER-1", "SECRET-MARKER-2", "WRITE-KEY-MARKER"):
            assert marker not in audit_text
            assert marker in webhook_text

    def test_a_codec_encrypts_at_rest(self, path: Path) -> None:
        """
        With a secret_codec, the file holds only encoded secrets, and reads decode them back.
        """
        hook = make_webhook(secret="PLAIN-SECRET")
        segment = make_segment(write_key="PLAIN-WRITE-KEY")
        with SQLiteStorage(path, secret_codec=ReversingCodec()) as storage:
            storage.insert_webhook(hook, audit=entry(hook.id))
            storage.insert_webhook(segment, audit=entry(segment.id))
            assert storage.get_webhook(hook.id) == hook
            assert storage.get_webhook(segment.id) == segment
        content = path.read_bytes() + b"".join(
            p.read_bytes() for p in path.parent.glob(path.name + "-*")
        )
        assert b"PLAIN-SECRET" not in content
        assert b"PLAIN-WRITE-KEY" not in content
        assert b"older-secret" not in content

    def test_a_failing_codec_raises_storage_error_without_the_value(self, path: Path) -> None:
        """
        A codec that cannot decode makes reads raise StorageError that quotes nothing stored.
        """
        hook = make_webhook(secret="PLAIN-SECRET")
        with SQLiteStorage(path) as storage:
            storage.insert_webhook(hook, audit=entry(hook.id))
        with SQLiteStorage(path, secret_codec=ReversingCodec()) as storage:
            with pytest.raises(StorageError, match="secret_codec") as info:
                storage.get_webhook(hook.id)
        assert "PLAIN-SECRET" not in str(info.value)
        assert info.value.__cause__ is None

    def test_a_codec_returning_non_text_is_refused(self, path: Path) -> None:
        """
        A codec whose encode() returns bytes is caught before anything is written.
        """
        hook = make_webhook()
        with SQLiteStorage(path, secret_codec=BytesCodec()) as storage:  # type: ignore[arg-type]
            with pytest.raises(StorageError, match="must return text"):
                storage.insert_webhook(hook, audit=entry(hook.id))
            assert storage.list_webhooks() == []

    def test_plaintext_codec_is_identity(self) -> None:
        """
        The default codec stores text as given.
        """
        assert PlaintextCodec().encode("a€b") == "a€b"
        assert PlaintextCodec().decode("a€b") == "a€b"
        assert repr(PlaintextCodec()) == "PlaintextCodec()"


class ReversingCodec:
    """
    A toy reversible codec; decode refuses (quoting its input) what it did not encode.
    """

    def encode(self, plaintext: str) -> str:
        return "rev:" + plaintext[::-1]

    def decode(self, stored: str) -> str:
        if not stored.startswith("rev:"):
            raise ValueError(f"not encoded by me: {stored}")
        return stored[4:][::-1]


class BytesCodec:
    """
    A broken codec returning bytes.
    """

    def encode(self, plaintext: str) -> bytes:
        return plaintext.encode()

    def decode(self, stored: str) -> str:
        return stored


class TestThreads:
    def test_each_thread_gets_its_own_connection(self, store: SQLiteStorage) -> None:
        """
        Threads use separate connections, see each other's commits, and release them on exit.
        """
        hook = make_webhook()
        store.insert_webhook(hook, audit=entry(hook.id))
        seen: list[tuple[int, str]] = []

        def read() -> None:
            seen.append((id(store._connection()), store.get_webhook(hook.id).name))

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [name for _, name in seen] == ["Contract hook"] * 4
        assert id(store._connection()) not in {conn for conn, _ in seen}
        gc.collect()
        assert len(store._slots) == 1  # the finished threads' connections were closed


CHILD = textwrap.dedent(
    """
    import json, sys
    from pendo_webhooks.registry import Actor, WebhookRegistry
    from pendo_webhooks.storage import SQLiteStorage

    path, command = sys.argv[1], sys.argv[2]
    admin = Actor("child-admin", is_admin=True)
    with SQLiteStorage(path) as storage:
        registry = WebhookRegistry(storage)
        if command == "enable-all":
            hooks = registry.list(admin)
            for hook in hooks:
                registry.enable(admin, hook.id)
            print(json.dumps([h.name for h in hooks]))
        elif command == "names":
            print(json.dumps([h.name for h in registry.list(admin)]))
        elif command == "create-many":
            print("ready", flush=True)
            sys.stdin.readline()  # the parent says go to every child at once
            for i in range(int(sys.argv[3])):
                registry.create(
                    admin, name=f"{sys.argv[4]}-{i}", url="https://hooks.example.com/x",
                    categories=["npsSubmitted"],
                )
            print(json.dumps("done"))
    """
)


def run_child(*args: str) -> object:
    """
    Run CHILD in a fresh interpreter and return what it printed, as JSON.
    """
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
class TestProcesses:
    def test_two_processes_see_each_others_changes(self, path: Path) -> None:
        """
        A registry in another process sees what this one wrote, and this one sees its changes.
        """
        with SQLiteStorage(path) as storage:
            registry = WebhookRegistry(storage)
            hook = registry.create(
                ADMIN,
                name="Shared",
                url="https://hooks.example.com/x",
                categories=["npsSubmitted"],
            )
            assert run_child(str(path), "enable-all") == ["Shared"]
            seen = registry.get(ADMIN, hook.id)
            assert seen.enabled
            assert seen.version == 2
            assert [e.actor_id for e in registry.audit(ADMIN)] == ["child-admin", "u-1"]
            registry.update(ADMIN, hook.id, name="Renamed here")
            assert run_child(str(path), "names") == ["Renamed here"]

    def test_concurrent_writers_in_two_processes_lose_nothing(self, path: Path) -> None:
        """
        Two processes creating 100 webhooks each on a new file at once: 200 webhooks, 200 entries.
        """
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(path), "create-many", "100", name],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("a", "b")
        ]
        try:
            for child in children:
                assert child.stdout is not None
                assert child.stdout.readline().strip() == "ready"
            for child in children:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
            results = [child.communicate(timeout=120) for child in children]
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
        for child, (out, err) in zip(children, results, strict=True):
            assert child.returncode == 0, err
            assert json.loads(out) == "done"
        with SQLiteStorage(path) as storage:
            names = sorted(w.name for w in storage.list_webhooks())
            assert names == sorted(f"{p}-{i}" for p in "ab" for i in range(100))
            assert len(storage.audit_entries(AuditQuery(action="create", limit=1000))) == 200
        conn = raw(path)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()


def test_sqlite_storage_in_a_fresh_directory_is_created(tmp_path: Path) -> None:
    """
    A missing file is created; its directory must exist.
    """
    path = tmp_path / "new.sqlite3"
    assert not path.exists()
    with SQLiteStorage(os.fspath(path)) as storage:
        assert storage.list_webhooks() == []
    assert path.exists()


class _LockedFor:
    """
    A stand-in connection whose WAL switch answers "database is locked" *times* times.
    """

    def __init__(self, times: int, error: str = "database is locked") -> None:
        self.left = times
        self.error = error
        self.calls = 0

    def execute(self, sql: str) -> _LockedFor:
        assert sql == "PRAGMA journal_mode = WAL"
        self.calls += 1
        if self.left:
            self.left -= 1
            raise sqlite3.OperationalError(self.error)
        return self

    def fetchone(self) -> tuple[str]:
        return ("wal",)


class TestSwitchToWal:
    """
    Two processes opening a new file at once: the WAL switch waits out the other opener.
    """

    def test_a_locked_switch_is_tried_again_with_growing_pauses(self) -> None:
        conn = _LockedFor(6)
        pauses: list[float] = []
        assert switch_to_wal(conn, timeout=10.0, clock=lambda: 0.0, sleep=pauses.append) == "wal"
        assert conn.calls == 7
        assert pauses == [0.005, 0.01, 0.02, 0.04, 0.08, 0.1]

    def test_it_gives_up_when_the_busy_timeout_has_passed(self) -> None:
        now = [0.0]

        def sleep(seconds: float) -> None:
            now[0] += seconds

        conn = _LockedFor(1_000)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            switch_to_wal(conn, timeout=1.0, clock=lambda: now[0], sleep=sleep)
        assert 1.0 <= now[0] < 1.2
        assert conn.calls < 20

    def test_other_errors_are_not_retried(self) -> None:
        conn = _LockedFor(1, error="disk I/O error")
        with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
            switch_to_wal(conn, timeout=10.0, sleep=lambda s: None)
        assert conn.calls == 1
