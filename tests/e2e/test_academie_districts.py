"""An académie above two districts, with real processes (issue 15): campaign down, releases up, and the
académie's per-district table equals the counts generated for each district's schools where not suppressed.

Every node is its own `preau serve` process or `preau` command; the académie's
table is read the way an inspector's browser does, over HTTP after logging in.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import http.cookiejar
import json
import re
import urllib.parse
import urllib.request

import pytest

from e2e_world import Proc, World, wait_for
from e2e_world import academie as new_academie
from preau.crdt.campaign import GROUPS
from preau.node import actions
from preau.node.demo.demo import DEMO_PASSWORD, free_port, uai

pytestmark = pytest.mark.slow


def _logged_in(base: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(base + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"csrf_token": token, "username": "admin", "password": DEMO_PASSWORD}).encode()
    opener.open(base + "/login", data=body, timeout=30).read()
    return opener


def test_the_academie_per_district_table_equals_the_generated_counts_where_not_suppressed(tmp_path):
    academie = new_academie(tmp_path)
    worlds = [World(tmp_path / "d1"), World(tmp_path / "d2")]
    worlds[1].district = Proc("district", "district", uai(69, 9002), tmp_path / "d2" / "district", free_port())
    worlds[1].campaign = worlds[0].campaign
    sizes = [{"a": [22], "b": [14]}, {"c": [25], "d": [18]}]  # 2 schools each: one school's aggregate is withheld
    for n, (w, schools) in enumerate(zip(worlds, sizes)):
        for k, name in enumerate(schools):
            w.add_school(name, 40 * n + 7 * k)
        w.init_all()
    academie.start()
    for w in worlds:
        w.district.start()
    try:
        actions.load_campaign(academie.settings(), campaign=worlds[0].campaign, file="debut-cp")
        for n, w in enumerate(worlds):
            invitation = academie.cli("invite", "--uai", w.district.uai, "--district",
                                      "--name", f"Circonscription {n + 1}", "--town", "Lyon", "--allow-loopback").stdout.strip()
            # A district joins its académie: the message names that level, not "the district".
            assert "Joined the académie" in w.district.cli("join", invitation).stdout
            for k, node in enumerate(w.schools.values()):
                w.join(node)  # the campaign came down: académie -> district -> school
                w.fill(node, sizes[n][node.name], seed=500 + 10 * n + k)
                w.release(node)
                assert "acknowledged" in node.cli("sync").stdout

        # A district's counts go up when the campaign has closed (docs/privacy.md, "Aggregates going
        # up"): the académie closes it (a new version, closing yesterday), and it comes down to each district.
        closed = dataclasses.replace(worlds[0].campaign,
                                     closes=(_dt.date.today() - _dt.timedelta(days=1)).isoformat())
        actions.load_campaign(academie.settings(), campaign=closed, file="debut-cp")
        for w in worlds:
            def arrived(w=w):
                w.district.cli("sync")  # (its background sync may have done it already)
                rows = academie.query("SELECT entry FROM stats_entries WHERE owner = ?", w.district.key)
                return rows and json.loads(rows[0]["entry"])["content"]["schools"]["contributing"] == len(w.schools)
            wait_for(arrived, timeout=60, what=f"{w.district.name}'s aggregate of all its schools at the académie")

        opener = _logged_in(f"http://127.0.0.1:{academie.port}")
        cid = worlds[0].campaign.id
        got = json.loads(opener.open(f"http://127.0.0.1:{academie.port}/v1/stats/{cid}/members", timeout=30).read())
        members = {m["member"]: m for m in got["members"]}
        assert set(members) == {w.district.key for w in worlds}
        exact = bounded = 0
        for n, w in enumerate(worlds):
            row = members[w.district.key]
            assert row["scope"] == "district" and (row["name"], row["town"]) == (f"Circonscription {n + 1}", "Lyon")
            assert row["schools"] == len(w.schools)  # schools behind the district's aggregate
            truth = w.expected(w.schools.values())
            for ex, cells in row["exercises"].items():
                for g in GROUPS:
                    value, want = cells[g], truth[ex][g]
                    if isinstance(value, int):
                        assert value == want, (w.district.name, ex, g, value, want)
                        exact += 1
                    elif value.startswith("≤"):  # a small cell: shown as a range, never as a number
                        assert 1 <= want <= int(value[1:]), (ex, g, value, want)
                        bounded += 1
                    else:
                        assert value == "x"
        assert exact > 20 and bounded > 0

        assert f"académie: " in worlds[0].district.cli("status").stdout  # its parent, named as such
        assert "académie node" in academie.cli("status").stdout
        page = opener.open(f"http://127.0.0.1:{academie.port}/district/stats/{cid}", timeout=30).read().decode()
        assert "Résultats des circonscriptions" in page and "Écarts entre circonscriptions" in page
        page = opener.open(f"http://127.0.0.1:{academie.port}/district/schools", timeout=30).read().decode()
        assert "<h1>Circonscriptions de l&#39;académie</h1>" in page and "2 circonscription(s) rattachée(s)" in page
        assert ">Circonscriptions</a>" in page and ">Écoles</a>" not in page  # the menu names its members
        page = opener.open(f"http://127.0.0.1:{academie.port}/district/stats/{cid}/ecoles", timeout=30).read().decode()
        assert "Circonscription 1" in page and "Circonscription 2" in page and "Résultats par circonscription" in page
    finally:
        academie.stop()
        for w in worlds:
            w.stop_all()
