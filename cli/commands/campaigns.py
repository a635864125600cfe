"""`preau campaign check` and `preau campaign load`."""
from __future__ import annotations

from typing import Any

from preau.crdt.campaign import Campaign
from preau.node.actions import campaigns

from ..say import Say


def describe(say: Say, campaign: Campaign) -> list[str]:
    """A short summary of a valid campaign, for `preau campaign check`."""
    with_thresholds = sum(1 for ex in campaign.exercises if ex.thresholds is not None)
    timed = sum(1 for ex in campaign.exercises if ex.score_kind == "wpm")
    p = campaign.policy
    out = [say("cli.out.campaign.summary", id=campaign.id, name=campaign.name, level=campaign.level,
               year=campaign.school_year, opens=campaign.opens, closes=campaign.closes),
           say("cli.out.campaign.exercises", n=len(campaign.exercises), timed=timed, thresholds=with_thresholds,
               min_cohort=p.min_cohort, min_batch=p.min_batch, small_cell_max=p.small_cell_max)]
    if campaign.illustrative:
        out.append(say("cli.out.campaign.illustrative"))
    return out


def check(say: Say, path, campaign: Campaign) -> str:
    return "\n".join([say("cli.out.campaign.valid", path=path), *("  " + line for line in describe(say, campaign))])


def load(settings: Any, *, campaign: Campaign, lang: str = "en", **_: Any) -> str:
    say = Say(lang)
    done = campaigns.load_campaign(settings, campaign=campaign)
    key = "cli.out.campaign.published" if done.changed else "cli.out.campaign.unchanged"
    return say(key, id=done.campaign, version=done.version)
