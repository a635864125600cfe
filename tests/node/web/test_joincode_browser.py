"""The short join code in a real headless Chromium, on two real `create_app` servers on 127.0.0.1.

The district's invitations page shows the code large, in its groups, with the district's address; the
head teacher types it with the keyboard only: first with one typo (refused in French, naming the group,
what she typed kept in the fields, nothing sent), then right (enrolled, the first sync in the same session).
"""
from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestServer

from node_fixtures import PASSWORD, build_district, build_school, free_port
from preau.node.app import create_app
from preau.node.federation.store import FedStore
from browser_helpers import ARTIFACTS, Console, keyboard_login, wait_until

from playwright.async_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
async def servers(tmp_path):
    dport, sport = free_port(), free_port()
    district = build_district(tmp_path, port=dport)
    school = build_school(tmp_path, port=sport, with_campaign=False, pupils=False)
    started = []
    for built, port in ((district, dport), (school, sport)):
        srv = TestServer(create_app(built.settings), host="127.0.0.1", port=port)
        await srv.start_server()
        started.append(srv)
    yield started[0], started[1], district
    for srv in reversed(started):
        await srv.close()


async def _tab_to(page, element_id: str, limit: int = 40) -> None:
    """Press Tab until the field has the focus, as a keyboard user does."""
    for _ in range(limit):
        if await page.evaluate("id => document.activeElement && document.activeElement.id === id", element_id):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"#{element_id} never got the focus by Tab")


def _failures(district) -> int:
    fed = FedStore(district.settings.data_dir / "federation.db")
    try:
        return sum(inv["code_failures"] for inv in fed.invitations())
    finally:
        fed.close()


async def test_the_head_teacher_types_the_short_code_with_the_keyboard(servers, browser):
    district_srv, school_srv, district = servers
    dbase = str(district_srv.make_url("")).rstrip("/")
    sbase = str(school_srv.make_url("")).rstrip("/")
    d_ctx = await browser.new_context(viewport={"width": 1200, "height": 900}, locale="fr-FR")
    h_ctx = await browser.new_context(viewport={"width": 1200, "height": 900}, locale="fr-FR")
    d, h = await d_ctx.new_page(), await h_ctx.new_page()
    consoles = [Console(d), Console(h)]

    # The district makes the invitation: the code is shown large, in 4 groups, with the address.
    await keyboard_login(d, dbase, "ien", PASSWORD, home=r"^(?!.*/login)")
    await d.goto(dbase + "/district/invitations")
    await d.fill("#uai", "0751234J")
    await d.get_by_role("button", name="Créer l'invitation").click()
    shown = (await d.locator("#join-code").inner_text()).strip()
    assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", shown), shown
    assert await d.locator("#join-code .join-group").count() == 4
    size = await d.locator("#join-code").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 28  # large enough to read from across a desk, and to copy without error
    address = (await d.locator("#join-address").inner_text()).split(" : ", 1)[1].strip()
    assert address == dbase
    ARTIFACTS.mkdir(exist_ok=True)
    await d.screenshot(path=str(ARTIFACTS / "joincode-district.png"), full_page=True)

    # The head teacher types it with one typo (group 2), lower case, spaces for dashes: refused before any traffic.
    await keyboard_login(h, sbase, "direction", PASSWORD, home=r"^(?!.*/login)")
    await h.goto(sbase + "/admin/sync")
    await _tab_to(h, "invitation")
    typo = shown[:7] + ("0" if shown[7] != "0" else "1") + shown[8:]
    typed = typo.lower().replace("-", " ")
    await h.keyboard.type(typed)
    await h.keyboard.press("Tab")
    await h.keyboard.type(address.removeprefix("http://"))
    async with h.expect_navigation():
        await h.keyboard.press("Enter")
    alert = h.locator(".alert")
    await expect(alert).to_contain_text("Le groupe 2")
    await expect(alert).to_contain_text("rien n'a été envoyé")
    assert await h.input_value("#invitation") == typed  # nothing typed is lost
    assert await h.input_value("#district") == address.removeprefix("http://")
    assert _failures(district) == 0  # the district heard nothing
    await h.screenshot(path=str(ARTIFACTS / "joincode-typo.png"), full_page=True)

    # Corrected by keyboard: the refused page puts the cursor back in the code; select all, type it right, Enter.
    await wait_until(h, "document.activeElement && document.activeElement.id === 'invitation'")
    await h.keyboard.press("Control+A")
    await h.keyboard.type(shown)
    async with h.expect_navigation():
        await h.keyboard.press("Enter")
    await expect(h.locator(".notice")).to_contain_text("rattachée")
    assert not await h.locator("#invitation").count()  # joined: the form is gone
    fed = FedStore(district.settings.data_dir / "federation.db")
    try:
        schools = [p for p in fed.peers() if p["uai"] == "0751234J"]
    finally:
        fed.close()
    assert len(schools) == 1 and schools[0]["last_contact"]  # enrolled, and the first sync ran
    for c in consoles:  # the refusal's own 400 answer is the only "error" the browser may note
        problems = [m for m in c.problems() if "status of 400" not in m]
        assert not problems, problems
    await d_ctx.close()
    await h_ctx.close()
