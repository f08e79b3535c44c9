"""
OpenTelemetry: a span per exchange with a receiver, and optionally metrics, via the API only.

Needs the ``otel`` extra (``pip install 'pendo-webhooks[otel]'``, which installs
``opentelemetry-api``); importing this module without it raises an :class:`ImportError`
that says so. ``import pendo_webhooks`` never imports it. The host brings the SDK and
its exporters; without them the API's no-op providers make the hook cost next to nothing.

Each :class:`~pendo_webhooks.instrumentation.AttemptFinished` becomes one finished
``CLIENT`` span named ``pendo_webhooks.exchange``, from ``at - duration`` to ``at``
(it is recorded once the exchange is over, under whatever span is current in the
delivering thread), with these attributes:

| attribute | value |
|---|---|
| ``pendo_webhooks.webhook.id`` | the webhook's id |
| ``pendo_webhooks.webhook.kind`` | ``url`` or ``segment`` |
| ``pendo_webhooks.deliveries`` | how many deliveries the request carried |
| ``http.request.method`` | ``POST`` |
| ``server.address`` | the receiver's host (never its path or query) |
| ``server.port`` | its port, when the URL names one |
| ``http.response.status_code`` | the status, when a response came back |
| ``error.type`` | the error kind (``timeout``, ...), or the status of a non-2xx response |

and status ``ERROR`` unless the receiver answered 2xx.

With ``metrics=True`` (the default) it also records, through the meter API:
``pendo_webhooks.exchange.duration`` (histogram, seconds; attributes
``pendo_webhooks.webhook.kind`` and ``pendo_webhooks.status_class``),
``pendo_webhooks.deliveries`` (counter; ``pendo_webhooks.webhook.id`` and
``pendo_webhooks.outcome``) and ``pendo_webhooks.webhook.changes`` (counter;
``pendo_webhooks.webhook.id`` and ``pendo_webhooks.webhook.state``).

>>> from opentelemetry.sdk.trace import TracerProvider
>>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
>>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
>>> from pendo_webhooks.dispatcher import Dispatcher
>>> from pendo_webhooks.registry import Actor, WebhookRegistry
>>> from pendo_webhooks.storage import InMemoryStorage
>>> from pendo_webhooks.testing import RecordingTransport, sample_event
>>> exporter = InMemorySpanExporter()
>>> provider = TracerProvider()
>>> provider.add_span_processor(SimpleSpanProcessor(exporter))
>>> registry = WebhookRegistry(InMemoryStorage(),
...                            hooks=[OpenTelemetryHook(tracer_provider=provider)])
>>> admin = Actor("alice", is_admin=True)
>>> hook = registry.create(admin, name="NPS", url="https://hooks.example.com/in",
...                        categories=["npsSubmitted"], secret="s3cret")
>>> _ = registry.enable(admin, hook.id)
>>> with Dispatcher(registry, transport=RecordingTransport([503])) as dispatcher:
...     _ = dispatcher.dispatch(sample_event("npsSubmitted"))
>>> (span,) = exporter.get_finished_spans()
>>> span.name, span.status.status_code.name, span.attributes["error.type"]
('pendo_webhooks.exchange', 'ERROR', '503')
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .._version import __version__
from . import AttemptFinished, DeliveryChanged, Signal, WebhookChanged


try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace
    from opentelemetry.util.types import AttributeValue
except ImportError as exc:  # the extra is not installed (a test hides it)
    _MISSING = (
        "pendo_webhooks.instrumentation.otel needs opentelemetry-api: "
        "pip install 'pendo-webhooks[otel]'"
    )
    raise ImportError(_MISSING, name=exc.name) from exc


__all__ = ["SPAN_NAME", "OpenTelemetryHook", "nanoseconds"]

#: The name of each exchange's span.
SPAN_NAME = "pendo_webhooks.exchange"

_SCOPE = "pendo_webhooks"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def nanoseconds(at: datetime) -> int:
    """
    Return an aware datetime as integer nanoseconds since the epoch (exact to the microsecond).

    >>> nanoseconds(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=timezone.utc))
    1000005000
    """
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


def _server(host: str) -> dict[str, AttributeValue]:
    name, _, port = host.rpartition(":")
    if name and ":" not in name and port.isdigit():  # "host:port" (an IPv6 host stays whole)
        return {"server.address": name, "server.port": int(port)}
    return {"server.address": host}


class OpenTelemetryHook:
    """
    A hook that records a span per exchange and, optionally, metrics, with the OpenTelemetry API.

    Args:
        tracer_provider: Where spans go (default: the global one, set by the host's SDK).
        meter_provider: Where metrics go (default: the global one).
        metrics: Whether to record metrics as well as spans.

    >>> OpenTelemetryHook(metrics=False)
    OpenTelemetryHook(metrics=False)
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: otel_metrics.MeterProvider | None = None,
        metrics: bool = True,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        self._metrics = metrics
        meter = otel_metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "pendo_webhooks.exchange.duration",
            unit="s",
            description="Seconds from sending a request to a receiver to its response (or error).",
        )
        self._deliveries = meter.create_counter(
            "pendo_webhooks.deliveries",
            unit="{delivery}",
            description="Deliveries that changed state, by webhook and what they became.",
        )
        self._changes = meter.create_counter(
            "pendo_webhooks.webhook.changes",
            unit="{change}",
            description="Webhooks disabled, enabled, failing or recovered.",
        )

    def __repr__(self) -> str:
        return f"OpenTelemetryHook(metrics={self._metrics})"

    def __call__(self, signal: Signal, /) -> None:
        """
        Record *signal*: a span for an exchange; counts, with ``metrics=True``.
        """
        if isinstance(signal, AttemptFinished):
            self._span(signal)
            if self._metrics:
                self._duration.record(
                    signal.duration,
                    {
                        "pendo_webhooks.webhook.kind": signal.kind,
                        "pendo_webhooks.status_class": signal.status_class,
                    },
                )
        elif not self._metrics:
            return
        elif isinstance(signal, DeliveryChanged):
            self._deliveries.add(
                1,
                {
                    "pendo_webhooks.webhook.id": signal.webhook_id,
                    "pendo_webhooks.outcome": str(signal.state),
                },
            )
        elif isinstance(signal, WebhookChanged):
            self._changes.add(
                1,
                {
                    "pendo_webhooks.webhook.id": signal.webhook_id,
                    "pendo_webhooks.webhook.state": str(signal.state),
                },
            )

    def _span(self, signal: AttemptFinished) -> None:
        attributes: dict[str, AttributeValue] = {
            "pendo_webhooks.webhook.id": signal.webhook_id,
            "pendo_webhooks.webhook.kind": signal.kind,
            "pendo_webhooks.deliveries": signal.deliveries,
            "http.request.method": "POST",
            **_server(signal.host),
        }
        if signal.status is not None:
            attributes["http.response.status_code"] = signal.status
        error = signal.error_kind
        if error is None and not signal.succeeded:
            error = str(signal.status)
        if error is not None:
            attributes["error.type"] = error
        end = nanoseconds(signal.at)
        start = end - round(max(0.0, signal.duration) * 1e9)
        span = self._tracer.start_span(
            SPAN_NAME, kind=trace.SpanKind.CLIENT, attributes=attributes, start_time=start
        )
        if error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, error))
        span.end(end_time=end)
