"""The pure layers' codes in the person's words: each code maps to its catalog key here, and only here.

`crdt/` and `protocol/` raise errors and give reasons as a stable code and
its values (`CampaignError.code`/`.params`, `disclosure.Reason`,
`protocol.connection.REFUSALS`); they know no catalog. The web and the
command line render what this module builds (`Words`), French first, and
nothing reads an English message back. tests/node/test_error_codes.py checks
that every code has its words in French and in English.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from preau.crdt.disclosure import Reason
from preau.crdt.errors import CampaignError
from preau.crdt.schema import COLUMNS
from preau.protocol.connection import REFUSALS

from . import i18n
from .errors import Words, words

CAMPAIGN_KEYS = {  # CampaignError.code -> what the mistake is (the location is said before it)
    "not_a_campaign": "dwords.not_a_campaign", "not_a_table": "dwords.table", "unknown_field": "dwords.unknown_field", "missing": "dwords.missing",
    "whole_number": "dwords.whole_number", "between": "dwords.between", "text": "dwords.text",
    "too_long": "dwords.too_long", "ident": "dwords.ident", "date": "dwords.date", "one_of": "dwords.one_of",
    "max_equals_items": "dwords.max_equals_items", "items_wpm": "dwords.items_wpm",
    "two_thresholds": "dwords.two_thresholds", "threshold_order": "dwords.threshold_order",
    "school_year": "dwords.school_year", "closes_before": "dwords.closes_before", "bool": "dwords.bool",
    "no_exercise": "dwords.no_exercise", "too_many_exercises": "dwords.too_many_exercises",
    "duplicate_exercise": "dwords.duplicate_exercise", "no_such_exercise": "dwords.no_such_exercise",
    "policy_below_floor": "dwords.below_floor", "batch_below_cohort": "dwords.batch_below_cohort",
}

FIELD_KEYS = {  # a campaign field, as the person reads its name
    "id": "dwords.f_id", "name": "dwords.f_name", "level": "dwords.f_level", "school_year": "dwords.f_school_year",
    "opens": "dwords.f_opens", "closes": "dwords.f_closes", "exercises": "dwords.f_exercises",
    "illustrative": "dwords.f_illustrative", "policy": "dwords.f_policy", "thresholds": "dwords.f_thresholds",
    "items": "dwords.f_items", "max_score": "dwords.f_max_score", "subject": "dwords.f_subject",
    "score_kind": "dwords.f_score_kind",
}

SAID_PARAMS = {"field": "dwords.kind_{}"}  # values that are codes themselves, said from the catalog too

REASON_KEYS = {  # disclosure.Reason.code -> why a release goes or waits
    "small_cohort": "reason.small_cohort", "released": "reason.updated", "final": "reason.final",
    "waiting": "reason.waiting", "others_waiting": "reason.others_waiting", "unchanged": "reason.unchanged",
    "no_results": "reason.no_results", "pooled": "reason.pooled",
    "small_published_cohort": "reason.small_published_cohort", "waiting_counts": "reason.waiting_counts",
}
COLUMN_KEYS = {c: f"disclosure_rules.column.{c}" for c in (*COLUMNS, "total")}  # a count a reason names

AGGREGATE_REASON_KEYS = {  # statistics.AGGREGATE_REASONS -> why a district's aggregate carries no figures
    "until_closing": "aggregate.reason.until_closing",
    "no_school_contributing": "aggregate.reason.no_school_contributing",
    "too_few_schools": "aggregate.reason.too_few_schools",
}

REFUSAL_KEYS = {code: f"refusal.{code}" for code in REFUSALS}  # the sync protocol's refusals, by code
# Refusals that only a new invitation from the district mends (the head teacher must call them).
NEEDS_INVITATION = frozenset({"unknown_peer", "peer_revoked", "key_mismatch", "bad_rotation", "key_superseded"})


@dataclass(frozen=True, slots=True)
class Location:
    """Where a campaign's mistake is (`exercises[2].thresholds`), said as "exercice n° 3, seuils" in French."""

    path: str

    def to(self, lang: str) -> str:
        if i18n.translate(lang, "dwords.path_style") == "path":  # English: the path as the file spells it
            return self.path
        parts = []
        for piece in self.path.split("."):
            name, _, index = piece.partition("[")
            if name == "exercises" and index.rstrip("]").isdigit():
                i = int(index.rstrip("]"))
                parts.append(i18n.translate(lang, "dwords.exercise_n", n=i + 1))
            elif not index and name in FIELD_KEYS:
                parts.append(i18n.translate(lang, FIELD_KEYS[name]))
            else:
                parts.append(piece)
        return i18n.translate(lang, "dwords.where_join").join(parts)

    def __str__(self) -> str:
        return self.path


def campaign_words(exc: CampaignError, *, file: str | None = None, line: int | None = None) -> Words:
    """A campaign's mistake for a person: the file and line when it came from one, the field, then what is wrong."""
    params = {k: (words(str(v), SAID_PARAMS[k].format(v)) if k in SAID_PARAMS else v) for k, v in exc.params.items()}
    what = words(str(exc), CAMPAIGN_KEYS[exc.code], **params)
    english = f"{file}:{line}: {exc}" if file and line else f"{file}: {exc}" if file else str(exc)
    where = Location(exc.location)
    if not exc.location:
        return words(english, "dwords.in_file_whole", file=file, what=what) if file else what
    if file and line:
        return words(english, "dwords.at_line", file=file, line=line, where=where, what=what)
    if file:
        return words(english, "dwords.in_file", file=file, where=where, what=what)
    return words(english, "dwords.in_form", where=where, what=what)


@dataclass(frozen=True, slots=True)
class Reasons:
    """Why a release goes or waits (`ReleaseDecision.reasons`), said part by part in the person's language.
    `names`: the campaign's exercise names by id, so that an exercise is said as the head teacher reads it."""

    parts: tuple[Reason, ...]
    english: str = ""
    names: Mapping[str, str] = field(default_factory=dict)

    def to(self, lang: str) -> str:
        if not self.parts:
            return self.english
        return i18n.translate(lang, "reason.join").join(
            i18n.translate(lang, REASON_KEYS[r.code], **self._said(lang, r.params)) for r in self.parts)

    def _said(self, lang: str, params: Mapping[str, object]) -> dict[str, object]:
        said = dict(params)
        if "exercise" in said and str(said["exercise"]) in self.names:
            said["exercise"] = i18n.translate(lang, "reason.exercise_name", name=self.names[str(said["exercise"])])
        if str(said.get("column")) in COLUMN_KEYS:
            said["column"] = i18n.translate(lang, COLUMN_KEYS[str(said["column"])])
        return said

    def __str__(self) -> str:
        return self.english


def reasons_words(decision, names: Mapping[str, str] | None = None) -> Reasons:
    """A `disclosure.ReleaseDecision`'s reasons, ready to render (`.to(lang)`); `names`: exercise names by id."""
    return Reasons(tuple(decision.reasons), decision.reason, dict(names or {}))


# Failures of the node's own sync client (federation.transport.PeerUnreachable codes), said without the
# English detail (the address and the network error stay in the log and `preau status`).
FAILURE_KEYS = {code: f"msg.sync.failed.{code}" for code in (
    "unreachable", "connection_lost", "handshake_lost", "handshake_failed", "session_too_large", "session_exhausted",
    "too_many_documents", "message_too_large", "wrong_peer_key", "not_entitled",
    # the transport's own endings (federation/transport.py) and the gate's refusal
    "timeout", "handshake_timeout", "connection_broken", "rate_limited", "not_preau",
    # this node's own copy of a document it sends could not be read (transport.SessionDriver._working_copy)
    "document_error")}
# The refusals whose words name the district (a school's view of its district), said from the district's side
# when the peer is a school (its schools page): the school's node was busy, restarting, or a disk or a database
# (the school's, or this node's own: its log says which) stopped the exchange.
SCHOOL_SIDE_KEYS = {code: f"refusal.school.{code}" for code in ("busy", "shutting_down", "disk_full", "database_damaged",
                                                                    "handshake_lost")}


def refusal_words(code: str | None, english: str, *, peer: str = "district") -> Words:
    """A sync refusal or failure: the catalog's words for a known code, else the English as it came.
    `peer`: whom the sync was with, "district" (a school's pages) or "school" (the district's schools page)."""
    if peer == "school" and code in SCHOOL_SIDE_KEYS:
        return words(english, SCHOOL_SIDE_KEYS[code])
    if code in REFUSAL_KEYS:
        return words(english, REFUSAL_KEYS[code])
    if code in FAILURE_KEYS:
        return words(english, FAILURE_KEYS[code])
    if code:  # a check of the sync protocol without words of its own: said in general, with its code
        return words(english, "msg.sync.failed.other", code=code)
    return Words(english)


def asked_words(asked, names: dict, lang: str) -> str:
    """What a newer campaign version asked for and the school kept as before (`disclosure.AskedChange`), in words.

    Shared by the release page and `preau release`: it lives here, not in node/web, because the command line
    never imports the web (tests/test_layering.py)."""
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


def all_codes() -> Iterable[tuple[str, str]]:
    """(code family, catalog key) for every code the pure layers may give: what the tests check."""
    yield from (("campaign", k) for k in CAMPAIGN_KEYS.values())
    yield from (("reason", k) for k in REASON_KEYS.values())
    yield from (("reason", k) for k in COLUMN_KEYS.values())
    yield from (("aggregate", k) for k in AGGREGATE_REASON_KEYS.values())
    yield from (("refusal", k) for k in REFUSAL_KEYS.values())
    yield from (("failure", k) for k in FAILURE_KEYS.values())
