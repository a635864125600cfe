import random

from preau.node.federation.backoff import Backoff


def test_ceiling_doubles_then_caps():
    b = Backoff(base=2, cap=60)
    assert [b.ceiling(n) for n in range(0, 8)] == [0, 2, 4, 8, 16, 32, 60, 60]
    assert b.ceiling(10_000) == 60  # days offline: no overflow, still capped


def test_delays_are_jittered_within_ceiling():
    b = Backoff(base=2, cap=60)
    rng = random.Random(1)
    delays = [b.delay(5, rng) for _ in range(200)]
    assert all(0 <= d <= 32 for d in delays)
    assert len({round(d, 3) for d in delays}) > 150  # spread, not a constant
