"""
The outbox records: :class:`Delivery`, :class:`Attempt` and :class:`DeliveryStatus`.

A :class:`Delivery` is one event on its way to one webhook; an :class:`Attempt` is one
try at sending it. Both are immutable values: the dispatcher makes the next state with
:func:`attrs.evolve` and hands it to the store, which writes it only while the
dispatcher's lease still holds.

Neither ever holds a secret, a write key or a signature: headers are computed per
attempt and never stored.

Strictly private; import these names from :mod:`pendo_webhooks.dispatcher`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs

from ..events._category import AnyCategory, to_any_category
from ..events._ids import sorted_id
from ..exceptions import ValidationError
from ..retry import Verdict


__all__ = [
    "FINISHED",
    "MAX_ERROR_LENGTH",
    "MAX_EXCERPT_BYTES",
    "Attempt",
    "Delivery",
    "DeliveryStatus",
    "clip_error",
    "evolved",
    "fresh_delivery",
    "new_exchange_id",
    "trusted_attempt",
    "trusted_delivery",
]

#: The most response bytes an :class:`Attempt` keeps.
MAX_EXCERPT_BYTES = 2048
#: The most characters of ``last_error`` a :class:`Delivery` keeps.
MAX_ERROR_LENGTH = 500


class DeliveryStatus(str, enum.Enum):
    """
    Where a delivery stands.

    >>> DeliveryStatus("dead") is DeliveryStatus.DEAD
    True
    >>> DeliveryStatus.DELIVERED.is_finished, DeliveryStatus.PENDING.is_finished
    (True, False)
    """

    #: Waiting for its next attempt (or being attempted, while a lease is held).
    PENDING = "pending"
    #: The receiver answered 2xx.
    DELIVERED = "delivered"
    #: A final failure that no retry can fix (3xx, most 4xx, 410, a blocked address).
    FAILED = "failed"
    #: Every retry failed; the retry budget is spent.
    DEAD = "dead"
    #: Never sent (again) because its webhook was disabled, deleted or unsubscribed.
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_finished(self) -> bool:
        """
        Whether nothing more happens to a delivery in this state (unless redelivered).
        """
        return self is not DeliveryStatus.PENDING


#: The final states.
FINISHED: frozenset[DeliveryStatus] = frozenset(s for s in DeliveryStatus if s.is_finished)


def clip_error(text: str | None) -> str | None:
    """
    Clip an error text to :data:`MAX_ERROR_LENGTH` characters.

    >>> len(clip_error("x" * 1000)), clip_error(None)
    (500, None)
    """
    if text is None or len(text) <= MAX_ERROR_LENGTH:
        return text
    return text[: MAX_ERROR_LENGTH - 1] + "\u2026"


def _to_status(value: DeliveryStatus | str) -> DeliveryStatus:
    try:
        return DeliveryStatus(value)
    except ValueError:
        msg = f"unknown delivery status {str(value)[:50]!r}"
        raise ValidationError("status", msg) from None


def _to_category(value: AnyCategory | str) -> AnyCategory:
    try:
        return to_any_category(value)
    except ValueError:
        msg = f"unknown event category {str(value)[:100]!r}"
        raise ValidationError("category", msg) from None


def _to_verdict(value: Verdict | str) -> Verdict:
    try:
        return Verdict(value)
    except ValueError:
        msg = f"unknown verdict {str(value)[:50]!r}"
        raise ValidationError("verdict", msg) from None


def _utc(value: datetime) -> datetime:
    if type(value) is datetime and value.tzinfo is timezone.utc:
        return value  # the common case, checked cheaply: records are built on every attempt
    if not isinstance(value, datetime) or value.utcoffset() is None:
        msg = "must be a timezone-aware datetime"
        raise ValidationError("datetime", msg)
    return value.astimezone(timezone.utc)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _check_count(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = "must be a non-negative integer"
        raise ValidationError(attribute.name, msg)


def _check_bytes(_: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes):
        msg = f"must be bytes, not {type(value).__name__}"
        raise ValidationError(attribute.name, msg)


def new_exchange_id() -> str:
    """
    Mint the id of one HTTP exchange: ``"exc_"`` and 24 characters, in creation order.

    >>> new_exchange_id().startswith("exc_"), len(new_exchange_id())
    (True, 28)
    """
    return sorted_id("exc")


def _body_repr(body: bytes) -> str:
    return f"<{len(body)} bytes>"


@attrs.frozen(kw_only=True)
class Delivery:
    """
    One event on its way to one webhook.

    Attributes:
        id: ``"dlv_"`` plus random characters.
        webhook_id: The webhook it goes to.
        event_id: The event's ``uniqueId``: the ``webhook-id`` header of every
            attempt and every replay, so receivers can de-duplicate. One
            delivery per event and webhook.
        category: The event's category (an
            :class:`~pendo_webhooks.events.OperationsCategory` for an operations event).
        body: The exact bytes sent on every attempt, serialized once when the
            delivery was created (empty once purged). Never shown in the repr.
        status: Where it stands.
        attempts: Attempts made so far, redeliveries included.
        attempt_base: Attempts made before the last manual redelivery; the retry
            budget counts from here.
        next_attempt_at: When it may next be claimed; while a lease is held,
            when that lease lapses.
        created_at, updated_at: When it was stored and last changed.
        last_status: The HTTP status of the last attempt, if one came back.
        last_error: Why the last attempt did not deliver, or why it was
            cancelled; sanitized (no query strings, secrets or bodies).
        lease_owner, lease_until: Who is attempting it, and until when their
            claim holds; ``None`` when nobody is.
        finished_at: When it reached a final state.
        redelivered_at: When it was last redelivered by hand.
        purged: Whether its body and response excerpts were purged.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> d = Delivery(id="dlv_1", webhook_id="wh_1", event_id="f961", category="npsSubmitted",
    ...              body=b"{}", next_attempt_at=t, created_at=t, updated_at=t)
    >>> d  # doctest: +NORMALIZE_WHITESPACE
    Delivery(id='dlv_1', webhook_id='wh_1', event_id='f961',
             category=<EventCategory.NPS_SUBMITTED: 'npsSubmitted'>, body=<2 bytes>,
             status=<DeliveryStatus.PENDING: 'pending'>, attempts=0, attempt_base=0,
             next_attempt_at=datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc),
             created_at=datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc),
             updated_at=datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc),
             last_status=None, last_error=None, lease_owner=None, lease_until=None,
             finished_at=None, redelivered_at=None, purged=False)
    >>> d.is_due(t)
    True
    """

    id: str
    webhook_id: str
    event_id: str
    category: AnyCategory = attrs.field(converter=_to_category)
    body: bytes = attrs.field(validator=_check_bytes, repr=_body_repr)
    status: DeliveryStatus = attrs.field(default=DeliveryStatus.PENDING, converter=_to_status)
    attempts: int = attrs.field(default=0, validator=_check_count)
    attempt_base: int = attrs.field(default=0, validator=_check_count)
    next_attempt_at: datetime = attrs.field(converter=_utc)
    created_at: datetime = attrs.field(converter=_utc)
    updated_at: datetime = attrs.field(converter=_utc)
    last_status: int | None = None
    last_error: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = attrs.field(default=None, converter=_utc_or_none)
    finished_at: datetime | None = attrs.field(default=None, converter=_utc_or_none)
    redelivered_at: datetime | None = attrs.field(default=None, converter=_utc_or_none)
    purged: bool = False

    def is_due(self, now: datetime) -> bool:
        """
        Whether a worker may claim it at *now*: pending, and its time (or its lease) is up.
        """
        return self.status is DeliveryStatus.PENDING and self.next_attempt_at <= now

    @property
    def attempt_number(self) -> int:
        """
        The number the next attempt will get (1 for the first).
        """
        return self.attempts + 1


@attrs.frozen(kw_only=True)
class Attempt:
    """
    One try at sending a delivery, as stored: the delivery's part in one HTTP exchange.

    An *exchange* is one request and what came of it. A URL webhook's exchange carries
    one delivery; a Segment batch's carries every delivery in the batch, and each of
    them gets an attempt with the same :attr:`exchange_id` and the same exchange facts
    (*started_at* to *response_excerpt*), which a store keeps once. *number*, *verdict*
    and *reason* are the delivery's own.

    Attributes:
        delivery_id: The delivery tried.
        number: 1 for the first attempt, counting on across redeliveries.
        exchange_id: The HTTP exchange it was part of (``"exc_"`` plus 24 characters);
            attempts with the same one were sent in one request. An attempt built
            without one is an exchange of its own (a fresh id).
        started_at: When the request started.
        duration: Seconds it took, until a response or an error.
        status_code: The HTTP status, if a response came back.
        error_kind: Otherwise why not: ``"timeout"``, ``"connect"``, ``"dns"``,
            ``"tls"``, ``"blocked"``, ``"too-large"`` or ``"error"``.
        detail: A sanitized description of the error, if any.
        response_excerpt: At most :data:`MAX_EXCERPT_BYTES` of the response
            body, as received (empty once purged).
        verdict: What the retry policy made of it.
        reason: The policy's short explanation, e.g. ``"HTTP 503, retry 1 of 5 in 5s"``.

    >>> from datetime import datetime, timezone
    >>> a = Attempt(delivery_id="dlv_1", number=1,
    ...             started_at=datetime(2026, 1, 1, tzinfo=timezone.utc), duration=0.01,
    ...             status_code=503, verdict="retry", reason="HTTP 503, retry 1 of 5 in 5s")
    >>> a.verdict, a.response_excerpt, a.exchange_id.startswith("exc_")
    (<Verdict.RETRY: 'retry'>, b'', True)
    """

    delivery_id: str
    number: int = attrs.field(validator=_check_count)
    exchange_id: str = attrs.field(factory=new_exchange_id)
    started_at: datetime = attrs.field(converter=_utc)
    duration: float
    status_code: int | None = None
    error_kind: str | None = None
    detail: str | None = None
    response_excerpt: bytes = attrs.field(default=b"", validator=_check_bytes, repr=_body_repr)
    verdict: Verdict = attrs.field(converter=_to_verdict)
    reason: str

    def __attrs_post_init__(self) -> None:
        if len(self.response_excerpt) > MAX_EXCERPT_BYTES:
            msg = f"must be at most {MAX_EXCERPT_BYTES} bytes"
            raise ValidationError("response_excerpt", msg)
        if (self.status_code is None) == (self.error_kind is None):
            msg = "give exactly one of status_code and error_kind"
            raise ValidationError("status_code", msg)


# -- trusted construction ---------------------------------------------------------------
#
# The public constructors convert and check every field: right for values from outside,
# but 8 to 12 us a record on the hot paths, which build records from values that are
# already of the right types (our own clock, enums, and rows our stores wrote). These
# build them without the converters, 3 to 4 times faster; datetimes still go through
# the cheap UTC check, since an injected clock may use another offset.

_Setter = Callable[[object, Any], None]


def slot_setters(cls: type) -> tuple[tuple[str, _Setter], ...]:
    """
    The fields of an attrs slotted class, each with its slot's setter, in field order.

    A slot's member descriptor ``__set__`` skips a frozen class's ``__setattr__``, exactly
    what attrs' generated ``__init__`` does: the library's trusted builders (here, and of
    requests, outcomes and first-seen events) set every field with them, without the
    converters and validators. The slot may be a base class's (``getattr`` finds it in
    the class's MRO). Strictly private.

    >>> [name for name, _ in slot_setters(Attempt)][:2]
    ['delivery_id', 'number']
    """
    return tuple((f.name, getattr(cls, f.name).__set__) for f in attrs.fields(cls))


_DELIVERY_SLOTS = slot_setters(Delivery)
_ATTEMPT_SLOTS = slot_setters(Attempt)
_new = object.__new__


def _fill(record: object, slots: tuple[tuple[str, _Setter], ...], values: Sequence[Any]) -> None:
    for (_, setter), value in zip(slots, values, strict=True):
        setter(record, value)


def trusted_delivery(
    *,
    id: str,  # noqa: A002 - the field's name
    webhook_id: str,
    event_id: str,
    category: AnyCategory,
    body: bytes,
    status: DeliveryStatus = DeliveryStatus.PENDING,
    attempts: int = 0,
    attempt_base: int = 0,
    next_attempt_at: datetime,
    created_at: datetime,
    updated_at: datetime,
    last_status: int | None = None,
    last_error: str | None = None,
    lease_owner: str | None = None,
    lease_until: datetime | None = None,
    finished_at: datetime | None = None,
    redelivered_at: datetime | None = None,
    purged: bool = False,
) -> Delivery:
    """
    Build a :class:`Delivery` from values already of the right types, without the checks.

    For the library's hot paths only: *category* and *status* must be the enums, the
    counts non-negative ints, *body* bytes. Datetimes are still normalized to UTC.

    >>> from datetime import datetime, timezone
    >>> from pendo_webhooks.events import EventCategory
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> fields = dict(id="dlv_1", webhook_id="wh_1", event_id="f961", body=b"{}",
    ...               category=EventCategory.NPS_SUBMITTED, next_attempt_at=t,
    ...               created_at=t, updated_at=t)
    >>> trusted_delivery(**fields) == Delivery(**fields)
    True
    """
    record = _new(Delivery)
    _fill(
        record,
        _DELIVERY_SLOTS,
        (
            id,
            webhook_id,
            event_id,
            category,
            body,
            status,
            attempts,
            attempt_base,
            _utc(next_attempt_at),
            _utc(created_at),
            _utc(updated_at),
            last_status,
            last_error,
            lease_owner,
            None if lease_until is None else _utc(lease_until),
            None if finished_at is None else _utc(finished_at),
            None if redelivered_at is None else _utc(redelivered_at),
            purged,
        ),
    )
    return record


# Each field's setter by name, for the unrolled builder below (no loop, no keywords).
(
    _set_id,
    _set_webhook_id,
    _set_event_id,
    _set_category,
    _set_body,
    _set_status,
    _set_attempts,
    _set_attempt_base,
    _set_next_attempt_at,
    _set_created_at,
    _set_updated_at,
    _set_last_status,
    _set_last_error,
    _set_lease_owner,
    _set_lease_until,
    _set_finished_at,
    _set_redelivered_at,
    _set_purged,
) = (setter for _, setter in _DELIVERY_SLOTS)
_PENDING = DeliveryStatus.PENDING


def fresh_delivery(  # noqa: PLR0917 - positional: keywords cost on the hot path
    id: str,  # noqa: A002 - the field's name
    webhook_id: str,
    event_id: str,
    category: AnyCategory,
    body: bytes,
    next_attempt_at: datetime,
    now: datetime,
    lease_owner: str | None,
    lease_until: datetime | None,
) -> Delivery:
    """
    A new delivery, as :func:`trusted_delivery` builds it with these values and the defaults.

    Positional and unrolled, for planning, which builds one per event and webhook: pending,
    never attempted, created and updated *now*, nothing finished. Trusted as
    :func:`trusted_delivery` (datetimes still normalized to UTC).

    >>> from datetime import datetime, timezone
    >>> from pendo_webhooks.events import EventCategory
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> fresh_delivery("dlv_1", "wh_1", "f961", EventCategory.NPS_SUBMITTED, b"{}", t, t,
    ...                None, None) == Delivery(
    ...     id="dlv_1", webhook_id="wh_1", event_id="f961", body=b"{}",
    ...     category=EventCategory.NPS_SUBMITTED, next_attempt_at=t, created_at=t, updated_at=t)
    True
    """
    now = _utc(now)
    record = _new(Delivery)
    _set_id(record, id)
    _set_webhook_id(record, webhook_id)
    _set_event_id(record, event_id)
    _set_category(record, category)
    _set_body(record, body)
    _set_status(record, _PENDING)
    _set_attempts(record, 0)
    _set_attempt_base(record, 0)
    _set_next_attempt_at(record, _utc(next_attempt_at))
    _set_created_at(record, now)
    _set_updated_at(record, now)
    _set_last_status(record, None)
    _set_last_error(record, None)
    _set_lease_owner(record, lease_owner)
    _set_lease_until(record, None if lease_until is None else _utc(lease_until))
    _set_finished_at(record, None)
    _set_redelivered_at(record, None)
    _set_purged(record, False)
    return record


_TIMES = frozenset(
    {"next_attempt_at", "created_at", "updated_at", "lease_until", "finished_at", "redelivered_at"}
)


def evolved(delivery: Delivery, **changes: Any) -> Delivery:
    """
    :func:`attrs.evolve` for a :class:`Delivery`, trusting *changes* as :func:`trusted_delivery`.

    Raises:
        ValidationError: If a change names no field.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> d = Delivery(id="dlv_1", webhook_id="wh_1", event_id="f961", category="npsSubmitted",
    ...              body=b"{}", next_attempt_at=t, created_at=t, updated_at=t)
    >>> evolved(d, attempts=1) == attrs.evolve(d, attempts=1)
    True
    """
    record = _new(Delivery)
    for name, setter in _DELIVERY_SLOTS:
        if name in changes:
            value = changes.pop(name)
            if value is not None and name in _TIMES:
                value = _utc(value)
        else:
            value = getattr(delivery, name)
        setter(record, value)
    if changes:
        raise ValidationError(min(changes), "not a field of Delivery")
    return record


def trusted_attempt(
    *,
    delivery_id: str,
    number: int,
    exchange_id: str | None = None,
    started_at: datetime,
    duration: float,
    status_code: int | None = None,
    error_kind: str | None = None,
    detail: str | None = None,
    response_excerpt: bytes = b"",
    verdict: Verdict,
    reason: str,
) -> Attempt:
    """
    Build an :class:`Attempt` from values already of the right types, without the checks.

    For the library's hot paths only (an :class:`~pendo_webhooks.dispatcher._attempt.Exchange`
    already holds exactly one of *status_code* and *error_kind*, and a clipped excerpt). Without
    *exchange_id*, the attempt is an exchange of its own.

    >>> from datetime import datetime, timezone
    >>> fields = dict(delivery_id="dlv_1", number=1, duration=0.01, status_code=200,
    ...               exchange_id="exc_1",
    ...               started_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    ...               verdict=Verdict.DELIVERED, reason="HTTP 200")
    >>> trusted_attempt(**fields) == Attempt(**fields)
    True
    """
    record = _new(Attempt)
    _fill(
        record,
        _ATTEMPT_SLOTS,
        (
            delivery_id,
            number,
            new_exchange_id() if exchange_id is None else exchange_id,
            _utc(started_at),
            duration,
            status_code,
            error_kind,
            detail,
            response_excerpt,
            verdict,
            reason,
        ),
    )
    return record
