"""
Test helpers for hosts that send webhooks and teams that receive them.

* :func:`sample_event` / :func:`sample_events`: a realistic, deterministic event of each type
  (the admin's "Test" button sends these);
* :class:`LocalReceiver`: a real HTTP server on loopback that verifies signatures and answers
  from a script (``[503, 503, 200]`` rehearses retries); :func:`signed_request` signs a body the
  way the sender does, for a receiver's handler tests;
* :class:`FrozenClock` and :class:`RecordingTransport`: deterministic, offline fakes for the
  :class:`~pendo_webhooks.dispatcher.Dispatcher`.

The same helpers are pytest fixtures (``pendo_*``) through the plugin this package installs.
This module is not imported by :mod:`pendo_webhooks` itself.
"""

from __future__ import annotations

from ..events._samples import sample_event, sample_events
from ._fakes import FrozenClock, RecordingTransport
from ._receiver import LocalReceiver, ReceivedRequest, Reply, SignedRequest, signed_request


__all__ = [
    "FrozenClock",
    "LocalReceiver",
    "ReceivedRequest",
    "RecordingTransport",
    "Reply",
    "SignedRequest",
    "sample_event",
    "sample_events",
    "signed_request",
]
