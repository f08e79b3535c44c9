"""
The storage Protocols of the event pipeline: first-seen tracking and the exclusion list.

Strictly private; import these names from :mod:`pendo_webhooks.storage`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Literal, Protocol

from ..model._audit import AuditEntry
from ..model._exclusions import Exclusion


__all__ = ["ExclusionStore", "FirstSeenOrigin", "FirstSeenStore"]

#: How a first-seen key became known: seen in the app, or created through an API or import.
FirstSeenOrigin = Literal["app", "api"]


class FirstSeenStore(Protocol):
    """
    **Protocol**: Remembers which visitors, accounts and account pairs have been seen.

    Keys are opaque text made by :class:`~pendo_webhooks.pipeline.FirstSeenTracker` (one
    per visitor, account or parent-child pair). A key is *known* with origin ``"api"``
    (created through an API or a bulk import: fires nothing) or ``"app"`` (seen in the
    app). The only change ever made to a key is ``"api"`` to ``"app"``; keys are never
    removed by the library.

    :meth:`claim_first_seen` is the one operation that must be atomic across threads *and
    processes*: of all the calls that pass a key that is not yet ``"app"``, exactly one
    gets it back.
    """

    def claim_first_seen(self, keys: Collection[str], *, at: datetime) -> set[str]:
        """
        Mark *keys* as seen in the app; return those that were not before this call.

        A key that is unknown, or known only with origin ``"api"``, becomes ``"app"`` and is
        returned; a key already ``"app"`` is not. Duplicates in *keys* count once. All of
        it is one transaction: on an error nothing is marked.
        """

    def record_known(self, keys: Collection[str], *, at: datetime) -> int:
        """
        Record *keys* as known through an API (origin ``"api"``) unless already known.

        Returns how many keys were new.
        """

    def first_seen_origin(self, key: str) -> FirstSeenOrigin | None:
        """
        Return ``"app"``, ``"api"``, or ``None`` for a key never recorded.
        """


class ExclusionStore(Protocol):
    """
    **Protocol**: Keeps the exclusion list, writing each change with its audit entry.

    Every change bumps :meth:`exclusions_version`, so readers can cache the compiled list
    and rebuild it only after a change.
    """

    def insert_exclusion(self, exclusion: Exclusion, *, audit: AuditEntry) -> None:
        """
        Store a new exclusion and its audit entry in one transaction.

        Raises:
            ConflictError: If the id is taken, or a rule of the same kind and pattern exists.
        """

    def delete_exclusion(self, exclusion_id: str, *, audit: AuditEntry) -> None:
        """
        Delete an exclusion and store its audit entry in one transaction.

        Raises:
            NotFound: If no exclusion has this id.
        """

    def get_exclusion(self, exclusion_id: str) -> Exclusion:
        """
        Return the exclusion with this id.

        Raises:
            NotFound: If no exclusion has this id.
        """

    def list_exclusions(self) -> Sequence[Exclusion]:
        """
        Return every exclusion, oldest first (then by id).
        """

    def exclusions_version(self) -> int:
        """
        Return a number that changes with every change to the exclusion list.
        """
