"""Helpers the web tests import by name (conftest modules are not importable under importlib mode)."""
from __future__ import annotations

import re

from demo_app import PASSWORD

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
