"""
Send Pendo-style webhooks: register destinations, format events, sign, deliver.
"""

from __future__ import annotations

from . import exceptions
from ._secret import Secret
from ._version import __version__
from .events import EventCategory
from .exceptions import PendoWebhooksError


__all__ = [
    "EventCategory",
    "PendoWebhooksError",
    "Secret",
    "__version__",
    "exceptions",
]
