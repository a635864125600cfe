"""District statistics page and API at 50, 1,000 and 3,000 schools: the cost must not grow with schools.

A real district node (its data folder, federation store, sessions, templates)
is served in-process by aiohttp on 127.0.0.1; its store gets N schools'
statistics entries for a 14-exercise campaign (the rows a verified release
writes; signing and verification are measured by bench_crdt.py and
bench_tree.py). A logged-in client then asks for the statistics page and the
JSON API, first once (the node loads its statistics once after start), then 30
times each: the median is printed. Target (issue 15): at 3,000 schools within
2x of the time at 50 schools.

    python bench/bench_stats.py
"""
from __future__ import annotations

import asyncio
import json
import pathlib
import random
import re
import statistics
import sys
import tempfile
import time

import aiohttp

from preau.crdt.documents import ReleaseContent, Row
from preau.crdt.schema import COLUMNS
from preau.node.app import create_app
from preau.node.federation.store import FedStore
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST
from preau.node.runtime import FEDERATION_DB, create_identity
from preau.node.settings import load_settings

SIZES = (50, 1000, 3000)
REPEAT = 30
PASSWORD = "bench password 2026"
CAMPAIGN_TOML = """\
id = "2026-bench-cp"
name = "Début de CP (bench)"
level = "CP"
school_year = "2026-2027"
opens = 2026-09-01
closes = 2030-06-30
illustrative = true
""" + "".join(f"""
[[exercises]]
id = "{i}"
name = "Exercice {i}"
subject = "{'français' if i.startswith('fr') else 'mathématiques'}"
score_kind = "items"
items = 15
thresholds = [6, 10]
""" for i in ("fr-mots", "fr-phrases", "fr-textes", "fr-syllabes", "fr-phonemes", "fr-lettres", "fr-ecritures",
              "ma-quantifier", "ma-comparer", "ma-lire", "ma-ecrire", "ma-ligne", "ma-problemes", "ma-assemblage"))
EXERCISES = re.findall(r'^id = "(\w\w-[a-z-]+)"', CAMPAIGN_TOML, re.M)
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CAMPAIGN = "2026-bench-cp"


def _entry(rng: random.Random) -> dict:
    from preau.crdt.campaign import Policy
    pupils = rng.randint(12, 60)
    rows = []
    for ex in EXERCISES:
        absent = rng.randint(0, 2)
        b = int((pupils - absent) * rng.uniform(0.03, 0.2))
        f = int((pupils - absent) * rng.uniform(0.05, 0.3))
        rows.append(Row.from_counts(ex, dict(zip(COLUMNS, (b, f, pupils - absent - b - f, absent, 0)))))
    content = ReleaseContent(CAMPAIGN, 1, "published", "", Policy(), tuple(rows), pupils)
    return {"release": 1, "time": 1_790_000_000, "heads": "00" * 32, "content": content.to_dict()}


def build(tmp: pathlib.Path, schools: int):
    data = tmp / f"district-{schools}"
    store, _ = Store.create(data, uai="0750001U", school_name="Circonscription (bench)", admin_username="ien",
                            admin_password=PASSWORD, cost=TEST_COST)
    store.close()
    create_identity(data)
    fed = FedStore(data / FEDERATION_DB)
    rng = random.Random(schools)
    with fed.transaction() as conn:
        for n in range(schools):
            fed._put_stats_entry(conn, CAMPAIGN, f"{n:064x}", _entry(rng), [])
    fed.close()
    return load_settings({"data_dir": str(data), "role": "district", "argon2_profile": "minimal"}, env={})


async def measure(settings) -> tuple[float, float, float]:
    from aiohttp.test_utils import TestClient, TestServer
    server = TestServer(create_app(settings), host="127.0.0.1")
    async with TestClient(server) as client:
        page = await client.get("/login")
        token = CSRF_RE.search(await page.text()).group(1)
        r = await client.post("/login", data={"csrf_token": token, "username": "ien", "password": PASSWORD},
                              allow_redirects=False)
        assert r.status == 303, r.status
        page = await client.get("/district/campaigns")
        token = CSRF_RE.search(await page.text()).group(1)
        form = aiohttp.FormData({"csrf_token": token})
        form.add_field("file", CAMPAIGN_TOML.encode(), filename="bench.toml")
        r = await client.post("/district/campaigns", data=form)
        assert r.status == 200, await r.text()
        t0 = time.perf_counter()
        first = await client.get(f"/district/stats/{CAMPAIGN}")
        assert first.status == 200
        await first.read()
        t_first = time.perf_counter() - t0

        async def timed(path: str) -> float:
            out = []
            for _ in range(REPEAT):
                t0 = time.perf_counter()
                resp = await client.get(path)
                body = await resp.read()
                out.append(time.perf_counter() - t0)
                assert resp.status == 200 and body
            return statistics.median(out)

        t_page = await timed(f"/district/stats/{CAMPAIGN}")
        t_api = await timed(f"/v1/stats/{CAMPAIGN}")
        api = json.loads(body) if (body := await (await client.get(f"/v1/stats/{CAMPAIGN}")).read()) else {}
        assert api["schools_contributing"] == settings_schools(settings)
        return t_first, t_page, t_api


def settings_schools(settings) -> int:
    return int(pathlib.Path(settings.data_dir).name.split("-")[1])


def main() -> int:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            settings = build(pathlib.Path(tmp), n)
            results[n] = asyncio.run(measure(settings))
            first, page, api = results[n]
            print(f"{n:>5} schools: first page after start {1e3 * first:7.1f} ms; page median {1e3 * page:6.1f} ms; "
                  f"API median {1e3 * api:6.1f} ms")
    small, big = results[SIZES[0]], results[SIZES[-1]]
    ratio_page, ratio_api = big[1] / small[1], big[2] / small[2]
    print(f"at {SIZES[-1]:,} schools vs {SIZES[0]}: page {ratio_page:.2f}x, API {ratio_api:.2f}x (target <= 2)")
    ok = ratio_page <= 2 and ratio_api <= 2
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
