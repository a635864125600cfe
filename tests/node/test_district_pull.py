"""A district can open the session itself, to a school whose node it can reach."""
from __future__ import annotations


from federation_helpers import CAMPAIGN, make_node, school_release, serve


async def test_district_pulls_a_release_from_a_reachable_school(tmp_path, aiohttp_server):
    district, school, hidden = make_node(tmp_path, "d", "district"), make_node(tmp_path, "s", "school"), make_node(tmp_path, "h", "school")
    await serve(district, aiohttp_server)
    await serve(school, aiohttp_server)
    inv = district.create_invitation("0751234J", [district.url], name="École A", school_address=school.url)
    await school.join(inv.to_string(), "0751234J")
    # A school enrolled without an address is left alone (it syncs by itself from behind its router).
    await hidden.join(district.create_invitation("0751235K", [district.url]).to_string(), "0751235K")
    row = district.fed.peers("school")
    assert {r["uai"]: r["address"] for r in row} == {"0751234J": school.url, "0751235K": None}

    district.federation.publish_campaign(CAMPAIGN)
    school_release(school, 12)
    [report] = await district.sync_children()  # the district calls; the school did nothing
    assert report.error is None and [a.kind for a in report.accepted] == ["release"]
    assert len(district.fed.stats(CAMPAIGN.id)["schools"]) == 1
    assert school.federation.campaigns() == [CAMPAIGN]  # and the campaign went down in the same session

    # An unreachable school is noted on its row, and the others still get their turn.
    district.fed.add_peer(school.identity.signing_key.hex(), node_id=school.node_id, role="school", uai="0751234J",
                          address="http://127.0.0.1:9", static_key=school.identity.public.static_key.hex())
    assert await district.sync_children() == []
    row = district.fed.peer(school.identity.signing_key.hex())
    assert "cannot reach" in row["last_error"]
    from preau.node.codes import refusal_words  # the district's schools page says it from the code, in French
    assert refusal_words(row["last_error_code"], row["last_error"]).to("fr").startswith("injoignable par le réseau")
    for n in (district, school, hidden):
        n.close()


async def test_the_district_loop_calls_reachable_schools_on_its_own(tmp_path, aiohttp_server):
    import asyncio

    district, school = make_node(tmp_path, "d", "district"), make_node(tmp_path, "s", "school")
    await serve(district, aiohttp_server)
    await serve(school, aiohttp_server)
    inv = district.create_invitation("0751234J", [district.url], school_address=school.url)
    await school.join(inv.to_string(), "0751234J")
    district.federation.publish_campaign(CAMPAIGN)
    signed = school_release(school, 12)
    task = asyncio.create_task(district.sync_loop(news_poll=0.05))  # a district with no parent
    try:
        for _ in range(250):
            if district.fed.latest_release(signed.doc_id):
                break
            await asyncio.sleep(0.02)
        assert district.fed.latest_release(signed.doc_id)[0] == signed.release
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    district.close()
    school.close()
