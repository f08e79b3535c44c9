"""
Set-at-a-time writes for :class:`~pendo_webhooks.storage.SQLiteStorage`'s outbox. Strictly private.

``enqueue_many``/``dispatch_many`` and Segment batches write thousands of deliveries and
outcomes per transaction. Row by row, each needs its own statement (and, on enqueue, its
own look-up of the webhook); here the webhooks are checked once per transaction and the
rows go through ``executemany`` with positional parameters, each distinct time formatted
once. The results are the same as row by row, which remains the fallback for anything
unusual (a disabled or deleted webhook, a taken delivery id).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from ..model._delivery import Attempt, Delivery, DeliveryStatus
from ._outbox_protocol import EnqueueSkip
from ._sqlite_core import utc_iso


__all__ = [
    "INSERT_ATTEMPT",
    "INSERT_EXCHANGE",
    "SharedOutcome",
    "enqueue_bulk",
    "exchange_row",
    "record_bulk",
    "record_shared",
]

#: Deliveries (by id) that all get one outcome, given as a delivery and an attempt whose
#: delivery ids are ignored: what a Segment batch's deliveries with the same attempt count
#: share (all of a batch's groups share one exchange).
SharedOutcome = tuple[Sequence[str], Delivery, Attempt | None]

# Far below SQLite's smallest default limit on host parameters (999).
_CHUNK = 900

_INSERT = """
INSERT INTO deliveries (
    id, webhook_id, event_id, category, body, status, attempts, attempt_base,
    next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
    lease_until, finished_at, redelivered_at, purged, claims
) VALUES (
    ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
    ?14 IS NOT NULL
)
ON CONFLICT (webhook_id, event_id) DO NOTHING
"""

# _INSERT for new deliveries (pending, never attempted, created when last updated, no
# error, nothing finished): the values they all share are spelled in the statement, so a
# row binds 9 values, not 18. It stores exactly the row _INSERT would.
_INSERT_FRESH = """
INSERT INTO deliveries (
    id, webhook_id, event_id, category, body, status, attempts, attempt_base,
    next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner,
    lease_until, finished_at, redelivered_at, purged, claims
) VALUES (
    ?1, ?2, ?3, ?4, ?5, 'pending', 0, 0, ?6, ?7, ?7, NULL, NULL, ?8, ?9, NULL, NULL, 0,
    ?8 IS NOT NULL
)
ON CONFLICT (webhook_id, event_id) DO NOTHING
"""

_PENDING = DeliveryStatus.PENDING.value

_ENABLED = "SELECT id FROM webhooks WHERE enabled = 1 AND id IN ({marks})"
_STORED = "SELECT id FROM deliveries WHERE id IN ({marks})"
# One statement per distinct outcome (a Segment batch's deliveries share theirs), fenced
# on each row's lease; RETURNING names the rows written.
_RECORD = """
UPDATE deliveries
   SET status = ?, attempts = ?, next_attempt_at = ?, updated_at = ?, last_status = ?,
       last_error = ?, finished_at = ?, lease_owner = NULL, lease_until = NULL
 WHERE status = 'pending' AND lease_owner = ? AND lease_until >= ? AND id IN ({marks})
RETURNING id
"""

# The same UPDATE without RETURNING: its row count says whether every lease was held.
_RECORD_COUNTED = _RECORD.replace("RETURNING id", "")

#: One HTTP exchange's row, written once however many deliveries it carried (the first
#: of a batch's attempts to be written brings it; the others find it there).
INSERT_EXCHANGE = """
INSERT INTO delivery_exchanges (
    id, webhook_id, started_at, duration, status_code, error_kind, detail, response_excerpt
) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
"""

#: An attempt row, naming its exchange (by id; stored as the exchange's seq).
INSERT_ATTEMPT = """
INSERT INTO delivery_attempts (delivery_id, number, exchange, verdict, reason)
VALUES (?, ?, (SELECT seq FROM delivery_exchanges WHERE id = ?), ?, ?)
"""


# One attempt row per delivery named, all alike but for the delivery id: used only once
# the UPDATE wrote every one of them (so each exists and is this outcome's).
_COPY_ATTEMPT = """
INSERT INTO delivery_attempts (delivery_id, number, exchange, verdict, reason)
SELECT id, ?, (SELECT seq FROM delivery_exchanges WHERE id = ?), ?, ?
  FROM deliveries WHERE id IN ({marks})
"""


def exchange_row(
    attempt: Attempt, webhook_id: str, iso: Callable[[datetime], str | None] = utc_iso
) -> tuple[object, ...]:
    """
    :data:`INSERT_EXCHANGE`'s parameters: *attempt*'s exchange, to *webhook_id*.
    """
    return (
        attempt.exchange_id,
        webhook_id,
        iso(attempt.started_at),
        attempt.duration,
        attempt.status_code,
        attempt.error_kind,
        attempt.detail,
        attempt.response_excerpt,
    )


# Ids per shared-outcome statement: a power of two, with room under SQLite's smallest
# default limit on host parameters (999) for the outcome's own values.
_SHARED_CHUNK = 512


class _Times:
    """
    Formats each distinct time once: a batch's rows share a handful of them.
    """

    def __init__(self) -> None:
        self._seen: dict[datetime, str] = {}

    def __call__(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        text = self._seen.get(moment)
        if text is None:
            text = self._seen[moment] = utc_iso(moment)
        return text


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _existing(
    conn: sqlite3.Connection, sql: str, keys: Sequence[str], params: tuple[str, ...] = ()
) -> set[str]:
    # *sql* is one of ours, with "{marks}" where the placeholders for *keys* go.
    found: set[str] = set()
    for chunk in _chunks(keys):
        marks = ", ".join("?" * len(chunk))
        found.update(row[0] for row in conn.execute(sql.format(marks=marks), (*params, *chunk)))
    return found


def enqueue_bulk(
    conn: sqlite3.Connection, deliveries: Sequence[Delivery]
) -> list[str | None] | None:
    """
    Insert *deliveries* in the caller's transaction; ``None`` if the row-by-row way must do it.

    Only when every webhook named is there and enabled; a duplicate of an event already
    stored (or earlier in *deliveries*) is skipped as :attr:`EnqueueSkip.DUPLICATE`. A
    delivery id already taken undoes the whole attempt (a savepoint) and returns ``None``.
    """
    webhook_ids = sorted({d.webhook_id for d in deliveries})
    enabled = _existing(conn, _ENABLED, webhook_ids)
    if len(enabled) != len(webhook_ids):
        return None
    spelled = _Spelled()
    fresh = _fresh_rows(deliveries, spelled)
    sql, rows = (_INSERT, _rows(deliveries, spelled)) if fresh is None else (_INSERT_FRESH, fresh)
    conn.execute("SAVEPOINT enqueue_bulk")
    before = conn.total_changes
    try:
        conn.executemany(sql, rows)
    except sqlite3.IntegrityError:
        conn.execute("ROLLBACK TO enqueue_bulk")
        conn.execute("RELEASE enqueue_bulk")
        return None
    conn.execute("RELEASE enqueue_bulk")
    if conn.total_changes - before == len(rows):
        return [None] * len(rows)
    ids = [d.id for d in deliveries]
    stored = _existing(conn, _STORED, ids)
    return [None if i in stored else EnqueueSkip.DUPLICATE for i in ids]


class _Spelled:
    """
    A delivery's category, status and six times as stored, each distinct combination
    spelled once: a batch's deliveries share them (and the enums' values).
    """

    def __init__(self) -> None:
        self._iso = _Times()
        self._seen: dict[tuple[object, ...], tuple[Any, ...]] = {}

    def __call__(self, d: Delivery) -> tuple[Any, ...]:
        key = (
            d.category,
            d.status,
            d.next_attempt_at,
            d.created_at,
            d.updated_at,
            d.lease_until,
            d.finished_at,
            d.redelivered_at,
        )
        shared = self._seen.get(key)
        if shared is None:
            shared = self._seen[key] = (
                d.category.value,
                d.status.value,
                *map(self._iso, key[2:]),
            )
        return shared


def _fresh_rows(
    deliveries: Sequence[Delivery], spelled: _Spelled
) -> list[tuple[object, ...]] | None:
    # _INSERT_FRESH's rows, or None unless every delivery is a new one: pending, never
    # attempted, created when last updated, no error, nothing finished or redelivered.
    rows: list[tuple[object, ...]] = []
    for d in deliveries:
        if (
            d.attempts
            or d.attempt_base
            or d.last_status is not None
            or d.last_error is not None
            or d.purged
        ):
            return None
        shared = spelled(d)
        category, status, next_at, created, updated, lease_until, finished, redelivered = shared
        if (
            status != _PENDING
            or created != updated
            or finished is not None
            or redelivered is not None
        ):
            return None
        rows.append(
            (
                d.id,
                d.webhook_id,
                d.event_id,
                category,
                d.body,
                next_at,
                created,
                d.lease_owner,
                lease_until,
            )
        )
    return rows


def _rows(deliveries: Sequence[Delivery], spelled: _Spelled) -> list[tuple[object, ...]]:
    # _INSERT's rows.
    rows: list[tuple[object, ...]] = []
    for d in deliveries:
        shared = spelled(d)
        category, status, next_at, created, updated, lease_until, finished, redelivered = shared
        rows.append(
            (
                d.id,
                d.webhook_id,
                d.event_id,
                category,
                d.body,
                status,
                d.attempts,
                d.attempt_base,
                next_at,
                created,
                updated,
                d.last_status,
                d.last_error,
                d.lease_owner,
                lease_until,
                finished,
                redelivered,
                int(d.purged),
            )
        )
    return rows


def record_bulk(
    conn: sqlite3.Connection,
    outcomes: Sequence[tuple[Delivery, Attempt | None]],
    *,
    owner: str,
    now: datetime,
) -> list[bool]:
    """
    Write claimed deliveries' outcomes in the caller's transaction, each fenced on its lease.

    Returns, per pair, whether it was written (the delivery was still pending and leased
    to *owner* at *now*). Each delivery appears once (OutboxStore.record_outcomes).
    """
    iso = _Times()
    stamp = utc_iso(now)
    groups: dict[tuple[object, ...], list[str]] = {}
    for d, _ in outcomes:
        values = (
            d.status.value,
            d.attempts,
            iso(d.next_attempt_at),
            iso(d.updated_at),
            d.last_status,
            d.last_error,
            iso(d.finished_at),
        )
        groups.setdefault(values, []).append(d.id)
    held: set[str] = set()
    for shared, ids in groups.items():
        for chunk in _chunks(ids):
            sql = _RECORD.format(marks=", ".join("?" * len(chunk)))
            held.update(row[0] for row in conn.execute(sql, (*shared, owner, stamp, *chunk)))
    written = [(d, a) for d, a in outcomes if a is not None and d.id in held]
    # A batch's attempts share their exchange: one row for all of them.
    exchanges = {a.exchange_id: (a, d.webhook_id) for d, a in reversed(written)}
    conn.executemany(
        INSERT_EXCHANGE, [exchange_row(a, webhook_id, iso) for a, webhook_id in exchanges.values()]
    )
    conn.executemany(
        INSERT_ATTEMPT,
        [(a.delivery_id, a.number, a.exchange_id, a.verdict.value, a.reason) for _, a in written],
    )
    return [d.id in held for d, _ in outcomes]


def record_shared(
    conn: sqlite3.Connection,
    groups: Sequence[SharedOutcome],
    *,
    owner: str,
    now: datetime,
) -> set[str]:
    """
    Write one outcome per group to each of its deliveries, fenced on each lease; return the ids.

    The set-based form of :func:`record_bulk` for a Segment batch. Per group, every
    :data:`_SHARED_CHUNK` ids: one ``UPDATE ... WHERE id IN (...)``; when it wrote every
    row (the usual case: every lease still held), the attempt rows are one ``INSERT ...
    SELECT`` of the same ids, so no row is built in Python; the batch's exchange is one
    row, written with the first attempts that name it. Otherwise the ``UPDATE`` is
    undone and redone with ``RETURNING`` (a savepoint), and only the rows written get an
    attempt row. ``IN`` lists are padded (with their last id, which matches nothing more)
    to a power of two, so a handful of statements serve every batch from the cache. Each
    id appears once in all *groups*.
    """
    iso = _Times()
    stamp = utc_iso(now)
    held: set[str] = set()
    exchanges: set[str] = set()  # the exchanges written so far (a batch has one)
    for ids, after, attempt in groups:
        values = (
            after.status.value,
            after.attempts,
            iso(after.next_attempt_at),
            iso(after.updated_at),
            after.last_status,
            after.last_error,
            iso(after.finished_at),
            owner,
            stamp,
        )
        shared = (
            None
            if attempt is None
            else (attempt.number, attempt.exchange_id, attempt.verdict.value, attempt.reason)
        )
        for start in range(0, len(ids), _SHARED_CHUNK):
            chunk = ids[start : start + _SHARED_CHUNK]
            exchange = None
            if attempt is not None and attempt.exchange_id not in exchanges:
                exchange = exchange_row(attempt, after.webhook_id, iso)
            written = _record_chunk(conn, chunk, values, shared, exchange)
            if written and exchange is not None and attempt is not None:
                exchanges.add(attempt.exchange_id)
            held.update(written)
    return held


def _padded(chunk: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    # The placeholders and the ids, padded to a power of two with the last id.
    size = 1 << (len(chunk) - 1).bit_length()
    return ", ".join("?" * size), (*chunk, *[chunk[-1]] * (size - len(chunk)))


def _record_chunk(
    conn: sqlite3.Connection,
    chunk: Sequence[str],
    values: tuple[object, ...],
    attempt: tuple[object, ...] | None,
    exchange: tuple[object, ...] | None,
) -> Sequence[str]:
    # One chunk of a shared outcome: the fenced UPDATE, then (if any row was written) the
    # exchange's row, unless written already, and the attempt rows of the ids written.
    # Returns those ids.
    marks, keys = _padded(chunk)
    conn.execute("SAVEPOINT record_shared")
    written: Sequence[str] = chunk
    if conn.execute(_RECORD_COUNTED.format(marks=marks), (*values, *keys)).rowcount != len(chunk):
        # Some lease was lost: find out which rows are ours the slow way.
        conn.execute("ROLLBACK TO record_shared")
        rows = conn.execute(_RECORD.format(marks=marks), (*values, *keys))
        written = [row[0] for row in rows]
    conn.execute("RELEASE record_shared")
    if attempt is None or not written:
        return written
    if exchange is not None:
        conn.execute(INSERT_EXCHANGE, exchange)
    if written is chunk:
        conn.execute(_COPY_ATTEMPT.format(marks=marks), (*attempt, *keys))
    else:
        conn.executemany(INSERT_ATTEMPT, [(i, *attempt) for i in written])
    return written
