"""A teacher's daily pages as a phone shows them, in a real headless Chromium (keyboard only)."""
from __future__ import annotations

import pytest

from browser_helpers import ARTIFACTS, Console, keyboard_login, wait_until
from node_fixtures import grid_path

pytestmark = pytest.mark.browser

EDGES = """() => { const box = e => e.getBoundingClientRect();
  const row = document.querySelector('table.grid tbody tr:nth-child(2)');
  const input = document.activeElement, at = box(input);
  return {inner: innerWidth, page: document.documentElement.scrollWidth, table: box(document.querySelector('table.grid')).width,
          status: box(row.querySelector('td.status')).toJSON(), said: row.querySelector('td.status').textContent,
          head: box(document.querySelector('table.grid th.status-col')).toJSON(),
          head_text: document.querySelector('table.grid th.status-col').innerText,
          covered: at.left < box(row.querySelector('th')).right - 1 || at.right > box(row.querySelector('td.status')).left + 1
                   || document.elementFromPoint(at.left + at.width / 2, at.top + at.height / 2) !== input}; }"""


@pytest.fixture
def server(live_server):  # a browser needs the real clock: conftest's live_server
    return live_server


@pytest.mark.parametrize("width", [390, 1280])
async def test_the_grid_says_each_row_saved_without_a_sideways_scroll(server, browser, width):
    """At 390 px the « Enregistrement » column was past the screen's right edge: a teacher typing on a phone
    saw neither « enregistré » nor why a key was refused without scrolling the grid sideways. It now stays at
    the grid's right edge while the items scroll under it, and the cell being typed is never under it or under
    the names; the page itself never scrolls sideways."""
    context = await browser.new_context(viewport={"width": width, "height": 800}, locale="fr-FR")
    page = await context.new_page()
    console = Console(page)
    base = str(server.make_url("")).rstrip("/")
    await keyboard_login(page, base, "mme.martin")
    await page.goto(base + grid_path(server.ids, "cp-a", "fr-comprendre-mots"))
    await page.focus("table.grid tbody tr:nth-child(2) input")
    row = "table.grid tbody tr:nth-child(2) td.status"
    seen = []
    for key in "1011011101":
        await page.keyboard.type(key)
        if len(seen) < 9:
            seen.append(await page.evaluate(EDGES))
    await page.focus("table.grid tbody tr:nth-child(2) input >> nth=9")
    await wait_until(page, "s => document.querySelector(s).textContent === 'enregistré'", row)
    saved = await page.evaluate(EDGES)
    await page.keyboard.type("x")  # refused, and the hint says why in the status cell
    await wait_until(page, "s => document.querySelector(s).textContent.includes('tapez 1')", row)
    hinted = await page.evaluate(EDGES)
    for _ in range(9):  # back, cell by cell, to the row's first cell, next to the names
        await page.keyboard.press("ArrowLeft")
        seen.append(await page.evaluate(EDGES))
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"daily-grid-{width}.png"))
    for m in (saved, hinted):
        assert m["page"] <= m["inner"], m  # the page never scrolls sideways
        assert 0 <= m["status"]["left"] and m["status"]["right"] <= m["inner"], m  # the status is on the screen
        assert 0 <= m["head"]["left"] and m["head"]["right"] <= m["inner"], m
    assert [i for i, m in enumerate(seen + [saved, hinted]) if m["covered"]] == []  # the cell typed in is never hidden
    if width == 390:
        assert saved["table"] > 390  # the case in question: a grid wider than the phone, scrolling in its box
        assert hinted["head_text"] == "État"
    else:
        assert saved["table"] <= width and hinted["head_text"] == "Enregistrement"
    assert console.problems() == []
    await context.close()
