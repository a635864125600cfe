"""30 teachers typing at once: latency of a row save and of a grid page, against a bare aiohttp server.

The real node (`preau serve`, its own process, real store, real sessions,
CSRF, templates) serves a school of 30 classes of 25 pupils. 30 simulated
teachers log in, then each saves rows as fast as grid.js sends them while a
quick typist types (a save every 300 ms: one save per keystroke) and reloads
its grid page every 20 saves. The baseline is a bare aiohttp handler in its
own process answering the same methods with responses of the same sizes, hit
by the same client loop in the same run. A second pass with no pause between
requests shows the saturated case. Figures: p50 and p95 in ms, and the ratio
to the baseline. Targets (issue 6): save p95 <= 50 ms, page p95 <= 100 ms.
"""
from __future__ import annotations

import asyncio
import os
import pathlib
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp

from preau.node.campaign_file import load_campaign_file
from preau.node.federation.store import FedStore
from preau.node.runtime import FEDERATION_DB, create_identity
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST

TEACHERS, PUPILS = 30, 25
PASSWORD = "bench password 2026"
PACE = 0.3  # seconds between two saves of one teacher (one keystroke)
SAVES = 40  # per teacher and pass
PAGE_EVERY = 20
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

BARE = r'''
import sys
from aiohttp import web
page, save = int(sys.argv[2]), int(sys.argv[3])
PAGE = b"<!doctype html>" + b"x" * (page - 15)
async def get_page(request):
    return web.Response(body=PAGE, content_type="text/html")
async def post_save(request):
    body = await request.json()
    text = '{"ok": true, "pad": "' + "x" * max(0, save - 25) + '"}'
    return web.Response(text=text, content_type="application/json")
app = web.Application()
app.router.add_get("/page", get_page)
app.router.add_post("/save", post_save)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_school(data: pathlib.Path) -> dict:
    campaign = load_campaign_file("debut-cp")
    store, _ = Store.create(data, uai="0751234J", school_name="École du bench", admin_username="direction",
                            admin_password=PASSWORD, cost=TEST_COST)
    plan = {"campaign": campaign.id, "exercise": campaign.exercises[0].id, "items": campaign.exercises[0].items,
            "teachers": []}
    try:
        s = store.login("direction", PASSWORD)
        store.put_campaign(s, campaign)
        rng = random.Random(7)
        for t in range(TEACHERS):
            user = f"enseignant{t:02d}"
            store.create_account(s, user, PASSWORD, "teacher")
            c = store.create_class(s, f"CP {t:02d}", "CP", "2026-2027")
            store.assign_teacher(s, user, c.id)
            names = {(f"Nom{rng.randrange(10**6)}", f"Prénom{i}") for i in range(PUPILS)}
            pupils = store.add_pupils(s, c.id, sorted(names))
            plan["teachers"].append({"user": user, "class": c.id, "pupils": [p.id for p in pupils]})
    finally:
        store.close()
    create_identity(data)
    FedStore(data / FEDERATION_DB).close()
    return plan


async def wait_up(url: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if proc.poll() is not None:
                raise SystemExit(f"server exited early ({proc.returncode})")
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


class Teacher:
    def __init__(self, base: str, plan: dict, spec: dict, bare: str | None = None):
        self.base, self.plan, self.spec, self.bare = base, plan, spec, bare
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1
        self.grid = f"{base}/classes/{spec['class']}/campaigns/{plan['campaign']}/exercises/{plan['exercise']}"
        self.token = ""
        self.rng = random.Random(spec["user"])

    async def login(self) -> None:
        if self.bare:
            return
        async with self.http.get(self.base + "/login") as resp:
            token = CSRF_RE.search(await resp.text()).group(1)
        async with self.http.post(self.base + "/login", data={"username": self.spec["user"], "password": PASSWORD,
                                                               "csrf_token": token}) as resp:
            assert resp.status == 200 and "/classes" in str(resp.url), (resp.status, resp.url)
        async with self.http.get(self.grid) as resp:
            self.token = CSRF_RE.search(await resp.text()).group(1)

    async def page(self) -> tuple[float, int]:
        url = self.bare + "/page" if self.bare else self.grid
        t0 = time.perf_counter()
        async with self.http.get(url) as resp:
            body = await resp.read()
            assert resp.status == 200
        return time.perf_counter() - t0, len(body)

    async def save(self) -> tuple[float, int]:
        cells = [self.rng.choice("110") for _ in range(self.plan["items"])]
        payload = {"pupil": self.rng.choice(self.spec["pupils"]), "cells": cells}
        url = self.bare + "/save" if self.bare else self.grid + "/row"
        t0 = time.perf_counter()
        async with self.http.post(url, json=payload, headers={"X-CSRF-Token": self.token}) as resp:
            body = await resp.read()
            assert resp.status == 200, body
        return time.perf_counter() - t0, len(body)

    async def run(self, pace: float, saves: list, pages: list) -> None:
        await asyncio.sleep(self.rng.random() * max(pace, 0.01))  # teachers do not start in lockstep
        for i in range(SAVES):
            saves.append(await self.save())
            if i % PAGE_EVERY == PAGE_EVERY - 1:
                pages.append(await self.page())
            if pace:
                await asyncio.sleep(pace * (0.5 + self.rng.random()))


async def load(base: str, plan: dict, pace: float, bare: str | None = None) -> tuple[list, list, float]:
    teachers = [Teacher(base, plan, spec, bare) for spec in plan["teachers"]]
    try:
        await asyncio.gather(*(t.login() for t in teachers))
        saves: list = []
        pages: list = []
        t0 = time.perf_counter()
        await asyncio.gather(*(t.run(pace, saves, pages) for t in teachers))
        return saves, pages, time.perf_counter() - t0
    finally:
        await asyncio.gather(*(t.http.close() for t in teachers))


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return 1000 * v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main() -> int:
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="preau-bench-web-"))
    plan = build_school(tmp / "school")
    port, bare_port = free_port(), free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREAU_")},
           "PREAU_ARGON2_PROFILE": "minimal", "PREAU_PORT": str(port), "PREAU_LOG_LEVEL": "warning"}
    node = subprocess.Popen([sys.executable, "-m", "preau.cli.main", "serve", "--data-dir", str(tmp / "school")],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "serve.log", "wb"),
                            start_new_session=True)
    bare = None
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_up(base + "/healthz", node))
        # Sizes of the real responses, so the baseline serves the same bytes.
        _, pages0, _ = asyncio.run(load(base, {**plan, "teachers": plan["teachers"][:1]}, 0.0))
        page_size = pages0[0][1] if pages0 else 20_000
        save_size = 95
        bare = subprocess.Popen([sys.executable, "-c", BARE, str(bare_port), str(page_size), str(save_size)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        bare_base = f"http://127.0.0.1:{bare_port}"
        asyncio.run(wait_up(bare_base + "/page", bare))
        print(f"{TEACHERS} teachers x {SAVES} row saves (+ a grid page every {PAGE_EVERY} saves); "
              f"grid page {page_size} bytes, {plan['items']} items x {PUPILS} pupils")
        ok = True
        for label, pace in (("paced (a save every ~300 ms per teacher)", PACE), ("flat out (no pause)", 0.0)):
            saves, pages, took = asyncio.run(load(base, plan, pace))
            bsaves, bpages, _ = asyncio.run(load(bare_base, plan, pace, bare=bare_base))
            s50, s95, p50, p95 = pct([s for s, _ in saves], 50), pct([s for s, _ in saves], 95), \
                pct([p for p, _ in pages], 50), pct([p for p, _ in pages], 95)
            b50, b95, bp50, bp95 = pct([s for s, _ in bsaves], 50), pct([s for s, _ in bsaves], 95), \
                pct([p for p, _ in bpages], 50), pct([p for p, _ in bpages], 95)
            print(f"== {label}: {len(saves)} saves, {len(pages)} pages in {took:.1f} s "
                  f"({len(saves) / took:.0f} saves/s)")
            print(f"  save  p50 {s50:6.1f} ms  p95 {s95:6.1f} ms   bare p50 {b50:5.1f} p95 {b95:5.1f} ms   "
                  f"ratio p95 x{s95 / b95:.1f}")
            print(f"  page  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms   bare p50 {bp50:5.1f} p95 {bp95:5.1f} ms   "
                  f"ratio p95 x{p95 / bp95:.1f}")
            if pace:
                ok = s95 <= 50 and p95 <= 100
                print(f"  targets (save p95 <= 50 ms, page p95 <= 100 ms): {'met' if ok else 'MISSED'}")
        print(f"  (save response {save_size} bytes; mean of all saves "
              f"{1000 * statistics.mean(s for s, _ in saves):.1f} ms in the last pass)")
        return 0
    finally:
        for proc in (node, bare):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    sys.exit(main())
