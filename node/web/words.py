"""Disclosure control's reasons (written in English by the pure library) in the person's language.

Errors of the node carry their catalog key (`preau.node.errors.Words`); the
pure library's release reasons do not yet, so the known ones are matched here
and rendered from the catalog. A reason with no match is shown as it is.
"""
from __future__ import annotations

import re

from preau.node import i18n

_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), k) for p, k in (
    (r"^withheld: small cohort \((\d+) assessed pupils?; campaign \S+ needs at least (\d+) .*\)$", "reason.small_cohort"),
    (r"^release (\d+): (\d+) exercises? updated", "reason.updated"),
    (r"^nothing changed since release (\d+)$", "reason.unchanged"),
    (r"^no results entered yet$", "reason.no_results"),
    (r"^waiting for (\d+) more changed pupils? on (\S+) \((\d+) changed", "reason.waiting"),
))


def reason_words(reason: str, lang: str) -> str:
    """Disclosure control's reason (written in English by the pure library) in `lang` when it is a known one."""
    for pattern, key in _REASONS:
        m = pattern.match(reason)
        if m:
            return i18n.translate(lang, key, a=m.group(1), b=m.group(2) if m.lastindex and m.lastindex >= 2 else "")
    return reason


def asked_words(asked, names: dict, lang: str) -> str:
    """What a newer campaign version asked for and the school kept as before (`disclosure.AskedChange`), in words."""
    if asked.setting == "thresholds":
        name = names.get(asked.exercise, asked.exercise)
        kept = f"{asked.kept[0]}/{asked.kept[1]}"
        if asked.asked is None:
            return i18n.translate(lang, "privacy.asked_thresholds_none", exercise=name, kept=kept)
        return i18n.translate(lang, "privacy.asked_thresholds", exercise=name, asked=f"{asked.asked[0]}/{asked.asked[1]}",
                              kept=kept)
    return i18n.translate(lang, "privacy.asked_policy", setting=asked.setting, asked=asked.asked, kept=asked.kept)


def refused_campaign_words(code: str, params: dict, lang: str) -> str:
    """A campaign refused for asking less than the national floor, in words for the head teacher."""
    return i18n.translate(lang, f"privacy.refused_campaign.{code}", **params)
