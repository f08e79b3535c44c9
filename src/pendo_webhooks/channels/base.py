"""
The :class:`Channel` Protocol: everything the delivery engine knows about one kind of webhook.

The engine has one delivery flow for every kind (unwanted → exchange → decide → settle →
record); a channel supplies what differs between kinds, and nothing else:

* **format at enqueue**: :meth:`Channel.format` turns an event into the bytes stored
  for each delivery, once (never again on retries or redeliveries);
* **limits**: :attr:`Channel.max_message_bytes` (a larger message is stored ``failed``
  with the reason, never sent) and :attr:`Channel.max_batch_messages` (how many
  deliveries one request may carry; 1: each goes alone, "a batch of one");
* **batch planning**: :meth:`Channel.plan` cuts the due messages of one webhook into
  consecutive requests;
* **request building**: :meth:`Channel.request` builds one attempt's request, at send
  time (signatures, credentials and timestamps are never stored);
* **scrubbing**: :meth:`Channel.scrub` takes the webhook's credentials out of anything
  stored from a response (excerpts, errors).

A :class:`Message` is what a request is built from: a stored delivery (its ``body`` and
``event_id``) satisfies it as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..events._models import Event
from ..model._webhook import Webhook
from ..transports import OutgoingRequest


__all__ = ["Channel", "Message"]


class Message(Protocol):
    """
    **Protocol**: One stored message on its way out: its bytes and the event it carries.

    Every :class:`~pendo_webhooks.dispatcher.Delivery` is one.
    """

    @property
    def body(self) -> bytes:
        """
        The bytes :meth:`Channel.format` stored.
        """
        ...

    @property
    def event_id(self) -> str:
        """
        The event's ``uniqueId`` (a URL webhook's ``webhook-id``).
        """
        ...


@runtime_checkable
class Channel(Protocol):
    """
    **Protocol**: How one kind of webhook formats, limits, batches, sends and scrubs.

    Implementations must be thread-safe (the dispatcher calls them from several threads)
    and must never put a secret in what they return from :meth:`format` or :meth:`scrub`.
    See :mod:`pendo_webhooks.channels` for the built-in ones and how to register your own.
    """

    @property
    def max_message_bytes(self) -> int:
        """
        The largest message stored to be sent; a larger one is stored ``failed``.
        """
        ...

    @property
    def max_batch_messages(self) -> int:
        """
        The most messages one request carries (1: every delivery goes alone).
        """
        ...

    def format(self, event: Event) -> bytes:
        """
        Return the bytes to store (and send on every attempt) for *event*.

        Raises:
            PayloadError: If *event* cannot be serialized (nothing is stored).
        """
        ...

    def refuse(self, body: bytes) -> str | None:
        """
        Say why a stored *body* must not be sent (it is then ``failed``), or ``None``.

        Asked at send time, for messages stored by other means than this channel's
        :meth:`format` (an older version, another process's settings).
        """
        ...

    def plan(self, sizes: Sequence[int]) -> list[int]:
        """
        Cut messages of these *sizes*, in order, into consecutive requests: their lengths.

        Each length is at least 1 and at most :attr:`max_batch_messages`; they add up to
        ``len(sizes)``.
        """
        ...

    def request(
        self, webhook: Webhook, messages: Sequence[Message], *, now: datetime
    ) -> OutgoingRequest:
        """
        Build the request sending *messages* (one planned batch) to *webhook* at *now*.

        Called at send time, once per attempt: sign and authenticate here. Exceptions are
        caught by the engine and recorded as an ``"error"`` (by their type only).
        """
        ...

    def scrub(self, webhook: Webhook, data: bytes) -> bytes:
        """
        Return *data* (a response body, an error) without *webhook*'s credentials.

        Return *data* itself (the same object) when there is nothing to take out.
        """
        ...
