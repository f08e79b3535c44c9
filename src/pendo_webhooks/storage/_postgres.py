"""
:class:`PostgresStorage`: the Storage for many worker processes on many machines.

Strictly private; import :class:`PostgresStorage` from :mod:`pendo_webhooks.storage`
(it needs the ``postgres`` extra: ``pip install "pendo-webhooks[postgres]"``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from psycopg import Cursor
from psycopg.rows import DictRow

from ..model._delivery import Delivery
from ._postgres_core import host_unit
from ._postgres_health import PostgresHealth
from ._postgres_outbox import PostgresOutbox, enqueue_params, enqueue_results
from ._postgres_outbox_sql import ENQUEUE
from ._postgres_pipeline import CLAIM, PostgresPipeline, decoded, encoded


__all__ = ["PostgresStorage"]


class PostgresStorage(PostgresOutbox, PostgresHealth, PostgresPipeline):
    """
    Keeps everything pendo-webhooks stores in PostgreSQL, shared by any number of processes.

    Webhooks, the audit log, the delivery outbox (deliveries and attempts),
    first-seen keys and the exclusion list: the whole
    :class:`~pendo_webhooks.storage.Storage` contract, so any number of worker
    processes on any number of machines can drain one outbox.

    Args:
        conninfo: A libpq connection string or URL, like
            ``"postgresql://app@db.internal:5432/product"``. It is never shown in a
            ``repr`` or an error (only host, port and database are).
        schema: The PostgreSQL schema for the library's tables (default
            ``"pendo_webhooks"``): lower-case letters, digits and ``_``. The
            library creates it if missing and never touches anything outside it.
        min_connections: Connections the pool keeps open (default 1).
        max_connections: The most connections the pool opens (default 10); a
            call waits up to *connect_timeout* for a free one. A worker needs about
            its ``concurrency`` plus two.
        connect_timeout: Seconds to wait for the server or a free connection (default 30).
        migrate: Create and migrate the schema at start (default). With
            ``False``, a schema that is missing or not up to date raises
            :class:`~pendo_webhooks.exceptions.StorageError` instead: for
            deployments whose application role may not run DDL.
        secret_codec: Encrypts secrets and write keys at rest (see
            :class:`~pendo_webhooks.storage.SecretCodec`); stored as given by default.

    How it uses PostgreSQL:

    * A psycopg 3 connection pool; parameterized SQL only.
    * Claims are ``SELECT ... FOR UPDATE SKIP LOCKED`` inside one ``UPDATE``
      that sets a lease (owner and expiry), so concurrent workers take disjoint
      deliveries and never wait for each other; an outcome is written only while
      the lease is still the writer's (fencing), and a worker that dies loses
      nothing: its deliveries are due again when the lease lapses. No
      transaction is open while a request is in flight. Worker clocks must
      agree to well within the lease (NTP suffices).
    * The hot paths (enqueue, claim, record) are one statement each: one round
      trip, atomic on its own. Changes of several statements (a webhook and its
      audit entry) are one transaction, run again on a serialization failure or
      deadlock.
    * Durability as the server is configured (``synchronous_commit``) for
      every enqueue and every change an admin makes: the deliveries are stored
      before the first request is sent. Attempt outcomes commit with
      ``synchronous_commit`` off, set for their own transaction only (it never
      reaches another statement of a pooled connection): the server does not wait
      for their WAL flush (or for a synchronous standby). A server crash can take only
      the last outcomes (the next synchronous commit flushes every earlier one);
      their deliveries read as pending and leased, and are sent again, with the
      same ``webhook-id``, once the lease lapses: at least once, never lost.
    * A schema the library migrates itself, under a transaction-scoped advisory
      lock, so processes starting together take turns. A schema of the same
      name that the library did not create, or that a newer version of the
      library migrated, raises ``StorageError`` and is left untouched.

    The transactional outbox: ``Dispatcher.enqueue(event, connection=conn)``
    writes the deliveries through the host's own psycopg connection, in its
    open transaction, so they commit with the host's business change or roll
    back with it (``examples/transactional_outbox.py``)::

        with pool.connection() as conn:           # the host's psycopg connection
            conn.execute("INSERT INTO orders ...")
            dispatcher.enqueue(event, connection=conn)
        # committed together here; a worker (Dispatcher.run_worker) sends it

    After ``fork()``, the child opens a pool of its own on first use and never
    touches the parent's connections. It is a context manager; :meth:`close`
    closes the pool.

    Neither a ``repr`` nor an error shows the password:

    >>> from pendo_webhooks.exceptions import StorageError
    >>> try:
    ...     PostgresStorage("postgresql://app:s3cret@127.0.0.1:1/product", connect_timeout=1)
    ... except StorageError as exc:
    ...     print("s3cret" in str(exc), str(exc)[:81])
    False opening PostgreSQL schema 'pendo_webhooks' at host='127.0.0.1', port='1', dbname=
    """

    def claim_first_seen_and_enqueue(
        self,
        keys: Collection[str],
        *,
        at: datetime,
        deliveries: Callable[[set[str]], Sequence[Delivery]],
        connection: object | None = None,
    ) -> tuple[set[str], list[str | None]]:
        """
        Claim first-seen keys and store the deliveries they fire, in one transaction.

        Two statements: the claim, then (if it claimed anything) the deliveries. On the
        pool, one transaction, run again on a deadlock; with *connection*, a savepoint
        in the host's transaction (see ``Dispatcher.enqueue``), so they commit or roll
        back with the host's change.
        """
        unique = encoded(keys)
        if not unique:
            return set(), []

        def write(cur: Cursor[DictRow]) -> tuple[set[str], list[str | None]]:
            cur.execute(self._q(CLAIM), {"keys": unique, "at": at})
            claimed = {decoded(row["key"]) for row in cur.fetchall()}
            batch = deliveries(claimed) if claimed else []
            if not batch:
                return claimed, []
            cur.execute(self._q(ENQUEUE), enqueue_params(batch))
            return claimed, enqueue_results(cur.fetchall())

        if connection is None:
            return self._write("claiming first-seen keys and storing deliveries", write)
        with host_unit(connection) as cur:
            return write(cur)
