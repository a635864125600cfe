"""What teachers use the results for: support groups, the class x exercise colour table, the parents' sheets.

All three are read-only pages of one class and one campaign of its level, for
the class's teacher and the head teacher only (`classroom.class_for`, checked
against the store on every request). They never leave the school: nothing
here is sent, stored or put in a URL beyond the class, campaign and pupil ids.

Groups come from `crdt.campaign.group_for` through `grid.RowEntry.group`,
never recomputed here. The store work of each page is one plain function
taking (store, session, ids) and returning what the template draws.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from aiohttp import web

from preau.crdt.campaign import Campaign, Exercise
from preau.node import i18n
from .classroom import TEACHING, campaign_of, class_base, class_for, entries_of, name_of, pupil_of
from .context import store_of, unlocked
from .grid import RowEntry, score_text
from .render import render
from .security import login_required, request_language

NEEDS = ("besoin", "fragile")
"""The groups a support group is formed from, most urgent first."""

_SAID = {"besoin": "parents.said_besoin", "fragile": "parents.said_fragile", "seuil2": "parents.said_seuil2"}
_SUBJECT_KEYS = {"français": "reports.subject_fr", "mathématiques": "reports.subject_maths"}


def subject_name(subject: str, lang: str) -> str:
    key = _SUBJECT_KEYS.get(subject)
    return i18n.translate(lang, key) if key else subject[:1].upper() + subject[1:]


# -- support groups -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PupilNeeds:
    """One pupil of a domain's list: the exercises where they are "à besoin", then "fragile"."""

    name: str
    besoin: tuple[str, ...]
    fragile: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DomainGroups:
    subject: str
    pupils: tuple[PupilNeeds, ...]  # most exercises "à besoin" first, then most "fragile", then by name
    entered: bool = True  # some result of this domain is saved: "nobody to help" means something


@dataclass(frozen=True, slots=True)
class ExerciseGroups:
    exercise: Exercise
    besoin: tuple[str, ...]
    fragile: tuple[str, ...]
    pending: bool  # no thresholds yet: nobody can be placed in a group
    missing: tuple[str, ...] = ()  # pupils with nothing saved for this exercise yet: not "nobody", not yet known


def _group(exercise: Exercise, entry: RowEntry | None) -> str | None:
    return entry.group(exercise) if entry is not None else None


def support_groups(campaign: Campaign, pupils: Sequence[tuple[str, str]],
                   entries: Mapping[str, Mapping[str, RowEntry]]) -> tuple[tuple[DomainGroups, ...], tuple[ExerciseGroups, ...]]:
    """Per domain (subject, in the campaign's order): every pupil "à besoin" or "fragile" on at least one of its
    exercises; per exercise: who is "à besoin" and who is "fragile". `entries[exercise_id][pupil_id]`."""
    subjects: list[str] = []
    for ex in campaign.exercises:
        if ex.subject not in subjects:
            subjects.append(ex.subject)
    domains = []
    for subject in subjects:
        rows = []
        for pupil_id, name in pupils:
            found: dict[str, list[str]] = {g: [] for g in NEEDS}
            for ex in campaign.exercises:
                group = _group(ex, entries.get(ex.id, {}).get(pupil_id)) if ex.subject == subject else None
                if group in found:
                    found[group].append(ex.name)
            if found["besoin"] or found["fragile"]:
                rows.append(PupilNeeds(name, tuple(found["besoin"]), tuple(found["fragile"])))
        # the most in need first; among equals, the class list's own order (by last name), which sort keeps
        rows.sort(key=lambda r: (-len(r.besoin), -len(r.fragile)))
        entered = any(entries.get(ex.id) for ex in campaign.exercises if ex.subject == subject)
        domains.append(DomainGroups(subject, tuple(rows), entered))
    per_exercise = []
    for ex in campaign.exercises:
        saved = entries.get(ex.id, {})
        by: dict[str, list[str]] = {g: [] for g in NEEDS}
        for pupil_id, name in pupils:
            group = _group(ex, saved.get(pupil_id))
            if group in by:
                by[group].append(name)
        missing = tuple(name for pupil_id, name in pupils if pupil_id not in saved)
        per_exercise.append(ExerciseGroups(ex, tuple(by["besoin"]), tuple(by["fragile"]), ex.thresholds is None, missing))
    return tuple(domains), tuple(per_exercise)


# -- the class x exercise table -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Cell:
    group: str | None  # None: not entered, incomplete, or no thresholds yet
    score: str  # the score as the grid shows it ("4/5", "38 mots/min", "Absent", "" when not entered)


@dataclass(frozen=True, slots=True)
class TableRow:
    pupil_id: str
    name: str
    cells: tuple[Cell, ...]
    besoin: int
    fragile: int


def colour_table(campaign: Campaign, pupils: Sequence[tuple[str, str]],
                 entries: Mapping[str, Mapping[str, RowEntry]], lang: str) -> tuple[tuple[TableRow, ...], tuple[dict[str, int], ...]]:
    """Pupils in rows, exercises in columns; and, per exercise, how many pupils are in each group."""
    rows = []
    totals: list[dict[str, int]] = [{} for _ in campaign.exercises]
    for pupil_id, name in pupils:
        cells = []
        for i, ex in enumerate(campaign.exercises):
            entry = entries.get(ex.id, {}).get(pupil_id)
            group = _group(ex, entry)
            cells.append(Cell(group, score_text(ex, entry, lang)))
            if group:
                totals[i][group] = totals[i].get(group, 0) + 1
        rows.append(TableRow(pupil_id, name, tuple(cells), sum(c.group == "besoin" for c in cells),
                             sum(c.group == "fragile" for c in cells)))
    return tuple(rows), tuple(totals)


# -- the parents' sheet -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SheetLine:
    exercise: str
    said: str  # what the result means, in a parent's words
    score: str  # the score in words ("4 réponses justes sur 5"), "" when there is none


@dataclass(frozen=True, slots=True)
class ParentSheet:
    pupil_id: str
    name: str
    subjects: tuple[tuple[str, tuple[SheetLine, ...]], ...]


def _sheet_line(ex: Exercise, entry: RowEntry | None, lang: str) -> SheetLine:
    t = lambda key, **kw: i18n.translate(lang, key, **kw)  # noqa: E731
    if entry is None or entry.empty or (entry.score is None and not entry.absent):
        return SheetLine(ex.name, t("parents.not_assessed"), "")
    if entry.absent:
        return SheetLine(ex.name, t("parents.absent"), "")
    if ex.score_kind == "wpm":
        score = t("parents.score_wpm", score=entry.score)
    else:
        score = t("parents.score_items", score=entry.score, max=ex.max_score)
    group = entry.group(ex)
    return SheetLine(ex.name, t(_SAID[group] if group else "parents.said_pending"), score)


def parent_sheet(campaign: Campaign, pupil_id: str, name: str,
                 entries: Mapping[str, Mapping[str, RowEntry]], lang: str) -> ParentSheet:
    by_subject: dict[str, list[SheetLine]] = {}
    for ex in campaign.exercises:
        line = _sheet_line(ex, entries.get(ex.id, {}).get(pupil_id), lang)
        by_subject.setdefault(subject_name(ex.subject, lang), []).append(line)
    return ParentSheet(pupil_id, name, tuple((s, tuple(lines)) for s, lines in by_subject.items()))


# -- store work (one synchronous function per page) ---------------------------------------------

def _class_results(store: Any, s: Any, class_id: str, campaign_id: str) -> tuple[Any, Campaign, list[tuple[str, str]],
                                                                                   dict[str, dict[str, RowEntry]]]:
    c = class_for(store, s, class_id)
    campaign = campaign_of(store, s, campaign_id, c)
    pupils = [(p.id, name_of(p)) for p in store.list_pupils(s, c.id)]
    return c, campaign, pupils, entries_of(store.get_results(s, campaign.id, c.id))


def groups_data(store: Any, s: Any, class_id: str, campaign_id: str) -> dict[str, Any]:
    c, campaign, pupils, entries = _class_results(store, s, class_id, campaign_id)
    domains, per_exercise = support_groups(campaign, pupils, entries)
    return {"klass": c, "campaign": campaign, "domains": domains, "per_exercise": per_exercise,
            "entered": any(entries.values()), "base": class_base(c), "pupils_count": len(pupils)}


def table_data(store: Any, s: Any, class_id: str, campaign_id: str, lang: str) -> dict[str, Any]:
    c, campaign, pupils, entries = _class_results(store, s, class_id, campaign_id)
    rows, totals = colour_table(campaign, pupils, entries, lang)
    return {"klass": c, "campaign": campaign, "rows": rows, "totals": totals, "base": class_base(c)}


def sheets_data(store: Any, s: Any, class_id: str, campaign_id: str, pupil_id: str | None, lang: str) -> dict[str, Any]:
    c, campaign, pupils, entries = _class_results(store, s, class_id, campaign_id)
    if pupil_id is not None:
        pupils = [(pupil_id, name_of(pupil_of(store, s, c, pupil_id)))]
    sheets = [parent_sheet(campaign, pid, name, entries, lang) for pid, name in pupils]
    return {"klass": c, "campaign": campaign, "sheets": sheets, "base": class_base(c), "one": pupil_id is not None,
            "school": store.school()["name"]}


# -- pages --------------------------------------------------------------------------------------

def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["class_id"], request.match_info["campaign_id"]


@login_required(roles=TEACHING)
async def groups_page(request: web.Request) -> web.StreamResponse:
    data = groups_data(store_of(request), unlocked(request), *_ids(request))
    lang = request_language(request)
    return await render(request, "class_groups.html", {**data, "subject_name": lambda s: subject_name(s, lang)})


@login_required(roles=TEACHING)
async def table_page(request: web.Request) -> web.StreamResponse:
    data = table_data(store_of(request), unlocked(request), *_ids(request), request_language(request))
    return await render(request, "class_table.html", data)


@login_required(roles=TEACHING)
async def sheets_page(request: web.Request) -> web.StreamResponse:
    data = sheets_data(store_of(request), unlocked(request), *_ids(request), request.match_info.get("pupil_id"),
                       request_language(request))
    return await render(request, "parent_sheets.html", data)


def add_routes(r: web.UrlDispatcher) -> None:
    g = "/classes/{class_id:[0-9a-f]{16}}/campaigns/{campaign_id:[a-z0-9-]{3,64}}"
    r.add_get(g + "/groups", groups_page)
    r.add_get(g + "/table", table_page)
    r.add_get(g + "/parents", sheets_page)
    r.add_get(g + "/parents/{pupil_id:[0-9a-f]{16}}", sheets_page)


__all__ = ["add_routes", "colour_table", "parent_sheet", "support_groups"]
