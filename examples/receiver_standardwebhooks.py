"""
A receiver that verifies Pendo-style webhooks with the reference ``standardwebhooks`` library.

A receiver does not need pendo-webhooks: every delivery carries the Standard Webhooks
headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) unless the webhook
was set to Pendo's scheme only, so any Standard Webhooks library verifies it, in any
language. Two things to know:

* A secret written ``whsec_<base64>`` is passed to ``Webhook`` as that text. Any other
  secret is text whose UTF-8 bytes are the key: pass ``secret.encode()``, or the library
  would try to base64-decode it.
* During a secret rotation ``webhook-signature`` carries one ``v1,`` signature per valid
  secret; the library accepts the request if any one matches its secret.

This app uses only the standard library's WSGI server and ``standardwebhooks``
(``pip install standardwebhooks``)::

    PENDO_WEBHOOK_SECRET='the secret' python examples/receiver_standardwebhooks.py 8000
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from standardwebhooks import Webhook, WebhookVerificationError


_START_RESPONSE = Callable[[str, list[tuple[str, str]]], object]
_MAX_BODY = 1024 * 1024


def webhook_for(secret: str) -> Webhook:
    """
    The verifier for *secret*: ``whsec_`` secrets as text, any other as its UTF-8 bytes.
    """
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


def make_app(secret: str, handle: Callable[[dict[str, Any]], object]) -> Callable[..., Any]:
    """
    A WSGI app that verifies each POST and passes the decoded Pendo JSON to *handle*.
    """
    webhook = webhook_for(secret)

    def app(environ: dict[str, Any], start_response: _START_RESPONSE) -> Iterable[bytes]:
        def answer(status: str, text: str = "") -> list[bytes]:
            body = text.encode()
            start_response(status, [("Content-Length", str(len(body)))])
            return [body]

        if environ["REQUEST_METHOD"] != "POST":
            return answer("405 Method Not Allowed")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > _MAX_BODY:
            return answer("413 Content Too Large")
        body = environ["wsgi.input"].read(length)
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        try:
            payload = webhook.verify(body, headers)
        # The library lets ValueError out of malformed headers and non-UTF-8 bodies.
        except (WebhookVerificationError, ValueError):
            return answer("401 Unauthorized", "invalid signature\n")
        handle(payload)
        return answer("204 No Content")

    return app


def main(argv: list[str]) -> int:
    """
    Serve on 127.0.0.1 at the port in *argv* (8000 by default), printing each event.
    """
    secret = os.environ.get("PENDO_WEBHOOK_SECRET", "")
    if not secret:
        print("set PENDO_WEBHOOK_SECRET", file=sys.stderr)
        return 2
    port = int(argv[0]) if argv else 8000

    def show(payload: dict[str, Any]) -> None:
        print(json.dumps({"event": payload["event"], "uniqueId": payload["uniqueId"]}))

    with make_server("127.0.0.1", port, make_app(secret, show)) as server:
        print(f"listening on http://127.0.0.1:{port}/")
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
