"""A curious district keeps every release it ever received and tries to single out pupils.

Each attack returns what it learned about fewer than `min_cohort` pupils. With the
policy on, nothing; with the policy switched off, the same attacks find pupils,
so these tests can fail.
"""
import random

import pytest

from preau.crdt import campaign as campaign_module
from preau.crdt.campaign import Policy
from preau.crdt.disclosure import PupilOutcome
from preau.crdt.schema import COLUMNS
from preau.crdt.signing import verify_release
from preau.crdt import statistics as statistics_module
from preau.crdt.errors import AggregateAlreadySentError
from preau.crdt.statistics import CampaignStatistics, build_aggregate

from crdt_fixtures import NOW, School, make_campaign
from test_disclosure import brute_force_attack

GROUPS4 = ("besoin", "fragile", "seuil2", "absent")
MIN_COHORT = 10  # what the attacks must not beat: the default policy, even when the policy is off


def _campaign(policy_on: bool):
    c = make_campaign()
    if policy_on:
        return c
    # parse_campaign and next_release refuse anything below the national floor: the test that switches the
    # policy off lowers the floor itself (monkeypatch) and builds the policy by hand
    from dataclasses import replace
    return replace(c, policy=Policy(min_cohort=1, min_batch=1, small_cell_max=0))


def _run(policy_on: bool, seed: int):
    """Three schools enter results one at a time (with corrections); the district keeps everything."""
    campaign = _campaign(policy_on)
    rng = random.Random(seed)
    sizes = {1: 24, 2: 18, 3: 6}  # school 3 is smaller than min_cohort
    schools = {n: School(n, campaign) for n in sizes}
    state = {n: {} for n in sizes}  # school -> (pupil, exercise) -> group
    timeline = {n: [] for n in sizes}  # per release: (content, true state at that time)
    scored = [e.id for e in campaign.exercises if e.thresholds]
    steps = [(n, f"s{n}-pupil{i}", ex) for n, size in sizes.items() for i in range(size) for ex in scored]
    rng.shuffle(steps)
    steps += rng.sample(steps, 15)  # corrections
    stats = CampaignStatistics(campaign.id)
    aggregates = []  # what the level above receives: (aggregate, true state of every school then)
    for t, (n, pupil, ex) in enumerate(steps):
        state[n][(pupil, ex)] = rng.choice(GROUPS4)
        closing = t == len(steps) - 1
        for m in ([n] if not closing else sizes):
            outcomes = [PupilOutcome(p, e, g) for (p, e), g in state[m].items()]
            d = schools[m].publish(outcomes, closing=closing, now=NOW + t)
            if d.release:
                timeline[m].append((d.content, dict(state[m])))
                s = schools[m]
                stats.add(verify_release(s.doc, s.signed[-1], s.owner, stats.release_of(s.owner)))
                # The district refreshes its aggregate after each release, as its node does; the one with
                # counts goes up at closing only (with the protection off: every time).
                previous = aggregates[-1][0] if aggregates else None
                try:
                    agg = build_aggregate(stats, campaign, release=len(aggregates) + 1, previous=previous, final=closing)
                except AggregateAlreadySentError:
                    continue
                if previous is not None and agg.to_dict() | {"release": 0} == previous.to_dict() | {"release": 0}:
                    continue
                aggregates.append((agg, {(k, p, e): g for k in sizes for (p, e), g in state[k].items()}))
    return campaign, schools, timeline, aggregates


def aggregate_differencing_attack(aggregates):
    """The level above subtracts successive district aggregates, knowing whose results changed."""
    found = []
    for (a, sa), (b, sb) in zip(aggregates, aggregates[1:]):
        for rb in b.rows:
            ra = a.row(rb.exercise)
            if ra is None or not all(isinstance(v, int) for v in (*ra.cells, *rb.cells)):
                continue
            delta = {c: rb.get(c) - ra.get(c) for c in COLUMNS}
            if not any(delta.values()):
                continue
            ex = rb.exercise
            changed = {(k, p) for (k, p, e) in sa.keys() | sb.keys() if e == ex and sa.get((k, p, e)) != sb.get((k, p, e))}
            truth = {c: 0 for c in COLUMNS}
            for k, p in changed:
                if (k, p, ex) in sb:
                    truth[sb[(k, p, ex)]] += 1
                if (k, p, ex) in sa:
                    truth[sa[(k, p, ex)]] -= 1
            if 0 < len(changed) < MIN_COHORT and truth == delta:
                found.append((ex, len(changed)))
    return found


def differencing_attack(campaign, timeline):
    """Subtract every pair of a school's releases; knowing (worst case) whose results changed in between."""
    found = []
    for n, releases in timeline.items():
        for (ci, si), (cj, sj) in ((a, b) for i, a in enumerate(releases) for b in releases[i + 1:]):
            for ex in (e.id for e in campaign.exercises):
                ri, rj = ci.row(ex), cj.row(ex)
                if ri is None or rj is None:
                    continue
                delta = {c: rj.get(c) - ri.get(c) for c in COLUMNS}
                if not any(delta.values()):
                    continue
                changed = {p for (p, e) in si.keys() | sj.keys() if e == ex and si.get((p, e)) != sj.get((p, e))}
                truth = {c: 0 for c in COLUMNS}
                for p in changed:
                    if (p, ex) in sj:
                        truth[sj[(p, ex)]] += 1
                    if (p, ex) in si:
                        truth[si[(p, ex)]] -= 1
                if 0 < len(changed) < MIN_COHORT and truth == delta:
                    found.append((n, ex, len(changed)))
    return found


def subtraction_attack(campaign, schools, timeline, visible=(1, 2)):
    """District total minus the schools it can see: recovers a hidden small school's counts?"""
    stats = CampaignStatistics(campaign.id)
    for n, s in schools.items():
        for signed in s.signed:
            stats.add(verify_release(s.doc, signed, s.owner, stats.release_of(s.owner)))
    agg = build_aggregate(stats, campaign, release=1, final=True)
    found = []
    hidden = [n for n in schools if n not in visible]
    for ex in (e.id for e in campaign.exercises):
        row = agg.row(ex)
        if row is None or not isinstance(row.total, int):
            continue
        seen = sum(timeline[n][-1][0].row(ex).total for n in visible if timeline[n] and timeline[n][-1][0].row(ex))
        residual = row.total - seen
        true_hidden = sum(1 for n in hidden for (p, e) in timeline[n][-1][1] if e == ex) if all(timeline[n] for n in hidden) else None
        if residual > 0 and residual < MIN_COHORT and residual == true_hidden:
            found.append((ex, residual))
    return found, agg


def small_cell_attack(agg):
    """Read or recompute aggregate cells of 1..10 pupils from the shown cells and totals."""
    found = []
    for row in agg.rows:
        for c, v in zip(COLUMNS, row.cells):
            if isinstance(v, int) and 1 <= v <= 10:
                found.append((row.exercise, c, v))
        for c, v in brute_force_attack(row, 10).items():
            found.append((row.exercise, c, v))
    return found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_curious_district_learns_nothing_with_the_policy_on(seed):
    campaign, schools, timeline, aggregates = _run(True, seed)
    assert sum(len(v) for v in timeline.values()) >= 4  # schools did publish along the way
    assert differencing_attack(campaign, timeline) == []
    found, agg = subtraction_attack(campaign, schools, timeline)
    assert found == []
    assert agg.schools_withheld == 1 and agg.schools_contributing == 2
    assert small_cell_attack(agg) == []
    assert [a.status for a, _ in aggregates] == ["withheld", "published"]  # "at closing", then counts once
    assert aggregate_differencing_attack(aggregates) == []
    assert not any(small_cell_attack(a) for a, _ in aggregates)


def test_curious_district_finds_pupils_with_the_policy_off(monkeypatch):
    monkeypatch.setattr(campaign_module, "FLOOR", Policy(0, 0, 0))
    monkeypatch.setattr(statistics_module, "ONE_AGGREGATE", False)
    campaign, schools, timeline, aggregates = _run(False, 1)
    assert differencing_attack(campaign, timeline)  # single pupils, release after release
    found, agg = subtraction_attack(campaign, schools, timeline)
    assert found  # the small school's counts, by subtraction
    assert small_cell_attack(agg)
    assert aggregate_differencing_attack(aggregates)
