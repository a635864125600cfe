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


MORE = [("0690016T", "École des Tilleuls", 8), ("0690017U", "École du Pont", 9)]


async def test_each_refusal_of_the_academie_is_said_in_french_on_the_districts_page(district, tmp_path):
    """The académie's refusal reached the district as English text (PoolAborted.reason) and was shown inside the
    French page. It now carries a code and its values: the district says each kind from its catalog. Each kind
    comes from the académie's own checks (its mailbox, as a sync session gives it the district's mail), on a
    definition the district sent or one made to fail that check; then a newer académie's unknown code, a code
    without its values, and an old académie's text (no code: said as it came)."""
    from federation_helpers import make_node
    from preau.protocol.secagg import Member, PoolDefinition
    from preau.protocol.secagg.messages import PoolAborted

    client, node, camp, idents = district
    academie = make_node(tmp_path, "academie", "district")
    dist = node.federation.identity
    home = "0699001X"

    def set_up() -> None:
        box = fpools.PoolMailbox(node.federation)
        for i, (uai, name, cohort) in enumerate(MORE):
            ident = idents[uai] = Identity(bytes([120 + i]) * 32)
            node.fed.add_peer(ident.signing_key.hex(), node_id=ident.node_id, role="school", uai=uai, name=name,
                              static_key=ident.public.static_key.hex())
            box.incoming(ident.public, encode(CohortDeclaration.create(ident, campaign_id=camp.id, uai=uai,
                                                                       cohort=cohort, declared_at=1)))
        node.fed.add_peer(academie.identity.signing_key.hex(), node_id=academie.identity.node_id, role="parent",
                          static_key=academie.identity.public.static_key.hex())

    node.call(set_up)

    def enrol_at_academie(uai: str) -> None:
        academie.fed.add_peer(dist.signing_key.hex(), node_id=dist.node_id, role="child", uai=uai,
                              static_key=dist.public.static_key.hex())

    enrol_at_academie(home)

    def form(uais, threshold=None, pool_id=None) -> str:
        return node.call(lambda: fpools.create_pool(node.federation, camp.id, uais, threshold=threshold,
                                                    pool_id=pool_id)).pool_id

    def exchange(pool_id: str, crafted: PoolDefinition | None = None) -> str:
        """The district's mail to the académie (or, in its place, a definition made to fail one check), the
        académie's answer back to the district; the pool's state at the district."""
        sent = [encode(crafted)] if crafted else node.call(
            lambda: fpools.PoolMailbox(node.federation).outgoing(academie.identity.public))
        answers = [a for d in sent for a in fpools.PoolMailbox(academie.federation).incoming(dist.public, d)]
        assert answers, pool_id
        deliver(answers)
        return node.call(lambda: fpools._all(node.fed)[pool_id]["status"])

    def deliver(answers) -> None:
        node.call(lambda: [fpools.PoolMailbox(node.federation).incoming(academie.identity.public, a) for a in answers])

    def forget(pool_id: str) -> None:  # what a district that wants a second pool over the same schools does
        node.call(lambda: fpools._save(node.fed, pool_id, {**fpools._all(node.fed)[pool_id], "status": "failed"}))

    four = [u for u, _, _ in SCHOOLS]
    three = [SCHOOLS[3][0], *(u for u, _, _ in MORE)]
    declared = {d.uai: Member.declared(d, d.uai) for d in node.call(
        lambda: fpools.declarations(node.federation, camp.id)).values()}
    said = {}

    first = form(four, threshold=4)
    assert exchange(first) == "keys"  # countersigned: the académie's register now holds these four schools
    forget(first)
    second = form(four, threshold=4)
    assert exchange(second) == "failed"
    said[second] = f"est déjà dans le regroupement {first[:8]} pour {camp.id}"
    reused = form(three, pool_id=bytes.fromhex(first))  # the first pool's number, another list of schools
    assert exchange(reused) == "failed"
    said[reused] = "Ce numéro de regroupement a déjà servi pour une autre liste d'écoles"
    enrol_at_academie("0759001A")  # the académie now places this district in Paris: the schools are outside
    outside = form(three)
    assert exchange(outside) == "failed"
    said[outside] = "Écoles hors des départements de cette académie (075) : 0690014R, 0690016T, 0690017U."
    enrol_at_academie(home)

    def crafted(pool_id: str, members, threshold: int, signer=dist) -> PoolDefinition:
        return PoolDefinition.create(signer, campaign_id=camp.id, pool_id=bytes.fromhex(pool_id), threshold=threshold,
                                     vector_length=64, members=tuple(members))

    small = [declared[u] for u, _, _ in SCHOOLS[:3]]  # 2, 3 and 4 pupils
    lying = Member(*(getattr(declared["0690016T"], f) for f in ("signing_key", "uai", "name")), 80,
                   declared["0690016T"].declared_at, declared["0690016T"].declaration)
    for members, threshold, signer, words in (
            (small[:2], 2, dist, "Un regroupement compte au moins 3 écoles."),
            ([declared[u] for u in three], 2, dist, "Le seuil du regroupement est trop bas"),
            (small, 3, dist, "Certaines écoles du regroupement pourraient ensemble compter moins de 10 élèves"),
            ([lying, declared["0690017U"], declared["0690014R"]], 3, dist,
             "L'effectif indiqué pour une école n'est pas celui qu'elle a déclaré et signé elle-même"),
            ([declared[u] for u in three], 3, Identity(b"\x99" * 32),
             "La liste des écoles n'est pas signée par la clé de cette circonscription que l'académie a enregistrée.")):
        pool_id = form(three)
        assert exchange(pool_id, crafted(pool_id, members, threshold, signer)) == "failed"
        said[pool_id] = words
    for answer, words in (
            (lambda p: PoolAborted.because(p, "a check of a newer version", "quorum_of_inspectors"),
             "Le regroupement n'a pas passé un contrôle de l'académie (contrôle : quorum_of_inspectors)."),
            (lambda p: PoolAborted.because(p, "schools outside", "outside_academie"),  # its values did not come
             "Le regroupement n'a pas passé un contrôle de l'académie (contrôle : outside_academie)."),
            (lambda p: PoolAborted(p, "one pool per campaign, said by an old académie"),
             "Refusé par l'académie : one pool per campaign, said by an old académie")):
        pool_id = form(three)
        deliver([encode(answer(bytes.fromhex(pool_id)))])
        said[pool_id] = words

    resp = await client.get(f"/district/pools/{camp.id}")
    text = await text_of(resp)
    assert resp.status == 200
    lines = {p: line for p in said for line in text.splitlines() if f"({p[:8]}," in line}
    for pool_id, words in said.items():
        assert f"Refusé par l'académie : {words}" in lines[pool_id] or words in lines[pool_id], (words, lines[pool_id])
        assert "Refusé par l'académie : " in lines[pool_id]
    english = ("already in pool", "outside this", "already used", "at least 3", "threshold", "signed", "could together",
               "too few schools", "trop peu d'écoles ont répondu")  # (the last: what "failed" said, whatever the cause)
    assert not [w for w in english if any(w in line for line in lines.values())], lines
    stats = await text_of(await client.get(f"/district/stats/{camp.id}"))  # the campaign's page lists them too
    assert "Refusé par l'académie : Un regroupement compte au moins 3 écoles." in stats
    academie.close()
