"""
PostgresStorage beyond the shared contract: its schema, configuration, pool, errors and processes.

These tests need a PostgreSQL server (see ``postgres_dsn`` in conftest): without one they are
skipped, with the reason; with PENDO_WEBHOOKS_TEST_DSN set they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings

from pendo_webhooks.dispatcher import DeliveryStatus, Dispatcher, Outcome
from pendo_webhooks.events import new_unique_id
from pendo_webhooks.exceptions import (
    ConfigurationError,
    ConflictError,
    StorageError,
    UnknownDelivery,
)
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage, Storage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event

from . import conftest
from .conftest import fresh_pg_schema, postgres_dsn
from .test_outbox_contract import (
    T0,
    OutboxMachine,
    attempt_for,
    claim,
    delivery,
    finished,
    hook,
)
from .test_storage_contract import entry, make_webhook


try:
    import psycopg
    import psycopg.conninfo
    import psycopg.errors
    from psycopg import sql

    from pendo_webhooks.storage import PostgresStorage, _postgres_core
    from pendo_webhooks.storage._postgres_schema import MIGRATIONS, SCHEMA_COMMENT
except ImportError:  # every test here then skips (or fails) through the dsn fixture
    pass

#: Every test needs the server: without one, it is skipped (or fails, if it is required).
pytestmark = pytest.mark.usefixtures("dsn")


ADMIN = Actor("u-1", is_admin=True)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(name="dsn")
def _dsn() -> str:
    return postgres_dsn()


@pytest.fixture(name="schema")
def _schema(dsn: str) -> Iterator[str]:
    """
    A fresh schema name, dropped (whatever is in it) after the test.
    """
    name = fresh_pg_schema()
    yield name
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(name="admin")
def _admin(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """
    A plain autocommit psycopg connection, for looking behind the API.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def open_store(dsn: str, schema: str, **kwargs: Any) -> PostgresStorage:
    """
    A PostgresStorage on *schema*.
    """
    return PostgresStorage(dsn, schema=schema, **kwargs)


def run(
    conn: psycopg.Connection[Any], query: str, *params: object, schema: str = ""
) -> list[tuple[Any, ...]]:
    """
    Every row of *query*, with ``{schema}`` in it replaced by the quoted *schema*.
    """
    statement = sql.SQL(query).format(schema=sql.Identifier(schema)) if schema else query
    cur = conn.execute(statement, params)  # type: ignore[call-overload]
    return cur.fetchall() if cur.description else []


def one(conn: psycopg.Connection[Any], query: str, *params: object, schema: str = "") -> Any:
    """
    The first column of the first row of *query* (see :func:`run`).
    """
    return run(conn, query, *params, schema=schema)[0][0]


class TestSchema:
    def test_new_schema_is_created_marked_and_migrated(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        Opening creates the schema, marks it as ours, and records every migration once.
        """
        with open_store(dsn, schema) as store:
            assert store.schema == schema
        comment = one(admin, "SELECT obj_description(%s::regnamespace, 'pg_namespace')", schema)
        assert comment == SCHEMA_COMMENT
        versions = run(
            admin, "SELECT version FROM {schema}.schema_migrations ORDER BY version", schema=schema
        )
        assert [v for (v,) in versions] == sorted(m.version for m in MIGRATIONS)
        tables = {
            r[0]
            for r in admin.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        }
        assert {"schema_migrations", "webhooks", "audit_log"} <= tables

    def test_tables_stay_inside_the_schema(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        Nothing is created in the public schema (or anywhere but the chosen schema).
        """
        before = one(
            admin, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        )
        with open_store(dsn, schema) as store:
            hook = make_webhook()
            store.insert_webhook(hook, audit=entry(hook.id))
        after = one(
            admin, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        )
        assert after == before

    def test_reopening_keeps_data_and_migrates_nothing_twice(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A second storage on the same schema sees the data; no migration is applied again.
        """
        hook = make_webhook()
        with open_store(dsn, schema) as first:
            first.insert_webhook(hook, audit=entry(hook.id))
        applied = one(
            admin, "SELECT max(applied_at) FROM {schema}.schema_migrations", schema=schema
        )
        with open_store(dsn, schema) as second:
            assert second.get_webhook(hook.id) == hook
        assert (
            one(admin, "SELECT max(applied_at) FROM {schema}.schema_migrations", schema=schema)
            == applied
        )

    def test_two_schemas_are_independent(self, dsn: str, schema: str) -> None:
        """
        Two storages on two schemas of one database do not see each other's webhooks.
        """
        other = fresh_pg_schema()
        with open_store(dsn, schema) as a, open_store(dsn, other) as b:
            try:
                hook = make_webhook()
                a.insert_webhook(hook, audit=entry(hook.id))
                assert b.list_webhooks() == []
                assert [w.id for w in a.list_webhooks()] == [hook.id]
            finally:
                b.drop_schema()

    def test_foreign_schema_is_refused_and_untouched(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A schema of that name holding someone else's tables raises StorageError; nothing changes.
        """
        run(admin, "CREATE SCHEMA {schema}", schema=schema)
        run(admin, "CREATE TABLE {schema}.orders (id int)", schema=schema)
        with pytest.raises(StorageError, match="not a pendo-webhooks schema"):
            open_store(dsn, schema)
        tables = admin.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
        assert tables == [("orders",)]
        assert (
            one(admin, "SELECT obj_description(%s::regnamespace, 'pg_namespace')", schema) is None
        )

    def test_empty_schema_made_by_a_dba_is_adopted(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        An existing empty schema (created ahead by an administrator) is used as it is.
        """
        run(admin, "CREATE SCHEMA {schema}", schema=schema)
        with open_store(dsn, schema) as store:
            assert store.list_webhooks() == []
        assert one(admin, "SELECT count(*) FROM {schema}.schema_migrations", schema=schema) >= 1

    def test_newer_schema_is_refused(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A schema migrated by a newer library version (an unknown migration) raises StorageError.
        """
        open_store(dsn, schema).close()
        run(
            admin,
            "INSERT INTO {schema}.schema_migrations (version, name) VALUES (999, 'future')",
            schema=schema,
        )
        with pytest.raises(StorageError, match=r"migration 999.*upgrade pendo-webhooks"):
            open_store(dsn, schema)

    def test_missing_migration_is_applied_on_open(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A schema lacking a migration (made by an older version) gets it when opened.
        """
        open_store(dsn, schema).close()
        run(admin, "ALTER TABLE {schema}.webhooks DROP COLUMN segment_gzip", schema=schema)
        run(admin, "DELETE FROM {schema}.schema_migrations WHERE version = 4", schema=schema)
        with open_store(dsn, schema) as store:
            hook = make_webhook()
            store.insert_webhook(hook, audit=entry(hook.id))
            assert store.get_webhook(hook.id).segment_gzip is False
        assert one(
            admin,
            "SELECT count(*) FROM {schema}.schema_migrations WHERE version = 4",
            schema=schema,
        )

    def test_migration_5_adds_the_claim_count_to_existing_deliveries(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A schema from before migration 5 keeps its deliveries; they start with no claims,
        and claims are counted (max_claims) once migrated.
        """
        with open_store(dsn, schema) as store:
            new = delivery(hook(store).id)
            store.enqueue_deliveries([new])
        run(admin, "ALTER TABLE {schema}.deliveries DROP COLUMN claims", schema=schema)
        run(admin, "DELETE FROM {schema}.schema_migrations WHERE version = 5", schema=schema)
        with open_store(dsn, schema) as store:
            assert one(admin, "SELECT claims FROM {schema}.deliveries", schema=schema) == 0
            for hour in range(2):
                now = T0 + timedelta(hours=hour)
                (claimed,) = store.claim_due(
                    owner="w",
                    now=now,
                    lease_until=now + timedelta(minutes=1),
                    limit=1,
                    max_claims=1,
                )
                assert (
                    one(admin, "SELECT claims FROM {schema}.deliveries", schema=schema) == 1 + hour
                )
            assert claimed.status is DeliveryStatus.DEAD
        assert (
            one(
                admin,
                "SELECT name FROM {schema}.schema_migrations WHERE version = 5",
                schema=schema,
            )
            == "delivery claim count"
        )

    def test_migrate_false_refuses_a_schema_that_is_not_ready(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        With migrate=False a missing schema raises StorageError, uncreated; a ready one opens.
        """
        with pytest.raises(StorageError, match="open it once with migrate=True"):
            open_store(dsn, schema, migrate=False)
        assert one(admin, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", schema) == 0
        open_store(dsn, schema).close()
        with open_store(dsn, schema, migrate=False) as store:
            assert store.list_webhooks() == []

    def test_concurrent_first_opens_migrate_once(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        Eight storages opening one new schema at the same moment all succeed; each migration once.
        """
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []
        stores: list[PostgresStorage] = []

        def opener() -> None:
            barrier.wait()
            try:
                stores.append(open_store(dsn, schema, min_connections=0))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=opener) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for store in stores:
            store.close()
        assert errors == []
        assert len(stores) == 8
        counts = run(
            admin,
            "SELECT version, count(*) FROM {schema}.schema_migrations GROUP BY version",
            schema=schema,
        )
        assert all(n == 1 for _, n in counts)

    def test_drop_schema_removes_everything(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        drop_schema deletes the schema and its tables, and closes the storage.
        """
        store = open_store(dsn, schema)
        store.drop_schema()
        assert one(admin, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", schema) == 0
        with pytest.raises(StorageError, match="closed"):
            store.list_webhooks()

    def test_drop_schema_refuses_a_schema_that_is_no_longer_ours(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        If the schema's marker is gone (someone else's now), drop_schema raises and drops nothing.
        """
        store = open_store(dsn, schema)
        run(admin, "COMMENT ON SCHEMA {schema} IS 'the shop'", schema=schema)
        with pytest.raises(StorageError, match="not a pendo-webhooks schema"):
            store.drop_schema()
        assert one(admin, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", schema) == 1
        store.close()


class TestConfiguration:
    @pytest.mark.parametrize(
        "name",
        ["", "Hooks", "has-dash", "pg_hooks", "a" * 64, "1abc", 'x"; DROP TABLE y; --', 7],
        ids=repr,
    )
    def test_bad_schema_names_are_refused_before_connecting(self, name: object) -> None:
        """
        A schema name that is not a plain lower-case identifier raises ConfigurationError.
        """
        with pytest.raises(ConfigurationError, match="schema must be"):
            PostgresStorage("postgresql://nobody@127.0.0.1:1/x", schema=name)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"min_connections": -1}, "min_connections"),
            ({"max_connections": 0}, "max_connections"),
            ({"max_connections": True}, "max_connections"),
            ({"min_connections": 5, "max_connections": 2}, "at least min_connections"),
            ({"connect_timeout": 0}, "connect_timeout"),
            ({"connect_timeout": "5"}, "connect_timeout"),
            ({"connect_timeout": False}, "connect_timeout"),
        ],
    )
    def test_bad_pool_settings_name_the_setting(self, kwargs: dict[str, Any], match: str) -> None:
        """
        Pool sizes and the timeout are checked before any connection is made.
        """
        with pytest.raises(ConfigurationError, match=match):
            PostgresStorage("postgresql://nobody@127.0.0.1:1/x", **kwargs)

    def test_bad_conninfo_is_refused_without_quoting_it(self) -> None:
        """
        An unparseable connection string raises ConfigurationError that does not echo it.
        """
        with pytest.raises(ConfigurationError, match="not a valid") as info:
            PostgresStorage("host=db password=s3cret-pw bogus")
        assert "s3cret-pw" not in str(info.value)
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__
        with pytest.raises(ConfigurationError, match="connection string"):
            PostgresStorage(b"host=db")  # type: ignore[arg-type]

    def test_unreachable_server_raises_storage_error_quickly(self) -> None:
        """
        A closed port gives StorageError naming host, port and database, not the password.
        """
        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            PostgresStorage("postgresql://app:s3cret-pw@127.0.0.1:1/shop", connect_timeout=2)
        assert time.monotonic() - started < 10
        text = str(info.value)
        assert "host='127.0.0.1', port='1', dbname='shop'" in text
        assert "s3cret-pw" not in text
        assert "s3cret-pw" not in repr(info.value.__cause__)

    def test_repr_shows_where_but_never_the_password(self, dsn: str, schema: str) -> None:
        """
        The repr names host, port, database and schema, and hides the password.
        """
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        params["password"] = "s3cret-pw"  # trust authentication ignores it
        with open_store(psycopg.conninfo.make_conninfo(**params), schema) as store:
            text = repr(store)
        assert "s3cret-pw" not in text
        assert f"schema={schema!r}" in text
        assert text.startswith("<PostgresStorage(host=")
        assert text.endswith(", closed)>") is False
        assert repr(store).endswith(", closed)>")


class TestConnections:
    def test_closed_storage_raises_and_closing_twice_is_harmless(
        self, dsn: str, schema: str
    ) -> None:
        """
        After close() every call raises StorageError; a second close() does nothing.
        """
        store = open_store(dsn, schema)
        store.close()
        store.close()
        with pytest.raises(StorageError, match="is closed"):
            store.get_webhook("wh_1")
        with pytest.raises(StorageError, match="is closed"):
            store.insert_webhook(make_webhook(), audit=entry("wh_x"))

    def test_no_free_connection_raises_after_the_timeout(self, dsn: str, schema: str) -> None:
        """
        With every pooled connection busy, a call waits connect_timeout, then raises StorageError.
        """
        with open_store(dsn, schema, max_connections=1, connect_timeout=0.5) as store:
            with store._connection():
                started = time.monotonic()
                with pytest.raises(StorageError, match="no PostgreSQL connection"):
                    store.list_webhooks()
                assert time.monotonic() - started < 10
            assert store.list_webhooks() == []

    def test_a_broken_connection_is_replaced(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        If the server ends a pooled connection, one call fails with StorageError; later ones work.
        """
        with open_store(dsn, schema, min_connections=1, max_connections=1) as store:
            store.list_webhooks()
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND query LIKE %s",
                (f'%"{schema}"%',),
            )
            outcomes = []
            for _ in range(3):
                try:
                    outcomes.append(len(store.list_webhooks()))
                except StorageError:
                    outcomes.append(-1)
            assert outcomes[-1] == 0
            assert outcomes.count(-1) <= 1

    def test_serialization_failures_are_retried(self, dsn: str, schema: str) -> None:
        """
        A transaction that hits a serialization failure or deadlock runs again, up to 3 more times.
        """
        with open_store(dsn, schema) as store:
            calls = []

            def flaky(cur: Any) -> str:
                calls.append(1)
                if len(calls) < 3:
                    raise psycopg.errors.SerializationFailure("could not serialize access")
                cur.execute("SELECT 1")
                return "done"

            assert store._write("testing", flaky) == "done"
            assert len(calls) == 3

            def deadlocked(cur: Any) -> None:
                calls.append(1)
                raise psycopg.errors.DeadlockDetected("deadlock detected")

            calls.clear()
            with pytest.raises(StorageError, match=r"\[40P01\]|deadlock"):
                store._write("testing", deadlocked)
            assert len(calls) == 4

    def test_fork_child_opens_its_own_pool(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A forked child uses the storage through a pool of its own; the parent's keeps working.
        """
        with open_store(dsn, schema, min_connections=2) as store:
            store.list_webhooks()
            hook = make_webhook()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child reports through its exit code
                code = 1
                try:
                    store.insert_webhook(hook, audit=entry(hook.id))
                    store.close()
                    code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert store.get_webhook(hook.id) == hook
            assert [w.id for w in store.list_webhooks()] == [hook.id]

    def test_after_a_pid_change_the_inherited_pool_is_left_alone(
        self, dsn: str, schema: str
    ) -> None:
        """
        Seen from another pid, the old pool is set aside unclosed and a new one serves calls.
        """
        store = open_store(dsn, schema)
        inherited = store._pool_obj
        store._pid = -1  # as a forked child sees it
        try:
            assert store.list_webhooks() == []
            assert store._pool_obj is not inherited
            assert _postgres_core._FORK_ORPHANS[-1] is inherited
            assert not inherited.closed
            store._pid = -1
            store.close()  # a child's close leaves the parent's pool open
            assert not store._pool_obj.closed
        finally:
            _postgres_core._FORK_ORPHANS.remove(inherited)
            inherited.close()
            store._pool_obj.close()


class TestErrors:
    def test_constraint_errors_do_not_carry_the_row(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A failed write's StorageError shows neither the row (secret included) nor a chained cause.
        """
        with open_store(dsn, schema) as store:
            admin.execute(
                f'ALTER TABLE "{schema}".webhooks '
                "ADD CONSTRAINT no_forbidden CHECK (name <> 'Forbidden')".encode()
            )
            hook = make_webhook(name="Forbidden", secret="s3cret-in-row")
            with pytest.raises(StorageError, match=r"\[23514\]") as info:
                store.insert_webhook(hook, audit=entry(hook.id))
            rendered = "".join(traceback.format_exception(info.value))
            assert "s3cret-in-row" not in rendered
            assert b"s3cret-in-row".hex() not in rendered
            assert "Failing row" not in rendered
            assert info.value.__cause__ is None
            assert store.list_webhooks() == []

    def test_duplicate_audit_id_rolls_the_webhook_back(self, dsn: str, schema: str) -> None:
        """
        If the audit entry cannot be written, the webhook is not written either.
        """
        with open_store(dsn, schema) as store:
            first = make_webhook()
            store.insert_webhook(first, audit=entry(first.id, id="aud_same"))
            second = make_webhook()
            with pytest.raises(StorageError, match="storing a webhook"):
                store.insert_webhook(second, audit=entry(second.id, id="aud_same"))
            assert [w.id for w in store.list_webhooks()] == [first.id]

    def test_invalid_stored_row_raises_storage_error(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A row edited behind the library's back into something invalid raises StorageError on read.
        """
        with open_store(dsn, schema) as store:
            hook = make_webhook()
            store.insert_webhook(hook, audit=entry(hook.id))
            run(admin, "UPDATE {schema}.webhooks SET categories = '{{pageViewed}}'", schema=schema)
            with pytest.raises(StorageError, match=f"stored row '{hook.id}' is not valid"):
                store.get_webhook(hook.id)


class _ReversingCodec:
    """
    A toy "encryption": reverses the text and marks it.
    """

    def encode(self, plaintext: str) -> str:
        return "enc:" + plaintext[::-1]

    def decode(self, stored: str) -> str:
        if not stored.startswith("enc:"):
            raise ValueError(f"not ours: {stored}")
        return stored[4:][::-1]


class TestSecrets:
    def test_codec_encrypts_at_rest_and_round_trips(
        self, dsn: str, schema: str, admin: psycopg.Connection[Any]
    ) -> None:
        """
        With a codec, the stored secret is the codec's text; reading gives the plaintext back.
        """
        with open_store(dsn, schema, secret_codec=_ReversingCodec()) as store:
            hook = make_webhook(secret="plain-secret\x00with NUL")
            store.insert_webhook(hook, audit=entry(hook.id))
            stored = one(admin, "SELECT secret FROM {schema}.webhooks", schema=schema)
            assert bytes(stored) == b"enc:LUN htiw\x00terces-nialp"
            retired = one(
                admin, "SELECT previous_secrets::text FROM {schema}.webhooks", schema=schema
            )
            assert "older-secret" not in retired
            got = store.get_webhook(hook.id)
            assert got.secret is not None
            assert got.secret.reveal() == "plain-secret\x00with NUL"

    def test_a_codec_that_cannot_decode_raises_without_the_value(
        self, dsn: str, schema: str
    ) -> None:
        """
        Reading with the wrong codec raises StorageError that quotes nothing stored.
        """
        with open_store(dsn, schema) as plain:
            hook = make_webhook(secret="s3cret-plain")
            plain.insert_webhook(hook, audit=entry(hook.id))
        with open_store(dsn, schema, secret_codec=_ReversingCodec()) as store:
            with pytest.raises(StorageError, match="could not be decoded") as info:
                store.get_webhook(hook.id)
            assert "s3cret-plain" not in "".join(traceback.format_exception(info.value))

    def test_a_codec_returning_bytes_is_refused(self, dsn: str, schema: str) -> None:
        """
        A codec whose encode() returns something other than text raises StorageError.
        """

        class BytesCodec:
            def encode(self, plaintext: str) -> str:
                return plaintext.encode()  # type: ignore[return-value]

            def decode(self, stored: str) -> str:
                return stored

        with open_store(dsn, schema, secret_codec=BytesCodec()) as store:
            hook = make_webhook()
            with pytest.raises(StorageError, match="must return text"):
                store.insert_webhook(hook, audit=entry(hook.id))

    def test_registry_on_postgres(self, dsn: str, schema: str) -> None:
        """
        The registry works on PostgresStorage end to end: create, enable, audit.
        """
        with open_store(dsn, schema) as store:
            registry = WebhookRegistry(store)
            hook = registry.create(
                ADMIN,
                name="NPS",
                url="https://hooks.example.com/x",
                secret="s",
                categories={"npsSubmitted"},
            )
            registry.enable(ADMIN, hook.id)
            assert [h.id for h in registry.subscribed("npsSubmitted")] == [hook.id]
            assert [e.action for e in registry.audit(ADMIN, webhook_id=hook.id)] == [
                "enable",
                "create",
            ]


class TestPackaging:
    def test_importing_the_storage_package_does_not_import_psycopg(self) -> None:
        """
        ``import pendo_webhooks.storage`` works without psycopg; PostgresStorage imports it.
        """
        code = textwrap.dedent(
            """
            import sys
            import pendo_webhooks, pendo_webhooks.storage
            print("psycopg" in sys.modules)
            from pendo_webhooks.storage import PostgresStorage
            print("psycopg" in sys.modules, PostgresStorage.__name__)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.split() == ["False", "True", "PostgresStorage"]

    def test_without_psycopg_the_error_says_what_to_install(self) -> None:
        """
        Without psycopg, asking for PostgresStorage raises ImportError naming the extra.
        """
        code = textwrap.dedent(
            """
            import sys
            sys.modules["psycopg"] = None  # as if it were not installed
            import pendo_webhooks.storage as storage
            try:
                storage.PostgresStorage
            except ImportError as exc:
                print(exc)
            try:
                storage.NoSuchThing
            except AttributeError as exc:
                print(exc)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        lines = done.stdout.splitlines()
        assert 'pip install "pendo-webhooks[postgres]"' in lines[0]
        assert "NoSuchThing" in lines[1]


class TestTestSetup:
    def test_unreachable_server_skips_unless_required(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        Without a server the PostgreSQL tests skip with the reason; with the variable set, fail.
        """
        monkeypatch.setattr(conftest, "POSTGRES_DSN", "postgresql://postgres@127.0.0.1:1/x")
        monkeypatch.setattr(conftest, "_POSTGRES_REQUIRED", False)
        conftest._postgres_missing.cache_clear()
        try:
            with pytest.raises(pytest.skip.Exception, match=r"no server at 127\.0\.0\.1:1"):
                postgres_dsn()
            monkeypatch.setattr(conftest, "_POSTGRES_REQUIRED", True)
            with pytest.raises(pytest.fail.Exception, match="required: PENDO_WEBHOOKS_TEST_DSN"):
                postgres_dsn()
        finally:
            conftest._postgres_missing.cache_clear()

    def test_missing_psycopg_skips_with_the_install_hint(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        Without psycopg installed the PostgreSQL tests skip, saying what to install.
        """
        monkeypatch.setitem(sys.modules, "psycopg", None)
        monkeypatch.setattr(conftest, "_POSTGRES_REQUIRED", False)
        conftest._postgres_missing.cache_clear()
        try:
            with pytest.raises(pytest.skip.Exception, match="psycopg is not installed"):
                postgres_dsn()
        finally:
            conftest._postgres_missing.cache_clear()


# -- the outbox on PostgreSQL: host transactions, SKIP LOCKED claims, the model ---------------


def outbox_hook(store: PostgresStorage, *, enabled: bool = True) -> Webhook:
    """
    An enabled URL webhook stored through a registry.
    """
    return hook(store, enabled=enabled)


@pytest.fixture(name="store")
def _store(dsn: str, schema: str) -> Iterator[PostgresStorage]:
    with open_store(dsn, schema) as store:
        yield store


@pytest.fixture(name="host")
def _host(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """
    The host application's own connection: psycopg's default, not autocommit.
    """
    with psycopg.connect(dsn) as conn:
        yield conn


class TestHostConnection:
    def test_rollback_stores_nothing_and_commit_stores_it(
        self, store: PostgresStorage, host: psycopg.Connection[Any]
    ) -> None:
        """
        Deliveries written through the host's connection roll back and commit with it.
        """
        webhook = outbox_hook(store)
        first = delivery(webhook.id)
        host.execute("SELECT 1")  # the host's business work: a transaction is open
        assert store.enqueue_deliveries([first], connection=host) == [None]
        assert store.pending_summary() == (0, None)  # not visible before the commit
        host.rollback()
        assert store.pending_summary() == (0, None)
        with pytest.raises(UnknownDelivery):
            store.get_delivery(first.id)
        second = delivery(webhook.id)
        assert store.enqueue_deliveries([second], connection=host) == [None]
        host.commit()
        assert store.get_delivery(second.id) == second

    def test_inside_a_transaction_block_of_an_autocommit_connection(
        self, store: PostgresStorage, dsn: str
    ) -> None:
        """
        On an autocommit connection, the host's ``with conn.transaction()`` block decides.
        """
        webhook = outbox_hook(store)
        kept, dropped = delivery(webhook.id), delivery(webhook.id)
        with psycopg.connect(dsn, autocommit=True) as conn:

            def failing_business_change() -> None:
                with conn.transaction():
                    store.enqueue_deliveries([dropped], connection=conn)
                    raise LookupError("the order is gone")

            with pytest.raises(LookupError):
                failing_business_change()
            with conn.transaction():
                store.enqueue_deliveries([kept], connection=conn)
            outside = delivery(webhook.id)
            store.enqueue_deliveries([outside], connection=conn)  # idle: commits at once
        assert {d.id for d in store.list_deliveries()} == {kept.id, outside.id}

    def test_a_database_error_leaves_the_host_transaction_usable(
        self, store: PostgresStorage, host: psycopg.Connection[Any], admin: psycopg.Connection[Any]
    ) -> None:
        """
        If our write fails inside the host's transaction, only our savepoint is undone.
        """
        webhook = outbox_hook(store)
        run(
            admin,
            "CREATE FUNCTION {schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'no more deliveries'; END $$",
            schema=store.schema,
        )
        run(
            admin,
            "CREATE TRIGGER refuse BEFORE INSERT ON {schema}.deliveries "
            "FOR EACH ROW EXECUTE FUNCTION {schema}.refuse()",
            schema=store.schema,
        )
        host.execute("CREATE TEMP TABLE orders (id int)")
        host.execute("INSERT INTO orders VALUES (1)")
        with pytest.raises(StorageError, match="no more deliveries"):
            store.enqueue_deliveries([delivery(webhook.id)], connection=host)
        assert host.execute("SELECT count(*) FROM orders").fetchone() == (1,)
        host.commit()

    def test_a_taken_id_raises_conflict_and_leaves_the_host_alone(
        self, store: PostgresStorage, host: psycopg.Connection[Any]
    ) -> None:
        """
        A taken delivery id is a ConflictError, with no database error in the host's way.
        """
        webhook = outbox_hook(store)
        taken = delivery(webhook.id)
        store.enqueue_deliveries([taken])
        host.execute("SELECT 1")
        with pytest.raises(ConflictError, match=taken.id):
            store.enqueue_deliveries([delivery(webhook.id, id=taken.id)], connection=host)
        assert host.execute("SELECT 2").fetchone() == (2,)
        host.commit()

    @pytest.mark.parametrize("state", ["failed", "closed", "not psycopg"])
    def test_unusable_connections_are_refused(
        self, store: PostgresStorage, dsn: str, state: str
    ) -> None:
        """
        A connection in a failed transaction, a closed one, or not a psycopg one is refused.
        """
        webhook = outbox_hook(store)
        conn = psycopg.connect(dsn)
        if state == "failed":
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1 / 0")
        elif state == "closed":
            conn.close()
        given: object = conn if state != "not psycopg" else object()
        said = {
            "failed": "it is in a failed transaction",
            "closed": "it is closed",
            "not psycopg": "must be a psycopg 3 Connection",
        }[state]
        with pytest.raises(ConfigurationError, match=f"connection.*{said}"):
            store.enqueue_deliveries([delivery(webhook.id)], connection=given)
        conn.close()
        assert store.pending_summary() == (0, None)

    def test_a_disable_waits_for_an_open_host_transaction(
        self, store: PostgresStorage, host: psycopg.Connection[Any]
    ) -> None:
        """
        A webhook disabled while a host transaction holds its new delivery still cancels it:
        the disable waits for the host's commit, then sees the delivery.
        """
        webhook = outbox_hook(store)
        registry = WebhookRegistry(store, clock=FrozenClock(T0))
        waiting = delivery(webhook.id)
        host.execute("SELECT 1")
        store.enqueue_deliveries([waiting], connection=host)
        done = threading.Event()

        def disable() -> None:
            registry.disable(ADMIN, webhook.id, reason="paused")
            done.set()

        thread = threading.Thread(target=disable)
        thread.start()
        assert not done.wait(0.3)  # blocked on the host's lock
        host.commit()
        thread.join(10)
        assert done.is_set()
        assert store.get_delivery(waiting.id).status is DeliveryStatus.CANCELLED


class TestClaims:
    def test_claims_skip_rows_locked_by_another_claim(
        self, store: PostgresStorage, dsn: str
    ) -> None:
        """
        A claim never waits for rows another transaction is claiming: it takes the others.
        """
        webhook = outbox_hook(store)
        rows = [delivery(webhook.id) for _ in range(4)]
        store.enqueue_deliveries(rows)
        with psycopg.connect(dsn) as other:
            locked = other.execute(
                sql.SQL(
                    "SELECT id FROM {}.deliveries ORDER BY next_attempt_at, id LIMIT 2 FOR UPDATE"
                ).format(sql.Identifier(store.schema))
            ).fetchall()
            started = time.monotonic()
            taken = claim(store, limit=10)
            assert time.monotonic() - started < 5
            assert {d.id for d in taken} == {r.id for r in rows} - {i for (i,) in locked}
            other.rollback()
        assert {d.id for d in claim(store, owner="w2", limit=10)} == {i for (i,) in locked}

    def test_many_processes_claim_disjoint_sets(
        self, dsn: str, schema: str, tmp_path: Path
    ) -> None:
        """
        Four processes claiming one outbox at once (three at a time each) never share a delivery.
        """
        with open_store(dsn, schema) as store:
            webhook = outbox_hook(store)
            store.enqueue_deliveries([delivery(webhook.id) for _ in range(400)])
        go = tmp_path / "go"
        code = textwrap.dedent(
            f"""
            import pathlib, sys, time
            from datetime import datetime, timedelta, timezone
            from pendo_webhooks.storage import PostgresStorage
            now = datetime(2026, 1, 1, tzinfo=timezone.utc)
            with PostgresStorage({dsn!r}, schema={schema!r}) as store:
                pathlib.Path(sys.argv[2]).touch()  # ready
                while not pathlib.Path({str(go)!r}).exists():
                    time.sleep(0.005)
                while batch := store.claim_due(
                    owner=sys.argv[1], now=now, lease_until=now + timedelta(minutes=1), limit=3
                ):
                    print(*(d.id for d in batch), flush=True)
            """
        )
        ready = [tmp_path / f"ready-{i}" for i in range(4)]
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, f"p{i}", str(ready[i])],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(4)
        ]
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=60)[0] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4
        claimed = [i for out in outputs for i in out.split()]
        assert len(claimed) == len(set(claimed)) == 400
        assert sum(bool(out.split()) for out in outputs) >= 2  # they really did share the work

    def test_one_statement_is_run_again_after_a_deadlock(
        self, store: PostgresStorage, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A single statement that loses a deadlock runs again (up to 3 more times), then raises.
        """
        run(admin, "CREATE SEQUENCE {schema}.tries", schema=store.schema)
        run(
            admin,
            "CREATE FUNCTION {schema}.flaky(fail_until int) RETURNS int LANGUAGE plpgsql AS $$"
            " BEGIN IF nextval('" + store.schema + ".tries') < fail_until THEN"
            " RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END IF;"
            " RETURN 1; END $$",
            schema=store.schema,
        )
        query = store._q("SELECT {schema}.flaky(%s) AS ok")
        assert store._execute("testing", query, (3,)) == ([{"ok": 1}], 1)
        with pytest.raises(StorageError, match=r"\[40P01\]"):
            store._execute("testing", query, (1000,))
        assert one(admin, "SELECT last_value FROM {schema}.tries", schema=store.schema) == 7

    def test_nothing_to_record_writes_nothing(self, store: PostgresStorage) -> None:
        """
        Recording an empty batch of outcomes returns an empty list without a round trip.
        """
        assert store.record_outcomes([], owner="w1", now=T0) == []

    def test_record_outcome_text_with_nul_is_stored(self, store: PostgresStorage) -> None:
        """
        An error text containing NUL (which PostgreSQL text cannot hold) is still recorded.
        """
        webhook = outbox_hook(store)
        store.enqueue_deliveries([delivery(webhook.id)])
        (claimed,) = claim(store)
        row = attempt_for(claimed, status_code=None, error_kind="error", detail="bad\x00byte")
        done = attrs.evolve(finished(claimed, DeliveryStatus.FAILED, T0), last_error="x\x00y")
        assert store.record_outcome(done, row, owner="w1", now=T0)
        assert store.get_delivery(claimed.id).last_error == "x\ufffdy"
        assert store.list_attempts(claimed.id)[0].detail == "bad\ufffdbyte"

    def test_a_duplicate_id_within_one_batch_is_refused(self, store: PostgresStorage) -> None:
        """
        Two deliveries with one id in one call raise ConflictError; nothing is stored.
        """
        webhook = outbox_hook(store)
        first = delivery(webhook.id)
        with pytest.raises(ConflictError, match=first.id):
            store.enqueue_deliveries([first, delivery(webhook.id, id=first.id)])
        assert store.enqueue_deliveries([]) == []
        assert store.pending_summary() == (0, None)

    def test_rows_that_do_not_load_raise_storage_error(
        self, store: PostgresStorage, admin: psycopg.Connection[Any]
    ) -> None:
        """
        A delivery row edited into something invalid raises StorageError when read.
        """
        webhook = outbox_hook(store)
        new = delivery(webhook.id)
        store.enqueue_deliveries([new])
        run(admin, "UPDATE {schema}.deliveries SET category = 'pageViewed'", schema=store.schema)
        with pytest.raises(StorageError, match="not valid"):
            store.get_delivery(new.id)


class PostgresOutboxMachine(OutboxMachine):
    """
    The outbox model test of the contract suite, on a fresh PostgreSQL schema per example.
    """

    def make_store(self) -> Storage:
        return open_store(postgres_dsn(), fresh_pg_schema(), min_connections=0)

    def teardown(self) -> None:
        assert isinstance(self.store, PostgresStorage)
        self.store.drop_schema()


PostgresOutboxMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPostgresOutboxModel = PostgresOutboxMachine.TestCase


class TestTransactionalOutbox:
    def test_enqueue_rolls_back_and_commits_with_the_host(
        self, store: PostgresStorage, host: psycopg.Connection[Any]
    ) -> None:
        """
        Enqueued in the host's transaction: rolled back, nothing is stored or sent; committed,
        exactly one delivery per subscribed webhook, each sent once.
        """
        registry = WebhookRegistry(store, clock=FrozenClock(T0))
        subscribed = [
            registry.enable(
                ADMIN,
                registry.create(
                    ADMIN,
                    name=f"hook {n}",
                    url=f"https://h{n}.example.com/in",
                    categories={"npsSubmitted"},
                ).id,
            )
            for n in range(2)
        ]
        other = registry.create(
            ADMIN, name="polls", url="https://h9.example.com/in", categories={"pollSubmitted"}
        )
        registry.enable(ADMIN, other.id)
        transport = RecordingTransport()
        with Dispatcher(registry, transport=transport) as dispatcher:
            host.execute("CREATE TEMP TABLE orders (id int)")
            host.execute("INSERT INTO orders VALUES (1)")
            rolled_back = dispatcher.enqueue(
                sample_event("npsSubmitted", unique_id=new_unique_id()), connection=host
            )
            assert [o.outcome for o in rolled_back.outcomes] == [Outcome.PENDING] * 2
            host.rollback()
            assert store.list_deliveries() == []
            assert dispatcher.drain(timeout=5).attempts == 0
            assert transport.requests == []

            host.execute("CREATE TEMP TABLE orders (id int)")
            host.execute("INSERT INTO orders VALUES (2)")
            committed = dispatcher.enqueue(
                sample_event("npsSubmitted", unique_id=new_unique_id()), connection=host
            )
            assert store.list_deliveries() == []  # not before the host commits
            host.commit()
            stored = store.list_deliveries()
            assert sorted(d.webhook_id for d in stored) == sorted(h.id for h in subscribed)
            assert {d.event_id for d in stored} == {committed.event_id}
            assert dispatcher.drain(timeout=5).delivered == 2
        assert sorted(r.url for r in transport.requests) == [
            "https://h0.example.com/in",
            "https://h1.example.com/in",
        ]
        assert {r.headers["webhook-id"] for r in transport.requests} == {committed.event_id}

    def test_enqueue_many_through_the_host_connection(
        self, store: PostgresStorage, host: psycopg.Connection[Any]
    ) -> None:
        """
        enqueue_many with a connection writes every event's deliveries in the host's transaction.
        """
        registry = WebhookRegistry(store, clock=FrozenClock(T0))
        webhook = outbox_hook(store)
        with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
            host.execute("SELECT 1")
            events = [sample_event("npsSubmitted", unique_id=new_unique_id()) for _ in range(3)]
            dispatcher.enqueue_many(events, connection=host)
            assert store.pending_summary()[0] == 0
            host.commit()
        assert {d.webhook_id for d in store.list_deliveries()} == {webhook.id}
        assert store.pending_summary()[0] == 3

    def test_a_store_without_host_connections_refuses_one(
        self, tmp_path: Path, host: psycopg.Connection[Any]
    ) -> None:
        """
        Passing a connection to a dispatcher on SQLite raises ConfigurationError; nothing stored.
        """
        with SQLiteStorage(tmp_path / "w.sqlite3") as sqlite:
            registry = WebhookRegistry(sqlite)
            hook_ = registry.create(
                ADMIN, name="n", url="https://h.example.com/in", categories={"npsSubmitted"}
            )
            registry.enable(ADMIN, hook_.id)
            with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
                with pytest.raises(ConfigurationError, match="PostgresStorage"):
                    dispatcher.enqueue(sample_event("npsSubmitted"), connection=host)
            assert sqlite.pending_summary() == (0, None)

    def test_the_flask_example_runs(self, dsn: str) -> None:
        """
        examples/transactional_outbox.py: the failed order leaves nothing; the other is sent.
        """
        pytest.importorskip("flask", reason="the example needs Flask (pip install flask)")
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "transactional_outbox.py"), "--dsn", dsn],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert "orders stored: 1" in lines
        assert "deliveries stored: 1" in lines
        assert "drained: 1 delivered, 0 pending" in lines
        expected = (
            'receiver got: webhook-id order-1-placed {"orderId": 1, "total": 12.5}, '
            "signature verified: True"
        )
        assert [line for line in lines if line.startswith("receiver got:")] == [expected]


class TestFirstSeen:
    def test_processes_and_threads_claim_each_key_exactly_once(
        self, store: PostgresStorage, dsn: str
    ) -> None:
        """
        Two processes of four threads each claim the same 1,000 keys in shuffled chunks:
        every key is claimed exactly once overall (and no batch deadlocks another).
        """
        store.record_known([f"visitor:{n}" for n in range(0, 1000, 10)], at=T0)  # some via API
        code = textwrap.dedent(
            f"""
            import random, sys, threading
            from datetime import datetime, timezone
            from pendo_webhooks.storage import PostgresStorage
            at = datetime(2026, 1, 1, tzinfo=timezone.utc)
            keys = [f"visitor:{{n}}" for n in range(1000)]
            with PostgresStorage({dsn!r}, schema={store.schema!r}) as store:
                barrier = threading.Barrier(4)
                got = []
                def work(seed):
                    mine = keys[:]
                    random.Random(seed).shuffle(mine)
                    barrier.wait()
                    for i in range(0, 1000, 50):
                        got.extend(store.claim_first_seen(mine[i : i + 50], at=at))
                threads = [threading.Thread(target=work, args=(sys.argv[1] + str(t),))
                           for t in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                print(*got)
            """
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, f"p{i}"], stdout=subprocess.PIPE, text=True
            )
            for i in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0]
        claimed = [k for out in outputs for k in out.split()]
        assert len(claimed) == len(set(claimed)) == 1000
        assert store.first_seen_origin("visitor:10") == "app"
        assert store.claim_first_seen(["visitor:10", "visitor:new"], at=T0) == {"visitor:new"}


# -- outcomes commit without waiting for the WAL flush; nothing else does -----------------------


class CommitLevels:
    """
    The ``synchronous_commit`` each pooled transaction of a store is about to commit with.

    Every pooled connection's work is put in an explicit transaction (the store's own
    transactions become savepoints in it), and the level is read just before its COMMIT,
    with the action the store named for it (None for plain reads).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str | None, str]] = []
        self._action = threading.local()
        retried = _postgres_core.PostgresCore._retried
        connection = _postgres_core.PostgresCore._connection

        def named(core: Any, action: str, run: Any) -> Any:
            self._action.name = action
            try:
                return retried(core, action, run)
            finally:
                self._action.name = None

        @contextlib.contextmanager
        def observed(core: Any) -> Iterator[Any]:
            with connection(core) as conn:
                conn.execute("BEGIN")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                level = conn.execute("SHOW synchronous_commit").fetchone()[0]
                conn.execute("COMMIT")
                self.seen.append((getattr(self._action, "name", None), level))

        monkeypatch.setattr(_postgres_core.PostgresCore, "_retried", named)
        monkeypatch.setattr(_postgres_core.PostgresCore, "_connection", observed)

    def levels(self, *, outcomes: bool) -> set[str]:
        return {
            level
            for action, level in self.seen
            if (action is not None and action.startswith("recording")) is outcomes
        }


class TestRelaxedOutcomes:
    def test_only_outcome_transactions_skip_the_flush(
        self,
        dsn: str,
        schema: str,
        admin: psycopg.Connection[Any],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """
        dispatch(), drain() and redeliver: outcomes commit with synchronous_commit off,
        enqueues, admin changes and claims at the server's own level.
        """
        configured = one(admin, "SHOW synchronous_commit")
        if configured == "off":  # pragma: no cover - depends on the test server
            pytest.skip(
                "the test server runs with synchronous_commit = off: nothing to tell apart"
            )
        clock = FrozenClock(T0)
        with open_store(dsn, schema) as store:
            registry = WebhookRegistry(store, clock=clock)
            created = registry.create(
                ADMIN,
                name="Hook",
                url="https://hooks.example.com/in",
                secret="s",
                categories=["npsSubmitted"],
            )
            registry.enable(ADMIN, created.id)
            log = CommitLevels(monkeypatch)
            transport = RecordingTransport()
            with Dispatcher(
                registry, store, transport=transport, clock=clock, sleep=clock.sleep
            ) as d:
                first = d.dispatch(sample_event("npsSubmitted", unique_id=new_unique_id()))
                assert first.all_delivered
                for _ in range(2):
                    d.enqueue(sample_event("npsSubmitted", unique_id=new_unique_id()))
                assert d.drain(timeout=5).delivered == 2
                d.redeliver(first.outcomes[0].delivery_id or "")
                assert d.drain(timeout=5).delivered == 1
            actions = {action for action, _ in log.seen}
            assert {"recording outcomes", "recording an outcome and claiming"} <= actions
            assert log.levels(outcomes=True) == {"off"}
            assert log.levels(outcomes=False) == {configured}
            assert store.get_delivery(first.outcomes[0].delivery_id or "").status is (
                DeliveryStatus.DELIVERED
            )
        assert one(admin, "SHOW synchronous_commit") == configured  # no session was changed
