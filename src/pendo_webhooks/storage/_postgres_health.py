"""
The webhook-health part of :class:`~pendo_webhooks.storage.PostgresStorage`. Strictly private.

One row per webhook in ``webhook_health`` (migration 7), written by compare-and-set on its
``version``. Holding claims and the paced release of a recovered webhook's backlog are one
statement each: the release numbers the backlog with ``row_number()`` and gives the
*i*-th delivery ``start + i * spacing``, the same whichever worker runs it. Besides, the two
summary reads of an admin page: many webhooks' health, and deliveries counted by webhook
(the dead and failed ones from the partial index deliveries_unhappy_by_time).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..model._delivery import DeliveryStatus
from ..model._health import WebhookHealth
from ._postgres_core import PostgresCore
from ._postgres_webhooks import as_utc
from ._sql_rows import HEALTH_COLUMNS as _COLUMNS
from ._sql_rows import HEALTH_TIMES as _TIMES


__all__ = ["PostgresHealth"]


_GET = """
SELECT version, failing_since, last_success_at, last_failure_at, failures, streak,
       outage_since, next_probe_at, probes, probe_delivery, probe_owner, probe_until
  FROM {schema}.webhook_health WHERE webhook_id = %(webhook_id)s
"""
_GET_MANY = """
SELECT webhook_id, version, failing_since, last_success_at, last_failure_at, failures,
       streak, outage_since, next_probe_at, probes, probe_delivery, probe_owner, probe_until
  FROM {schema}.webhook_health WHERE webhook_id = ANY(%(ids)s::text[])
"""
_COUNT = """
SELECT webhook_id, count(*) AS n FROM {schema}.deliveries
 WHERE status = :status AND coalesce(finished_at, updated_at) >= %(since)s
 GROUP BY webhook_id
"""
# The status is written into the statement, not bound: a generic plan (psycopg prepares a
# statement run often) could not prove the partial index deliveries_unhappy_by_time holds
# every row asked for, and would scan the table. The values are the enum's own words.
_COUNTS = {s: _COUNT.replace(":status", f"'{s.value}'") for s in DeliveryStatus}
_INSERT = """
INSERT INTO {schema}.webhook_health (
    webhook_id, version, failing_since, last_success_at, last_failure_at, failures, streak,
    outage_since, next_probe_at, probes, probe_delivery, probe_owner, probe_until
) VALUES (
    %(webhook_id)s, 1, %(failing_since)s, %(last_success_at)s, %(last_failure_at)s,
    %(failures)s, %(streak)s, %(outage_since)s, %(next_probe_at)s, %(probes)s,
    %(probe_delivery)s, %(probe_owner)s, %(probe_until)s
)
ON CONFLICT (webhook_id) DO NOTHING
"""
_UPDATE = """
UPDATE {schema}.webhook_health
   SET version = version + 1, failing_since = %(failing_since)s,
       last_success_at = %(last_success_at)s, last_failure_at = %(last_failure_at)s,
       failures = %(failures)s, streak = %(streak)s, outage_since = %(outage_since)s,
       next_probe_at = %(next_probe_at)s, probes = %(probes)s,
       probe_delivery = %(probe_delivery)s,
       probe_owner = %(probe_owner)s, probe_until = %(probe_until)s
 WHERE webhook_id = %(webhook_id)s AND version = %(expected)s
"""
_HOLD = """
UPDATE {schema}.deliveries
   SET lease_owner = NULL, lease_until = NULL, next_attempt_at = %(until)s,
       updated_at = %(now)s, claims = greatest(claims - 1, 0)
 WHERE id = ANY(%(ids)s::text[]) AND status = 'pending' AND lease_owner = %(owner)s
"""
_RESPREAD = """
UPDATE {schema}.deliveries AS d
   SET lease_owner = NULL, lease_until = NULL, updated_at = %(now)s,
       next_attempt_at = %(start)s + (o.n - 1) * %(spacing)s
  FROM (
    SELECT p.id, row_number() OVER (ORDER BY p.attempts, p.id) AS n
      FROM (
        SELECT id, attempts
          FROM {schema}.deliveries
         WHERE webhook_id = %(webhook_id)s AND status = 'pending'
           AND (lease_until IS NULL OR lease_until < %(now)s)
         ORDER BY attempts, id
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED
      ) AS p
  ) AS o
 WHERE d.id = o.id AND d.status = 'pending'
   AND (d.lease_until IS NULL OR d.lease_until < %(now)s)
RETURNING d.id
"""


def _health(webhook_id: str, row: Any) -> WebhookHealth:
    values: dict[str, Any] = {
        c: (as_utc(row[c]) if c in _TIMES and row[c] is not None else row[c]) for c in _COLUMNS
    }
    return WebhookHealth(webhook_id=webhook_id, version=int(row["version"]), **values)


class PostgresHealth(PostgresCore):
    """
    Each webhook's health, held claims and paced releases in PostgreSQL. Strictly private.
    """

    def get_webhook_health(self, webhook_id: str) -> WebhookHealth | None:
        """
        Return the webhook's stored health, or None; see HealthStore.
        """
        rows = self._read("reading webhook health", self._q(_GET), {"webhook_id": webhook_id})
        return _health(webhook_id, rows[0]) if rows else None

    def health_of(self, webhook_ids: Collection[str]) -> dict[str, WebhookHealth]:
        """
        Return the stored health of those of *webhook_ids* that have any; see BulkHealthStore.
        """
        if not webhook_ids:
            return {}
        params = {"ids": list(webhook_ids)}
        rows = self._read("reading webhook health", self._q(_GET_MANY), params)
        return {row["webhook_id"]: _health(row["webhook_id"], row) for row in rows}

    def count_by_webhook(self, *, status: DeliveryStatus, since: datetime) -> dict[str, int]:
        """
        Count the deliveries in *status* since *since* by webhook; see CountingDeliveryLog.
        """
        query = self._q(_COUNTS[DeliveryStatus(status)])
        rows = self._read("counting deliveries", query, {"since": since})
        return {row["webhook_id"]: int(row["n"]) for row in rows}

    def put_webhook_health(self, health: WebhookHealth, *, expected_version: int) -> bool:
        """
        Store *health* if the stored version is still *expected_version*; see HealthStore.
        """
        params: dict[str, Any] = {"webhook_id": health.webhook_id, "expected": expected_version}
        params.update({c: getattr(health, c) for c in _COLUMNS})
        query = self._q(_INSERT) if expected_version == 0 else self._q(_UPDATE)
        return self._execute("writing webhook health", query, params)[1] == 1

    def hold_claims(
        self, delivery_ids: Sequence[str], *, owner: str, now: datetime, until: datetime
    ) -> int:
        """
        Give back claims *owner* holds, due again at *until*; see HealthStore.
        """
        if not delivery_ids:
            return 0
        params = {"ids": list(delivery_ids), "owner": owner, "now": now, "until": until}
        return self._execute("holding claims", self._q(_HOLD), params)[1]

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
        params = {
            "webhook_id": webhook_id,
            "start": start,
            "spacing": spacing,
            "now": now,
            "limit": limit,
        }
        rows = self._execute("releasing held deliveries", self._q(_RESPREAD), params)[0]
        return [row["id"] for row in rows]
