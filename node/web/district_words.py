"""Campaign-file errors (written in English by the layers below, for the command line) in the words of
the people at the district, French first.

`district_words(message, lang)` recognises the refusals of `parse_campaign`
and `parse_campaign_bytes` and says them from the catalog
(locales/*/district.json), keeping the file name, the line and the field; a
message it does not know is shown as it is, never hidden. (A UAI typed in a
form is checked by `preau.node.errors.checked_uai`, whose error carries its
own catalog words.)
"""
from __future__ import annotations

import re

from preau.node import i18n

_FIELD = {  # where a campaign-file mistake is, as the person reads it
    "id": "dwords.f_id", "name": "dwords.f_name", "level": "dwords.f_level", "school_year": "dwords.f_school_year",
    "opens": "dwords.f_opens", "closes": "dwords.f_closes", "exercises": "dwords.f_exercises",
    "illustrative": "dwords.f_illustrative", "policy": "dwords.f_policy", "thresholds": "dwords.f_thresholds",
    "items": "dwords.f_items", "max_score": "dwords.f_max_score", "subject": "dwords.f_subject",
    "score_kind": "dwords.f_score_kind",
}

_FILE = tuple((re.compile(p), k) for p, k in (
    (r"^(?P<file>.+) is not UTF-8 text", "dwords.not_utf8"),
    (r"^(?P<file>.+) is not valid TOML: (?P<v>.*)$", "dwords.not_toml"),
))

_WHAT = tuple((re.compile(p), k) for p, k in (
    (r"^must be a whole number, got (?P<v>.*)$", "dwords.whole_number"),
    (r"^must be between (?P<a>-?\d+) and (?P<b>-?\d+), got (?P<v>.*)$", "dwords.between"),
    (r"^must be a non-empty text, got (?P<v>.*)$", "dwords.text"),
    (r"^is longer than (?P<a>\d+) characters$", "dwords.too_long"),
    (r"^must be 3 to 64 lowercase letters, digits or '-', got (?P<v>.*)$", "dwords.ident"),
    (r"^must be a date written YYYY-MM-DD, got (?P<v>.*)$", "dwords.date"),
    (r"^must be one of (?P<a>.*); got (?P<v>.*)$", "dwords.one_of"),
    (r"^is missing$", "dwords.missing"),
    (r"^must be a table$", "dwords.table"),
    (r"^is not a known (policy setting|exercise field|campaign field)$", "dwords.unknown_field"),
    (r"^must equal items \((?P<a>\d+)\) for an items exercise$", "dwords.max_equals_items"),
    (r"^has no meaning for a words-per-minute exercise; remove it$", "dwords.items_wpm"),
    (r"^must be two numbers: \[threshold 1, threshold 2\]$", "dwords.two_thresholds"),
    (r"^threshold 1 \((?P<a>\d+)\) must not be above threshold 2 \((?P<b>\d+)\)$", "dwords.threshold_order"),
    (r"^must be two consecutive years like 2026-2027, got (?P<v>.*)$", "dwords.school_year"),
    (r"^\((?P<a>[^)]*)\) is before opens \((?P<b>[^)]*)\)$", "dwords.closes_before"),
    (r"^must be true or false$", "dwords.bool"),
    (r"^must list at least one exercise$", "dwords.no_exercise"),
    (r"^has more than (?P<a>\d+) exercises$", "dwords.too_many_exercises"),
    (r"^(?P<v>'.*') is used by an earlier exercise$", "dwords.duplicate_exercise"),
    (r"^asks for (?P<a>\d+), below the national minimum of (?P<b>\d+)", "dwords.below_floor"),
    (r"^asks for batches of (?P<a>\d+) pupils, fewer than its min_cohort of (?P<b>\d+)", "dwords.batch_below_cohort"),
))

# "FILE:LINE: location: what", "FILE: location: what" (a file's mistake) or "location: what" (a form's).
_LOCATED = re.compile(r"^(?:(?P<file>[^:]+?)(?::(?P<line>\d+))?: )?(?P<loc>[a-z_]+(?:\[\d+\])?(?:\.[a-z_0-9\[\]]+)*): (?P<what>.+)$")


def _params(m: re.Match[str]) -> dict[str, str]:
    return {k: v for k, v in m.groupdict().items() if v is not None}


def _where(loc: str, lang: str) -> str:
    """`exercises[2].thresholds` as "exercice n° 3, seuils"."""
    parts = []
    for piece in loc.split("."):
        m = re.match(r"^([a-z_]+)\[(\d+)\]$", piece)
        if m and m.group(1) == "exercises":
            parts.append(i18n.translate(lang, "dwords.exercise_n", n=int(m.group(2)) + 1))
        elif piece in _FIELD:
            parts.append(i18n.translate(lang, _FIELD[piece]))
        else:
            parts.append(piece)
    return ", ".join(parts)


def district_words(message: str, lang: str) -> str:
    for pattern, key in _FILE:
        m = pattern.match(message)
        if m:
            p = _params(m)
            return i18n.translate(lang, key, v=p.get("v", ""), file=p.get("file", ""))
    m = _LOCATED.match(message)
    if m:
        for pattern, key in _WHAT:
            w = pattern.match(m.group("what"))
            if w:
                p = _params(w)
                what = i18n.translate(lang, key, v=p.get("v", ""), a=p.get("a", ""), b=p.get("b", ""))
                where = _where(m.group("loc"), lang)
                if m.group("file") and m.group("line"):
                    return i18n.translate(lang, "dwords.at_line", file=m.group("file"), line=m.group("line"),
                                          where=where, what=what)
                if m.group("file"):
                    return i18n.translate(lang, "dwords.in_file", file=m.group("file"), where=where, what=what)
                return i18n.translate(lang, "dwords.in_form", where=where, what=what)
    return message
