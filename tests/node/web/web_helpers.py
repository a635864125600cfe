"""Helpers the web tests import by name (conftest modules are not importable under importlib mode)."""
from __future__ import annotations

import os
import pathlib
import re


# Debian's Chromium, driven through Playwright (never `playwright install`); .ci/run installs it.
# PREAU_TEST_CHROMIUM points elsewhere (test_browser_skip uses a missing path to play a machine without one).
CHROMIUM = pathlib.Path(os.environ.get("PREAU_TEST_CHROMIUM", "/usr/bin/chromium"))
INSTALL_CHROMIUM = "sudo apt-get install chromium"


def in_ci() -> bool:
    """Under CI a missing browser is a failure; on a developer's machine, a skip said out loud."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")

PASSWORD = "correct horse battery"  # every account of the test data folders (node_fixtures)

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A hand-moved clock for session expiry and lockout tests."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def csrf_of(client, path: str = "/login") -> str:
    resp = await client.get(path)
    match = CSRF_RE.search(await resp.text())
    assert match, f"no CSRF token on {path} ({resp.status})"
    return match.group(1)


async def login(client, username: str = "mme.martin", password: str = PASSWORD):
    token = await csrf_of(client)
    return await client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                             allow_redirects=False)
