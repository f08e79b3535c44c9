"""
When a delivery is tried again: :class:`RetryPolicy`, a pure and immutable value.

The policy reads the outcome of one attempt -- an HTTP status, or the ``kind`` of a
:class:`~pendo_webhooks.exceptions.TransportError` -- and returns a :class:`Decision`.
It never sleeps and never reads the clock or a random source of its own: *now* and
*rng* are arguments, so the dispatcher stores ``next_attempt_at`` and tests are exact.

The rules (the wire format's [Responses](../reference/wire-format.md#responses) has
them too, with the default waits):

========================================================  ==============================
outcome                                                   verdict
========================================================  ==============================
2xx                                                       ``delivered``
429, 500-599; ``timeout``, ``connect``, ``dns``,          ``retry`` (at most
``tls``, ``error``                                        *max_retries*), then ``dead``
410 Gone                                                  ``failed``, webhook disabled
3xx, any other 4xx (including 408)                        ``failed``
``blocked``, ``too-large``                                ``failed``
1xx, below 100, above 599                                 ``failed``
========================================================  ==============================
"""

from __future__ import annotations

import enum
import math
import random
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import attrs

from .exceptions import ConfigurationError, ValidationError


__all__ = [
    "NO_RETRIES",
    "Decision",
    "OutagePolicy",
    "RetryPolicy",
    "Verdict",
    "parse_retry_after",
]

# A random source with the signature of random.uniform.

_RETRYABLE_KINDS = frozenset({"timeout", "connect", "dns", "tls", "error"})
_FINAL_KINDS = frozenset({"blocked", "too-large"})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
# Longer waits make no sense for a webhook, and the bound keeps every sum and
# ``now + delay`` far from timedelta's and datetime's overflow.
_MAX_DURATION = timedelta(days=365)
_MAX_RETRIES = 20
# RFC 9110 delay-seconds is 1*DIGIT; a decimal fraction is tolerated. ASCII only,
# so no "1e3", "inf", "nan", "+5", "1_000" or non-ASCII digits slip in via float().
_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


class Verdict(str, enum.Enum):
    """
    What happens to a delivery after one attempt.

    >>> Verdict("retry") is Verdict.RETRY
    True
    >>> str(Verdict.DEAD)
    'dead'
    """

    #: The receiver answered 2xx; nothing more to do.
    DELIVERED = "delivered"
    #: A transient failure; try again at ``Decision.next_attempt_at``.
    RETRY = "retry"
    #: A final failure that another attempt cannot fix.
    FAILED = "failed"
    #: A transient failure, but the retries are used up.
    DEAD = "dead"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class Decision:
    """
    The outcome of one attempt, as decided by :meth:`RetryPolicy.decide`.

    Attributes:
        verdict: What happens to the delivery.
        next_attempt_at: When to try again (aware); set for :attr:`Verdict.RETRY` only.
        reason: A short human explanation, e.g. ``"HTTP 503, retry 2 of 5 in 5m12s"``.
        disable_webhook: Whether the webhook must be disabled (a 410 Gone).

    >>> decision = Decision(verdict=Verdict.FAILED, next_attempt_at=None, reason="HTTP 404")
    >>> decision.verdict, decision.disable_webhook
    (<Verdict.FAILED: 'failed'>, False)

    Raises:
        ConfigurationError: If *next_attempt_at* is set without a retry verdict (or
            missing with one), or *disable_webhook* is set without a failed verdict.
    """

    verdict: Verdict
    next_attempt_at: datetime | None
    reason: str
    disable_webhook: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.verdict, Verdict):
            msg = f"verdict: must be a Verdict, not {type(self.verdict).__name__}"
            raise ConfigurationError(msg)
        if (self.next_attempt_at is None) == (self.verdict is Verdict.RETRY):
            msg = "next_attempt_at: must be set for a retry, and only for a retry"
            raise ConfigurationError(msg)
        if self.disable_webhook and self.verdict is not Verdict.FAILED:
            msg = "disable_webhook: only a failed verdict can disable the webhook"
            raise ConfigurationError(msg)


def _as_duration(value: object, field: str, *, positive: bool) -> timedelta:
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > _MAX_DURATION.total_seconds():
            msg = f"{field}: must be 0 to {_MAX_DURATION.days} days, got {value!r} seconds"
            raise ConfigurationError(msg)
        duration = timedelta(seconds=value)
    else:
        msg = f"{field}: must be a timedelta or a number of seconds, not {type(value).__name__}"
        raise ConfigurationError(msg)
    if duration > _MAX_DURATION:
        msg = f"{field}: must be at most {_MAX_DURATION.days} days, got {duration}"
        raise ConfigurationError(msg)
    if positive and duration <= timedelta(0):
        msg = f"{field}: must be positive, got {duration}"
        raise ConfigurationError(msg)
    if duration < timedelta(0):
        msg = f"{field}: must not be negative, got {duration}"
        raise ConfigurationError(msg)
    return duration


def _to_schedule(value: Iterable[timedelta | float]) -> tuple[timedelta, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        msg = f"schedule: must be a sequence of durations, not {type(value).__name__}"
        raise ConfigurationError(msg)
    schedule = tuple(_as_duration(v, "schedule", positive=True) for v in value)
    if not schedule:
        msg = "schedule: must not be empty"
        raise ConfigurationError(msg)
    return schedule


def _to_max_retry_after(value: timedelta | float) -> timedelta:
    return _as_duration(value, "max_retry_after", positive=False)


def _check_max_retries(
    _instance: RetryPolicy, _attribute: attrs.Attribute[int], value: int
) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"max_retries: must be an int, not {type(value).__name__}"
        raise ConfigurationError(msg)
    if not 0 <= value <= _MAX_RETRIES:
        msg = f"max_retries: must be between 0 and {_MAX_RETRIES}, got {value}"
        raise ConfigurationError(msg)


def _check_jitter(
    _instance: RetryPolicy, _attribute: attrs.Attribute[float], value: float
) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        msg = f"jitter: must be a number, not {type(value).__name__}"
        raise ConfigurationError(msg)
    if not 0 <= value < 1:  # also rejects NaN
        msg = f"jitter: must be at least 0 and below 1, got {value!r}"
        raise ConfigurationError(msg)


def _check_now(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        msg = "must be a timezone-aware datetime"
        raise ValidationError("now", msg)
    return now.astimezone(timezone.utc)


def _check_positive_int(value: int, field: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"must be an int of at least 1, got {value!r}"
        raise ValidationError(field, msg)


def _human(delay: timedelta) -> str:
    if delay < timedelta(seconds=10):
        return f"{delay.total_seconds():.1f}s"
    seconds = round(delay.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _describe(status: int | None, error_kind: str | None) -> str:
    if status is None:
        return str(error_kind)
    return "HTTP 410 Gone" if status == 410 else f"HTTP {status}"


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """
    Decides whether and when a delivery is tried again after an attempt.

    The wait before retry *n* (1-based) is ``schedule[n - 1]`` -- the last entry
    repeats when the schedule is shorter than *max_retries* -- multiplied by
    ``rng(1 - jitter, 1 + jitter)``. On a 429 or 503 a valid ``Retry-After`` hint
    can lengthen that wait up to *max_retry_after*, never shorten it.

    The default schedule waits 30 s, 5 min, 30 min, 2 h and 8 h (each give or take 20%):
    the last retry comes about 10 h 35 min after the first attempt, so a receiver down
    for an evening still gets everything. While a destination is failing hard, the
    :class:`OutagePolicy` holds its deliveries back without spending these retries.

    Args:
        max_retries: Retries after the first attempt, 0 to 20; a retryable outcome
            of attempt ``max_retries + 1`` is dead.
        schedule: Base waits before retry 1, 2, ...; each a :class:`~datetime.timedelta`
            or a number of seconds, positive and at most 365 days.
        jitter: Relative spread of each wait, at least 0 and below 1.
        max_retry_after: The most a ``Retry-After`` hint may stretch a wait to; a
            timedelta or seconds, 0 to 365 days.

    >>> policy = RetryPolicy(schedule=[10, 60], jitter=0)
    >>> policy.schedule
    (datetime.timedelta(seconds=10), datetime.timedelta(seconds=60))
    >>> policy.wait(3)
    datetime.timedelta(seconds=60)

    Raises:
        ConfigurationError: If a field is out of range or of the wrong type.
    """

    max_retries: int = attrs.field(default=5, validator=_check_max_retries)
    schedule: tuple[timedelta, ...] = attrs.field(
        default=(
            timedelta(seconds=30),
            timedelta(minutes=5),
            timedelta(minutes=30),
            timedelta(hours=2),
            timedelta(hours=8),
        ),
        converter=_to_schedule,
    )
    jitter: float = attrs.field(default=0.2, validator=_check_jitter)
    max_retry_after: timedelta = attrs.field(
        default=timedelta(hours=1), converter=_to_max_retry_after
    )

    @property
    def max_window(self) -> timedelta:
        """
        The longest total wait from the first failure to the last retry.

        Each retry waits at most ``max(schedule_n * (1 + jitter), max_retry_after)``
        (the second term only when a receiver sends ``Retry-After``); the time the
        attempts themselves take is not included.

        >>> RetryPolicy(max_retries=2, schedule=[10, 20], jitter=0.5, max_retry_after=0).max_window
        datetime.timedelta(seconds=45)
        >>> NO_RETRIES.max_window
        datetime.timedelta(0)
        """
        return sum(
            (
                max(self._base_wait(n) * (1 + self.jitter), self.max_retry_after)
                for n in range(1, self.max_retries + 1)
            ),
            timedelta(0),
        )

    def _base_wait(self, retry_number: int) -> timedelta:
        return self.schedule[min(retry_number, len(self.schedule)) - 1]

    def classify(self, *, status: int | None, error_kind: str | None) -> Verdict:
        """
        Classify one attempt's outcome, ignoring how many attempts there were.

        Pass the HTTP *status* if a response arrived, else the *error_kind* (the
        ``kind`` of the :class:`~pendo_webhooks.exceptions.TransportError`).

        Returns:
            :attr:`Verdict.DELIVERED`, :attr:`Verdict.RETRY` or :attr:`Verdict.FAILED`,
            never :attr:`Verdict.DEAD`.

        Raises:
            ValidationError: If neither or both are given, *status* is not an int,
                or *error_kind* is not a known kind.

        >>> policy = RetryPolicy()
        >>> policy.classify(status=503, error_kind=None)
        <Verdict.RETRY: 'retry'>
        >>> policy.classify(status=None, error_kind="blocked")
        <Verdict.FAILED: 'failed'>
        """
        if (status is None) == (error_kind is None):
            msg = "give exactly one of status and error_kind"
            raise ValidationError("status", msg)
        if status is None:
            if error_kind in _RETRYABLE_KINDS:
                return Verdict.RETRY
            if error_kind in _FINAL_KINDS:
                return Verdict.FAILED
            msg = f"unknown transport error kind {error_kind!r}"
            raise ValidationError("error_kind", msg)
        if not isinstance(status, int) or isinstance(status, bool):
            msg = f"must be an int, not {type(status).__name__}"
            raise ValidationError("status", msg)
        if 200 <= status <= 299:
            return Verdict.DELIVERED
        if status == 429 or 500 <= status <= 599:
            return Verdict.RETRY
        return Verdict.FAILED

    def wait(
        self, retry_number: int, *, rng: Callable[[float, float], float] = random.uniform
    ) -> timedelta:
        """
        Return the jittered wait before retry number *retry_number* (1-based).

        Args:
            retry_number: Which retry this is; past the schedule's end the last
                entry repeats.
            rng: Called as ``rng(1 - jitter, 1 + jitter)``; a result outside that
                range is clamped into it.

        Raises:
            ValidationError: If *retry_number* is not an int of at least 1.

        >>> RetryPolicy().wait(2, rng=lambda low, high: high)
        datetime.timedelta(seconds=360)
        """
        _check_positive_int(retry_number, "retry_number")
        low, high = 1 - self.jitter, 1 + self.jitter
        factor = rng(low, high)
        if not low <= factor <= high:  # a misbehaving rng; NaN lands on low
            factor = high if factor > high else low
        return self._base_wait(retry_number) * factor

    def decide(
        self,
        *,
        attempt: int,
        status: int | None = None,
        error_kind: str | None = None,
        retry_after: str | None = None,
        now: datetime,
        rng: Callable[[float, float], float] = random.uniform,
    ) -> Decision:
        """
        Decide what follows attempt number *attempt* (1-based), which just ended.

        Args:
            attempt: The attempt that ended; 1 is the first try.
            status: The HTTP status, if a response arrived.
            error_kind: The transport error's ``kind``, if none did.
            retry_after: The raw ``Retry-After`` header, honoured on 429 and 503 only.
            now: The current time, timezone-aware; ``next_attempt_at`` is in UTC.
            rng: As for :meth:`wait`.

        Raises:
            ValidationError: If *attempt* is below 1, *now* is naive, or the outcome
                is malformed (see :meth:`classify`).

        >>> from datetime import datetime, timezone
        >>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> policy = RetryPolicy(jitter=0)
        >>> policy.decide(attempt=2, status=503, now=now).reason
        'HTTP 503, retry 2 of 5 in 5m00s'
        >>> policy.decide(attempt=1, status=429, retry_after="120", now=now).next_attempt_at
        datetime.datetime(2026, 1, 1, 0, 2, tzinfo=datetime.timezone.utc)
        >>> policy.decide(attempt=6, error_kind="timeout", now=now).verdict
        <Verdict.DEAD: 'dead'>
        >>> policy.decide(attempt=1, status=410, now=now).disable_webhook
        True
        """
        _check_positive_int(attempt, "attempt")
        now = _check_now(now)
        verdict = self.classify(status=status, error_kind=error_kind)
        what = _describe(status, error_kind)
        if verdict is Verdict.DELIVERED:
            return Decision(verdict=verdict, next_attempt_at=None, reason=what)
        if verdict is Verdict.FAILED:
            gone = status == 410
            reason = f"{what}, webhook disabled" if gone else f"{what}, not retried"
            return Decision(
                verdict=verdict, next_attempt_at=None, reason=reason, disable_webhook=gone
            )
        if attempt > self.max_retries:
            reason = f"{what}, gave up after {attempt} attempts"
            return Decision(verdict=Verdict.DEAD, next_attempt_at=None, reason=reason)
        delay = scheduled = self.wait(attempt, rng=rng)
        if status in _RETRY_AFTER_STATUSES and retry_after is not None:
            hint = parse_retry_after(retry_after, now=now)
            if hint is not None:
                delay = min(max(hint, scheduled), max(self.max_retry_after, scheduled))
        try:
            next_attempt_at = now + delay
        except OverflowError:
            msg = "too close to the end of time to schedule a retry"
            raise ValidationError("now", msg) from None
        reason = f"{what}, retry {attempt} of {self.max_retries} in {_human(delay)}"
        if delay > scheduled:
            reason += " (Retry-After)"
        return Decision(verdict=verdict, next_attempt_at=next_attempt_at, reason=reason)


def _check_threshold(
    _instance: OutagePolicy, _attribute: attrs.Attribute[int], value: int
) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        msg = f"threshold: must be an int from 1 to 1000, got {value!r}"
        raise ConfigurationError(msg)


def _check_rate(_instance: OutagePolicy, _attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        msg = f"recovery_rate: must be a number, not {type(value).__name__}"
        raise ConfigurationError(msg)
    if not 0.001 <= value <= 100_000:  # also rejects NaN
        msg = f"recovery_rate: must be from 0.001 to 100000 deliveries a second, got {value!r}"
        raise ConfigurationError(msg)


def _check_enabled(
    _instance: OutagePolicy, _attribute: attrs.Attribute[bool], value: bool
) -> None:
    if not isinstance(value, bool):
        msg = f"enabled: must be a bool, not {type(value).__name__}"
        raise ConfigurationError(msg)


def _to_probe_interval(value: timedelta | float) -> timedelta:
    return _as_duration(value, "probe_interval", positive=True)


def _to_max_probe_interval(value: timedelta | float) -> timedelta:
    return _as_duration(value, "max_probe_interval", positive=True)


def _to_hold(value: timedelta | float) -> timedelta:
    return _as_duration(value, "hold", positive=True)


def _to_disable_after(value: timedelta | float | None) -> timedelta | None:
    return None if value is None else _as_duration(value, "disable_after", positive=True)


@attrs.frozen(kw_only=True)
class OutagePolicy:
    """
    What the engine does while a destination is failing hard, and when it gives up on it.

    A destination is *failing hard* once *threshold* exchanges in a row failed in a
    retryable way (connect, timeout, dns, tls, 5xx, 429...). Then, instead of every
    delivery spending its own retries on it:

    * **one probe at a time**: a real delivery is sent when the next probe is due, by one
      worker only (a lease in the store); the probe is the pending delivery with the
      fewest attempts, so probing rotates and burns no single delivery's retries;
    * probes are spaced by *probe_interval*, doubled after every failed probe, up to
      *max_probe_interval*;
    * the destination's other deliveries are **held**: handed back unattempted, due again
      at the next probe's time or *hold* later, without an attempt counted (no
      :class:`~pendo_webhooks.dispatcher.Attempt` row; attempt numbers do not move);
    * once a probe succeeds (or the destination answers anything but a retryable failure),
      the backlog flows again **paced**: its pending deliveries are spread over time at
      *recovery_rate* a second, oldest (fewest attempts) first, in one store write.

    Each delivery still gets at most ``RetryPolicy.max_retries`` retries. Other
    destinations are never held: each webhook has its own health. Besides, a webhook
    whose exchanges have *all* failed for *disable_after* is disabled by the system (with
    the reason, audited as ``"system"``), checked when an attempt fails.

    Args:
        enabled: Hold and probe during an outage; ``False`` keeps plain per-delivery
            retries (health is still recorded, and *disable_after* still applies).
        threshold: Retryable failed exchanges in a row that start an outage, 1 to 1000.
        probe_interval: The wait before the first probe (seconds or a timedelta).
        max_probe_interval: The longest wait between probes.
        recovery_rate: Deliveries a second released after a recovery.
        hold: The longest a held delivery waits before it is looked at again (a safety
            net: a probe's success releases held deliveries at once).
        disable_after: Disable a webhook whose exchanges have all failed this long;
            ``None`` never does.

    >>> policy = OutagePolicy()
    >>> policy.threshold, policy.probe_interval, policy.max_probe_interval
    (5, datetime.timedelta(seconds=60), datetime.timedelta(seconds=900))
    >>> [int(policy.probe_wait(n).total_seconds()) for n in range(6)]
    [60, 120, 240, 480, 900, 900]
    >>> OutagePolicy(enabled=False).disable_after
    datetime.timedelta(days=5)

    Raises:
        ConfigurationError: If a field is out of range or of the wrong type.
    """

    enabled: bool = attrs.field(default=True, validator=_check_enabled)
    threshold: int = attrs.field(default=5, validator=_check_threshold)
    probe_interval: timedelta = attrs.field(
        default=timedelta(minutes=1), converter=_to_probe_interval
    )
    max_probe_interval: timedelta = attrs.field(
        default=timedelta(minutes=15), converter=_to_max_probe_interval
    )
    recovery_rate: float = attrs.field(default=10.0, validator=_check_rate)
    hold: timedelta = attrs.field(default=timedelta(hours=6), converter=_to_hold)
    disable_after: timedelta | None = attrs.field(
        default=timedelta(days=5), converter=_to_disable_after
    )

    def __attrs_post_init__(self) -> None:
        if self.max_probe_interval < self.probe_interval:
            msg = (
                f"max_probe_interval: {self.max_probe_interval} is shorter than "
                f"probe_interval ({self.probe_interval})"
            )
            raise ConfigurationError(msg)

    def probe_wait(self, failed_probes: int) -> timedelta:
        """
        The wait before the next probe after *failed_probes* failed probes in this outage.

        *probe_interval* doubled per failed probe, at most *max_probe_interval*.

        >>> OutagePolicy(probe_interval=10, max_probe_interval=25).probe_wait(2)
        datetime.timedelta(seconds=25)
        """
        _check_positive_int(failed_probes + 1, "failed_probes")
        # 2**20 times any interval is past the 365-day cap already: no huge integers.
        wait: timedelta = self.probe_interval * (2 ** min(failed_probes, 20))
        return wait if wait < self.max_probe_interval else self.max_probe_interval

    @property
    def recovery_spacing(self) -> timedelta:
        """
        The time between two deliveries released after a recovery (1 / *recovery_rate*).

        >>> OutagePolicy(recovery_rate=4).recovery_spacing
        datetime.timedelta(microseconds=250000)
        """
        return timedelta(seconds=1 / self.recovery_rate)


#: A policy that never retries: every transient failure is dead at once.
NO_RETRIES = RetryPolicy(max_retries=0)


def parse_retry_after(value: str, *, now: datetime) -> timedelta | None:
    """
    Parse a ``Retry-After`` header value into a wait, or ``None`` to ignore it.

    Accepts delay-seconds (``"120"``, also a decimal like ``"1.5"``) and an
    HTTP-date. Negative, non-numeric, non-finite, overflowing, empty and
    unparseable values give ``None``, as does a date in the past.

    Args:
        value: The header value as received.
        now: The current time, timezone-aware; dates are measured from it.

    Raises:
        ValidationError: If *value* is not a string or *now* is naive.

    >>> from datetime import datetime, timezone
    >>> now = datetime(2015, 10, 21, 7, 0, tzinfo=timezone.utc)
    >>> parse_retry_after("120", now=now)
    datetime.timedelta(seconds=120)
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now)
    datetime.timedelta(seconds=1680)
    >>> parse_retry_after("-5", now=now) is None
    True
    """
    if not isinstance(value, str):
        msg = f"must be a string, not {type(value).__name__}"
        raise ValidationError("retry_after", msg)
    now = _check_now(now)
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        try:
            return timedelta(seconds=float(text))
        except OverflowError:
            return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or asctime: HTTP-dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    wait = when - now
    return wait if wait >= timedelta(0) else None
