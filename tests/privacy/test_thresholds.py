"""Issue 11, attack 4, end to end: the district re-publishes the campaign with thresholds that move.

A school of 60 pupils releases under the first thresholds; the district loads
two new versions of the campaign, each cutting one exercise elsewhere; after
each, the school syncs and its head teacher approves whatever the preview
offers. Protected, every release counts that exercise at the first
thresholds (the preview says which were kept), so the district never learns
how many pupils scored under any other cut-off. With the hook `pinning` on
the school, the district gets the counts at every cut-off it asked for.
"""
import json
import re

import pytest

from cli_helpers import fill
from privacy_world import campaign_with, district, school

pytestmark = pytest.mark.slow

CID = "2026-debut-cp"
EX = "fr-comprendre-mots"  # the first exercise of the sample: 15 items, thresholds [6, 10]


def _version(tmp_path, n: int, t1: int, t2: int):
    path = campaign_with(tmp_path)
    text = re.sub(r"^thresholds = \[6, 10\].*$", f"thresholds = [{t1}, {t2}]", path.read_text(encoding="utf-8"),
                  count=1, flags=re.M)
    out = tmp_path / f"version-{n}.toml"
    out.write_text(text, encoding="utf-8")
    return out


@pytest.mark.parametrize("protection", ["on", "off"])
def test_moving_thresholds_never_recut_the_same_pupils(tmp_path, protection):
    d = district(tmp_path)
    d.run("campaign", "load", str(campaign_with(tmp_path)))
    d.serve()
    try:
        s = school(tmp_path, "a", d, *(("pinning",) if protection == "off" else ()))
        fill(s.data, 60)
        s.run("release", CID, "--approve")
        s.run("sync")
        previews = []
        for n, (t1, t2) in enumerate([(2, 3), (12, 13)], start=2):
            d.run("campaign", "load", str(_version(tmp_path, n, t1, t2)))
            s.run("sync")
            previews.append(s.run("release", CID).out)  # what the head teacher reads before approving
            s.run("release", CID, "--approve", check=False)  # approved whenever something would leave
            s.run("sync")
        sent = [json.loads(r["content"]) for r in
                s.query("SELECT content FROM transparency WHERE doc_id LIKE 'release:%' ORDER BY number")]
        rows = {tuple(c["exercises"][EX][g] for g in ("besoin", "fragile", "seuil2")) for c in sent
                if c["status"] == "published"}
        if protection == "on":
            assert len(rows) == 1  # one cut of the same pupils, whatever the versions asked
            assert all(f"Thresholds kept for {EX} (used by earlier releases): 6, 10" in p for p in previews)
            assert "asked thresholds of fr-comprendre-mots = (2, 3); kept: (6, 10)" in previews[0]
        else:
            assert len(rows) >= 2  # the same pupils counted at other cut-offs: the histogram, bit by bit
    finally:
        d.stop()
