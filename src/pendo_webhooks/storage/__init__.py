"""
Where pendo-webhooks keeps its state: the :class:`Storage` Protocol and two backends.

* :class:`InMemoryStorage`: thread-safe dicts, for tests and single-process use.
* :class:`SQLiteStorage`: one SQLite file in WAL mode, shared by threads and processes.
* :class:`PostgresStorage`: PostgreSQL, shared by processes on many machines; it needs
  the ``postgres`` extra (psycopg 3) and is imported on first use, so this package
  itself never needs psycopg.

All of them pass the same contract test suite. A backend is one object implementing
every part of :class:`Storage`; each change is one transaction. To keep the outbox in a
database of your own, implement the Protocols of :mod:`pendo_webhooks.storage.protocols`
and prove the store with :mod:`pendo_webhooks.testing.storage_contract`.

>>> from pendo_webhooks.storage import InMemoryStorage, Storage
>>> storage: Storage = InMemoryStorage()
>>> storage.list_webhooks()
[]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model._audit import AuditQuery
from ._codec import PlaintextCodec
from ._memory import InMemoryStorage
from ._outbox_protocol import OutboxStore
from ._protocol import AuditStore, SecretCodec, Storage, WebhookStore
from ._protocol_pipeline import ExclusionStore, FirstSeenOrigin, FirstSeenStore
from ._sqlite import SQLiteStorage


if TYPE_CHECKING:
    from ._postgres import PostgresStorage as PostgresStorage


__all__ = [
    "AuditQuery",
    "AuditStore",
    "ExclusionStore",
    "FirstSeenOrigin",
    "FirstSeenStore",
    "InMemoryStorage",
    "OutboxStore",
    "PlaintextCodec",
    "SQLiteStorage",
    "SecretCodec",
    "Storage",
    "WebhookStore",
]


# Hidden from type checkers, which read the import under TYPE_CHECKING above: a module
# __getattr__ would let a misspelt name type-check.
if not TYPE_CHECKING:  # pragma: no branch - always true at run time

    def __getattr__(name: str) -> object:
        # PostgresStorage is imported on first use: only it needs psycopg.
        if name != "PostgresStorage":
            msg = f"module {__name__!r} has no attribute {name!r}"
            raise AttributeError(msg)
        try:
            from ._postgres import PostgresStorage  # noqa: PLC0415 - psycopg only when asked
        except ImportError as exc:
            msg = (
                "PostgresStorage needs psycopg 3 and psycopg_pool: "
                'pip install "pendo-webhooks[postgres]"'
            )
            raise ImportError(msg, name=exc.name) from exc
        return PostgresStorage
