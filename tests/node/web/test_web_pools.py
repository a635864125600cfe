"""The head teacher sees a proposed pool on the release page, with the other schools by name, and approves it."""
from __future__ import annotations

import pytest

from node_fixtures import build_school, campaign as fixture_campaign, login
from preau.crdt.pooling import vector_length
from preau.node.app import create_app
from preau.node.appkeys import NODE
from preau.node.federation import pools as fpools
from preau.protocol.identity import Identity
from preau.protocol.secagg import CohortDeclaration, Member, PoolDefinition, encode


def _declared(identity, campaign_id, uai, name, cohort) -> Member:
    return Member.declared(CohortDeclaration.create(identity, campaign_id=campaign_id, uai=uai, cohort=cohort,
                                                    declared_at=1), name)
from test_web_pages import post_form, text_of


@pytest.fixture
async def school(tmp_path, aiohttp_client):
    built = build_school(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    return client, built.ids, client.server.app[NODE]


def _propose(node, campaign) -> PoolDefinition:
    """What the school stores when its district's pool arrives at a sync (federation.pools._school)."""
    district = Identity(b"d" * 32)
    members = (_declared(node.federation.identity, campaign.id, "0751234J", "École des Tilleuls", 0),
               _declared(Identity(b"a" * 32), campaign.id, "0690001B", "École du Moulin", 5),
               _declared(Identity(b"b" * 32), campaign.id, "0690002C", "École de la Source", 5))
    pool = PoolDefinition.create(district, campaign_id=campaign.id, pool_id=b"p" * 16, threshold=3,
                                 vector_length=vector_length(campaign), members=members)
    node.call(fpools._save, node.fed, pool.pool_id.hex(), {"role": "school", "definition": encode(pool).hex(),
                                                "district": district.signing_key.hex(), "status": "proposed",
                                                "transcript": [], "outbox": None})
    return pool


async def test_the_release_page_shows_the_pool_and_nothing_leaves_before_approval(school):
    client, ids, node = school
    await login(client, "direction")
    page = f"/admin/release/{ids['campaign']}"
    pool = _propose(node, fixture_campaign())
    text = await text_of(await client.get(page))
    assert "Regroupement avec d'autres petites écoles" in text
    for name, uai in (("École du Moulin", "0690001B"), ("École de la Source", "0690002C")):
        assert f"{name} ({uai})" in text
    assert "En attente de votre accord : rien n'est parti." in text
    assert node.call(fpools.PoolMailbox(node.federation).outgoing, Identity(b"d" * 32).public) == []
    resp = await post_form(client, f"{page}/pool/{pool.pool_id.hex()}", {}, page)
    text = await text_of(resp)
    assert resp.status == 200 and "Regroupement accepté" in text, text
    assert "En cours" in text
    (advert,) = node.call(fpools.PoolMailbox(node.federation).outgoing, Identity(b"d" * 32).public)
    assert advert[:2] == b"\x01\x02"  # version 1, AdvertiseKeys: the school's keys, nothing of its counts
    resp = await post_form(client, f"{page}/pool/{pool.pool_id.hex()}", {}, page)
    assert resp.status == 409 and "n'attend plus votre accord (état : en cours)" in await text_of(resp)


async def test_the_district_statistics_show_a_completed_pool_as_one_row(tmp_path, aiohttp_client):
    from node_fixtures import build_district
    from preau.crdt.documents import ReleaseContent
    from preau.crdt.pooling import pooled_rows
    built = build_district(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    node = client.server.app[NODE]
    camp = fixture_campaign()
    node.call(node.federation.publish_campaign, camp)
    members = tuple(_declared(Identity(bytes([65 + i]) * 32), camp.id, u, f"École {u}", 5)
                    for i, u in enumerate(("0751234J", "0690001B", "0690002C")))
    for m in members:  # the schools, enrolled here
        node.call(node.fed.add_peer, m.signing_key.hex(), node_id=m.node_id, role="school", uai=m.uai, name=m.name)
    pool = PoolDefinition.create(node.identity, campaign_id=camp.id, pool_id=b"q" * 16, threshold=3,
                                 vector_length=vector_length(camp), members=members)
    total = [3] * vector_length(camp)
    rows, cohort = pooled_rows(total, camp)
    content = ReleaseContent(camp.id, 1, "published", "3 écoles regroupées", camp.policy, rows, cohort, scope="pool",
                             schools_contributing=3, schools_withheld=0)

    def store_pool() -> None:
        with node.fed.transaction() as conn:
            node.fed._put_stats_entry(conn, camp.id, fpools.POOL_OWNER + pool.pool_id.hex(),
                                      {"release": 1, "time": 0, "heads": "", "content": content.to_dict()}, [])
        fpools._save(node.fed, pool.pool_id.hex(), {"role": "district", "definition": encode(pool).hex(),
                                                    "status": "complete", "events": [], "outbox": {},
                                                    "result": {"survivors": 3, "pupils": cohort}})
    node.call(store_pool)
    await login(client, "ien")
    text = await text_of(await client.get(f"/district/stats/{camp.id}"))
    assert "Regroupements de petites écoles" in text and f"3 écoles regroupées, {cohort} élèves" in text
    assert "École 0690001B (0690001B)" in text
    # the summary says the pool as a pool of 3 schools, not as one more school
    assert "0 école(s) et 1 regroupement(s) de petites écoles (3 écoles comptées ensemble)" in text, text
    assert "1 école(s) comptée(s)" not in text
    # Every page naming members names the pool in words, never by its statistics owner ("pool-…").
    for path in (f"/district/stats/{camp.id}/ecoles", f"/district/stats/{camp.id}/rapport"):
        text = await text_of(await client.get(path))
        assert "Regroupement de 3 petites écoles" in text and fpools.POOL_OWNER not in text, path
    text = await text_of(await client.get(f"/district/stats/{camp.id}/ecoles"))  # the caption counts it as a pool
    assert "0 école(s) et 1 regroupement(s) de petites écoles publiés" in text
    text = await text_of(await client.get("/district/progress"))  # the member chooser: the pool's key only as a value
    assert ">Regroupement de petites écoles</option>" in text and ">" + fpools.POOL_OWNER not in text
    members = (await (await client.get(f"/v1/stats/{camp.id}/members")).json())["members"]
    assert [m["name"] for m in members] == ["Regroupement de petites écoles"]
    # The schools page says each pooled school counts through its pool, not "aucun envoi", by the campaign's name.
    text = await text_of(await client.get("/district/schools"))
    assert text.count(f"{camp.name} : comptée dans un regroupement de 3 petites écoles") == 3, text
    assert "aucun envoi" not in text


async def test_a_school_without_a_name_is_shown_by_its_uai_once(tmp_path, aiohttp_client):
    """A school enrolled without a name (as `preau demo`'s are): its UAI stands for its name, not "0691000M (0691000M)"."""
    from node_fixtures import build_district
    from preau.crdt.documents import ReleaseContent
    from preau.crdt.pooling import pooled_rows
    built = build_district(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    node = client.server.app[NODE]
    camp = fixture_campaign()
    rows, cohort = pooled_rows([3] * vector_length(camp), camp)
    content = ReleaseContent(camp.id, 1, "published", "", camp.policy, rows, cohort)

    def store() -> None:
        node.fed.add_peer("e5" * 32, node_id="NSANSNOM", role="school", uai="0691000M", name="", town="")
        with node.fed.transaction() as conn:
            node.fed._put_stats_entry(conn, camp.id, "e5" * 32,
                                      {"release": 1, "time": 0, "heads": "", "content": content.to_dict()}, [])
    node.call(store)
    await login(client, "ien")
    text = await text_of(await client.get(f"/district/stats/{camp.id}/ecoles"))
    assert "0691000M" in text and "0691000M (0691000M)" not in text and "(0691000M)" not in text


async def test_a_small_school_declares_its_cohort_on_the_release_page(school):
    from preau.protocol.secagg import decode
    client, ids, node = school
    await login(client, "direction")
    page = f"/admin/release/{ids['campaign']}"
    text = await text_of(await client.get(page))
    assert "Compter vos élèves avec d'autres petites écoles" in text and "Déclarer l'effectif (0 élèves)" in text
    assert fpools.declared_cohort(node.federation, ids["campaign"]) is None
    resp = await post_form(client, f"{page}/declare", {}, page)
    assert resp.history[0].status == 303 and resp.status == 200 and str(resp.url).endswith(page)  # redirect after POST
    text = await text_of(resp)
    assert "Effectif déclaré : 0 élèves. Il part à la prochaine synchronisation." in text
    assert "Effectif déclaré à la circonscription : 0 élèves." in text and "Déclarer l'effectif" not in text
    raw = node.fed.get_meta(fpools.DECLARATIONS_META)[ids["campaign"]]
    declaration = decode(bytes.fromhex(raw))
    assert declaration.valid() and declaration.signing_key == node.federation.key and declaration.cohort == 0


async def test_the_release_page_says_why_a_pool_was_refused_in_french_and_who_countersigned(school):
    client, ids, node = school
    await login(client, "direction")
    page = f"/admin/release/{ids['campaign']}"
    pool = _propose(node, fixture_campaign())
    academie = Identity(b"c" * 32)
    signed = pool.countersigned(academie)
    node.call(fpools._save, node.fed, pool.pool_id.hex(), {
        "role": "school", "definition": encode(signed).hex(), "district": pool.district_key.hex(), "status": "refused",
        "reason": "the pool's cohort for École du Moulin (0690001B), 5 pupils, is not that school's own signed declaration",
        "code": "bad_cohort_declaration", "transcript": [], "outbox": None})
    text = await text_of(await client.get(page))
    assert f"Liste des écoles contresignée par l'académie {academie.node_id}." in text
    assert ("L'effectif indiqué pour une école n'est pas celui qu'elle a déclaré et signé elle-même : "
            "le regroupement est refusé.") in text
    assert "not that school's own signed declaration" not in text


def test_every_refusal_a_school_makes_has_its_words():
    """The codes check_pool and the académie rule raise (docs/secure-aggregation.md, "The checks")."""
    from preau.node.i18n import catalog
    for code in ("bad_pool_signature", "bad_pool_countersignature", "bad_cohort_declaration", "pool_too_small",
                 "threshold_too_low", "cohort_too_small", "member_publishes_alone", "not_a_member", "wrong_cohort",
                 "already_sent"):
        for lang in ("fr", "en"):
            assert f"pool.refusal.{code}" in catalog(lang), (code, lang)
