"""
A store of your own: the whole storage seam over the standard library's sqlite3.

pendo-webhooks keeps its state behind the Protocols in ``pendo_webhooks.storage.protocols``.
This module implements all of them (``Storage``) with nothing but ``sqlite3`` and the
library's public names, the way a host would over its own database: one table per
record, the columns the store queries by, and each change in one transaction. It is
written to be read and copied, not to be fast (``SQLiteStorage`` is the fast one).

It passes the shipped contract suite; prove yours the same way (see the how-to "Keep
the outbox in your own database")::

    import pytest
    from pendo_webhooks.testing.storage_contract import StorageContract
    from custom_store import PlainSQLiteStore

    class TestPlainSQLiteStore(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            with PlainSQLiteStore(tmp_path / "outbox.db") as store:
                yield store

Run it to see a webhook, a delivery and its history go through it:

    python examples/custom_store.py
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs

from pendo_webhooks.dispatcher import Attempt, Delivery, DeliveryStatus, WebhookHealth
from pendo_webhooks.events import EventCategory
from pendo_webhooks.exceptions import (
    ConfigurationError,
    ConflictError,
    UnknownDelivery,
    UnknownExclusion,
    UnknownWebhook,
)
from pendo_webhooks.pipeline import Exclusion, ExclusionRule
from pendo_webhooks.registry import AuditEntry, FieldFilter, RetiredSecret, Webhook
from pendo_webhooks.storage import AuditQuery, FirstSeenOrigin
from pendo_webhooks.storage.protocols import claims_exhausted


SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    data TEXT NOT NULL                      -- the whole webhook, as JSON
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- newest first = highest seq first
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- most recently stored first
    id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    status TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body BLOB NOT NULL,
    claims INTEGER NOT NULL,                -- leases taken; claims - attempts ended unrecorded
    data TEXT NOT NULL,                     -- every other field, as JSON
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS exchanges (        -- one per HTTP request (a Segment batch: one)
    id TEXT PRIMARY KEY,
    response_excerpt BLOB NOT NULL,
    data TEXT NOT NULL                      -- started_at, duration, status_code, ... as JSON
);
CREATE TABLE IF NOT EXISTS attempts (        -- one per delivery in an exchange
    delivery_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    exchange_id TEXT NOT NULL REFERENCES exchanges (id),
    data TEXT NOT NULL,                     -- verdict and reason, as JSON
    PRIMARY KEY (delivery_id, number)
);
CREATE INDEX IF NOT EXISTS attempts_by_exchange ON attempts (exchange_id);
CREATE TABLE IF NOT EXISTS first_seen (
    key TEXT PRIMARY KEY,
    origin TEXT NOT NULL,                   -- 'api' or 'app'
    at TEXT NOT NULL                        -- when it became known, or was seen
);
CREATE TABLE IF NOT EXISTS exclusions (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    pattern TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters VALUES ('exclusions_version', 0);
CREATE TABLE IF NOT EXISTS webhook_health (   -- optional: the HealthStore capability
    webhook_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,               -- compare-and-set: bumped by every write
    data TEXT NOT NULL                      -- every other field, as JSON
);
"""

PENDING = DeliveryStatus.PENDING.value
_DELIVERY_TIMES = ("next_attempt_at", "created_at", "updated_at")
_DELIVERY_OPTIONAL_TIMES = ("lease_until", "finished_at", "redelivered_at")
_HEALTH_TIMES = (
    "failing_since",
    "last_success_at",
    "last_failure_at",
    "outage_since",
    "next_probe_at",
    "probe_until",
)


# -- turning records into rows and back -----------------------------------------------------


def _text(moment: datetime) -> str:
    """
    A datetime as fixed-width UTC text, so that text order is time order in SQL.
    """
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _webhook_json(webhook: Webhook) -> str:
    # Secrets are needed to sign, so they are stored; encrypt them at rest in a real
    # store (see SecretCodec in the API docs).
    return json.dumps(
        {
            "id": webhook.id,
            "name": webhook.name,
            "kind": webhook.kind.value,
            "url": webhook.url,
            "write_key": None if webhook.write_key is None else webhook.write_key.reveal(),
            "segment_endpoint": webhook.segment_endpoint,
            "segment_gzip": webhook.segment_gzip,
            "secret": None if webhook.secret is None else webhook.secret.reveal(),
            "previous_secrets": [
                [old.secret.reveal(), _text(old.expires_at)] for old in webhook.previous_secrets
            ],
            "categories": sorted(c.value for c in webhook.categories),
            "enabled": webhook.enabled,
            "signature_scheme": webhook.signature_scheme.value,
            "signature_header": webhook.signature_header,
            "headers": dict(webhook.headers),
            "filters": [str(f) for f in webhook.filters],  # "drop:<path>" / "hash:<path>"
            "hash_key": None if webhook.hash_key is None else webhook.hash_key.reveal(),
            "created_at": _text(webhook.created_at),
            "created_by": webhook.created_by,
            "updated_at": _text(webhook.updated_at),
            "updated_by": webhook.updated_by,
            "disabled_reason": webhook.disabled_reason,
            "disabled_by": webhook.disabled_by,
            "version": webhook.version,
        }
    )


def _webhook(data: str) -> Webhook:
    fields = json.loads(data)
    fields["previous_secrets"] = tuple(
        RetiredSecret(secret=secret, expires_at=datetime.fromisoformat(expires))
        for secret, expires in fields["previous_secrets"]
    )
    fields["filters"] = tuple(FieldFilter.parse(text) for text in fields.get("filters", ()))
    fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    fields["updated_at"] = datetime.fromisoformat(fields["updated_at"])
    return Webhook(**fields)


def _audit_json(entry: AuditEntry) -> str:
    changes = {field: [_plain(old), _plain(new)] for field, (old, new) in entry.changes.items()}
    return json.dumps(
        {
            "id": entry.id,
            "at": _text(entry.at),
            "actor_id": entry.actor_id,
            "action": entry.action,
            "webhook_id": entry.webhook_id,
            "changes": changes,
        }
    )


def _plain(value: Any) -> Any:
    """
    An audit value as JSON: tuples become lists and mappings dicts (AuditEntry turns
    them back).
    """
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str | int | bool) or value is None:
        return value
    return dict(value)


def _audit(data: str) -> AuditEntry:
    fields = json.loads(data)
    fields["at"] = datetime.fromisoformat(fields["at"])
    return AuditEntry(**fields)


def _delivery_row(delivery: Delivery) -> dict[str, Any]:
    rest = {
        "category": delivery.category.value,
        "attempts": delivery.attempts,
        "attempt_base": delivery.attempt_base,
        "updated_at": _text(delivery.updated_at),
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "lease_owner": delivery.lease_owner,
        "purged": delivery.purged,
    }
    for name in _DELIVERY_OPTIONAL_TIMES:
        moment = getattr(delivery, name)
        rest[name] = None if moment is None else _text(moment)
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "status": delivery.status.value,
        "next_attempt_at": _text(delivery.next_attempt_at),
        "created_at": _text(delivery.created_at),
        "body": delivery.body,
        "data": json.dumps(rest),
    }


def _delivery(row: sqlite3.Row) -> Delivery:
    fields = json.loads(row["data"])
    for name in ("id", "webhook_id", "event_id", "status", "body"):
        fields[name] = row[name]
    fields["next_attempt_at"] = row["next_attempt_at"]
    fields["created_at"] = row["created_at"]
    for name in _DELIVERY_TIMES + _DELIVERY_OPTIONAL_TIMES:
        fields[name] = _time(fields[name])
    return Delivery(**fields)


def _exchange_json(attempt: Attempt) -> str:
    # What every attempt of one exchange shares (but the excerpt, which has its column).
    return json.dumps(
        {
            "started_at": _text(attempt.started_at),
            "duration": attempt.duration,
            "status_code": attempt.status_code,
            "error_kind": attempt.error_kind,
            "detail": attempt.detail,
        }
    )


def _attempt_json(attempt: Attempt) -> str:
    # What is the delivery's own.
    return json.dumps({"verdict": attempt.verdict.value, "reason": attempt.reason})


# An attempt row with its exchange's; _attempt() reads one back.
_ATTEMPTS = (
    "SELECT a.delivery_id, a.number, a.exchange_id, a.data, x.data AS exchange, "
    "x.response_excerpt, d.data AS delivery "
    "FROM attempts AS a JOIN exchanges AS x ON x.id = a.exchange_id "
    "JOIN deliveries AS d ON d.id = a.delivery_id "
)


def _attempt(row: sqlite3.Row) -> Attempt:
    fields = {**json.loads(row["exchange"]), **json.loads(row["data"])}
    fields["started_at"] = datetime.fromisoformat(fields["started_at"])
    purged = json.loads(row["delivery"])["purged"]  # its attempts are shown without excerpt
    return Attempt(
        delivery_id=row["delivery_id"],
        number=row["number"],
        exchange_id=row["exchange_id"],
        response_excerpt=b"" if purged else row["response_excerpt"],
        **fields,
    )


def _exclusion(row: sqlite3.Row) -> Exclusion:
    return Exclusion(
        id=row["id"],
        rule=ExclusionRule(row["kind"], row["pattern"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        created_by=row["created_by"],
    )


# -- the store ------------------------------------------------------------------------------


class PlainSQLiteStore:
    """
    Every part of ``pendo_webhooks.storage.protocols.Storage``, in one SQLite file.

    One connection, shared by threads under a lock; each method is one transaction
    (``BEGIN IMMEDIATE``, so other processes on the same file wait their turn).
    """

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PlainSQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """
        One transaction: committed if the block ends normally, rolled back if it raises.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- WebhookStore and AuditStore --------------------------------------------------------

    def _add_audit(self, conn: sqlite3.Connection, audit: AuditEntry) -> None:
        conn.execute("INSERT INTO audit (data) VALUES (?)", (_audit_json(audit),))

    def _check_version(self, conn: sqlite3.Connection, webhook_id: str, expected: int) -> None:
        row = conn.execute("SELECT version FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
        if row is None:
            raise UnknownWebhook(f"no webhook with id {webhook_id!r}")
        if row["version"] != expected:
            raise ConflictError(
                f"webhook {webhook_id!r} was changed by someone else: the change is based on "
                f"version {expected}, but version {row['version']} is stored"
            )

    def insert_webhook(self, webhook: Webhook, *, audit: AuditEntry) -> None:
        with self._transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO webhooks VALUES (?, ?, ?, ?)",
                    (
                        webhook.id,
                        webhook.version,
                        _text(webhook.created_at),
                        _webhook_json(webhook),
                    ),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"a webhook with id {webhook.id!r} already exists") from None
            self._add_audit(conn, audit)

    def replace_webhook(
        self, webhook: Webhook, *, expected_version: int, audit: AuditEntry
    ) -> None:
        with self._transaction() as conn:
            self._check_version(conn, webhook.id, expected_version)
            conn.execute(
                "UPDATE webhooks SET version = ?, created_at = ?, data = ? WHERE id = ?",
                (webhook.version, _text(webhook.created_at), _webhook_json(webhook), webhook.id),
            )
            self._add_audit(conn, audit)

    def delete_webhook(self, webhook_id: str, *, expected_version: int, audit: AuditEntry) -> None:
        with self._transaction() as conn:
            self._check_version(conn, webhook_id, expected_version)
            conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
            self._add_audit(conn, audit)

    def get_webhook(self, webhook_id: str) -> Webhook:
        with self._transaction() as conn:
            row = conn.execute("SELECT data FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
        if row is None:
            raise UnknownWebhook(f"no webhook with id {webhook_id!r}")
        return _webhook(row["data"])

    def list_webhooks(self) -> list[Webhook]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT data FROM webhooks ORDER BY created_at, id").fetchall()
        return [_webhook(row["data"]) for row in rows]

    def webhooks_for(self, category: EventCategory) -> list[Webhook]:
        # Plain, not fast: load them all and filter here.
        return [w for w in self.list_webhooks() if w.enabled and category in w.categories]

    def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT data FROM audit ORDER BY seq DESC").fetchall()
        found = [entry for entry in map(_audit, (r["data"] for r in rows)) if query.matches(entry)]
        return found[: query.limit]

    # -- OutboxQueue ------------------------------------------------------------------------

    def _load(self, conn: sqlite3.Connection, delivery_id: str) -> Delivery:
        row = conn.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        if row is None:
            raise UnknownDelivery(f"no delivery with id {delivery_id!r}")
        return _delivery(row)

    def _save(self, conn: sqlite3.Connection, delivery: Delivery) -> None:
        """
        Write every field of an existing delivery.
        """
        row = _delivery_row(delivery)
        conn.execute(
            "UPDATE deliveries SET status = :status, next_attempt_at = :next_attempt_at, "
            "body = :body, data = :data WHERE id = :id",
            row,
        )

    def _enqueue(
        self, conn: sqlite3.Connection, deliveries: Sequence[Delivery]
    ) -> list[str | None]:
        results: list[str | None] = []
        for delivery in deliveries:
            taken = conn.execute("SELECT 1 FROM deliveries WHERE id = ?", (delivery.id,))
            if taken.fetchone() is not None:
                raise ConflictError(f"a delivery with id {delivery.id!r} already exists")
            hook = conn.execute(
                "SELECT data FROM webhooks WHERE id = ?", (delivery.webhook_id,)
            ).fetchone()
            if hook is None:
                results.append("deleted")
            elif not _webhook(hook["data"]).enabled:
                results.append("disabled")
            else:
                try:
                    conn.execute(
                        "INSERT INTO deliveries (id, webhook_id, event_id, status, "
                        "next_attempt_at, created_at, body, data, claims) VALUES (:id, "
                        ":webhook_id, :event_id, :status, :next_attempt_at, :created_at, "
                        ":body, :data, :claims)",
                        # A delivery stored leased (dispatch()'s first attempt) used a claim.
                        {
                            **_delivery_row(delivery),
                            "claims": int(delivery.lease_owner is not None),
                        },
                    )
                except sqlite3.IntegrityError:  # the same event to the same webhook
                    results.append("duplicate")
                else:
                    results.append(None)
        return results

    def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> list[str | None]:
        with self._transaction() as conn:
            return self._enqueue(conn, deliveries)

    def claim_due(
        self,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        webhook_id: str | None = None,
        max_claims: int | None = None,
    ) -> list[Delivery]:
        sql = "SELECT * FROM deliveries WHERE status = ? AND next_attempt_at <= ?"
        params: list[object] = [PENDING, _text(now)]
        if webhook_id is not None:
            sql += " AND webhook_id = ?"
            params.append(webhook_id)
        sql += " ORDER BY next_attempt_at, seq LIMIT ?"
        params.append(limit)
        with self._transaction() as conn:
            rows = conn.execute(sql, params).fetchall()
            return [
                self._lease(
                    conn, row, owner=owner, now=now, lease_until=lease_until, max_claims=max_claims
                )
                for row in rows
            ]

    def claim_deliveries(
        self,
        delivery_ids: Sequence[str],
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        max_claims: int | None = None,
    ) -> list[Delivery]:
        claimed = []
        with self._transaction() as conn:
            for delivery_id in dict.fromkeys(delivery_ids):  # each id once
                row = conn.execute(
                    "SELECT * FROM deliveries WHERE id = ? AND status = ? "
                    "AND next_attempt_at <= ?",
                    (delivery_id, PENDING, _text(now)),
                ).fetchone()
                if row is not None:
                    claimed.append(
                        self._lease(
                            conn,
                            row,
                            owner=owner,
                            now=now,
                            lease_until=lease_until,
                            max_claims=max_claims,
                        )
                    )
        return claimed

    def _lease(
        self,
        conn: sqlite3.Connection,
        row: sqlite3.Row,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        max_claims: int | None,
    ) -> Delivery:
        """
        One claim, counted; or, past *max_claims* claims without an outcome, the end.
        """
        delivery = _delivery(row)
        conn.execute("UPDATE deliveries SET claims = claims + 1 WHERE id = ?", (delivery.id,))
        if max_claims is not None and row["claims"] - delivery.attempts >= max_claims:
            changed = attrs.evolve(
                delivery,
                status=DeliveryStatus.DEAD,
                last_error=claims_exhausted(max_claims),
                finished_at=now,
                lease_owner=None,
                lease_until=None,
                next_attempt_at=now,
                updated_at=now,
            )
        else:
            changed = attrs.evolve(
                delivery,
                lease_owner=owner,
                lease_until=lease_until,
                next_attempt_at=lease_until,
                updated_at=now,
            )
        self._save(conn, changed)
        return changed

    def _record(
        self,
        conn: sqlite3.Connection,
        delivery: Delivery,
        attempt: Attempt | None,
        owner: str,
        now: datetime,
    ) -> bool:
        current = self._load(conn, delivery.id)
        still_ours = (
            current.status is DeliveryStatus.PENDING
            and current.lease_owner == owner
            and current.lease_until is not None
            and current.lease_until >= now
        )
        if not still_ours:
            return False  # the lease was lost (fencing): write nothing
        self._save(
            conn,
            attrs.evolve(
                current,
                status=delivery.status,
                attempts=delivery.attempts,
                next_attempt_at=delivery.next_attempt_at,
                updated_at=delivery.updated_at,
                last_status=delivery.last_status,
                last_error=delivery.last_error,
                finished_at=delivery.finished_at,
                lease_owner=None,
                lease_until=None,
            ),
        )
        if attempt is not None:
            # The exchange once (a Segment batch's attempts share it), then the attempt.
            conn.execute(
                "INSERT OR IGNORE INTO exchanges VALUES (?, ?, ?)",
                (attempt.exchange_id, attempt.response_excerpt, _exchange_json(attempt)),
            )
            conn.execute(
                "INSERT INTO attempts VALUES (?, ?, ?, ?)",
                (
                    attempt.delivery_id,
                    attempt.number,
                    attempt.exchange_id,
                    _attempt_json(attempt),
                ),
            )
        return True

    def record_outcome(
        self, delivery: Delivery, attempt: Attempt | None, *, owner: str, now: datetime
    ) -> bool:
        with self._transaction() as conn:
            return self._record(conn, delivery, attempt, owner, now)

    def record_outcomes(
        self, outcomes: Sequence[tuple[Delivery, Attempt | None]], *, owner: str, now: datetime
    ) -> list[bool]:
        with self._transaction() as conn:
            return [self._record(conn, d, a, owner, now) for d, a in outcomes]

    def release_claims(self, delivery_ids: Sequence[str], *, owner: str, now: datetime) -> int:
        released = 0
        with self._transaction() as conn:
            for delivery_id in delivery_ids:
                current = self._load(conn, delivery_id)
                if current.status is DeliveryStatus.PENDING and current.lease_owner == owner:
                    # A claim handed back unattempted does not count against the delivery.
                    conn.execute(
                        "UPDATE deliveries SET claims = max(claims - 1, 0) WHERE id = ?",
                        (delivery_id,),
                    )
                    self._save(
                        conn,
                        attrs.evolve(
                            current,
                            lease_owner=None,
                            lease_until=None,
                            next_attempt_at=now,
                            updated_at=now,
                        ),
                    )
                    released += 1
        return released

    def cancel_deliveries(self, webhook_id: str, *, reason: str, now: datetime) -> int:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM deliveries WHERE webhook_id = ? AND status = ?",
                (webhook_id, PENDING),
            ).fetchall()
            for row in rows:
                self._save(
                    conn,
                    attrs.evolve(
                        _delivery(row),
                        status=DeliveryStatus.CANCELLED,
                        last_error=reason,
                        finished_at=now,
                        updated_at=now,
                        lease_owner=None,
                        lease_until=None,
                    ),
                )
        return len(rows)

    # -- HealthStore (optional: outage-aware retries and auto-disable need it) ---------------

    def get_webhook_health(self, webhook_id: str) -> WebhookHealth | None:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT version, data FROM webhook_health WHERE webhook_id = ?", (webhook_id,)
            ).fetchone()
        if row is None:
            return None
        fields = json.loads(row["data"])
        for name, value in fields.items():
            if name in _HEALTH_TIMES:
                fields[name] = _time(value)
        return WebhookHealth(webhook_id=webhook_id, version=row["version"], **fields)

    def put_webhook_health(self, health: WebhookHealth, *, expected_version: int) -> bool:
        fields = attrs.asdict(health)
        del fields["webhook_id"], fields["version"]
        for name in _HEALTH_TIMES:
            fields[name] = None if fields[name] is None else _text(fields[name])
        data = json.dumps(fields)
        with self._transaction() as conn:
            if expected_version == 0:
                written = conn.execute(
                    "INSERT OR IGNORE INTO webhook_health VALUES (?, 1, ?)",
                    (health.webhook_id, data),
                )
            else:
                written = conn.execute(
                    "UPDATE webhook_health SET version = version + 1, data = ? "
                    "WHERE webhook_id = ? AND version = ?",
                    (data, health.webhook_id, expected_version),
                )
        return written.rowcount == 1

    def hold_claims(
        self, delivery_ids: Sequence[str], *, owner: str, now: datetime, until: datetime
    ) -> int:
        held = 0
        with self._transaction() as conn:
            for delivery_id in delivery_ids:
                current = self._load(conn, delivery_id)
                if current.status is DeliveryStatus.PENDING and current.lease_owner == owner:
                    # Like a release (not counted against the delivery), but due later.
                    conn.execute(
                        "UPDATE deliveries SET claims = max(claims - 1, 0) WHERE id = ?",
                        (delivery_id,),
                    )
                    self._save(
                        conn,
                        attrs.evolve(
                            current,
                            lease_owner=None,
                            lease_until=None,
                            next_attempt_at=until,
                            updated_at=now,
                        ),
                    )
                    held += 1
        return held

    def respread_pending(
        self,
        webhook_id: str,
        *,
        start: datetime,
        spacing: timedelta,
        now: datetime,
        limit: int | None = None,
    ) -> list[str]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM deliveries WHERE webhook_id = ? AND status = ?",
                (webhook_id, PENDING),
            ).fetchall()
            free = [
                d for d in map(_delivery, rows) if d.lease_until is None or d.lease_until < now
            ]
            chosen = sorted(free, key=lambda d: (d.attempts, d.id))[:limit]
            for number, delivery in enumerate(chosen):
                self._save(
                    conn,
                    attrs.evolve(
                        delivery,
                        lease_owner=None,
                        lease_until=None,
                        next_attempt_at=start + spacing * number,
                        updated_at=now,
                    ),
                )
        return [d.id for d in chosen]

    def pending_summary(self) -> tuple[int, datetime | None]:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT count(*) AS n, min(next_attempt_at) AS first FROM deliveries "
                "WHERE status = ?",
                (PENDING,),
            ).fetchone()
        return row["n"], _time(row["first"])

    # -- DeliveryLog ------------------------------------------------------------------------

    def get_delivery(self, delivery_id: str) -> Delivery:
        with self._transaction() as conn:
            return self._load(conn, delivery_id)

    def list_deliveries(
        self,
        *,
        webhook_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        sql, params = "SELECT * FROM deliveries WHERE 1 = 1", []
        if webhook_id is not None:
            sql += " AND webhook_id = ?"
            params.append(webhook_id)
        if status is not None:
            sql += " AND status = ?"
            params.append(status.value)
        with self._transaction() as conn:
            rows = conn.execute(f"{sql} ORDER BY seq DESC LIMIT ?", [*params, limit]).fetchall()
        return [_delivery(row) for row in rows]

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        with self._transaction() as conn:
            rows = conn.execute(
                f"{_ATTEMPTS} WHERE a.delivery_id = ? ORDER BY a.number", (delivery_id,)
            ).fetchall()
        return [_attempt(row) for row in rows]

    def list_exchange_attempts(self, exchange_id: str) -> list[Attempt]:
        with self._transaction() as conn:
            rows = conn.execute(
                f"{_ATTEMPTS} WHERE a.exchange_id = ? ORDER BY a.delivery_id, a.number",
                (exchange_id,),
            ).fetchall()
        return [_attempt(row) for row in rows]

    def _reopen(self, conn: sqlite3.Connection, delivery: Delivery, now: datetime) -> Delivery:
        reopened = attrs.evolve(
            delivery,
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            attempt_base=delivery.attempts,
            redelivered_at=now,
            finished_at=None,
            updated_at=now,
        )
        self._save(conn, reopened)
        # A redelivery forgives the claims that ended without an outcome.
        conn.execute(
            "UPDATE deliveries SET claims = ? WHERE id = ?", (delivery.attempts, delivery.id)
        )
        return reopened

    def redeliver(self, delivery_id: str, *, now: datetime) -> Delivery:
        with self._transaction() as conn:
            current = self._load(conn, delivery_id)
            if current.status is DeliveryStatus.PENDING:
                raise ConflictError(f"delivery {delivery_id!r} is still pending")
            if current.purged:
                raise ConflictError(f"delivery {delivery_id!r} was purged; its body is gone")
            return self._reopen(conn, current, now)

    def redeliver_failed(
        self, webhook_id: str, *, since: datetime, until: datetime, now: datetime
    ) -> int:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM deliveries WHERE webhook_id = ? AND status IN (?, ?) "
                "AND created_at >= ? AND created_at < ?",
                (
                    webhook_id,
                    DeliveryStatus.FAILED.value,
                    DeliveryStatus.DEAD.value,
                    _text(since),
                    _text(until),
                ),
            ).fetchall()
            chosen = [d for d in map(_delivery, rows) if not d.purged]
            for delivery in chosen:
                self._reopen(conn, delivery, now)
        return len(chosen)

    def purge(self, older_than: datetime) -> int:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM deliveries WHERE status != ?", (PENDING,)
            ).fetchall()
            chosen = [
                d
                for d in map(_delivery, rows)
                if not d.purged and d.finished_at is not None and d.finished_at < older_than
            ]
            for delivery in chosen:
                self._save(conn, attrs.evolve(delivery, body=b"", purged=True))
            # An exchange's excerpt goes once none of its deliveries is left unpurged (a
            # Segment batch's may have some that finished later); a purged delivery's
            # attempts are read without it anyway (_attempt). An exchange no attempt names
            # any more goes entirely.
            unpurged = {d.id for d in map(_delivery, rows) if not d.purged}
            unpurged -= {d.id for d in chosen}
            unpurged.update(
                r["id"]
                for r in conn.execute("SELECT id FROM deliveries WHERE status = ?", (PENDING,))
            )
            for exchange in conn.execute(
                "SELECT id FROM exchanges WHERE response_excerpt != x''"
            ).fetchall():
                members = conn.execute(
                    "SELECT delivery_id FROM attempts WHERE exchange_id = ?", (exchange["id"],)
                ).fetchall()
                if not any(m["delivery_id"] in unpurged for m in members):
                    conn.execute(
                        "UPDATE exchanges SET response_excerpt = x'' WHERE id = ?",
                        (exchange["id"],),
                    )
            conn.execute(
                "DELETE FROM exchanges WHERE id NOT IN (SELECT exchange_id FROM attempts)"
            )
        return len(chosen)

    # -- FirstSeenStore ---------------------------------------------------------------------

    def _claim_keys(
        self, conn: sqlite3.Connection, keys: Collection[str], at: datetime
    ) -> set[str]:
        claimed = set()
        for key in set(keys):
            row = conn.execute("SELECT origin FROM first_seen WHERE key = ?", (key,)).fetchone()
            if row is None or row["origin"] == "api":
                conn.execute(
                    "INSERT OR REPLACE INTO first_seen VALUES (?, 'app', ?)", (key, _text(at))
                )
                claimed.add(key)
        return claimed

    def claim_first_seen(self, keys: Collection[str], *, at: datetime) -> set[str]:
        with self._transaction() as conn:
            return self._claim_keys(conn, keys, at)

    def record_known(self, keys: Collection[str], *, at: datetime) -> int:
        with self._transaction() as conn:
            return sum(
                conn.execute(
                    "INSERT OR IGNORE INTO first_seen VALUES (?, 'api', ?)", (key, _text(at))
                ).rowcount
                for key in set(keys)
            )

    def first_seen_origin(self, key: str) -> FirstSeenOrigin | None:
        with self._transaction() as conn:
            row = conn.execute("SELECT origin FROM first_seen WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return "app" if row["origin"] == "app" else "api"

    def claim_first_seen_and_enqueue(
        self,
        keys: Collection[str],
        *,
        at: datetime,
        deliveries: Callable[[set[str]], Sequence[Delivery]],
        connection: object | None = None,
    ) -> tuple[set[str], list[str | None]]:
        if connection is not None:
            raise ConfigurationError(
                "connection: PlainSQLiteStore cannot write through the host's own connection"
            )
        with self._transaction() as conn:
            claimed = self._claim_keys(conn, keys, at)
            skipped = self._enqueue(conn, deliveries(claimed)) if claimed else []
        return claimed, skipped

    # -- ExclusionStore ---------------------------------------------------------------------

    def _bump_exclusions(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE counters SET value = value + 1 WHERE name = 'exclusions_version'")

    def insert_exclusion(self, exclusion: Exclusion, *, audit: AuditEntry) -> None:
        rule = exclusion.rule
        with self._transaction() as conn:
            same = conn.execute(
                "SELECT id FROM exclusions WHERE id = ? OR (kind = ? AND pattern = ?)",
                (exclusion.id, rule.kind.value, rule.pattern),
            ).fetchone()
            if same is not None and same["id"] == exclusion.id:
                raise ConflictError(f"an exclusion with id {exclusion.id!r} already exists")
            if same is not None:
                raise ConflictError(
                    f"the exclusion list already has {rule.kind.value} {rule.pattern!r} "
                    f"({same['id']})"
                )
            conn.execute(
                "INSERT INTO exclusions VALUES (?, ?, ?, ?, ?)",
                (
                    exclusion.id,
                    rule.kind.value,
                    rule.pattern,
                    _text(exclusion.created_at),
                    exclusion.created_by,
                ),
            )
            self._bump_exclusions(conn)
            self._add_audit(conn, audit)

    def delete_exclusion(self, exclusion_id: str, *, audit: AuditEntry) -> None:
        with self._transaction() as conn:
            gone = conn.execute("DELETE FROM exclusions WHERE id = ?", (exclusion_id,))
            if gone.rowcount == 0:
                raise UnknownExclusion(f"no exclusion with id {exclusion_id!r}")
            self._bump_exclusions(conn)
            self._add_audit(conn, audit)

    def get_exclusion(self, exclusion_id: str) -> Exclusion:
        with self._transaction() as conn:
            row = conn.execute("SELECT * FROM exclusions WHERE id = ?", (exclusion_id,)).fetchone()
        if row is None:
            raise UnknownExclusion(f"no exclusion with id {exclusion_id!r}")
        return _exclusion(row)

    def list_exclusions(self) -> list[Exclusion]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT * FROM exclusions ORDER BY created_at, id").fetchall()
        return [_exclusion(row) for row in rows]

    def exclusions_version(self) -> int:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT value FROM counters WHERE name = 'exclusions_version'"
            ).fetchone()
        return int(row["value"])


def main() -> int:
    """
    A webhook, an event and its delivery's history, all kept by PlainSQLiteStore.
    """
    import tempfile  # noqa: PLC0415

    from pendo_webhooks import Dispatcher, WebhookRegistry  # noqa: PLC0415
    from pendo_webhooks.registry import Actor  # noqa: PLC0415
    from pendo_webhooks.storage.protocols import Storage  # noqa: PLC0415
    from pendo_webhooks.testing import RecordingTransport, sample_event  # noqa: PLC0415

    with (
        tempfile.TemporaryDirectory() as folder,
        PlainSQLiteStore(Path(folder) / "outbox.db") as store,
    ):
        storage: Storage = store  # checked by mypy: the store implements the whole seam
        registry = WebhookRegistry(storage)
        admin = Actor("admin-1", is_admin=True)
        hook = registry.create(
            admin, name="CRM", url="https://crm.example.com/hooks", categories={"npsSubmitted"}
        )
        registry.enable(admin, hook.id)
        transport = RecordingTransport([200])
        with Dispatcher(registry, transport=transport) as dispatcher:
            dispatcher.enqueue(sample_event("npsSubmitted"))
            dispatcher.run_due()
        (delivery,) = store.list_deliveries()
        print(f"{delivery.id}: {delivery.status.value} after {delivery.attempts} attempt(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
