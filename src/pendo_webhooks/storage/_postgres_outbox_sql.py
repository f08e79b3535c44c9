"""
The SQL of :class:`~pendo_webhooks.storage.PostgresStorage`'s outbox: one statement per call.

``{schema}`` is the quoted schema name (see ``PostgresCore._q``); ``%(name)s`` are parameters.

Strictly private.
"""

from __future__ import annotations


__all__ = [
    "ATTEMPTS_OF_DELIVERY",
    "ATTEMPTS_OF_EXCHANGE",
    "CANCEL",
    "CLAIM",
    "CLAIM_FOR_WEBHOOK",
    "CLAIM_IDS",
    "ENQUEUE",
    "LIST",
    "PURGE",
    "RECORD",
    "REDELIVER",
    "REDELIVER_FAILED",
    "RELEASE",
]

# One statement: refuse the whole batch if an id is taken; store the rest only for webhooks
# that exist and are enabled (locked FOR SHARE, so a concurrent disable waits for us or we
# for it, and its cancellation sees what we stored); skip a second delivery of one event to
# one webhook; and say per row what happened, in input order.
ENQUEUE = """
WITH input AS (
    SELECT * FROM unnest(
        %(id)s::text[], %(webhook_id)s::text[], %(event_id)s::text[], %(category)s::text[],
        %(body)s::bytea[], %(status)s::text[], %(attempts)s::int[], %(attempt_base)s::int[],
        %(next_attempt_at)s::timestamptz[], %(created_at)s::timestamptz[],
        %(updated_at)s::timestamptz[], %(last_status)s::int[], %(last_error)s::text[],
        %(lease_owner)s::text[], %(lease_until)s::timestamptz[], %(finished_at)s::timestamptz[],
        %(redelivered_at)s::timestamptz[], %(purged)s::boolean[]
    ) WITH ORDINALITY AS t (
        id, webhook_id, event_id, category, body, status, attempts, attempt_base,
        next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
        lease_until, finished_at, redelivered_at, purged, n
    )
),
taken AS (
    SELECT min(d.id) AS id FROM {schema}.deliveries AS d WHERE d.id IN (SELECT id FROM input)
),
known AS (
    SELECT w.id FROM {schema}.webhooks AS w WHERE w.id IN (SELECT webhook_id FROM input)
),
live AS (
    SELECT w.id FROM {schema}.webhooks AS w
     WHERE w.id IN (SELECT webhook_id FROM input) AND w.enabled
       FOR SHARE
),
stored AS (
    INSERT INTO {schema}.deliveries (
        id, webhook_id, event_id, category, body, status, attempts, attempt_base,
        next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
        lease_until, finished_at, redelivered_at, purged, claims
    )
    SELECT i.id, i.webhook_id, i.event_id, i.category, i.body, i.status, i.attempts,
           i.attempt_base, i.next_attempt_at, i.created_at, i.updated_at, i.last_status,
           i.last_error, i.lease_owner, i.lease_until, i.finished_at, i.redelivered_at,
           i.purged, (i.lease_owner IS NOT NULL)::integer
      FROM input AS i
     WHERE i.webhook_id IN (SELECT id FROM live)
       AND (SELECT id FROM taken) IS NULL
     ORDER BY i.n
    ON CONFLICT (webhook_id, event_id) DO NOTHING
    RETURNING id
)
SELECT (SELECT id FROM taken) AS taken,
       i.id IN (SELECT id FROM stored) AS stored,
       i.webhook_id IN (SELECT id FROM live) AS live,
       i.webhook_id IN (SELECT id FROM known) AS known
  FROM input AS i
 ORDER BY i.n
"""

# Each claim counts itself (claims - attempts is how many claims ended without an outcome);
# a due delivery that has reached %(max_claims)s such claims ends dead instead of leased, in
# the same statement (a NULL limit switches it off). SET reads the row as it was.
_EXHAUSTED = "d.claims - d.attempts >= %(max_claims)s::integer"

# What every claim does to the rows its "due" CTE picked: lease them, or end the exhausted.
_LEASE_DUE = """
UPDATE {schema}.deliveries AS d
   SET claims = d.claims + 1,
       status = CASE WHEN {exhausted} THEN 'dead' ELSE d.status END,
       last_error = CASE WHEN {exhausted} THEN %(exhausted)s ELSE d.last_error END,
       finished_at = CASE WHEN {exhausted} THEN %(now)s ELSE d.finished_at END,
       lease_owner = CASE WHEN {exhausted} THEN NULL ELSE %(owner)s END,
       lease_until = CASE WHEN {exhausted} THEN NULL ELSE %(until)s END,
       next_attempt_at = CASE WHEN {exhausted} THEN %(now)s ELSE %(until)s END,
       updated_at = %(now)s
  FROM due
 WHERE d.id = due.id
RETURNING d.*
""".replace("{exhausted}", _EXHAUSTED)

CLAIM = """
WITH due AS (
    SELECT id FROM {schema}.deliveries
     WHERE status = 'pending' AND next_attempt_at <= %(now)s
     ORDER BY next_attempt_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
{lease_due}""".replace("{lease_due}", _LEASE_DUE)

CLAIM_FOR_WEBHOOK = """
WITH due AS (
    SELECT id FROM {schema}.deliveries
     WHERE status = 'pending' AND webhook_id = %(webhook_id)s AND next_attempt_at <= %(now)s
     ORDER BY next_attempt_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
{lease_due}""".replace("{lease_due}", _LEASE_DUE)

# The claim of chosen deliveries (dispatch_many's chunks), by the primary key.
CLAIM_IDS = """
WITH due AS (
    SELECT id FROM {schema}.deliveries
     WHERE id = ANY(%(ids)s::text[]) AND status = 'pending' AND next_attempt_at <= %(now)s
       FOR UPDATE SKIP LOCKED
)
{lease_due}""".replace("{lease_due}", _LEASE_DUE)

# Every outcome fenced on its own lease; attempt rows inserted only for the deliveries whose
# update happened, and their exchanges' rows (one per exchange, however many deliveries it
# carried, and none whose every delivery lost its lease); per input row, in order, whether
# it was written.
#
# Its transaction commits with synchronous_commit off (RELAXED: set for this transaction
# only, so it never outlives it, not even on a pooled connection): PostgreSQL does not wait
# for the WAL flush of an outcome. The next synchronous commit (every enqueue, every admin
# change) flushes the WAL up to itself, outcomes included, and a crash of the server can
# take only the last outcomes before that: their deliveries are pending and leased again,
# and are sent again once the lease lapses (at least once, never lost). The one-time filter
# on the last SELECT runs set_config once, before any row; it returns 'off', never NULL.
RECORD = """
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS level),
input AS (
    SELECT * FROM unnest(
        %(id)s::text[], %(status)s::text[], %(attempts)s::int[],
        %(next_attempt_at)s::timestamptz[], %(updated_at)s::timestamptz[],
        %(last_status)s::int[], %(last_error)s::text[], %(finished_at)s::timestamptz[]
    ) WITH ORDINALITY AS t (
        id, status, attempts, next_attempt_at, updated_at, last_status, last_error,
        finished_at, n
    )
),
done AS (
    UPDATE {schema}.deliveries AS d
       SET status = i.status, attempts = i.attempts, next_attempt_at = i.next_attempt_at,
           updated_at = i.updated_at, last_status = i.last_status, last_error = i.last_error,
           finished_at = i.finished_at, lease_owner = NULL, lease_until = NULL
      FROM input AS i
     WHERE d.id = i.id AND d.status = 'pending' AND d.lease_owner = %(owner)s
       AND d.lease_until >= %(now)s
    RETURNING d.id
),
written AS (
    SELECT * FROM unnest(
        %(a_delivery_id)s::text[], %(a_number)s::int[], %(a_exchange_id)s::text[],
        %(a_verdict)s::text[], %(a_reason)s::text[]
    ) AS a (delivery_id, number, exchange_id, verdict, reason)
     WHERE a.delivery_id IN (SELECT id FROM done)
),
exchange AS (
    INSERT INTO {schema}.delivery_exchanges (
        id, webhook_id, started_at, duration, status_code, error_kind, detail,
        response_excerpt
    )
    SELECT * FROM unnest(
        %(x_id)s::text[], %(x_webhook_id)s::text[], %(x_started_at)s::timestamptz[],
        %(x_duration)s::double precision[], %(x_status_code)s::int[],
        %(x_error_kind)s::text[], %(x_detail)s::text[], %(x_response_excerpt)s::bytea[]
    ) AS x (
        id, webhook_id, started_at, duration, status_code, error_kind, detail,
        response_excerpt
    )
     WHERE x.id IN (SELECT exchange_id FROM written)
    ON CONFLICT (id) DO NOTHING
),
attempt AS (
    INSERT INTO {schema}.delivery_attempts (delivery_id, number, exchange_id, verdict, reason)
    SELECT * FROM written
)
SELECT i.id IN (SELECT id FROM done) AS written FROM input AS i
 WHERE (SELECT level FROM relaxed) IS NOT NULL
 ORDER BY i.n
"""

# A delivery's attempts with their exchange's facts; a purged delivery's without its excerpt.
_ATTEMPTS = """
SELECT a.delivery_id, a.number, a.exchange_id, x.started_at, x.duration, x.status_code,
       x.error_kind, x.detail,
       CASE WHEN d.purged THEN ''::bytea ELSE x.response_excerpt END AS response_excerpt,
       a.verdict, a.reason
  FROM {schema}.delivery_attempts AS a
  JOIN {schema}.delivery_exchanges AS x ON x.id = a.exchange_id
  JOIN {schema}.deliveries AS d ON d.id = a.delivery_id
"""

ATTEMPTS_OF_DELIVERY = _ATTEMPTS + " WHERE a.delivery_id = %s ORDER BY a.number"
ATTEMPTS_OF_EXCHANGE = _ATTEMPTS + " WHERE a.exchange_id = %s ORDER BY a.delivery_id, a.number"

RELEASE = """
UPDATE {schema}.deliveries
   SET lease_owner = NULL, lease_until = NULL, next_attempt_at = %(now)s, updated_at = %(now)s,
       claims = greatest(claims - 1, 0)
 WHERE id = ANY(%(ids)s::text[]) AND status = 'pending' AND lease_owner = %(owner)s
"""

CANCEL = """
UPDATE {schema}.deliveries
   SET status = 'cancelled', last_error = %(reason)s, finished_at = %(now)s,
       updated_at = %(now)s, lease_owner = NULL, lease_until = NULL
 WHERE webhook_id = %(webhook_id)s AND status = 'pending'
"""

REDELIVER = """
UPDATE {schema}.deliveries
   SET status = 'pending', next_attempt_at = %(now)s, attempt_base = attempts,
       redelivered_at = %(now)s, finished_at = NULL, updated_at = %(now)s,
       claims = attempts
 WHERE id = %(id)s
RETURNING *
"""

REDELIVER_FAILED = """
UPDATE {schema}.deliveries
   SET status = 'pending', next_attempt_at = %(now)s, attempt_base = attempts,
       redelivered_at = %(now)s, finished_at = NULL, updated_at = %(now)s,
       claims = attempts
 WHERE webhook_id = %(webhook_id)s AND status IN ('failed', 'dead') AND NOT purged
   AND created_at >= %(since)s AND created_at < %(until)s
"""

# The excerpt of an exchange goes once every delivery it carried is purged (a Segment
# batch's stays while one of its deliveries is not; a purged delivery's attempts read back
# without it anyway); an exchange no attempt names any more (its deliveries were deleted
# by other means) goes entirely. The subqueries see the rows as they were before.
PURGE = """
WITH purged AS (
    UPDATE {schema}.deliveries SET body = '', purged = true
     WHERE status <> 'pending' AND NOT purged AND finished_at < %(older_than)s
    RETURNING id
),
excerpts AS (
    UPDATE {schema}.delivery_exchanges AS x SET response_excerpt = ''
     WHERE x.id IN (SELECT a.exchange_id FROM {schema}.delivery_attempts AS a
                     WHERE a.delivery_id IN (SELECT id FROM purged))
       AND NOT EXISTS (SELECT 1
                         FROM {schema}.delivery_attempts AS a
                         JOIN {schema}.deliveries AS d ON d.id = a.delivery_id
                        WHERE a.exchange_id = x.id AND NOT d.purged
                          AND d.id NOT IN (SELECT id FROM purged))
),
orphans AS (
    DELETE FROM {schema}.delivery_exchanges AS x
     WHERE NOT EXISTS (SELECT 1 FROM {schema}.delivery_attempts AS a
                        WHERE a.exchange_id = x.id)
)
SELECT count(*) AS purged FROM purged
"""

LIST = {
    (False, False): "SELECT * FROM {schema}.deliveries "
    "ORDER BY created_at DESC, seq DESC LIMIT %(limit)s",
    (True, False): "SELECT * FROM {schema}.deliveries WHERE webhook_id = %(webhook_id)s "
    "ORDER BY created_at DESC, seq DESC LIMIT %(limit)s",
    (False, True): "SELECT * FROM {schema}.deliveries WHERE status = %(status)s "
    "ORDER BY created_at DESC, seq DESC LIMIT %(limit)s",
    (True, True): "SELECT * FROM {schema}.deliveries "
    "WHERE webhook_id = %(webhook_id)s AND status = %(status)s "
    "ORDER BY created_at DESC, seq DESC LIMIT %(limit)s",
}
