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

from ._sql import Migration, run_migrations


__all__ = [
    "APPLICATION_ID",
    "DEAD_INDEX_MIGRATION",
    "LATEST_VERSION",
    "MIGRATIONS",
    "PII_FILTERS_MIGRATION",
    "apply_migrations",
]

#: ``PRAGMA application_id`` of every pendo-webhooks database: the bytes ``PWHK``.
APPLICATION_ID = int.from_bytes(b"PWHK", "big")


#: The number of the migration that adds webhook PII filters: the one place it is written.
PII_FILTERS_MIGRATION = 10

#: The number of the migration that indexes dead and failed deliveries by when they
#: finished: the newest, and the one place it is written (renumber it here if another
#: migration lands first).
DEAD_INDEX_MIGRATION = 11


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
    Migration(
        2,
        "delivery outbox and attempts",
        (
            # No foreign key to webhooks: a deleted webhook's deliveries stay readable.
            # While a lease is held, next_attempt_at is the lease's expiry, so "due" is one
            # range of the partial index below and a lapsed lease needs no sweeper. Each
            # index costs every delivery WAL pages, so there are only three: the id, the
            # (webhook, event) pair that makes a second enqueue of one event a no-op, and
            # the pending ones by due time (a Segment batch claim filters it by webhook).
            # Lists go by rowid (insertion order); purge, a rare job, scans.
            """
            CREATE TABLE deliveries (
                id              TEXT PRIMARY KEY,
                webhook_id      TEXT NOT NULL,
                event_id        TEXT NOT NULL,
                category        TEXT NOT NULL,
                body            BLOB NOT NULL,
                status          TEXT NOT NULL CHECK (
                    status IN ('pending', 'delivered', 'failed', 'dead', 'cancelled')
                ),
                attempts        INTEGER NOT NULL CHECK (attempts >= 0),
                attempt_base    INTEGER NOT NULL CHECK (attempt_base >= 0),
                next_attempt_at TEXT NOT NULL,
                created_at      TEXT NOT NULL,
                updated_at      TEXT NOT NULL,
                last_status     INTEGER,
                last_error      TEXT,
                lease_owner     TEXT,
                lease_until     TEXT,
                finished_at     TEXT,
                redelivered_at  TEXT,
                purged          INTEGER NOT NULL CHECK (purged IN (0, 1)),
                UNIQUE (webhook_id, event_id)
            )
            """,
            "CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending'",
            """
            CREATE TABLE delivery_attempts (
                delivery_id      TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
                number           INTEGER NOT NULL CHECK (number >= 1),
                started_at       TEXT NOT NULL,
                duration         REAL NOT NULL,
                status_code      INTEGER,
                error_kind       TEXT,
                detail           TEXT,
                response_excerpt BLOB NOT NULL,
                verdict          TEXT NOT NULL,
                reason           TEXT NOT NULL,
                PRIMARY KEY (delivery_id, number)
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        3,
        "first-seen tracking and the exclusion list",
        (
            # One row per visitor, account or parent-child pair ever recorded; the key is made
            # by the tracker. WITHOUT ROWID: a seen-check is one probe of the primary key.
            # Times are epoch seconds: this table can hold millions of rows.
            """
            CREATE TABLE first_seen (
                key      TEXT PRIMARY KEY,
                origin   TEXT NOT NULL CHECK (origin IN ('app', 'api')),
                known_at INTEGER NOT NULL,
                seen_at  INTEGER,
                CHECK ((origin = 'app') = (seen_at IS NOT NULL))
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE exclusions (
                id         TEXT PRIMARY KEY,
                kind       TEXT NOT NULL CHECK (kind IN ('visitor', 'account', 'ip')),
                pattern    TEXT NOT NULL,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                UNIQUE (kind, pattern)
            )
            """,
            # Bumped with every change to the list, so readers rebuild their matcher only then.
            """
            CREATE TABLE exclusions_version (
                id      INTEGER PRIMARY KEY CHECK (id = 1),
                version INTEGER NOT NULL
            )
            """,
            "INSERT INTO exclusions_version (id, version) VALUES (1, 0)",
        ),
    ),
    # Numbered 4: the delivery outbox takes 2, first-seen tracking and exclusions 3.
    Migration(
        4,
        "segment gzip setting",
        (
            """
            ALTER TABLE webhooks
            ADD COLUMN segment_gzip INTEGER NOT NULL DEFAULT 0 CHECK (segment_gzip IN (0, 1))
            """,
        ),
    ),
    Migration(
        5,
        "webhook change counter",
        (
            # Bumped by every change to a webhook or its categories, by any connection or
            # process (triggers, so no writer can forget it): readers reuse what they built
            # from the rows while it stays the same, one probe instead of a join.
            """
            CREATE TABLE webhooks_version (
                id      INTEGER PRIMARY KEY CHECK (id = 1),
                version INTEGER NOT NULL
            )
            """,
            "INSERT INTO webhooks_version (id, version) VALUES (1, 0)",
            """
            CREATE TRIGGER webhooks_insert_bumps_version AFTER INSERT ON webhooks
            BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END
            """,
            """
            CREATE TRIGGER webhooks_update_bumps_version AFTER UPDATE ON webhooks
            BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END
            """,
            """
            CREATE TRIGGER webhooks_delete_bumps_version AFTER DELETE ON webhooks
            BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END
            """,
            """
            CREATE TRIGGER webhook_categories_insert_bumps_version
            AFTER INSERT ON webhook_categories
            BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END
            """,
            """
            CREATE TRIGGER webhook_categories_update_bumps_version
            AFTER UPDATE ON webhook_categories
            BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END
            """,
            """
            CREATE TRIGGER webhook_categories_delete_bumps_version
            AFTER DELETE ON webhook_categories
            BEGIN UPDATE webhooks_version SET version = version + 1 WHERE id = 1; END
            """,
        ),
    ),
    Migration(
        6,
        "store settings",
        (
            # Choices made for the file rather than for one command line, one row each (the
            # console script keeps the address guard's loosening here: see cli/_db.py). The
            # library's own API reads none of them.
            """
            CREATE TABLE settings (
                key        TEXT PRIMARY KEY,
                value      TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                updated_by TEXT NOT NULL
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        7,
        "delivery claim count",
        (
            # How many times each delivery was claimed; with its attempts, how many claims
            # ended without an outcome (the poison-pill limit of claim_due's max_claims).
            "ALTER TABLE deliveries ADD COLUMN claims INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        8,
        "one exchange row per request",
        (
            # One row per HTTP exchange (one request and what came of it): a Segment batch
            # of N deliveries is one row here and N small attempt rows, not N copies of its
            # timing, error and response excerpt. Each attempt names its exchange by seq
            # (a few bytes; the id is 28), which the index finds an exchange's deliveries
            # by (and, on purge, exchanges none needs).
            """
            CREATE TABLE delivery_exchanges (
                seq              INTEGER PRIMARY KEY,
                id               TEXT NOT NULL UNIQUE,
                webhook_id       TEXT NOT NULL,
                started_at       TEXT NOT NULL,
                duration         REAL NOT NULL,
                status_code      INTEGER,
                error_kind       TEXT,
                detail           TEXT,
                response_excerpt BLOB NOT NULL
            )
            """,
            # Every attempt stored so far was its own request: its own exchange.
            """
            INSERT INTO delivery_exchanges (
                id, webhook_id, started_at, duration, status_code, error_kind, detail,
                response_excerpt
            )
            SELECT 'exc_' || a.delivery_id || '_' || a.number, d.webhook_id, a.started_at,
                   a.duration, a.status_code, a.error_kind, a.detail, a.response_excerpt
              FROM delivery_attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
            """,
            """
            CREATE TABLE delivery_attempts_8 (
                delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
                number      INTEGER NOT NULL CHECK (number >= 1),
                exchange    INTEGER NOT NULL REFERENCES delivery_exchanges (seq),
                verdict     TEXT NOT NULL,
                reason      TEXT NOT NULL,
                PRIMARY KEY (delivery_id, number)
            ) WITHOUT ROWID
            """,
            """
            INSERT INTO delivery_attempts_8 (delivery_id, number, exchange, verdict, reason)
            SELECT a.delivery_id, a.number, x.seq, a.verdict, a.reason
              FROM delivery_attempts AS a
              JOIN delivery_exchanges AS x ON x.id = 'exc_' || a.delivery_id || '_' || a.number
            """,
            "DROP TABLE delivery_attempts",
            "ALTER TABLE delivery_attempts_8 RENAME TO delivery_attempts",
            "CREATE INDEX delivery_attempts_by_exchange ON delivery_attempts (exchange)",
        ),
    ),
    Migration(
        9,
        "webhook health",
        (
            # One row per webhook ever attempted: how its destination is doing, shared by
            # every worker (outage-aware retries, auto-disable). Written by compare-and-set
            # on version. No foreign key: a deleted webhook's row is harmless and tiny.
            """
            CREATE TABLE webhook_health (
                webhook_id      TEXT PRIMARY KEY,
                version         INTEGER NOT NULL CHECK (version >= 1),
                failing_since   TEXT,
                last_success_at TEXT,
                last_failure_at TEXT,
                failures        INTEGER NOT NULL CHECK (failures >= 0),
                streak          INTEGER NOT NULL CHECK (streak >= 0),
                outage_since    TEXT,
                next_probe_at   TEXT,
                probes          INTEGER NOT NULL CHECK (probes >= 0),
                probe_delivery  TEXT,
                probe_owner     TEXT,
                probe_until     TEXT
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        PII_FILTERS_MIGRATION,
        "webhook PII filters",
        (
            # The filters as a JSON list of {"path", "action"}; the hash key is a secret
            # (through the codec), NULL until the webhook first hashes a field.
            "ALTER TABLE webhooks ADD COLUMN filters TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE webhooks ADD COLUMN hash_key TEXT",
        ),
    ),
    Migration(
        DEAD_INDEX_MIGRATION,
        "dead and failed deliveries by finish time",
        (
            # What an admin page counts (count_by_webhook: the dead ones of the last days,
            # by webhook), read from this index alone instead of every delivery and its body.
            # Partial: only dead and failed rows are in it, so enqueuing and delivering (a
            # pending row, then a delivered one) write nothing here. Covering: finished_at
            # and updated_at are kept too, so the count never reads the row. The WHERE is an
            # OR, not an IN: SQLite proves "status = 'dead'" implies an OR, not an IN list.
            """
            CREATE INDEX deliveries_unhappy_by_time ON deliveries (
                status, coalesce(finished_at, updated_at), webhook_id, finished_at, updated_at
            ) WHERE status = 'dead' OR status = 'failed'
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

    def record(migration: Migration) -> None:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, applied_at),
        )
        # PRAGMA values cannot be bound as parameters; this one is our own integer.
        conn.execute(f"PRAGMA user_version = {migration.version:d}")

    run_migrations(MIGRATIONS, applied=range(current + 1), run=conn.execute, record=record)
