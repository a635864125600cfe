"""A teacher's and a head teacher's forms by keyboard only, in a real headless Chromium, as a checker does them.

Each test types what a person types (Tab, Enter, letters) and checks where the cursor is afterwards and what
the form kept: a keyboard user who must Tab through twenty links after each pupil, or retype a refused form,
meets it on the first class.
"""
from __future__ import annotations

import pytest

from browser_helpers import Console, keyboard_login
from node_fixtures import grid_path
from test_district_browser import district  # noqa: F401  (the fixture: a district with three schools' releases)

from playwright.async_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
def server(live_server):  # a browser needs the real clock: conftest's live_server
    return live_server


async def test_a_teacher_adds_pupils_one_after_the_other_without_leaving_the_keyboard(server, browser):
    """After a pupil is added, or refused (already in the class), the cursor is back in « Nom »: the next name
    is typed at once; a refused one is still in the boxes."""
    page = await browser.new_page()
    console = Console(page)
    base = str(server.make_url("")).rstrip("/")
    await keyboard_login(page, base, "mme.martin")
    await page.goto(f"{base}/classes/{server.ids['cp-a']}")
    await page.focus("#last_name")
    for last, first in (("Roux", "Zoé"), ("Garcia", "Léa")):
        await page.keyboard.type(last)
        await page.keyboard.press("Tab")
        await page.keyboard.type(first)
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        await expect(page.locator(".pupils")).to_contain_text(f"{first} {last}")
        await expect(page.locator("#last_name")).to_be_focused()
    await page.keyboard.type("Martin")  # Lucie Martin is in CP A already
    await page.keyboard.press("Tab")
    await page.keyboard.type("Lucie")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_contain_text("Lucie Martin est déjà dans cette classe")
    await expect(page.locator("#last_name")).to_be_focused()
    assert (await page.input_value("#last_name"), await page.input_value("#first_name")) == ("Martin", "Lucie")
    assert [m for m in console.problems() if "409" not in m] == []  # the refusal page itself answers 409


async def test_a_refused_account_keeps_what_the_head_teacher_typed(server, browser):
    """« Mme Dupont » is not a valid username: the page says why with the name still in its box, the role
    still chosen and the cursor on the name, so that only the name is retyped (never the password)."""
    page = await browser.new_page()
    base = str(server.make_url("")).rstrip("/")
    await keyboard_login(page, base, "direction", home=r"/admin/sync$")
    await page.goto(f"{base}/admin/accounts")
    await page.focus("#new-username")
    await page.keyboard.type("Mme Dupont")
    await page.keyboard.press("Tab")
    await page.keyboard.type("un mot de passe assez long")
    await page.keyboard.press("Tab")
    await page.keyboard.press("ArrowDown")  # Direction
    await page.keyboard.press("Tab")  # « Créer le compte »
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_contain_text("« Mme Dupont »")
    await expect(page.locator("#new-username")).to_be_focused()
    assert await page.input_value("#new-username") == "Mme Dupont"
    assert await page.input_value("#new-role") == "admin"
    assert await page.input_value("#new-password") == ""


async def test_on_a_phone_the_grid_says_what_it_is_within_the_screen(server, browser):
    """At 390 px the grid (10 items, score, saving) is wider than the screen and scrolls in its box; its caption
    (« … — CP A : une ligne par élève, une colonne par item ») ran on as wide as the table, cut at the screen's
    edge (seen by hand). It wraps at the screen's width and stays in view while the rows scroll."""
    context = await browser.new_context(viewport={"width": 390, "height": 800})
    page = await context.new_page()
    base = str(server.make_url("")).rstrip("/")
    await keyboard_login(page, base, "mme.martin")
    await page.goto(base + grid_path(server.ids, "cp-a", "fr-comprendre-mots"))
    table = await page.locator("table.grid").bounding_box()
    assert table["width"] > 390  # the case in question: a grid wider than the phone
    caption = await page.locator("table.grid caption").bounding_box()
    assert caption["x"] >= 0 and caption["x"] + caption["width"] <= 390, caption
    await page.locator(".grid-wrap").evaluate("box => { box.scrollLeft = 200; }")
    caption = await page.locator("table.grid caption").bounding_box()
    assert caption["x"] >= 0 and caption["x"] + caption["width"] <= 390, caption
    await context.close()


async def test_an_inspector_sorts_the_per_school_table_by_keyboard_both_ways(district, browser):
    """Enter on a column's head sorted the table and left the cursor at the top of the page (ten Tabs back to
    the table, seen by hand). The cursor stays on that head, so that a second Enter sorts the other way."""
    base, debut, *_ = district
    page = await browser.new_page()
    await keyboard_login(page, base, "cpc.martin", home=r"/district/stats$")
    await page.goto(f"{base}/district/stats/{debut.id}/ecoles")
    await page.focus("table.member-table thead a[data-col='besoin']")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await expect(page.locator("table.member-table")).to_have_attribute("data-sorted", "besoin:desc")
    await expect(page.locator("table.member-table thead a[data-col='besoin']")).to_be_focused()
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await expect(page.locator("table.member-table")).to_have_attribute("data-sorted", "besoin:asc")
    await expect(page.locator("table.member-table thead a[data-col='besoin']")).to_be_focused()
