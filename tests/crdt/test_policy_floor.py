"""The national floor belongs to the school's software: a campaign may raise the policy, never lower it."""
import copy
from dataclasses import replace

import pytest

from preau.crdt import campaign as campaign_module
from preau.crdt.campaign import FLOOR, Policy, describe_policy, parse_campaign
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.crdt.documents import campaign_document, read_campaign
from preau.crdt.errors import CampaignRefusedError, PolicyBelowFloorError
from preau.crdt.schema import write_fields

from crdt_fixtures import CAMPAIGN, make_campaign, seed
from preau.crdt.crypto import public_key


def test_the_floor_is_ten_everywhere():
    assert FLOOR == Policy(10, 10, 10)
    assert parse_campaign(CAMPAIGN).policy == FLOOR  # a campaign that says nothing gets the floor


def test_secure_aggregation_defaults_to_the_same_floor():
    """protocol/ cannot import crdt/, so secagg keeps its own copy of the floor; the node falls back on it for a
    pool whose campaign it does not know yet. The two must not drift apart."""
    from preau.protocol.secagg import MIN_COHORT
    assert MIN_COHORT == FLOOR.min_cohort


@pytest.mark.parametrize("setting, asked", [("min_cohort", 3), ("min_batch", 1), ("small_cell_max", 0), ("small_cell_max", 9)])
def test_a_campaign_asking_for_less_is_refused_with_code_and_parameters(setting, asked):
    data = copy.deepcopy(CAMPAIGN)
    data["policy"] = {setting: asked}
    with pytest.raises(PolicyBelowFloorError) as err:
        parse_campaign(data)
    e = err.value
    assert e.code == "policy_below_floor" and e.location == f"policy.{setting}"
    assert e.params == {"setting": setting, "asked": asked, "minimum": 10}
    assert f"asks for {asked}, below the national minimum of 10" in str(e)


def test_a_campaign_may_raise_every_setting():
    c = make_campaign(min_cohort=15, min_batch=20, small_cell_max=12)
    assert c.policy == Policy(15, 20, 12)
    assert make_campaign(min_cohort=15).policy == Policy(15, 15, 10)  # the batch follows the cohort


def test_batches_smaller_than_the_cohort_are_refused():
    with pytest.raises(PolicyBelowFloorError) as err:
        make_campaign(min_cohort=20, min_batch=12)
    assert err.value.code == "batch_below_cohort" and err.value.params == {"setting": "min_batch", "asked": 12, "minimum": 20}


def test_a_campaign_document_below_the_floor_is_refused_by_the_school():
    """A district writes the definition by hand (not through parse_campaign): the school's reader refuses it."""
    doc = campaign_document(make_campaign(), public_key(seed(9)))
    bad = copy.deepcopy(make_campaign().to_dict())
    bad["policy"] = {"min_cohort": 3, "min_batch": 1, "small_cell_max": 0}
    write_fields(doc, {"definition": bad, "release": 2})
    with pytest.raises(CampaignRefusedError) as err:
        read_campaign(doc)
    assert err.value.code == "policy_below_floor" and err.value.params["setting"] == "min_cohort"


def _outcomes(n):
    return [PupilOutcome(f"p{i}", "fr-mots", ("besoin", "fragile", "seuil2")[i % 3]) for i in range(n)]


def test_next_release_refuses_a_hand_built_policy_below_the_floor():
    """Defence in depth: a Campaign built without parse_campaign cannot lower the floor either."""
    c = replace(make_campaign(), policy=Policy(min_cohort=3, min_batch=1, small_cell_max=0))
    with pytest.raises(PolicyBelowFloorError):
        next_release(_outcomes(4), c, ReleaseHistory(c.id), closing=False)


def test_with_the_floor_switched_off_a_four_pupil_school_publishes(monkeypatch):
    """The check above is what stops it: lower the floor and the same campaign publishes four pupils."""
    monkeypatch.setattr(campaign_module, "FLOOR", Policy(0, 0, 0))
    c = replace(make_campaign(), policy=Policy(min_cohort=3, min_batch=3, small_cell_max=0))
    d = next_release(_outcomes(4), c, ReleaseHistory(c.id), closing=False)
    assert d.release and d.content.cohort == 4


def test_the_policy_in_plain_terms():
    words = describe_policy(make_campaign().policy)
    codes = [w.code for w in words]
    assert codes == ["policy_min_cohort", "policy_min_batch", "policy_small_cell_max", "policy_thresholds_pinned"]
    assert words[0].params == {"n": 10, "floor": 10}
    assert "fewer than 10 pupils" in words[0].text
    raised = describe_policy(Policy(12, 15, 10))
    assert raised[-1].code == "policy_raised" and raised[-1].params == {"min_cohort": 12, "min_batch": 15}
