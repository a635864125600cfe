"""Fixtures for the web layer: the demo app on an aiohttp test client."""
from __future__ import annotations

import pytest

from demo_app import create_demo_app
from web_helpers import Clock

@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(aiohttp_client, clock):
    return await aiohttp_client(create_demo_app(clock=clock))
