"""
``pendo-webhooks worker --metrics-port``: the Prometheus exposition served while it runs.

A real worker process delivers to a local receiver and is scraped over a real socket on
127.0.0.1 (port 0: it prints the one it got); the waits are bounded and end on a
condition. The refusals and errors run in-process through ``main()``.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pendo_webhooks.cli._worker import _check_metrics_host, is_loopback
from pendo_webhooks.testing import LocalReceiver

# The worker tests' fixtures: a store with one webhook to a local receiver, main() run
# in-process, and no PENDO_WEBHOOKS_* variables of the developer's.
from .test_cli import (  # noqa: F401 - fixtures, found by pytest under their names
    CLI,
    _enqueue,
    _invoke,
    _no_cli_environment,
    _receiver,
    _store,
)


pytestmark = pytest.mark.slow

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def lines_of(stream: IO[bytes]) -> tuple[queue.Queue[bytes], threading.Thread]:
    """
    A queue the lines of *stream* are put on as they come (so reads can have a deadline).
    """
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def test_a_running_worker_is_scraped_on_loopback(
    store: tuple[Path, str], receiver: LocalReceiver
) -> None:
    db, hook_id = store
    receiver.queue(400)  # a final failure: no retry to wait for, every count is exact
    _enqueue(db, 3)
    proc = subprocess.Popen(
        [
            *CLI,
            "worker", "--db", str(db), "--allow-private", "--json", "--concurrency", "1",
            "--poll-interval", "0.05", "--metrics-port", "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines, reader = lines_of(proc.stdout)
        started = json.loads(lines.get(timeout=30))
        assert started["event"] == "started"
        url = started["metrics"]
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/metrics")

        # Scrape until the three deliveries are counted (the hook runs once each is stored).
        delivered, failed = (("pendo_webhooks_deliveries_total", frozenset(
            {("webhook", hook_id), ("outcome", outcome)}
        )) for outcome in ("delivered", "failed"))  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                samples = parse(response.read().decode())
            counted = samples.get(delivered, 0) + samples.get(failed, 0)
            if counted == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert samples[delivered] == 2.0
        assert samples[failed] == 1.0
        assert samples[("pendo_webhooks_outbox_pending", frozenset())] == 0.0
        assert samples[("pendo_webhooks_outbox_oldest_due_age_seconds", frozenset())] == 0.0
        streak = ("pendo_webhooks_webhook_failure_streak", frozenset({("webhook", hook_id)}))
        assert samples[streak] == 0.0  # the 400, then two 2xx
        count = "pendo_webhooks_attempt_duration_seconds_count"
        assert samples[(count, frozenset({("kind", "url"), ("status_class", "4xx")}))] == 1.0
        assert samples[(count, frozenset({("kind", "url"), ("status_class", "2xx")}))] == 2.0
        assert ("process_cpu_seconds_total", frozenset()) in samples  # the process collector

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0, err
    printed = [json.loads(lines.get_nowait()) for _ in range(lines.qsize())]
    assert printed[-1]["event"] == "stopped"
    assert printed[-1]["delivered"] == 2
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as sock:  # the server went away with the worker
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_until_idle_prints_where_metrics_are(
    invoke: Callable[..., tuple[int, str, str]], store: tuple[Path, str]
) -> None:
    db, _ = store
    _enqueue(db, 1)
    code, out, err = invoke(
        "worker", "--db", str(db), "--allow-private", "--until-idle", "--metrics-port", "0"
    )
    assert (code, out) == (0, "")
    lines = err.splitlines()
    assert lines[1].startswith("metrics at http://127.0.0.1:")
    assert lines[-1].startswith("worker stopped: delivered 1,")

    code, out, _ = invoke(
        "worker", "--db", str(db), "--until-idle", "--json", "--metrics-port", "0",
        "--metrics-host", "localhost",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out.splitlines()[0])["metrics"].startswith("http://localhost:")


def test_a_non_loopback_address_needs_the_flag(
    invoke: Callable[..., tuple[int, str, str]], store: tuple[Path, str]
) -> None:
    db, _ = store
    code, _, err = invoke(
        "worker", "--db", str(db), "--metrics-port", "0", "--metrics-host", "0.0.0.0"
    )
    assert code == 2
    assert err == (
        "pendo-webhooks: error: --metrics-host 0.0.0.0 is not a loopback address, and the "
        "metrics name your webhooks; add --metrics-allow-remote to serve them there\n"
    )
    allowed = argparse.Namespace(
        metrics_port=9100, metrics_host="0.0.0.0", metrics_allow_remote=True
    )
    _check_metrics_host(allowed)  # no error
    assert [is_loopback(h) for h in ("LOCALHOST", "127.0.0.2", "::1", "10.0.0.1")] == [
        True,
        True,
        True,
        False,
    ]


def test_a_port_in_use_is_a_clear_error(
    invoke: Callable[..., tuple[int, str, str]], store: tuple[Path, str]
) -> None:
    db, _ = store
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = invoke("worker", "--db", str(db), "--metrics-port", str(port))
    assert code == 3
    assert err.splitlines()[-1] == (
        f"pendo-webhooks: error: --metrics-port: cannot serve on 127.0.0.1 port {port} "
        "(Address already in use)"
    )


def test_the_missing_extra_is_named(
    invoke: Callable[..., tuple[int, str, str]],
    store: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, _ = store
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    code, _, err = invoke("worker", "--db", str(db), "--metrics-port", "0")
    assert code == 3
    assert err.splitlines()[-1] == (
        "pendo-webhooks: error: --metrics-port needs prometheus-client: "
        "pip install 'pendo-webhooks[prometheus]'"
    )


def test_the_port_must_be_a_port(invoke: Callable[..., tuple[int, str, str]]) -> None:
    code, _, err = invoke("worker", "--db", "x.db", "--metrics-port", "65536")
    assert code == 2
    assert "--metrics-port" in err
