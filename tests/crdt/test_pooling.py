"""The pooled vector is the release table flattened; the sum of vectors reads back as the sum of tables."""
from __future__ import annotations

import random

import pytest

from preau.crdt.disclosure import ReleaseHistory, next_release
from preau.crdt.documents import ReleaseContent
from preau.crdt.errors import CrdtUsageError
from preau.crdt.pooling import pool_vector, pooled_rows, vector_length
from preau.crdt.schema import COLUMNS
from preau.crdt.statistics import CampaignStatistics, build_aggregate

from crdt_fixtures import make_campaign, outcomes_for


def test_vector_matches_the_release_table_and_sums_read_back():
    camp = make_campaign()
    rng = random.Random(4)
    schools = [outcomes_for([f"s{n}-{i}" for i in range(n)], camp, rng) for n in (12, 15)]
    vectors = [pool_vector(o, camp) for o in schools]
    assert all(len(v) == vector_length(camp) == len(camp.exercises) * len(COLUMNS) + 1 for v in vectors)
    for outs, vec in zip(schools, vectors):
        content = next_release(outs, camp, ReleaseHistory(camp.id), closing=True).content
        rows, cohort = pooled_rows(vec, camp)
        assert cohort == content.cohort
        assert {r.exercise: r for r in rows} == {r.exercise: r for r in content.rows}
    rows, cohort = pooled_rows([a + b for a, b in zip(*vectors)], camp)
    assert cohort == sum(v[-1] for v in vectors)
    assert sum(r.total for r in rows) == sum(sum(v[:-1]) for v in vectors)
    with pytest.raises(CrdtUsageError):
        pooled_rows(vectors[0][:-1], camp)


def _pool_entry(camp, seed, cohorts, entry):
    """Three small schools' vectors, their pool's release content, and statistics holding it as entry `entry`."""
    rng = random.Random(seed)
    vectors = [pool_vector(outcomes_for([f"{entry}{k}-{i}" for i in range(n)], camp, rng), camp) for k, n in enumerate(cohorts)]
    rows, cohort = pooled_rows([sum(c) for c in zip(*vectors)], camp)
    content = ReleaseContent(camp.id, 1, "published", "3 écoles regroupées", camp.policy, rows, cohort, scope="pool",
                             schools_contributing=3, schools_withheld=0)
    stats = CampaignStatistics(camp.id)
    stats.replace_entry(entry, {"release": 1, "time": 0, "heads": "", "content": content.to_dict()})
    return vectors, content, stats


def test_a_pool_entry_counts_once_in_the_statistics_with_its_schools():
    camp = make_campaign()
    vectors, content, stats = _pool_entry(camp, 5, (3, 4, 5), "pool-ab")
    cohort = content.cohort
    assert ReleaseContent.from_dict(content.to_dict()) == content
    stats = CampaignStatistics.from_dict(stats.to_dict())
    assert stats.schools_represented == 3 and stats.cohort() == cohort == sum(v[-1] for v in vectors)
    assert stats.exercise(camp.exercises[0].id).counts["seuil2"] == sum(v[2] for v in vectors)
    (row,) = stats.members()
    assert (row.scope, row.schools, row.cohort) == ("pool", 3, cohort)


def test_a_pool_goes_up_inside_the_district_aggregate_under_the_small_cell_rule():
    camp = make_campaign()
    _vectors, content, stats = _pool_entry(camp, 6, (4, 5, 6), "pool-cd")
    aggregate = build_aggregate(stats, camp, release=1, final=True)
    assert aggregate.status == "published" and aggregate.schools_contributing == 3 and aggregate.cohort == content.cohort
    for row in aggregate.rows:  # counts 1..small_cell_max are hidden upward, as for any member
        assert all(not isinstance(v, int) or v == 0 or v > camp.policy.small_cell_max for v in row.cells)
