"""Retry delays for a peer that cannot be reached: exponential, capped, with full jitter.

Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter") spreads
the retries of many school boxes that lost their link at the same moment, so
the district is not hit by all of them at once when it comes back.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 2.0
    cap: float = 3600.0

    def ceiling(self, failures: int) -> float:
        """The largest delay after `failures` consecutive failures (0 means none yet)."""
        if failures <= 0:
            return 0.0
        # 2**failures overflows floats long after the cap is reached; clamp the exponent.
        return min(self.cap, self.base * 2 ** min(failures - 1, 62))

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(failures)
        return (rng or random).uniform(0, ceiling) if ceiling else 0.0
