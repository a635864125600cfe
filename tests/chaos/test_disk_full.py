"""A district whose disk fills up, with real processes: every one who meets it is told so, nothing is lost.

The district's data folder is on a small tmpfs (so this runs as root, where
mounting is allowed; it is skipped with the reason otherwise). The disk is
filled to the last byte; then a school syncs (it is told the district's disk
is full), the district's own command says so with exit code 74, the district
is killed with SIGKILL while its disk is still full, space is freed, and after
a restart the school's release arrives: nothing lost, the database intact.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess

import pytest

import aiohttp

from cli_helpers import PASSWORD, SCHOOL_UAI, campaign_file, fill, free_port, init, invite, preau, serve
from preau.node.errors import EXIT_IOERR

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill it needs root; run as root (CI does) to test a full disk")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the full-disk test needs it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill_disk(mount) -> None:
    """Write until the disk refuses, then smaller and smaller blocks until not a byte is left."""
    n = 0
    for size in (1 << 20, 1 << 14, 1 << 9, 1):
        while True:
            try:
                with open(mount / f"filler-{n}", "wb") as f:
                    f.write(b"\0" * size)
                n += 1
            except OSError:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(mount / f"filler-{n}")
                break


def _free_disk(mount) -> None:
    for p in mount.glob("filler-*"):
        p.unlink()


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _district_admin(url: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1 too
    token = CSRF.search(await (await http.get(url + "/login")).text()).group(1)
    resp = await http.post(url + "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token},
                           allow_redirects=False)
    assert resp.status == 303, resp.status
    return http


async def _web_invite(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    token = CSRF.search(await (await http.get(url + "/district/invitations")).text()).group(1)
    resp = await http.post(url + "/district/invitations", data={"csrf_token": token, "action": "create",
                                                                "uai": "0010856A", "days": "7"})
    return resp.status, await resp.text()


def test_a_district_with_a_full_disk_says_so_and_loses_nothing(small_disk, tmp_path):
    asyncio.run(_scenario(small_disk, tmp_path))


async def _scenario(small_disk, tmp_path):
    district = small_disk / "district"
    init(district, "district", "0693344K")
    port = free_port()
    with open(district / "preau.toml", "a") as f:
        f.write(f"port = {port}\nsync_interval = 30\nbackoff_max = 60\n")
    r = preau("campaign", "load", str(campaign_file(tmp_path)), "--data-dir", str(district))
    assert r.code == 0, r.err
    proc = serve(district, port)
    try:
        school = tmp_path / "school"
        init(school, "school", SCHOOL_UAI)
        served = type("D", (), {"data": district})
        r = preau("join", invite(served), "--data-dir", str(school))
        assert r.code == 0, r.err
        fill(school)
        r = preau("release", "2026-debut-cp", "--approve", "--user", "admin", "--data-dir", str(school))
        assert r.code == 0, r.err

        url = f"http://127.0.0.1:{port}"
        http = await _district_admin(url)
        _fill_disk(small_disk)
        try:
            status, page = await _web_invite(http, url)
        finally:
            await http.close()
        assert status == 507 and "Le disque où Préau enregistre ses données" in page, (status, page[-2000:])
        r = preau("sync", "--data-dir", str(school))
        assert r.code == 1 and "Traceback" not in r.err, r.err
        assert "the district's disk is full" in r.err and "nothing was lost here" in r.err, r.err
        r = preau("invite", "--uai", "0010856A", "--allow-loopback", "--data-dir", str(district))
        assert r.code == EXIT_IOERR and r.err.count("\n") == 1 and "Traceback" not in r.err, (r.code, r.err)
        assert r.err.startswith(f"preau: error: The disk holding Préau's data ({district}) is full: nothing was "
                                "saved by this operation."), r.err

        proc.send_signal(signal.SIGKILL)  # killed while its disk is full
        proc.wait(15)
        _free_disk(small_disk)
        proc = serve(district, port)
        r = preau("sync", "--data-dir", str(school))
        assert r.code == 0, r.err
        with contextlib.closing(sqlite3.connect(district / "federation.db")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        r = preau("stats", "2026-debut-cp", "--format", "json", "--data-dir", str(district))
        assert r.code == 0 and '"schools_contributing": 1' in r.out, (r.err, r.out)
        log = (district / "serve.log").read_text()
        assert "Traceback" not in log, log[-3000:]
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)
        shutil.rmtree(district, ignore_errors=True)
