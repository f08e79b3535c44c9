"""
The webhooks settings page in a Flask app, under ``/admin/webhooks``, for the app's admins.

Install the extras (``pip install 'pendo-webhooks[portal,examples]'``) and run it:

    python examples/portal_flask.py --db webhooks.sqlite3

then open http://127.0.0.1:5000/, log in as ``ann`` (an admin) and follow the link to the
webhooks; ``bob`` (not an admin) gets 403 there.

How it fits together:

- :class:`~pendo_webhooks.portal.Portal` is a WSGI application. werkzeug's
  ``DispatcherMiddleware`` hands it every request under ``/admin/webhooks``, with that
  prefix moved from ``PATH_INFO`` to ``SCRIPT_NAME``: the portal builds its links and form
  actions from ``SCRIPT_NAME``, so they all stay under the prefix.
- The portal runs outside Flask's request context, so the ``actor`` callable reads the
  user from the WSGI environ itself: it opens Flask's own session from the request's
  cookie (``app.session_interface.open_session``), exactly as Flask would, and maps your
  notion of a user to an :class:`~pendo_webhooks.registry.Actor`. ``None`` (nobody logged
  in), or an actor that is not an admin, gets 403 and sees nothing. The actor's id is
  what the audit log records.
- The portal checks its own CSRF token on every form, so nothing else is needed for it
  (Flask-WTF's ``CSRFProtect`` does not see these requests). Give it a ``csrf_key`` that
  every process of the app shares (32 bytes or more, a secret like ``SECRET_KEY``) when
  the app runs in several processes; the default is random per process.

The login here is a stand-in: use your app's own (Flask-Login, your SSO). With FastAPI or
Starlette, mount the same WSGI application through a WSGI adapter, e.g. a2wsgi's
``WSGIMiddleware`` (``app.mount("/admin/webhooks", WSGIMiddleware(portal))``), and have the
``actor`` callable read your session or token from the environ's ``HTTP_COOKIE`` or
``HTTP_AUTHORIZATION``; this project does not depend on an adapter, so that is not tested
here (Starlette's own ``starlette.middleware.wsgi`` is deprecated).
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, redirect, render_template_string, request, session, url_for
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response

from pendo_webhooks import SQLiteStorage, WebhookRegistry
from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.portal import Portal
from pendo_webhooks.registry import Actor


#: Where the portal is mounted.
PREFIX = "/admin/webhooks"

#: Stand-ins for your users: who exists, and who is an admin.
USERS: Mapping[str, bool] = {"ann": True, "bob": False}

_HOME = """<!doctype html>
<html lang="en"><head><title>Example app</title></head><body>
<h1>Example app</h1>
{% if user %}
  <p>Logged in as {{ user }}. <a href="{{ prefix }}/">Webhooks</a></p>
  <form method="post" action="{{ url_for('logout') }}"><button>Log out</button></form>
{% else %}
  <form method="post" action="{{ url_for('login') }}">
    <label for="user">User</label>
    <select id="user" name="user">{% for name in users %}<option>{{ name }}</option>{% endfor %}
    </select>
    <button>Log in</button>
  </form>
{% endif %}
</body></html>
"""


def create_app(
    dispatcher: Dispatcher, *, secret_key: bytes, csrf_key: bytes | None = None
) -> Flask:
    """
    A Flask app with a stand-in login, and the portal mounted under :data:`PREFIX`.
    """
    app = Flask(__name__)
    app.secret_key = secret_key
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")

    @app.get("/")
    def home() -> str:
        return render_template_string(
            _HOME, user=session.get("user"), users=list(USERS), prefix=PREFIX
        )

    @app.post("/login")
    def login() -> Response:
        # A stand-in: anyone may be anyone. Use your real login here.
        name = request.form.get("user", "")
        if name in USERS:
            session.clear()
            session["user"] = name
        return redirect(url_for("home"), code=303)

    @app.post("/logout")
    def logout() -> Response:
        session.clear()
        return redirect(url_for("home"), code=303)

    def actor(environ: dict[str, Any]) -> Actor | None:
        """
        Who is asking: the user in Flask's session cookie, admin or not; else nobody.
        """
        flask_session = app.session_interface.open_session(app, app.request_class(environ))
        name = None if flask_session is None else flask_session.get("user")
        if not isinstance(name, str) or name not in USERS:
            return None
        return Actor(name, is_admin=USERS[name])

    portal = Portal(dispatcher, actor=actor, csrf_key=csrf_key)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {PREFIX: portal})  # type: ignore[method-assign]
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--db", default="webhooks.sqlite3", help="the webhooks store")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    with SQLiteStorage(args.db) as storage, Dispatcher(WebhookRegistry(storage)) as dispatcher:
        # One process here, so random keys do; several processes share theirs.
        app = create_app(dispatcher, secret_key=secrets.token_bytes(32))
        app.run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
