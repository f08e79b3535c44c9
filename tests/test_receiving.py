"""
The one-call verify-and-parse (``signing.verify_event``) and its Flask, Django and Starlette
helpers (``pendo_webhooks.receiving``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import flask
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from pendo_webhooks.events import (
    GuideDisplayed,
    NpsSubmitted,
    PollSubmitted,
    VisitorCreated,
    to_wire,
)
from pendo_webhooks.exceptions import (
    ConfigurationError,
    InvalidEventPayload,
    SignatureError,
    UnexpectedEventType,
    UnknownEventType,
)
from pendo_webhooks.receiving import (
    verify_django_request,
    verify_flask_request,
    verify_starlette_request,
)
from pendo_webhooks.signing import verify_event
from pendo_webhooks.testing import sample_event, sample_events, signed_request


SECRET = "s3cr3t-with-special-chars!&?<>"
SENT_AT = 1626803880


def at(seconds: float):  # a clock
    return lambda: datetime.fromtimestamp(seconds, timezone.utc)


NOW = at(SENT_AT + 1)


@pytest.mark.parametrize("event", sample_events(), ids=lambda e: e.category.value)
def test_verify_event_returns_the_parsed_event_of_every_type(event: object) -> None:
    body, headers = signed_request(event, SECRET, timestamp=SENT_AT)  # type: ignore[arg-type]
    assert verify_event(body, headers, SECRET, clock=NOW) == event
    assert verify_event(body, headers, SECRET, expect=type(event), clock=NOW) == event


def test_expect_narrows_and_refuses_another_type_naming_both() -> None:
    body, headers = signed_request(sample_event("guideDisplayed"), SECRET, timestamp=SENT_AT)
    with pytest.raises(UnexpectedEventType) as caught:
        verify_event(body, headers, SECRET, expect=NpsSubmitted, clock=NOW)
    assert str(caught.value) == "event: expected 'npsSubmitted', got 'guideDisplayed'"
    assert (caught.value.expected, caught.value.actual) == ("npsSubmitted", "guideDisplayed")
    assert isinstance(caught.value, InvalidEventPayload)  # a receiver's 400 path still catches it
    event = verify_event(body, headers, SECRET, expect=(NpsSubmitted, GuideDisplayed), clock=NOW)
    assert isinstance(event, GuideDisplayed)
    with pytest.raises(UnexpectedEventType, match="'npsSubmitted or pollSubmitted', got 'guid"):
        verify_event(body, headers, SECRET, expect=(NpsSubmitted, PollSubmitted), clock=NOW)


@pytest.mark.parametrize("expect", [(), str, "npsSubmitted", (NpsSubmitted, dict), object])
def test_a_bad_expect_is_a_configuration_error(expect: object) -> None:
    body, headers = signed_request(sample_event("npsSubmitted"), SECRET, timestamp=SENT_AT)
    with pytest.raises(ConfigurationError, match="expect: must be an event class"):
        verify_event(body, headers, SECRET, expect=expect, clock=NOW)  # type: ignore[call-overload]


def test_the_signature_is_checked_before_the_body_is_parsed() -> None:
    """
    A forged body that is not even JSON gets SignatureError, never a parse error.
    """
    _, headers = signed_request(sample_event("npsSubmitted"), SECRET, timestamp=SENT_AT)
    for body in (b"not json", b'{"event": "pageViewed"}', b"{}"):
        with pytest.raises(SignatureError):
            verify_event(body, headers, SECRET, clock=NOW)
    with pytest.raises(SignatureError, match="too old"):
        verify_event(b"x", headers, SECRET, clock=at(SENT_AT + 301))


def test_verified_but_bad_bodies_raise_the_parse_errors() -> None:
    unknown = b'{"event": "pageViewed"}'
    body, headers = signed_request(unknown, SECRET, timestamp=SENT_AT, msg_id="m1")
    with pytest.raises(UnknownEventType):
        verify_event(body, headers, SECRET, clock=NOW)
    bad = b'{"event": "npsSubmitted", "properties": {}}'
    body, headers = signed_request(bad, SECRET, timestamp=SENT_AT, msg_id="m1")
    with pytest.raises(InvalidEventPayload, match=r"properties\.nps: required"):
        verify_event(body, headers, SECRET, expect=NpsSubmitted, clock=NOW)


@pytest.mark.parametrize("scheme", ["pendo", "standard", "both"])
def test_verify_event_keeps_verifys_schemes(scheme: str) -> None:
    event = sample_event("visitorCreated")
    body, headers = signed_request(
        event, [SECRET], scheme=scheme, timestamp=SENT_AT, signature_header="X-Sig"
    )
    got = verify_event(
        body, headers, ["old", SECRET], scheme=scheme, header="X-Sig", tolerance=5, clock=NOW
    )
    assert got == event
    if scheme != "pendo":  # only the Standard Webhooks headers carry a timestamp
        with pytest.raises(SignatureError, match="too old"):
            verify_event(body, headers, SECRET, scheme=scheme, header="X-Sig", tolerance=1,
                         clock=at(SENT_AT + 2))  # fmt: skip
    wrong = "standard" if scheme == "pendo" else "pendo"
    with pytest.raises(SignatureError, match="missing"):
        verify_event(body, headers, SECRET, scheme=wrong, clock=NOW)


# -- the framework helpers --------------------------------------------------------------------


def test_flask_reads_the_raw_body_whatever_the_content_type() -> None:
    """
    ``request.data`` is empty for a form content type, and ``request.json`` re-encodes:
    the helper reads the raw bytes either way, and leaves them readable.
    """
    event = sample_event("npsSubmitted")
    body, headers = signed_request(event, SECRET)
    app = flask.Flask(__name__)
    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        headers["Content-Type"] = content_type
        with app.test_request_context(method="POST", data=body, headers=headers):
            got = verify_flask_request(flask.request, SECRET, expect=NpsSubmitted)
            assert got == event
            assert flask.request.get_data() == body
    with app.test_request_context(method="POST", data=body + b" ", headers=headers):
        with pytest.raises(SignatureError):
            verify_flask_request(flask.request, SECRET)


def test_django_reads_request_body() -> None:
    from django.conf import settings  # noqa: PLC0415

    if not settings.configured:  # pragma: no cover - the docs tests may have configured it
        # Settings are once per process: the same ones the receiver tutorial configures.
        settings.configure(PENDO_WEBHOOK_SECRETS=["s3cr3t"], ALLOWED_HOSTS=["testserver"])
    from django.test import RequestFactory  # noqa: PLC0415

    event = sample_event("pollSubmitted")
    body, headers = signed_request(event, SECRET)
    request = RequestFactory().post(
        "/hook", data=body, content_type="application/json", headers=headers
    )
    assert verify_django_request(request, SECRET, expect=(PollSubmitted,)) == event
    with pytest.raises(UnexpectedEventType):
        verify_django_request(request, SECRET, expect=NpsSubmitted)


def test_starlette_awaits_the_body_with_a_fastapi_app() -> None:
    app = FastAPI()
    handled: list[object] = []

    @app.post("/hook", response_model=None)
    async def hook(request: Request) -> Response:
        try:
            handled.append(await verify_starlette_request(request, SECRET, expect=VisitorCreated))
        except SignatureError:
            return Response(status_code=401)
        return Response(status_code=204)

    event = sample_event("visitorCreated")
    body, headers = signed_request(event, SECRET)
    client = TestClient(app)
    assert client.post("/hook", content=body, headers=headers).status_code == 204
    assert client.post("/hook", content=body[:-1] + b" }", headers=headers).status_code == 401
    assert handled == [event]


def test_a_request_without_headers_is_a_signature_error() -> None:
    class Bare:
        body = to_wire(sample_event("accountCreated"))
        headers = None

    with pytest.raises(SignatureError, match="headers"):
        verify_django_request(Bare(), SECRET)  # type: ignore[arg-type]

    class Coroutine:
        headers = None

        async def body(self) -> bytes:
            return b"{}"

    with pytest.raises(SignatureError, match="headers"):
        asyncio.run(verify_starlette_request(Coroutine(), SECRET))  # type: ignore[arg-type]
