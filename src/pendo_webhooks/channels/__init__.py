"""
Channels: one per kind of webhook, all that differs between kinds in the delivery engine.

A :class:`Channel` formats an event once at enqueue, says its limits, plans batches, builds
each attempt's request and scrubs credentials out of what is stored; the
:class:`~pendo_webhooks.dispatcher.Dispatcher` runs one delivery flow for every kind
(a URL delivery is a batch of one) and looks the kind up in one place, a
:class:`ChannelTable`. Built in:

* :class:`URLChannel` (``"url"``): Pendo's JSON, signed afresh per attempt, one per request;
* :class:`SegmentChannel` (``"segment"``): ``track`` messages, batched per webhook.

**Configure a built-in channel** by passing it to the dispatcher; kinds you do not pass
keep their default. For example, to name your product in every Segment message's
``context.library``::

    Dispatcher(registry, channels={"segment": SegmentChannel(
        formatter=SegmentFormatter(library_name="acme-sync"))})

**Register your own channel** the same way. A channel is keyed by a
:class:`~pendo_webhooks.registry.WebhookKind` (or its value) and handles *every* webhook of
that kind in that dispatcher. The kinds are fixed by what a store can hold (``"url"`` and
``"segment"``: the webhook model, its fields and the stores' schemas know only these), so
a host channel *replaces* the handling of an existing kind; a new kind string is refused
with a :class:`~pendo_webhooks.exceptions.ConfigurationError` rather than stored where
another process could not send it. Two rules keep a store consistent:

* give every dispatcher sharing a store (the host that enqueues, every worker) the same
  channels: the bytes are formatted at enqueue and the request is built at send time,
  perhaps by another process;
* a channel sees the webhook only at send time (:meth:`Channel.request`), not at enqueue
  (:meth:`Channel.format` gets the event alone), so a per-webhook format is not possible.
  The one per-webhook change at enqueue is the webhook's PII filters: the engine applies
  them to the event's Pendo JSON and asks the channel's ``format_filtered(event, wire)``
  for the message (see :func:`format_for`); a channel without one gets no filtered
  webhook's events (they are stored ``failed``, never sent unfiltered).

A Slack-style channel, replacing URL webhooks' handling in a dispatcher whose URL webhooks
are Slack incoming webhooks (compare ``examples/slack_bridge.py``, which instead receives
Pendo's signed webhooks and forwards them to Slack, keeping the URL channel as it is):

>>> import json
>>> from pendo_webhooks.dispatcher import Dispatcher
>>> from pendo_webhooks.registry import Actor, WebhookRegistry
>>> from pendo_webhooks.storage import InMemoryStorage
>>> from pendo_webhooks.testing import RecordingTransport, sample_event
>>> from pendo_webhooks.transports import OutgoingRequest
>>> class SlackChannel:
...     "Posts each event to a Slack incoming webhook (the webhook's URL) as one line."
...     max_message_bytes = 40_000  # Slack's limit on a message's text
...     max_batch_messages = 1      # one Slack message per event
...
...     def format(self, event):
...         text = f"{event.category}: visitor {event.visitor_id}"
...         return json.dumps({"text": text}).encode()
...
...     def refuse(self, body):
...         return None
...
...     def plan(self, sizes):
...         return [1] * len(sizes)
...
...     def request(self, webhook, messages, *, now):
...         (message,) = messages
...         headers = {"Content-Type": "application/json"}
...         return OutgoingRequest(url=webhook.destination, body=message.body, headers=headers)
...
...     def scrub(self, webhook, data):
...         # The URL's path is Slack's secret: keep it out of stored excerpts.
...         return data.replace(webhook.destination.encode(), b"<redacted>")
>>> registry = WebhookRegistry(InMemoryStorage())
>>> admin = Actor("u-1", is_admin=True)
>>> hook = registry.create(admin, name="#growth", url="https://hooks.slack.com/services/T/B/x",
...                        categories={"accountCreated"})
>>> _ = registry.enable(admin, hook.id)
>>> transport = RecordingTransport()
>>> with Dispatcher(registry, transport=transport, channels={"url": SlackChannel()}) as d:
...     str(d.dispatch(sample_event("accountCreated")).for_webhook(hook.id).outcome)
'delivered'
>>> transport.requests[0].body
b'{"text": "accountCreated: visitor Webhook Visitor"}'
>>> Dispatcher(registry, transport=transport, channels={"slack": SlackChannel()})
Traceback (most recent call last):
...
pendo_webhooks.exceptions.ConfigurationError: channels: no webhook kind 'slack'; ...
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ..exceptions import ConfigurationError
from ..model._webhook import Webhook, WebhookKind
from ._filtering import format_for
from .base import Channel, Message
from .segment import SegmentChannel
from .url import DEFAULT_MAX_BODY_BYTES, URLChannel


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Channel",
    "ChannelTable",
    "Message",
    "SegmentChannel",
    "URLChannel",
    "channel_table",
    "format_for",
]


@attrs.frozen
class ChannelTable:
    """
    The channel of every webhook kind: the one place the delivery engine looks a kind up.

    Made by :func:`channel_table`.

    >>> table = channel_table()
    >>> type(table.for_kind(WebhookKind.SEGMENT)).__name__
    'SegmentChannel'
    """

    _by_kind: Mapping[WebhookKind, Channel]

    def for_kind(self, kind: WebhookKind) -> Channel:
        """
        Return the channel of *kind*.
        """
        return self._by_kind[kind]

    def for_webhook(self, webhook: Webhook) -> Channel:
        """
        Return the channel of *webhook*'s kind.
        """
        return self._by_kind[webhook.kind]


def channel_table(
    channels: Mapping[WebhookKind | str, Channel] | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ChannelTable:
    """
    Return the table of the built-in channels, with *channels* in place of some of them.

    The default URL channel is ``URLChannel(max_body_bytes=max_body_bytes)``, the default
    Segment one ``SegmentChannel()``.

    Raises:
        ConfigurationError: If a key is not a webhook kind, or a value not a
            :class:`Channel`.

    >>> from pendo_webhooks.formatters import SegmentFormatter
    >>> custom = SegmentChannel(formatter=SegmentFormatter(library_name="acme"))
    >>> table = channel_table({"segment": custom}, max_body_bytes=1_000)
    >>> table.for_kind(WebhookKind.SEGMENT) is custom
    True
    >>> table.for_kind(WebhookKind.URL).max_message_bytes
    1000
    """
    by_kind: dict[WebhookKind, Channel] = {
        WebhookKind.URL: URLChannel(max_body_bytes=max_body_bytes),
        WebhookKind.SEGMENT: SegmentChannel(),
    }
    for key, channel in (channels or {}).items():
        try:
            kind = WebhookKind(key)
        except ValueError:
            known = ", ".join(repr(k.value) for k in WebhookKind)
            msg = (
                f"channels: no webhook kind {str(key)[:50]!r}; a store holds webhooks of "
                f"the kinds {known} only, so register the channel under one of them (it "
                "then handles every webhook of that kind)"
            )
            raise ConfigurationError(msg) from None
        if not isinstance(channel, Channel):
            msg = f"channels: the {kind} channel must be a Channel, not {type(channel).__name__}"
            raise ConfigurationError(msg)
        by_kind[kind] = channel
    return ChannelTable(by_kind)
