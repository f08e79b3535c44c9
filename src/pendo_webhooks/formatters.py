"""
Formatters: the exact bytes a webhook stores for an event, serialized once at enqueue.

* :class:`URLFormatter`: Pendo's own body (:func:`~pendo_webhooks.events.to_wire`),
  signed and POSTed to a URL webhook as it is.
* :class:`SegmentFormatter`: one Segment ``track`` message (see
  [Receive events in Segment](../howto/segment.md#what-segment-receives)); the
  dispatcher joins the stored messages of a Segment webhook into
  ``POST <endpoint>/v1/batch`` requests without re-serializing them.

The dispatcher uses them through :mod:`pendo_webhooks.channels` (a channel's
``formatter``): pass ``SegmentChannel(formatter=SegmentFormatter(library_name=...))`` to
``Dispatcher(channels=...)`` to change a message's ``context.library``.

Both implement the :class:`Formatter` Protocol. The bytes they return are what is stored,
sent on every attempt and replayed on a manual redelivery. Segment's limits are checked
before anything is stored or sent: a message over :data:`MAX_MESSAGE_BYTES`, or with a
``messageId`` over :data:`MAX_MESSAGE_ID_LENGTH` characters, is refused (stored ``failed``
with the reason);
a batch holds at most :data:`MAX_BATCH_MESSAGES` messages and :data:`MAX_BATCH_BYTES` bytes.

>>> from pendo_webhooks.testing import sample_event
>>> event = sample_event("accountCreated")
>>> URLFormatter().format(event)[:9]
b'{"app":{"'
>>> SegmentFormatter().format(event)[:87]
b'{"type":"track","event":"accountCreated","userId":"Webhook Visitor","properties":{},"co'
"""

from __future__ import annotations

from .channels._formatters import (
    ANONYMOUS_VISITOR_PREFIX,
    BATCH_PATH,
    LIBRARY_NAME,
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_ID_LENGTH,
    Formatter,
    SegmentFormatter,
    URLFormatter,
)


__all__ = [
    "ANONYMOUS_VISITOR_PREFIX",
    "BATCH_PATH",
    "LIBRARY_NAME",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "MAX_MESSAGE_ID_LENGTH",
    "Formatter",
    "SegmentFormatter",
    "URLFormatter",
]
