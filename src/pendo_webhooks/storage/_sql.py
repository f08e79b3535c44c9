"""
What the SQLite and PostgreSQL stores share. Strictly private.

>>> step = Migration(1, "webhooks", ("CREATE TABLE webhooks (id TEXT PRIMARY KEY)",))
>>> step.version, step.name
(1, 'webhooks')
"""

from __future__ import annotations

import attrs


__all__ = ["Migration"]


@attrs.frozen
class Migration:
    """
    One step of a schema: its version, its name, the statements that take it.

    For PostgreSQL, ``{schema}`` in a statement is the quoted schema name. Strictly private.
    """

    version: int
    name: str
    statements: tuple[str, ...]
