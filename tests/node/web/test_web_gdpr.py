"""The head teacher's GDPR pages on a real school, through the real `create_app`."""
from __future__ import annotations

import html
import re

import pytest

from node_fixtures import build_school, login
from preau.node.app import create_app
from web_helpers import csrf_of


@pytest.fixture
async def school(tmp_path, aiohttp_client):
    built = build_school(tmp_path)
    return await aiohttp_client(create_app(built.settings)), built.ids


async def _text(resp) -> str:
    return html.unescape(await resp.text())


async def _post(client, path: str, data: dict, token_page: str = "/admin/gdpr"):
    token = await csrf_of(client, token_page)
    return await client.post(path, data={"csrf_token": token, **data})


async def test_gdpr_page_settings_paperwork_and_a_familys_requests(school):
    client, ids = school
    await login(client, "mme.a")
    assert (await client.get("/admin/gdpr", allow_redirects=False)).status in (303, 403)
    client.session.cookie_jar.clear()
    await login(client, "direction")
    page = await _text(await client.get("/admin/gdpr"))
    assert "Durée de conservation" in page and "Martin Lucie" in page
    notice = await _text(await client.get("/admin/gdpr/notice"))
    assert "1er septembre 2028" in notice
    resp = await _post(client, "/admin/gdpr/settings", {"retention_years": "0", "contact": "ce.0751234J@ac-paris.fr",
                                                         "dpo": "dpd@ac-paris.fr"})
    assert resp.status == 200 and "Réglages enregistrés" in await _text(resp)
    for path in ("/admin/gdpr/notice", "/admin/gdpr/register"):
        doc = await _text(await client.get(path))
        assert "1er septembre 2027" in doc and "1er septembre 2028" not in doc and "ce.0751234J@ac-paris.fr" in doc
        # its icon is the node's own: no /favicon.ico asked for, no 404 in the browser's console
        icon = re.search(r'<link rel="icon" href="([^"]+)"', doc)
        assert icon and (await client.get(icon.group(1))).status == 200, path
    bad = await _post(client, "/admin/gdpr/settings", {"retention_years": "9"})
    text = await _text(bad)
    assert bad.status == 422 and "La durée de conservation va de 0 à 5 années scolaires" in text  # French, not English
    assert "school years" not in text
    assert '<a class="lang" href="/admin/gdpr?lang=en"' in text  # the refusal's language link opens the form's page

    resp = await _post(client, "/admin/backup", {}, "/admin/backup")
    assert resp.status == 200
    await resp.read()
    page = await _text(await client.get("/admin/gdpr"))
    assert "téléchargée depuis la page Sauvegarde" in page and "à détruire" not in page

    pupil = ids["pupil_a"]
    base = f"/admin/gdpr/pupils/{pupil}"
    resp = await _post(client, base + "/counted", {"counted": "no", "request": "mère"}, base)
    assert "ne sera pas compté" in await _text(resp)
    resp = await _post(client, base + "/result", {"exercise": f"{ids['campaign']}/fr-mots", "value": "11010",
                                                  "request": "père, erreur de saisie"}, base)
    assert resp.status == 200 and "Correction enregistrée" in await _text(resp)
    resp = await _post(client, base + "/result", {"exercise": f"{ids['campaign']}/fr-mots", "value": "12",
                                                  "request": "x"}, base)
    text = await _text(resp)
    assert resp.status == 422 and "« 12 » : donnez la réponse à chaque item, 1 (juste), 0 (faux)" in text, text
    assert "(right)" not in text
    assert f'<a class="lang" href="{base}?lang=en"' in text
    resp = await _post(client, base + "/identity", {"last_name": "Martin-Durand", "first_name": "Lucie",
                                                    "request": "mère, orthographe"}, base)
    assert resp.status == 200
    page = await _text(await client.get(base + "/access"))
    assert "Martin-Durand" in page and "Bernard" not in page and "non : à la demande de la famille" in page
    assert "juste juste faux juste faux" in page
    data = await (await client.get(base + "/access.json")).json()
    assert data["pupil"]["last_name"] == "Martin-Durand" and data["counted_in_releases"] is False
    assert [r["score"] for c in data["campaigns"] for r in c["results"]] == [3]

    resp = await _post(client, "/admin/gdpr/purge", {"campaign_id": ids["campaign"]})
    assert resp.status == 400
    resp = await _post(client, "/admin/gdpr/purge", {"campaign_id": ids["campaign"], "confirm": "yes"})
    assert resp.status == 200 and "effacés" in await _text(resp)
    data = await (await client.get(base + "/access.json")).json()
    assert data["campaigns"] == []
    assert "contient des données effacées depuis : à détruire" in await _text(await client.get("/admin/gdpr"))
