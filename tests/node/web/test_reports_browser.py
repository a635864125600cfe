"""What teachers use results for, in a real headless Chromium on a real `preau serve` (class_reports).

A class of 25 on the real "Début de CP" campaign, most results already in the store; the teacher types one
more row with the keyboard, reaches the three pages from the class page with the keyboard, and finds that row
in the support groups. The colour table says every group in letters as well as colours and patterns; the
parents' sheets print one A4 page per pupil (counted in the PDF Chromium makes). Screenshots feed docs/img/.
"""
from __future__ import annotations

import random
import re

import pytest
from cli_helpers import serve
from node_fixtures import PASSWORD, build_school, free_port
from preau.node.records.store import ResultInput, Store
from preau.node.records.vault import TEST_COST
from preau.node.web.district import parse_campaign_text
from test_grid_browser import CAMPAIGNS, FIRST_NAMES, LAST_NAMES, _logged_in, _Url
from test_node_browser import tab_into_grid
from browser_helpers import ARTIFACTS

from playwright.async_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
def school(tmp_path):
    """CP A with 25 pupils and results on every exercise but the first, for all but Lucie Martin."""
    port = free_port()
    built = build_school(tmp_path, port=port)
    store = Store.open(tmp_path / "school", cost=TEST_COST)
    rng = random.Random(7)
    try:
        s = store.login("direction", PASSWORD)
        store.add_pupils(s, built.ids["class_a"], list(zip(LAST_NAMES, FIRST_NAMES))[2:])
        cp = parse_campaign_text((CAMPAIGNS / "debut-cp.toml").read_bytes())
        store.put_campaign(s, cp)
        rows = []
        for p in store.list_pupils(s, built.ids["class_a"]):
            if p.first_name == "Lucie":
                continue
            for ex in cp.exercises:
                if rng.random() < 0.03:
                    rows.append(ResultInput(p.id, ex.id, "absent"))
                    continue
                right = rng.random() ** 0.6  # most pupils do well, a few do not
                rows.append(ResultInput(p.id, ex.id, answers=tuple(int(rng.random() < right) for _ in range(ex.items))))
        store.save_results(s, cp.id, rows)
        s.logout()
    finally:
        store.close()
    proc = serve(tmp_path / "school", port)
    try:
        yield _Url(port), built.ids, cp
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


async def _doc_shot(page, name: str) -> None:
    (ARTIFACTS / "doc").mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "doc" / f"{name}.png"))


async def _tab_to(page, name: str, limit: int = 80) -> None:
    """Tab until the link called `name` has the focus (keyboard only)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement && document.activeElement.textContent.trim()") == name:
            return
    raise AssertionError(f"no link {name!r} reached with Tab")


@pytest.mark.slow
async def test_support_groups_table_and_parents_sheets_by_keyboard(school, browser):
    srv, ids, cp = school
    base, context, page, console = await _logged_in(browser, srv, "mme.a")
    first = cp.exercises[0]
    # Lucie Martin: every item wrong on the first exercise, typed in the grid
    await page.goto(f"{base}/classes/{ids['class_a']}/campaigns/{cp.id}/exercises/{first.id}")
    await tab_into_grid(page)
    row = page.locator("table.grid tbody tr", has_text="Lucie Martin")
    await row.locator("input").first.focus()
    await page.keyboard.type("0" * first.items)
    await expect(row.locator("td.status")).to_have_text("enregistré", timeout=15_000)

    # the class page, then "Groupes de besoin" with the keyboard
    await page.goto(f"{base}/classes/{ids['class_a']}")
    await _tab_to(page, "Groupes de besoin")
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("Groupes de besoin — CP A")
    block = page.locator("section.report-block", has=page.locator("h3", has_text=first.name))
    await expect(block.locator("li").first).to_contain_text("Lucie Martin")
    french = page.locator("section.report-block", has=page.locator("h2", has_text="Français : élèves à aider"))
    await expect(french.locator("tbody tr").first).to_be_visible()
    await _doc_shot(page, "teacher-groups")

    # the colour table: each group has a letter too, and besoin/fragile a pattern of their own
    await page.goto(f"{base}/classes/{ids['class_a']}")
    await _tab_to(page, "Tableau de la classe")
    await page.keyboard.press("Enter")
    await expect(page.locator("table.colours tbody tr")).to_have_count(25)
    cells = await page.eval_on_selector_all("table.colours td[class^='c-']:not(.c-none)", """cells => cells.map(c => [
        c.className, c.querySelector('.code').textContent.trim(), getComputedStyle(c).backgroundImage])""")
    assert len(cells) > 25 * 10
    letters = {cls: code for cls, code, _ in cells}
    assert letters == {"c-besoin": "B", "c-fragile": "F", "c-seuil2": "S", "c-absent": "Abs"}, letters
    patterns = {cls: image for cls, _, image in cells}
    assert patterns["c-besoin"] != "none" and patterns["c-fragile"] != "none"
    assert patterns["c-besoin"] != patterns["c-fragile"]
    lucie = page.locator("table.colours tbody tr", has_text="Lucie Martin")
    await expect(lucie.locator("td").first).to_have_class("c-besoin")
    await _doc_shot(page, "teacher-table")
    # printed on A4 portrait (about 718 px inside 1 cm margins): every exercise column on the page
    await page.set_viewport_size({"width": 718, "height": 1000})
    await page.emulate_media(media="print")
    printed = await page.evaluate("""() => ({right: document.querySelector('table.colours').getBoundingClientRect().right,
        inner: innerWidth})""")
    assert printed["right"] <= printed["inner"], printed
    await page.evaluate("document.documentElement.style.filter = 'grayscale(1)'")
    await page.screenshot(path=str(ARTIFACTS / "doc" / "teacher-table-grey.png"))
    await page.evaluate("document.documentElement.style.filter = ''")
    await page.emulate_media(media="screen")
    await page.set_viewport_size({"width": 1280, "height": 900})

    # the parents' sheets: one A4 page each, in plain words
    await page.goto(f"{base}/classes/{ids['class_a']}")
    await _tab_to(page, "Fiches pour les parents")
    await page.keyboard.press("Enter")
    sheets = page.locator("article.parent-sheet")
    await expect(sheets).to_have_count(25)
    lucie_sheet = sheets.filter(has_text="Les évaluations de Lucie Martin")
    await expect(lucie_sheet).to_contain_text("À travailler : votre enfant a besoin d'aide")
    await expect(lucie_sheet).to_contain_text("Pas encore fait.")  # the exercises nobody typed for her
    text = (await lucie_sheet.inner_text()).lower()
    for jargon in ("seuil", "groupe", "item", "score", "fragile"):
        assert jargon not in text, jargon
    await page.set_viewport_size({"width": 681, "height": 1009})  # A4 inside 15 mm margins, at 96 px per inch
    await page.emulate_media(media="print")
    tallest = await page.eval_on_selector_all("article.parent-sheet", "s => Math.max(...s.map(e => e.scrollHeight))")
    await page.screenshot(path=str(ARTIFACTS / "parents-print.png"), full_page=True)
    assert tallest <= 1009, tallest
    pdf = await page.pdf(format="A4", print_background=True)
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 25

    # one pupil's sheet, from the pupil's page: one A4 page
    await page.emulate_media(media="screen")
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.goto(f"{base}/classes/{ids['class_a']}")
    await _tab_to(page, "Noah Bernard")
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("Profil de Noah Bernard")
    await _tab_to(page, f"Fiche pour les parents — {cp.name}")
    await page.keyboard.press("Enter")
    await expect(page.locator("article.parent-sheet")).to_have_count(1)
    await expect(page.locator("h2")).to_have_text("Les évaluations de Noah Bernard")
    await _doc_shot(page, "teacher-parent-sheet")
    await page.emulate_media(media="print")  # (page.pdf follows the emulated media)
    pdf = await page.pdf(format="A4", print_background=True)
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1
    await page.screenshot(path=str(ARTIFACTS / "doc" / "teacher-parent-sheet-print.png"), full_page=True)
    assert not console.problems(), console.problems()
    await context.close()
