"""The school's daily work on the real app: each class sees its level's campaigns, forms answer with a
redirect (the language switch works after any form), and the class page says how much is entered."""
from __future__ import annotations

import html
import re

import pytest

from node_fixtures import PASSWORD, build_school, login
from preau.node.app import create_app
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST
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
