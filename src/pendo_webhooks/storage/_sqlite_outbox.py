"""
The outbox part of :class:`~pendo_webhooks.storage.SQLiteStorage`. Strictly private.

Every method is one short transaction (``BEGIN IMMEDIATE`` for writes) and never
waits on the network. A claim is one ``UPDATE ... RETURNING`` over the partial
index of pending deliveries by ``next_attempt_at``; while leased, a delivery's
``next_attempt_at`` is its lease expiry, so a lapsed lease makes it due again
without any sweeper. An outcome is written by an ``UPDATE`` fenced on the lease
(owner, and expiry not passed), together with its attempt row.

Durability where it matters. Enqueueing, like every
change an admin makes, commits at the store's ``synchronous`` mode (``FULL`` by
default): once :meth:`SQLiteOutbox.enqueue_deliveries` returns, the deliveries
survive a power loss, before any request is sent. Claims, releases and outcomes
commit at ``outcome_synchronous`` (``NORMAL`` by default), on a second connection of
the thread that rests at that mode: written to the WAL, not fsynced. None of them
can be lost to an application crash; a power loss can take only the last few of them
(a WAL is replayed in order, so what is lost is a suffix of commits, and every
enqueue's own fsync makes everything before it durable). A lost claim leaves the
delivery due; a lost release or outcome leaves it pending and leased, so it is sent
again once the lease lapses: at least once, as promised, never lost. That saves one
fsync per attempt: 0.1 to 0.3 ms on the benchmark machine, where a whole plain
request to a fast receiver takes 0.6 ms (benchmarks/RESULTS.md).
``SQLiteStorage(outcome_synchronous="FULL")`` fsyncs them too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from ..model._delivery import Attempt, Delivery, DeliveryStatus
from ._outbox_common import (
    attempt_from_row,
    claims_exhausted,
    delivery_from_row,
    delivery_from_values,
    duplicate_delivery,
    load_rows,
    not_finished,
    purged_body,
    record_one_outcome,
    unknown_delivery,
)
from ._outbox_protocol import EnqueueSkip
from ._sqlite_bulk import (
    INSERT_ATTEMPT,
    INSERT_EXCHANGE,
    SharedOutcome,
    enqueue_bulk,
    exchange_row,
    record_bulk,
    record_shared,
)
from ._sqlite_core import PID, SQLiteCore, from_utc_iso, utc_iso
from ._sqlite_group import Coalescer


__all__ = ["SQLiteOutbox", "enqueue_in"]

_T = TypeVar("_T")

# Stored only while the webhook exists and is enabled, in the same transaction; a second
# delivery of one event to one webhook is skipped (the upsert needs the SELECT's WHERE).
# A delivery stored already leased (dispatch's immediate attempt) counts that claim.
# Numbered parameters, in _delivery_row's order: binding by name costs about 8 us a row.
_INSERT = """
INSERT INTO deliveries (
    id, webhook_id, event_id, category, body, status, attempts, attempt_base,
    next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
    lease_until, finished_at, redelivered_at, purged, claims
)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
       ?14 IS NOT NULL
 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?2 AND enabled = 1)
ON CONFLICT (webhook_id, event_id) DO NOTHING
"""

# _INSERT, only while nothing an enqueue plans from has changed since it was planned:
# ?19 the webhooks_version and ?20 the exclusions_version it planned at. One autocommit
# statement is a lone enqueue's whole write: no version reads, no BEGIN and COMMIT.
_INSERT_IF_CURRENT = _INSERT.replace(
    " WHERE EXISTS",
    """ WHERE (SELECT version FROM webhooks_version WHERE id = 1) = ?19
   AND (SELECT version FROM exclusions_version WHERE id = 1) = ?20
   AND EXISTS""",
)

# Both versions, read inside a group commit's transaction.
_VERSIONS = """
SELECT (SELECT version FROM webhooks_version WHERE id = 1),
       (SELECT version FROM exclusions_version WHERE id = 1)
"""

# Numbered parameters (binding by name costs a few us a statement), in _claim_params' order:
# ?1 owner, ?2 lease until, ?3 now, ?4 limit, ?5 max claims, ?6 the exhausted error, and ?7
# the webhook id or the JSON list of ids.
# Each claim counts itself (claims - attempts is how many claims ended without an outcome);
# a due delivery that has reached max_claims such claims ends dead instead of leased, in the
# same statement (a NULL max_claims switches the limit off). SET reads the row as it was.
_EXHAUSTED = "claims - attempts >= ?5"
_CLAIM_SET = f"""   SET claims = claims + 1,
       status = CASE WHEN {_EXHAUSTED} THEN 'dead' ELSE status END,
       last_error = CASE WHEN {_EXHAUSTED} THEN ?6 ELSE last_error END,
       finished_at = CASE WHEN {_EXHAUSTED} THEN ?3 ELSE finished_at END,
       lease_owner = CASE WHEN {_EXHAUSTED} THEN NULL ELSE ?1 END,
       lease_until = CASE WHEN {_EXHAUSTED} THEN NULL ELSE ?2 END,
       next_attempt_at = CASE WHEN {_EXHAUSTED} THEN ?3 ELSE ?2 END,
       updated_at = ?3
"""

_CLAIM = """
UPDATE deliveries
{claim_set} WHERE id IN (SELECT id FROM deliveries
               WHERE status = 'pending' AND next_attempt_at <= ?3
               ORDER BY next_attempt_at LIMIT ?4)
RETURNING id, webhook_id, event_id, category, body, status, attempts, attempt_base,
       next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
       lease_until, finished_at, redelivered_at, purged
""".replace("{claim_set}", _CLAIM_SET)

# INDEXED BY: left to itself, the planner picks the (webhook_id, event_id) index for the
# webhook filter, which walks every delivery the webhook ever had (delivered ones too) and
# sorts them; the partial index of pending deliveries holds only what can be due.
_CLAIM_FOR_WEBHOOK = """
UPDATE deliveries
{claim_set} WHERE id IN (SELECT id FROM deliveries INDEXED BY deliveries_due
               WHERE status = 'pending' AND webhook_id = ?7
                 AND next_attempt_at <= ?3
               ORDER BY next_attempt_at LIMIT ?4)
RETURNING id, webhook_id, event_id, category, body, status, attempts, attempt_base,
       next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
       lease_until, finished_at, redelivered_at, purged
""".replace("{claim_set}", _CLAIM_SET)

# The claim of chosen deliveries (dispatch_many's chunks), by the primary key.
_CLAIM_IDS = """
UPDATE deliveries
{claim_set} WHERE id IN (SELECT value FROM json_each(?7))
   AND status = 'pending' AND next_attempt_at <= ?3
RETURNING id, webhook_id, event_id, category, body, status, attempts, attempt_base,
       next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
       lease_until, finished_at, redelivered_at, purged
""".replace("{claim_set}", _CLAIM_SET)

# Numbered parameters, in _record_params' order (binding by name costs a few us a row):
# the id, the new state, then the lease it is fenced on (owner, now).
_RECORD = """
UPDATE deliveries
   SET status = ?2, attempts = ?3, next_attempt_at = ?4, updated_at = ?5, last_status = ?6,
       last_error = ?7, finished_at = ?8, lease_owner = NULL, lease_until = NULL
 WHERE id = ?1 AND status = 'pending' AND lease_owner = ?9 AND lease_until >= ?10
"""

# A claim handed back unattempted is not counted against the delivery.
_RELEASE = """
UPDATE deliveries
   SET lease_owner = NULL, lease_until = NULL, next_attempt_at = :now, updated_at = :now,
       claims = max(claims - 1, 0)
 WHERE id = :id AND status = 'pending' AND lease_owner = :owner
"""

_CANCEL = """
UPDATE deliveries
   SET status = 'cancelled', last_error = :reason, finished_at = :now, updated_at = :now,
       lease_owner = NULL, lease_until = NULL
 WHERE webhook_id = :webhook_id AND status = 'pending'
"""

_REDELIVER = """
UPDATE deliveries
   SET status = 'pending', next_attempt_at = :now, attempt_base = attempts,
       redelivered_at = :now, finished_at = NULL, updated_at = :now, claims = attempts
 WHERE id = :id
RETURNING id, webhook_id, event_id, category, body, status, attempts, attempt_base,
       next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
       lease_until, finished_at, redelivered_at, purged
"""

_REDELIVER_FAILED = """
UPDATE deliveries
   SET status = 'pending', next_attempt_at = :now, attempt_base = attempts,
       redelivered_at = :now, finished_at = NULL, updated_at = :now, claims = attempts
 WHERE webhook_id = :webhook_id AND status IN ('failed', 'dead') AND purged = 0
   AND created_at >= :since AND created_at < :until
"""

# Before the deliveries: the excerpts of exchanges whose every delivery is purged, or is
# being purged now (a Segment batch's exchange keeps its excerpt while one of its
# deliveries is not purged; a purged delivery's attempts read back without it anyway).
_PURGE_EXCERPTS = """
UPDATE delivery_exchanges SET response_excerpt = X''
 WHERE seq IN (SELECT a.exchange
                 FROM deliveries AS d JOIN delivery_attempts AS a ON a.delivery_id = d.id
                WHERE d.status != 'pending' AND d.purged = 0 AND d.finished_at < :older_than)
   AND NOT EXISTS (SELECT 1
                     FROM delivery_attempts AS a JOIN deliveries AS d ON d.id = a.delivery_id
                    WHERE a.exchange = delivery_exchanges.seq AND d.purged = 0
                      AND NOT (d.status != 'pending' AND d.finished_at < :older_than))
"""

# Exchanges no attempt names any more (their deliveries were deleted by other means).
_PURGE_EXCHANGES = """
DELETE FROM delivery_exchanges
 WHERE NOT EXISTS (SELECT 1 FROM delivery_attempts WHERE exchange = delivery_exchanges.seq)
"""

_PURGE_DELIVERIES = """
UPDATE deliveries SET body = X'', purged = 1
 WHERE status != 'pending' AND purged = 0 AND finished_at < :older_than
"""

_GET = """
SELECT id, webhook_id, event_id, category, body, status, attempts, attempt_base,
       next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
       lease_until, finished_at, redelivered_at, purged
  FROM deliveries
 WHERE id = ?
"""

# A delivery's attempts with their exchange's facts; a purged delivery's without its excerpt.
_ATTEMPTS = """
SELECT a.delivery_id, a.number, x.id AS exchange_id, x.started_at, x.duration,
       x.status_code, x.error_kind, x.detail,
       CASE WHEN d.purged THEN X'' ELSE x.response_excerpt END AS response_excerpt,
       a.verdict, a.reason
  FROM delivery_attempts AS a
  JOIN delivery_exchanges AS x ON x.seq = a.exchange
  JOIN deliveries AS d ON d.id = a.delivery_id
"""

_ATTEMPTS_OF_DELIVERY = _ATTEMPTS + " WHERE a.delivery_id = ? ORDER BY a.number"
_ATTEMPTS_OF_EXCHANGE = _ATTEMPTS + " WHERE x.id = ? ORDER BY a.delivery_id, a.number"

# One static statement for every filter combination: a NULL parameter switches its filter off.
_LIST = """
SELECT id, webhook_id, event_id, category, body, status, attempts, attempt_base,
       next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
       lease_until, finished_at, redelivered_at, purged
  FROM deliveries
 WHERE (:webhook_id IS NULL OR webhook_id = :webhook_id)
   AND (:status IS NULL OR status = :status)
 ORDER BY rowid DESC
 LIMIT :limit
"""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else utc_iso(moment)


def _delivery_row(delivery: Delivery) -> tuple[Any, ...]:
    # In the order of _INSERT's columns; the id first, the webhook id second.
    return (
        delivery.id,
        delivery.webhook_id,
        delivery.event_id,
        delivery.category.value,
        delivery.body,
        delivery.status.value,
        delivery.attempts,
        delivery.attempt_base,
        utc_iso(delivery.next_attempt_at),
        utc_iso(delivery.created_at),
        utc_iso(delivery.updated_at),
        delivery.last_status,
        delivery.last_error,
        delivery.lease_owner,
        _iso(delivery.lease_until),
        _iso(delivery.finished_at),
        _iso(delivery.redelivered_at),
        int(delivery.purged),
    )


def _record_params(delivery: Delivery, owner: str, now: str) -> tuple[Any, ...]:
    return (
        delivery.id,
        delivery.status.value,
        delivery.attempts,
        utc_iso(delivery.next_attempt_at),
        utc_iso(delivery.updated_at),
        delivery.last_status,
        delivery.last_error,
        _iso(delivery.finished_at),
        owner,
        now,
    )


def _claim_params(
    owner: str, now: datetime, lease_until: datetime, limit: int, max_claims: int | None
) -> tuple[Any, ...]:
    return (
        owner,
        utc_iso(lease_until),
        utc_iso(now),
        limit,
        max_claims,
        None if max_claims is None else claims_exhausted(max_claims),
    )


def _record_one(
    conn: sqlite3.Connection, delivery: Delivery, attempt: Attempt | None, owner: str, now: str
) -> bool:
    # The fenced UPDATE, and the attempt row if it wrote; whether it wrote.
    done = bool(conn.execute(_RECORD, _record_params(delivery, owner, now)).rowcount)
    if done and attempt is not None:
        conn.execute(INSERT_EXCHANGE, exchange_row(attempt, delivery.webhook_id))
        conn.execute(
            INSERT_ATTEMPT,
            (
                attempt.delivery_id,
                attempt.number,
                attempt.exchange_id,
                attempt.verdict.value,
                attempt.reason,
            ),
        )
    return done


def _optional_time(text: str | None) -> datetime | None:
    return None if text is None else from_utc_iso(text)


def _delivery_from_row(row: sqlite3.Row) -> Delivery:
    # Every query here selects the columns in their order: by position, a third of the time.
    found = delivery_from_values(row, from_utc_iso)
    return delivery_from_row(row, from_utc_iso) if found is None else found


def _attempt_from_row(row: sqlite3.Row) -> Attempt:
    return attempt_from_row(row, from_utc_iso)


class _IfCurrent(tuple[Delivery, ...]):
    """
    A call of one delivery, to store only while the store is at *versions*. Strictly private.

    A tuple of its delivery, so a group commit flattens it like any other call.
    """

    versions: tuple[int, int]


class SQLiteOutbox(SQLiteCore):
    """
    The ``deliveries``, ``delivery_attempts`` and ``delivery_exchanges`` tables. Strictly private.
    """

    def enqueue_deliveries(self, deliveries: Sequence[Delivery]) -> list[str | None]:
        """
        Store new deliveries of enabled webhooks, skipping duplicates; see OutboxStore.

        Calls from threads at the same time share one commit (group commit); each
        returns once its own deliveries are committed.
        """
        return cast(list[str | None], self._enqueues(deliveries))

    def _enqueue_if_current(
        self, delivery: Delivery, *, versions: tuple[int, int]
    ) -> list[str | None] | None:
        """
        Store *delivery* as :meth:`enqueue_deliveries` would, only if the store is still at
        *versions* (its ``webhooks_version`` and ``exclusions_version``). Strictly private.

        For an enqueue planned from what the store last read, without reading again: a
        lone call is one autocommit statement (at ``synchronous``, like every enqueue).
        ``None`` if nothing was stored: the versions moved, or (alone) the delivery was
        skipped; the caller then plans and enqueues afresh, the ordinary way, which
        finds out which.
        """
        call = _IfCurrent((delivery,))
        call.versions = versions
        return self._enqueues(call)

    @property
    def _enqueues(self) -> Coalescer[Sequence[Delivery], list[str | None] | None]:
        # One per process: a child forked while a thread led a group starts afresh. (Two
        # threads making the first at once is harmless: calls through either are correct.)
        found: tuple[int, Coalescer[Sequence[Delivery], list[str | None] | None]] | None
        found = self.__dict__.get("_coalescer")
        if found is None or found[0] != PID[0]:
            found = (PID[0], Coalescer(self._enqueue_group, alone=self._enqueue_alone))
            self.__dict__["_coalescer"] = found
        return found[1]

    def _enqueue_alone(self, deliveries: Sequence[Delivery]) -> list[str | None] | None:
        if isinstance(deliveries, _IfCurrent):
            conn = self._connection()
            row = (*_delivery_row(deliveries[0]), *deliveries.versions)
            try:
                stored = _execute_insert(conn, _INSERT_IF_CURRENT, row)
            except sqlite3.Error as exc:
                raise self._write_failed(conn, exc) from exc
            return [None] if stored else None
        with self._transaction() as conn:
            return enqueue_in(conn, deliveries)

    def _enqueue_group(self, calls: list[Sequence[Delivery]]) -> list[list[str | None] | None]:
        # Every call's deliveries in one transaction, as one enqueue_in would store them
        # one call after another; the results split back by call. A call planned at
        # versions the store has left (read here, in the transaction) stores nothing.
        with self._transaction() as conn:
            stale: list[bool] = [False] * len(calls)
            if any(isinstance(c, _IfCurrent) for c in calls):
                now_at = tuple(conn.execute(_VERSIONS).fetchone())
                stale = [isinstance(c, _IfCurrent) and c.versions != now_at for c in calls]
            kept = [c for c, old in zip(calls, stale, strict=True) if not old]
            found = enqueue_in(conn, [d for deliveries in kept for d in deliveries])
        results: list[list[str | None] | None] = []
        start = 0
        for deliveries, old in zip(calls, stale, strict=True):
            if old:
                results.append(None)
                continue
            results.append(found[start : start + len(deliveries)])
            start += len(deliveries)
        return results

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
        """
        Lease up to *limit* due deliveries to *owner*; see OutboxStore.
        """
        params = _claim_params(owner, now, lease_until, limit, max_claims)
        sql = _CLAIM
        if webhook_id is not None:
            sql = _CLAIM_FOR_WEBHOOK
            params = (*params, webhook_id)
        with self._transaction(relaxed=True) as conn:
            rows = conn.execute(sql, params).fetchall()
        claimed = load_rows(rows, _delivery_from_row)
        # RETURNING gives rows in no particular order.
        claimed.sort(key=lambda d: (d.created_at, d.id))
        return claimed

    def claim_deliveries(
        self,
        delivery_ids: Sequence[str],
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        max_claims: int | None = None,
    ) -> list[Delivery]:
        """
        Lease those of *delivery_ids* that are due to *owner*; see OutboxStore.
        """
        if not delivery_ids:
            return []
        params = _claim_params(owner, now, lease_until, len(delivery_ids), max_claims)
        params = (*params, json.dumps(list(delivery_ids)))
        with self._transaction(relaxed=True) as conn:
            rows = conn.execute(_CLAIM_IDS, params).fetchall()
        return load_rows(rows, _delivery_from_row)

    record_outcome = record_one_outcome

    def record_outcomes(
        self, outcomes: Sequence[tuple[Delivery, Attempt | None]], *, owner: str, now: datetime
    ) -> list[bool]:
        """
        Record several claimed deliveries' outcomes in one transaction; see OutboxStore.
        """
        if not outcomes:
            return []
        stamp = utc_iso(now)
        written: list[bool] = []
        with self._transaction(relaxed=True) as conn:
            if len(outcomes) > 1:
                return record_bulk(conn, outcomes, owner=owner, now=now)
            for delivery, attempt in outcomes:
                written.append(_record_one(conn, delivery, attempt, owner, stamp))
        return written

    def record_outcome_and_claim(
        self,
        delivery: Delivery,
        attempt: Attempt | None,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        max_claims: int | None = None,
    ) -> tuple[bool, list[Delivery]]:
        """
        Record one outcome as :meth:`record_outcome`, and claim the next due delivery.

        One transaction instead of two, for a worker that attempts one delivery at a
        time: it claims the next one only as it finishes this one, so the claim is no
        older than its attempt and it never holds more than one. Optional (the
        dispatcher uses it when a store has it). Returns whether the outcome was
        written, and the claimed delivery (none if nothing is due).
        """
        with self._transaction(relaxed=True) as conn:
            written = _record_one(conn, delivery, attempt, owner, utc_iso(now))
            rows = conn.execute(
                _CLAIM, _claim_params(owner, now, lease_until, 1, max_claims)
            ).fetchall()
        return written, load_rows(rows, _delivery_from_row)

    def record_shared_outcomes(
        self, groups: Sequence[SharedOutcome], *, owner: str, now: datetime
    ) -> set[str]:
        """
        Record outcomes shared by groups of deliveries in one transaction; return the ids written.

        An optional fast path beside :meth:`record_outcomes` (the dispatcher uses it for
        Segment batches when a store has it): each group is ``(delivery_ids, outcome,
        attempt)``, and every delivery in it gets *outcome*'s state and *attempt* as its
        own, each fenced on its own lease; the batch's exchange is one row.
        """
        with self._transaction(relaxed=True) as conn:
            return record_shared(conn, groups, owner=owner, now=now)

    def release_claims(self, delivery_ids: Sequence[str], *, owner: str, now: datetime) -> int:
        """
        Give back claims *owner* holds: due again at *now*; see OutboxStore.
        """
        if not delivery_ids:
            return 0
        stamp = utc_iso(now)
        with self._transaction(relaxed=True) as conn:
            return sum(
                conn.execute(_RELEASE, {"id": i, "owner": owner, "now": stamp}).rowcount
                for i in delivery_ids
            )

    def cancel_deliveries(self, webhook_id: str, *, reason: str, now: datetime) -> int:
        """
        Cancel every pending delivery of a webhook; see OutboxStore.
        """
        params = {"webhook_id": webhook_id, "reason": reason, "now": utc_iso(now)}
        with self._transaction() as conn:
            return conn.execute(_CANCEL, params).rowcount

    def get_delivery(self, delivery_id: str) -> Delivery:
        """
        Return one delivery, or raise UnknownDelivery.
        """
        rows = self._query(_GET, (delivery_id,))
        if not rows:
            raise unknown_delivery(delivery_id)
        return load_rows(rows, _delivery_from_row)[0]

    def list_deliveries(
        self,
        *,
        webhook_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """
        Return up to *limit* deliveries, newest first; see OutboxStore.
        """
        rows = self._query(
            _LIST,
            {
                "webhook_id": webhook_id,
                "status": None if status is None else DeliveryStatus(status).value,
                "limit": limit,
            },
        )
        return load_rows(rows, _delivery_from_row)

    def list_attempts(self, delivery_id: str) -> list[Attempt]:
        """
        Return a delivery's attempts, first first.
        """
        rows = self._query(_ATTEMPTS_OF_DELIVERY, (delivery_id,))
        return load_rows(rows, _attempt_from_row)

    def list_exchange_attempts(self, exchange_id: str) -> list[Attempt]:
        """
        Return the attempts of one HTTP exchange, one per delivery, by delivery id.
        """
        rows = self._query(_ATTEMPTS_OF_EXCHANGE, (exchange_id,))
        return load_rows(rows, _attempt_from_row)

    def redeliver(self, delivery_id: str, *, now: datetime) -> Delivery:
        """
        Make a finished delivery pending again with a fresh retry budget; see OutboxStore.
        """
        with self._transaction() as conn:
            found = conn.execute(
                "SELECT status, purged FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            if found is None:
                raise unknown_delivery(delivery_id)
            if found["status"] == DeliveryStatus.PENDING.value:
                raise not_finished(delivery_id)
            if found["purged"]:
                raise purged_body(delivery_id)
            rows = conn.execute(_REDELIVER, {"id": delivery_id, "now": utc_iso(now)}).fetchall()
        return load_rows(rows, _delivery_from_row)[0]

    def redeliver_failed(
        self, webhook_id: str, *, since: datetime, until: datetime, now: datetime
    ) -> int:
        """
        Redeliver a webhook's failed and dead deliveries created in ``[since, until)``.
        """
        params = {
            "webhook_id": webhook_id,
            "since": utc_iso(since),
            "until": utc_iso(until),
            "now": utc_iso(now),
        }
        with self._transaction() as conn:
            return conn.execute(_REDELIVER_FAILED, params).rowcount

    def purge(self, older_than: datetime) -> int:
        """
        Empty bodies and response excerpts of deliveries finished before *older_than*.
        """
        params = {"older_than": utc_iso(older_than)}
        with self._transaction() as conn:
            conn.execute(_PURGE_EXCERPTS, params)
            purged = conn.execute(_PURGE_DELIVERIES, params).rowcount
            conn.execute(_PURGE_EXCHANGES)
            return purged

    def pending_summary(self) -> tuple[int, datetime | None]:
        """
        Return how many deliveries are pending and the earliest ``next_attempt_at``.
        """
        row = self._query(
            "SELECT count(*), min(next_attempt_at) FROM deliveries WHERE status = 'pending'"
        )[0]
        return row[0], _optional_time(row[1])


def enqueue_in(conn: sqlite3.Connection, deliveries: Sequence[Delivery]) -> list[str | None]:
    """
    Store new deliveries in the caller's transaction; see OutboxStore.enqueue_deliveries.
    """
    if len(deliveries) > 1:
        # Many at once (enqueue_many, a Segment backlog): set-at-a-time when it can be.
        bulk = enqueue_bulk(conn, deliveries)
        if bulk is not None:
            return bulk
    return _insert(conn, [_delivery_row(d) for d in deliveries])


def _insert(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> list[str | None]:
    # Each row: None if stored, else why it was skipped.
    results: list[str | None] = []
    for row in rows:
        stored = _execute_insert(conn, _INSERT, row)
        results.append(None if stored else _skip_reason(conn, row[1]))
    return results


def _execute_insert(conn: sqlite3.Connection, sql: str, row: tuple[Any, ...]) -> int:
    # How many rows one of the INSERTs stored; a delivery id already taken is an error.
    try:
        return conn.execute(sql, row).rowcount
    except sqlite3.IntegrityError as exc:
        if "deliveries.id" not in str(exc):
            raise
        raise duplicate_delivery(row[0]) from None


def _skip_reason(conn: sqlite3.Connection, webhook_id: str) -> str:
    found = conn.execute("SELECT enabled FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
    if found is None:
        return EnqueueSkip.DELETED
    if not found[0]:
        return EnqueueSkip.DISABLED
    return EnqueueSkip.DUPLICATE
