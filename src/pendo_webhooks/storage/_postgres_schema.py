"""
The PostgreSQL schema, as an append-only list of numbered migrations.

Every table lives in one PostgreSQL schema whose name the host chooses
(``pendo_webhooks`` by default), so the library never touches the host's own
tables. The schema records the migrations applied to it in its
``schema_migrations`` table and carries a ``COMMENT`` that marks it as ours, so
a foreign schema of the same name is recognised before anything touches it.

Migrations keep the numbers of their SQLite twins (:mod:`._schema`): 1 webhooks
and audit log, 2 the delivery outbox, 3 first-seen tracking and exclusions,
4 the Segment gzip setting; later ones differ (SQLite has steps PostgreSQL does not
need): each says what it does. A migration, once released, never changes.

Strictly private.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import tuple_row

from ..exceptions import ConfigurationError, StorageError
from ._sql import Migration, newer_schema, run_migrations


__all__ = [
    "DEAD_INDEX_MIGRATION",
    "DEFAULT_SCHEMA",
    "LATEST_VERSION",
    "MIGRATIONS",
    "PII_FILTERS_MIGRATION",
    "SCHEMA_COMMENT",
    "check_schema_name",
    "lock_key",
    "migrate",
    "schema_state",
]

#: The schema the tables live in unless the host names another.
DEFAULT_SCHEMA = "pendo_webhooks"

#: The ``COMMENT ON SCHEMA`` that marks a schema as created by pendo-webhooks.
SCHEMA_COMMENT = "pendo-webhooks storage; managed by the library, do not edit"

# Lower case only: an unquoted name in psql then means the same schema.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


#: The number of the migration that adds webhook PII filters: the one place it is written.
PII_FILTERS_MIGRATION = 8

#: The number of the migration that indexes dead and failed deliveries by when they
#: finished: the newest, and the one place it is written (renumber it here if another
#: migration lands first).
DEAD_INDEX_MIGRATION = 9


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "webhooks and audit log",
        (
            # Ids sort by code point (COLLATE "C"), as every other backend sorts them.
            """
            CREATE TABLE {schema}.webhooks (
                id               text COLLATE "C" PRIMARY KEY,
                version          integer NOT NULL CHECK (version >= 1),
                name             text NOT NULL,
                kind             text NOT NULL CHECK (kind IN ('url', 'segment')),
                url              text,
                segment_endpoint text,
                write_key        bytea,
                secret           bytea,
                previous_secrets json NOT NULL DEFAULT '[]',
                categories       text[] NOT NULL,
                enabled          boolean NOT NULL,
                signature_scheme text NOT NULL,
                signature_header text NOT NULL,
                headers          json NOT NULL DEFAULT '{{}}',
                created_at       timestamptz NOT NULL,
                created_by       text NOT NULL,
                updated_at       timestamptz NOT NULL,
                updated_by       text NOT NULL,
                disabled_reason  text,
                disabled_by      text
            )
            """,
            # The dispatcher's lookup: enabled webhooks containing one category.
            """
            CREATE INDEX webhooks_enabled_by_category
                ON {schema}.webhooks USING gin (categories) WHERE enabled
            """,
            "CREATE INDEX webhooks_by_age ON {schema}.webhooks (created_at, id)",
            # No foreign key to webhooks: the history of a deleted webhook stays.
            # seq orders entries even when the clock gives several the same time.
            """
            CREATE TABLE {schema}.audit_log (
                seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id         text COLLATE "C" NOT NULL UNIQUE,
                at         timestamptz NOT NULL,
                actor_id   text NOT NULL,
                action     text NOT NULL,
                webhook_id text COLLATE "C" NOT NULL,
                changes    json NOT NULL
            )
            """,
            "CREATE INDEX audit_log_by_webhook ON {schema}.audit_log (webhook_id, seq)",
            "CREATE INDEX audit_log_by_actor ON {schema}.audit_log (actor_id, seq)",
            "CREATE INDEX audit_log_by_time ON {schema}.audit_log (at)",
        ),
    ),
    Migration(
        2,
        "delivery outbox and attempts",
        (
            # No foreign key to webhooks: a deleted webhook's deliveries stay readable.
            # While a lease is held, next_attempt_at is the lease's expiry, so "due" is one
            # range of the partial index below and a lapsed lease needs no sweeper.
            # seq orders deliveries stored in the same microsecond by when they were stored.
            """
            CREATE TABLE {schema}.deliveries (
                id              text COLLATE "C" PRIMARY KEY,
                seq             bigint GENERATED ALWAYS AS IDENTITY,
                webhook_id      text COLLATE "C" NOT NULL,
                event_id        text COLLATE "C" NOT NULL,
                category        text NOT NULL,
                body            bytea NOT NULL,
                status          text NOT NULL CHECK (
                    status IN ('pending', 'delivered', 'failed', 'dead', 'cancelled')
                ),
                attempts        integer NOT NULL CHECK (attempts >= 0),
                attempt_base    integer NOT NULL CHECK (attempt_base >= 0),
                next_attempt_at timestamptz NOT NULL,
                created_at      timestamptz NOT NULL,
                updated_at      timestamptz NOT NULL,
                last_status     integer,
                last_error      text,
                lease_owner     text,
                lease_until     timestamptz,
                finished_at     timestamptz,
                redelivered_at  timestamptz,
                purged          boolean NOT NULL DEFAULT false,
                UNIQUE (webhook_id, event_id)
            )
            """,
            """
            CREATE INDEX deliveries_due ON {schema}.deliveries (next_attempt_at)
             WHERE status = 'pending'
            """,
            """
            CREATE INDEX deliveries_due_by_webhook
                ON {schema}.deliveries (webhook_id, next_attempt_at)
             WHERE status = 'pending'
            """,
            "CREATE INDEX deliveries_newest ON {schema}.deliveries (created_at, seq)",
            """
            CREATE INDEX deliveries_newest_by_webhook
                ON {schema}.deliveries (webhook_id, created_at, seq)
            """,
            """
            CREATE INDEX deliveries_purgeable ON {schema}.deliveries (finished_at)
             WHERE NOT purged AND status <> 'pending'
            """,
            """
            CREATE TABLE {schema}.delivery_attempts (
                delivery_id      text COLLATE "C" NOT NULL
                                 REFERENCES {schema}.deliveries (id) ON DELETE CASCADE,
                number           integer NOT NULL CHECK (number >= 1),
                started_at       timestamptz NOT NULL,
                duration         double precision NOT NULL,
                status_code      integer,
                error_kind       text,
                detail           text,
                response_excerpt bytea NOT NULL,
                verdict          text NOT NULL,
                reason           text NOT NULL,
                PRIMARY KEY (delivery_id, number)
            )
            """,
        ),
    ),
    Migration(
        3,
        "first-seen tracking and the exclusion list",
        (
            # One row per visitor, account or parent-child pair ever recorded; the key is made
            # by the tracker. A seen-check is one probe of the primary key. The key is its
            # UTF-8 bytes: ids are any text, and PostgreSQL text cannot hold NUL.
            """
            CREATE TABLE {schema}.first_seen (
                key      bytea PRIMARY KEY,
                origin   text NOT NULL CHECK (origin IN ('app', 'api')),
                known_at timestamptz NOT NULL,
                seen_at  timestamptz,
                CHECK ((origin = 'app') = (seen_at IS NOT NULL))
            )
            """,
            """
            CREATE TABLE {schema}.exclusions (
                id         text COLLATE "C" PRIMARY KEY,
                kind       text NOT NULL CHECK (kind IN ('visitor', 'account', 'ip')),
                pattern    text COLLATE "C" NOT NULL,
                created_at timestamptz NOT NULL,
                created_by text NOT NULL,
                UNIQUE (kind, pattern)
            )
            """,
            # Bumped with every change to the list, so readers rebuild their matcher only then.
            """
            CREATE TABLE {schema}.exclusions_version (
                id      integer PRIMARY KEY CHECK (id = 1),
                version bigint NOT NULL
            )
            """,
            "INSERT INTO {schema}.exclusions_version (id, version) VALUES (1, 0)",
        ),
    ),
    Migration(
        4,
        "segment gzip setting",
        (
            """
            ALTER TABLE {schema}.webhooks
                ADD COLUMN segment_gzip boolean NOT NULL DEFAULT false
            """,
        ),
    ),
    Migration(
        5,
        "delivery claim count",
        (
            # How many times each delivery was claimed; with its attempts, how many claims
            # ended without an outcome (the poison-pill limit of claim_due's max_claims).
            """
            ALTER TABLE {schema}.deliveries
                ADD COLUMN claims integer NOT NULL DEFAULT 0
            """,
        ),
    ),
    Migration(
        6,
        "one exchange row per request",
        (
            # One row per HTTP exchange (one request and what came of it): a Segment batch
            # of N deliveries is one row here and N small attempt rows, not N copies of its
            # timing, error and response excerpt. Each attempt names its exchange; the
            # index finds an exchange's deliveries (and, on purge, exchanges none needs).
            """
            CREATE TABLE {schema}.delivery_exchanges (
                id               text COLLATE "C" PRIMARY KEY,
                webhook_id       text COLLATE "C" NOT NULL,
                started_at       timestamptz NOT NULL,
                duration         double precision NOT NULL,
                status_code      integer,
                error_kind       text,
                detail           text,
                response_excerpt bytea NOT NULL
            )
            """,
            # Every attempt stored so far was its own request: its own exchange.
            """
            INSERT INTO {schema}.delivery_exchanges (
                id, webhook_id, started_at, duration, status_code, error_kind, detail,
                response_excerpt
            )
            SELECT 'exc_' || a.delivery_id || '_' || a.number, d.webhook_id, a.started_at,
                   a.duration, a.status_code, a.error_kind, a.detail, a.response_excerpt
              FROM {schema}.delivery_attempts AS a
              JOIN {schema}.deliveries AS d ON d.id = a.delivery_id
            """,
            'ALTER TABLE {schema}.delivery_attempts ADD COLUMN exchange_id text COLLATE "C"',
            """
            UPDATE {schema}.delivery_attempts
               SET exchange_id = 'exc_' || delivery_id || '_' || number
            """,
            """
            ALTER TABLE {schema}.delivery_attempts
                ALTER COLUMN exchange_id SET NOT NULL,
                ADD FOREIGN KEY (exchange_id) REFERENCES {schema}.delivery_exchanges (id),
                DROP COLUMN started_at,
                DROP COLUMN duration,
                DROP COLUMN status_code,
                DROP COLUMN error_kind,
                DROP COLUMN detail,
                DROP COLUMN response_excerpt
            """,
            """
            CREATE INDEX delivery_attempts_by_exchange
                ON {schema}.delivery_attempts (exchange_id)
            """,
        ),
    ),
    Migration(
        7,
        "webhook health",
        (
            # One row per webhook ever attempted: how its destination is doing, shared by
            # every worker (outage-aware retries, auto-disable). Written by compare-and-set
            # on version. No foreign key: a deleted webhook's row is harmless and tiny.
            """
            CREATE TABLE {schema}.webhook_health (
                webhook_id      text COLLATE "C" PRIMARY KEY,
                version         bigint NOT NULL CHECK (version >= 1),
                failing_since   timestamptz,
                last_success_at timestamptz,
                last_failure_at timestamptz,
                failures        integer NOT NULL CHECK (failures >= 0),
                streak          integer NOT NULL CHECK (streak >= 0),
                outage_since    timestamptz,
                next_probe_at   timestamptz,
                probes          integer NOT NULL CHECK (probes >= 0),
                probe_delivery  text,
                probe_owner     text,
                probe_until     timestamptz
            )
            """,
        ),
    ),
    Migration(
        PII_FILTERS_MIGRATION,
        "webhook PII filters",
        (
            # The filters as a JSON list of {"path", "action"}; the hash key is a secret
            # (through the codec, as bytea), NULL until the webhook first hashes a field.
            """
            ALTER TABLE {schema}.webhooks
                ADD COLUMN filters json NOT NULL DEFAULT '[]',
                ADD COLUMN hash_key bytea
            """,
        ),
    ),
    Migration(
        DEAD_INDEX_MIGRATION,
        "dead and failed deliveries by finish time",
        (
            # What an admin page counts (count_by_webhook: the dead ones of the last days,
            # by webhook), read from this index instead of every delivery and its body.
            # Partial: only dead and failed rows are in it, so enqueuing and delivering (a
            # pending row, then a delivered one) write nothing here. finished_at and
            # updated_at are included so the count can be an index-only scan. Built in the
            # migration's transaction: on a large outbox, writers wait for one scan of it.
            """
            CREATE INDEX deliveries_unhappy_by_time ON {schema}.deliveries (
                status, (coalesce(finished_at, updated_at)), webhook_id
            ) INCLUDE (finished_at, updated_at)
            WHERE status IN ('dead', 'failed')
            """,
        ),
    ),
)

#: The newest schema version this code writes and understands.
LATEST_VERSION = max(m.version for m in MIGRATIONS)

_KNOWN_VERSIONS = frozenset(m.version for m in MIGRATIONS)

# The schema's marker comment, how many relations it holds, and whether it has our table.
_INSPECT = """
SELECT obj_description(n.oid, 'pg_namespace'),
       (SELECT count(*) FROM pg_catalog.pg_class AS c WHERE c.relnamespace = n.oid),
       to_regclass(quote_ident(n.nspname) || '.schema_migrations') IS NOT NULL
  FROM pg_catalog.pg_namespace AS n
 WHERE n.nspname = %s
"""


def check_schema_name(name: object) -> str:
    """
    Return *name* if it is a plain lower-case PostgreSQL identifier, else raise.

    Raises:
        ConfigurationError: If *name* is not 1-63 characters of ``a-z``, ``0-9`` and
            ``_``, starting with a letter or ``_``, or starts with ``pg_``.
    """
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name) or name.startswith("pg_"):
        msg = (
            "schema must be 1-63 characters of a-z, 0-9 and _, start with a letter or _, "
            "and not start with pg_"
        )
        raise ConfigurationError(msg)
    return name


def lock_key(schema: str) -> int:
    """
    The advisory-lock key that serialises migrations of *schema* across processes.
    """
    digest = hashlib.sha256(f"pendo-webhooks migrate {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def schema_state(conn: Connection[Any], schema: str) -> tuple[bool, frozenset[int]]:
    """
    Return whether *schema* exists and which migrations it records; raise if it is not ours.

    Reads only, in the connection's current transaction (if any).

    Raises:
        StorageError: If the schema holds anything but is not a pendo-webhooks schema, or
            records a migration this version of the library does not know.
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(_INSPECT, (schema,))
        found = cur.fetchone()
    if found is None:
        return False, frozenset()
    comment, relations, has_migrations = found
    if comment != SCHEMA_COMMENT or not has_migrations:
        if relations == 0 and not has_migrations:
            return True, frozenset()  # an empty schema, perhaps made for us by a DBA
        msg = (
            f"schema {schema!r} is not a pendo-webhooks schema ({relations} relations in it); "
            "refusing to modify it: choose another schema name"
        )
        raise StorageError(msg)
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema))
        )
        versions = frozenset(int(row[0]) for row in cur.fetchall())
    unknown = sorted(versions - _KNOWN_VERSIONS)
    if unknown:
        raise newer_schema(f"schema {schema!r}", f"migration {unknown[-1]}", LATEST_VERSION)
    return True, versions


def migrate(conn: Connection[Any], schema: str) -> list[int]:
    """
    Create *schema* if needed and apply every migration it lacks; return the versions applied.

    Runs inside the caller's transaction, which must be a fresh one: it takes a
    transaction-scoped advisory lock first, so two processes migrating at once
    take turns, and the second finds the work done. DDL in PostgreSQL is
    transactional: on any error, nothing of it is left.

    Raises:
        StorageError: As :func:`schema_state` does.
    """
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(schema),))
    exists, applied = schema_state(conn, schema)
    ident = sql.Identifier(schema)
    if not exists:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    if not applied:
        conn.execute(
            sql.SQL(
                """
                CREATE TABLE {}.schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            ).format(ident)
        )
        conn.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(ident, sql.Literal(SCHEMA_COMMENT))
        )
    applied_row = sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)")
    return run_migrations(
        MIGRATIONS,
        applied=applied,
        run=lambda statement: conn.execute(sql.SQL(statement).format(schema=ident)),
        record=lambda m: conn.execute(applied_row.format(ident), (m.version, m.name)),
    )
