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

import functools
import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from .._audit import AuditEntry, AuditQuery, dump_changes
from .._secret import Secret
from .._webhook import RetiredSecret, Webhook
from ..events import EventCategory
from ..exceptions import StorageError, ValidationError
from ._errors import duplicate_webhook, stale_version, unknown_webhook
from ._sqlite_core import SQLiteCore, from_utc_iso, utc_iso


__all__ = ["SQLiteWebhooks"]

_T = TypeVar("_T")

_INSERT_WEBHOOK = """
INSERT INTO webhooks (
    id, version, name, kind, url, segment_endpoint, write_key, secret, previous_secrets,
    enabled, signature_scheme, signature_header, headers,
    created_at, created_by, updated_at, updated_by, disabled_reason, disabled_by, segment_gzip
) VALUES (
    :id, :version, :name, :kind, :url, :segment_endpoint, :write_key, :secret, :previous_secrets,
    :enabled, :signature_scheme, :signature_header, :headers,
    :created_at, :created_by, :updated_at, :updated_by, :disabled_reason, :disabled_by,
    :segment_gzip
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
    segment_gzip = :segment_gzip
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
            _append_audit(conn, audit)

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
            _append_audit(conn, audit)

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
            _append_audit(conn, audit)
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
        return [_loaded(row["id"], functools.partial(_audit_from_row, row)) for row in rows]

    # -- row mapping -----------------------------------------------------------------------

    def _to_row(self, webhook: Webhook) -> dict[str, Any]:
        retired = [
            {"secret": self._encode(r.secret), "expires_at": utc_iso(r.expires_at)}
            for r in webhook.previous_secrets
        ]
        return {
            "id": webhook.id,
            "version": webhook.version,
            "name": webhook.name,
            "kind": webhook.kind.value,
            "url": webhook.url,
            "segment_endpoint": webhook.segment_endpoint,
            "segment_gzip": int(webhook.segment_gzip),
            "write_key": None if webhook.write_key is None else self._encode(webhook.write_key),
            "secret": None if webhook.secret is None else self._encode(webhook.secret),
            "previous_secrets": json.dumps(retired, separators=(",", ":")),
            "enabled": int(webhook.enabled),
            "signature_scheme": webhook.signature_scheme.value,
            "signature_header": webhook.signature_header,
            "headers": json.dumps(
                dict(webhook.headers), ensure_ascii=False, separators=(",", ":")
            ),
            "created_at": utc_iso(webhook.created_at),
            "created_by": webhook.created_by,
            "updated_at": utc_iso(webhook.updated_at),
            "updated_by": webhook.updated_by,
            "disabled_reason": webhook.disabled_reason,
            "disabled_by": webhook.disabled_by,
        }

    def _from_row(self, row: sqlite3.Row) -> Webhook:
        # Building validates every field and decodes the secrets: reuse the Webhook built
        # from this very row. Any change to the row (a new version, an edit behind our
        # back, another process's change) misses, so every read sees the stored state.
        values = tuple(row)
        found = self._webhook_memo.get(row["id"], values)
        if found is not None:
            return found

        def build() -> Webhook:
            categories = row["category_list"]
            return Webhook(
                id=row["id"],
                version=row["version"],
                name=row["name"],
                kind=row["kind"],
                url=row["url"],
                segment_endpoint=row["segment_endpoint"],
                segment_gzip=bool(row["segment_gzip"]),
                write_key=self._decode(row["write_key"]),
                secret=self._decode(row["secret"]),
                previous_secrets=tuple(
                    RetiredSecret(
                        secret=self._decode(r["secret"]) or "",
                        expires_at=from_utc_iso(r["expires_at"]),
                    )
                    for r in json.loads(row["previous_secrets"])
                ),
                categories=categories.split(" ") if categories else (),
                enabled=bool(row["enabled"]),
                signature_scheme=row["signature_scheme"],
                signature_header=row["signature_header"],
                headers=json.loads(row["headers"]),
                created_at=from_utc_iso(row["created_at"]),
                created_by=row["created_by"],
                updated_at=from_utc_iso(row["updated_at"]),
                updated_by=row["updated_by"],
                disabled_reason=row["disabled_reason"],
                disabled_by=row["disabled_by"],
            )

        webhook = _loaded(row["id"], build)
        self._webhook_memo.put(row["id"], values, webhook)
        return webhook

    def _encode(self, secret: Secret) -> str:
        encoded = self._codec.encode(secret.reveal())
        if not isinstance(encoded, str):
            msg = f"secret_codec.encode() must return text, not {type(encoded).__name__}"
            raise StorageError(msg)
        return encoded

    def _decode(self, stored: str | None) -> Secret | None:
        if stored is None:
            return None
        try:
            return Secret._stored(self._codec.decode(stored))
        except Exception as exc:  # noqa: BLE001 - the codec is the host's code; any failure counts
            # Not chained: the codec's message might quote what it was given.
            msg = (
                f"a stored secret could not be decoded ({type(exc).__name__}); "
                "is secret_codec the codec it was stored with?"
            )
            raise StorageError(msg) from None


def _loaded(row_id: str, build: Callable[[], _T]) -> _T:
    try:
        return build()
    except StorageError:
        raise
    except (ValidationError, ValueError, TypeError, KeyError) as exc:
        msg = f"stored row {row_id!r} is not valid: {exc}"
        raise StorageError(msg) from exc


def _check_version(conn: sqlite3.Connection, webhook_id: str, expected_version: int) -> None:
    found = conn.execute("SELECT version FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
    if found is None:
        raise unknown_webhook(webhook_id)
    if found[0] != expected_version:
        raise stale_version(webhook_id, expected_version, found[0])


def _write_categories(conn: sqlite3.Connection, webhook: Webhook) -> None:
    conn.executemany(
        "INSERT INTO webhook_categories (category, webhook_id) VALUES (?, ?)",
        [(c.value, webhook.id) for c in sorted(webhook.categories)],
    )


def _append_audit(conn: sqlite3.Connection, audit: AuditEntry) -> None:
    conn.execute(
        _INSERT_AUDIT,
        (
            audit.id,
            utc_iso(audit.at),
            audit.actor_id,
            audit.action,
            audit.webhook_id,
            dump_changes(audit.changes),
        ),
    )


def _audit_from_row(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        at=from_utc_iso(row["at"]),
        actor_id=row["actor_id"],
        action=row["action"],
        webhook_id=row["webhook_id"],
        changes=json.loads(row["changes"]),
    )
