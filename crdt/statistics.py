"""District statistics for one campaign, from verified school releases, and the district's aggregate.

The state is the set of each school's newest verified release, keyed by the
school's owner key; every figure is computed from that set in sorted order, so
the result cannot depend on the order releases arrived or documents merged.

The same software runs one level up: an académie's statistics are the set of
its districts' newest verified aggregates. Those carry small cells hidden
("≤10", "x"), so a summed count is then a lower bound: `ExerciseStatistics.hidden`
says how many members hid that cell, rates that depend on it are None, and an
académie's own aggregate shows such a cell as hidden, never as a number.
"""
from __future__ import annotations

import statistics as _st
from dataclasses import dataclass, field
from typing import Any, Mapping

from .campaign import SCORED_GROUPS, Campaign
from .disclosure import suppress_rows
from .documents import ReleaseContent, Row
from .errors import CrdtUsageError, DocumentError
from .schema import COLUMNS, MARKER_HIDDEN
from .signing import VerifiedRelease

STATS_VERSION = 1


@dataclass(frozen=True, slots=True)
class Spread:
    """Per-school rates of one group across contributing schools."""

    min: float
    q1: float
    median: float
    q3: float
    max: float


@dataclass(frozen=True)
class ExerciseStatistics:
    exercise: str
    counts: Mapping[str, int]  # per COLUMNS entry, summed over contributing schools (a lower bound where hidden)
    rates: Mapping[str, float | None]  # besoin/fragile/seuil2 over scored pupils; absent over all pupils
    schools_contributing: int
    spread: Mapping[str, Spread | None]  # per scored group
    hidden: Mapping[str, int] = field(default_factory=dict)  # per column: members that hid it (aggregates only)
    total: int | None = None  # pupils in this exercise; None if a member hid its total

    def shown(self, column: str) -> int | str:
        """A count as a reader may take it: the number, or "≥N" when some member hid part of it."""
        return f"≥{self.counts[column]}" if self.hidden.get(column) else self.counts[column]

    @property
    def exact(self) -> bool:
        return not any(self.hidden.values())


def _rates(counts: Mapping[str, int]) -> dict[str, float | None]:
    scored = sum(counts[g] for g in SCORED_GROUPS)
    everyone = sum(counts[c] for c in COLUMNS)
    out: dict[str, float | None] = {g: (counts[g] / scored if scored else None) for g in SCORED_GROUPS}
    out["absent"] = counts["absent"] / everyone if everyone else None
    return out


def _spread(values: list[float]) -> Spread | None:
    if not values:
        return None
    v = sorted(values)
    if len(v) == 1:
        return Spread(v[0], v[0], v[0], v[0], v[0])
    q1, med, q3 = _st.quantiles(v, n=4, method="inclusive")
    return Spread(v[0], q1, med, q3, v[-1])


class CampaignStatistics:
    """What a district knows of one campaign: each school's newest verified release."""

    def __init__(self, campaign: str):
        self.campaign = campaign
        self._schools: dict[str, tuple[int, int, str, ReleaseContent]] = {}  # owner hex -> (release, time, heads, content)
        self._cache: list[tuple[str, ReleaseContent, dict[str, Row]]] | None = None

    def add(self, verified: VerifiedRelease) -> bool:
        """Take a member's verified release (a school's) or aggregate (a district's, at an académie);
        a newer one replaces its older one. Returns False if it was not newer."""
        signed = verified.signed
        content = verified.content
        if signed.kind not in ("release", "aggregate") or not isinstance(content, ReleaseContent):
            raise CrdtUsageError("statistics take verified school releases and district aggregates only")
        if content.campaign != self.campaign:
            raise CrdtUsageError(f"this release is for campaign {content.campaign!r}, not {self.campaign!r}")
        key = signed.owner.hex()
        rank = (signed.release, signed.time, b"".join(signed.heads).hex())
        old = self._schools.get(key)
        if old is not None and old[:3] >= rank:
            return False
        self._schools[key] = (*rank, content)
        self._cache = None
        return True

    def release_of(self, owner: bytes) -> int:
        """The newest release number accepted from this school (0 if none): the reader's `last_release`."""
        entry = self._schools.get(owner.hex())
        return 0 if entry is None else entry[0]

    def _published(self) -> list[tuple[str, ReleaseContent, dict[str, Row]]]:
        if self._cache is None:
            self._cache = [
                (k, v[3], {r.exercise: r for r in v[3].rows}) for k, v in sorted(self._schools.items()) if v[3].status == "published"
            ]
        return self._cache

    @property
    def schools_contributing(self) -> int:
        return len(self._published())

    @property
    def schools_withheld(self) -> int:
        return sum(1 for v in self._schools.values() if v[3].status == "withheld")

    def exercise_ids(self) -> tuple[str, ...]:
        return tuple(sorted({e for _, _, rows in self._published() for e in rows}))

    @property
    def districts_contributing(self) -> int:
        """Published district aggregates among the members (non-zero only at an académie)."""
        return sum(1 for _, c, _ in self._published() if c.scope == "district")

    @property
    def schools_represented(self) -> int:
        """Schools behind the figures: one per school release, a district aggregate's own contributing count."""
        return sum((c.schools_contributing or 0) if c.scope == "district" else 1 for _, c, _ in self._published())

    def exercise(self, exercise: str) -> ExerciseStatistics:
        counts = {c: 0 for c in COLUMNS}
        hidden = {c: 0 for c in COLUMNS}
        total: int | None = 0
        members = 0
        per_school: list[dict[str, int]] = []  # members whose row is known exactly
        for _, _, rows in self._published():
            row = rows.get(exercise)
            if row is None or row.total == 0:
                continue
            members += 1
            total = total + row.total if isinstance(row.total, int) and total is not None else None
            school = {}
            for c in COLUMNS:
                value = row.get(c)
                if isinstance(value, int):
                    school[c] = value
                    counts[c] += value
                else:  # "≤N" is at least 1; "x" is 0 or more than N
                    hidden[c] += 1
                    counts[c] += 0 if value == MARKER_HIDDEN else 1
            if len(school) == len(COLUMNS):
                per_school.append(school)
        spreads: dict[str, Spread | None] = {}
        school_rates = [_rates(s) for s in per_school]
        for g in SCORED_GROUPS:
            # Over every member or not at all: a spread of the members that hid nothing would be skewed
            # towards the larger ones (small cells are hidden in small districts) and say so nowhere.
            complete = len(per_school) == members
            spreads[g] = _spread([r[g] for r in school_rates if r[g] is not None]) if complete else None
        rates = _rates(counts)
        if any(hidden[g] for g in SCORED_GROUPS):
            rates = {g: None for g in rates}
        elif any(hidden.values()):
            rates["absent"] = None
        return ExerciseStatistics(exercise, counts, rates, members, spreads, hidden,
                                  total if members else 0)

    def cohort(self) -> int:
        return sum(c.cohort or 0 for _, c, _ in self._published())

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATS_VERSION,
            "campaign": self.campaign,
            "schools": {
                k: {"release": r, "time": t, "heads": h, "content": c.to_dict()} for k, (r, t, h, c) in sorted(self._schools.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CampaignStatistics":
        try:
            if data["version"] != STATS_VERSION:
                raise DocumentError(f"statistics version {data['version']} is not supported; update Préau")
            out = cls(str(data["campaign"]))
            for k, v in data["schools"].items():
                out._schools[str(k)] = (int(v["release"]), int(v["time"]), str(v["heads"]), ReleaseContent.from_dict(v["content"]))
            out._cache = None
            return out
        except DocumentError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DocumentError(f"the stored district statistics are damaged ({exc.__class__.__name__}); rebuild them from the verified releases") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CampaignStatistics) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def build_aggregate(
    stats: CampaignStatistics,
    campaign: Campaign,
    *,
    release: int,
    previous: ReleaseContent | None = None,
    final: bool = False,
) -> ReleaseContent:
    """The district's aggregate for the level above, with the small-cell rule applied.

    `previous` is the district's last aggregate of this campaign: every cell it
    hid stays hidden, so comparing releases cannot reveal a suppressed value.
    Write the result with `documents.write_release` into the district's
    aggregate document, then sign it.
    """
    if stats.campaign != campaign.id:
        raise CrdtUsageError(f"these statistics are for campaign {stats.campaign!r}, not {campaign.id!r}")
    if previous is not None and release <= previous.release:
        raise CrdtUsageError(f"release {release} must be above the previous aggregate's {previous.release}")
    policy = campaign.policy
    if stats.schools_contributing == 0:
        return ReleaseContent(
            campaign.id, release, "withheld", "no_school_contributing", policy, final=final, scope="district",
            schools_contributing=0, schools_withheld=stats.schools_withheld,
        )
    rows = []
    unknown: set[tuple[str, str]] = set()  # at an académie: cells some district hid; never shown as numbers
    for ex in campaign.exercises:
        e = stats.exercise(ex.id)
        row = Row.from_counts(ex.id, e.counts)
        if e.total is not None and e.total != row.total:
            row = Row(ex.id, row.cells, e.total)
        rows.append(row)
        unknown |= {(ex.id, c) for c, n in e.hidden.items() if n}
        if e.total is None:
            unknown.add((ex.id, "total"))
    pattern = set()
    if previous is not None:
        for r in previous.rows:
            pattern |= {(r.exercise, c) for c in (*COLUMNS, "total") if not isinstance(r.get(c), int)}
    shown, _ = suppress_rows(rows, policy.small_cell_max, pattern, unknown=unknown)
    return ReleaseContent(
        campaign.id, release, "published", "", policy, shown, stats.cohort(), final=final, scope="district",
        schools_contributing=stats.schools_contributing, schools_withheld=stats.schools_withheld,
    )
