"""
The portal examples: mounted under ``/admin/webhooks`` in Flask (in-process, with Flask's
test client) and in Django (Django's test ``Client``, in a fresh interpreter: Django's
settings are once per process, and the receiver tutorial configures them differently), and
each example run as a real server on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pendo_webhooks import SQLiteStorage, WebhookRegistry
from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.registry import Actor

from .portal_pages import Page, create_form, outside


ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/admin/webhooks"
ADMIN = Actor("setup", is_admin=True)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name[:-3]}", ROOT / "examples" / name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- Flask ---------------------------------------------------------------------------------------


@pytest.fixture(name="flask_app")
def _flask_app(tmp_path: Path) -> Iterator[tuple[Any, WebhookRegistry]]:
    example = _load("portal_flask.py")
    with SQLiteStorage(tmp_path / "webhooks.sqlite3") as storage:
        registry = WebhookRegistry(storage)
        with Dispatcher(registry) as dispatcher:
            app = example.create_app(dispatcher, secret_key=b"k" * 32)
            app.config["TESTING"] = True
            yield app, registry


def _logged_in(app: Any, user: str | None) -> Any:
    client = app.test_client()
    if user is not None:
        home = client.post("/login", data={"user": user})
        assert home.status_code == 303
    return client


def test_flask_admin_sees_the_list_under_the_prefix(
    flask_app: tuple[Any, WebhookRegistry],
) -> None:
    """
    An admin in Flask's session sees the list; every link and form on it stays under the
    prefix (the portal builds them from SCRIPT_NAME, which DispatcherMiddleware sets).
    """
    app, registry = flask_app
    registry.create(
        ADMIN, name="NPS to CRM", url="https://hooks.example.com/nps", categories=["npsSubmitted"]
    )

    page = _logged_in(app, "ann").get(f"{PREFIX}/")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert Page(html).heading.strip() == "Webhooks"
    assert "NPS to CRM" in html
    urls = Page(html).urls
    assert f"{PREFIX}/new" in urls
    assert outside(urls, PREFIX) == []
    assert page.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("user", ["bob", None])
def test_flask_others_get_403_and_see_nothing(
    flask_app: tuple[Any, WebhookRegistry], user: str | None
) -> None:
    """
    A user who is not an admin, and a visitor not logged in, get 403 on every page.
    """
    app, registry = flask_app
    hook = registry.create(
        ADMIN, name="NPS to CRM", url="https://hooks.example.com/nps", categories=["npsSubmitted"]
    )
    client = _logged_in(app, user)

    for path in ("/", "/new", f"/webhooks/{hook.id}"):
        page = client.get(PREFIX + path)

        assert page.status_code == 403
        assert "NPS to CRM" not in page.get_data(as_text=True)
        assert hook.id not in page.get_data(as_text=True)


def test_flask_create_with_the_forms_csrf_token(flask_app: tuple[Any, WebhookRegistry]) -> None:
    """
    The create form, posted with its CSRF token, makes the webhook, audited under the Flask
    user's name; the secret is shown once; without the token nothing is made.
    """
    app, registry = flask_app
    client = _logged_in(app, "ann")
    token = Page(client.get(f"{PREFIX}/new").get_data(as_text=True)).hidden["csrf_token"]

    refused = client.post(f"{PREFIX}/new", data=create_form("", "No token"))
    made = client.post(f"{PREFIX}/new", data=create_form(token, "Guides to CRM"))

    assert refused.status_code == 403
    assert made.status_code == 200, made.get_data(as_text=True)
    assert "Webhook created" in made.get_data(as_text=True)
    [hook] = registry.list(ADMIN)
    assert (hook.name, hook.created_by) == ("Guides to CRM", "ann")
    assert hook.secret is not None
    assert hook.secret.reveal() in made.get_data(as_text=True)
    assert made.headers["Cache-Control"] == "no-store"
    detail = client.get(f"{PREFIX}/webhooks/{hook.id}").get_data(as_text=True)
    assert hook.secret.reveal() not in detail
    assert outside(Page(detail).urls, PREFIX) == []


def test_flask_app_outside_the_prefix_is_untouched(
    flask_app: tuple[Any, WebhookRegistry],
) -> None:
    """
    The host's own pages are Flask's as before; logging out ends the portal too.
    """
    app, _ = flask_app
    client = _logged_in(app, "ann")

    assert "Logged in as ann" in client.get("/").get_data(as_text=True)
    assert client.post("/logout").status_code == 303
    assert client.get(f"{PREFIX}/").status_code == 403
    assert client.post("/login", data={"user": "mallory"}).status_code == 303
    assert client.get(f"{PREFIX}/").status_code == 403


# -- Django --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_django_example_in_a_fresh_interpreter() -> None:
    """
    tests/portal_django_cases.py, run by pytest in a new process: each of its tests passes.
    """
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:pendo_webhooks",
            "-o",
            "addopts=--import-mode=importlib",
            str(ROOT / "tests" / "portal_django_cases.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "\n6 passed in " in done.stdout, done.stdout


# -- the examples as servers ---------------------------------------------------------------------


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status(url: str, *, timeout: float) -> int:
    """
    The status of a GET of *url*, once the server accepts connections (within *timeout*).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                status: int = answer.status
                return status
        except urllib.error.HTTPError as exc:
            return exc.code
        except urllib.error.URLError:  # not listening yet: Django says so before it binds
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait_for(proc: subprocess.Popen[bytes], wanted: bytes, timeout: float) -> bytes:
    """
    Read *proc*'s output until *wanted* shows (or *timeout* seconds pass); return it all.
    """
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "ready"),
    [
        (["portal_flask.py", "--port", "{port}", "--db", "{db}"], b"Running on http://127.0.0.1:"),
        (
            ["portal_django.py", "runserver", "127.0.0.1:{port}", "--noreload"],
            b"Starting development server at http://127.0.0.1:",
        ),
    ],
    ids=["flask", "django"],
)
def test_the_examples_serve_on_loopback(tmp_path: Path, command: list[str], ready: bytes) -> None:
    """
    ``python examples/portal_*.py`` serves on 127.0.0.1: the portal is there, and refuses a
    visitor who is not logged in.
    """
    port = _free_port()
    db = tmp_path / "webhooks.sqlite3"
    env = {
        **os.environ,
        "PENDO_WEBHOOKS_DB": str(db),
        "PORTAL_DJANGO_DB": str(tmp_path / "d.db"),
        "PYTHONUNBUFFERED": "1",  # each line as it is printed, through the pipe
    }
    script, *args = (part.format(port=port, db=db) for part in command)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / script), *args],
        stdout=subprocess.PIPE,  # Django says it is ready on stdout, werkzeug on stderr
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env=env,
    )
    try:
        seen = _wait_for(proc, ready, timeout=60)
        assert ready in seen, seen.decode(errors="replace")
        assert _status(f"http://127.0.0.1:{port}{PREFIX}/", timeout=30) == 403
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
