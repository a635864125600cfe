"""Health that means health: /healthz follows the sync loop, the last successful sync and the oldest release
waiting for its receipt; `preau status` says them in words; syncs are logged (INFO) and failures too (WARNING)."""
from __future__ import annotations

import asyncio
import logging

import pytest

from cli_helpers import SCHOOL_UAI, init
from preau.node.app import create_app
from preau.node.appkeys import NODE
from preau.node.settings import load_settings


@pytest.fixture
def school(tmp_path):
    init(tmp_path, "school", SCHOOL_UAI)
    return load_settings({"data_dir": str(tmp_path), "argon2_profile": "minimal"}, env={})


async def test_healthz_turns_unhealthy_when_the_sync_loop_stops(school, aiohttp_client):
    client = await aiohttp_client(create_app(school))
    r = await client.get("/healthz")
    body = await r.json()
    assert r.status == 200 and body["ok"] and body["sync"]["loop"] == "running"
    node = client.app[NODE]
    node.loop_task.cancel()
    await asyncio.sleep(0)
    r = await client.get("/healthz")
    body = await r.json()
    assert r.status == 503 and not body["ok"] and body["problems"] == ["the sync loop is stopped"]


async def test_a_crashed_sync_loop_is_unhealthy_and_logged(school, aiohttp_client, caplog):
    client = await aiohttp_client(create_app(school))
    node = client.app[NODE]

    def broken():
        raise PermissionError(13, "Permission denied", "federation.db")

    node.news = broken  # what a root-owned file does to the loop
    node.loop_task.cancel()
    from preau.node.app import _loop_ended
    with caplog.at_level(logging.ERROR, logger="preau.app"):
        node.loop_task = asyncio.create_task(node.sync_loop())
        node.loop_task.add_done_callback(_loop_ended)
        await asyncio.sleep(0.05)
    r = await client.get("/healthz")
    body = await r.json()
    assert r.status == 503 and body["sync"]["loop"] == "crashed" and "Permission denied" in body["problems"][0]
    assert "the sync loop stopped" in caplog.text


async def test_max_sync_age_for_a_node_that_never_synced(school, aiohttp_client):
    client = await aiohttp_client(create_app(school))
    node = client.app[NODE]
    node.call(node.fed.add_peer, "ab" * 32, node_id="X", role="district", address="http://127.0.0.1:9",
              static_key="cd" * 32)
    assert (await client.get("/healthz")).status == 200
    r = await client.get("/healthz?max_sync_age=3600")
    assert r.status == 503 and (await r.json())["problems"] == ["no successful sync with the node above yet"]
    node.call(node.fed.touch_peer, "ab" * 32)
    assert (await client.get("/healthz?max_sync_age=3600")).status == 200
    assert (await client.get("/healthz?max_sync_age=soon")).status == 400



async def test_a_disk_short_of_space_is_a_problem(school, aiohttp_client):
    """A full disk shows on /healthz before writes fail (507 and exit 74 then say it too)."""
    import shutil

    client = await aiohttp_client(create_app(school))
    free = shutil.disk_usage(school.data_dir).free // 2**20
    r = await client.get("/healthz")
    body = await r.json()
    assert r.status == 200 and body["disk"]["min_free_mb"] == 10 and abs(body["disk"]["free_mb"] - free) < 50
    r = await client.get(f"/healthz?min_free_mb={free + 1000}")
    body = await r.json()
    assert r.status == 503 and f"MiB free (less than {free + 1000}): free some space" in body["problems"][0]
    assert (await client.get("/healthz?min_free_mb=lots")).status == 400


async def test_a_full_disk_is_a_failed_round_not_the_end_of_the_sync_loop(school, aiohttp_client, caplog):
    """Seen on a 3 MB tmpfs: a node started on a full disk crashed its sync loop ('database or disk is full')
    and never synced again, space freed or not, until restarted. Now a failed round, said, then retried."""
    import sqlite3

    client = await aiohttp_client(create_app(school))
    node = client.app[NODE]
    rounds = []

    def retention_on_a_full_disk():
        rounds.append(1)
        if len(rounds) == 1:
            raise sqlite3.OperationalError("database or disk is full")

    node.apply_retention = retention_on_a_full_disk
    node.loop_task.cancel()
    with caplog.at_level(logging.WARNING, logger="preau.node"):
        node.loop_task = asyncio.create_task(node.sync_loop())
        for _ in range(100):
            if len(rounds) >= 2:
                break
            await asyncio.sleep(0.05)
    assert len(rounds) >= 2  # tried again (after the backoff's first wait, at most 2 s)
    body = await (await client.get("/healthz")).json()
    assert body["sync"]["loop"] == "running", body
    assert "sync round failed (1 failure in a row)" in caplog.text and "full" in caplog.text
    assert body["sync"]["failures"] == 0  # the round after it went through: back to the ordinary interval


async def test_a_last_sync_dated_in_the_future_is_a_clock_problem(school, aiohttp_client):
    """A box whose clock ran ahead when it synced, then was put right: its last sync is 'in the future', so
    max_sync_age stayed quiet until the clock caught up, and `preau status` said '0 seconds ago'."""
    import time

    from cli_helpers import preau

    client = await aiohttp_client(create_app(school))
    node = client.app[NODE]
    node.call(node.fed.add_peer, "ab" * 32, node_id="X", role="district", address="http://127.0.0.1:9",
              static_key="cd" * 32)

    def synced_with_a_clock_40_days_ahead():
        with node.fed.transaction() as conn:
            conn.execute("UPDATE peers SET last_contact = ?", [int(time.time()) + 40 * 86400])

    node.call(synced_with_a_clock_40_days_ahead)
    r = await client.get("/healthz?max_sync_age=86400")
    body = await r.json()
    assert r.status == 503 and "later than this machine's clock" in " ".join(body["problems"]), body
    out = preau("status", "--data-dir", str(school.data_dir)).out
    assert "later than this machine's clock" in out and "0 seconds ago" not in out, out
