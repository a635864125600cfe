"""The school's floor and batching, end to end, against the two attacks a review ran with real processes
(docs/privacy.md, sections 1 and 3): one district, one school, three classes entered one after the other.

1. The floor on the cohort a release would publish. Class A, 10 pupils: on « Comprendre des mots » one pupil
   scored (à besoin) and the other nine are absent; on « Comprendre des phrases » those nine scored. Ten pupils
   are assessed, but batching holds the nine back (9 < 10), so the only rows that could leave count one assessed
   pupil. Protected, `preau release --approve` sends nothing and says why; the district has no count of the
   school. With the hook `published_cohort`, the district stores a cohort of 1 and that pupil's group.
2. Class B, 20 pupils on « Comprendre des mots » (7 à besoin, 7 fragile, 6 above threshold 2): a release goes.
3. Batching at count level. Class C, 10 pupils: the first, late, scores à besoin; the nine others are marked
   absent there. Ten pupils changed, so pupil-level batching alone lets the exercise move, and the district
   subtracts à besoin +1, absent +9: the late pupil's group. Protected, that release is refused with the count
   that waits, and the district keeps the one before. With the hook `count_batching`, it moves by exactly that.
"""
from __future__ import annotations

import json

import pytest

from e2e_world import World

pytestmark = pytest.mark.slow

MOTS, PHRASES = "fr-comprendre-mots", "fr-comprendre-phrases"
ROW = {"besoin": 0, "fragile": 0, "seuil2": 0, "absent": 0, "pending": 0, "total": 0}
SCORE = {"besoin": ("besoin", 0), "fragile": ("fragile", 7), "seuil2": ("seuil2", 12), "absent": ("absent", None)}


def _results(groups):
    """adjust= for World.fill: pupil i of the new class gets groups(i) ({exercise: group}) and nothing else."""
    def adjust(classes) -> None:
        for i, pupil in enumerate(p for c in classes for p in c.pupils):
            pupil.results.clear()
            pupil.results.update({ex: SCORE[g] for ex, g in groups(i).items()})
    return adjust


def _stored(w) -> dict | None:
    """The school's release the district holds (its newest), as its statistics store it."""
    rows = w.district.query("SELECT entry FROM stats_entries")
    assert len(rows) <= 1
    return json.loads(rows[0]["entry"]) if rows else None


@pytest.mark.parametrize("protection", ["on", "off"])
def test_one_pupils_group_leaves_neither_in_a_small_cohort_nor_by_subtraction(tmp_path, protection):
    w = World(tmp_path)
    a = w.add_school("a", 0)
    w.init_all()
    if protection == "off":
        a.unprotect = ("published_cohort", "count_batching")
    w.district.start()
    try:
        w.load_campaign()
        w.join(a)
        release = lambda: a.cli("release", w.campaign.id, "--approve", check=False)  # noqa: E731
        w.fill(a, [10], seed=5, adjust=_results(lambda i: {MOTS: "besoin"} if i == 0 else {MOTS: "absent", PHRASES: "seuil2"}))
        first = release()
        a.cli("sync")
        if protection == "on":
            assert first.returncode == 1 and "signed" not in first.stdout, (first.stdout, first.stderr)
            assert first.stderr.startswith("preau: error: nothing to release: withheld: the results that could leave "
                                           "now concern only 1 assessed pupil(s) of the school's 10"), first.stderr
            assert _stored(w) is None
        else:
            assert first.returncode == 0, (first.stdout, first.stderr)
            leaked = _stored(w)["content"]
            assert leaked["cohort"] == 1 and leaked["exercises"][MOTS] == ROW | {"besoin": 1, "absent": 9, "total": 10}

        w.fill(a, [20], seed=6, adjust=_results(lambda i: {MOTS: ("besoin", "fragile", "seuil2")[i % 3]}))
        assert release().returncode == 0
        before = ROW | {"besoin": 8, "fragile": 7, "seuil2": 6, "absent": 9, "total": 30}  # A and B on MOTS
        w.fill(a, [10], seed=7, adjust=_results(lambda i: {MOTS: "besoin" if i == 0 else "absent"}))
        late = release()
        a.cli("sync")
        stored = _stored(w)
        if protection == "on":
            assert late.returncode == 1 and "signed" not in late.stdout, (late.stdout, late.stderr)
            assert 'the "needs support" count would move by only 1 pupil(s)' in late.stderr, late.stderr
            assert stored["release"] == 1 and stored["content"]["exercises"][MOTS] == before
        else:
            assert late.returncode == 0 and stored["release"] == 3
            after = stored["content"]["exercises"][MOTS]
            assert {k: after[k] - before[k] for k in ROW} == ROW | {"besoin": 1, "absent": 9, "total": 10}
    finally:
        w.stop_all()
