"""
The second pass over the Segment hot path gives exactly what the plain ways give.

* ``sorted_id``: ids of ``new_id``'s shape whose text order is their creation order (to
  the millisecond), so a store's indexes on them grow at one end;
* ``iso_millis``'s shortcut for UTC datetimes spells every time as the general way does;
* ``record_shared_outcomes`` writes a group's attempt rows with one ``INSERT ... SELECT``
  when every lease was held (``IN`` lists padded to a power of two), and falls back to
  ``RETURNING`` when some was not: the same rows either way;
* ``enqueue_deliveries``' bulk form spells shared times once, and stores each delivery's own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pendo_webhooks.channels._segment import iso_millis
from pendo_webhooks.dispatcher import Attempt, Delivery, DeliveryStatus
from pendo_webhooks.events import EventCategory, _ids, new_unique_id
from pendo_webhooks.events._ids import sorted_id
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.retry import Verdict
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.storage._sqlite_bulk import _padded
from pendo_webhooks.testing import FrozenClock


ADMIN = Actor("u-1", is_admin=True)
T0 = datetime(2026, 1, 1, 12, 30, 45, 123_000, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------
# sorted_id


class TestSortedId:
    def test_shape_is_new_ids(self) -> None:
        """
        The prefix, an underscore and 24 URL-safe characters, different every time.
        """
        ids = {sorted_id("dlv") for _ in range(1_000)}
        assert len(ids) == 1_000
        assert all(re.fullmatch(r"dlv_[A-Za-z0-9_-]{24}", i) for i in ids)

    @given(st.lists(st.integers(min_value=0, max_value=2**48 - 1), min_size=2, max_size=50))
    def test_time_part_sorts_as_the_times_do(self, millis: list[int]) -> None:
        """
        Encoded times compare, as text, exactly as the times compare.
        """
        texts = [_ids._time_part(m) for m in millis]
        assert all(len(t) == 8 for t in texts)
        assert sorted(texts) == [_ids._time_part(m) for m in sorted(millis)]

    def test_later_millisecond_sorts_after(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """
        Ids made in a later millisecond sort after every id of an earlier one, whatever
        their random parts.
        """
        now = [1_700_000_000_000_000_000]
        monkeypatch.setattr(_ids, "_now_ns", lambda: now[0])
        early = [sorted_id("dlv") for _ in range(50)]
        now[0] += 1_000_000  # one millisecond
        late = [sorted_id("dlv") for _ in range(50)]
        assert max(early) < min(late)
        assert {i[4:12] for i in early} == {_ids._time_part(1_700_000_000_000)}

    def test_each_thread_keeps_its_own_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """
        The spelled time is memoized per thread: another thread in another millisecond
        spells its own.
        """
        monkeypatch.setattr(_ids, "_now_ns", lambda: 5_000_000)
        here = sorted_id("x")
        there: list[str] = []
        monkeypatch.setattr(_ids, "_now_ns", lambda: 9_000_000)
        thread = threading.Thread(target=lambda: there.append(sorted_id("x")))
        thread.start()
        thread.join()
        assert here[2:10] == _ids._time_part(5)
        assert there[0][2:10] == _ids._time_part(9)


# ---------------------------------------------------------------------------------------
# iso_millis


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-7, minutes=-30))]),
    )
)
def test_iso_millis_matches_isoformat(moment: datetime) -> None:
    """
    UTC or not, the text is the UTC time's ISO form, truncated to milliseconds, with a Z.
    """
    expected = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    assert iso_millis(moment) == expected.replace("+00:00", "Z")


class _Moment(datetime):
    """A datetime subclass: not the plain type, so it takes the general way."""


def test_iso_millis_takes_datetime_subclasses() -> None:
    """
    A subclass of datetime in UTC is spelled like the plain datetime.
    """
    moment = _Moment(2026, 1, 1, 12, 30, 45, 123_999, tzinfo=timezone.utc)
    assert iso_millis(moment) == "2026-01-01T12:30:45.123Z"


# ---------------------------------------------------------------------------------------
# The store


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(tmp_path / "fast.sqlite3") as storage:
        yield storage


def enabled_hook(storage: SQLiteStorage) -> Webhook:
    """An enabled Segment webhook in *storage*, subscribed to everything."""
    registry = WebhookRegistry(storage, clock=FrozenClock(T0))
    hook = registry.create(
        ADMIN, name="Segment", kind="segment", write_key="wk", categories=list(EventCategory)
    )
    return registry.enable(ADMIN, hook.id)


def new_delivery(hook: Webhook, **changes: object) -> Delivery:
    """A pending delivery for *hook*."""
    values: dict[str, object] = {
        "id": sorted_id("dlv"),
        "webhook_id": hook.id,
        "event_id": new_unique_id(),
        "category": EventCategory.TRACK_EVENT_RECEIVED,
        "body": b'{"type":"track"}',
        "next_attempt_at": T0,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(changes)
    return Delivery(**values)  # type: ignore[arg-type]


def claim(storage: SQLiteStorage, n: int, owner: str = "me") -> list[Delivery]:
    """Claim up to *n* due deliveries as *owner*."""
    return storage.claim_due(owner=owner, now=T0, lease_until=T0 + timedelta(seconds=60), limit=n)


def outcome(delivery: Delivery) -> tuple[Delivery, Attempt]:
    """*delivery* delivered at T0 by its first attempt, and that attempt."""
    after = attrs.evolve(
        delivery,
        status=DeliveryStatus.DELIVERED,
        attempts=1,
        last_status=200,
        last_error="HTTP 200",
        finished_at=T0,
        lease_owner=None,
        lease_until=None,
    )
    attempt = Attempt(
        delivery_id="ignored",
        number=1,
        started_at=T0,
        duration=0.25,
        status_code=200,
        response_excerpt=b"{}",
        verdict=Verdict.DELIVERED,
        reason="HTTP 200",
    )
    return after, attempt


class TestPadding:
    @pytest.mark.parametrize(("n", "size"), [(1, 1), (2, 2), (3, 4), (5, 8), (512, 512)])
    def test_padded_to_a_power_of_two_with_the_last_id(self, n: int, size: int) -> None:
        """
        The list grows to the next power of two by repeating its last id.
        """
        ids = [f"d{i}" for i in range(n)]
        marks, keys = _padded(ids)
        assert marks.count("?") == size == len(keys)
        assert keys[:n] == tuple(ids)
        assert set(keys[n:]) <= {ids[-1]}


class TestRecordShared:
    @pytest.mark.parametrize("n", [3, 513, 1_100])
    def test_every_row_gets_one_attempt(self, store: SQLiteStorage, n: int) -> None:
        """
        Whatever the padding and the chunking, each delivery is written once and gets
        exactly one copy of the attempt, under its own id.
        """
        hook = enabled_hook(store)
        store.enqueue_deliveries([new_delivery(hook) for _ in range(n)])
        mine = claim(store, n)
        after, attempt = outcome(mine[0])
        ids = [d.id for d in mine]
        assert store.record_shared_outcomes([(ids, after, attempt)], owner="me", now=T0) == set(
            ids
        )
        for delivery in (mine[0], mine[-1], mine[n // 2]):
            assert store.list_attempts(delivery.id) == [
                attrs.evolve(attempt, delivery_id=delivery.id)
            ]
            assert store.get_delivery(delivery.id).status is DeliveryStatus.DELIVERED
        assert len(store.list_deliveries(status=DeliveryStatus.DELIVERED, limit=2_000)) == n

    def test_one_lost_lease_in_a_chunk_spares_the_rest(self, store: SQLiteStorage) -> None:
        """
        A lease lost in the middle of a large group: that delivery is neither written nor
        given an attempt row; every other one is, in its chunk and in the next.
        """
        hook = enabled_hook(store)
        store.enqueue_deliveries([new_delivery(hook) for _ in range(600)])
        mine = claim(store, 600)
        lost = mine[100]
        store.release_claims([lost.id], owner="me", now=T0)
        after, attempt = outcome(mine[0])
        ids = [d.id for d in mine]
        written = store.record_shared_outcomes([(ids, after, attempt)], owner="me", now=T0)
        assert written == set(ids) - {lost.id}
        assert store.list_attempts(lost.id) == []
        assert store.get_delivery(lost.id).status is DeliveryStatus.PENDING
        for delivery in (mine[99], mine[101], mine[599]):
            assert len(store.list_attempts(delivery.id)) == 1


class TestEnqueueBulk:
    def test_each_row_keeps_its_own_times(self, store: SQLiteStorage) -> None:
        """
        Deliveries with different times (and statuses) in one bulk enqueue are each
        stored with their own, not the first one's.
        """
        hook = enabled_hook(store)
        later = T0 + timedelta(minutes=5)
        first = new_delivery(hook)
        second = new_delivery(
            hook,
            created_at=later,
            updated_at=later,
            next_attempt_at=later,
            status=DeliveryStatus.FAILED,
            last_error="payload too large: 40000 bytes > 32768",
            finished_at=later,
            category=EventCategory.NPS_SUBMITTED,
        )
        third = new_delivery(hook)
        assert store.enqueue_deliveries([first, second, third]) == [None, None, None]
        for delivery in (first, second, third):
            assert store.get_delivery(delivery.id) == delivery
