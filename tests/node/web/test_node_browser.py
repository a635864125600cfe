"""The whole path in a real headless Chromium, on two real `create_app` servers on 127.0.0.1.

A district publishes a campaign and invites a school; the school's head
teacher pastes the invitation; a teacher imports a class list (first a bad
one), types a whole exercise and a timed one with the keyboard only, reloads
and finds them saved, opens the class profile; the head teacher previews and
approves the release; the district's statistics then show that school.
Screenshots of each main page go to test-artifacts/ (and, resized, feed docs/img/).
"""
from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp.test_utils import TestServer

from node_fixtures import CAMPAIGN_TOML, PASSWORD, SCHOOL_UAI, build_district, build_school, free_port
from preau.node.app import create_app
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST
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
    yield started[0], started[1], school.ids
    for srv in reversed(started):
        await srv.close()


def more_results(data, class_id: str, campaign_id: str, n: int = 8) -> None:
    """N more pupils with results in class B, entered by the head teacher through the store.

    The four pupils typed in the browser are below the national floor (10
    assessed pupils, 10 changed together): no count could leave the school.
    """
    store = Store.open(data, cost=TEST_COST)
    try:
        s = store.login("direction", PASSWORD)
        for i, p in enumerate(store.add_pupils(s, class_id, [(f"Nom{i}", f"Prénom{i}") for i in range(n)])):
            store.save_result(s, campaign_id, p.id, "fr-mots", answers=[1, 1, i % 2, 0, 1])
            store.save_result(s, campaign_id, p.id, "fr-lire-texte", wpm=20 + 5 * i)
        s.logout()
    finally:
        store.close()


async def shot(page, name: str) -> None:
    (ARTIFACTS / "doc").mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"node-{name}.png"), full_page=True)
    # The visible part only, for the French guide (docs/img/ holds a compressed copy of a few of these).
    await page.screenshot(path=str(ARTIFACTS / "doc" / f"{name}.png"))


async def login(page, base: str, username: str) -> None:
    await keyboard_login(page, base, username, PASSWORD, home=r"^(?!.*/login)")


async def tab_into_grid(page) -> None:
    """The grid puts the cursor in its first empty cell by itself: no Tab needed."""
    await wait_until(page, "!!(document.activeElement && document.activeElement.closest('table.grid'))")


async def test_district_school_teacher_head_teacher_end_to_end(servers, browser, tmp_path):
    district_srv, school_srv, ids = servers
    dbase = str(district_srv.make_url("")).rstrip("/")
    sbase = str(school_srv.make_url("")).rstrip("/")
    ctx = {name: await browser.new_context(viewport={"width": 1200, "height": 800}, locale="fr-FR")
           for name in ("district", "head", "teacher")}
    pages = {name: await c.new_page() for name, c in ctx.items()}
    consoles = [Console(p) for p in pages.values()]

    # -- the district publishes a campaign (a broken file first: the error names its line) and invites the school
    d = pages["district"]
    await login(d, dbase, "ien")
    broken = tmp_path / "broken.toml"
    broken.write_text(CAMPAIGN_TOML.replace("thresholds = [2, 4]", "thresholds = [4, 2]"), encoding="utf-8")
    good = tmp_path / "campagne.toml"
    good.write_text(CAMPAIGN_TOML, encoding="utf-8")
    await d.goto(dbase + "/district/campaigns")
    await d.set_input_files("#file", str(broken))
    await d.get_by_role("button", name="Vérifier et publier").click()
    await expect(d.locator(".alert")).to_contain_text("broken.toml, ligne 20")
    await d.set_input_files("#file", str(good))
    await d.get_by_role("button", name="Vérifier et publier").click()
    await expect(d.locator(".notice")).to_contain_text("publiée (version 1)")
    await shot(d, "district-campaigns")
    await d.goto(dbase + "/district/invitations")
    await d.fill("#uai", SCHOOL_UAI)
    await d.get_by_role("button", name="Créer l'invitation").click()
    invitation = (await d.locator(".invitation-text").inner_text()).strip()
    assert invitation.startswith("PREAU1-")
    assert await d.locator("svg.qr path.qr-line").count() == 1
    await shot(d, "district-invitation")

    # -- the head teacher pastes it: enrolled, and the campaign comes down in the same session
    h = pages["head"]
    await login(h, sbase, "direction")
    await shot(h, "head-sync-before")
    await h.fill("#invitation", invitation)
    await h.get_by_role("button", name="Rattacher l'école").click()
    await expect(h.locator(".notice")).to_contain_text("rattachée")
    await shot(h, "head-sync")
    await h.goto(sbase + "/admin/accounts")
    await shot(h, "head-accounts")
    await h.goto(sbase + "/admin/classes")
    await shot(h, "head-classes")

    # -- the teacher imports a class list (a bad one first), then types a whole exercise with the keyboard
    t = pages["teacher"]
    await t.goto(sbase + "/login")
    await shot(t, "login")
    await login(t, sbase, "mme.a")
    await shot(t, "teacher-classes")
    await t.goto(f"{sbase}/classes/{ids['class_a']}")
    bad = tmp_path / "liste-erreurs.csv"
    bad.write_text("nom;prénom\nMartin;Lucie\nBernard\nMartin;Lucie\n", encoding="utf-8")
    await t.set_input_files("#file", str(bad))
    await t.get_by_role("button", name="Importer").click()
    await expect(t.locator(".alert")).to_contain_text("Rien n'a été importé")
    await expect(t.locator(".alert")).to_contain_text("Ligne 3")
    await expect(t.locator(".alert")).to_contain_text("Ligne 4")
    await shot(t, "teacher-import-errors")
    listing = tmp_path / "liste.csv"  # as Excel saves it on Windows
    listing.write_bytes("Nom;Prénom\r\nMartin;Lucie\r\nBernard;Noah\r\nPetit;Inès\r\nDurand;Léo\r\n".encode("cp1252"))
    await t.set_input_files("#file", str(listing))
    await t.get_by_role("button", name="Importer").click()
    await expect(t.locator("main")).to_contain_text("À ajouter (4)")
    await shot(t, "teacher-import-review")
    await t.get_by_role("button", name="Confirmer l'import").click()
    await expect(t.locator(".notice")).to_have_text("Import fait : 4 élève(s) ajouté(s), 0 nom(s) corrigé(s).")
    await shot(t, "teacher-class")

    await t.get_by_role("link", name="Comprendre des mots lus par l'enseignant").click()
    assert "Lucie" not in t.url and "Martin" not in t.url
    await tab_into_grid(t)
    # Rows in name order: Bernard Noah, Durand Léo, Martin Lucie, Petit Inès.
    await t.keyboard.type("11011")  # Noah 4/5: seuil 2
    await t.keyboard.type("a")  # Léo absent
    await t.keyboard.type("10100")  # Lucie 2/5: fragile
    await t.keyboard.type("000")  # Inès: then fix the second answer
    await t.keyboard.press("ArrowLeft")
    await t.keyboard.press("ArrowLeft")
    await t.keyboard.press("Backspace")
    await t.keyboard.type("1")
    await t.keyboard.type("000")
    statuses = t.locator("table.grid tbody td.status")
    for i in range(4):
        await expect(statuses.nth(i)).to_have_text("enregistré")
    await shot(t, "teacher-grid")
    await t.reload()
    values = await t.eval_on_selector_all("table.grid tbody tr", "rows => rows.map(r => "
                                          "Array.from(r.querySelectorAll('input')).map(i => i.value).join(''))")
    assert values == ["11011", "aaaaa", "10100", "01000"]
    scores = t.locator("table.grid tbody td.score")
    await expect(scores.nth(0)).to_have_text(re.compile(r"4/5\s+Au-dessus du seuil 2"))
    await expect(scores.nth(3)).to_have_text(re.compile(r"1/5\s+À besoin"))

    # the timed exercise: numbers and Enter
    await t.goto(f"{sbase}/classes/{ids['class_a']}")
    await t.get_by_role("link", name="Lire à voix haute un texte").click()
    await tab_into_grid(t)
    for value in ("38", "a", "61", "17"):
        await t.keyboard.type(value)
        await t.keyboard.press("Enter")
    for i in range(4):
        await expect(statuses.nth(i)).to_have_text("enregistré")
    await shot(t, "teacher-grid-timed")

    await t.goto(f"{sbase}/classes/{ids['class_a']}")
    await t.get_by_role("link", name=re.compile("Profil de classe")).click()
    await expect(t.locator("table.profile").first).to_contain_text("Noah Bernard")
    await shot(t, "teacher-profile")
    await t.emulate_media(media="print")
    await shot(t, "teacher-profile-print")

    # -- the head teacher previews (table + raw document) and approves
    more_results(tmp_path / "school", ids["class_b"], "2026-test-cp")
    await h.goto(sbase + "/admin/campaigns")
    await shot(h, "head-campaigns")
    await h.get_by_role("link", name=re.compile("Voir ce qui partirait")).click()
    await expect(h.locator("pre.raw")).to_contain_text('"campaign": "2026-test-cp"')
    raw = await h.locator("pre.raw").inner_text()
    assert "Lucie" not in raw and "Bernard" not in raw
    await shot(h, "head-release-preview")
    await h.get_by_role("button", name=re.compile("J'approuve")).click()
    await expect(h.locator(".notice")).to_contain_text("signé")

    # -- the district's statistics show the school (the approval woke the school's sync loop)
    for _ in range(50):
        await d.goto(dbase + "/district/stats/2026-test-cp")
        if await d.locator("svg.chart").count():
            break
        await asyncio.sleep(0.2)
    await expect(d.locator("main")).to_contain_text("1 école(s) comptée(s)")
    await shot(d, "district-stats")
    await d.goto(dbase + "/district/schools")
    await expect(d.locator("main")).to_contain_text(SCHOOL_UAI)
    await expect(d.locator("main")).to_contain_text("n° 1")
    await shot(d, "district-schools")

    await h.goto(sbase + "/admin/transparency")
    await expect(h.locator("main")).to_contain_text("2026-test-cp")
    await shot(h, "head-transparency")
    await h.goto(sbase + "/admin/sync")
    await shot(h, "head-sync-joined")

    # The two refused uploads answered 422 on purpose (the browser logs any 4xx page); nothing else may show.
    problems = [p for c in consoles for p in c.problems() if "status of 422" not in p]
    assert problems == []
    for c in ctx.values():
        await c.close()
