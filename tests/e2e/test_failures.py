"""Failures with real processes: a district that is down, and one killed with SIGKILL in the middle of syncs."""
from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time

import pytest

from e2e_world import World, wait_for
from preau.crdt.campaign import GROUPS
from preau.crdt.docio import load_document
from preau.crdt.documents import read_receipts
from preau.crdt.schema import document_id
from preau.node import actions
from preau.node.federation.backoff import Backoff
from preau.node.demo.demo import _env, _preau

pytestmark = pytest.mark.slow


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.stop_all()


async def test_district_down_while_a_school_releases_the_loop_backs_off_and_delivers_later(world):
    w = world
    school = w.add_school("s1", 0)
    w.init_all()
    w.district.start()
    w.load_campaign()
    w.join(school)
    w.fill(school, [21], seed=3)
    w.district.stop(signal.SIGTERM)  # the district's link is down
    w.release(school)  # the head teacher approves anyway

    # The school's node with its real sync loop, with short waits so the test takes seconds, not hours.
    node = actions.open_node(school.settings())
    node.backoff = Backoff(base=0.1, cap=0.8)
    node.sync_interval = 30.0
    attempts: list[float] = []
    real = node.sync_upstream

    async def counted():
        attempts.append(time.monotonic())
        return await real()

    node.sync_upstream = counted
    task = asyncio.create_task(node.sync_loop(random.Random(1)))
    try:
        deadline = time.monotonic() + 20
        while node.status.failures < 5:
            assert time.monotonic() < deadline, node.status
            await asyncio.sleep(0.05)
        assert node.status.last_success is None
        assert "cannot reach" in node.status.last_error
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        assert all(g < 0.8 + 0.5 for g in gaps), gaps  # never longer than the cap (plus a session's time)
        assert node.fed.peers("district")[0]["last_error"]  # shown on the status page

        await asyncio.to_thread(w.district.start)
        deadline = time.monotonic() + 15
        while node.status.last_success is None:
            assert time.monotonic() < deadline, node.status
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        node.close()
    assert node.status.failures == 0
    stats = w.stored_stats()
    assert list(stats["schools"]) == [school.key]
    [sent] = school.query("SELECT * FROM transparency")
    assert sent["receipt"] is not None  # delivered, acknowledged


def _sync_processes(schools):
    return [subprocess.Popen(_preau("sync", "--data-dir", str(s.data_dir)), env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for s in schools]


def test_district_killed_mid_sync_and_restarted_converges_without_duplicates_or_losses(world):
    w = world
    schools = [w.add_school(f"s{i}", 17 * i) for i in range(6)]
    w.init_all()
    w.district.configure(sync_rate_limit=1000)
    w.district.start()
    w.load_campaign()
    w.parallel(w.join, schools)
    for i, s in enumerate(schools):
        w.fill(s, [20 + i], seed=50 + i)
    w.parallel(w.release, schools)

    killed_with = None
    outcomes = []  # per round: releases committed before the kill, sessions that failed
    for round_ in range(3):
        before = len(w.district.query("SELECT * FROM releases WHERE doc_id LIKE 'release:%'"))
        procs = _sync_processes(schools)
        # Kill the district as soon as the first of these sessions has committed a release: the others are in flight.
        wait_for(lambda: len(w.district.query("SELECT * FROM releases WHERE doc_id LIKE 'release:%'")) > before
                 or all(p.poll() is not None for p in procs), 30, interval=0.01, what="a session to commit")
        w.district.stop(signal.SIGKILL)
        killed_with = len(w.district.query("SELECT * FROM releases WHERE doc_id LIKE 'release:%'"))
        errors = [p.communicate(timeout=30)[1] for p in procs]
        failed = [err for p, err in zip(procs, errors) if p.returncode]
        assert all("cannot reach" in err or "failed" in err for err in failed), failed
        outcomes.append((killed_with - before, len(failed)))
        with w.district.db() as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        w.district.start()
        if killed_with < len(schools):
            break
        # Every release got in before the kill: make new ones (ten more pupils each) and try again.
        for i, s in enumerate(schools):
            w.fill(s, [10], seed=500 + 10 * round_ + i)
        w.parallel(w.release, schools)
    assert killed_with is not None
    assert any(failed for _, failed in outcomes), outcomes  # the kill did cut sessions short
    print("kill rounds (releases committed before the kill, sessions cut):", outcomes)

    # Everyone syncs again (twice: receipts written in a session come down in the next one).
    for _ in range(2):
        for p in _sync_processes(schools):
            _, err = p.communicate(timeout=30)
            assert p.returncode == 0, err

    stats = w.stored_stats()
    assert sorted(stats["schools"]) == sorted(s.key for s in schools)
    for s in schools:
        doc = document_id("release", bytes.fromhex(s.key), w.campaign.id)
        numbers = [r["number"] for r in w.district.query("SELECT number FROM releases WHERE doc_id = ?", doc)]
        latest = s.query("SELECT max(number) AS n FROM releases WHERE doc_id = ?", doc)[0]["n"]
        assert numbers == sorted(set(numbers)) and numbers[-1] == latest  # nothing duplicated, the newest arrived
        assert stats["schools"][s.key]["release"] == latest
        # One receipt per release the district holds, none twice, and the school's log has the latest one.
        rid = document_id("receipts", bytes.fromhex(w.district.key), peer=bytes.fromhex(s.key))
        [stored] = w.district.query("SELECT data FROM documents WHERE doc_id = ?", rid)
        receipts = [(r.doc_id, r.release) for r in read_receipts(load_document(stored["data"]))]
        assert len(receipts) == len(set(receipts)) and sorted(n for _, n in receipts) == numbers
        acked = s.query("SELECT number FROM transparency WHERE receipt IS NOT NULL")
        assert latest in [r["number"] for r in acked]
    expected = w.expected(schools)
    for ex in w.campaign.exercises:
        merged = {g: 0 for g in GROUPS}
        for entry in stats["schools"].values():
            row = entry["content"]["exercises"].get(ex.id, {})
            for g in GROUPS:
                merged[g] += row.get(g, 0)
        assert merged == {g: expected[ex.id][g] for g in GROUPS}, ex.id
    # Nothing was refused as a forgery or a replay on the way.
    refused = w.district.query("SELECT detail FROM events WHERE kind = 'refused'")
    assert not refused, [r["detail"] for r in refused]
