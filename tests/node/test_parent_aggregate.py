"""The same software one level up: a district reports to its académie with its own signed aggregate only."""
from __future__ import annotations

from preau.crdt.documents import read_release
from preau.crdt.docio import load_document
from preau.crdt.signing import SignedRelease

from federation_helpers import CAMPAIGN, make_node, school_release, serve


async def test_district_sends_its_aggregate_and_never_a_school_release(tmp_path, aiohttp_server):
    academie, district = make_node(tmp_path, "academie", "district"), make_node(tmp_path, "district", "district")
    await serve(academie, aiohttp_server)
    await serve(district, aiohttp_server)
    await district.join(academie.create_invitation("0693344K", [academie.url]).to_string(), "0693344K")
    district.federation.publish_campaign(CAMPAIGN)

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
    held = academie.fed.documents()
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
