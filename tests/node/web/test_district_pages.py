"""District pages as the people there read them, found by hand on `make demo`'s district."""
from __future__ import annotations

import html

from node_fixtures import SCHOOL_UAI, build_district, login
from preau.node.app import create_app
from web_helpers import csrf_of


async def test_a_new_invitation_is_headed_with_the_schools_name(tmp_path, aiohttp_client):
    """The page handed to the school said only "Invitation pour l'école 0751234J" though its name was typed."""
    client = await aiohttp_client(create_app(build_district(tmp_path).settings))
    await login(client, "ien")
    token = await csrf_of(client, "/district/invitations")
    resp = await client.post("/district/invitations", data={"csrf_token": token, "action": "create", "uai": SCHOOL_UAI,
                                                            "name": "École Jean Jaurès", "town": "Paris", "days": "7"})
    text = html.unescape(await resp.text())
    assert resp.status == 200 and "PREAU1-" in text
    assert f'<h2 id="inv-h">Invitation pour École Jean Jaurès, Paris ({SCHOOL_UAI})</h2>' in text


async def test_campaign_dates_are_written_as_in_france(tmp_path, aiohttp_client):
    """The campaigns' dates read "2026-09-01 → 2030-06-30" among pages that all write 30/11/2026."""
    from node_fixtures import build_school

    district = await aiohttp_client(create_app(build_district(tmp_path).settings))
    await login(district, "ien")
    token = await csrf_of(district, "/district/campaigns")
    from node_fixtures import CAMPAIGN_TOML
    from aiohttp import FormData
    form = FormData({"csrf_token": token})
    form.add_field("file", CAMPAIGN_TOML.encode(), filename="cp.toml", content_type="application/toml")
    assert (await district.post("/district/campaigns", data=form)).status == 200
    assert "01/09/2026 → 30/06/2030" in html.unescape(await (await district.get("/district/campaigns")).text())
    school = await aiohttp_client(create_app(build_school(tmp_path).settings))  # its campaign: the same file
    await login(school, "direction")
    for path in ("/admin/campaigns", "/classes"):
        text = html.unescape(await (await school.get(path)).text())
        assert "01/09/2026 → 30/06/2030" in text and "2026-09-01" not in text, path


async def test_the_district_resets_a_forgotten_password(tmp_path, aiohttp_server, aiohttp_client):
    """An inspector who forgot a password could only be disabled: the district's accounts page now resets it,
    as the school's does (one accounts form, node/web/accounts_form.py), and ends the person's sessions."""
    from node_fixtures import PASSWORD

    server = await aiohttp_server(create_app(build_district(tmp_path).settings))
    admin = await aiohttp_client(server)
    await login(admin, "ien")
    token = await csrf_of(admin, "/district/accounts")
    resp = await admin.post("/district/accounts", data={"csrf_token": token, "action": "create", "username": "cpc.dupont",
                                                        "password": PASSWORD, "role": "inspector"})
    assert resp.status == 200
    inspector = await aiohttp_client(server)
    await login(inspector, "cpc.dupont")
    assert (await inspector.get("/district/stats")).status == 200
    page = html.unescape(await (await admin.get("/district/accounts")).text())
    assert 'name="action" value="reset"' in page and "<option>cpc.dupont</option>" in page
    resp = await admin.post("/district/accounts", data={"csrf_token": token, "action": "reset", "username": "cpc.dupont",
                                                        "password": "nouveau-mot-de-passe"})
    assert resp.status == 200 and "Mot de passe de cpc.dupont réinitialisé" in html.unescape(await resp.text())
    assert (await inspector.get("/district/stats", allow_redirects=False)).status in (302, 303)  # logged out
    await login(inspector, "cpc.dupont", "nouveau-mot-de-passe")
    assert (await inspector.get("/district/stats")).status == 200
