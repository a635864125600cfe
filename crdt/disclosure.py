"""The disclosure policy: from pupil-level results held in memory to what may leave the school.

The rules, each against one way a curious reader could single out a pupil:

- `min_cohort`: a school publishes no counts at all, only "withheld: small
  cohort" (at closing, or to withdraw counts it had published before), while
  fewer than `min_cohort` pupils are assessed today, or while the rows that
  would leave count fewer than `min_cohort` assessed pupils (batching may hold
  most pupils back: the cohort that counts is the one that would be published).
  A pupil is assessed when they have a state other than absent (a group, or
  `pending`) on at least one exercise.
- batching, pupil level: an exercise's figures change in a release only when
  the set of pupils whose result differs from *every* earlier published state
  of that exercise (including the empty state before any release) is 0 or at
  least `min_batch`. Subtracting any two releases then never isolates fewer
  than `min_batch` pupils; smaller changes are held back until enough
  accumulate. This holds at closing too: a final release may leave up to
  `min_batch - 1` late changes per exercise unpublished, and says so.
- batching, count level: "absent" is a column of its own, so ten changed
  pupils can move the scored counts by one (a late pupil scored, nine others
  marked absent). A new state of an exercise is therefore published only if,
  against every earlier published non-empty state of it, each count (every
  column, pending included, and the row total) moves by 0 or at least
  `min_batch`. Against an empty state the difference is the state itself,
  which is published anyway: no rule there; nor on the group columns against
  a state with no pupil in a group (all pending or absent, before thresholds).
- pinned cut-offs (`pin_campaign`): once a pupil has been placed in a group
  on an exercise in a published release, that exercise's thresholds (and the
  strictest policy seen) are kept for the rest of the campaign, whatever later
  versions of the campaign ask. Every release of one school then cuts the
  same scores at the same points, so releasing under moved thresholds cannot
  rebuild the score histogram (docs/privacy.md, "Moving thresholds").
- small cells (`suppress_rows`): beyond the district, counts 1..small_cell_max
  are shown as "≤N", with complementary suppression checked by an exact
  per-row audit, and a pattern that only grows within a campaign.

Pupil references are reduced to digests in the history and never reach a document.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from .campaign import GROUPS, POLICY_SETTINGS, SCORED_GROUPS, Campaign, Policy, check_floor
from .documents import ReleaseContent, Row
from .errors import CrdtUsageError, DocumentError
from .schema import COLUMNS, MARKER_HIDDEN

HISTORY_VERSION = 2  # 2 adds the pinned thresholds and policy; 1 is still read
_PUPIL_LABEL = b"preau/v1/history-pupil"
_CODE = {"besoin": "b", "fragile": "f", "seuil2": "s", "absent": "a", "pending": "p"}
_COLUMN = {v: k for k, v in _CODE.items()}
_GROUP_CODE = {g: _CODE[g] for g in GROUPS}


@dataclass(frozen=True, slots=True)
class PupilOutcome:
    """One pupil's result on one exercise, as the school's storage passes it.

    `pupil` is an opaque reference (a keyed pseudonym); it is reduced to a digest
    and never written into any document. `group` is one of GROUPS, or None for a
    pupil scored on an exercise whose thresholds are not published yet: such
    results are counted in the `pending` column, and move to their groups (in one
    large batch) when the thresholds arrive.
    """

    pupil: str
    exercise: str
    group: str | None


def _pupil_digest(pupil: str) -> str:
    return hashlib.sha256(_PUPIL_LABEL + b"\x00" + pupil.encode()).hexdigest()[:24]


Snapshot = Mapping[str, str]  # pupil digest -> column code


@dataclass(frozen=True)
class ReleaseHistory:
    """What the school remembers of its earlier releases (stored encrypted by the node).

    It holds, per exercise, every published per-pupil state (digests and group
    codes): as sensitive as the results themselves. `thresholds` are the
    cut-offs each exercise was first published under, and `policy` the strictest
    policy any published release applied: both stay for the rest of the campaign.
    """

    campaign: str
    last_release: int = 0
    last: ReleaseContent | None = None
    snapshots: Mapping[str, tuple[Snapshot, ...]] = field(default_factory=dict)
    thresholds: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    policy: Policy | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": HISTORY_VERSION,
            "campaign": self.campaign,
            "last_release": self.last_release,
            "last": None if self.last is None else self.last.to_dict(),
            "snapshots": {ex: [dict(s) for s in snaps] for ex, snaps in self.snapshots.items()},
            "thresholds": {ex: list(t) for ex, t in sorted(self.thresholds.items())},
            "policy": None if self.policy is None else self.policy.to_dict(),
        }

    def exercises_counting(self, pupil: str) -> set[str]:
        """The exercises whose published counts included this pupil (by the same reference as PupilOutcome.pupil).

        For a parent's access request: the history keeps digests, so this answers "was my child counted"
        without the history ever naming anyone.
        """
        digest = _pupil_digest(pupil)
        return {ex for ex, snaps in self.snapshots.items() if any(digest in s for s in snaps)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ReleaseHistory":
        try:
            if data["version"] not in (1, HISTORY_VERSION):
                raise DocumentError(f"release history version {data['version']} is not supported; update Préau")
            last = None if data["last"] is None else ReleaseContent.from_dict(data["last"])
            snaps = {
                str(ex): tuple({str(p): str(c) for p, c in s.items()} for s in lst) for ex, lst in data["snapshots"].items()
            }
            for lst in snaps.values():
                for s in lst:
                    if not set(s.values()) <= set(_COLUMN):
                        raise ValueError("unknown group code")
            thresholds: dict[str, tuple[int, int]] = {}
            for ex, t in (data.get("thresholds") or {}).items():
                t1, t2 = (int(v) for v in t)
                thresholds[str(ex)] = (t1, t2)
            raw = data.get("policy")
            # A version-1 history kept no policy: the one its last release applied is the best record of it.
            policy = Policy(**{k: int(raw[k]) for k in POLICY_SETTINGS}) if raw else (
                last.policy if last is not None and last.status == "published" else None)
            return cls(str(data["campaign"]), int(data["last_release"]), last, snaps, thresholds, policy)
        except DocumentError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DocumentError(f"the stored release history is damaged ({exc.__class__.__name__}); restore it from a backup") from None

    def advanced(self, number: int) -> "ReleaseHistory":
        """The same history numbered after a release that left (the node stopped before saving the history)."""
        return replace(self, last_release=number)


@dataclass(frozen=True, slots=True)
class AskedChange:
    """What a newer campaign version asked for and this school did not apply (shown in the release preview).

    `setting` is `thresholds` (with the exercise) or a policy setting (exercise
    empty, and `kept` is then the stricter value kept, `asked` the lower one).
    """

    exercise: str
    setting: str
    asked: tuple[int, int] | int | None
    kept: tuple[int, int] | int


@dataclass(frozen=True)
class PinnedCampaign:
    campaign: Campaign  # compute the pupils' groups with this one, and pass it to next_release
    asked: tuple[AskedChange, ...]  # what the newest version asked for that is not applied


def pin_campaign(campaign: Campaign, history: ReleaseHistory) -> PinnedCampaign:
    """The campaign as this school applies it: thresholds and policy as first released under.

    A new campaign version may add exercises, rename them, set thresholds an
    exercise had none of, or raise the policy; it cannot move the cut-offs of an
    exercise whose groups have already left the school, nor lower the policy.
    """
    if history.campaign != campaign.id:
        raise CrdtUsageError(f"this release history is for campaign {history.campaign!r}, not {campaign.id!r}")
    asked: list[AskedChange] = []
    exercises = []
    for ex in campaign.exercises:
        kept = history.thresholds.get(ex.id)
        if kept is not None and ex.thresholds != kept:
            asked.append(AskedChange(ex.id, "thresholds", ex.thresholds, kept))
            ex = replace(ex, thresholds=kept)
        exercises.append(ex)
    policy = campaign.policy.strictest(history.policy)
    for name in POLICY_SETTINGS:
        if getattr(policy, name) != getattr(campaign.policy, name):
            asked.append(AskedChange("", name, getattr(campaign.policy, name), getattr(policy, name)))
    return PinnedCampaign(replace(campaign, exercises=tuple(exercises), policy=policy), tuple(asked))


def _check_pinned(campaign: Campaign, history: ReleaseHistory) -> Policy:
    policy = check_floor(campaign.policy)
    for ex in campaign.exercises:
        kept = history.thresholds.get(ex.id)
        if kept is not None and ex.thresholds != kept:
            raise CrdtUsageError(
                f"exercise {ex.id!r} was released under thresholds {list(kept)}, and this campaign has "
                f"{None if ex.thresholds is None else list(ex.thresholds)}: compute outcomes with pin_campaign(...).campaign",
                code="thresholds_not_pinned")
    if policy.strictest(history.policy) != policy:
        raise CrdtUsageError("this campaign's policy is below one already released under: use pin_campaign(...).campaign",
                             code="policy_not_pinned")
    return policy


def _new_pins(campaign: Campaign, history: ReleaseHistory, published: Iterable[str],
              snapshots: Mapping[str, tuple[Snapshot, ...]]) -> dict[str, tuple[int, int]]:
    """Pin an exercise's thresholds at the first published state that puts a pupil in a scored group."""
    pins = dict(history.thresholds)
    for ex in campaign.exercises:
        if ex.id in published and ex.id not in pins and ex.thresholds is not None:
            if any(code in "bfs" for code in snapshots[ex.id][-1].values()):
                pins[ex.id] = ex.thresholds
    return pins


@dataclass(frozen=True, slots=True)
class Reason:
    """One part of why a release goes or waits: a stable code and its values, for the node's catalog.

    Codes (`REASON_CODES`): small_cohort (cohort, min_cohort, campaign), small_published_cohort (cohort,
    assessed, min_cohort, campaign), released (number, updated), final, waiting (more, exercise, changed,
    min_batch), waiting_counts (exercise, column, moved, min_batch), others_waiting (count), unchanged
    (release), no_results, pooled (campaign).
    """

    code: str
    params: Mapping[str, object] = field(default_factory=dict)


REASON_CODES = frozenset({"small_cohort", "small_published_cohort", "released", "final", "waiting", "waiting_counts",
                          "others_waiting", "unchanged", "no_results", "pooled"})


@dataclass(frozen=True)
class ReleaseDecision:
    """Whether to publish now, why, what, and the history to store once published.

    `reason` is the English wording (logs, scripts, tests); `reasons` is the
    same in codes and values, which the node says in the person's language.
    """

    release: bool
    reason: str
    content: ReleaseContent | None
    history: ReleaseHistory
    held_back: tuple[tuple[str, int], ...] = ()  # (exercise, pupils changed but not yet publishable)
    reasons: tuple[Reason, ...] = ()


def kept_for_the_pool(decision: ReleaseDecision, history: ReleaseHistory, campaign_id: str) -> ReleaseDecision:
    """The decision for a school whose counts for this campaign went into a secure-aggregation pool: its counts
    never leave alone afterwards (the district would subtract them from the pool's sum and learn the other
    small schools'), so a release with counts is held back; a withheld one (no counts) still goes."""
    if decision.content is None or decision.content.status == "withheld":
        return decision
    why = (f"not released: this school's counts for {campaign_id} went into a pool of small schools; sent alone, "
           "they would let the other schools' counts be found by subtraction")
    return ReleaseDecision(False, why, None, history, reasons=(Reason("pooled", {"campaign": campaign_id}),))


def _distance(a: Snapshot, b: Snapshot) -> int:
    return sum(1 for p in a.keys() | b.keys() if a.get(p) != b.get(p))


def _row(exercise: str, snap: Snapshot) -> Row:
    counts = {c: 0 for c in COLUMNS}
    for code in snap.values():
        counts[_COLUMN[code]] += 1
    return Row.from_counts(exercise, counts)


def _assessed(snapshots: Iterable[Snapshot]) -> int:
    """Pupils counted in the cohort: those with a state other than absent on at least one exercise."""
    return len({p for snap in snapshots for p, code in snap.items() if code != "a"})


def _counts(snap: Snapshot) -> dict[str, int]:
    counts = {c: 0 for c in (*COLUMNS, "total")}
    for code in snap.values():
        counts[_COLUMN[code]] += 1
    counts["total"] = len(snap)
    return counts


def _small_count_move(cur: Snapshot, snaps: Sequence[Snapshot], min_batch: int) -> tuple[str, int] | None:
    """The count (column or "total") that would move by 1..min_batch-1 against an earlier published state, and by
    how much (the smallest such move); None when every count moves by 0 or at least min_batch against each.

    Where the difference is one of the two states itself, published whole anyway, it is not checked: empty states
    are skipped, on either side, and against a state with no pupil in a group (only pending or absent: before the
    exercise had thresholds) the group columns are not compared, since their difference is the other state's
    groups. So the thresholds arriving for 25 pending pupils publish their groups (4 à besoin, say), as a first
    release would; the pending, absent and total counts still follow the rule.
    """
    if not cur:
        return None
    mine = _counts(cur)
    grouped = any(code in "bfs" for code in cur.values())
    worst: tuple[int, int, str] | None = None
    order = (*COLUMNS, "total")
    for snap in snaps:
        if not snap:
            continue
        theirs = _counts(snap)
        both_grouped = grouped and any(code in "bfs" for code in snap.values())
        for i, c in enumerate(order):
            if c in SCORED_GROUPS and not both_grouped:
                continue
            moved = abs(mine[c] - theirs[c])
            if 0 < moved < min_batch and (worst is None or (moved, i) < worst[:2]):
                worst = (moved, i, c)
    return None if worst is None else (worst[2], worst[0])


def _collect(outcomes: Iterable[PupilOutcome], campaign: Campaign) -> dict[str, dict[str, str]]:
    current: dict[str, dict[str, str]] = {ex.id: {} for ex in campaign.exercises}
    digests: dict[str, str] = {}
    for o in outcomes:
        if not isinstance(o, PupilOutcome):
            raise CrdtUsageError("outcomes must be PupilOutcome values")
        states = current.get(o.exercise)
        if states is None:
            raise CrdtUsageError(f"an outcome names exercise {o.exercise!r}, which campaign {campaign.id!r} does not define")
        code = "p" if o.group is None else _GROUP_CODE.get(o.group)
        if code is None:
            raise CrdtUsageError(f"an outcome on {o.exercise!r} has group {o.group!r}; use one of {', '.join(GROUPS)} or None")
        digest = digests.get(o.pupil)
        if digest is None:
            if not isinstance(o.pupil, str) or not o.pupil:
                raise CrdtUsageError("an outcome has an empty pupil reference")
            digest = digests[o.pupil] = _pupil_digest(o.pupil)
        seen = states.get(digest)
        if seen is not None and seen != code:
            raise CrdtUsageError(f"one pupil has two different results on {o.exercise!r}; storage must pass one per pupil")
        states[digest] = code
    return current


def next_release(
    outcomes: Iterable[PupilOutcome], campaign: Campaign, history: ReleaseHistory, *, closing: bool
) -> ReleaseDecision:
    """Decide the school's next release for a campaign. Pure: same inputs, same decision.

    `campaign` must be `pin_campaign(campaign, history).campaign`, and the
    outcomes' groups computed with its thresholds: a campaign that moves a pinned
    threshold or lowers a policy already applied is refused (`CrdtUsageError`),
    as is a policy below the national floor (`PolicyBelowFloorError`).
    """
    if history.campaign != campaign.id:
        raise CrdtUsageError(f"this release history is for campaign {history.campaign!r}, not {campaign.id!r}")
    policy = _check_pinned(campaign, history)
    current = _collect(outcomes, campaign)
    cohort = _assessed(current.values())
    last = history.last
    number = history.last_release + 1
    if last is not None and last.final:
        # Final never goes back: a school clock that ran ahead and was then put right, or a closing
        # release approved early, does not reopen the campaign. Later corrections are final too.
        closing = True

    def small_cohort(why: str, reasons: tuple[Reason, ...], held_back: tuple[tuple[str, int], ...] = ()) -> ReleaseDecision:
        """No counts leave: nothing, or "withheld: small cohort" at closing or to withdraw counts sent before."""
        withdraw = last is not None and last.status == "published"
        already = last is not None and last.status == "withheld" and (last.final or not closing)
        if already or not (closing or withdraw):
            return ReleaseDecision(False, why, None, history, held_back, reasons=reasons)
        content = ReleaseContent(campaign.id, number, "withheld", "small_cohort", policy, final=closing)
        return ReleaseDecision(True, why, content, replace(history, last_release=number, last=content), held_back,
                               reasons=reasons)

    if cohort < policy.min_cohort:
        why = (
            f"withheld: small cohort ({cohort} assessed pupil{'' if cohort == 1 else 's'}; campaign {campaign.id} needs at least "
            f"{policy.min_cohort} before any counts leave the school)"
        )
        return small_cohort(why, (Reason("small_cohort", {"cohort": cohort, "min_cohort": policy.min_cohort,
                                                          "campaign": campaign.id}),))

    rows: list[Row] = []
    updated: list[str] = []
    held: list[tuple[str, int, int]] = []  # exercise, changed since last, more needed
    held_counts: list[tuple[str, int, str, int]] = []  # exercise, changed since last, the count that moves, by how much
    snapshots = dict(history.snapshots)
    for ex in campaign.exercises:
        snaps = history.snapshots.get(ex.id, ())
        prev: Snapshot = snaps[-1] if snaps else {}
        cur = current[ex.id]
        if cur == prev:
            rows.append(_row(ex.id, prev))
            continue
        too_close = [d for d in (_distance(cur, s) for s in ({}, *snaps)) if 0 < d < policy.min_batch]
        small_move = _small_count_move(cur, snaps, policy.min_batch) if COUNT_BATCHING and not too_close else None
        if too_close:
            rows.append(_row(ex.id, prev))
            held.append((ex.id, _distance(cur, prev), policy.min_batch - min(too_close)))
        elif small_move is not None:
            rows.append(_row(ex.id, prev))
            held_counts.append((ex.id, _distance(cur, prev), *small_move))
        else:
            snapshots[ex.id] = (*snaps, cur)
            rows.append(_row(ex.id, cur))
            updated.append(ex.id)

    held_back = tuple((ex, n) for ex, n, _ in held) + tuple((ex, n) for ex, n, _, _ in held_counts)
    held_text = ""
    held_why: tuple[Reason, ...] = ()
    if held:
        ex, n, more = min(held, key=lambda h: (h[2], h[0]))
        held_text = (
            f"waiting for {more} more changed pupil{'s' if more > 1 else ''} on {ex} "
            f"({n} changed since the last release; at least {policy.min_batch} must change together)"
        )
        held_why = (Reason("waiting", {"more": more, "exercise": ex, "changed": n, "min_batch": policy.min_batch}),)
    if held_counts:  # said too when an exercise waits for pupils: each kind of wait has its own remedy
        ex, n, column, moved = held_counts[0]
        held_text += "; " if held_text else ""
        held_text += (
            f"waiting on {ex}: its {column} count would move by {moved} against an earlier release "
            f"({n} pupil{'s' if n != 1 else ''} changed; every count moves by 0 or at least {policy.min_batch})"
        )
        held_why += (Reason("waiting_counts", {"exercise": ex, "column": column, "moved": moved,
                                               "min_batch": policy.min_batch}),)
    others = len(held_back) - len(held_why)
    if others > 0:
        held_text += f"; {others} other exercise{'s' if others > 1 else ''} also waiting"
        held_why += (Reason("others_waiting", {"count": others}),)

    final_due = closing and not (last is not None and last.final and last.status == "published")
    if not updated and not final_due:
        if held_text:
            reason, why = held_text, held_why
        elif last:
            reason = f"nothing changed since release {history.last_release}"
            why = (Reason("unchanged", {"release": history.last_release}),)
        else:
            reason, why = "no results entered yet", (Reason("no_results"),)
        return ReleaseDecision(False, reason, None, history, held_back, reasons=why)

    # The cohort published is the one behind the published rows, not today's: a late pupil held back
    # on every exercise must not move it (a margin that would isolate them).
    shown = {ex.id: (snapshots[ex.id][-1] if snapshots.get(ex.id) else {}) for ex in campaign.exercises}
    published_cohort = _assessed(shown.values()) if MARGINS else cohort
    if FLOOR_ON_PUBLISHED and published_cohort < policy.min_cohort:
        # Today's cohort is large enough, but batching holds most of it back: the rows that would leave are
        # about fewer pupils than the floor (one pupil scored, nine absent, the others' exercise waiting).
        why = (
            f"withheld: small cohort (the rows that may leave now count {published_cohort} assessed "
            f"pupil{'' if published_cohort == 1 else 's'} of {cohort}; campaign {campaign.id} needs at least "
            f"{policy.min_cohort} before any counts leave the school)"
        )
        if held_text:
            why += "; " + held_text
        small = (Reason("small_published_cohort", {"cohort": published_cohort, "assessed": cohort,
                                                   "min_cohort": policy.min_cohort, "campaign": campaign.id}),)
        return small_cohort(why, small + held_why, held_back)
    content = ReleaseContent(campaign.id, number, "published", "", policy, tuple(rows), published_cohort, final=closing)
    reason = f"release {number}: {len(updated)} exercise{'s' if len(updated) != 1 else ''} updated"
    why = (Reason("released", {"number": number, "updated": len(updated)}),)
    if closing:
        reason += " (final)"
        why += (Reason("final"),)
    if held_text:
        reason += "; " + held_text.replace("waiting", "held back, waiting", 1)
        why += held_why
    new_history = ReleaseHistory(campaign.id, number, content, snapshots,
                                 _new_pins(campaign, history, updated, snapshots), policy.strictest(history.policy))
    return ReleaseDecision(True, reason, content, new_history, held_back, reasons=why)


MARGINS = True
"""Margins follow the cells: a release's cohort is the one behind its published rows, and an aggregate
shows its cohort only when every row shows its total. Only tests turn this off (docs/privacy.md)."""

FLOOR_ON_PUBLISHED = True
"""min_cohort is also checked on the cohort a release would publish (the pupils behind its rows), not only on
today's assessed pupils. Only tests turn this off, to show one pupil's group leaving a class of ten."""

COUNT_BATCHING = True
"""Batching at count level too: every count of an exercise moves by 0 or at least min_batch against each earlier
published state. Only tests turn this off, to show a late pupil's group read off two releases."""


# -- small cells --------------------------------------------------------------------


def _domain(marker: int | str, n: int, bound: int) -> list[tuple[int, int]]:
    """The intervals a reader knows a hidden cell lies in, from its marker alone."""
    if marker == MARKER_HIDDEN:
        return [(0, 0), (n + 1, bound)] if bound > n else [(0, 0)]
    return [(1, min(n, bound))]


def recomputable_cells(row: Row, small_cell_max: int) -> list[str]:
    """The hidden cells of a row a reader can pin to one value from the shown cells and total.

    Exact for one row with its total: for each way of choosing which part of its
    domain every "x" cell lies in, the range of each hidden cell is bounded by the
    others' bounds; a cell is recomputable if all those ranges give one value.
    """
    if not isinstance(row.total, int):
        return []
    hidden = [c for c in COLUMNS if not isinstance(row.get(c), int)]
    if not hidden:
        return []
    rest = row.total - sum(row.get(c) for c in COLUMNS if isinstance(row.get(c), int))
    domains = [_domain(row.get(c), small_cell_max, max(rest, 0)) for c in hidden]
    values: dict[str, set[tuple[int, int]]] = {c: set() for c in hidden}
    for choice in itertools.product(*domains):
        lo_sum = sum(lo for lo, _ in choice)
        hi_sum = sum(hi for _, hi in choice)
        if not lo_sum <= rest <= hi_sum:
            continue
        for i, c in enumerate(hidden):
            lo, hi = choice[i]
            values[c].add((max(lo, rest - (hi_sum - hi)), min(hi, rest - (lo_sum - lo))))
    out = []
    for c in hidden:
        spans = values[c]
        if not spans or (len({lo for lo, _ in spans} | {hi for _, hi in spans}) == 1):
            out.append(c)
    return out


def suppress_rows(
    rows: Sequence[Row],
    small_cell_max: int,
    previous: Iterable[tuple[str, str]] = (),
    *,
    complementary: bool = True,
    unknown: Iterable[tuple[str, str]] = (),
) -> tuple[tuple[Row, ...], frozenset[tuple[str, str]]]:
    """Hide small cells for a table that leaves the district; return the rows and the pattern to keep.

    Primary: counts 1..small_cell_max become "≤N". Stable: every (exercise,
    column) hidden in an earlier release of the campaign stays hidden ("x" unless
    its value is now small). Complementary: while the audit can recompute a hidden
    cell of a row, hide that row's smallest shown non-zero cell, or its total.
    `unknown` cells (at an académie, sums with a part some district hid) hold
    only a lower bound: they are always hidden, as "x".
    """
    unknown = set(unknown)
    if small_cell_max <= 0 and not unknown:
        return tuple(rows), frozenset(previous)
    n = max(small_cell_max, 0)
    small = f"≤{n}"
    keep = set(previous) | unknown
    out: list[Row] = []
    pattern: set[tuple[str, str]] = set()
    for row in rows:
        values = {c: row.get(c) for c in (*COLUMNS, "total")}
        hidden = {c for c in COLUMNS if 1 <= values[c] <= n} | {c for (e, c) in keep if e == row.exercise}

        def render() -> Row:
            def mark(c: str) -> int | str:
                if c not in hidden:
                    return values[c]
                known = (row.exercise, c) not in unknown
                return small if known and 1 <= values[c] <= n and c != "total" else MARKER_HIDDEN

            return Row(row.exercise, tuple(mark(c) for c in COLUMNS), mark("total"))

        shown = render()
        while complementary and recomputable_cells(shown, n):
            candidates = [c for c in COLUMNS if c not in hidden and values[c] > 0]
            if candidates:
                hidden.add(min(candidates, key=lambda c: (values[c], COLUMNS.index(c))))
            else:
                hidden.add("total")
            shown = render()
        out.append(shown)
        pattern |= {(row.exercise, c) for c in hidden}
    return tuple(out), frozenset(pattern)


def hide_guessed_totals(rows: Sequence[Row], shown: Sequence[Row], small_cell_max: int) -> tuple[Row, ...]:
    """Margins across rows: a total hidden by complementary suppression must not be given back by another row.

    The rows of one table mostly count the same pupils, so a reader who sees
    one row's total (or every cell of a row, which add up to it) will take it
    for the total of a row that hides its own. Where that guess is right and
    would let the reader recompute a hidden cell of that row (`recomputable_cells`
    with the total known), every figure that gives the total away is hidden
    too: other rows' totals equal to it and, in a row that shows all its cells
    adding up to it, the smallest non-zero cell as well. Repeated until no
    such guess recomputes a cell. `rows` are the true rows, `shown` what
    `suppress_rows` made of them (same order); the cohort is left to the
    caller, who shows it only when every row shows its total.
    """
    if len(rows) != len(shown) or any(r.exercise != s.exercise for r, s in zip(rows, shown)):
        raise CrdtUsageError("hide_guessed_totals needs the true rows and the shown rows in the same order")
    n = max(small_cell_max, 0)
    out = list(shown)
    while True:
        # What a reader can take for a row's total: shown totals, and the sums of rows with every cell shown.
        gives: dict[int, set[int]] = {}
        for i, s in enumerate(out):
            if isinstance(s.total, int):
                gives.setdefault(s.total, set()).add(i)
            elif all(isinstance(v, int) for v in s.cells):
                gives.setdefault(sum(s.cells), set()).add(i)
        exposed: set[int] = set()
        for j, (r, s) in enumerate(zip(rows, out)):
            t = r.total
            if isinstance(s.total, int) or not isinstance(t, int) or not (gives.get(t, set()) - {j}):
                continue
            if recomputable_cells(Row(s.exercise, s.cells, t), n):
                exposed |= gives[t] - {j}
        if not exposed:
            return tuple(out)
        for i in exposed:
            s, r = out[i], rows[i]
            cells = list(s.cells)
            if all(isinstance(v, int) for v in cells):
                nonzero = [k for k, v in enumerate(cells) if v > 0]
                if nonzero:
                    k = min(nonzero, key=lambda k: (cells[k], k))
                    cells[k] = MARKER_HIDDEN  # shown cells are 0 or above small_cell_max: "x" tells the truth
            out[i] = Row(s.exercise, tuple(cells), MARKER_HIDDEN)
