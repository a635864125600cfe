"""What every browser test shares: how Chromium is launched, the keyboard login, the console watcher, screenshots.

The `browser` fixture itself is in conftest.py (it launches through `launch_chromium` here); the tests import
the rest by name (conftest modules are not importable under importlib mode).
"""
from __future__ import annotations

import contextlib
import pathlib
import re

import pytest

from web_helpers import CHROMIUM, INSTALL_CHROMIUM, PASSWORD

from playwright import async_api as playwright_api  # in the test extras; drives /usr/bin/chromium

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = pathlib.Path(__file__).resolve().parents[3] / "test-artifacts"


@contextlib.asynccontextmanager
async def launch_chromium():
    """Debian's headless Chromium through Playwright, closed on the way out."""
    if not CHROMIUM.exists():  # only reached under CI=true: elsewhere conftest skips browser tests without Chromium
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`{INSTALL_CHROMIUM}`), as .ci/run does")
    async with playwright_api.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


class Console:
    """Every console message and page error, to prove the CSP blocked nothing."""

    def __init__(self, page) -> None:
        self.messages: list[str] = []
        page.on("console", lambda m: self.messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.messages.append(f"pageerror: {e}"))

    def problems(self) -> list[str]:
        return [m for m in self.messages if m.startswith(("error", "warning", "pageerror")) or "Content Security Policy" in m]


async def shot(page, name: str) -> None:
    """A full-page screenshot in test-artifacts/ (at the top of the worktree)."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def wait_until(page, expression: str, arg=None, timeout: float = 15.0) -> None:
    """Wait until `expression` (a JavaScript expression, or a function of `arg`) is true in the page, polled from
    here. Playwright's wait_for_function, when it has to poll, evaluates the expression in the page with eval,
    which the node's Content-Security-Policy forbids (no 'unsafe-eval'): it then failed whenever the condition
    was not already true (seen in CI: the grid's cursor placed a moment after the page loaded)."""
    import asyncio
    import time
    deadline = time.monotonic() + timeout
    while not await page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout:g} s: {expression}")
        await asyncio.sleep(0.05)


async def keyboard_login(page, base: str, username: str, password: str = PASSWORD,
                         home: str = r"/(classes|district|admin)$") -> None:
    """Log in with the keyboard only; the page must then be at an address matching `home`."""
    await page.goto(base + "/login")
    # the username field has autofocus, applied by the browser shortly after load
    await wait_until(page, "document.activeElement && document.activeElement.id === 'username'")
    await page.keyboard.type(username)
    await page.keyboard.press("Tab")
    await page.keyboard.type(password)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    if not re.search(home, page.url):
        alert = await page.locator(".alert").all_inner_texts()
        raise AssertionError(f"login as {username} failed: {page.url} {alert}")
