"""Statistics kept up to date incrementally, the one definition of a percentage, the per-member table and
progress across a cohort's campaigns (crdt/statistics.py)."""
import random
import statistics as pystats

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preau.crdt.campaign import parse_campaign
from preau.crdt.documents import ReleaseContent, Row
from preau.crdt.errors import CrdtUsageError
from preau.crdt.schema import COLUMNS
from preau.crdt.statistics import (
    CampaignStatistics,
    _quantiles,
    build_aggregate,
    cohort_series,
    cohort_year,
    member_table,
    percent_of,
    percents,
    progress,
    shares,
)

from crdt_fixtures import CAMPAIGN

SCORED = ("besoin", "fragile", "seuil2")


def content(campaign, rows, *, release=1, status="published", scope="school", cohort=None, schools=None):
    rows = tuple(Row(ex, tuple(cells), sum(cells) if all(isinstance(c, int) for c in cells) else "x")
                 for ex, cells in rows.items()) if status == "published" else ()
    if cohort is None and status == "published":
        cohort = max((sum(r.cells[:3]) for r in rows if isinstance(r.total, int)), default=0)
    return ReleaseContent(campaign.id, release, status, "" if status == "published" else "small_cohort",
                          campaign.policy, rows, cohort, scope=scope, schools_contributing=schools)


def entry(c, *, release=1, time=0):
    return {"release": release, "time": time, "heads": "00" * 32, "content": c.to_dict()}


def random_rows(campaign, rng, *, zero=False):
    out = {}
    for ex in campaign.exercises:
        if rng.random() < 0.1:
            continue
        cells = [0 if zero and rng.random() < 0.3 else rng.randint(0, 12) for _ in COLUMNS]
        out[ex.id] = cells
    return out


def reference(stats_dict):
    """The statistics recomputed from scratch, the obvious way (what the incremental sums must equal)."""
    published = [v["content"] for v in stats_dict["schools"].values() if v["content"]["status"] == "published"]
    out = {}
    for ex in sorted({e for c in published for e in c["exercises"]}):
        counts = {c: 0 for c in COLUMNS}
        members, rates = 0, {g: [] for g in SCORED}
        for c in published:
            row = c["exercises"].get(ex)
            if not row or row["total"] == 0:
                continue
            members += 1
            for col in COLUMNS:
                counts[col] += row[col]
            scored = sum(row[g] for g in SCORED)
            for g in SCORED:
                if scored:
                    rates[g].append(row[g] / scored)
        out[ex] = (counts, members, {g: _reference_spread(v) for g, v in rates.items()})
    return out


def _reference_spread(values):
    if not values:
        return None
    v = sorted(values)
    if len(v) == 1:
        return (v[0],) * 5
    return (v[0], *pystats.quantiles(v, n=4, method="inclusive"), v[-1])


def test_running_sums_equal_a_recomputation_after_any_sequence_of_arrivals_replacements_and_removals(campaign):
    rng = random.Random(7)
    stats = CampaignStatistics(campaign.id)
    owners = [f"{n:064x}" for n in range(25)]
    for step in range(400):
        owner = rng.choice(owners)
        roll = rng.random()
        if roll < 0.15:
            stats.replace_entry(owner, None)
        elif roll < 0.25:
            stats.replace_entry(owner, entry(content(campaign, {}, status="withheld")))
        else:
            stats.replace_entry(owner, entry(content(campaign, random_rows(campaign, rng, zero=True))))
        if step % 20 == 0 or step == 399:
            truth = reference(stats.to_dict())
            assert stats.exercise_ids() == tuple(truth)
            for ex, (counts, members, spread) in truth.items():
                got = stats.exercise(ex)
                assert dict(got.counts) == counts and got.schools_contributing == members
                assert got.total == sum(counts.values())
                for g in SCORED:
                    s = got.spread[g]
                    assert (None if s is None else (s.min, s.q1, s.median, s.q3, s.max)) == spread[g]
            fresh = CampaignStatistics.from_dict(stats.to_dict())
            assert fresh == stats
            assert stats.schools_contributing == fresh.schools_contributing
            assert stats.schools_withheld == sum(v["content"]["status"] == "withheld" for v in stats.to_dict()["schools"].values())
            assert stats.cohort() == fresh.cohort()


def test_reading_an_exercise_does_not_walk_the_members(campaign):
    """A page costs the same whatever the number of schools: reading figures never touches the member set."""
    rng = random.Random(1)
    stats = CampaignStatistics(campaign.id)
    for n in range(300):
        stats.replace_entry(f"{n:064x}", entry(content(campaign, random_rows(campaign, rng))))

    class Untouchable(dict):
        def _refuse(self, *a, **k):
            raise AssertionError("the member set was walked to read a figure")
        items = values = keys = __iter__ = __len__ = _refuse

    stats._schools = Untouchable(stats._schools)
    for ex in stats.exercise_ids():
        e = stats.exercise(ex)
        assert e.schools_contributing > 0 and e.spread["seuil2"] is not None
    assert stats.schools_contributing == 300 and stats.cohort() > 0 and stats.schools_represented == 300


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=40))
def test_quartiles_are_those_of_the_standard_library(values):
    v = sorted(values)
    s = _quantiles(v)
    assert (s.min, s.q1, s.median, s.q3, s.max) == _reference_spread(v)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=500), min_size=len(COLUMNS), max_size=len(COLUMNS)))
def test_one_definition_of_a_percentage(cells):
    counts = dict(zip(COLUMNS, cells))
    sh, pc = shares(counts), percents(counts)
    assessed = counts["besoin"] + counts["fragile"] + counts["seuil2"]
    for g in SCORED:
        if assessed == 0:
            assert sh[g] is None and pc[g] is None
        else:  # absent and pending pupils are outside the base; rounded half up, exactly
            assert sh[g] == counts[g] / assessed
            assert pc[g] == _half_up(100 * counts[g], assessed)
    if assessed:
        assert abs(sum(sh[g] for g in SCORED) - 1) < 1e-9
    everyone = sum(cells)
    assert pc["absent"] == (None if everyone == 0 else _half_up(100 * counts["absent"], everyone))


def _half_up(num, den):
    from fractions import Fraction
    q = Fraction(num, den) + Fraction(1, 2)
    return q.numerator // q.denominator


def test_percent_rounding_is_half_up_where_floats_would_go_down():
    assert percent_of(57, 200) == 29  # 28.5 %: round() and 100 * 0.285 would both give 28
    assert percent_of(1, 8) == 13 and percent_of(0, 3) == 0 and percent_of(3, 3) == 100
    assert percent_of(1, 0) is None


def test_the_district_rate_excludes_absent_pupils_the_way_the_page_says(campaign):
    stats = CampaignStatistics(campaign.id)
    stats.replace_entry("aa" * 32, entry(content(campaign, {"fr-mots": [2, 3, 15, 5, 0]})))
    e = stats.exercise("fr-mots")
    assert e.rates["seuil2"] == 15 / 20 and percents(e.counts)["seuil2"] == 75  # not 15 / 25 = 60 %
    assert percents(e.counts)["absent"] == 20


# -- the per-member table --------------------------------------------------------------------------


def test_member_table_sorts_filters_and_keeps_withheld_members_without_figures(campaign):
    stats = CampaignStatistics(campaign.id)
    a, b, c, w = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
    stats.replace_entry(a, entry(content(campaign, {"fr-mots": [1, 1, 8, 0, 0], "ma-problemes": [5, 5, 0, 1, 0]})))
    stats.replace_entry(b, entry(content(campaign, {"fr-mots": [5, 0, 5, 2, 0], "ma-problemes": [0, 2, 8, 0, 0]})))
    stats.replace_entry(c, entry(content(campaign, {"ma-problemes": [1, 1, 8, 0, 0]})))
    stats.replace_entry(w, entry(content(campaign, {}, status="withheld")))

    table = member_table(stats, campaign)
    assert table.exercises == tuple(ex.id for ex in campaign.exercises)
    assert [r.member for r in table.rows] == [a, b, c, w]
    withheld = table.rows[-1]
    assert withheld.status == "withheld" and withheld.exercises == {} and withheld.cohort is None
    assert table.rows[0].exercises["fr-mots"].percents == {"besoin": 10, "fragile": 10, "seuil2": 80, "absent": 0}

    by_need = member_table(stats, campaign, sort=("fr-mots", "besoin"))
    assert [r.member for r in by_need.rows] == [b, a, c, w]  # c has no fr-mots row, w no figures: last
    ascending = member_table(stats, campaign, sort=("fr-mots", "besoin"), descending=False)
    assert [r.member for r in ascending.rows] == [a, b, c, w]

    maths = member_table(stats, campaign, subject="mathématiques")
    assert maths.exercises == ("ma-problemes",)
    with pytest.raises(CrdtUsageError, match="needs the campaign"):
        member_table(stats, subject="français")
    with pytest.raises(CrdtUsageError, match="no group"):
        member_table(stats, campaign, sort=("fr-mots", "nobody"))


def test_per_district_table_at_an_academie_gives_no_share_a_hidden_cell_makes_unknown(campaign):
    academie = CampaignStatistics(campaign.id)
    d1 = content(campaign, {"fr-mots": [12, 20, 80, 11, 0]}, scope="district", schools=5)
    d2 = content(campaign, {"fr-mots": ["≤10", 14, 60, "x", 0]}, scope="district", schools=3)
    academie.replace_entry("1" * 64, entry(d1))
    academie.replace_entry("2" * 64, entry(d2))
    rows = {r.member: r for r in member_table(academie, campaign).rows}
    assert rows["1" * 64].exercises["fr-mots"].percents["seuil2"] == percent_of(80, 112)
    hidden = rows["2" * 64].exercises["fr-mots"]
    assert hidden.counts["besoin"] == "≤10" and all(v is None for v in hidden.percents.values())
    assert rows["2" * 64].schools == 3 and academie.schools_represented == 8
    e = academie.exercise("fr-mots")
    assert e.shown("besoin") == "≥13" and e.rates["seuil2"] is None


# -- progress across a cohort's campaigns -----------------------------------------------------------


def _campaign(cid, level, year, opens, exercises):
    data = dict(CAMPAIGN, id=cid, level=level, school_year=year, opens=opens, closes=opens[:8] + "28")
    data["exercises"] = [{"id": i, "name": i, "subject": "français" if i.startswith("fr") else "mathématiques",
                          "score_kind": "items", "items": 15, "thresholds": [6, 10]} for i in exercises]
    return parse_campaign(data)


DEBUT_CP = _campaign("2026-debut-cp", "CP", "2026-2027", "2026-09-01", ["fr-mots", "ma-problemes", "fr-phrases"])
MI_CP = _campaign("2027-point-etape-cp", "CP", "2026-2027", "2027-01-11", ["fr-mots", "ma-problemes"])
DEBUT_CE1 = _campaign("2027-debut-ce1", "CE1", "2027-2028", "2027-09-01", ["fr-mots", "ma-calcul"])
OTHER = _campaign("2026-debut-ce1", "CE1", "2026-2027", "2026-09-01", ["fr-mots"])


def test_campaigns_group_by_cohort_in_the_order_they_opened():
    assert cohort_year(DEBUT_CP) == cohort_year(MI_CP) == cohort_year(DEBUT_CE1) == 2026
    assert cohort_year(OTHER) == 2025
    assert cohort_series([DEBUT_CE1, OTHER, MI_CP, DEBUT_CP]) == [[DEBUT_CP, MI_CP, DEBUT_CE1], [OTHER]]


def test_progress_gives_the_district_and_each_school_side_by_side_with_the_change():
    rng = random.Random(3)
    series, truth = [], {}
    for camp in (DEBUT_CP, MI_CP, DEBUT_CE1):
        stats = CampaignStatistics(camp.id)
        for n in range(6):
            rows = {ex.id: [rng.randint(0, 9), rng.randint(0, 9), rng.randint(5, 20), rng.randint(0, 2), 0]
                    for ex in camp.exercises}
            key = f"{n:064x}" if not (camp is DEBUT_CE1 and n == 0) else "f" * 64  # school 0 rotated its key
            stats.replace_entry(key, entry(content(camp, rows)))
            truth[(camp.id, n)] = rows
        series.append((camp, stats))

    district = progress(series)
    assert district.campaigns == (DEBUT_CP.id, MI_CP.id, DEBUT_CE1.id)
    keys = [r.key for r in district.rows]
    assert keys == ["fr-mots", "ma-problemes", "subject:français", "subject:mathématiques"]  # fr-phrases: one campaign only
    mots = district.rows[0]
    for camp, point in zip((DEBUT_CP, MI_CP, DEBUT_CE1), mots.points):
        counts = [sum(truth[(camp.id, n)]["fr-mots"][i] for n in range(6)) for i in range(5)]
        assert point.percents["seuil2"] == percent_of(counts[2], sum(counts[:3]))
    assert mots.change_points["seuil2"] == mots.points[2].percents["seuil2"] - mots.points[0].percents["seuil2"]
    problems = district.rows[1]
    assert problems.points[2] is None  # not assessed at début CE1
    assert problems.change_points["besoin"] == problems.points[1].percents["besoin"] - problems.points[0].percents["besoin"]
    maths = district.rows[3]  # the subject as a whole: results summed over its exercises
    ce1 = [sum(truth[(DEBUT_CE1.id, n)][e][i] for n in range(6) for e in ("ma-calcul",)) for i in range(5)]
    assert maths.points[2].percents["seuil2"] == percent_of(ce1[2], sum(ce1[:3]))

    school = progress(series, member="0" * 64, aliases={"f" * 64: "0" * 64})
    mots = school.rows[0]
    for camp, point in zip((DEBUT_CP, MI_CP, DEBUT_CE1), mots.points):
        cells = truth[(camp.id, 0)]["fr-mots"]
        assert point.counts == dict(zip(COLUMNS, cells))
    without_alias = progress(series, member="0" * 64)
    assert without_alias.rows[0].points[2] is None


def test_progress_refuses_campaigns_of_different_pupils():
    with pytest.raises(CrdtUsageError, match="one cohort"):
        progress([(DEBUT_CP, CampaignStatistics(DEBUT_CP.id)), (OTHER, CampaignStatistics(OTHER.id))])


def test_progress_of_a_withheld_school_has_no_figures():
    stats = CampaignStatistics(DEBUT_CP.id)
    stats.replace_entry("a" * 64, entry(content(DEBUT_CP, {}, status="withheld")))
    out = progress([(DEBUT_CP, stats)], member="a" * 64)
    assert all(p is None for r in out.rows for p in r.points)


def test_aggregate_from_incremental_statistics_is_unchanged_by_the_order_of_updates(campaign):
    rng = random.Random(11)
    entries = [(f"{n:064x}", entry(content(campaign, random_rows(campaign, rng)))) for n in range(12)]
    one, two = CampaignStatistics(campaign.id), CampaignStatistics(campaign.id)
    for k, e in entries:
        one.replace_entry(k, e)
    for k, e in reversed(entries):
        two.replace_entry(k, e)
    two.replace_entry(entries[0][0], None)
    two.replace_entry(*entries[0])
    assert build_aggregate(one, campaign, release=1, final=True) == build_aggregate(two, campaign, release=1, final=True)
