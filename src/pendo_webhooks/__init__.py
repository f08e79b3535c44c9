"""
Send Pendo-style webhooks: register destinations, format events, sign, deliver.
"""

from __future__ import annotations

from . import exceptions
from ._secret import Secret
from ._version import __version__
from .events import Event, EventCategory
from .exceptions import PendoWebhooksError
from .registry import Actor, Webhook, WebhookKind, WebhookRegistry
from .storage import InMemoryStorage, SQLiteStorage


__all__ = [
    "Actor",
    "Event",
    "EventCategory",
    "InMemoryStorage",
    "PendoWebhooksError",
    "SQLiteStorage",
    "Secret",
    "Webhook",
    "WebhookKind",
    "WebhookRegistry",
    "__version__",
    "exceptions",
]
