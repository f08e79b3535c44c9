"""
SQLiteStorage's throughput settings, and that none of them weakens a guarantee.

* durability per transaction: enqueues (and every admin change) commit at
  ``synchronous``, claims, releases and outcomes at ``outcome_synchronous``, each
  on its own connection of the thread, so no connection ever switches modes;
* the Webhook built from a row is reused only while the row reads back identical,
  so every read still sees the stored state;
* connection settings: WAL auto-checkpoint, journal size limit.
"""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pendo_webhooks.dispatcher import DeliveryStatus, Dispatcher
from pendo_webhooks.events import EventCategory, new_unique_id
from pendo_webhooks.exceptions import ConfigurationError, StorageError, UnknownWebhook
from pendo_webhooks.registry import Actor, Webhook, WebhookRegistry, new_id
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.storage._sqlite_core import (
    AUTOCHECKPOINT_PAGES,
    JOURNAL_SIZE_LIMIT,
    RowMemo,
    SQLiteCore,
    from_utc_iso,
    utc_iso,
)
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event

from .test_outbox_contract import T0, attempt_for, claim, delivery, finished, hook


ADMIN = Actor("u-1", is_admin=True)
NORMAL, FULL, EXTRA = 1, 2, 3
NPS = EventCategory.NPS_SUBMITTED


@pytest.fixture(name="path")
def _path(tmp_path: Path) -> Path:
    return tmp_path / "tuned.sqlite3"


@pytest.fixture(name="store")
def _store(path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(path) as storage:
        yield storage


def mode_of(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


class Trace:
    """
    The statements one SQLiteStorage connection runs, as sqlite3 traces them.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.statements: list[str] = []
        conn.set_trace_callback(self.statements.append)

    def pragmas(self) -> list[str]:
        return [s for s in self.statements if s.startswith("PRAGMA synchronous")]

    def around_begin(self) -> tuple[str, str]:
        """
        The statements just before the first BEGIN and just after the last COMMIT.
        """
        begin = self.statements.index("BEGIN IMMEDIATE")
        commit = len(self.statements) - 1 - self.statements[::-1].index("COMMIT")
        after = self.statements[commit + 1] if commit + 1 < len(self.statements) else ""
        before = self.statements[begin - 1] if begin else ""
        return before, after


class TestDurabilityPerTransaction:
    def test_defaults_full_for_enqueues_normal_for_outcomes(self, store: SQLiteStorage) -> None:
        """
        Enqueues commit on the thread's FULL connection; an outcome on its NORMAL one.
        """
        webhook = hook(store)
        conn = store._connection()
        assert mode_of(conn) == FULL
        new = delivery(webhook.id)
        trace = Trace(conn)
        assert store.enqueue_deliveries([new]) == [None]
        assert "COMMIT" in trace.statements  # durable before any send
        (claimed,) = claim(store, webhook_id=webhook.id)
        now = T0 + timedelta(seconds=1)
        relaxed = store._connection(relaxed=True)
        assert relaxed is not conn
        assert mode_of(relaxed) == NORMAL
        main_trace, relaxed_trace = Trace(conn), Trace(relaxed)
        written = store.record_outcome(
            finished(claimed, DeliveryStatus.DELIVERED, now),
            attempt_for(claimed),
            owner="w1",
            now=now,
        )
        assert written
        assert main_trace.statements == []
        assert relaxed_trace.statements[0] == "BEGIN IMMEDIATE"
        assert relaxed_trace.statements[-1] == "COMMIT"
        assert trace.pragmas() == relaxed_trace.pragmas() == []  # no mode is ever switched
        assert (mode_of(conn), mode_of(relaxed)) == (FULL, NORMAL)
        assert store.get_delivery(new.id).status is DeliveryStatus.DELIVERED

    def test_claims_and_releases_are_relaxed_too(self, store: SQLiteStorage) -> None:
        """
        Claiming and releasing only move a lease: they commit at outcome_synchronous.
        """
        webhook = hook(store)
        store.enqueue_deliveries([delivery(webhook.id)])
        main_trace = Trace(store._connection())
        relaxed_trace = Trace(store._connection(relaxed=True))
        (claimed,) = claim(store)
        assert store.release_claims([claimed.id], owner="w1", now=T0) == 1
        assert relaxed_trace.statements.count("COMMIT") == 2
        assert "COMMIT" not in main_trace.statements

    @pytest.mark.parametrize(
        ("kwargs", "resting"),
        [
            ({"outcome_synchronous": "FULL"}, FULL),
            ({"synchronous": "NORMAL"}, NORMAL),
            ({"synchronous": "extra", "outcome_synchronous": "Extra"}, EXTRA),
        ],
    )
    def test_one_connection_when_both_modes_agree(
        self, path: Path, kwargs: dict[str, str], resting: int
    ) -> None:
        """
        With outcome_synchronous equal to synchronous, outcomes share the one connection.
        """
        with SQLiteStorage(path, **kwargs) as store:
            webhook = hook(store)
            store.enqueue_deliveries([delivery(webhook.id)])
            conn = store._connection()
            assert store._connection(relaxed=True) is conn
            trace = Trace(conn)
            (claimed,) = claim(store)
            store.record_outcome(
                finished(claimed, DeliveryStatus.DELIVERED, T0), None, owner="w1", now=T0
            )
            assert trace.statements.count("COMMIT") == 2
            assert trace.pragmas() == []
            assert mode_of(conn) == resting

    def test_outcome_mode_may_be_stronger(self, path: Path) -> None:
        """
        synchronous="NORMAL" with outcome_synchronous="FULL": outcomes commit at FULL.
        """
        with SQLiteStorage(path, synchronous="NORMAL", outcome_synchronous="FULL") as store:
            conn = store._connection()
            with store._transaction(relaxed=True) as inside:
                assert mode_of(inside) == FULL
            assert mode_of(conn) == NORMAL

    def test_every_thread_gets_the_same_split(self, store: SQLiteStorage) -> None:
        """
        A new thread gets its own pair of connections: FULL, and NORMAL for outcomes.
        """
        seen: list[tuple[int, int, bool]] = []
        mine = (store._connection(), store._connection(relaxed=True))

        def work() -> None:
            with store._transaction(relaxed=True) as inside:
                during = mode_of(inside)
                relaxed = inside
            with store._transaction() as inside:
                plain = mode_of(inside)
                fresh = inside not in mine and relaxed not in mine and inside is not relaxed
            seen.append((during, plain, fresh))

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert seen == [(NORMAL, FULL, True)]

    def test_a_failing_body_rolls_back(self, store: SQLiteStorage) -> None:
        """
        An exception inside a relaxed transaction rolls it back; the connection stays usable.
        """
        conn = store._connection(relaxed=True)

        def fail() -> None:
            with store._transaction(relaxed=True) as inside:
                inside.execute("CREATE TABLE scratch (x)")
                raise UnknownWebhook("wh_none")

        with pytest.raises(UnknownWebhook):
            fail()
        assert store._connection(relaxed=True) is conn
        assert mode_of(conn) == NORMAL
        assert conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'scratch'"
        ).fetchone()[0] == (0)

    @pytest.mark.parametrize("relaxed", [False, True])
    def test_a_connection_closed_under_us_is_replaced(
        self, store: SQLiteStorage, relaxed: bool
    ) -> None:
        """
        A transaction on a connection found closed fails; the thread gets a new one.
        """
        old = store._connection(relaxed)
        with pytest.raises(StorageError, match="writing to"):
            with store._transaction(relaxed=relaxed) as inside:
                inside.close()  # so COMMIT fails
        new = store._connection(relaxed)
        assert new is not old
        assert mode_of(new) == (NORMAL if relaxed else FULL)
        assert store.list_webhooks() == []
        old = store._connection(relaxed)
        old.close()
        with pytest.raises(StorageError, match="cannot start a write transaction"):
            with store._transaction(relaxed=relaxed):
                pytest.fail("the body must not run")  # pragma: no cover
        assert store._connection(relaxed) is not old

    def test_a_foreign_connection_is_closed_not_adopted(self, store: SQLiteStorage) -> None:
        """
        The same failure on a connection passed in explicitly leaves the thread's own alone.
        """
        own = store._connection()
        other = sqlite3.connect(store.path, isolation_level=None)
        with pytest.raises(StorageError):
            with store._transaction(other, relaxed=True):
                other.close()
        assert store._connection() is own
        with pytest.raises(sqlite3.ProgrammingError):
            other.execute("SELECT 1")

    def test_a_closed_foreign_connection_raises_storage_error(self, store: SQLiteStorage) -> None:
        """
        A transaction on a closed connection fails before its body, as StorageError.
        """
        closed = sqlite3.connect(store.path, isolation_level=None)
        closed.close()
        with pytest.raises(StorageError, match="cannot start a write transaction"):
            with store._transaction(closed, relaxed=True):
                pytest.fail("the body must not run")  # pragma: no cover

    @pytest.mark.parametrize("bad", ["OFF", "", "full; DROP TABLE webhooks", 1, None])
    def test_bad_outcome_synchronous_is_a_configuration_error(
        self, path: Path, bad: object
    ) -> None:
        """
        outcome_synchronous takes NORMAL, FULL or EXTRA only; anything else names the field.
        """
        with pytest.raises(ConfigurationError, match=r"^outcome_synchronous must be one of"):
            SQLiteStorage(path, outcome_synchronous=bad)  # type: ignore[arg-type]
        assert not path.exists()

    def test_outcomes_survive_a_crash_of_the_process(self, path: Path) -> None:
        """
        An outcome committed at NORMAL survives the process being killed right after it.
        """
        with SQLiteStorage(path) as store:
            webhook_id = hook(store).id
        script = textwrap.dedent(
            f"""
            import os, signal, sys
            sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
            from tests.test_outbox_contract import (
                T0, attempt_for, claim, delivery, finished,
            )
            from pendo_webhooks.dispatcher import DeliveryStatus
            from pendo_webhooks.storage import SQLiteStorage
            store = SQLiteStorage({str(path)!r})
            new = delivery({webhook_id!r}, id="dlv_crash")
            store.enqueue_deliveries([new])
            (claimed,) = claim(store)
            done = finished(claimed, DeliveryStatus.DELIVERED, T0)
            assert store.record_outcome(done, attempt_for(claimed), owner="w1", now=T0)
            os.kill(os.getpid(), signal.SIGKILL)
            """
        )
        child = subprocess.run([sys.executable, "-c", script], check=False, timeout=120)
        assert child.returncode == -9
        with SQLiteStorage(path) as store:
            assert store.get_delivery("dlv_crash").status is DeliveryStatus.DELIVERED
            assert [a.number for a in store.list_attempts("dlv_crash")] == [1]
            conn = store._connection()
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


class TestConnectionSettings:
    def test_checkpoint_and_journal_limits(self, store: SQLiteStorage) -> None:
        """
        Every connection checkpoints every AUTOCHECKPOINT_PAGES pages and caps the WAL file.
        """

        def settings_of(conn: sqlite3.Connection) -> tuple[object, ...]:
            return tuple(
                conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("wal_autocheckpoint", "journal_size_limit", "journal_mode")
            )

        seen = [settings_of(store._connection())]
        thread = threading.Thread(target=lambda: seen.append(settings_of(store._connection())))
        thread.start()
        thread.join()
        assert seen == [(AUTOCHECKPOINT_PAGES, JOURNAL_SIZE_LIMIT, "wal")] * 2
        assert AUTOCHECKPOINT_PAGES * 4096 <= JOURNAL_SIZE_LIMIT

    def test_the_log_grows_past_the_default_and_no_further(self, store: SQLiteStorage) -> None:
        """
        The WAL outgrows SQLite's default 1,000 pages, and checkpoints keep it near the setting.
        """
        with store._transaction() as conn:
            conn.execute("CREATE TABLE filler (x BLOB)")
        frame = 24 + 4096
        written = 0
        while written < 2.5 * AUTOCHECKPOINT_PAGES:
            with store._transaction() as conn:
                conn.executemany("INSERT INTO filler VALUES (zeroblob(4000))", [()] * 1000)
            written += 1000  # one page per row, at least
        size = Path(f"{store.path}-wal").stat().st_size
        # SQLite's default would have kept it under about 2,100 frames here.
        assert AUTOCHECKPOINT_PAGES * frame <= size <= (AUTOCHECKPOINT_PAGES + 1100) * frame
        assert size < written * frame  # so it started over at least once


def fixed_ids(webhook_id: str) -> Callable[[str], str]:
    """
    Ids for a registry: always *webhook_id* for webhooks, fresh ones for audit entries.
    """
    return lambda prefix: webhook_id if prefix == "wh" else new_id(prefix)


def fresh_read(path: Path, webhook_id: str) -> object:
    """
    What a brand-new store (nothing memoized) reads for *webhook_id*.
    """
    with SQLiteStorage(path) as other:
        try:
            return other.get_webhook(webhook_id)
        except UnknownWebhook:
            return None


class TestWebhookMemo:
    def test_an_unchanged_row_gives_the_same_object(self, store: SQLiteStorage) -> None:
        """
        Reading an unchanged webhook again reuses the Webhook built the first time.
        """
        webhook = hook(store)
        first = store.get_webhook(webhook.id)
        assert first == webhook
        assert store.get_webhook(webhook.id) is first
        assert store.webhooks_for(NPS) == [first]
        assert store.webhooks_for(NPS)[0] is first
        assert store.list_webhooks()[0] is first

    def test_registry_changes_are_seen_at_once(self, store: SQLiteStorage) -> None:
        """
        Disabling, editing and deleting show on the next read, through every read method.
        """
        registry = WebhookRegistry(store, clock=FrozenClock(T0))
        webhook = hook(store)
        assert store.webhooks_for(NPS) == [webhook]
        disabled = registry.disable(ADMIN, webhook.id)
        assert store.get_webhook(webhook.id) == disabled
        assert not store.get_webhook(webhook.id).enabled
        assert store.webhooks_for(NPS) == []
        registry.enable(ADMIN, webhook.id)
        edited = registry.update(ADMIN, webhook.id, url="https://hooks.example.com/moved")
        assert store.get_webhook(webhook.id).url == "https://hooks.example.com/moved"
        assert store.webhooks_for(NPS) == [edited]
        registry.delete(ADMIN, webhook.id)
        with pytest.raises(UnknownWebhook):
            store.get_webhook(webhook.id)
        assert store.webhooks_for(NPS) == []

    def test_changes_from_another_process_are_seen(self, store: SQLiteStorage) -> None:
        """
        A change made through another store on the same file (another process) is seen.
        """
        webhook = hook(store)
        store.get_webhook(webhook.id)
        with SQLiteStorage(store.path) as other:
            WebhookRegistry(other, clock=FrozenClock(T0)).disable(ADMIN, webhook.id)
        assert not store.get_webhook(webhook.id).enabled
        assert store.webhooks_for(NPS) == []

    def test_an_edit_behind_the_librarys_back_is_seen(self, store: SQLiteStorage) -> None:
        """
        A row changed by plain SQL, version untouched, still reads as it now is.
        """
        webhook = hook(store)
        store.get_webhook(webhook.id)
        conn = sqlite3.connect(store.path, isolation_level=None)
        conn.execute(
            "UPDATE webhooks SET url = 'https://elsewhere.example.com/' WHERE id = ?",
            (webhook.id,),
        )
        conn.execute("DELETE FROM webhook_categories WHERE webhook_id = ?", (webhook.id,))
        conn.execute(
            "INSERT INTO webhook_categories (category, webhook_id) VALUES ('guideDisplayed', ?)",
            (webhook.id,),
        )
        conn.close()
        now = store.get_webhook(webhook.id)
        assert now.version == webhook.version
        assert now.url == "https://elsewhere.example.com/"
        assert store.webhooks_for(NPS) == []
        assert store.webhooks_for(EventCategory.GUIDE_DISPLAYED) == [now]

    def test_the_same_id_created_again_is_a_new_webhook(self, store: SQLiteStorage) -> None:
        """
        Delete, then create under the same id, version and times: the new content is read.
        """
        registry = WebhookRegistry(store, clock=FrozenClock(T0), ids=fixed_ids("wh_same"))
        first = registry.create(
            ADMIN, name="One", url="https://one.example.com/", categories={"npsSubmitted"}
        )
        assert store.get_webhook("wh_same") == first
        registry.delete(ADMIN, "wh_same")
        second = registry.create(
            ADMIN, name="Two", url="https://two.example.com/", categories={"npsSubmitted"}
        )
        assert (second.id, second.version) == (first.id, first.version)
        assert store.get_webhook("wh_same") == second

    def test_a_failed_build_is_not_memoized(self, store: SQLiteStorage) -> None:
        """
        A row that cannot be built keeps failing; once repaired it reads normally.
        """
        webhook = hook(store)
        conn = sqlite3.connect(store.path, isolation_level=None)
        conn.execute("UPDATE webhooks SET headers = '{bad' WHERE id = ?", (webhook.id,))
        for _ in range(2):
            with pytest.raises(StorageError, match=webhook.id):
                store.get_webhook(webhook.id)
        conn.execute("UPDATE webhooks SET headers = '{}' WHERE id = ?", (webhook.id,))
        conn.close()
        assert store.get_webhook(webhook.id) == webhook

    def test_close_forgets_everything(self, path: Path) -> None:
        """
        Closing the store drops the memo (and the secrets in it).
        """
        store = SQLiteStorage(path)
        hook(store)
        store.list_webhooks()
        assert "1 entries" in repr(store._webhook_memo)
        store.close()
        assert repr(store._webhook_memo) == "<RowMemo(0 entries)>"

    def test_threads_read_only_states_that_were_stored(self, store: SQLiteStorage) -> None:
        """
        Readers in several threads, while another thread edits, only see stored versions.
        """
        registry = WebhookRegistry(store, clock=FrozenClock(T0))
        webhook = hook(store)
        stored = {webhook.version: webhook}
        done = threading.Event()
        reads: list[list[Webhook]] = [[] for _ in range(4)]

        def read(into: list[Webhook]) -> None:
            while not done.is_set():
                into.append(store.get_webhook(webhook.id))

        readers = [threading.Thread(target=read, args=(into,)) for into in reads]
        for thread in readers:
            thread.start()
        try:
            for n in range(40):
                new = registry.update(ADMIN, webhook.id, name=f"Name {n}")
                stored[new.version] = new
        finally:
            done.set()
            for thread in readers:
                thread.join()
        for into in reads:
            assert into
            assert all(stored[w.version] == w for w in into)
            versions = [w.version for w in into]
            assert versions == sorted(versions)  # never an older state after a newer one
        assert store.get_webhook(webhook.id) == stored[max(stored)]

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        steps=st.lists(
            st.sampled_from(["read", "rename", "disable", "enable", "rotate", "raw", "recreate"]),
            max_size=12,
        )
    )
    def test_memoized_reads_equal_fresh_reads(self, tmp_path: Path, steps: list[str]) -> None:
        """
        Whatever happens to a webhook, a memoized read equals a read by a fresh store.
        """
        path = tmp_path / f"memo-{next(_files)}.sqlite3"
        clock = FrozenClock(T0)
        with SQLiteStorage(path) as store:
            registry = WebhookRegistry(store, clock=clock, ids=fixed_ids("wh_prop"))
            registry.create(
                ADMIN, name="P", url="https://p.example.com/", categories={"npsSubmitted"}
            )
            for n, step in enumerate(steps):
                if step == "rename":
                    registry.update(ADMIN, "wh_prop", name=f"P{n}")
                elif step == "disable":
                    registry.disable(ADMIN, "wh_prop")
                elif step == "enable":
                    registry.enable(ADMIN, "wh_prop")
                elif step == "rotate":
                    registry.rotate_secret(ADMIN, "wh_prop")
                elif step == "raw":
                    conn = sqlite3.connect(path, isolation_level=None)
                    conn.execute("UPDATE webhooks SET name = ? WHERE id = 'wh_prop'", (f"R{n}",))
                    conn.close()
                elif step == "recreate":
                    registry.delete(ADMIN, "wh_prop")
                    registry.create(
                        ADMIN,
                        name=f"C{n}",
                        url="https://c.example.com/",
                        categories={"npsSubmitted"},
                    )
                memo = store.get_webhook("wh_prop")
                assert memo == fresh_read(path, "wh_prop")
                enabled = [memo] if memo.enabled else []
                assert store.webhooks_for(NPS) == enabled


_files = itertools.count()


class TestRowMemo:
    def test_get_put_forget(self) -> None:
        """
        An entry answers only for the exact values it was built from, until forgotten.
        """
        memo: RowMemo[str] = RowMemo()
        assert memo.get("a", (1, "x")) is None
        memo.put("a", (1, "x"), "built")
        assert memo.get("a", (1, "x")) == "built"
        assert memo.get("a", (1, "y")) is None
        assert memo.get("a", (1, "x", None)) is None
        memo.forget("a")
        memo.forget("never")
        assert memo.get("a", (1, "x")) is None

    def test_bounded(self) -> None:
        """
        Past its size it starts over, so deleted webhooks cannot pile up.
        """
        memo: RowMemo[int] = RowMemo(size=2)
        memo.put("a", (), 1)
        memo.put("b", (), 2)
        memo.put("a", (0,), 3)  # replacing an entry does not count
        assert (memo.get("a", (0,)), memo.get("b", ())) == (3, 2)
        memo.put("c", (), 4)
        assert (memo.get("a", (0,)), memo.get("b", ()), memo.get("c", ())) == (None, None, 4)

    def test_repr_shows_no_values(self) -> None:
        """
        The repr counts entries; it never shows what they hold.
        """
        memo: RowMemo[str] = RowMemo()
        memo.put("wh_1", ("secret-value",), "built-secret")
        assert repr(memo) == "<RowMemo(1 entries)>"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 1, 14, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 3, 1, 12, 30, 0, 5, tzinfo=ZoneInfo("UTC")),
        datetime(2026, 3, 1, 12, 30, 0, 5, tzinfo=timezone.utc),
    ],
)
def test_utc_iso_is_one_fixed_width_text_per_instant(moment: datetime) -> None:
    """
    Any aware time is stored as the same UTC text, microseconds always written.
    """
    assert utc_iso(moment) == "2026-03-01T12:30:00.000005+00:00"
    assert from_utc_iso(utc_iso(moment)) == moment


def test_utc_iso_repeated_and_alternating_moments() -> None:
    """
    The same moment formatted again, or moments alternating, always give their own text.
    """
    first = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    second = first + timedelta(microseconds=1)
    texts = [utc_iso(m) for m in (first, first, second, first, second, second)]
    one, two = "2026-03-01T12:30:00.000000+00:00", "2026-03-01T12:30:00.000001+00:00"
    assert texts == [one, one, two, one, two, two]


def test_utc_iso_from_many_threads() -> None:
    """
    Threads formatting different moments at once each get their own moment's text.
    """
    moments = [datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=n) for n in range(8)]
    expected = [m.isoformat(timespec="microseconds") for m in moments]
    wrong: list[str] = []

    def work(n: int) -> None:
        for _ in range(2000):
            if utc_iso(moments[n]) != expected[n]:
                wrong.append(expected[n])  # pragma: no cover - the failure under test

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []


# -- what each durability level is allowed to commit ------------------------------------------

# Statements that create or change what must be sent (or who it goes to): they must commit
# at ``synchronous``, never at the relaxed ``outcome_synchronous``.
_MUST_BE_DURABLE = (
    "INSERT INTO deliveries",
    "INSERT INTO first_seen",
    "INSERT INTO webhooks",
    "UPDATE webhooks",
    "DELETE FROM webhooks",
    "INSERT INTO webhook_categories",
    "DELETE FROM webhook_categories",
    "INSERT INTO exclusions",
    "DELETE FROM exclusions",
    "INSERT INTO audit_log",
)
_REDELIVERING = "SET status = 'pending', next_attempt_at"


def _sends_or_admin(statement: str) -> bool:
    return statement.startswith(_MUST_BE_DURABLE) or _REDELIVERING in statement


_WRITES = ("INSERT", "UPDATE", "DELETE")


class CommitLog:
    """
    Every transaction any connection of a store commits, with that connection's level.

    Installed on SQLiteCore._open, so every connection (of every thread, the relaxed ones
    too) is recorded; a connection's level is read once, when it is opened, and the log
    also keeps any later ``PRAGMA synchronous`` (there must be none).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commits: list[tuple[int, list[str]]] = []
        self.sends: list[int] = []  # len(self.commits) at each send
        self.pragmas: list[str] = []
        self._lock = threading.Lock()
        opened = SQLiteCore._open

        def record(core: SQLiteCore, mode: str) -> Any:
            slot = opened(core, mode)
            level = mode_of(slot.conn)
            body: list[str] = []

            def trace(statement: str) -> None:
                text = " ".join(statement.split())
                if text == "BEGIN IMMEDIATE":
                    body.clear()
                elif text == "COMMIT":
                    with self._lock:
                        self.commits.append((level, list(body)))
                elif text.startswith("PRAGMA synchronous"):
                    self.pragmas.append(text)
                elif not slot.conn.in_transaction and text.startswith(_WRITES):
                    # An autocommit write (a lone enqueue's one statement) commits alone.
                    with self._lock:
                        self.commits.append((level, [text]))
                else:
                    body.append(text)

            slot.conn.set_trace_callback(trace)
            return slot

        monkeypatch.setattr(SQLiteCore, "_open", record)

    def on_send(self, request: object) -> None:
        with self._lock:
            self.sends.append(len(self.commits))

    def levels(self, wanted: Callable[[str], bool]) -> set[int]:
        return {level for level, body in self.commits if any(wanted(s) for s in body)}


def _outcome(statement: str) -> bool:
    # Not the schema migration's delivery_attempts_8.
    return statement.startswith(
        ("UPDATE deliveries SET status = ?", "INSERT INTO delivery_attempts (")
    )


def _every_kind_of_write(path: Path, log: CommitLog, **kwargs: str) -> int:
    """
    Admin changes, dispatch() (delivered and retried), the worker's path, group commit, redeliver.

    Returns the level at which a dispatch()'s delivery was committed before its request.
    """
    clock = FrozenClock(T0)
    storage = SQLiteStorage(path, **kwargs)
    registry = WebhookRegistry(storage, clock=clock)
    transport = RecordingTransport([200, 503], on_send=log.on_send)
    created = registry.create(
        ADMIN, name="Hook", url="https://hooks.example.com/in", secret="s", categories=[NPS]
    )
    registry.enable(ADMIN, created.id)
    rule = registry.add_exclusion(ADMIN, "visitor", "internal-*")
    registry.remove_exclusion(ADMIN, rule.id)
    with Dispatcher(registry, storage, transport=transport, clock=clock, sleep=clock.sleep) as d:
        first = d.dispatch(sample_event(NPS, unique_id=new_unique_id()))
        assert first.all_delivered
        log.sends.clear()  # from here on: is each dispatch()'s enqueue committed before its send?
        before = len(log.commits)
        retried = d.dispatch(sample_event(NPS, unique_id=new_unique_id()))
        assert retried.outcomes[0].outcome.value == "retry"
        (at_send,) = log.sends
        assert at_send > before  # the enqueue's commit came before the request
        stored_at, body = log.commits[at_send - 1]
        assert any(s.startswith("INSERT INTO deliveries") for s in body)
        threads = [
            threading.Thread(
                target=d.enqueue, args=(sample_event(NPS, unique_id=new_unique_id()),)
            )
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        clock.advance(timedelta(minutes=5))
        assert d.drain(timeout=5).delivered == 5
        d.redeliver(first.outcomes[0].delivery_id or "")
        assert d.drain(timeout=5).delivered == 1
    storage.close()
    return stored_at


class TestWhatEachLevelCommits:
    """
    Observed on every connection: nothing that decides what is sent commits at the relaxed level.
    """

    def test_default_relaxes_only_the_bookkeeping(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        FULL for enqueues (dispatch, group commit, worker), admin changes and redelivery;
        NORMAL for outcomes. A relaxed enqueue or admin change would fail this.
        """
        log = CommitLog(monkeypatch)
        assert _every_kind_of_write(path, log) == FULL
        assert log.pragmas == []
        assert log.levels(_sends_or_admin) == {FULL}
        assert log.levels(_outcome) == {NORMAL}
        relaxed = [body for level, body in log.commits if level == NORMAL]
        assert relaxed
        assert not any(_sends_or_admin(s) for body in relaxed for s in body)
        redelivered = [body for _, body in log.commits if any(_REDELIVERING in s for s in body)]
        assert redelivered  # the classification saw the redelivery (it is not vacuous)

    @pytest.mark.parametrize(
        ("kwargs", "level"),
        [
            ({"synchronous": "NORMAL"}, NORMAL),
            ({"outcome_synchronous": "FULL"}, FULL),
            ({"synchronous": "EXTRA", "outcome_synchronous": "EXTRA"}, EXTRA),
        ],
    )
    def test_one_level_when_configured_so(
        self, path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, str], level: int
    ) -> None:
        """
        A store set to NORMAL stays NORMAL everywhere; outcomes at FULL are fsynced too.
        """
        log = CommitLog(monkeypatch)
        assert _every_kind_of_write(path, log, **kwargs) == level
        assert log.pragmas == []
        assert {lvl for lvl, _ in log.commits} == {level}
        assert log.levels(_outcome) == log.levels(_sends_or_admin) == {level}
