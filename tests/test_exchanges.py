"""
One stored exchange per HTTP request: a Segment batch of N deliveries is one exchange row
(its timing, status, error and response excerpt once) and N small attempt rows naming it.

Through the dispatcher on every backend (each delivery's history names the batch's
exchange; a URL delivery's attempts have one each), measured in SQLite's rows and bytes,
and migrated: SQLite migration 8 and PostgreSQL migration 6 make each old attempt an
exchange of its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pendo_webhooks.dispatcher import Delivery, DeliveryStatus
from pendo_webhooks.exceptions import PermissionDenied
from pendo_webhooks.registry import Actor
from pendo_webhooks.storage import SQLiteStorage, Storage
from pendo_webhooks.storage._schema import APPLICATION_ID, MIGRATIONS
from pendo_webhooks.testing import RecordingTransport
from pendo_webhooks.transports import TransportResponse

from .conftest import fresh_pg_schema, postgres_dsn
from .test_dispatcher import make_world as make_url_world
from .test_segment import SegmentWorld, fresh
from .test_segment import make_world as make_segment_world


ADMIN = Actor("u-1", is_admin=True)
#: What Segment answers a batch with, padded to the excerpt's size to make copies show.
ANSWER = b'{"success":true}' + b" " * 2032
BATCH = 50


def _segment_batch(
    world: SegmentWorld, count: int = BATCH, *, hook: bool = True
) -> list[Delivery]:
    """
    *count* events enqueued for a (new) Segment webhook and sent in one batch request.
    """
    world.transport = RecordingTransport([TransportResponse(status=200, body=ANSWER)])
    if hook:
        world.hook()
    with world.dispatcher() as dispatcher:
        dispatcher.enqueue_many([fresh() for _ in range(count)])
        outcomes = dispatcher.run_due(limit=count)
    assert len(world.transport.requests) == 1
    assert {o.outcome.value for o in outcomes} == {"delivered"}
    return world.storage.list_deliveries(limit=count)


class TestThroughTheDispatcher:
    def test_a_segment_batch_is_one_exchange(self, outbox: Storage) -> None:
        """
        Every delivery of a batch answers "what happened to my event" with its own attempt,
        naming the one exchange; the exchange lists all of them, with one set of facts.
        """
        world = make_segment_world(outbox)
        deliveries = _segment_batch(world, 5)
        with world.dispatcher() as dispatcher:
            attempts = [dispatcher.attempts(ADMIN, d.id) for d in deliveries]
            assert all(len(a) == 1 for a in attempts)
            (exchange_id,) = {a[0].exchange_id for a in attempts}
            assert exchange_id.startswith("exc_")
            listed = dispatcher.exchange_attempts(ADMIN, exchange_id)
            assert dispatcher.exchange_attempts(ADMIN, "exc_unknown") == []
        assert sorted(a.delivery_id for a in listed) == sorted(d.id for d in deliveries)
        assert [a.delivery_id for a in listed] == sorted(a.delivery_id for a in listed)
        facts = {(a.started_at, a.duration, a.status_code, a.response_excerpt) for a in listed}
        assert facts == {(listed[0].started_at, listed[0].duration, 200, ANSWER)}
        assert {(a.number, a.verdict.value, a.reason) for a in listed} == {
            (1, "delivered", "HTTP 200")
        }

    def test_a_url_delivery_has_an_exchange_per_attempt(self, outbox: Storage) -> None:
        """
        A URL delivery retried twice: three requests, three exchanges of one delivery each.
        """
        world = make_url_world(outbox)
        world.transport = RecordingTransport([503, 503, 200])
        world.hook()
        with world.dispatcher() as dispatcher:
            dispatcher.enqueue(_nps())
            dispatcher.drain(timeout=600)
            (delivery,) = outbox.list_deliveries()
            attempts = dispatcher.attempts(ADMIN, delivery.id)
            assert [a.status_code for a in attempts] == [503, 503, 200]
            assert len({a.exchange_id for a in attempts}) == 3
            for attempt in attempts:
                assert dispatcher.exchange_attempts(ADMIN, attempt.exchange_id) == [attempt]

    def test_reading_an_exchange_needs_read_access_to_its_webhook(self) -> None:
        """
        An actor who may not read the webhook gets PermissionDenied, not the attempts.
        """
        world = make_segment_world(_memory())
        (delivery, *_) = _segment_batch(world, 2)
        (attempt,) = world.storage.list_attempts(delivery.id)
        with world.dispatcher() as dispatcher, pytest.raises(PermissionDenied):
            dispatcher.exchange_attempts(Actor("u-2"), attempt.exchange_id)


def _nps() -> Any:
    from pendo_webhooks.testing import sample_event  # noqa: PLC0415

    return sample_event("npsSubmitted")


def _memory() -> Storage:
    from pendo_webhooks.storage import InMemoryStorage  # noqa: PLC0415

    return InMemoryStorage()


# ---------------------------------------------------------------------------------------
# SQLite: rows and bytes per batch


@pytest.fixture(name="sqlite_store")
def _sqlite_store(tmp_path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(tmp_path / "exchanges.sqlite3") as store:
        yield store


def _count(path: Path, query: str) -> Any:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchone()[0]
    finally:
        conn.close()


def test_a_batch_of_n_writes_one_exchange_row(sqlite_store: SQLiteStorage) -> None:
    """
    A Segment batch of 50 deliveries: one exchange row holding the excerpt once, and 50
    attempt rows holding only number, exchange (its seq), verdict and reason (before: 50 rows,
    each with its own copy of the 2 KB excerpt, the times and the status).
    """
    _segment_batch(make_segment_world(sqlite_store))
    path = sqlite_store.path
    assert _count(path, "SELECT count(*) FROM delivery_exchanges") == 1
    assert _count(path, "SELECT count(*) FROM delivery_attempts") == BATCH
    stored = _count(path, "SELECT sum(length(response_excerpt)) FROM delivery_exchanges")
    assert stored == len(ANSWER)  # not BATCH * len(ANSWER)
    columns = [row[1] for row in _rows(path, "PRAGMA table_info(delivery_attempts)")]
    assert columns == ["delivery_id", "number", "exchange", "verdict", "reason"]


def test_an_exchange_is_not_written_if_no_lease_held(sqlite_store: SQLiteStorage) -> None:
    """
    The batch's outcome arrives after every lease was taken over: no attempt row, and no
    exchange row either (nothing would name it).
    """
    world = make_segment_world(sqlite_store)

    def steal(_request: object) -> None:
        world.clock.advance(3600)
        sqlite_store.claim_due(
            owner="thief", now=world.clock(), lease_until=world.clock() + timedelta(hours=1),
            limit=100,
        )  # fmt: skip

    world.transport = RecordingTransport(on_send=steal)
    world.hook()
    with world.dispatcher() as dispatcher:
        dispatcher.enqueue_many([fresh() for _ in range(3)])
        dispatcher.run_due()
    path = sqlite_store.path
    assert _count(path, "SELECT count(*) FROM delivery_attempts") == 0
    assert _count(path, "SELECT count(*) FROM delivery_exchanges") == 0


def test_purge_deletes_exchanges_nothing_names(sqlite_store: SQLiteStorage) -> None:
    """
    Deliveries deleted behind the library's back take their attempts with them; the next
    purge deletes their exchange, and forgets the excerpts of purged batches.
    """
    world = make_segment_world(sqlite_store)
    deliveries = _segment_batch(world, 3)
    (kept,) = sqlite_store.list_attempts(deliveries[0].id)
    world.clock.advance(60)
    _segment_batch(world, 2, hook=False)  # a second batch
    path = sqlite_store.path
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    with conn:
        conn.execute(_DELETE_OTHERS, (kept.exchange_id,))
    conn.close()
    assert _count(path, "SELECT count(*) FROM delivery_exchanges") == 2
    assert sqlite_store.purge(world.clock() + timedelta(seconds=1)) == 3
    assert _rows(path, "SELECT id, length(response_excerpt) FROM delivery_exchanges") == [
        (kept.exchange_id, 0)
    ]
    assert [a.status_code for a in sqlite_store.list_attempts(deliveries[0].id)] == [200]


# Deliveries (and so their attempts) of every exchange but one, deleted by plain SQL.
_DELETE_OTHERS = """
DELETE FROM deliveries
 WHERE id IN (SELECT delivery_id FROM delivery_attempts
               WHERE exchange != (SELECT seq FROM delivery_exchanges WHERE id = ?))
"""


def _rows(path: Path, query: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------
# Migrations: each old attempt becomes an exchange of its own

_OLD_DELIVERY = (
    "dlv_old", "wh_old", "e" * 40, "npsSubmitted", b"{}", "failed", 2, 0,
    "2026-01-01T00:00:00.000000+00:00", "2026-01-01T00:00:00.000000+00:00",
    "2026-01-01T00:00:02.000000+00:00", 404, "HTTP 404", None, None,
    "2026-01-01T00:00:02.000000+00:00", None, 0,
)  # fmt: skip
_OLD_ATTEMPTS = [
    (
        "dlv_old", 1, "2026-01-01T00:00:00.000000+00:00", 0.5, 503, None, None, b"busy",
        "retry", "HTTP 503, retry 1 of 5 in 1s",
    ),
    (
        "dlv_old", 2, "2026-01-01T00:00:01.000000+00:00", 0.25, 404, None, None, b"gone",
        "failed", "HTTP 404",
    ),
]  # fmt: skip
_MARKS_18 = ", ".join("?" * 18)
_MARKS_10 = ", ".join("?" * 10)


def test_sqlite_migration_8_makes_each_old_attempt_an_exchange(tmp_path: Path) -> None:
    """
    A version 7 file's attempts read back as they were, each with an exchange of its own.
    """
    path = tmp_path / "v7.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:7]:
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01')",
            (migration.version, migration.name),
        )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
    conn.execute("PRAGMA user_version = 7")
    conn.execute(f"INSERT INTO deliveries VALUES ({_MARKS_18}, 2)", _OLD_DELIVERY)  # noqa: S608
    conn.executemany(f"INSERT INTO delivery_attempts VALUES ({_MARKS_10})", _OLD_ATTEMPTS)  # noqa: S608
    conn.close()
    with SQLiteStorage(path) as store:
        _check_migrated(store.list_attempts, store.list_exchange_attempts)
    assert _rows(path, "SELECT webhook_id FROM delivery_exchanges") == [("wh_old",), ("wh_old",)]


def _check_migrated(
    list_attempts: Callable[[str], list[Any]], list_exchange: Callable[[str], list[Any]]
) -> None:
    first, second = list_attempts("dlv_old")
    assert [
        (a.number, a.status_code, a.response_excerpt, a.duration) for a in (first, second)
    ] == [
        (1, 503, b"busy", 0.5),
        (2, 404, b"gone", 0.25),
    ]
    assert (first.reason, second.verdict.value) == ("HTTP 503, retry 1 of 5 in 1s", "failed")
    assert (first.exchange_id, second.exchange_id) == ("exc_dlv_old_1", "exc_dlv_old_2")
    assert list_exchange("exc_dlv_old_2") == [second]
    assert first.started_at.isoformat() == "2026-01-01T00:00:00+00:00"


def test_postgres_migration_6_makes_each_old_attempt_an_exchange(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """
    A version 5 schema's attempts read back as they were, each with an exchange of its own.
    """
    dsn = postgres_dsn()
    import psycopg  # noqa: PLC0415 - optional
    from psycopg import sql  # noqa: PLC0415

    from pendo_webhooks.storage import PostgresStorage, _postgres_schema  # noqa: PLC0415

    schema = fresh_pg_schema()
    with psycopg.connect(dsn) as conn:
        monkeypatch.setattr(_postgres_schema, "MIGRATIONS", _postgres_schema.MIGRATIONS[:5])
        assert _postgres_schema.migrate(conn, schema) == [1, 2, 3, 4, 5]
        monkeypatch.undo()
        q = sql.Identifier(schema)
        delivery = list(_OLD_DELIVERY)
        delivery[17] = False
        columns = (
            "id, webhook_id, event_id, category, body, status, attempts, attempt_base, "
            "next_attempt_at, created_at, updated_at, last_status, last_error, lease_owner, "
            "lease_until, finished_at, redelivered_at, purged"
        )
        conn.execute(
            sql.SQL("INSERT INTO {}.deliveries ({}) VALUES ({})").format(
                q, sql.SQL(columns), sql.SQL(", ").join([sql.Placeholder()] * 18)
            ),
            delivery,
        )
        insert = sql.SQL("INSERT INTO {}.delivery_attempts VALUES ({})").format(
            q, sql.SQL(", ").join([sql.Placeholder()] * 10)
        )
        for row in _OLD_ATTEMPTS:
            conn.execute(insert, row)
    store = PostgresStorage(dsn, schema=schema)
    try:
        _check_migrated(store.list_attempts, store.list_exchange_attempts)
        assert store.get_delivery("dlv_old").status is DeliveryStatus.FAILED
    finally:
        store.drop_schema()


# ---------------------------------------------------------------------------------------
# The CLI: which exchange each attempt was part of, and what else went out in it


def test_cli_shows_exchanges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sqlite_store: SQLiteStorage
) -> None:
    """
    ``deliveries show`` names each attempt's exchange; ``deliveries exchange`` lists the
    batch's deliveries (text and JSON), and an unknown id exits 1.
    """
    from pendo_webhooks.cli import main  # noqa: PLC0415

    deliveries = _segment_batch(make_segment_world(sqlite_store), 3)
    (attempt,) = sqlite_store.list_attempts(deliveries[0].id)
    db = ["--db", str(sqlite_store.path)]

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main([*args, *db])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = invoke("deliveries", "show", deliveries[0].id)
    assert code == 0
    assert out.splitlines()[-2].split()[-1] == "EXCHANGE"
    assert out.splitlines()[-1].split()[-1] == attempt.exchange_id
    code, out, _ = invoke("deliveries", "show", deliveries[0].id, "--json")
    assert [a["exchange_id"] for a in json.loads(out)["attempt_log"]] == [attempt.exchange_id]

    code, out, _ = invoke("deliveries", "exchange", attempt.exchange_id)
    assert code == 0
    assert f"exchange_id: {attempt.exchange_id}\n" in out
    assert "status: 200\n" in out
    assert "deliveries: 3\n" in out
    listed = [line.split()[0] for line in out.splitlines()[-3:]]
    assert listed == sorted(d.id for d in deliveries)
    code, out, _ = invoke("deliveries", "exchange", attempt.exchange_id, "--json")
    shown = json.loads(out)
    assert (shown["status"], shown["deliveries"]) == (200, 3)
    assert {(a["attempt"], a["verdict"]) for a in shown["attempts"]} == {(1, "delivered")}
    code, _, err = invoke("deliveries", "exchange", "exc_unknown")
    assert code == 1
    assert "no exchange with id 'exc_unknown'" in err
