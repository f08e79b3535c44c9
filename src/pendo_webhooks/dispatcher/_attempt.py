"""
One attempt, in two pure-ish steps: send the request a channel built, settle the outcome.

* :func:`exchange` sends once and captures whatever happened as an
  :class:`Exchange`, never raising;
* :func:`settle` turns an exchange and the retry policy's :class:`Decision` into the
  delivery's next state and its :class:`Attempt` row.

A Segment batch reuses :func:`exchange` and :func:`settle`: one exchange, settled for
each delivery in the batch.

Strictly private.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime

import attrs

from .._clock import Clock
from ..exceptions import TransportError
from ..model._delivery import (
    MAX_EXCERPT_BYTES,
    Attempt,
    Delivery,
    DeliveryStatus,
    clip_error,
    evolved,
    new_exchange_id,
    trusted_attempt,
)
from ..model._webhook import Webhook
from ..retry import Decision, Verdict
from ..transports import OutgoingRequest, Transport, TransportResponse


__all__ = [
    "KNOWN_ERROR_KINDS",
    "Exchange",
    "exchange",
    "host_of",
    "settle",
    "unwanted",
]

#: The error kinds the retry policy knows; anything else a transport reports is ``"error"``.
KNOWN_ERROR_KINDS = frozenset(
    {"timeout", "connect", "dns", "tls", "blocked", "too-large", "error"}
)

_STATUS_AFTER = {
    Verdict.DELIVERED: DeliveryStatus.DELIVERED,
    Verdict.RETRY: DeliveryStatus.PENDING,
    Verdict.FAILED: DeliveryStatus.FAILED,
    Verdict.DEAD: DeliveryStatus.DEAD,
}


def host_of(url: str | None) -> str:
    """
    Return a URL's host (and port, if given), the only part of it logs and errors show.

    >>> host_of("https://user:pw@hooks.example.com:8443/in?token=1"), host_of("::")
    ('hooks.example.com:8443', '?')
    """
    try:
        parts = urllib.parse.urlsplit(url or "")
        host, port = parts.hostname, parts.port
    except ValueError:
        return "?"
    if not host:
        return "?"
    return f"{host}:{port}" if port else host


def unwanted(delivery: Delivery, webhook: Webhook | None) -> str | None:
    """
    Why *delivery* must not be sent to *webhook* as it is now, or ``None`` if it may be.
    """
    if webhook is None:
        return "webhook deleted"
    if not webhook.enabled:
        return "webhook disabled"
    if delivery.category not in webhook.categories:
        return f"webhook no longer subscribed to {delivery.category}"
    return None


@attrs.frozen(kw_only=True)
class Exchange:
    """
    What one request got: a response, or why none came. Strictly private.

    Its *id* (fresh for every exchange) is the ``exchange_id`` of every attempt settled
    from it: one for a URL delivery, the same one for every delivery of a Segment batch.
    """

    id: str = attrs.field(factory=new_exchange_id)
    started_at: datetime
    duration: float
    response: TransportResponse | None = None
    error_kind: str | None = None
    detail: str | None = None

    @property
    def status(self) -> int | None:
        """
        The HTTP status, if a response came back.
        """
        return None if self.response is None else self.response.status

    @property
    def retry_after(self) -> str | None:
        """
        The raw ``Retry-After`` header, if any.
        """
        return None if self.response is None else self.response.headers.get("retry-after")

    @property
    def excerpt(self) -> bytes:
        """
        At most 2 KB of the response body.
        """
        return b"" if self.response is None else self.response.body[:MAX_EXCERPT_BYTES]

    def describe(self) -> str:
        """
        Say what happened in a few words (for errors and logs).
        """
        if self.response is None:
            return f"{self.error_kind}: {self.detail}"
        return f"HTTP {self.response.status}"


def _redirect_detail(response: TransportResponse) -> str | None:
    if not 300 <= response.status <= 399:
        return None
    location = response.headers.get("location")
    target = host_of(location) if location else "?"
    return f"redirect to {target} not followed"


def exchange(
    transport: Transport,
    build: Callable[[datetime], OutgoingRequest],
    *,
    clock: Clock,
    timer: Callable[[], float] = time.perf_counter,
) -> Exchange:
    """
    Build a request with *build* (given the start time) and send it once; never raise.

    A :class:`~pendo_webhooks.exceptions.TransportError` becomes its ``kind`` (unknown
    kinds become ``"error"``); any other exception, while building or sending, is an
    ``"error"`` described by its type only (its text might quote a URL or a body).
    """
    started_at = clock()
    started = timer()
    try:
        response = transport.send(build(started_at))
    except TransportError as exc:
        kind = exc.kind if exc.kind in KNOWN_ERROR_KINDS else "error"
        return Exchange(
            started_at=started_at,
            duration=max(0.0, timer() - started),
            error_kind=kind,
            detail=clip_error(exc.detail),
        )
    except Exception as exc:  # noqa: BLE001 - one bad attempt must not stop the others (C4)
        return Exchange(
            started_at=started_at,
            duration=max(0.0, timer() - started),
            error_kind="error",
            detail=f"unexpected {type(exc).__name__} while sending",
        )
    return Exchange(
        started_at=started_at,
        duration=max(0.0, timer() - started),
        response=response,
        detail=_redirect_detail(response),
    )


def settle(
    delivery: Delivery, sent: Exchange, decision: Decision, *, now: datetime
) -> tuple[Delivery, Attempt]:
    """
    Return the delivery's state after *sent*, as *decision* has it, and the attempt's row.
    """
    number = delivery.attempts + 1
    status = _STATUS_AFTER[decision.verdict]
    # Values of the right types already (an Exchange, a Decision): the unchecked builders.
    attempt = trusted_attempt(
        delivery_id=delivery.id,
        number=number,
        exchange_id=sent.id,
        started_at=sent.started_at,
        duration=sent.duration,
        status_code=sent.status,
        error_kind=sent.error_kind,
        detail=sent.detail,
        response_excerpt=sent.excerpt,
        verdict=decision.verdict,
        reason=decision.reason,
    )
    error = None
    if decision.verdict is not Verdict.DELIVERED:
        error = f"{sent.detail} ({decision.reason})" if sent.detail else decision.reason
    updated = evolved(
        delivery,
        status=status,
        attempts=number,
        next_attempt_at=decision.next_attempt_at or now,
        updated_at=now,
        last_status=sent.status,
        last_error=clip_error(error),
        finished_at=None if status is DeliveryStatus.PENDING else now,
        lease_owner=None,
        lease_until=None,
    )
    return updated, attempt
