"""
The webhooks settings page for a host's admins: :class:`Portal`, a WSGI application.

What Pendo's own webhooks page does (the list, create, "Test", enable and disable, edit,
delete with confirmation), and beyond: each webhook's deliveries and their attempts,
redelivery, secret rotation, health (and what needs attention: webhooks the library
disabled, failing destinations, dead deliveries), operations alerts and PII filters.
Server-rendered HTML without any JavaScript, CSRF tokens on every form, strict security
headers, usable with the keyboard and a screen reader. Mount it in Flask, Django, or any
WSGI server (FastAPI and Starlette through a WSGI adapter); the host says who is asking,
and only admins see anything.

Needs the ``portal`` extra (Jinja2): ``pip install 'pendo-webhooks[portal]'``.

>>> from pendo_webhooks.dispatcher import Dispatcher
>>> from pendo_webhooks.registry import Actor, WebhookRegistry
>>> from pendo_webhooks.storage import InMemoryStorage
>>> dispatcher = Dispatcher(WebhookRegistry(InMemoryStorage()))
>>> def who(environ):  # the host's session lookup
...     return Actor("u-1", is_admin=True) if environ.get("REMOTE_USER") == "ada" else None
>>> portal = Portal(dispatcher, actor=who, title="Acme webhooks")
>>> portal.title
'Acme webhooks'
>>> dispatcher.close()
"""

from __future__ import annotations

from ._app import Portal


__all__ = ["Portal"]
