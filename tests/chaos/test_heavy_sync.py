"""An enrolled school cannot make its district build millions of operations from a few bytes (real processes).

Automerge's columns are run-length encoded: one change of a few hundred bytes
can describe hundreds of thousands of list inserts, and applying it costs the
receiving node its memory and its database thread (a 142-byte sync message of
a million inserts took 3.6 s and 630 MB). The attackers here are schools joined
with the real commands, using their own keys and data folders: each signs releases
of its own whose document also holds list inserts, and syncs them with the stock
client. The district (a real `preau serve`) must refuse what would build too much
before applying it, say so to the school, store nothing of it, and go on serving.
(Checked once with each protection switched off: with no weighing, from A's 1,316
bytes the district built, stored and acknowledged the document, its peak memory up
74 MB against 20 kB; without counting the rows the district holds, B's document
reached 203,029 rows and its third sync was acknowledged.)
"""
from __future__ import annotations

import re
import time

import pytest

from cli_helpers import healthz
from privacy_world import campaign_with, district, school, sign_withheld_release

pytestmark = pytest.mark.slow

CID = "2026-debut-cp"
INSERTS = 150_000  # over one message's 50,000 rows


def _peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))


def _heavy_release(b, number: int = 5, inserts: int = INSERTS) -> str:
    """B signs release `number` of its own document, whose history gains `inserts` list inserts in one change."""
    return sign_withheld_release(b, CID, number, inserts=inserts)


def test_a_school_cannot_make_the_district_build_a_huge_document_from_few_bytes(tmp_path):
    """A: one message of 150,000 inserts. B: sessions each within bounds, 49,000 rows each: the document grew by
    that every time (30 sessions a minute), and every later load of it at the district cost the sum. The rows a
    session may bring count those the district holds already, so B's document stops short of 100,000."""
    from preau.crdt.weight import weigh_document

    d = district(tmp_path)
    d.run("campaign", "load", str(campaign_with(tmp_path)))
    d.serve()
    try:
        a, b = school(tmp_path, "a", d), school(tmp_path, "b", d)
        doc_id = _heavy_release(a)
        before = _peak_kib(d.proc.pid)
        started = time.monotonic()
        r = a.run("sync", check=False)  # the stock command: A's document is in its own store
        took = time.monotonic() - started
        grew = _peak_kib(d.proc.pid) - before
        assert r.code == 1 and "was not stored" in r.err, (r.out, r.err)  # the school hears it was refused
        assert "too large to be received in one sync" in r.err, r.err  # and why, in words (not a code)
        assert not d.query("SELECT 1 FROM documents WHERE doc_id = ?", doc_id)  # nothing of it was kept
        assert grew < 60 * 1024, f"the district's peak memory grew by {grew} KiB"
        assert took < 10, took
        assert "too large to apply" in (d.data / "serve.log").read_text(encoding="utf-8")

        outcomes = []
        for number, inserts in ((1, 49_000), (2, 49_000), (3, 5_000)):
            doc_id = _heavy_release(b, number, inserts)
            outcomes.append(b.run("sync", check=False).code)
        [stored] = d.query("SELECT data FROM documents WHERE doc_id = ?", doc_id)
        assert weigh_document(stored["data"]).rows <= 100_000
        assert outcomes == [0, 0, 1], outcomes  # the third would take the document past 100,000 rows
        assert d.proc.poll() is None and healthz(d.port) is not None  # the district still serves
    finally:
        d.stop()
