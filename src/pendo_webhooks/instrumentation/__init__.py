"""
Instrumentation: one-method hooks the engine calls for each attempt and each state change.

A *hook* is any callable that takes a :data:`Signal`. Give hooks to the
:class:`~pendo_webhooks.registry.WebhookRegistry` (``hooks=[...]``): it calls them when a
webhook is enabled or disabled, and the :class:`~pendo_webhooks.dispatcher.Dispatcher`
built on it calls them for every exchange with a receiver and every change of a
delivery's state. The signals:

* :class:`AttemptFinished`: one HTTP exchange ended (a response, or an error), with
  its latency and how many deliveries it carried (a Segment batch carries many);
* :class:`DeliveryChanged`: a delivery was delivered, scheduled for a retry, went
  ``dead`` or ``failed``, was cancelled, or its lease was lost before its outcome
  could be recorded;
* :class:`WebhookChanged`: a webhook was disabled (by an admin or by the library,
  e.g. on a ``410 Gone``) or enabled again.

Ready-made hooks: :class:`LoggingHook` (one stdlib log line per signal; the engine's
own log lines stay as they are without it), :mod:`pendo_webhooks.instrumentation.prometheus`
(the ``prometheus`` extra) and :mod:`pendo_webhooks.instrumentation.otel` (the ``otel``
extra); neither extra is imported by ``import pendo_webhooks``.

Hooks run in the thread that made the change, after the change is stored, so a signal
never announces something that was not recorded. They must be quick (a counter, a log
line, a queue put); a hook that raises is logged (its exception type only) and the
others still run: a broken hook never stops a delivery.

>>> from pendo_webhooks.dispatcher import Dispatcher
>>> from pendo_webhooks.registry import Actor, WebhookRegistry
>>> from pendo_webhooks.storage import InMemoryStorage
>>> from pendo_webhooks.testing import RecordingTransport, sample_event
>>> seen = []
>>> registry = WebhookRegistry(InMemoryStorage(), hooks=[seen.append])
>>> admin = Actor("alice", is_admin=True)
>>> hook = registry.create(admin, name="NPS", url="https://hooks.example.com/in",
...                        categories=["npsSubmitted"], secret="s3cret")
>>> _ = registry.enable(admin, hook.id)
>>> with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
...     _ = dispatcher.dispatch(sample_event("npsSubmitted"))
>>> [type(s).__name__ for s in seen]
['WebhookChanged', 'AttemptFinished', 'DeliveryChanged']
>>> seen[0].state, seen[1].status, seen[2].state
(<WebhookState.ENABLED: 'enabled'>, 200, <DeliveryState.DELIVERED: 'delivered'>)
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeAlias

import attrs

from ..exceptions import ConfigurationError
from ._logging import LoggingHook, signal_fields


__all__ = [
    "AttemptFinished",
    "DeliveryChanged",
    "DeliveryState",
    "Hook",
    "Hooks",
    "LoggingHook",
    "Signal",
    "WebhookChanged",
    "WebhookState",
    "signal_fields",
    "to_hooks",
]

logger = logging.getLogger("pendo_webhooks")


class DeliveryState(str, enum.Enum):
    """
    The state a delivery moved to, as told by :class:`DeliveryChanged`.

    >>> str(DeliveryState.RETRY_SCHEDULED)
    'retry_scheduled'
    """

    #: The receiver answered 2xx.
    DELIVERED = "delivered"
    #: A transient failure; tried again at ``next_attempt_at``.
    RETRY_SCHEDULED = "retry_scheduled"
    #: A transient failure with the retry budget spent (or claimed too often).
    DEAD = "dead"
    #: A final failure: another attempt cannot fix it (a 4xx, a blocked address, too large).
    FAILED = "failed"
    #: Not sent: its webhook was disabled, deleted or unsubscribed.
    CANCELLED = "cancelled"
    #: Its lease lapsed before the outcome was recorded; what the store holds stands.
    LEASE_LOST = "lease_lost"

    def __str__(self) -> str:
        return self.value


class WebhookState(str, enum.Enum):
    """
    The state a webhook moved to, as told by :class:`WebhookChanged`.

    >>> WebhookState("disabled") is WebhookState.DISABLED
    True
    """

    #: Sending stopped: by an admin, or by the library (``by == "system"``).
    DISABLED = "disabled"
    #: Sending (re)started by an admin.
    ENABLED = "enabled"
    #: The destination started failing hard: the library holds its deliveries back.
    FAILING = "failing"
    #: The destination answers again after failing.
    RECOVERED = "recovered"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class AttemptFinished:
    """
    One HTTP exchange with a webhook's receiver ended: a response came back, or an error.

    Attributes:
        webhook_id: The webhook.
        kind: The webhook's kind (``"url"``, ``"segment"``).
        host: The receiver's host name (never the path or query, which may hold tokens).
        deliveries: How many deliveries the request carried (1 for a URL webhook).
        status: The HTTP status, or ``None`` if no response came back.
        error_kind: Why no response came back (``"timeout"``, ``"connect"``, ...), else ``None``.
        duration: Seconds from sending to the end of the response (or the error).
        at: When it ended (aware UTC).

    >>> from datetime import datetime, timezone
    >>> AttemptFinished(webhook_id="wh_1", kind="url", host="hooks.example.com",
    ...                 deliveries=1, status=503, error_kind=None, duration=0.12,
    ...                 at=datetime(2026, 1, 1, tzinfo=timezone.utc)).succeeded
    False
    """

    webhook_id: str
    kind: str
    host: str
    deliveries: int
    status: int | None
    error_kind: str | None
    duration: float
    at: datetime

    @property
    def succeeded(self) -> bool:
        """
        Whether the receiver answered 2xx.
        """
        return self.status is not None and 200 <= self.status < 300

    @property
    def status_class(self) -> str:
        """
        The status's class (``"2xx"`` ... ``"5xx"``), or ``"error"`` if no valid response came.

        >>> from datetime import datetime, timezone
        >>> AttemptFinished(webhook_id="wh_1", kind="url", host="hooks.example.com",
        ...                 deliveries=1, status=None, error_kind="timeout", duration=15.0,
        ...                 at=datetime(2026, 1, 1, tzinfo=timezone.utc)).status_class
        'error'
        """
        if self.status is None or not 100 <= self.status <= 599:
            return "error"
        return f"{self.status // 100}xx"


@attrs.frozen(kw_only=True)
class DeliveryChanged:
    """
    A delivery's state changed, and the change is stored.

    Attributes:
        webhook_id: The webhook.
        delivery_id: The delivery.
        state: What it became.
        attempt: The number of the attempt that led here, if one was made.
        reason: A short explanation (``"HTTP 503, retry 1 of 5 in 31s"``), if any.
        next_attempt_at: When it is tried again, for :attr:`DeliveryState.RETRY_SCHEDULED`.
        at: When it changed (aware UTC).

    >>> from datetime import datetime, timezone
    >>> DeliveryChanged(webhook_id="wh_1", delivery_id="dlv_1", state=DeliveryState.DEAD,
    ...                 at=datetime(2026, 1, 1, tzinfo=timezone.utc)).state
    <DeliveryState.DEAD: 'dead'>
    """

    webhook_id: str
    delivery_id: str
    state: DeliveryState
    attempt: int | None = None
    reason: str | None = None
    next_attempt_at: datetime | None = None
    at: datetime


@attrs.frozen(kw_only=True)
class WebhookChanged:
    """
    A webhook's state changed, and the change is stored.

    Attributes:
        webhook_id: The webhook.
        state: What it became.
        by: Who changed it: an admin's id, or ``"system"`` for the library itself.
        reason: Why, if known (``"HTTP 410 Gone from hooks.example.com"``).
        at: When it changed (aware UTC).

    >>> from datetime import datetime, timezone
    >>> WebhookChanged(webhook_id="wh_1", state=WebhookState.DISABLED, by="system",
    ...                reason="HTTP 410 Gone from hooks.example.com",
    ...                at=datetime(2026, 1, 1, tzinfo=timezone.utc)).by
    'system'
    """

    webhook_id: str
    state: WebhookState
    by: str
    reason: str | None = None
    at: datetime


#: What a hook receives.
Signal: TypeAlias = AttemptFinished | DeliveryChanged | WebhookChanged


class Hook(Protocol):
    """
    Anything called with each :data:`Signal`: a function, a bound method, an object.

    >>> def count_dead(signal: Signal) -> None:
    ...     if isinstance(signal, DeliveryChanged) and signal.state is DeliveryState.DEAD:
    ...         print("dead:", signal.delivery_id)
    >>> hook: Hook = count_dead
    """

    def __call__(self, signal: Signal, /) -> None:
        """
        Take note of *signal*; be quick, and never block on the network.
        """


@attrs.frozen
class Hooks:
    """
    The hooks of a registry or a dispatcher, called in order; a raising hook is logged.

    >>> got = []
    >>> def broken(signal: Signal) -> None:
    ...     raise RuntimeError("oops")
    >>> hooks = Hooks.of([broken, got.append])
    >>> bool(hooks), len(hooks.hooks)
    (True, 2)

    Raises:
        ConfigurationError: If a hook is not callable (from :meth:`of`).
    """

    hooks: tuple[Hook, ...] = ()

    @classmethod
    def of(cls, hooks: Iterable[Hook] | Hooks | None) -> Hooks:
        """
        Hooks from a sequence of callables (or ``None``, or :class:`Hooks` as they are).
        """
        if hooks is None:
            return cls()
        if isinstance(hooks, Hooks):
            return hooks
        if isinstance(hooks, (str, bytes)) or not isinstance(hooks, Iterable):
            msg = f"hooks: must be a sequence of callables, not {type(hooks).__name__}"
            raise ConfigurationError(msg)
        found = tuple(hooks)
        for number, hook in enumerate(found):
            if not callable(hook):
                msg = f"hooks[{number}]: must be callable, not {type(hook).__name__}"
                raise ConfigurationError(msg)
        return cls(found)

    def __bool__(self) -> bool:
        return bool(self.hooks)

    def emit(self, signal: Signal) -> None:
        """
        Call every hook with *signal*; a hook that raises is logged, and the next one runs.
        """
        for hook in self.hooks:
            try:
                hook(signal)
            except Exception as exc:  # noqa: BLE001 - a broken hook never stops a delivery
                # The type only: the text might quote what the hook was handling.
                logger.warning(
                    "instrumentation hook %s raised %s on %s; ignored",
                    getattr(hook, "__qualname__", type(hook).__qualname__),
                    type(exc).__name__,
                    type(signal).__name__,
                )

    def emit_all(self, signals: Sequence[Signal]) -> None:
        """
        :meth:`emit` each of *signals*, in order.
        """
        for signal in signals:
            self.emit(signal)


def to_hooks(hooks: Iterable[Hook] | Hooks | None) -> Hooks:
    """
    :meth:`Hooks.of` as a plain function (the registry's ``hooks`` converter).

    >>> to_hooks(None)
    Hooks(hooks=())

    Raises:
        ConfigurationError: If *hooks* is not a sequence of callables.
    """
    return Hooks.of(hooks)
