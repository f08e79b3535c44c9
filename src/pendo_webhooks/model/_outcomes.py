"""
What the dispatcher reports: :class:`Outcome`, :class:`DeliveryOutcome`, :class:`DispatchResult`,
:class:`DrainSummary` and :class:`TestResult`.

Strictly private; import these names from :mod:`pendo_webhooks.dispatcher`.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

import attrs

from ..events._category import AnyCategory, EventCategory


__all__ = ["DeliveryOutcome", "DispatchResult", "DrainSummary", "Outcome", "TestResult"]


class Outcome(str, enum.Enum):
    """
    What happened to one delivery in one call.

    >>> Outcome("retry") is Outcome.RETRY, str(Outcome.SKIPPED)
    (True, 'skipped')
    """

    #: The receiver answered 2xx.
    DELIVERED = "delivered"
    #: A transient failure; tried again at ``next_attempt_at``.
    RETRY = "retry"
    #: A final failure (3xx, most 4xx, 410, a blocked address).
    FAILED = "failed"
    #: A transient failure with the retry budget spent.
    DEAD = "dead"
    #: Not sent: the webhook was disabled, deleted or unsubscribed.
    CANCELLED = "cancelled"
    #: Not stored: a duplicate event, or a webhook disabled or deleted meanwhile.
    SKIPPED = "skipped"
    #: Stored and waiting: only enqueued, or its outcome could not be recorded (it
    #: comes back when its lease lapses).
    PENDING = "pending"

    def __str__(self) -> str:
        return self.value


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class DeliveryOutcome:
    """
    What happened to one webhook's delivery of one event.

    Attributes:
        webhook_id: The webhook.
        delivery_id: The stored delivery, or ``None`` if nothing was stored.
        outcome: What happened.
        reason: A short explanation (``"HTTP 503, retry 1 of 5 in 5s"``, ``"webhook
            disabled"``), or ``None`` for a plain success.
        attempt: The number of the attempt made, if one was made.
        status_code: The HTTP status, if a response came back.
        error_kind: Why no response came back, if none did.
        next_attempt_at: When it is tried again, for :attr:`Outcome.RETRY`.

    >>> DeliveryOutcome(webhook_id="wh_1", delivery_id="dlv_1", outcome=Outcome.DELIVERED,
    ...                 attempt=1, status_code=200).outcome
    <Outcome.DELIVERED: 'delivered'>
    """

    webhook_id: str
    delivery_id: str | None
    outcome: Outcome
    reason: str | None = None
    attempt: int | None = None
    status_code: int | None = None
    error_kind: str | None = None
    next_attempt_at: datetime | None = None


@attrs.frozen(kw_only=True)
class DispatchResult:
    """
    What :meth:`Dispatcher.dispatch <pendo_webhooks.dispatcher.Dispatcher.dispatch>` did
    with one event, per subscribed webhook.

    Webhooks that are disabled or not subscribed to the event's category are not listed.
    Iterating yields the :class:`DeliveryOutcome` values.

    >>> result = DispatchResult(event_id="f961", category=EventCategory.NPS_SUBMITTED,
    ...     outcomes=(DeliveryOutcome(webhook_id="wh_1", delivery_id="dlv_1",
    ...                               outcome=Outcome.DELIVERED),))
    >>> result.for_webhook("wh_1").outcome, len(result), result.all_delivered
    (<Outcome.DELIVERED: 'delivered'>, 1, True)
    """

    event_id: str
    category: EventCategory
    outcomes: tuple[DeliveryOutcome, ...] = ()

    def __iter__(self) -> Iterator[DeliveryOutcome]:
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    def for_webhook(self, webhook_id: str) -> DeliveryOutcome:
        """
        Return the outcome for *webhook_id*.

        Raises:
            KeyError: If the webhook is not in this result.
        """
        for outcome in self.outcomes:
            if outcome.webhook_id == webhook_id:
                return outcome
        raise KeyError(webhook_id)

    @property
    def all_delivered(self) -> bool:
        """
        Whether every listed webhook got the event on this first attempt.
        """
        return all(o.outcome is Outcome.DELIVERED for o in self.outcomes)


def _to_counter(value: Mapping[Outcome, int]) -> Counter[Outcome]:
    return Counter({Outcome(k): v for k, v in value.items()})


@attrs.frozen(kw_only=True)
class DrainSummary:
    """
    What :meth:`~pendo_webhooks.dispatcher.Dispatcher.drain` (or a worker) did.

    Attributes:
        counts: How many deliveries had each :class:`Outcome` in this call; a delivery
            that was retried and then delivered counts under both.
        pending: How many deliveries were still pending when it returned.
        timed_out: Whether it stopped at its timeout with work left.

    >>> summary = DrainSummary.of([Outcome.RETRY, Outcome.DELIVERED], pending=0)
    >>> summary.delivered, summary.retried, summary.dead, summary.attempts
    (1, 1, 0, 2)
    """

    counts: Counter[Outcome] = attrs.field(factory=Counter, converter=_to_counter, hash=False)
    pending: int = 0
    timed_out: bool = False

    @classmethod
    def of(
        cls, outcomes: Iterable[Outcome], *, pending: int, timed_out: bool = False
    ) -> DrainSummary:
        """
        Count *outcomes*.
        """
        return cls(counts=Counter(outcomes), pending=pending, timed_out=timed_out)

    @property
    def delivered(self) -> int:
        """
        Deliveries that reached the receiver.
        """
        return self.counts[Outcome.DELIVERED]

    @property
    def retried(self) -> int:
        """
        Attempts that failed and scheduled a retry.
        """
        return self.counts[Outcome.RETRY]

    @property
    def failed(self) -> int:
        """
        Deliveries that failed for good.
        """
        return self.counts[Outcome.FAILED]

    @property
    def dead(self) -> int:
        """
        Deliveries whose retries ran out.
        """
        return self.counts[Outcome.DEAD]

    @property
    def cancelled(self) -> int:
        """
        Deliveries cancelled because their webhook went away.
        """
        return self.counts[Outcome.CANCELLED]

    @property
    def attempts(self) -> int:
        """
        Requests sent (every outcome but cancellations and releases).
        """
        sent = (Outcome.DELIVERED, Outcome.RETRY, Outcome.FAILED, Outcome.DEAD)
        return sum(self.counts[o] for o in sent)


@attrs.frozen(kw_only=True)
class TestResult:
    """
    What the admin's "Test" button got back; nothing of it is stored as a delivery.

    Attributes:
        webhook_id: The webhook tested.
        category: The category of the sample event sent (an operations event's for an
            operations webhook).
        event_id: The sample's fresh ``uniqueId`` (its ``webhook-id``).
        accepted: Whether the receiver answered 2xx.
        status: The HTTP status, if a response came back.
        latency: Seconds until the response (or the error).
        response_excerpt: At most 2 KB of the response body, decoded as UTF-8 with
            bad bytes replaced.
        error: Why no 2xx came back, if it did not (sanitized).
        request_body: The exact bytes sent (after the webhook's PII filters).
        filters: The webhook's PII filters that changed the sample's body
            (``"drop:<path>"``, ``"hash:<path>"``).

    >>> TestResult(webhook_id="wh_1", category=EventCategory.NPS_SUBMITTED, event_id="e1",
    ...            accepted=True, status=200, latency=0.05).accepted
    True
    """

    # pytest would otherwise try to collect this class from modules that import it.
    __test__ = False

    webhook_id: str
    category: AnyCategory
    event_id: str
    accepted: bool
    status: int | None = None
    latency: float = 0.0
    response_excerpt: str = ""
    error: str | None = None
    request_body: bytes = attrs.field(default=b"", repr=lambda b: f"<{len(b)} bytes>")
    filters: tuple[str, ...] = attrs.field(default=(), converter=_texts)
