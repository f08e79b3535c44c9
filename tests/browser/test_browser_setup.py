"""
The browser tests' own machinery: where Chromium is looked for, why the tests skip without it,
and the threaded WSGI server they drive.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    CHROMIUM_ENV,
    WSGIServer,
    chromium_missing,
    find_chromium,
    launch_args,
)


def test_a_missing_override_skips_naming_what_to_install(tmp_path: Path) -> None:
    """
    PENDO_WEBHOOKS_CHROMIUM naming no binary: no browser, and the reason says what to do.
    """
    missing = tmp_path / "no-such-chromium"
    reason = chromium_missing({CHROMIUM_ENV: str(missing), "PATH": os.defpath})
    if "playwright is not installed" in (reason or ""):
        pytest.skip(reason or "")
    assert reason is not None
    assert str(missing) in reason
    assert "apt-get install chromium" in reason


def test_no_chromium_on_path_skips_naming_what_to_install(tmp_path: Path) -> None:
    """
    A PATH without chromium or chromium-browser on it: the reason names the package.
    """
    reason = (
        "browser tests: no Chromium binary on PATH (chromium, chromium-browser); "
        "install the distribution's Chromium (apt-get install chromium)"
    )
    assert find_chromium({"PATH": str(tmp_path)}) == (None, reason)


def test_chromium_is_found_on_path_or_by_override(tmp_path: Path) -> None:
    """
    The first executable chromium on PATH is used; the environment variable overrides it.
    """
    binary = tmp_path / "chromium-browser"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert find_chromium({"PATH": str(tmp_path)}) == (str(binary), "")
    other = tmp_path / "my-chrome"
    other.write_text("#!/bin/sh\n")
    assert find_chromium({CHROMIUM_ENV: str(other), "PATH": str(tmp_path)})[0] is None
    other.chmod(0o755)
    assert find_chromium({CHROMIUM_ENV: str(other), "PATH": str(tmp_path)}) == (str(other), "")


def test_the_sandbox_is_dropped_only_for_root() -> None:
    """
    Chromium's sandbox cannot run as root (CI): only then is --no-sandbox passed.
    """
    root = sys.platform != "win32" and os.geteuid() == 0
    assert launch_args() == (["--no-sandbox"] if root else [])


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = f"<!doctype html><html lang=en><title>Toy</title><h1>{environ['PATH_INFO']}</h1>"
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [body.encode()]


def test_the_server_serves_on_loopback_and_stops() -> None:
    """
    The WSGI server answers on 127.0.0.1 and, once shut down, has closed its socket and thread.
    """
    server = WSGIServer(_app)
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{server.url}/hello", timeout=10) as response:
            assert b"<h1>/hello</h1>" in response.read()
    # Not a new connection: once closed, the port may be anyone's.
    assert server.socket.fileno() == -1
    assert not server._thread.is_alive()


@pytest.mark.browser
def test_a_real_browser_renders_a_page(new_context: Callable[..., Any]) -> None:
    """
    The session's Chromium loads a page from the server; Playwright's expect() waits for it.
    """
    from playwright.sync_api import expect  # noqa: PLC0415 - optional

    with WSGIServer(_app) as server:
        page = new_context().new_page()
        page.goto(f"{server.url}/toy")
        expect(page.get_by_role("heading", level=1)).to_have_text("/toy")
        expect(page).to_have_title("Toy")
