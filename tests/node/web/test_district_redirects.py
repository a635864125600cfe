"""Post/redirect/get on every district form: a form that worked answers 303 to its page, which shows what
happened once; reloading re-sends nothing, and the language switch works after any form."""
from __future__ import annotations

import html
import re

import aiohttp
import pytest

from node_fixtures import CAMPAIGN_TOML, SCHOOL_UAI, build_district, free_port, login
from preau.node.app import create_app

LANG_LINK = re.compile(r'<a class="lang" href="([^"]+)"')
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def district(tmp_path, aiohttp_server, aiohttp_client):
    port = free_port()
    built = build_district(tmp_path, port=port)
    server = await aiohttp_server(create_app(built.settings), host="127.0.0.1", port=port)
    client = await aiohttp_client(server)
    await login(client, "ien")
    return client


async def _text(resp) -> str:
    return html.unescape(await resp.text())


def _campaign_file(token: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", CAMPAIGN_TOML.encode(), filename="c.toml", content_type="application/toml")
    return form


def _declared_schools(client) -> list[str]:
    """Three small schools enrolled, each having declared its cohort (what their syncs would bring)."""
    from preau.node.appkeys import NODE
    from preau.node.federation import pools as fpools
    from preau.protocol.identity import Identity
    from preau.protocol.secagg import CohortDeclaration, encode
    node = client.app[NODE]
    uais = ["0690011M", "0690012N", "0690013P"]

    def enrol() -> None:  # on the node's database thread, as a serving node requires
        for i, uai in enumerate(uais):
            ident = Identity(bytes([90 + i]) * 32)
            node.fed.add_peer(ident.signing_key.hex(), node_id=ident.node_id, role="school", uai=uai,
                              name=f"École {i}", static_key=ident.public.static_key.hex())
            fpools.PoolMailbox(node.federation).incoming(ident.public, encode(CohortDeclaration.create(
                ident, campaign_id="2026-test-cp", uai=uai, cohort=4 + i, declared_at=1)))

    node.call(enrol)
    return uais


async def test_every_form_of_the_district_that_worked_answers_with_a_redirect(district):
    """A new POST route of the district must be added here, so a handler answering 200 cannot slip in unseen."""
    client = district
    routes = {r.resource.canonical for r in client.app.router.routes()
              if r.method == "POST" and r.resource.canonical.startswith("/district/")}
    forms = [  # (route, path, form, page it returns to), in an order that works
        ("/district/campaigns", "/district/campaigns", "campaign file", "/district/campaigns"),
        ("/district/campaigns/{campaign_id}", "/district/campaigns/2026-test-cp",
         {"t1-fr-mots": "3", "t2-fr-mots": "5", "t1-fr-lire-texte": "20", "t2-fr-lire-texte": "40"},
         "/district/campaigns/2026-test-cp"),
        ("/district/invitations", "/district/invitations", {"action": "create", "uai": SCHOOL_UAI, "days": "7"},
         "/district/invitations"),
        ("/district/accounts", "/district/accounts", {"action": "create", "username": "insp", "role": "inspector",
                                                      "password": "un long mot de passe"}, "/district/accounts"),
        ("/district/pools/{campaign_id}", "/district/pools/2026-test-cp", "pool", "/district/pools/2026-test-cp"),
    ]
    assert {route for route, *_ in forms} == routes
    for route, path, data, page in forms:
        if data == "pool":  # declared once the campaign is loaded: a district keeps declarations for its campaigns
            pool_members = _declared_schools(client)
        text = await _text(await client.get(page))
        token = TOKEN.search(text).group(1)
        body = (_campaign_file(token) if data == "campaign file" else
                [("csrf_token", token), *(("member", u) for u in pool_members)] if data == "pool" else
                {"csrf_token": token, **data})
        resp = await client.post(path, data=body, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == page, (route, resp.status)
        shown = await _text(await client.get(page))
        assert 'class="notice"' in shown, route
        again = await _text(await client.get(page))
        assert 'class="notice"' not in again, route  # once
        # the language switch after the form: the page's own address, in English
        href = LANG_LINK.search(again).group(1)
        english = await client.get(page + href if href.startswith("?") else href)
        assert english.status == 200 and '<html lang="en">' in await english.text(), route
        await client.get(page + "?lang=fr")


async def test_a_new_invitation_is_shown_once_and_a_reload_makes_no_other(district):
    client = district
    page = "/district/invitations"
    token = TOKEN.search(await (await client.get(page)).text()).group(1)
    resp = await client.post(page, data={"csrf_token": token, "action": "create", "uai": SCHOOL_UAI, "days": "7"},
                             allow_redirects=False)
    assert resp.status == 303
    text = await _text(await client.get(page))
    assert "Invitation créée pour 0751234J" in text and 'class="invitation-text">PREAU1-' in text
    assert '<svg aria-hidden="true"' in text
    rows = text.count('name="action" value="revoke"')
    again = await _text(await client.get(page))  # a reload: the secret is not shown again, nothing new is made
    assert "PREAU1-" not in again and again.count('name="action" value="revoke"') == rows == 1
    # revoking answers with a redirect too
    inv_id = re.search(r'name="id" value="([0-9a-f]+)"', again).group(1)
    token = TOKEN.search(again).group(1)
    resp = await client.post(page, data={"csrf_token": token, "action": "revoke", "id": inv_id}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == page
    assert "Invitation révoquée" in await _text(await client.get(page))


async def test_a_refused_district_form_keeps_its_answer_and_its_language_link_opens_the_form_page(district):
    client = district
    page = "/district/invitations"
    token = TOKEN.search(await (await client.get(page)).text()).group(1)
    resp = await client.post(page, data={"csrf_token": token, "action": "create", "uai": "0751234K", "days": "7"})
    text = await _text(resp)
    assert resp.status == 422
    href = LANG_LINK.search(text).group(1)
    assert href == page + "?lang=en"
    assert (await client.get(href)).status == 200
