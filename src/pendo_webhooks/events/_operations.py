"""
:class:`Alert`: one operations event, and its wire bytes.

An alert tells the host that something needs a person: a delivery spent its retries, a
webhook was disabled, a failing webhook recovered. The same value goes to the host's
callback and, as a signed JSON body, to its *operations webhooks*
(:mod:`pendo_webhooks.alerts`).

Strictly private; import these names from :mod:`pendo_webhooks.alerts`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import attrs

from ..exceptions import InvalidEventPayload, UnknownEventType, ValidationError
from ._category import OperationsCategory


__all__ = ["Alert", "sample_alert"]


def _to_kind(value: OperationsCategory | str) -> OperationsCategory:
    try:
        if isinstance(value, str) and not value.startswith("pendo_webhooks."):
            value = "pendo_webhooks." + value
        return OperationsCategory(value)
    except ValueError:
        names = ", ".join(repr(k.short) for k in OperationsCategory)
        msg = f"must be one of {names}, not {str(value)[:60]!r}"
        raise ValidationError("kind", msg) from None


def _to_utc(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        msg = "must be a timezone-aware datetime"
        raise ValidationError("at", msg)
    return value.astimezone(timezone.utc)


def _timestamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@attrs.frozen(kw_only=True)
class Alert:
    """
    One operations event: what happened, to which webhook (and delivery), when, and why.

    Attributes:
        kind: :attr:`~OperationsCategory.DELIVERY_EXHAUSTED`,
            :attr:`~OperationsCategory.WEBHOOK_DISABLED` or
            :attr:`~OperationsCategory.WEBHOOK_RECOVERED` (the short names
            ``"delivery.exhausted"`` ... are accepted too).
        webhook_id: The webhook concerned.
        at: When it happened (aware UTC): when the delivery went ``dead``, when the
            webhook was disabled or recovered.
        webhook_name: The webhook's name, if known.
        delivery_id: The delivery that went ``dead`` (``delivery.exhausted`` only).
        event_id: That delivery's event id, its ``webhook-id`` header (idem).
        event: That delivery's event category, e.g. ``"npsSubmitted"`` (idem).
        attempts: How many attempts it had (idem).
        reason: Why, if known: the last error, or the disable reason.
        by: Who disabled the webhook: ``"system"`` or an admin's id
            (``webhook.disabled`` only).
        operations: Whether the subject is itself an operations webhook's delivery.
            Such an alert goes to the callback and the log only, never to an
            operations webhook: a dead operations delivery cannot page about itself
            in a loop.

    :attr:`id` is derived from what happened, so the same alert, made twice (by the
    hook and by :meth:`~pendo_webhooks.alerts.Alerts.sweep`), is stored once per
    operations webhook; it is the ``webhook-id`` header of its deliveries.

    >>> from datetime import datetime, timezone
    >>> alert = Alert(kind="webhook.disabled", webhook_id="wh_1", by="system",
    ...               reason="HTTP 410 Gone from hooks.example.com",
    ...               at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    >>> alert.kind.short, alert.id.startswith("alr_"), len(alert.id)
    ('webhook.disabled', True, 30)
    >>> alert.to_body()[:72]
    b'{"type":"pendo_webhooks.webhook.disabled","timestamp":"2026-01-01T00:00:'

    Raises:
        ValidationError: For an unknown *kind* or a naive *at*.
    """

    kind: OperationsCategory = attrs.field(converter=_to_kind)
    webhook_id: str
    at: datetime = attrs.field(converter=_to_utc)
    webhook_name: str | None = None
    delivery_id: str | None = None
    event_id: str | None = None
    event: str | None = None
    attempts: int | None = None
    reason: str | None = None
    by: str | None = None
    operations: bool = False

    @property
    def id(self) -> str:
        """
        ``"alr_"`` and 26 characters, the same for the same occurrence.

        A delivery's exhaustion is told by the delivery and its attempt count (a
        redelivery that dies again is a new alert); a webhook's change by the webhook
        and the time of the change.
        """
        if self.kind is OperationsCategory.DELIVERY_EXHAUSTED:
            subject = f"{self.delivery_id}|{self.attempts}"
        else:
            subject = f"{self.webhook_id}|{_timestamp(self.at)}"
        digest = hashlib.sha256(f"{self.kind.value}|{subject}".encode()).digest()
        return "alr_" + base64.b32encode(digest).decode().lower()[:26]

    def to_wire_dict(self) -> dict[str, Any]:
        """
        The JSON object an operations webhook receives (see the wire-format reference).

        ``{"type": ..., "timestamp": ..., "data": {...}}``: *type* is the kind's full
        name, *timestamp* the ISO 8601 time with milliseconds and ``Z``, *data* the
        kind's fields (every key present; ``null`` where unknown).
        """
        data: dict[str, Any] = {"webhook_id": self.webhook_id, "webhook_name": self.webhook_name}
        if self.kind is OperationsCategory.DELIVERY_EXHAUSTED:
            data.update(
                delivery_id=self.delivery_id,
                event_id=self.event_id,
                event=self.event,
                attempts=self.attempts,
            )
        elif self.kind is OperationsCategory.WEBHOOK_DISABLED:
            data["by"] = self.by
        data["reason"] = self.reason
        return {"type": self.kind.value, "timestamp": _timestamp(self.at), "data": data}

    @classmethod
    def from_body(cls, body: bytes | str) -> Alert:
        """
        Read an operations webhook's body back into an :class:`Alert`; verify it first.

        The inverse of :meth:`to_body` (keys it does not know are ignored; *operations*
        is ``False``, as on every alert sent).

        >>> from datetime import datetime, timezone
        >>> sent = sample_alert(OperationsCategory.WEBHOOK_DISABLED,
        ...                     datetime(2026, 1, 1, tzinfo=timezone.utc))
        >>> Alert.from_body(sent.to_body()) == sent
        True
        >>> Alert.from_body(b'{"type": "pendo_webhooks.webhook.disabled", "data": {}}')
        Traceback (most recent call last):
          ...
        pendo_webhooks.exceptions.InvalidEventPayload: timestamp: required; data.webhook_id: required; data.webhook_name: required; data.by: required; data.reason: required

        Raises:
            UnknownEventType: If ``type`` names no operations event.
            InvalidEventPayload: Naming each key that is missing or of the wrong type.
        """  # noqa: E501 - a doctest's output line
        try:
            loaded = json.loads(body)
        except ValueError:
            raise InvalidEventPayload(["$: not JSON"]) from None
        if not isinstance(loaded, dict):
            raise InvalidEventPayload(["$: must be a JSON object"])
        try:
            kind = OperationsCategory(loaded.get("type"))
        except ValueError:
            raise UnknownEventType(loaded.get("type")) from None
        errors: list[str] = []
        at = _read_timestamp(loaded.get("timestamp"), errors)
        data = loaded.get("data")
        if not isinstance(data, dict):
            raise InvalidEventPayload([*errors, "data: must be a JSON object"])
        fields: dict[str, Any] = {}
        for key in sample_alert(kind, _EPOCH).to_wire_dict()["data"]:
            wanted, nullable = _WIRE_TYPES[key]
            value = data.get(key, _MISSING)
            if value is _MISSING:
                errors.append(f"data.{key}: required")
            elif not (value is None and nullable) and (
                not isinstance(value, wanted) or isinstance(value, bool)
            ):
                what = "an integer" if wanted is int else "a string"
                errors.append(f"data.{key}: must be {what}" + (" or null" if nullable else ""))
            else:
                fields[key] = value
        if errors or at is None:
            raise InvalidEventPayload(errors)
        return cls(kind=kind, at=at, **fields)

    def to_body(self) -> bytes:
        """
        :meth:`to_wire_dict` as compact UTF-8 JSON: the bytes stored and signed.
        """
        return json.dumps(self.to_wire_dict(), ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MISSING = object()
# Each data key's type on the wire, and whether it may be null.
_WIRE_TYPES: dict[str, tuple[type, bool]] = {
    "webhook_id": (str, False),
    "webhook_name": (str, True),
    "delivery_id": (str, False),
    "event_id": (str, False),
    "event": (str, False),
    "attempts": (int, False),
    "by": (str, False),
    "reason": (str, True),
}


def _read_timestamp(value: object, errors: list[str]) -> datetime | None:
    if value is None:
        errors.append("timestamp: required")
        return None
    if isinstance(value, str) and value.endswith("Z"):
        try:
            return datetime.fromisoformat(value[:-1] + "+00:00")
        except ValueError:
            pass
    errors.append("timestamp: must be an ISO 8601 UTC time ending in Z")
    return None


def sample_alert(kind: OperationsCategory, at: datetime) -> Alert:
    """
    A made-up alert of *kind* at *at*, what the "Test" button sends to an operations webhook.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> sample_alert(OperationsCategory.DELIVERY_EXHAUSTED, t).reason
    'test alert: HTTP 503, retries spent'
    """
    common: dict[str, Any] = {"kind": kind, "at": at, "webhook_name": "Test webhook"}
    if kind is OperationsCategory.DELIVERY_EXHAUSTED:
        return Alert(
            webhook_id="wh_test",
            delivery_id="dlv_test",
            event_id="test",
            event="npsSubmitted",
            attempts=6,
            reason="test alert: HTTP 503, retries spent",
            **common,
        )
    if kind is OperationsCategory.WEBHOOK_DISABLED:
        return Alert(
            webhook_id="wh_test", by="system", reason="test alert: HTTP 410 Gone", **common
        )
    return Alert(webhook_id="wh_test", reason="test alert: answering again", **common)
