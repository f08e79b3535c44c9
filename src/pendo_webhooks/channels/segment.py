"""
The Segment channel: ``track`` messages, sent together as ``POST <endpoint>/v1/batch``.

A Segment webhook's deliveries hold ``track`` messages (serialized once, at enqueue, by
:class:`~pendo_webhooks.formatters.SegmentFormatter`). When one of them is attempted, the
dispatcher claims the webhook's other due deliveries too (up to
:data:`~pendo_webhooks.formatters.MAX_BATCH_MESSAGES` in all), this channel cuts them into
batches within Segment's limits, and each batch goes as one request whose body joins the
stored bytes as they are. The write key is read from the webhook at send time and goes
only into the ``Authorization`` header; a response that echoes it is scrubbed before
anything of it is stored.

>>> channel = SegmentChannel()
>>> channel.max_message_bytes, channel.max_batch_messages
(32768, 2500)
>>> channel.plan([100] * 3000)
[2500, 500]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from ..events._models import Event
from ..exceptions import ConfigurationError
from ..model._webhook import Webhook
from ..transports import OutgoingRequest
from ._filtering import filtered_by
from ._formatters import Formatter, SegmentFormatter
from ._segment import (
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    basic_auth,
    batch_request,
    message_id_reason,
    plan_batches,
    too_large_reason,
)
from .base import Message


__all__ = ["SegmentChannel"]

_REDACTED = b"<redacted>"


@attrs.frozen(kw_only=True)
class SegmentChannel:
    """
    Sends Segment webhooks: their stored ``track`` messages in batches, with the write key.

    Attributes:
        formatter: Makes each stored message; pass
            ``SegmentFormatter(library_name=...)`` to name your product in
            ``context.library``.

    >>> import json
    >>> from pendo_webhooks.formatters import SegmentFormatter
    >>> from pendo_webhooks.testing import sample_event
    >>> channel = SegmentChannel(formatter=SegmentFormatter(library_name="acme-sync"))
    >>> json.loads(channel.format(sample_event("accountCreated")))["context"]["library"]["name"]
    'acme-sync'
    """

    formatter: Formatter = attrs.field(factory=SegmentFormatter)

    @property
    def max_message_bytes(self) -> int:
        """
        Segment's limit for one message: 32,768 bytes.
        """
        return MAX_MESSAGE_BYTES

    @property
    def max_batch_messages(self) -> int:
        """
        Segment's limit for one batch: 2,500 messages.
        """
        return MAX_BATCH_MESSAGES

    def format(self, event: Event) -> bytes:
        """
        Return *formatter*'s ``track`` message for *event*.

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

    def refuse(self, body: bytes) -> str | None:
        """
        Why a message is not sent: over Segment's 32 KB, or a ``messageId`` of 100
        characters or more (Segment takes fewer than 100). Asked at enqueue (the delivery
        is then stored ``failed`` with the reason) and again at send time, for messages
        stored by other means.

        >>> SegmentChannel().refuse(b"x" * 40_000)
        'payload too large: 40000 bytes > 32768'
        >>> SegmentChannel().refuse(b'{"messageId":"' + b"0" * 100 + b'"}')
        'messageId too long: 100 characters; Segment takes fewer than 100'
        """
        if len(body) > MAX_MESSAGE_BYTES:
            return too_large_reason(len(body), MAX_MESSAGE_BYTES)
        return message_id_reason(body)

    def plan(self, sizes: Sequence[int]) -> list[int]:
        """
        Consecutive batches of at most 2,500 messages and 475,000 bytes each.
        """
        return plan_batches(sizes)

    def request(
        self, webhook: Webhook, messages: Sequence[Message], *, now: datetime
    ) -> OutgoingRequest:
        """
        Build the batch request for *messages*, authenticated with *webhook*'s write key.

        Raises:
            ConfigurationError: If the webhook has no write key (the model requires one).
        """
        if webhook.write_key is None:  # pragma: no cover - the model requires one
            raise ConfigurationError("a Segment webhook needs a write key")
        return batch_request(
            endpoint=webhook.destination,
            write_key=webhook.write_key,
            messages=[m.body for m in messages],
            now=now,
            gzip_body=webhook.segment_gzip,
            headers=webhook.headers,
        )

    def scrub(self, webhook: Webhook, data: bytes) -> bytes:
        """
        *data* without the write key (as it is, or in its ``Authorization`` form).

        A receiver that echoes the request (a debugging proxy, say) must not get the write
        key into a stored response excerpt.
        """
        write_key = webhook.write_key
        if write_key is None:
            return data
        key = write_key.reveal().encode("utf-8")
        token = basic_auth(write_key).split(" ", 1)[1].encode("ascii")
        if key not in data and token not in data:
            return data
        return data.replace(key, _REDACTED).replace(token, _REDACTED)
