"""People at the district (issue 15): administrators and read-only inspectors, and an audit of who did what."""
from __future__ import annotations

import html
import re

from node_fixtures import PASSWORD, build_district, free_port, login
from preau.node.app import create_app
from web_helpers import csrf_of


async def test_an_inspector_reads_statistics_but_cannot_invite_publish_or_manage_and_the_log_says_who_did_what(
        tmp_path, aiohttp_server, aiohttp_client):
    port = free_port()
    built = build_district(tmp_path, port=port)
    server = await aiohttp_server(create_app(built.settings), host="127.0.0.1", port=port)
    admin = await aiohttp_client(server)
    await login(admin, "ien")
    token = await csrf_of(admin, "/district/accounts")
    resp = await admin.post("/district/accounts", data={"csrf_token": token, "action": "create", "username": "cpc.dupont",
                                                        "password": PASSWORD, "role": "inspector"})
    assert resp.status == 200 and "cpc.dupont" in await resp.text()
    assert resp.history[0].status == 303  # post/redirect/get, as on the school's forms
    resp = await admin.post("/district/accounts", data={"csrf_token": token, "action": "create", "username": "cpc.dupont",
                                                        "password": PASSWORD, "role": "inspector"})
    assert resp.status == 409  # said in the person's language, from the store's own catalog words
    assert "L'opération n'a pas été faite. L'identifiant « cpc.dupont » est déjà pris : choisissez-en un autre." in html.unescape(await resp.text())
    token = await csrf_of(admin, "/district/invitations")
    resp = await admin.post("/district/invitations", data={"csrf_token": token, "action": "create", "uai": "0751234J",
                                                           "name": "École des Tilleuls", "town": "Paris", "days": "7"})
    assert resp.status == 200 and "PREAU1-" in await resp.text()

    inspector = await aiohttp_client(server)
    await login(inspector, "cpc.dupont")
    for path in ("/district/stats", "/district/schools", "/district/progress"):
        assert (await inspector.get(path)).status == 200, path
    nav = html.unescape(await (await inspector.get("/district/stats")).text())
    assert "/district/invitations" not in nav and "/district/accounts" not in nav
    for path in ("/district/invitations", "/district/campaigns", "/district/accounts", "/district/audit"):
        assert (await inspector.get(path)).status == 403, path
    token = await csrf_of(inspector, "/district/stats")
    for path, data in (("/district/invitations", {"action": "create", "uai": "0751235K", "days": "7"}),
                       ("/district/campaigns", {}),
                       ("/district/accounts", {"action": "create", "username": "x.y", "password": PASSWORD,
                                               "role": "district"})):
        resp = await inspector.post(path, data={"csrf_token": token, **data})
        assert resp.status == 403, path
    invitations = html.unescape(await (await admin.get("/district/invitations")).text())
    assert "0751235K" not in invitations and "École des Tilleuls, Paris" in invitations

    log = html.unescape(await (await admin.get("/district/audit")).text())
    assert "invitation-created" in log and "0751234J" in log and "account-created" in log
    rows = [r for r in log.split("<tr>") if "invitation-created" in r]
    assert rows and '<th scope="row" title="account:ien">ien</th>' in rows[0]  # under the name of the person who did it
    # Read in French, as the other pages: the action in words, the moment as 30/11/2026 10:49, an account by its name.
    assert '<td data-action="invitation-created">Invitation créée</td>' in rows[0]
    assert re.search(r'<time datetime="[^"]+">\d\d/\d\d/\d{4} \d\d:\d\d</time>', rows[0]), rows[0]
    created = [r for r in log.split("<tr>") if "account-created" in r]
    assert created and "Compte créé" in created[0] and "<td>cpc.dupont</td>" in created[0], created
    assert "<td>cpc.dupont — Inspection (lecture seule)</td>" in created[0], created  # not "cpc.dupont teacher"
    assert ">login<" not in log and "Connexion" in log
    setup = [r for r in log.split("<tr>") if 'data-action="setup"' in r]  # the node's own set-up, said in words
    assert setup and '<th scope="row" title="setup">Installation</th>' in setup[0] and "<td>ce serveur</td>" in setup[0], setup


def test_the_command_line_invitation_carries_the_town_too(tmp_path):
    from preau.node import actions
    from preau.node.federation.store import FedStore
    from preau.node.runtime import FEDERATION_DB

    built = build_district(tmp_path)
    text = actions.create_invitation(built.settings, uai="0751234J", name="École des Tilleuls", town="Paris",
                                      allow_loopback=True).text
    assert text.startswith("PREAU1-")
    fed = FedStore(tmp_path / "district" / FEDERATION_DB)
    [inv] = fed.invitations()
    assert (inv["uai"], inv["name"], inv["town"]) == ("0751234J", "École des Tilleuls", "Paris")
    fed.close()
