"""A school restored from a backup made before its last release, with real processes: its district keeps the
release it holds, the school takes it back, numbers past it, and its next release reaches the district, checked
against the one it had forgotten (the batching rule) and counted once.

Before, the restored school wrote its next release under the Automerge actor and sequence numbers of the one it
had forgotten: the district refused that document at every sync ("duplicate seq", the school heard peer_error for
ever), and the school's transparency log marked its new release 2 received on the strength of the district's
receipt for the old one.
"""
from __future__ import annotations

import json

import pytest

from cli_helpers import MINIMAL, PASSWORD
from privacy_world import campaign_with, district, school

pytestmark = pytest.mark.slow

CAMPAIGN = "2026-debut-cp"


def _add(data, names, *, score_all: bool = True, again: bool = False) -> None:
    """Pupils with every exercise scored: all items right (`score_all`, seuil 2), or all wrong (besoin);
    `again`: pupils already in the class (by last name), scored anew."""
    from preau.node.records.store import ResultInput, Store
    from preau.node.records.vault import ARGON2

    store = Store.open(data, cost=ARGON2[MINIMAL])
    try:
        admin = store.login("admin", PASSWORD)
        c = store.get_campaign(admin, CAMPAIGN)
        classes = store.list_classes(admin)
        info = classes[0] if classes else store.create_class(admin, "CP A", c.level, c.school_year)
        if again:
            wanted = {last for last, _ in names}
            pupils = [p for p in store.list_pupils(admin, info.id) if p.last_name in wanted]
            assert len(pupils) == len(wanted)
        else:
            pupils = store.add_pupils(admin, info.id, names)
        results = []
        for p in pupils:
            for ex in c.exercises:
                if ex.score_kind == "wpm":
                    results.append(ResultInput(p.id, ex.id, wpm=60))
                else:
                    right = ex.items if score_all else 0
                    results.append(ResultInput(p.id, ex.id, answers=tuple([1] * right + [0] * (ex.items - right))))
        store.save_results(admin, c.id, results)
    finally:
        store.close()


def _district_releases(d) -> dict[int, bytes]:
    return {r["number"]: bytes(r["signed"]) for r in d.query(
        "SELECT number, signed FROM releases WHERE doc_id LIKE 'release:%' ORDER BY number")}


def _district_entry(d) -> dict:
    [row] = d.query("SELECT entry FROM stats_entries WHERE campaign = ?", CAMPAIGN)  # one entry: counted once
    return json.loads(row["entry"])["content"]


def _log(s) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in s.query("SELECT number, content, receipt FROM transparency ORDER BY id"):
        out.setdefault(r["number"], []).append({"cohort": json.loads(r["content"])["cohort"], "receipt": r["receipt"]})
    return out


def test_a_school_restored_from_before_its_last_release_releases_again(tmp_path):
    d = district(tmp_path)
    d.run("campaign", "load", str(campaign_with(tmp_path)))
    d.serve()
    try:
        s = school(tmp_path, "a", d)
        _add(s.data, [(f"Ancien{i}", "Eleve") for i in range(20)])
        s.run("release", CAMPAIGN, "--approve")
        s.run("sync")
        backup = tmp_path / "before-release-2.backup"
        s.run("backup", "--output", str(backup), "--user", "admin")
        _add(s.data, [(f"Nouveau{i}", "Eleve") for i in range(10)])
        s.run("release", CAMPAIGN, "--approve")
        s.run("sync")
        held = _district_releases(d)
        assert sorted(held) == [1, 2] and _district_entry(d)["cohort"] == 30

        s.run("restore", str(backup), "--force", "--user", "admin")
        _add(s.data, [(f"Nouveau{i}", "Eleve") for i in range(10)])  # the teachers type again what was lost,
        _add(s.data, [(f"Suivant{i}", "Eleve") for i in range(15)])  # and what came since
        # Released before any sync: the school does not know yet that the district holds a release 2.
        r = s.run("release", CAMPAIGN, "--approve")
        assert "release 2" in r.out
        s.run("sync")
        # The district keeps the release 2 it holds (a number already held is never replaced), and the school's
        # log does not say its own release 2 (45 pupils) arrived. The school took the district's back, and
        # signed its own again as release 3, which goes at the next sync: nobody had to approve it again.
        assert _district_releases(d) == held and _district_entry(d)["cohort"] == 30
        assert _log(s)[2] == [{"cohort": 45, "receipt": None}]
        assert s.query("SELECT 1 FROM events WHERE kind = 'taken_back'")
        s.run("sync")
        assert sorted(_district_releases(d)) == [1, 2, 3] and _district_releases(d)[2] == held[2]
        assert (_district_entry(d)["release"], _district_entry(d)["cohort"]) == (3, 45)
        assert [e["receipt"] is not None for e in _log(s)[3]] == [True]

        # Ten pupils now à besoin: 35 at seuil 2, against 45 (its own releases 2 and 3) and 20 (release 1), its
        # history would let that go; against the 30 of the release 2 the district holds, 5 pupils would stand out.
        last = [(f"Suivant{i}", "Eleve") for i in range(10)]
        _add(s.data, last, score_all=False, again=True)
        r = s.run("release", CAMPAIGN, "--approve", check=False)
        assert r.code != 0 and '"above threshold 2" count would move by only 5' in r.err, (r.out, r.err)
        _add(s.data, [(f"Tardif{i}", "Eleve") for i in range(10)])  # ten more at seuil 2: 45, and 10 à besoin
        r = s.run("release", CAMPAIGN, "--approve")
        assert "release 4" in r.out, r.out
        s.run("sync")
        s.run("sync")  # and again: nothing left to refuse
        assert sorted(_district_releases(d)) == [1, 2, 3, 4]
        assert _district_releases(d)[2] == held[2]  # release 2 was never rewritten
        entry = _district_entry(d)
        assert (entry["release"], entry["cohort"]) == (4, 55)
        assert entry["exercises"]["fr-comprendre-mots"]["besoin"] == 10
        assert [e["receipt"] is not None for e in _log(s)[4]] == [True]
        # The unreceived release 2 no longer waits (the district took release 3): `preau status` says nothing waits.
        assert json.loads(s.run("status", "--json").out)["unacknowledged"] == []
    finally:
        d.stop()
