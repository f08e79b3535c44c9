"""
The settings portal (issue 17) in a real browser: headless Chromium, driven by Playwright,
against the Portal served from a threaded WSGI server on 127.0.0.1, over a fresh SQLite store,
delivering to a real loopback receiver that verifies every signature.

The screenshots in docs/howto/portal/ are taken by these tests:
``PENDO_WEBHOOKS_SCREENSHOTS=docs/howto/portal .venv/bin/python -m pytest tests/browser --no-cov``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.guard import DestinationPolicy
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import SQLiteStorage
from pendo_webhooks.testing import LocalReceiver, Reply, sample_event

from .harness import WSGIServer


if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page


pytestmark = pytest.mark.browser

#: The test header the site's actor callable reads: "admin", "viewer", or nothing (anonymous).
ACTOR_HEADER = "X-Test-Actor"
ADMIN = Actor("admin-1", is_admin=True)
VIEWER = Actor("viewer-1", is_admin=False)
SECRET = "any text, special chars ok!&?<>"
NAME = "NPS to the CRM"


def _actor(environ: dict[str, object]) -> Actor | None:
    """
    The host's actor callable, as a test stands it in: who is who comes from a header.
    """
    return {"admin": ADMIN, "viewer": VIEWER}.get(str(environ.get("HTTP_X_TEST_ACTOR", "")))


@attrs.define
class Site:
    """
    The portal being served, and what stands behind it.
    """

    url: str
    registry: WebhookRegistry
    dispatcher: Dispatcher
    receiver: LocalReceiver

    def page(self, context: BrowserContext) -> Page:
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """
    A Portal over a fresh SQLite store, served on 127.0.0.1, sending to a loopback receiver.
    """
    from pendo_webhooks.portal import Portal  # noqa: PLC0415 - the portal extra

    receiver = LocalReceiver(secrets=[SECRET], default_status=Reply(status=200, body=b"thanks"))
    storage = SQLiteStorage(tmp_path / "webhooks.sqlite3")
    registry = WebhookRegistry(storage, destinations=DestinationPolicy.local_testing())
    dispatcher = Dispatcher(registry)
    portal = Portal(dispatcher, actor=_actor, csrf_key=b"k" * 32)
    try:
        with WSGIServer(portal) as server:
            yield Site(server.url, registry, dispatcher, receiver)
    finally:
        dispatcher.close()
        storage.close()
        receiver.close()


@pytest.fixture
def admin(new_context: Callable[..., BrowserContext], site: Site) -> Page:
    """
    A page in a fresh context whose requests the portal takes for an admin's.
    """
    return site.page(new_context(extra_http_headers={ACTOR_HEADER: "admin"}))


def _expect() -> Any:
    from playwright.sync_api import expect  # noqa: PLC0415 - optional: skipped without it

    return expect


def _status(page: Page) -> Any:
    return page.get_by_role("status")


def test_create_test_enable_deliver_disable_delete(
    site: Site, admin: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    """
    The whole life of a webhook, as an admin clicks through it.
    """
    expect = _expect()
    page = admin
    site.registry.create(
        ADMIN, name="Old Slack hook", url=site.receiver.url, categories=["guideDisplayed"]
    )

    # The list, then the create form.
    page.goto(f"{site.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    page.get_by_role("link", name="New webhook").click()
    expect(page.get_by_role("button", name="Create webhook")).to_be_visible()
    expect(
        page.get_by_text("NPS and poll events need agent version 2.33.0 or later.")
    ).to_be_visible()
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("URL", exact=True).check()
    page.get_by_label("Destination URL").fill(site.receiver.url)
    page.get_by_label("Secret", exact=True).fill(SECRET)
    page.get_by_label("NPS submitted").check()
    page.get_by_label("Guide displayed").check()
    screenshot(page, "create")
    page.get_by_role("button", name="Create webhook").click()

    # The secret, once.
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhook created")
    expect(page.get_by_text(SECRET, exact=True)).to_be_visible()
    screenshot(page, "created")
    (hook,) = [h for h in site.registry.list(ADMIN) if h.name == NAME]
    assert not hook.enabled
    page.get_by_role("link", name=NAME).click()
    expect(page).to_have_url(f"{site.url}/webhooks/{hook.id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(NAME)
    page.reload()
    expect(page.get_by_role("button", name="Test")).to_be_visible()
    assert SECRET not in page.content()
    assert "any text, special chars" not in page.content()

    # Test: a signed sample reaches the receiver, and its result is shown.
    page.get_by_role("button", name="Test").click()
    expect(_status(page)).to_contain_text("200")
    expect(_status(page)).to_contain_text("thanks")
    assert site.receiver.requests[-1].verified
    screenshot(page, "detail-test")

    # Enable.
    page.get_by_role("button", name="Enable").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(site.url)}/webhooks/{hook.id}(\?.*)?$"))
    expect(_status(page)).to_contain_text("Enabled.")
    assert site.registry.get(ADMIN, hook.id).enabled
    page.goto(f"{site.url}/")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=NAME))
    expect(row).to_contain_text("Active")
    expect(page.get_by_role("row").filter(has_text="Old Slack hook")).to_contain_text("Inactive")
    screenshot(page, "list")
    assert SECRET not in page.content()

    # An event, dispatched by the host's code (here, in the test's process).
    result = site.dispatcher.dispatch(sample_event("npsSubmitted"))
    site.dispatcher.drain(timeout=30)
    delivery_id = result.for_webhook(hook.id).delivery_id
    assert delivery_id is not None
    assert site.receiver.requests[-1].verified
    assert site.receiver.requests[-1].event.category == "npsSubmitted"

    # Its delivery, on the webhook's page and its own, with the attempt.
    page.get_by_role("link", name=NAME).click()
    deliveries = page.get_by_role("table").filter(has_text="npsSubmitted")
    expect(deliveries).to_be_visible()
    page.locator(f'a[href$="/deliveries/{delivery_id}"]').click()
    expect(page).to_have_url(f"{site.url}/deliveries/{delivery_id}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_text("npsSubmitted").first).to_be_visible()
    attempts = page.get_by_role("table")
    expect(attempts.get_by_role("row")).to_have_count(2)  # the header and one attempt
    expect(attempts.get_by_role("row").nth(1)).to_contain_text("200")
    screenshot(page, "delivery")

    # Redeliver: queued for a worker (here, drain), then a second attempt, same webhook-id.
    page.get_by_role("button", name="Redeliver").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(site.url)}/deliveries/{delivery_id}\?"))
    expect(_status(page)).to_contain_text("Redelivery queued")
    site.dispatcher.drain(timeout=30)
    page.reload()
    expect(attempts.get_by_role("row")).to_have_count(3)
    first, again = site.receiver.requests[-2:]
    assert again.verified
    assert again.header("webhook-id") == first.header("webhook-id")

    # Rotate: the new secret shown once, then never.
    page.goto(f"{site.url}/webhooks/{hook.id}")
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Secret rotated")
    new_secret = page.locator("#secret-value").inner_text()
    assert new_secret.startswith("whsec_")
    page.get_by_role("link", name=NAME).click()
    expect(page.get_by_role("button", name="Rotate secret")).to_be_visible()
    assert new_secret not in page.content()

    # Disable.
    page.goto(f"{site.url}/webhooks/{hook.id}")
    page.get_by_role("button", name="Disable").click()
    expect(_status(page)).to_contain_text("Disabled.")
    assert not site.registry.get(ADMIN, hook.id).enabled

    # Delete, after the confirm page.
    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Delete webhook {NAME}?")
    screenshot(page, "delete-confirm")
    page.get_by_role("button", name="Delete webhook").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(site.url)}/(\?.*)?$"))
    expect(_status(page)).to_contain_text("Webhook deleted.")
    expect(page.get_by_role("link", name="Old Slack hook")).to_be_visible()
    expect(page.get_by_role("link", name=NAME)).to_have_count(0)
    assert [h.name for h in site.registry.list(ADMIN)] == ["Old Slack hook"]


def test_a_non_admin_is_refused_and_sees_no_webhook(
    site: Site,
    new_context: Callable[..., BrowserContext],
    screenshot: Callable[[Page, str], Path],
) -> None:
    """
    A signed-in non-admin, and an anonymous visitor, get 403 everywhere, and no webhook's name.
    """
    expect = _expect()
    hook = site.registry.create(
        ADMIN, name="Secret project", url=site.receiver.url, categories=["npsSubmitted"]
    )
    for who in ("viewer", None):
        headers = {ACTOR_HEADER: who} if who else {}
        page = site.page(new_context(extra_http_headers=headers))
        for path in ("/", f"/webhooks/{hook.id}", "/new", f"/webhooks/{hook.id}/delete"):
            response = page.goto(f"{site.url}{path}")
            assert response is not None
            assert response.status == 403, (who, path)
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            assert "Secret project" not in page.content()
            assert hook.id not in page.content()
        if who == "viewer":
            page.goto(f"{site.url}/")
            screenshot(page, "forbidden")
        answer = page.request.post(f"{site.url}/webhooks/{hook.id}/enable", form={})
        assert answer.status == 403
    assert not site.registry.get(ADMIN, hook.id).enabled


def _post_response(page: Page, click: Callable[[], None]) -> Any:
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        click()
    return info.value


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    site: Site, admin: Page
) -> None:
    """
    The Enable form with its token removed, or forged, or posted from elsewhere: 403, still off.
    """
    expect = _expect()
    page = admin
    hook = site.registry.create(
        ADMIN, name=NAME, url=site.receiver.url, categories=["npsSubmitted"]
    )
    detail = f"{site.url}/webhooks/{hook.id}"
    page.goto(detail)
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token

    # The hidden field taken out of the page (the portal has no JavaScript; the test does).
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    response = _post_response(page, page.get_by_role("button", name="Enable").click)
    assert response.status == 403
    expect(page.get_by_text("CSRF token missing or invalid")).to_be_visible()
    assert not site.registry.get(ADMIN, hook.id).enabled

    # A forged token.
    page.goto(detail)
    page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.value = 'x')"
    )
    assert _post_response(page, page.get_by_role("button", name="Enable").click).status == 403
    assert not site.registry.get(ADMIN, hook.id).enabled

    # Posted straight at the portal: no token, then a good token from another site's page.
    new = {"name": "Sneaky", "kind": "url", "url": site.receiver.url, "categories": "npsSubmitted"}
    untokened = page.request.post(f"{site.url}/new", form=new)
    assert untokened.status == 403
    assert "CSRF token missing or invalid" in untokened.text()
    enable = f"{detail}/enable"
    cross = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    refused = page.request.post(enable, form={"csrf_token": token}, headers=cross)
    assert refused.status == 403
    assert "another site" in refused.text()
    assert [h.name for h in site.registry.list(ADMIN)] == [NAME]
    assert not site.registry.get(ADMIN, hook.id).enabled

    # The same token, from the portal's own page: accepted (so the refusals were the token's).
    page.goto(detail)
    page.get_by_role("button", name="Enable").click()
    expect(_status(page)).to_contain_text("Enabled.")
    assert site.registry.get(ADMIN, hook.id).enabled


def test_a_name_that_is_markup_is_shown_as_text(site: Site, admin: Page) -> None:
    """
    A webhook named <script>alert(1)</script>: shown as those characters, and nothing runs.
    """
    expect = _expect()
    page = admin
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    evil = "<script>alert(1)</script>"
    page.goto(f"{site.url}/new")
    page.get_by_label("Name").fill(evil)
    page.get_by_label("Destination URL").fill(site.receiver.url)
    page.get_by_label("NPS submitted").check()
    page.get_by_role("button", name="Create webhook").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhook created")
    (hook,) = site.registry.list(ADMIN)
    assert hook.name == evil
    for path in ("/", f"/webhooks/{hook.id}", f"/webhooks/{hook.id}/delete"):
        page.goto(f"{site.url}{path}")
        expect(page.get_by_text(evil).first).to_be_visible()
        assert page.locator("script").count() == 0
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.content()
    assert dialogs == []


#: The spec's fields of the create form, in the order the labels read and Tab visits them
#: (the form may hold others between them).
FORM_ORDER = (
    "Name",
    "URL",  # the checked radio of the "Type" group (arrows move within it)
    "Destination URL",
    "Segment write key",
    "Secret",
    "Guide displayed",
    "Track event received",
    "NPS displayed",
    "NPS submitted",
    "Poll displayed",
    "Poll submitted",
    "Visitor first seen",
    "Account first seen",
    "Parent-child account first seen",
    "PII filters",
)

_UNNAMED = re.compile(
    r"^\s*- (textbox|checkbox|radio|button|combobox|listbox|spinbutton|link)(?! \")\b.*$",
    re.MULTILINE,
)


def _tab_stops(page: Page) -> list[tuple[Any, str]]:
    """
    The create form's controls Tab should visit, in document order, with their labels' text:
    of a group of radios, only the checked one (arrow keys move within the group).
    """
    stops = []
    form = page.locator("main form")
    for control in form.locator("input:not([type=hidden]), textarea, select, button").all():
        kind = control.get_attribute("type")
        if kind == "radio" and not control.is_checked():
            continue
        control_id = control.get_attribute("id")
        label = (
            page.locator(f'label[for="{control_id}"]').inner_text().strip()
            if control_id
            else control.inner_text().strip()
        )
        stops.append((control, label))
    return stops


def test_the_create_form_works_with_the_keyboard_alone(site: Site, admin: Page) -> None:
    """
    From the top of the page, Tab visits every control in the order the labels read (the
    spec's fields among them, in the spec's order); typing fills, Space checks, Enter submits.
    """
    expect = _expect()
    page = admin
    page.goto(f"{site.url}/new")
    stops = _tab_stops(page)
    labels = [label for _, label in stops]
    assert [label for label in labels if label in FORM_ORDER] == list(FORM_ORDER)
    assert labels[-1] == "Create webhook"
    name = page.get_by_label("Name", exact=True)
    for _ in range(10):  # past the page's links (skip link, breadcrumb) to the first field
        page.keyboard.press("Tab")
        if name.evaluate("e => e === document.activeElement"):
            break
    typed = {"Name": "Keyboard hook", "Destination URL": site.receiver.url, "Secret": SECRET}
    for position, (control, label) in enumerate(stops):
        if position:
            page.keyboard.press("Tab")
        expect(control).to_be_focused()
        if label in typed:
            page.keyboard.type(typed[label])
        elif label in {"NPS submitted", "Poll submitted"}:
            page.keyboard.press("Space")
            expect(control).to_be_checked()
    page.keyboard.press("Enter")  # on the last stop, the "Create webhook" button
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhook created")
    (hook,) = site.registry.list(ADMIN)
    assert hook.name == "Keyboard hook"
    assert {str(c) for c in hook.categories} == {"npsSubmitted", "pollSubmitted"}


def test_every_control_has_an_accessible_name(site: Site, admin: Page) -> None:
    """
    On every screen, each field, button and link has a name a screen reader can read out, and
    the page one h1, a title and its language.
    """
    expect = _expect()
    page = admin
    hook = site.registry.create(
        ADMIN, name=NAME, url=site.receiver.url, categories=["npsSubmitted"]
    )
    site.registry.enable(ADMIN, hook.id)
    result = site.dispatcher.dispatch(sample_event("npsSubmitted"))
    delivery_id = result.for_webhook(hook.id).delivery_id
    paths = [
        "/",
        "/new",
        f"/webhooks/{hook.id}",
        f"/webhooks/{hook.id}/edit",
        f"/webhooks/{hook.id}/delete",
        f"/deliveries/{delivery_id}",
    ]
    for path in paths:
        page.goto(f"{site.url}{path}")
        expect(page.get_by_role("heading", level=1)).to_have_count(1)
        assert page.title(), path
        assert page.locator("html").get_attribute("lang") == "en"
        snapshot = page.locator("body").aria_snapshot()
        assert _UNNAMED.findall(snapshot) == [], (path, snapshot)
        for control in page.locator("input:not([type=hidden]), select, textarea").all():
            control_id = control.get_attribute("id")
            assert control_id, (path, control.evaluate("e => e.outerHTML"))
            assert page.locator(f'label[for="{control_id}"]').count() == 1, (path, control_id)
    page.goto(f"{site.url}/new")
    for label in FORM_ORDER:
        expect(page.get_by_label(label, exact=True)).to_have_count(1)
    expect(page.get_by_role("group", name="Type")).to_be_visible()
    expect(page.get_by_role("group", name="Events")).to_be_visible()


def test_an_invalid_form_comes_back_with_the_reason_and_the_values_but_not_the_secret(
    site: Site, admin: Page
) -> None:
    """
    A destination the registry refuses: 400, the reason in an alert, the fields as typed
    (the secret excepted), and nothing created.
    """
    expect = _expect()
    page = admin
    page.goto(f"{site.url}/new")
    page.get_by_label("Name").fill("Typo")
    page.get_by_label("Destination URL").fill("ftp://127.0.0.1/in")
    page.get_by_label("Secret", exact=True).fill("typed-s3cr3t")
    page.get_by_label("Poll submitted").check()
    response = _post_response(page, page.get_by_role("button", name="Create webhook").click)
    assert response.status == 400
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("alert")).not_to_be_empty()
    expect(page.get_by_label("Name")).to_have_value("Typo")
    expect(page.get_by_label("Destination URL")).to_have_value("ftp://127.0.0.1/in")
    expect(page.get_by_label("Poll submitted")).to_be_checked()
    expect(page.get_by_label("Secret", exact=True)).to_have_value("")
    assert "typed-s3cr3t" not in page.content()
    assert site.registry.list(ADMIN) == []
