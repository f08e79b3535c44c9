"""
Receiving webhooks in Flask, Django and FastAPI (Starlette): verify and parse in one call.

Each helper takes the framework's request, reads its **raw body** the one right way for
that framework, and hands it with the headers to
:func:`~pendo_webhooks.signing.verify_event`: the signature is verified first, then the
body is parsed into its typed event. They take the same keyword arguments
(``expect``, ``scheme``, ``header``, ``tolerance``, ``clock``) and raise the same errors.

Raw-body pitfalls these helpers avoid (the signature covers the exact bytes sent, so
anything that parses and re-encodes the JSON breaks it):

* **Flask**: ``request.get_data()``, never ``request.json``/``get_json()`` (parsed) nor
  ``request.data`` (empty when the content type looks like a form). Touching
  ``request.form`` first consumes the stream; :func:`verify_flask_request` reads the
  body without form parsing, and caches it, so later reads still see it.
* **Django**: ``request.body``, never ``json.loads`` of ``request.POST``; read
  ``request.POST`` first and ``request.body`` raises ``RawPostDataException``. Mark the
  view ``@csrf_exempt`` (the signature authenticates the sender) and mind
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB by default; bodies are far smaller).
* **FastAPI / Starlette**: ``await request.body()``, never a Pydantic model parameter
  (FastAPI would parse the JSON, and the re-encoded bytes no longer match); do not
  consume ``request.stream()`` before it.

No framework is imported here: the helpers only use the request's attributes, so this
module works with whichever framework is installed.

>>> from types import SimpleNamespace
>>> from pendo_webhooks.events import AccountCreated
>>> from pendo_webhooks.testing import sample_event, signed_request
>>> body, headers = signed_request(sample_event("accountCreated"), "s3cr3t")
>>> django_like = SimpleNamespace(body=body, headers=headers)
>>> verify_django_request(django_like, "s3cr3t", expect=AccountCreated).account_id
'Webhook Account'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from ._clock import Clock, utcnow
from .exceptions import SignatureError
from .signing import SignatureScheme, verify_event
from .signing._secret import Secret
from .signing._verify import DEFAULT_SIGNATURE_HEADER, DEFAULT_TOLERANCE, HeaderItems


if TYPE_CHECKING:
    from .events import Event


__all__ = [
    "DjangoRequest",
    "FlaskRequest",
    "StarletteRequest",
    "verify_django_request",
    "verify_flask_request",
    "verify_starlette_request",
]

EventT = TypeVar("EventT", bound="Event")


class FlaskRequest(Protocol):
    """
    **Protocol**: what :func:`verify_flask_request` uses of ``flask.request``.
    """

    @property
    def headers(self) -> Any: ...

    def get_data(self, cache: bool = ..., as_text: bool = ..., parse_form_data: bool = ...) -> Any:
        """The body, as Werkzeug reads it."""


class DjangoRequest(Protocol):
    """
    **Protocol**: what :func:`verify_django_request` uses of an ``HttpRequest``.
    """

    @property
    def body(self) -> bytes: ...

    @property
    def headers(self) -> Any: ...


class StarletteRequest(Protocol):
    """
    **Protocol**: what :func:`verify_starlette_request` uses of a Starlette/FastAPI ``Request``.
    """

    @property
    def headers(self) -> Any: ...

    async def body(self) -> bytes:
        """The whole body, read once and cached by Starlette."""


def _headers(request: object) -> HeaderItems:
    headers = getattr(request, "headers", None)
    if headers is None:
        raise SignatureError("headers: the request has none")
    result: HeaderItems = headers
    return result


@overload
def verify_flask_request(
    request: FlaskRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: None = None,
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> Event: ...
@overload
def verify_flask_request(
    request: FlaskRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: type[EventT],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> EventT: ...
@overload
def verify_flask_request(
    request: FlaskRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: tuple[type[Event], ...],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> Event: ...


def verify_flask_request(
    request: FlaskRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: Any = None,
    scheme: SignatureScheme | str = SignatureScheme.BOTH,
    header: str = DEFAULT_SIGNATURE_HEADER,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = utcnow,
) -> Event:
    """
    Verify and parse the webhook in a Flask (Werkzeug) *request*.

    Reads ``request.get_data(cache=True, parse_form_data=False)``: the raw bytes, even
    when a sender mislabels the content type, and still readable afterwards. The other
    arguments, the result and the errors are :func:`~pendo_webhooks.signing.verify_event`'s.

    Raises:
        SignatureError: If the request does not verify (answer ``401``).
        UnknownEventType: For an event type newer than this library (answer ``2xx``).
        InvalidEventPayload: If the verified body is not a valid event, or (its subclass
            ``UnexpectedEventType``) not of the type *expect* names.

    >>> from flask import Flask, request
    >>> from pendo_webhooks.testing import sample_event, signed_request
    >>> body, headers = signed_request(sample_event("visitorCreated"), "s3cr3t")
    >>> with Flask(__name__).test_request_context(method="POST", data=body, headers=headers):
    ...     verify_flask_request(request, "s3cr3t").browser_name
    'Chrome'
    """
    body = request.get_data(cache=True, as_text=False, parse_form_data=False)
    event: Event = verify_event(
        body,
        _headers(request),
        secrets,
        expect=expect,
        scheme=scheme,
        header=header,
        tolerance=tolerance,
        clock=clock,
    )
    return event


@overload
def verify_django_request(
    request: DjangoRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: None = None,
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> Event: ...
@overload
def verify_django_request(
    request: DjangoRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: type[EventT],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> EventT: ...
@overload
def verify_django_request(
    request: DjangoRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: tuple[type[Event], ...],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> Event: ...


def verify_django_request(
    request: DjangoRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: Any = None,
    scheme: SignatureScheme | str = SignatureScheme.BOTH,
    header: str = DEFAULT_SIGNATURE_HEADER,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = utcnow,
) -> Event:
    """
    Verify and parse the webhook in a Django ``HttpRequest``.

    Reads ``request.body`` (the raw bytes) and ``request.headers``. Do not read
    ``request.POST`` before it (Django then refuses to give the raw body), and mark the
    view ``@csrf_exempt``. The other arguments, the result and the errors are
    :func:`~pendo_webhooks.signing.verify_event`'s (see :func:`verify_flask_request`
    for the answer each error calls for).

    >>> from types import SimpleNamespace
    >>> from pendo_webhooks.exceptions import SignatureError
    >>> try:
    ...     verify_django_request(SimpleNamespace(body=b"{}", headers={}), "s3cr3t")
    ... except SignatureError as exc:
    ...     print(exc)
    webhook-id: missing
    """
    event: Event = verify_event(
        request.body,
        _headers(request),
        secrets,
        expect=expect,
        scheme=scheme,
        header=header,
        tolerance=tolerance,
        clock=clock,
    )
    return event


@overload
async def verify_starlette_request(
    request: StarletteRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: None = None,
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> Event: ...
@overload
async def verify_starlette_request(
    request: StarletteRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: type[EventT],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> EventT: ...
@overload
async def verify_starlette_request(
    request: StarletteRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: tuple[type[Event], ...],
    scheme: SignatureScheme | str = ...,
    header: str = ...,
    tolerance: int = ...,
    clock: Clock = ...,
) -> Event: ...


async def verify_starlette_request(
    request: StarletteRequest,
    secrets: Secret | str | Sequence[Secret | str],
    *,
    expect: Any = None,
    scheme: SignatureScheme | str = SignatureScheme.BOTH,
    header: str = DEFAULT_SIGNATURE_HEADER,
    tolerance: int = DEFAULT_TOLERANCE,
    clock: Clock = utcnow,
) -> Event:
    """
    Verify and parse the webhook in a FastAPI or Starlette ``Request`` (a coroutine).

    Reads ``await request.body()`` (the raw bytes; Starlette caches them). Declare the
    endpoint's parameter as ``request: Request``, not as a Pydantic model: FastAPI would
    parse the JSON and the signature would no longer match. The other arguments, the result
    and the errors are :func:`~pendo_webhooks.signing.verify_event`'s (see
    :func:`verify_flask_request` for the answer each error calls for).

    >>> import asyncio
    >>> from starlette.requests import Request
    >>> from pendo_webhooks.testing import sample_event, signed_request
    >>> body, headers = signed_request(sample_event("npsSubmitted"), "s3cr3t")
    >>> async def receive():
    ...     return {"type": "http.request", "body": body, "more_body": False}
    >>> scope = {"type": "http", "method": "POST", "headers": [
    ...     (k.lower().encode(), v.encode()) for k, v in headers.items()]}
    >>> asyncio.run(verify_starlette_request(Request(scope, receive), "s3cr3t")).nps.rating
    9
    """
    body = await request.body()
    event: Event = verify_event(
        body,
        _headers(request),
        secrets,
        expect=expect,
        scheme=scheme,
        header=header,
        tolerance=tolerance,
        clock=clock,
    )
    return event
