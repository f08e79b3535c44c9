"""
What the SQLite and PostgreSQL stores share about their schema and their life. Strictly private.

A schema is an append-only tuple of numbered :class:`Migration` steps; both stores run
the ones a database lacks with :func:`run_migrations` (each in its own SQL: ``?`` or
``%s``, ``PRAGMA user_version`` or none), refuse a database a newer library migrated
with :func:`newer_schema`, and are context managers that close on exit
(:func:`enter_self`, :func:`exit_closing`), raising :func:`closed_error` once closed
and saying so in their repr (:func:`store_repr`).

>>> step = Migration(1, "webhooks", ("CREATE TABLE webhooks (id TEXT PRIMARY KEY)",))
>>> step.version, step.name
(1, 'webhooks')
>>> ran: list[str] = []
>>> run_migrations((step,), applied=(), run=ran.append, record=lambda m: ran.append(m.name))
[1]
>>> ran
['CREATE TABLE webhooks (id TEXT PRIMARY KEY)', 'webhooks']
>>> run_migrations((step,), applied={1}, run=ran.append, record=ran.append)
[]
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from typing import Protocol, TypeVar

import attrs

from ..exceptions import StorageError


__all__ = [
    "Migration",
    "closed_error",
    "enter_self",
    "exit_closing",
    "newer_schema",
    "run_migrations",
    "store_repr",
]

_T = TypeVar("_T")


@attrs.frozen
class Migration:
    """
    One step of a schema: its version, its name, the statements that take it.

    For PostgreSQL, ``{schema}`` in a statement is the quoted schema name. Strictly private.
    """

    version: int
    name: str
    statements: tuple[str, ...]


def run_migrations(
    migrations: Iterable[Migration],
    *,
    applied: Container[int],
    run: Callable[[str], object],
    record: Callable[[Migration], object],
) -> list[int]:
    """
    Take every migration whose version is not in *applied*, oldest first; return their versions.

    For each: *run* every statement, then *record* the migration as applied, in the
    caller's transaction (DDL is transactional in both databases: on an error, nothing
    of it is left).
    """
    done: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in applied:
            continue
        for statement in migration.statements:
            run(statement)
        record(migration)
        done.append(migration.version)
    return done


def newer_schema(where: str, found: str, latest: int) -> StorageError:
    """
    The error for a database migrated by a newer version of the library: it is left as it is.

    >>> print(newer_schema("schema 'hooks'", "migration 9", 7))
    schema 'hooks' has migration 9, newer than this version of pendo-webhooks understands (it knows up to 7); upgrade pendo-webhooks
    """  # noqa: E501 - the message is one line
    return StorageError(
        f"{where} has {found}, newer than this version of pendo-webhooks understands "
        f"(it knows up to {latest}); upgrade pendo-webhooks"
    )


def store_repr(store: object, where: str, *, closed: bool) -> str:
    """
    A store's repr: its class, *where* it keeps its state (never a password), and if closed.

    >>> store_repr(object(), "path='hooks.sqlite3'", closed=True)
    "<object(path='hooks.sqlite3', closed)>"
    """
    state = ", closed" if closed else ""
    return f"<{type(store).__name__}({where}{state})>"


def closed_error(store: object) -> StorageError:
    """
    The error for using *store* after :meth:`close`.
    """
    return StorageError(f"{store!r} is closed")


class _Closable(Protocol):
    def close(self) -> None: ...


def enter_self(store: _T) -> _T:
    """
    ``__enter__`` of a store: the store itself.
    """
    return store


def exit_closing(store: _Closable, *_exc_info: object) -> None:
    """
    ``__exit__`` of a store: close it; an error raised in the block passes on.
    """
    store.close()
