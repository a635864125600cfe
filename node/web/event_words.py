"""The federation's event log (`FedStore.events`) in sentences for the head teacher and the district.

An event is a kind (`accepted`, `pool_proposed`...) and a technical detail
written for the operator's log (ids, fingerprints). The page says what the
kind means in the person's language, naming the campaign when the detail
mentions one this node knows; the detail itself stays behind a <details>
element for whoever needs it. A kind not known here still gets a sentence.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Mapping

from preau.node import i18n
from preau.node.i18n import when
from .words import refused_campaign_words

# kind -> (sentence, sentence naming the campaign found in the detail, and naming its version too)
_SENTENCES: dict[str, tuple[str, str | None, str | None]] = {
    "accepted": ("event.accepted", "event.accepted_named", "event.accepted_version"),
    "campaign_relayed": ("event.campaign_relayed", "event.campaign_relayed_named", "event.campaign_relayed_version"),
    "campaign_published": ("event.campaign_published", "event.campaign_published_named", "event.campaign_published_version"),
    "pool_formed": ("event.pool_formed", "event.pool_formed_named", None),
    "pool_complete": ("event.pool_complete", "event.pool_complete_named", None),
    "pool_approved": ("event.pool_approved", "event.pool_approved_named", None),
    "cohort_declared": ("event.cohort_declared", "event.cohort_declared_named", None),
    "pool_proposed": ("event.pool_proposed", "event.pool_proposed_named", None),
    "refused": ("event.refused", None, None),
    "parent_moved": ("event.parent_moved", None, None),
    "clock": ("event.clock", None, None),
    "stats_moved": ("event.stats_moved", None, None),
    "enrolled": ("event.enrolled", None, None),
    "invited": ("event.invited", None, None),
    "invitation_revoked": ("event.invitation_revoked", None, None),
    "join_code_wrong": ("event.join_code_wrong", None, None),
    "revoked": ("event.revoked", None, None),
    "counts_forgotten": ("event.counts_forgotten", None, None),
    "pool_failed": ("event.pool_failed", None, None),
    "pool_error": ("event.pool_error", None, None),
    "pool_round_timeout": ("event.pool_round_timeout", None, None),
    "pool_refused": ("event.pool_refused", None, None),
    "pool_left": ("event.pool_left", None, None),
}
_NUMBER = re.compile(r"\b(?:release|version) (\d+)\b")


@dataclass(frozen=True, slots=True)
class EventLine:
    at: str
    sentence: str
    detail: str  # the log's own words (kind: detail), shown only inside <details>


def _campaign_in(detail: str, campaigns: Mapping[str, str]) -> str | None:
    """The name of the longest known campaign id the detail mentions (ids are [a-z0-9-], so no partial word)."""
    found = [cid for cid in campaigns if re.search(r"(?<![a-z0-9-])" + re.escape(cid) + r"(?![a-z0-9-])", detail)]
    return campaigns[max(found, key=len)] if found else None


def event_sentence(kind: str, detail: str, lang: str, campaigns: Mapping[str, str]) -> str:
    t = lambda key, **kw: i18n.translate(lang, key, **kw)  # noqa: E731
    if kind == "campaign_refused":
        try:
            data = json.loads(detail)
            return refused_campaign_words(data["code"], data["params"], lang)
        except (ValueError, KeyError, TypeError):
            return t("event.campaign_refused")
    if kind == "key_rotated":
        return t("event.key_rotated_self" if detail.startswith("this node") else "event.key_rotated_peer")
    if kind not in _SENTENCES:
        return t("event.other")
    if kind == "accepted" and not detail.startswith("campaign "):
        return t("event.accepted_document")  # a school's release or a district's aggregate, stored and checked
    plain, named, versioned = _SENTENCES[kind]
    name = _campaign_in(detail, campaigns) if named else None
    if name is None:
        return t(plain)
    number = _NUMBER.search(detail) if versioned else None
    if number:
        return t(versioned, name=name, version=number.group(1))
    return t(named, name=name)


def event_lines(events: list[dict], lang: str, campaigns: Mapping[str, str]) -> list[EventLine]:
    """`events` as `FedStore.events` returns them (newest first); `campaigns` maps a campaign id to its name."""
    return [EventLine(when(e["at"], lang), event_sentence(e["kind"], e["detail"] or "", lang, campaigns),
                      f"{e['kind']}: {e['detail'] or ''}") for e in events]
