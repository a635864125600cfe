"""A pool under an académie, with real processes: the académie countersigns the member list over the
district's sync, and schools configured with the académie's node id (its own word, not the district's)
take the pool only with that countersignature (docs/secure-aggregation.md, "The académie's countersignature").
"""
from __future__ import annotations

import json
import re

import pytest

from e2e_world import World, wait_for
from e2e_world import academie as new_academie
from preau.node import actions
from preau.node.demo.synthetic import assessed
from preau.protocol.identity import node_id

pytestmark = pytest.mark.slow


def _pools(node) -> dict:
    rows = node.query("SELECT value FROM meta WHERE key = 'secagg/pools'")
    return json.loads(rows[0]["value"]) if rows else {}


def test_the_academie_countersigns_and_the_schools_that_know_it_complete_the_pool(tmp_path):
    w = World(tmp_path)
    academie = new_academie(tmp_path)
    for n, name in enumerate(("p1", "p2", "p3")):
        w.add_school(name, 7 * n + 3)
    w.init_all()
    academie.start()
    w.district.start()
    try:
        academie_id = node_id(bytes.fromhex(academie.key))
        actions.load_campaign(academie.settings(), campaign=w.campaign, file="debut-cp")
        invitation = academie.cli("invite", "--uai", w.district.uai, "--district", "--allow-loopback").stdout.strip()
        assert "Joined the académie" in w.district.cli("join", invitation).stdout
        small = list(w.schools.values())

        def enrol(node, k):
            node.configure(academie=academie_id)  # from the académie's circular, not from the district
            w.join(node)
            w.fill(node, [4 + k], seed=700 + k)
            node.cli("pool", "declare", w.campaign.id, "--user", "admin")
            node.cli("sync")
        w.parallel(lambda node: enrol(node, small.index(node)), small)

        out = w.district.cli("pool", "create", w.campaign.id, *sum((["--member", n.uai] for n in small), [])).stdout
        pool_id = re.search(r"pool ([0-9a-f]{8})", out).group(1)
        assert "countersign" in out and "goes first to the académie" in out, out
        # The district's next sync up carries the pool to the académie, which countersigns it.
        wait_for(lambda: w.district.cli("sync") and [s["status"] for s in _pools(w.district).values()] == ["keys"],
                 60, what="the académie's countersignature")
        listing = academie.cli("pool", "list").stdout
        assert "countersigned" in listing and all(n.uai in listing for n in small), listing

        w.parallel(lambda node: node.cli("sync"), small)
        assert [s["status"] for s in _pools(small[0]).values()] == ["proposed"]
        w.parallel(lambda node: node.cli("pool", "approve", pool_id, "--user", "admin"), small)
        w.parallel(lambda node: node.start(), small)
        wait_for(lambda: [s["status"] for s in _pools(w.district).values()] == ["complete"], 120,
                 what="the pool to complete")
        (state,) = _pools(w.district).values()
        assert state["result"] == {"survivors": 3, "pupils": sum(assessed(n.classes) for n in small)}
    finally:
        academie.stop()
        w.stop_all()
