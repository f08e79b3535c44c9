"""
The SQLite schema, as an append-only list of numbered migrations.

A database file records the last migration applied in ``PRAGMA user_version``
and in the ``schema_migrations`` table, and carries our ``application_id`` so
that a foreign file is recognised before anything touches it. Later parts of
the library (the delivery outbox, first-seen tracking) add their tables by
appending migrations here; a migration, once released, never changes.

Strictly private.
"""

from __future__ import annotations

import sqlite3

import attrs


__all__ = ["APPLICATION_ID", "LATEST_VERSION", "MIGRATIONS", "Migration", "apply_migrations"]

#: ``PRAGMA application_id`` of every pendo-webhooks database: the bytes ``PWHK``.
APPLICATION_ID = int.from_bytes(b"PWHK", "big")


@attrs.frozen
class Migration:
    """
    One step of the schema. Strictly private.
    """

    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "webhooks and audit log",
        (
            """
            CREATE TABLE schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE webhooks (
                id               TEXT PRIMARY KEY,
                version          INTEGER NOT NULL CHECK (version >= 1),
                name             TEXT NOT NULL,
                kind             TEXT NOT NULL CHECK (kind IN ('url', 'segment')),
                url              TEXT,
                segment_endpoint TEXT,
                write_key        TEXT,
                secret           TEXT,
                previous_secrets TEXT NOT NULL DEFAULT '[]',
                enabled          INTEGER NOT NULL CHECK (enabled IN (0, 1)),
                signature_scheme TEXT NOT NULL,
                signature_header TEXT NOT NULL,
                headers          TEXT NOT NULL DEFAULT '{}',
                created_at       TEXT NOT NULL,
                created_by       TEXT NOT NULL,
                updated_at       TEXT NOT NULL,
                updated_by       TEXT NOT NULL,
                disabled_reason  TEXT,
                disabled_by      TEXT
            )
            """,
            # One row per subscription, so the dispatcher's lookup by category is an index seek.
            """
            CREATE TABLE webhook_categories (
                category   TEXT NOT NULL,
                webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
                PRIMARY KEY (category, webhook_id)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX webhook_categories_by_webhook ON webhook_categories (webhook_id)",
            # No foreign key to webhooks: the history of a deleted webhook stays.
            # seq orders entries even when the clock gives several the same time.
            """
            CREATE TABLE audit_log (
                seq        INTEGER PRIMARY KEY AUTOINCREMENT,
                id         TEXT NOT NULL UNIQUE,
                at         TEXT NOT NULL,
                actor_id   TEXT NOT NULL,
                action     TEXT NOT NULL,
                webhook_id TEXT NOT NULL,
                changes    TEXT NOT NULL
            )
            """,
            "CREATE INDEX audit_log_by_webhook ON audit_log (webhook_id, seq)",
            "CREATE INDEX audit_log_by_time ON audit_log (at)",
            # A webhook and its categories in one row, read in one statement (one snapshot).
            """
            CREATE VIEW webhook_rows AS
            SELECT w.*,
                   (SELECT group_concat(c.category, ' ')
                      FROM webhook_categories AS c
                     WHERE c.webhook_id = w.id) AS category_list
              FROM webhooks AS w
            """,
        ),
    ),
)

#: The schema version this code writes and understands.
LATEST_VERSION = MIGRATIONS[-1].version


def apply_migrations(conn: sqlite3.Connection, current: int, applied_at: str) -> None:
    """
    Apply every migration after *current*, inside the caller's write transaction.

    Sets ``application_id`` and ``user_version`` in the same transaction, so the
    file's version always names the migrations its tables went through.
    """
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, applied_at),
        )
        # PRAGMA values cannot be bound as parameters; this one is our own integer.
        conn.execute(f"PRAGMA user_version = {migration.version:d}")
