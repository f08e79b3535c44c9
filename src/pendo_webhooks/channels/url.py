"""
The URL channel: Pendo's JSON body, signed afresh at each attempt, one delivery per request.

>>> from datetime import datetime, timezone
>>> from pendo_webhooks.testing import sample_event
>>> channel = URLChannel()
>>> body = channel.format(sample_event("guideDisplayed"))
>>> channel.max_message_bytes, channel.max_batch_messages, channel.plan([len(body)] * 3)
(262144, 1, [1, 1, 1])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..events._models import Event
from ..exceptions import ValidationError
from ..model._webhook import Webhook
from ..transports import OutgoingRequest
from ._filtering import filtered_by
from ._formatters import Formatter, URLFormatter
from ._url_request import SignerCache, url_request
from .base import Message


__all__ = ["DEFAULT_MAX_BODY_BYTES", "URLChannel"]

#: The largest URL webhook body sent unless told otherwise (256 KB).
DEFAULT_MAX_BODY_BYTES = 262_144


def _check_limit(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31:
        raise ValidationError(attribute.name, "must be an int from 1 to 2**31")


@attrs.frozen(kw_only=True)
class URLChannel:
    """
    Sends URL webhooks: each delivery's stored body POSTed alone to the webhook's URL.

    Headers: ``Content-Type``, ``User-Agent``, the webhook's extra headers, then the
    signature headers of its scheme, signed at send time with every secret valid then
    (``webhook-id`` is the event's ``uniqueId``). A response holds no credential of
    ours, so nothing is scrubbed.

    Attributes:
        max_body_bytes: The largest body sent; a larger one is stored ``failed``.
        formatter: Makes the stored body (Pendo's JSON, byte for byte, by default).

    Raises:
        ValidationError: If *max_body_bytes* is not an int from 1 to 2**31.

    >>> from datetime import datetime, timezone
    >>> from pendo_webhooks.registry import Webhook
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> hook = Webhook(id="wh_1", name="n", url="https://hooks.example.com/in",
    ...                secret="s3cr3t!", categories=["guideDisplayed"], created_at=t,
    ...                created_by="u", updated_at=t, updated_by="u")
    >>> class Stored:
    ...     body, event_id = b"{}", "evt-1"
    >>> request = URLChannel().request(hook, [Stored()], now=t)
    >>> request.url, request.body, request.headers["webhook-id"]
    ('https://hooks.example.com/in', b'{}', 'evt-1')
    """

    max_body_bytes: int = attrs.field(default=DEFAULT_MAX_BODY_BYTES, validator=_check_limit)
    formatter: Formatter = attrs.field(factory=URLFormatter)
    _signers: SignerCache = attrs.field(factory=SignerCache, init=False, eq=False, repr=False)

    @property
    def max_message_bytes(self) -> int:
        """
        *max_body_bytes*.
        """
        return self.max_body_bytes

    @property
    def max_batch_messages(self) -> int:
        """
        1: every delivery goes alone.
        """
        return 1

    def format(self, event: Event) -> bytes:
        """
        Return *formatter*'s bytes for *event*.

        Raises:
            PayloadError: If *event* cannot be serialized.
        """
        return self.formatter.format(event)

    def format_filtered(self, event: Event, wire: Mapping[str, Any]) -> bytes:
        """
        Return *formatter*'s bytes for *event* made from *wire*, its Pendo JSON after a
        webhook's PII filters (see :func:`~pendo_webhooks.channels.format_for`).

        Raises:
            NotImplementedError: If *formatter* has no ``format_filtered`` (a host's own
                formatter): the webhook's events are then refused, never sent unfiltered.
            PayloadError: If *wire* cannot be serialized.
        """
        return filtered_by(self.formatter, event, wire)

    def refuse(self, body: bytes) -> str | None:  # noqa: ARG002 - the Channel signature
        """
        ``None``: a stored body is sent as it is (the transport has its own limit).
        """
        return None

    def plan(self, sizes: Sequence[int]) -> list[int]:
        """
        One request per message.
        """
        return [1] * len(sizes)

    def request(
        self, webhook: Webhook, messages: Sequence[Message], *, now: datetime
    ) -> OutgoingRequest:
        """
        Sign the one message for *webhook* at *now*: the request of one attempt.
        """
        (message,) = messages
        return url_request(
            webhook, message.body, event_id=message.event_id, now=now, signers=self._signers
        )

    def scrub(self, webhook: Webhook, data: bytes) -> bytes:  # noqa: ARG002 - the signature
        """
        *data* itself: a URL webhook's response holds no credential of ours.
        """
        return data
