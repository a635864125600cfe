"""The node runtime in one process over real WebSockets: key rotation, relays, concurrent sessions, the sync loop."""
from __future__ import annotations

import asyncio
import dataclasses

import automerge.core as am
import pytest

from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.crdt.docio import load_document
from preau.node.federation.backoff import Backoff
from preau.node.federation.rules import BundleError
from preau.node.runtime import Node

import federation_helpers as helpers
from federation_helpers import make_node, serve

# The shared test campaign with its first exercise only.
CAMPAIGN = dataclasses.replace(helpers.CAMPAIGN, exercises=helpers.CAMPAIGN.exercises[:1])


async def until(predicate, timeout: float) -> None:
    """Wait for a condition the background loop brings about; fail (not hang) after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
async def district(tmp_path, aiohttp_server):
    node = await serve(make_node(tmp_path, "district", "district"), aiohttp_server)
    node.federation.publish_campaign(CAMPAIGN)
    yield node
    node.close()


async def joined(tmp_path, district, name, uai):
    school = make_node(tmp_path, name, "school")
    inv = district.create_invitation(uai, [district.url])
    await school.join(inv.to_string(), uai)
    return school


def release(school, pupils, number=None, group="seuil2"):
    """Publish a release of `pupils` assessed pupils (every third à besoin)."""
    outs = [PupilOutcome(f"p{i}", "fr-mots", group if i % 3 else "besoin") for i in range(pupils)]
    history = ReleaseHistory(CAMPAIGN.id, (number or 1) - 1)
    decision = next_release(outs, CAMPAIGN, history, closing=False)
    assert decision.release, decision.reason
    return school.federation.publish_release(decision.content, to_peer="district")


def school_entries(district):
    return district.fed.stats(CAMPAIGN.id)["schools"]


async def test_key_rotation_counts_the_school_once(tmp_path, district):
    school = await joined(tmp_path, district, "s", "0751234J")
    release(school, 12)
    await school.sync_upstream()
    k1 = school.identity.signing_key.hex()
    assert set(school_entries(district)) == {k1}

    school.rotate_keys()
    k2 = school.identity.signing_key.hex()
    await school.sync_upstream()
    assert district.fed.peer(k1)["replaced_by"] == k2
    assert set(school_entries(district)) == {k1}  # nothing new yet: the old key's release keeps counting

    release(school, 24, number=2)  # the new key's document (a new id), release 2
    report = await school.sync_upstream()
    assert report.receipts and not report.refused
    entries = school_entries(district)
    assert set(entries) == {k2}
    assert entries[k2]["content"]["exercises"]["fr-mots"]["total"] == 24

    # Twice over: the chain of old keys is followed.
    school.rotate_keys()
    k3 = school.identity.signing_key.hex()
    await school.sync_upstream()
    release(school, 36, number=3)
    await school.sync_upstream()
    assert set(school_entries(district)) == {k3}
    assert district.fed.predecessors(k3) == [k2, k1]
    moved = [e for e in district.fed.events(50) if e["kind"] == "stats_moved"]
    assert len(moved) == 2
    school.close()


async def test_rotation_of_one_school_leaves_the_others_alone(tmp_path, district):
    a = await joined(tmp_path, district, "a", "0751234J")
    b = await joined(tmp_path, district, "b", "0751235K")
    release(a, 12)
    release(b, 15)
    await a.sync_upstream()
    await b.sync_upstream()
    a.rotate_keys()
    await a.sync_upstream()
    release(a, 30, number=2)
    await a.sync_upstream()
    entries = school_entries(district)
    assert set(entries) == {a.identity.signing_key.hex(), b.identity.signing_key.hex()}
    assert sum(e["content"]["exercises"]["fr-mots"]["total"] for e in entries.values()) == 45
    a.close()
    b.close()


async def test_a_relay_cannot_alter_what_it_carries(tmp_path, district):
    owner = await joined(tmp_path, district, "owner", "0751234J")
    relay = await joined(tmp_path, district, "relay", "0751235K")
    signed = release(owner, 12)
    bundle = owner.federation.export_bundle()

    with pytest.raises(BundleError, match="carry"):
        relay.federation.import_bundle(bundle)  # without carrying on: the relay has no pin for the owner
    [carried] = relay.federation.import_bundle(bundle, carry=True)
    assert carried.owner == owner.identity.signing_key
    # The relay adds a change of its own to the carried document (say, doubling a count).
    stored = relay.fed.document(signed.doc_id)
    doc = load_document(stored.data)
    exercises = doc.get(am.ROOT, "exercises")[1]
    row = doc.get(exercises, "fr-mots")[1]
    with doc.transaction() as tx:
        tx.put(row, "seuil2", am.ScalarType.Int, 999)
    relay.fed.put_document(signed.doc_id, stored.kind, stored.owner, doc.save(), stored.campaign)

    report = await relay.sync_upstream()
    assert [a.doc_id for a in report.accepted if a.kind == "release"] == []  # the relay accepts nothing of it
    row = district.fed.releases(signed.doc_id)
    assert len(row) == 1 and row[0]["from_peer"] == relay.identity.signing_key.hex()
    kept = load_document(district.fed.document(signed.doc_id).data)
    assert tuple(sorted(kept.get_heads())) == signed.heads  # stored at the owner's signed heads: no forged change
    entry = school_entries(district)[owner.identity.signing_key.hex()]
    assert entry["content"]["exercises"]["fr-mots"]["seuil2"] == 8  # the owner's figure, not 999
    # The owner then syncs directly: nothing is duplicated, its receipt is waiting for it.
    again = await owner.sync_upstream()
    assert not again.refused and any(a.kind == "receipts" for a in again.accepted)
    assert len(district.fed.releases(signed.doc_id)) == 1
    owner.close()
    relay.close()


async def test_a_carried_document_from_a_stranger_is_not_taken(tmp_path, district):
    stranger = make_node(tmp_path, "stranger", "school")
    stranger.federation.pin_upstream(district.identity.public, district.url)  # never enrolled
    release(stranger, 12)
    relay = await joined(tmp_path, district, "relay", "0751235K")
    relay.federation.import_bundle(stranger.federation.export_bundle(), carry=True)
    report = await relay.sync_upstream()
    assert report.complete and not report.accepted
    assert district.fed.stats(CAMPAIGN.id) is None
    stranger.close()
    relay.close()


async def test_a_district_passes_up_its_own_and_carried_documents_never_its_schools_releases(tmp_path, district):
    school = await joined(tmp_path, district, "s", "0751234J")
    signed = release(school, 12)
    await school.sync_upstream()
    parent = make_node(tmp_path, "parent", "district")
    district.fed.add_peer(parent.identity.signing_key.hex(), node_id=parent.node_id, role="parent",
                          static_key=parent.identity.public.static_key.hex())
    assert not district.federation.may_send(parent.identity.public, signed.doc_id)
    assert signed.doc_id not in district.federation.offers_for(parent.identity.public)
    parent.close()
    school.close()


async def test_two_sessions_of_one_school_at_once_store_the_release_once(tmp_path, district):
    school = await joined(tmp_path, district, "s", "0751234J")
    signed = release(school, 12)
    a, b = await asyncio.gather(school.sync_upstream(), school.sync_upstream())
    assert a.complete and b.complete and not a.refused and not b.refused
    assert len(district.fed.releases(signed.doc_id)) == 1
    assert sum(1 for r in (a, b) for x in r.accepted if x.kind == "release") == 0
    assert not [e for e in district.fed.events(50) if e["kind"] == "refused"]
    school.close()


async def test_sync_loop_sends_a_release_stored_by_another_process_without_waiting_for_the_schedule(tmp_path, district):
    school = await joined(tmp_path, district, "s", "0751234J")
    school.sync_interval = 60.0
    school.backoff = Backoff(base=0.05, cap=0.2)  # a slow first session on a loaded machine is retried at once
    task = asyncio.create_task(school.sync_loop(news_poll=0.05))
    try:
        await until(lambda: school.status.last_success is not None, 20)
        other = Node(school.data_dir, role="school")  # `preau release --approve` in another process
        signed = release(other, 12)
        other.close()
        for _ in range(200):
            if district.fed.latest_release(signed.doc_id):
                break
            await asyncio.sleep(0.02)
        assert district.fed.latest_release(signed.doc_id) is not None
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    school.close()


async def test_backoff_is_not_capped_at_the_sync_interval(tmp_path):
    """After failures the wait grows past sync_interval, up to backoff_max (as the settings' help says)."""
    import random
    import time

    node = make_node(tmp_path, "s", "school")
    node.federation.pin_upstream(node.identity.public, "http://127.0.0.1:9")  # nothing listens on port 9
    node.sync_interval = 0.01
    node.backoff = Backoff(base=0.05, cap=0.4)
    attempts = []
    real = node.sync_upstream

    async def counted():
        attempts.append(time.monotonic())
        return await real()

    node.sync_upstream = counted
    task = asyncio.create_task(node.sync_loop(random.Random(3), news_poll=10))
    try:
        await until(lambda: node.status.failures >= 10, 20)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    node.close()
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert max(gaps) > 0.1  # well past sync_interval (0.01 s): the old code capped retries at the interval
    assert max(gaps) < 0.4 + 0.3  # never past backoff_max (plus the failed connection attempt itself)


async def test_keys_rotated_by_another_process_are_used_at_the_next_sync(tmp_path, district):
    school = await joined(tmp_path, district, "s", "0751234J")  # the running service
    other = Node(school.data_dir, role="school")  # `preau keys rotate` in another process
    new = other.rotate_keys()
    other.close()
    report = await school.sync_upstream()
    assert report.complete and school.node_id == new.node_id
    assert district.fed.active_peer(new.signing_key.hex())["uai"] == "0751234J"
    school.close()


async def test_the_invitation_of_a_join_again_is_used_up(tmp_path, district):
    """A school whose district dropped its old key at once joins again with a new invitation; the district already
    knows the school's key, and marks that invitation used all the same: nobody else enrols with it afterwards."""
    from preau.node.errors import UserError
    uai = "0751234J"
    school = await joined(tmp_path, district, "s", uai)
    district.rotate_keys(overlap_days=0)
    inv = district.create_invitation(uai, [district.url])
    report = await school.join(inv.to_string(), uai, again=True)
    assert report.complete and school.federation.upstream()["key"] == district.identity.signing_key.hex()
    assert district.fed.invitation(inv.id.hex())["used_by"] == school.identity.signing_key.hex()
    assert [p["uai"] for p in district.fed.peers("school")] == [uai]
    assert [e["kind"] for e in district.fed.events() if e["kind"] in ("enrolled", "rejoined")] == ["rejoined", "enrolled"]
    thief = make_node(tmp_path, "thief", "school")  # whoever else holds that invitation
    with pytest.raises(UserError, match="this invitation has already been used: ask your district for a new one"):
        await thief.join(inv.to_string(), uai)
    assert [p["key"] for p in district.fed.peers("school")] == [school.identity.signing_key.hex()]
    assert (await school.sync_upstream()).complete  # and the school syncs on as before
    school.close()
    thief.close()


async def test_a_join_again_with_a_rotation_of_the_schools_own_uses_up_the_invitation(tmp_path, district):
    """Found by review: a school that rotated its own keys and could not tell its district (whose key it pins was
    dropped) brought its rotation and its invitation together; the district took the rotation and never looked
    at the invitation, which stayed usable by anyone holding it."""
    uai = "0751234J"
    school = await joined(tmp_path, district, "s", uai)
    district.rotate_keys(overlap_days=0)
    school.rotate_keys(overlap_days=0)  # not delivered: the district's key it pins is gone
    inv = district.create_invitation(uai, [district.url])
    report = await school.join(inv.to_string(), uai, again=True)
    assert report.complete
    assert district.fed.invitation(inv.id.hex())["used_by"] == school.identity.signing_key.hex()
    active = [p["key"] for p in district.fed.peers("school") if p["status"] == "active"]
    assert active == [school.identity.signing_key.hex()]  # one school, under its new key (the old one: rotated)
    assert "rejoined" in [e["kind"] for e in district.fed.events()]
    assert (await school.sync_upstream()).complete
    school.close()


async def test_a_school_that_rotated_before_it_ever_joined_can_join(tmp_path, district):
    """Found by review: its rotation chain went with its invitation, and the district, knowing no key of the
    chain, refused it as unknown ("enrol first with an invitation", with one in hand)."""
    uai = "0751234J"
    school = make_node(tmp_path, "s", "school")
    school.rotate_keys(overlap_days=0)
    report = await school.join(district.create_invitation(uai, [district.url]).to_string(), uai)
    assert report.complete
    assert [p["key"] for p in district.fed.peers("school")] == [school.identity.signing_key.hex()]
    assert (await school.sync_upstream()).complete  # the chain it still presents changes nothing
    school.close()


async def test_a_join_again_cut_short_after_the_district_admitted_the_node_keeps_the_new_pin(tmp_path, district):
    """The district marks the invitation used when it admits the node; if the rest of that first session fails,
    going back to the dropped key (as before the admission) would leave the school with a dead pin and a used
    invitation. It keeps the new pin, says the first sync did not finish, and `preau sync` completes."""
    from preau.node.errors import UserError
    uai = "0751234J"
    school = await joined(tmp_path, district, "s", uai)
    district.rotate_keys(overlap_days=0)
    inv = district.create_invitation(uai, [district.url])
    release(school, 12)
    release_other = dataclasses.replace(CAMPAIGN, id="2026-autre")
    outs = [PupilOutcome(f"p{i}", "fr-mots", "seuil2") for i in range(12)]
    school.federation.publish_release(next_release(outs, release_other, ReleaseHistory(release_other.id),
                                                   closing=False).content, to_peer="district")
    district.limits = dataclasses.replace(district.limits, max_docs_per_session=1)  # the session fails past Welcome
    with pytest.raises(UserError, match=r"joined its district again, but the first sync did not finish"):
        await school.join(inv.to_string(), uai, again=True)
    assert school.federation.upstream()["key"] == district.identity.signing_key.hex()
    assert district.fed.invitation(inv.id.hex())["used_at"] is not None
    district.limits = dataclasses.replace(district.limits, max_docs_per_session=500)
    assert (await school.sync_upstream()).complete
    school.close()


async def test_a_first_join_cut_short_after_the_district_enrolled_the_node_keeps_its_pin(tmp_path, district):
    """The district enrols the school and uses the invitation up when it admits it; the school forgot the district
    if the rest of that session failed, and was left with a used invitation. It keeps the pin now, and syncs."""
    from preau.node.errors import UserError
    uai = "0751234J"
    school = make_node(tmp_path, "s", "school")
    for campaign_id in (CAMPAIGN.id, "2026-autre"):  # released before joining: two documents to offer
        other = dataclasses.replace(CAMPAIGN, id=campaign_id)
        outs = [PupilOutcome(f"p{i}", "fr-mots", "seuil2") for i in range(12)]
        school.federation.publish_release(next_release(outs, other, ReleaseHistory(other.id), closing=False).content,
                                          to_peer="district")
    district.limits = dataclasses.replace(district.limits, max_docs_per_session=1)  # the session fails past Welcome
    inv = district.create_invitation(uai, [district.url])
    with pytest.raises(UserError, match=r"has joined its district, but the first sync did not finish"):
        await school.join(inv.to_string(), uai)
    assert school.federation.upstream()["key"] == district.identity.signing_key.hex()
    assert [p["uai"] for p in district.fed.peers("school")] == [uai]
    district.limits = dataclasses.replace(district.limits, max_docs_per_session=500)
    assert (await school.sync_upstream()).complete
    school.close()


async def test_an_address_that_is_not_a_preau_node_is_reported_as_such(tmp_path, district):
    from preau.node.errors import UserError
    school = make_node(tmp_path, "s", "school")
    school.federation.pin_upstream(district.identity.public, district.url + "/somewhere-else")
    with pytest.raises(UserError, match=r"does not offer Préau sync \(HTTP 404\); check the address"):
        await school.sync_upstream()
    assert "HTTP 404" in school.fed.peers("district")[0]["last_error"]
    school.close()


def test_after_a_rotation_the_campaign_is_the_one_under_the_new_key(tmp_path):
    """The district republishes its campaigns under its new key (`preau keys rotate`); a later change lives
    there only. `campaigns()` gives each campaign once, the current one (it gave both, in doc id order)."""
    district = make_node(tmp_path, "district", "district")
    try:
        district.federation.publish_campaign(CAMPAIGN)
        district.rotate_keys()
        renamed = dataclasses.replace(CAMPAIGN, name="Début de CP (seuils officiels)")
        district.federation.publish_campaign(renamed)
        assert [c.name for c in district.federation.campaigns() if c.id == CAMPAIGN.id] == [renamed.name]
    finally:
        district.close()
