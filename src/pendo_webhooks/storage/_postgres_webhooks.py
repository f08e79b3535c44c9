"""
The webhook and audit-log part of :class:`~pendo_webhooks.storage.PostgresStorage`.

Secrets and write keys go through the store's :class:`SecretCodec` and are
written to the ``webhooks`` row only (as UTF-8 ``bytea``, so any text survives,
NUL included); audit rows hold the registry's redacted diff and nothing else.
JSON columns are ``json``, not ``jsonb``: ``json`` keeps the header order and
accepts ``\\u0000``.

Strictly private.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from psycopg import Cursor, sql
from psycopg.rows import DictRow

from ..events import EventCategory
from ..model._audit import AuditEntry, AuditQuery
from ..model._webhook import Webhook
from ._errors import duplicate_webhook, unknown_webhook
from ._postgres_core import PostgresCore
from ._sql_rows import RowFormat, as_is, check_version, loaded


__all__ = ["POSTGRES_ROWS", "PostgresWebhooks", "as_utc"]

_INSERT_WEBHOOK = """
INSERT INTO {schema}.webhooks (
    id, version, name, kind, url, segment_endpoint, segment_gzip, write_key, secret,
    previous_secrets, categories, enabled, signature_scheme, signature_header, headers,
    created_at, created_by, updated_at, updated_by, disabled_reason, disabled_by,
    filters, hash_key
) VALUES (
    %(id)s, %(version)s, %(name)s, %(kind)s, %(url)s, %(segment_endpoint)s, %(segment_gzip)s,
    %(write_key)s, %(secret)s, %(previous_secrets)s::json, %(categories)s::text[], %(enabled)s,
    %(signature_scheme)s, %(signature_header)s, %(headers)s::json,
    %(created_at)s, %(created_by)s, %(updated_at)s, %(updated_by)s,
    %(disabled_reason)s, %(disabled_by)s, %(filters)s::json, %(hash_key)s
)
ON CONFLICT (id) DO NOTHING
"""

_UPDATE_WEBHOOK = """
UPDATE {schema}.webhooks SET
    version = %(version)s, name = %(name)s, kind = %(kind)s, url = %(url)s,
    segment_endpoint = %(segment_endpoint)s, segment_gzip = %(segment_gzip)s,
    write_key = %(write_key)s, secret = %(secret)s,
    previous_secrets = %(previous_secrets)s::json, categories = %(categories)s::text[],
    enabled = %(enabled)s, signature_scheme = %(signature_scheme)s,
    signature_header = %(signature_header)s, headers = %(headers)s::json,
    created_at = %(created_at)s, created_by = %(created_by)s,
    updated_at = %(updated_at)s, updated_by = %(updated_by)s,
    disabled_reason = %(disabled_reason)s, disabled_by = %(disabled_by)s,
    filters = %(filters)s::json, hash_key = %(hash_key)s
WHERE id = %(id)s
"""

_INSERT_AUDIT = """
INSERT INTO {schema}.audit_log (id, at, actor_id, action, webhook_id, changes)
VALUES (%s, %s, %s, %s, %s, %s::json)
"""

# Each filter of an AuditQuery and its condition; only the ones set are joined in, so the
# planner sees a plain predicate it can match to an index.
_AUDIT_FILTERS: tuple[tuple[str, sql.SQL], ...] = (
    ("webhook_id", sql.SQL("webhook_id = %(webhook_id)s")),
    ("actor_id", sql.SQL("actor_id = %(actor_id)s")),
    ("action", sql.SQL("action = %(action)s")),
    ("since", sql.SQL("at >= %(since)s")),
    ("until", sql.SQL("at < %(until)s")),
)


def as_utc(moment: datetime) -> datetime:
    """
    Return *moment* (an aware datetime from the driver, in the session's zone) in UTC.
    """
    return moment.astimezone(timezone.utc)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _from_utf8(stored: bytes) -> str:
    return bytes(stored).decode("utf-8", "surrogatepass")


#: How PostgreSQL keeps what SQLite keeps otherwise: ``timestamptz`` and ``boolean``
#: as they are, secrets as UTF-8 ``bytea`` (any text survives, NUL included), and
#: ``json`` columns, which psycopg reads back parsed.
POSTGRES_ROWS = RowFormat(
    time=as_is, when=as_utc, flag=bool, secret=_utf8, secret_text=_from_utf8, json=as_is
)


class PostgresWebhooks(PostgresCore):
    """
    Webhook rows (categories as a ``text[]``) and the audit log. Strictly private.
    """

    # -- writes ------------------------------------------------------------------------------

    def insert_webhook(self, webhook: Webhook, *, audit: AuditEntry) -> None:
        """
        Store a new webhook and its audit entry in one transaction; see WebhookStore.

        A taken id is found by the insert itself (``ON CONFLICT DO NOTHING``), no read first.
        """
        row = self._to_row(webhook)

        def write(cur: Cursor[DictRow]) -> None:
            cur.execute(self._q(_INSERT_WEBHOOK), row)
            if cur.rowcount != 1:
                raise duplicate_webhook(webhook.id)
            self._append_audit(cur, audit)

        self._write("storing a webhook", write)

    def replace_webhook(
        self, webhook: Webhook, *, expected_version: int, audit: AuditEntry
    ) -> None:
        """
        Replace a webhook still at *expected_version*, with its audit entry; see WebhookStore.

        The row is locked (``FOR UPDATE``) while its version is checked, so a concurrent
        change waits for this one and then finds its version stale.
        """
        row = self._to_row(webhook)

        def write(cur: Cursor[DictRow]) -> None:
            self._lock_version(cur, webhook.id, expected_version)
            cur.execute(self._q(_UPDATE_WEBHOOK), row)
            self._append_audit(cur, audit)

        self._write("replacing a webhook", write)

    def delete_webhook(self, webhook_id: str, *, expected_version: int, audit: AuditEntry) -> None:
        """
        Delete a webhook still at *expected_version*, with its audit entry; see WebhookStore.

        Locked and checked as :meth:`replace_webhook` does.
        """

        def write(cur: Cursor[DictRow]) -> None:
            self._lock_version(cur, webhook_id, expected_version)
            cur.execute(self._q("DELETE FROM {schema}.webhooks WHERE id = %s"), (webhook_id,))
            self._append_audit(cur, audit)

        self._write("deleting a webhook", write)

    # -- reads -------------------------------------------------------------------------------

    def get_webhook(self, webhook_id: str) -> Webhook:
        """
        Return the webhook with this id.

        Raises:
            UnknownWebhook: If no webhook has this id.
        """
        rows = self._read(
            "reading a webhook",
            self._q("SELECT * FROM {schema}.webhooks WHERE id = %s"),
            (webhook_id,),
        )
        if not rows:
            raise unknown_webhook(webhook_id)
        return self._from_row(rows[0])

    def list_webhooks(self) -> list[Webhook]:
        """
        Return every webhook, oldest first (then by id).
        """
        rows = self._read(
            "listing webhooks",
            self._q("SELECT * FROM {schema}.webhooks ORDER BY created_at, id"),
        )
        return [self._from_row(row) for row in rows]

    def webhooks_for(self, category: EventCategory) -> list[Webhook]:
        """
        Return the enabled webhooks subscribed to *category*, oldest first (then by id).
        """
        rows = self._read(
            "finding subscribed webhooks",
            self._q(
                """
                SELECT * FROM {schema}.webhooks
                 WHERE enabled AND categories @> ARRAY[%s]::text[]
                 ORDER BY created_at, id
                """
            ),
            (EventCategory(category).value,),
        )
        return [self._from_row(row) for row in rows]

    def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        """
        Return the audit entries matching *query*, newest first, at most ``query.limit``.
        """
        params: dict[str, Any] = {
            "webhook_id": query.webhook_id,
            "actor_id": query.actor_id,
            "action": query.action,
            "since": query.since,
            "until": query.until,
            "limit": query.limit,
        }
        conditions = [cond for key, cond in _AUDIT_FILTERS if params[key] is not None]
        where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
        statement = sql.SQL(
            """
            SELECT id, at, actor_id, action, webhook_id, changes FROM {schema}.audit_log
             WHERE {where} ORDER BY seq DESC LIMIT %(limit)s
            """
        ).format(schema=self._ident, where=where)
        rows = self._read("reading the audit log", statement, params)
        return [POSTGRES_ROWS.audit(row) for row in rows]

    # -- helpers -----------------------------------------------------------------------------

    def _lock_version(self, cur: Cursor[DictRow], webhook_id: str, expected_version: int) -> None:
        # FOR UPDATE: a concurrent change waits for ours, then sees the version we wrote.
        cur.execute(
            self._q("SELECT version FROM {schema}.webhooks WHERE id = %s FOR UPDATE"),
            (webhook_id,),
        )
        found = cur.fetchone()
        check_version(webhook_id, expected_version, None if found is None else found["version"])

    def _append_audit(self, cur: Cursor[DictRow], audit: AuditEntry) -> None:
        cur.execute(self._q(_INSERT_AUDIT), POSTGRES_ROWS.audit_params(audit))

    def _to_row(self, webhook: Webhook) -> dict[str, Any]:
        row = POSTGRES_ROWS.webhook_params(webhook, self._codec)
        row["categories"] = sorted(c.value for c in webhook.categories)
        return row

    def _from_row(self, row: Mapping[str, Any]) -> Webhook:
        return loaded(
            row["id"],
            lambda: POSTGRES_ROWS.webhook(row, self._codec, row["categories"]),
        )
