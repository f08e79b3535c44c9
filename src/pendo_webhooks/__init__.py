"""
Send Pendo-style webhooks: register destinations, format events, sign, deliver.

The names below are imported on first use, so ``import pendo_webhooks`` stays cheap
(the pytest plugin entry point imports it in every test session of every user). Type
checkers see plain imports instead, so a misspelt name is an error there too.

>>> import pendo_webhooks
>>> pendo_webhooks.EventCategory.NPS_SUBMITTED.value
'npsSubmitted'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import exceptions
from ._version import __version__
from .exceptions import PendoWebhooksError


if TYPE_CHECKING:
    from .dispatcher import Delivery, DeliveryStatus, Dispatcher
    from .events import Event, EventCategory
    from .guard import DestinationPolicy
    from .pipeline import FirstSeenTracker, Observation
    from .registry import Actor, Webhook, WebhookKind, WebhookRegistry
    from .retry import RetryPolicy
    from .signing._secret import Secret
    from .storage import InMemoryStorage, SQLiteStorage


#: Where each lazily imported name lives.
_LAZY = {
    "Actor": ".registry",
    "Delivery": ".dispatcher",
    "DeliveryStatus": ".dispatcher",
    "DestinationPolicy": ".guard",
    "Dispatcher": ".dispatcher",
    "Event": ".events",
    "EventCategory": ".events",
    "FirstSeenTracker": ".pipeline",
    "InMemoryStorage": ".storage",
    "Observation": ".pipeline",
    "RetryPolicy": ".retry",
    "SQLiteStorage": ".storage",
    "Secret": ".signing._secret",
    "Webhook": ".registry",
    "WebhookKind": ".registry",
    "WebhookRegistry": ".registry",
}

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


# Hidden from type checkers: a module ``__getattr__`` would make every name, misspelt ones
# included, type-check as Any. They read the imports under TYPE_CHECKING above instead.
if not TYPE_CHECKING:  # pragma: no branch - always true at run time

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            msg = f"module {__name__!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
