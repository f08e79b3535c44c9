"""
:class:`InMemoryStorage`: the Storage contract in a few dicts, for tests and single-process use.

Strictly private; import :class:`InMemoryStorage` from :mod:`pendo_webhooks.storage`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import ClassVar

from ..events import EventCategory
from ..model._audit import AuditEntry, AuditQuery
from ..model._delivery import Delivery
from ..model._webhook import Webhook
from ._errors import duplicate_webhook, stale_version, unknown_webhook
from ._host_connection import refuse_host_connection
from ._memory_outbox import MemoryOutbox
from ._memory_pipeline import InMemoryPipeline


__all__ = ["InMemoryStorage"]


def _created_order(webhook: Webhook) -> tuple[object, ...]:
    return (webhook.created_at, webhook.id)


class InMemoryStorage(MemoryOutbox, InMemoryPipeline):
    """
    Keeps webhooks and their audit log in memory; thread-safe, gone when the process ends.

    Values are immutable, so what it returns can be shared freely. One
    re-entrant lock guards every operation, which makes each write atomic.

    >>> InMemoryStorage()
    <InMemoryStorage(num_webhooks=0, num_audit_entries=0)>
    """

    #: Its state is this object's alone (see ``Capabilities.process_local``).
    process_local: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._webhooks: dict[str, Webhook] = {}
        self._audit: list[AuditEntry] = []

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"<InMemoryStorage(num_webhooks={len(self._webhooks)}, "
                f"num_audit_entries={len(self._audit)})>"
            )

    def _check_version(self, webhook_id: str, expected_version: int) -> None:
        current = self._webhooks.get(webhook_id)
        if current is None:
            raise unknown_webhook(webhook_id)
        if current.version != expected_version:
            raise stale_version(webhook_id, expected_version, current.version)

    def insert_webhook(self, webhook: Webhook, *, audit: AuditEntry) -> None:
        """
        Store a new webhook and its audit entry, or raise ConflictError if the id is taken.
        """
        with self._lock:
            if webhook.id in self._webhooks:
                raise duplicate_webhook(webhook.id)
            self._webhooks[webhook.id] = webhook
            self._audit.append(audit)

    def replace_webhook(
        self, webhook: Webhook, *, expected_version: int, audit: AuditEntry
    ) -> None:
        """
        Replace a webhook if it is still at *expected_version*, and record *audit*.
        """
        with self._lock:
            self._check_version(webhook.id, expected_version)
            self._webhooks[webhook.id] = webhook
            self._audit.append(audit)

    def delete_webhook(self, webhook_id: str, *, expected_version: int, audit: AuditEntry) -> None:
        """
        Delete a webhook if it is still at *expected_version*, and record *audit*.
        """
        with self._lock:
            self._check_version(webhook_id, expected_version)
            del self._webhooks[webhook_id]
            self._audit.append(audit)

    def get_webhook(self, webhook_id: str) -> Webhook:
        """
        Return the webhook with this id, or raise UnknownWebhook.
        """
        with self._lock:
            try:
                return self._webhooks[webhook_id]
            except KeyError:
                raise unknown_webhook(webhook_id) from None

    def list_webhooks(self) -> list[Webhook]:
        """
        Return every webhook, oldest first.
        """
        with self._lock:
            return sorted(self._webhooks.values(), key=_created_order)

    def webhooks_for(self, category: EventCategory) -> list[Webhook]:
        """
        Return the enabled webhooks subscribed to *category*, oldest first.
        """
        with self._lock:
            hooks = [w for w in self._webhooks.values() if w.enabled and category in w.categories]
        return sorted(hooks, key=_created_order)

    def claim_first_seen_and_enqueue(
        self,
        keys: Collection[str],
        *,
        at: datetime,  # noqa: ARG002 - the memory store keeps no times
        deliveries: Callable[[set[str]], Sequence[Delivery]],
        connection: object | None = None,
    ) -> tuple[set[str], list[str | None]]:
        """
        Claim first-seen keys and store the deliveries they fire, both or neither.
        """
        refuse_host_connection(self, connection)
        with self._lock:
            seen = self._first_seen
            claimed = {key for key in keys if not seen.get(key, False)}
            # Nothing changes until both parts are known to succeed: enqueue_deliveries
            # checks the whole batch before it stores any of it.
            skipped = self.enqueue_deliveries(deliveries(claimed)) if claimed else []
            for key in claimed:
                seen[key] = True
        return claimed, skipped

    def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        """
        Return the audit entries matching *query*, newest first.
        """
        with self._lock:
            found: list[AuditEntry] = []
            for entry in reversed(self._audit):
                if query.matches(entry):
                    found.append(entry)
                    if len(found) == query.limit:
                        break
            return found
