"""A real headless Chromium (Debian's, installed by .ci/run) on the real node app: keyboard entry, saving, CSP.

The school is node_fixtures.build_classroom's (a real store in a temporary folder); what a page saved is read
back from that store. The grid lists pupils sorted by name: Inès <b>Petit</b> (the markup sorts first), Noah
Bernard, Léo Durand, Lucie Martin.

Screenshots of each page go to test-artifacts/ at the top of the worktree.
"""
from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestServer

from node_fixtures import build_classroom, build_district, grid_path, profile_path
from browser_helpers import Console, keyboard_login, shot as _shot, wait_until
from web_helpers import PASSWORD
from preau.node.app import create_app
from preau.node.appkeys import NODE
from preau.node.web.classroom import entry_of

from playwright.async_api import expect

pytestmark = pytest.mark.browser

PAGE_BUDGET = 60_000  # bytes for the grid page with all its assets, uncompressed


@pytest.fixture
def server(live_server):  # a browser needs the real clock: conftest's live_server
    return live_server


def saved(server, klass: str, exercise: str) -> dict:
    """What the node stored for a class and an exercise, as the grid reads it: {pupil ref ("p01"): RowEntry}."""
    ids = server.ids
    node = server.app[NODE]

    def read() -> list:  # a login writes (its time): on the serving node's database thread
        s = node.store.login("direction", PASSWORD)
        try:
            return node.store.get_results(s, ids["campaign"], ids[klass])
        finally:
            s.logout()

    results = node.call(read)
    refs = {v: k for k, v in ids.items()}
    return {refs[r.pupil_id]: entry_of(r) for r in results if r.exercise_id == exercise}


async def _tab_into_grid(page, cell: str = "c-p01-0") -> None:
    """The grid puts the cursor in its first empty cell by itself: no Tab needed."""
    await wait_until(page, "name => document.activeElement && document.activeElement.name === name", cell)


async def test_teacher_types_a_whole_exercise_with_the_keyboard(server, browser):
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = await context.new_page()
    console = Console(page)
    weights: dict[str, int] = {}

    async def weigh(response):
        if (response.url.startswith(base + grid_path(server.ids, "cp-a", "")) and not response.url.endswith("/row")) \
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
    await page.goto(base + grid_path(server.ids, "cp-a", "fr-comprendre-mots"))
    await _tab_into_grid(page, f"c-{server.ids['p03']}-0")
    kb = page.keyboard
    await kb.type("1010101010")  # Inès: 5/10, advances to the next row by itself
    await kb.type("a")  # Noah: absent for the whole exercise
    await kb.type("000")  # Léo: then fix the third answer
    await kb.press("ArrowLeft")
    await kb.press("Backspace")
    await kb.type("1")
    await kb.type("0000000")
    await kb.type("1101111011")  # Lucie: 8/10
    # the table is finished: the cursor waits on the link to the next exercise
    await expect(page.locator("a[data-grid-next]")).to_be_focused()
    await expect(page.locator("a[data-grid-next]")).to_have_text("Exercice suivant : Manipuler des syllabes →")

    statuses = page.locator("table.grid tbody td.status")
    for i in range(4):
        await expect(statuses.nth(i)).to_have_text("enregistré")
    scores = page.locator("table.grid tbody td.score")
    await expect(scores.nth(3)).to_have_text(re.compile(r"8/10\s+Au-dessus du seuil 2"))
    await expect(scores.nth(1)).to_have_text(re.compile(r"Absent\s+Absent"))
    await expect(scores.nth(0)).to_have_text(re.compile(r"5/10\s+Fragile"))
    await expect(scores.nth(2)).to_have_text(re.compile(r"1/10\s+À besoin"))
    await _shot(page, "03-grid-saved")

    stored = saved(server, "cp-a", "fr-comprendre-mots")
    assert stored["p01"].items == (1, 1, 0, 1, 1, 1, 1, 0, 1, 1)
    assert stored["p02"].absent
    assert stored["p04"].items == (0, 0, 1, 0, 0, 0, 0, 0, 0, 0)

    await page.reload()
    values = await page.eval_on_selector_all("table.grid tbody tr", "rows => rows.map(r => "
                                             "Array.from(r.querySelectorAll('input')).map(i => i.value).join(''))")
    assert values == ["1010101010", "a" * 10, "0010000000", "1101111011"]

    total = sum(weights.values())
    print(f"grid page weight: {total} bytes over {len(weights)} responses: "
          + ", ".join(f"{u.rsplit('/', 1)[-1].split('?')[0]}={n}" for u, n in weights.items()))
    assert 0 < total < PAGE_BUDGET

    await page.goto(base + profile_path(server.ids, "cp-a"))
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
    await page.goto(base + grid_path(server.ids, "cp-a", "fr-lire-texte") + "?lang=en")
    await _tab_into_grid(page, f"c-{server.ids['p03']}-0")
    for value in ("38", "a", "999"):  # Inès, Noah, Léo
        await page.keyboard.type(value)
        await page.keyboard.press("Enter")
    statuses = page.locator("table.grid tbody td.status")
    await expect(statuses.nth(0)).to_have_text("saved")
    await expect(statuses.nth(1)).to_have_text("saved")
    # refused at the third 9 with its reason; the cell is given back empty and Enter stays on the pupil
    await expect(statuses.nth(2)).to_have_text("999: at most 250")
    await expect(page.locator(f"input[name='c-{server.ids['p04']}-0']")).to_be_focused()
    await expect(page.locator(f"input[name='c-{server.ids['p04']}-0']")).to_have_value("")
    await page.keyboard.type("250")
    await page.keyboard.press("Enter")
    await page.keyboard.type("61")
    await page.keyboard.press("Enter")
    for i in range(4):
        await expect(statuses.nth(i)).to_have_text("saved")
    await _shot(page, "06-grid-timed-en")
    stored = saved(server, "cp-a", "fr-lire-texte")
    assert [stored[p].score for p in ("p03", "p04", "p01")] == [38, 250, 61] and stored["p02"].absent
    assert console.problems() == []
    await context.close()


async def test_grid_works_without_javascript(server, browser):
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await keyboard_login(page, base, "m.leroy")
    await page.goto(base + grid_path(server.ids, "cp-b", "fr-comprendre-mots"))
    await page.fill(f"input[name='c-{server.ids['p11']}-0']", "1")
    await page.fill(f"input[name='c-{server.ids['p12']}-0']", "a")
    await page.get_by_role("button", name="Enregistrer le tableau").click()
    await expect(page.locator(".notice")).to_have_text("Résultats enregistrés.")
    stored = saved(server, "cp-b", "fr-comprendre-mots")
    assert stored["p11"].items[0] == 1 and stored["p12"].absent
    await context.close()


@pytest.fixture
async def district_server(tmp_path):
    """A real district node holding one school's counts for the classroom campaign's three exercises."""
    from preau.crdt.campaign import Policy, parse_campaign
    from preau.crdt.documents import ReleaseContent, Row
    from preau.node.federation.store import FedStore
    from preau.node.runtime import FEDERATION_DB
    from node_fixtures import CLASSROOM_CAMPAIGN

    built = build_district(tmp_path)
    campaign = parse_campaign(CLASSROOM_CAMPAIGN)
    fed = FedStore(tmp_path / "district" / FEDERATION_DB)
    fed.add_peer("a1" * 32, node_id="N0751234J", role="school", uai="0751234J", name="École des Tilleuls")
    rows = tuple(Row.from_counts(ex.id, {"besoin": 3 + i, "fragile": 5, "seuil2": 40 - 3 * i, "absent": 1, "pending": 0})
                 for i, ex in enumerate(campaign.exercises))
    content = ReleaseContent(campaign.id, 1, "published", "", Policy(), rows, 49)
    with fed.transaction() as conn:
        fed._put_stats_entry(conn, campaign.id, "a1" * 32,
                             {"release": 1, "time": 1_790_000_000, "heads": "00" * 32, "content": content.to_dict()}, [])
    fed.close()
    srv = TestServer(create_app(built.settings), host="127.0.0.1")
    await srv.start_server()
    srv.campaign = campaign
    yield srv
    await srv.close()


async def test_district_chart_and_csp_refusals_are_seen(district_server, browser):
    server = district_server
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    console = Console(page)
    await keyboard_login(page, base, "ien", home=r"/district/")
    server.app[NODE].call(server.app[NODE].federation.publish_campaign, server.campaign)  # as the upload does
    await page.goto(base + f"/district/stats/{server.campaign.id}")
    await _shot(page, "07-district-chart")
    # Three bars of assessed pupils (besoin, fragile, seuil2); absent pupils are outside the shares, not drawn.
    # (The node's page draws a second chart below, the spread across schools: the group bars are the first.)
    assert await page.locator("svg.chart").first.locator("rect").count() == 9
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
