"""A district whose stored copy of a school's document is damaged takes it afresh, instead of failing every sync.

The district keeps each school's release document (federation.db). If that copy
is damaged (a bad disk sector, a file copied badly between machines), every later
sync in which the school sent a new release failed at the district with a
traceback and an HTTP 500, and the school was told the two nodes had not
recognised each other (and pointed to `preau join --again`), at every sync, for
ever. The copy is only the school's signed document as it was: the district now
starts from nothing and takes it afresh from the school, verified against the
school's signed release as always. Real processes (`preau serve`, the stock
`preau sync`). (Checked once with the fallback switched off: the sync failed so.)
"""
from __future__ import annotations

import sqlite3

import pytest

from privacy_world import campaign_with, district, school, sign_withheld_release

pytestmark = pytest.mark.slow

CID = "2026-debut-cp"


def _next_release(s, number: int) -> str:
    """The school writes release `number` of its document, as a head teacher's approval does."""
    return sign_withheld_release(s, CID, number)


def test_a_damaged_copy_of_a_schools_document_is_taken_afresh(tmp_path):
    from preau.crdt.docio import load_document
    from preau.crdt.documents import read_release

    d = district(tmp_path)
    d.run("campaign", "load", str(campaign_with(tmp_path)))
    d.serve()
    try:
        a = school(tmp_path, "a", d)
        doc_id = _next_release(a, 1)
        assert "acknowledged" in a.run("sync").out
        d.stop()
        db = sqlite3.connect(d.data / "federation.db")
        db.execute("UPDATE documents SET data = substr(data, 1, 40) WHERE doc_id = ?", [doc_id])  # cut short
        db.commit()
        db.close()
        d.proc = None
        d.serve()
        _next_release(a, 2)
        r = a.run("sync", check=False)
        assert r.code == 0 and "release 2" in r.out, (r.out, r.err)
        [row] = d.query("SELECT data FROM documents WHERE doc_id = ?", doc_id)
        assert read_release(load_document(row["data"])).release == 2  # the copy is whole again
        log = (d.data / "serve.log").read_text(encoding="utf-8")
        assert "Traceback" not in log and "damaged" in log

        # The school's own copy damaged: its sync stops on that, by name, and the district is told why.
        _next_release(a, 3)
        db = sqlite3.connect(a.data / "federation.db")
        db.execute("UPDATE documents SET data = substr(data, 1, 40) WHERE doc_id = ?", [doc_id])
        db.commit()
        db.close()
        r = a.run("sync", check=False)
        assert r.code != 0 and "Traceback" not in r.err, (r.out, r.err)
        assert "damaged" in r.err and "preau restore" in r.err, r.err
    finally:
        d.stop()
