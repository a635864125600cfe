"""Addresses people type by hand: "/admin" at a school, "/district" at a district. They answered "Impossible
d'afficher cette page" (404); they now lead to the person's own home page, or to the login page."""
from __future__ import annotations

from node_fixtures import build_district, login
from preau.node.app import create_app


async def test_admin_leads_to_the_head_teachers_home_and_a_stranger_to_the_login(client):
    resp = await client.get("/admin", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    await login(client, "direction")
    resp = await client.get("/admin", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/sync"


async def test_district_leads_to_the_districts_home(tmp_path, aiohttp_client):
    client = await aiohttp_client(create_app(build_district(tmp_path).settings))
    await login(client, "ien")
    resp = await client.get("/district", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/district/schools"
    assert (await client.get("/district")).status == 200


async def test_the_grid_and_the_profile_say_where_their_back_link_goes(client, ids):
    """Both led to the class page but said "← Retour aux classes" (the list of classes)."""
    import html

    from node_fixtures import grid_path, profile_path

    await login(client, "mme.martin")
    for path in (grid_path(ids, "cp-a", "fr-comprendre-mots"), profile_path(ids, "cp-a")):
        text = html.unescape(await (await client.get(path)).text())
        assert f'<a href="/classes/{ids["cp-a"]}">← Retour à la classe CP A</a>' in text, path
        assert "Retour aux classes" not in text, path
