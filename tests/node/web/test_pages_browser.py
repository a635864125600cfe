"""Pages read in a real Chromium as the people at the school read them: what the eye sees, not only the HTML.

Found by hand on a fresh clone (a directrice's first visit to the RGPD page): the two text settings showed
"la directrice ou le directe" and "le délégué à la protection", their values cut by a narrow box.
"""
from __future__ import annotations

import pytest

from browser_helpers import Console, keyboard_login, shot

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
