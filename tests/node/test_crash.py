"""SIGKILL in the middle of saving, 50 times: every acknowledged save survives and the file stays sound."""
from __future__ import annotations

import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
import time

from preau.node.records import vault
from preau.node.records.store import Store

from storage_fixtures import T1_PW, make_school
from storage_fixtures import campaign, school  # noqa: F401  (pytest fixtures)

C = "2026-debut-cp"
RUNS = 50
WRITER = pathlib.Path(__file__).with_name("crash_writer.py")


def _expected(k: int, pupils: list[str]) -> tuple[str, int, tuple[int, ...]]:
    return pupils[k % len(pupils)], k % 200, tuple(int(c) for c in format(k % 1024, "010b"))


def test_sigkill_mid_save_50_times(tmp_path, campaign):
    school = make_school(tmp_path / "data", campaign)
    data = school.store.data_dir
    pupils = [p.id for p in school.store.list_pupils(school.t1, school.class_a.id)]
    school.store.close()
    rng = random.Random(50)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(WRITER.parent), os.environ.get("PYTHONPATH", "")]))
    # pupil -> the saves its stored values may come from: the last acknowledged one, plus any
    # save that was in flight at a kill since then (it may or may not have landed).
    possible: dict[str, set[int]] = {}
    start = 0
    history = []
    total_acked = 0
    for run in range(RUNS):
        errlog = open(tmp_path / "writer.err", "w+")
        proc = subprocess.Popen([sys.executable, str(WRITER), str(data), "mme.alpha", T1_PW, str(start)],
                                stdout=subprocess.PIPE, stderr=errlog, env=env, text=True)
        want = rng.randint(1, 6)
        got = []
        for _ in range(want):
            line = proc.stdout.readline()
            assert line, (tmp_path / "writer.err").read_text()
            got.append(int(line))
        time.sleep(rng.random() * 0.004)  # land somewhere inside a later save
        proc.send_signal(signal.SIGKILL)
        # Not communicate(): it would read the pipe past what readline() already buffered.
        rest = proc.stdout.read()
        proc.wait()
        proc.stdout.close()
        errlog.close()
        got += [int(x) for x in rest.split()]
        history.append((start, got))
        assert proc.returncode == -signal.SIGKILL
        for k in got:
            possible[_expected(k, pupils)[0]] = {k}
        total_acked += len(got)
        in_flight = got[-1] + 1
        possible.setdefault(_expected(in_flight, pupils)[0], set()).add(in_flight)
        # Check after every kill: acknowledged saves are there, each pair whole.
        conn = sqlite3.connect(data / "preau.db")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        store = Store.open(data, cost=vault.TEST_COST)
        t1 = store.login("mme.alpha", T1_PW)
        stored = {}
        for r in store.get_results(t1, C, school.class_a.id):
            stored.setdefault(r.pupil_id, {})[r.exercise_id] = r
        for pupil, ok in possible.items():
            if pupil not in stored:  # only an unacknowledged save ever targeted this pupil
                assert len(ok) == 1 and max(ok) == in_flight
                continue
            wpm = stored[pupil]["fr-lire-texte"].wpm
            answers = stored[pupil]["fr-mots"].answers
            matches = [j for j in ok if _expected(j, pupils)[1:] == (wpm, answers)]
            assert matches, (run, pupil, ok, wpm, answers, history[-4:])
        store.close()
        start = in_flight + 1
    store = Store.open(data, cost=vault.TEST_COST)
    admin = store.unlock_with_recovery(school.recovery)
    counts = store.next_release_counts(store.node, C)["exercises"]
    store.rebuild_counts(admin, C)
    assert store.next_release_counts(store.node, C)["exercises"] == counts  # tally moved with its results
    assert total_acked >= RUNS
    store.close()
