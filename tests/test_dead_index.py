"""
The partial index the dead-delivery count reads (SQLite migration 11, PostgreSQL 9).

The settings page counts each webhook's dead deliveries of the last days
(count_by_webhook); these tests show each SQL store answers from its index, without
reading the deliveries table, and that an older file or schema gets the index on open.
What the count returns is the storage contract's business (storage_contract.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pendo_webhooks.dispatcher import DeliveryStatus
from pendo_webhooks.storage import SQLiteStorage, Storage
from pendo_webhooks.storage._schema import DEAD_INDEX_MIGRATION, LATEST_VERSION

from .conftest import fresh_pg_schema, postgres_dsn
from .test_outbox_contract import T0, hook, run_to
from .test_sqlite_storage import undo_dead_index


INDEX = "deliveries_unhappy_by_time"
DEAD, FAILED, DELIVERED = DeliveryStatus.DEAD, DeliveryStatus.FAILED, DeliveryStatus.DELIVERED


def fill(store: Storage) -> str:
    """
    Give *store* one webhook with two dead, one failed and one delivered delivery; its id.
    """
    webhook_id = hook(store).id
    for status in (DEAD, DEAD, FAILED, DELIVERED):
        run_to(store, webhook_id, status)
    return webhook_id


# -- SQLite ------------------------------------------------------------------------------


@pytest.fixture(name="path")
def _path(tmp_path: Path) -> Path:
    return tmp_path / "webhooks.sqlite3"


def sqlite_plan(store: SQLiteStorage, path: Path, status: DeliveryStatus) -> str:
    """
    SQLite's plan for the statement *store* runs to count deliveries in *status*.
    """
    statements: list[str] = []
    store._connection().set_trace_callback(statements.append)
    try:
        store.count_by_webhook(status=status, since=T0)
    finally:
        store._connection().set_trace_callback(None)
    (statement,) = (s for s in statements if "count(*)" in s)
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
    finally:
        conn.close()
    return "\n".join(row[-1] for row in rows)


def test_sqlite_counts_dead_and_failed_from_the_index_alone(path: Path) -> None:
    """
    The dead and failed counts search the covering partial index; other statuses scan.
    """
    with SQLiteStorage(path) as store:
        webhook_id = fill(store)
        assert store.count_by_webhook(status=DEAD, since=T0) == {webhook_id: 2}
        for status in (DEAD, FAILED):
            plan = sqlite_plan(store, path, status)
            assert f"SEARCH deliveries USING COVERING INDEX {INDEX}" in plan
        assert INDEX not in sqlite_plan(store, path, DELIVERED)


def test_sqlite_an_older_file_gets_the_index_on_open(path: Path) -> None:
    """
    A file from before the migration keeps its deliveries and gets the index on open; the
    count reads it at once.
    """
    with SQLiteStorage(path) as store:
        webhook_id = fill(store)
    conn = sqlite3.connect(path, isolation_level=None)
    undo_dead_index(conn)
    conn.execute(f"PRAGMA user_version = {DEAD_INDEX_MIGRATION - 1:d}")
    conn.close()
    with SQLiteStorage(path) as store:
        conn = sqlite3.connect(path)
        indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        assert (INDEX,) in indexes
        assert conn.execute("PRAGMA user_version").fetchone() == (LATEST_VERSION,)
        row = conn.execute(
            "SELECT name FROM schema_migrations WHERE version = ?", (DEAD_INDEX_MIGRATION,)
        ).fetchone()
        assert row == ("dead and failed deliveries by finish time",)
        conn.close()
        assert store.count_by_webhook(status=DEAD, since=T0) == {webhook_id: 2}
        assert store.count_by_webhook(status=FAILED, since=T0 + timedelta(days=1)) == {}
        assert INDEX in sqlite_plan(store, path, DEAD)


# -- PostgreSQL --------------------------------------------------------------------------


@pytest.fixture(name="pg")
def _pg() -> Iterator[tuple[str, str]]:
    """
    A DSN and a fresh schema name, the schema dropped after the test.
    """
    dsn = postgres_dsn()
    import psycopg  # noqa: PLC0415 - optional
    from psycopg import sql  # noqa: PLC0415

    schema = fresh_pg_schema()
    yield dsn, schema
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def pg_plan(store: Any, dsn: str, status: DeliveryStatus) -> str:
    """
    PostgreSQL's generic plan, sequential scans discouraged, for the statement *store* runs
    to count deliveries in *status*.

    A generic plan is the one a statement prepared and run often may end up with (psycopg
    prepares those): it must serve the partial index without knowing the values bound,
    which a bound status would not let it. With sequential scans discouraged, the plan shows
    whether the index can serve at all, whatever the table's size.
    """
    import psycopg  # noqa: PLC0415 - optional

    from pendo_webhooks.storage._postgres_health import _COUNTS  # noqa: PLC0415

    query = store._q(_COUNTS[status]).replace(b"%(since)s", b"$1")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(b"PREPARE count_plan (timestamptz) AS " + query)
        rows = conn.execute(f"EXPLAIN EXECUTE count_plan ('{T0.isoformat()}')").fetchall()
    return "\n".join(row[0] for row in rows)


def test_postgres_counts_dead_and_failed_from_the_index(pg: tuple[str, str]) -> None:
    """
    The dead and failed counts read the partial index, even in a generic plan; others do not.
    """
    from pendo_webhooks.storage import PostgresStorage  # noqa: PLC0415 - optional

    dsn, schema = pg
    with PostgresStorage(dsn, schema=schema) as store:
        webhook_id = fill(store)
        assert store.count_by_webhook(status=DEAD, since=T0) == {webhook_id: 2}
        for status in (DEAD, FAILED):
            assert f"Index Only Scan using {INDEX}" in pg_plan(store, dsn, status)
        assert INDEX not in pg_plan(store, dsn, DELIVERED)


def test_postgres_an_older_schema_gets_the_index_on_open(pg: tuple[str, str]) -> None:
    """
    A schema from before the migration keeps its deliveries and gets the index on open.
    """
    import psycopg  # noqa: PLC0415 - optional
    from psycopg import sql  # noqa: PLC0415

    from pendo_webhooks.storage import PostgresStorage  # noqa: PLC0415
    from pendo_webhooks.storage._postgres_schema import (  # noqa: PLC0415
        DEAD_INDEX_MIGRATION as PG_MIGRATION,
    )

    dsn, schema = pg
    with PostgresStorage(dsn, schema=schema) as store:
        webhook_id = fill(store)
    ident = sql.Identifier(schema)
    exists = "SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND indexname = %s"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP INDEX {}.{}").format(ident, sql.Identifier(INDEX)))
        conn.execute(
            sql.SQL("DELETE FROM {}.schema_migrations WHERE version = %s").format(ident),
            (PG_MIGRATION,),
        )
        assert conn.execute(exists, (schema, INDEX)).fetchone() == (0,)
    with PostgresStorage(dsn, schema=schema) as store:
        assert store.count_by_webhook(status=DEAD, since=T0) == {webhook_id: 2}
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute(exists, (schema, INDEX)).fetchone() == (1,)
            name = conn.execute(
                sql.SQL("SELECT name FROM {}.schema_migrations WHERE version = %s").format(ident),
                (PG_MIGRATION,),
            ).fetchone()
            assert name == ("dead and failed deliveries by finish time",)
        assert INDEX in pg_plan(store, dsn, DEAD)
