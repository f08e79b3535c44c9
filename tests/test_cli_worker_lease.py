"""
``pendo-webhooks worker --lease``: the real console script, in a subprocess.

A killed CLI worker's deliveries used to wait the fixed 60 s lease; ``--lease`` sets it,
and one too short for the attempt deadline (``--timeout``) is refused in one line.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import new_unique_id
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.testing import RecordingTransport, sample_event

from .servers import Receiver, RecordedRequest, Reply


ADMIN = Actor("u-1", is_admin=True)
LOCAL = DestinationPolicy.local_testing()


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("pendo-webhooks")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pendo_webhooks"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*_cli(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def make_store(path: Path, url: str, events: int) -> None:
    """
    A store with one enabled webhook to *url* and *events* deliveries pending for it.
    """
    with SQLiteStorage(path) as storage:
        registry = WebhookRegistry(storage, destinations=LOCAL)
        created = registry.create(
            ADMIN, name="Lab", url=url, categories={"npsSubmitted"}, secret="s" * 24
        )
        registry.enable(ADMIN, created.id)
        with Dispatcher(registry, transport=RecordingTransport()) as dispatcher:
            for _ in range(events):
                dispatcher.enqueue(sample_event("npsSubmitted", unique_id=new_unique_id()))


def test_a_lease_too_short_for_the_timeout_is_one_line_and_exit_3(tmp_path: Path) -> None:
    db = tmp_path / "hooks.db"
    make_store(db, "http://127.0.0.1:9/in", 1)
    proc = run("worker", "--db", str(db), "--allow-private", "--until-idle", "--lease", "20")
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.splitlines() == [
        (
            "pendo-webhooks: error: --lease: 20 s cannot cover the --timeout of 15 s: it must "
            "be at least 30 s (twice the deadline, since an attempt may start with half its "
            "lease left)"
        )
    ]
    assert proc.stdout == ""
    proc = run(
        "worker", "--db", str(db), "--until-idle", "--lease", "3", "--timeout", "2"
    )  # 3 s < 2 x 2 s
    assert proc.returncode == 3
    assert "--lease: 3 s cannot cover the --timeout of 2 s" in proc.stderr


def test_the_worker_claims_with_the_lease_given(tmp_path: Path) -> None:
    """
    While the receiver answers, the delivery's claim in the file runs --lease seconds.
    """
    db = tmp_path / "hooks.db"
    leases: list[float] = []

    def look(request: RecordedRequest) -> Reply:
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute(
                "SELECT updated_at, lease_until FROM deliveries WHERE lease_owner IS NOT NULL"
            ).fetchall()
        finally:
            conn.close()
        leases.extend(
            (datetime.fromisoformat(until) - datetime.fromisoformat(at)).total_seconds()
            for at, until in rows
        )
        return Reply(status=200)

    with Receiver(handler=look) as receiver:
        make_store(db, receiver.url, 2)
        proc = run(
            "worker", "--db", str(db), "--allow-private", "--until-idle",
            "--lease", "7.5", "--timeout", "3", "--concurrency", "1",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert len(receiver.requests) == 2
    assert leases == [7.5, 7.5]
    assert "delivered 2" in proc.stderr


def test_help_documents_the_lease() -> None:
    proc = run("worker", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "--lease SECONDS how long a claim holds" in text
    assert "at least twice --timeout (default: 60)" in text
