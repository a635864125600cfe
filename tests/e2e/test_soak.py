"""Soak: hundreds of sync sessions against one district process; its memory and open files must not creep.

The schools are in this process (real Nodes, real WebSockets, enrolled with
real invitations); the district is `preau serve` in its own process, so its
resident memory and file descriptors are read from /proc as an operator
would. Some sessions bring new releases, some are cut off mid-handshake or
right after it, as a flaky school link would.
"""
from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest

from e2e_world import World
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.node.runtime import Node, create_identity
from preau.node.federation.transport import SYNC_PATH, Limits
from preau.node.demo.demo import uai
from preau.protocol.connection import Connection
from preau.protocol.identity import PublicIdentity

pytestmark = pytest.mark.slow

SOAK_SECONDS = float(os.environ.get("PREAU_SOAK_SECONDS", "20"))


def publish(school: Node, campaign, number: int) -> None:
    pupils = 10 + 10 * number  # ten more each time: enough changed pupils for a new release
    outs = [PupilOutcome(f"p{i}", ex.id, ("seuil2", "fragile", "besoin")[i % 3])
            for i in range(pupils) for ex in campaign.exercises]
    decision = next_release(outs, campaign, ReleaseHistory(campaign.id, number - 1), closing=False)
    assert decision.release, decision.reason
    school.federation.publish_release(decision.content, to_peer="district")


async def cut_off(url: str, school: Node, after_hello: bool) -> None:
    """A session that dies early: the socket closes after the first handshake message, or before any."""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url + SYNC_PATH) as ws:
            if after_hello:
                up = school.federation.upstream()
                peer = PublicIdentity(bytes.fromhex(up["key"]), bytes.fromhex(up["static_key"]))
                conn = Connection.initiator(school.identity, peer, ephemeral=os.urandom(32), now=int(time.time()))
                await ws.send_bytes(conn.data_to_send())
                await ws.receive()


async def test_many_sessions_against_one_district_keep_memory_and_files_flat(tmp_path):
    w = World(tmp_path)
    w.init_all()
    w.district.configure(sync_rate_limit=10_000)
    w.district.start()
    try:
        await asyncio.to_thread(w.load_campaign)
        schools = []
        for i in range(4):
            create_identity(tmp_path / f"s{i}")
            node = Node(tmp_path / f"s{i}", role="school", limits=Limits(idle_timeout=10, session_timeout=60))
            schools.append(node)
            code = uai(75, 2000 + i)
            inv = (await asyncio.to_thread(w.district.cli, "invite", "--uai", code, "--allow-loopback")).stdout.strip()
            await node.join(inv, code)

        numbers = [0] * len(schools)
        sessions = cut = 0

        async def one(k: int) -> None:
            nonlocal sessions, cut
            school = schools[k % len(schools)]
            if k % 25 == 0:
                i = k % len(schools)
                numbers[i] += 1
                publish(school, w.campaign, numbers[i])
            if k % 10 == 5:
                await cut_off(w.district.url, school, after_hello=bool(k % 20 == 5))
                cut += 1
                return
            report = await school.sync_upstream()
            assert report.complete, report
            sessions += 1

        for k in range(40):  # warm up: caches, SQLite pages, the allocator
            await one(k)
        rss0, fds0 = w.district.pid_rss_kb(), w.district.open_fds()
        start = time.monotonic()
        k = 40
        while time.monotonic() - start < SOAK_SECONDS:
            await one(k)
            k += 1
        await asyncio.sleep(0.5)  # let the district finish closing the last sockets
        rss1, fds1 = w.district.pid_rss_kb(), w.district.open_fds()
        elapsed = time.monotonic() - start
        print(f"\nsoak: {sessions} sessions + {cut} cut off in {elapsed:.1f} s "
              f"({(sessions + cut) / elapsed:.0f}/s); district RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB, "
              f"open files {fds0} -> {fds1}")
        assert sessions > 100
        assert fds1 <= fds0 + 2, (fds0, fds1)
        assert rss1 - rss0 < 6 * 1024, (rss0, rss1)  # KiB: flat (it grew ~2.4 KiB a session before a fix)
        for school in schools:  # a release made just before the end may have met a cut-off session
            await school.sync_upstream()
        stats = w.stored_stats()
        assert len(stats["schools"]) == len(schools)
        for i, node in enumerate(schools):
            assert stats["schools"][node.identity.signing_key.hex()]["release"] == numbers[i]
        for node in schools:
            node.close()
    finally:
        w.stop_all()
