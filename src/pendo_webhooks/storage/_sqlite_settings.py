"""
Settings kept in a SQLite store's ``settings`` table: choices made for the file, not for
one command line.

Only the console script reads and writes them (it records there that a store allows
private destinations, see ``cli/_db.py``); :class:`~pendo_webhooks.storage.SQLiteStorage`
and the rest of the library never look at them, so the library's defaults stay its own.

Strictly private.
"""

from __future__ import annotations

from datetime import datetime, timezone

import attrs

from ._sqlite_core import SQLiteCore, from_utc_iso, utc_iso


__all__ = ["StoreSetting", "read_setting", "write_setting"]


@attrs.frozen
class StoreSetting:
    """
    One stored setting, with who changed it last and when. Strictly private.
    """

    key: str
    value: str
    updated_at: datetime
    updated_by: str


def read_setting(store: SQLiteCore, key: str) -> StoreSetting | None:
    """
    The setting *key* of *store*, or ``None`` if it was never written.

    >>> import pathlib, tempfile
    >>> from pendo_webhooks.storage import SQLiteStorage
    >>> with SQLiteStorage(pathlib.Path(tempfile.mkdtemp()) / "s.sqlite3") as store:
    ...     before = read_setting(store, "cli.destinations")
    ...     write_setting(store, "cli.destinations", "private", by="ann")
    ...     after = read_setting(store, "cli.destinations")
    >>> before, after.value, after.updated_by
    (None, 'private', 'ann')
    """
    rows = store._query(  # the store's own module family
        "SELECT key, value, updated_at, updated_by FROM settings WHERE key = ?", (key,)
    )
    if not rows:
        return None
    row = rows[0]
    return StoreSetting(
        key=row["key"],
        value=row["value"],
        updated_at=from_utc_iso(row["updated_at"]),
        updated_by=row["updated_by"],
    )


def write_setting(store: SQLiteCore, key: str, value: str, *, by: str) -> None:
    """
    Set *key* of *store* to *value*, recording *by* and the time.
    """
    now = utc_iso(datetime.now(timezone.utc))
    with store._transaction() as conn:
        conn.execute(
            "INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            (key, value, now, by),
        )
