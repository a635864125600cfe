"""The federation's event log (`FedStore.events`) in sentences for the head teacher and the district.

An event is a kind (`accepted`, `pool_proposed`...), the values it was logged
with (`params`: campaign id, version, pool...) and an English detail written for
the operator's log. The sentence comes from the kind and the values through the
catalog, naming the campaign when this node knows it; the detail is never read
back here (it stays behind a <details> element for whoever needs it). An event
logged before events carried their values (`params` None) gets its kind's
sentence without values; a kind not known here still gets a sentence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from preau.node import i18n
from preau.node.i18n import when
from preau.node.codes import refused_campaign_words


@dataclass(frozen=True, slots=True)
class _Sentences:
    plain: str                    # no values (and every event logged before events carried them)
    named: str | None = None      # naming the campaign of params["campaign"], when this node knows it
    versioned: str | None = None  # ... and its version, params["version"]


_KINDS: dict[str, _Sentences] = {
    "accepted": _Sentences("event.accepted", "event.accepted_named", "event.accepted_version"),
    "campaign_relayed": _Sentences("event.campaign_relayed", "event.campaign_relayed_named",
                                   "event.campaign_relayed_version"),
    "campaign_published": _Sentences("event.campaign_published", "event.campaign_published_named",
                                     "event.campaign_published_version"),
    "pool_formed": _Sentences("event.pool_formed", "event.pool_formed_named"),
    "pool_complete": _Sentences("event.pool_complete", "event.pool_complete_named"),
    "pool_approved": _Sentences("event.pool_approved", "event.pool_approved_named"),
    "cohort_declared": _Sentences("event.cohort_declared", "event.cohort_declared_named"),
    "pool_proposed": _Sentences("event.pool_proposed", "event.pool_proposed_named"),
    "pool_countersigned": _Sentences("event.pool_countersigned", "event.pool_countersigned_named"),
    "refused": _Sentences("event.refused"),
    "campaign_refused": _Sentences("event.campaign_refused"),
    "key_rotated": _Sentences("event.key_rotated"),
    "parent_moved": _Sentences("event.parent_moved"),
    "clock": _Sentences("event.clock"),
    "stats_moved": _Sentences("event.stats_moved"),
    "aggregate_held": _Sentences("event.aggregate_held", "event.aggregate_held_named"),
    "enrolled": _Sentences("event.enrolled"),
    "rejoined": _Sentences("event.rejoined"),
    "release_in_pool": _Sentences("event.release_in_pool", "event.release_in_pool_named"),
    "invited": _Sentences("event.invited"),
    "invitation_revoked": _Sentences("event.invitation_revoked"),
    "join_code_wrong": _Sentences("event.join_code_wrong"),
    "revoked": _Sentences("event.revoked"),
    "counts_forgotten": _Sentences("event.counts_forgotten"),
    "pool_failed": _Sentences("event.pool_failed"),
    "pool_error": _Sentences("event.pool_error"),
    "pool_round_timeout": _Sentences("event.pool_round_timeout"),
    "pool_refused": _Sentences("event.pool_refused"),
    "pool_left": _Sentences("event.pool_left"),
    "pool_rekeyed": _Sentences("event.pool_rekeyed"),
    "academie_pinned": _Sentences("event.academie_pinned"),
    "taken_back": _Sentences("event.taken_back"),
    "renumbered": _Sentences("event.renumbered"),
}
# what a member sends up, accepted: (its sentence without the campaign, with it and the release number)
_SENT_UP = {"release": ("event.accepted_release", "event.accepted_release_named"),
            "aggregate": ("event.accepted_aggregate", "event.accepted_aggregate_named")}
# an event logged before events carried their values: a sentence true of every event of that kind
_WITHOUT_VALUES = {"accepted": "event.accepted_document"}  # a campaign, a school's release or a district's aggregate


@dataclass(frozen=True, slots=True)
class EventLine:
    at: str
    sentence: str
    detail: str  # the log's own words (kind: detail), shown only inside <details>


def event_sentence(kind: str, params: Mapping[str, Any] | None, lang: str, campaigns: Mapping[str, str]) -> str:
    """The sentence for an event of `kind` logged with `params` (None: logged before events carried values);
    `campaigns` maps a campaign id to its name."""
    t = lambda key, **kw: i18n.translate(lang, key, **kw)  # noqa: E731
    sentences = _KINDS.get(kind)
    if sentences is None:
        return t("event.other")
    if params is None:
        return t(_WITHOUT_VALUES.get(kind, sentences.plain))
    if kind == "campaign_refused":
        try:
            return refused_campaign_words(params["code"], params["values"], lang)
        except (KeyError, TypeError, ValueError, IndexError):  # a code or values this catalog does not know
            return t(sentences.plain)
    if kind == "key_rotated":
        return t("event.key_rotated_self" if params.get("whose") == "self" else "event.key_rotated_peer")
    if kind == "accepted" and params.get("doc_kind") == "receipts":
        return t("event.accepted_receipts")  # the district's receipt for this school's releases
    if kind == "accepted" and params.get("doc_kind") in ("release", "aggregate"):
        # a school's release or a district's aggregate, stored and checked
        plain, named = _SENT_UP[params["doc_kind"]]
        name, version = campaigns.get(params.get("campaign") or ""), params.get("version")
        if name is not None and isinstance(version, int) and not isinstance(version, bool):
            return t(named, name=name, version=version)
        return t(plain)
    if kind == "accepted" and params.get("doc_kind") != "campaign":
        return t("event.accepted_document")
    campaign = params.get("campaign")
    name = campaigns.get(campaign) if sentences.named and isinstance(campaign, str) else None
    if name is None:
        return t(sentences.plain)
    version = params.get("version")
    if sentences.versioned and isinstance(version, int) and not isinstance(version, bool):
        return t(sentences.versioned, name=name, version=version)
    return t(sentences.named, name=name)


def event_lines(events: list[dict], lang: str, campaigns: Mapping[str, str]) -> list[EventLine]:
    """`events` as `FedStore.events` returns them (newest first); `campaigns` maps a campaign id to its name."""
    return [EventLine(when(e["at"], lang), event_sentence(e["kind"], e.get("params"), lang, campaigns),
                      f"{e['kind']}: {e['detail'] or ''}") for e in events]
