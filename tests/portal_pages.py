"""
Reading the portal's pages in tests: their forms' hidden fields and every URL they point at.
"""

from __future__ import annotations

from html.parser import HTMLParser


__all__ = ["Page", "create_form", "outside"]


class Page(HTMLParser):
    """
    What a page holds: hidden inputs by name, URLs (``href``, ``action``, ``src``), ``<h1>``.

    >>> page = Page('<h1>Webhooks</h1><a href="/x/new">New</a><form action="/x/new">'
    ...             '<input type="hidden" name="csrf_token" value="t"></form>')
    >>> page.heading, page.urls, page.hidden
    ('Webhooks', ['/x/new', '/x/new'], {'csrf_token': 't'})
    """

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.hidden: dict[str, str] = {}
        self.urls: list[str] = []
        self.heading = ""
        self._in_h1 = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        for name in ("href", "action", "src"):
            if name in found:
                self.urls.append(found[name])
        if tag == "input" and found.get("type") == "hidden" and "name" in found:
            self.hidden[found["name"]] = found.get("value", "")
        if tag == "h1":
            self._in_h1 = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.heading += data


def create_form(csrf_token: str, name: str) -> dict[str, str | list[str]]:
    """
    The create form, filled in: a URL webhook for NPS and guide events, its secret generated.
    """
    return {
        "csrf_token": csrf_token,
        "name": name,
        "kind": "url",
        "url": "https://hooks.example.com/pendo",
        "secret": "",
        "categories": ["npsSubmitted", "guideDisplayed"],
        "filters": "",
    }


def outside(urls: list[str], prefix: str) -> list[str]:
    """
    The *urls* that leave the mount point *prefix* (a fragment stays on the page).

    >>> outside(["/admin/webhooks/new", "#main", "/static/x.css", "https://x.example/"],
    ...         "/admin/webhooks")
    ['/static/x.css', 'https://x.example/']
    """
    return [u for u in urls if not u.startswith((prefix + "/", "#"))]
