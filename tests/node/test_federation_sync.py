"""A district and schools in one process, talking over real WebSockets on 127.0.0.1."""
from __future__ import annotations

import asyncio

import pytest

from preau.node.errors import UserError

from federation_helpers import CAMPAIGN, make_node, school_release, serve

@pytest.fixture
async def district(tmp_path, aiohttp_server):
    node = await serve(make_node(tmp_path, "district", "district"), aiohttp_server)
    yield node
    node.close()


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
    # what each side logged carries its values, so the sync pages say it without reading the English detail back
    from preau.node.web.event_words import event_lines
    events = school.fed.events(20)
    said = {e["kind"]: (e["params"], line.sentence)
            for e, line in zip(events, event_lines(events, "fr", {CAMPAIGN.id: "Début de CP"}))}
    assert said["accepted"][0] == {"doc_kind": "campaign", "doc_id": said["accepted"][0]["doc_id"],
                                   "campaign": CAMPAIGN.id, "version": 1}, said
    assert said["accepted"][1] == "Campagne « Début de CP » reçue de la circonscription et vérifiée (version 1)."
    at_district = {e["kind"]: e["params"] for e in district.fed.events(20)}
    assert at_district["campaign_published"] == {"campaign": CAMPAIGN.id, "version": 1}, at_district
    assert at_district["enrolled"]["uai"] == at_district["invited"]["uai"] == "0751234J"

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
    with pytest.raises(UserError, match="revoked") as refused:
        await school.sync_upstream()
    # The refusal is kept as its code (in memory and on disk), which the pages say in words: nothing reads
    # the English back (issue 16).
    assert school.status.last_error_code == "peer_revoked"
    assert school.federation.upstream()["last_error_code"] == "peer_revoked"
    assert "la circonscription a révoqué la clé de ce serveur" in refused.value.words.to("fr")
    from preau.node.i18n import translate
    from preau.node.runtime import SyncStatus
    from preau.node.web.school_sync import sync_words

    school.status = SyncStatus()  # as after a restart: the stored code alone tells what to do
    said = sync_words(school, "fr", lambda key, **kw: translate("fr", key, **kw))
    assert said["todo"] == translate("fr", "sync.todo_revoked")
    school.close()


async def test_bundle_carried_by_hand_and_tampered_bundle(tmp_path, district):
    inv = district.create_invitation("0751234J", [district.url])
    school = make_node(tmp_path, "s", "school")
    await school.join(inv.to_string(), "0751234J")
    school_release(school, 15)
    bundle = school.federation.export_bundle()
    tampered = bundle.replace(b'"release": "505253', b'"release": "505254')
    from preau.node.federation.rules import BundleError
    with pytest.raises(BundleError):
        district.federation.import_bundle(tampered)
    assert district.fed.stats(CAMPAIGN.id) is None
    accepted = district.federation.import_bundle(bundle)
    assert [a.kind for a in accepted] == ["release"]
    assert len(district.fed.stats(CAMPAIGN.id)["schools"]) == 1
    school.close()


async def test_a_bundle_is_weighed_before_its_documents_are_read(tmp_path, district):
    """Found by review: bundles skipped the weighing sync messages get; a 1.6 kB bundle held a release whose history
    was a million list inserts (3.6 s to load at the district, and that document never synced again)."""
    import automerge.core as am
    from preau.crdt.documents import ReleaseContent, write_release
    from preau.crdt.campaign import Policy
    from preau.crdt.schema import document_id, new_document
    from preau.crdt.weight import MAX_ROWS
    from preau.node.federation.rules import BundleError
    school = make_node(tmp_path, "s", "school")
    await school.join(district.create_invitation("0751234J", [district.url]).to_string(), "0751234J")
    f = school.federation
    doc_id = document_id("release", f.key, CAMPAIGN.id)
    doc = new_document("release", f.key, campaign=CAMPAIGN.id, doc_id=doc_id)
    with doc.transaction() as tx:  # what a hostile school can write into its own document
        pad = tx.put_object(am.ROOT, "padding", am.ObjType.List)
        for i in range(MAX_ROWS + 1000):
            tx.insert(pad, i, am.ScalarType.Null, None)
    write_release(doc, ReleaseContent(CAMPAIGN.id, 1, "withheld", "small_cohort", Policy()))
    f._publish(doc)
    with pytest.raises(BundleError, match="too large to load"):
        district.federation.import_bundle(f.export_bundle())
    assert district.fed.document(doc_id) is None  # nothing kept
    school.close()


async def settled(node):
    """The server side of a session ends after the client has its answer: wait for it, not for a time."""
    for _ in range(500):
        if node.gate.active == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the district's session did not end")


async def test_a_session_that_stores_a_release_costs_the_district_one_commit(tmp_path, district):
    """Each COMMIT is an fsync that blocks the node: the release, its statistics, its receipt and the
    school's last contact go in one."""
    school = make_node(tmp_path, "school", "school")
    inv = district.create_invitation("0751234J", [district.url])
    district.federation.publish_campaign(CAMPAIGN)
    assert (await school.join(inv.to_string(), "0751234J")).complete
    school_release(school, 12)
    district.fed.db.execute("UPDATE peers SET last_contact = last_contact - 3600")  # contact due again
    await settled(district)
    before = district.fed.db.commits
    report = await school.sync_upstream()
    assert report.complete and report.receipts
    assert district.fed.db.commits - before == 1
    assert district.fed.peers("school")[0]["last_contact"] >= district.fed._clock() - 5
    # A session that brings nothing writes the contact alone (one commit), or nothing within the minute.
    await settled(district)
    district.fed.db.execute("UPDATE peers SET last_contact = last_contact - 3600")
    before = district.fed.db.commits
    await school.sync_upstream()
    await settled(district)
    assert district.fed.db.commits - before == 1
    before = district.fed.db.commits
    await school.sync_upstream()
    await settled(district)
    assert district.fed.db.commits - before == 0
    school.close()


async def test_the_schools_offer_rides_with_handshake_message_3(tmp_path, district, monkeypatch):
    """A release session is 9 WebSocket messages, 5 of them to the district: message 1; message 3 with the
    school's offer; its want and changes; its idle; its close. Without the early offer, 11 and 6 (checked)."""
    from preau.node.federation import transport
    school = make_node(tmp_path, "school", "school")
    inv = district.create_invitation("0751234J", [district.url])
    district.federation.publish_campaign(CAMPAIGN)
    assert (await school.join(inv.to_string(), "0751234J")).complete
    school_release(school, 12)
    received = {"district": [], "school": []}
    step = transport._step

    def counted(driver, data):
        received[driver.fedn.role].append(len(data))
        return step(driver, data)

    monkeypatch.setattr(transport, "_step", counted)
    report = await school.sync_upstream()
    assert report.complete and report.receipts and len(report.accepted) == 0
    assert len(received["district"]) == 5, received
    assert len(received["school"]) == 4, received  # message 2; welcome, offer, want, sync; receipt; idle and close
    assert district.fed.stats(CAMPAIGN.id) is not None
    school.close()


async def test_final_never_goes_back_and_a_clock_far_ahead_is_flagged(tmp_path, district):
    """A school whose clock ran ahead released its final figures (signed in 2100); its clock put back, an older
    Préau would send a non-final release after it. The district keeps the final one and says why."""
    import dataclasses

    from federation_helpers import outcomes
    from preau.crdt.disclosure import ReleaseHistory, next_release

    school = make_node(tmp_path, "school", "school")
    district.federation.publish_campaign(CAMPAIGN)
    await school.join(district.create_invitation("0751234J", [district.url]).to_string(), "0751234J")
    now = district.federation.clock()
    school.federation.clock = lambda: 4_102_444_800  # 2100-01-01
    first = next_release(outcomes(12), CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=True)
    school.federation.publish_release(first.content, to_peer="district")
    assert (await school.sync_upstream()).complete
    flagged = [e["detail"] for e in district.fed.events(20) if e["kind"] == "clock"]
    assert len(flagged) == 1 and "was signed at 2100-01-01 00:00 UTC by its sender's clock" in flagged[0], flagged
    assert "ahead of this node's clock" in flagged[0]

    school.federation.clock = lambda: now
    # 30 more pupils (10 besoin, 20 seuil2): every count moves by 0 or 10+, as count-level batching needs
    second = next_release(outcomes(42), CAMPAIGN, first.history, closing=False)
    assert second.content.final  # this Préau keeps it final by itself ...
    school.federation.publish_release(dataclasses.replace(second.content, final=False), to_peer="district")  # ... an older one did not
    await school.sync_upstream()
    refused = [e["detail"] for e in district.fed.events(20) if e["kind"] == "refused"]
    assert any("release 2 is not final, but release 1 already was" in r for r in refused), refused
    assert district.fed.latest_release(school_release_id(school))[0] == 1
    school.close()


def school_release_id(school):
    from preau.crdt.schema import document_id

    return document_id("release", school.federation.key, CAMPAIGN.id)


async def test_a_schools_releases_for_campaigns_the_district_never_published_are_not_taken(tmp_path, district):
    """An enrolled school signed releases for made-up campaigns: each became a document, a statistics entry
    and a line on the district's statistics pages (30 of them on the demo district in one sync). Only
    releases for a campaign the district holds are taken; the school's real release still is."""
    import dataclasses

    from preau.crdt.disclosure import ReleaseHistory, next_release
    from federation_helpers import outcomes

    school = make_node(tmp_path, "school", "school")
    district.federation.publish_campaign(CAMPAIGN)
    await school.join(district.create_invitation("0751234J", [district.url]).to_string(), "0751234J")
    up = school.federation.upstream()
    content = next_release(outcomes(12), CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=False).content
    school.federation.publish_release(content, to_peer=up["key"])
    for i in range(5):
        school.federation.publish_release(dataclasses.replace(content, campaign=f"zz-made-up-{i}"), to_peer=up["key"])
    report = await school.sync_upstream()
    assert report.complete, report
    assert {d.campaign for d in district.fed.documents(kind="release")} == {CAMPAIGN.id}
    assert not any(district.fed.stats(f"zz-made-up-{i}") for i in range(5))
    assert district.fed.stats(CAMPAIGN.id) is not None
    [sent] = [t for t in school.fed.transparency() if t["receipt"]]
    assert CAMPAIGN.id in sent["doc_id"], sent
    school.close()
