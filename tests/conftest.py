"""
Shared fixtures: a frozen clock, and a ``storage`` fixture run over every backend.

To add a backend, add a factory to :data:`STORAGE_BACKENDS`; every test taking
``storage`` (the contract suite, the registry tests) then runs against it too.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.transports import RequestsTransport, Urllib3Transport


#: The moment every FrozenClock starts at unless told otherwise.
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FrozenClock:
    """
    A clock that stands still until a test moves it.
    """

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """
        Move the clock forward by *delta* (or ``timedelta(**kwargs)``) and return the new time.
        """
        self.now += delta if delta is not None else timedelta(**kwargs)
        return self.now


@contextlib.contextmanager
def _memory(tmp_path: Path) -> Iterator[Storage]:
    yield InMemoryStorage()


@contextlib.contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Storage]:
    with SQLiteStorage(tmp_path / "webhooks.sqlite3") as storage:
        yield storage


#: The PostgreSQL server for tests. Setting PENDO_WEBHOOKS_TEST_DSN makes its tests mandatory:
#: without a server (or psycopg) they fail instead of being skipped.
POSTGRES_DSN = os.environ.get(
    "PENDO_WEBHOOKS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_POSTGRES_REQUIRED = bool(os.environ.get("PENDO_WEBHOOKS_TEST_DSN"))
# Schemas made by this test run start with this prefix; each test gets a fresh one.
_PG_SCHEMAS = (f"pwt_{secrets.token_hex(4)}_{n}" for n in itertools.count())


@functools.cache
def _postgres_missing() -> str | None:
    try:
        import psycopg  # noqa: PLC0415 - optional: only the postgres extra installs it
        import psycopg_pool  # noqa: F401, PLC0415
    except ImportError:
        return "PostgreSQL tests: psycopg is not installed (pip install -e '.[postgres]')"
    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        where = psycopg.conninfo.conninfo_to_dict(POSTGRES_DSN)
        first = str(exc).strip().splitlines()[0]
        return f"PostgreSQL tests: no server at {where.get('host')}:{where.get('port')}: {first}"
    return None


def postgres_dsn() -> str:
    """
    The test server's DSN; without one, skip (or fail, if PENDO_WEBHOOKS_TEST_DSN is set).
    """
    reason = _postgres_missing()
    if reason is not None:
        if _POSTGRES_REQUIRED:
            pytest.fail(f"{reason} (required: PENDO_WEBHOOKS_TEST_DSN is set)")
        pytest.skip(reason)
    return POSTGRES_DSN


def fresh_pg_schema() -> str:
    """
    A schema name no other test (of this or another run) uses.
    """
    return next(_PG_SCHEMAS)


@contextlib.contextmanager
def _postgres(tmp_path: Path) -> Iterator[Storage]:
    dsn = postgres_dsn()
    from pendo_webhooks.storage import PostgresStorage  # noqa: PLC0415 - needs psycopg

    storage = PostgresStorage(dsn, schema=fresh_pg_schema(), max_connections=8)
    try:
        yield storage
    finally:
        storage.drop_schema()


#: Backend name -> factory taking a private temporary directory. A factory may pytest.skip().
STORAGE_BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Storage]]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(name="clock")
def _clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(name="storage", params=sorted(STORAGE_BACKENDS))
def _storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """
    Every Storage implementation, one after the other.
    """
    with STORAGE_BACKENDS[request.param](tmp_path) as storage:
        yield storage


@pytest.fixture(name="outbox")
def _outbox(storage: Storage) -> Storage:
    """
    The ``storage`` fixture, skipped for a backend that has no delivery outbox yet.
    """
    if not hasattr(storage, "claim_due"):
        pytest.skip(f"{type(storage).__name__} has no delivery outbox (OutboxStore) yet")
    return storage


# -- both guarded transports -----------------------------------------------------------------

#: The guarded transports every loopback transport, guard and deadline test runs against.
TRANSPORT_CLASSES: dict[str, type[Any]] = {
    "urllib3": Urllib3Transport,
    "requests": RequestsTransport,
}


@pytest.fixture(params=list(TRANSPORT_CLASSES), name="transport_class")
def _transport_class(request: pytest.FixtureRequest) -> type[Any]:
    """
    Each guarded transport class in turn (a test using it runs once per transport).
    """
    return TRANSPORT_CLASSES[request.param]


def use_each_transport(module_name: str) -> Callable[..., None]:
    """
    An autouse fixture: sets *module_name*'s ``TransportClass`` to each transport in turn.

    The transport tests are written once against ``TransportClass(...)``; this runs every
    one of them against :class:`Urllib3Transport` and :class:`RequestsTransport`.
    """

    @pytest.fixture(autouse=True)
    def _each_transport(transport_class: type[Any], monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sys.modules[module_name], "TransportClass", transport_class)

    return _each_transport
