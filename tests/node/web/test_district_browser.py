"""The district pages an inspector uses, in a real headless Chromium (issue 15): schools by name, the per-school
table sorted by a click and its CSV download, progress between two campaigns, an inspector account that cannot
invite or publish, and "no data yet" for a campaign without releases."""
from __future__ import annotations

import csv
import io

import pytest
from aiohttp.test_utils import TestServer

from node_fixtures import PASSWORD, free_port
from preau.crdt.statistics import percent_of
from preau.node.app import create_app
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST
from test_district_stats import SCHOOLS, prepare
from browser_helpers import Console, keyboard_login

from playwright.async_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
async def district(tmp_path):
    port = free_port()
    settings, debut, mi, truth = prepare(tmp_path, port)
    store = Store.open(tmp_path / "district", cost=TEST_COST)
    try:
        s = store.login("ien", PASSWORD)
        store.create_account(s, "cpc.martin", PASSWORD, "teacher")  # an inspector (read-only) on a district
        s.logout()
    finally:
        store.close()
    srv = TestServer(create_app(settings), host="127.0.0.1", port=port)
    await srv.start_server()
    yield str(srv.make_url("")).rstrip("/"), debut, mi, truth
    await srv.close()


async def test_an_inspector_finds_the_schools_most_in_need_and_the_progress_of_the_cohort(district, browser):
    base, debut, mi, truth = district
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    console = Console(page)
    await keyboard_login(page, base, "cpc.martin", PASSWORD, home=r"/district/stats$")

    # Read-only: no invitation or campaign in the menu, and the pages refuse.
    nav = page.get_by_role("navigation")
    await expect(nav.get_by_role("link", name="Statistiques")).to_be_visible()
    assert await nav.get_by_role("link", name="Invitations").count() == 0
    assert (await page.goto(base + "/district/invitations")).status == 403
    assert (await page.goto(base + "/district/campaigns")).status == 403

    # Schools by name and town.
    await page.goto(base + "/district/schools")
    await expect(page.get_by_text("École des Tilleuls, Paris")).to_be_visible()

    # The per-school table: a click on "À besoin" sorts by that share, highest first, then lowest first.
    await page.goto(base + f"/district/stats/{debut.id}")
    await page.get_by_role("link", name="Résultats par école").click()
    header = page.locator("table.member-table thead a[data-col='besoin']")
    await header.click()
    await expect(page.locator("table.member-table")).to_have_attribute("data-sorted", "besoin:desc")
    cells = page.locator("table.member-table td.heat-besoin-0, table.member-table td[class*='heat-besoin-']")
    shown = [int(t.rstrip(" %")) for t in await cells.all_inner_texts()]
    expected = sorted((percent_of(c[0], sum(c[:3])) for k in truth[debut.id] for c in truth[debut.id][k].values()),
                      reverse=True)
    assert shown == expected
    await page.locator("table.member-table thead a[data-col='besoin']").click()
    await expect(page.locator("table.member-table")).to_have_attribute("data-sorted", "besoin:asc")
    await expect(page.get_by_text("retenue : effectif trop petit pour publier (aucun chiffre)")).to_be_visible()

    # Its CSV opens right in a French spreadsheet: BOM, ";", the expected columns, formulas neutralised.
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Exporter (CSV)").click()
    download = await info.value
    with open(await download.path(), "rb") as f:
        raw = f.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:6] == ["UAI", "école", "commune", "code exercice", "Exercice", "domaine"]
    assert rows[0][6] == "à besoin (% des élèves évalués, absents exclus)"
    assert any(r[1] == "'" + SCHOOLS[1][2] for r in rows[1:])

    # Progress between the two campaigns of the cohort, for the district: the change in points.
    await page.goto(base + "/district/progress")
    await expect(page.locator("svg.chart")).to_be_visible()
    row = page.locator("tr[data-key='fr-mots']")
    before = [sum(truth[debut.id][k]["fr-mots"][j] for k in truth[debut.id]) for j in range(5)]
    after = [sum(truth[mi.id][k]["fr-mots"][j] for k in truth[mi.id]) for j in range(5)]
    change = percent_of(after[2], sum(after[:3])) - percent_of(before[2], sum(before[:3]))
    await expect(row.locator("td[data-group='seuil2']")).to_have_text(f"+{change} pt" if change > 0 else f"{change} pt")
    # ... and for one school, chosen in the list.
    await page.get_by_label("Pour").select_option(label="École des Tilleuls, Paris")
    await page.get_by_role("button", name="Afficher").click()
    await expect(page.get_by_role("heading", name="École des Tilleuls, Paris")).to_be_visible()

    # A campaign no school has released yet: a page that says so, not a 404.
    response = await page.goto(base + "/district/stats/2026-vide")
    assert response.status == 200
    await expect(page.locator("#no-data")).to_contain_text("Aucune école n'a encore publié")
    # Nothing blocked or broken; the two refusals above are the only errors the console saw.
    assert [p for p in console.problems() if "403 (Forbidden)" not in p] == []
    await context.close()
