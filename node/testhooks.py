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
- `published_cohort`: the 10-pupil floor is checked on the cohort a release
  would publish, not only on today's assessed pupils;
- `count_batching`: every count of an exercise moves by 0 or at least
  min_batch between two releases (batching at count level, not only pupils);
- `entitlement`: a node sends a document only to peers entitled to it, and
  document ids name their owner's key;
- `access_log`: access log lines without sizes or ids;
- `file_modes`: data and key files created 0600, checked at start;
- `pool_and_alone`: a school's counts for a campaign leave either in a pool or
  alone, never both (the district would subtract one from the other).

One more switch observes instead of unprotecting: `PREAU_TEST_CAPTURE_WIRE=1`
(with `PREAU_TESTING=1`) makes a node append every protocol message it
receives, as decrypted from the Noise session, to DATA/test-wire-capture.bin,
so an end-to-end test can search what a node was sent (tests/e2e/test_pools.py
searches the district's capture for the small schools' own vectors).
"""
from __future__ import annotations

import logging
import os
import pathlib
import struct

NAMES = ("floor", "pinning", "one_aggregate", "margins", "entitlement", "access_log", "file_modes", "pool_and_alone",
         "published_cohort", "count_batching")
log = logging.getLogger("preau.node")


def unprotected(name: str) -> bool:
    """True only in a test run that switched this protection off."""
    if name not in NAMES:
        raise ValueError(f"unknown protection {name!r}")
    if os.environ.get("PREAU_TESTING") != "1":
        return False
    return name in os.environ.get("PREAU_TEST_UNPROTECT", "").split(",")


WIRE_CAPTURE = "test-wire-capture.bin"


def capturing_wire() -> bool:
    """True only in a test run that asked for the received protocol messages to be written down."""
    return os.environ.get("PREAU_TESTING") == "1" and os.environ.get("PREAU_TEST_CAPTURE_WIRE") == "1"


def capture_wire(folder: pathlib.Path, messages: list[tuple[int, bytes]]) -> None:
    """Append (message type, encoded message) records to FOLDER/test-wire-capture.bin: u8 type, u32 LE length, bytes."""
    if not messages:
        return
    fd = os.open(folder / WIRE_CAPTURE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as out:
        out.write(b"".join(struct.pack("<BI", mtype, len(data)) + data for mtype, data in messages))


def read_wire_capture(path: pathlib.Path) -> list[tuple[int, bytes]]:
    """The records capture_wire appended, in order (for the tests)."""
    raw = path.read_bytes()
    records, pos = [], 0
    while pos < len(raw):
        mtype, size = struct.unpack_from("<BI", raw, pos)
        records.append((mtype, raw[pos + 5:pos + 5 + size]))
        pos += 5 + size
    return records


def apply_at_start() -> list[str]:
    """Switch off the pure layer's protections a test asked to switch off (floor, one_aggregate, margins,
    published_cohort, count_batching); warn."""
    if capturing_wire():
        log.warning("TEST RUN: every protocol message received is written to %s (never do this with real pupils)",
                    WIRE_CAPTURE)
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
    if "published_cohort" in off:
        disclosure.FLOOR_ON_PUBLISHED = False
    if "count_batching" in off:
        disclosure.COUNT_BATCHING = False
    log.warning("TEST RUN: privacy protections switched off: %s (never do this with real pupils)", ", ".join(off))
    return off
