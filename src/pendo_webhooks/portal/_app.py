"""
:class:`Portal`, the WSGI application: who is asking, which page, CSRF, then the page.

Strictly private; import :class:`Portal` from :mod:`pendo_webhooks.portal`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..dispatcher import Dispatcher
from ..exceptions import ConfigurationError, NotFound, PermissionDenied
from ..model._webhook import check_text
from ..registry import Actor
from ._csrf import CsrfTokens, check_key
from ._render import Pages, stylesheet
from ._views import Views
from ._wsgi import HTTPError, PageRequest, PageResponse, StartResponse


__all__ = ["Portal"]

_CSS_PATH = "/static/portal.css"
_ID = r"(?P<id>[^/]{1,200})"

# (path pattern, method, the Views method): GET and HEAD pages, POST actions.
_ROUTES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern), method, handler)
    for pattern, method, handler in (
        ("/", "GET", "index"),
        ("/new", "GET", "new"),
        ("/new", "POST", "create"),
        (f"/webhooks/{_ID}", "GET", "detail"),
        (f"/webhooks/{_ID}/edit", "GET", "edit"),
        (f"/webhooks/{_ID}/edit", "POST", "save"),
        (f"/webhooks/{_ID}/delete", "GET", "confirm_delete"),
        (f"/webhooks/{_ID}/delete", "POST", "delete"),
        (f"/webhooks/{_ID}/test", "POST", "test"),
        (f"/webhooks/{_ID}/enable", "POST", "enable"),
        (f"/webhooks/{_ID}/disable", "POST", "disable"),
        (f"/webhooks/{_ID}/rotate", "POST", "rotate"),
        (f"/webhooks/{_ID}/redeliver-failed", "POST", "redeliver_failed"),
        (f"/deliveries/{_ID}", "GET", "delivery"),
        (f"/deliveries/{_ID}/redeliver", "POST", "redeliver"),
    )
)

_FORBIDDEN = "You do not have access to this page."
_CSRF = (
    "CSRF token missing or invalid. Go back, reload the page and send the form again "
    "(forms expire after 12 hours)."
)


def _route(path: str, method: str) -> tuple[str, dict[str, str]]:
    """
    The handler's name and arguments for *path* and *method*.

    Raises:
        HTTPError: 404 for an unknown path, 405 (with ``Allow``) for another method.
    """
    allowed = []
    for pattern, route_method, handler in _ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if route_method == method or (route_method == "GET" and method == "HEAD"):
            return handler, match.groupdict()
        allowed.append(route_method)
    if not allowed:
        raise HTTPError(404, "There is no such page.")
    if "GET" in allowed:
        allowed.append("HEAD")
    raise HTTPError(405, "This page does not take that method.", allow=", ".join(allowed))


class Portal:
    """
    The webhooks settings page for a host's admins, as a WSGI application.

    List, create, test, enable, disable, edit and delete webhooks; see each webhook's
    health, PII filters and deliveries, redeliver (one delivery, or every failed one of
    the last week), rotate its secret. The list says what needs attention: webhooks the
    library disabled, failing destinations, dead deliveries. Operations webhooks (the
    library's own alerts, :mod:`pendo_webhooks.alerts`) are made from the create form too.
    Mount it under any prefix of the host's web application (links follow
    ``SCRIPT_NAME``).

    Every request is asked *actor*: it returns the
    :class:`~pendo_webhooks.registry.Actor` the host's session says is asking, or
    ``None``. ``None``, or an actor the registry's
    :class:`~pendo_webhooks.registry.PermissionPolicy` refuses, gets a 403 page that
    says nothing about webhooks (only the stylesheet is public). Every form carries a
    CSRF token bound to the actor and its issue time (valid 12 hours); a POST without a
    valid one, or sent from another site (``Origin``, ``Sec-Fetch-Site``), is refused
    with 403 and changes nothing. A secret is shown once, in the answer to the create
    or rotate form; a Segment write key never. Every response carries a strict
    Content-Security-Policy (no scripts at all), ``X-Frame-Options: DENY`` and
    ``nosniff``; pages are ``no-store``.

    Needs Jinja2: ``pip install 'pendo-webhooks[portal]'``.

    Args:
        dispatcher: The dispatcher of the host's webhooks: its registry, store and
            transport (the "Test" button sends with it).
        actor: Called with the WSGI environ of each request; returns who is asking, or
            ``None`` for nobody the host knows.
        csrf_key: The key of the CSRF tokens, at least 32 random bytes. ``None`` makes a
            random one for this portal: enough for one process. Hosts that serve the
            portal from several processes give each the same key.
        title: The list page's heading and the link back to it.

    Attributes:
        dispatcher: The dispatcher given.
        title: The title given, stripped.

    Raises:
        ConfigurationError: For a bad argument, or if Jinja2 is not installed.

    >>> from wsgiref.util import setup_testing_defaults
    >>> from pendo_webhooks.dispatcher import Dispatcher
    >>> from pendo_webhooks.registry import Actor, WebhookRegistry
    >>> from pendo_webhooks.storage import InMemoryStorage
    >>> from pendo_webhooks.testing import RecordingTransport
    >>> registry = WebhookRegistry(InMemoryStorage())
    >>> admin = Actor("u-1", is_admin=True)
    >>> _ = registry.create(admin, name="NPS to Zapier", url="https://hooks.example.com/n",
    ...                     categories={"npsSubmitted"})
    >>> dispatcher = Dispatcher(registry, transport=RecordingTransport([200]))
    >>> portal = Portal(dispatcher, actor=lambda environ: environ.get("test.actor"))
    >>> portal
    <Portal(title='Webhooks')>
    >>> def get(path, actor):
    ...     environ = {"PATH_INFO": path, "SCRIPT_NAME": "/admin/webhooks", "test.actor": actor}
    ...     setup_testing_defaults(environ)
    ...     seen = []
    ...     body = b"".join(portal(environ, lambda status, headers: seen.append(status)))
    ...     return seen[0], body.decode()
    >>> status, page = get("/", admin)
    >>> status, "NPS to Zapier" in page, 'href="/admin/webhooks/new"' in page
    ('200 OK', True, True)
    >>> status, page = get("/", Actor("u-2"))  # not an admin
    >>> status, "Zapier" in page
    ('403 Forbidden', False)
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        actor: Callable[[dict[str, Any]], Actor | None],
        *,
        csrf_key: bytes | None = None,
        title: str = "Webhooks",
    ) -> None:
        if not isinstance(dispatcher, Dispatcher):
            raise ConfigurationError("dispatcher: must be a Dispatcher")
        if not callable(actor):
            raise ConfigurationError("actor: must be callable (environ -> Actor | None)")
        key = secrets.token_bytes(32) if csrf_key is None else check_key(csrf_key)
        try:
            self.title = check_text("title", title, max_length=100)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.dispatcher = dispatcher
        self._actor = actor
        self._tokens = CsrfTokens(key, dispatcher.clock)
        self._pages = Pages(self.title)
        self._css = stylesheet()

    def __repr__(self) -> str:
        return f"<Portal(title={self.title!r})>"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """
        Answer one request (the WSGI protocol).
        """
        request = PageRequest(environ)
        return self._respond(request)(start_response, head=request.method == "HEAD")

    def _error(
        self, request: PageRequest, status: int, title: str, message: str, **more: Any
    ) -> PageResponse:
        body = self._pages.render(
            "error.html", request, page_title=title, message=message, home=status != 403
        )
        headers = tuple((name, value) for name, value in more.items() if value is not None)
        return PageResponse(status, body, headers=headers)

    def _forbidden(self, request: PageRequest, message: str = _FORBIDDEN) -> PageResponse:
        return self._error(request, 403, "Forbidden", message)

    def _respond(self, request: PageRequest) -> PageResponse:
        try:
            if request.path == _CSS_PATH:
                return self._stylesheet(request)
            actor = self._actor(request.environ)
            if actor is None:
                return self._forbidden(request)
            if not isinstance(actor, Actor):  # the host's bug: say so, show nothing
                msg = f"actor: returned a {type(actor).__name__}, not an Actor or None"
                raise ConfigurationError(msg)
            self.dispatcher.registry.policy.check(actor, "read", None)
            return self._page(request, actor)
        except PermissionDenied:
            return self._forbidden(request)
        except NotFound:
            return self._error(request, 404, "Not found", "There is no such page.")
        except HTTPError as exc:
            titles = {403: "Forbidden", 404: "Not found", 405: "Method not allowed"}
            return self._error(
                request,
                exc.status,
                titles.get(exc.status, "Bad request"),
                exc.message,
                Allow=exc.allow,
            )

    def _stylesheet(self, request: PageRequest) -> PageResponse:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, "This page does not take that method.", allow="GET, HEAD")
        return PageResponse(
            200, self._css, content_type="text/css; charset=utf-8", cache="no-cache"
        )

    def _page(self, request: PageRequest, actor: Actor) -> PageResponse:
        handler, arguments = _route(request.path, request.method)
        views = Views(self._pages, self._tokens, self.dispatcher, request, actor)
        if request.method == "POST":
            request.check_same_origin()
            views.data = self._checked_form(request, actor)
        ids: Mapping[str, str] = arguments
        response: PageResponse = getattr(views, handler)(*ids.values())
        return response

    def _checked_form(self, request: PageRequest, actor: Actor) -> dict[str, list[str]]:
        data = request.form()
        token = data.get("csrf_token", [None])[0]
        if not self._tokens.is_valid(actor.id, token):
            raise HTTPError(403, _CSRF)
        return data
