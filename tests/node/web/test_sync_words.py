"""The head teacher's sync page in sentences: no event id, document id or key fingerprint outside a <details>,
the district by its name, and nothing called "publié" before the head teacher approved it."""
from __future__ import annotations

import html
import re

import pytest

from node_fixtures import build_school, login
from preau.node.app import create_app
from preau.node.appkeys import NODE
from preau.node.web.event_words import event_sentence
from preau.protocol.identity import Identity

CAMPAIGNS = {"2026-test-cp": "Début de CP (test)"}


@pytest.fixture
async def school(tmp_path, aiohttp_client):
    built = build_school(tmp_path)
    return await aiohttp_client(create_app(built.settings)), built.ids


def _outside_details(page: str) -> str:
    return re.sub(r"<details.*?</details>", "", page, flags=re.S)


async def test_events_are_sentences_and_ids_stay_in_details(school):
    client, ids = school
    node = client.app[NODE]
    district = Identity(b"d" * 32).public
    doc = f"campaign:{ids['campaign']}:{district.node_id}"

    def log_events() -> None:
        node.federation.pin_upstream(district, "https://127.0.0.1:1", name="Circonscription Paris 5")
        # the log's own words and values, as node/federation writes them
        node.fed.log_event("accepted", f"campaign {doc} release 3", doc_kind="campaign", doc_id=doc,
                           campaign=ids["campaign"], version=3)
        node.fed.log_event("refused", f"{district.node_id} offered {doc!r} with a signature that is not valid",
                           doc_id=doc, peer=district.node_id, why="bad_signature")
        node.fed.log_event("pool_proposed", f"pool 0a1b2c3d for {ids['campaign']}: proposed", pool="0a1b2c3d",
                           campaign=ids["campaign"], status="proposed")
        node.fed.log_event("key_rotated", "this node is now abcd-efgh-ijkl", whose="self", new="abcd-efgh-ijkl")
        node.fed.log_event("something_new", "an event kind this page has never heard of")
        node.fed.log_event("campaign_refused", f"{doc}: below the floor", code="policy_below_floor",
                           values={"setting": "min_cohort", "asked": 3, "minimum": 10}, doc_id=doc)
        # logged before events carried their values: the kind's sentence, the detail kept for support
        with node.fed.transaction() as conn:
            conn.execute("INSERT INTO events(at, kind, detail, params) VALUES (1, 'accepted', ?, NULL)",
                         [f"campaign {doc} release 2 (old-style 7f3e)"])

    node.call(log_events)
    await login(client, "direction")
    page = html.unescape(await (await client.get("/admin/sync")).text())
    for said in ("Campagne « Début de CP (test) » reçue de la circonscription et vérifiée (version 3).",
                 "Un document reçu a été refusé parce qu'il n'était pas valable ; rien n'a été modifié.",
                 "Un regroupement de petites écoles est proposé pour « Début de CP (test) »",
                 "Les clés de ce serveur ont été renouvelées.", "Événement technique (voir le détail).",
                 "Un document signé a été reçu et vérifié.",
                 "La campagne a été refusée : elle demande min_cohort = 3, en dessous du minimum national de 10."):
        assert said in page, said
    assert "<dd>Circonscription Paris 5</dd>" in page
    visible = _outside_details(page)
    for raw in (district.node_id, node.node_id, doc, "0a1b2c3d", "abcd-efgh", "something_new", "accepted", "pool_proposed",
                "old-style 7f3e"):
        assert raw not in visible, raw
        assert raw in page, raw  # kept for support, inside <details>
    assert "publié" not in visible


async def test_the_release_preview_is_not_called_published_before_approval(school):
    client, ids = school
    node = client.app[NODE]
    node.call(node.federation.pin_upstream, Identity(b"d" * 32).public, "https://127.0.0.1:1")
    await login(client, "direction")
    page = f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/exercises/fr-mots"
    text = await (await client.get(page)).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)
    # enough pupils assessed for a release: 12 in CP A
    class_list = "Nom;Prénom\n" + "".join(f"Élève;Numéro {n}\n" for n in range(10))
    import base64
    await client.post(f"/classes/{ids['class_a']}/import", data={
        "csrf_token": token, "data": base64.b64encode(class_list.encode()).decode(), "apply": "yes"})
    text = await (await client.get(page)).text()
    cells = {name: "1" for name in re.findall(r'name="(c-[0-9a-f]{16}-[0-9])"', text)}
    assert len(cells) == 60
    await client.post(page, data={"csrf_token": token, **cells})
    release = html.unescape(await (await client.get(f"/admin/release/{ids['campaign']}")).text())
    assert "Document n° 1 (statut : prêt à partir, après votre accord)" in release
    words = re.sub(r"<pre class=\"raw\".*?</pre>", "", release, flags=re.S)  # the signed JSON, shown as it is
    assert "publi" not in words.lower()


def test_an_unknown_campaign_or_a_detail_without_one_still_gives_a_sentence():
    assert event_sentence("accepted", {"doc_kind": "campaign", "campaign": "other-id", "version": 2}, "fr",
                          CAMPAIGNS) == "Une campagne a été reçue de la circonscription et vérifiée."
    assert event_sentence("accepted", {"doc_kind": "release", "campaign": "other-id", "version": 4}, "fr",
                          CAMPAIGNS) == "Un envoi d'une école a été reçu et vérifié."
    # a campaign id inside a longer one is not that campaign
    assert "« Début de CP (test) »" not in event_sentence("pool_formed", {"campaign": "2026-test-cp-bis"}, "fr", CAMPAIGNS)
    assert event_sentence("pool_formed", {"pool": "1", "campaign": "2026-test-cp", "schools": 3, "threshold": 2}, "en",
                          CAMPAIGNS) == \
        'A pool of small schools was formed for "Début de CP (test)".'


async def test_the_school_shows_its_district_by_the_name_the_district_gave(tmp_path, aiohttp_server, aiohttp_client):
    """The district's name travels in the Welcome of the joining session (its store's name), not typed by anyone."""
    from node_fixtures import SCHOOL_UAI, build_district, free_port
    from web_helpers import csrf_of

    port = free_port()
    district = await aiohttp_client(await aiohttp_server(create_app(build_district(tmp_path, port=port).settings),
                                                         host="127.0.0.1", port=port))
    await login(district, "ien")
    token = await csrf_of(district, "/district/invitations")
    page = await (await district.post("/district/invitations", data={"csrf_token": token, "action": "create",
                                                                     "uai": SCHOOL_UAI, "days": "7"})).text()
    invitation = re.search(r'class="invitation-text">([^<]+)<', page).group(1).strip()
    built = build_school(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    node = client.app[NODE]
    await node.join(invitation, SCHOOL_UAI)
    assert node.federation.upstream()["name"] == "Circonscription Paris 5"
    await login(client, "direction")
    text = html.unescape(await (await client.get("/admin/sync")).text())
    assert "<dt>Circonscription</dt><dd>Circonscription Paris 5</dd>" in text
    district_id = node.federation.upstream()["node_id"]
    assert district_id not in _outside_details(text) and district_id in text
