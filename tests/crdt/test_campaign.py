import copy

import pytest

from preau.crdt.campaign import GROUPS, Policy, group_for, parse_campaign
from preau.crdt.errors import CampaignError

GOOD = {
    "id": "2026-debut-cp",
    "name": "Début de CP",
    "level": "CP",
    "school_year": "2026-2027",
    "opens": "2026-09-01",
    "closes": "2026-09-30",
    "illustrative": True,
    "policy": {"min_cohort": 10},
    "exercises": [
        {"id": "fr-mots", "name": "Comprendre des mots", "subject": "français", "score_kind": "items", "items": 15, "thresholds": [6, 10]},
        {"id": "fr-lire-texte", "name": "Lire un texte", "subject": "français", "score_kind": "wpm", "max_score": 200},
    ],
}


def test_parse_good_campaign_round_trips():
    c = parse_campaign(GOOD)
    assert c.policy == Policy(10, 10, 10)
    assert c.exercise("fr-mots").thresholds == (6, 10)
    assert c.exercise("fr-lire-texte").thresholds is None
    assert parse_campaign(c.to_dict()) == c


@pytest.mark.parametrize(
    "mutate, location, words",
    [
        (lambda d: d.pop("name"), "name", "is missing"),
        (lambda d: d.update(level="CP2"), "level", "must be one of"),
        (lambda d: d.update(school_year="2026-2028"), "school_year", "consecutive"),
        (lambda d: d.update(closes="2026-08-01"), "closes", "before opens"),
        (lambda d: d.update(opens="1/9/2026"), "opens", "YYYY-MM-DD"),
        (lambda d: d.update(pupils=["Léa"]), "pupils", "not a known campaign field"),
        (lambda d: d["exercises"][0].update(thresholds=[10, 6]), "exercises[0].thresholds", "must not be above"),
        (lambda d: d["exercises"][0].update(thresholds=[6, 99]), "exercises[0].thresholds[1]", "between 0 and 15"),
        (lambda d: d["exercises"][1].update(id="fr-mots"), "exercises[1].id", "earlier exercise"),
        (lambda d: d["exercises"][1].update(items=3), "exercises[1].items", "no meaning"),
        (lambda d: d["exercises"][0].update(items="quinze"), "exercises[0].items", "whole number"),
        (lambda d: d["exercises"][0].update(Id="x"), "exercises[0].Id", "not a known exercise field"),
        (lambda d: d.update(exercises=[]), "exercises", "at least one"),
        (lambda d: d["policy"].update(min_cohort=1), "policy.min_cohort", "below the national minimum of 10"),
            (lambda d: d["policy"].update(min_cohort=20, min_batch=10), "policy.min_batch", "at least min_cohort"),
    ],
)
def test_each_mistake_names_its_location(mutate, location, words):
    data = copy.deepcopy(GOOD)
    mutate(data)
    with pytest.raises(CampaignError) as err:
        parse_campaign(data)
    assert err.value.location == location
    assert words in str(err.value)


def test_group_for_thresholds():
    ex = parse_campaign(GOOD).exercise("fr-mots")
    assert [group_for(ex, s) for s in (0, 5, 6, 9, 10, 15)] == ["besoin", "besoin", "fragile", "fragile", "seuil2", "seuil2"]
    assert group_for(ex, None, absent=True) == "absent"
    assert group_for(parse_campaign(GOOD).exercise("fr-lire-texte"), 40) is None
    assert set(GROUPS) == {"besoin", "fragile", "seuil2", "absent"}
