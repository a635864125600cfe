"""Pages read in a real Chromium as the people at the school read them: what the eye sees, not only the HTML.

Found by hand on a fresh clone (a directrice's first visit to the RGPD page): the two text settings showed
"la directrice ou le directe" and "le délégué à la protection", their values cut by a narrow box.
"""
from __future__ import annotations

import pathlib

import pytest

from browser_helpers import Console, keyboard_login, shot, wait_until
from preau.node.appkeys import NODE
from preau.node.web.district import parse_campaign_text
from web_helpers import PASSWORD

CAMPAIGNS = pathlib.Path(__file__).resolve().parents[3] / "node" / "campaigns"

pytestmark = pytest.mark.browser


async def test_the_gdpr_settings_show_their_whole_default_text(server, browser):
    base = str(server.make_url("")).rstrip("/")
    page = await (await browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")).new_page()
    console = Console(page)
    await keyboard_login(page, base, "direction", home=r"/admin/")
    await page.goto(base + "/admin/gdpr")
    await shot(page, "gdpr-settings")
    for field in ("#contact", "#dpo"):
        value, scroll, client = await page.eval_on_selector(field, "e => [e.value, e.scrollWidth, e.clientWidth]")
        assert value and scroll <= client, f"{field}: {value!r} does not fit its box ({scroll} > {client} px)"
    assert console.problems() == []


async def test_the_result_rectification_form_reads_in_order(server, browser, ids):
    """The help under "Valeur corrigée" was squeezed between two fields, pushing "Demande (qui, quand)" to the
    far right of the line: it now takes its own line, under the value it explains."""
    base = str(server.make_url("")).rstrip("/")
    page = await (await browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")).new_page()
    await keyboard_login(page, base, "direction", home=r"/admin/")
    await page.goto(f"{base}/admin/gdpr/pupils/{ids['p01']}")
    await shot(page, "gdpr-pupil")
    value = await page.locator("#value").bounding_box()
    help_ = await page.locator("#value-help").bounding_box()
    request = await page.locator("#res-request").bounding_box()
    form = await page.locator("form:has(#value)").bounding_box()
    assert help_["y"] >= value["y"] + value["height"], (value, help_)  # under the value, not beside it
    assert request["y"] >= help_["y"] + help_["height"], (help_, request)  # then the request, on the next line
    assert help_["x"] - form["x"] < 40, (form, help_)  # from the start of the line


WORDS_ON_ONE_LINE = """els => els.flatMap(el => {
    const text = el.firstChild;  // the name's text node
    const broken = [];
    let at = 0;
    for (const word of text.textContent.split(' ')) {
        const range = document.createRange();
        range.setStart(text, at); range.setEnd(text, at + word.length);
        if (word && range.getClientRects().length > 1) broken.push(word);
        at += word.length + 1;
    }
    return broken;
})"""


async def test_on_a_phone_the_class_table_keeps_each_name_whole(server, browser, ids):
    """At 390 px the class table gave its names column one letter: "N o a h B e r n a r d", top to bottom."""
    node = server.app[NODE]
    debut_cp = parse_campaign_text((CAMPAIGNS / "debut-cp.toml").read_bytes())  # the real one: 14 exercises

    def put_campaign() -> None:
        s = node.store.login("direction", PASSWORD)
        try:
            node.store.put_campaign(s, debut_cp)
        finally:
            s.logout()

    node.call(put_campaign)
    base = str(server.make_url("")).rstrip("/")
    page = await (await browser.new_context(viewport={"width": 390, "height": 800}, locale="fr-FR")).new_page()
    await keyboard_login(page, base, "mme.martin")
    await page.goto(f"{base}/classes/{ids['cp-a']}/campaigns/{debut_cp.id}/table")
    await shot(page, "phone-class-table")
    names = page.locator("table.colours tbody th[scope=row]")
    assert await names.count() >= 4
    broken = await names.evaluate_all(WORDS_ON_ONE_LINE)
    assert broken == [], f"names broken inside a word: {broken}"
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390  # the page itself never scrolls sideways


async def test_on_a_phone_the_gdpr_page_does_not_scroll_sideways(server, browser):
    """At 390 px the retention choice ("jusqu'à la fin de l'année scolaire de l'évaluation…") was 463 px wide."""
    base = str(server.make_url("")).rstrip("/")
    page = await (await browser.new_context(viewport={"width": 390, "height": 800}, locale="fr-FR")).new_page()
    await keyboard_login(page, base, "direction", home=r"/admin/")
    await page.goto(base + "/admin/gdpr")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    assert (await page.locator("#retention").bounding_box())["width"] <= 390


TEXT_ON_ONE_LINE = """els => els.flatMap(el => {
    const broken = [];
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const m of node.textContent.matchAll(/[^\\s-]+/g)) {  // a line may end at a space or a hyphen
            const range = document.createRange();
            range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
            if (range.getClientRects().length > 1) broken.push(m[0]);
        }
    }
    return broken;
})"""


async def test_on_a_phone_the_district_figures_keep_each_number_and_word_whole(tmp_path, aiohttp_server, browser):
    """At 390 px the district's table split "127" over three lines and "À besoin" letter by letter: the table
    now keeps them whole and scrolls in its own box; the page itself does not scroll sideways."""
    from node_fixtures import free_port
    from preau.node.app import create_app
    from test_district_stats import prepare

    port = free_port()
    settings, debut, *_ = prepare(tmp_path, port)
    srv = await aiohttp_server(create_app(settings), host="127.0.0.1", port=port)
    base = str(srv.make_url("")).rstrip("/")
    page = await (await browser.new_context(viewport={"width": 390, "height": 800}, locale="fr-FR")).new_page()
    await keyboard_login(page, base, "ien", home=r"/district/")
    await page.goto(f"{base}/district/stats/{debut.id}")
    await shot(page, "phone-district-stats")
    cells = page.locator("table.list th, table.list td")
    assert await cells.count() > 20
    assert await cells.evaluate_all(TEXT_ON_ONE_LINE) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    # A scrolling table's caption wraps on the screen; it ran on past it ("...par exerci", seen by hand).
    captions = await page.locator("table.list caption").evaluate_all(
        "els => els.map(e => [e.textContent.trim(), Math.round(e.getBoundingClientRect().right)])")
    assert captions and all(right <= 390 for _, right in captions), captions


async def test_on_a_phone_a_familys_access_document_does_not_scroll_sideways(server, browser, ids):
    """The document given to a family (their child's data) was 400 px wide on a 390 px phone: its results table."""
    base = str(server.make_url("")).rstrip("/")
    page = await (await browser.new_context(viewport={"width": 390, "height": 800}, locale="fr-FR")).new_page()
    await keyboard_login(page, base, "direction", home=r"/admin/")
    await page.goto(f"{base}/classes/{ids['cp-a']}")
    await page.locator("a[href*='/exercises/']").first.click()  # the grid: the cursor is in the first empty cell
    await wait_until(page, "!!(document.activeElement && document.activeElement.closest('table.grid'))")
    while await page.evaluate("!!document.activeElement.closest('table.grid')"):  # every pupil, every item
        await page.keyboard.press("1")
    await wait_until(page, "Array.from(document.querySelectorAll('table.grid tbody .status'))"
                           ".every(s => s.textContent.includes('enregistr'))")
    await page.goto(f"{base}/admin/gdpr/pupils/{ids['p01']}/access")
    await shot(page, "phone-gdpr-access")
    assert await page.locator("table").count() >= 2
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390


CHART_TEXT = """els => els.flatMap(svg => [...svg.querySelectorAll('text')].map(t => {
    const box = t.getBoundingClientRect();  // the words drawn, not the tooltip's <title>
    const words = [...t.childNodes].filter(n => n.nodeName !== 'title').map(n => n.textContent).join(' ').trim();
    return {text: words, height: box.height, size: parseFloat(getComputedStyle(t).fontSize) *
            (svg.getScreenCTM() ? svg.getScreenCTM().a : 1), left: box.left, right: box.right};
}))"""


@pytest.mark.parametrize("width", [390, 1280])
async def test_the_district_charts_read_on_a_phone_and_on_a_wide_screen(tmp_path, aiohttp_server, browser, width):
    """At 390 px the charts (an SVG with a viewBox 710 wide) shrank to the screen and their labels were 6 px high.
    Every word of every chart (the statistics page's two, the cohort's progress, the printable report's) is now
    drawn at least 11 px high, within the screen, and the page does not scroll sideways."""
    from node_fixtures import free_port
    from preau.node.app import create_app
    from test_district_stats import prepare

    port = free_port()
    settings, debut, *_ = prepare(tmp_path, port)
    srv = await aiohttp_server(create_app(settings), host="127.0.0.1", port=port)
    base = str(srv.make_url("")).rstrip("/")
    page = await (await browser.new_context(viewport={"width": width, "height": 900}, locale="fr-FR")).new_page()
    console = Console(page)
    await keyboard_login(page, base, "ien", home=r"/district/")
    for path, charts in ((f"/district/stats/{debut.id}", 2), ("/district/progress", 1),
                         (f"/district/stats/{debut.id}/rapport", 1)):
        await page.goto(base + path)
        await shot(page, f"charts-{width}-{path.rsplit('/', 1)[-1]}")
        assert await page.locator("svg.chart").count() == charts, path
        words = await page.locator("svg.chart").evaluate_all(CHART_TEXT)
        labels = [w for w in words if "%" not in w["text"]]
        assert len(labels) >= 2, (path, words)
        small = [(w["text"], round(w["size"], 1)) for w in words if w["size"] < 11]
        assert small == [], (path, small)
        assert min(w["height"] for w in labels) >= 11, (path, labels)
        outside = [w["text"] for w in words if w["left"] < 0 or w["right"] > width]
        assert outside == [], (path, outside)
        assert await page.evaluate("document.documentElement.scrollWidth") <= width, path
        if width == 1280:  # on a wide screen the bars use the room there is, not a phone's width
            box = await page.locator("svg.chart").first.bounding_box()
            assert box["width"] >= 600, (path, box)
    assert console.problems() == []
