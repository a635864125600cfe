import itertools
import json
import random

import pytest

from preau.crdt import statistics as statistics_module
from preau.crdt.errors import AggregateAlreadySentError, CrdtUsageError, DocumentError
from preau.crdt.signing import verify_release
from preau.crdt.statistics import CampaignStatistics, Spread, build_aggregate

from crdt_fixtures import NOW, School, outcomes_for, seed, with_late_batch


@pytest.fixture
def verified(campaign):
    """Three schools, two releases each, and a small school withheld at closing."""
    out = []
    for n, size in ((1, 20), (2, 30), (3, 25)):
        s = School(n, campaign)
        pupils = [f"s{n}p{i}" for i in range(size)]
        s.publish(outcomes_for(pupils, campaign, random.Random(n)))
        s.publish(with_late_batch(s.outcomes, campaign), now=NOW + 10)
        out += [verify_release(s.doc, sig, s.owner, 0) for sig in s.signed]
    small = School(4, campaign)
    small.publish(outcomes_for([f"tiny{i}" for i in range(5)], campaign, random.Random(9)), closing=True)
    out.append(verify_release(small.doc, small.signed[-1], small.owner, 0))
    return out


def test_counts_rates_schools_and_spread(campaign, verified):
    stats = CampaignStatistics(campaign.id)
    for v in verified:
        stats.add(v)
    assert stats.schools_contributing == 3 and stats.schools_withheld == 1
    ex = stats.exercise("fr-mots")
    latest = [v for v in verified if v.release == 2]
    assert ex.counts["besoin"] == sum(v.content.row("fr-mots").get("besoin") for v in latest)
    scored = sum(ex.counts[g] for g in ("besoin", "fragile", "seuil2"))
    assert ex.rates["seuil2"] == ex.counts["seuil2"] / scored
    assert ex.schools_contributing == 3
    school_rates = sorted(
        v.content.row("fr-mots").get("seuil2") / sum(v.content.row("fr-mots").get(g) for g in ("besoin", "fragile", "seuil2"))
        for v in latest
    )
    assert ex.spread["seuil2"] == Spread(school_rates[0], (school_rates[0] + school_rates[1]) / 2, school_rates[1],
                                         (school_rates[1] + school_rates[2]) / 2, school_rates[2])
    assert stats.exercise("fr-lire-texte").counts["pending"] > 0


def test_newer_release_replaces_older_and_older_is_ignored(campaign, verified):
    stats = CampaignStatistics(campaign.id)
    first, second = verified[0], verified[1]
    assert stats.add(second) is True
    assert stats.add(first) is False
    assert stats.release_of(first.owner) == 2
    assert stats.exercise("fr-mots").counts == {c: int(second.content.row("fr-mots").get(c)) for c in stats.exercise("fr-mots").counts}


def test_any_arrival_order_gives_identical_statistics(campaign, verified):
    results = set()
    for perm in itertools.islice(itertools.permutations(verified), 0, None, 997):
        stats = CampaignStatistics(campaign.id)
        for v in perm:
            stats.add(v)
        results.add(json.dumps(stats.to_dict(), sort_keys=True))
        results.add(json.dumps({e: stats.exercise(e).__dict__ for e in stats.exercise_ids()}, sort_keys=True, default=repr))
    assert len(results) == 2


def test_round_trip_through_a_dict(campaign, verified):
    stats = CampaignStatistics(campaign.id)
    for v in verified:
        stats.add(v)
    again = CampaignStatistics.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert again == stats
    assert again.exercise("fr-mots") == stats.exercise("fr-mots")
    with pytest.raises(DocumentError, match="rebuild them from the verified releases"):
        CampaignStatistics.from_dict({"version": 1, "campaign": "x", "schools": {"a": {}}})


def test_statistics_take_school_releases_of_their_campaign_only(campaign, verified):
    with pytest.raises(CrdtUsageError, match="not 'other-campaign'"):
        CampaignStatistics("other-campaign").add(verified[0])


def test_aggregate_hides_small_cells_and_keeps_its_pattern(campaign, verified):
    stats = CampaignStatistics(campaign.id)
    for v in verified:
        stats.add(v)
    agg = build_aggregate(stats, campaign, release=1, final=True)
    assert agg.scope == "district" and agg.kind == "aggregate"
    assert (agg.schools_contributing, agg.schools_withheld) == (3, 1)
    for row in agg.rows:
        assert not any(isinstance(v, int) and 1 <= v <= 10 for v in row.cells)
    hidden = {(r.exercise, c) for r in agg.rows for c, v in zip(("besoin", "fragile", "seuil2", "absent", "pending"), r.cells) if not isinstance(v, int)}
    assert hidden
    with pytest.raises(CrdtUsageError, match="must be above the previous"):
        build_aggregate(stats, campaign, release=1, previous=agg, final=True)


def test_counts_go_up_once_at_closing(campaign, verified):
    """Before closing the aggregate says only "at closing"; after the one with counts, nothing more."""
    stats = CampaignStatistics(campaign.id)
    for v in verified:
        stats.add(v)
    early = build_aggregate(stats, campaign, release=1)
    assert (early.status, early.reason, early.rows, early.cohort) == ("withheld", "until_closing", (), None)
    assert (early.schools_contributing, early.schools_withheld) == (0, 0)
    agg = build_aggregate(stats, campaign, release=2, previous=early, final=True)
    assert agg.status == "published" and agg.final
    with pytest.raises(AggregateAlreadySentError) as err:
        build_aggregate(stats, campaign, release=3, previous=agg, final=True)
    assert err.value.code == "aggregate_already_sent"


def test_a_second_aggregate_keeps_the_pattern_when_the_one_aggregate_rule_is_off(campaign, verified, monkeypatch):
    """The stable pattern still holds where more than one aggregate goes up (tests only, or an old district)."""
    monkeypatch.setattr(statistics_module, "ONE_AGGREGATE", False)
    stats = CampaignStatistics(campaign.id)
    for v in verified:
        stats.add(v)
    agg = build_aggregate(stats, campaign, release=1)
    hidden = {(r.exercise, c) for r in agg.rows for c, v in zip(("besoin", "fragile", "seuil2", "absent", "pending"), r.cells) if not isinstance(v, int)}
    agg2 = build_aggregate(stats, campaign, release=2, previous=agg)
    hidden2 = {(r.exercise, c) for r in agg2.rows for c, v in zip(("besoin", "fragile", "seuil2", "absent", "pending"), r.cells) if not isinstance(v, int)}
    assert hidden and hidden <= hidden2


def test_the_cohort_stays_home_when_a_row_hides_its_total(campaign, verified):
    stats = CampaignStatistics(campaign.id)
    for v in verified:
        stats.add(v)
    agg = build_aggregate(stats, campaign, release=1, final=True)
    hides_total = any(not isinstance(r.total, int) for r in agg.rows)
    assert (agg.cohort is None) == hides_total
    assert agg.cohort in (None, stats.cohort())


def test_aggregate_without_contributors_is_withheld(campaign):
    agg = build_aggregate(CampaignStatistics(campaign.id), campaign, release=1, final=True)
    assert agg.status == "withheld" and agg.rows == ()


# -- one level up: an académie merges its districts' aggregates ------------------------------------------

COLS = ("besoin", "fragile", "seuil2", "absent", "pending")


def _district_aggregates(campaign, groups):
    """Each group of schools merged by its own district, whose aggregate is written, signed and verified."""
    from preau.crdt.documents import write_release
    from preau.crdt.schema import new_document
    from preau.crdt.crypto import public_key
    from preau.crdt.signing import sign_release

    out, exact = [], []
    for n, schools in enumerate(groups, start=50):
        stats = CampaignStatistics(campaign.id)
        for v in schools:
            stats.add(v)
        exact.append(stats)
        key = seed(n)
        doc = new_document("aggregate", public_key(key), campaign=campaign.id)
        write_release(doc, build_aggregate(stats, campaign, release=1, final=True))
        signed = sign_release(doc, key, now=NOW)
        out.append(verify_release(doc, signed, public_key(key), 0, kinds=("aggregate",)))
    return out, exact


def test_an_academie_sums_aggregates_and_never_passes_a_bound_off_as_a_count(campaign, verified):
    latest = [v for v in verified if v.release == 2 or v.content.final]
    fifth = School(5, campaign)  # the second district's second school (one school alone sends no counts up)
    fifth.publish(outcomes_for([f"s5p{i}" for i in range(22)], campaign, random.Random(5)))
    latest.append(verify_release(fifth.doc, fifth.signed[-1], fifth.owner, 0))
    aggregates, districts = _district_aggregates(campaign, [latest[:2], latest[2:]])
    academie = CampaignStatistics(campaign.id)
    for a in aggregates:
        assert academie.add(a)
    assert academie.schools_contributing == 2  # districts
    assert academie.schools_represented == sum(d.schools_contributing for d in districts) == 4
    some_hidden = False
    for ex in academie.exercise_ids():
        got = academie.exercise(ex)
        truth = {c: sum(d.exercise(ex).counts[c] for d in districts) for c in COLS}
        for c in COLS:
            if got.hidden[c]:
                some_hidden = True
                assert got.counts[c] <= truth[c] and got.shown(c) == f"≥{got.counts[c]}"
            else:
                assert got.counts[c] == truth[c] and got.shown(c) == truth[c]
        if got.exact:
            assert got.rates == {g: r for g, r in _rates_of(truth).items()}
        else:
            assert got.rates["absent"] is None
        if not got.exact:  # no spread drawn from the districts that happened to hide nothing
            assert all(v is None for v in got.spread.values())
        # Totals are exact when no district hid one.
        assert got.total in (None, sum(truth.values()))
    assert some_hidden  # the fixture's small cells are hidden by the districts

    # The académie's own aggregate (for the national level) shows a hidden part as hidden, never as a number.
    up = build_aggregate(academie, campaign, release=1, final=True)
    assert up.schools_contributing == 4  # schools, not districts: the level above knows whom it represents
    assert up.schools_withheld == sum(d.schools_withheld for d in districts)
    for row in up.rows:
        e = academie.exercise(row.exercise)
        for c, cell in zip(COLS, row.cells):
            if e.hidden[c]:
                assert cell == "x", (row.exercise, c, cell)
            if isinstance(cell, int):
                assert cell == e.counts[c] and not e.hidden[c] and not 1 <= cell <= campaign.policy.small_cell_max


def _rates_of(counts):
    scored = sum(counts[g] for g in ("besoin", "fragile", "seuil2"))
    everyone = sum(counts.values())
    return {**{g: counts[g] / scored for g in ("besoin", "fragile", "seuil2")}, "absent": counts["absent"] / everyone}


def test_statistics_refuse_a_campaign_document(campaign, verified):
    from dataclasses import replace
    bad = replace(verified[0], signed=replace(verified[0].signed, kind="campaign"))
    with pytest.raises(CrdtUsageError, match="school releases and district aggregates only"):
        CampaignStatistics(campaign.id).add(bad)


def test_a_later_aggregate_is_held_when_the_cells_hidden_in_both_move_by_a_few(campaign):
    """Totals up 14, the one shown cell up 11: the two hidden cells moved by 3 together, which a reader
    gets by subtraction even though every number shown moved by more than 10."""
    from preau.crdt.documents import ReleaseContent, Row
    from preau.crdt.statistics import later_aggregate_problem

    def agg(release, seuil2, total):
        row = Row(campaign.exercises[0].id, ("≤10", "≤10", seuil2, 0, 0), total)
        return ReleaseContent(campaign.id, release, "published", "", campaign.policy, (row,), None, final=True,
                              scope="district", schools_contributing=4, schools_withheld=0)

    none = CampaignStatistics(campaign.id)
    assert later_aggregate_problem(agg(1, 30, 45), none, agg(2, 41, 56), none) is None  # hidden cells: +0
    why = later_aggregate_problem(agg(1, 30, 45), none, agg(2, 41, 59), none)
    assert why is not None and "hidden cells moves by 3" in why


def test_a_member_that_rotated_its_key_counts_as_one_member_moving(campaign):
    """One level up: a district rotates its key, so the académie's statistics hold its old key's aggregate in
    what the académie's counted aggregate was built from and its new key's now. Its late pupils alone are one
    member's rows (held), not two members' (review5); with another district's late pupils it goes up."""
    from preau.crdt.documents import ReleaseContent, Row

    def district(seuil2, schools=3):
        rows = tuple(Row.from_counts(ex.id, {"besoin": 20, "fragile": 30, "seuil2": seuil2})
                     for ex in campaign.exercises)
        return ReleaseContent(campaign.id, 1, "published", "", campaign.policy, rows, 50 + seuil2, final=True,
                              scope="district", schools_contributing=schools, schools_withheld=0)

    def academie(**members):
        stats = CampaignStatistics(campaign.id)
        for key, content in members.items():
            stats.replace_entry(key, {"release": 1, "time": NOW, "heads": "00", "content": content.to_dict()})
        return stats

    old, new, other = "a1" * 32, "a2" * 32, "bb" * 32
    basis = academie(**{old: district(40), other: district(45)})
    first = build_aggregate(basis, campaign, release=1, final=True)
    moved = academie(**{new: district(52), other: district(45)})  # the rotated district, 12 more at seuil 2
    with pytest.raises(AggregateAlreadySentError, match="one school's rows only") as held:
        build_aggregate(moved, campaign, release=2, previous=first, final=True, sent=[(first, basis)],
                        member_of={old: new})
    assert held.value.code == "aggregate_held"
    both = academie(**{new: district(52), other: district(57)})  # and 12 more in the other district
    second = build_aggregate(both, campaign, release=2, previous=first, final=True, sent=[(first, basis)],
                             member_of={old: new})
    assert (second.cohort, second.schools_contributing) == (first.cohort + 24, 6)


def test_an_aggregate_of_one_school_is_withheld_as_too_few_schools(campaign):
    """Review finding (review5, medium): one published school (64 pupils) and three withheld gave an aggregate
    of 1 school with its exact figures (only its small cells hidden): that school's row. Fewer than 2 schools
    behind the figures: withheld, reason too_few_schools, no number; a pool of small schools counts as its own
    schools, and a second school brings the counts back."""
    from preau.crdt.documents import ReleaseContent, Row

    rows = tuple(Row.from_counts(e.id, {"besoin": 14, "fragile": 17, "seuil2": 31, "absent": 2})
                 for e in campaign.exercises)
    one = ReleaseContent(campaign.id, 1, "published", "", campaign.policy, rows, 64, final=True)
    small = ReleaseContent(campaign.id, 1, "withheld", "small_cohort", campaign.policy, final=True)

    def stats_of(**members):
        stats = CampaignStatistics(campaign.id)
        for key, content in members.items():
            stats.replace_entry(key, {"release": 1, "time": NOW, "heads": "00", "content": content.to_dict()})
        return stats

    alone = build_aggregate(stats_of(aa=one, bb=small, cc=small, dd=small), campaign, release=1, final=True)
    assert (alone.status, alone.reason, alone.rows, alone.cohort) == ("withheld", "too_few_schools", (), None)
    assert (alone.schools_contributing, alone.schools_withheld) == (0, 4)
    assert build_aggregate(stats_of(bb=small), campaign, release=1, final=True).reason == "no_school_contributing"

    pool = ReleaseContent(campaign.id, 1, "published", "", campaign.policy, rows, 64, final=True, scope="pool",
                          schools_contributing=3, schools_withheld=0)
    pooled = build_aggregate(stats_of(pp=pool), campaign, release=1, final=True)
    assert (pooled.status, pooled.schools_contributing, pooled.cohort) == ("published", 3, 64)
    two = build_aggregate(stats_of(aa=one, ee=one, bb=small), campaign, release=1, final=True)
    assert (two.status, two.schools_contributing, two.schools_withheld, two.cohort) == ("published", 2, 1, 128)
