"""The result-entry grid and the class profile, as plain data for templates.

One parser (`parse_row`) reads what a teacher typed, whether it came from the
JavaScript grid (one row as JSON) or from the plain HTML form (the fallback),
so both paths accept and refuse exactly the same things.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from preau.crdt.campaign import GROUPS, Campaign, Exercise, group_for

from preau.node import i18n

ABSENT = "a"
_PUPIL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class EntryError(ValueError):
    """Something typed in the grid that cannot be saved. `key` names the catalog message."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key, self.params = key, params

    def message(self, lang: str) -> str:
        return i18n.translate(lang, self.key, **self.params)


@dataclass(frozen=True, slots=True)
class RowEntry:
    """One pupil's answers to one exercise, as typed so far."""

    pupil_id: str
    absent: bool = False
    items: tuple[int | None, ...] | None = None  # "items" exercises: 1, 0 or None (not typed yet)
    score: int | None = None  # "wpm": the number typed; "items": the sum once every item is typed

    @property
    def empty(self) -> bool:
        return not self.absent and self.score is None and not any(v is not None for v in self.items or ())

    def cells(self, exercise: Exercise) -> list[str]:
        """Back to what the grid shows in each cell."""
        width = _width(exercise)
        if self.absent:
            return [ABSENT] * width
        if exercise.score_kind == "wpm":
            return ["" if self.score is None else str(self.score)]
        items = self.items or (None,) * width
        return ["" if v is None else str(v) for v in items]

    def group(self, exercise: Exercise) -> str | None:
        if self.absent:
            return "absent"
        if self.score is None:
            return None
        return group_for(exercise, self.score)


def _width(exercise: Exercise) -> int:
    return (exercise.items or 0) if exercise.score_kind == "items" else 1


def check_pupil_id(pupil_id: Any) -> str:
    if not isinstance(pupil_id, str) or not _PUPIL_ID.match(pupil_id):
        raise EntryError("entry.bad_pupil")
    return pupil_id


def parse_row(exercise: Exercise, pupil_id: str, cells: Sequence[Any]) -> RowEntry:
    """A row as typed: item cells take 1, 0, a or nothing; a timed exercise's cell a number or a.

    An `a` anywhere marks the pupil absent for the whole exercise.
    """
    check_pupil_id(pupil_id)
    width = _width(exercise)
    if not isinstance(cells, (list, tuple)) or len(cells) != width:
        raise EntryError("entry.bad_shape", count=width)
    values = []
    for index, raw in enumerate(cells, start=1):
        if not isinstance(raw, str):
            raise EntryError("entry.bad_item" if exercise.score_kind == "items" else "entry.bad_number",
                             item=index, max=exercise.max_score)
        values.append(raw.strip().lower())
    if ABSENT in values:
        return RowEntry(pupil_id, absent=True)
    if exercise.score_kind == "wpm":
        value = values[0]
        if value == "":
            return RowEntry(pupil_id)
        if not value.isdigit() or len(value) > 4 or int(value) > exercise.max_score:
            raise EntryError("entry.bad_number", item=1, max=exercise.max_score)
        return RowEntry(pupil_id, score=int(value))
    items: list[int | None] = []
    for index, value in enumerate(values, start=1):
        if value == "":
            items.append(None)
        elif value in ("0", "1"):
            items.append(int(value))
        else:
            raise EntryError("entry.bad_item", item=index, max=exercise.max_score)
    score = sum(v for v in items if v is not None) if all(v is not None for v in items) else None
    return RowEntry(pupil_id, items=tuple(items), score=score)


def parse_row_json(exercise: Exercise, payload: Any) -> RowEntry:
    """The grid's fetch body: `{"pupil": id, "cells": ["1", "0", "", ...]}`."""
    if not isinstance(payload, dict):
        raise EntryError("entry.bad_shape", count=_width(exercise))
    return parse_row(exercise, check_pupil_id(payload.get("pupil")), payload.get("cells"))


def parse_row_body(exercise: Exercise, raw: bytes, charset: str | None = None) -> RowEntry:
    """`parse_row_json` on the request's bytes (read as aiohttp's `request.json()` would); a body that is
    not JSON in `charset` is refused like any other malformed row."""
    try:
        payload = json.loads(raw.decode(charset or "utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    return parse_row_json(exercise, payload)


def parse_grid_form(exercise: Exercise, pupil_ids: Sequence[str], form: Mapping[str, Any]) -> list[RowEntry]:
    """The no-JavaScript fallback: fields `c-<pupil>-<index>`. All rows are checked before any is kept."""
    width = _width(exercise)
    rows = []
    for pupil_id in pupil_ids:
        cells = [form.get(f"c-{pupil_id}-{i}", "") for i in range(width)]
        rows.append(parse_row(exercise, pupil_id, [c if isinstance(c, str) else "" for c in cells]))
    return rows


def score_text(exercise: Exercise, entry: RowEntry | None, lang: str) -> str:
    if entry is None or entry.empty:
        return ""
    if entry.absent:
        return i18n.translate(lang, "group.absent")
    if entry.score is None:
        return i18n.translate(lang, "grid.incomplete")
    if exercise.score_kind == "wpm":
        return i18n.translate(lang, "grid.wpm_score", score=entry.score)
    return f"{entry.score}/{exercise.max_score}"


@dataclass(frozen=True, slots=True)
class GridRow:
    pupil_id: str
    name: str
    cells: tuple[str, ...]
    score_text: str
    group: str | None


@dataclass(frozen=True, slots=True)
class GridView:
    """What grid.html draws. `save_url` takes the JSON row saves; `form_action` the fallback form."""

    kind: str
    max_score: int
    columns: tuple[str, ...]
    rows: tuple[GridRow, ...]
    save_url: str
    form_action: str


def grid_view(exercise: Exercise, pupils: Sequence[tuple[str, str]], entries: Mapping[str, RowEntry], *,
              save_url: str, form_action: str, lang: str) -> GridView:
    """`pupils` are (id, display name) pairs in display order; `entries` maps pupil id to what is saved."""
    if exercise.score_kind == "wpm":
        columns: tuple[str, ...] = (i18n.translate(lang, "grid.wpm_column"),)
    else:
        columns = tuple(str(i) for i in range(1, _width(exercise) + 1))
    rows = []
    for pupil_id, name in pupils:
        check_pupil_id(pupil_id)
        entry = entries.get(pupil_id)
        cells = tuple(entry.cells(exercise)) if entry else ("",) * len(columns)
        rows.append(GridRow(pupil_id, name, cells, score_text(exercise, entry, lang),
                            entry.group(exercise) if entry else None))
    return GridView(exercise.score_kind, exercise.max_score, columns, tuple(rows), save_url, form_action)


@dataclass(frozen=True, slots=True)
class ProfileExercise:
    """One exercise of a class profile: pupils' names per group, and those not entered yet."""

    exercise: Exercise
    groups: tuple[tuple[str, tuple[str, ...]], ...]  # (group key, names) in GROUPS order
    no_group: tuple[str, ...]  # scored but no thresholds published yet
    missing: tuple[str, ...]  # not entered or incomplete


def class_profile(campaign: Campaign, pupils: Sequence[tuple[str, str]],
                  entries: Mapping[str, Mapping[str, RowEntry]]) -> tuple[ProfileExercise, ...]:
    """`entries[exercise_id][pupil_id]`. Groups come from `group_for`, never recomputed here."""
    out = []
    for exercise in campaign.exercises:
        by_group: dict[str, list[str]] = {g: [] for g in GROUPS}
        no_group: list[str] = []
        missing: list[str] = []
        saved = entries.get(exercise.id, {})
        for pupil_id, name in pupils:
            entry = saved.get(pupil_id)
            group = entry.group(exercise) if entry else None
            if group is not None:
                by_group[group].append(name)
            elif entry is not None and entry.score is not None:
                no_group.append(name)
            else:
                missing.append(name)
        out.append(ProfileExercise(exercise, tuple((g, tuple(by_group[g])) for g in GROUPS),
                                   tuple(no_group), tuple(missing)))
    return tuple(out)


def saved_reply(exercise: Exercise, entry: RowEntry, lang: str) -> dict[str, Any]:
    """The JSON a row save answers with; grid.js shows score_text and the group's label."""
    group = entry.group(exercise)
    return {
        "ok": True,
        "score_text": score_text(exercise, entry, lang),
        "group": group,
        "group_label": i18n.translate(lang, f"group.{group}") if group else "",
    }
