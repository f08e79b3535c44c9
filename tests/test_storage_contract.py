"""
The Storage contract: every backend (see ``STORAGE_BACKENDS`` in conftest) passes these tests.

The tests themselves ship in :mod:`pendo_webhooks.testing.storage_contract`, so a host can
run them on its own store; the classes here run them on every backend through conftest's
``storage`` fixture. The helpers are re-exported for the backend tests that build on them.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from pendo_webhooks.exceptions import ValidationError
from pendo_webhooks.storage import AuditQuery
from pendo_webhooks.testing.storage_contract import (
    AuditStoreContract,
    WebhookStoreContract,
)
from pendo_webhooks.testing.storage_contract import _all_entries as all_entries
from pendo_webhooks.testing.storage_contract import _bump as bump
from pendo_webhooks.testing.storage_contract import _entry as entry
from pendo_webhooks.testing.storage_contract import _make_segment as make_segment
from pendo_webhooks.testing.storage_contract import _make_webhook as make_webhook


__all__ = ["all_entries", "bump", "entry", "make_segment", "make_webhook"]


class TestWebhooks(WebhookStoreContract):
    """
    The WebhookStore contract, on every backend.
    """


class TestAudit(AuditStoreContract):
    """
    The AuditStore contract, on every backend.
    """


def test_bad_audit_query_values_name_the_field() -> None:
    """
    A query with a bad limit or a naive datetime raises ValidationError naming the field.
    """
    for kwargs, field in [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"limit": True}, "limit"),
        ({"since": datetime(2026, 1, 1)}, "since"),
        ({"until": "yesterday"}, "until"),
    ]:
        with pytest.raises(ValidationError) as info:
            AuditQuery(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
