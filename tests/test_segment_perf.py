"""
The Segment hot path's shortcuts give exactly what the checked, row-by-row ways give.

* ``trusted_delivery``/``evolved``/``trusted_attempt`` build the same records as the public
  constructors and :func:`attrs.evolve` (datetimes still normalized to UTC);
* ``SQLiteStorage.record_shared_outcomes`` (one fenced ``UPDATE ... WHERE id IN`` per group
  of deliveries sharing an outcome) writes what ``record_outcomes`` writes, lease by lease;
* the Dispatcher uses it for Segment batches when the store has it, and falls back to
  ``record_outcomes`` otherwise, with the same outcomes and the same rows either way.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendo_webhooks.dispatcher import Attempt, Delivery, DeliveryStatus, Dispatcher, Outcome
from pendo_webhooks.events import EventCategory, new_unique_id
from pendo_webhooks.exceptions import ValidationError
from pendo_webhooks.model._delivery import evolved, trusted_attempt, trusted_delivery
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy, Verdict
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import OutgoingRequest


ADMIN = Actor("u-1", is_admin=True)
T0 = datetime(2026, 1, 1, 12, 30, 45, 123_000, tzinfo=timezone.utc)
PLUS_TWO = timezone(timedelta(hours=2))
FAST = RetryPolicy(schedule=[5, 30], jitter=0)


def fields(**overrides: Any) -> dict[str, Any]:
    """A delivery's fields, already of the right types."""
    values: dict[str, Any] = {
        "id": f"dlv_{new_unique_id()[:12]}",
        "webhook_id": "wh_1",
        "event_id": new_unique_id(),
        "category": EventCategory.TRACK_EVENT_RECEIVED,
        "body": b"{}",
        "next_attempt_at": T0,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return values


def attempt_fields(**overrides: Any) -> dict[str, Any]:
    """An attempt's fields, already of the right types."""
    values: dict[str, Any] = {
        "delivery_id": "dlv_1",
        "number": 1,
        "exchange_id": "exc_1",
        "started_at": T0,
        "duration": 0.25,
        "status_code": 200,
        "verdict": Verdict.DELIVERED,
        "reason": "HTTP 200",
    }
    values.update(overrides)
    return values


aware = st.datetimes(
    min_value=datetime(2000, 1, 2),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([timezone.utc, PLUS_TWO, timezone(timedelta(hours=-7))]),
)


class TestTrustedRecords:
    def test_trusted_delivery_equals_the_checked_constructor(self) -> None:
        """
        Every field given, times in another offset: the same Delivery, times in UTC.
        """
        later = datetime(2026, 1, 1, 15, 0, tzinfo=PLUS_TWO)
        values = fields(
            status=DeliveryStatus.PENDING,
            attempts=2,
            attempt_base=1,
            next_attempt_at=later,
            last_status=503,
            last_error="HTTP 503",
            lease_owner="me",
            lease_until=later,
            finished_at=later,
            redelivered_at=later,
            purged=True,
        )
        built = trusted_delivery(**values)
        assert built == Delivery(**values)
        assert built.next_attempt_at.tzinfo is timezone.utc
        assert built.lease_until == later
        assert built.lease_until.tzinfo is timezone.utc

    def test_trusted_delivery_defaults_match(self) -> None:
        """
        Left out, the optional fields take the constructor's defaults.
        """
        values = fields()
        assert trusted_delivery(**values) == Delivery(**values)

    @given(changed=aware, finished=st.one_of(st.none(), aware))
    def test_evolved_equals_attrs_evolve(self, changed: datetime, finished: datetime) -> None:
        """
        evolved() gives attrs.evolve's record for any aware times (normalized to UTC), and
        leaves the original as it was.
        """
        original = Delivery(**fields(lease_owner="me", lease_until=T0))
        changes: dict[str, Any] = {
            "status": DeliveryStatus.DELIVERED,
            "attempts": 1,
            "next_attempt_at": changed,
            "finished_at": finished,
            "lease_owner": None,
            "lease_until": None,
        }
        assert evolved(original, **changes) == attrs.evolve(original, **changes)
        assert original.lease_owner == "me"

    def test_evolved_refuses_an_unknown_field(self) -> None:
        """
        A change naming no field is a ValidationError naming it, as attrs.evolve refuses it.
        """
        with pytest.raises(ValidationError) as info:
            evolved(Delivery(**fields()), stauts=DeliveryStatus.DELIVERED)
        assert info.value.field == "stauts"

    def test_trusted_attempt_equals_the_checked_constructor(self) -> None:
        """
        An attempt with an error instead of a status, started in another offset: the same.
        """
        values = attempt_fields(
            started_at=datetime(2026, 1, 1, 14, 0, tzinfo=PLUS_TWO),
            status_code=None,
            error_kind="timeout",
            detail="read timed out",
            response_excerpt=b"partial",
            verdict=Verdict.RETRY,
            reason="timeout, retry 1 of 2 in 5s",
        )
        built = trusted_attempt(**values)
        assert built == Attempt(**values)
        assert built.started_at.tzinfo is timezone.utc


# ---------------------------------------------------------------------------------------
# The store's set-based fast path


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(tmp_path / "perf.sqlite3") as storage:
        yield storage


def enabled_hook(storage: SQLiteStorage, clock: FrozenClock | None = None) -> Webhook:
    """An enabled Segment webhook in *storage*, subscribed to everything."""
    registry = WebhookRegistry(storage, clock=clock or FrozenClock(T0))
    hook = registry.create(
        ADMIN, name="Segment", kind="segment", write_key="wk", categories=list(EventCategory)
    )
    return registry.enable(ADMIN, hook.id)


def claimed(storage: SQLiteStorage, hook: Webhook, n: int, owner: str = "me") -> list[Delivery]:
    """Store *n* deliveries for *hook* and claim them all as *owner*."""
    storage.enqueue_deliveries([Delivery(**fields(webhook_id=hook.id)) for _ in range(n)])
    until = T0 + timedelta(seconds=60)
    return storage.claim_due(owner=owner, now=T0, lease_until=until, limit=n)


def delivered(delivery: Delivery, number: int = 1) -> tuple[Delivery, Attempt]:
    """*delivery* delivered at T0 by its attempt *number*, and that attempt's row."""
    after = attrs.evolve(
        delivery,
        status=DeliveryStatus.DELIVERED,
        attempts=number,
        last_status=200,
        finished_at=T0,
        lease_owner=None,
        lease_until=None,
    )
    return after, Attempt(**attempt_fields(delivery_id=delivery.id, number=number))


class TestRecordShared:
    def test_writes_every_delivery_and_an_attempt_row_each(self, store: SQLiteStorage) -> None:
        """
        One group: every delivery gets the outcome's state and its own copy of the attempt.
        """
        hook = enabled_hook(store)
        mine = claimed(store, hook, 3)
        after, attempt = delivered(mine[0])
        ids = [d.id for d in mine]
        assert store.record_shared_outcomes([(ids, after, attempt)], owner="me", now=T0) == set(
            ids
        )
        for delivery in mine:
            now = store.get_delivery(delivery.id)
            assert now == attrs.evolve(after, id=delivery.id, event_id=delivery.event_id)
            assert store.list_attempts(delivery.id) == [
                attrs.evolve(attempt, delivery_id=delivery.id)
            ]

    def test_is_fenced_per_delivery(self, store: SQLiteStorage) -> None:
        """
        A delivery whose lease was lost (released, or held by another owner) is not
        written and gets no attempt row; the others in its group are.
        """
        hook = enabled_hook(store)
        mine = claimed(store, hook, 3)
        theirs = claimed(store, hook, 1, owner="them")
        store.release_claims([mine[1].id], owner="me", now=T0)
        after, attempt = delivered(mine[0])
        ids = [d.id for d in [*mine, *theirs]]
        written = store.record_shared_outcomes([(ids, after, attempt)], owner="me", now=T0)
        assert written == {mine[0].id, mine[2].id}
        for lost in (mine[1], theirs[0]):
            assert store.get_delivery(lost.id).status is DeliveryStatus.PENDING
            assert store.list_attempts(lost.id) == []

    def test_groups_and_no_attempt(self, store: SQLiteStorage) -> None:
        """
        Several groups go in one call, each with its own outcome; a group without an
        attempt (a cancellation) writes the state only.
        """
        hook = enabled_hook(store)
        mine = claimed(store, hook, 2)
        done, attempt = delivered(mine[0])
        cancelled = attrs.evolve(
            mine[1],
            status=DeliveryStatus.CANCELLED,
            last_error="webhook disabled",
            finished_at=T0,
            lease_owner=None,
            lease_until=None,
        )
        groups = [([mine[0].id], done, attempt), ([mine[1].id], cancelled, None)]
        assert store.record_shared_outcomes(groups, owner="me", now=T0) == {d.id for d in mine}
        assert store.get_delivery(mine[1].id) == cancelled
        assert store.list_attempts(mine[1].id) == []
        assert store.get_delivery(mine[0].id).status is DeliveryStatus.DELIVERED

    def test_a_group_with_nothing_held_writes_nothing(self, store: SQLiteStorage) -> None:
        """
        A group none of whose leases is held writes no state and no attempt row.
        """
        hook = enabled_hook(store)
        (lost,) = claimed(store, hook, 1, owner="them")
        after, attempt = delivered(lost)
        assert store.record_shared_outcomes([([lost.id], after, attempt)], owner="me", now=T0) == (
            set()
        )
        assert store.list_attempts(lost.id) == []

    def test_more_ids_than_one_statement_takes(self, store: SQLiteStorage) -> None:
        """
        Beyond 900 ids (SQLite's parameter limit is 999 at the least) the group is split
        over several statements, all in the one transaction.
        """
        hook = enabled_hook(store)
        mine = claimed(store, hook, 1_000)
        after, attempt = delivered(mine[0])
        ids = [d.id for d in mine]
        assert store.record_shared_outcomes([(ids, after, attempt)], owner="me", now=T0) == set(
            ids
        )
        done = store.list_deliveries(status=DeliveryStatus.DELIVERED, limit=2_000)
        assert len(done) == 1_000
        assert len(store.list_attempts(mine[-1].id)) == 1

    def test_record_outcomes_groups_distinct_outcomes(self, store: SQLiteStorage) -> None:
        """
        record_outcomes (the general multi-row form) writes each delivery's own outcome
        when they differ, grouping the equal ones.
        """
        hook = enabled_hook(store)
        mine = claimed(store, hook, 3)
        rows = [delivered(mine[0]), delivered(mine[1])]
        retry = attrs.evolve(
            mine[2],
            attempts=1,
            last_status=503,
            last_error="HTTP 503",
            next_attempt_at=T0 + timedelta(seconds=5),
            lease_owner=None,
            lease_until=None,
        )
        failed = Attempt(
            **attempt_fields(
                delivery_id=mine[2].id, status_code=503, verdict=Verdict.RETRY, reason="503"
            )
        )
        rows.append((retry, failed))
        assert store.record_outcomes(rows, owner="me", now=T0) == [True, True, True]
        assert [store.get_delivery(d.id) for d, _ in rows] == [d for d, _ in rows]


# ---------------------------------------------------------------------------------------
# The dispatcher: the fast path and the fallback agree


class PlainSQLite(SQLiteStorage):
    """A SQLiteStorage without the fast path: the dispatcher falls back to record_outcomes."""

    record_shared_outcomes = None  # type: ignore[assignment]


def run_mixed(storage: SQLiteStorage) -> tuple[list[tuple[Outcome, int | None]], list[Any]]:
    """
    Dispatch 3 events (503: retried), then, once due, 2 more with the 3 in one batch (200).

    Returns the last call's outcomes (kind, attempt number) in order, and every delivery's
    state and attempt rows, ids and times left out.
    """
    clock = FrozenClock(T0)
    hook = enabled_hook(storage, clock)
    transport = RecordingTransport([503])
    dispatcher = Dispatcher(
        WebhookRegistry(storage, clock=clock),
        transport=transport,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        retry=FAST,
    )
    first = [sample_event("trackEventReceived", unique_id=new_unique_id()) for _ in range(3)]
    dispatcher.dispatch_many(first)
    clock.advance(10)
    second = [sample_event("accountCreated", unique_id=new_unique_id()) for _ in range(2)]
    results = dispatcher.dispatch_many(second)
    assert len(transport.requests) == 2
    outcomes = [
        (o.outcome, o.attempt) for r in results for o in r.outcomes if o.webhook_id == hook.id
    ]
    rows = [
        (
            d.status,
            d.attempts,
            d.last_status,
            d.finished_at,
            [(a.number, a.status_code, a.verdict, a.reason) for a in storage.list_attempts(d.id)],
        )
        for d in storage.list_deliveries(limit=100)
    ]
    return outcomes, sorted(rows, key=repr)


class TestDispatcherFastPath:
    def test_fast_path_and_fallback_agree(self, tmp_path: Path) -> None:
        """
        A batch mixing retried deliveries (attempt 2) with new ones (attempt 1) gets the
        same outcomes and the same stored rows through either path.
        """
        with SQLiteStorage(tmp_path / "fast.sqlite3") as fast:
            fast_result = run_mixed(fast)
        with PlainSQLite(tmp_path / "plain.sqlite3") as plain:
            plain_result = run_mixed(plain)
        assert fast_result == plain_result
        outcomes, rows = fast_result
        assert outcomes == [(Outcome.DELIVERED, 1)] * 2
        assert sorted(len(attempts) for *_, attempts in rows) == [1, 1, 2, 2, 2]
        assert all(status is DeliveryStatus.DELIVERED for status, *_ in rows)

    def test_fast_path_is_used_when_the_store_has_it(
        self, store: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        On SQLite a Segment batch's outcomes go through record_shared_outcomes, once per
        batch, and record_outcomes is not called.
        """
        calls: list[int] = []
        original = store.record_shared_outcomes

        def spy(groups: Any, **kwargs: Any) -> set[str]:
            calls.append(sum(len(ids) for ids, _, _ in groups))
            return original(groups, **kwargs)

        def refuse(*_: object, **__: object) -> list[bool]:
            raise AssertionError("record_outcomes called")

        monkeypatch.setattr(store, "record_shared_outcomes", spy)
        monkeypatch.setattr(store, "record_outcomes", refuse)
        clock = FrozenClock(T0)
        enabled_hook(store, clock)
        dispatcher = Dispatcher(
            WebhookRegistry(store, clock=clock), transport=RecordingTransport(), clock=clock
        )
        events = [sample_event("trackEventReceived", unique_id=new_unique_id()) for _ in range(4)]
        results = dispatcher.dispatch_many(events)
        assert calls == [4]
        assert all(r.all_delivered for r in results)

    def test_a_lease_lost_in_flight_is_reported_not_written(self, store: SQLiteStorage) -> None:
        """
        Deliveries cancelled while their batch is on the wire keep the cancellation: the
        fast path does not write over it, and reports them as the store has them.
        """
        clock = FrozenClock(T0)
        hook = enabled_hook(store, clock)

        def cancel(_: OutgoingRequest) -> None:
            store.cancel_deliveries(hook.id, reason="webhook disabled", now=clock())

        dispatcher = Dispatcher(
            WebhookRegistry(store, clock=clock),
            transport=RecordingTransport(on_send=cancel),
            clock=clock,
        )
        events = [sample_event("trackEventReceived", unique_id=new_unique_id()) for _ in range(2)]
        results = dispatcher.dispatch_many(events)
        outcomes = [r.for_webhook(hook.id) for r in results]
        assert [o.outcome for o in outcomes] == [Outcome.CANCELLED] * 2
        assert [o.reason for o in outcomes] == ["webhook disabled"] * 2
        for outcome in outcomes:
            assert outcome.delivery_id is not None
            assert store.list_attempts(outcome.delivery_id) == []
