"""
The storage Protocols: what the registry (and later the dispatcher) needs from a store.

Strictly private; import these names from :mod:`pendo_webhooks.storage`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Protocol

from ..events import EventCategory
from ..model._audit import AuditEntry, AuditQuery
from ..model._delivery import Delivery
from ..model._webhook import Webhook
from ._outbox_protocol import OutboxStore
from ._protocol_pipeline import ExclusionStore, FirstSeenStore


__all__ = ["AuditStore", "SecretCodec", "Storage", "WebhookStore"]


class WebhookStore(Protocol):
    """
    **Protocol**: Keeps webhooks, writing each change together with its audit entry.

    Every write is one transaction: the webhook row and its :class:`AuditEntry`
    are stored together or not at all. Writes that replace or delete a webhook
    name the version they are based on; if the stored version differs, nothing
    is written and :class:`~pendo_webhooks.exceptions.ConflictError` is raised.
    """

    def insert_webhook(self, webhook: Webhook, *, audit: AuditEntry) -> None:
        """
        Store a new webhook and its audit entry.

        Raises:
            ConflictError: If a webhook with this id already exists.
        """

    def replace_webhook(
        self, webhook: Webhook, *, expected_version: int, audit: AuditEntry
    ) -> None:
        """
        Replace the stored webhook with the same id, if it is still at *expected_version*.

        Raises:
            UnknownWebhook: If no webhook has this id.
            ConflictError: If the stored webhook's version is not *expected_version*.
        """

    def delete_webhook(self, webhook_id: str, *, expected_version: int, audit: AuditEntry) -> None:
        """
        Delete a webhook for good, if it is still at *expected_version*; its audit history stays.

        Raises:
            UnknownWebhook: If no webhook has this id.
            ConflictError: If the stored webhook's version is not *expected_version*.
        """

    def get_webhook(self, webhook_id: str) -> Webhook:
        """
        Return the webhook with this id.

        Raises:
            UnknownWebhook: If no webhook has this id.
        """

    def list_webhooks(self) -> Sequence[Webhook]:
        """
        Return every webhook, enabled or not, oldest first (then by id).
        """

    def webhooks_for(self, category: EventCategory) -> Sequence[Webhook]:
        """
        Return the *enabled* webhooks subscribed to *category*, oldest first (then by id).
        """


class AuditStore(Protocol):
    """
    **Protocol**: Reads the audit log that :class:`WebhookStore` writes.
    """

    def audit_entries(self, query: AuditQuery) -> Sequence[AuditEntry]:
        """
        Return the entries matching *query*, newest first, at most ``query.limit``.
        """


class Storage(WebhookStore, AuditStore, OutboxStore, FirstSeenStore, ExclusionStore, Protocol):
    """
    **Protocol**: Everything pendo-webhooks keeps; one object, one transaction per change.

    Later parts (the delivery outbox, first-seen tracking) join this Protocol as
    further stores, so one backend object serves the whole library. One method spans two
    of them: :meth:`claim_first_seen_and_enqueue`.
    """

    def claim_first_seen_and_enqueue(
        self,
        keys: Collection[str],
        *,
        at: datetime,
        deliveries: Callable[[set[str]], Sequence[Delivery]],
        connection: object | None = None,
    ) -> tuple[set[str], list[str | None]]:
        """
        ``claim_first_seen`` and ``enqueue_deliveries`` in ONE transaction: both or neither.

        Claims *keys* like ``claim_first_seen``; if it claimed any, calls *deliveries*
        with the claimed keys and stores what it returns like ``enqueue_deliveries``. An
        error anywhere (in *deliveries* too) leaves no key claimed and no delivery stored,
        so the next sighting fires again. *deliveries* runs inside the transaction: it must
        be quick, must not use the store, and may be called again if the transaction is
        retried.

        With *connection* (PostgresStorage only: the host's psycopg connection), both are
        written in the host's transaction, as ``Dispatcher.enqueue(connection=...)`` does.

        Returns:
            The claimed keys, and per delivery ``None`` if stored or why not (as
            ``enqueue_deliveries``).

        Raises:
            ConflictError: If a delivery id is taken (nothing is stored or claimed).
            ConfigurationError: If *connection* is given to a store that cannot use it.

        >>> from datetime import datetime, timezone
        >>> from pendo_webhooks.storage import InMemoryStorage
        >>> store, now = InMemoryStorage(), datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> def nothing_subscribes(claimed):
        ...     return []
        >>> store.claim_first_seen_and_enqueue(["v:ann"], at=now, deliveries=nothing_subscribes)
        ({'v:ann'}, [])
        >>> store.claim_first_seen_and_enqueue(["v:ann"], at=now, deliveries=nothing_subscribes)
        (set(), [])
        """


class SecretCodec(Protocol):
    """
    **Protocol**: Encrypts secrets and write keys before a backend writes them, and back.

    :class:`~pendo_webhooks.storage.SQLiteStorage` stores each webhook's
    secret(s) and write key in its row (they are needed to sign), and nowhere
    else. Pass a codec to encrypt them at rest, for example with Fernet::

        from cryptography.fernet import Fernet

        class FernetCodec:
            def __init__(self, key: bytes) -> None:
                self._fernet = Fernet(key)

            def encode(self, plaintext: str) -> str:
                return self._fernet.encrypt(plaintext.encode()).decode("ascii")

            def decode(self, stored: str) -> str:
                return self._fernet.decrypt(stored.encode("ascii")).decode()

    ``decode(encode(s)) == s`` must hold for any text. A codec that fails to
    decode makes reads raise :class:`~pendo_webhooks.exceptions.StorageError`.
    """

    def encode(self, plaintext: str) -> str:
        """
        Return the text to store for *plaintext*.
        """

    def decode(self, stored: str) -> str:
        """
        Return the plaintext that :meth:`encode` turned into *stored*.
        """
