import itertools
import json
import random

import pytest

from preau.crdt.disclosure import (PupilOutcome, ReleaseHistory, kept_for_the_pool, next_release, recomputable_cells,
                                   suppress_rows)
from preau.crdt.documents import Row
from preau.crdt.errors import CrdtUsageError, DocumentError



def _class(n, exercise="fr-mots", group="seuil2", prefix="p"):
    return [PupilOutcome(f"{prefix}{i}", exercise, group) for i in range(n)]


def test_small_cohort_publishes_nothing_until_closing_then_only_withheld(campaign):
    h = ReleaseHistory(campaign.id)
    d = next_release(_class(7), campaign, h, closing=False)
    assert not d.release
    assert d.reason == "withheld: small cohort (7 assessed pupils; campaign 2026-debut-cp needs at least 10 before any counts leave the school)"
    d = next_release(_class(7), campaign, h, closing=True)
    assert d.release and d.content.status == "withheld" and d.content.rows == () and d.content.cohort is None
    again = next_release(_class(7), campaign, d.history, closing=True)
    assert not again.release


def test_absent_pupils_do_not_count_towards_the_cohort(campaign):
    outcomes = _class(9) + [PupilOutcome(f"a{i}", "fr-mots", "absent") for i in range(5)]
    assert next_release(outcomes, campaign, ReleaseHistory(campaign.id), closing=False).reason.startswith("withheld: small cohort (9")


def test_school_falling_below_min_cohort_withdraws_its_counts(campaign):
    d = next_release(_class(12), campaign, ReleaseHistory(campaign.id), closing=False)
    assert d.release and d.content.status == "published"
    d2 = next_release(_class(8), campaign, d.history, closing=False)
    assert d2.release and d2.content.status == "withheld"


def test_a_pooled_schools_counts_are_held_back_but_a_withheld_release_still_goes(campaign):
    h = ReleaseHistory(campaign.id)
    counts = next_release(_class(12), campaign, h, closing=False)
    kept = kept_for_the_pool(counts, h, campaign.id)
    assert counts.release and not kept.release and kept.content is None and kept.history == h
    assert [r.code for r in kept.reasons] == ["pooled"] and "pool of small schools" in kept.reason
    withheld = next_release(_class(7), campaign, h, closing=True)  # no counts in it: it may go
    assert kept_for_the_pool(withheld, h, campaign.id) is withheld


def test_batching_waits_for_min_batch_changed_pupils(campaign):
    d = next_release(_class(12), campaign, ReleaseHistory(campaign.id), closing=False)
    assert d.reason == "release 1: 1 exercise updated"
    assert d.content.row("fr-mots").get("seuil2") == 12
    outcomes = _class(12) + _class(6, prefix="new", group="besoin")
    d2 = next_release(outcomes, campaign, d.history, closing=False)
    assert not d2.release
    assert d2.reason == "waiting for 4 more changed pupils on fr-mots (6 changed since the last release; at least 10 must change together)"
    assert d2.held_back == (("fr-mots", 6),)
    outcomes += _class(4, prefix="late", group="besoin")  # 10 changed, and besoin moves by 10: it goes
    d3 = next_release(outcomes, campaign, d.history, closing=False)
    assert d3.release and d3.content.row("fr-mots").to_dict() == {"besoin": 10, "fragile": 0, "seuil2": 12, "absent": 0, "pending": 0, "total": 22}


def test_an_exercise_with_too_few_results_is_held_back_even_at_closing(campaign):
    outcomes = _class(12) + _class(3, exercise="ma-problemes", group="besoin")
    d = next_release(outcomes, campaign, ReleaseHistory(campaign.id), closing=True)
    assert d.release and d.content.final
    assert d.content.row("ma-problemes").total == 0
    assert "held back, waiting for 7 more changed pupils on ma-problemes" in d.reason


def test_changes_that_revert_cannot_isolate_pupils_against_an_older_release(campaign):
    """Toggle 9 pupils away and back while changing 1 other: release 1 vs 3 would isolate that one."""
    base = _class(20)
    d1 = next_release(base, campaign, ReleaseHistory(campaign.id), closing=False)
    toggled = [PupilOutcome(o.pupil, o.exercise, "besoin") if i < 10 else o for i, o in enumerate(base)]
    d2 = next_release(toggled, campaign, d1.history, closing=False)
    assert d2.release  # 10 changed
    back = [PupilOutcome(o.pupil, o.exercise, "fragile") if i == 15 else o for i, o in enumerate(base)]
    d3 = next_release(back, campaign, d2.history, closing=False)
    assert not d3.release  # 10 changed since release 2, but only 1 since release 1
    assert "waiting for 9 more" in d3.reason


def test_pupils_without_thresholds_are_counted_as_pending(campaign):
    outcomes = [PupilOutcome(f"p{i}", "fr-lire-texte", None) for i in range(11)]
    d = next_release(outcomes, campaign, ReleaseHistory(campaign.id), closing=False)
    assert d.content.row("fr-lire-texte").to_dict()["pending"] == 11


@pytest.mark.parametrize(
    "outcome, words",
    [
        (PupilOutcome("Léa Martin", "fr-inconnu", "besoin"), "names exercise 'fr-inconnu', which campaign '2026-debut-cp' does not define"),
        (PupilOutcome("Léa Martin", "fr-mots", "excellent"), "use one of besoin, fragile, seuil2, absent or None"),
        (PupilOutcome("", "fr-mots", "besoin"), "empty pupil reference"),
    ],
)
def test_bad_outcomes_are_refused_without_quoting_the_pupil(campaign, outcome, words):
    with pytest.raises(CrdtUsageError) as err:
        next_release(_class(12) + [outcome], campaign, ReleaseHistory(campaign.id), closing=False)
    assert words in str(err.value)
    assert "Léa" not in str(err.value)


def test_two_results_for_one_pupil_are_refused(campaign):
    dup = [PupilOutcome("p1", "fr-mots", "besoin")]
    with pytest.raises(CrdtUsageError, match="one pupil has two different results on 'fr-mots'"):
        next_release(_class(12) + dup, campaign, ReleaseHistory(campaign.id), closing=False)


def test_history_round_trips_and_holds_no_pupil_reference(campaign):
    outcomes = _class(12, prefix="Léa Martin ")
    d = next_release(outcomes, campaign, ReleaseHistory(campaign.id), closing=False)
    data = json.loads(json.dumps(d.history.to_dict()))
    assert ReleaseHistory.from_dict(data) == d.history
    assert "Léa" not in json.dumps(data)
    with pytest.raises(DocumentError, match="damaged"):
        ReleaseHistory.from_dict({"version": 1, "campaign": "x"})
    with pytest.raises(CrdtUsageError, match="for campaign 'other'"):
        next_release(outcomes, campaign, ReleaseHistory("other"), closing=False)


def test_decision_is_deterministic_whatever_the_outcome_order(campaign):
    outcomes = _class(12) + _class(12, exercise="fr-phrases", group="fragile")
    a = next_release(outcomes, campaign, ReleaseHistory(campaign.id), closing=False)
    b = next_release(list(reversed(outcomes)), campaign, ReleaseHistory(campaign.id), closing=False)
    assert a == b


# -- small cells ---------------------------------------------------------------------


def brute_force_attack(row: Row, n: int) -> dict[str, int]:
    """An attacker independent of the code under test: enumerate every filling of the hidden cells.

    Returns each hidden cell whose value is the same in every filling consistent with
    the shown cells, the total, and what the markers say ("≤n": 1..n; "x": 0 or above n).
    """
    cols = ("besoin", "fragile", "seuil2", "absent", "pending")
    if not isinstance(row.total, int):
        return {}
    hidden = [c for c in cols if not isinstance(row.get(c), int)]
    rest = row.total - sum(row.get(c) for c in cols if c not in hidden)
    domains = [range(1, n + 1) if row.get(c) != "x" else [0, *range(n + 1, rest + 1)] for c in hidden]
    seen: dict[str, set[int]] = {c: set() for c in hidden}
    for combo in itertools.product(*domains):
        if sum(combo) == rest:
            for c, v in zip(hidden, combo):
                seen[c].add(v)
    return {c: next(iter(v)) for c, v in seen.items() if len(v) == 1}


def small_visible(row: Row, n: int) -> bool:
    return any(isinstance(v, int) and 1 <= v <= n for v in row.cells)


def test_primary_suppression_alone_is_broken_by_the_attacker():
    """The attacker is real: with complementary suppression off it recovers a hidden cell."""
    row = Row.from_counts("fr-mots", {"besoin": 4, "fragile": 30, "seuil2": 60})
    shown, _ = suppress_rows([row], 10, complementary=False)
    assert shown[0].get("besoin") == "≤10"
    assert brute_force_attack(shown[0], 10) == {"besoin": 4}
    assert recomputable_cells(shown[0], 10) == ["besoin"]


@pytest.mark.parametrize(
    "counts",
    [
        {"besoin": 4, "fragile": 30, "seuil2": 60},
        {"besoin": 1, "fragile": 11, "seuil2": 0},
        {"besoin": 2, "seuil2": 0, "absent": 0},
        {"besoin": 1, "fragile": 1, "seuil2": 40},
        {"besoin": 10, "fragile": 10, "seuil2": 11},
        {"besoin": 3, "fragile": 12, "seuil2": 12, "absent": 13, "pending": 14},
    ],
)
def test_complementary_suppression_defeats_the_attacker(counts):
    row = Row.from_counts("fr-mots", counts)
    shown, pattern = suppress_rows([row], 10)
    assert not small_visible(shown[0], 10)
    assert brute_force_attack(shown[0], 10) == {}
    assert ("fr-mots", "besoin") in pattern


def test_suppression_pattern_is_stable_across_releases():
    first, pattern = suppress_rows([Row.from_counts("fr-mots", {"besoin": 4, "fragile": 30, "seuil2": 60})], 10)
    later, pattern2 = suppress_rows([Row.from_counts("fr-mots", {"besoin": 14, "fragile": 35, "seuil2": 70})], 10, pattern)
    assert pattern <= pattern2
    hidden_before = {c for c in ("besoin", "fragile", "seuil2") if not isinstance(first[0].get(c), int)}
    assert all(later[0].get(c) == "x" for c in hidden_before)
    assert brute_force_attack(later[0], 10) == {}


def test_small_cell_rule_off_shows_everything():
    row = Row.from_counts("fr-mots", {"besoin": 4, "fragile": 30})
    assert suppress_rows([row], 0)[0] == (row,)


@pytest.mark.parametrize("seed", range(40))
def test_random_rows_never_leak_a_small_cell(seed):
    rng = random.Random(seed)
    counts = {c: rng.choice([0, 0, 1, 2, 3, 5, 9, 10, 11, 12, 25]) for c in ("besoin", "fragile", "seuil2", "absent", "pending")}
    prev = {("fr-mots", rng.choice(["besoin", "fragile", "seuil2", "absent", "pending"]))} if seed % 3 == 0 else set()
    shown, _ = suppress_rows([Row.from_counts("fr-mots", counts)], 10, prev)
    assert not small_visible(shown[0], 10)
    assert brute_force_attack(shown[0], 10) == {}


def test_final_never_goes_back_even_when_the_caller_says_not_closing(campaign):
    """A school whose clock ran ahead released its final figures; its clock put right, it is no longer 'closing'."""
    d1 = next_release(_class(12), campaign, ReleaseHistory(campaign.id), closing=True)
    assert d1.release and d1.content.final
    d2 = next_release(_class(12) + _class(10, prefix="late", group="besoin"), campaign, d1.history, closing=False)
    assert d2.release and d2.content.final and d2.reason.endswith("(final)")
    d3 = next_release(_class(12) + _class(10, prefix="late", group="besoin"), campaign, d2.history, closing=False)
    assert not d3.release  # nothing changed: no new release either


# -- the floor on the cohort that would be published; batching at count level --------------------------------


def _ten_pupils_one_scored():
    """A class of 10: on fr-mots p0 scored (besoin) and p1..p9 absent; on fr-phrases p1..p9 scored (9 < 10: held)."""
    return ([PupilOutcome("p0", "fr-mots", "besoin")] + [PupilOutcome(f"p{i}", "fr-mots", "absent") for i in range(1, 10)]
            + [PupilOutcome(f"p{i}", "fr-phrases", "seuil2") for i in range(1, 10)])


def test_the_floor_is_checked_on_the_cohort_the_release_would_publish(campaign, monkeypatch):
    """Ten pupils are assessed today, but the rows batching lets through count one assessed pupil (absent marks
    are not an assessment): nothing leaves, and at closing only "withheld: small cohort"."""
    from preau.crdt import disclosure
    h = ReleaseHistory(campaign.id)
    d = next_release(_ten_pupils_one_scored(), campaign, h, closing=False)
    assert not d.release and d.content is None and d.history == h
    assert [r.code for r in d.reasons] == ["small_published_cohort", "waiting"]
    assert d.reasons[0].params == {"cohort": 1, "assessed": 10, "min_cohort": 10, "campaign": campaign.id}
    assert d.reason.startswith("withheld: small cohort (the rows that may leave now count 1 assessed pupil of 10;")
    final = next_release(_ten_pupils_one_scored(), campaign, h, closing=True)
    assert final.release and final.content.status == "withheld" and final.content.rows == () and final.content.cohort is None
    assert final.content.reason == "small_cohort" and final.history.snapshots == {}
    # Once the 10th pupil sits fr-phrases, the rows count 10 assessed pupils: counts leave.
    more = _ten_pupils_one_scored() + [PupilOutcome("p0", "fr-phrases", "fragile")]
    d = next_release(more, campaign, h, closing=False)
    assert d.release and d.content.cohort == 10 and d.content.row("fr-phrases").total == 10
    # Switched off (the floor on today's pupils only), one pupil's group leaves: 100 % besoin.
    monkeypatch.setattr(disclosure, "FLOOR_ON_PUBLISHED", False)
    leak = next_release(_ten_pupils_one_scored(), campaign, h, closing=False)
    assert leak.release and leak.content.cohort == 1
    assert leak.content.row("fr-mots").to_dict() == {"besoin": 1, "fragile": 0, "seuil2": 0, "absent": 9, "pending": 0, "total": 10}


def test_a_school_whose_published_rows_fall_below_the_floor_withdraws_its_counts(campaign):
    """11 pupils are assessed today, but the rows that would leave count none of them (their fr-mots results are
    held back by batching, ma-problemes's 12 pupils all turned absent): the counts sent before are
    withdrawn, as when pupils leave the school."""
    d1 = next_release(_class(20), campaign, ReleaseHistory(campaign.id), closing=False)  # fr-mots: seuil2 20
    maths = _class(12, exercise="ma-problemes", prefix="q", group="besoin")
    d2 = next_release(_class(20, group="absent") + maths, campaign, d1.history, closing=False)
    assert d2.release and d2.content.cohort == 12  # fr-mots all absent (20 changed), ma-problemes 12 besoin
    back = _class(11) + [PupilOutcome(f"p{i}", "fr-mots", "absent") for i in range(11, 20)]  # p0..p10 back at seuil2
    gone = [PupilOutcome(o.pupil, o.exercise, "absent") for o in maths]
    d3 = next_release(back + gone, campaign, d2.history, closing=False)
    # fr-mots: 11 changed since release 2, but 9 pupils (and seuil2 by 9) against release 1: held back.
    assert d3.held_back == (("fr-mots", 11),)
    assert d3.release and d3.content.status == "withheld" and d3.content.cohort is None
    assert [r.code for r in d3.reasons] == ["small_published_cohort", "waiting"]
    assert d3.reasons[0].params["cohort"] == 0 and d3.reasons[0].params["assessed"] == 11


def test_a_late_pupil_hidden_among_absent_marks_is_held_back(campaign, monkeypatch):
    """The review's reproduction: 20 pupils released; later a late pupil scores besoin on fr-mots and the teacher
    marks the 9 pupils who never sat it absent. 10 pupils changed, but fr-mots's counts would move by besoin +1,
    absent +9: the late pupil's group by subtraction. Held back, with the count that moves in the reason."""
    from preau.crdt import disclosure
    base = [PupilOutcome(f"p{i}", "fr-mots", ("besoin", "fragile", "seuil2")[i % 3]) for i in range(20)]
    d1 = next_release(base, campaign, ReleaseHistory(campaign.id), closing=False)
    later = base + [PupilOutcome("L", "fr-mots", "besoin")] + [PupilOutcome(f"q{i}", "fr-mots", "absent") for i in range(9)]
    d2 = next_release(later, campaign, d1.history, closing=False)
    assert not d2.release and d2.held_back == (("fr-mots", 10),)
    assert [(r.code, r.params) for r in d2.reasons] == [
        ("waiting_counts", {"exercise": "fr-mots", "column": "besoin", "moved": 1, "min_batch": 10})]
    assert d2.reason == ("waiting on fr-mots: its besoin count would move by 1 against an earlier release "
                         "(10 pupils changed; every count moves by 0 or at least 10)")
    closing = next_release(later, campaign, d1.history, closing=True)  # closing forces a release, not the leak
    assert closing.release and closing.content.row("fr-mots") == d1.content.row("fr-mots")
    assert "held back, waiting on fr-mots" in closing.reason
    monkeypatch.setattr(disclosure, "COUNT_BATCHING", False)
    leak = next_release(later, campaign, d1.history, closing=False)
    r1, r2 = d1.content.row("fr-mots").to_dict(), leak.content.row("fr-mots").to_dict()
    assert {k: r2[k] - r1[k] for k in r1} == {"besoin": 1, "fragile": 0, "seuil2": 0, "absent": 9, "pending": 0, "total": 10}


def test_counts_move_only_by_batches_against_every_earlier_state_but_not_the_empty_one(campaign):
    """A first release may hold small cells (only the district's aggregates hide them). Later: a state that moves
    every count by 0 or 10+ against the last release, but seuil2 by 5 against the first, is held back."""
    first = _class(19) + _class(1, prefix="b", group="besoin")  # besoin 1: fine against the empty state
    d1 = next_release(first, campaign, ReleaseHistory(campaign.id), closing=False)
    assert d1.release and d1.content.row("fr-mots").get("besoin") == 1
    moved = [PupilOutcome(o.pupil, o.exercise, "besoin") if i < 10 else o for i, o in enumerate(first)]
    d2 = next_release(moved, campaign, d1.history, closing=False)  # 10 seuil2 -> besoin: besoin +10, seuil2 -10
    assert d2.release and d2.content.row("fr-mots").to_dict()["besoin"] == 11
    s3 = moved + _class(15, prefix="late")  # seuil2 +15 against release 2, but +5 against release 1
    d3 = next_release(s3, campaign, d2.history, closing=False)
    assert not d3.release
    assert d3.reasons[0].params == {"exercise": "fr-mots", "column": "seuil2", "moved": 5, "min_batch": 10}


def test_thresholds_arriving_for_pending_pupils_publish_their_groups(campaign):
    """25 pupils read a text before the campaign had thresholds for it (pending 25); the thresholds arrive and
    they fall 4 / 6 / 15. Against the pending state the group columns are the new state itself (nothing to
    subtract), so the groups go, small cells and all, as a first release would; pending, absent and the total
    still follow the count rule."""
    from dataclasses import replace

    from preau.crdt.disclosure import pin_campaign
    groups = ["besoin"] * 4 + ["fragile"] * 6 + ["seuil2"] * 15
    d1 = next_release([PupilOutcome(f"p{i}", "fr-lire-texte", None) for i in range(25)], campaign,
                      ReleaseHistory(campaign.id), closing=False)
    assert d1.content.row("fr-lire-texte").get("pending") == 25
    later = pin_campaign(replace(campaign, exercises=tuple(replace(e, thresholds=(40, 80)) if e.id == "fr-lire-texte"
                                                           else e for e in campaign.exercises)), d1.history).campaign
    d2 = next_release([PupilOutcome(f"p{i}", "fr-lire-texte", groups[i]) for i in range(25)], later, d1.history,
                      closing=False)
    assert d2.release and d2.content.row("fr-lire-texte").to_dict() == {
        "besoin": 4, "fragile": 6, "seuil2": 15, "absent": 0, "pending": 0, "total": 25}
    # 11 more pupils, 10 at seuil 2 and 1 à besoin: besoin moves by 1 against release 2. Held back.
    d3 = next_release([PupilOutcome(f"p{i}", "fr-lire-texte", groups[i]) for i in range(25)]
                      + [PupilOutcome(f"n{i}", "fr-lire-texte", "seuil2") for i in range(10)]
                      + [PupilOutcome("late", "fr-lire-texte", "besoin")], later, d2.history, closing=False)
    assert not d3.release and d3.reasons[0].code == "waiting_counts"


def test_a_wait_for_pupils_and_a_wait_on_counts_are_both_said(campaign):
    """Each kind of wait has its own remedy (more pupils; counts that move together): the reasons name one of each,
    then how many other exercises wait."""
    base = _class(20) + _class(20, exercise="ma-problemes")
    d1 = next_release(base, campaign, ReleaseHistory(campaign.id), closing=False)
    later = (base + _class(3, exercise="fr-phrases", prefix="x")  # 3 pupils: waits for 7 more
             + _class(1, prefix="L", group="besoin") + _class(9, prefix="q", group="absent")  # fr-mots: besoin +1
             + _class(1, exercise="ma-problemes", prefix="L", group="besoin")
             + _class(9, exercise="ma-problemes", prefix="q", group="absent"))  # ma-problemes: besoin +1 too
    d2 = next_release(later, campaign, d1.history, closing=False)
    assert not d2.release
    assert [r.code for r in d2.reasons] == ["waiting", "waiting_counts", "others_waiting"]
    assert d2.reasons[1].params["exercise"] == "fr-mots" and d2.reasons[2].params == {"count": 1}
    assert d2.reason.startswith("waiting for 7 more changed pupils on fr-phrases") and "; waiting on fr-mots: " in d2.reason
