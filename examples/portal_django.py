"""
The webhooks settings page in a Django project, under ``/admin/webhooks``, for its staff.

A whole project in one file. Install the extras (``pip install
'pendo-webhooks[portal,examples]'``), then:

    python examples/portal_django.py migrate
    python examples/portal_django.py createsuperuser
    python examples/portal_django.py runserver 127.0.0.1:8000

(``PORTAL_DJANGO_DB`` names Django's own database, ``portal_django.sqlite3`` by default;
``PENDO_WEBHOOKS_DB`` the webhooks store, ``webhooks.sqlite3`` by default;
``DJANGO_SECRET_KEY`` keeps logins across restarts.) Log in at
http://127.0.0.1:8000/admin/ and open http://127.0.0.1:8000/admin/webhooks/. A user who is
neither staff nor superuser gets 403 there.

In your own project the same three pieces go in your ``views.py`` and ``urls.py``:

- One :class:`~pendo_webhooks.portal.Portal` for the process (see :func:`make_portal`), with
  an ``actor`` callable that maps ``request.user`` to an
  :class:`~pendo_webhooks.registry.Actor`: staff and superusers are admins, other users
  are not (403), anonymous visitors are nobody (403). A stricter host checks a
  permission instead (``user.has_perm("myapp.manage_webhooks")``). Give it a
  ``csrf_key`` shared by every process (32 bytes or more: derived from ``SECRET_KEY``
  here) when the project runs in several processes.
- A view (:func:`portal_view`) that hands the request's WSGI environ to the portal: the
  prefix moves from ``PATH_INFO`` to ``SCRIPT_NAME`` (the portal builds its links and form
  actions from ``SCRIPT_NAME``), the body Django read goes in ``wsgi.input``, and the
  portal's status, headers and body become an ``HttpResponse``. The view is
  ``csrf_exempt``: the portal checks its own CSRF token on every form, and Django's check
  would read the form before the portal could.
- A URL pattern for the prefix and everything under it, before ``admin.site.urls`` (the
  admin's catch-all would take ``/admin/webhooks/`` otherwise).
"""

from __future__ import annotations

import io
import os
import secrets
import sys
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from pendo_webhooks import SQLiteStorage, WebhookRegistry
from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.portal import Portal
from pendo_webhooks.registry import Actor


#: Where the portal is mounted: the URL pattern below, and what moves to SCRIPT_NAME.
PREFIX = "/admin/webhooks"
#: Where the view puts the Django user for the actor callable (a key no client can set).
USER_KEY = "example.django_user"

_portal: Portal | None = None


def django_actor(environ: dict[str, Any]) -> Actor | None:
    """
    Who is asking: Django's user, an admin if staff or superuser; nobody if anonymous.
    """
    user = environ.get(USER_KEY)
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return Actor(f"django-user-{user.pk}", is_admin=bool(user.is_staff or user.is_superuser))


def make_portal(webhooks_db: str) -> Portal:
    """
    The portal on the webhooks store *webhooks_db* (one per process).
    """
    from django.utils.crypto import salted_hmac  # noqa: PLC0415 - needs the settings

    dispatcher = Dispatcher(WebhookRegistry(SQLiteStorage(webhooks_db)))
    # Every process derives the same key from SECRET_KEY: a form served by one is accepted
    # by another.
    csrf_key = salted_hmac("pendo-webhooks portal csrf", "", algorithm="sha256").digest()
    return Portal(dispatcher, actor=django_actor, csrf_key=csrf_key)


def _wsgi(text: str) -> str:
    # Django decodes paths to text; WSGI wants them as bytes decoded as latin-1.
    return text.encode("utf-8").decode("latin-1")


@csrf_exempt  # the portal checks its own CSRF token on every form
def portal_view(request: HttpRequest) -> HttpResponse:
    """
    Hand the request to the portal mounted at :data:`PREFIX`; return what it answers.
    """
    if _portal is None:
        raise RuntimeError("call configure() first")
    environ = dict(request.META)  # the WSGI environ, which Django keeps there
    environ["SCRIPT_NAME"] = _wsgi(request.META.get("SCRIPT_NAME", "").rstrip("/") + PREFIX)
    environ["PATH_INFO"] = _wsgi(request.path_info.removeprefix(PREFIX))
    body = request.body  # read by Django, within DATA_UPLOAD_MAX_MEMORY_SIZE
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ[USER_KEY] = request.user  # set by AuthenticationMiddleware
    answer: dict[str, Any] = {}

    def start_response(
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Any = None,  # noqa: ARG001 - no error page: the portal makes its own
    ) -> Callable[[bytes], object]:
        answer["status"], answer["headers"] = status, headers
        return lambda _: None  # the portal never uses write()

    result: Iterable[bytes] = _portal(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    code, _, reason = answer["status"].partition(" ")
    response = HttpResponse(content, status=int(code), reason=reason or None)
    for name, value in answer["headers"]:
        response[name] = value
    return response


urlpatterns: list[Any] = []


def configure(*, webhooks_db: str, django_db: str, debug: bool = False) -> None:
    """
    Configure Django for this one-file project, and build its URLs and its portal.
    """
    global _portal  # noqa: PLW0603 - one-file project
    import django  # noqa: PLC0415

    settings.configure(
        DEBUG=debug,
        # Random unless given: logins and the portal's forms then last one process.
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
        ],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": django_db}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        STATIC_URL="static/",
        USE_TZ=True,
    )
    django.setup()
    from django.contrib import admin  # noqa: PLC0415 - needs the apps loaded
    from django.urls import path, re_path  # noqa: PLC0415

    urlpatterns[:] = [
        # The prefix itself and everything under it; before the admin's catch-all.
        re_path(r"^admin/webhooks(?:/.*)?$", portal_view),
        path("admin/", admin.site.urls),
    ]
    _portal = make_portal(webhooks_db)


if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    configure(
        webhooks_db=os.environ.get("PENDO_WEBHOOKS_DB", "webhooks.sqlite3"),
        django_db=os.environ.get("PORTAL_DJANGO_DB", "portal_django.sqlite3"),
        debug=True,
    )
    execute_from_command_line(sys.argv)
