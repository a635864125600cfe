"""An enrolled school cannot make its district build millions of operations from a few bytes (real processes).

Automerge's columns are run-length encoded: one change of a few hundred bytes
can describe hundreds of thousands of list inserts, and applying it costs the
receiving node its memory and its database thread (a 142-byte sync message of
a million inserts took 3.6 s and 630 MB). The attacker here is a school joined
with the real commands, using its own key and data folder: it signs a release
of its own whose document also holds 300,000 list inserts, and syncs it with
the stock client. The district (a real `preau serve`) must refuse that sync
message before applying it, say why to the school, store nothing, and go on
serving. (Checked once with the weighing switched off: from the school's
1,315 bytes the district built and stored the document, acknowledged it, and its
peak memory rose by 148 MB, against 20 kB with the weighing on.)
"""
from __future__ import annotations

import re
import time

import pytest

from cli_helpers import healthz
from privacy_world import campaign_with, district, school

pytestmark = pytest.mark.slow

CID = "2026-debut-cp"
INSERTS = 300_000  # over one session's 200,000 rows and one message's 100,000


def _peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))


def _heavy_release(b) -> str:
    """B signs release 5 of its own document, whose history also holds INSERTS list inserts in one change."""
    import automerge.core as am

    from preau.crdt.campaign import Policy
    from preau.crdt.documents import ReleaseContent, write_release
    from preau.crdt.schema import document_id, new_document
    from preau.node.runtime import Node

    node = Node(b.data, role="school")
    try:
        doc_id = document_id("release", node.federation.key, CID)
        doc = new_document("release", node.federation.key, campaign=CID, doc_id=doc_id)
        with doc.transaction() as tx:
            padding = tx.put_object(am.ROOT, "padding", am.ObjType.List)
            for i in range(INSERTS):
                tx.insert(padding, i, am.ScalarType.Null, None)
        write_release(doc, ReleaseContent(CID, 5, "withheld", "small_cohort", Policy()))
        node.federation._publish(doc)
        return doc_id
    finally:
        node.close()


def test_a_school_cannot_make_the_district_build_a_huge_document_from_a_small_message(tmp_path):
    d = district(tmp_path)
    d.run("campaign", "load", str(campaign_with(tmp_path)))
    d.serve()
    try:
        b = school(tmp_path, "b", d)
        doc_id = _heavy_release(b)
        before = _peak_kib(d.proc.pid)
        started = time.monotonic()
        r = b.run("sync", check=False)  # the stock command: B's document is in its own store
        took = time.monotonic() - started
        grew = _peak_kib(d.proc.pid) - before
        assert r.code == 1 and "nothing was stored" in r.err, (r.out, r.err)  # the school hears it was refused
        assert not d.query("SELECT 1 FROM documents WHERE doc_id = ?", doc_id)  # nothing of it was kept
        assert grew < 60 * 1024, f"the district's peak memory grew by {grew} KiB"
        assert took < 10, took
        assert "too large to apply" in (d.data / "serve.log").read_text(encoding="utf-8")
        assert d.proc.poll() is None and healthz(d.port) is not None  # the district still serves
    finally:
        d.stop()
