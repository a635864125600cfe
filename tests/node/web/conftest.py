"""Fixtures for the web layer: the real node app (`create_app`) on a real school data folder, with a hand-moved clock."""
from __future__ import annotations

import pytest

from node_fixtures import build_classroom
from preau.node.app import create_app
from browser_helpers import launch_chromium
from web_helpers import CHROMIUM, INSTALL_CHROMIUM, Clock, in_ci

_SKIPPED_BROWSER = pytest.StashKey[int]()


def pytest_collection_modifyitems(config, items):
    """Without Chromium, browser tests skip on a developer's machine (README: Python and make are enough);
    under CI=true they run and fail in the `browser` fixture instead."""
    if CHROMIUM.exists() or in_ci():
        return
    browser = [item for item in items if item.get_closest_marker("browser")]
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}: install it with `{INSTALL_CHROMIUM}` to run the browser tests")
    for item in browser:
        item.add_marker(skip)
    config.stash[_SKIPPED_BROWSER] = len(browser)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = config.stash.get(_SKIPPED_BROWSER, 0)
    if skipped:
        terminalreporter.write_line(
            f"browser tests: {skipped} did not run, because there is no Chromium at {CHROMIUM}. "
            f"Install it with `{INSTALL_CHROMIUM}` to run them (with CI=true a missing browser is a failure).",
            yellow=True, bold=True)


@pytest.fixture
async def browser():
    """Debian's headless Chromium (browser_helpers.launch_chromium), one per test."""
    async with launch_chromium() as b:
        yield b


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def classroom(tmp_path):
    """The school of node_fixtures.CLASSROOM, built through the store's public API: `.settings`, `.ids`."""
    return build_classroom(tmp_path)


@pytest.fixture
def ids(classroom) -> dict[str, str]:
    return classroom.ids


@pytest.fixture
async def server(aiohttp_server, classroom, clock):
    return await aiohttp_server(create_app(classroom.settings, clock=clock))


@pytest.fixture
async def live_server(classroom):
    """The classroom's real app on 127.0.0.1 with the real clock, for a browser; `.ids` are the classroom's."""
    from aiohttp.test_utils import TestServer
    srv = TestServer(create_app(classroom.settings), host="127.0.0.1")
    await srv.start_server()
    srv.ids = classroom.ids
    yield srv
    await srv.close()


@pytest.fixture
async def client(aiohttp_client, server):
    return await aiohttp_client(server)
