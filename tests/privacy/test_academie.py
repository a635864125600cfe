"""One level up with real processes: an académie, a district below it, schools below the district; and what
a curious académie can learn from what it is sent (issue 11, attacks 3 and 6; docs/privacy.md).

Each node is its own data folder and `preau serve` process (the schools only
run commands); every step is the `preau` command a person would run. The
campaign is loaded at the académie only, so the schools can have it only if it
came down through the district.

School b (48 pupils, 10 of them assessed on two more exercises) releases and
the district syncs up, then school a (20 pupils, 10 of them on the two more
exercises; an aggregate needs 2 schools, and so does each row) releases; a late pupil is assessed at b, too few to move any row; the académie closes the campaign, b makes its closing release, and the
district's counts go up; then school c, late, joins and makes its closing
release, and the district syncs up again. Everything the district
sent up is in its transparency log, and the académie tries three things:

- differencing (attack 3): subtract two aggregates to get one school's row;
- margins (attack 6): b's cohort moving while every row of b is held back;
- margins across rows (attack 6): a total hidden by complementary suppression,
  taken from another row's total, giving back the cells it hid.

The test runs twice. Protected: counts go up at closing, and c's late release
is held back (the difference would be one school's row); b's closing release
has the cohort of its first; no shown total gives the hidden one back. With
the hooks `one_aggregate` and `margins` on the district and `margins` on
school b (node/testhooks.py), each attack succeeds.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import itertools
import json

import pytest

from e2e_world import World, wait_for
from e2e_world import academie as new_academie
from preau.crdt.campaign import GROUPS
from preau.crdt.disclosure import recomputable_cells
from preau.crdt.documents import ReleaseContent, Row
from preau.crdt.schema import COLUMNS
from preau.node import actions

pytestmark = pytest.mark.slow

SMALL = 10  # small_cell_max of the sample campaign (the national floor)
# Two exercises only schools a and b have entered, 10 pupils each: in the aggregate 20 pupils split 10/10 on the
# first (two small cells the total gives back, so suppression hides that total) and 12/8 on the second (whose
# total would give it back). Each school has half of each part.
SPLIT = {"ma-problemes": ((0, 10), (2, 10)), "ma-assemblage": ((1, 12), (3, 8))}  # (score, pupils) besoin, fragile


def _even(campaign):
    """b (and a): pupil i besoin, fragile, seuil 2 or absent by i mod 4 on every exercise but the split ones,
    so every cell of an aggregate of a and b, with or without c, is 0 or above 10: none is hidden."""
    def adjust(classes) -> None:
        pupils = [p for c in classes for p in c.pupils]
        for i, pupil in enumerate(pupils):
            group = ("besoin", "fragile", "seuil2", "absent")[i % 4]
            for ex in campaign.exercises:
                if ex.id not in SPLIT:
                    t1, t2 = ex.thresholds
                    pupil.results[ex.id] = (group, {"besoin": 0, "fragile": t1, "seuil2": t2, "absent": None}[group])
        _without_split(classes)
    return adjust


def _without_split(classes) -> None:
    for pupil in (p for c in classes for p in c.pupils):
        for ex in SPLIT:
            pupil.results.pop(ex, None)


def _split(classes) -> None:
    pupils = [p for c in classes for p in c.pupils]
    for ex, parts in SPLIT.items():
        scores = [score for score, n in parts for _ in range(n // 2)]
        for pupil, score in zip(pupils, scores):  # the first 10 pupils; the others did not do these two
            pupil.results[ex] = ("besoin" if score == parts[0][0] else "fragile", score)


def _guessed_totals(content: ReleaseContent) -> dict:
    """A reader's guess at hidden cells: a row that hides its total counts the pupils another row counts
    (its total, or the sum of its cells when all are shown); the cells that guess pins down."""
    out = {}
    for row in content.rows:
        if isinstance(row.total, int):
            continue
        for other in content.rows:
            shown_all = all(isinstance(v, int) for v in other.cells)
            if other is row or not (isinstance(other.total, int) or shown_all):
                continue
            guess = other.total if isinstance(other.total, int) else sum(other.cells)
            rest = guess - sum(v for v in row.cells if isinstance(v, int))
            hidden = [c for c in COLUMNS if not isinstance(row.get(c), int)]
            pinned = recomputable_cells(Row(row.exercise, row.cells, guess), SMALL)
            if pinned and len(hidden) == len(pinned):  # every hidden cell pinned: solve them from the bounds
                values = _solve(row, hidden, rest)
                if values is not None:
                    out[row.exercise] = values
    return out


def _solve(row: Row, hidden: list, rest: int) -> dict | None:
    options = [range(1, SMALL + 1) if str(row.get(c)).startswith("≤") else [0, *range(SMALL + 1, rest + 1)]
               for c in hidden]
    found = [combo for combo in itertools.product(*options) if sum(combo) == rest]
    return dict(zip(hidden, found[0])) if len(found) == 1 else None


def _sent(node, kind: str) -> list[tuple[ReleaseContent, bool]]:
    """What a node signed and sent for one kind of document, in order (its transparency log), and
    whether each was acknowledged."""
    rows = node.query("SELECT content, receipt FROM transparency WHERE doc_id LIKE ? ORDER BY number", f"{kind}:%")
    return [(ReleaseContent.from_dict(json.loads(r["content"])), bool(r["receipt"])) for r in rows]


def _cells(content: ReleaseContent) -> dict:
    return {(r.exercise, c): r.get(c) for r in content.rows for c in (*COLUMNS, "total")}


def _subtract(earlier: ReleaseContent, later: ReleaseContent) -> dict:
    """What the académie gets by subtracting two aggregates: every number shown in both."""
    out = {"schools": later.schools_contributing - earlier.schools_contributing}
    if isinstance(later.cohort, int) and isinstance(earlier.cohort, int):
        out["cohort"] = later.cohort - earlier.cohort
    before = _cells(earlier)
    for k, v in _cells(later).items():
        if isinstance(v, int) and isinstance(before.get(k), int):
            out[k] = v - before[k]
    return out



def _recovered_rows(counted: list[ReleaseContent], school: ReleaseContent) -> list[tuple[dict, dict]]:
    """Pairs of aggregates whose difference is one school's row: every cell shown in both is that school's."""
    row = _cells(school)
    out = []
    for i, earlier in enumerate(counted):
        for later in counted[i + 1:]:
            diff = _subtract(earlier, later)
            cells = {k: v for k, v in diff.items() if isinstance(k, tuple)}
            if diff["schools"] == 1 and cells and all(row[k] == v for k, v in cells.items()):
                out.append((diff, cells))
    return out


@pytest.mark.parametrize("protection", ["on", "off"])
def test_campaign_down_and_statistics_up_through_a_district_to_its_academie(tmp_path, protection):
    w = World(tmp_path)  # w.district is the district; the académie sits above it
    academie = new_academie(tmp_path)
    for n, name in enumerate(("b", "c", "a")):
        w.add_school(name, 31 * n)
    w.init_all()
    b, c, a = w.schools.values()
    if protection == "off":
        w.district.unprotect = ("one_aggregate", "margins")
        b.unprotect = ("margins",)
    w.district.configure(sync_interval=3600, backoff_max=3600)  # the district syncs only when the test says
    academie.start()
    w.district.start()
    try:
        actions.load_campaign(academie.settings(), campaign=w.campaign, file="debut-cp")
        invitation = academie.cli("invite", "--uai", w.district.uai, "--district", "--allow-loopback").stdout.strip()
        assert "Joined the académie" in w.district.cli("join", invitation).stdout
        # The district holds the académie's campaign and its own re-signed copy, the one its schools take.
        owners = {r["owner"] for r in w.district.query("SELECT owner FROM documents WHERE kind = 'campaign'")}
        assert owners == {academie.key, w.district.key}

        w.join(b)
        [campaign_doc] = b.query("SELECT owner FROM documents WHERE kind = 'campaign'")
        assert campaign_doc["owner"] == w.district.key
        w.fill(b, [24, 24], seed=400, adjust=lambda classes: (_even(w.campaign)(classes), _split(classes)))
        w.release(b)
        assert "acknowledged" in b.cli("sync").stdout
        w.district.cli("sync")
        w.join(a)  # a second school: one school's aggregate would be its row, and is withheld (too_few_schools)
        w.fill(a, [20], seed=401, adjust=lambda classes: (_even(w.campaign)(classes), _split(classes)))
        w.release(a)
        assert "acknowledged" in a.cli("sync").stdout

        w.fill(b, [1], seed=403, adjust=_without_split)  # a late pupil: too few to move any of b's rows
        b.classes.pop()  # (held back: the counts below are the released pupils')

        # The académie closes the campaign (a new version, closing yesterday); it comes down through the
        # district to b, which makes its closing release; then the district's counts go up.
        closed = dataclasses.replace(w.campaign, closes=(_dt.date.today() - _dt.timedelta(days=1)).isoformat())
        actions.load_campaign(academie.settings(), campaign=closed, file="debut-cp")

        w.district.cli("sync")  # the académie's new version comes down...
        w.district.cli("sync")  # ...the district re-signs it for its schools (and its counts go up)
        b.cli("sync")
        b.cli("release", w.campaign.id, "--approve")
        assert any(s.final for s, _ in _sent(b, "release"))
        b.cli("sync")

        def acknowledged(n):
            w.district.cli("sync")
            sent = _sent(w.district, "aggregate")
            counted = [s for s, _ in sent if s.status == "published" and s.final]
            return [s for s, _ in sent] if len(counted) >= n and all(ack for _, ack in sent) else None
        wait_for(lambda: acknowledged(1), timeout=90, what="the district's counts acknowledged by the académie")

        # School c, late: it joins after closing and makes its (closing) release; the district syncs up.
        w.join(c)
        w.fill(c, [25], seed=402, adjust=_without_split)
        w.release(c)
        assert "acknowledged" in c.cli("sync").stdout
        sent = acknowledged(1)
        assert c.key in {r["owner"] for r in w.district.query("SELECT owner FROM stats_entries")}
        kinds = {r["kind"] for r in academie.query("SELECT kind FROM documents")}
        assert "release" not in kinds and "aggregate" in kinds

        # The académie's figures are the generated counts of the schools its district's counts went up with.
        behind = [a, b] if protection == "on" else [a, b, c]
        got = json.loads(academie.cli("stats", w.campaign.id, "--format", "json").stdout)
        assert (got["districts_contributing"], got["schools_represented"]) == (1, len(behind))
        expected = w.expected(behind)
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
        assert bounds  # b's split rows are small, and the district hides them
        table = academie.cli("stats", w.campaign.id).stdout
        assert f"1 district(s) contributing, covering {len(behind)} school(s)" in table and "lower bound" in table

        # What the académie tries with everything it was sent.
        counted = [s for s in sent if s.status == "published"]
        [c_release] = [s for s, _ in _sent(c, "release")]
        recovered = _recovered_rows(counted, c_release)  # differencing
        b_first, b_final = [s for s, _ in _sent(b, "release") if s.status == "published"]
        assert b_final.final and b_final.rows == b_first.rows  # the late pupil was held back on every row
        final = [s for s in counted if s.final][0]
        assert not isinstance(final.row("ma-problemes").total, int)  # suppression hid the 10/10 total (a's and b's)
        guessed = _guessed_totals(final)  # that total taken from another row's
        if protection == "on":
            assert [s.reason for s in sent if s.status == "withheld"] == ["until_closing"]
            assert len(counted) == 1  # c's late release was held back: it would be the difference
            assert recovered == []
            assert b_final.cohort == b_first.cohort
            assert guessed == {}
        else:
            diff, cells = recovered[-1]  # the aggregate before c and the one after: c's row, exactly
            assert diff["cohort"] == c_release.cohort
            whole = {k: v for k, v in _cells(c_release).items() if k[0] not in SPLIT}  # (a's and b's rows stay hidden)
            assert whole.items() <= cells.items()  # every cell and total of c's row on the exercises it entered
            assert any(1 <= v <= SMALL for (_, col), v in cells.items() if col != "total")  # small cells too
            assert b_final.cohort == b_first.cohort + 1  # the late pupil, through the margin alone
            (_, besoin), (_, fragile) = SPLIT["ma-problemes"]  # a's and b's together
            assert b_first.row("ma-problemes").get("besoin") * 2 == besoin
            assert guessed == {"ma-problemes": {"besoin": besoin, "fragile": fragile}}
    finally:
        academie.stop()
        w.stop_all()
