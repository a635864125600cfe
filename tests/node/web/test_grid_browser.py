"""The entry grid that cannot hurt, in a real headless Chromium on a real school node (keyboard only).

A CP teacher types a class of 25 on every exercise of the "Début de CP" campaign,
going from one exercise to the next with the grid's own link, then every saved
value is compared with what was typed. The arrows stop at a row's edges (a
correction never lands on another pupil), Home/End reach a row's ends, and an
invalid number is refused with its reason, never glued to the next keys.
"""
from __future__ import annotations

import pathlib
import random
import time

import pytest
from cli_helpers import serve
from node_fixtures import PASSWORD, build_school, free_port
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST
from preau.node.web.district import parse_campaign_text
from test_node_browser import login, tab_into_grid
from browser_helpers import ARTIFACTS, Console

from playwright.async_api import expect

pytestmark = pytest.mark.browser

CAMPAIGNS = pathlib.Path(__file__).resolve().parents[3] / "node" / "campaigns"
FIRST_NAMES = ["Lucie", "Noah", "Inès", "Léo", "Emma", "Adam", "Jade", "Louis", "Chloé", "Gabriel", "Léa",
               "Raphaël", "Manon", "Arthur", "Zoé", "Hugo", "Camille", "Nathan", "Lina", "Tom", "Sarah",
               "Mohamed", "Alice", "Yanis", "Rose"]
LAST_NAMES = ["Martin", "Bernard", "Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel",
              "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier",
              "Dupont", "Lambert", "Bonnet", "François", "Martinez"]


class _Url:
    def __init__(self, port: int) -> None:
        self.port = port

    def make_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def school(tmp_path):
    """A school whose class CP A has 25 pupils, with the real "Début de CP" campaign and the test one.

    It runs as a real `preau serve` process: the browser's keys then never wait for the node's disk writes
    in the test's own event loop.
    """
    port = free_port()
    built = build_school(tmp_path, port=port)
    store = Store.open(tmp_path / "school", cost=TEST_COST)
    try:
        s = store.login("direction", PASSWORD)
        store.add_pupils(s, built.ids["class_a"], list(zip(LAST_NAMES, FIRST_NAMES))[2:])  # 2 are there already
        cp = parse_campaign_text((CAMPAIGNS / "debut-cp.toml").read_bytes())
        store.put_campaign(s, cp)
        s.logout()
    finally:
        store.close()
    proc = serve(tmp_path / "school", port)
    try:
        yield _Url(port), built.ids, cp
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


async def _open_grid(page, url: str) -> None:
    await page.goto(url)
    await tab_into_grid(page)


async def _grid_values(page) -> dict[str, str]:
    rows = await page.eval_on_selector_all("table.grid tbody tr", "rows => rows.map(r => [r.querySelector('th').textContent, "
                                           "Array.from(r.querySelectorAll('input')).map(i => i.value).join('')])")
    return dict(rows)


async def _logged_in(browser, srv: _Url, user: str, width: int = 1280, height: int = 900):
    """A fresh French browser context at this size, logged in as `user`: (base URL, context, page, console)."""
    base = str(srv.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="fr-FR")
    page = await context.new_page()
    console = Console(page)
    await login(page, base, user)
    return base, context, page, console


async def _all_saved(page, count: int | None = None) -> None:
    """The first `count` rows (every row by default) say "enregistré"."""
    statuses = page.locator("table.grid tbody td.status")
    for i in range(await statuses.count() if count is None else count):
        await expect(statuses.nth(i)).to_have_text("enregistré", timeout=15_000)


@pytest.mark.slow
async def test_a_class_of_25_on_every_exercise_is_saved_as_typed(school, browser):
    srv, ids, cp = school
    base, context, page, console = await _logged_in(browser, srv, "mme.a")
    rng = random.Random(14)
    typed: dict[str, dict[str, str]] = {}
    started = time.monotonic()
    grid_base = f"{base}/classes/{ids['class_a']}/campaigns/{cp.id}/exercises/"
    await _open_grid(page, grid_base + cp.exercises[0].id)
    for number, exercise in enumerate(cp.exercises):
        assert page.url.endswith("/exercises/" + exercise.id), page.url
        await tab_into_grid(page)
        names = list((await _grid_values(page)).keys())
        assert len(names) == 25
        typed[exercise.id] = {}
        for name in names:
            row = "a" if rng.random() < 0.04 else "".join(rng.choice("01") for _ in range(exercise.items))
            typed[exercise.id][name] = row if row != "a" else "a" * exercise.items
            await page.keyboard.type(row)  # each row ends by moving to the next pupil's first cell
        await _all_saved(page)
        link = page.locator("a[data-grid-next]")
        await expect(link).to_be_focused()  # the table is done: the cursor waits on "next exercise"
        if number + 1 < len(cp.exercises):
            await expect(link).to_have_text(f"Exercice suivant : {cp.exercises[number + 1].name} →")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
    print(f"25 pupils x {len(cp.exercises)} exercises typed in {time.monotonic() - started:.1f} s")

    for exercise in cp.exercises:  # what the node stored, read back from a fresh page
        await page.goto(grid_base + exercise.id)
        assert await _grid_values(page) == typed[exercise.id], exercise.id
    assert console.problems() == []
    await context.close()


async def test_arrows_stop_at_the_row_edges_and_home_end_reach_them(school, browser):
    srv, ids, cp = school
    base, context, page, console = await _logged_in(browser, srv, "mme.a")
    url = f"{base}/classes/{ids['class_a']}/campaigns/{ids['campaign']}/exercises/{ids['exercise']}"
    await _open_grid(page, url)
    kb = page.keyboard
    first = page.locator("table.grid tbody tr").nth(0).locator("input")
    second = page.locator("table.grid tbody tr").nth(1).locator("input")
    third = page.locator("table.grid tbody tr").nth(2).locator("input")
    await expect(first.nth(0)).to_be_focused()  # the first empty cell
    await kb.type("11111")  # pupil 1, then the cursor is on pupil 2's first cell
    await kb.type("00000")  # pupil 2
    await kb.type("11111")  # pupil 3
    await _all_saved(page, 3)
    before = await _grid_values(page)

    # pupil 2: ← at the row's start stays there, and the correction lands on pupil 2
    await second.nth(2).focus()
    await kb.press("Home")
    await expect(second.nth(0)).to_be_focused()
    await kb.press("ArrowLeft")
    await expect(second.nth(0)).to_be_focused()
    await kb.press("Backspace")
    # → at the row's end stays there too
    await kb.press("End")
    await expect(second.nth(4)).to_be_focused()
    await kb.press("ArrowRight")
    await expect(second.nth(4)).to_be_focused()
    await kb.press("Backspace")
    await expect(page.locator("table.grid tbody td.status").nth(1)).to_have_text("enregistré")
    await page.reload()
    after = await _grid_values(page)
    names = list(before)
    assert after[names[0]] == before[names[0]] == "11111"  # pupil 1 untouched
    assert after[names[2]] == before[names[2]] == "11111"  # pupil 3 untouched
    assert after[names[1]] == "000"  # only pupil 2's first and last answers were cleared
    assert await third.count() == 5
    # the cursor now starts on the first empty cell: pupil 2's first one
    await expect(second.nth(0)).to_be_focused()

    # a wrong key: its reason shows, then goes away by itself; nothing is typed
    await kb.type("x")
    status = page.locator("table.grid tbody td.status").nth(1)
    await expect(status).to_have_text("« x » : tapez 1 (réussi), 0 (échoué) ou a (absent)")
    await expect(second.nth(0)).to_have_value("")
    await expect(status).to_have_text("", timeout=6_000)
    assert console.problems() == []
    await context.close()


async def test_an_invalid_number_is_refused_with_its_reason_and_the_valid_one_saved(school, browser):
    srv, ids, cp = school
    base, context, page, console = await _logged_in(browser, srv, "mme.a")
    url = f"{base}/classes/{ids['class_a']}/campaigns/{ids['campaign']}/exercises/fr-lire-texte"
    await _open_grid(page, url)
    kb = page.keyboard
    cell = page.locator("table.grid tbody tr").nth(0).locator("input")
    status = page.locator("table.grid tbody td.status").nth(0)
    await kb.type("300")  # max 250: refused at the last 0, with the reason
    await expect(status).to_have_text("300 : au plus 250")
    await expect(cell).to_have_value("")
    await kb.press("Enter")  # the first Enter after a refusal stays on the pupil
    await expect(cell).to_be_focused()
    await kb.type("123")  # not added to the refused digits
    await expect(cell).to_have_value("123")
    await kb.press("Enter")
    await expect(status).to_have_text("enregistré")
    await expect(page.locator("table.grid tbody tr").nth(1).locator("input")).to_be_focused()
    # a saved value, then a refused one: the cell gives back what was saved
    await kb.press("ArrowUp")
    await kb.type("999")
    await expect(status).to_have_text("999 : au plus 250")
    await expect(cell).to_have_value("123")
    await kb.type("45")  # the refused value was selected whole: these replace it
    await kb.press("Enter")
    await expect(status).to_have_text("enregistré")
    await page.reload()
    assert list((await _grid_values(page)).values())[0] == "45"
    assert console.problems() == []
    await context.close()


NARROW_JS = """() => {
    const over = [];
    for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.right > innerWidth + 1 && !el.closest('.grid-wrap, .scroll')) over.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
    }
    return {scroll: document.scrollingElement.scrollWidth, inner: innerWidth, over: over.slice(0, 5)};
}"""


async def _note_too_wide(page, base: str, pages: list[tuple[str, str]], wide: dict, *, shots: bool = True) -> None:
    """Open each page; one wider than the window goes into `wide` under its name (a screenshot of each)."""
    for name, path in pages:
        await page.goto(base + path)
        m = await page.evaluate(NARROW_JS)
        if shots:
            await page.screenshot(path=str(ARTIFACTS / f"narrow-{name}.png"), full_page=True)
        if m["scroll"] > m["inner"]:
            wide[name] = m


async def test_no_school_page_scrolls_sideways_at_390_px(school, browser):
    srv, ids, cp = school
    base = str(srv.make_url("")).rstrip("/")
    ARTIFACTS.mkdir(exist_ok=True)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
    teacher = await context.new_page()
    wide: dict = {}
    await _note_too_wide(teacher, base, [("login", "/login")], wide, shots=False)
    await login(teacher, base, "mme.a")
    c = f"/classes/{ids['class_a']}"
    g = f"{c}/campaigns/{ids['campaign']}"
    teacher_pages = [("classes", "/classes"), ("class", c), ("pupil", f"{c}/pupils/{ids['pupil_a']}"),
                     ("grid", f"{g}/exercises/{ids['exercise']}"), ("grid-timed", f"{g}/exercises/fr-lire-texte"),
                     ("profile", f"{g}/profile"), ("groups", f"{c}/campaigns/{cp.id}/groups"), ("table", f"{c}/campaigns/{cp.id}/table"),
                     ("parents", f"{c}/campaigns/{cp.id}/parents"), ("parent-sheet", f"{g}/parents/{ids['pupil_a']}")]
    await _note_too_wide(teacher, base, teacher_pages, wide)
    await context.close()
    _, context, head, _ = await _logged_in(browser, srv, "direction", 390, 844)
    await _note_too_wide(head, base, [
        ("admin-accounts", "/admin/accounts"), ("admin-classes", "/admin/classes"), ("admin-campaigns", "/admin/campaigns"),
        ("admin-release", f"/admin/release/{ids['campaign']}"), ("admin-sync", "/admin/sync"),
        ("admin-transparency", "/admin/transparency"), ("admin-backup", "/admin/backup")], wide)
    await context.close()
    assert wide == {}, "\n".join(f"{k}: {v}" for k, v in wide.items())


async def test_the_widest_grid_fits_a_768_px_tablet(school, browser):
    srv, ids, cp = school
    widest = max(cp.exercises, key=lambda e: e.items)
    assert widest.items == 20
    base, context, page, _ = await _logged_in(browser, srv, "mme.a", 768, 1024)
    await _open_grid(page, f"{base}/classes/{ids['class_a']}/campaigns/{cp.id}/exercises/{widest.id}")
    await page.screenshot(path=str(ARTIFACTS / "tablet-grid.png"))
    edges = await page.evaluate("""() => ({inner: innerWidth, scroll: document.scrollingElement.scrollWidth,
        score: document.querySelector('table.grid tbody td.score').getBoundingClientRect().right,
        status: document.querySelector('table.grid tbody td.status').getBoundingClientRect().right})""")
    assert edges["scroll"] <= edges["inner"] and edges["score"] <= edges["inner"], edges
    # printed, even on A4 portrait (1 cm margins: about 718 px wide), the table is whole, nothing cut off
    await page.set_viewport_size({"width": 718, "height": 1000})
    await page.emulate_media(media="print")
    printed = await page.evaluate("""() => { const t = document.querySelector('table.grid');
        return {right: t.getBoundingClientRect().right, inner: innerWidth,
                cut: document.querySelector('.grid-wrap').scrollWidth - document.querySelector('.grid-wrap').clientWidth}; }""")
    assert printed["right"] <= printed["inner"] and printed["cut"] <= 0, printed
    await page.screenshot(path=str(ARTIFACTS / "grid-print.png"), full_page=True)
    await context.close()
