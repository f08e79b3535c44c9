"""
Fakes for exact, offline tests of sending code: a frozen clock and a recording transport.

Strictly private; import :class:`FrozenClock` and :class:`RecordingTransport` from
:mod:`pendo_webhooks.testing`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

from ..exceptions import ValidationError
from ..transports import OutgoingRequest, TransportResponse


__all__ = ["FrozenClock", "RecordingTransport"]

#: Where a :class:`FrozenClock` starts unless told otherwise.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)

_Answer = TransportResponse | BaseException


def _aware(value: datetime, field: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationError(field, "must be a timezone-aware datetime")
    return value.astimezone(timezone.utc)


class FrozenClock:
    """
    A clock that stands still until a test moves it; call it like any clock. Thread-safe.

    Pass :meth:`sleep` as a dispatcher's *sleep*, and ``drain()`` moves time forward
    instead of waiting.

    >>> clock = FrozenClock()
    >>> clock()
    datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> clock.advance(90).isoformat()
    '2026-01-01T00:01:30+00:00'
    >>> clock.advance(timedelta(hours=1)).hour, clock.advance(minutes=5).minute
    (1, 6)
    >>> clock.sleep(2.5); clock.sleeps
    [2.5]

    Raises:
        ValidationError: If a time is naive, or a step is negative or not a number.
    """

    def __init__(self, now: datetime = DEFAULT_START) -> None:
        self._now = _aware(now, "now")
        self._lock = threading.Lock()
        #: Every :meth:`sleep` call's seconds, in order.
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def __repr__(self) -> str:
        return f"FrozenClock({self().isoformat()!r})"

    @property
    def now(self) -> datetime:
        """
        The time the clock shows.
        """
        return self()

    def set(self, moment: datetime) -> None:
        """
        Show *moment* from now on (it may lie in the past).
        """
        moment = _aware(moment, "moment")
        with self._lock:
            self._now = moment

    def advance(self, delta: float | timedelta | None = None, **kwargs: float) -> datetime:
        """
        Move forward by *delta* (seconds or a timedelta), or ``timedelta(**kwargs)``.

        Returns:
            The new time.
        """
        if delta is None:
            step = timedelta(**kwargs)
        elif isinstance(delta, timedelta):
            step = delta
        elif isinstance(delta, int | float) and not isinstance(delta, bool):
            step = timedelta(seconds=delta)
        else:
            raise ValidationError("delta", "must be a number of seconds or a timedelta")
        if step < timedelta(0):
            raise ValidationError("delta", "must not be negative: time only moves forward")
        with self._lock:
            self._now += step
            return self._now

    def sleep(self, seconds: float) -> None:
        """
        Record *seconds* in :attr:`sleeps` and advance by it, without waiting.
        """
        self.advance(seconds)
        with self._lock:
            self.sleeps.append(seconds)


def _check_scripted(item: object) -> _Answer:
    if isinstance(item, bool) or not isinstance(item, int | TransportResponse | BaseException):
        msg = "each must be an HTTP status, a TransportResponse or an exception to raise"
        raise ValidationError("responses", msg)
    if isinstance(item, int):
        return TransportResponse(status=item)
    return item


class RecordingTransport:
    """
    A Transport that records every request and answers from a script; thread-safe.

    Args:
        responses: Answers to give in order: an HTTP status, a
            :class:`~pendo_webhooks.transports.TransportResponse`, or an exception to
            raise (a :class:`~pendo_webhooks.exceptions.TransportError` for a network
            failure); then *default* forever.
        default: The answer once *responses* run out.
        on_send: Called with each request before it is answered (from the sending
            thread), to act "while the request is in flight".

    >>> from pendo_webhooks.exceptions import TransportError
    >>> transport = RecordingTransport([503, TransportError("timeout", "too slow")])
    >>> request = OutgoingRequest(url="https://hooks.example.com/in", body=b"{}")
    >>> transport.send(request).status
    503
    >>> transport.send(request)
    Traceback (most recent call last):
      ...
    pendo_webhooks.exceptions.TransportError: timeout: too slow
    >>> transport.send(request).status, len(transport.requests)
    (200, 3)

    Raises:
        ValidationError: If a scripted answer is of the wrong kind.
    """

    def __init__(
        self,
        responses: Iterable[int | TransportResponse | BaseException] = (),
        *,
        default: int | TransportResponse = 200,
        on_send: Callable[[OutgoingRequest], object] | None = None,
    ) -> None:
        self._script: deque[_Answer] = deque(_check_scripted(r) for r in responses)
        default_reply = _check_scripted(default)
        if isinstance(default_reply, BaseException):
            raise ValidationError("default", "must be an HTTP status or a TransportResponse")
        self._default = default_reply
        self._on_send = on_send
        self._lock = threading.Lock()
        self._requests: list[OutgoingRequest] = []

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"<RecordingTransport(requests={len(self._requests)}, "
                f"scripted_left={len(self._script)})>"
            )

    @property
    def requests(self) -> list[OutgoingRequest]:
        """
        The requests sent so far, in order (a copy).
        """
        with self._lock:
            return list(self._requests)

    def add(self, *responses: int | TransportResponse | BaseException) -> None:
        """
        Append answers to the script.
        """
        checked = [_check_scripted(r) for r in responses]
        with self._lock:
            self._script.extend(checked)

    def send(self, request: OutgoingRequest) -> TransportResponse:
        """
        Record *request* and give the next scripted answer.
        """
        with self._lock:
            self._requests.append(request)
            answer = self._script.popleft() if self._script else self._default
        if self._on_send is not None:
            self._on_send(request)
        if isinstance(answer, BaseException):
            raise answer
        return answer
