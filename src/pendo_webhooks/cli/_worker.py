"""
``pendo-webhooks worker``: deliver a SQLite store's outbox until SIGTERM (or until idle).

With ``--json`` it prints, to stdout, one JSON object per line where it would print a
line of text to stderr: ``{"event": "started", ...}``, ``{"event": "progress", ...}``
and ``{"event": "stopped", ...}`` (the fields are in ``--help``). Log lines
(``--log-level``) stay text, on stderr.

Strictly private.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .._clock import utcnow
from ._common import (
    EXIT_FAILED,
    EXIT_OK,
    Console,
    UsageError,
    add_command,
    add_destination_options,
    seconds,
    whole_number,
)
from ._db import add_db_option, database, destination_policy, open_store


if TYPE_CHECKING:
    from ..dispatcher import DrainSummary
    from ..retry import RetryPolicy
    from ..transports import OutgoingRequest, Transport, TransportResponse


__all__ = ["ALERT_SWEEP_SPAN", "CountingTransport", "is_loopback", "register"]

#: How far back a starting worker looks for alerts a crashed one did not send.
ALERT_SWEEP_SPAN = timedelta(days=1)


def register(subparsers: Any) -> None:
    """
    Add the ``worker`` command.
    """
    parser = add_command(
        subparsers,
        "worker",
        help="deliver the outbox of a SQLite store until SIGTERM",
        description=(
            "Run the dispatcher's worker loop on a SQLite store: attempt due deliveries and "
            "retries until SIGTERM or Ctrl-C, then finish the attempts in flight and exit 0. "
            "Several workers may share one file. While deliveries are pending, a progress "
            "line goes to stderr every few seconds. With --until-idle it exits once nothing "
            "is pending: 0, or 1 if --max-time ran out first. The address guard is the "
            "one the store records (see --allow-private). Alerts (a delivery gone dead, a "
            "webhook disabled by the library) are logged as warnings and sent to the "
            "store's operations webhooks (webhooks create --operations); on start, the "
            "last day is swept for alerts a crashed worker did not send."
        ),
    )
    parser.epilog = f"{_JSON_HELP}\n\n{parser.epilog}"
    add_db_option(parser)
    parser.add_argument(
        "--concurrency",
        type=whole_number(1, 256),
        default=4,
        metavar="N",
        help="attempts in flight at once (default: 4)",
    )
    parser.add_argument(
        "--poll-interval",
        type=seconds(0.01, 3600),
        default=1.0,
        metavar="SECONDS",
        help="look for new deliveries at least this often (default: 1)",
    )
    parser.add_argument(
        "--progress-every",
        type=seconds(0.01, 86400),
        default=5.0,
        metavar="SECONDS",
        help="how often to print progress while deliveries are pending (default: 5)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds(0.01, 30),
        default=15.0,
        metavar="SECONDS",
        help="deadline of one attempt, at most 30 (default: 15)",
    )
    parser.add_argument(
        "--lease",
        type=seconds(0.02, 86400),
        default=60.0,
        metavar="SECONDS",
        help="how long a claim holds: the deliveries of a killed worker wait this long "
        "before another worker takes them; at least twice --timeout (default: 60)",
    )
    parser.add_argument(
        "--until-idle",
        action="store_true",
        help="exit once nothing is pending (retries included) instead of waiting for more",
    )
    parser.add_argument(
        "--max-time",
        type=seconds(0.01, 10**8),
        default=10**8,
        metavar="SECONDS",
        help="with --until-idle: give up after this long (exit 1)",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="warning",
        help="log the dispatcher's messages from this level on, to stderr (info: every "
        "attempt that did not deliver; debug: every attempt)",
    )
    add_destination_options(parser, stored=True)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per line to stdout instead of the lines of text on "
        "stderr (fields below)",
    )
    metrics = parser.add_argument_group(
        "metrics", "serve the Prometheus exposition at /metrics (needs the prometheus extra)"
    )
    metrics.add_argument(
        "--metrics-port",
        type=whole_number(0, 65535),
        default=None,
        metavar="N",
        help="serve metrics on this port while the worker runs (0: any free port; the "
        "address is printed)",
    )
    metrics.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address to serve metrics on (default: 127.0.0.1); one that is not "
        "loopback needs --metrics-allow-remote",
    )
    metrics.add_argument(
        "--metrics-allow-remote",
        action="store_true",
        help="allow a --metrics-host that is not loopback (the metrics name webhook ids)",
    )
    parser.set_defaults(handler=_run, reaches=True)


_JSON_HELP = """\
--json prints one object per line, each with an "event" field:
  started   worker (its owner id), db, concurrency, until ("idle" or "signal"),
            and metrics (the URL of /metrics) with --metrics-port
  progress  delivered, retrying, failed (requests so far, as the transport saw
            them), pending (deliveries waiting now); every --progress-every
            seconds while deliveries are pending
  stopped   delivered, retried, failed, dead, cancelled (deliveries this run),
            pending (left), timed_out (true if --max-time ran out)"""


class CountingTransport:
    """
    A Transport that counts what each request got, as *retry* classifies it.

    The counts are of requests (a Segment batch is one): ``delivered``, ``retrying`` (a
    429, a 5xx or a network error) and ``failed`` (anything else). Thread-safe.

    >>> from pendo_webhooks.retry import RetryPolicy
    >>> from pendo_webhooks.testing import RecordingTransport
    >>> from pendo_webhooks.transports import OutgoingRequest
    >>> transport = CountingTransport(RecordingTransport([503, 200]), RetryPolicy())
    >>> request = OutgoingRequest(url="https://hooks.example.com/in", body=b"{}")
    >>> [transport.send(request).status for _ in range(2)]
    [503, 200]
    >>> transport.counts()
    {'delivered': 1, 'retrying': 1, 'failed': 0}
    """

    def __init__(self, inner: Transport, retry: RetryPolicy) -> None:
        self._inner = inner
        self._retry = retry
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        # The wrapped transport's deadline, if it says one: the dispatcher checks the lease.
        deadline = getattr(inner, "deadline", None)
        if deadline is not None:
            self.deadline = deadline

    def send(self, request: OutgoingRequest) -> TransportResponse:
        """
        Send *request* with the wrapped transport, and count what came back.
        """
        from ..exceptions import TransportError  # noqa: PLC0415

        try:
            response = self._inner.send(request)
        except TransportError as exc:
            self._count(None, exc.kind)
            raise
        except Exception:
            self._count(None, "error")  # what the dispatcher makes of it
            raise
        self._count(response.status, None)
        return response

    def _count(self, status: int | None, kind: str | None) -> None:
        from ..exceptions import ValidationError  # noqa: PLC0415
        from ..retry import Verdict  # noqa: PLC0415

        try:
            verdict = self._retry.classify(status=status, error_kind=kind)
        except ValidationError:  # a kind the policy does not know: the dispatcher retries it
            verdict = Verdict.RETRY
        name = {Verdict.DELIVERED: "delivered", Verdict.RETRY: "retrying"}.get(verdict, "failed")
        with self._lock:
            self._counts[name] += 1

    def counts(self) -> dict[str, int]:
        """
        Return the counts so far.
        """
        with self._lock:
            return {key: self._counts[key] for key in ("delivered", "retrying", "failed")}


@contextlib.contextmanager
def _logging(level: str) -> Iterator[None]:
    logger = logging.getLogger("pendo_webhooks")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _emit(console: Console, as_json: bool, text: str, fields: dict[str, Any]) -> None:
    """
    Print a line of text to stderr, or its *fields* as one line of JSON to stdout.
    """
    if as_json:
        console.out(json.dumps(fields, separators=(",", ":")))
    else:
        console.err(text)


@contextlib.contextmanager
def _progress(
    console: Console,
    every: float,
    counts: Callable[[], dict[str, int]],
    pending: Callable[[], int],
    *,
    as_json: bool = False,
) -> Iterator[None]:
    """
    Print a progress line every *every* seconds while deliveries are pending.
    """
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                waiting = pending()
            except Exception:  # noqa: BLE001 - the worker logs store errors itself
                waiting = 0
            if waiting:
                done = counts()
                _emit(
                    console,
                    as_json,
                    f"delivered {done['delivered']}, retrying {done['retrying']}, "
                    f"failed {done['failed']}, pending {waiting}",
                    {"event": "progress", **done, "pending": waiting},
                )

    thread = threading.Thread(target=loop, name="pendo-webhooks-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def is_loopback(host: str) -> bool:
    """
    Whether *host* is ``localhost`` or a loopback address (no name is looked up).

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("h")
    (True, True, False, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_metrics_host(args: argparse.Namespace) -> None:
    if args.metrics_port is None or args.metrics_allow_remote or is_loopback(args.metrics_host):
        return
    msg = (
        f"--metrics-host {args.metrics_host} is not a loopback address, and the metrics "
        "name your webhooks; add --metrics-allow-remote to serve them there"
    )
    raise UsageError(msg)


@contextlib.contextmanager
def _metrics(args: argparse.Namespace, storage: Any) -> Iterator[tuple[list[Any], str | None]]:
    """
    Serve the Prometheus exposition while the worker runs; yield its hooks and its URL.
    """
    if args.metrics_port is None:
        yield [], None
        return
    from ..exceptions import ConfigurationError  # noqa: PLC0415

    try:
        from prometheus_client import (  # noqa: PLC0415 - the optional extra
            CollectorRegistry,
            GCCollector,
            PlatformCollector,
            ProcessCollector,
            start_http_server,
        )

        from ..instrumentation.prometheus import PrometheusHook  # noqa: PLC0415
    except ImportError:
        msg = "--metrics-port needs prometheus-client: pip install 'pendo-webhooks[prometheus]'"
        raise ConfigurationError(msg) from None
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    hook = PrometheusHook(registry=registry, store=storage)
    host = args.metrics_host
    try:
        server, thread = start_http_server(args.metrics_port, addr=host, registry=registry)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        msg = f"--metrics-port: cannot serve on {host} port {args.metrics_port} ({why})"
        raise ConfigurationError(msg) from None
    port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    try:
        yield [hook], f"http://{shown}:{port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _summary(summary: DrainSummary) -> str:
    return (
        f"delivered {summary.delivered}, retried {summary.retried}, failed {summary.failed}, "
        f"dead {summary.dead}, cancelled {summary.cancelled}; {summary.pending} pending"
    )


def _summary_fields(summary: DrainSummary) -> dict[str, Any]:
    return {
        "event": "stopped",
        "delivered": summary.delivered,
        "retried": summary.retried,
        "failed": summary.failed,
        "dead": summary.dead,
        "cancelled": summary.cancelled,
        "pending": summary.pending,
        "timed_out": summary.timed_out,
    }


def _run(args: argparse.Namespace, console: Console) -> int:
    from ..alerts import Alerts  # noqa: PLC0415 - loaded when it runs
    from ..dispatcher import Dispatcher, check_lease  # noqa: PLC0415
    from ..registry import WebhookRegistry  # noqa: PLC0415
    from ..retry import RetryPolicy  # noqa: PLC0415
    from ..transports import Urllib3Transport  # noqa: PLC0415

    # Before the file is opened (and its settings changed): the lease must cover --timeout.
    check_lease(timedelta(seconds=args.lease), SimpleNamespace(deadline=args.timeout))
    _check_metrics_host(args)
    path = database(args)
    retry = RetryPolicy()
    with contextlib.ExitStack() as stack:
        storage = stack.enter_context(open_store(path))
        policy = destination_policy(args, storage)
        transport = stack.enter_context(
            Urllib3Transport(destinations=policy, deadline=args.timeout)
        )
        stack.enter_context(_logging(args.log_level))
        hooks, metrics_url = stack.enter_context(_metrics(args, storage))
        counting = CountingTransport(transport, retry)
        alerts = Alerts(storage)
        registry = WebhookRegistry(storage, destinations=policy, hooks=[*hooks, alerts])
        alerts.sweep(utcnow() - ALERT_SWEEP_SPAN)
        with (
            Dispatcher(
                registry, transport=counting, retry=retry, lease_duration=args.lease
            ) as dispatcher,
            _progress(
                console,
                args.progress_every,
                counting.counts,
                lambda: storage.pending_summary()[0],
                as_json=args.json,
            ),
        ):
            how = "until idle" if args.until_idle else "until SIGTERM or Ctrl-C"
            started: dict[str, Any] = {
                "event": "started",
                "worker": dispatcher.owner,
                "db": path,
                "concurrency": args.concurrency,
                "until": "idle" if args.until_idle else "signal",
            }
            if metrics_url:
                started["metrics"] = metrics_url
            _emit(
                console,
                args.json,
                f"worker {dispatcher.owner} delivering {path} "
                f"(concurrency {args.concurrency}) {how}",
                started,
            )
            if metrics_url and not args.json:
                console.err(f"metrics at {metrics_url}")
            if args.until_idle:
                summary = dispatcher.drain(args.max_time, concurrency=args.concurrency)
            else:
                summary = dispatcher.run_worker(
                    concurrency=args.concurrency, poll_interval=args.poll_interval
                )
    _emit(console, args.json, f"worker stopped: {_summary(summary)}", _summary_fields(summary))
    return EXIT_FAILED if summary.timed_out else EXIT_OK
