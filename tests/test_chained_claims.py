"""
A one-thread worker records an outcome and claims its next delivery in one transaction.

``record_outcome_and_claim`` (SQLite and PostgreSQL) saves a transaction per delivery; what the
runner promises must not change: a claim is never older than its attempt, a worker
never holds more than one claim, and whatever it claimed but did not start (it was
stopped, or its budget was spent) is released at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pendo_webhooks.dispatcher import Attempt, Delivery, DeliveryStatus, Dispatcher, Outcome
from pendo_webhooks.storage import InMemoryStorage
from pendo_webhooks.testing import RecordingTransport

from .conftest import STORAGE_BACKENDS
from .test_dispatcher import ADMIN, World, event, make_world
from .test_outbox_contract import LEASE, T0, attempt_for, claim, delivery, finished, hook


@pytest.fixture(name="store", params=["sqlite", "postgres"])
def _store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """
    The backends that can record an outcome and claim the next delivery in one go.
    """
    with STORAGE_BACKENDS[request.param](tmp_path) as storage:
        yield storage


class Calls:
    """
    Counts calls to some of a store's methods, passing them through.
    """

    def __init__(self, store: Any, *names: str) -> None:
        self.counts = dict.fromkeys(names, 0)
        for name in names:
            original = getattr(store, name)

            def spy(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
                self.counts[_name] += 1
                return _original(*args, **kw)

            setattr(store, name, spy)


def queued(world: World, n: int) -> tuple[Dispatcher, list[str]]:
    world.hook()
    dispatcher = world.dispatcher()
    ids = []
    for _ in range(n):
        result = dispatcher.enqueue(event())
        (outcome,) = result.outcomes
        assert outcome.delivery_id is not None
        ids.append(outcome.delivery_id)
    return dispatcher, ids


NOW = T0 + timedelta(seconds=1)


def first_claimed(store: Any) -> tuple[Delivery, Delivery]:
    """
    Two deliveries queued, the first claimed by "w1": (claimed, the other).
    """
    webhook = hook(store)
    first, second = delivery(webhook.id), delivery(webhook.id)
    store.enqueue_deliveries([first, second])
    (claimed,) = claim(store, limit=1)
    return claimed, second


def delivered_and_next(
    store: Any, claimed: Delivery, attempt: Attempt | None, owner: str
) -> tuple[bool, list[Delivery]]:
    found: tuple[bool, list[Delivery]] = store.record_outcome_and_claim(
        finished(claimed, DeliveryStatus.DELIVERED, NOW),
        attempt,
        owner=owner,
        now=NOW,
        lease_until=NOW + LEASE,
    )
    return found


class TestStore:
    def test_records_then_claims_the_next_due(self, store: Any) -> None:
        """
        One call: the outcome and its attempt row are written, the next one is leased.
        """
        claimed, second = first_claimed(store)
        written, following = delivered_and_next(store, claimed, attempt_for(claimed), "w1")
        assert written
        assert [d.id for d in following] == [second.id]
        assert following[0].lease_owner == "w1"
        assert following[0].lease_until == NOW + LEASE
        assert store.get_delivery(claimed.id).status is DeliveryStatus.DELIVERED
        assert [a.number for a in store.list_attempts(claimed.id)] == [1]
        assert delivered_and_next(store, following[0], None, "w1") == (True, [])

    def test_a_lost_lease_writes_nothing_but_still_claims(self, store: Any) -> None:
        """
        Fenced like record_outcome: another owner's delivery is not touched.
        """
        claimed, second = first_claimed(store)
        written, following = delivered_and_next(
            store, claimed, attempt_for(claimed), "someone-else"
        )
        assert not written
        assert store.get_delivery(claimed.id).status is DeliveryStatus.PENDING
        assert store.list_attempts(claimed.id) == []
        assert [d.id for d in following] == [second.id]


class TestRunner:
    def test_drain_claims_once_then_chains(self, store: Any) -> None:
        """
        Five deliveries: one claim of its own, then each outcome claims the next.
        """
        world = make_world(store)
        dispatcher, ids = queued(world, 5)
        calls = Calls(store, "claim_due", "record_outcome_and_claim", "record_outcome")
        summary = dispatcher.drain(timeout=10)
        assert summary.delivered == 5
        assert summary.pending == 0
        assert calls.counts == {"claim_due": 1, "record_outcome_and_claim": 5, "record_outcome": 0}
        for delivery_id in ids:
            assert [a.number for a in store.list_attempts(delivery_id)] == [1]
        assert len(world.transport.requests) == 5

    def test_retries_chain_too_and_are_not_claimed_early(self, store: Any) -> None:
        """
        A 503 is recorded as a retry (due later), and the next delivery is still claimed.
        """
        world = make_world(store)
        dispatcher, ids = queued(world, 3)
        world.answer(503, 200, 200)
        outcomes = dispatcher.run_due(limit=10)
        assert [o.outcome for o in outcomes] == [
            Outcome.RETRY,
            Outcome.DELIVERED,
            Outcome.DELIVERED,
        ]
        retried = store.get_delivery(outcomes[0].delivery_id or "")
        assert retried.status is DeliveryStatus.PENDING
        assert retried.lease_owner is None
        assert retried.next_attempt_at > world.clock()
        assert sorted(o.delivery_id or "" for o in outcomes) == sorted(ids)

    def test_a_budget_leaves_the_rest_unclaimed(self, store: Any) -> None:
        """
        run_due(limit=2) with five due: two attempted, three pending and not leased.
        """
        world = make_world(store)
        dispatcher, ids = queued(world, 5)
        calls = Calls(store, "record_outcome_and_claim", "record_outcome")
        outcomes = dispatcher.run_due(limit=2)
        assert [o.outcome for o in outcomes] == [Outcome.DELIVERED] * 2
        # The last one within the budget records alone: nothing is claimed past it.
        assert calls.counts == {"record_outcome_and_claim": 1, "record_outcome": 1}
        rest = [store.get_delivery(i) for i in ids if i not in {o.delivery_id for o in outcomes}]
        assert len(rest) == 3
        assert all(d.status is DeliveryStatus.PENDING and d.lease_owner is None for d in rest)

    def test_a_stopped_worker_releases_what_it_claimed_ahead(self, store: Any) -> None:
        """
        Stopped during an attempt: that one is recorded, the one claimed with it given back.
        """
        world = make_world(store)
        stop = threading.Event()
        world.hook()
        world.transport = RecordingTransport(on_send=lambda _r: stop.set())
        dispatcher = world.dispatcher()
        ids = [dispatcher.enqueue(event()).outcomes[0].delivery_id for _ in range(3)]
        summary = dispatcher.run_worker(stop, install_signal_handlers=False)
        assert summary.counts[Outcome.DELIVERED] == 1
        assert len(world.transport.requests) == 1
        states = [store.get_delivery(i or "") for i in ids]
        assert sorted(d.status.value for d in states) == ["delivered", "pending", "pending"]
        assert all(d.lease_owner is None for d in states)

    def test_several_threads_do_not_chain(self, store: Any) -> None:
        """
        With concurrency above 1 each thread claims as it frees up, as before.
        """
        world = make_world(store)
        dispatcher, _ = queued(world, 4)
        calls = Calls(store, "record_outcome_and_claim")
        assert dispatcher.drain(timeout=10, concurrency=2).delivered == 4
        assert calls.counts == {"record_outcome_and_claim": 0}

    def test_a_cancelled_delivery_falls_back_to_a_plain_claim(self, store: Any) -> None:
        """
        An outcome recorded another way (a cancellation) claims nothing; the loop claims.
        """
        world = make_world(store)
        webhook = world.hook()
        other = world.hook(name="Other")
        dispatcher = world.dispatcher()
        for _ in range(2):
            dispatcher.enqueue(event())
        world.registry.update(ADMIN, webhook.id, categories={"guideDisplayed"})
        summary = dispatcher.drain(timeout=10)
        assert summary.counts[Outcome.CANCELLED] == 2
        assert summary.counts[Outcome.DELIVERED] == 2
        assert {r.url for r in world.transport.requests} == {other.destination}

    def test_stores_without_it_work_as_before(self) -> None:
        """
        InMemoryStorage has no record_outcome_and_claim: claims are made one by one.
        """
        world = make_world(InMemoryStorage())
        dispatcher, _ = queued(world, 3)
        assert dispatcher.drain(timeout=10).delivered == 3
