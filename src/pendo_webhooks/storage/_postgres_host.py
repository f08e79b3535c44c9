"""
The transactional outbox seam: writing deliveries through the host's own database connection.

Imports nothing from psycopg, so the dispatcher can use it whatever is installed.

Strictly private.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

from .._delivery import Delivery
from ..exceptions import ConfigurationError


__all__ = ["HostConnectionOutbox", "enqueue_through", "refuse_host_connection"]


class HostConnectionOutbox(Protocol):
    """
    **Protocol**: An outbox that can write deliveries in the host's own transaction.

    Implementations set the class attribute ``accepts_host_connection = True``.
    """

    def enqueue_deliveries(
        self, deliveries: Sequence[Delivery], *, connection: object | None = None
    ) -> list[str | None]:
        """
        Store deliveries like ``OutboxStore.enqueue_deliveries``, through *connection* if given.
        """


def enqueue_through(
    storage: object, deliveries: Sequence[Delivery], connection: object
) -> list[str | None]:
    """
    Store *deliveries* through the host's *connection*, in the host's transaction.

    Raises:
        ConfigurationError: If *storage* cannot write through a host connection.
    """
    if not getattr(storage, "accepts_host_connection", False):
        refuse_host_connection(storage, connection)
    outbox = cast("HostConnectionOutbox", storage)
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
