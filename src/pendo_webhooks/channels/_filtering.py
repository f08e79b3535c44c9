"""
PII filters at enqueue: a webhook's filters applied to the Pendo event, then its channel's
message made from what is left.

Strictly private; :func:`format_for` is public in :mod:`pendo_webhooks.channels`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..events._models import Event
from ..events._serialize import to_wire_dict
from ..model._filters import FieldFilter, apply_filters
from ..model._webhook import Webhook
from .base import Channel


__all__ = ["filtered_by", "format_for", "unsupported_reason"]


def filtered_by(formatter: object, event: Event, wire: Mapping[str, Any]) -> bytes:
    """
    *formatter*'s ``format_filtered(event, wire)``; NotImplementedError if it has none.
    """
    method = getattr(formatter, "format_filtered", None)
    if not callable(method):
        msg = f"{type(formatter).__name__} has no format_filtered(event, wire)"
        raise NotImplementedError(msg)
    body = method(event, wire)
    if not isinstance(body, bytes):
        msg = f"{type(formatter).__name__}.format_filtered() must return bytes"
        raise NotImplementedError(msg)
    return body


def format_for(
    channel: Channel, event: Event, webhook: Webhook
) -> tuple[bytes | None, tuple[FieldFilter, ...]]:
    """
    The message *channel* stores for *event* to *webhook*, and the filters that changed it.

    Without filters, ``channel.format(event)``. With them, the filters are applied to the
    event's Pendo JSON (:func:`~pendo_webhooks.events.to_wire_dict`) first, and the
    channel makes its message from what is left, with its ``format_filtered(event, wire)``
    (both built-in channels have one; a host's channel that wants filtered webhooks needs
    one too). The message is ``None`` when the channel has none: such a webhook's events
    are refused (stored ``failed`` with :func:`unsupported_reason`), never sent unfiltered.

    Raises:
        PayloadError: If the message cannot be serialized.

    >>> from datetime import datetime, timezone
    >>> from pendo_webhooks.channels import URLChannel
    >>> from pendo_webhooks.registry import Webhook
    >>> from pendo_webhooks.testing import sample_event
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> hook = Webhook(id="wh_1", name="n", url="https://hooks.example.com/in",
    ...                categories=["visitorCreated"], filters=["drop:userAgent"],
    ...                created_at=t, created_by="u", updated_at=t, updated_by="u")
    >>> body, applied = format_for(URLChannel(), sample_event("visitorCreated"), hook)
    >>> b"userAgent" in body, [str(f) for f in applied]
    (False, ['drop:userAgent'])
    """
    if not webhook.filters:
        return channel.format(event), ()
    wire, applied = apply_filters(to_wire_dict(event), webhook.filters, webhook.hash_key)
    method = getattr(channel, "format_filtered", None)
    if not callable(method):
        return None, applied
    try:
        body = method(event, wire)
    except NotImplementedError:
        return None, applied
    return body, applied


def unsupported_reason(channel: Channel, webhook: Webhook) -> str:
    """
    Why *webhook*'s events are refused when *channel* cannot apply PII filters.
    """
    return (
        f"PII filters: the {webhook.kind.value} channel ({type(channel).__name__}) cannot "
        "apply them (it needs format_filtered(event, wire)); nothing is sent unfiltered"
    )
