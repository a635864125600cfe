"""The 10-pupil floor, end to end, on the cohort a release would publish (docs/privacy.md, section 1).

A class of 10 at one school: on « Comprendre des mots » one pupil scored (à besoin) and the other nine are
absent; on « Comprendre des phrases » those nine scored. Ten pupils are assessed, but batching holds the nine
back (9 < 10), so the only rows that could leave count one assessed pupil. Protected, the head teacher's
`preau release --approve` sends nothing and says why; the district has no count of the school. With the hook
`published_cohort` on the school (the floor on today's pupils only), the district stores a cohort of 1 and
that pupil's group: what the review saw.
"""
from __future__ import annotations

import json

import pytest

from e2e_world import World

pytestmark = pytest.mark.slow

MOTS, PHRASES = "fr-comprendre-mots", "fr-comprendre-phrases"


def _one_scored(classes) -> None:
    [pupils] = [c.pupils for c in classes]
    for i, pupil in enumerate(pupils):
        pupil.results.clear()
        if i == 0:
            pupil.results[MOTS] = ("besoin", 0)
        else:
            pupil.results[MOTS] = ("absent", None)
            pupil.results[PHRASES] = ("seuil2", 12)


@pytest.mark.parametrize("protection", ["on", "off"])
def test_a_release_whose_rows_count_one_pupil_sends_no_count(tmp_path, protection):
    w = World(tmp_path)
    a = w.add_school("a", 0)
    w.init_all()
    if protection == "off":
        a.unprotect = ("published_cohort",)
    w.district.start()
    try:
        w.load_campaign()
        w.join(a)
        w.fill(a, [10], seed=5, adjust=_one_scored)
        done = a.cli("release", w.campaign.id, "--approve", check=False)
        a.cli("sync")
        entries = [json.loads(r["entry"]) for r in w.district.query("SELECT entry FROM stats_entries")]
        if protection == "on":
            assert done.returncode == 1 and "signed" not in done.stdout, (done.stdout, done.stderr)
            assert done.stderr.startswith("preau: error: nothing to release: withheld: the results that could leave "
                                          "now concern only 1 assessed pupil(s) of the school's 10"), done.stderr
            assert entries == []
        else:
            assert done.returncode == 0 and "signed" in done.stdout, (done.stdout, done.stderr)
            [entry] = entries
            text = json.dumps(entry)
            assert '"cohort": 1' in text and '"besoin": 1' in text and '"absent": 9' in text, text
    finally:
        w.stop_all()
