"""
The CLI side of alerts: ``webhooks create --operations``, the worker's Alerts hook and its
start-up sweep, ``deliveries list`` of operations deliveries, ``schema --operations``.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pendo_webhooks import SQLiteStorage, WebhookRegistry
from pendo_webhooks.cli import _common as common
from pendo_webhooks.cli import main
from pendo_webhooks.testing import LocalReceiver


Invoke = Callable[..., tuple[int, str, str]]
DB = ("--db", "hooks.db", "--actor", "ann")
OPS_SECRET = "0ps-s3cret"


@pytest.fixture(name="invoke")
def _invoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Invoke:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(common.ENV_DB, raising=False)
    monkeypatch.delenv(common.ENV_ACTOR, raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
        code = main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return invoke


@pytest.fixture(name="receivers")
def _receivers() -> Iterator[tuple[LocalReceiver, LocalReceiver]]:
    with (
        LocalReceiver(statuses=[410]) as pendo,
        LocalReceiver(secrets=[OPS_SECRET], scheme="standard") as ops,
    ):
        yield pendo, ops


def create(invoke: Invoke, *args: str) -> str:
    code, out, err = invoke(
        "webhooks", "create", *DB, "--allow-private", "--enable", "--json", *args
    )
    assert code == 0, err
    hook_id: str = json.loads(out)["id"]
    return hook_id


def test_a_410_reaches_the_operations_webhook_signed(
    invoke: Invoke, receivers: tuple[LocalReceiver, LocalReceiver]
) -> None:
    pendo, ops = receivers
    nps = create(invoke, "--name", "NPS", "--url", pendo.url, "--event", "npsSubmitted")
    ops_id = create(
        invoke, "--name", "Ops", "--url", ops.url, "--operations", "--secret", OPS_SECRET
    )
    shown = json.loads(invoke("webhooks", "show", ops_id, "--db", "hooks.db", "--json")[1])
    assert sorted(shown["categories"]) == [
        "pendo_webhooks.delivery.exhausted",
        "pendo_webhooks.webhook.disabled",
        "pendo_webhooks.webhook.recovered",
    ]

    assert invoke("deliveries", "enqueue", "--db", "hooks.db", "--event", "npsSubmitted")[0] == 0
    code, _, err = invoke("worker", "--db", "hooks.db", "--until-idle", "--json")
    assert code == 0
    assert f"alert webhook.disabled: webhook {nps}: HTTP 410 Gone from 127.0.0.1" in err

    (request,) = ops.requests
    assert request.verified is True
    body = json.loads(request.body)
    assert (body["type"], body["data"]["webhook_id"], body["data"]["by"]) == (
        "pendo_webhooks.webhook.disabled",
        nps,
        "system",
    )
    code, out, _ = invoke("deliveries", "list", *DB, "--webhook", ops_id, "--json")
    (listed,) = json.loads(out)
    assert (listed["event"], listed["status"], listed["event_id"]) == (
        "pendo_webhooks.webhook.disabled",
        "delivered",
        request.headers["webhook-id"],
    )
    code, out, _ = invoke("deliveries", "list", *DB)
    assert "pendo_webhooks.webhook.disabled" in out


def test_the_worker_sweeps_an_alert_a_crash_lost(
    invoke: Invoke, receivers: tuple[LocalReceiver, LocalReceiver]
) -> None:
    _, ops = receivers
    nps = create(invoke, "--name", "NPS", "--url", "https://hooks.example.com/in", "--event",
                 "npsSubmitted")  # fmt: skip
    create(invoke, "--name", "Ops", "--url", ops.url, "--operations", "--secret", OPS_SECRET)
    # A worker disabled it and died before its hook ran: no alert was stored.
    with SQLiteStorage("hooks.db") as storage:
        WebhookRegistry(storage).disable_by_system(nps, reason="HTTP 410 Gone")
        assert [d.category.value for d in storage.list_deliveries()] == []
    code, _, _ = invoke("worker", "--db", "hooks.db", "--until-idle")
    assert code == 0
    (request,) = ops.requests
    assert json.loads(request.body)["data"]["reason"] == "HTTP 410 Gone"


def test_operations_events_can_be_picked_one_by_one(invoke: Invoke) -> None:
    hook_id = create(
        invoke, "--name", "Ops", "--url", "https://ops.example.com/in",
        "--event", "pendo_webhooks.webhook.disabled,pendo_webhooks.webhook.recovered",
    )  # fmt: skip
    with SQLiteStorage("hooks.db") as storage:
        hook = storage.get_webhook(hook_id)
    assert hook.is_operations
    assert len(hook.categories) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--operations", "--event", "npsSubmitted"], "--operations subscribes to every"),
        ([], "give --event EVENT (or --operations for an operations webhook)"),
    ],
)
def test_create_needs_events_or_operations(invoke: Invoke, args: list[str], message: str) -> None:
    code, _, err = invoke(
        "webhooks", "create", *DB, "--name", "X", "--url", "https://x.example.com/", *args
    )
    assert code == 2
    assert message in err


def test_mixing_is_refused_naming_the_option(invoke: Invoke) -> None:
    code, _, err = invoke(
        "webhooks", "create", *DB, "--name", "X", "--url", "https://x.example.com/",
        "--event", "npsSubmitted,pendo_webhooks.webhook.disabled",
    )  # fmt: skip
    assert code != 0
    assert "--event: cannot mix Pendo events and operations events" in err


def test_schema_operations(invoke: Invoke) -> None:
    code, out, _ = invoke("schema", "--operations")
    assert code == 0
    assert json.loads(out)["title"] == "OperationsEvent"
    code, out, _ = invoke("schema", "--operations", "delivery.exhausted")
    assert json.loads(out)["title"] == "DeliveryExhausted"


def test_list_filters_on_an_operations_event(invoke: Invoke) -> None:
    ops_id = create(invoke, "--name", "Ops", "--url", "https://ops.example.com/in", "--operations")
    create(invoke, "--name", "NPS", "--url", "https://x.example.com/in", "--event", "npsSubmitted")
    code, out, _ = invoke(
        "webhooks",
        "list",
        "--db",
        "hooks.db",
        "--event",
        "pendo_webhooks.webhook.disabled",
        "--json",
    )
    assert code == 0
    assert [h["id"] for h in json.loads(out)] == [ops_id]
