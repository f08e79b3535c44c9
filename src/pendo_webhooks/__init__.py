"""
Send Pendo-style webhooks: register destinations, format events, sign, deliver.
"""

from __future__ import annotations

from . import exceptions
from ._secret import Secret
from ._version import __version__
from .dispatcher import Delivery, DeliveryStatus, Dispatcher
from .events import Event, EventCategory
from .exceptions import PendoWebhooksError
from .guard import DestinationPolicy
from .pipeline import FirstSeenTracker, Observation
from .registry import Actor, Webhook, WebhookKind, WebhookRegistry
from .retry import RetryPolicy
from .storage import InMemoryStorage, SQLiteStorage


__all__ = [
    "Actor",
    "Delivery",
    "DeliveryStatus",
    "DestinationPolicy",
    "Dispatcher",
    "Event",
    "EventCategory",
    "FirstSeenTracker",
    "InMemoryStorage",
    "Observation",
    "PendoWebhooksError",
    "RetryPolicy",
    "SQLiteStorage",
    "Secret",
    "Webhook",
    "WebhookKind",
    "WebhookRegistry",
    "__version__",
    "exceptions",
]
