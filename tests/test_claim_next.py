"""
The chained claim is an explicit value: what ``_record`` claimed is never stranded.

``test_chained_claims`` covers the store and the runner; this covers the one corner the
explicit ``ClaimNext`` value adds: a bug after the outcome and the next claim were written
gives that claim back at once, so the runner still attempts it (it used to find it through
a thread-local flag).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pendo_webhooks.dispatcher import DeliveryStatus, Outcome
from pendo_webhooks.registry import WebhookRegistry
from pendo_webhooks.storage import Storage

from .conftest import STORAGE_BACKENDS
from .test_chained_claims import queued
from .test_dispatcher import make_world


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> Iterator[Storage]:
    with STORAGE_BACKENDS["sqlite"](tmp_path) as storage:
        yield storage


def test_a_bug_after_the_chained_claim_gives_the_claim_back(
    store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(store)
    dispatcher, ids = queued(world, 2)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError

    # A 410 makes _record disable the webhook after the write; that step failing is a bug.
    monkeypatch.setattr(WebhookRegistry, "disable_by_system", broken)
    world.answer(410, 200)
    outcomes = dispatcher.run_due(limit=5)
    assert [o.outcome for o in outcomes] == [Outcome.PENDING, Outcome.DELIVERED]
    assert len(world.transport.requests) == 2
    second = store.get_delivery(ids[1])
    assert (second.status, second.lease_owner) == (DeliveryStatus.DELIVERED, None)
