"""
The first-seen and exclusion parts of :class:`~pendo_webhooks.storage.PostgresStorage`.

A first-seen claim is ONE ``INSERT ... ON CONFLICT DO UPDATE ... WHERE origin = 'api'
RETURNING key`` over an array of keys: the rows it returns are exactly the keys this
call turned into ``'app'``. PostgreSQL's unique index makes a concurrent claim of the
same key wait for ours and then find it taken, so across any number of processes
exactly one caller gets each key back. Keys are sorted first, so two batches lock
their keys in one order and cannot deadlock each other.

Strictly private.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import cast

from psycopg import Cursor
from psycopg.rows import DictRow

from ..model._audit import AuditEntry
from ..model._exclusions import Exclusion, duplicate_exclusion, unknown_exclusion
from ._postgres_webhooks import POSTGRES_ROWS, PostgresWebhooks
from ._protocol_pipeline import FirstSeenOrigin


__all__ = ["CLAIM", "PostgresPipeline", "decoded", "encoded"]

CLAIM = """
INSERT INTO {schema}.first_seen (key, origin, known_at, seen_at)
SELECT key, 'app', %(at)s, %(at)s FROM unnest(%(keys)s::bytea[]) AS key
ON CONFLICT (key) DO UPDATE SET origin = 'app', seen_at = excluded.seen_at
 WHERE first_seen.origin = 'api'
RETURNING key
"""

_RECORD_KNOWN = """
INSERT INTO {schema}.first_seen (key, origin, known_at, seen_at)
SELECT key, 'api', %(at)s, NULL FROM unnest(%(keys)s::bytea[]) AS key
ON CONFLICT (key) DO NOTHING
"""

_INSERT_EXCLUSION = """
INSERT INTO {schema}.exclusions (id, kind, pattern, created_at, created_by)
VALUES (%(id)s, %(kind)s, %(pattern)s, %(created_at)s, %(created_by)s)
ON CONFLICT DO NOTHING
"""

_BUMP = "UPDATE {schema}.exclusions_version SET version = version + 1 WHERE id = 1"


def encoded(keys: Collection[str]) -> list[bytes]:
    # Sorted, so that two batches lock their keys in the same order.
    return sorted({key.encode("utf-8", "surrogatepass") for key in keys})


def decoded(key: bytes) -> str:
    return bytes(key).decode("utf-8", "surrogatepass")


class PostgresPipeline(PostgresWebhooks):
    """
    First-seen keys and the exclusion list. Strictly private.
    """

    # -- first seen ----------------------------------------------------------------------------

    def claim_first_seen(self, keys: Collection[str], *, at: datetime) -> set[str]:
        """
        Mark *keys* as seen in the app, in one statement; return those that were not.
        """
        unique = encoded(keys)
        if not unique:
            return set()
        rows, _ = self._execute(
            "claiming first-seen keys", self._q(CLAIM), {"keys": unique, "at": at}
        )
        return {decoded(row["key"]) for row in rows}

    def record_known(self, keys: Collection[str], *, at: datetime) -> int:
        """
        Record *keys* as known through an API unless already known; return how many were new.
        """
        unique = encoded(keys)
        if not unique:
            return 0
        params = {"keys": unique, "at": at}
        return self._execute("recording known keys", self._q(_RECORD_KNOWN), params)[1]

    def first_seen_origin(self, key: str) -> FirstSeenOrigin | None:
        """
        Return ``"app"``, ``"api"``, or ``None`` for a key never recorded.
        """
        rows = self._read(
            "reading a first-seen key",
            self._q("SELECT origin FROM {schema}.first_seen WHERE key = %s"),
            (key.encode("utf-8", "surrogatepass"),),
        )
        return cast("FirstSeenOrigin", rows[0]["origin"]) if rows else None

    # -- exclusions ----------------------------------------------------------------------------

    def insert_exclusion(self, exclusion: Exclusion, *, audit: AuditEntry) -> None:
        """
        Store a new exclusion and its audit entry in one transaction, or raise ConflictError.
        """
        params = POSTGRES_ROWS.exclusion_params(exclusion)

        def write(cur: Cursor[DictRow]) -> None:
            cur.execute(self._q(_INSERT_EXCLUSION), params)
            if cur.rowcount != 1:
                # Taken (perhaps by a concurrent insert that just committed): say by which.
                cur.execute(
                    self._q(
                        "SELECT id FROM {schema}.exclusions"
                        " WHERE id = %(id)s OR (kind = %(kind)s AND pattern = %(pattern)s)"
                        " ORDER BY id <> %(id)s LIMIT 1"
                    ),
                    params,
                )
                found = cur.fetchone()
                raise duplicate_exclusion(
                    exclusion, exclusion.id if found is None else found["id"]
                )
            cur.execute(self._q(_BUMP))
            self._append_audit(cur, audit)

        self._write("storing an exclusion", write)

    def delete_exclusion(self, exclusion_id: str, *, audit: AuditEntry) -> None:
        """
        Delete an exclusion and store its audit entry in one transaction, or raise NotFound.
        """

        def write(cur: Cursor[DictRow]) -> None:
            cur.execute(self._q("DELETE FROM {schema}.exclusions WHERE id = %s"), (exclusion_id,))
            if cur.rowcount != 1:
                raise unknown_exclusion(exclusion_id)
            cur.execute(self._q(_BUMP))
            self._append_audit(cur, audit)

        self._write("deleting an exclusion", write)

    def get_exclusion(self, exclusion_id: str) -> Exclusion:
        """
        Return the exclusion with this id, or raise NotFound.
        """
        rows = self._read(
            "reading an exclusion",
            self._q("SELECT * FROM {schema}.exclusions WHERE id = %s"),
            (exclusion_id,),
        )
        if not rows:
            raise unknown_exclusion(exclusion_id)
        return POSTGRES_ROWS.exclusion(rows[0])

    def list_exclusions(self) -> list[Exclusion]:
        """
        Return every exclusion, oldest first (then by id).
        """
        rows = self._read(
            "listing exclusions",
            self._q("SELECT * FROM {schema}.exclusions ORDER BY created_at, id"),
        )
        return [POSTGRES_ROWS.exclusion(row) for row in rows]

    def exclusions_version(self) -> int:
        """
        Return a number that changes with every change to the exclusion list.
        """
        rows = self._read(
            "reading the exclusions version",
            self._q("SELECT version FROM {schema}.exclusions_version WHERE id = 1"),
        )
        return int(rows[0]["version"])
