"""
The SQLite machinery every part of :class:`~pendo_webhooks.storage.SQLiteStorage` shares.

Opening a file, checking that it is ours *before* changing a byte of it,
migrating its schema, one connection per thread, and write transactions that
start with ``BEGIN IMMEDIATE`` (so a read-then-write cannot hit ``SQLITE_BUSY``
half-way in WAL mode).

Durability is chosen per transaction. Every thread's connection runs at the store's
``synchronous`` mode (``FULL`` by default: each commit is fsynced). Transactions that
ask to be *relaxed* (the outbox's claims, releases and outcomes) run on a second
connection of the thread that rests at ``outcome_synchronous`` (``NORMAL`` by
default), so no connection ever switches modes (switching cost two statements per
transaction). In WAL mode a commit at ``NORMAL`` is written to the log but not
fsynced, and the next ``FULL`` commit's fsync of the log (or a checkpoint, which
always syncs) covers it, because the log is one file replayed in order: a power loss
can only take a *suffix* of commits, all of them made at the weaker mode since the
last sync. An application crash loses nothing in either mode.

Connection settings for throughput (measured in ``benchmarks/RESULTS.md``): a WAL
auto-checkpoint every :data:`AUTOCHECKPOINT_PAGES` pages instead of 1,000 (fewer,
larger checkpoints, out of most commits' way), the log truncated back to
:data:`JOURNAL_SIZE_LIMIT` bytes after one that grew past it, and a prepared
statement cache large enough for every statement of the library.

Strictly private.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..exceptions import ConfigurationError, StorageError
from ..model._webhook import Webhook
from ._codec import PlaintextCodec
from ._protocol import SecretCodec
from ._schema import APPLICATION_ID, LATEST_VERSION, apply_migrations
from ._sql import closed_error, enter_self, exit_closing, newer_schema, store_repr


__all__ = [
    "AUTOCHECKPOINT_PAGES",
    "JOURNAL_SIZE_LIMIT",
    "PID",
    "RowMemo",
    "SQLiteCore",
    "WebhookReads",
    "from_utc_iso",
    "utc_iso",
]

_SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")

#: WAL pages between automatic checkpoints: SQLite's default of 1,000 checkpoints every
#: ~110 deliveries (about 9 pages each), copying 1.4 pages to the database file and
#: fsyncing it once every ~110 deliveries; 4,000 (a 16 MiB log) copies 0.55 and fsyncs
#: once every ~450. 10,000 gains little more, and a fresh log, whose fsyncs cost more
#: while it grows, takes longer to reach its size.
AUTOCHECKPOINT_PAGES = 4_000

#: Bytes a WAL file is truncated back to after a checkpoint, if it grew past them
#: (while a long read kept a checkpoint from finishing, say).
JOURNAL_SIZE_LIMIT = 32 * 1024 * 1024

# sqlite3 caches prepared statements per connection by their text (LRU); ours are about
# 50 fixed ones plus sized variants (first-seen batches, Segment IN lists).
_CACHED_STATEMENTS = 256

_V = TypeVar("_V")

# Connections inherited across fork(): closing them in the child could disturb the parent's
# locks, so the child keeps them, unused, until it exits.
_FORK_ORPHANS: list[sqlite3.Connection] = []

#: This process's id, kept current across fork() without a system call per statement.
PID = [os.getpid()]
if hasattr(os, "register_at_fork"):  # pragma: no branch - every POSIX system has it
    os.register_at_fork(after_in_child=lambda: PID.__setitem__(0, os.getpid()))


# The last moment formatted: one delivery's row repeats the same datetime object in up to
# five columns (created, updated, due, lease). Datetimes are immutable, and the pair is
# replaced in one assignment, so a thread reads either the old pair or the new one.
_LAST_ISO: list[tuple[datetime, str]] = [(datetime.min, "")]


def utc_iso(moment: datetime) -> str:
    """
    Format *moment* as fixed-width ISO-8601 UTC text that sorts like the time it shows.
    """
    last = _LAST_ISO[0]
    if last[0] is moment:
        return last[1]
    utc = moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
    text = utc.isoformat(timespec="microseconds")
    _LAST_ISO[0] = (moment, text)
    return text


def from_utc_iso(text: str) -> datetime:
    """
    Parse text written by :func:`utc_iso` back into an aware UTC datetime.
    """
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def _synchronous_mode(name: str, value: str) -> str:
    mode = value.upper() if isinstance(value, str) else value
    if mode not in _SYNCHRONOUS_MODES:
        msg = f"{name} must be one of {', '.join(_SYNCHRONOUS_MODES)}"
        raise ConfigurationError(msg)
    return str(mode)


class RowMemo(Generic[_V]):
    """
    Objects built from stored rows, reused while their row reads back unchanged.

    Keyed by id; an entry holds the row's values and what was built from them, so
    any change to the row (from this process or another) builds afresh. Thread-safe;
    forgets everything past *size* entries. Strictly private.

    >>> memo: RowMemo[str] = RowMemo()
    >>> memo.put("wh_1", ("wh_1", 3, "https://a.example/"), "built")
    >>> memo.get("wh_1", ("wh_1", 3, "https://a.example/")), memo.get("wh_1", ("wh_1", 4, "x"))
    ('built', None)
    """

    __slots__ = ("_items", "_lock", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: dict[str, tuple[tuple[object, ...], _V]] = {}

    def __repr__(self) -> str:
        return f"<RowMemo({len(self._items)} entries)>"

    def get(self, key: str, values: tuple[object, ...]) -> _V | None:
        """
        Return what was built from exactly *values* for *key*, if it is still here.
        """
        found = self._items.get(key)
        if found is not None and found[0] == values:
            return found[1]
        return None

    def put(self, key: str, values: tuple[object, ...], built: _V) -> None:
        """
        Remember *built* as made from *values* for *key*.
        """
        with self._lock:
            if len(self._items) >= self._size and key not in self._items:
                self._items.clear()
            self._items[key] = (values, built)

    def forget(self, key: str) -> None:
        """
        Drop *key*'s entry, if any.
        """
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        """
        Drop every entry.
        """
        with self._lock:
            self._items.clear()


class WebhookReads:
    """
    What the store's webhook reads found, at one ``webhooks_version``. Strictly private.

    ``state`` is one ``(version, found)`` pair, replaced whole, so a reader never
    pairs one version with another's findings. Entries of an older version are
    dropped as soon as a newer one is kept: at most one per webhook id and one per
    category.

    >>> reads = WebhookReads()
    >>> reads.keep(3, ("category", "npsSubmitted"), ())
    >>> reads.state
    (3, {('category', 'npsSubmitted'): ()})
    >>> reads.keep(4, ("id", "wh_1"), ())
    >>> reads.keep(3, ("id", "wh_2"), ())  # older than what is kept: ignored
    >>> reads
    <WebhookReads at version 4, 1 entries>
    """

    __slots__ = ("_lock", "state")

    def __init__(self) -> None:
        self.state: tuple[int, dict[tuple[str, str], tuple[Webhook, ...]]] = (-1, {})
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<WebhookReads at version {self.state[0]}, {len(self.state[1])} entries>"

    def keep(self, version: int, key: tuple[str, str], found: tuple[Webhook, ...]) -> None:
        """
        Remember *found* for *key* at *version* (older versions are forgotten).
        """
        with self._lock:
            known, entries = self.state
            if version > known:
                self.state = (version, {key: found})
            elif version == known:
                entries[key] = found

    def clear(self) -> None:
        """
        Forget everything.
        """
        with self._lock:
            self.state = (-1, {})


class _Slot:
    """
    One thread's connection; closes it when the thread ends. Strictly private.
    """

    __slots__ = ("__weakref__", "conn", "pid")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.pid = os.getpid()

    def __del__(self) -> None:
        if self.pid == os.getpid():
            self.conn.close()
        else:  # pragma: no cover - only in a forked child
            _FORK_ORPHANS.append(self.conn)


class SQLiteCore:
    """
    Connections, file checks, migrations and transactions. Strictly private.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        outcome_synchronous: str = "NORMAL",
        busy_timeout: float = 10.0,
        secret_codec: SecretCodec | None = None,
    ) -> None:
        text = os.fspath(path)
        if not isinstance(text, str) or not text or text == ":memory:" or text.startswith("file:"):
            msg = (
                "path must name a database file; for a store in memory use InMemoryStorage "
                "(each thread would get its own empty ':memory:' database)"
            )
            raise ConfigurationError(msg)
        mode = _synchronous_mode("synchronous", synchronous)
        outcome_mode = _synchronous_mode("outcome_synchronous", outcome_synchronous)
        if (
            isinstance(busy_timeout, bool)
            or not isinstance(busy_timeout, int | float)
            or not 0 < busy_timeout <= 600
        ):
            msg = "busy_timeout must be a number of seconds, more than 0 and at most 600"
            raise ConfigurationError(msg)
        self._path = Path(text)
        self._synchronous = mode
        self._outcome_synchronous = outcome_mode
        self._busy_timeout = float(busy_timeout)
        self._codec: SecretCodec = PlaintextCodec() if secret_codec is None else secret_codec
        self._local = threading.local()
        self._lock = threading.Lock()
        self._slots: weakref.WeakSet[_Slot] = weakref.WeakSet()
        self._closed = False
        # Webhooks built from their rows (decoding secrets, validating every field costs
        # tens of microseconds), reused while the row is unchanged.
        self._webhook_memo: RowMemo[Webhook] = RowMemo()
        # What get_webhook and webhooks_for found, while no webhook changed.
        self._webhook_reads = WebhookReads()
        slot = self._open(self._synchronous)
        try:
            self._prepare(slot.conn)
        except sqlite3.Error as exc:
            slot.conn.close()
            msg = f"cannot use {self._path}: {exc}"
            raise StorageError(msg) from exc
        except BaseException:
            slot.conn.close()
            raise
        self._local.slot = slot
        self._slots.add(slot)

    @property
    def path(self) -> Path:
        """
        The database file.
        """
        return self._path

    def __repr__(self) -> str:
        return store_repr(self, f"path={str(self._path)!r}", closed=self._closed)

    __enter__ = enter_self
    __exit__ = exit_closing

    def close(self) -> None:
        """
        Close every connection this object opened; later calls raise StorageError.

        Call it once no other thread is using the store. Closing twice is harmless.
        """
        with self._lock:
            self._closed = True
            slots = list(self._slots)
            self._slots.clear()
        for slot in slots:
            slot.conn.close()
        self._webhook_memo.clear()
        self._webhook_reads.clear()

    # -- connections -----------------------------------------------------------------------

    def _open(self, mode: str) -> _Slot:
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # only close() crosses threads
                cached_statements=_CACHED_STATEMENTS,
            )
        except sqlite3.Error as exc:
            msg = f"cannot open {self._path}: {exc}"
            raise StorageError(msg) from exc
        try:
            conn.row_factory = sqlite3.Row
            # Per-connection settings: none of them writes to the file (some read it).
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000):d}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA synchronous = {mode}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES:d}")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT:d}")
        except sqlite3.Error as exc:
            conn.close()
            msg = f"{self._path} is not a usable SQLite database ({exc}); it was left as it was"
            raise StorageError(msg) from exc
        return _Slot(conn)

    def _connection(self, relaxed: bool = False) -> sqlite3.Connection:
        """
        This thread's connection; with *relaxed*, the one at ``outcome_synchronous``.
        """
        name = "relaxed" if relaxed and self._outcome_synchronous != self._synchronous else "slot"
        slot: _Slot | None = getattr(self._local, name, None)
        if slot is not None and slot.pid == PID[0] and not self._closed:
            return slot.conn
        with self._lock:
            if self._closed:
                raise closed_error(self)
            mode = self._outcome_synchronous if name == "relaxed" else self._synchronous
            slot = self._open(mode)
            self._slots.add(slot)
        setattr(self._local, name, slot)
        return slot.conn

    def _discard(self, conn: sqlite3.Connection) -> None:
        """
        Close *conn*; if it is one of this thread's, the thread opens a new one next time.
        """
        for name in ("slot", "relaxed"):
            slot: _Slot | None = getattr(self._local, name, None)
            if slot is not None and slot.conn is conn:
                setattr(self._local, name, None)
                with self._lock:
                    self._slots.discard(slot)
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    # -- opening checks and migrations -----------------------------------------------------

    def _inspect(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        # Reads only: a foreign or damaged file must come out of here byte-for-byte unchanged.
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return int(app_id), int(version), int(objects)

    def _check(self, app_id: int, version: int, objects: int) -> None:
        if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or objects != 0):
            msg = (
                f"{self._path} is not a pendo-webhooks database (application_id {app_id}, "
                f"{objects} schema objects); refusing to modify it"
            )
            raise StorageError(msg)
        if version > LATEST_VERSION:
            raise newer_schema(str(self._path), f"schema version {version}", LATEST_VERSION)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        state = self._inspect(conn)
        self._check(*state)
        mode = switch_to_wal(conn, timeout=self._busy_timeout)
        if str(mode).lower() != "wal":  # pragma: no cover - filesystems without shared memory
            msg = f"cannot switch {self._path} to WAL mode (it stays in {mode!r} mode)"
            raise StorageError(msg)
        if state[0] == APPLICATION_ID and state[1] == LATEST_VERSION:
            return
        with self._transaction(conn):
            # Another process may have created or migrated the file since we looked.
            app_id, version, objects = self._inspect(conn)
            self._check(app_id, version, objects)
            apply_migrations(conn, version, utc_iso(datetime.now(timezone.utc)))

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(
        self, conn: sqlite3.Connection | None = None, *, relaxed: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """
        Run the body as one write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, or ROLLBACK.

        With *relaxed*, on the thread's connection at ``outcome_synchronous`` (see the
        module's docstring); a connection given as *conn* commits at its own mode.
        sqlite3 errors come out as StorageError; the library's own errors pass
        unchanged. A connection found closed is dropped, and its thread opens another.
        """
        conn = self._connection(relaxed) if conn is None else conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if isinstance(exc, sqlite3.ProgrammingError):
                self._discard(conn)
            msg = f"cannot start a write transaction on {self._path}: {exc}"
            raise StorageError(msg) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise self._write_failed(conn, exc) from exc
        except BaseException:
            _rollback(conn)
            raise

    def _write_failed(self, conn: sqlite3.Connection, exc: sqlite3.Error) -> StorageError:
        """
        The error for a failed write on *conn*; a connection found closed is dropped.
        """
        if isinstance(exc, sqlite3.ProgrammingError):
            self._discard(conn)
        return StorageError(f"writing to {self._path} failed: {exc}")

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        conn = self._connection()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            msg = f"reading {self._path} failed: {exc}"
            raise StorageError(msg) from exc


def _rollback(conn: sqlite3.Connection) -> None:
    # The transaction's own error is the one worth reporting; a failed ROLLBACK (none active,
    # because SQLite already rolled back) adds nothing.
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def switch_to_wal(
    conn: Any,
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """
    Put the file in WAL mode and return the journal mode it is in, waiting out other openers.

    Two processes opening a new file at once can both hold a read lock and both want the
    exclusive lock the switch needs; SQLite then answers one of them "database is locked"
    at once, without calling the busy handler (waiting could deadlock). The statement holds
    no lock once it has failed, so it is tried again, backing off from 5 ms to 100 ms, until
    *timeout* seconds have passed; then the error stands.

    >>> class Locked:
    ...     def __init__(self): self.calls = 0
    ...     def execute(self, sql):
    ...         self.calls += 1
    ...         if self.calls < 3:
    ...             raise sqlite3.OperationalError("database is locked")
    ...         return self
    ...     def fetchone(self): return ("wal",)
    >>> conn = Locked()
    >>> switch_to_wal(conn, timeout=1.0, sleep=lambda s: None), conn.calls
    ('wal', 3)
    """
    deadline = clock() + timeout
    pause = 0.005
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or clock() >= deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, 0.1)
