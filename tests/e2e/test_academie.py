"""One level up with real processes: an académie, a district below it, schools below the district.

Each node is its own data folder and `preau serve` process (the schools only
run commands); every step is the `preau` command a person would run. The
campaign is loaded at the académie only, so the schools can have it only if it
came down through the district.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json

import pytest

from e2e_world import World
from e2e_world import academie as new_academie
from preau.crdt.campaign import GROUPS
from preau.node import actions

pytestmark = pytest.mark.slow


def test_campaign_down_and_statistics_up_through_a_district_to_its_academie(tmp_path):
    w = World(tmp_path)  # w.district is the district; the académie sits above it
    academie = new_academie(tmp_path)
    for n, name in enumerate(("a", "b", "c")):
        w.add_school(name, 31 * n)
    w.init_all()
    academie.start()
    w.district.start()
    try:
        actions.load_campaign(academie.settings(), campaign=w.campaign, file="debut-cp")
        invitation = academie.cli("invite", "--uai", w.district.uai, "--district", "--allow-loopback").stdout.strip()
        assert "Joined the district" in w.district.cli("join", invitation).stdout
        # The district holds the académie's campaign and its own re-signed copy, the one its schools take.
        owners = {r["owner"] for r in w.district.query("SELECT owner FROM documents WHERE kind = 'campaign'")}
        assert owners == {academie.key, w.district.key}

        sizes = {"a": [22, 19], "b": [25], "c": [18, 3]}
        for n, node in enumerate(w.schools.values()):
            w.join(node)
            [campaign_doc] = node.query("SELECT owner FROM documents WHERE kind = 'campaign'")
            assert campaign_doc["owner"] == w.district.key
            w.fill(node, sizes[node.name], seed=400 + n)
            w.release(node)
            assert "acknowledged" in node.cli("sync").stdout

        # While the campaign is open the district's aggregate says only "at closing": no count goes up.
        w.district.cli("sync")
        sent = w.district.query("SELECT content FROM transparency WHERE doc_id LIKE 'aggregate:%' ORDER BY number")
        assert [json.loads(r["content"])["reason"] for r in sent] == ["until_closing"]

        # The académie closes the campaign (a new version, closing yesterday); it comes down at the next sync,
        # and the sync after that sends the district's counts up, once (docs/privacy.md, "Aggregates going up").
        closed = dataclasses.replace(w.campaign, closes=(_dt.date.today() - _dt.timedelta(days=1)).isoformat())
        actions.load_campaign(academie.settings(), campaign=closed, file="debut-cp")
        # The serving district's own loop may sync between two commands here: wait on what was sent and
        # acknowledged, not on which command's output said it.
        for _ in range(10):
            w.district.cli("sync")
            sent = w.district.query(
                "SELECT content, receipt FROM transparency WHERE doc_id LIKE 'aggregate:%' ORDER BY number")
            if len(sent) == 2 and sent[1]["receipt"]:
                break
        assert [json.loads(r["content"])["status"] for r in sent] == ["withheld", "published"]
        assert sent[1]["receipt"], "the académie acknowledged the district's counts"
        kinds = {r["kind"] for r in academie.query("SELECT kind FROM documents")}
        assert "release" not in kinds and "aggregate" in kinds

        got = json.loads(academie.cli("stats", w.campaign.id, "--format", "json").stdout)
        assert (got["districts_contributing"], got["schools_represented"]) == (1, 3)
        expected = w.expected(w.schools.values())
        bounds = 0
        for row in got["exercises"]:
            for g in GROUPS:
                want = expected[row["exercise"]][g]
                value = row[g]
                if isinstance(value, str):  # a cell the district hid: only a lower bound, marked
                    assert value.startswith("≥") and int(value[1:]) <= want, (row["exercise"], g, value, want)
                    assert row["hidden_by"][g] == 1  # as docs/operations.md says: how many districts hid it
                    bounds += 1
                else:
                    assert value == want and g not in row["hidden_by"], (row["exercise"], g, value, want)
        assert bounds  # with ~66 pupils some groups are small, and the district hides them
        table = academie.cli("stats", w.campaign.id).stdout
        assert "1 district(s) contributing, covering 3 school(s)" in table and "lower bound" in table
    finally:
        academie.stop()
        w.stop_all()
