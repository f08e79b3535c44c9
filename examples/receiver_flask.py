"""
A Flask app that receives Pendo webhooks: verify and parse, de-duplicate, hand over, answer fast.

Install Flask (``pip install 'pendo-webhooks[examples]'``) and run it:

    PENDO_WEBHOOK_SECRET='the secret' flask --app examples/receiver_flask.py run --port 8000

then register ``http://127.0.0.1:8000/webhooks/pendo`` as a webhook with that secret (or
try it with ``pendo-webhooks send``). Each event is logged; put your own code in
``handle_event``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence

from flask import Flask, Response, request

from pendo_webhooks.events import Event
from pendo_webhooks.exceptions import InvalidEventPayload, SignatureError, UnknownEventType
from pendo_webhooks.receiving import verify_flask_request


logger = logging.getLogger("pendo_receiver")


class SeenIds:
    """
    The ``webhook-id`` values already handled. Delivery is at least once: a retry after a
    lost answer carries the same id. Use a unique column in your database in production;
    this in-memory set is for one process.
    """

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def add(self, webhook_id: str) -> bool:
        """
        Remember *webhook_id*; return False if it was already there.
        """
        with self._lock:
            if webhook_id in self._ids:
                return False
            self._ids.add(webhook_id)
            return True

    def forget(self, webhook_id: str) -> None:
        """
        Forget *webhook_id*, so the sender's retry is handled again.
        """
        with self._lock:
            self._ids.discard(webhook_id)


def make_receiver(
    secrets: Sequence[str], handle_event: Callable[[Event], object], *, scheme: str = "both"
) -> Flask:
    """
    Build the receiving app. *secrets*: the current one, plus the old one during a rotation.
    """
    app = Flask(__name__)
    seen = SeenIds()

    @app.post("/webhooks/pendo")
    def pendo_webhook() -> Response:
        try:
            # Reads the raw body (request.get_data(), never request.json), verifies the
            # signature, and only then parses the body into its typed event.
            event = verify_flask_request(request, list(secrets), scheme=scheme)
        except SignatureError as exc:
            logger.warning("rejected a webhook: %s", exc)
            return Response("invalid signature\n", status=401)
        except UnknownEventType as exc:
            # A newer sender's event type: acknowledge it, or it is retried for hours.
            logger.info("ignored %s", exc)
            return Response(status=204)
        except InvalidEventPayload as exc:
            return Response(f"bad payload: {exc}\n", status=400)
        if seen.add(event.unique_id):
            try:
                handle_event(event)  # keep this quick: queue slow work, answer within seconds
            except Exception:
                seen.forget(event.unique_id)  # answer 500: the sender retries later
                raise
        return Response(status=204)

    return app


def _log_event(event: Event) -> None:
    logger.info("%s from visitor %s", event.category.value, event.visitor_id)


def create_app() -> Flask:
    """
    The app from the environment (Flask's ``--app`` convention calls this).
    """
    secrets = [s for s in os.environ.get("PENDO_WEBHOOK_SECRET", "").split(",") if s]
    if not secrets:
        raise SystemExit("set PENDO_WEBHOOK_SECRET (several, comma-separated, while rotating)")
    logging.basicConfig(level=logging.INFO)
    return make_receiver(secrets, _log_event)


if __name__ == "__main__":
    create_app().run(port=8000)
