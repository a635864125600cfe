"""Issue 11, attack 1: the district lowers the disclosure policy; the school applies its own floor.

The district is the attacker here: its own floor is switched off (hook
`floor` on the district's processes) so it can load a campaign asking for
min_cohort 1, min_batch 1, small_cell_max 0. A school of 4 pupils then joins.
Protected, the school refuses the campaign and says why, in words; nothing of
its pupils leaves. With the school's floor switched off too, the same school
publishes its 4 pupils' counts.
"""
import pytest

from cli_helpers import fill
from privacy_world import campaign_with, district, hook, school

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("school_floor", ["on", "off"])
def test_a_campaign_below_the_national_floor_is_refused_by_the_school(tmp_path, school_floor, monkeypatch):
    d = district(tmp_path, "floor")
    d.run("campaign", "load", str(campaign_with(tmp_path, min_cohort=1, min_batch=1, small_cell_max=0)))
    d.serve()
    try:
        s = school(tmp_path, "a", d, *(("floor",) if school_floor == "off" else ()))
        refused = s.query("SELECT detail, params FROM events WHERE kind = 'campaign_refused'")
        if school_floor == "on":
            assert len(refused) == 1 and '"setting": "min_cohort"' in refused[0]["params"]
            assert '"minimum": 10' in refused[0]["params"]
            r = s.run("release", "2026-debut-cp", "--approve", check=False)
            assert r.code != 0 and "2026-debut-cp" in r.err  # no such campaign at the school: nothing to release
            assert d.query("SELECT count(*) AS n FROM stats_entries")[0]["n"] == 0
            from preau.node.codes import refused_campaign_words
            import json
            logged = json.loads(refused[0]["params"])  # the event's values, as the sync page reads them
            words = refused_campaign_words(logged["code"], logged["values"], "fr")
            assert words.startswith("La campagne a été refusée : elle demande min_cohort = 1, en dessous du minimum national de 10")
        else:
            assert refused == []
            from preau.crdt import campaign
            monkeypatch.setattr(campaign, "FLOOR", campaign.Policy(1, 1, 0))  # the data entry runs in this process
            fill(s.data, 4)
            out = s.run("release", "2026-debut-cp", "--approve").out
            assert "signed" in out
            s.run("sync")
            entries = d.query("SELECT entry FROM stats_entries")
            assert len(entries) == 1 and '"cohort": 4' in entries[0]["entry"]  # 4 pupils' counts left the school
    finally:
        d.stop()
