"""
Where pendo-webhooks keeps its state: the :class:`Storage` Protocol and two backends.

* :class:`InMemoryStorage`: thread-safe dicts, for tests and single-process use.
* :class:`SQLiteStorage`: one SQLite file in WAL mode, shared by threads and processes.

Both pass the same contract test suite. A backend is one object implementing
every part of :class:`Storage`; each change is one transaction.

>>> from pendo_webhooks.storage import InMemoryStorage, Storage
>>> storage: Storage = InMemoryStorage()
>>> storage.list_webhooks()
[]
"""

from __future__ import annotations

from .._audit import AuditQuery
from ._codec import PlaintextCodec
from ._memory import InMemoryStorage
from ._protocol import AuditStore, SecretCodec, Storage, WebhookStore
from ._sqlite import SQLiteStorage


__all__ = [
    "AuditQuery",
    "AuditStore",
    "InMemoryStorage",
    "PlaintextCodec",
    "SQLiteStorage",
    "SecretCodec",
    "Storage",
    "WebhookStore",
]
