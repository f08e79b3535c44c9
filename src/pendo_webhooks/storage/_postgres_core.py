"""
The PostgreSQL machinery every part of :class:`~pendo_webhooks.storage.PostgresStorage` shares.

A connection pool (psycopg_pool), the schema checked and migrated once at
start, transactions that are retried on a serialization failure or deadlock,
and psycopg errors turned into :class:`~pendo_webhooks.exceptions.StorageError`
without quoting row data (a constraint error's DETAIL would show the row, and
with it a secret).

Strictly private.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import psycopg
from psycopg import Connection, Cursor, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, TupleRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ..exceptions import ConfigurationError, StorageError
from ._codec import PlaintextCodec
from ._postgres_schema import (
    DEFAULT_SCHEMA,
    LATEST_VERSION,
    MIGRATIONS,
    check_schema_name,
    lock_key,
    schema_state,
)
from ._postgres_schema import migrate as migrate_schema
from ._protocol import SecretCodec
from ._sql import closed_error, enter_self, exit_closing, store_repr


if TYPE_CHECKING:
    from typing_extensions import LiteralString


__all__ = ["PostgresCore", "host_cursor", "host_unit"]

_T = TypeVar("_T")

# A transaction that lost a serialization race or a deadlock is run again, this many times.
_RETRIES = 3
_RETRY_STATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected

# Pools inherited across fork(): their sockets belong to the parent, so the child must never
# close them (libpq would tell the server to end the parent's sessions). Kept until exit.
_FORK_ORPHANS: list[ConnectionPool[Connection[TupleRow]]] = []


def storage_error(action: str, exc: psycopg.Error) -> StorageError:
    """
    A StorageError for *exc* naming its SQLSTATE and primary message, never its DETAIL.
    """
    diag = exc.diag
    # Without a server message, the error is libpq's or psycopg's own: no row data in it.
    primary = diag.message_primary or " ".join(str(exc).split()) or type(exc).__name__
    state = f" [{diag.sqlstate}]" if diag.sqlstate else ""
    return StorageError(f"{action} failed{state}: {primary}")


def raise_storage_error(action: str, exc: psycopg.Error) -> NoReturn:
    """
    Raise :func:`storage_error`; chained only to errors that carry no row data.
    """
    # Errors from the server may carry row values in their DETAIL; keep them out of tracebacks.
    cause = None if exc.diag.message_detail else exc
    raise storage_error(action, exc) from cause


# What a host connection that cannot take writes is doing, in words.
_STATES = {
    TransactionStatus.ACTIVE: "busy running a statement",
    TransactionStatus.INERROR: "in a failed transaction",
    TransactionStatus.UNKNOWN: "in an unknown state (the connection is broken)",
}


def _host_connection(conn: object) -> Connection[Any]:
    """
    *conn* if it is a synchronous psycopg connection that can take writes now.
    """
    if not isinstance(conn, Connection):
        msg = (
            "connection must be a psycopg 3 Connection (psycopg.connect() or a pool's), "
            f"not {type(conn).__name__}"
        )
        raise ConfigurationError(msg)
    status = conn.info.transaction_status
    if conn.closed or status not in (TransactionStatus.IDLE, TransactionStatus.INTRANS):
        state = "closed" if conn.closed else _STATES.get(status, status.name.lower())
        msg = f"connection cannot take writes now (it is {state}); roll back or reconnect first"
        raise ConfigurationError(msg)
    return conn


@contextlib.contextmanager
def host_cursor(conn: object) -> Iterator[Cursor[DictRow]]:
    """
    A cursor on the host's own connection, so that what it writes shares the host's fate.

    * In a transaction (psycopg's default once the host has run a statement, or inside
      ``with conn.transaction()``): the writes go into a savepoint of it, so an error
      here leaves the host's transaction usable; they commit or roll back with it.
    * Idle, not autocommit: the first write opens the host's transaction, left open
      for the host to commit or roll back.
    * Idle, autocommit: each statement commits at once.

    Raises:
        ConfigurationError: If *conn* is not a synchronous psycopg 3 connection, or is
            closed, busy, or in a failed transaction.
        StorageError: If the database fails.
    """
    conn = _host_connection(conn)
    try:
        if conn.info.transaction_status is TransactionStatus.INTRANS:
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield cur
        else:
            with conn.cursor(row_factory=dict_row) as cur:
                yield cur
    except psycopg.Error as exc:
        raise_storage_error("writing through the given connection", exc)


@contextlib.contextmanager
def host_unit(conn: object) -> Iterator[Cursor[DictRow]]:
    """
    Like :func:`host_cursor`, for several statements that must take effect together.

    * In a transaction: a savepoint of it, as :func:`host_cursor`.
    * Idle, not autocommit: the host's transaction is opened (and left open for the host
      to commit or roll back) and the statements go into a savepoint of it, so an error
      here leaves none of them in it.
    * Idle, autocommit: one transaction of their own, committed at the end.

    Raises:
        ConfigurationError: As :func:`host_cursor`.
        StorageError: If the database fails.
    """
    conn = _host_connection(conn)
    try:
        if not conn.autocommit and conn.info.transaction_status is TransactionStatus.IDLE:
            # psycopg sends BEGIN before a statement on an idle connection that is not in
            # autocommit: this opens the host's transaction, which the savepoint goes into.
            conn.execute(b"SELECT 1")
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            yield cur
    except psycopg.Error as exc:
        raise_storage_error("writing through the given connection", exc)


class PostgresCore:
    """
    The pool, the schema, transactions and reads. Strictly private.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        min_connections: int = 1,
        max_connections: int = 10,
        connect_timeout: float = 30.0,
        migrate: bool = True,
        secret_codec: SecretCodec | None = None,
    ) -> None:
        self._schema = check_schema_name(schema)
        self._where = _describe_target(conninfo)
        _check_count("min_connections", min_connections, low=0)
        _check_count("max_connections", max_connections, low=1)
        if max_connections < min_connections:
            msg = "max_connections must be at least min_connections"
            raise ConfigurationError(msg)
        if (
            isinstance(connect_timeout, bool)
            or not isinstance(connect_timeout, int | float)
            or not 0 < connect_timeout <= 3600
        ):
            msg = "connect_timeout must be a number of seconds, more than 0 and at most 3600"
            raise ConfigurationError(msg)
        self._conninfo = conninfo
        self._min = min_connections
        self._max = max_connections
        self._timeout = float(connect_timeout)
        self._codec: SecretCodec = PlaintextCodec() if secret_codec is None else secret_codec
        self._ident = sql.Identifier(self._schema)
        self._queries: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._prepare(migrate=migrate)
        self._pid = os.getpid()
        self._pool_obj = self._new_pool()

    # -- public surface shared by every part ------------------------------------------------

    @property
    def schema(self) -> str:
        """
        The PostgreSQL schema holding the tables.
        """
        return self._schema

    def __repr__(self) -> str:
        return store_repr(self, f"{self._where}, schema={self._schema!r}", closed=self._closed)

    __enter__ = enter_self
    __exit__ = exit_closing

    def close(self) -> None:
        """
        Close the pool and its connections; later calls raise StorageError.

        Closing twice is harmless. Connections the host passed in are the host's and stay open.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool = self._pool_obj
        if self._pid == os.getpid():
            pool.close()

    def drop_schema(self) -> None:
        """
        Delete the schema with every table in it (all of the library's data), then close.

        For tests and uninstalling. It checks first that the schema is one the library
        made; a foreign schema of the same name raises StorageError and stays.
        """

        def drop(cur: Cursor[DictRow]) -> None:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(self._schema),))
            schema_state(cur.connection, self._schema)
            cur.execute(self._q("DROP SCHEMA IF EXISTS {schema} CASCADE"))

        self._write("dropping the schema", drop)
        self.close()

    # -- schema ------------------------------------------------------------------------------

    def _prepare(self, *, migrate: bool) -> None:
        try:
            with psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=max(1, int(self._timeout))
            ) as conn:
                self._migrate(conn, migrate=migrate)
        except psycopg.Error as exc:
            raise_storage_error(
                f"opening PostgreSQL schema {self._schema!r} at {self._where}", exc
            )

    def _migrate(self, conn: Connection[TupleRow], *, migrate: bool) -> None:
        exists, applied = schema_state(conn, self._schema)
        missing = {m.version for m in MIGRATIONS} - applied
        if not missing:
            return
        if not migrate:
            msg = (
                f"schema {self._schema!r} at {self._where} is not at version {LATEST_VERSION} "
                f"(missing migrations {sorted(missing)}; exists: {exists}); "
                "open it once with migrate=True"
            )
            raise StorageError(msg)
        # The advisory lock inside makes concurrent openers take turns; no retry needed.
        with conn.transaction():
            migrate_schema(conn, self._schema)

    # -- connections -------------------------------------------------------------------------

    def _new_pool(self) -> ConnectionPool[Connection[TupleRow]]:
        pool: ConnectionPool[Connection[TupleRow]] = ConnectionPool(
            self._conninfo,
            min_size=self._min,
            max_size=self._max,
            kwargs={"autocommit": True},
            timeout=self._timeout,
            name=f"pendo_webhooks.{self._schema}",
            open=False,
        )
        pool.open(wait=False)
        return pool

    def _pool(self) -> ConnectionPool[Connection[TupleRow]]:
        if self._pid == os.getpid() and not self._closed:
            return self._pool_obj
        with self._lock:
            if self._closed:
                raise closed_error(self)
            if self._pid != os.getpid():  # pragma: no branch - re-checked under the lock
                _FORK_ORPHANS.append(self._pool_obj)
                self._pool_obj = self._new_pool()
                self._pid = os.getpid()
            return self._pool_obj

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection[TupleRow]]:
        pool = self._pool()
        try:
            with pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            msg = (
                f"no PostgreSQL connection to {self._where} within {self._timeout:g} s "
                f"(max_connections={self._max}): {exc}"
            )
            raise StorageError(msg) from exc

    # -- SQL, transactions and reads ---------------------------------------------------------

    def _q(self, template: LiteralString) -> bytes:
        """
        The statement *template* with ``{schema}`` replaced by the quoted schema name.

        Rendered once per template and kept: the hot paths pay nothing for composing.
        """
        try:
            return self._queries[template]
        except KeyError:
            rendered = sql.SQL(template).format(schema=self._ident).as_bytes()
            self._queries[template] = rendered
            return rendered

    def _write(self, action: str, body: Callable[[Cursor[DictRow]], _T]) -> _T:
        """
        Run *body* in one transaction on a pooled connection, and return what it returns.

        A serialization failure or deadlock runs it again (see :meth:`_retried`); the
        library's own errors pass unchanged.
        """

        def transaction() -> _T:
            with (
                self._connection() as conn,
                conn.transaction(),
                conn.cursor(row_factory=dict_row) as cur,
            ):
                return body(cur)

        return self._retried(action, transaction)

    def _execute(
        self,
        action: str,
        query: bytes,
        params: Mapping[str, Any] | tuple[Any, ...] = (),
        connection: object | None = None,
    ) -> tuple[list[DictRow], int]:
        """
        Run one statement (atomic on its own: no BEGIN/COMMIT round trips) and return its rows.

        Returns the rows (if the statement returns any) and the row count. On the
        pool, a deadlock runs it again; with *connection* (the host's), it runs in the
        host's transaction, if one is open (see :func:`host_cursor`).
        """
        if connection is not None:
            with host_cursor(connection) as cur:
                return _run(cur, query, params)

        def statement() -> tuple[list[DictRow], int]:
            with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                return _run(cur, query, params)

        return self._retried(action, statement)

    def _retried(self, action: str, run: Callable[[], _T]) -> _T:
        """
        What *run* returns, run again on a serialization failure or deadlock.

        At most three times more; psycopg errors come out as StorageError naming *action*.
        """
        for attempt in range(_RETRIES + 1):
            try:
                return run()
            except psycopg.Error as exc:
                if exc.sqlstate in _RETRY_STATES and attempt < _RETRIES:
                    continue
                raise_storage_error(f"{action} in PostgreSQL schema {self._schema!r}", exc)
        raise AssertionError("unreachable")

    def _read(
        self,
        action: str,
        query: bytes | sql.Composed,
        params: Mapping[str, Any] | tuple[Any, ...] = (),
    ) -> list[DictRow]:
        """
        Run one read-only statement (its own snapshot) and return every row as a dict.
        """
        try:
            with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                cur.execute(query, params)
                return cur.fetchall()
        except psycopg.Error as exc:
            raise_storage_error(f"{action} in PostgreSQL schema {self._schema!r}", exc)


def _run(
    cur: Cursor[DictRow], query: bytes, params: Mapping[str, Any] | tuple[Any, ...]
) -> tuple[list[DictRow], int]:
    # One statement: its rows (if it returns any) and its row count.
    cur.execute(query, params)
    return (cur.fetchall() if cur.description else []), cur.rowcount


def _check_count(name: str, value: object, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1000:
        msg = f"{name} must be an integer from {low} to 1000"
        raise ConfigurationError(msg)


def _describe_target(conninfo: object) -> str:
    """
    ``host=..., port=..., dbname=...`` for reprs and errors: never a password or other options.
    """
    if not isinstance(conninfo, str):
        msg = f"conninfo must be a connection string or URL, not {type(conninfo).__name__}"
        raise ConfigurationError(msg)
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        # Not chained: libpq's message quotes the string, which may hold a password.
        msg = "conninfo is not a valid PostgreSQL connection string or URL"
        raise ConfigurationError(msg) from None
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "local"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or "?"
    return f"host={host!r}, port={str(port)!r}, dbname={dbname!r}"
