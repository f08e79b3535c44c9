"""
Just enough WSGI for the portal: requests with urlencoded forms, responses, headers.

Strictly private.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import attrs


__all__ = [
    "MAX_BODY_BYTES",
    "SECURITY_HEADERS",
    "HTTPError",
    "PageRequest",
    "PageResponse",
    "StartResponse",
]

StartResponse = Callable[..., Any]

#: The largest form body read; a longer one is refused with 413 unread.
MAX_BODY_BYTES = 64 * 1024
_MAX_FIELDS = 200

#: Sent with every response, whatever its status.
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        (
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Not "no-referrer": with it, Chromium sends `Origin: null` on the portal's own form
    # posts, which check_same_origin refuses. "same-origin" still sends nothing elsewhere.
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)

_REASONS = {
    200: "OK",
    303: "See Other",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
}


class HTTPError(Exception):
    """
    Stop handling a request and answer with *status* and a short page. Strictly private.
    """

    def __init__(self, status: int, message: str, *, allow: str | None = None) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.allow = allow


def _wsgi_text(value: object) -> str:
    # WSGI hands over paths as latin-1 decoded bytes: get the UTF-8 text back.
    return str(value).encode("latin-1", "replace").decode("utf-8", "replace")


@attrs.frozen
class PageRequest:
    """
    The parts of a WSGI environ the portal reads. Strictly private.
    """

    environ: dict[str, Any] = attrs.field(repr=False)

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", "GET")).upper()

    @property
    def path(self) -> str:
        """
        The path below the mount point, ``"/"`` at least.
        """
        return _wsgi_text(self.environ.get("PATH_INFO", "")) or "/"

    @property
    def root(self) -> str:
        """
        The mount point (``SCRIPT_NAME``), URL-quoted, without a trailing slash.
        """
        script = _wsgi_text(self.environ.get("SCRIPT_NAME", "")).rstrip("/")
        return quote(script, safe="/")

    def url(self, path: str) -> str:
        """
        The URL path of *path* (``"/webhooks/wh_1"``) under the mount point.
        """
        return self.root + path

    def query(self, name: str) -> str | None:
        values = parse_qs(str(self.environ.get("QUERY_STRING", ""))).get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        key = "HTTP_" + name.upper().replace("-", "_")
        value = self.environ.get(key)
        return None if value is None else str(value)

    def check_same_origin(self) -> None:
        """
        Refuse a request another site's page sent (Origin, Sec-Fetch-Site).

        Raises:
            HTTPError: 403 for a cross-site request.
        """
        site = self.header("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise HTTPError(403, "This form was sent from another site.")
        origin = self.header("Origin")
        if origin is None:
            return
        if origin == "null" and site == "same-origin":
            # What a browser sends for the portal's own form when the host's pages (or a
            # proxy) set "Referrer-Policy: no-referrer"; Sec-Fetch-Site vouches for it.
            return
        # Compared with the Host the browser sent, not the scheme: a proxy that ends
        # TLS often tells the application plain http.
        host = self.header("Host") or str(self.environ.get("SERVER_NAME", ""))
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:
            netloc = ""
        if not netloc or netloc.lower() != host.lower():
            raise HTTPError(403, "This form was sent from another site.")

    def form(self) -> dict[str, list[str]]:
        """
        Read the urlencoded body, at most :data:`MAX_BODY_BYTES`.

        Raises:
            HTTPError: 415 for another content type, 411 without a length, 413 for a
                longer body, 400 for one that is not UTF-8 or has too many fields.
        """
        content_type = str(self.environ.get("CONTENT_TYPE", "")).partition(";")[0]
        if content_type.strip().lower() != "application/x-www-form-urlencoded":
            raise HTTPError(415, "Forms are sent as application/x-www-form-urlencoded.")
        length_text = str(self.environ.get("CONTENT_LENGTH", "")).strip()
        if not (length_text.isascii() and length_text.isdigit()):
            raise HTTPError(411, "The form was sent without its length.")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise HTTPError(413, "The form is too large.")
        body = self.environ["wsgi.input"].read(length)
        try:
            return parse_qs(
                body.decode("utf-8"),
                keep_blank_values=True,
                errors="strict",
                max_num_fields=_MAX_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise HTTPError(400, "The form could not be read.") from None


@attrs.frozen
class PageResponse:
    """
    A status, headers and a body. Strictly private.
    """

    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    cache: str = "no-store"

    def __call__(self, start_response: StartResponse, *, head: bool = False) -> Iterable[bytes]:
        status = f"{self.status} {_REASONS.get(self.status, 'Unknown')}"
        headers = [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", self.cache),
            *SECURITY_HEADERS,
            *self.headers,
        ]
        start_response(status, headers)
        return [] if head else [self.body]

    @classmethod
    def redirect(cls, location: str) -> PageResponse:
        """
        A 303 to *location* (a path): the browser then GETs it.
        """
        return cls(303, headers=(("Location", location),))
