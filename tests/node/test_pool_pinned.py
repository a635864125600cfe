"""A pool's vector is cut at the thresholds the school first released under, like its releases.

Issue 11, "Moving thresholds" (docs/privacy.md): once a school's groups on an
exercise have left, a newer campaign version cannot re-cut the same pupils at
other points. A secure-aggregation pool is one more way counts leave the
school, so the vector the head teacher approves (`node.release.pool_counts`,
called by `preau pool approve` and the release page) is computed under the
pinned campaign. With the hook `pinning`, the same vector is cut at the new
version's thresholds, so the test can fail.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from aiohttp import web

from preau.crdt.campaign import parse_campaign
from preau.crdt.pooling import pool_vector
from preau.node.federation.transport import SYNC_PATH, Limits, serve_session
from preau.node.records.store import ResultInput, Store
from preau.node.records.vault import TEST_COST
from preau.node.release import approve_release, pool_counts, preview_release
from preau.node.runtime import Node, create_identity

from federation_helpers import switch_off
from storage_fixtures import ADMIN_PW, campaign_dict


def _version(campaign, fr_mots: tuple[int, int]):
    exercises = tuple(dataclasses.replace(e, thresholds=fr_mots) if e.id == "fr-mots" else e for e in campaign.exercises)
    return dataclasses.replace(campaign, exercises=exercises)


@pytest.mark.parametrize("protection", ["on", "off"])
async def test_a_pool_vector_keeps_the_thresholds_first_released_under(tmp_path, aiohttp_server, monkeypatch,
                                                                       protection):
    if protection == "off":
        switch_off(monkeypatch, "pinning")
    today = dt.date.today()
    first = dataclasses.replace(parse_campaign(campaign_dict()), opens=str(today - dt.timedelta(days=3)),
                                closes=str(today + dt.timedelta(days=20)))  # fr-mots: 10 items, cut at [4, 7]
    district = Node(create_identity(tmp_path / "d") and tmp_path / "d", role="district", limits=Limits())

    async def endpoint(request):
        return await serve_session(request, district.federation, district.limits)

    app = web.Application()
    app.router.add_get(SYNC_PATH, endpoint)
    server = await aiohttp_server(app, host="127.0.0.1")
    district.federation.publish_campaign(first)
    store, _ = Store.create(tmp_path / "s", uai="0751234J", school_name="École test", admin_username="dir",
                            admin_password=ADMIN_PW, cost=TEST_COST)
    create_identity(tmp_path / "s")
    school = Node(tmp_path / "s", role="school", limits=Limits(), on_campaign=lambda c: store.put_campaign(store.node, c))
    school.store = store
    try:
        url = str(server.make_url("")).rstrip("/")
        await school.join(district.create_invitation("0751234J", [url]).to_string(), "0751234J")
        admin = store.login("dir", ADMIN_PW)
        klass = store.create_class(admin, "CP A", "CP", "2026-2027")
        pupils = store.add_pupils(admin, klass.id, [(f"Nom{i:02d}", f"Prénom{i:02d}") for i in range(30)])
        score = [i % 11 for i in range(30)]  # every score 0..10, about three pupils each
        store.save_results(admin, first.id, [ResultInput(p.id, "fr-mots", answers=(1,) * s + (0,) * (10 - s))
                                             for p, s in zip(pupils, score)])
        preview = preview_release(store, admin, school.federation, first.id)
        assert preview.will_release, preview.decision.reason
        approve_release(store, admin, school.federation, preview)
        await school.sync_upstream()

        district.federation.publish_campaign(_version(first, (2, 3)))  # the district moves the cut-offs
        await school.sync_upstream()
        moved = store.get_campaign(admin, first.id)
        assert moved.exercise("fr-mots").thresholds == (2, 3)  # the school holds the new version

        vector, policy = pool_counts(store, admin, school.federation, first.id)
        as_released = pool_vector(store.release_outcomes(admin, first.id, campaign=first), first)
        recut = pool_vector(store.release_outcomes(admin, first.id, campaign=moved), moved)
        assert as_released != recut  # the two cuts differ on these pupils, so the test can tell them apart
        assert policy.min_cohort >= 10
        if protection == "on":
            assert vector == as_released  # besoin under 4, fragile 4 to 6, seuil 2 from 7: as first released
        else:
            assert vector == recut  # the same pupils at [2, 3]: one more point of the score histogram
    finally:
        school.close()
        district.close()
