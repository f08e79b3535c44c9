"""
The Segment batch path's shortcuts give exactly what the general ways give.

* ``fresh_delivery`` (planning's positional builder) builds the ``Delivery`` the checked
  constructor builds;
* ``settled_batch`` (one outcome per row a batch's deliveries share, copied per delivery)
  returns the outcomes settling each delivery returns, lost leases included;
* the bulk enqueue's short INSERT for new deliveries (9 values bound, the rest constants)
  stores row for row what the full INSERT stores, and reports the same skips.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pendo_webhooks.dispatcher import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Dispatcher,
    Outcome,
    _deliver,
)
from pendo_webhooks.dispatcher._attempt import Exchange
from pendo_webhooks.dispatcher._deliver_outcome import settled, settled_batch
from pendo_webhooks.events import EventCategory, new_unique_id
from pendo_webhooks.exceptions import ConflictError
from pendo_webhooks.model._delivery import fresh_delivery, trusted_delivery
from pendo_webhooks.model._outcomes import DeliveryOutcome
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.storage import SQLiteStorage, _sqlite_bulk
from pendo_webhooks.storage._outbox_protocol import EnqueueSkip
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import OutgoingRequest


ADMIN = Actor("u-1", is_admin=True)
T0 = datetime(2026, 1, 1, 12, 30, 45, 123_000, tzinfo=timezone.utc)
PLUS_TWO = timezone(timedelta(hours=2))
FAST = RetryPolicy(schedule=[5, 30], jitter=0)


# ---------------------------------------------------------------------------------------
# Planning's builder


class TestFreshDelivery:
    @pytest.mark.parametrize(
        ("owner", "until"),
        [(None, None), ("me", T0 + timedelta(seconds=30))],
        ids=["unclaimed", "claimed"],
    )
    def test_equals_the_checked_constructor(self, owner: str | None, until: Any) -> None:
        """
        Claimed or not, times in another offset: the same Delivery as Delivery(...) and
        trusted_delivery(...) build, times in UTC.
        """
        now = datetime(2026, 1, 1, 14, 30, tzinfo=PLUS_TWO)
        due = until or now
        values: dict[str, Any] = {
            "id": "dlv_1",
            "webhook_id": "wh_1",
            "event_id": "f961",
            "category": EventCategory.TRACK_EVENT_RECEIVED,
            "body": b'{"a": 1}',
            "next_attempt_at": due,
            "created_at": now,
            "updated_at": now,
            "lease_owner": owner,
            "lease_until": until,
        }
        built = fresh_delivery(
            "dlv_1",
            "wh_1",
            "f961",
            EventCategory.TRACK_EVENT_RECEIVED,
            b'{"a": 1}',
            due,
            now,
            owner,
            until,
        )
        assert built == Delivery(**values)
        assert built == trusted_delivery(**values)
        assert built.created_at.tzinfo is timezone.utc
        assert built.next_attempt_at.tzinfo is timezone.utc
        assert built.status is DeliveryStatus.PENDING
        assert (built.attempts, built.attempt_base, built.purged) == (0, 0, False)


# ---------------------------------------------------------------------------------------
# One outcome per shared row


def reference(
    batch: Sequence[Delivery],
    rows: Sequence[tuple[Delivery, Attempt | None]],
    written: Sequence[bool],
    sent: Exchange,
    lost: Callable[[Delivery], DeliveryOutcome],
) -> list[DeliveryOutcome]:
    """What the Deliverer returned before settled_batch: settled() per delivery."""
    return [
        settled(before, after, attempt, sent) if ok else lost(before)
        for before, (after, attempt), ok in zip(batch, rows, written, strict=True)
    ]


@pytest.fixture(name="checked")
def _checked(monkeypatch: pytest.MonkeyPatch) -> list[list[DeliveryOutcome]]:
    """
    Every settled_batch call the Deliverer makes, checked against the reference on the
    same values; the outcomes of each call, in order.
    """
    seen: list[list[DeliveryOutcome]] = []

    def spy(
        batch: Sequence[Delivery],
        rows: Sequence[tuple[Delivery, Attempt | None]],
        written: Sequence[bool],
        sent: Exchange,
        lost: Callable[[Delivery], DeliveryOutcome],
    ) -> list[DeliveryOutcome]:
        got = settled_batch(batch, rows, written, sent, lost)
        assert got == reference(batch, rows, written, sent, lost)
        assert [o.delivery_id for o in got] == [d.id for d in batch]
        assert [o.webhook_id for o in got] == [d.webhook_id for d in batch]
        seen.append(got)
        return got

    monkeypatch.setattr(_deliver, "settled_batch", spy)
    return seen


def segment_hook(storage: SQLiteStorage, clock: FrozenClock) -> Webhook:
    """An enabled Segment webhook in *storage*, subscribed to everything."""
    registry = WebhookRegistry(storage, clock=clock)
    hook = registry.create(
        ADMIN, name="Segment", kind="segment", write_key="wk", categories=list(EventCategory)
    )
    return registry.enable(ADMIN, hook.id)


def dispatcher_for(
    storage: SQLiteStorage, clock: FrozenClock, transport: RecordingTransport
) -> Dispatcher:
    return Dispatcher(
        WebhookRegistry(storage, clock=clock),
        transport=transport,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
        retry=FAST,
    )


def events(n: int, category: str = "trackEventReceived") -> list[Any]:
    return [sample_event(category, unique_id=new_unique_id()) for _ in range(n)]


class PlainSQLite(SQLiteStorage):
    """A SQLiteStorage without the set-based outcomes: a row per delivery, none shared."""

    record_shared_outcomes = None  # type: ignore[assignment]


class TestSettledBatch:
    @pytest.mark.parametrize("store_class", [SQLiteStorage, PlainSQLite])
    def test_mixed_attempt_numbers(
        self,
        tmp_path: Path,
        checked: list[list[DeliveryOutcome]],
        store_class: type[SQLiteStorage],
    ) -> None:
        """
        A batch of retried deliveries (attempt 2) and new ones (attempt 1): two shared
        rows (or none shared, without the fast path), each delivery its own outcome.
        """
        clock = FrozenClock(T0)
        with store_class(tmp_path / "mixed.sqlite3") as store:
            segment_hook(store, clock)
            transport = RecordingTransport([503, 200])
            dispatcher = dispatcher_for(store, clock, transport)
            dispatcher.dispatch_many(events(3))
            clock.advance(10)
            dispatcher.dispatch_many(events(2, "accountCreated"))
        assert len(transport.requests) == 2
        first, second = checked
        assert [o.outcome for o in first] == [Outcome.RETRY] * 3
        assert len({o.delivery_id for o in first}) == 3
        assert sorted(o.attempt or 0 for o in second) == [1, 1, 2, 2, 2]
        assert {o.outcome for o in second} == {Outcome.DELIVERED}

    @pytest.mark.parametrize(
        ("status", "outcome"), [(400, Outcome.FAILED), (503, Outcome.RETRY)], ids=["4xx", "5xx"]
    )
    def test_an_error_batch(
        self,
        tmp_path: Path,
        checked: list[list[DeliveryOutcome]],
        status: int,
        outcome: Outcome,
    ) -> None:
        """
        A 4xx (failed, finished) and a 5xx (retried, with its next attempt's time) batch.
        """
        clock = FrozenClock(T0)
        with SQLiteStorage(tmp_path / "error.sqlite3") as store:
            segment_hook(store, clock)
            dispatcher_for(store, clock, RecordingTransport([status])).dispatch_many(events(4))
        (got,) = checked
        assert [o.outcome for o in got] == [outcome] * 4
        assert {o.status_code for o in got} == {status}
        assert len({id(o) for o in got}) == 4
        retried = outcome is Outcome.RETRY
        assert all((o.next_attempt_at is not None) is retried for o in got)

    def test_a_cancelled_delivery(
        self, tmp_path: Path, checked: list[list[DeliveryOutcome]]
    ) -> None:
        """
        Deliveries cancelled while their batch is on the wire are reported as the store
        has them (lost), the others as settled.
        """
        clock = FrozenClock(T0)
        with SQLiteStorage(tmp_path / "cancel.sqlite3") as store:
            hook = segment_hook(store, clock)
            planned = events(3)
            victim: list[str] = []

            def cancel_one(_: OutgoingRequest) -> None:
                # The first event's delivery only: the rest of the batch stays leased.
                found = store.list_deliveries(limit=10)
                target = next(d for d in found if d.event_id == planned[0].unique_id)
                victim.append(target.id)
                with sqlite3.connect(tmp_path / "cancel.sqlite3") as conn:
                    conn.execute(
                        "UPDATE deliveries SET status = 'cancelled', lease_owner = NULL,"
                        " lease_until = NULL, finished_at = updated_at WHERE id = ?",
                        (target.id,),
                    )
                conn.close()

            transport = RecordingTransport(on_send=cancel_one)
            dispatcher_for(store, clock, transport).dispatch_many(planned)
        (got,) = checked
        by_id = {o.delivery_id: o for o in got}
        assert by_id[victim[0]].outcome is Outcome.CANCELLED
        assert [o.outcome for o in got].count(Outcome.DELIVERED) == 2
        assert all(o.webhook_id == hook.id for o in got)


# ---------------------------------------------------------------------------------------
# The bulk enqueue's short INSERT


@pytest.fixture(name="seeded")
def _seeded(tmp_path: Path) -> tuple[Path, list[str]]:
    """A store file with two enabled Segment webhooks and one disabled; their ids."""
    path = tmp_path / "seed.sqlite3"
    with SQLiteStorage(path) as store:
        clock = FrozenClock(T0)
        registry = WebhookRegistry(store, clock=clock)
        ids = [segment_hook(store, clock).id, segment_hook(store, clock).id]
        off = registry.create(
            ADMIN, name="Off", kind="segment", write_key="wk", categories=list(EventCategory)
        )
        ids.append(off.id)
    return path, ids


def delivery(webhook_id: str, **changes: Any) -> Delivery:
    """A new delivery to *webhook_id*, with *changes*."""
    values: dict[str, Any] = {
        "id": f"dlv_{new_unique_id()[:16]}",
        "webhook_id": webhook_id,
        "event_id": new_unique_id(),
        "category": EventCategory.TRACK_EVENT_RECEIVED,
        "body": b'{"type": "track"}',
        "next_attempt_at": T0,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(changes)
    return Delivery(**values)


def both_ways(
    seed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *calls: Sequence[Delivery]
) -> tuple[list[Any], list[Any], list[bool]]:
    """
    Enqueue *calls* in turn into two copies of *seed*: as the store does, and with the
    short INSERT never used. Returns each way's results and every stored row (all columns),
    and, per call, whether the short INSERT was used.
    """
    shortcut = _sqlite_bulk._fresh_rows
    used: list[bool] = []

    def spy(deliveries: Sequence[Delivery], iso: Any) -> Any:
        rows = shortcut(deliveries, iso)
        used.append(rows is not None)
        return rows

    results: list[Any] = []
    for name, fresh_rows in (("short", spy), ("full", lambda *_: None)):
        path = tmp_path / f"{name}.sqlite3"
        shutil.copy(seed, path)
        monkeypatch.setattr(_sqlite_bulk, "_fresh_rows", fresh_rows)
        with SQLiteStorage(path) as store:
            outcomes: list[Any] = []
            for call in calls:
                try:
                    outcomes.append(store.enqueue_deliveries(call))
                except ConflictError as exc:
                    outcomes.append(type(exc))
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT * FROM deliveries ORDER BY id").fetchall()
        results.append((outcomes, rows))
    (short, short_rows), (full, full_rows) = results
    assert short == full
    assert short_rows == full_rows
    return short, short_rows, used


class TestFreshInsert:
    def test_new_deliveries_unclaimed_and_claimed(
        self, seeded: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        New deliveries, to two webhooks, some leased to a worker (counted as a claim):
        the short INSERT stores the same rows.
        """
        seed, (a, b, _) = seeded
        until = T0 + timedelta(seconds=30)
        later = datetime(2026, 1, 1, 15, 0, tzinfo=PLUS_TWO)
        call = [
            delivery(a),
            delivery(b, next_attempt_at=later),
            delivery(a, lease_owner="me", lease_until=until, next_attempt_at=until),
            delivery(b, lease_owner="me", lease_until=until, next_attempt_at=until),
            delivery(a, category=EventCategory.ACCOUNT_CREATED, body=b""),
        ]
        results, rows, used = both_ways(seed, tmp_path, monkeypatch, call)
        assert used == [True]
        assert results == [[None] * 5]
        assert len(rows) == 5
        claims = {row[0]: row[-1] for row in rows}
        assert [claims[d.id] for d in call] == [0, 0, 1, 1, 0]

    @pytest.mark.parametrize(
        "changes",
        [
            {
                "status": DeliveryStatus.FAILED,
                "last_error": "message too large",
                "finished_at": T0,
            },
            {"status": DeliveryStatus.FAILED},
            {"attempts": 1},
            {"attempt_base": 1},
            {"last_status": 503},
            {"last_error": "HTTP 503"},
            {"purged": True},
            {"updated_at": T0 + timedelta(seconds=1)},
            {"finished_at": T0},
            {"redelivered_at": T0},
        ],
        ids=lambda c: "-".join(sorted(c)),
    )
    def test_anything_not_new_takes_the_full_insert(
        self,
        seeded: tuple[Path, list[str]],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        changes: dict[str, Any],
    ) -> None:
        """
        One delivery that is not a new one (the first is refused and stored finished by
        planning): the whole call takes the full INSERT, with the same rows.
        """
        seed, (a, _, _) = seeded
        call = [delivery(a), delivery(a, **changes), delivery(a)]
        results, rows, used = both_ways(seed, tmp_path, monkeypatch, call)
        assert used == [False]
        assert results == [[None] * 3]
        assert len(rows) == 3

    def test_duplicates_are_skipped_and_reported_alike(
        self, seeded: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        An event stored already, and one twice in a call: ON CONFLICT skips them in both
        forms, reported as duplicates, the first kept.
        """
        seed, (a, b, _) = seeded
        stored = delivery(a)
        twice = delivery(b)
        second = [
            delivery(a, event_id=stored.event_id),
            twice,
            delivery(b, event_id=twice.event_id, body=b"other"),
            delivery(a),
        ]
        results, rows, used = both_ways(seed, tmp_path, monkeypatch, [stored, delivery(b)], second)
        assert used == [True, True]
        assert results == [
            [None, None],
            [EnqueueSkip.DUPLICATE, None, EnqueueSkip.DUPLICATE, None],
        ]
        assert len(rows) == 4

    def test_a_disabled_webhook_falls_back_alike(
        self, seeded: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        A call naming a disabled webhook is stored row by row (each INSERT's EXISTS), in
        either form: its delivery skipped as disabled, the others stored.
        """
        seed, (a, _, off) = seeded
        call = [delivery(a), delivery(off), delivery(a)]
        results, rows, used = both_ways(seed, tmp_path, monkeypatch, call)
        assert used == []  # the bulk path was not taken at all
        assert results == [[None, EnqueueSkip.DISABLED, None]]
        assert len(rows) == 2

    def test_a_taken_delivery_id_undoes_the_call_alike(
        self, seeded: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        A delivery id already taken: the short INSERT's savepoint is undone and the call
        fails as the full INSERT's does, storing nothing of it.
        """
        seed, (a, b, _) = seeded
        first = delivery(a)
        taken = delivery(b, id=first.id)
        results, rows, used = both_ways(
            seed, tmp_path, monkeypatch, [first, delivery(b)], [delivery(a), taken]
        )
        assert used == [True, True]
        assert results[1] is ConflictError
        assert len(rows) == 2
