"""
The webhook-health part of :class:`~pendo_webhooks.storage.SQLiteStorage`. Strictly private.

One row per webhook in ``webhook_health`` (migration 9), written by compare-and-set on its
``version``; held claims and the paced release of a recovered webhook's backlog are one
short write transaction each, like the outbox's other writes. Besides, the two summary reads
of an admin page: many webhooks' health, and deliveries counted by webhook (one scan of the
deliveries, without their bodies; for the dead and failed ones, a range of the partial index
deliveries_unhappy_by_time, which the pending and delivered rows of the hot path never enter).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..model._delivery import DeliveryStatus
from ..model._health import WebhookHealth
from ._sql_rows import HEALTH_COLUMNS as _COLUMNS
from ._sql_rows import HEALTH_TIMES as _TIMES
from ._sqlite_core import SQLiteCore, from_utc_iso, utc_iso


__all__ = ["SQLiteHealth"]


_GET = """
SELECT version, failing_since, last_success_at, last_failure_at, failures, streak,
       outage_since, next_probe_at, probes, probe_delivery, probe_owner, probe_until
  FROM webhook_health WHERE webhook_id = ?
"""
_GET_MANY = """
SELECT webhook_id, version, failing_since, last_success_at, last_failure_at, failures,
       streak, outage_since, next_probe_at, probes, probe_delivery, probe_owner, probe_until
  FROM webhook_health WHERE webhook_id IN (SELECT value FROM json_each(?))
"""
_COUNT = """
SELECT webhook_id, count(*) FROM deliveries
 WHERE status = :status AND coalesce(finished_at, updated_at) >= ?
 GROUP BY webhook_id
"""
# The status is written into the statement, not bound, so the planner sees at prepare time
# that the partial index deliveries_unhappy_by_time holds every row asked for (a dead or a
# failed one). The values are the enum's own words.
_COUNTS = {s: _COUNT.replace(":status", f"'{s.value}'") for s in DeliveryStatus}
_INSERT = """
INSERT INTO webhook_health (
    webhook_id, version, failing_since, last_success_at, last_failure_at, failures, streak,
    outage_since, next_probe_at, probes, probe_delivery, probe_owner, probe_until
) VALUES (
    :webhook_id, 1, :failing_since, :last_success_at, :last_failure_at, :failures, :streak,
    :outage_since, :next_probe_at, :probes, :probe_delivery, :probe_owner, :probe_until
)
ON CONFLICT (webhook_id) DO NOTHING
"""
_UPDATE = """
UPDATE webhook_health
   SET version = version + 1, failing_since = :failing_since,
       last_success_at = :last_success_at, last_failure_at = :last_failure_at,
       failures = :failures, streak = :streak, outage_since = :outage_since,
       next_probe_at = :next_probe_at, probes = :probes, probe_delivery = :probe_delivery,
       probe_owner = :probe_owner, probe_until = :probe_until
 WHERE webhook_id = :webhook_id AND version = :expected
"""
_HOLD = """
UPDATE deliveries
   SET lease_owner = NULL, lease_until = NULL, next_attempt_at = :until, updated_at = :now,
       claims = max(claims - 1, 0)
 WHERE id = :id AND status = 'pending' AND lease_owner = :owner
"""
_RESPREAD_PICK = """
SELECT id FROM deliveries
 WHERE webhook_id = :webhook_id AND status = 'pending'
   AND (lease_until IS NULL OR lease_until < :now)
 ORDER BY attempts, id
 LIMIT :limit
"""
_RESPREAD = """
UPDATE deliveries
   SET lease_owner = NULL, lease_until = NULL, next_attempt_at = :at, updated_at = :now
 WHERE id = :id
"""


def _params(health: WebhookHealth) -> dict[str, Any]:
    params: dict[str, Any] = {"webhook_id": health.webhook_id}
    for column in _COLUMNS:
        value = getattr(health, column)
        params[column] = utc_iso(value) if column in _TIMES and value is not None else value
    return params


def _health(webhook_id: str, row: Any) -> WebhookHealth:
    values: dict[str, Any] = {}
    for column in _COLUMNS:
        value = row[column]
        values[column] = from_utc_iso(value) if column in _TIMES and value else value
    return WebhookHealth(webhook_id=webhook_id, version=row["version"], **values)


class SQLiteHealth(SQLiteCore):
    """
    Each webhook's health, held claims and paced releases in SQLite. Strictly private.
    """

    def get_webhook_health(self, webhook_id: str) -> WebhookHealth | None:
        """
        Return the webhook's stored health, or None; see HealthStore.
        """
        rows = self._query(_GET, (webhook_id,))
        return _health(webhook_id, rows[0]) if rows else None

    def health_of(self, webhook_ids: Collection[str]) -> dict[str, WebhookHealth]:
        """
        Return the stored health of those of *webhook_ids* that have any; see BulkHealthStore.
        """
        if not webhook_ids:
            return {}
        rows = self._query(_GET_MANY, (json.dumps(list(webhook_ids)),))
        return {row["webhook_id"]: _health(row["webhook_id"], row) for row in rows}

    def count_by_webhook(self, *, status: DeliveryStatus, since: datetime) -> dict[str, int]:
        """
        Count the deliveries in *status* since *since* by webhook; see CountingDeliveryLog.
        """
        rows = self._query(_COUNTS[DeliveryStatus(status)], (utc_iso(since),))
        return {row[0]: row[1] for row in rows}

    def put_webhook_health(self, health: WebhookHealth, *, expected_version: int) -> bool:
        """
        Store *health* if the stored version is still *expected_version*; see HealthStore.
        """
        params = _params(health)
        with self._transaction(relaxed=True) as conn:
            if expected_version == 0:
                return conn.execute(_INSERT, params).rowcount == 1
            return conn.execute(_UPDATE, {**params, "expected": expected_version}).rowcount == 1

    def hold_claims(
        self, delivery_ids: Sequence[str], *, owner: str, now: datetime, until: datetime
    ) -> int:
        """
        Give back claims *owner* holds, due again at *until*; see HealthStore.
        """
        if not delivery_ids:
            return 0
        params = {"owner": owner, "now": utc_iso(now), "until": utc_iso(until)}
        with self._transaction(relaxed=True) as conn:
            return sum(conn.execute(_HOLD, {**params, "id": i}).rowcount for i in delivery_ids)

    def respread_pending(
        self,
        webhook_id: str,
        *,
        start: datetime,
        spacing: timedelta,
        now: datetime,
        limit: int | None = None,
    ) -> list[str]:
        """
        Give the webhook's unleased pending deliveries new due times; see HealthStore.
        """
        stamp = utc_iso(now)
        pick = {"webhook_id": webhook_id, "now": stamp, "limit": -1 if limit is None else limit}
        with self._transaction(relaxed=True) as conn:
            ids = [row[0] for row in conn.execute(_RESPREAD_PICK, pick).fetchall()]
            conn.executemany(
                _RESPREAD,
                [
                    {"id": i, "now": stamp, "at": utc_iso(start + spacing * number)}
                    for number, i in enumerate(ids)
                ],
            )
        return ids
