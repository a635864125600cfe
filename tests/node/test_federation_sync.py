"""A district and schools in one process, talking over real WebSockets on 127.0.0.1."""
from __future__ import annotations

import pytest
from aiohttp import web

from preau.crdt.campaign import parse_campaign
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.node.errors import UserError
from preau.node.runtime import Node, create_identity
from preau.node.transport import SYNC_PATH, Limits, serve_session

CAMPAIGN = parse_campaign({
    "id": "2026-debut-cp", "name": "Début de CP", "level": "CP", "school_year": "2026-2027",
    "opens": "2026-09-01", "closes": "2026-09-30",
    "policy": {"min_cohort": 10, "min_batch": 10},
    "exercises": [
        {"id": "fr-mots", "name": "Comprendre des mots", "subject": "français", "score_kind": "items", "items": 15,
         "thresholds": [6, 10]},
        {"id": "ma-nombres", "name": "Lire des nombres", "subject": "mathématiques", "score_kind": "items", "items": 10,
         "thresholds": [4, 7]},
    ],
})


def make_node(tmp_path, name, role):
    path = tmp_path / name
    create_identity(path)
    return Node(path, role=role, limits=Limits(idle_timeout=5, session_timeout=30))


@pytest.fixture
async def district(tmp_path, aiohttp_server):
    node = make_node(tmp_path, "district", "district")
    app = web.Application()

    async def endpoint(request):
        return await serve_session(request, node.federation, node.limits)

    app.router.add_get(SYNC_PATH, endpoint)
    server = await aiohttp_server(app, host="127.0.0.1")
    node.url = str(server.make_url("")).rstrip("/")
    yield node
    node.close()


def outcomes(n, group="seuil2"):
    return [PupilOutcome(f"p{i}", ex.id, group if i % 3 else "besoin") for i in range(n) for ex in CAMPAIGN.exercises]


def school_release(school, n):
    decision = next_release(outcomes(n), CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=False)
    assert decision.release, decision.reason
    return school.federation.publish_release(decision.content, to_peer="district")


async def test_enrol_publish_release_and_receipt(tmp_path, district):
    received = []
    school = make_node(tmp_path, "school", "school")
    school.federation.on_campaign = received.append
    inv = district.create_invitation("0751234J", [district.url])
    district.federation.publish_campaign(CAMPAIGN)

    report = await school.join(inv.to_string(), "0751234J")
    assert report.complete and report.error is None
    assert received == [CAMPAIGN]  # the campaign came down in the enrolment session
    assert district.fed.peers("school")[0]["uai"] == "0751234J"

    school_release(school, 12)
    report = await school.sync_upstream()
    assert report.complete and report.receipts, report
    stats = district.fed.stats(CAMPAIGN.id)
    assert stats is not None and len(stats["schools"]) == 1
    [sent] = school.fed.transparency()
    assert sent["receipt"]["release"] == 1

    # The receipts document written during that session comes down in the next one (signed by the district);
    # after that nothing is new and a session carries no document.
    again = await school.sync_upstream()
    assert [a.kind for a in again.accepted] == ["receipts"]
    idle = await school.sync_upstream()
    assert idle.complete and not idle.accepted and idle.bytes_sent < 2000
    school.close()


async def test_used_invitation_and_unknown_key_are_refused(tmp_path, district):
    inv = district.create_invitation("0751234J", [district.url])
    a = make_node(tmp_path, "a", "school")
    await a.join(inv.to_string(), "0751234J")
    b = make_node(tmp_path, "b", "school")
    with pytest.raises(UserError, match="already been used"):
        await b.join(inv.to_string(), "0751234J")
    assert b.federation.upstream() is None  # a refused join leaves no pin behind
    # A node whose key the district never pinned cannot sync, even knowing the district's key.
    c = make_node(tmp_path, "c", "school")
    c.federation.pin_upstream(district.identity.public, district.url)
    with pytest.raises(UserError, match="not enrolled|does not know"):
        await c.sync_upstream()
    for n in (a, b, c):
        n.close()


async def test_revoked_school_is_refused(tmp_path, district):
    inv = district.create_invitation("0751234J", [district.url])
    school = make_node(tmp_path, "s", "school")
    await school.join(inv.to_string(), "0751234J")
    assert district.fed.revoke_peer(school.identity.signing_key.hex())
    with pytest.raises(UserError, match="revoked"):
        await school.sync_upstream()
    school.close()


async def test_bundle_carried_by_hand_and_tampered_bundle(tmp_path, district):
    inv = district.create_invitation("0751234J", [district.url])
    school = make_node(tmp_path, "s", "school")
    await school.join(inv.to_string(), "0751234J")
    school_release(school, 15)
    bundle = school.federation.export_bundle()
    tampered = bundle.replace(b'"release": "505253', b'"release": "505254')
    from preau.node.federation import BundleError
    with pytest.raises(BundleError):
        district.federation.import_bundle(tampered)
    assert district.fed.stats(CAMPAIGN.id) is None
    accepted = district.federation.import_bundle(bundle)
    assert [a.kind for a in accepted] == ["release"]
    assert len(district.fed.stats(CAMPAIGN.id)["schools"]) == 1
    school.close()
