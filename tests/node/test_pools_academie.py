"""Pools under an académie: it countersigns the member list, and schools that know it refuse a pool without.

In one process, with real sync sessions over 127.0.0.1: an académie, a district enrolled below it, and
small schools enrolled with the district (docs/secure-aggregation.md, "The académie's countersignature").
"""
from __future__ import annotations

import pytest

from preau.crdt.campaign import GROUPS
from preau.crdt.pooling import pool_vector
from preau.node.errors import Conflict
from preau.node.federation import pools as node_pools
from preau.protocol.uai import check_letter

from federation_helpers import CAMPAIGN, make_node, outcomes, serve


def _uai(n: int, dept: str = "069") -> str:
    digits = f"{dept}{n:04d}"
    return digits + check_letter(digits)


DISTRICT_UAI = _uai(9001)


def _state(node, pool_id: str) -> dict:
    return node.fed.get_meta(node_pools.POOLS_META)[pool_id]


@pytest.fixture
async def world(tmp_path, aiohttp_server):
    academie = await serve(make_node(tmp_path, "academie", "district"), aiohttp_server)
    district = await serve(make_node(tmp_path, "district", "district"), aiohttp_server)
    district.federation.publish_campaign(CAMPAIGN)
    nodes = [academie, district]
    yield academie, district, nodes
    for n in nodes:
        n.close()


async def _schools(tmp_path, district, nodes, sizes, *, academie=None, first=1, dept="069"):
    schools = []
    for i, n in enumerate(sizes):
        uai = _uai(first + i, dept)
        school = make_node(tmp_path, f"s{first + i}", "school")
        nodes.append(school)
        school.federation.academie = academie  # what the `academie` setting gives (the académie's own word)
        await school.join(district.create_invitation(uai, [district.url]).to_string(), uai)
        school.uai, school.vector = uai, pool_vector(outcomes(n, group=GROUPS[i % 3]), CAMPAIGN)
        node_pools.declare_cohort(school.federation, CAMPAIGN.id, uai, school.vector[-1])
        await school.sync_upstream()
        schools.append(school)
    return schools


def _forget(district, pool_id: str) -> None:
    """What a district that wants a second pool over the same schools does to its own records."""
    node_pools._save(district.fed, pool_id, {**_state(district, pool_id), "status": "failed"})


async def _enrol_district(academie, district):
    inv = academie.create_invitation(DISTRICT_UAI, [academie.url], member="district")
    await district.join(inv.to_string(), DISTRICT_UAI)


async def test_the_academie_countersigns_and_the_pool_runs(tmp_path, world):
    academie, district, nodes = world
    await _enrol_district(academie, district)
    schools = await _schools(tmp_path, district, nodes, [3, 4, 5], academie=academie.identity.node_id)
    view = node_pools.create_pool(district.federation, CAMPAIGN.id, [s.uai for s in schools])
    assert view.status == "countersign"
    with pytest.raises(Conflict) as waiting:
        node_pools.advance_pool(district.federation, view.pool_id)
    assert "attend le contreseing de l'académie" in waiting.value.localized("fr")
    for s in schools:  # nothing reaches the schools before the académie countersigned
        await s.sync_upstream()
        assert node_pools.pools(s.federation) == []
    await district.sync_upstream()
    assert _state(district, view.pool_id)["status"] == "keys"
    (seen,) = node_pools.pools(academie.federation)
    assert seen.status == "countersigned" and [m["uai"] for m in seen.members] == [s.uai for s in schools]
    for s in schools:
        await s.sync_upstream()
        assert _state(s, view.pool_id)["status"] == "proposed"
        node_pools.approve_pool(s.federation, view.pool_id, s.vector, min_cohort=10)
    for _ in range(12):
        for s in schools:
            await s.sync_upstream()
        if _state(district, view.pool_id)["status"] == "complete":
            break
    assert _state(district, view.pool_id)["result"] == {"survivors": 3, "pupils": 12}


async def test_a_school_that_knows_its_academie_refuses_a_pool_it_did_not_countersign(tmp_path, world):
    """The district leaves its académie out (it forms the pool as if it had no parent): schools refuse it."""
    academie, district, nodes = world
    schools = await _schools(tmp_path, district, nodes, [3, 4, 5], academie=academie.identity.node_id)
    view = node_pools.create_pool(district.federation, CAMPAIGN.id, [s.uai for s in schools])
    assert view.status == "keys"  # this district has no parent: the pool goes straight to the schools
    for s in schools:
        await s.sync_upstream()
        state = _state(s, view.pool_id)
        assert state["status"] == "refused", state
        assert f"not countersigned by the académie {academie.identity.node_id}" in state["reason"]
        with pytest.raises(Conflict):
            node_pools.approve_pool(s.federation, view.pool_id, s.vector, min_cohort=10)


async def test_a_school_keeps_requiring_the_first_academie_it_saw(tmp_path, world):
    """No setting: the first countersigned pool pins its académie; a later pool without it is refused."""
    academie, district, nodes = world
    await _enrol_district(academie, district)
    schools = await _schools(tmp_path, district, nodes, [3, 4, 5])
    first = node_pools.create_pool(district.federation, CAMPAIGN.id, [s.uai for s in schools])
    await district.sync_upstream()
    for s in schools:
        await s.sync_upstream()
        assert _state(s, first.pool_id)["status"] == "proposed"
        assert node_pools.required_academie(s.federation) == academie.identity.node_id
    # The district now drops its académie (as a malicious district would, to slip in a pool unseen).
    district.fed.revoke_peer(district.federation.upstream()["key"])
    assert district.federation.upstream() is None
    _forget(district, first.pool_id)
    second = node_pools.create_pool(district.federation, CAMPAIGN.id, [s.uai for s in schools])
    assert second.status == "keys"
    for s in schools:
        await s.sync_upstream()
        state = _state(s, second.pool_id)
        assert state["status"] == "refused" and "not countersigned by the académie" in state["reason"]


async def test_the_academie_refuses_a_second_pool_for_a_school_and_schools_outside_its_departements(tmp_path, world):
    academie, district, nodes = world
    await _enrol_district(academie, district)
    schools = await _schools(tmp_path, district, nodes, [3, 4, 5, 6])
    first = node_pools.create_pool(district.federation, CAMPAIGN.id, [s.uai for s in schools[:3]])
    await district.sync_upstream()
    assert _state(district, first.pool_id)["status"] == "keys"
    with pytest.raises(Conflict, match="one pool per campaign"):  # the district's own check...
        node_pools.create_pool(district.federation, CAMPAIGN.id, [s.uai for s in schools[1:]])
    _forget(district, first.pool_id)  # ...which a malicious district skips: the académie's register still holds
    again = node_pools.create_pool(district.federation, CAMPAIGN.id, [s.uai for s in schools[1:]])
    await district.sync_upstream()
    state = _state(district, again.pool_id)
    assert state["status"] == "failed" and state["code"] == "academie_refused"
    assert "one pool per campaign" in state["reason"] and schools[1].uai in state["reason"]
    far = await _schools(tmp_path, district, nodes, [4, 4, 4], first=20, dept="075")
    outside = node_pools.create_pool(district.federation, CAMPAIGN.id, [s.uai for s in far])
    await district.sync_upstream()
    state = _state(district, outside.pool_id)
    assert state["status"] == "failed" and "outside this académie's départements (069)" in state["reason"]
    # The académie's own listing says why it refused, in French, from the code and values it kept.
    refused = {v.pool_id: v for v in node_pools.pools(academie.federation) if v.status == "refused"}
    assert f"({schools[1].uai}) est déjà dans le regroupement" in refused[again.pool_id].why("fr")
    assert refused[outside.pool_id].why("fr").startswith("Écoles hors des départements de cette académie (069)")
    for s in (*schools, *far):  # the refused pools never reached a school
        await s.sync_upstream()
        assert {v.pool_id for v in node_pools.pools(s.federation)} <= {first.pool_id}
