"""The same software one level up: a district reports to its académie with its own signed aggregate only."""
from __future__ import annotations

import json

import pytest

from preau.crdt.documents import read_release
from preau.crdt.docio import load_document
from preau.crdt.signing import SignedRelease
from preau.crdt.statistics import CampaignStatistics

from federation_helpers import CAMPAIGN, make_node, school_release, serve, switch_off


async def academie_and_district(tmp_path, aiohttp_server, *, serve_district: bool = True):
    """An académie and a district enrolled below it as a district, each serving /v1/sync on 127.0.0.1."""
    academie, district = make_node(tmp_path, "academie", "district"), make_node(tmp_path, "district", "district")
    await serve(academie, aiohttp_server)
    if serve_district:
        await serve(district, aiohttp_server)
    await district.join(academie.create_invitation("0693344K", [academie.url], member="district").to_string(),
                        "0693344K")
    return academie, district


async def test_district_sends_its_aggregate_and_never_a_school_release(tmp_path, aiohttp_server):
    academie, district = await academie_and_district(tmp_path, aiohttp_server)
    academie.federation.publish_campaign(CAMPAIGN)  # an académie takes aggregates for its own campaigns only
    assert (await district.sync_upstream()).error is None  # ... which reach the district from above

    schools = []
    for n, uai in enumerate(("0751234J", "0751235K")):
        school = make_node(tmp_path, f"s{n}", "school")
        await school.join(district.create_invitation(uai, [district.url]).to_string(), uai)
        school_release(school, 12 + n)
        await school.sync_upstream()
        schools.append(school)

    # The district does not even offer its schools' documents upstream (the académie would refuse them too).
    district.federation.refresh_aggregates()
    offered = district.federation.offers_for(academie.identity.public)
    assert offered and all(doc_id.startswith("aggregate:") for doc_id in offered), offered
    report = await district.sync_upstream()
    assert report.error is None
    held = [d for d in academie.fed.documents() if d.kind != "campaign"]  # its own campaign, and what came up
    assert {d.kind for d in held} == {"aggregate", "receipts"}
    assert all(d.owner != s.identity.signing_key.hex() for d in held for s in schools)
    [agg] = academie.fed.documents(kind="aggregate")
    signed = SignedRelease.decode(academie.fed.latest_release(agg.doc_id)[1])
    content = read_release(load_document(agg.data), list(signed.heads))
    assert content.scope == "district" and content.schools_contributing == 2
    # Small cells never go up as numbers: every count from 1 to small_cell_max is masked.
    small = CAMPAIGN.policy.small_cell_max
    for row in content.rows:
        for cell in row.cells:
            assert not (isinstance(cell, int) and 1 <= cell <= small)

    # Nothing changed: the next sync signs no new aggregate.
    assert district.federation.refresh_aggregates() == []
    for n in (academie, district, *schools):
        n.close()


@pytest.mark.parametrize("protection", ["on", "off"])
async def test_a_districts_bundle_for_its_academie_holds_its_aggregate_only(tmp_path, aiohttp_server, monkeypatch,
                                                                            protection):
    """`preau bundle export` on a district writes what it would send up: never its schools' own releases."""
    if protection == "off":
        switch_off(monkeypatch, "entitlement")
    academie, district = await academie_and_district(tmp_path, aiohttp_server)
    academie.federation.publish_campaign(CAMPAIGN)
    assert (await district.sync_upstream()).error is None
    schools = []
    for n, uai in enumerate(("0751234J", "0751235K")):
        school = make_node(tmp_path, f"s{n}", "school")
        schools.append(school)
        await school.join(district.create_invitation(uai, [district.url]).to_string(), uai)
        school_release(school, 12 + n)
        assert (await school.sync_upstream()).error is None
    district.federation.refresh_aggregates()
    try:
        data = district.federation.export_bundle()
        kinds = [SignedRelease.decode(bytes.fromhex(e["release"])).kind for e in json.loads(data)["documents"]]
        if protection == "off":  # the leak the rule closes: each school's own counts, on the file
            assert kinds.count("release") == 2
            return
        assert kinds == ["aggregate"]
        # ... and the académie takes it (a bundle holding the schools' releases was refused whole).
        [accepted] = academie.federation.import_bundle(data)
        assert accepted.kind == "aggregate" and accepted.owner == district.identity.signing_key
    finally:
        for n in (academie, district, *schools):
            n.close()


async def test_a_campaign_from_the_academie_reaches_the_schools_signed_by_their_district(tmp_path, aiohttp_server):
    import dataclasses

    from preau.crdt.schema import document_id

    academie, district = await academie_and_district(tmp_path, aiohttp_server)
    school = make_node(tmp_path, "school", "school")
    received = []
    school.federation.on_campaign = received.append
    await school.join(district.create_invitation("0751234J", [district.url]).to_string(), "0751234J")

    academie.federation.publish_campaign(CAMPAIGN)
    assert (await district.sync_upstream()).error is None
    # The district holds the académie's document and its own copy, which is the one its schools get.
    assert district.federation.campaigns(owner=district.identity.signing_key.hex()) == [CAMPAIGN]
    assert (await school.sync_upstream()).error is None
    assert received == [CAMPAIGN]
    [held] = school.fed.documents(kind="campaign")
    assert held.owner == district.identity.signing_key.hex()  # never the académie's document itself

    # Thresholds set later at the académie travel down the same way; an unchanged campaign signs nothing new.
    later = dataclasses.replace(CAMPAIGN, exercises=tuple(
        dataclasses.replace(ex, thresholds=(5, 9)) if ex.id == "fr-mots" else ex for ex in CAMPAIGN.exercises))
    academie.federation.publish_campaign(later)
    await district.sync_upstream()
    await school.sync_upstream()
    assert received == [CAMPAIGN, later]
    cid = document_id("campaign", district.identity.signing_key, CAMPAIGN.id)
    assert district.fed.latest_release(cid)[0] == 2
    await district.sync_upstream()
    assert district.fed.latest_release(cid)[0] == 2
    for n in (academie, district, school):
        n.close()


async def test_an_academie_merges_its_districts_aggregates_into_statistics(tmp_path, aiohttp_server):
    from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
    from preau.crdt.statistics import CampaignStatistics
    from preau.node.actions import stats_rows

    academie = make_node(tmp_path, "academie", "district")
    await serve(academie, aiohttp_server)
    academie.federation.publish_campaign(CAMPAIGN)
    districts, n = [], 0
    for d, duai in enumerate(("0693344K", "0693345L")):
        district = make_node(tmp_path, f"d{d}", "district")
        await serve(district, aiohttp_server)
        await district.join(academie.create_invitation(duai, [academie.url], member="district").to_string(), duai)
        for size in (12, 14 + d, 25):
            school = make_node(tmp_path, f"s{n}", "school")
            uai = f"07512{n:02d}"
            uai += "ABCDEFGHJKLMNPRSTUVWXYZ"[int(uai) % 23]
            await school.join(district.create_invitation(uai, [district.url]).to_string(), uai)
            if n == 0:  # three pupils in "fragile": a small cell, which district 0 hides in its aggregate
                outs = [PupilOutcome(f"p{i}", ex.id, "fragile" if i < 3 else "seuil2")
                        for i in range(size) for ex in CAMPAIGN.exercises]
                school.federation.publish_release(
                    next_release(outs, CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=False).content, to_peer="district")
            else:
                school_release(school, size)
            assert (await school.sync_upstream()).receipts
            school.close()
            n += 1
        report = await district.sync_upstream()  # signs its aggregate and sends it up
        assert report.error is None and report.receipts, report
        districts.append(district)

    merged = CampaignStatistics.from_dict(academie.fed.stats(CAMPAIGN.id))
    truth = [CampaignStatistics.from_dict(d.fed.stats(CAMPAIGN.id)) for d in districts]
    assert (merged.schools_contributing, merged.districts_contributing, merged.schools_represented) == (2, 2, 6)
    for ex in CAMPAIGN.exercises:
        got = merged.exercise(ex.id)
        for column, count in got.counts.items():
            exact = sum(t.exercise(ex.id).counts[column] for t in truth)
            assert count == exact if not got.hidden[column] else count <= exact
    # Wherever a district hid a cell, the académie's table says "at least", never a plain number.
    rows = stats_rows(academie.fed.stats(CAMPAIGN.id))
    flagged = [(r["exercise"], c) for r in rows for c, v in r.items() if isinstance(v, str) and v.startswith("≥")]
    hidden = [(e, c) for e in merged.exercise_ids() for c, k in merged.exercise(e).hidden.items() if k]
    assert flagged == hidden and ("fr-mots", "fragile") in hidden
    for node in (academie, *districts):
        node.close()


async def test_each_member_sends_one_kind_a_school_cannot_pass_off_an_aggregate(tmp_path, aiohttp_server):
    """A school's signed "aggregate" (which would enter statistics as a whole district, and blank its rates)
    is refused, as is a district's school-style release at an académie."""
    from preau.crdt.documents import ReleaseContent, Row
    from preau.crdt.statistics import CampaignStatistics

    district = make_node(tmp_path, "district", "district")
    await serve(district, aiohttp_server)
    district.federation.publish_campaign(CAMPAIGN)
    school = make_node(tmp_path, "school", "school")
    await school.join(district.create_invitation("0751234J", [district.url]).to_string(), "0751234J")
    school_release(school, 20)
    await school.sync_upstream()
    before = district.fed.stats(CAMPAIGN.id)

    rows = tuple(Row(ex.id, (0, "≤10", 400, 0, 0), 405) for ex in CAMPAIGN.exercises)
    forged = ReleaseContent(CAMPAIGN.id, 1, "published", "", CAMPAIGN.policy, rows, 405, scope="district",
                            schools_contributing=400, schools_withheld=0)
    school.federation.publish_release(forged, to_peer="district")
    report = await school.sync_upstream()
    assert not report.receipts and district.fed.documents(kind="aggregate") == []
    assert district.fed.stats(CAMPAIGN.id) == before
    assert CampaignStatistics.from_dict(before).districts_contributing == 0

    # The other way round, at an académie: a district enrolled as a district cannot send a school's release.
    academie = make_node(tmp_path, "academie", "district")
    await serve(academie, aiohttp_server)
    upper = make_node(tmp_path, "upper", "district")
    await upper.join(academie.create_invitation("0693344K", [academie.url], member="district").to_string(), "0693344K")
    school_release(upper, 20)
    report = await upper.sync_upstream()
    assert not report.receipts and academie.fed.stats(CAMPAIGN.id) is None
    assert [p["role"] for p in academie.federation.children()] == ["child"]
    for node in (district, school, academie, upper):
        node.close()


async def test_a_campaign_held_from_before_relaying_is_relayed_at_the_next_sync(tmp_path, aiohttp_server):
    """Review finding: a campaign the district accepted before it relayed campaigns was never passed down."""
    academie, district = await academie_and_district(tmp_path, aiohttp_server, serve_district=False)
    academie.federation.publish_campaign(CAMPAIGN)
    relay = district.federation._relay_campaign
    district.federation._relay_campaign = lambda *a: None  # as the software before this change did
    await district.sync_upstream()
    assert district.federation.campaigns(owner=district.identity.signing_key.hex()) == []
    district.federation._relay_campaign = relay
    await district.sync_upstream()  # the upgraded district: nothing new from the académie, yet it relays
    assert district.federation.campaigns(owner=district.identity.signing_key.hex()) == [CAMPAIGN]
    # Relayed once per académie release: the district's own later thresholds stand until the académie's next.
    import dataclasses
    own = dataclasses.replace(CAMPAIGN, name="Début de CP (seuils de la circonscription)")
    district.federation.publish_campaign(own)
    await district.sync_upstream()
    assert district.federation.campaigns(owner=district.identity.signing_key.hex()) == [own]
    for n in (academie, district):
        n.close()


async def test_an_upgraded_district_keeps_its_own_thresholds(tmp_path, aiohttp_server):
    """From before relay markers: a district with its own copy of a parent's campaign keeps it (whether the
    old version relayed it or the district set its own thresholds), until the parent publishes again."""
    import dataclasses

    academie, district = await academie_and_district(tmp_path, aiohttp_server, serve_district=False)
    academie.federation.publish_campaign(CAMPAIGN)
    await district.sync_upstream()
    own = dataclasses.replace(CAMPAIGN, name="Début de CP (seuils de la circonscription)")
    district.federation.publish_campaign(own)
    district.fed.db.execute("DELETE FROM meta WHERE key LIKE 'relayed:%'")  # as an older version left it
    await district.sync_upstream()
    assert district.federation.campaigns(owner=district.identity.signing_key.hex()) == [own]
    later = dataclasses.replace(CAMPAIGN, name="Début de CP (version 2)")
    academie.federation.publish_campaign(later)
    await district.sync_upstream()
    assert district.federation.campaigns(owner=district.identity.signing_key.hex()) == [later]
    for n in (academie, district):
        n.close()


async def test_late_releases_go_up_only_when_the_difference_is_not_one_schools(tmp_path, aiohttp_server):
    """After the counts went up at closing, a late school alone is held back (the difference would be its
    row); with a second late school the difference mixes both, every number moves by 0 or more than 10,
    and the new aggregate goes up (docs/privacy.md, "Aggregates going up")."""
    from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
    from preau.node.federation.rules import AGGREGATE_BASES

    academie, district = await academie_and_district(tmp_path, aiohttp_server)
    district.federation.publish_campaign(CAMPAIGN)  # (closed already: its counts go up at once)
    nodes = [academie, district]

    async def school(n: int, uai: str, pupils: int, group: str):
        node = make_node(tmp_path, f"s{n}", "school")
        nodes.append(node)
        await node.join(district.create_invitation(uai, [district.url]).to_string(), uai)
        outcomes = [PupilOutcome(f"p{i}", ex.id, group) for i in range(pupils) for ex in CAMPAIGN.exercises]
        decision = next_release(outcomes, CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=True)
        node.federation.publish_release(decision.content, to_peer="district")
        await node.sync_upstream()

    try:
        await school(0, "0751234J", 12, "seuil2")
        await school(1, "0751235K", 13, "fragile")
        [first] = district.federation.refresh_aggregates()
        await school(2, "0751236L", 15, "seuil2")  # late, alone: held
        assert district.federation.refresh_aggregates() == []
        await school(3, "0751237M", 15, "seuil2")  # a second late school: 30 pupils at seuil 2, 2 schools
        [second] = district.federation.refresh_aggregates()
        assert second.release == first.release + 1
        contents = [b["content"] for b in district.fed.get_meta(AGGREGATE_BASES.format(doc=second.doc_id))]
        assert [c["schools"]["contributing"] for c in contents] == [2, 4]
        report = await district.sync_upstream()
        assert report.error is None
    finally:
        for n in nodes:
            n.close()


async def test_an_academie_takes_no_aggregate_for_a_campaign_it_never_published(tmp_path, aiohttp_server):
    """As a district takes no school's release for a campaign it does not hold: a child district's aggregate for
    a campaign of its own (or made up) never becomes a document and a statistics entry at the académie. It is
    not lost: it waits at the district, and goes up once the académie publishes that campaign."""
    academie, district = await academie_and_district(tmp_path, aiohttp_server)
    district.federation.publish_campaign(CAMPAIGN)  # the district's own campaign, which the académie never saw
    schools = []  # two: one school's aggregate would be its row, and would say "too few schools" instead
    for n, uai in enumerate(("0751234J", "0751235K")):
        school = make_node(tmp_path, f"school{n}", "school")
        schools.append(school)
        await school.join(district.create_invitation(uai, [district.url]).to_string(), uai)
        school_release(school, 12 + n)
        assert (await school.sync_upstream()).receipts

    report = await district.sync_upstream()
    assert report.error is None and not report.receipts, report
    assert academie.fed.documents(kind="aggregate") == [] and academie.fed.stats(CAMPAIGN.id) is None

    academie.federation.publish_campaign(CAMPAIGN)
    report = await district.sync_upstream()  # the waiting aggregate goes up
    assert [r["doc_id"] for r in report.receipts] == [d.doc_id for d in academie.fed.documents(kind="aggregate")]
    merged = CampaignStatistics.from_dict(academie.fed.stats(CAMPAIGN.id))
    assert (merged.schools_contributing, merged.schools_represented) == (1, 2)  # one district, two schools
    for n in (academie, district, *schools):
        n.close()
