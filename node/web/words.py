"""What disclosure control kept or refused, in the person's language, from the codes and values it gives.

Reasons and errors of the pure layers are said from their codes by
`preau.node.codes`; nothing here reads English back.
"""
from __future__ import annotations

from preau.node import i18n


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
