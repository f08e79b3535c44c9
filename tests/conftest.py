"""
Shared fixtures: a frozen clock, and a ``storage`` fixture run over every backend.

To add a backend, add a factory to :data:`STORAGE_BACKENDS`; every test taking
``storage`` (the contract suite, the registry tests) then runs against it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage


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


#: Backend name -> factory taking a private temporary directory. A factory may pytest.skip().
STORAGE_BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Storage]]] = {
    "memory": _memory,
    "sqlite": _sqlite,
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
