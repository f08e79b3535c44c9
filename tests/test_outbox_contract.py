"""
The OutboxStore contract: every backend with an outbox passes these tests (``outbox`` fixture).
"""

from __future__ import annotations

import itertools
import sqlite3
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from pendo_webhooks.dispatcher import Attempt, Delivery, DeliveryStatus
from pendo_webhooks.exceptions import (
    ConfigurationError,
    ConflictError,
    StorageError,
    UnknownDelivery,
)
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry
from pendo_webhooks.retry import Verdict
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.testing import FrozenClock

from .conftest import START


T0 = START
LEASE = timedelta(seconds=60)
ADMIN = Actor("u-1", is_admin=True)
_ids = itertools.count(1)


def hook(storage: Storage, *, enabled: bool = True) -> Webhook:
    """
    A URL webhook stored through a registry (enabled unless told otherwise).
    """
    registry = WebhookRegistry(storage, clock=FrozenClock(T0))
    created = registry.create(
        ADMIN, name="Outbox hook", url="https://hooks.example.com/in", categories={"npsSubmitted"}
    )
    return registry.enable(ADMIN, created.id) if enabled else created


def delivery(webhook_id: str, **overrides: object) -> Delivery:
    """
    A new pending delivery due at T0; *overrides* replace fields.
    """
    n = next(_ids)
    fields: dict[str, object] = {
        "id": f"dlv_{n}",
        "webhook_id": webhook_id,
        "event_id": f"{n:040x}",
        "category": "npsSubmitted",
        "body": b'{"n":%d,"x":"\xc3\xa9\x00\xff"}' % n,
        "next_attempt_at": T0,
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Delivery(**fields)  # type: ignore[arg-type]


def attempt_for(claimed: Delivery, **overrides: object) -> Attempt:
    """
    The attempt row of the next attempt of *claimed*; *overrides* replace fields.
    """
    fields: dict[str, object] = {
        "delivery_id": claimed.id,
        "number": claimed.attempts + 1,
        "started_at": T0,
        "duration": 0.25,
        "status_code": 503,
        "response_excerpt": b"busy \xff" * 10,
        "verdict": Verdict.RETRY,
        "reason": "HTTP 503, retry 1 of 5 in 5s",
    }
    fields.update(overrides)
    return Attempt(**fields)  # type: ignore[arg-type]


def finished(claimed: Delivery, status: DeliveryStatus, now: datetime) -> Delivery:
    """
    *claimed* after an attempt that ended in *status* at *now*.
    """
    return attrs.evolve(
        claimed,
        status=status,
        attempts=claimed.attempts + 1,
        next_attempt_at=now,
        updated_at=now,
        last_status=200 if status is DeliveryStatus.DELIVERED else 404,
        last_error=None if status is DeliveryStatus.DELIVERED else "HTTP 404, not retried",
        finished_at=now,
        lease_owner=None,
        lease_until=None,
    )


def claim(
    store: Storage, owner: str = "w1", now: datetime = T0, limit: int = 10, **kw: str
) -> list[Delivery]:
    return store.claim_due(owner=owner, now=now, lease_until=now + LEASE, limit=limit, **kw)


def run_to(store: Storage, webhook_id: str, status: DeliveryStatus, **fields: object) -> Delivery:
    """
    Enqueue one delivery, claim it, and record it as *status*; return what the store holds.
    """
    new = delivery(webhook_id, **fields)
    assert store.enqueue_deliveries([new]) == [None]
    (claimed,) = claim(store, now=new.next_attempt_at, webhook_id=webhook_id)
    now = new.next_attempt_at + timedelta(seconds=1)
    done = finished(claimed, status, now)
    assert store.record_outcome(done, attempt_for(claimed), owner="w1", now=now)
    return store.get_delivery(new.id)


class TestEnqueue:
    def test_stored_as_given(self, outbox: Storage) -> None:
        """
        An enqueued delivery reads back equal, bytes of its body included.
        """
        webhook = hook(outbox)
        new = delivery(webhook.id)
        assert outbox.enqueue_deliveries([new]) == [None]
        assert outbox.get_delivery(new.id) == new
        assert outbox.pending_summary() == (1, T0)

    def test_one_delivery_per_event_and_webhook(self, outbox: Storage) -> None:
        """
        A second delivery of the same event to the same webhook is skipped as a duplicate;
        the same event to another webhook is stored.
        """
        first, second = hook(outbox), hook(outbox)
        original = delivery(first.id)
        outbox.enqueue_deliveries([original])
        again = delivery(first.id, event_id=original.event_id)
        elsewhere = delivery(second.id, event_id=original.event_id)
        assert outbox.enqueue_deliveries([again, elsewhere]) == ["duplicate", None]
        with pytest.raises(UnknownDelivery):
            outbox.get_delivery(again.id)
        assert outbox.get_delivery(elsewhere.id) == elsewhere

    def test_disabled_and_deleted_webhooks_get_nothing(self, outbox: Storage) -> None:
        """
        Deliveries to a disabled or unknown webhook are not stored, and say why.
        """
        disabled = hook(outbox, enabled=False)
        results = outbox.enqueue_deliveries([delivery(disabled.id), delivery("wh_gone")])
        assert results == ["disabled", "deleted"]
        assert outbox.pending_summary() == (0, None)

    def test_a_taken_id_stores_nothing(self, outbox: Storage) -> None:
        """
        A delivery id that is taken raises ConflictError, and none of the batch is stored.
        """
        webhook = hook(outbox)
        taken = delivery(webhook.id)
        outbox.enqueue_deliveries([taken])
        fresh = delivery(webhook.id)
        with pytest.raises(ConflictError, match=taken.id):
            outbox.enqueue_deliveries([fresh, delivery(webhook.id, id=taken.id)])
        with pytest.raises(UnknownDelivery):
            outbox.get_delivery(fresh.id)

    def test_pre_leased_deliveries_are_not_due_until_the_lease_lapses(
        self, outbox: Storage
    ) -> None:
        """
        A delivery stored already claimed (dispatch's immediate attempt) is due only when
        its lease lapses, and then any worker may take it.
        """
        webhook = hook(outbox)
        leased = delivery(
            webhook.id, lease_owner="me", lease_until=T0 + LEASE, next_attempt_at=T0 + LEASE
        )
        outbox.enqueue_deliveries([leased])
        assert claim(outbox, now=T0 + LEASE - timedelta(microseconds=1)) == []
        (taken,) = claim(outbox, owner="other", now=T0 + LEASE)
        assert (taken.id, taken.lease_owner) == (leased.id, "other")


class TestClaim:
    def test_claims_due_ones_earliest_first_up_to_the_limit(self, outbox: Storage) -> None:
        """
        Only deliveries due at *now* are claimed, earliest first, at most *limit*; the claim
        sets the lease and moves next_attempt_at to the lease's end.
        """
        webhook = hook(outbox)
        times = [T0 + timedelta(seconds=s) for s in (3, 1, 2, 10)]
        rows = [delivery(webhook.id, next_attempt_at=t) for t in times]
        outbox.enqueue_deliveries(rows)
        now = T0 + timedelta(seconds=5)
        taken = claim(outbox, now=now, limit=2)
        assert {d.id for d in taken} == {rows[1].id, rows[2].id}
        for claimed in taken:
            assert claimed.lease_owner == "w1"
            assert claimed.lease_until == claimed.next_attempt_at == now + LEASE
            assert claimed.updated_at == now
            assert claimed.body == next(r.body for r in rows if r.id == claimed.id)
        assert [d.id for d in claim(outbox, now=now, limit=5)] == [rows[0].id]
        assert claim(outbox, now=now) == []

    def test_a_claim_is_exclusive_until_its_lease_lapses(self, outbox: Storage) -> None:
        """
        Nobody else can claim a leased delivery until the lease ends; then anybody can.
        """
        webhook = hook(outbox)
        outbox.enqueue_deliveries([delivery(webhook.id)])
        (first,) = claim(outbox, owner="w1")
        assert claim(outbox, owner="w2", now=T0 + LEASE - timedelta(seconds=1)) == []
        (second,) = claim(outbox, owner="w2", now=T0 + LEASE)
        assert second.id == first.id
        assert second.lease_owner == "w2"

    def test_claim_one_webhooks_deliveries(self, outbox: Storage) -> None:
        """
        With webhook_id, only that webhook's due deliveries are claimed (a Segment batch).
        """
        mine, other = hook(outbox), hook(outbox)
        outbox.enqueue_deliveries(
            [delivery(other.id), delivery(mine.id), delivery(other.id), delivery(mine.id)]
        )
        taken = claim(outbox, webhook_id=mine.id, limit=5)
        assert [d.webhook_id for d in taken] == [mine.id, mine.id]
        assert len(claim(outbox, limit=5)) == 2

    def test_concurrent_claims_never_overlap(self, outbox: Storage) -> None:
        """
        Eight threads claiming at once split 200 deliveries between them without overlap.
        """
        webhook = hook(outbox)
        outbox.enqueue_deliveries([delivery(webhook.id) for _ in range(200)])

        def drain(owner: str) -> list[str]:
            got: list[str] = []
            while batch := claim(outbox, owner=owner, limit=7):
                got.extend(d.id for d in batch)
            return got

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(drain, [f"w{i}" for i in range(8)]))
        claimed = [i for r in results for i in r]
        assert len(claimed) == len(set(claimed)) == 200


class TestRecord:
    def test_records_the_outcome_and_the_attempt(self, outbox: Storage) -> None:
        """
        The lease holder's outcome is written with its attempt row, and the lease cleared.
        """
        webhook = hook(outbox)
        outbox.enqueue_deliveries([delivery(webhook.id)])
        (claimed,) = claim(outbox)
        now = T0 + timedelta(seconds=2)
        retry_at = now + timedelta(seconds=5)
        row = attempt_for(claimed, started_at=T0 + timedelta(seconds=1))
        retried = attrs.evolve(
            claimed,
            attempts=1,
            next_attempt_at=retry_at,
            updated_at=now,
            last_status=503,
            last_error="HTTP 503, retry 1 of 5 in 5s",
            lease_owner=None,
            lease_until=None,
        )
        assert outbox.record_outcome(retried, row, owner="w1", now=now)
        assert outbox.get_delivery(claimed.id) == retried
        assert outbox.list_attempts(claimed.id) == [row]
        assert claim(outbox, now=retry_at - timedelta(microseconds=1)) == []
        (again,) = claim(outbox, now=retry_at)
        assert again.attempts == 1

    @pytest.mark.parametrize("who", ["someone else", "lapsed"])
    def test_a_lost_lease_writes_nothing(self, outbox: Storage, who: str) -> None:
        """
        An outcome from a worker that no longer holds the lease (another owner, or the lease
        ran out) is refused and changes nothing: fencing against zombies.
        """
        webhook = hook(outbox)
        outbox.enqueue_deliveries([delivery(webhook.id)])
        (claimed,) = claim(outbox)
        owner, now = ("w2", T0) if who == "someone else" else ("w1", T0 + LEASE + LEASE)
        done = finished(claimed, DeliveryStatus.DELIVERED, now)
        assert not outbox.record_outcome(done, attempt_for(claimed), owner=owner, now=now)
        assert outbox.get_delivery(claimed.id) == claimed
        assert outbox.list_attempts(claimed.id) == []

    def test_a_new_claim_fences_out_the_old_owner(self, outbox: Storage) -> None:
        """
        After w2 re-claims a lapsed lease, w1's late outcome is refused and w2's is kept.
        """
        webhook = hook(outbox)
        outbox.enqueue_deliveries([delivery(webhook.id)])
        (old,) = claim(outbox, owner="w1")
        later = T0 + LEASE
        (new,) = claim(outbox, owner="w2", now=later)
        assert not outbox.record_outcome(
            finished(old, DeliveryStatus.DELIVERED, later), None, owner="w1", now=later
        )
        assert outbox.record_outcome(
            finished(new, DeliveryStatus.FAILED, later), None, owner="w2", now=later
        )
        assert outbox.get_delivery(new.id).status is DeliveryStatus.FAILED

    def test_a_finished_delivery_is_never_claimed(self, outbox: Storage) -> None:
        """
        Delivered, failed, dead and cancelled deliveries are not due, whatever the time.
        """
        webhook = hook(outbox)
        for status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.DEAD):
            assert run_to(outbox, webhook.id, status).status is status
        assert claim(outbox, now=T0 + timedelta(days=365)) == []
        assert outbox.pending_summary() == (0, None)


class TestReleaseAndCancel:
    def test_release_makes_own_claims_due_now(self, outbox: Storage) -> None:
        """
        Released claims are due again at once; claims of other owners are left alone.
        """
        webhook = hook(outbox)
        outbox.enqueue_deliveries([delivery(webhook.id), delivery(webhook.id)])
        (mine,) = claim(outbox, owner="w1", limit=1)
        (theirs,) = claim(outbox, owner="w2", limit=1)
        now = T0 + timedelta(seconds=1)
        assert outbox.release_claims([mine.id, theirs.id], owner="w1", now=now) == 1
        assert outbox.release_claims([], owner="w1", now=now) == 0
        released = outbox.get_delivery(mine.id)
        assert (released.lease_owner, released.lease_until) == (None, None)
        assert released.next_attempt_at == now
        assert [d.id for d in claim(outbox, owner="w3", now=now)] == [mine.id]

    def test_cancel_ends_every_pending_delivery_of_a_webhook(self, outbox: Storage) -> None:
        """
        Cancelling a webhook's deliveries ends the pending ones (leased too) with the reason,
        leaves finished ones and other webhooks' ones alone, and fences out the lease holder.
        """
        webhook, other = hook(outbox), hook(outbox)
        done = run_to(outbox, webhook.id, DeliveryStatus.DELIVERED)
        waiting, leased, elsewhere = (
            delivery(webhook.id),
            delivery(webhook.id),
            delivery(other.id),
        )
        outbox.enqueue_deliveries([leased])
        (claimed,) = claim(outbox, webhook_id=webhook.id)
        outbox.enqueue_deliveries([waiting, elsewhere])
        now = T0 + timedelta(minutes=1)
        assert outbox.cancel_deliveries(webhook.id, reason="webhook disabled", now=now) == 2
        for delivery_id in (waiting.id, leased.id):
            cancelled = outbox.get_delivery(delivery_id)
            assert cancelled.status is DeliveryStatus.CANCELLED
            assert (cancelled.last_error, cancelled.finished_at) == ("webhook disabled", now)
            assert cancelled.lease_owner is None
        assert outbox.get_delivery(done.id) == done
        assert outbox.get_delivery(elsewhere.id).status is DeliveryStatus.PENDING
        late = finished(claimed, DeliveryStatus.DELIVERED, now)
        assert not outbox.record_outcome(late, None, owner="w1", now=now)
        assert outbox.get_delivery(leased.id).status is DeliveryStatus.CANCELLED


class TestReads:
    def test_unknown_delivery(self, outbox: Storage) -> None:
        """
        Reading an unknown delivery raises UnknownDelivery; its attempts are an empty list.
        """
        with pytest.raises(UnknownDelivery, match="dlv_nope"):
            outbox.get_delivery("dlv_nope")
        assert outbox.list_attempts("dlv_nope") == []

    def test_lists_newest_first_with_filters(self, outbox: Storage) -> None:
        """
        Deliveries list the most recently stored first; webhook, status and limit filter.
        """
        webhook, other = hook(outbox), hook(outbox)
        first = run_to(outbox, webhook.id, DeliveryStatus.DELIVERED)
        second, third = delivery(other.id), delivery(webhook.id)
        outbox.enqueue_deliveries([second])
        outbox.enqueue_deliveries([third])
        assert [d.id for d in outbox.list_deliveries()] == [third.id, second.id, first.id]
        assert [d.id for d in outbox.list_deliveries(webhook_id=webhook.id)] == [
            third.id,
            first.id,
        ]
        assert [d.id for d in outbox.list_deliveries(status=DeliveryStatus.DELIVERED)] == [
            first.id
        ]
        assert [d.id for d in outbox.list_deliveries(limit=1)] == [third.id]

    def test_attempts_in_order(self, outbox: Storage) -> None:
        """
        A delivery's attempts come back first first, each as recorded.
        """
        webhook = hook(outbox)
        outbox.enqueue_deliveries([delivery(webhook.id)])
        rows = []
        now = T0
        for number in (1, 2, 3):
            (claimed,) = claim(outbox, now=now)
            row = attempt_for(claimed, error_kind="timeout", status_code=None, detail="slow")
            now += timedelta(seconds=1)
            retried = attrs.evolve(claimed, attempts=number, next_attempt_at=now)
            assert outbox.record_outcome(retried, row, owner="w1", now=now)
            rows.append(row)
        assert outbox.list_attempts(claimed.id) == rows
        assert [a.number for a in rows] == [1, 2, 3]


class TestRedeliver:
    def test_a_finished_delivery_starts_over(self, outbox: Storage) -> None:
        """
        Redelivering a finished delivery makes it pending and due now with a fresh retry
        budget (attempt_base = attempts), the same body and event id.
        """
        webhook = hook(outbox)
        dead = run_to(outbox, webhook.id, DeliveryStatus.DEAD)
        now = T0 + timedelta(hours=1)
        again = outbox.redeliver(dead.id, now=now)
        assert again == attrs.evolve(
            dead,
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            attempt_base=1,
            redelivered_at=now,
            finished_at=None,
            updated_at=now,
        )
        assert outbox.get_delivery(dead.id) == again
        assert [d.id for d in claim(outbox, now=now)] == [dead.id]

    def test_refusals(self, outbox: Storage) -> None:
        """
        Redelivering an unknown, pending or purged delivery raises.
        """
        webhook, other = hook(outbox), hook(outbox)
        pending = delivery(other.id)
        outbox.enqueue_deliveries([pending])
        with pytest.raises(UnknownDelivery):
            outbox.redeliver("dlv_nope", now=T0)
        with pytest.raises(ConflictError, match="still pending"):
            outbox.redeliver(pending.id, now=T0)
        done = run_to(outbox, webhook.id, DeliveryStatus.FAILED)
        outbox.purge(T0 + timedelta(days=1))
        with pytest.raises(ConflictError, match="purged"):
            outbox.redeliver(done.id, now=T0)

    def test_redeliver_failed_in_a_window(self, outbox: Storage) -> None:
        """
        Only the webhook's failed and dead deliveries created in [since, until) come back.
        """
        webhook, other = hook(outbox), hook(outbox)
        at = [T0 + timedelta(hours=h) for h in range(4)]
        failed = run_to(outbox, webhook.id, DeliveryStatus.FAILED, created_at=at[1])
        dead = run_to(outbox, webhook.id, DeliveryStatus.DEAD, created_at=at[2])
        run_to(outbox, webhook.id, DeliveryStatus.DEAD, created_at=at[0])
        run_to(outbox, webhook.id, DeliveryStatus.DEAD, created_at=at[3])
        run_to(outbox, webhook.id, DeliveryStatus.DELIVERED, created_at=at[1])
        run_to(outbox, other.id, DeliveryStatus.DEAD, created_at=at[1])
        now = T0 + timedelta(days=1)
        count = outbox.redeliver_failed(webhook.id, since=at[1], until=at[3], now=now)
        assert count == 2
        pending = {d.id for d in outbox.list_deliveries(status=DeliveryStatus.PENDING)}
        assert pending == {failed.id, dead.id}


class TestPurge:
    def test_cancelled_deliveries_without_attempts_are_purged_too(self, outbox: Storage) -> None:
        """
        A cancelled delivery (no attempt rows) is purged like any finished one.
        """
        webhook = hook(outbox)
        waiting = delivery(webhook.id)
        outbox.enqueue_deliveries([waiting])
        outbox.cancel_deliveries(webhook.id, reason="webhook deleted", now=T0)
        assert outbox.purge(T0 + timedelta(seconds=1)) == 1
        assert outbox.get_delivery(waiting.id).body == b""

    def test_purge_empties_old_bodies_and_excerpts_only(self, outbox: Storage) -> None:
        """
        Purging empties the body and response excerpts of deliveries finished before the
        cut-off, keeps their metadata, and leaves newer and pending deliveries alone.
        """
        webhook = hook(outbox)
        old = run_to(outbox, webhook.id, DeliveryStatus.DELIVERED)
        young = run_to(
            outbox, webhook.id, DeliveryStatus.FAILED, next_attempt_at=T0 + timedelta(days=2)
        )
        waiting = delivery(webhook.id)
        outbox.enqueue_deliveries([waiting])
        assert outbox.purge(T0 + timedelta(days=1)) == 1
        purged = outbox.get_delivery(old.id)
        assert purged == attrs.evolve(old, body=b"", purged=True)
        (row,) = outbox.list_attempts(old.id)
        assert row.response_excerpt == b""
        assert row.status_code == 503
        assert outbox.get_delivery(young.id) == young
        assert outbox.list_attempts(young.id)[0].response_excerpt != b""
        assert outbox.get_delivery(waiting.id) == waiting
        assert outbox.purge(T0 + timedelta(days=1)) == 0


class TestClaimFirstSeenAndEnqueue:
    """
    ``Storage.claim_first_seen_and_enqueue``: a first-seen claim and the deliveries it fires,
    in one transaction.
    """

    def test_claims_then_stores_what_the_claimed_keys_fire(self, outbox: Storage) -> None:
        """
        The callback gets only the keys this call claimed ("api" ones included); what it
        returns is stored; a key claimed before is neither passed on nor claimed again.
        """
        webhook = hook(outbox)
        outbox.record_known(["k:api"], at=T0)
        asked: list[set[str]] = []
        made: dict[str, Delivery] = {}

        def deliveries(claimed: set[str]) -> list[Delivery]:
            asked.append(set(claimed))
            made.update({key: delivery(webhook.id) for key in sorted(claimed)})
            return [made[key] for key in sorted(claimed)]

        keys = ["k:1", "k:api", "k:1"]
        assert outbox.claim_first_seen_and_enqueue(keys, at=T0, deliveries=deliveries) == (
            {"k:1", "k:api"},
            [None, None],
        )
        assert outbox.first_seen_origin("k:api") == "app"
        assert outbox.claim_first_seen_and_enqueue(
            ["k:1", "k:2"], at=T0, deliveries=deliveries
        ) == ({"k:2"}, [None])
        assert asked == [{"k:1", "k:api"}, {"k:2"}]
        for stored in made.values():
            assert outbox.get_delivery(stored.id) == stored

    def test_nothing_new_calls_nothing(self, outbox: Storage) -> None:
        """
        With no key to claim, the callback is not called and nothing is stored.
        """

        def refuse(claimed: set[str]) -> list[Delivery]:
            raise AssertionError(f"called with {claimed}")

        outbox.claim_first_seen(["k:1"], at=T0)
        assert outbox.claim_first_seen_and_enqueue(["k:1"], at=T0, deliveries=refuse) == (
            set(),
            [],
        )
        assert outbox.claim_first_seen_and_enqueue([], at=T0, deliveries=refuse) == (set(), [])
        assert outbox.pending_summary() == (0, None)

    def test_an_error_inside_leaves_neither(self, outbox: Storage) -> None:
        """
        An error raised inside the transaction (after the claim, before the deliveries are
        written) leaves no key claimed and nothing stored; the next call claims them.
        """
        webhook = hook(outbox)

        def locked(claimed: set[str]) -> list[Delivery]:
            raise StorageError("database is locked")

        with pytest.raises(StorageError, match="locked"):
            outbox.claim_first_seen_and_enqueue(["k:1", "k:2"], at=T0, deliveries=locked)
        assert outbox.first_seen_origin("k:1") is None
        assert outbox.first_seen_origin("k:2") is None
        later = delivery(webhook.id)
        claimed, skipped = outbox.claim_first_seen_and_enqueue(
            ["k:1", "k:2"], at=T0, deliveries=lambda claimed: [later]
        )
        assert (claimed, skipped) == ({"k:1", "k:2"}, [None])
        assert outbox.get_delivery(later.id) == later

    def test_a_taken_delivery_id_claims_nothing(self, outbox: Storage) -> None:
        """
        A delivery id already taken raises ConflictError, and the keys stay unclaimed.
        """
        webhook = hook(outbox)
        taken = delivery(webhook.id)
        outbox.enqueue_deliveries([taken])
        fresh = delivery(webhook.id)
        with pytest.raises(ConflictError, match=taken.id):
            outbox.claim_first_seen_and_enqueue(
                ["k:1"],
                at=T0,
                deliveries=lambda claimed: [fresh, delivery(webhook.id, id=taken.id)],
            )
        assert outbox.first_seen_origin("k:1") is None
        with pytest.raises(UnknownDelivery):
            outbox.get_delivery(fresh.id)

    def test_skipped_deliveries_say_why_and_the_claim_stands(self, outbox: Storage) -> None:
        """
        A delivery to a disabled or deleted webhook is skipped, as by enqueue_deliveries;
        the keys are claimed all the same (the event fired; no webhook wanted it).
        """
        disabled = hook(outbox, enabled=False)
        result = outbox.claim_first_seen_and_enqueue(
            ["k:1"],
            at=T0,
            deliveries=lambda claimed: [delivery(disabled.id), delivery("wh_gone")],
        )
        assert result == ({"k:1"}, ["disabled", "deleted"])
        assert outbox.first_seen_origin("k:1") == "app"
        assert outbox.pending_summary() == (0, None)

    def test_a_host_connection_is_refused_where_it_cannot_be_used(self, outbox: Storage) -> None:
        """
        Stores other than PostgreSQL refuse *connection* before writing anything.
        """
        if not isinstance(outbox, InMemoryStorage | SQLiteStorage):
            pytest.skip("PostgresStorage writes through a host connection (test_postgres.py)")
        with pytest.raises(ConfigurationError, match="PostgresStorage"):
            outbox.claim_first_seen_and_enqueue(
                ["k:1"], at=T0, deliveries=lambda claimed: [], connection=object()
            )
        assert outbox.first_seen_origin("k:1") is None

    def test_concurrent_calls_claim_each_key_once(self, outbox: Storage) -> None:
        """
        Threads racing over the same keys: each key is claimed by exactly one call, and
        exactly one delivery per key is stored.
        """
        webhook = hook(outbox)
        keys = [f"k:{n}" for n in range(40)]

        def race(offset: int) -> set[str]:
            mine = keys[offset:] + keys[:offset]
            claimed, _ = outbox.claim_first_seen_and_enqueue(
                mine,
                at=T0,
                deliveries=lambda claimed: [
                    delivery(webhook.id, event_id=f"{int(key[2:]):040x}")
                    for key in sorted(claimed)
                ],
            )
            return claimed

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(race, [0, 10, 20, 30]))
        assert sorted(k for claimed in results for k in claimed) == sorted(keys)
        assert len(outbox.list_deliveries(limit=1000)) == len(keys)


# -- a model-based test: random sequences of outbox calls against a plain model -----------------


class OutboxMachine(RuleBasedStateMachine):
    """
    Enqueue, claim, record, release, cancel and time passing, against a model of which
    deliveries are pending, finished and leased by whom.
    """

    claimed = Bundle("claimed")

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.clock = FrozenClock(T0)
        self.webhook = hook(self.store)
        self.status: dict[str, DeliveryStatus] = {}
        self.leases: dict[str, tuple[str, datetime]] = {}

    def make_store(self) -> Storage:
        return InMemoryStorage()

    @rule(n=st.integers(1, 4))
    def enqueue(self, n: int) -> None:
        rows = [delivery(self.webhook.id, next_attempt_at=self.clock()) for _ in range(n)]
        assert self.store.enqueue_deliveries(rows) == [None] * n
        self.status.update({r.id: DeliveryStatus.PENDING for r in rows})

    @rule(target=claimed, owner=st.sampled_from(["a", "b"]), limit=st.integers(1, 3))
    def claim(self, owner: str, limit: int) -> object:
        now = self.clock()
        taken = claim(self.store, owner=owner, now=now, limit=limit)
        free = [
            i
            for i, s in self.status.items()
            if s is DeliveryStatus.PENDING and (i not in self.leases or self.leases[i][1] <= now)
        ]
        assert len(taken) == min(limit, len(free))
        for d in taken:
            assert d.id in free
            self.leases[d.id] = (owner, now + LEASE)
        return multiple(*[(d, owner) for d in taken])

    @rule(item=consumes(claimed), delivered=st.booleans())
    def record(self, item: tuple[Delivery, str], delivered: bool) -> None:
        claimed, owner = item
        now = self.clock()
        status = DeliveryStatus.DELIVERED if delivered else DeliveryStatus.FAILED
        written = self.store.record_outcome(
            finished(claimed, status, now), None, owner=owner, now=now
        )
        lease = self.leases.get(claimed.id)
        expected = (
            self.status[claimed.id] is DeliveryStatus.PENDING
            and lease is not None
            and lease[0] == owner
            and lease[1] >= now
        )
        assert written == expected
        if written:
            self.status[claimed.id] = status
            del self.leases[claimed.id]

    @rule(item=consumes(claimed))
    def release(self, item: tuple[Delivery, str]) -> None:
        claimed, owner = item
        lease = self.leases.get(claimed.id)
        released = self.store.release_claims([claimed.id], owner=owner, now=self.clock())
        pending = self.status[claimed.id] is DeliveryStatus.PENDING
        mine = pending and lease is not None and lease[0] == owner
        assert released == int(mine)
        if mine:
            del self.leases[claimed.id]

    @rule()
    def cancel(self) -> None:
        pending = [i for i, s in self.status.items() if s is DeliveryStatus.PENDING]
        count = self.store.cancel_deliveries(self.webhook.id, reason="gone", now=self.clock())
        assert count == len(pending)
        for delivery_id in pending:
            self.status[delivery_id] = DeliveryStatus.CANCELLED
            self.leases.pop(delivery_id, None)

    @rule(seconds=st.sampled_from([1, 30, 59, 60, 61, 600]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def agrees_with_the_model(self) -> None:
        pending = [i for i, s in self.status.items() if s is DeliveryStatus.PENDING]
        assert self.store.pending_summary()[0] == len(pending)
        for delivery_id, status in self.status.items():
            assert self.store.get_delivery(delivery_id).status is status


class SQLiteOutboxMachine(OutboxMachine):
    """
    The same, on a fresh SQLite file per example.
    """

    def make_store(self) -> Storage:
        self.directory = tempfile.TemporaryDirectory()
        return SQLiteStorage(Path(self.directory.name) / "outbox.sqlite3")

    def teardown(self) -> None:
        assert isinstance(self.store, SQLiteStorage)
        self.store.close()
        self.directory.cleanup()


_MODEL_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
OutboxMachine.TestCase.settings = _MODEL_SETTINGS
SQLiteOutboxMachine.TestCase.settings = _MODEL_SETTINGS
TestOutboxModel = OutboxMachine.TestCase
TestSQLiteOutboxModel = SQLiteOutboxMachine.TestCase


def test_memory_heap_stays_small_under_churn() -> None:
    """
    Claiming and releasing one delivery thousands of times keeps it claimable (the stale
    heap entries are compacted away).
    """
    store = InMemoryStorage()
    webhook = hook(store)
    store.enqueue_deliveries([delivery(webhook.id)])
    for _ in range(3000):
        (claimed,) = claim(store)
        assert store.release_claims([claimed.id], owner="w1", now=T0) == 1
    assert len(store._due) < 1100
    assert [d.webhook_id for d in claim(store)] == [webhook.id]


def test_sqlite_rows_that_do_not_load_raise_storage_error(tmp_path: Path) -> None:
    """
    A row that cannot be a Delivery (edited by hand, say) raises StorageError, and a
    constraint failure other than a taken id surfaces as StorageError too.
    """
    with SQLiteStorage(tmp_path / "outbox.sqlite3") as store:
        webhook = hook(store)
        new = delivery(webhook.id)
        store.enqueue_deliveries([new])
        raw = sqlite3.connect(store.path)
        raw.execute("UPDATE deliveries SET category = 'pageViewed'")
        raw.execute(
            "CREATE TRIGGER no_more BEFORE INSERT ON deliveries "
            "BEGIN SELECT RAISE(ABORT, 'no more deliveries'); END"
        )
        raw.commit()
        raw.close()
        with pytest.raises(StorageError, match="not valid"):
            store.get_delivery(new.id)
        with pytest.raises(StorageError, match="no more deliveries"):
            store.enqueue_deliveries([delivery(webhook.id)])


def test_thread_safety_of_memory_claims_and_records() -> None:
    """
    Claims and records racing from many threads on one InMemoryStorage leave every
    delivery delivered exactly once.
    """
    store = InMemoryStorage()
    webhook = hook(store)
    store.enqueue_deliveries([delivery(webhook.id) for _ in range(300)])
    recorded: list[str] = []
    lock = threading.Lock()

    def work(owner: str) -> None:
        while batch := claim(store, owner=owner, limit=3):
            for claimed in batch:
                done = finished(claimed, DeliveryStatus.DELIVERED, T0)
                assert store.record_outcome(done, None, owner=owner, now=T0)
                with lock:
                    recorded.append(claimed.id)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(recorded) == sorted({*recorded})
    assert len(recorded) == 300
    assert store.pending_summary() == (0, None)
