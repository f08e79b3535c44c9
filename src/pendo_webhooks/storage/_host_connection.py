"""
The transactional outbox seam: writing deliveries through the host's own database connection.

Imports nothing from psycopg, so the dispatcher can use it whatever is installed.

Strictly private.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from ..exceptions import ConfigurationError
from ..model._delivery import Delivery
from .protocols import HostConnectionOutbox, capabilities


__all__ = ["enqueue_through", "refuse_host_connection"]


def enqueue_through(
    storage: object, deliveries: Sequence[Delivery], connection: object
) -> list[str | None]:
    """
    Store *deliveries* through the host's *connection*, in the host's transaction.

    Raises:
        ConfigurationError: If *storage* cannot write through a host connection.
    """
    if not capabilities(storage).host_connection:
        refuse_host_connection(storage, connection)
    outbox = cast(HostConnectionOutbox, storage)
    return outbox.enqueue_deliveries(deliveries, connection=connection)


def refuse_host_connection(storage: object, connection: object | None) -> None:
    """
    Raise ConfigurationError if *connection* is given: *storage* cannot write through it.
    """
    if connection is not None:
        msg = (
            f"connection: {type(storage).__name__} cannot write through the host's own "
            "connection; use PostgresStorage for a transactional outbox"
        )
        raise ConfigurationError(msg)
