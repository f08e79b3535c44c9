"""
Real-browser fixtures: one headless Chromium per module (the distribution's, driven by
Playwright), a fresh context per test, and screenshots.

``screenshot(page, name)`` saves ``name.png`` into ``$PENDO_WEBHOOKS_SCREENSHOTS`` when set
(``docs/howto/portal/`` is made that way), else into the test's ``tmp_path``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .harness import SCREENSHOTS_ENV, VIEWPORT, chromium_missing, find_chromium, launch_args


if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page


@functools.cache
def _missing() -> str | None:
    return chromium_missing()


# Module, not session: while Playwright's sync API is started, its asyncio loop counts as
# running in this thread, and asyncio.run() in any later test (tests/test_receiving.py)
# fails. Stopped after each module, it is gone before the rest of the suite runs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """
    One headless Chromium per test module; skips, saying why, where there is none.
    """
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415 - optional

    # The machine may be busy (CI, several suites at once): wait on conditions a while longer.
    expect.set_options(timeout=10_000)

    executable, _ = find_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=launch_args()
        )
        yield browser
        browser.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """
    Make fresh browser contexts (no cookies, fixed viewport, English); all closed afterwards.
    """
    made: list[BrowserContext] = []

    def make(**kwargs: Any) -> BrowserContext:
        context = browser.new_context(viewport=VIEWPORT, locale="en-US", **kwargs)
        context.set_default_timeout(10_000)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """
    ``screenshot(page, "list")`` saves the page as ``list.png``, and returns the path.
    """
    directory = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = directory / f"{name}.png"
        page.screenshot(path=path, full_page=True, animations="disabled")
        return path

    return take
