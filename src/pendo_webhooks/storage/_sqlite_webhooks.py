"""
The webhook and audit-log part of :class:`~pendo_webhooks.storage.SQLiteStorage`.

Secrets and write keys go through the store's :class:`SecretCodec` and are
written to the ``webhooks`` row only; audit rows hold the registry's redacted
diff and nothing else.

Every read must see a webhook disabled, deleted or edited a moment ago, by any
process (the dispatcher re-reads a webhook at send time). ``get_webhook`` and
``webhooks_for``, the dispatcher's reads, first read ``webhooks_version``, which
triggers bump with every change to ``webhooks`` or ``webhook_categories`` (schema
migration 5): while it is unchanged they return what they found last time, read
in one snapshot with the version it was found at; otherwise they read the rows
again. Either way the :class:`Webhook` built from a row is reused while the row
reads back identical.

Strictly private.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..events import EventCategory
from ..exceptions import StorageError
from ..model._audit import AuditEntry, AuditQuery
from ..model._webhook import Webhook
from ._errors import duplicate_webhook, unknown_webhook
from ._sql_rows import RowFormat, as_is, check_version, loaded
from ._sqlite_core import SQLiteCore, from_utc_iso, utc_iso


__all__ = ["SQLITE_ROWS", "SQLiteWebhooks", "append_audit"]


#: How SQLite keeps what PostgreSQL keeps otherwise: times as fixed-width UTC ISO text,
#: booleans as 0 and 1, secrets as the codec's text, JSON as text.
SQLITE_ROWS = RowFormat(
    time=utc_iso, when=from_utc_iso, flag=int, secret=as_is, secret_text=as_is, json=json.loads
)

_INSERT_WEBHOOK = """
INSERT INTO webhooks (
    id, version, name, kind, url, segment_endpoint, write_key, secret, previous_secrets,
    enabled, signature_scheme, signature_header, headers,
    created_at, created_by, updated_at, updated_by, disabled_reason, disabled_by, segment_gzip,
    filters, hash_key
) VALUES (
    :id, :version, :name, :kind, :url, :segment_endpoint, :write_key, :secret, :previous_secrets,
    :enabled, :signature_scheme, :signature_header, :headers,
    :created_at, :created_by, :updated_at, :updated_by, :disabled_reason, :disabled_by,
    :segment_gzip, :filters, :hash_key
)
"""

_UPDATE_WEBHOOK = """
UPDATE webhooks SET
    version = :version, name = :name, kind = :kind, url = :url,
    segment_endpoint = :segment_endpoint, write_key = :write_key, secret = :secret,
    previous_secrets = :previous_secrets, enabled = :enabled,
    signature_scheme = :signature_scheme, signature_header = :signature_header,
    headers = :headers, created_at = :created_at, created_by = :created_by,
    updated_at = :updated_at, updated_by = :updated_by,
    disabled_reason = :disabled_reason, disabled_by = :disabled_by,
    segment_gzip = :segment_gzip, filters = :filters, hash_key = :hash_key
WHERE id = :id
"""

_INSERT_AUDIT = """
INSERT INTO audit_log (id, at, actor_id, action, webhook_id, changes)
VALUES (?, ?, ?, ?, ?, ?)
"""

# One static statement for every filter combination: a NULL parameter switches its filter off.
_SELECT_AUDIT = """
SELECT id, at, actor_id, action, webhook_id, changes
  FROM audit_log
 WHERE (:webhook_id IS NULL OR webhook_id = :webhook_id)
   AND (:actor_id IS NULL OR actor_id = :actor_id)
   AND (:action IS NULL OR action = :action)
   AND (:since IS NULL OR at >= :since)
   AND (:until IS NULL OR at < :until)
 ORDER BY seq DESC
 LIMIT :limit
"""


_WEBHOOKS_VERSION = "SELECT version FROM webhooks_version WHERE id = 1"

_GET_WEBHOOK = "SELECT * FROM webhook_rows WHERE id = ?"

_WEBHOOKS_FOR = """
SELECT w.* FROM webhook_rows AS w
  JOIN webhook_categories AS c ON c.webhook_id = w.id
 WHERE c.category = ? AND w.enabled = 1
 ORDER BY w.created_at, w.id
"""


class SQLiteWebhooks(SQLiteCore):
    """
    Webhook rows, their category index, and the audit log. Strictly private.
    """

    # -- writes ----------------------------------------------------------------------------

    def insert_webhook(self, webhook: Webhook, *, audit: AuditEntry) -> None:
        """
        Store a new webhook and its audit entry in one transaction.

        Raises:
            ConflictError: If a webhook with this id already exists.
        """
        row = self._to_row(webhook)
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM webhooks WHERE id = ?", (webhook.id,)).fetchone():
                raise duplicate_webhook(webhook.id)
            conn.execute(_INSERT_WEBHOOK, row)
            _write_categories(conn, webhook)
            append_audit(conn, audit)

    def replace_webhook(
        self, webhook: Webhook, *, expected_version: int, audit: AuditEntry
    ) -> None:
        """
        Replace a webhook still at *expected_version*, and record *audit*, in one transaction.

        Raises:
            UnknownWebhook: If no webhook has this id.
            ConflictError: If the stored version is not *expected_version*.
        """
        row = self._to_row(webhook)
        with self._transaction() as conn:
            _check_version(conn, webhook.id, expected_version)
            conn.execute(_UPDATE_WEBHOOK, row)
            conn.execute("DELETE FROM webhook_categories WHERE webhook_id = ?", (webhook.id,))
            _write_categories(conn, webhook)
            append_audit(conn, audit)

    def delete_webhook(self, webhook_id: str, *, expected_version: int, audit: AuditEntry) -> None:
        """
        Delete a webhook still at *expected_version*, and record *audit*, in one transaction.

        Raises:
            UnknownWebhook: If no webhook has this id.
            ConflictError: If the stored version is not *expected_version*.
        """
        with self._transaction() as conn:
            _check_version(conn, webhook_id, expected_version)
            conn.execute("DELETE FROM webhook_categories WHERE webhook_id = ?", (webhook_id,))
            conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
            append_audit(conn, audit)
        self._webhook_memo.forget(webhook_id)

    # -- reads -----------------------------------------------------------------------------

    def get_webhook(self, webhook_id: str) -> Webhook:
        """
        Return the webhook with this id.

        Raises:
            UnknownWebhook: If no webhook has this id.
        """
        found = self._current(("id", webhook_id), _GET_WEBHOOK, (webhook_id,))
        if not found:
            raise unknown_webhook(webhook_id)
        return found[0]

    def list_webhooks(self) -> list[Webhook]:
        """
        Return every webhook, oldest first.
        """
        rows = self._query("SELECT * FROM webhook_rows ORDER BY created_at, id")
        return [self._from_row(row) for row in rows]

    def webhooks_for(self, category: EventCategory) -> list[Webhook]:
        """
        Return the enabled webhooks subscribed to *category*, oldest first.
        """
        value = EventCategory(category).value
        return list(self._current(("category", value), _WEBHOOKS_FOR, (value,)))

    def _cached_webhooks_for(
        self, category: EventCategory
    ) -> tuple[int, tuple[Webhook, ...]] | None:
        """
        What :meth:`webhooks_for` last found for *category*, and the ``webhooks_version``
        it found it at, without reading the store (``None``: not read at the latest
        version seen). Strictly private: for :meth:`SQLiteOutbox._enqueue_if_current`.
        """
        version, found = self._webhook_reads.state
        hit = found.get(("category", category.value))
        return None if hit is None else (version, hit)

    def _current(
        self, key: tuple[str, str], sql: str, params: tuple[str, ...]
    ) -> tuple[Webhook, ...]:
        """
        The webhooks *sql* finds: as found last time while ``webhooks_version`` is unchanged.
        """
        conn = self._connection()
        try:
            version = conn.execute(_WEBHOOKS_VERSION).fetchone()[0]
            known, found_then = self._webhook_reads.state  # one version's, never mixed
            if known == version:
                hit = found_then.get(key)
                if hit is not None:
                    return hit
            # The rows and the version they are at, from one snapshot.
            conn.execute("BEGIN")
            try:
                version = conn.execute(_WEBHOOKS_VERSION).fetchone()[0]
                rows = conn.execute(sql, params).fetchall()
            finally:
                conn.execute("COMMIT")  # a read transaction: nothing to keep or lose
        except sqlite3.Error as exc:
            msg = f"reading {self.path} failed: {exc}"
            raise StorageError(msg) from exc
        found = tuple(self._from_row(row) for row in rows)
        self._webhook_reads.keep(version, key, found)
        return found

    def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        """
        Return the audit entries matching *query*, newest first.
        """
        rows = self._query(
            _SELECT_AUDIT,
            {
                "webhook_id": query.webhook_id,
                "actor_id": query.actor_id,
                "action": query.action,
                "since": None if query.since is None else utc_iso(query.since),
                "until": None if query.until is None else utc_iso(query.until),
                "limit": query.limit,
            },
        )
        return [SQLITE_ROWS.audit(row) for row in rows]

    # -- row mapping -----------------------------------------------------------------------

    def _to_row(self, webhook: Webhook) -> dict[str, Any]:
        return SQLITE_ROWS.webhook_params(webhook, self._codec)

    def _from_row(self, row: sqlite3.Row) -> Webhook:
        # Building validates every field and decodes the secrets: reuse the Webhook built
        # from this very row. Any change to the row (a new version, an edit behind our
        # back, another process's change) misses, so every read sees the stored state.
        values = tuple(row)
        found = self._webhook_memo.get(row["id"], values)
        if found is not None:
            return found

        def build() -> Webhook:
            listed = row["category_list"]
            categories = listed.split(" ") if listed else ()
            return SQLITE_ROWS.webhook(row, self._codec, categories)

        webhook = loaded(row["id"], build)
        self._webhook_memo.put(row["id"], values, webhook)
        return webhook


def _check_version(conn: sqlite3.Connection, webhook_id: str, expected_version: int) -> None:
    found = conn.execute("SELECT version FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
    check_version(webhook_id, expected_version, None if found is None else found[0])


def _write_categories(conn: sqlite3.Connection, webhook: Webhook) -> None:
    conn.executemany(
        "INSERT INTO webhook_categories (category, webhook_id) VALUES (?, ?)",
        [(c.value, webhook.id) for c in sorted(webhook.categories)],
    )


def append_audit(conn: sqlite3.Connection, audit: AuditEntry) -> None:
    """
    Write *audit* in the caller's transaction.
    """
    conn.execute(_INSERT_AUDIT, SQLITE_ROWS.audit_params(audit))
