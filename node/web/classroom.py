"""What every class page reads: the class in the URL (checked live), its campaigns, its results as grid rows.

The school's teacher pages (school.py), the grid (school_grid.py) and the class
reports (class_reports.py) all start from `class_of`: the class must be in the
logged-in person's list right now (the store's list, not the login-time
snapshot), and a campaign is only found for a class of its level.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from preau.crdt.campaign import Campaign, Exercise

from preau.node.records.store import ResultInput, Result
from .grid import RowEntry
from .security import AccessDenied
from .context import store_of, unlocked

TEACHING = ("teacher", "admin")
ADMIN = ("admin",)


def class_of(request: web.Request) -> tuple[Any, Any, Any]:
    """(store, session, ClassInfo) of the class in the URL, if this person may open it (checked live)."""
    store, s = store_of(request), unlocked(request)
    return store, s, class_for(store, s, request.match_info["class_id"])


def class_for(store: Any, s: Any, class_id: str) -> Any:
    """The class `class_id` if this session may open it: its teacher or the head teacher (AccessDenied: 403)."""
    for c in store.list_classes(s):  # a teacher's list holds only the classes assigned right now
        if c.id == class_id:
            return c
    raise AccessDenied(class_id)


def campaign_of(store: Any, s: Any, campaign_id: str, klass: Any = None) -> Campaign:
    """The campaign in the URL; for a class's page, only one of the class's level (any other: not found)."""
    for c in store.list_campaigns(s):
        if c.id == campaign_id:
            if klass is not None and c.level.casefold() != klass.level.casefold():
                break
            return c
    raise web.HTTPNotFound()


def campaigns_of(store: Any, s: Any, c: Any) -> list[Campaign]:
    """The campaigns of a class's level: a CE1 class is never offered the CP exercises."""
    return [campaign for campaign in store.list_campaigns(s) if campaign.level.casefold() == c.level.casefold()]


def completion(store: Any, s: Any, c: Any, campaigns: list[Campaign]) -> dict[tuple[str, str], int]:
    """(campaign id, exercise id) -> pupils entered (a result or absent), for "12/25" beside each exercise."""
    done: dict[tuple[str, str], int] = {}
    for campaign in campaigns:
        for r in store.get_results(s, campaign.id, c.id):
            if r.status in ("done", "absent"):
                done[(campaign.id, r.exercise_id)] = done.get((campaign.id, r.exercise_id), 0) + 1
    return done


def exercise_of(campaign: Campaign, exercise_id: str) -> Exercise:
    for ex in campaign.exercises:
        if ex.id == exercise_id:
            return ex
    raise web.HTTPNotFound()


def name_of(p: Any) -> str:
    return f"{p.first_name} {p.last_name}"


def entry_of(result: Result) -> RowEntry:
    """A stored result as the grid shows it (a row saved incomplete has no score yet)."""
    if result.status == "absent":
        return RowEntry(result.pupil_id, absent=True)
    if result.status != "done":
        return RowEntry(result.pupil_id)
    if result.answers is not None:
        complete = all(v is not None for v in result.answers)
        return RowEntry(result.pupil_id, items=tuple(result.answers), score=result.score if complete else None)
    return RowEntry(result.pupil_id, score=result.wpm)


def entries_of(results: list[Result]) -> dict[str, dict[str, RowEntry]]:
    out: dict[str, dict[str, RowEntry]] = {}
    for r in results:
        out.setdefault(r.exercise_id, {})[r.pupil_id] = entry_of(r)
    return out


def to_input(entry: RowEntry, exercise: Exercise) -> ResultInput:
    if entry.absent:
        return ResultInput(entry.pupil_id, exercise.id, "absent")
    if exercise.score_kind == "wpm":
        return ResultInput(entry.pupil_id, exercise.id, wpm=entry.score)
    return ResultInput(entry.pupil_id, exercise.id, answers=entry.items)


def save_rows(store: Any, s: Any, campaign: Campaign, exercise: Exercise, rows: list[RowEntry],
               saved: dict[str, RowEntry]) -> None:
    """Save what was typed. An emptied row is kept as 'not assessed' (the store has no way to delete a result)."""
    inputs = []
    for row in rows:
        if row.empty:
            if row.pupil_id in saved and not saved[row.pupil_id].empty:
                inputs.append(ResultInput(row.pupil_id, exercise.id, "not_assessed"))
            continue
        inputs.append(to_input(row, exercise))
    if inputs:
        store.save_results(s, campaign.id, inputs)


def class_base(c: Any) -> str:
    return f"/classes/{c.id}"

def pupil_of(store: Any, s: Any, c: Any, pupil_id: str) -> Any:
    for p in store.list_pupils(s, c.id):
        if p.id == pupil_id:
            return p
    raise web.HTTPNotFound()


