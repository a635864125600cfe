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
