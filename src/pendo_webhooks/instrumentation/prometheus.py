"""
Prometheus metrics: a hook that counts the engine's signals, and the outbox read at scrape time.

Needs the ``prometheus`` extra (``pip install 'pendo-webhooks[prometheus]'``, which
installs ``prometheus-client``); importing this module without it raises an
:class:`ImportError` that says so. ``import pendo_webhooks`` never imports it.

:class:`PrometheusHook` is both the hook and a Prometheus collector. Give it to the
registry (``hooks=[...]``) and, to get the outbox gauges, the store; it registers itself
on *registry*, by default ``prometheus_client.REGISTRY``, the one a host's existing
``/metrics`` endpoint (``start_http_server``, ``make_wsgi_app``) already serves. Pass a
``CollectorRegistry()`` of your own to keep them apart (tests, several dispatchers in
one process).

The metrics (``webhook`` is the webhook's id; ``kind`` is ``url`` or ``segment``):

| name | type | labels |
|---|---|---|
| ``pendo_webhooks_deliveries_total`` | counter | ``webhook``, ``outcome`` |
| ``pendo_webhooks_attempt_duration_seconds`` | histogram | ``kind``, ``status_class`` |
| ``pendo_webhooks_webhook_failure_streak`` | gauge | ``webhook`` |
| ``pendo_webhooks_webhook_changes_total`` | counter | ``webhook``, ``state`` |
| ``pendo_webhooks_outbox_pending`` | gauge | |
| ``pendo_webhooks_outbox_oldest_due_age_seconds`` | gauge | |

* ``outcome``: what a delivery became (``delivered``, ``retry_scheduled``, ``dead``,
  ``failed``, ``cancelled``, ``lease_lost``), one increment per change;
* ``status_class``: ``2xx`` to ``5xx`` (``1xx`` too), or ``error`` when no response came
  back; one observation per HTTP exchange (a Segment batch is one);
* the failure streak counts the webhook's consecutive failed exchanges, back to 0 on a
  2xx (as seen by this process);
* the two outbox gauges are read from the store's ``pending_summary()`` at each scrape,
  so they cover every worker's deliveries: how many are pending, and how long ago the
  earliest-due of them fell due (a new delivery falls due when it is enqueued, a retry
  when its wait ends; ``0`` while none is due). A store that fails at scrape time leaves
  them out of that scrape (logged, by exception type only).

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from pendo_webhooks.dispatcher import Dispatcher
>>> from pendo_webhooks.registry import Actor, WebhookRegistry
>>> from pendo_webhooks.storage import InMemoryStorage
>>> from pendo_webhooks.testing import RecordingTransport, sample_event
>>> storage = InMemoryStorage()
>>> metrics = PrometheusHook(registry=CollectorRegistry(), store=storage)
>>> registry = WebhookRegistry(storage, hooks=[metrics])
>>> admin = Actor("alice", is_admin=True)
>>> hook = registry.create(admin, name="NPS", url="https://hooks.example.com/in",
...                        categories=["npsSubmitted"], secret="s3cret")
>>> _ = registry.enable(admin, hook.id)
>>> with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
...     _ = dispatcher.dispatch(sample_event("npsSubmitted"))
>>> metrics.registry.get_sample_value(
...     "pendo_webhooks_deliveries_total", {"webhook": hook.id, "outcome": "delivered"})
1.0
>>> metrics.registry.get_sample_value("pendo_webhooks_outbox_pending")
0.0
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from .._clock import Clock, utcnow
from ..exceptions import ConfigurationError
from . import AttemptFinished, DeliveryChanged, Signal, WebhookChanged


try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.registry import REGISTRY, Collector
except ImportError as exc:  # the extra is not installed (a test hides it)
    _MISSING = (
        "pendo_webhooks.instrumentation.prometheus needs prometheus-client: "
        "pip install 'pendo-webhooks[prometheus]'"
    )
    raise ImportError(_MISSING, name=exc.name) from exc


__all__ = ["DEFAULT_BUCKETS", "PendingSummary", "PrometheusHook"]

logger = logging.getLogger("pendo_webhooks")

#: The latency buckets, in seconds: from a fast local receiver to the 30 s deadline cap.
DEFAULT_BUCKETS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)

_PREFIX = "pendo_webhooks"


class PendingSummary(Protocol):
    """
    What the outbox gauges read: any store of :mod:`pendo_webhooks.storage` has it.

    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> store: PendingSummary = InMemoryStorage()
    >>> store.pending_summary()
    (0, None)
    """

    def pending_summary(self) -> tuple[int, datetime | None]:
        """
        How many deliveries are pending, and the earliest ``next_attempt_at`` among them.
        """


class PrometheusHook(Collector):
    """
    A hook that counts signals into Prometheus metrics, and the collector that exposes them.

    Args:
        registry: Where to register (default: ``prometheus_client.REGISTRY``).
        store: Read at each scrape for the outbox gauges; without it they are left out.
        clock: The current aware UTC time, for the age of the oldest due delivery.
        buckets: The latency histogram's upper bounds, in seconds.

    Raises:
        ConfigurationError: If *registry* already holds these metrics (one hook per
            registry), or *buckets* is empty or out of order.

    >>> from prometheus_client import CollectorRegistry
    >>> registry = CollectorRegistry()
    >>> metrics = PrometheusHook(registry=registry)
    >>> PrometheusHook(registry=registry)
    Traceback (most recent call last):
    ...
    pendo_webhooks.exceptions.ConfigurationError: registry: already holds pendo_webhooks metrics; \
give each PrometheusHook its own CollectorRegistry, or share one hook
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        store: PendingSummary | None = None,
        clock: Clock = utcnow,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        if not buckets or list(buckets) != sorted(buckets):
            msg = "buckets: must hold at least one upper bound, in increasing order"
            raise ConfigurationError(msg)
        self.registry = REGISTRY if registry is None else registry
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._streaks: dict[str, int] = {}
        self.deliveries = Counter(
            f"{_PREFIX}_deliveries",
            "Deliveries that changed state, by webhook and what they became.",
            ["webhook", "outcome"],
            registry=None,
        )
        self.attempt_duration = Histogram(
            f"{_PREFIX}_attempt_duration_seconds",
            "Seconds from sending a request to a receiver to its response (or error).",
            ["kind", "status_class"],
            buckets=tuple(buckets),
            registry=None,
        )
        self.failure_streak = Gauge(
            f"{_PREFIX}_webhook_failure_streak",
            "Consecutive failed exchanges with each webhook's receiver (0 after a 2xx).",
            ["webhook"],
            registry=None,
        )
        self.webhook_changes = Counter(
            f"{_PREFIX}_webhook_changes",
            "Webhooks disabled, enabled, failing or recovered, by webhook and new state.",
            ["webhook", "state"],
            registry=None,
        )
        self._own: tuple[MetricWrapperBase, ...] = (
            self.deliveries,
            self.attempt_duration,
            self.failure_streak,
            self.webhook_changes,
        )
        try:
            self.registry.register(self)
        except ValueError:
            msg = (
                "registry: already holds pendo_webhooks metrics; give each PrometheusHook "
                "its own CollectorRegistry, or share one hook"
            )
            raise ConfigurationError(msg) from None

    def __repr__(self) -> str:
        return f"PrometheusHook(store={type(self._store).__name__ if self._store else None})"

    # -- the hook ------------------------------------------------------------------------------

    def __call__(self, signal: Signal, /) -> None:
        """
        Count *signal*.
        """
        if isinstance(signal, AttemptFinished):
            self.attempt_duration.labels(signal.kind, signal.status_class).observe(signal.duration)
            with self._lock:
                streak = 0 if signal.succeeded else self._streaks.get(signal.webhook_id, 0) + 1
                self._streaks[signal.webhook_id] = streak
                self.failure_streak.labels(signal.webhook_id).set(streak)
        elif isinstance(signal, DeliveryChanged):
            self.deliveries.labels(signal.webhook_id, str(signal.state)).inc()
        elif isinstance(signal, WebhookChanged):
            self.webhook_changes.labels(signal.webhook_id, str(signal.state)).inc()

    # -- the collector -------------------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        """
        The metrics' names, without reading the store (used when registering).
        """
        for own in self._own:
            yield from own.describe()
        if self._store is not None:
            yield from self._outbox_families()

    def collect(self) -> Iterable[Metric]:
        """
        The metrics now: the counted ones, and the outbox gauges read from the store.
        """
        for own in self._own:
            yield from own.collect()
        if self._store is None:
            return
        try:
            pending, earliest = self._store.pending_summary()
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail with the store
            logger.warning(
                "metrics: the store's pending summary failed (%s); outbox gauges skipped",
                type(exc).__name__,
            )
            return
        age = 0.0 if earliest is None else max(0.0, (self._clock() - earliest).total_seconds())
        yield from self._outbox_families(pending, age)

    @staticmethod
    def _outbox_families(pending: int | None = None, age: float = 0.0) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            f"{_PREFIX}_outbox_pending", "Deliveries pending in the outbox (all workers)."
        )
        oldest = GaugeMetricFamily(
            f"{_PREFIX}_outbox_oldest_due_age_seconds",
            "Seconds since the earliest-due pending delivery fell due (0 if none is due).",
        )
        if pending is not None:
            depth.add_metric([], float(pending))
            oldest.add_metric([], age)
        yield depth
        yield oldest
