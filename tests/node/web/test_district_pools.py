"""The district forms a pool on its web page: candidates are the schools that declared their cohort (and the
withheld small ones, which must declare first); the same checks and words as `preau pool create`, in French;
redirect after POST; nothing is stored when the form is refused."""
from __future__ import annotations

import pytest

from node_fixtures import build_district, campaign as fixture_campaign, login
from preau.crdt.documents import ReleaseContent
from preau.node.app import create_app
from preau.node.appkeys import NODE
from preau.node.federation import pools as fpools
from preau.protocol.identity import Identity
from preau.protocol.secagg import CohortDeclaration, check_pool, decode, encode
from test_web_pages import text_of
from web_helpers import csrf_of

SCHOOLS = [("0690011M", "École du Moulin", 2), ("0690012N", "École de la Source", 3),
           ("0690013P", "École des Prés", 4), ("0690014R", "École du Lavoir", 7)]
WITHHELD = ("0690015S", "École des Vignes")


@pytest.fixture
async def district(tmp_path, aiohttp_client):
    client = await aiohttp_client(create_app(build_district(tmp_path).settings))
    node = client.server.app[NODE]
    camp = fixture_campaign()
    idents = {}

    def set_up() -> None:  # on the node's database thread, as a serving node requires
        node.federation.publish_campaign(camp)
        box = fpools.PoolMailbox(node.federation)
        for i, (uai, name, cohort) in enumerate([*SCHOOLS, (*WITHHELD, None)]):
            ident = idents[uai] = Identity(bytes([80 + i]) * 32)
            node.fed.add_peer(ident.signing_key.hex(), node_id=ident.node_id, role="school", uai=uai, name=name,
                              static_key=ident.public.static_key.hex())
            if cohort is not None:  # what the school's sync carries: its own signed declaration
                box.incoming(ident.public, encode(CohortDeclaration.create(ident, campaign_id=camp.id, uai=uai,
                                                                           cohort=cohort, declared_at=1)))
        withheld = ReleaseContent(camp.id, 1, "withheld", "small_cohort", camp.policy, final=True)
        with node.fed.transaction() as conn:
            node.fed._put_stats_entry(conn, camp.id, idents[WITHHELD[0]].signing_key.hex(),
                                      {"release": 1, "time": 0, "heads": "", "content": withheld.to_dict()}, [])

    node.call(set_up)
    await login(client, "ien")
    return client, node, camp, idents


async def _post(client, page, members, threshold=""):
    token = await csrf_of(client, page)
    return await client.post(page, data=[("csrf_token", token), *(("member", u) for u in members),
                                         ("threshold", threshold)])


async def test_the_district_forms_a_pool_of_small_schools_on_its_page(district):
    client, node, camp, idents = district
    page = f"/district/pools/{camp.id}"
    assert f'href="{page}"' in await text_of(await client.get(f"/district/stats/{camp.id}"))
    text = await text_of(await client.get(page))
    for uai, name, cohort in SCHOOLS:
        assert name in text and uai in text
    assert "École des Vignes" in text and "Effectif non déclaré" in text
    assert 'value="0690015S" id="m-0690015S" disabled' in text  # must declare first: not selectable

    # Three schools of 2, 3 and 4 pupils: under the floor; the page says so in French and keeps the choice.
    resp = await _post(client, page, [u for u, _, _ in SCHOOLS[:3]])
    text = await text_of(resp)
    assert resp.status == 400, text
    assert ("3 de ces écoles pourraient ne compter ensemble que 9 élèves, moins de 10 : ajoutez des écoles "
            "ou relevez le seuil.") in text
    assert 'value="0690011M" id="m-0690011M" checked' in text
    resp = await _post(client, page, [u for u, _, _ in SCHOOLS], "deux")
    assert resp.status == 400 and "Le seuil « deux » n'est pas un nombre entier" in await text_of(resp)
    resp = await _post(client, page, [u for u, _, _ in SCHOOLS], "2")
    assert resp.status == 400 and "Le seuil doit être compris entre 3 et 4" in await text_of(resp)
    resp = await _post(client, page, [SCHOOLS[0][0], SCHOOLS[1][0], WITHHELD[0]])
    assert resp.status == 400 and "L'école 0690015S n'a pas déclaré son effectif" in await text_of(resp)
    assert fpools.pools(node.federation) == []  # nothing was formed by a refused form

    # All four with threshold 4 (any 4 of them hold 16 pupils): formed, signed, queued for each school.
    resp = await _post(client, page, [u for u, _, _ in SCHOOLS], "4")
    assert resp.history[0].status == 303 and str(resp.url).endswith(page)
    text = await text_of(resp)
    assert "Regroupement formé : 4 écoles, seuil 4." in text and "En cours : échange des clés." in text
    assert text.count("Déjà regroupée avec") == 4  # each school named with the others, not by the pool's id
    assert "Déjà regroupée avec École de la Source, École des Prés, École du Lavoir</td>" in text
    (view,) = fpools.pools(node.federation)
    assert [m["cohort"] for m in view.members] == [2, 3, 4, 7] and view.threshold == 4
    for i, (uai, _, _) in enumerate(SCHOOLS):
        (mail,) = node.call(fpools.PoolMailbox(node.federation).outgoing, idents[uai].public)
        assert check_pool(decode(mail), district_key=node.federation.key, me=idents[uai].signing_key) == i + 1
    # A second pool with one of them, for the same campaign, is refused with the rule's words.
    resp = await _post(client, page, [SCHOOLS[0][0], SCHOOLS[3][0], WITHHELD[0]])
    assert resp.status == 409 and "ne participe qu'à un regroupement par campagne" in await text_of(resp)
