"""
Type-checked only, never run: the public API as a user writes it.

mypy --strict checks that implementations satisfy the Protocols structurally.
"""

from __future__ import annotations

from pendo_webhooks import EventCategory, Secret


secret: Secret = Secret("any text, special chars ok!&?<>")
category: EventCategory = EventCategory.NPS_SUBMITTED
