"""Key rotation and the aggregates a district sends up (docs/privacy.md, "Aggregates going up"): what went up
under an old key still counts, so a rotation never lets one school's row through."""
from __future__ import annotations

import pytest

from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.crdt.documents import read_release
from preau.crdt.docio import load_document
from preau.crdt.signing import SignedRelease
from preau.crdt.statistics import CampaignStatistics
from preau.node.web.event_words import event_sentence

from federation_helpers import CAMPAIGN, make_node
from test_parent_aggregate import academie_and_district


def pupils(prefix: str, groups: list[str]) -> list[PupilOutcome]:
    return [PupilOutcome(f"{prefix}{i}", ex.id, g) for i, g in enumerate(groups) for ex in CAMPAIGN.exercises]


A = ["seuil2"] * 20 + ["fragile"] * 15 + ["besoin"] * 12  # 47 pupils
B = ["seuil2"] * 25 + ["fragile"] * 14 + ["besoin"] * 11  # 50
C = ["seuil2"] * 9 + ["fragile"] * 2 + ["besoin"]  # a late school of 12: cells of 1 and 2
D = ["seuil2"] * 11 + ["fragile"] * 12 + ["besoin"] * 12  # a second late school: with C, every cell moves by > 10


def held_at(academie) -> list[tuple[str, object]]:
    """Every aggregate document the académie holds, as (owner, content at its latest signed release)."""
    out = []
    for d in academie.fed.documents(kind="aggregate"):
        signed = SignedRelease.decode(academie.fed.latest_release(d.doc_id)[1])
        out.append((d.owner, read_release(load_document(d.data), list(signed.heads))))
    return out


class World:
    def __init__(self, tmp_path, academie, district):
        self.tmp_path, self.academie, self.district = tmp_path, academie, district
        self.nodes = [academie, district]

    async def school(self, uai: str, groups: list[str]):
        node = make_node(self.tmp_path, f"s{len(self.nodes)}", "school")
        self.nodes.append(node)
        await node.join(self.district.create_invitation(uai, [self.district.url]).to_string(), uai)
        decision = next_release(pupils(uai, groups), CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=True)
        node.federation.publish_release(decision.content, to_peer="district")
        assert (await node.sync_upstream()).error is None
        return node, decision

    def close(self):
        for n in self.nodes:
            n.close()


@pytest.mark.parametrize("order", ["held_then_rotate", "rotate_then_refresh", "rotate_before_sync"])
async def test_a_district_key_rotation_keeps_its_aggregate_checks(tmp_path, aiohttp_server, order):
    """Review finding (review5, high): after a district's key rotation its aggregate started afresh (a new
    document id, no previous, no record of what went up), so a late school held back before the rotation went
    up after it, and the académie subtracted the old key's aggregate from the new key's: that school's row,
    cells of 1 and 2 included. Whatever the order of rotation and refresh, the late school stays held; the
    académie gets the counted figures under the new key, keeps one entry for the district, and a second late
    school takes both up together."""
    academie, district = await academie_and_district(tmp_path, aiohttp_server)
    academie.federation.publish_campaign(CAMPAIGN)  # closed already: counts go up at once
    assert (await district.sync_upstream()).error is None
    w = World(tmp_path, academie, district)
    try:
        await w.school("0751234J", A)
        await w.school("0751235K", B)
        old_key = district.identity.signing_key.hex()
        [first] = district.federation.refresh_aggregates()
        if order == "rotate_before_sync":  # the counted aggregate never went up under the old key
            district.rotate_keys()
            await w.school("0751236L", C)
        else:
            assert (await district.sync_upstream()).error is None
            await w.school("0751236L", C)
            if order == "held_then_rotate":
                assert district.federation.refresh_aggregates() == []  # C alone: held
            district.rotate_keys()
        district.federation.refresh_aggregates()
        assert (await district.sync_upstream()).error is None
        new_key = district.identity.signing_key.hex()
        assert new_key != old_key

        held = held_at(academie)
        assert held and all(c.status == "published" for _, c in held)
        # Only the counts of A and B, under whichever key: no two aggregates subtract to C's row.
        assert {(c.schools_contributing, c.cohort, c.row("fr-mots").to_dict()["seuil2"]) for _, c in held} == {
            (2, 97, 45)}, [(o[:8], c.schools_contributing, c.cohort) for o, c in held]
        assert new_key in {o for o, _ in held}  # the figures moved to the new key (the old one is refused now)
        stats = CampaignStatistics.from_dict(academie.fed.stats(CAMPAIGN.id))
        assert [m.member for m in stats.members()] == [new_key] and stats.schools_represented == 2

        # A second late school: C and D together go up, under the new key, replacing the district's entry.
        await w.school("0751237M", D)
        [second] = district.federation.refresh_aggregates()
        assert second.owner.hex() == new_key and second.release > first.release
        assert (await district.sync_upstream()).error is None
        stats = CampaignStatistics.from_dict(academie.fed.stats(CAMPAIGN.id))
        assert [m.member for m in stats.members()] == [new_key]
        assert (stats.schools_represented, stats.cohort()) == (4, 97 + 12 + 35)
        assert stats.exercise("fr-mots").counts["seuil2"] == 45 + 9 + 11
    finally:
        w.close()


async def test_a_school_key_rotation_counts_as_one_school_moving(tmp_path, aiohttp_server):
    """Review finding (review5, medium): "moved in at least 2 schools" counted members by owner key, so a
    school that rotated its key (its old key's entry leaving, its new key's arriving) counted as two schools,
    and its 12 late pupils went up alone (seuil2 45 -> 57, the school count unchanged). They are held as
    without a rotation; with a second school's late pupils the difference mixes both, and it goes up."""
    academie, district = await academie_and_district(tmp_path, aiohttp_server)
    academie.federation.publish_campaign(CAMPAIGN)
    assert (await district.sync_upstream()).error is None
    w = World(tmp_path, academie, district)
    try:
        a, first_a = await w.school("0751234J", A)
        b, first_b = await w.school("0751235K", B)
        [first] = district.federation.refresh_aggregates()
        assert (await district.sync_upstream()).error is None

        a.rotate_keys()
        assert (await a.sync_upstream()).error is None  # the district learns A's new key
        late = next_release(pupils("0751234J", A + ["seuil2"] * 12), CAMPAIGN, first_a.history, closing=True)
        a.federation.publish_release(late.content, to_peer="district")
        assert (await a.sync_upstream()).error is None
        stats = CampaignStatistics.from_dict(district.fed.stats(CAMPAIGN.id))
        assert [m.member for m in stats.members()].count(a.identity.signing_key.hex()) == 1
        assert stats.members_count == 2 and stats.cohort() == 97 + 12  # the district counts A once, with its 12
        assert district.federation.refresh_aggregates() == []  # one school moved: held
        assert district.federation.refresh_aggregates() == []  # (and said once in the journal, not at each sync)
        held = [e for e in district.fed.events() if e["kind"] == "aggregate_held"]
        assert len(held) == 1 and "moved in one school's rows only" in held[0]["detail"], held
        assert event_sentence("aggregate_held", held[0]["params"], "fr", {CAMPAIGN.id: CAMPAIGN.name}).startswith(
            "Campagne « Début de CP » : de nouveaux effectifs ne sont pas envoyés à l'académie")

        later_b = next_release(pupils("0751235K", B + ["seuil2"] * 12), CAMPAIGN, first_b.history, closing=True)
        b.federation.publish_release(later_b.content, to_peer="district")
        assert (await b.sync_upstream()).error is None
        [second] = district.federation.refresh_aggregates()  # two schools moved, every cell by 0 or 24
        assert (await district.sync_upstream()).error is None
        [(_, content)] = held_at(academie)
        assert (content.release, content.schools_contributing, content.cohort) == (second.release, 2, 97 + 24)
    finally:
        w.close()
