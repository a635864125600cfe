"""Test-only switches that turn one privacy protection off, to show its attack succeeding (tests/privacy/).

Read only when the environment says this is a test run: `PREAU_TESTING=1` and
`PREAU_TEST_UNPROTECT=name[,name...]`. Without `PREAU_TESTING=1` nothing here
has any effect, whatever `PREAU_TEST_UNPROTECT` says. A node that starts with
a switch on says so in its log, loudly. Names (docs/privacy.md lists which
test uses which):

- `floor`: the national disclosure floor (min_cohort, min_batch, small_cell_max 10);
- `pinning`: thresholds and policy pinned at the first release that used them;
- `one_aggregate`: a district sends counts up at closing, then only differences
  that are safe (no small cell, never one school's row);
- `margins`: a release's cohort is the one behind its published rows, and an
  aggregate shows its cohort only when every row shows its total;
- `entitlement`: a node sends a document only to peers entitled to it, and
  document ids name their owner's key;
- `access_log`: access log lines without sizes or ids;
- `file_modes`: data and key files created 0600, checked at start.
"""
from __future__ import annotations

import logging
import os

NAMES = ("floor", "pinning", "one_aggregate", "margins", "entitlement", "access_log", "file_modes")
log = logging.getLogger("preau.node")


def unprotected(name: str) -> bool:
    """True only in a test run that switched this protection off."""
    if name not in NAMES:
        raise ValueError(f"unknown protection {name!r}")
    if os.environ.get("PREAU_TESTING") != "1":
        return False
    return name in os.environ.get("PREAU_TEST_UNPROTECT", "").split(",")


def apply_at_start() -> list[str]:
    """Switch off the pure layer's protections a test asked to switch off (floor, one_aggregate, margins); warn."""
    off = [n for n in NAMES if unprotected(n)]
    if not off:
        return []
    from preau.crdt import campaign, disclosure, statistics

    if "floor" in off:
        campaign.FLOOR = campaign.Policy(1, 1, 0)
    if "one_aggregate" in off:
        statistics.ONE_AGGREGATE = False
    if "margins" in off:
        disclosure.MARGINS = False
    log.warning("TEST RUN: privacy protections switched off: %s (never do this with real pupils)", ", ".join(off))
    return off
