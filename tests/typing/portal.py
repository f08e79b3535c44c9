"""
Type-checked only, never run: the portal is a WSGI application, mounted as hosts do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pendo_webhooks.dispatcher import Dispatcher
from pendo_webhooks.portal import Portal
from pendo_webhooks.registry import Actor, WebhookRegistry
from pendo_webhooks.storage import InMemoryStorage


if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment


def who(environ: WSGIEnvironment) -> Actor | None:
    user = environ.get("REMOTE_USER")
    return Actor(user, is_admin=True) if isinstance(user, str) else None


def who_from_object_dict(environ: dict[str, object]) -> Actor | None:
    return None


dispatcher = Dispatcher(WebhookRegistry(InMemoryStorage()))
app: WSGIApplication = Portal(dispatcher, who, csrf_key=b"0" * 32, title="Webhooks")
also: WSGIApplication = Portal(dispatcher, actor=who_from_object_dict)
