"""The receiver examples: Flask, the reference standardwebhooks library, and the Slack bridge."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from socketserver import ThreadingMixIn
from types import ModuleType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from werkzeug.serving import make_server as werkzeug_server

from pendo_webhooks import EventCategory, InMemoryStorage, Secret, WebhookRegistry
from pendo_webhooks.dispatcher import Dispatcher, Outcome
from pendo_webhooks.events import Event, NpsResponse, PollResponse, to_wire
from pendo_webhooks.exceptions import TransportError
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor
from pendo_webhooks.signing import signer_for
from pendo_webhooks.testing import (
    FrozenClock,
    LocalReceiver,
    RecordingTransport,
    sample_event,
    sample_events,
    signed_request,
)


ROOT = Path(__file__).resolve().parent.parent
ADMIN = Actor("admin", is_admin=True)
LOCAL = DestinationPolicy.local_testing()


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """
        Keep test output clean.
        """


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextlib.contextmanager
def _serve(app: Any) -> Iterator[str]:
    """
    Serve a WSGI *app* on loopback, one thread per request, inside the with block.
    """
    server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/webhooks/pendo"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _webhook(url: str, secret: str | None, **kwargs: Any) -> tuple[WebhookRegistry, str]:
    registry = WebhookRegistry(InMemoryStorage(), destinations=LOCAL)
    hook = registry.create(
        ADMIN, name="receiver", url=url, secret=secret, categories=EventCategory, **kwargs
    )
    registry.enable(ADMIN, hook.id)
    return registry, hook.id


def _raw_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


# -- Flask ----------------------------------------------------------------------------------


@pytest.fixture(name="flask_example", scope="module")
def _flask_example() -> ModuleType:
    return _load("receiver_flask.py")


class TestFlaskReceiver:
    def test_every_event_type_arrives_once_through_a_real_server(
        self, flask_example: ModuleType
    ) -> None:
        """
        A Dispatcher delivers all nine sample events to the Flask app over HTTP; each is handled.
        """
        handled: list[Event] = []
        app = flask_example.make_receiver(["s3cr3t!&?"], handled.append)
        server = werkzeug_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_port}/webhooks/pendo"
            registry, hook_id = _webhook(url, "s3cr3t!&?")
            with Dispatcher(registry) as dispatcher:
                results = [dispatcher.dispatch(e).for_webhook(hook_id) for e in sample_events()]
        finally:
            server.shutdown()
            thread.join()
        assert [r.outcome for r in results] == [Outcome.DELIVERED] * 9
        assert [r.status_code for r in results] == [204] * 9
        assert handled == sample_events()

    def test_answers_for_each_kind_of_request(self, flask_example: ModuleType) -> None:
        """
        401 for a bad signature, 204 once per webhook-id, 204 for an unknown type, 400 for junk.
        """
        handled: list[Event] = []
        client = flask_example.make_receiver(["new", "old"], handled.append).test_client()
        event = sample_event("npsSubmitted")
        body, headers = signed_request(event, "old")
        assert client.post("/webhooks/pendo", data=body, headers=headers).status_code == 204
        assert client.post("/webhooks/pendo", data=body, headers=headers).status_code == 204
        assert handled == [event]  # the retry was recognised by its webhook-id
        forged = {**headers, "webhook-signature": headers["webhook-signature"][:-4] + "AAA="}
        assert client.post("/webhooks/pendo", data=body, headers=forged).status_code == 401
        newer = to_wire(event).replace(b'"npsSubmitted"', b'"pageViewed"')
        response = client.post("/webhooks/pendo", data=newer, headers=_resigned(newer, "new"))
        assert response.status_code == 204
        junk = b'{"event":"npsSubmitted"}'
        response = client.post("/webhooks/pendo", data=junk, headers=_resigned(junk, "new"))
        assert response.status_code == 400
        assert handled == [event]

    def test_a_failing_handler_lets_the_retry_through(self, flask_example: ModuleType) -> None:
        """
        If the handler raises, the answer is 500 and the retry (same webhook-id) is handled.
        """
        calls: list[Event] = []

        def flaky(event: Event) -> None:
            calls.append(event)
            if len(calls) == 1:
                raise RuntimeError("database down")

        app = flask_example.make_receiver(["s"], flaky)
        app.config["PROPAGATE_EXCEPTIONS"] = False
        client = app.test_client()
        body, headers = signed_request(sample_event("pollSubmitted"), "s")
        assert client.post("/webhooks/pendo", data=body, headers=headers).status_code == 500
        assert client.post("/webhooks/pendo", data=body, headers=headers).status_code == 204
        assert len(calls) == 2

    def test_create_app_reads_the_environment(
        self, flask_example: ModuleType, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        create_app (Flask's --app convention) takes comma-separated secrets from the environment.
        """
        monkeypatch.setenv("PENDO_WEBHOOK_SECRET", "new,old")
        client = flask_example.create_app().test_client()
        body, headers = signed_request(sample_event("accountCreated"), "old")
        assert client.post("/webhooks/pendo", data=body, headers=headers).status_code == 204
        monkeypatch.delenv("PENDO_WEBHOOK_SECRET")
        with pytest.raises(SystemExit, match="PENDO_WEBHOOK_SECRET"):
            flask_example.create_app()


def _resigned(body: bytes, secret: str) -> dict[str, str]:
    """
    Sign arbitrary bytes as the sender would (signed_request needs a parseable event).
    """
    now = int(datetime.now(timezone.utc).timestamp())
    headers = signer_for("both", [Secret(secret)]).sign(body, msg_id="msg_x", timestamp=now)
    return {"Content-Type": "application/json", **headers}


# -- standardwebhooks -----------------------------------------------------------------------


@pytest.fixture(name="sw_example", scope="module")
def _sw_example() -> ModuleType:
    return _load("receiver_standardwebhooks.py")


class TestStandardWebhooksReceiver:
    @pytest.mark.parametrize(
        "secret",
        ["s3cr3t-with-special-chars!&?<>", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        ids=["text", "whsec"],
    )
    def test_the_reference_library_verifies_every_delivery(
        self, sw_example: ModuleType, secret: str
    ) -> None:
        """
        All nine types, over HTTP, verify with standardwebhooks, for both kinds of secret.
        """
        got: list[dict[str, Any]] = []
        with _serve(sw_example.make_app(secret, got.append)) as url:
            registry, hook_id = _webhook(url, secret, signature_scheme="standard")
            with Dispatcher(registry) as dispatcher:
                outcomes = [dispatcher.dispatch(e).for_webhook(hook_id) for e in sample_events()]
        assert [o.status_code for o in outcomes] == [204] * 9
        assert [p["uniqueId"] for p in got] == [e.unique_id for e in sample_events()]

    def test_during_a_rotation_the_old_secret_still_verifies(self, sw_example: ModuleType) -> None:
        """
        After a rotation both secrets sign; a receiver still on the old one passes.
        """
        got: list[dict[str, Any]] = []
        with _serve(sw_example.make_app("old-secret", got.append)) as url:
            registry, hook_id = _webhook(url, "old-secret")
            registry.rotate_secret(ADMIN, hook_id, "new-secret")
            with Dispatcher(registry) as dispatcher:
                outcome = dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook_id)
        assert outcome.status_code == 204
        assert len(got) == 1

    def test_a_wrong_secret_is_a_final_failure(self, sw_example: ModuleType) -> None:
        """
        The receiver answers 401 to another secret's signature; the sender does not retry a 401.
        """
        with _serve(sw_example.make_app("receiver-secret", lambda _p: None)) as url:
            registry, hook_id = _webhook(url, "sender-secret")
            with Dispatcher(registry) as dispatcher:
                outcome = dispatcher.dispatch(sample_event("guideDisplayed")).for_webhook(hook_id)
        assert (outcome.outcome, outcome.status_code) == (Outcome.FAILED, 401)

    @pytest.mark.parametrize(
        ("headers", "body"),
        [
            ({"webhook-signature": "garbage"}, b"{}"),
            ({"webhook-signature": "v1,AAAA"}, b"\xff\xfe"),
            ({}, b"{}"),
        ],
        ids=["no-comma", "not-utf8", "missing"],
    )
    def test_malformed_requests_get_401_not_500(
        self, sw_example: ModuleType, headers: dict[str, str], body: bytes
    ) -> None:
        """
        Headers the library cannot parse are refused with 401, never a server error.
        """
        base = {"webhook-id": "msg_1", "webhook-timestamp": str(int(datetime.now().timestamp()))}
        with _serve(sw_example.make_app("s", lambda _p: None)) as url:
            assert _raw_post(url, body, {**base, **headers}) == 401

    def test_other_methods_and_huge_bodies_are_refused(self, sw_example: ModuleType) -> None:
        """
        GET gets 405; a body announced over 1 MiB gets 413 without being read.
        """
        with _serve(sw_example.make_app("s", lambda _p: None)) as url:
            parts = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
            conn.request("GET", parts.path)
            assert conn.getresponse().status == 405
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
            conn.putrequest("POST", parts.path)
            conn.putheader("Content-Length", str(2 * 1024 * 1024))
            conn.endheaders()
            assert conn.getresponse().status == 413
            conn.close()

    def test_main_needs_a_secret(
        self, sw_example: ModuleType, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        Without PENDO_WEBHOOK_SECRET the script exits 2 instead of serving.
        """
        monkeypatch.delenv("PENDO_WEBHOOK_SECRET", raising=False)
        assert sw_example.main([]) == 2


# -- the Slack bridge -----------------------------------------------------------------------


@pytest.fixture(name="slack", scope="module")
def _slack() -> ModuleType:
    return _load("slack_bridge.py")


SUMMARIES = {
    "guideDisplayed": ":eyes: Guide *Poll 1 - Test* shown to *Webhook Visitor*",
    "trackEventReceived": ":zap: *Webhook Visitor* did *Account Upgraded*",
    "npsDisplayed": ":eyes: NPS survey *Poll 1 - Test* shown to *Webhook Visitor*",
    "npsSubmitted": (":bar_chart: NPS *9/10* from *Webhook Visitor*: “Keep up the great work!”"),
    "pollDisplayed": ":eyes: Poll *Poll 1 - Test* shown to *Webhook Visitor*",
    "pollSubmitted": (
        ":ballot_box_with_ballot: *Webhook Visitor* answered “How useful is this page?”: "
        "*Very useful*"
    ),
    "visitorCreated": ":wave: New visitor *Webhook Visitor* (Chrome 91.0.4472)",
    "accountCreated": ":office: New account *Webhook Account*",
    "parentChildAccountCreated": (
        ":link: New account *Webhook Account* under *Webhook Parent Account*"
    ),
}


class TestSlackBridge:
    def test_every_event_type_has_its_slack_message(self, slack: ModuleType) -> None:
        """
        The formatter writes a summary for each of the nine types, as text and as a block.
        """
        for event in sample_events():
            message = json.loads(slack.SlackFormatter().format(event))
            assert message["text"] == SUMMARIES[event.category.value]
            assert message["blocks"][0]["text"] == {"type": "mrkdwn", "text": message["text"]}
            context = message["blocks"][1]["elements"][0]["text"]
            assert context.startswith(f"{event.category.value} · visitor Webhook Visitor")

    def test_slack_control_characters_are_escaped(self, slack: ModuleType) -> None:
        """
        <, > and & in visitor data cannot become Slack links or mentions.
        """
        event = sample_event("trackEventReceived", name="<!channel> & <http://x|y>")
        assert slack.SlackFormatter.summary(event) == (
            ":zap: *Webhook Visitor* did *&lt;!channel&gt; &amp; &lt;http://x|y&gt;*"
        )

    def test_multiple_choice_poll_answers_are_listed(self, slack: ModuleType) -> None:
        """
        A list response is shown comma-separated; an empty NPS reason adds no quote.
        """
        poll = sample_event(
            "pollSubmitted", poll=PollResponse(id="p", question="Q?", response=("a", "b"))
        )
        assert slack.SlackFormatter.summary(poll).endswith("“Q?”: *a, b*")
        nps = sample_event("npsSubmitted", nps=NpsResponse(rating=3, reason="", source="web"))
        assert slack.SlackFormatter.summary(nps).endswith("NPS *3/10* from *Webhook Visitor*")

    def test_the_demo_posts_every_type_and_retries_a_slack_failure(
        self, slack: ModuleType
    ) -> None:
        """
        Fake Slack fails once: the bridge answers 503, the sender retries, all nine arrive.
        """
        texts = slack.demo()
        order = [e.category.value for e in sample_events()]
        assert texts == [SUMMARIES[c] for c in order[1:] + order[:1]]

    @pytest.mark.parametrize(
        ("slack_answer", "status"),
        [(200, 204), (500, 503), (TransportError("timeout", "slow"), 503)],
        ids=["ok", "slack-500", "slack-timeout"],
    )
    def test_the_bridge_answers_by_what_slack_said(
        self, slack: ModuleType, slack_answer: int | Exception, status: int
    ) -> None:
        """
        204 when Slack took the message; 503 (so the sender retries) when it did not.
        """
        to_slack = RecordingTransport([slack_answer])
        bridge = slack.SlackBridge(["s"], "https://hooks.slack.example/T/B/X", transport=to_slack)
        body, headers = signed_request(sample_event("npsSubmitted"), "s")
        assert bridge.handle(body, headers) == status
        (posted,) = to_slack.requests
        assert posted.url == "https://hooks.slack.example/T/B/X"
        assert posted.headers == {"Content-Type": "application/json"}

    def test_the_bridge_refuses_what_it_should_not_post(self, slack: ModuleType) -> None:
        """
        Bad signatures (401), unknown types (204) and junk (400) never reach Slack.
        """
        to_slack = RecordingTransport()
        bridge = slack.SlackBridge(["s"], "https://hooks.slack.example/x", transport=to_slack)
        body, headers = signed_request(sample_event("npsSubmitted"), "other")
        assert bridge.handle(body, headers) == 401
        newer = to_wire(sample_event("accountCreated")).replace(b"accountCreated", b"pageViewed")
        assert bridge.handle(newer, _resigned(newer, "s")) == 204
        junk = b'{"event":"accountCreated"}'
        assert bridge.handle(junk, _resigned(junk, "s")) == 400
        assert to_slack.requests == []

    def test_the_wsgi_app_only_takes_post(self, slack: ModuleType) -> None:
        """
        Over HTTP, GET is answered 405 and a POST goes through handle().
        """
        to_slack = RecordingTransport()
        bridge = slack.SlackBridge(["s"], "https://hooks.slack.example/x", transport=to_slack)
        with _serve(bridge) as url:
            parts = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
            conn.request("GET", parts.path)
            assert conn.getresponse().status == 405
            conn.close()
            body, headers = signed_request(sample_event("visitorCreated"), "s")
            assert _raw_post(url, body, headers) == 204
        assert len(to_slack.requests) == 1

    def test_serve_needs_its_settings(
        self, slack: ModuleType, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        'serve' without PENDO_WEBHOOK_SECRET and SLACK_WEBHOOK_URL exits 2.
        """
        monkeypatch.delenv("PENDO_WEBHOOK_SECRET", raising=False)
        assert slack.main(["serve"]) == 2

    @pytest.mark.slow
    def test_the_script_prints_the_nine_messages(self) -> None:
        """
        `python examples/slack_bridge.py` runs the demo and prints one line per message.
        """
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "slack_bridge.py")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        assert sorted(done.stdout.splitlines()) == sorted(SUMMARIES.values())


def _frozen_now() -> FrozenClock:
    return FrozenClock(datetime.now(timezone.utc))


def test_local_receiver_stands_in_for_a_customer_endpoint() -> None:
    """
    The sender's integration test: a LocalReceiver, a frozen clock, a 503 rehearsed and retried.
    """
    clock = _frozen_now()
    with LocalReceiver(secrets=["s3cr3t"], statuses=[503], clock=clock) as receiver:
        registry, hook_id = _webhook(receiver.url_for("/hooks/pendo"), "s3cr3t")
        with Dispatcher(registry, clock=clock, sleep=clock.sleep) as dispatcher:
            first = dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook_id)
            summary = dispatcher.drain(timeout=3600)
    assert first.outcome is Outcome.RETRY
    assert summary.delivered == 1
    assert [(r.status, r.verified) for r in receiver.requests] == [(503, True), (200, True)]
    ids = {r.header("webhook-id") for r in receiver.requests}
    assert ids == {sample_event("npsSubmitted").unique_id}
