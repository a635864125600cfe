"""Campaign versions cannot be used against pupils: thresholds are pinned at the first release that used them.

The attack (issue 11, item 4): the district re-publishes the campaign with
thresholds that move, each time moving at least `min_batch` pupils, so batching
lets every release through; from "how many scored under t" for every t it
rebuilds the exact per-score histogram. With the cut-offs pinned, every release
of the school counts the same scores at the same cut-offs: the district learns
the counts under the first thresholds and nothing else, however many versions
it publishes (docs/privacy.md, "Moving thresholds").
"""
from dataclasses import replace
import random

import pytest

from preau.crdt import disclosure
from preau.crdt.campaign import Policy, group_for
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release, pin_campaign
from preau.crdt.errors import CrdtUsageError

from crdt_fixtures import make_campaign

EX = "fr-mots"  # 15 items


def version(base, thresholds, policy=None):
    exercises = tuple(replace(e, thresholds=thresholds) if e.id == EX else e for e in base.exercises)
    return replace(base, exercises=exercises, policy=policy or base.policy)


def outcomes(campaign, scores):
    ex = campaign.exercise(EX)
    return [PupilOutcome(p, EX, group_for(ex, s)) for p, s in scores.items()]


def district_attack(scores, cuts):
    """Publish a version per cut-off pair; the school releases each; rebuild F(t) = pupils scoring under t."""
    base = make_campaign()
    history = ReleaseHistory(base.id)
    learned: dict[int, int] = {}
    asked_seen = []
    for t in cuts:
        pinned = pin_campaign(version(base, t), history)
        asked_seen.extend(pinned.asked)
        d = next_release(outcomes(pinned.campaign, scores), pinned.campaign, history, closing=False)
        if d.release:
            history = d.history
            row = d.content.row(EX)
            learned[t[0]] = row.get("besoin")  # the district assumes the school applied what it asked
            learned[t[1]] = row.get("besoin") + row.get("fragile")
    return learned, history, asked_seen


def true_cdf(scores):
    return {t: sum(1 for s in scores.values() if s < t) for t in range(16)}


CUTS = [(1, 14), (2, 13), (3, 12), (4, 11), (5, 10), (6, 9), (7, 8)]


def _scores(seed):
    rng = random.Random(seed)
    return {f"pupil-{i}": rng.randint(0, 15) for i in range(300)}  # about 19 per score: each move shifts at least min_batch


def rebuilt(learned, truth):
    return sorted(t for t, n in learned.items() if truth[t] == n)


@pytest.mark.parametrize("seed", [1, 2])
def test_moving_thresholds_reveal_only_the_first_cut_offs(seed):
    scores = _scores(seed)
    learned, history, asked = district_attack(scores, CUTS)
    truth = true_cdf(scores)
    # What the district can trust: only F at the first thresholds; every other "F(t)" it computed is wrong
    # or coincides with the truth by chance no more than it would from the first release alone.
    assert history.thresholds == {EX: (1, 14)}
    assert history.last_release == 1  # no later version moved any pupil: nothing new to release
    assert set(learned) == {1, 14}
    assert {(a.exercise, a.setting, a.kept) for a in asked} == {(EX, "thresholds", (1, 14))}
    assert [a.asked for a in asked] == CUTS[1:]  # what each new version asked, for the head teacher


def test_with_pinning_off_the_district_rebuilds_the_histogram(monkeypatch):
    monkeypatch.setattr(disclosure, "_new_pins", lambda campaign, history, published, snapshots: {})
    scores = _scores(1)
    learned, history, _ = district_attack(scores, CUTS)
    truth = true_cdf(scores)
    assert rebuilt(learned, truth) == list(range(1, 15))  # F(t) for every cut-off: the whole histogram


def test_thresholds_set_later_are_not_moved_once_used():
    """An exercise released as `pending` (no thresholds) takes its first thresholds, then keeps them."""
    base = make_campaign()
    scores = _scores(3)
    history = ReleaseHistory(base.id)
    first = version(base, None)
    d = next_release(outcomes(first, scores), first, history, closing=False)
    assert d.release and d.content.row(EX).get("pending") == 300 and d.history.thresholds.get(EX) is None
    history = d.history
    second = pin_campaign(version(base, (6, 10)), history)
    assert second.asked == ()
    d = next_release(outcomes(second.campaign, scores), second.campaign, history, closing=False)
    assert d.release and d.history.thresholds[EX] == (6, 10)
    third = pin_campaign(version(base, (8, 12)), d.history)
    assert third.campaign.exercise(EX).thresholds == (6, 10)


def test_next_release_refuses_a_campaign_that_moved_a_pinned_threshold():
    base = make_campaign()
    scores = _scores(4)
    d = next_release(outcomes(base, scores), base, ReleaseHistory(base.id), closing=False)
    moved = version(base, (2, 3))
    with pytest.raises(CrdtUsageError) as err:
        next_release(outcomes(moved, scores), moved, d.history, closing=False)
    assert err.value.code == "thresholds_not_pinned"


def test_the_policy_only_goes_up():
    """A version that raised the policy and a later one that lowers it back: the school keeps the higher one."""
    base = make_campaign()
    scores = _scores(5)
    strict = version(base, (6, 10), Policy(12, 12, 11))
    d = next_release(outcomes(strict, scores), strict, ReleaseHistory(base.id), closing=False)
    assert d.release and d.history.policy == Policy(12, 12, 11)
    pinned = pin_campaign(version(base, (6, 10)), d.history)
    assert pinned.campaign.policy == Policy(12, 12, 11)
    assert {(a.setting, a.asked, a.kept) for a in pinned.asked} == {("min_cohort", 10, 12), ("min_batch", 10, 12),
                                                                      ("small_cell_max", 10, 11)}
    with pytest.raises(CrdtUsageError) as err:
        next_release(outcomes(base, scores), version(base, (6, 10)), d.history, closing=False)
    assert err.value.code == "policy_not_pinned"


def test_pins_survive_storage():
    base = make_campaign()
    d = next_release(outcomes(base, _scores(6)), base, ReleaseHistory(base.id), closing=False)
    again = ReleaseHistory.from_dict(d.history.to_dict())
    assert again == d.history and again.thresholds == {EX: (6, 10)}
    old = d.history.to_dict()
    old["version"] = 1
    del old["thresholds"], old["policy"]
    v1 = ReleaseHistory.from_dict(old)  # a history written before pinning: pins start at its next release
    assert v1.thresholds == {} and v1.policy == base.policy
