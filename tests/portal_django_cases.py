"""
examples/portal_django.py with Django's test ``Client``.

Not collected by the suite's own run (the name does not start with ``test_``):
tests/test_examples_portal.py runs pytest on this file in a fresh interpreter, as Django's
settings are once per process. Nothing here configures Django on import.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest

from pendo_webhooks import SQLiteStorage, WebhookRegistry
from pendo_webhooks.registry import Actor

from .portal_pages import Page, create_form, outside


ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/admin/webhooks"
ADMIN = Actor("setup", is_admin=True)
#: What a browser sends a form as (Django's test client would send multipart).
FORM = "application/x-www-form-urlencoded"


def _urlencoded(fields: dict[str, Any]) -> str:
    return urlencode(fields, doseq=True)


@pytest.fixture(name="example", scope="module")
def _example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, Path]]:
    """
    The example project, configured on a webhooks store and an in-memory Django database.
    """
    from django.core.management import call_command  # noqa: PLC0415

    name = "example_portal_django"  # ROOT_URLCONF names the module: it must be importable
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "portal_django.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    store = tmp_path_factory.mktemp("django") / "webhooks.sqlite3"
    module.configure(webhooks_db=str(store), django_db=":memory:")
    call_command("migrate", verbosity=0)
    yield module, store
    del sys.modules[name]


@pytest.fixture(name="registry")
def _registry(example: tuple[ModuleType, Path]) -> Iterator[WebhookRegistry]:
    """
    Another registry on the example's webhooks store, emptied after each test.
    """
    with SQLiteStorage(example[1]) as storage:
        registry = WebhookRegistry(storage)
        yield registry
        for hook in registry.list(ADMIN):
            registry.delete(ADMIN, hook.id)


def _client(username: str | None, **flags: bool) -> Any:
    from django.contrib.auth.models import User  # noqa: PLC0415
    from django.test import Client  # noqa: PLC0415

    client = Client(enforce_csrf_checks=True)  # as in production: the view is exempt
    if username is not None:
        user, _ = User.objects.get_or_create(username=username, defaults=flags)
        client.force_login(user)
    return client


def _hook(registry: WebhookRegistry) -> Any:
    return registry.create(
        ADMIN, name="NPS to CRM", url="https://hooks.example.com/nps", categories=["npsSubmitted"]
    )


@pytest.mark.parametrize(
    ("username", "flags"),
    [("ann", {"is_staff": True}), ("root", {"is_superuser": True})],
)
def test_staff_and_superusers_see_the_list(
    registry: WebhookRegistry, username: str, flags: dict[str, bool]
) -> None:
    """
    Staff and superusers are admins: the list, with every link under the prefix.
    """
    _hook(registry)

    page = _client(username, **flags).get(f"{PREFIX}/")

    html = page.content.decode()
    assert page.status_code == 200, html
    assert Page(html).heading.strip() == "Webhooks"
    assert "NPS to CRM" in html
    assert f"{PREFIX}/new" in Page(html).urls
    assert outside(Page(html).urls, PREFIX) == []
    assert page["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]


@pytest.mark.parametrize("username", ["bob", None])
def test_other_users_and_visitors_get_403(registry: WebhookRegistry, username: str | None) -> None:
    """
    A user who is neither staff nor superuser, and a visitor, get 403 and see nothing.
    """
    hook = _hook(registry)
    client = _client(username)

    for path in ("/", "/new", f"/webhooks/{hook.id}"):
        page = client.get(PREFIX + path)

        assert page.status_code == 403
        assert b"NPS to CRM" not in page.content
        assert hook.id.encode() not in page.content


def test_create_with_the_forms_csrf_token(registry: WebhookRegistry) -> None:
    """
    The create form posted with the portal's CSRF token (Django's own check is off for the
    view) makes the webhook, audited under the Django user's id; without it, 403.
    """
    from django.contrib.auth.models import User  # noqa: PLC0415

    client = _client("ann", is_staff=True)
    form = client.get(f"{PREFIX}/new")
    token = Page(form.content.decode()).hidden["csrf_token"]

    refused = client.post(f"{PREFIX}/new", _urlencoded(create_form("", "No token")), FORM)
    made = client.post(f"{PREFIX}/new", _urlencoded(create_form(token, "Guides to CRM")), FORM)

    assert refused.status_code == 403
    assert made.status_code == 200, made.content.decode()
    assert b"Webhook created" in made.content
    [hook] = registry.list(ADMIN)
    ann = User.objects.get(username="ann")
    assert (hook.name, hook.created_by) == ("Guides to CRM", f"django-user-{ann.pk}")
    detail = client.get(f"{PREFIX}/webhooks/{hook.id}")
    assert detail.status_code == 200
    assert outside(Page(detail.content.decode()).urls, PREFIX) == []


def test_the_admin_site_is_still_the_admins() -> None:
    """
    The portal's pattern takes the prefix only: the admin's pages (and its catch-all for a
    path that merely starts like the prefix) are Django's as before.
    """
    client = _client(None)

    assert client.get("/admin/login/").status_code == 200
    assert client.get("/admin/webhooksX/").status_code == 302  # the admin's: log in first
