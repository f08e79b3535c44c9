"""
The one-time login of ``pendo-webhooks portal`` (``pendo_webhooks.portal._login``), in-process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from pendo_webhooks.exceptions import ConfigurationError
from pendo_webhooks.portal._login import (
    ACTOR_ID,
    ENVIRON_KEY,
    REFUSED,
    SESSION_IDLE,
    OneTimeLogin,
    login_actor,
)
from pendo_webhooks.registry import Actor


TOKEN = "the-one-time-token"


class Clock:
    """
    Monotonic seconds that move only when told.
    """

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reply:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = int(status.split(maxsplit=1)[0])
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(found) <= 1, found
        return found[0] if found else None

    def cookie(self) -> tuple[str, str, list[str]]:
        """
        The cookie set: its name, its value and its attributes as written.
        """
        header = self.header("Set-Cookie")
        assert header is not None
        pair, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = pair.partition("=")
        return name, value, attributes


def app_seeing_actor(seen: list[Actor | None]) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen.append(login_actor(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"the portal"]

    return app


def call(
    app: Any,
    path: str,
    *,
    query: str = "",
    cookie: str | None = None,
    port: str = "8025",
    method: str = "GET",
    script_name: str = "",
    host: str | None = None,
) -> Reply:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PORT": port,
        "SCRIPT_NAME": script_name,
    }
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    if host is not None:
        environ["HTTP_HOST"] = host
    setup_testing_defaults(environ)
    got: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got.extend([status, headers])
        return lambda _: None

    body = b"".join(app(environ, start_response))
    return Reply(got[0], got[1], body)


@pytest.fixture(name="clock")
def _clock() -> Clock:
    return Clock()


@pytest.fixture(name="seen")
def _seen() -> list[Actor | None]:
    return []


@pytest.fixture(name="login")
def _login(clock: Clock, seen: list[Actor | None]) -> OneTimeLogin:
    return OneTimeLogin(app_seeing_actor(seen), token=TOKEN, clock=clock)


def log_in(login: OneTimeLogin) -> str:
    """
    Use the login link; return the ``Cookie`` header that the browser sends from then on.
    """
    reply = call(login, "/login", query=f"token={TOKEN}")
    assert reply.status == 303
    name, value, _ = reply.cookie()
    return f"{name}={value}"


def test_the_token_logs_in_once(login: OneTimeLogin, seen: list[Actor | None]) -> None:
    """
    The right token starts a session and redirects to the list; the session reaches the
    portal as the admin ``portal-cli``; the token then works no more, for anyone.
    """
    reply = call(login, "/login", query=f"token={TOKEN}")

    assert reply.status == 303
    assert reply.header("Location") == "/"
    assert reply.body == b""
    name, value, _ = reply.cookie()
    assert name == "pendo_webhooks_portal_8025"
    assert len(value) >= 43  # token_urlsafe(32)
    assert value != TOKEN

    page = call(login, "/", cookie=f"{name}={value}")
    assert (page.status, page.body) == (200, b"the portal")
    assert seen == [Actor(ACTOR_ID, is_admin=True)]

    again = call(login, "/login", query=f"token={TOKEN}")
    assert again.status == 403
    assert again.header("Set-Cookie") is None
    assert b"used already" in again.body
    assert TOKEN.encode() not in again.body
    assert repr(login) == "OneTimeLogin(sessions=1, token_used=True)"


def test_the_cookie_is_httponly_samesite_strict_and_not_secure(login: OneTimeLogin) -> None:
    """
    HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
    Path=/; not Secure, as the portal is plain http on loopback; a session cookie.
    """
    _, _, attributes = call(login, "/login", query=f"token={TOKEN}").cookie()

    assert sorted(attributes) == ["HttpOnly", "Path=/", "SameSite=Strict"]


@pytest.mark.parametrize(
    "query",
    [
        "token=wrong",
        "token=" + TOKEN[:-1],
        "token=" + TOKEN + "x",
        "",
        "token=",
        "other=" + TOKEN,
    ],
)
def test_a_wrong_token_is_refused(
    login: OneTimeLogin, seen: list[Actor | None], query: str
) -> None:
    """
    Any other token gets 403, no cookie, and the right token still works afterwards.
    """
    reply = call(login, "/login", query=query)

    assert reply.status == 403
    assert reply.header("Set-Cookie") is None
    assert reply.body.decode() == REFUSED + "\n"
    assert "open the login link printed by `pendo-webhooks portal`" in REFUSED
    assert seen == []
    assert call(login, "/login", query=f"token={TOKEN}").status == 303


@pytest.mark.parametrize(
    "cookie",
    [
        None,
        "",
        "pendo_webhooks_portal_8025=made-up",
        "pendo_webhooks_portal_8025=",
        "something=else",
        'pendo_webhooks_portal_8025="unbalanced',
        "pendo_webhooks_portal_8026=a-session-of-another-port",
    ],
)
def test_no_session_is_refused(
    login: OneTimeLogin, seen: list[Actor | None], cookie: str | None
) -> None:
    """
    Without a live session every path is 403 (static files, POSTs): the portal sees nothing.
    """
    log_in(login)  # someone else's session exists
    for path, method in [("/", "GET"), ("/static/portal.css", "GET"), ("/new", "POST")]:
        reply = call(login, path, cookie=cookie, method=method)

        assert reply.status == 403
        assert reply.header("Content-Type") == "text/plain; charset=utf-8"
        assert reply.body.decode() == REFUSED + "\n"
    assert seen == []


def test_refusals_carry_the_portals_security_headers(login: OneTimeLogin) -> None:
    """
    The wrapper's own answers (403 and 303) are framed, sniffed and cached no more than the
    portal's pages, and send no referrer (the login link's URL holds the token).
    """
    for reply in (call(login, "/"), call(login, "/login", query=f"token={TOKEN}")):
        assert reply.header("X-Frame-Options") == "DENY"
        assert reply.header("X-Content-Type-Options") == "nosniff"
        assert reply.header("Referrer-Policy") == "no-referrer"
        assert reply.header("Cache-Control") == "no-store"
        assert "frame-ancestors 'none'" in (reply.header("Content-Security-Policy") or "")


def test_sessions_expire_when_idle(
    login: OneTimeLogin, clock: Clock, seen: list[Actor | None]
) -> None:
    """
    Each request renews a session; one idle for 12 hours is gone.
    """
    cookie = log_in(login)

    clock.now += SESSION_IDLE - 1
    assert call(login, "/", cookie=cookie).status == 200  # renewed here
    clock.now += SESSION_IDLE - 1
    assert call(login, "/", cookie=cookie).status == 200
    clock.now += SESSION_IDLE
    assert call(login, "/", cookie=cookie).status == 403
    clock.now += 1
    assert call(login, "/", cookie=cookie).status == 403
    assert len(seen) == 2
    assert repr(login) == "OneTimeLogin(sessions=0, token_used=True)"


def test_a_custom_idle_time(clock: Clock, seen: list[Actor | None]) -> None:
    login = OneTimeLogin(app_seeing_actor(seen), token=TOKEN, clock=clock, idle=60)
    cookie = log_in(login)

    clock.now += 59.5
    assert call(login, "/", cookie=cookie).status == 200
    clock.now += 60
    assert call(login, "/", cookie=cookie).status == 403


def test_the_login_link_with_a_session_goes_to_the_list(login: OneTimeLogin) -> None:
    """
    A logged-in browser that opens the (used) link again is sent to the list, not refused.
    """
    cookie = log_in(login)

    reply = call(login, "/login", query=f"token={TOKEN}", cookie=cookie)

    assert reply.status == 303
    assert reply.header("Location") == "/"
    assert reply.header("Set-Cookie") is None


def test_the_redirect_follows_the_mount_point(login: OneTimeLogin) -> None:
    reply = call(login, "/login", query=f"token={TOKEN}", script_name="/portal")

    assert reply.header("Location") == "/portal/"


def test_two_portals_keep_their_cookies_apart(seen: list[Actor | None]) -> None:
    """
    Browsers send a host's cookies to all its ports: each portal's cookie is named by its
    port, so logging in to one does not log out of the other.
    """
    first = OneTimeLogin(app_seeing_actor(seen), token=TOKEN)
    second = OneTimeLogin(app_seeing_actor(seen), token=TOKEN)
    name, value, _ = call(first, "/login", query=f"token={TOKEN}", port="8025").cookie()
    other, _, _ = call(second, "/login", query=f"token={TOKEN}", port="8026").cookie()

    assert (name, other) == ("pendo_webhooks_portal_8025", "pendo_webhooks_portal_8026")
    assert call(first, "/", cookie=f"{name}={value}", port="8025").status == 200
    assert call(second, "/", cookie=f"{name}={value}", port="8026").status == 403


def test_the_token_is_random_and_never_in_the_repr(seen: list[Actor | None]) -> None:
    a, b = OneTimeLogin(app_seeing_actor(seen)), OneTimeLogin(app_seeing_actor(seen))
    token = a.login_path.removeprefix("/login?token=")

    assert len(token) >= 43
    assert a.login_path != b.login_path
    assert token not in repr(a)
    assert repr(a) == "OneTimeLogin(sessions=0, token_used=False)"


def test_only_one_of_many_racing_logins_wins(login: OneTimeLogin) -> None:
    """
    The same link opened at once from several places: exactly one gets a session.
    """
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def use() -> None:
        barrier.wait(timeout=10)
        statuses.append(call(login, "/login", query=f"token={TOKEN}").status)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(statuses) == [303] + [403] * 7


def test_a_custom_actor(clock: Clock, seen: list[Actor | None]) -> None:
    login = OneTimeLogin(app_seeing_actor(seen), token=TOKEN, actor=Actor("me", is_admin=True))
    call(login, "/", cookie=log_in(login))

    assert seen == [Actor("me", is_admin=True)]


def test_login_actor_ignores_anything_else() -> None:
    assert login_actor({ENVIRON_KEY: "portal-cli"}) is None


@pytest.mark.parametrize("idle", [0, -1, True, "60", float("nan")])
def test_idle_must_be_a_positive_number(seen: list[Actor | None], idle: Any) -> None:
    with pytest.raises(ConfigurationError, match="idle: must be a positive number"):
        OneTimeLogin(app_seeing_actor(seen), idle=idle)


def test_other_cookies_of_the_host_do_not_hide_the_session(login: OneTimeLogin) -> None:
    """
    The browser sends every cookie of 127.0.0.1, whatever the port: one another application
    set, even one that does not parse, does not hide the portal's.
    """
    cookie = log_in(login)

    reply = call(login, "/", cookie=f'theirs="{{\\"json\\": 1}}; a b=1;; {cookie}; last=1')

    assert reply.status == 200


def test_only_the_printed_address_is_answered(clock: Clock, seen: list[Actor | None]) -> None:
    """
    With *hosts*, a request naming another host (a DNS-rebound page of another site) or
    another port is refused before the login link or a session is even looked at.
    """
    login = OneTimeLogin(
        app_seeing_actor(seen), token=TOKEN, clock=clock, hosts={"127.0.0.1", "LocalHost"}
    )
    link = f"token={TOKEN}"

    assert call(login, "/login", query=link, host="evil.example:8025").status == 403
    assert call(login, "/login", query=link, host="127.0.0.1:8026").status == 403
    assert call(login, "/login", query=link, host="127.0.0.1").status == 403  # port 80
    assert call(login, "/login", query=link).status == 403  # no Host at all
    assert repr(login) == "OneTimeLogin(sessions=0, token_used=False)"
    name, value, _ = call(login, "/login", query=link, host="127.0.0.1:8025").cookie()
    cookie = f"{name}={value}"
    assert call(login, "/", cookie=cookie, host="localhost:8025").status == 200
    refused = call(login, "/", cookie=cookie, host="evil.example:8025")
    assert refused.status == 403
    assert b"answers only to the address it printed" in refused.body
    assert len(seen) == 1
    on_80 = call(login, "/", cookie=cookie, host="127.0.0.1", port="80")
    assert on_80.status == 403  # another port: another cookie name
