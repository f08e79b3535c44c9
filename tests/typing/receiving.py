"""
Type-checked only, never run: ``verify_event`` and the framework helpers give a receiver the
class it expects.
"""

from __future__ import annotations

from typing import assert_type

from flask import request
from starlette.datastructures import Headers
from werkzeug.datastructures import EnvironHeaders

from pendo_webhooks.events import Event, GuideDisplayed, NpsSubmitted, PollSubmitted
from pendo_webhooks.receiving import DjangoRequest, verify_django_request
from pendo_webhooks.signing import verify, verify_event


def handle(body: bytes, headers: dict[str, str], request: DjangoRequest) -> None:
    assert_type(verify_event(body, headers, "s3cr3t"), Event)
    assert_type(verify_event(body, headers, "s3cr3t", expect=NpsSubmitted), NpsSubmitted)
    assert_type(
        verify_event(body, headers, ["new", "old"], expect=(NpsSubmitted, PollSubmitted)),
        NpsSubmitted | PollSubmitted,
    )
    assert_type(
        verify_event(
            body, headers, "s3cr3t", expect=(NpsSubmitted, PollSubmitted, GuideDisplayed)
        ),
        NpsSubmitted | PollSubmitted | GuideDisplayed,
    )
    assert_type(verify_django_request(request, "s3cr3t", expect=PollSubmitted), PollSubmitted)
    assert_type(verify_django_request(request, "s3cr3t"), Event)


def framework_headers() -> None:
    # A framework's own header objects are accepted as they are, not only dicts.
    verify(request.get_data(), request.headers, "s3cr3t")
    verify(b"{}", EnvironHeaders({}), "s3cr3t", scheme="pendo")
    verify(b"{}", Headers({"x-pendo-signature": "0" * 64}), "s3cr3t")
    assert_type(verify_event(b"{}", request.headers, "s3cr3t"), Event)
