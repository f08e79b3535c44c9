"""
The health of one webhook's destination: :class:`WebhookHealth`, as every store keeps it.

Strictly private; exported by :mod:`pendo_webhooks.dispatcher`.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone

import attrs

from ..exceptions import ValidationError


__all__ = ["HealthState", "WebhookHealth"]


class HealthState(str, enum.Enum):
    """
    How a webhook's destination is doing, in one word (see :attr:`WebhookHealth.state`).

    >>> str(HealthState.OUTAGE)
    'outage'
    """

    #: No failed exchange since the last success (or none at all yet).
    HEALTHY = "healthy"
    #: Failed exchanges since the last success, but no outage declared.
    FAILING = "failing"
    #: Failing hard: one probe at a time, the other deliveries wait without spending
    #: attempts.
    OUTAGE = "outage"

    def __str__(self) -> str:
        return self.value


def _utc_or_none(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationError("time", "must be a timezone-aware datetime")
    return value.astimezone(timezone.utc)


def _check_count(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(attribute.name, f"must be an int of at least 0, got {value!r}")


@attrs.frozen(kw_only=True)
class WebhookHealth:
    """
    What the engine knows of one webhook's destination, shared by every worker process.

    Updated after every exchange with the destination (a request sent and what came of
    it, or why nothing did); read by :meth:`Dispatcher.webhook_health
    <pendo_webhooks.dispatcher.Dispatcher.webhook_health>` and by the console script's
    ``webhooks show``. A webhook never attempted has a blank record (all ``None`` and 0).

    Attributes:
        webhook_id: The webhook.
        failing_since: When the first failed exchange since the last success started;
            ``None`` while healthy. Auto-disable measures from it.
        last_success_at: When an exchange last answered 2xx (to the minute: while a
            webhook stays healthy, a success within a minute of it is not written).
        last_failure_at: When the last failed exchange started.
        failures: Failed exchanges, of any kind, since the last success.
        streak: Failed exchanges *of a retryable kind* in a row (connect, timeout, 5xx,
            429, ...); any other answer resets it. The outage starts when it reaches
            :attr:`OutagePolicy.threshold <pendo_webhooks.retry.OutagePolicy.threshold>`.
        outage_since: When the outage was declared; ``None`` when there is none.
        next_probe_at: During an outage, when the next probe may be sent.
        probes: Probes that failed during this outage (the probe interval grows with it).
        probe_delivery: The delivery chosen to be the next probe (the pending one with the
            fewest attempts when the last probe failed); another may probe only if it
            does not come within ``max_probe_interval`` of the probe time.
        probe_owner: The worker (lease owner) sending the current probe, if any.
        probe_until: When that worker's probe lease lapses (another may probe then).
        version: The stored version, bumped by every write (compare-and-set).

    >>> blank = WebhookHealth(webhook_id="wh_1")
    >>> blank.state, blank.failures, blank.version
    (<HealthState.HEALTHY: 'healthy'>, 0, 0)
    """

    webhook_id: str
    failing_since: datetime | None = attrs.field(default=None, converter=_utc_or_none)
    last_success_at: datetime | None = attrs.field(default=None, converter=_utc_or_none)
    last_failure_at: datetime | None = attrs.field(default=None, converter=_utc_or_none)
    failures: int = attrs.field(default=0, validator=_check_count)
    streak: int = attrs.field(default=0, validator=_check_count)
    outage_since: datetime | None = attrs.field(default=None, converter=_utc_or_none)
    next_probe_at: datetime | None = attrs.field(default=None, converter=_utc_or_none)
    probes: int = attrs.field(default=0, validator=_check_count)
    probe_delivery: str | None = None
    probe_owner: str | None = None
    probe_until: datetime | None = attrs.field(default=None, converter=_utc_or_none)
    version: int = attrs.field(default=0, validator=_check_count)

    @property
    def state(self) -> HealthState:
        """
        ``outage`` during an outage, else ``failing`` after a failure, else ``healthy``.

        >>> from datetime import datetime, timezone
        >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> WebhookHealth(webhook_id="wh_1", failing_since=t, failures=1).state
        <HealthState.FAILING: 'failing'>
        """
        if self.outage_since is not None:
            return HealthState.OUTAGE
        if self.failing_since is not None:
            return HealthState.FAILING
        return HealthState.HEALTHY

    def describe(self) -> str:
        """
        Say in one line how the destination is doing (for the console script and logs).

        >>> WebhookHealth(webhook_id="wh_1").describe()
        'healthy'
        """
        if self.outage_since is not None:
            probe = "" if self.next_probe_at is None else f", next probe {_at(self.next_probe_at)}"
            return (
                f"outage since {_at(self.outage_since)}: {self.failures} failed exchanges, "
                f"{self.probes} failed probes{probe}"
            )
        if self.failing_since is not None:
            return f"failing since {_at(self.failing_since)}: {self.failures} failed exchanges"
        if self.last_success_at is not None:
            return f"healthy (last success {_at(self.last_success_at)})"
        return "healthy"


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
