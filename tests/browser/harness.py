"""
What the browser tests run on: the distribution's Chromium (found, never downloaded) and a
real threaded WSGI server on 127.0.0.1.

* :func:`chromium_missing` says why the browser tests cannot run here (no ``playwright``, no
  Chromium binary); the ``browser`` fixture skips with that reason;
* :class:`WSGIServer` serves any WSGI app on ``127.0.0.1`` port 0 from threads, and shuts down
  cleanly.
"""

from __future__ import annotations

import os
import shutil
import socketserver
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer as _WSGIServer


#: Names the distribution's Chromium goes by (Debian: chromium; Ubuntu, older: chromium-browser).
CHROMIUM_NAMES = ("chromium", "chromium-browser")
#: Set to a Chromium binary to use that one instead of the one found on PATH.
CHROMIUM_ENV = "PENDO_WEBHOOKS_CHROMIUM"
#: Set to a directory to save the screenshots there (the docs' are made so).
SCREENSHOTS_ENV = "PENDO_WEBHOOKS_SCREENSHOTS"
#: Every screenshot is taken at this size, so the docs' images match.
VIEWPORT = {"width": 1100, "height": 800}

_INSTALL = "install the distribution's Chromium (apt-get install chromium)"


def find_chromium(environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """
    The Chromium binary to drive, or ``None`` and the reason there is none.

    ``$PENDO_WEBHOOKS_CHROMIUM`` wins when set (and must name an executable file); otherwise
    the first of :data:`CHROMIUM_NAMES` on ``PATH``.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    override = env.get(CHROMIUM_ENV)
    if override:
        if Path(override).is_file() and os.access(override, os.X_OK):
            return override, ""
        return None, (
            f"browser tests: {CHROMIUM_ENV}={override} is not an executable file; "
            f"point it at a Chromium binary or unset it and {_INSTALL}"
        )
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return found, ""
    return (
        None,
        f"browser tests: no Chromium binary on PATH ({', '.join(CHROMIUM_NAMES)}); {_INSTALL}",
    )


def chromium_missing(environ: Mapping[str, str] | None = None) -> str | None:
    """
    Why the browser tests cannot run here, or ``None`` when they can.
    """
    try:
        import playwright.sync_api  # noqa: F401, PLC0415 - optional: the tests extra installs it
    except ImportError:
        return "browser tests: playwright is not installed (pip install -e '.[tests]')"
    return find_chromium(environ)[1] or None


def launch_args() -> list[str]:
    """
    Chromium's sandbox refuses to start as root (CI runs as root): only then go without it.
    """
    return ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


class WSGIServer(socketserver.ThreadingMixIn, _WSGIServer):
    """
    A WSGI server on 127.0.0.1, a thread per request, serving from a thread of its own.
    """

    daemon_threads = True
    block_on_close = True

    def __init__(self, app: Callable[..., Any]) -> None:
        super().__init__(("127.0.0.1", 0), _QuietHandler)
        self.set_app(app)
        self._thread = threading.Thread(target=self.serve_forever, name="wsgi-test-server")

    @property
    def url(self) -> str:
        """
        The server's base URL, without a trailing slash.
        """
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> WSGIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()  # returns once serve_forever has stopped
        self._thread.join()
        self.server_close()  # block_on_close: waits for the request threads too
