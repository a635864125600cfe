"""A real headless Chromium (Debian's, installed by .ci/run) on the demo app: keyboard entry, saving, CSP.

Screenshots of each page go to test-artifacts/ at the top of the worktree.
"""
from __future__ import annotations

import pathlib
import re

import pytest
from aiohttp.test_utils import TestServer

from demo_app import PASSWORD, RESULTS, create_demo_app
from web_helpers import CHROMIUM, INSTALL_CHROMIUM

from playwright import async_api as playwright_api  # in the test extras; drives /usr/bin/chromium
from playwright.async_api import expect

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = pathlib.Path(__file__).resolve().parents[3] / "test-artifacts"
PAGE_BUDGET = 60_000  # bytes for the grid page with all its assets, uncompressed


@pytest.fixture
async def server():
    app = create_demo_app()
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


@pytest.fixture
async def browser():
    if not CHROMIUM.exists():  # only reached under CI=true: elsewhere conftest skips browser tests without Chromium
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`{INSTALL_CHROMIUM}`), as .ci/run does")
    async with playwright_api.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        await b.close()


class Console:
    """Every console message and page error, to prove the CSP blocked nothing."""

    def __init__(self, page) -> None:
        self.messages: list[str] = []
        page.on("console", lambda m: self.messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.messages.append(f"pageerror: {e}"))

    def problems(self) -> list[str]:
        return [m for m in self.messages if m.startswith(("error", "warning", "pageerror")) or "Content Security Policy" in m]


async def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def keyboard_login(page, base: str, username: str, password: str = PASSWORD,
                         home: str = r"/(classes|district|admin)$") -> None:
    """Log in with the keyboard only; the page must then be at an address matching `home`."""
    await page.goto(base + "/login")
    # the username field has autofocus, applied by the browser shortly after load
    await page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")
    await page.keyboard.type(username)
    await page.keyboard.press("Tab")
    await page.keyboard.type(password)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    if not re.search(home, page.url):
        alert = await page.locator(".alert").all_inner_texts()
        raise AssertionError(f"login as {username} failed: {page.url} {alert}")


async def _tab_into_grid(page, cell: str = "c-p01-0") -> None:
    """The grid puts the cursor in its first empty cell by itself: no Tab needed."""
    await page.wait_for_function("name => document.activeElement && document.activeElement.name === name", arg=cell)


async def test_teacher_types_a_whole_exercise_with_the_keyboard(server, browser):
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = await context.new_page()
    console = Console(page)
    weights: dict[str, int] = {}

    async def weigh(response):
        if (response.url.startswith(base + "/classes/cp-a/grid/") and not response.url.endswith("/row")) \
                or "/static/" in response.url:
            try:
                weights[response.url] = len(await response.body())
            except Exception:  # a redirect has no body
                pass

    await page.goto(base + "/login")
    await _shot(page, "01-login")
    await keyboard_login(page, base, "mme.martin")
    await _shot(page, "02-classes")

    page.on("response", weigh)
    await page.goto(base + "/classes/cp-a/grid/fr-comprendre-mots")
    await _tab_into_grid(page)
    kb = page.keyboard
    await kb.type("1101111011")  # Lucie: 8/10, advances to the next row by itself
    await kb.type("a")  # Noah: absent for the whole exercise
    await kb.type("1010101010")  # Inès: 5/10
    await kb.type("000")  # Léo: then fix the third answer
    await kb.press("ArrowLeft")
    await kb.press("Backspace")
    await kb.type("1")
    await kb.type("0000000")
    # the table is finished: the cursor waits on the link to the next exercise
    await expect(page.locator("a[data-grid-next]")).to_be_focused()
    await expect(page.locator("a[data-grid-next]")).to_have_text("Exercice suivant : Manipuler des syllabes →")

    statuses = page.locator("table.grid tbody td.status")
    for i in range(4):
        await expect(statuses.nth(i)).to_have_text("enregistré")
    scores = page.locator("table.grid tbody td.score")
    await expect(scores.nth(0)).to_have_text(re.compile(r"8/10\s+Au-dessus du seuil 2"))
    await expect(scores.nth(1)).to_have_text(re.compile(r"Absent\s+Absent"))
    await expect(scores.nth(2)).to_have_text(re.compile(r"5/10\s+Fragile"))
    await expect(scores.nth(3)).to_have_text(re.compile(r"1/10\s+À besoin"))
    await _shot(page, "03-grid-saved")

    saved = server.app[RESULTS][("cp-a", "fr-comprendre-mots")]
    assert saved["p01"].items == (1, 1, 0, 1, 1, 1, 1, 0, 1, 1)
    assert saved["p02"].absent
    assert saved["p04"].items == (0, 0, 1, 0, 0, 0, 0, 0, 0, 0)

    await page.reload()
    values = await page.eval_on_selector_all("table.grid tbody tr", "rows => rows.map(r => "
                                             "Array.from(r.querySelectorAll('input')).map(i => i.value).join(''))")
    assert values == ["1101111011", "a" * 10, "1010101010", "0010000000"]

    total = sum(weights.values())
    print(f"grid page weight: {total} bytes over {len(weights)} responses: "
          + ", ".join(f"{u.rsplit('/', 1)[-1].split('?')[0]}={n}" for u, n in weights.items()))
    assert 0 < total < PAGE_BUDGET

    await page.goto(base + "/classes/cp-a/profile")
    await _shot(page, "04-class-profile")
    await page.emulate_media(media="print")
    await _shot(page, "05-class-profile-print")
    assert console.problems() == []
    await context.close()


async def test_timed_exercise_takes_numbers_and_enter(server, browser):
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    console = Console(page)
    await keyboard_login(page, base, "mme.martin")
    await page.goto(base + "/classes/cp-a/grid/fr-lire-texte?lang=en")
    await _tab_into_grid(page)
    for value in ("38", "a", "999"):
        await page.keyboard.type(value)
        await page.keyboard.press("Enter")
    statuses = page.locator("table.grid tbody td.status")
    await expect(statuses.nth(0)).to_have_text("saved")
    await expect(statuses.nth(1)).to_have_text("saved")
    # refused at the third 9 with its reason; the cell is given back empty and Enter stays on the pupil
    await expect(statuses.nth(2)).to_have_text("999: at most 250")
    await expect(page.locator("input[name='c-p03-0']")).to_be_focused()
    await expect(page.locator("input[name='c-p03-0']")).to_have_value("")
    await page.keyboard.type("250")
    await page.keyboard.press("Enter")
    await page.keyboard.type("61")
    await page.keyboard.press("Enter")
    for i in range(4):
        await expect(statuses.nth(i)).to_have_text("saved")
    await _shot(page, "06-grid-timed-en")
    saved = server.app[RESULTS][("cp-a", "fr-lire-texte")]
    assert [saved[p].score for p in ("p01", "p03", "p04")] == [38, 250, 61] and saved["p02"].absent
    assert console.problems() == []
    await context.close()


async def test_grid_works_without_javascript(server, browser):
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await keyboard_login(page, base, "m.leroy")
    await page.goto(base + "/classes/cp-b/grid/fr-comprendre-mots")
    await page.fill("input[name='c-p11-0']", "1")
    await page.fill("input[name='c-p12-0']", "a")
    await page.get_by_role("button", name="Enregistrer le tableau").click()
    await expect(page.locator(".notice")).to_have_text("Résultats enregistrés.")
    saved = server.app[RESULTS][("cp-b", "fr-comprendre-mots")]
    assert saved["p11"].items[0] == 1 and saved["p12"].absent
    await context.close()


async def test_district_chart_and_csp_refusals_are_seen(server, browser):
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    console = Console(page)
    await keyboard_login(page, base, "ien")
    await _shot(page, "07-district-chart")
    # Three bars of assessed pupils (besoin, fragile, seuil2); absent pupils are outside the shares, not drawn.
    assert await page.locator("svg.chart rect").count() == 9
    assert console.problems() == []
    # The console watch does see CSP refusals: an inline script and style are blocked and reported.
    await page.evaluate("""() => {
        const s = document.createElement('script'); s.textContent = 'window.pwned = 1'; document.body.appendChild(s);
        const st = document.createElement('style'); st.textContent = 'body{background:red}'; document.head.appendChild(st);
    }""")
    await page.wait_for_timeout(200)
    assert await page.evaluate("window.pwned === undefined")
    problems = console.problems()
    assert any("Content Security Policy" in m and "script" in m for m in problems), problems
    assert any("Content Security Policy" in m and "style" in m for m in problems), problems
    await context.close()
