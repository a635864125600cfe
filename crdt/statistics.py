"""District statistics for one campaign, from verified school releases, and the district's aggregate.

The state is the set of each school's newest verified release, keyed by the
school's owner key; every figure is computed from that set in sorted order, so
the result cannot depend on the order releases arrived or documents merged.

The same software runs one level up: an académie's statistics are the set of
its districts' newest verified aggregates. Those carry small cells hidden
("≤10", "x"), so a summed count is then a lower bound: `ExerciseStatistics.hidden`
says how many members hid that cell, rates that depend on it are None, and an
académie's own aggregate shows such a cell as hidden, never as a number.

Figures are kept up to date as members come and go (running sums per
exercise, per-member shares kept sorted for the quartiles), so reading a
campaign's statistics costs the same whatever the number of schools. Every
percentage follows one definition (`shares`, rounded by `percents`), and the
per-member table (`member_table`) and progress across a cohort's campaigns
(`progress`) are given as data for the pages and exports to lay out.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from . import disclosure as _disclosure
from .campaign import GROUPS, LEVELS, SCORED_GROUPS, SUBJECTS, Campaign
from .disclosure import suppress_rows
from .documents import ReleaseContent, Row
from .errors import AggregateAlreadySentError, CrdtUsageError, DocumentError
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


def _share_rule(counts: Mapping[str, int], hidden: Mapping[str, int] | None = None) -> dict[str, float | None]:
    """THE definition of every percentage Préau shows (see `shares`), with hidden parts made unknown."""
    if hidden and any(hidden.get(g) for g in SCORED_GROUPS):
        return {g: None for g in GROUPS}
    scored = sum(counts[g] for g in SCORED_GROUPS)
    everyone = sum(counts[c] for c in COLUMNS)
    out: dict[str, float | None] = {g: (counts[g] / scored if scored else None) for g in SCORED_GROUPS}
    out["absent"] = None if hidden and any(hidden.values()) else (counts["absent"] / everyone if everyone else None)
    return out


def shares(counts: Mapping[str, int]) -> dict[str, float | None]:
    """Shares of one row of counts, by the one definition used in every chart, table and export.

    `besoin`, `fragile` and `seuil2` are shares of the *assessed* pupils: those
    placed in one of these three groups. Absent pupils, and pupils scored on an
    exercise whose thresholds are not published yet (`pending`), are excluded,
    so the three shares add up to 1. `absent` is the share of *all* pupils on
    the list for that exercise (absent, pending and assessed). None where the
    base is 0.
    """
    return _share_rule(counts)


SHARE_BASIS = "assessed"
"""Name of the definition `shares` applies (for exports: "share of assessed pupils, absent excluded")."""


def percent_of(count: int, base: int) -> int | None:
    """A whole percentage, rounded half up exactly (no float): the one rounding of every figure shown."""
    if base <= 0:
        return None
    return (200 * count + base) // (2 * base)


def percents(counts: Mapping[str, int], hidden: Mapping[str, int] | None = None) -> dict[str, int | None]:
    """`shares` as whole percentages, computed exactly from the counts (chart, table and exports call this)."""
    unknown = _share_rule(counts, hidden)
    scored = sum(counts[g] for g in SCORED_GROUPS)
    everyone = sum(counts[c] for c in COLUMNS)
    out = {g: None if unknown[g] is None else percent_of(counts[g], scored) for g in SCORED_GROUPS}
    out["absent"] = None if unknown["absent"] is None else percent_of(counts["absent"], everyone)
    return out


def percent(rate: float | None) -> int | None:
    """A share that is not a ratio of counts (a quartile of school shares) as a whole percentage, half up."""
    return None if rate is None else math.floor(100 * rate + 0.5 + 1e-9)


def _quantiles(v: list[float]) -> Spread | None:
    """min, quartiles (statistics.quantiles' "inclusive" method, same arithmetic) and max of a sorted list."""
    if not v:
        return None
    if len(v) == 1:
        return Spread(v[0], v[0], v[0], v[0], v[0])
    m = len(v) - 1
    qs = []
    for i in (1, 2, 3):
        j, delta = divmod(i * m, 4)
        qs.append((v[j] * (4 - delta) + v[j + 1] * delta) / 4)
    return Spread(v[0], qs[0], qs[1], qs[2], v[-1])


class _ExerciseTotals:
    """Running sums of one exercise over the published members, updated as one member comes in or goes.

    Integer sums do not depend on order; the per-member shares are kept sorted,
    so quartiles are read in constant time and are the same whatever the order.
    """

    __slots__ = ("present", "members", "counts", "hidden", "total", "unknown_totals", "inexact", "rates")

    def __init__(self) -> None:
        self.present = 0  # published members with this row (even empty)
        self.members = 0  # ... whose row has pupils
        self.counts = [0] * len(COLUMNS)
        self.hidden = [0] * len(COLUMNS)
        self.total = 0
        self.unknown_totals = 0  # members that hid their total
        self.inexact = 0  # members with a hidden cell
        self.rates: dict[str, list[float]] = {g: [] for g in SCORED_GROUPS}

    def apply(self, row: Row, sign: int) -> None:
        self.present += sign
        if row.total == 0:
            return
        self.members += sign
        if isinstance(row.total, int):
            self.total += sign * row.total
        else:
            self.unknown_totals += sign
        exact = True
        for i, value in enumerate(row.cells):
            if isinstance(value, int):
                self.counts[i] += sign * value
            else:  # "≤N" is at least 1; "x" is 0 or more than N
                exact = False
                self.hidden[i] += sign
                self.counts[i] += sign * (0 if value == MARKER_HIDDEN else 1)
        if not exact:
            self.inexact += sign
            return
        rates = _share_rule(dict(zip(COLUMNS, row.cells)))
        for g in SCORED_GROUPS:
            r = rates[g]
            if r is None:
                continue
            values = self.rates[g]
            if sign > 0:
                bisect.insort(values, r)
            else:
                i = bisect.bisect_left(values, r)
                if i == len(values) or values[i] != r:
                    raise CrdtUsageError("statistics out of step: removing a member that was never added")
                del values[i]

    def statistics(self, exercise: str) -> ExerciseStatistics:
        counts = dict(zip(COLUMNS, self.counts))
        hidden = dict(zip(COLUMNS, self.hidden))
        # Over every member or not at all: a spread of the members that hid nothing would be skewed
        # towards the larger ones (small cells are hidden in small districts) and say so nowhere.
        complete = self.inexact == 0
        spreads = {g: (_quantiles(self.rates[g]) if complete else None) for g in SCORED_GROUPS}
        total: int | None = None if self.unknown_totals else self.total
        return ExerciseStatistics(exercise, counts, _share_rule(counts, hidden), self.members, spreads, hidden,
                                  total if self.members else 0)


def _represented(content: ReleaseContent) -> int:
    """Schools behind one member's figures: 1 for a school, its own contributing count for an aggregate."""
    return 1 if content.scope == "school" else (content.schools_contributing or 0)


@dataclass(frozen=True, slots=True)
class MemberCell:
    """One member's row for one exercise, as it published it (an aggregate's cells may be "≤N" or "x")."""

    counts: Mapping[str, int | str]
    total: int | str
    shares: Mapping[str, float | None]  # by `shares`' definition; None where a hidden cell makes it unknown
    percents: Mapping[str, int | None]


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One member of the statistics (a school, or a district at an académie): its newest release, as data.

    A withheld member has no figures: `exercises` is empty and `status` says so.
    """

    member: str  # owner key, hex
    scope: str  # "school" or "district" (or any other scope a release declares)
    status: str  # "published" or "withheld"
    reason: str
    release: int
    time: int
    cohort: int | None
    schools: int  # schools behind the figures (1 for a school)
    exercises: Mapping[str, MemberCell]

    def share(self, exercise: str, group: str) -> float | None:
        cell = self.exercises.get(exercise)
        return None if cell is None else cell.shares.get(group)


def _member_cell(row: Row) -> MemberCell:
    counts = dict(zip(COLUMNS, row.cells))
    hidden = {c: 1 for c, v in counts.items() if not isinstance(v, int)}
    lower = {c: (v if isinstance(v, int) else 0) for c, v in counts.items()}
    return MemberCell(counts, row.total, _share_rule(lower, hidden), percents(lower, hidden))


class CampaignStatistics:
    """What a district knows of one campaign: each school's newest verified release.

    Figures are kept up to date as releases come in (`add`, `replace_entry`):
    reading an exercise costs the same with 50 schools or 30,000.
    """

    def __init__(self, campaign: str):
        self.campaign = campaign
        self._schools: dict[str, tuple[int, int, str, ReleaseContent]] = {}  # owner hex -> (release, time, heads, content)
        self._totals: dict[str, _ExerciseTotals] = {}
        self._published_n = 0
        self._withheld_n = 0
        self._districts_n = 0
        self._represented_n = 0
        self._withheld_represented_n = 0
        self._cohort_n = 0
        self._cohort_unknown_n = 0  # published members that gave no cohort
        self._cache: tuple[MemberRow, ...] | None = None

    # -- keeping up to date --------------------------------------------------------

    def _apply(self, content: ReleaseContent, sign: int) -> None:
        self._withheld_represented_n += sign * (
            (content.status == "withheld") if content.scope == "school" else (content.schools_withheld or 0))
        if content.status == "withheld":
            self._withheld_n += sign
            return
        if content.status != "published":
            return
        self._published_n += sign
        self._districts_n += sign * (content.scope == "district")
        self._represented_n += sign * _represented(content)
        self._cohort_n += sign * (content.cohort or 0)
        self._cohort_unknown_n += sign * (content.cohort is None)
        for row in content.rows:
            totals = self._totals.get(row.exercise)
            if totals is None:
                totals = self._totals[row.exercise] = _ExerciseTotals()
            totals.apply(row, sign)
            if totals.present == 0:
                del self._totals[row.exercise]

    def _put(self, key: str, entry: tuple[int, int, str, ReleaseContent] | None) -> None:
        old = self._schools.pop(key, None)
        if old is not None:
            self._apply(old[3], -1)
        if entry is not None:
            self._schools[key] = entry
            self._apply(entry[3], +1)
        self._cache = None

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
        self._put(key, (*rank, content))
        return True

    def replace_entry(self, owner: str, entry: Mapping[str, Any] | None) -> None:
        """Set (or with None, drop) one member's entry in `to_dict`'s form, as a store holds it.

        For a node that keeps these statistics in memory and applies the rows its
        store changed; the entry was verified when it was stored.
        """
        if entry is None:
            self._put(owner, None)
            return
        self._put(owner, _entry_from_dict(entry))

    def release_of(self, owner: bytes) -> int:
        """The newest release number accepted from this school (0 if none): the reader's `last_release`."""
        entry = self._schools.get(owner.hex())
        return 0 if entry is None else entry[0]

    # -- reading ---------------------------------------------------------------------

    @property
    def members_count(self) -> int:
        """Members with an entry (published or withheld)."""
        return len(self._schools)

    @property
    def schools_contributing(self) -> int:
        return self._published_n

    @property
    def schools_withheld(self) -> int:
        return self._withheld_n

    def exercise_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._totals))

    @property
    def districts_contributing(self) -> int:
        """Published district aggregates among the members (non-zero only at an académie)."""
        return self._districts_n

    @property
    def schools_represented(self) -> int:
        """Schools behind the figures: one per school release, a district aggregate's own contributing count."""
        return self._represented_n

    @property
    def schools_withheld_represented(self) -> int:
        """Schools withheld behind the figures: withheld school releases, plus each aggregate's own withheld count."""
        return self._withheld_represented_n

    def exercise(self, exercise: str) -> ExerciseStatistics:
        totals = self._totals.get(exercise) or _ExerciseTotals()
        return totals.statistics(exercise)

    def cohort_known(self) -> bool:
        """Whether every published member gave its cohort (a district leaves it out when a row hides its total)."""
        return self._cohort_unknown_n == 0

    def cohort(self) -> int:
        return self._cohort_n

    def members(self) -> tuple[MemberRow, ...]:
        """Every member (published and withheld) with its figures, by owner key: the per-school table as data
        (per-district at an académie). Costs one pass over the members; cached until the next change."""
        if self._cache is None:
            out = []
            for key, (release, time, _, c) in sorted(self._schools.items()):
                cells = {r.exercise: _member_cell(r) for r in c.rows} if c.status == "published" else {}
                out.append(MemberRow(key, c.scope, c.status, c.reason, release, time,
                                     c.cohort if c.status == "published" else None, _represented(c), cells))
            self._cache = tuple(out)
        return self._cache

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
                out._put(str(k), _entry_from_dict(v))
            return out
        except DocumentError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DocumentError(f"the stored district statistics are damaged ({exc.__class__.__name__}); rebuild them from the verified releases") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CampaignStatistics) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _entry_from_dict(v: Mapping[str, Any]) -> tuple[int, int, str, ReleaseContent]:
    return int(v["release"]), int(v["time"]), str(v["heads"]), ReleaseContent.from_dict(v["content"])


# -- the per-school (per-district) table --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberTable:
    """Members × exercises of one campaign: `exercises` in the campaign's order (one subject if asked),
    `rows` in the order asked (by owner key unless sorted)."""

    campaign: str
    exercises: tuple[str, ...]
    rows: tuple[MemberRow, ...]


def member_table(stats: CampaignStatistics, campaign: Campaign | None = None, *, subject: str | None = None,
                 sort: tuple[str, str] | None = None, descending: bool = True) -> MemberTable:
    """The per-school table (per-district at an académie) as data.

    `subject` keeps the exercises of one domain ("français", "mathématiques");
    `sort=(exercise, group)` orders members by that share, members without one
    (withheld, hidden, no such row) last in either direction, ties by key.
    """
    if campaign is not None and campaign.id != stats.campaign:
        raise CrdtUsageError(f"these statistics are for campaign {stats.campaign!r}, not {campaign.id!r}")
    if campaign is not None:
        ids = [ex.id for ex in campaign.exercises if subject is None or ex.subject == subject]
        if subject is None:
            ids += [e for e in stats.exercise_ids() if e not in ids]
    elif subject is not None:
        raise CrdtUsageError("filtering by subject needs the campaign (it says which exercise is in which subject)")
    else:
        ids = list(stats.exercise_ids())
    rows = list(stats.members())
    if sort is not None:
        exercise, group = sort
        if group not in GROUPS:
            raise CrdtUsageError(f"no group {group!r}; groups are {', '.join(GROUPS)}")
        known = [r for r in rows if r.share(exercise, group) is not None]
        unknown = [r for r in rows if r.share(exercise, group) is None]
        known.sort(key=lambda r: r.member)
        known.sort(key=lambda r: r.share(exercise, group), reverse=descending)  # stable: ties stay by key
        rows = known + unknown
    return MemberTable(stats.campaign, tuple(ids), tuple(rows))


# -- progress between campaigns of one cohort ----------------------------------------------------------


def cohort_year(campaign: Campaign) -> int:
    """The school year (its first calendar year) in which the pupils of this campaign were in CP."""
    return int(campaign.school_year[:4]) - LEVELS.index(campaign.level)


def cohort_series(campaigns: Sequence[Campaign]) -> list[list[Campaign]]:
    """Campaigns grouped by cohort (début CP, point d'étape CP, début CE1 of the same pupils), each group in
    the order the campaigns opened; groups by cohort year, newest first."""
    groups: dict[int, list[Campaign]] = {}
    for c in campaigns:
        groups.setdefault(cohort_year(c), []).append(c)
    return [sorted(g, key=lambda c: (c.opens, c.id)) for _, g in sorted(groups.items(), reverse=True)]


@dataclass(frozen=True, slots=True)
class ProgressPoint:
    """One row's figures at one campaign: exact counts and their shares, or None where unknown."""

    campaign: str
    counts: Mapping[str, int] | None
    shares: Mapping[str, float | None]
    percents: Mapping[str, int | None]


@dataclass(frozen=True, slots=True)
class ProgressRow:
    """An exercise met in several campaigns of the cohort (same id), or a whole subject ("subject:français").

    `points` has one entry per campaign of the series, None where the row is not
    in that campaign or has no figures; `change` is the last known share minus the
    first known one (None with fewer than two), `change_points` the same in whole
    percentage points, computed from the percentages shown so a reader's
    subtraction agrees with the page.
    """

    key: str
    kind: str  # "exercise" or "subject"
    label: str
    points: tuple[ProgressPoint | None, ...]
    change: Mapping[str, float | None]
    change_points: Mapping[str, int | None]


@dataclass(frozen=True, slots=True)
class Progress:
    campaigns: tuple[str, ...]
    member: str | None  # None: the whole district (or académie)
    rows: tuple[ProgressRow, ...]


def _point(campaign: str, counts: Mapping[str, int] | None, hidden: Mapping[str, int] | None) -> ProgressPoint | None:
    if counts is None:
        return None
    sh = _share_rule(counts, hidden)
    if all(v is None for v in sh.values()):
        return None
    exact = None if hidden and any(hidden.values()) else dict(counts)
    return ProgressPoint(campaign, exact, sh, percents(counts, hidden))


def _sum_rows(rows: list[tuple[Mapping[str, int], Mapping[str, int]]]) -> tuple[dict[str, int], dict[str, int]] | None:
    if not rows:
        return None
    counts = {c: sum(r[0][c] for r in rows) for c in COLUMNS}
    hidden = {c: sum(r[1].get(c, 0) for r in rows) for c in COLUMNS}
    return counts, hidden


def progress(series: Sequence[tuple[Campaign, CampaignStatistics]], *, member: str | None = None,
             aliases: Mapping[str, str] | None = None) -> Progress:
    """The district's (or, with `member`, one school's) shares across campaigns of one cohort, side by side.

    Exercises are matched by id (the same skill keeps its id from one campaign
    to the next); each subject is also given as a whole, its counts summed over
    its exercises (pupil-exercise results, so a share of assessed results).
    `aliases` maps older owner keys of a member to the key asked for (a school
    that rotated its key between campaigns stays one school). Aggregates only:
    nothing here is finer than a member's published row.
    """
    if not series:
        raise CrdtUsageError("progress needs at least one campaign")
    years = {cohort_year(c) for c, _ in series}
    if len(years) != 1:
        raise CrdtUsageError("progress compares campaigns of one cohort only (the same pupils: "
                             "début CP, point d'étape CP, début CE1 of the next year)")
    for c, s in series:
        if c.id != s.campaign:
            raise CrdtUsageError(f"these statistics are for campaign {s.campaign!r}, not {c.id!r}")
    aliases = aliases or {}

    # Per campaign: exercise id -> (counts as lower bounds, hidden columns), for the district or one member.
    per_campaign: list[dict[str, tuple[Mapping[str, int], Mapping[str, int]]]] = []
    for c, s in series:
        found: dict[str, tuple[Mapping[str, int], Mapping[str, int]]] = {}
        if member is None:
            for ex in s.exercise_ids():
                e = s.exercise(ex)
                if e.schools_contributing:
                    found[ex] = (e.counts, e.hidden)
        else:
            rows = [r for r in s.members() if aliases.get(r.member, r.member) == member and r.status == "published"]
            if len(rows) > 1:  # an old key and its successor both present: take the newest release
                rows.sort(key=lambda r: (r.time, r.release))
            for ex, cell in (rows[-1].exercises.items() if rows else ()):
                lower = {k: (v if isinstance(v, int) else 0) for k, v in cell.counts.items()}
                hidden = {k: 1 for k, v in cell.counts.items() if not isinstance(v, int)}
                if isinstance(cell.total, int) and cell.total == 0:
                    continue
                found[ex] = (lower, hidden)
        per_campaign.append(found)

    names: dict[str, str] = {}
    order: list[str] = []
    for c, _ in series:
        for ex in c.exercises:
            names[ex.id] = ex.name
            if ex.id not in order:
                order.append(ex.id)
    in_campaigns = {ex: sum(ex in {e.id for e in c.exercises} for c, _ in series) for ex in order}

    rows: list[ProgressRow] = []
    for ex in order:
        if in_campaigns[ex] < 2 and len(series) > 1:
            continue
        points = tuple(_point(c.id, *(found[ex] if ex in found else (None, None)))
                       for (c, _), found in zip(series, per_campaign))
        rows.append(_progress_row(ex, "exercise", names[ex], points))
    subjects = [s for s in SUBJECTS if any(ex.subject == s for c, _ in series for ex in c.exercises)]
    for subject in subjects:
        points = []
        for (c, _), found in zip(series, per_campaign):
            summed = _sum_rows([found[ex.id] for ex in c.exercises if ex.subject == subject and ex.id in found])
            points.append(None if summed is None else _point(c.id, *summed))
        rows.append(_progress_row(f"subject:{subject}", "subject", subject, tuple(points)))
    return Progress(tuple(c.id for c, _ in series), member, tuple(rows))


def _progress_row(key: str, kind: str, label: str, points: tuple[ProgressPoint | None, ...]) -> ProgressRow:
    change: dict[str, float | None] = {}
    change_points: dict[str, int | None] = {}
    for g in GROUPS:
        known = [p for p in points if p is not None and p.shares.get(g) is not None]
        if len(known) < 2:
            change[g] = change_points[g] = None
            continue
        first, last = known[0], known[-1]
        change[g] = last.shares[g] - first.shares[g]  # type: ignore[operator]
        change_points[g] = last.percents[g] - first.percents[g]  # type: ignore[operator]
    return ProgressRow(key, kind, label, points, change, change_points)


def build_aggregate(
    stats: CampaignStatistics,
    campaign: Campaign,
    *,
    release: int,
    previous: ReleaseContent | None = None,
    final: bool = False,
    sent: Sequence[tuple[ReleaseContent, CampaignStatistics]] | None = None,
    member_of: Mapping[str, str] | None = None,
) -> ReleaseContent:
    """The district's aggregate for the level above: counts go up at closing, with small cells hidden, and
    later only when the difference with every aggregate sent before is itself safe to publish.

    Why: any two aggregates with counts can be subtracted, and their difference
    is what changed in between, often one school's late rows with cells of 1 or
    2 (issue 11, item 3). Before the campaign has closed (`final=False`) the
    aggregate says only "at closing" (`withheld`, reason `until_closing`, no
    counts, no school numbers); a withheld aggregate carries no number, so its
    difference with the first counted one is that aggregate itself, which
    passes the small-cell rule.

    After a counted aggregate, another goes up only if `sent` lists every
    counted aggregate sent before with the statistics it was built from, and
    against each of them (`later_aggregate_problem`): every number shown in
    both (cell, total, cohort) is the same or differs by more than
    max(small_cell_max, min_cohort); the school count is the same or differs
    by at least 2; and every exercise whose figures moved moved in at least 2
    schools' rows, so the difference never isolates one school (a member that rotated its key counts once:
    `member_of`, see `later_aggregate_problem`). Otherwise
    `AggregateAlreadySentError` (code `aggregate_held`, or
    `aggregate_already_sent` when `sent` is None: nothing to audit against).

    Fewer than `MIN_SCHOOLS` schools behind the figures (a pool counts as its
    schools, a district's aggregate at an académie as the schools behind it):
    withheld, reason `too_few_schools` (`no_school_contributing` with none),
    its schools counted as withheld; one school's aggregate would be its row.
    The same per exercise: a row that only one school entered (the others'
    rows count nobody) is hidden whole, cells and total, as "x".

    Margins: `cohort` goes up only when no row hides its total (otherwise
    cohort + absent could give a hidden total back), and no row's hidden
    total is given back by another row's (`hide_guessed_totals`). Cells at or
    under small_cell_max are hidden as `suppress_rows` does. Write the result
    with `documents.write_release` into the district's aggregate document,
    then sign it. Its `schools` counts are schools at every level (an
    académie's aggregate counts the schools behind its districts, not the
    districts), so the national node knows whom it represents.
    """
    if stats.campaign != campaign.id:
        raise CrdtUsageError(f"these statistics are for campaign {stats.campaign!r}, not {campaign.id!r}")
    if previous is not None and release <= previous.release:
        raise CrdtUsageError(f"release {release} must be above the previous aggregate's {previous.release}")
    # Counts went up before (the last aggregate, or one before a withdrawal): every new one is checked.
    later = ONE_AGGREGATE and ((previous is not None and previous.status == "published") or bool(sent))
    if later and sent is None:
        raise AggregateAlreadySentError(
            f"the aggregate of campaign {campaign.id} has already gone up (release {previous.release}), and there "
            "is no record of what it was built from to check a difference against; nothing more goes up")
    policy = campaign.policy
    if not final and ONE_AGGREGATE:
        if later:  # a campaign re-opened after its counts went up: they stay as they went
            raise AggregateAlreadySentError(f"the campaign {campaign.id} is open again; its counts went up already",
                                            code="aggregate_held")
        return ReleaseContent(campaign.id, release, "withheld", "until_closing", policy, scope="district",
                              schools_contributing=0, schools_withheld=0)
    if stats.schools_represented < MIN_SCHOOLS:  # one school's figures would be that school's row
        return ReleaseContent(
            campaign.id, release, "withheld", "too_few_schools" if stats.schools_contributing else
            "no_school_contributing", policy, final=final, scope="district", schools_contributing=0,
            schools_withheld=stats.schools_withheld_represented + stats.schools_represented,
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
    for ex in campaign.exercises:  # a row only one school entered would be that school's row: hidden whole
        behind = sum(m.schools for m in stats.members() if m.status == "published" and _entered(m, ex.id))
        if 0 < behind < MIN_SCHOOLS:
            unknown |= {(ex.id, c) for c in (*COLUMNS, "total")}
    pattern = set()
    if previous is not None:
        for r in previous.rows:
            pattern |= {(r.exercise, c) for c in (*COLUMNS, "total") if not isinstance(r.get(c), int)}
    shown, _ = suppress_rows(rows, policy.small_cell_max, pattern, unknown=unknown)
    if _disclosure.MARGINS:  # a total hidden above must not come back from another row's
        shown = _disclosure.hide_guessed_totals(rows, shown, policy.small_cell_max)
    totals_shown = all(isinstance(r.total, int) for r in shown) or not _disclosure.MARGINS
    cohort = stats.cohort() if stats.cohort_known() and totals_shown else None
    content = ReleaseContent(
        campaign.id, release, "published", "", policy, shown, cohort, final=final, scope="district",
        schools_contributing=stats.schools_represented, schools_withheld=stats.schools_withheld_represented,
    )
    if later:
        for earlier, basis in sent or ():
            why = later_aggregate_problem(earlier, basis, content, stats, member_of)
            if why is not None:
                raise AggregateAlreadySentError(
                    f"a new aggregate of campaign {campaign.id} is held: against release {earlier.release}, {why}",
                    code="aggregate_held")
    return content


def _entered(member: MemberRow, exercise: str) -> bool:
    """Whether this member's published row for the exercise counts anyone (a hidden total counts as someone)."""
    cell = member.exercises.get(exercise)
    return cell is not None and cell.total != 0


def _hidden_difference(a: Row, b: Row) -> int | None:
    """What the cells not shown in both rows moved by together, when both totals are shown (a reader gets it
    from the totals and the cells shown in both); None when a total is hidden."""
    if not isinstance(a.total, int) or not isinstance(b.total, int):
        return None
    both = [c for c in COLUMNS if isinstance(a.get(c), int) and isinstance(b.get(c), int)]
    return (b.total - a.total) - sum(b.get(c) - a.get(c) for c in both)


def later_aggregate_problem(earlier: ReleaseContent, basis: CampaignStatistics, later: ReleaseContent,
                            now: CampaignStatistics, member_of: Mapping[str, str] | None = None) -> str | None:
    """Why the difference between two counted aggregates would tell the level above too much (None: it
    would not). `basis` and `now` are the statistics each was built from (the district's own records).

    Entries are keyed by owner key, and a member that rotated its key has an entry under its old key in one
    and under its new key in the other: `member_of` maps a key to the member it stands for (the newest key of
    its chain of rotations; a key not in it stands for itself), so that one school that rotated counts as one
    school moving, not two."""
    if earlier.status != "published" or later.status != "published":
        return None
    n = max(earlier.policy.small_cell_max, later.policy.small_cell_max, earlier.policy.min_cohort,
            later.policy.min_cohort)
    schools = abs((later.schools_contributing or 0) - (earlier.schools_contributing or 0))
    if schools == 1:
        return "the school count moves by one (the difference would be that school's)"
    pairs = [("cohort", earlier.cohort, later.cohort)]
    for row in later.rows:
        old = earlier.row(row.exercise)
        if old is not None:
            pairs += [(f"{row.exercise} {c}", old.get(c), row.get(c)) for c in (*COLUMNS, "total")]
            pairs.append((f"{row.exercise} hidden cells", 0, _hidden_difference(old, row)))
    for what, a, b in pairs:
        if isinstance(a, int) and isinstance(b, int) and 1 <= abs(a - b) <= n:
            return f"{what} moves by {abs(a - b)} (at most {n}: a small cell by subtraction)"
    same = member_of or {}

    def by_member(stats: CampaignStatistics) -> dict[str, list[ReleaseContent]]:
        out: dict[str, list[ReleaseContent]] = {}
        for key, entry in stats._schools.items():
            if entry[3].status == "published":
                out.setdefault(same.get(key, key), []).append(entry[3])
        return out

    before, after = by_member(basis), by_member(now)
    members = set(before) | set(after)

    def rows_of(grouped: dict[str, list[ReleaseContent]], member: str, exercise: str) -> list[str]:
        return sorted(repr(r) for c in grouped.get(member, ()) if (r := c.row(exercise)) is not None)

    def cohorts_of(grouped: dict[str, list[ReleaseContent]], member: str) -> list[int]:
        return sorted(c.cohort for c in grouped.get(member, ()) if c.cohort is not None)

    for row in later.rows:
        moved = [m for m in members if rows_of(before, m, row.exercise) != rows_of(after, m, row.exercise)]
        if len(moved) == 1:
            return f"{row.exercise} moved in one school's rows only (the difference would be that school's)"
    if isinstance(earlier.cohort, int) and isinstance(later.cohort, int):
        if len([m for m in members if cohorts_of(before, m) != cohorts_of(after, m)]) == 1:
            return "the cohort moved in one school only (the difference would be that school's)"
    return None


MIN_SCHOOLS = 2
"""An aggregate shows counts only when at least this many schools are behind them (a pool of small schools
counts as its own schools): built from one school, it would be that school's row (`too_few_schools`)."""

AGGREGATE_REASONS = ("until_closing", "no_school_contributing", "too_few_schools")
"""The reasons a withheld aggregate gives (`build_aggregate`); node/codes.py says each in words."""

ONE_AGGREGATE = True
"""Counts go up at closing, then only safe differences (`build_aggregate`). Only tests turn this off, to show
the differencing attack succeeding (an aggregate at every change)."""
