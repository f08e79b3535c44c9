"""
The instrumentation defaults and exporters (issue 16): logging, Prometheus, OpenTelemetry.

The engine runs for real (Dispatcher, a scripted transport, a frozen clock) on every store
(``outbox``: memory, SQLite, PostgreSQL); what each exporter makes of it is read back the
way an operator's tools would read it: the Prometheus text exposition through
``prometheus_client``'s own parser, spans and metrics through the OpenTelemetry SDK's
in-memory exporters. The worker's ``--metrics-port`` is scraped in tests/test_cli.py.
"""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import prometheus_client
import prometheus_client.registry
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.exceptions import ConfigurationError, StorageError
from pendo_webhooks.instrumentation import (
    AttemptFinished,
    DeliveryChanged,
    DeliveryState,
    LoggingHook,
    Signal,
    WebhookChanged,
    WebhookState,
    signal_fields,
)
from pendo_webhooks.instrumentation import prometheus as prometheus_module
from pendo_webhooks.instrumentation.otel import SPAN_NAME, OpenTelemetryHook, nanoseconds
from pendo_webhooks.instrumentation.prometheus import PrometheusHook
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.retry import RetryPolicy
from pendo_webhooks.storage import InMemoryStorage, Storage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import OutgoingRequest, TransportResponse


ADMIN = Actor("u-1", is_admin=True)
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
# Two retries, 10 s then 20 s, no jitter: every due time below is exact.
POLICY = RetryPolicy(max_retries=2, schedule=[10, 20], jitter=0)


class ByHost:
    """
    A transport answering by the request's host: ``a`` 503 always, ``b`` 200, ``c`` 410.
    """

    def __init__(self) -> None:
        self.hosts = {
            "a.example.com": RecordingTransport(default=503),
            "b.example.com": RecordingTransport(),
            "c.example.com": RecordingTransport(default=410),
        }

    def send(self, request: OutgoingRequest) -> TransportResponse:
        host = urllib.parse.urlsplit(request.url).hostname
        assert host is not None
        return self.hosts[host].send(request)


class Seen(list[Signal]):
    def __call__(self, signal: Signal) -> None:
        self.append(signal)


def three_webhooks(registry: WebhookRegistry) -> dict[str, str]:
    ids = {}
    for name in ("a", "b", "c"):
        created = registry.create(
            ADMIN,
            name=name.upper(),
            url=f"https://{name}.example.com/in/token-{name}?key=k-{name}",
            categories={"npsSubmitted"},
            secret="s3cret-value",
        )
        registry.enable(ADMIN, created.id)
        ids[name] = created.id
    return ids


def run_outage(
    storage: Storage, clock: FrozenClock, hooks: list[object], between: object = None
) -> dict[str, str]:
    """
    The engine's story: ``a`` fails every time (both deliveries end dead after 3 tries
    each), ``b`` delivers both, ``c`` answers 410 (failed, disabled by the system, so the
    second event is not for it). *between* is called with 3 deliveries pending, 4 s after
    the second event was enqueued.
    """
    registry = WebhookRegistry(storage, clock=clock, hooks=hooks)  # type: ignore[arg-type]
    ids = three_webhooks(registry)
    with Dispatcher(
        registry, storage, transport=ByHost(), clock=clock, retry=POLICY, sleep=clock.sleep
    ) as dispatcher:
        dispatcher.dispatch(sample_event("npsSubmitted", unique_id="nps-1"))
        dispatcher.enqueue(sample_event("npsSubmitted", unique_id="nps-2"))
        clock.advance(timedelta(seconds=4))
        if callable(between):
            between()
        summary = dispatcher.drain(timeout=600)
    assert summary.pending == 0
    return ids


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """
    The registry's text exposition, parsed back by prometheus_client's parser.
    """
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")  # wall-clock creation times
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


class TestPrometheus:
    def test_the_exposition_after_real_engine_activity(self, outbox: Storage) -> None:
        clock = FrozenClock(START)
        metrics = PrometheusHook(registry=CollectorRegistry(), store=outbox, clock=clock)
        during: list[Samples] = []
        ids = run_outage(outbox, clock, [metrics], lambda: during.append(scrape(metrics.registry)))
        a, b, c = ids["a"], ids["b"], ids["c"]

        # Mid-way: a's first retry (due at +10 s) and the second event's two new
        # deliveries (due since +0 s, enqueued 4 s ago) are pending.
        (middle,) = during
        assert value(middle, "pendo_webhooks_outbox_pending") == 3.0
        assert value(middle, "pendo_webhooks_outbox_oldest_due_age_seconds") == 4.0

        samples = scrape(metrics.registry)
        total = "pendo_webhooks_deliveries_total"
        deliveries = {
            (dict(labels)["webhook"], dict(labels)["outcome"]): v
            for (name, labels), v in samples.items()
            if name == total
        }
        assert deliveries == {
            (a, "retry_scheduled"): 4.0,
            (a, "dead"): 2.0,
            (b, "delivered"): 2.0,
            (c, "failed"): 1.0,
        }
        streak = "pendo_webhooks_webhook_failure_streak"
        assert value(samples, streak, webhook=a) == 6.0
        assert value(samples, streak, webhook=b) == 0.0
        assert value(samples, streak, webhook=c) == 1.0
        count = "pendo_webhooks_attempt_duration_seconds_count"
        assert value(samples, count, kind="url", status_class="5xx") == 6.0
        assert value(samples, count, kind="url", status_class="2xx") == 2.0
        assert value(samples, count, kind="url", status_class="4xx") == 1.0
        bucket = "pendo_webhooks_attempt_duration_seconds_bucket"
        assert value(samples, bucket, kind="url", status_class="5xx", le="+Inf") == 6.0
        changes = "pendo_webhooks_webhook_changes_total"
        assert value(samples, changes, webhook=a, state="enabled") == 1.0
        assert value(samples, changes, webhook=c, state="disabled") == 1.0
        assert value(samples, "pendo_webhooks_outbox_pending") == 0.0
        assert value(samples, "pendo_webhooks_outbox_oldest_due_age_seconds") == 0.0

    def test_latency_buckets_and_sums_are_exact(self) -> None:
        metrics = PrometheusHook(registry=CollectorRegistry(), buckets=[0.1, 1.0])
        for duration, status, kind in [(0.05, 200, "url"), (0.5, 200, "url"), (3.0, None, "url")]:
            metrics(attempt(duration=duration, status=status, kind=kind))
        metrics(attempt(duration=0.25, status=200, kind="segment", deliveries=40))
        samples = scrape(metrics.registry)
        bucket = "pendo_webhooks_attempt_duration_seconds_bucket"
        ok = {"kind": "url", "status_class": "2xx"}
        assert [value(samples, bucket, **ok, le=le) for le in ("0.1", "1.0", "+Inf")] == [
            1.0,
            2.0,
            2.0,
        ]
        assert value(samples, "pendo_webhooks_attempt_duration_seconds_sum", **ok) == 0.55
        error = {"kind": "url", "status_class": "error"}
        assert value(samples, bucket, **error, le="1.0") == 0.0
        assert value(samples, bucket, **error, le="+Inf") == 1.0
        segment = {"kind": "segment", "status_class": "2xx"}
        assert value(samples, "pendo_webhooks_attempt_duration_seconds_count", **segment) == 1.0
        # Not told of outbox state without a store: those gauges are left out.
        assert value(samples, "pendo_webhooks_outbox_pending") is None

    def test_a_failing_store_skips_the_outbox_gauges_only(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Down:
            def pending_summary(self) -> tuple[int, datetime | None]:
                raise StorageError("database at postgres://u:pw@db/x is down")

        metrics = PrometheusHook(registry=CollectorRegistry(), store=Down())
        metrics(
            DeliveryChanged(webhook_id="wh_1", delivery_id="d", state=DeliveryState.DEAD, at=START)
        )
        with caplog.at_level(logging.WARNING, logger="pendo_webhooks"):
            samples = scrape(metrics.registry)
        assert value(samples, "pendo_webhooks_deliveries_total", webhook="wh_1", outcome="dead")
        assert value(samples, "pendo_webhooks_outbox_pending") is None
        assert "pending summary failed (StorageError)" in caplog.text
        assert "pw@" not in caplog.text

    def test_a_due_time_in_the_future_is_no_age(self) -> None:
        class Waiting:
            def pending_summary(self) -> tuple[int, datetime | None]:
                return 5, START + timedelta(minutes=3)

        metrics = PrometheusHook(
            registry=CollectorRegistry(), store=Waiting(), clock=lambda: START
        )
        samples = scrape(metrics.registry)
        assert value(samples, "pendo_webhooks_outbox_pending") == 5.0
        assert value(samples, "pendo_webhooks_outbox_oldest_due_age_seconds") == 0.0

    def test_the_default_registry_is_the_global_one(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fresh = CollectorRegistry()
        monkeypatch.setattr(prometheus_module, "REGISTRY", fresh)
        assert PrometheusHook().registry is fresh
        assert prometheus_client.REGISTRY is prometheus_client.registry.REGISTRY
        with pytest.raises(ConfigurationError, match="already holds pendo_webhooks metrics"):
            PrometheusHook()

    @pytest.mark.parametrize("buckets", [[], [1.0, 0.5]])
    def test_refuses_empty_or_unordered_buckets(self, buckets: list[float]) -> None:
        with pytest.raises(ConfigurationError) as caught:
            PrometheusHook(registry=CollectorRegistry(), buckets=buckets)
        assert str(caught.value) == (
            "buckets: must hold at least one upper bound, in increasing order"
        )

    def test_repr_names_no_secret(self) -> None:
        hook = PrometheusHook(registry=CollectorRegistry(), store=InMemoryStorage())
        assert repr(hook) == "PrometheusHook(store=InMemoryStorage)"
        assert repr(PrometheusHook(registry=CollectorRegistry())) == "PrometheusHook(store=None)"


def attempt(
    *,
    duration: float = 0.1,
    status: int | None = 200,
    kind: str = "url",
    deliveries: int = 1,
    host: str = "hooks.example.com",
    error_kind: str | None = None,
) -> AttemptFinished:
    if status is None and error_kind is None:
        error_kind = "timeout"
    return AttemptFinished(
        webhook_id="wh_1",
        kind=kind,
        host=host,
        deliveries=deliveries,
        status=status,
        error_kind=error_kind,
        duration=duration,
        at=START,
    )


class TestOpenTelemetry:
    @pytest.fixture(name="spans")
    def _spans(self) -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        yield exporter, provider
        provider.shutdown()

    def test_a_span_per_exchange_after_real_engine_activity(
        self, outbox: Storage, spans: tuple[InMemorySpanExporter, TracerProvider]
    ) -> None:
        exporter, provider = spans
        reader = InMemoryMetricReader()
        meters = MeterProvider(metric_readers=[reader])
        clock, seen = FrozenClock(START), Seen()
        hook = OpenTelemetryHook(tracer_provider=provider, meter_provider=meters)
        ids = run_outage(outbox, clock, [hook, seen])
        finished = list(exporter.get_finished_spans())
        exchanges = [s for s in seen if isinstance(s, AttemptFinished)]
        assert len(finished) == len(exchanges) == 9

        by_webhook: dict[str, list[ReadableSpan]] = {}
        for span, signal in zip(finished, exchanges, strict=True):
            assert span.name == SPAN_NAME
            assert span.kind is SpanKind.CLIENT
            assert span.end_time == nanoseconds(signal.at)
            assert span.start_time == span.end_time - round(signal.duration * 1e9)
            assert span.attributes is not None
            by_webhook.setdefault(str(span.attributes["pendo_webhooks.webhook.id"]), []).append(
                span
            )
        a, b, c = (by_webhook[ids[name]] for name in "abc")
        assert [len(a), len(b), len(c)] == [6, 2, 1]
        # The a's attempts end at +0 (first event), +4, +10, +14, +30 and +34 s.
        assert [s.end_time for s in a] == [
            nanoseconds(START + timedelta(seconds=t)) for t in (0, 4, 10, 14, 30, 34)
        ]
        assert dict(a[0].attributes or {}) == {
            "pendo_webhooks.webhook.id": ids["a"],
            "pendo_webhooks.webhook.kind": "url",
            "pendo_webhooks.deliveries": 1,
            "http.request.method": "POST",
            "server.address": "a.example.com",
            "http.response.status_code": 503,
            "error.type": "503",
        }
        assert (a[0].status.status_code, a[0].status.description) == (StatusCode.ERROR, "503")
        assert b[0].status.status_code is StatusCode.UNSET
        assert "error.type" not in (b[0].attributes or {})
        assert (c[0].attributes or {})["http.response.status_code"] == 410
        for span in finished:  # the URL's path and query (a token, a key) are never recorded
            assert "token-" not in json.dumps(dict(span.attributes or {}))

        points = metric_points(reader)
        deliveries = {
            (attrs["pendo_webhooks.webhook.id"], attrs["pendo_webhooks.outcome"]): v
            for attrs, v in points["pendo_webhooks.deliveries"]
        }
        assert deliveries == {
            (ids["a"], "retry_scheduled"): 4,
            (ids["a"], "dead"): 2,
            (ids["b"], "delivered"): 2,
            (ids["c"], "failed"): 1,
        }
        durations = {
            attrs["pendo_webhooks.status_class"]: v
            for attrs, v in points["pendo_webhooks.exchange.duration"]
        }
        assert durations == {"5xx": 6, "2xx": 2, "4xx": 1}
        changes = {
            (attrs["pendo_webhooks.webhook.id"], attrs["pendo_webhooks.webhook.state"]): v
            for attrs, v in points["pendo_webhooks.webhook.changes"]
        }
        assert changes[(ids["c"], "disabled")] == 1
        assert changes[(ids["a"], "enabled")] == 1
        meters.shutdown()

    def test_an_error_without_response_and_a_port(
        self, spans: tuple[InMemorySpanExporter, TracerProvider]
    ) -> None:
        exporter, provider = spans
        hook = OpenTelemetryHook(tracer_provider=provider, metrics=False)
        hook(attempt(status=None, error_kind="timeout", host="hooks.example.com:8443"))
        hook(attempt(host="::1"))  # an IPv6 host is kept whole
        hook(DeliveryChanged(webhook_id="w", delivery_id="d", state=DeliveryState.DEAD, at=START))
        error, v6 = exporter.get_finished_spans()
        assert dict(error.attributes or {}) == {
            "pendo_webhooks.webhook.id": "wh_1",
            "pendo_webhooks.webhook.kind": "url",
            "pendo_webhooks.deliveries": 1,
            "http.request.method": "POST",
            "server.address": "hooks.example.com",
            "server.port": 8443,
            "error.type": "timeout",
        }
        assert (error.status.status_code, error.status.description) == (
            StatusCode.ERROR,
            "timeout",
        )
        assert (v6.attributes or {})["server.address"] == "::1"
        assert "server.port" not in (v6.attributes or {})
        assert repr(hook) == "OpenTelemetryHook(metrics=False)"

    def test_without_an_sdk_the_hook_is_a_no_op(self) -> None:
        hook = OpenTelemetryHook()  # the API's global no-op providers
        hook(attempt())
        hook(WebhookChanged(webhook_id="w", state=WebhookState.ENABLED, by="u", at=START))


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, str], int]]]:
    """
    Each metric's data points as (attributes, sum or count).
    """
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[tuple[dict[str, str], int]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "pendo_webhooks"
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    amount = getattr(point, "count", None)
                    if amount is None:
                        amount = point.value  # type: ignore[union-attr]
                    attrs = {k: str(v) for k, v in (point.attributes or {}).items()}
                    points.setdefault(metric.name, []).append((attrs, int(amount)))
    return points


class TestLoggingHook:
    def test_one_line_per_signal_and_no_url_path_or_secret(
        self, outbox: Storage, caplog: pytest.LogCaptureFixture
    ) -> None:
        clock = FrozenClock(START)
        with caplog.at_level(logging.DEBUG, logger="pendo_webhooks.events"):
            ids = run_outage(outbox, clock, [LoggingHook()])
        records = [r for r in caplog.records if r.name == "pendo_webhooks.events"]
        # 9 exchanges, 9 delivery changes, 3 enabled, 1 disabled.
        assert len(records) == 22
        events = [r.signal["event"] for r in records]  # type: ignore[attr-defined]
        assert events.count("attempt_finished") == 9
        assert events.count("delivery_changed") == 9
        assert events.count("webhook_changed") == 4
        text = "\n".join(r.getMessage() for r in records)
        for secret in ("token-", "k-a", "s3cret", "/in"):
            assert secret not in text
        dead = [r for r in records if r.signal.get("state") == "dead"]  # type: ignore[attr-defined]
        assert [r.levelno for r in dead] == [logging.WARNING, logging.WARNING]
        assert dead[0].getMessage() == (
            f"event=delivery_changed webhook_id={ids['a']} "
            f"delivery_id={dead[0].signal['delivery_id']} state=dead attempt=3 "  # type: ignore[attr-defined]
            f'reason="HTTP 503, gave up after 3 attempts" at=2026-01-01T00:00:30+00:00'
        )
        disabled = [r for r in records if r.signal.get("state") == "disabled"]  # type: ignore[attr-defined]
        assert disabled[0].getMessage() == (
            f"event=webhook_changed webhook_id={ids['c']} state=disabled by=system "
            'reason="HTTP 410 Gone from c.example.com" at=2026-01-01T00:00:00+00:00'
        )
        ok = [r for r in records if r.signal.get("status") == 200]  # type: ignore[attr-defined]
        assert {r.levelno for r in ok} == {logging.DEBUG}
        assert (
            ok[0]
            .getMessage()
            .startswith(
                f"event=attempt_finished webhook_id={ids['b']} kind=url host=b.example.com "
                "deliveries=1 status=200 duration="
            )
        )

    def test_levels_and_the_record_fields(self, caplog: pytest.LogCaptureFixture) -> None:
        hook = LoggingHook("custom.events")
        assert repr(hook) == "LoggingHook('custom.events')"
        with caplog.at_level(logging.INFO, logger="custom.events"):
            hook(attempt(status=200))  # DEBUG: below the level, not even built
            hook(attempt(status=None, duration=1.5))
            hook(
                DeliveryChanged(
                    webhook_id="w", delivery_id="d", state=DeliveryState.DELIVERED, at=START
                )
            )
            hook(WebhookChanged(webhook_id="w", state=WebhookState.FAILING, by="system", at=START))
        assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
            (
                "INFO",
                (
                    "event=attempt_finished webhook_id=wh_1 kind=url host=hooks.example.com "
                    "deliveries=1 error_kind=timeout duration=1.500 at=2026-01-01T00:00:00+00:00"
                ),
            ),
            (
                "INFO",
                (
                    "event=delivery_changed webhook_id=w delivery_id=d state=delivered "
                    "at=2026-01-01T00:00:00+00:00"
                ),
            ),
            (
                "WARNING",
                (
                    "event=webhook_changed webhook_id=w state=failing by=system "
                    "at=2026-01-01T00:00:00+00:00"
                ),
            ),
        ]
        assert caplog.records[0].signal == {  # type: ignore[attr-defined]
            "event": "attempt_finished",
            "webhook_id": "wh_1",
            "kind": "url",
            "host": "hooks.example.com",
            "deliveries": 1,
            "status": None,
            "error_kind": "timeout",
            "duration": 1.5,
            "at": "2026-01-01T00:00:00+00:00",
        }

    def test_odd_text_is_quoted(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.INFO, logger="pendo_webhooks.events"):
            LoggingHook()(
                WebhookChanged(
                    webhook_id="w", state=WebhookState.DISABLED, by="", reason='a"b\nc', at=START
                )
            )
        assert caplog.records[0].getMessage() == (
            'event=webhook_changed webhook_id=w state=disabled by="" reason="a\\"b\\nc" '
            "at=2026-01-01T00:00:00+00:00"
        )

    def test_signal_fields_are_json_ready(self) -> None:
        fields = signal_fields(
            DeliveryChanged(
                webhook_id="w",
                delivery_id="d",
                state=DeliveryState.RETRY_SCHEDULED,
                attempt=1,
                next_attempt_at=START + timedelta(seconds=5),
                at=START,
            )
        )
        assert json.loads(json.dumps(fields)) == fields
        assert fields["next_attempt_at"] == "2026-01-01T00:00:05+00:00"


class TestOptionalExtras:
    @pytest.mark.parametrize(
        ("module", "package", "extra"),
        [
            ("pendo_webhooks.instrumentation.prometheus", "prometheus_client", "prometheus"),
            ("pendo_webhooks.instrumentation.otel", "opentelemetry", "otel"),
        ],
    )
    def test_a_missing_extra_is_named(
        self, monkeypatch: pytest.MonkeyPatch, module: str, package: str, extra: str
    ) -> None:
        monkeypatch.delitem(sys.modules, module)
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, package, None)  # as if not installed
        with pytest.raises(ImportError) as caught:
            importlib.import_module(module)
        assert f"pip install 'pendo-webhooks[{extra}]'" in str(caught.value)

    def test_the_package_imports_neither(self) -> None:
        code = (
            "import sys\n"
            "class Hide:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in {'prometheus_client', 'opentelemetry'}:\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, Hide())\n"
            "import pendo_webhooks, pendo_webhooks.instrumentation, pendo_webhooks.cli\n"
            "import pendo_webhooks.dispatcher, pendo_webhooks.testing\n"
            "from pendo_webhooks.instrumentation import LoggingHook\n"
            "try:\n"
            "    import pendo_webhooks.instrumentation.prometheus\n"
            "except ImportError as exc:\n"
            "    print(exc)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == (
            "pendo_webhooks.instrumentation.prometheus needs prometheus-client: "
            "pip install 'pendo-webhooks[prometheus]'\n"
        )
