"""Campaign definitions: exercises, thresholds, deadlines and the disclosure policy.

A definition arrives as plain data (a TOML file on a district, an Automerge
document on a school). `parse_campaign` is the single gate: whatever it returns
is valid, and every mistake is reported with its location so the person who
wrote the file can fix it.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import CampaignError, PolicyBelowFloorError

GROUPS = ("besoin", "fragile", "seuil2", "absent")
"""Group keys, in display order. See docs/architecture.md."""

SCORED_GROUPS = GROUPS[:3]
LEVELS = ("CP", "CE1", "CE2", "CM1", "CM2", "6e", "4e")
SCORE_KINDS = ("items", "wpm")
SUBJECTS = ("français", "mathématiques")
_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62})[a-z0-9]$")
_YEAR = re.compile(r"^(\d{4})-(\d{4})$")
MAX_EXERCISES = 100
MAX_ITEMS = 200
MAX_WPM = 400


@dataclass(frozen=True, slots=True)
class Policy:
    """Disclosure-control parameters. The national floor (`FLOOR`) belongs to the
    school's software: a district or académie may raise them for its schools,
    never lower them (`check_floor`)."""

    min_cohort: int = 10
    min_batch: int = 10
    small_cell_max: int = 10

    def to_dict(self) -> dict[str, int]:
        return {"min_cohort": self.min_cohort, "min_batch": self.min_batch, "small_cell_max": self.small_cell_max}

    def strictest(self, other: "Policy | None") -> "Policy":
        """Each setting at the higher of the two: what a school applies once it has seen both."""
        if other is None:
            return self
        return Policy(max(self.min_cohort, other.min_cohort), max(self.min_batch, other.min_batch),
                      max(self.small_cell_max, other.small_cell_max))


FLOOR = Policy(min_cohort=10, min_batch=10, small_cell_max=10)
"""The national minimums, in the code the school runs: no campaign document can lower them."""

POLICY_SETTINGS = ("min_cohort", "min_batch", "small_cell_max")


def check_floor(policy: Policy, loc: str = "policy") -> Policy:
    """Refuse a policy below the national floor, or one whose batches are smaller than its cohorts.

    Raises `PolicyBelowFloorError` with a code and parameters (setting, asked,
    minimum) that the node turns into words for the head teacher or district.
    A batch smaller than `min_cohort` would let two releases differ by fewer
    pupils than a school may publish at all, so `min_batch` must reach it.
    """
    for name in POLICY_SETTINGS:
        asked, floor = getattr(policy, name), getattr(FLOOR, name)
        if asked < floor:
            raise PolicyBelowFloorError(f"{loc}.{name}", name, asked, floor)
    if policy.min_batch < policy.min_cohort:
        raise PolicyBelowFloorError(f"{loc}.min_batch", "min_batch", policy.min_batch, policy.min_cohort,
                                    code="batch_below_cohort")
    return policy


@dataclass(frozen=True, slots=True)
class PolicyStatement:
    """One sentence of the policy for the person who approves a release: a code, its numbers, an English text.

    The node renders `code` with `params` from its message catalog (French
    first); `text` is the English wording for logs, docs and tests.
    """

    code: str
    params: Mapping[str, int]
    text: str


def describe_policy(policy: Policy) -> tuple[PolicyStatement, ...]:
    """The disclosure policy in plain terms, setting by setting, saying where it is above the national floor."""
    c, b, s = policy.min_cohort, policy.min_batch, policy.small_cell_max
    out = [
        PolicyStatement("policy_min_cohort", {"n": c, "floor": FLOOR.min_cohort},
                        f"No counts leave the school while fewer than {c} pupils have been assessed."),
        PolicyStatement("policy_min_batch", {"n": b, "floor": FLOOR.min_batch},
                        f"An exercise's counts change only when at least {b} pupils' results changed together; "
                        "smaller changes wait for the next release."),
        PolicyStatement("policy_small_cell_max", {"n": s, "floor": FLOOR.small_cell_max},
                        f"Beyond the district, any count from 1 to {s} pupils is hidden."),
        PolicyStatement("policy_thresholds_pinned", {},
                        "Once counts have left for a campaign, later versions of it cannot change the thresholds "
                        "this school's counts are computed with."),
    ]
    raised = [n for n in POLICY_SETTINGS if getattr(policy, n) > getattr(FLOOR, n)]
    if raised:
        out.append(PolicyStatement("policy_raised", {n: getattr(policy, n) for n in raised},
                                   "This campaign is stricter than the national minimums "
                                   f"({', '.join(f'{n} {getattr(policy, n)}' for n in raised)})."))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Exercise:
    id: str
    name: str
    subject: str
    score_kind: str
    max_score: int
    items: int | None = None
    thresholds: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "subject": self.subject,
            "score_kind": self.score_kind,
            "max_score": self.max_score,
        }
        if self.items is not None:
            out["items"] = self.items
        if self.thresholds is not None:
            out["thresholds"] = list(self.thresholds)
        return out


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    level: str
    school_year: str
    opens: str
    closes: str
    exercises: tuple[Exercise, ...]
    policy: Policy = field(default_factory=Policy)
    illustrative: bool = False

    def exercise(self, exercise_id: str) -> Exercise:
        for ex in self.exercises:
            if ex.id == exercise_id:
                return ex
        raise CampaignError("", "no_such_exercise", f"campaign {self.id!r} has no exercise {exercise_id!r}",
                            campaign=repr(self.id), exercise=repr(exercise_id))

    def is_closed(self, today: _dt.date) -> bool:
        return today > _dt.date.fromisoformat(self.closes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "level": self.level,
            "school_year": self.school_year,
            "opens": self.opens,
            "closes": self.closes,
            "illustrative": self.illustrative,
            "policy": self.policy.to_dict(),
            "exercises": [ex.to_dict() for ex in self.exercises],
        }


def group_for(exercise: Exercise, score: int | None, *, absent: bool = False) -> str | None:
    """The group of one pupil's result, or None while the exercise has no thresholds yet."""
    if absent:
        return "absent"
    if score is None:
        raise ValueError("a result that is not absent needs a score")
    if exercise.thresholds is None:
        return None
    t1, t2 = exercise.thresholds
    if score < t1:
        return "besoin"
    if score < t2:
        return "fragile"
    return "seuil2"


# -- parsing ---------------------------------------------------------------

_KNOWN_TOP = {"id", "name", "level", "school_year", "opens", "closes", "illustrative", "policy", "exercises"}
_KNOWN_EX = {"id", "name", "subject", "score_kind", "items", "max_score", "thresholds"}


def _int(value: Any, loc: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        # JavaScript writers store small numbers as floats; accept integral ones.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise CampaignError(loc, "whole_number", f"must be a whole number, got {value!r}", value=repr(value))
    if not lo <= value <= hi:
        raise CampaignError(loc, "between", f"must be between {lo} and {hi}, got {value}", low=lo, high=hi, value=value)
    return value


def _str(value: Any, loc: str, max_len: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(loc, "text", f"must be a non-empty text, got {value!r}", value=repr(value))
    if len(value) > max_len:
        raise CampaignError(loc, "too_long", f"is longer than {max_len} characters", max_len=max_len)
    return value.strip()


def _ident(value: Any, loc: str) -> str:
    text = _str(value, loc, 64)
    if not _ID.match(text):
        raise CampaignError(loc, "ident", f"must be 3 to 64 lowercase letters, digits or '-', got {value!r}", value=repr(value))
    return text


def _date(value: Any, loc: str) -> str:
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise CampaignError(loc, "date", f"must be a date written YYYY-MM-DD, got {value!r}", value=repr(value))


def _choice(value: Any, loc: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise CampaignError(loc, "one_of", f"must be one of {', '.join(allowed)}; got {value!r}", allowed=", ".join(allowed),
                            value=repr(value))
    return value


def _require(data: Mapping[str, Any], key: str, loc: str) -> Any:
    if key not in data:
        raise CampaignError(f"{loc}.{key}" if loc else key, "missing", "is missing")
    return data[key]


def parse_policy(data: Any, loc: str = "policy") -> Policy:
    """Read a policy table; settings left out take the national floor (`min_batch`: `min_cohort`)."""
    if data is None:
        return FLOOR
    if not isinstance(data, Mapping):
        raise CampaignError(loc, "not_a_table", "must be a table")
    unknown = set(data) - set(POLICY_SETTINGS)
    if unknown:
        raise CampaignError(f"{loc}.{sorted(unknown)[0]}", "unknown_field", "is not a known policy setting", field="policy")
    min_cohort = _int(data.get("min_cohort", FLOOR.min_cohort), f"{loc}.min_cohort", 0, 1000)
    min_batch = _int(data.get("min_batch", max(min_cohort, FLOOR.min_batch)), f"{loc}.min_batch", 0, 1000)
    small = _int(data.get("small_cell_max", FLOOR.small_cell_max), f"{loc}.small_cell_max", 0, 1000)
    return check_floor(Policy(min_cohort=min_cohort, min_batch=min_batch, small_cell_max=small), loc)


def parse_exercise(data: Any, loc: str) -> Exercise:
    if not isinstance(data, Mapping):
        raise CampaignError(loc, "not_a_table", "must be a table")
    unknown = set(data) - _KNOWN_EX
    if unknown:
        raise CampaignError(f"{loc}.{sorted(unknown)[0]}", "unknown_field", "is not a known exercise field", field="exercise")
    ex_id = _ident(_require(data, "id", loc), f"{loc}.id")
    name = _str(_require(data, "name", loc), f"{loc}.name")
    subject = _choice(_require(data, "subject", loc), f"{loc}.subject", SUBJECTS)
    kind = _choice(_require(data, "score_kind", loc), f"{loc}.score_kind", SCORE_KINDS)
    items: int | None = None
    if kind == "items":
        items = _int(_require(data, "items", loc), f"{loc}.items", 1, MAX_ITEMS)
        max_score = _int(data.get("max_score", items), f"{loc}.max_score", 1, MAX_ITEMS)
        if max_score != items:
            raise CampaignError(f"{loc}.max_score", "max_equals_items", f"must equal items ({items}) for an items exercise",
                                items=items)
    else:
        if "items" in data:
            raise CampaignError(f"{loc}.items", "items_wpm", "has no meaning for a words-per-minute exercise; remove it")
        max_score = _int(_require(data, "max_score", loc), f"{loc}.max_score", 1, MAX_WPM)
    thresholds = None
    if data.get("thresholds") is not None:
        raw = data["thresholds"]
        tloc = f"{loc}.thresholds"
        if not isinstance(raw, (list, tuple)) or len(raw) != 2:
            raise CampaignError(tloc, "two_thresholds", "must be two numbers: [threshold 1, threshold 2]")
        t1 = _int(raw[0], f"{tloc}[0]", 0, max_score)
        t2 = _int(raw[1], f"{tloc}[1]", 0, max_score)
        if not t1 <= t2:
            raise CampaignError(tloc, "threshold_order", f"threshold 1 ({t1}) must not be above threshold 2 ({t2})", t1=t1, t2=t2)
        thresholds = (t1, t2)
    return Exercise(ex_id, name, subject, kind, max_score, items, thresholds)


def parse_campaign(data: Any) -> Campaign:
    """Validate a campaign definition given as plain data; raise CampaignError naming the first mistake."""
    if not isinstance(data, Mapping):
        raise CampaignError("", "not_a_campaign", "a campaign definition must be a table of fields")
    unknown = set(data) - _KNOWN_TOP
    if unknown:
        raise CampaignError(sorted(unknown)[0], "unknown_field", "is not a known campaign field", field="campaign")
    cid = _ident(_require(data, "id", ""), "id")
    name = _str(_require(data, "name", ""), "name")
    level = _choice(_require(data, "level", ""), "level", LEVELS)
    year = _str(_require(data, "school_year", ""), "school_year", 9)
    m = _YEAR.match(year)
    if not m or int(m.group(2)) != int(m.group(1)) + 1:
        raise CampaignError("school_year", "school_year", f"must be two consecutive years like 2026-2027, got {year!r}",
                            value=repr(year))
    opens = _date(_require(data, "opens", ""), "opens")
    closes = _date(_require(data, "closes", ""), "closes")
    if closes < opens:
        raise CampaignError("closes", "closes_before", f"({closes}) is before opens ({opens})", closes=closes, opens=opens)
    illustrative = data.get("illustrative", False)
    if not isinstance(illustrative, bool):
        raise CampaignError("illustrative", "bool", "must be true or false")
    policy = parse_policy(data.get("policy"))
    raw_ex = _require(data, "exercises", "")
    if not isinstance(raw_ex, (list, tuple)) or not raw_ex:
        raise CampaignError("exercises", "no_exercise", "must list at least one exercise")
    if len(raw_ex) > MAX_EXERCISES:
        raise CampaignError("exercises", "too_many_exercises", f"has more than {MAX_EXERCISES} exercises", max=MAX_EXERCISES)
    exercises = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_ex):
        ex = parse_exercise(raw, f"exercises[{i}]")
        if ex.id in seen:
            raise CampaignError(f"exercises[{i}].id", "duplicate_exercise", f"{ex.id!r} is used by an earlier exercise",
                                value=repr(ex.id))
        seen.add(ex.id)
        exercises.append(ex)
    return Campaign(cid, name, level, year, opens, closes, tuple(exercises), policy, illustrative)
