"""A district flooded with anonymous sockets still serves its enrolled schools (real processes on 127.0.0.1).

Anyone who can reach the district's port can open WebSocket connections to
/v1/sync and say nothing. They must not lock the schools out: a socket that
has not finished the handshake within a few seconds is closed, and when the
slots for not-yet-authenticated sockets are full a new connection takes the
oldest one's place, so a school's handshake (milliseconds) always gets through.
"""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from cli_helpers import SCHOOL_UAI, init, invite, preau, start_district

pytestmark = pytest.mark.slow

FLOOD = 80  # more than the 64 sessions a district serves at once


async def _open(http, url):
    try:
        return await http.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=2), autoping=False)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return None


async def test_an_enrolled_school_syncs_while_idle_anonymous_sockets_flood_the_district(tmp_path):
    district = start_district(tmp_path)
    try:
        school = tmp_path / "school"
        init(school, "school", SCHOOL_UAI)
        r = preau("join", invite(district), "--data-dir", str(school))
        assert r.code == 0, r.err
        url = district.url + "/v1/sync"
        async with aiohttp.ClientSession() as http:
            sockets = [await _open(http, url) for _ in range(FLOOD)]
            opened_at = time.monotonic()
            assert sum(s is not None for s in sockets) >= 32, "the flood could not even start"
            raw = [await asyncio.open_connection("127.0.0.1", district.port) for _ in range(20)]  # not even HTTP

            async def refill():  # the attacker keeps its sockets open: each one closed is opened again
                while True:
                    for i, s in enumerate(sockets):
                        if s is None or s.closed:
                            sockets[i] = await _open(http, url)
                    await asyncio.sleep(0.05)

            flood = asyncio.create_task(refill())
            try:
                started = time.monotonic()
                result = await asyncio.to_thread(preau, "sync", "--data-dir", str(school), timeout=60)
                took = time.monotonic() - started
            finally:
                flood.cancel()
                await asyncio.gather(flood, return_exceptions=True)
            assert result.code == 0, result.err
            assert took < 20, took
            # An idle anonymous socket is dropped at the handshake deadline (seconds), not the idle timeout.
            survivor = await _open(http, url)
            assert survivor is not None
            start = time.monotonic()
            msg = await asyncio.wait_for(survivor.receive(), 15)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            assert time.monotonic() - start < 8, time.monotonic() - start
            assert time.monotonic() - opened_at < 60
            for s in sockets:
                if s is not None:
                    await s.close()
            for _reader, writer in raw:
                writer.close()
        status = preau("status", "--data-dir", str(district.data))
        assert SCHOOL_UAI in status.out and "never" not in status.out.split(SCHOOL_UAI, 1)[1].splitlines()[0], status.out
    finally:
        district.stop()
