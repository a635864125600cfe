"""A small school's counts as one vector for a secure-aggregation pool, and the pool's sum back as rows.

Pure, like the rest of crdt/. The vector is the release table flattened: for
each exercise of the campaign in campaign order, one count per COLUMNS entry,
then the cohort (pupils assessed, as `next_release` counts them). A pool's
sum of such vectors reads back the same way.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from .campaign import Campaign
from .disclosure import PupilOutcome, _assessed, _collect, _row
from .documents import Row
from .errors import CrdtUsageError
from .schema import COLUMNS


def vector_length(campaign: Campaign) -> int:
    return len(campaign.exercises) * len(COLUMNS) + 1


def pool_vector(outcomes: Iterable[PupilOutcome], campaign: Campaign) -> tuple[int, ...]:
    current = _collect(outcomes, campaign)
    cohort = _assessed(current.values())
    out: list[int] = []
    for ex in campaign.exercises:
        out.extend(_row(ex.id, current[ex.id]).cells)
    return (*out, cohort)


def pooled_rows(total: Sequence[int], campaign: Campaign) -> tuple[tuple[Row, ...], int]:
    """(rows, cohort) from the summed vector of a pool."""
    if len(total) != vector_length(campaign):
        raise CrdtUsageError(f"a pooled vector for campaign {campaign.id} has {vector_length(campaign)} entries, not {len(total)}")
    k = len(COLUMNS)
    rows = tuple(Row.from_counts(ex.id, dict(zip(COLUMNS, total[i * k:(i + 1) * k]))) for i, ex in enumerate(campaign.exercises))
    return rows, int(total[-1])
