"""The school's daily work on the real app: each class sees its level's campaigns, forms answer with a
redirect (the language switch works after any form), and the class page says how much is entered."""
from __future__ import annotations

import base64
import html
import re

import pytest

from node_fixtures import CAMPAIGN_TOML, PASSWORD, build_school, login
from preau.node.appkeys import NODE
from preau.node.app import create_app
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST
from preau.node.web.district import parse_campaign_text
from preau.protocol.identity import Identity
from test_web_pools import _propose
from web_helpers import csrf_of


@pytest.fixture
async def school(tmp_path, aiohttp_client):
    built = build_school(tmp_path)
    store = Store.open(tmp_path / "school", cost=TEST_COST)
    try:
        s = store.login("direction", PASSWORD)
        ce1 = store.create_class(s, "CE1 A", "CE1", "2026-2027")
        store.assign_teacher(s, "m.b", ce1.id)
        store.add_pupils(s, ce1.id, [("Petit", "Inès")])
        s.logout()
    finally:
        store.close()
    built.ids["class_ce1"] = ce1.id
    return await aiohttp_client(create_app(built.settings)), built.ids


async def text_of(resp) -> str:
    return html.unescape(await resp.text())


LANG_LINK = re.compile(r'<a class="lang" href="([^"]+)"')


async def test_a_ce1_class_does_not_see_the_cp_campaign(school):
    client, ids = school
    await login(client, "m.b")
    ce1 = await text_of(await client.get(f"/classes/{ids['class_ce1']}"))
    assert "Début de CP (test)" not in ce1 and "Comprendre des mots" not in ce1
    cp = await text_of(await client.get(f"/classes/{ids['class_b']}"))
    assert "Début de CP (test)" in cp and "Comprendre des mots" in cp
    # nor can it be reached by its address
    for tail in ("exercises/fr-mots", "profile", "export.csv"):
        resp = await client.get(f"/classes/{ids['class_ce1']}/campaigns/{ids['campaign']}/{tail}")
        assert resp.status == 404, tail
    resp = await client.get(f"/classes/{ids['class_b']}/campaigns/{ids['campaign']}/exercises/fr-mots")
    assert resp.status == 200


async def test_the_class_page_shows_how_many_pupils_are_entered(school):
    client, ids = school
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    assert "0/2 saisis" in await text_of(await client.get(page))
    grid = f"{page}/campaigns/{ids['campaign']}/exercises/fr-mots/row"
    token = await csrf_of(client, page)
    resp = await client.post(grid, json={"pupil": ids["pupil_a"], "cells": ["1", "1", "0", "1", "1"]},
                             headers={"X-CSRF-Token": token})
    assert resp.status == 200
    text = await text_of(await client.get(page))
    assert "1/2 saisis" in text and "0/2 saisis" in text  # fr-mots, then the timed exercise


async def test_a_form_answers_with_a_redirect_and_the_language_switch_then_works(school):
    client, ids = school
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    token = await csrf_of(client, page)
    resp = await client.post(page + "/pupils", data={"csrf_token": token, "last_name": "Roux", "first_name": "Zoé"},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == page
    resp = await client.get(page)
    text = await text_of(resp)
    assert "Zoé Roux a été ajouté·e." in text
    assert "Zoé Roux a été ajouté·e." not in await text_of(await client.get(page))  # shown once
    href = LANG_LINK.search(text).group(1)
    english = await client.get(page + href)
    assert english.status == 200 and "Class CP A" in await text_of(english)
    # a refused form stays on its answer (what was typed is kept); its language link opens the form's page
    resp = await client.post(page + "/pupils", data={"csrf_token": token, "last_name": "Roux", "first_name": "zoe"})
    text = await text_of(resp)
    assert resp.status == 409
    href = LANG_LINK.search(text).group(1)
    assert href == page + "?lang=fr"
    assert (await client.get(href)).status == 200


async def test_the_fallback_grid_form_redirects_to_the_grid(school):
    client, ids = school
    await login(client, "mme.a")
    grid = f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/exercises/fr-mots"
    token = await csrf_of(client, grid)
    resp = await client.post(grid, data={"csrf_token": token, f"c-{ids['pupil_a']}-0": "1"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == grid
    assert "Résultats enregistrés." in await text_of(await client.get(grid))


DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "data"


def _upload(token: str, data: bytes, name: str):
    import aiohttp
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", data, filename=name, content_type="text/csv")
    return form


HIDDEN = re.compile(r'name="data" value="([^"]+)"')


async def _names(client, page: str) -> list[str]:
    text = await text_of(await client.get(page))
    block = text.split('<ul class="pupils">', 1)[1].split("</ul>", 1)[0]
    return re.findall(r">([^<>]+)</a></li>", block)


async def test_an_excel_file_then_its_january_version_is_reviewed_before_anything_changes(school):
    client, ids = school
    await login(client, "m.b")
    page = f"/classes/{ids['class_b']}"  # Emma Leroy and Adam Moreau are there already
    token = await csrf_of(client, page)
    first = (DATA / "classe-cp-excel-windows-1252.csv").read_bytes()
    resp = await client.post(page + "/import", data=_upload(token, first, "classe.csv"))
    text = await text_of(resp)
    assert resp.status == 200
    assert "Liste reconnue (Windows (Excel), séparateur « point-virgule ») : 25 élève(s)." in text
    assert "À ajouter (23)" in text and "2 élève(s) déjà dans la classe, inchangé(s)." in text
    assert len(await _names(client, page)) == 2  # nothing changed yet
    data = HIDDEN.search(text).group(1)
    resp = await client.post(page + "/import", data={"csrf_token": token, "data": data, "apply": "yes"},
                             allow_redirects=False)
    assert resp.status == 303
    text = await text_of(await client.get(page))
    assert "Import fait : 23 élève(s) ajouté(s), 0 nom(s) corrigé(s)." in text
    assert len(await _names(client, page)) == 25

    # January: two arrived, one left, one name now has its accent
    later = (DATA / "classe-cp-janvier-excel-windows-1252.csv").read_bytes()
    resp = await client.post(page + "/import", data=_upload(token, later, "janvier.csv"))
    text = await text_of(resp)
    assert "À ajouter (2)" in text and "Yasmine Benali" in text and "Élise Schmitt" in text
    assert "Écrits autrement dans le fichier (1)" in text and "Ines Petit → Inès Petit" in text
    assert "Dans la classe mais pas dans le fichier (1)" in text and "Arthur Roux" in text
    assert len(await _names(client, page)) == 25
    data = HIDDEN.search(text).group(1)
    resp = await client.post(page + "/import", data={"csrf_token": token, "data": data, "apply": "yes",
                                                     "respell": "yes"})
    text = await text_of(resp)
    assert "Import fait : 2 élève(s) ajouté(s), 1 nom(s) corrigé(s). 1 élève(s) de la classe ne figurent pas" in text
    names = await _names(client, page)
    assert len(names) == 27 and "Arthur Roux" in names and "Inès Petit" in names and "Ines Petit" not in names
    # the same file again: nothing to do
    resp = await client.post(page + "/import", data=_upload(token, later, "janvier.csv"))
    assert "Rien à changer" in await text_of(resp)


async def test_the_onde_extraction_asks_which_class_and_keeps_only_names(school):
    client, ids = school
    await login(client, "m.b")
    page = f"/classes/{ids['class_ce1']}"
    token = await csrf_of(client, page)
    onde = (DATA / "onde-extraction-eleves.csv").read_bytes()
    resp = await client.post(page + "/import", data=_upload(token, onde, "CSVExtraction.csv"))
    text = await text_of(resp)
    assert "Extraction ONDE reconnue (Windows (Excel), séparateur « point-virgule ») : 69 élève(s) dans 3 classe(s)" in text
    assert "CE1 - Mme Aubert (CE1, 22 élève(s))" in text
    assert "Choisissez la classe du fichier" in text and "Confirmer l'import" not in text
    data = HIDDEN.search(text).group(1)
    resp = await client.post(page + "/import", data={"csrf_token": token, "data": data,
                                                     "class_label": "CE1 - Mme Aubert"})
    text = await text_of(resp)
    assert "À ajouter (22)" in text and "Dans la classe mais pas dans le fichier (1)" in text  # Inès Petit
    resp = await client.post(page + "/import", data={"csrf_token": token, "data": data, "apply": "yes",
                                                     "class_label": "CE1 - Mme Aubert"})
    assert "Import fait : 22 élève(s) ajouté(s)" in await text_of(resp)
    names = await _names(client, page)
    assert len(names) == 23
    # nothing from the other columns reached a page
    text = await text_of(await client.get(page))
    assert "PARIS" not in text and "/2019" not in text


async def test_a_bad_file_names_its_lines_in_french_and_imports_nothing(school):
    client, ids = school
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    token = await csrf_of(client, page)
    bad = "Nom;Prénom\r\nMartin;Lucie\r\nBernard\r\n1234;Léo\r\n".encode("cp1252")
    resp = await client.post(page + "/import", data=_upload(token, bad, "liste.csv"))
    text = await text_of(resp)
    assert resp.status == 422 and "Rien n'a été importé : 2 ligne(s)" in text
    assert "Ligne 3 : Il faut 2 colonnes (nom;prénom), il y en a 1" in text
    assert "Ligne 4 : Le nom « 1234 » n'a aucune lettre" in text


async def test_the_head_teacher_sees_pupils_entered_per_campaign(school):
    client, ids = school
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    token = await csrf_of(client, page)
    resp = await client.post(f"{page}/campaigns/{ids['campaign']}/exercises/fr-mots/row",
                             json={"pupil": ids["pupil_a"], "cells": ["1", "0", "1", "1", "1"]},
                             headers={"X-CSRF-Token": token})
    assert resp.status == 200
    await client.post("/logout", data={"csrf_token": token})
    await login(client, "direction")
    text = await text_of(await client.get("/admin/campaigns"))
    assert "Élèves saisis" in text and "Saisies" not in text
    assert "1 / 4" in text  # CP A and CP B: 4 pupils of level CP (the CE1 class is not counted)
    # and how many exercises are entered for all of them: none yet, one pupil of four on one exercise
    row = text.split("<tr><th scope=\"row\">Début de CP (test)</th>")[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">(\d+ / \d+)</td>', row) == ["1 / 4", "0 / 2"], row
    assert "Exercices saisis pour tous les élèves" in text
    token = await csrf_of(client, "/admin/campaigns")  # the head teacher enters the words for every CP pupil
    for klass in ("class_a", "class_b"):
        page = f"/classes/{ids[klass]}"
        for pupil in re.findall(r'href="/classes/[0-9a-f]{16}/pupils/([0-9a-f]{16})"', await text_of(await client.get(page))):
            resp = await client.post(f"{page}/campaigns/{ids['campaign']}/exercises/fr-mots/row",
                                     json={"pupil": pupil, "cells": ["1", "1", "1", "1", "1"]},
                                     headers={"X-CSRF-Token": token})
            assert resp.status == 200, await resp.text()
    text = await text_of(await client.get("/admin/campaigns"))
    row = text.split("<tr><th scope=\"row\">Début de CP (test)</th>")[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">(\d+ / \d+)</td>', row) == ["4 / 4", "1 / 2"], row


async def test_unknown_addresses_and_form_addresses_get_a_french_page_with_a_way_back(school):
    client, ids = school
    resp = await client.get("/nulle-part")
    text = await text_of(resp)
    assert resp.status == 404 and resp.content_type == "text/html"
    assert "Cette page n'existe pas." in text and 'href="/">Revenir à l\'accueil' in text
    await login(client, "mme.a")
    resp = await client.get(f"/classes/{ids['class_a']}/pupils")  # a form's address, opened by hand
    text = await text_of(resp)
    assert resp.status == 405 and "POST" in resp.headers["Allow"]
    assert "Cette adresse ne s'ouvre pas ainsi" in text and "Revenir à l'accueil" in text
    english = await client.get("/nulle-part?lang=en")
    assert english.status == 404 and "This page does not exist." in await text_of(english)
    # the API keeps its JSON answers
    resp = await client.get("/v1/nothing-here")
    assert resp.status == 404 and "html" not in resp.content_type


# A POST route of the school that answers something other than a page: the session's own (test_web_security),
# the row grid.js saves (JSON), the backup (a file).
NOT_A_PAGE = {"/login", "/logout", "/classes/{class_id}/campaigns/{campaign_id}/exercises/{exercise_id}/row",
              "/admin/backup"}


async def test_every_form_of_the_school_that_worked_answers_with_a_redirect(school, monkeypatch):
    """Post/redirect/get on every school form: a 303 to the form's page, which shows the notice once. A new
    POST route must be added here (or to NOT_A_PAGE), so a handler answering 200 cannot slip in unseen."""
    client, ids = school
    node = client.app[NODE]
    routes = {r.resource.canonical for r in client.app.router.routes()
              if r.method == "POST" and not r.resource.canonical.startswith(("/district/", "/v1/"))}
    c = f"/classes/{ids['class_a']}"
    pupil = f"{c}/pupils/{ids['pupil_a']}"
    grid = f"{c}/campaigns/{ids['campaign']}/exercises/fr-mots"
    release = f"/admin/release/{ids['campaign']}"
    gdpr = f"/admin/gdpr/pupils/{ids['pupil_b']}"
    # The pool is for a second campaign: an approved pool holds its campaign's counts (f87daf6), so the release
    # approved below, for the first campaign, could not go out once the pool is approved.
    bis = parse_campaign_text(CAMPAIGN_TOML.replace('id = "2026-test-cp"', 'id = "2026-test-cp-bis"').encode())

    def store_bis() -> None:
        s = node.store.login("direction", PASSWORD)
        node.store.put_campaign(s, bis)
        s.logout()

    node.call(store_bis)
    pooled = f"/admin/release/{bis.id}"
    pool = _propose(node, bis).pool_id.hex()

    async def joined(text, uai, **kw):
        return type("Report", (), {"accepted": []})()

    monkeypatch.setattr(node, "join", joined)
    class_list = "Nom;Prénom\n" + "".join(f"Élève;Numéro {n}\n" for n in range(10))  # 12 pupils in CP A
    node.call(node.federation.pin_upstream, Identity(b"d" * 32).public, "https://127.0.0.1:1")  # a release needs a district
    # (route, path posted to, form, page it returns to), in an order that works (the erasure and the purge last)
    forms = [
        ("/admin/release/{campaign_id}/pool/{pool_id}", f"{pooled}/pool/{pool}", {}, pooled),  # counts no pupil yet
        ("/admin/release/{campaign_id}/declare", f"{pooled}/declare", {}, pooled),
        ("/classes/{class_id}/pupils", c + "/pupils", {"last_name": "Roux", "first_name": "Zoé"}, c),
        ("/classes/{class_id}/import", c + "/import",
         {"data": base64.b64encode(class_list.encode()).decode(), "apply": "yes"}, c),
        ("/classes/{class_id}/pupils/{pupil_id}/rename", pupil + "/rename", {"last_name": "Martin", "first_name": "Lucy"},
         pupil),
        ("/classes/{class_id}/campaigns/{campaign_id}/exercises/{exercise_id}", grid, "every cell", grid),
        ("/admin/accounts", "/admin/accounts", {"action": "create", "username": "m.c", "password": "un long mot de passe",
                                                "role": "teacher"}, "/admin/accounts"),
        ("/admin/classes", "/admin/classes", {"action": "create", "name": "CP C", "level": "CP",
                                              "school_year": "2026-2027"}, "/admin/classes"),
        ("/admin/release/{campaign_id}", release, None, release),
        # (no second declaration here: a school at the floor or over publishes alone and is refused one, fdf8597)
        ("/admin/sync", "/admin/sync", {}, "/admin/sync"),
        ("/admin/join", "/admin/join", {"invitation": "PREAU1-X"}, "/admin/sync"),
        ("/admin/gdpr/settings", "/admin/gdpr/settings", {"retention_years": "1"}, "/admin/gdpr"),
        ("/admin/gdpr/pupils/{pupil_id}/counted", gdpr + "/counted", {"counted": "no", "request": "mère"}, gdpr),
        ("/admin/gdpr/pupils/{pupil_id}/identity", gdpr + "/identity",
         {"last_name": "Leroy", "first_name": "Emmy", "request": "mère"}, gdpr),
        ("/admin/gdpr/pupils/{pupil_id}/result", gdpr + "/result",
         {"exercise": f"{ids['campaign']}/fr-mots", "value": "11010", "request": "père"}, gdpr),
        ("/classes/{class_id}/pupils/{pupil_id}/erase", pupil + "/erase", {"confirm": "yes"}, c),
        ("/admin/gdpr/purge", "/admin/gdpr/purge", {"campaign_id": ids["campaign"], "confirm": "yes"}, "/admin/gdpr"),
    ]
    assert {route for route, *_ in forms} == routes - NOT_A_PAGE
    await login(client, "direction")
    for route, path, data, page in forms:
        text = await text_of(await client.get(page))
        token = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)
        if data is None:  # the digest of the preview shown
            data = {"digest": re.search(r'name="digest" value="([^"]+)"', text).group(1)}
        if data == "every cell":  # enough pupils assessed for a release
            data = {name: "1" for name in re.findall(r'name="(c-[0-9a-f]{16}-[0-9])"', text)}
        resp = await client.post(path, data={"csrf_token": token, **data}, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == page, (route, resp.status)
        shown = await text_of(await client.get(page))
        assert 'class="notice"' in shown, route
        assert 'class="notice"' not in await text_of(await client.get(page)), route  # once
