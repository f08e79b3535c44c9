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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.exceptions import PermissionDenied
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage, SQLiteStorage, Storage
from pendo_webhooks.testing import FrozenClock, RecordingTransport, sample_event


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
        return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


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
        data = b"".join(chunks)
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
            data["csrf_token"] = self.portal.tokens.issue(self.actor.id if self.actor else "x")
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
    assert secret in page.text
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
    token = site.portal.tokens.issue(who.id) if who else None
    pages += [
        client.post(p.format(hook=hook.id, delivery=delivery), _create_form(), token=token)
        for p in _POST_ROUTES
    ]
    for page in pages:
        assert page.status == 403
        assert "<h1>Forbidden</h1>" in page.text
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
    theirs = site.portal.tokens.issue(OTHER_ADMIN.id)
    _csrf_refused(site.client().post(f"/webhooks/{hook.id}/enable", token=theirs))
    other = Portal(site.dispatcher, _actor_of, csrf_key=b"o" * 32)
    _csrf_refused(
        site.client().post(f"/webhooks/{hook.id}/enable", token=other.tokens.issue(ADMIN.id))
    )
    random_key = Portal(site.dispatcher, _actor_of)
    _csrf_refused(
        site.client().post(f"/webhooks/{hook.id}/enable", token=random_key.tokens.issue(ADMIN.id))
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
        assert response.headers["Referrer-Policy"] == "no-referrer"
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
    assert client.post("/new", _create_form(), content_type="application/json").status == 415
    assert client.post("/new", _create_form(), content_type=None).status == 415
    token = site.portal.tokens.issue(ADMIN.id)
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
