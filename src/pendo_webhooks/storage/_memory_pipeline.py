"""
The first-seen and exclusion parts of :class:`~pendo_webhooks.storage.InMemoryStorage`.

Strictly private.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from datetime import datetime

from ..model._audit import AuditEntry
from ..model._exclusions import Exclusion, duplicate_exclusion, unknown_exclusion
from ._protocol_pipeline import FirstSeenOrigin


__all__ = ["InMemoryPipeline"]


class InMemoryPipeline:
    """
    First-seen keys and the exclusion list in dicts, under the storage's one lock.

    Strictly private: a base of InMemoryStorage, which owns ``_lock`` and ``_audit``.
    """

    # Set by InMemoryStorage.__init__; declared here for the type checker.
    _lock: threading.RLock
    _audit: list[AuditEntry]

    def __init__(self) -> None:
        super().__init__()
        # key -> True once seen in the app, False while known only through an API.
        self._first_seen: dict[str, bool] = {}
        self._exclusions: dict[str, Exclusion] = {}
        self._exclusions_version = 0

    # -- first seen ------------------------------------------------------------------------

    def claim_first_seen(self, keys: Collection[str], *, at: datetime) -> set[str]:  # noqa: ARG002
        """
        Mark *keys* as seen in the app; return those that were not before this call.
        """
        claimed: set[str] = set()
        with self._lock:
            seen = self._first_seen
            for key in keys:
                if not seen.get(key, False):
                    seen[key] = True
                    claimed.add(key)
        return claimed

    def record_known(self, keys: Collection[str], *, at: datetime) -> int:  # noqa: ARG002
        """
        Record *keys* as known through an API unless already known; return how many were new.
        """
        with self._lock:
            before = len(self._first_seen)
            for key in keys:
                self._first_seen.setdefault(key, False)
            return len(self._first_seen) - before

    def first_seen_origin(self, key: str) -> FirstSeenOrigin | None:
        """
        Return ``"app"``, ``"api"``, or ``None`` for a key never recorded.
        """
        with self._lock:
            found = self._first_seen.get(key)
        if found is None:
            return None
        return "app" if found else "api"

    # -- exclusions ------------------------------------------------------------------------

    def insert_exclusion(self, exclusion: Exclusion, *, audit: AuditEntry) -> None:
        """
        Store a new exclusion and its audit entry, or raise ConflictError.
        """
        with self._lock:
            for existing in self._exclusions.values():
                if existing.id == exclusion.id or existing.rule == exclusion.rule:
                    raise duplicate_exclusion(exclusion, existing.id)
            self._exclusions[exclusion.id] = exclusion
            self._exclusions_version += 1
            self._audit.append(audit)

    def delete_exclusion(self, exclusion_id: str, *, audit: AuditEntry) -> None:
        """
        Delete an exclusion and store its audit entry, or raise NotFound.
        """
        with self._lock:
            if self._exclusions.pop(exclusion_id, None) is None:
                raise unknown_exclusion(exclusion_id)
            self._exclusions_version += 1
            self._audit.append(audit)

    def get_exclusion(self, exclusion_id: str) -> Exclusion:
        """
        Return the exclusion with this id, or raise NotFound.
        """
        with self._lock:
            found = self._exclusions.get(exclusion_id)
        if found is None:
            raise unknown_exclusion(exclusion_id)
        return found

    def list_exclusions(self) -> list[Exclusion]:
        """
        Return every exclusion, oldest first (then by id).
        """
        with self._lock:
            found = list(self._exclusions.values())
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def exclusions_version(self) -> int:
        """
        Return a number that changes with every change to the exclusion list.
        """
        return self._exclusions_version
