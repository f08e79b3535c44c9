"""
The admins' settings page (issue 17): the WSGI application, called in-process.

Every page and action over the in-memory and the SQLite store; who may see what; CSRF and
cross-site refusals; escaping; secrets shown once; mounting under a prefix; the headers of
every response.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import io
import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.events import OperationsCategory
from pendo_webhooks.exceptions import ConfigurationError, PermissionDenied
from pendo_webhooks.portal._views import BODY_SHOWN, shown_body
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event
from pendo_webhooks.transports import TransportResponse


portal_module = pytest.importorskip("pendo_webhooks.portal")
Portal = portal_module.Portal

ADMIN = Actor("admin-1", is_admin=True)
OTHER_ADMIN = Actor("admin-2", is_admin=True)
USER = Actor("user-1")
KEY = b"k" * 32

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    text: str

    def token(self) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.text)
        assert found is not None, "no CSRF token on the page"
        return found.group(1)

    def region(self, role: str) -> str:
        found = re.search(rf'<div[^>]*role="{role}"[^>]*>(.*?)</div>', self.text, re.S)
        assert found is not None, f"no {role} region"
        return _text(found.group(1))


class Client:
    """
    Calls the portal the way a WSGI server does, as one actor.
    """

    def __init__(self, portal: Any, actor: Actor | None, script_name: str = "") -> None:
        self.portal = portal
        self.actor = actor
        self.script_name = script_name

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        query: str = "",
        headers: dict[str, str] | None = None,
        content_type: str | None = "application/x-www-form-urlencoded",
        length: str | None = None,
    ) -> Result:
        from wsgiref.util import setup_testing_defaults  # noqa: PLC0415

        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": self.script_name,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "wsgi.input": io.BytesIO(body),
            "test.actor": self.actor,
        }
        if method == "POST":
            if content_type is not None:
                environ["CONTENT_TYPE"] = content_type
            environ["CONTENT_LENGTH"] = str(len(body)) if length is None else length
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        setup_testing_defaults(environ)
        seen: list[Any] = []

        def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
            seen.append((status, response_headers))

        chunks = self.portal(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:  # as a WSGI server does
                close()
        status, response_headers = seen[0]
        names = [name.lower() for name, _ in response_headers]
        assert len(names) == len(set(names)), "a header sent twice"
        return Result(int(status.split()[0]), dict(response_headers), data.decode("utf-8"))

    def get(self, path: str, query: str = "", **kwargs: Any) -> Result:
        return self.request("GET", path, query=query, **kwargs)

    def post(
        self,
        path: str,
        fields: dict[str, Any] | None = None,
        *,
        token: str | None = "auto",  # noqa: S107 - a placeholder, not a password
        **kwargs: Any,
    ) -> Result:
        data = dict(fields or {})
        if token == "auto":
            data["csrf_token"] = self.portal._tokens.issue(self.actor.id if self.actor else "x")
        elif token is not None:
            data["csrf_token"] = token
        return self.request("POST", path, body=urlencode(data, doseq=True).encode(), **kwargs)


def _actor_of(environ: dict[str, Any]) -> Actor | None:
    return environ.get("test.actor")


@dataclass
class Site:
    registry: WebhookRegistry
    dispatcher: Dispatcher
    transport: RecordingTransport
    clock: FrozenClock
    portal: Any

    def client(self, actor: Actor | None = ADMIN, script_name: str = "") -> Client:
        return Client(self.portal, actor, script_name)

    def hook(self, name: str = "NPS to Zapier", **kwargs: Any) -> Any:
        fields: dict[str, Any] = {
            "url": "https://hooks.example.com/catch/1?token=t0ps3cret",
            "categories": {"npsSubmitted"},
        }
        fields.update(kwargs)
        return self.registry.create(ADMIN, name=name, **fields)


def _site(storage: Storage, statuses: list[int] | None = None, **portal_args: Any) -> Site:
    clock = FrozenClock()
    registry = WebhookRegistry(storage, clock=clock)
    transport = RecordingTransport(statuses or [200] * 50)
    dispatcher = Dispatcher(registry, transport=transport, clock=clock, sleep=clock.sleep)
    portal = Portal(dispatcher, _actor_of, csrf_key=KEY, **portal_args)
    return Site(registry, dispatcher, transport, clock, portal)


@pytest.fixture(name="site", params=["memory", "sqlite"])
def _site_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    if request.param == "memory":
        yield _site(InMemoryStorage())
    else:
        with SQLiteStorage(tmp_path / "portal.sqlite3") as storage:
            yield _site(storage)


@pytest.fixture(name="memory_site")
def _memory_site() -> Site:
    return _site(InMemoryStorage())


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _create_form(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "Guides to Zapier",
        "kind": "url",
        "url": "https://hooks.example.com/catch/2",
        "write_key": "",
        "secret": "",
        "categories": ["guideDisplayed", "npsSubmitted"],
        "filters": "",
    }
    fields.update(overrides)
    return fields


# -- the list and the skeleton ------------------------------------------------------------------


def test_the_list_shows_every_webhook_active_and_inactive(site: Site) -> None:
    """
    The list has one row per webhook: its name links to it, type, destination, status, health.
    """
    first = site.hook()
    second = site.hook("Segment source", kind="segment", url=None, write_key="wk-secret-123")
    site.registry.enable(ADMIN, first.id)
    page = site.client().get("/")
    assert page.status == 200
    assert "<h1>Webhooks</h1>" in page.text
    assert f'href="/webhooks/{first.id}"' in page.text
    assert f'href="/webhooks/{second.id}"' in page.text
    text = _text(page.text)
    assert "NPS to Zapier URL https://hooks.example.com/catch/1?… Active healthy" in text
    assert "Segment source Segment.com https://api.segment.io Inactive healthy" in text
    assert "t0ps3cret" not in page.text
    assert "wk-secret-123" not in page.text
    assert 'href="/new"' in page.text
    assert "New webhook" in text
    assert '<th scope="col">Name</th>' in page.text


def test_an_empty_list_says_so(site: Site) -> None:
    """
    Without webhooks the page says there are none, and still links to the create form.
    """
    page = site.client().get("/")
    assert "No webhooks yet." in page.text
    assert "<table" not in page.text


def test_the_page_is_accessible_in_structure(site: Site) -> None:
    """
    lang, one h1, a skip link to main, the stylesheet, no script, no positive tabindex.
    """
    site.hook()
    for path in ("/", "/new"):
        page = site.client().get(path)
        assert '<html lang="en">' in page.text
        assert page.text.count("<h1") == 1
        assert '<a class="skip-link" href="#main">' in page.text
        assert '<main id="main"' in page.text
        assert '<link rel="stylesheet" href="/static/portal.css">' in page.text
        assert "<script" not in page.text
        assert not re.search(r'tabindex="[1-9]', page.text)


def test_the_stylesheet_is_served_to_anyone_with_focus_styles(site: Site) -> None:
    """
    The CSS is public (the 403 page uses it), typed text/css, and shows focus.
    """
    css = site.client(None).get("/static/portal.css")
    assert css.status == 200
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    assert ":focus" in css.text
    assert "outline" in css.text
    head = site.client(None).request("HEAD", "/static/portal.css")
    assert head.status == 200
    assert head.text == ""
    assert int(head.headers["Content-Length"]) == len(css.text.encode())


def test_a_head_request_gets_the_headers_only(site: Site) -> None:
    """
    HEAD on a page answers as GET would, without the body.
    """
    page = site.client().request("HEAD", "/")
    assert page.status == 200
    assert page.text == ""
    assert int(page.headers["Content-Length"]) > 0


def test_an_empty_path_info_is_the_list(site: Site) -> None:
    """
    Mounted at /admin/webhooks, a request for exactly that (PATH_INFO empty) is the list.
    """
    page = site.client(script_name="/admin/webhooks").get("")
    assert page.status == 200
    assert 'href="/admin/webhooks/new"' in page.text


# -- create ---------------------------------------------------------------------------------


def _labels(page: str) -> dict[str, str]:
    """
    Each label's text by the id it is for.
    """
    return {
        for_: _text(text).strip()
        for for_, text in re.findall(r'<label for="([^"]+)">(.*?)</label>', page, re.S)
    }


def test_the_create_form_labels_every_field(site: Site) -> None:
    """
    Every input and textarea has a <label for>, with the spec's texts; groups are fieldsets.
    """
    page = site.client().get("/new")
    assert page.status == 200
    labels = _labels(page.text)
    ids = re.findall(r'<(?:input|textarea)[^>]* id="([^"]+)"', page.text)
    assert ids
    assert set(ids) == set(labels)
    assert labels["name"] == "Name"
    assert labels["kind-url"] == "URL"
    assert labels["kind-segment"] == "Segment.com"
    assert labels["url"] == "Destination URL"
    assert labels["write_key"] == "Segment write key"
    assert labels["secret"] == "Secret"
    assert labels["filters"] == "PII filters"
    assert [labels[i] for i in ids if i.startswith("event-")] == [
        "Guide displayed",
        "Track event received",
        "NPS displayed",
        "NPS submitted",
        "Poll displayed",
        "Poll submitted",
        "Visitor first seen",
        "Account first seen",
        "Parent-child account first seen",
    ]
    assert "<legend>Type</legend>" in page.text
    assert "<legend>Events</legend>" in page.text
    text = _text(page.text)
    assert "Leave blank to generate one" in text
    assert "NPS and poll events need agent version 2.33.0 or later." in text
    assert "payloads carry visitor and account data" in text
    assert "Create webhook" in text
    assert 'aria-describedby="secret-hint"' in page.text


def test_creating_shows_the_generated_secret_once(site: Site) -> None:
    """
    The create answer is the only page that shows the secret; the webhook's page never does.
    """
    client = site.client()
    form = client.get("/new")
    page = client.post("/new", _create_form(), token=form.token())
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "<h1>Webhook created</h1>" in page.text
    (hook,) = site.registry.list(ADMIN)
    secret = hook.secret.reveal()
    assert secret.startswith("whsec_")
    assert f'<code class="secret" id="secret-value">{secret}</code>' in page.text
    assert "<title>Webhook created \u2013 Webhooks</title>" in page.text
    assert {str(c) for c in hook.categories} == {"guideDisplayed", "npsSubmitted"}
    assert not hook.enabled
    assert f'href="/webhooks/{hook.id}"' in page.text
    assert "Webhook created (inactive)." in page.region("status")
    for path in ("/", f"/webhooks/{hook.id}", f"/webhooks/{hook.id}/edit"):
        assert secret not in client.get(path).text


def test_a_typed_secret_is_kept_and_shown_once(site: Site) -> None:
    """
    Any text is a secret (special characters too), stored as typed and shown escaped.
    """
    page = site.client().post("/new", _create_form(secret="any text & <chars>!"))
    (hook,) = site.registry.list(ADMIN)
    assert hook.secret.reveal() == "any text & <chars>!"
    assert "any text &amp; &lt;chars&gt;!" in page.text


def test_a_segment_webhook_keeps_its_write_key_out_of_every_page(site: Site) -> None:
    """
    A Segment webhook is made with its write key, which no page ever shows.
    """
    client = site.client()
    form = _create_form(kind="segment", url="", write_key="wk-SECRET-42", filters="hash:visitorId")
    page = client.post("/new", form)
    assert page.status == 200
    (hook,) = site.registry.list(ADMIN)
    assert hook.write_key.reveal() == "wk-SECRET-42"
    assert [str(f) for f in hook.filters] == ["hash:visitorId"]
    assert "Segment webhooks authenticate with their write key" in page.text
    for path in ("/", f"/webhooks/{hook.id}", f"/webhooks/{hook.id}/edit"):
        shown = client.get(path).text
        assert "wk-SECRET-42" not in shown
    assert "Write key set" in _text(client.get(f"/webhooks/{hook.id}").text)


@pytest.mark.parametrize(
    ("fields", "message", "anchor"),
    [
        ({"name": ""}, "Name: must not be empty", "name"),
        ({"url": "http://hooks.example.com/x"}, "Destination URL:", "url"),
        ({"url": ""}, "Destination URL: is required for URL webhooks", "url"),
        ({"categories": []}, "Events: must name at least one event category", "events"),
        ({"write_key": "wk"}, "Segment write key: is only for Segment webhooks", "write_key"),
        ({"kind": "segment"}, "Destination URL: is only for URL webhooks", "url"),
        ({"kind": "segment", "url": ""}, "Segment write key: is required", "write_key"),
        ({"kind": "segment", "url": "", "write_key": "wk"}, "Secret: Segment", "secret"),
        ({"kind": "ftp"}, "Type: choose URL or Segment.com", "kind"),
        ({"filters": "nonsense"}, "PII filters: 'nonsense' is not", "filters"),
        ({"filters": "drop:properties.nps.reason"}, "PII filters:", "filters"),
    ],
)
def test_a_refused_create_shows_the_form_again_with_the_error(
    memory_site: Site, fields: dict[str, Any], message: str, anchor: str
) -> None:
    """
    400, the registry's reason in role=alert, linked to its field; values kept, secrets not.
    """
    form = _create_form(name="Kept name", secret="typed-secret-99", categories=["guideDisplayed"])
    form.update(fields)
    page = memory_site.client().post("/new", form)
    assert page.status == 400
    assert message in page.region("alert")
    assert 'role="alert" id="form-error"' in page.text
    field = re.search(rf'<[^>]* id="{anchor}"[^>]*>', page.text)
    assert field is not None
    assert "form-error" in field.group(0)
    assert "typed-secret-99" not in page.text
    assert "wk" not in re.findall(r'id="write_key"[^>]*>', page.text)[0]
    if "name" not in fields:
        assert 'value="Kept name"' in page.text
    assert memory_site.registry.list(ADMIN) == []


def test_a_refused_create_keeps_the_ticked_events_and_filters(memory_site: Site) -> None:
    """
    The events ticked and the filters typed come back as they were.
    """
    page = memory_site.client().post(
        "/new", _create_form(name="", categories=["pollSubmitted"], filters="drop:userAgent")
    )
    assert page.status == 400
    assert re.search(r'id="event-pollSubmitted"[^>]* checked', page.text)
    assert not re.search(r'id="event-npsSubmitted"[^>]* checked', page.text)
    assert ">drop:userAgent</textarea>" in page.text
    assert re.search(r'id="kind-url"[^>]* checked', page.text)


# -- who may see what -----------------------------------------------------------------------

_GET_ROUTES = [
    "/",
    "/new",
    "/webhooks/{hook}",
    "/webhooks/{hook}/edit",
    "/webhooks/{hook}/delete",
    "/deliveries/{delivery}",
    "/nowhere",
    "/webhooks/wh_unknown",
]
_POST_ROUTES = [
    "/new",
    "/webhooks/{hook}/test",
    "/webhooks/{hook}/enable",
    "/webhooks/{hook}/disable",
    "/webhooks/{hook}/edit",
    "/webhooks/{hook}/rotate",
    "/webhooks/{hook}/delete",
    "/deliveries/{delivery}/redeliver",
    "/webhooks/{hook}/redeliver-failed",
    "/",
]


def _one_delivery(site: Site) -> tuple[Any, str]:
    hook = site.hook("Secret project <b>x</b>")
    site.registry.enable(ADMIN, hook.id)
    result = site.dispatcher.dispatch(sample_event("npsSubmitted"))
    return hook, result.for_webhook(hook.id).delivery_id


def _state(site: Site) -> list[Any]:
    hooks = site.registry.list(ADMIN)
    return [(h, site.dispatcher.deliveries(ADMIN, webhook_id=h.id)) for h in hooks]


@pytest.mark.parametrize("who", [None, USER], ids=["nobody", "not-an-admin"])
def test_nobody_but_an_admin_sees_anything(site: Site, who: Actor | None) -> None:
    """
    Every route, GET and POST (with a valid token), answers 403 without a word about webhooks.
    """
    hook, delivery = _one_delivery(site)
    before = _state(site)
    client = site.client(who)
    sent = len(site.transport.requests)
    pages = [client.get(p.format(hook=hook.id, delivery=delivery)) for p in _GET_ROUTES]
    token = site.portal._tokens.issue(who.id) if who else None
    pages += [
        client.post(p.format(hook=hook.id, delivery=delivery), _create_form(), token=token)
        for p in _POST_ROUTES
    ]
    for page in pages:
        assert page.status == 403
        assert "<h1>Forbidden</h1>" in page.text
        assert "<title>Forbidden</title>" in page.text
        assert "webhook" not in page.text.lower()
        assert hook.id not in page.text
        assert delivery not in page.text
        assert "Secret project" not in page.text
        assert page.headers["Content-Security-Policy"] == CSP
    assert _state(site) == before
    assert len(site.transport.requests) == sent


class _ReadOnly:
    """A host policy: readers may look, only admins may change."""

    def check(self, actor: Actor, action: str, webhook_id: str | None) -> None:
        if not actor.is_admin and not (action == "read" and "webhooks:read" in actor.roles):
            raise PermissionDenied(f"{actor.id} may not {action}")


def test_a_reader_may_look_but_not_change(tmp_path: Path) -> None:
    """
    The registry's policy decides: a reader sees the pages, and gets 403 for every change.
    """
    storage = InMemoryStorage()
    clock = FrozenClock()
    registry = WebhookRegistry(storage, clock=clock, policy=_ReadOnly())
    transport = RecordingTransport([200] * 10)
    dispatcher = Dispatcher(registry, transport=transport, clock=clock, sleep=clock.sleep)
    site = Site(
        registry, dispatcher, transport, clock, Portal(dispatcher, _actor_of, csrf_key=KEY)
    )
    hook, delivery = _one_delivery(site)
    site.dispatcher.run_due()
    reader = site.client(Actor("reader", roles={"webhooks:read"}))
    assert reader.get("/").status == 200
    assert reader.get(f"/webhooks/{hook.id}").status == 200
    assert reader.get(f"/deliveries/{delivery}").status == 200
    before = _state(site)
    for path in (
        "/webhooks/{hook}/test",
        "/webhooks/{hook}/disable",
        "/webhooks/{hook}/delete",
        "/webhooks/{hook}/rotate",
        "/deliveries/{delivery}/redeliver",
    ):
        page = reader.post(path.format(hook=hook.id, delivery=delivery))
        assert page.status == 403
        assert "Secret project" not in page.text
    assert reader.post("/new", _create_form()).status == 403
    assert _state(site) == before


# -- CSRF and cross-site requests -----------------------------------------------------------


def _csrf_refused(page: Result) -> None:
    assert page.status == 403
    assert "CSRF token missing or invalid" in page.text


@pytest.mark.parametrize(
    "token",
    [None, "", "garbage", "12.34", "x1.abc", "٣.abc", "1" * 200, "1767225600.", "1767225600.zz"],
    ids=[
        "missing",
        "empty",
        "garbage",
        "wrong-mac",
        "not-digits",
        "non-ascii",
        "long",
        "no-mac",
        "bad-mac",
    ],
)
def test_a_form_without_a_valid_token_is_refused(site: Site, token: str | None) -> None:
    """
    A POST without its token, or with a forged one, is 403 and changes nothing.
    """
    hook = site.hook()
    page = site.client().post(f"/webhooks/{hook.id}/enable", token=token)
    _csrf_refused(page)
    assert not site.registry.get(ADMIN, hook.id).enabled


def test_a_token_expires_after_twelve_hours(site: Site) -> None:
    """
    A form left open 12 hours still goes through; a minute more and it is refused.
    """
    hook = site.hook()
    client = site.client()
    token = client.get(f"/webhooks/{hook.id}").token()
    site.clock.advance(timedelta(hours=12))
    assert client.post(f"/webhooks/{hook.id}/enable", token=token).status == 303
    site.clock.advance(timedelta(minutes=1))
    _csrf_refused(client.post(f"/webhooks/{hook.id}/disable", token=token))
    assert site.registry.get(ADMIN, hook.id).enabled


def test_a_token_from_the_future_is_refused(site: Site) -> None:
    """
    A token issued more than a few minutes ahead (a forged issue time) is refused.
    """
    hook = site.hook()
    client = site.client()
    soon = _token_at(site, ADMIN, timedelta(minutes=4))
    assert client.post(f"/webhooks/{hook.id}/enable", token=soon).status == 303
    later = _token_at(site, ADMIN, timedelta(minutes=6))
    _csrf_refused(client.post(f"/webhooks/{hook.id}/disable", token=later))
    assert site.registry.get(ADMIN, hook.id).enabled


def _token_at(site: Site, actor: Actor, ahead: timedelta) -> str:
    issued = int((site.clock() + ahead).timestamp())
    mac = hmac.new(KEY, f"{actor.id}\0{issued}".encode(), hashlib.sha256).hexdigest()
    return f"{issued}.{mac}"


def test_a_token_is_bound_to_its_actor_and_its_key(site: Site) -> None:
    """
    Another admin's token, or one made with another key, is refused.
    """
    hook = site.hook()
    theirs = site.portal._tokens.issue(OTHER_ADMIN.id)
    _csrf_refused(site.client().post(f"/webhooks/{hook.id}/enable", token=theirs))
    other = Portal(site.dispatcher, _actor_of, csrf_key=b"o" * 32)
    _csrf_refused(
        site.client().post(f"/webhooks/{hook.id}/enable", token=other._tokens.issue(ADMIN.id))
    )
    random_key = Portal(site.dispatcher, _actor_of)
    _csrf_refused(
        site.client().post(f"/webhooks/{hook.id}/enable", token=random_key._tokens.issue(ADMIN.id))
    )
    assert not site.registry.get(ADMIN, hook.id).enabled


def test_portals_sharing_a_key_accept_each_others_tokens(site: Site) -> None:
    """
    Several processes serving the portal with one key take each other's forms.
    """
    hook = site.hook()
    twin = Portal(site.dispatcher, _actor_of, csrf_key=KEY)
    token = Client(twin, ADMIN).get(f"/webhooks/{hook.id}").token()
    assert site.client().post(f"/webhooks/{hook.id}/enable", token=token).status == 303


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "null", "Sec-Fetch-Site": "none"},
        {"Origin": "http://127.0.0.1:8080"},
        {"Origin": "http://[::1"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_form_sent_from_another_site_is_refused(site: Site, headers: dict[str, str]) -> None:
    """
    An Origin other than the own host, or Sec-Fetch-Site cross-site, is 403: nothing changes.
    """
    hook = site.hook()
    page = site.client().post(f"/webhooks/{hook.id}/enable", headers=headers)
    assert page.status == 403
    assert "sent from another site" in page.text
    assert not site.registry.get(ADMIN, hook.id).enabled


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1"},
        {"Origin": "https://127.0.0.1", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        {"Host": "admin.example.com", "Origin": "https://Admin.Example.com"},
    ],
)
def test_a_form_from_the_page_itself_is_taken(site: Site, headers: dict[str, str]) -> None:
    """
    The browser's own Origin (the Host it sent, any scheme behind a TLS proxy) goes through.
    """
    hook = site.hook()
    page = site.client().post(f"/webhooks/{hook.id}/enable", headers=headers)
    assert page.status == 303


# -- headers, errors, mounting ------------------------------------------------------------


def test_every_response_carries_the_security_headers(site: Site) -> None:
    """
    Pages, redirects, the stylesheet and every error page send the same security headers.
    """
    hook = site.hook()
    client = site.client()
    responses = [
        client.get("/"),
        client.get("/new"),
        client.get(f"/webhooks/{hook.id}"),
        client.post(f"/webhooks/{hook.id}/enable"),
        client.get("/static/portal.css"),
        site.client(None).get("/"),
        site.client(USER).get("/"),
        client.get("/missing"),
        client.get("/webhooks/wh_nope"),
        client.request("DELETE", "/"),
        client.post(f"/webhooks/{hook.id}/enable", token=None),
        client.post("/new", length=str(10**9)),
        client.post("/new", _create_form(name="")),
    ]
    assert [r.status for r in responses] == [
        200,
        200,
        200,
        303,
        200,
        403,
        403,
        404,
        404,
        405,
        403,
        413,
        400,
    ]
    for response in responses:
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        if response.headers["Content-Type"].startswith("text/html"):
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert response.headers["Cache-Control"] == "no-store"
        assert int(response.headers["Content-Length"]) == len(response.text.encode())


def test_unknown_pages_and_ids_are_404(site: Site) -> None:
    """
    An unknown path, webhook id or delivery id is 404 for an admin, with a link home.
    """
    client = site.client()
    for path in (
        "/nowhere",
        "/webhooks/wh_nope",
        "/webhooks/wh_nope/edit",
        "/webhooks/wh_nope/delete",
        "/deliveries/dlv_nope",
        "/webhooks/a/b/c",
        "/webhooks/" + "x" * 201,
    ):
        page = client.get(path)
        assert page.status == 404, path
        assert "<h1>Not found</h1>" in page.text
        assert 'href="/"' in page.text
    for path in (
        "/webhooks/wh_nope/enable",
        "/webhooks/wh_nope/edit",
        "/deliveries/dlv_nope/redeliver",
        "/webhooks/wh_nope/delete",
    ):
        assert client.post(path, _create_form()).status == 404, path


def test_a_wrong_method_is_405_with_allow(site: Site) -> None:
    """
    A method a page does not take is 405, naming those it does.
    """
    hook = site.hook()
    client = site.client()
    page = client.get(f"/webhooks/{hook.id}/enable")
    assert page.status == 405
    assert page.headers["Allow"] == "POST"
    page = client.post(f"/webhooks/{hook.id}")
    assert page.status == 405
    assert page.headers["Allow"] == "GET, HEAD"
    assert client.request("PUT", "/new").headers["Allow"] == "GET, POST, HEAD"
    page = client.post("/static/portal.css")
    assert page.status == 405
    assert page.headers["Allow"] == "GET, HEAD"
    assert not site.registry.get(ADMIN, hook.id).enabled


def test_bodies_are_capped_and_must_be_forms(site: Site) -> None:
    """
    Over 64 KiB (413, unread), without a length (411), another type (415), bad bytes (400).
    """
    client = site.client()
    big = urlencode(_create_form(filters="x" * 70_000)).encode()
    assert client.request("POST", "/new", body=big).status == 413
    assert client.post("/new", _create_form(), length="").status == 411
    assert client.post("/new", _create_form(), length="-1").status == 411
    assert client.post("/new", _create_form(), length="\u00b2").status == 411
    assert client.post("/new", _create_form(), content_type="application/json").status == 415
    assert client.post("/new", _create_form(), content_type=None).status == 415
    token = site.portal._tokens.issue(ADMIN.id)
    assert (
        client.request("POST", "/new", body=b"name=%ff&csrf_token=" + token.encode()).status == 400
    )
    assert client.request("POST", "/new", body=b"\xff").status == 400
    many = "&".join(f"f{i}=1" for i in range(300)).encode()
    assert client.request("POST", "/new", body=many).status == 400
    charset = client.post(
        "/new", _create_form(), content_type="application/x-www-form-urlencoded; charset=utf-8"
    )
    assert charset.status == 200
    assert site.registry.list(ADMIN)[0].name == "Guides to Zapier"


def test_mounted_under_a_prefix_every_link_and_redirect_has_it(site: Site) -> None:
    """
    Under SCRIPT_NAME=/admin/webhooks, links, form actions, the stylesheet and redirects say so.
    """
    hook, delivery = _one_delivery(site)
    client = site.client(script_name="/admin/webhooks")
    pages = [
        client.get(p)
        for p in (
            "/",
            "/new",
            f"/webhooks/{hook.id}",
            f"/webhooks/{hook.id}/edit",
            f"/webhooks/{hook.id}/delete",
            f"/deliveries/{delivery}",
        )
    ]
    for page in pages:
        assert page.status == 200
        targets = re.findall(r'(?:href|action)="([^"#]+)"', page.text)
        assert targets
        assert all(t.startswith("/admin/webhooks/") for t in targets), targets
    page = client.post(f"/webhooks/{hook.id}/disable")
    assert page.headers["Location"] == f"/admin/webhooks/webhooks/{hook.id}?done=disabled"
    trailing = site.client(script_name="/admin/webhooks/").get("/")
    assert 'href="/admin/webhooks/new"' in trailing.text
    odd = site.client(script_name="/a dmin").get("/")
    assert 'href="/a%20dmin/new"' in odd.text


# -- one webhook ------------------------------------------------------------------------------


def test_the_webhook_page_shows_settings_health_filters_and_deliveries(site: Site) -> None:
    """
    Settings (never the secret), health, PII filters, the buttons, and recent deliveries.
    """
    hook = site.hook(filters=["drop:properties.nps.reason", "hash:visitorId"])
    site.registry.enable(ADMIN, hook.id)
    delivery = site.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id)
    page = site.client().get(f"/webhooks/{hook.id}")
    assert page.status == 200
    assert page.text.count("<h1") == 1
    assert "<h1>NPS to Zapier</h1>" in page.text
    text = _text(page.text)
    assert "Status Active" in text
    assert "Type URL" in text
    assert "Destination https://hooks.example.com/catch/1?…" in text
    assert "Secret set (never shown again)" in text
    assert hook.secret.reveal() not in page.text
    assert "Events NPS submitted" in text
    assert "State healthy" in text
    assert "Failure streak 0" in text
    assert "Last success 2026-01-01 00:00:00 UTC" in text
    assert "Outage none" in text
    assert "drop:properties.nps.reason" in text
    assert "hash:visitorId" in text
    assert f'href="/deliveries/{delivery.delivery_id}"' in page.text
    assert "npsSubmitted delivered 1" in text
    for button in ("Test", "Disable", "Rotate secret"):
        assert f'<button type="submit">{button}</button>' in page.text
    assert f'href="/webhooks/{hook.id}/edit">Edit</a>' in page.text
    assert f'href="/webhooks/{hook.id}/delete">Delete</a>' in page.text
    assert '<th scope="col">Delivery</th>' in page.text
    # Test, Disable, Rotate secret, Redeliver failed: one token in each POST form.
    assert page.text.count('name="csrf_token"') == page.text.count('method="post"') == 4


def test_a_failing_webhook_shows_its_health_and_why_it_was_disabled(site: Site) -> None:
    """
    Failures, the streak, an outage, and the disabled reason once the library disabled it.
    """
    site = _site(site.registry.storage, [503] * 10)
    hook = site.hook()
    site.registry.enable(ADMIN, hook.id)
    site.dispatcher.dispatch(sample_event("npsSubmitted"))
    text = _text(site.client().get(f"/webhooks/{hook.id}").text)
    assert "State failing" in text
    assert "Failures since the last success 1" in text
    assert "Failure streak 1" in text
    assert "Last success never" in text
    assert "Failing since 2026-01-01 00:00:00 UTC" in text
    site.registry.disable_by_system(hook.id, reason="HTTP 410 Gone from the receiver")
    text = _text(site.client().get(f"/webhooks/{hook.id}").text)
    assert "Status Inactive" in text
    assert "Disabled reason HTTP 410 Gone from the receiver (by system)" in text
    listed = _text(site.client().get("/").text)
    assert "Inactive failing" in listed


def test_an_outage_is_shown(memory_site: Site) -> None:
    """
    During an outage the page says since when.
    """
    from pendo_webhooks.dispatcher import WebhookHealth  # noqa: PLC0415

    hook = memory_site.hook()
    now = memory_site.clock()
    memory_site.registry.storage.put_webhook_health(
        WebhookHealth(
            webhook_id=hook.id, failing_since=now, outage_since=now, failures=9, streak=9
        ),
        expected_version=0,
    )
    text = _text(memory_site.client().get(f"/webhooks/{hook.id}").text)
    assert "State outage" in text
    assert "Outage since 2026-01-01 00:00:00 UTC" in text


class _NoHealth(InMemoryStorage):
    """An in-memory store without the HealthStore capability."""

    def __getattribute__(self, name: str) -> Any:
        if name in {"get_webhook_health", "put_webhook_health", "hold_claims", "respread_pending"}:
            raise AttributeError(name)
        return super().__getattribute__(name)


def test_a_store_without_health_says_not_recorded() -> None:
    """
    A store that keeps no health: the list and the webhook's page say "not recorded".
    """
    site = _site(_NoHealth())
    hook = site.hook()
    assert "Inactive not recorded" in _text(site.client().get("/").text)
    page = site.client().get(f"/webhooks/{hook.id}")
    assert page.status == 200
    assert "Health: not recorded" in _text(page.text)


def test_the_test_button_shows_the_result_in_a_status_region(site: Site) -> None:
    """
    Test sends a sample (even while inactive) and shows status, verdict and the excerpt.
    """
    hook = site.hook()
    page = site.client().post(f"/webhooks/{hook.id}/test")
    assert page.status == 200
    status = page.region("status")
    assert "Verdict Accepted" in status
    assert "Status HTTP 200" in status
    assert "npsSubmitted" in status
    (request,) = site.transport.requests
    assert request.url == hook.url
    assert site.dispatcher.deliveries(ADMIN, webhook_id=hook.id) == []


def test_a_failed_test_shows_why() -> None:
    """
    A refused sample shows "Not accepted", the error and the response excerpt, escaped.
    """
    site = _site(InMemoryStorage(), [TransportResponse(status=404, body=b"<b>no such hook</b>")])
    hook = site.hook()
    page = site.client().post(f"/webhooks/{hook.id}/test")
    status = page.region("status")
    assert "Verdict Not accepted" in status
    assert "Status HTTP 404" in status
    assert "Error HTTP 404" in status
    assert "Response excerpt <b>no such hook</b>" in status
    # A labelled block of its own inside the result's list, not a status message.
    assert (
        '<dt id="test-excerpt">Response excerpt</dt><dd><pre class="excerpt" '
        'aria-labelledby="test-excerpt">&lt;b&gt;no such hook&lt;/b&gt;</pre></dd>'
    ) in page.text
    assert "<p>Response excerpt" not in page.text


def test_enable_and_disable_redirect_with_a_fixed_message(site: Site) -> None:
    """
    Each is a 303 to the webhook's page, which then says "Enabled." / "Disabled." as status.
    """
    hook = site.hook()
    client = site.client()
    page = client.post(f"/webhooks/{hook.id}/enable")
    assert page.status == 303
    assert page.headers["Location"] == f"/webhooks/{hook.id}?done=enabled"
    assert page.text == ""
    assert site.registry.get(ADMIN, hook.id).enabled
    shown = client.get(f"/webhooks/{hook.id}", query="done=enabled")
    assert "Enabled." in shown.region("status")
    assert '<button type="submit">Disable</button>' in shown.text
    page = client.post(f"/webhooks/{hook.id}/disable")
    assert page.headers["Location"] == f"/webhooks/{hook.id}?done=disabled"
    assert not site.registry.get(ADMIN, hook.id).enabled
    shown = client.get(f"/webhooks/{hook.id}", query="done=disabled")
    assert "Disabled." in shown.region("status")
    assert '<button type="submit">Enable</button>' in shown.text


@pytest.mark.parametrize("query", ["done=%3Cscript%3Ealert(1)%3C/script%3E", "done=oops", "done="])
def test_the_status_message_never_reflects_the_query(site: Site, query: str) -> None:
    """
    An unknown ?done= code shows nothing: request text is never put on the page.
    """
    hook = site.hook()
    for path in ("/", f"/webhooks/{hook.id}"):
        page = site.client().get(path, query=query)
        assert page.status == 200
        assert "alert(1)" not in page.text
        assert "oops" not in page.text
        assert page.region("status").strip() == ""


def test_enabling_a_destination_no_longer_allowed_says_why(memory_site: Site) -> None:
    """
    The registry checks the destination again on enable: refused, the page says why (400).
    """
    from pendo_webhooks.guard import DestinationPolicy  # noqa: PLC0415

    lax = WebhookRegistry(
        memory_site.registry.storage, destinations=DestinationPolicy(allow_http=True)
    )
    hook = lax.create(
        ADMIN,
        name="Plain",
        url="http://hooks.example.com/x",
        categories={"npsSubmitted"},
        secret="s",
    )
    page = memory_site.client().post(f"/webhooks/{hook.id}/enable")
    assert page.status == 400
    assert "Not enabled: url:" in page.region("alert")
    assert not memory_site.registry.get(ADMIN, hook.id).enabled


def test_rotating_shows_the_new_secret_once(site: Site) -> None:
    """
    Rotate answers with the new secret (no-store, no redirect); the old one keeps signing.
    """
    hook = site.hook()
    page = site.client().post(f"/webhooks/{hook.id}/rotate")
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "<h1>Secret rotated</h1>" in page.text
    rotated = site.registry.get(ADMIN, hook.id)
    assert rotated.secret != hook.secret
    assert rotated.secret.reveal() in page.text
    assert hook.secret.reveal() not in page.text
    assert [r.secret for r in rotated.previous_secrets] == [hook.secret]
    assert "keeps signing for 24 hours" in page.region("status")
    assert rotated.secret.reveal() not in site.client().get(f"/webhooks/{hook.id}").text


def test_a_segment_webhook_has_no_secret_to_rotate(site: Site) -> None:
    """
    Its page offers no Rotate button; a rotate posted anyway is 400 with the reason.
    """
    hook = site.hook("Segment", kind="segment", url=None, write_key="wk-1")
    page = site.client().get(f"/webhooks/{hook.id}")
    assert "Rotate secret" not in page.text
    page = site.client().post(f"/webhooks/{hook.id}/rotate")
    assert page.status == 400
    assert "Not rotated:" in page.region("alert")
    assert "wk-1" not in page.text


# -- edit and delete --------------------------------------------------------------------------


def test_the_edit_form_holds_the_current_values_but_no_secret(site: Site) -> None:
    """
    Name, URL, events and filters filled in; no secret field; labels for every field.
    """
    hook = site.hook(filters=["drop:properties.nps.reason"])
    page = site.client().get(f"/webhooks/{hook.id}/edit")
    assert page.status == 200
    assert "<h1>Edit NPS to Zapier</h1>" in page.text
    assert 'value="NPS to Zapier"' in page.text
    assert 'value="https://hooks.example.com/catch/1?token=t0ps3cret"' in page.text
    assert re.search(r'id="event-npsSubmitted"[^>]* checked', page.text)
    assert ">drop:properties.nps.reason</textarea>" in page.text
    assert 'id="secret"' not in page.text
    assert 'id="write_key"' not in page.text
    assert f'name="version" value="{hook.version}"' in page.text
    assert "Save changes" in page.text
    labels = _labels(page.text)
    ids = re.findall(r'<(?:input|textarea)[^>]* id="([^"]+)"', page.text)
    assert set(ids) == set(labels)


def test_saving_changes_and_redirects(site: Site) -> None:
    """
    A saved edit changes the webhook (as one audited update) and says "Changes saved.".
    """
    hook = site.hook()
    client = site.client()
    form = {
        "name": "Renamed",
        "url": "https://hooks.example.com/other",
        "categories": ["pollSubmitted", "npsSubmitted"],
        "filters": "hash:visitorId\n\n",
        "version": str(hook.version),
    }
    page = client.post(f"/webhooks/{hook.id}/edit", form)
    assert page.status == 303
    assert page.headers["Location"] == f"/webhooks/{hook.id}?done=saved"
    changed = site.registry.get(ADMIN, hook.id)
    assert changed.name == "Renamed"
    assert changed.url == "https://hooks.example.com/other"
    assert {str(c) for c in changed.categories} == {"pollSubmitted", "npsSubmitted"}
    assert [str(f) for f in changed.filters] == ["hash:visitorId"]
    assert changed.secret == hook.secret
    assert "Changes saved." in client.get(f"/webhooks/{hook.id}", query="done=saved").region(
        "status"
    )
    assert [e.action for e in site.registry.audit(ADMIN, webhook_id=hook.id)] == [
        "update",
        "create",
    ]


def test_a_refused_edit_shows_the_form_again(site: Site) -> None:
    """
    400 with the reason, the values typed kept, and nothing changed.
    """
    hook = site.hook()
    form = {"name": "<i>bad</i>", "url": "ftp://x", "categories": ["npsSubmitted"], "filters": ""}
    page = site.client().post(f"/webhooks/{hook.id}/edit", form)
    assert page.status == 400
    assert "Destination URL:" in page.region("alert")
    assert 'value="&lt;i&gt;bad&lt;/i&gt;"' in page.text
    assert site.registry.get(ADMIN, hook.id) == hook


def test_an_edit_over_someone_elses_change_is_a_conflict(site: Site) -> None:
    """
    Saving a form opened before another admin's change: 409, the typed values, the new version.
    """
    hook = site.hook()
    site.registry.update(OTHER_ADMIN, hook.id, name="Their name")
    form = {"name": "My name", "url": hook.url, "categories": ["npsSubmitted"], "version": "1"}
    page = site.client().post(f"/webhooks/{hook.id}/edit", form)
    assert page.status == 409
    assert "Someone changed this webhook" in page.region("alert")
    assert 'value="My name"' in page.text
    assert 'name="version" value="2"' in page.text
    assert site.registry.get(ADMIN, hook.id).name == "Their name"
    form["version"] = "\u00b2"  # a digit, but not one a version is written with
    assert site.client().post(f"/webhooks/{hook.id}/edit", form).status == 303
    assert site.registry.get(ADMIN, hook.id).name == "My name"
    site.registry.update(OTHER_ADMIN, hook.id, name="Theirs again")
    form["version"] = "4"
    assert site.client().post(f"/webhooks/{hook.id}/edit", form).status == 303
    assert site.registry.get(ADMIN, hook.id).name == "My name"


def test_a_segment_webhook_keeps_its_write_key_unless_a_new_one_is_typed(site: Site) -> None:
    """
    The edit form has a blank write key field: blank keeps the key, text replaces it.
    """
    hook = site.hook("Segment", kind="segment", url=None, write_key="wk-old")
    client = site.client()
    page = client.get(f"/webhooks/{hook.id}/edit")
    assert 'id="write_key"' in page.text
    assert 'id="url"' not in page.text
    assert "wk-old" not in page.text
    assert "Leave blank to keep the current key" in page.text
    form = {"name": "Segment 2", "write_key": "", "categories": ["npsSubmitted"], "filters": ""}
    assert client.post(f"/webhooks/{hook.id}/edit", form).status == 303
    assert site.registry.get(ADMIN, hook.id).write_key.reveal() == "wk-old"
    form["write_key"] = "wk-new"
    assert client.post(f"/webhooks/{hook.id}/edit", form).status == 303
    assert site.registry.get(ADMIN, hook.id).write_key.reveal() == "wk-new"


def test_an_operations_webhook_keeps_its_events(site: Site) -> None:
    """
    The form has no boxes for operations events: saving leaves them as they are.
    """
    hook = site.hook("Ops", categories={"pendo_webhooks.webhook.disabled"})
    client = site.client()
    page = client.get(f"/webhooks/{hook.id}/edit")
    assert "<legend>Events</legend>" not in page.text
    assert "operations webhook" in page.text
    form = {"name": "Ops alerts", "url": hook.url, "filters": ""}
    assert client.post(f"/webhooks/{hook.id}/edit", form).status == 303
    changed = site.registry.get(ADMIN, hook.id)
    assert changed.name == "Ops alerts"
    assert changed.categories == hook.categories
    assert "Events A webhook was disabled" in _text(client.get(f"/webhooks/{hook.id}").text)


def test_an_operations_webhooks_events_have_the_create_forms_labels(site: Site) -> None:
    """
    Its page names its operations events as the create form does, never by their raw names.
    """
    hook = site.hook("Ops", categories={c.value for c in OperationsCategory})
    text = _text(site.client().get(f"/webhooks/{hook.id}").text)
    assert (
        "Events A delivery went dead, A webhook recovered, A webhook was disabled Created" in text
    )
    assert "pendo_webhooks." not in text


def test_deleting_asks_first_then_deletes(site: Site) -> None:
    """
    The Delete link leads to a confirm page; its button deletes and goes back to the list.
    """
    hook = site.hook()
    client = site.client()
    page = client.get(f"/webhooks/{hook.id}/delete")
    assert page.status == 200
    assert "<h1>Delete webhook NPS to Zapier?</h1>" in page.text
    assert '<button type="submit" class="danger">Delete webhook</button>' in page.text
    assert site.registry.list(ADMIN) == [hook]
    page = client.post(f"/webhooks/{hook.id}/delete", token=page.token())
    assert page.status == 303
    assert page.headers["Location"] == "/?done=deleted"
    assert site.registry.list(ADMIN) == []
    assert "Webhook deleted." in client.get("/", query="done=deleted").region("status")
    assert client.get(f"/webhooks/{hook.id}").status == 404


def test_a_script_in_a_name_is_shown_as_text_everywhere(site: Site) -> None:
    """
    A webhook named <script>alert(1)</script> is escaped in the list, its page, edit, delete.
    """
    name = "<script>alert(1)</script>"
    client = site.client()
    created = client.post("/new", _create_form(name=name))
    (hook,) = site.registry.list(ADMIN)
    pages = [created] + [
        client.get(p)
        for p in (
            "/",
            f"/webhooks/{hook.id}",
            f"/webhooks/{hook.id}/edit",
            f"/webhooks/{hook.id}/delete",
        )
    ]
    for page in pages:
        assert "<script" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


# -- deliveries ---------------------------------------------------------------------------------


def test_a_delivery_shows_its_attempts_and_can_be_redelivered(site: Site) -> None:
    """
    The delivery page: status, event, attempts table; Redeliver queues it again (303).
    """
    site = _site(site.registry.storage, [TransportResponse(status=500, body=b"<oops>"), 200, 200])
    hook = site.hook()
    site.registry.enable(ADMIN, hook.id)
    delivery_id = (
        site.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id).delivery_id
    )
    site.clock.advance(timedelta(hours=1))
    site.dispatcher.run_due()
    client = site.client()
    page = client.get(f"/deliveries/{delivery_id}")
    assert page.status == 200
    assert f"<h1>Delivery {delivery_id}</h1>" in page.text
    text = _text(page.text)
    assert "Status delivered" in text
    assert "Event npsSubmitted" in text
    assert "Webhook NPS to Zapier" in text
    assert f'href="/webhooks/{hook.id}"' in page.text
    for column in ("Number", "Time", "Status", "Verdict", "Duration", "Response excerpt"):
        assert f'<th scope="col">{column}</th>' in page.text
    assert '<th scope="row">1</th>' in page.text
    assert '<th scope="row">2</th>' in page.text
    assert "HTTP 500" in text
    assert "&lt;oops&gt;" in page.text
    assert "retry:" in text
    page = client.post(f"/deliveries/{delivery_id}/redeliver", token=page.token())
    assert page.status == 303
    assert page.headers["Location"] == f"/deliveries/{delivery_id}?done=redelivered"
    assert str(site.dispatcher.storage.get_delivery(delivery_id).status) == "pending"
    page = client.get(f"/deliveries/{delivery_id}", query="done=redelivered")
    assert "Redelivery queued" in page.region("status")
    assert "Next attempt" in _text(page.text)
    assert '<button type="submit">Redeliver</button>' not in page.text


def test_a_pending_delivery_cannot_be_redelivered(site: Site) -> None:
    """
    Redelivering one still pending is 409 with the reason, shown on its page.
    """
    site = _site(site.registry.storage, [503])
    hook = site.hook()
    site.registry.enable(ADMIN, hook.id)
    delivery_id = (
        site.dispatcher.dispatch(sample_event("npsSubmitted")).for_webhook(hook.id).delivery_id
    )
    page = site.client().post(f"/deliveries/{delivery_id}/redeliver")
    assert page.status == 409
    assert "Not redelivered" in page.region("alert")
    assert "transport error" not in page.text


def test_a_webhooks_page_shows_its_history_without_secrets(site: Site) -> None:
    """
    The audit log of the webhook, newest first, in the form's words; secrets, write keys and
    URL query strings only say that they changed.
    """
    hook = site.hook("Old <i>name</i>", secret="first-s3cret")
    site.registry.enable(ADMIN, hook.id)
    site.registry.update(
        ADMIN, hook.id, name="New name", categories={"npsSubmitted", "pollSubmitted"}
    )
    site.registry.rotate_secret(ADMIN, hook.id)
    other = site.hook("Another")
    page = site.client().get(f"/webhooks/{hook.id}")
    history = page.text.split('<h2 id="history-heading">History</h2>')[1]
    text = _text(history)
    assert "first-s3cret" not in page.text
    assert "t0ps3cret" not in page.text
    assert hook.secret.reveal() not in page.text
    rows = re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", history, re.S)
    actions = [re.findall(r"<td>(.*?)</td>", row)[1] for row in rows]
    assert actions == ["rotate_secret", "update", "enable", "create"]
    assert "Name: Old &lt;i&gt;name&lt;/i&gt; &rarr; New name" in history
    assert "Events: NPS submitted &rarr; NPS submitted, Poll submitted" in history
    assert "Secret: &lt;redacted&gt;" in history
    assert ADMIN.id in text
    assert "Another" not in history
    assert other.id not in history


def test_a_delivery_page_shows_its_body_indented_and_escaped(site: Site) -> None:
    """
    The body every attempt sent, as indented JSON, in a focusable block; markup in it is text.
    """
    _hook, delivery_id = _one_delivery(site)
    delivery = site.dispatcher.storage.get_delivery(delivery_id)
    page = site.client().get(f"/deliveries/{delivery_id}")
    assert '<h2 id="body-heading">Body</h2>' in page.text
    assert '<pre class="body" tabindex="0" aria-labelledby="body-heading">' in page.text
    assert f"({len(delivery.body):,} bytes)" in page.text
    shown = json.loads(
        html.unescape(
            page.text.split('tabindex="0" aria-labelledby="body-heading">')[1].split("</pre>")[0]
        )
    )
    assert shown == json.loads(delivery.body)
    assert '\n  "event": "npsSubmitted"' in html.unescape(page.text)


def test_a_purged_delivery_shows_no_body(site: Site) -> None:
    """
    Once purged, its page says so and has no Body section.
    """
    _hook, delivery_id = _one_delivery(site)
    site.clock.advance(timedelta(days=1))
    assert site.dispatcher.purge(site.clock()) == 1
    page = site.client().get(f"/deliveries/{delivery_id}")
    assert "Body purged" in _text(page.text)
    assert "body-heading" not in page.text


def test_shown_body_cuts_a_long_body_and_keeps_text_that_is_not_json() -> None:
    """
    Past BODY_SHOWN bytes the rest is counted, not shown; a body that is not JSON is its text.
    """
    long = b"x" * (BODY_SHOWN + 1234)
    assert shown_body(long) == "x" * BODY_SHOWN + "\n[... 1,234 more bytes not shown]"
    assert shown_body(b"\xffoops") == "\ufffdoops"
    assert shown_body(b'{"a":"<script>"}') == '{\n  "a": "<script>"\n}'


def test_a_delivery_of_a_disabled_webhook_is_not_redelivered(site: Site) -> None:
    """
    A disabled webhook's finished delivery: no Redeliver button but a hint; a post is 409 and
    queues nothing (a worker would cancel it again); once enabled, Redeliver works.
    """
    hook, delivery_id = _one_delivery(site)
    assert str(site.dispatcher.storage.get_delivery(delivery_id).status) == "delivered"
    site.registry.disable(ADMIN, hook.id)
    client = site.client()
    page = client.get(f"/deliveries/{delivery_id}")
    assert '<button type="submit">Redeliver</button>' not in page.text
    assert "Enable the webhook to redeliver this delivery" in _text(page.text)
    token = site.portal._tokens.issue(ADMIN.id)
    page = client.post(f"/deliveries/{delivery_id}/redeliver", token=token)
    assert page.status == 409
    assert "Not redelivered: its webhook is disabled" in page.region("alert")
    assert str(site.dispatcher.storage.get_delivery(delivery_id).status) == "delivered"
    site.registry.enable(ADMIN, hook.id)
    page = client.get(f"/deliveries/{delivery_id}")
    assert '<button type="submit">Redeliver</button>' in page.text
    assert "Enable the webhook to redeliver" not in page.text
    page = client.post(f"/deliveries/{delivery_id}/redeliver", token=page.token())
    assert page.status == 303
    assert str(site.dispatcher.storage.get_delivery(delivery_id).status) == "pending"


def test_a_delivery_of_a_deleted_webhook_is_not_redelivered(site: Site) -> None:
    """
    Once its webhook is deleted nothing could send it: no button, no hint, a post is 409.
    """
    hook, delivery_id = _one_delivery(site)
    site.registry.delete(ADMIN, hook.id)
    client = site.client()
    page = client.get(f"/deliveries/{delivery_id}")
    assert "Redeliver" not in page.text
    page = client.post(
        f"/deliveries/{delivery_id}/redeliver", token=site.portal._tokens.issue(ADMIN.id)
    )
    assert page.status == 409
    assert "Not redelivered: its webhook was deleted." in page.region("alert")
    assert str(site.dispatcher.storage.get_delivery(delivery_id).status) == "delivered"


def test_a_delivery_of_a_deleted_webhook_still_shows(site: Site) -> None:
    """
    After its webhook is deleted, a delivery's page names the webhook id as deleted.
    """
    hook, delivery_id = _one_delivery(site)
    site.registry.delete(ADMIN, hook.id)
    page = site.client().get(f"/deliveries/{delivery_id}")
    assert page.status == 200
    assert f"{hook.id} (deleted)" in _text(page.text)
    assert "No attempts yet." not in page.text


def test_a_delivery_without_attempts_says_so(site: Site) -> None:
    """
    A delivery never attempted (its webhook disabled first) has an empty attempts section.
    """
    hook = site.hook()
    site.registry.enable(ADMIN, hook.id)
    result = site.dispatcher.enqueue(sample_event("npsSubmitted"))
    delivery_id = result.for_webhook(hook.id).delivery_id
    page = site.client().get(f"/deliveries/{delivery_id}")
    assert "No attempts yet." in page.text
    assert "No deliveries yet." not in site.client().get(f"/webhooks/{hook.id}").text
    assert "No deliveries yet." in site.client().get(f"/webhooks/{site.hook('Other').id}").text


# -- construction ---------------------------------------------------------------------------


def test_the_constructor_refuses_bad_arguments(memory_site: Site) -> None:
    """
    A wrong dispatcher, actor, key or title is a ConfigurationError that shows no key.
    """
    dispatcher = memory_site.dispatcher
    with pytest.raises(ConfigurationError, match="dispatcher: must be a Dispatcher"):
        Portal(memory_site.registry, _actor_of)
    with pytest.raises(ConfigurationError, match="actor: must be callable"):
        Portal(dispatcher, ADMIN)
    with pytest.raises(ConfigurationError, match="csrf_key: must be bytes, not str"):
        Portal(dispatcher, _actor_of, csrf_key="k" * 32)
    with pytest.raises(ConfigurationError, match="at least 32 bytes") as caught:
        Portal(dispatcher, _actor_of, csrf_key=b"short-key")
    assert "short-key" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="title: must not be empty"):
        Portal(dispatcher, _actor_of, title=" ")
    portal = Portal(dispatcher, _actor_of, csrf_key=KEY, title="Acme <hooks>")
    assert repr(portal) == "<Portal(title='Acme <hooks>')>"
    assert "kkkk" not in repr(portal._tokens)
    page = Client(portal, ADMIN).get("/")
    assert "<h1>Acme &lt;hooks&gt;</h1>" in page.text


def test_without_jinja2_the_portal_says_what_to_install(
    memory_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Jinja2 is the portal extra's: without it, Portal() says which extra to install.
    """
    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'pendo-webhooks\[portal\]'"):
        Portal(memory_site.dispatcher, _actor_of)


def test_requests_from_many_threads_are_answered(tmp_path: Path) -> None:
    """
    A threaded WSGI server calls one portal from many threads at once: every answer is right.
    """
    with SQLiteStorage(tmp_path / "threads.sqlite3") as storage:
        site = _site(storage)
        hooks = [site.hook(f"Hook {n}") for n in range(4)]
        failures: list[str] = []

        def work(n: int) -> None:
            client = site.client(Actor(f"admin-{n}", is_admin=True))
            for _ in range(5):
                hook = hooks[n % len(hooks)]
                page = client.get(f"/webhooks/{hook.id}")
                if page.status != 200 or f"<h1>Hook {n % len(hooks)}</h1>" not in page.text:
                    failures.append(f"GET {n}: {page.status}")
                token = page.token()
                sent = client.post(f"/webhooks/{hook.id}/test", token=token)
                if sent.status != 200:
                    failures.append(f"POST {n}: {sent.status}")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert failures == []
        assert len(site.transport.requests) == 40


def test_a_test_without_an_answer_says_so() -> None:
    """
    When no response came back, the result says "no response" and why.
    """
    from pendo_webhooks.exceptions import TransportError  # noqa: PLC0415

    site = _site(InMemoryStorage(), [TransportError("timeout", "no response within 15.0 s")])
    hook = site.hook()
    status = site.client().post(f"/webhooks/{hook.id}/test").region("status")
    assert "Verdict Not accepted" in status
    assert "Status no response" in status
    assert "timeout" in status


def test_the_title_names_the_page_and_the_portal(memory_site: Site) -> None:
    """
    Each page's <title> says the page, then the portal; the list is the portal's own title.
    """
    hook = memory_site.hook()
    client = memory_site.client()
    assert "<title>Webhooks</title>" in client.get("/").text
    assert "<title>New webhook \u2013 Webhooks</title>" in client.get("/new").text
    assert (
        "<title>NPS to Zapier \u2013 Webhooks</title>" in client.get(f"/webhooks/{hook.id}").text
    )
    assert "<title>Not found</title>" in client.get("/nope").text


def test_the_portal_keeps_to_the_wsgi_protocol(memory_site: Site) -> None:
    """
    wsgiref's validator, wrapped around the portal, finds nothing wrong with any answer.
    """
    from wsgiref.validate import validator  # noqa: PLC0415

    hook = memory_site.hook()
    checked = Client(validator(memory_site.portal), ADMIN)
    assert checked.get("/").status == 200
    assert checked.get("/static/portal.css").status == 200
    assert checked.request("HEAD", f"/webhooks/{hook.id}").status == 200
    token = memory_site.portal._tokens.issue(ADMIN.id)
    assert checked.post(f"/webhooks/{hook.id}/enable", token=token).status == 303
    assert checked.post("/new", _create_form(name=""), token=token).status == 400
    assert checked.request("DELETE", "/").status == 405
    assert Client(validator(memory_site.portal), None).get("/").status == 403


def test_an_actor_callable_returning_something_else_is_the_hosts_bug(memory_site: Site) -> None:
    """
    An actor callable that returns no Actor (a user name) raises, naming what it returned.
    """
    portal = Portal(memory_site.dispatcher, lambda environ: "ada", csrf_key=KEY)
    with pytest.raises(ConfigurationError, match="actor: returned a str, not an Actor or None"):
        Client(portal, ADMIN).get("/")
