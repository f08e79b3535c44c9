"""
The first-seen and exclusion parts of :class:`~pendo_webhooks.storage.SQLiteStorage`.

First-seen keys live in a ``WITHOUT ROWID`` table keyed by the key itself, so a check is one
index probe and nothing is loaded into memory. A claim is one ``BEGIN IMMEDIATE``
transaction of upserts that turn a missing or ``'api'`` row into ``'app'``; the rows the
upserts actually changed (``RETURNING``, or the change count on SQLite before 3.35) are
exactly the keys this call claimed. SQLite serializes writers, so two processes cannot both
claim one key.

Strictly private.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator
from datetime import datetime
from functools import lru_cache
from typing import cast

from ..model._audit import AuditEntry
from ..model._exclusions import Exclusion, duplicate_exclusion, unknown_exclusion
from ._protocol_pipeline import FirstSeenOrigin
from ._sqlite_core import SQLiteCore
from ._sqlite_webhooks import SQLITE_ROWS, append_audit


__all__ = ["SQLitePipeline", "claim_in"]

#: Whether this SQLite has ``RETURNING`` (3.35, March 2021).
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

# Keys per upsert statement. Statements are built for powers of two only, so a handful of
# prepared statements serve every batch size (sqlite3 caches them by text); 512 keys bind
# 513 parameters, under the 999 that SQLite before 3.32 allows.
_MAX_KEYS_PER_STATEMENT = 512

_UPSERT_TAIL = """
ON CONFLICT (key) DO UPDATE SET origin = 'app', seen_at = excluded.seen_at
 WHERE first_seen.origin = 'api'
"""


_INSERT_APP = "INSERT INTO first_seen (key, origin, known_at, seen_at) VALUES "


@lru_cache(maxsize=16)
def _claim_statement(count: int) -> str:
    # ?1 is the time; ?2 .. ?(count + 1) are the keys. Only placeholders are interpolated.
    rows = ", ".join(f"(?{i}, 'app', ?1, ?1)" for i in range(2, count + 2))
    return _INSERT_APP + rows + _UPSERT_TAIL + " RETURNING key"


_CLAIM_ONE = _INSERT_APP + "(?, 'app', ?, ?)" + _UPSERT_TAIL

_RECORD_KNOWN = """
INSERT INTO first_seen (key, origin, known_at, seen_at) VALUES (?, 'api', ?, NULL)
ON CONFLICT (key) DO NOTHING
"""


def _pieces(keys: list[str]) -> Iterator[list[str]]:
    """
    Split *keys* into runs whose lengths are powers of two of at most 512.
    """
    start = 0
    while start < len(keys):
        size = min(_MAX_KEYS_PER_STATEMENT, 1 << ((len(keys) - start).bit_length() - 1))
        yield keys[start : start + size]
        start += size


def claim_in(conn: sqlite3.Connection, keys: list[str], at: datetime) -> set[str]:
    """
    Claim *keys* (no duplicates) in the caller's transaction; return those this call claimed.
    """
    when = int(at.timestamp())
    claimed: set[str] = set()
    if HAS_RETURNING:
        for piece in _pieces(keys):
            rows = conn.execute(_claim_statement(len(piece)), (when, *piece))
            claimed.update(row[0] for row in rows)
    else:
        for key in keys:
            if conn.execute(_CLAIM_ONE, (key, when, when)).rowcount == 1:
                claimed.add(key)
    return claimed


class SQLitePipeline(SQLiteCore):
    """
    First-seen keys and the exclusion list. Strictly private.
    """

    # -- first seen ------------------------------------------------------------------------

    def claim_first_seen(self, keys: Collection[str], *, at: datetime) -> set[str]:
        """
        Mark *keys* as seen in the app, in one transaction; return those that were not.
        """
        unique = list(dict.fromkeys(keys))
        if not unique:
            return set()
        with self._transaction() as conn:
            return claim_in(conn, unique, at)

    def record_known(self, keys: Collection[str], *, at: datetime) -> int:
        """
        Record *keys* as known through an API unless already known; return how many were new.
        """
        when = int(at.timestamp())
        with self._transaction() as conn:
            before = conn.total_changes
            conn.executemany(_RECORD_KNOWN, ((key, when) for key in dict.fromkeys(keys)))
            return conn.total_changes - before

    def first_seen_origin(self, key: str) -> FirstSeenOrigin | None:
        """
        Return ``"app"``, ``"api"``, or ``None`` for a key never recorded.
        """
        rows = self._query("SELECT origin FROM first_seen WHERE key = ?", (key,))
        return cast("FirstSeenOrigin", rows[0][0]) if rows else None

    # -- exclusions ------------------------------------------------------------------------

    def insert_exclusion(self, exclusion: Exclusion, *, audit: AuditEntry) -> None:
        """
        Store a new exclusion and its audit entry in one transaction, or raise ConflictError.
        """
        rule = exclusion.rule
        with self._transaction() as conn:
            existing = conn.execute(
                "SELECT id FROM exclusions WHERE id = ? OR (kind = ? AND pattern = ?)",
                (exclusion.id, rule.kind.value, rule.pattern),
            ).fetchone()
            if existing is not None:
                raise duplicate_exclusion(exclusion, existing[0])
            conn.execute(
                "INSERT INTO exclusions (id, kind, pattern, created_at, created_by)"
                " VALUES (:id, :kind, :pattern, :created_at, :created_by)",
                SQLITE_ROWS.exclusion_params(exclusion),
            )
            _bump_version(conn)
            append_audit(conn, audit)

    def delete_exclusion(self, exclusion_id: str, *, audit: AuditEntry) -> None:
        """
        Delete an exclusion and store its audit entry in one transaction, or raise NotFound.
        """
        with self._transaction() as conn:
            if conn.execute("DELETE FROM exclusions WHERE id = ?", (exclusion_id,)).rowcount == 0:
                raise unknown_exclusion(exclusion_id)
            _bump_version(conn)
            append_audit(conn, audit)

    def get_exclusion(self, exclusion_id: str) -> Exclusion:
        """
        Return the exclusion with this id, or raise NotFound.
        """
        rows = self._query("SELECT * FROM exclusions WHERE id = ?", (exclusion_id,))
        if not rows:
            raise unknown_exclusion(exclusion_id)
        return SQLITE_ROWS.exclusion(rows[0])

    def list_exclusions(self) -> list[Exclusion]:
        """
        Return every exclusion, oldest first (then by id).
        """
        rows = self._query("SELECT * FROM exclusions ORDER BY created_at, id")
        return [SQLITE_ROWS.exclusion(row) for row in rows]

    def exclusions_version(self) -> int:
        """
        Return a number that changes with every change to the exclusion list.
        """
        rows = self._query("SELECT version FROM exclusions_version WHERE id = 1")
        return int(rows[0][0])


def _bump_version(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE exclusions_version SET version = version + 1 WHERE id = 1")
