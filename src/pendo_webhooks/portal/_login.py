"""
The one-time login of ``pendo-webhooks portal``: a WSGI wrapper that lets in only the
browser that opened the login link printed on start.

``GET /login?token=T`` with the right token (compared in constant time) starts a session: a
random id in a cookie (``HttpOnly``, ``SameSite=Strict``, ``Path=/``; not ``Secure``, as the
portal serves plain http on loopback) and a 303 to ``/``. The token then works no more.
Every other request needs a live session, else 403; one that has it reaches the wrapped
application with the session's :class:`~pendo_webhooks.registry.Actor` in the environ,
where :func:`login_actor` finds it (the portal's ``actor`` callable). Sessions live in
memory, each until it has been idle for a while (12 hours by default).

Neither the token nor a session id is logged, or shown in a repr.

Strictly private.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from ..exceptions import ConfigurationError
from ..registry import Actor
from ._wsgi import SECURITY_HEADERS


if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


__all__ = [
    "ACTOR_ID",
    "ENVIRON_KEY",
    "LOGIN_PATH",
    "REFUSED",
    "SESSION_IDLE",
    "OneTimeLogin",
    "login_actor",
]

#: The id the portal's changes are audited under.
ACTOR_ID = "portal-cli"
#: Where the wrapper puts the logged-in :class:`~pendo_webhooks.registry.Actor`.
ENVIRON_KEY = "pendo_webhooks.portal.actor"
#: The path of the login link.
LOGIN_PATH = "/login"
#: How long a session lasts without a request, in seconds.
SESSION_IDLE = 12 * 3600.0
#: What a request without a session is told.
REFUSED = "Forbidden: open the login link printed by `pendo-webhooks portal`."
_USED = (
    "Forbidden: this login link was used already; it works once. Restart "
    "`pendo-webhooks portal` for a new one."
)
_OTHER_HOST = (
    "Forbidden: this portal answers only to the address it printed (the Host header names "
    "another)."
)
# The headers of the portal's own pages, on the wrapper's answers too; but no referrer at
# all from these (the login link's URL holds the token), not even to the portal itself.
_HEADERS = [
    *((name, value) for name, value in SECURITY_HEADERS if name != "Referrer-Policy"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]


def login_actor(environ: WSGIEnvironment) -> Actor | None:
    """
    The actor :class:`OneTimeLogin` let in, or ``None``: the portal's ``actor`` callable.

    A client cannot set this environ key: the server names the request's headers ``HTTP_*``.

    >>> login_actor({}) is None
    True
    >>> login_actor({ENVIRON_KEY: Actor("portal-cli", is_admin=True)}).id
    'portal-cli'
    """
    found = environ.get(ENVIRON_KEY)
    return found if isinstance(found, Actor) else None


def _digest(session_id: str) -> str:
    # Sessions are found by a hash of their id: a lookup's timing says nothing about an id.
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


class OneTimeLogin:
    """
    Wrap the WSGI application *app* so that only the holder of a one-time login link gets in.

    Args:
        app: The application behind the login (the portal).
        actor: Who a logged-in browser acts as (an administrator called ``portal-cli``).
        idle: Seconds a session lasts without a request.
        clock: Monotonic seconds, for the sessions' idle time.
        token: The login token; a fresh ``secrets.token_urlsafe(32)`` by default.
        hosts: If given, the only names a request's ``Host`` header may give (the port
            must be the server's): anything else is refused, the login link included.

    Raises:
        ConfigurationError: If *idle* is not a positive number.

    >>> def hello(environ, start_response):
    ...     start_response("200 OK", [("Content-Type", "text/plain")])
    ...     return [f"hello {login_actor(environ).id}".encode()]
    >>> login = OneTimeLogin(hello, token="t0ken")
    >>> login
    OneTimeLogin(sessions=0, token_used=False)
    >>> login.login_path
    '/login?token=t0ken'
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        actor: Actor = Actor(ACTOR_ID, is_admin=True),  # noqa: B008 - a frozen value
        idle: float = SESSION_IDLE,
        clock: Callable[[], float] = time.monotonic,
        token: str | None = None,
        hosts: Collection[str] | None = None,
    ) -> None:
        if isinstance(idle, bool) or not isinstance(idle, int | float) or not idle > 0:
            raise ConfigurationError("idle: must be a positive number of seconds")
        self._app = app
        self._actor = actor
        self._idle = float(idle)
        self._clock = clock
        self._token: str | None = secrets.token_urlsafe(32) if token is None else token
        self._path = f"{LOGIN_PATH}?token={self._token}"
        self._hosts = None if hosts is None else frozenset(h.lower() for h in hosts)
        self._lock = threading.Lock()
        # digest of a session id -> when it was last used (self._clock)
        self._sessions: dict[str, float] = {}

    def __repr__(self) -> str:
        with self._lock:
            count = len(self._sessions)
        return f"OneTimeLogin(sessions={count}, token_used={self._token is None})"

    @property
    def login_path(self) -> str:
        """
        The login link's path and query, to put after the server's address (once).
        """
        return self._path

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """
        Answer one request: the login link, or the application for a live session, or 403.
        """
        if self._hosts is not None and not _host_is(environ, self._hosts):
            return _refuse(start_response, _OTHER_HOST)
        session = self._live_session(environ)
        if environ.get("PATH_INFO") == LOGIN_PATH:
            if session is None:
                return self._login(environ, start_response)
            return _redirect(environ, start_response, [])  # logged in already
        if session is None:
            return _refuse(start_response, REFUSED)
        environ[ENVIRON_KEY] = self._actor
        return self._app(environ, start_response)

    # -- the login link ----------------------------------------------------------------------

    def _login(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        given = parse_qs(str(environ.get("QUERY_STRING", ""))).get("token", [""])[0]
        with self._lock:
            expected = self._token
            if expected is None:
                accepted = False
            else:
                accepted = hmac.compare_digest(given.encode(), expected.encode())
            if accepted:
                self._token = None  # once
                session_id = secrets.token_urlsafe(32)
                self._sessions[_digest(session_id)] = self._clock()
        if expected is None:
            return _refuse(start_response, _USED)
        if not accepted:
            return _refuse(start_response, REFUSED)
        # A session cookie (no Max-Age): the browser forgets it on quitting; this end, idle.
        cookie = f"{_cookie_name(environ)}={session_id}; HttpOnly; SameSite=Strict; Path=/"
        return _redirect(environ, start_response, [("Set-Cookie", cookie)])

    # -- sessions ----------------------------------------------------------------------------

    def _live_session(self, environ: WSGIEnvironment) -> str | None:
        """
        The digest of the request's live session, its idle time renewed; or ``None``.
        """
        session_id = _cookie(environ)
        if session_id is None:
            return None
        digest = _digest(session_id)
        now = self._clock()
        with self._lock:
            self._expire(now)
            if digest not in self._sessions:
                return None
            self._sessions[digest] = now
        return digest

    def _expire(self, now: float) -> None:
        for digest, last in list(self._sessions.items()):
            if now - last >= self._idle:
                del self._sessions[digest]


def _host_is(environ: WSGIEnvironment, hosts: frozenset[str]) -> bool:
    """
    Whether the request's ``Host`` names one of *hosts*, on the server's own port.

    A page of another site whose name was made to resolve to 127.0.0.1 (DNS rebinding)
    sends its own name: it is refused before anything else.

    >>> environ = {"HTTP_HOST": "127.0.0.1:8025", "SERVER_PORT": "8025"}
    >>> _host_is(environ, frozenset({"127.0.0.1"}))
    True
    >>> _host_is({**environ, "HTTP_HOST": "evil.example:8025"}, frozenset({"127.0.0.1"}))
    False
    >>> _host_is({"HTTP_HOST": "[::1]:8025", "SERVER_PORT": "8025"}, frozenset({"[::1]"}))
    True
    """
    name, colon, port = str(environ.get("HTTP_HOST", "")).lower().rpartition(":")
    if not colon or "]" in port:  # no port given: http's
        name, port = str(environ.get("HTTP_HOST", "")).lower(), "80"
    return name in hosts and port == str(environ.get("SERVER_PORT", ""))


def _cookie_name(environ: WSGIEnvironment) -> str:
    # Cookies do not tell ports apart: one name per port keeps two portals' sessions apart.
    return f"pendo_webhooks_portal_{environ.get('SERVER_PORT', '')}"


def _cookie(environ: WSGIEnvironment) -> str | None:
    """
    The value of the portal's cookie in the request's ``Cookie`` header, or ``None``.

    Read by hand: ``http.cookies`` drops every cookie after one it cannot parse, and the
    browser sends this host's cookies of every port (other applications' too).

    >>> _cookie({"HTTP_COOKIE": 'a"b=1; pendo_webhooks_portal_1=s1; c=2', "SERVER_PORT": "1"})
    's1'
    """
    wanted = _cookie_name(environ)
    for pair in str(environ.get("HTTP_COOKIE", "")).split(";"):
        name, _, value = pair.strip().partition("=")
        if name == wanted and value:
            return value
    return None


def _redirect(
    environ: WSGIEnvironment, start_response: StartResponse, extra: list[tuple[str, str]]
) -> Iterable[bytes]:
    location = f"{environ.get('SCRIPT_NAME', '')}/"
    headers = [("Location", location), ("Content-Length", "0"), *_HEADERS, *extra]
    start_response("303 See Other", headers)
    return [b""]


def _refuse(start_response: StartResponse, message: str) -> Iterable[bytes]:
    body = (message + "\n").encode()
    headers: list[tuple[str, str]] = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *_HEADERS,
    ]
    start_response("403 Forbidden", headers)
    return [body]
