"""
The portal's templates and stylesheet, packaged with it, and how values are shown.

Strictly private.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ..events import EventCategory
from ..exceptions import ConfigurationError
from ..registry import Webhook, WebhookKind
from ._forms import CATEGORY_LABELS, OPERATIONS_LABELS
from ._wsgi import PageRequest


if TYPE_CHECKING:
    import jinja2


__all__ = ["Pages", "environment", "stylesheet"]


def _kind_label(webhook: Webhook) -> str:
    return "Segment.com" if webhook.kind is WebhookKind.SEGMENT else "URL"


def _destination(webhook: Webhook) -> str:
    # The user info and the query string may carry tokens: neither is shown.
    parts = urlsplit(webhook.destination)
    netloc = parts.netloc.rpartition("@")[2]
    query = "?\u2026" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def _categories(webhook: Webhook) -> str:
    # The labels the create form shows: Pendo events' and operations events' alike.
    names = [
        CATEGORY_LABELS[c] if isinstance(c, EventCategory) else OPERATIONS_LABELS[c]
        for c in webhook.categories
    ]
    return ", ".join(sorted(names))


def _quote(value: str) -> str:
    return quote(value, safe="")


def _excerpt(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def environment() -> jinja2.Environment:
    """
    The portal's Jinja2 environment: packaged templates, autoescaping everything.

    Raises:
        ConfigurationError: If Jinja2 is not installed.
    """
    try:
        import jinja2  # noqa: PLC0415 - an optional dependency, the portal extra's
    except ImportError:
        msg = (
            "pendo_webhooks.portal needs Jinja2, which is not installed: "
            "pip install 'pendo-webhooks[portal]'"
        )
        raise ConfigurationError(msg) from None
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pendo_webhooks.portal", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = _quote
    env.globals.update(
        kind_label=_kind_label,
        destination=_destination,
        categories=_categories,
        excerpt=_excerpt,
        category_labels=CATEGORY_LABELS,
        operations_labels=OPERATIONS_LABELS,
    )
    return env


def stylesheet() -> bytes:
    """
    The packaged ``portal.css``.
    """
    return resources.files("pendo_webhooks.portal").joinpath("static/portal.css").read_bytes()


class Pages:
    """
    Renders the portal's pages for one portal (thread-safe: Jinja2 renders concurrently).

    Strictly private.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self._env = environment()

    def render(self, template: str, request: PageRequest, **context: Any) -> bytes:
        """
        Render *template* for *request*: links under its mount point, the portal's title.
        """
        page = self._env.get_template(template).render(
            url=request.url, portal_title=self.title, **context
        )
        return page.encode("utf-8")
