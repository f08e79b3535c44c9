"""
The logging hook: one stdlib log line per signal, for hosts that want events, not prose.

Strictly private; :class:`LoggingHook` is public from :mod:`pendo_webhooks.instrumentation`.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

import attrs


if TYPE_CHECKING:
    from . import Signal


__all__ = ["EVENTS_LOGGER", "LoggingHook", "signal_fields"]

#: The logger :class:`LoggingHook` writes to by default: a child of ``"pendo_webhooks"``,
#: so one handler on the library's logger sees both, and each has its own level.
EVENTS_LOGGER = "pendo_webhooks.events"

# States that call for a look: a warning; the rest is information.
_WARNING_STATES = frozenset({"dead", "failed", "lease_lost", "disabled", "failing"})


def signal_fields(signal: Signal) -> dict[str, str | int | float | None]:
    """
    Return *signal* as a flat dict of JSON values: ``event`` first, then its fields.

    Times are ISO 8601 strings; the host is the only part of a receiver's URL a signal
    holds (never its path or query, which may carry tokens), and no signal holds a secret.

    >>> from datetime import datetime, timezone
    >>> from pendo_webhooks.instrumentation import WebhookChanged, WebhookState
    >>> signal_fields(WebhookChanged(webhook_id="wh_1", state=WebhookState.ENABLED,
    ...                              by="alice", at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    {'event': 'webhook_changed', 'webhook_id': 'wh_1', 'state': 'enabled', 'by': 'alice', \
'reason': None, 'at': '2026-01-01T00:00:00+00:00'}
    """
    name = type(signal).__name__
    event = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    fields: dict[str, str | int | float | None] = {"event": event}
    for key, value in attrs.asdict(signal, recurse=False).items():
        if isinstance(value, datetime):
            fields[key] = value.isoformat()
        elif value is None or isinstance(value, (int, float)):
            fields[key] = value
        else:
            fields[key] = str(value)
    return fields


def _logfmt(fields: dict[str, str | int | float | None]) -> str:
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, float):
            text = f"{value:.3f}"
        else:
            text = str(value)
            if not text or any(c in text for c in ' "=\\') or not text.isprintable():
                text = json.dumps(text)
        parts.append(f"{key}={text}")
    return " ".join(parts)


class LoggingHook:
    """
    A hook that logs each signal as one ``key=value`` line, its fields also on the record.

    The line is in logfmt (``event=delivery_changed
    webhook_id=... state=dead ...``; fields that are ``None`` are left out). The same
    fields, as JSON values, are on the record as ``record.signal`` (a dict, see
    :func:`signal_fields`), for a JSON formatter or structlog's stdlib bridge.

    Levels: ``WARNING`` for a delivery ``dead``, ``failed`` or whose lease was lost, and
    for a webhook ``disabled`` or ``failing``; ``DEBUG`` for an exchange answered 2xx;
    ``INFO`` for the rest.

    This hook is *not* installed by default: the engine already logs each attempt to the
    ``"pendo_webhooks"`` logger (``INFO`` for those that did not deliver, ``DEBUG`` for
    every one), which is "logging as today". Add the hook for one line per signal with
    stable field names, and quiet the engine's prose if you like, since the two loggers'
    levels are set apart::

        logging.getLogger("pendo_webhooks").setLevel(logging.WARNING)
        logging.getLogger("pendo_webhooks.events").setLevel(logging.INFO)

    Args:
        logger: The logger, or its name (default ``"pendo_webhooks.events"``).

    >>> import logging, sys
    >>> from datetime import datetime, timezone
    >>> from pendo_webhooks.instrumentation import DeliveryChanged, DeliveryState
    >>> log = logging.getLogger("example.events")
    >>> handler = logging.StreamHandler(sys.stdout)
    >>> handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    >>> log.addHandler(handler)
    >>> hook = LoggingHook(log)
    >>> hook(DeliveryChanged(webhook_id="wh_1", delivery_id="dlv_1", state=DeliveryState.DEAD,
    ...                      attempt=6, reason="HTTP 503, gave up after 6 attempts",
    ...                      at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    WARNING event=delivery_changed webhook_id=wh_1 delivery_id=dlv_1 state=dead attempt=6 \
reason="HTTP 503, gave up after 6 attempts" at=2026-01-01T00:00:00+00:00
    >>> log.removeHandler(handler)
    """

    def __init__(self, logger: logging.Logger | str = EVENTS_LOGGER) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    def __repr__(self) -> str:
        return f"LoggingHook({self.logger.name!r})"

    def __call__(self, signal: Signal, /) -> None:
        """
        Log *signal* as one line, at the level its outcome calls for.
        """
        level = self.level_of(signal)
        if not self.logger.isEnabledFor(level):
            return
        fields = signal_fields(signal)
        self.logger.log(level, "%s", _logfmt(fields), extra={"signal": fields})

    @staticmethod
    def level_of(signal: Signal) -> int:
        """
        Return the level *signal* is logged at.

        >>> from datetime import datetime, timezone
        >>> from pendo_webhooks.instrumentation import AttemptFinished
        >>> logging.getLevelName(LoggingHook.level_of(AttemptFinished(
        ...     webhook_id="wh_1", kind="url", host="hooks.example.com", deliveries=1,
        ...     status=200, error_kind=None, duration=0.1,
        ...     at=datetime(2026, 1, 1, tzinfo=timezone.utc))))
        'DEBUG'
        """
        state = getattr(signal, "state", None)
        if state is None:  # an exchange
            return logging.DEBUG if getattr(signal, "succeeded", False) else logging.INFO
        return logging.WARNING if str(state) in _WARNING_STATES else logging.INFO
