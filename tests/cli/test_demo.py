"""`preau demo` as a newcomer runs it: real processes, checked counts, under a minute; --keep leaves
nodes that answer, and says how to stop them."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

from preau.crdt.campaign import GROUPS
from preau.node.demo.demo import _render

PREAU = [str(pathlib.Path(sys.executable).parent / "preau")]
if not pathlib.Path(PREAU[0]).exists():
    PREAU = [sys.executable, "-m", "preau.cli.main"]


def run_demo(*args: str) -> tuple[dict, float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    started = time.monotonic()
    proc = subprocess.run([*PREAU, "demo", *args], capture_output=True, text=True, env=env, timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), took, proc.stderr


def answers(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def test_demo_json_merged_counts_withheld_school_and_verified_releases():
    summary, took, err = run_demo("--json")
    assert err == ""  # --json: no progress lines mixed into what a script reads
    assert took < 60 and summary["seconds"] < 60

    schools = summary["schools"]
    assert len(schools) == 6
    withheld = [s for s in schools if s["status"] == "withheld"]
    published = [s for s in schools if s["status"] == "published"]
    assert len(withheld) == 1 and len(published) == 5
    assert withheld[0]["assessed"] < 10  # below the campaign's min_cohort
    # Five schools, and the pool of three small schools as one row.
    assert (summary["schools_withheld"], summary["schools_contributing"]) == (1, 6)
    pool = summary["pool"]
    assert pool["status"] == "complete" and pool["survivors"] == 3 == len(pool["schools"])
    assert all(r["pupils"] < 10 for r in pool["schools"]) and pool["pupils"] == sum(r["assessed"] for r in pool["schools"])
    for s in schools:
        # Every school's release reached the district, was verified there, and was acknowledged.
        assert s["release"] is not None and s["verified_release"] == s["release"], s
        assert s["acknowledged"], s

    # The district's merged counts equal the counts computed from the generated classes, and each
    # exercise accounts for every pupil of the published and pooled schools exactly once.
    pupils = sum(s["pupils"] for s in published) + sum(r["pupils"] for r in pool["schools"])
    scored = 0
    for row in summary["statistics"]:
        assert {g: row[g] for g in GROUPS} == row["expected"], row
        total = sum(row[g] for g in GROUPS)
        assert total in (0, pupils), row
        scored += total > 0
    assert scored >= 5
    assert summary["matches_generated_data"] is True
    assert summary["bytes"]["schools_sent"] > 0 and summary["kept"] is False
    assert not pathlib.Path(summary["data_dir"]).exists()  # cleaned up
    assert answers(summary["district"]["url"]) is None


def test_demo_keep_leaves_nodes_running_and_says_how_to_stop_them():
    summary, _, _ = run_demo("--keep", "--json", "--schools", "2")
    pids = [summary["district"]["pid"], *(s["pid"] for s in summary["schools"])]
    try:
        assert summary["kept"] is True
        assert summary["login"] == {"username": "admin", "password": "demo-preau-2026"}
        assert answers(summary["district"]["url"])["role"] == "district"
        for s in summary["schools"]:
            health = answers(s["url"])  # /healthz also reports the sync loop (docs/operations.md, "Watching nodes")
            assert (health["ok"], health["role"], health["node_id"]) == (True, "school", s["node_id"])
        # Schools with names a French district would see (they were school-1, school-2...), the small one a
        # village school, in the French summary and in the district's own records.
        names = ["École élémentaire Jean Jaurès", "École primaire de Propières"]
        assert [s["name"] for s in summary["schools"]] == names
        french = _render(summary, "fr")
        assert "school-" not in french and "small-" not in french
        for s in summary["schools"]:
            assert f"  {s['uai']}  {s['name']}" in french and f"  {s['name']:29s}  {s['url']}" in french
        for r in summary["pool"]["schools"]:
            assert f"  {r['uai']}  {r['name']:29s}" in french and r["name"].startswith("École primaire de ")
        db = sqlite3.connect(f"file:{summary['district']['data_dir']}/federation.db?mode=ro", uri=True)
        try:
            known = {row[0] for row in db.execute("SELECT name FROM peers WHERE role = 'school'")}
        finally:
            db.close()
        assert known == {*names, *(r["name"] for r in summary["pool"]["schools"])}
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        while any(answers(u) for u in [summary["district"]["url"], *(s["url"] for s in summary["schools"])]):
            assert time.monotonic() < deadline, "demo nodes still answer 15 s after SIGTERM"
            time.sleep(0.2)
        shutil.rmtree(summary["data_dir"], ignore_errors=True)


def test_demo_text_names_urls_logins_and_how_to_stop():
    summary = {
        "campaign": "2026-debut-cp", "district": {"url": "http://127.0.0.1:9000", "pid": 11}, "data_dir": "/tmp/d",
        "schools": [{"name": "school-1", "uai": "0691000C", "url": "http://127.0.0.1:9001", "pid": 12, "pupils": 20,
                     "status": "published", "release": 1, "verified_release": 1, "acknowledged": True}],
        "schools_contributing": 1, "schools_withheld": 0, "statistics": [], "matches_generated_data": True,
        "bytes": {"schools_sent": 1, "schools_received": 2}, "seconds": 1.0, "kept": True,
        "login": {"username": "admin", "password": "demo-preau-2026"},
    }
    text = _render(summary)
    assert "  district  http://127.0.0.1:9000\n  school-1  http://127.0.0.1:9001\n" in text  # the name's column
    assert "login on each: admin / demo-preau-2026" in text
    assert "Stop them with: kill 11 12" in text and "/tmp/d" in text
    # Each language writes its own numbers and words: a decimal comma in French, no French in English.
    summary["seconds"] = 12.5
    summary["pool"] = {"status": "complete", "survivors": 3, "pupils": 15, "syncs": 18, "schools": []}
    assert "Done in 12.5 s." in _render(summary) and "3 schools pooled, 15 pupils" in _render(summary)
    french = _render(summary, "fr")
    assert "Terminé en 12,5 s." in french and "3 écoles regroupées, 15 élèves" in french
