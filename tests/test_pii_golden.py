"""
Golden bodies of filtered payloads: every event type, both channels, exact bytes.

Each event type's sample goes through the real enqueue path to a URL webhook and to a
Segment webhook, each with the PII filters of :data:`FILTERS` for that type and the hash
key :data:`KEY`; the stored bytes must equal ``tests/data/filtered/<channel>/<type>.json``
byte for byte.

To regenerate the files after a deliberate change, run::

    PENDO_WEBHOOKS_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_pii_golden.py --no-cov

and review the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pendo_webhooks.channels import SegmentChannel
from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import EventCategory
from pendo_webhooks.formatters import SegmentFormatter
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.signing import Secret
from pendo_webhooks.storage import InMemoryStorage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event


GOLDEN = Path(__file__).parent / "data" / "filtered"
REGENERATE = os.environ.get("PENDO_WEBHOOKS_REGENERATE_GOLDEN") == "1"
ADMIN = Actor("u-1", is_admin=True)
#: The hash key of every golden webhook.
KEY = "pii_golden-key"

_GUIDE = (
    "hash:visitorId",
    "drop:userAgent",
    "hash:accountId",
    "drop:properties.guideProperties.createdByUser",
    "hash:properties.guideProperties.lastUpdatedByUser.username",
    "drop:properties.guideProperties.steps.resetAt",
)

#: The filters of each event type's golden webhooks.
FILTERS: dict[EventCategory, tuple[str, ...]] = {
    EventCategory.GUIDE_DISPLAYED: _GUIDE,
    EventCategory.NPS_DISPLAYED: _GUIDE,
    EventCategory.POLL_DISPLAYED: _GUIDE,
    EventCategory.NPS_SUBMITTED: (*_GUIDE, "drop:properties.nps.reason"),
    EventCategory.POLL_SUBMITTED: (*_GUIDE, "hash:properties.poll.response"),
    EventCategory.TRACK_EVENT_RECEIVED: (
        "hash:visitorId",
        "drop:userAgent",
        "hash:properties.eventProperties.fromTier",
        "drop:properties.eventProperties.toTier",
        "drop:app.name",
    ),
    EventCategory.VISITOR_CREATED: (
        "hash:visitorId",
        "hash:userAgent",
        "drop:properties.browserName",
        "drop:properties.sampleGroup",
    ),
    EventCategory.ACCOUNT_CREATED: ("hash:accountId", "drop:subscription", "drop:app"),
    EventCategory.PARENT_CHILD_ACCOUNT_CREATED: (
        "hash:accountId",
        "hash:properties.parentAccountId",
        "hash:properties.childAccountId",
        "hash:visitorId",
    ),
}


def stored_body(category: EventCategory, kind: str) -> bytes:
    """
    The bytes the enqueue path stores for *category*'s sample to a filtered *kind* webhook.
    """
    storage = InMemoryStorage()
    registry = WebhookRegistry(storage, clock=FrozenClock(), hash_keys=lambda: Secret(KEY))
    destination = (
        {"url": "https://hooks.example.com/in"}
        if kind == "url"
        else {"kind": "segment", "write_key": "wk-golden"}
    )
    hook = registry.create(
        ADMIN, name="Golden", categories=[category], filters=FILTERS[category], **destination
    )
    registry.enable(ADMIN, hook.id)
    # The golden files' library version, so a release does not move them.
    segment = SegmentChannel(formatter=SegmentFormatter(library_version="1.0.0"))
    with Dispatcher(
        registry, storage, transport=RecordingTransport(), channels={"segment": segment}
    ) as dispatcher:
        (result,) = dispatcher.enqueue_many([sample_event(category)])
    (outcome,) = result.outcomes
    assert outcome.delivery_id is not None, outcome
    return storage.get_delivery(outcome.delivery_id).body


def test_every_event_type_has_golden_filters() -> None:
    """
    The table covers every event type.
    """
    assert set(FILTERS) == set(EventCategory)


@pytest.mark.parametrize("kind", ["url", "segment"])
@pytest.mark.parametrize("category", list(EventCategory), ids=str)
def test_filtered_body_matches_its_golden_file(category: EventCategory, kind: str) -> None:
    """
    The stored (signed, sent) bytes of a filtered delivery are the golden file's, exactly.
    """
    path = GOLDEN / kind / f"{category.value}.json"
    body = stored_body(category, kind)
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    assert body == path.read_bytes()


@pytest.mark.parametrize("kind", ["url", "segment"])
@pytest.mark.parametrize("category", list(EventCategory), ids=str)
def test_golden_files_show_every_filter_at_work(category: EventCategory, kind: str) -> None:
    """
    In each golden body, dropped fields are gone and hashed ones are 64 hex characters.
    """
    message = json.loads((GOLDEN / kind / f"{category.value}.json").read_bytes())
    wire_to_message = {
        "visitorId": ("userId",),
        "accountId": ("context", "groupId"),
        "userAgent": ("context", "userAgent"),
        "app": ("context", "pendo", "app"),
        "subscription": ("context", "pendo", "subscription"),
    }
    for text in FILTERS[category]:
        action, path = text.split(":", 1)
        keys = path.split(".")
        if kind == "segment" and keys[0] in wire_to_message:
            keys = [*wire_to_message[keys[0]], *keys[1:]]
        parent = message
        for key in keys[:-1]:
            parent = parent.get(key, {}) if isinstance(parent, dict) else parent
        items = parent if isinstance(parent, list) else [parent]
        for item in items:
            if action == "drop":
                assert keys[-1] not in item, text
            else:
                for part in item[keys[-1]].split("::"):  # a parent-child id: part by part
                    assert len(part) == 64, text
                    int(part, 16)
