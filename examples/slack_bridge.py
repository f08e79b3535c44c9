"""
A Slack bridge: receive Pendo webhooks, post each event to a Slack channel.

Pendo (and pendo-webhooks) cannot post to Slack directly: Slack's incoming webhooks want
their own message format (``{"text": ..., "blocks": [...]}``), not Pendo's JSON. This small
service sits between them: it verifies each Pendo delivery, turns the event into a Slack
message with :class:`SlackFormatter` (a :class:`pendo_webhooks.formatters.Formatter`) and
posts it to Slack through the library's guarded transport (no redirects, deadlines, the
address guard). A Slack failure is answered with 503, so the sender retries the delivery
later with the same ``webhook-id``.

If you run the dispatcher yourself and only want Slack messages, you need no bridge: a
Slack channel in place of the URL channel (see :mod:`pendo_webhooks.channels`, whose
worked example is one) formats each event for Slack at enqueue and posts it directly. The
bridge is for when Pendo's signed webhooks arrive from elsewhere (Pendo itself, another
service): it verifies them first, which a channel never has to.

Run the demo (everything local: a fake Slack, the bridge, and a sender)::

    python examples/slack_bridge.py

Run the bridge for real (any WSGI server works; this uses the standard library's)::

    PENDO_WEBHOOK_SECRET=... SLACK_WEBHOOK_URL=https://hooks.slack.com/services/... \\
        python examples/slack_bridge.py serve 8000
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from pendo_webhooks.events import (
    AccountCreated,
    Event,
    GuideDisplayed,
    NpsDisplayed,
    NpsSubmitted,
    ParentChildAccountCreated,
    PollDisplayed,
    PollSubmitted,
    TrackEventReceived,
    VisitorCreated,
    parse_event,
)
from pendo_webhooks.exceptions import (
    InvalidEventPayload,
    SignatureError,
    TransportError,
    UnknownEventType,
)
from pendo_webhooks.formatters import Formatter
from pendo_webhooks.signing import verify
from pendo_webhooks.transports import OutgoingRequest, RequestsTransport, Transport


_START_RESPONSE = Callable[[str, list[tuple[str, str]]], object]


def _escape(text: str) -> str:
    """
    Escape text for Slack's mrkdwn: ``&``, ``<`` and ``>`` would start entities and links.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackFormatter:
    """
    Formats events as Slack incoming-webhook messages: a one-line summary and a context line.
    """

    def format(self, event: Event) -> bytes:
        """
        Return the JSON body to POST to a Slack incoming webhook.
        """
        summary = self.summary(event)
        context = (
            f"{_escape(event.category.value)} · visitor {_escape(event.visitor_id)}"
            f" · account {_escape(event.account_id)}"
            f" · <!date^{int(event.timestamp.timestamp())}^{{date_short_pretty}} {{time}}|"
            f"{event.timestamp:%Y-%m-%d %H:%M} UTC>"
        )
        message = {
            "text": summary,  # the notification text, and what clients without blocks show
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        }
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()

    @staticmethod
    def summary(event: Event) -> str:
        """
        One line of Slack mrkdwn saying what happened.
        """
        return _SUMMARIES[type(event)](event, f"*{_escape(event.visitor_id)}*")


def _shown(event: GuideDisplayed | NpsDisplayed | PollDisplayed, who: str) -> str:
    kind = {GuideDisplayed: "Guide", NpsDisplayed: "NPS survey", PollDisplayed: "Poll"}
    return f":eyes: {kind[type(event)]} *{_escape(event.guide_properties.name)}* shown to {who}"


def _nps(event: NpsSubmitted, who: str) -> str:
    reason = f": “{_escape(event.nps.reason)}”" if event.nps.reason else ""
    return f":bar_chart: NPS *{event.nps.rating}/10* from {who}{reason}"


def _poll(event: PollSubmitted, who: str) -> str:
    response = event.poll.response
    answer = ", ".join(response) if isinstance(response, tuple | list) else str(response)
    question = _escape(event.poll.question)
    return f":ballot_box_with_ballot: {who} answered “{question}”: *{_escape(answer)}*"


def _track(event: TrackEventReceived, who: str) -> str:
    return f":zap: {who} did *{_escape(event.name)}*"


def _visitor(event: VisitorCreated, who: str) -> str:
    browser = f"{event.browser_name} {event.browser_version}".strip()
    return f":wave: New visitor {who} ({_escape(browser)})"


def _account(event: AccountCreated, _who: str) -> str:
    return f":office: New account *{_escape(event.account_id)}*"


def _pair(event: ParentChildAccountCreated, _who: str) -> str:
    child, parent = _escape(event.child_account_id), _escape(event.parent_account_id)
    return f":link: New account *{child}* under *{parent}*"


# One summary per event type: a new type fails loudly here (KeyError), never silently.
_SUMMARIES: dict[type, Callable[[Any, str], str]] = {
    GuideDisplayed: _shown,
    NpsDisplayed: _shown,
    PollDisplayed: _shown,
    NpsSubmitted: _nps,
    PollSubmitted: _poll,
    TrackEventReceived: _track,
    VisitorCreated: _visitor,
    AccountCreated: _account,
    ParentChildAccountCreated: _pair,
}


class SlackBridge:
    """
    A WSGI app: verify a Pendo webhook, format it for Slack, post it, answer the sender.

    Args:
        secrets: The webhook's secrets (current first; the old one too while rotating).
        slack_url: The Slack incoming webhook URL (keep it secret: it is a credential).
        transport: Sends to Slack; a guarded :class:`RequestsTransport` by default.
        formatter: Turns events into Slack messages.
    """

    def __init__(
        self,
        secrets: Sequence[str],
        slack_url: str,
        *,
        transport: Transport | None = None,
        formatter: Formatter | None = None,
    ) -> None:
        self.secrets = list(secrets)
        self.slack_url = slack_url
        self.transport = RequestsTransport() if transport is None else transport
        self.formatter = SlackFormatter() if formatter is None else formatter

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        """
        Process one delivery; return the status to answer with.
        """
        try:
            verify(body, headers, self.secrets)
            event = parse_event(body)
        except SignatureError:
            return 401
        except UnknownEventType:
            return 204  # a newer event type: acknowledge, do not post
        except InvalidEventPayload:
            return 400
        slack = OutgoingRequest(
            url=self.slack_url,
            body=self.formatter.format(event),
            headers={"Content-Type": "application/json"},
        )
        try:
            answer = self.transport.send(slack)
        except TransportError:
            return 503  # Slack unreachable: the sender retries later
        return 204 if 200 <= answer.status < 300 else 503

    def __call__(
        self, environ: dict[str, Any], start_response: _START_RESPONSE
    ) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST":
            start_response("405 Method Not Allowed", [("Allow", "POST")])
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        status = self.handle(body, headers)
        reasons = {204: "No Content", 400: "Bad Request", 401: "Unauthorized", 503: "Unavailable"}
        start_response(f"{status} {reasons[status]}", [("Content-Length", "0")])
        return [b""]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """
        Keep the demo's output to what it prints itself.
        """


def serve_in_thread(app: Any) -> tuple[str, Callable[[], None]]:
    """
    Serve *app* on a free loopback port in a thread; return its URL and a function to stop it.
    """
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return f"http://127.0.0.1:{server.server_port}/webhooks/pendo", stop


def demo() -> list[str]:
    """
    Run everything locally: a fake Slack, the bridge, and a dispatcher sending all nine types.

    The fake Slack fails its first post, so the bridge answers 503 and the dispatcher retries
    that delivery; the dispatcher's clock is frozen at the real time and moved by ``drain``
    instead of sleeping. Returns the posted messages' text, in the order Slack took them.
    """
    from datetime import datetime, timezone  # noqa: PLC0415

    from pendo_webhooks import EventCategory, InMemoryStorage, WebhookRegistry  # noqa: PLC0415
    from pendo_webhooks.dispatcher import Dispatcher  # noqa: PLC0415
    from pendo_webhooks.guard import DestinationPolicy  # noqa: PLC0415
    from pendo_webhooks.registry import Actor  # noqa: PLC0415
    from pendo_webhooks.testing import FrozenClock, LocalReceiver, sample_events  # noqa: PLC0415

    local = DestinationPolicy.local_testing()
    secret = "bridge-s3cr3t!"
    clock = FrozenClock(datetime.now(timezone.utc))
    with (
        LocalReceiver(statuses=[500]) as fake_slack,
        RequestsTransport(destinations=local) as to_slack,
    ):
        slack_url = fake_slack.url_for("/services/T000/B000/XXXX")
        url, stop = serve_in_thread(SlackBridge([secret], slack_url, transport=to_slack))
        try:
            registry = WebhookRegistry(InMemoryStorage(), destinations=local)
            admin = Actor("admin", is_admin=True)
            hook = registry.create(
                admin, name="Slack bridge", url=url, secret=secret, categories=EventCategory
            )
            registry.enable(admin, hook.id)
            with Dispatcher(registry, clock=clock, sleep=clock.sleep) as dispatcher:
                for event in sample_events():
                    dispatcher.dispatch(event)
                dispatcher.drain(timeout=3600)
        finally:
            stop()
    return [request.json()["text"] for request in fake_slack.requests if request.status == 200]


def main(argv: Sequence[str]) -> int:
    """
    ``slack_bridge.py`` runs the demo; ``slack_bridge.py serve PORT`` runs the bridge.
    """
    if argv[:1] == ["serve"]:
        secrets = [s for s in os.environ.get("PENDO_WEBHOOK_SECRET", "").split(",") if s]
        slack_url = os.environ.get("SLACK_WEBHOOK_URL", "")
        if not secrets or not slack_url:
            print("set PENDO_WEBHOOK_SECRET and SLACK_WEBHOOK_URL", file=sys.stderr)
            return 2
        port = int(argv[1]) if len(argv) > 1 else 8000
        with make_server("127.0.0.1", port, SlackBridge(secrets, slack_url)) as server:
            print(f"bridge listening on http://127.0.0.1:{port}/")
            server.serve_forever()
        return 0
    for line in demo():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
