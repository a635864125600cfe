"""`preau demo`: a whole federation on this machine, in real processes on loopback ports.

A district and several schools each run `preau serve` in their own process
and data folder. The demo enrols every school with a real invitation (`preau
join` in a process of its own), fills synthetic classes following the national
rates, approves each school's release, syncs, and checks the district's merged
statistics against counts computed straight from the generated data. Three
more small schools (4 to 6 pupils, withheld alone) are pooled by secure
aggregation: the district's statistics then hold their sum as one row.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as _dt
import functools
import json as _json
import os
import pathlib
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from typing import Any

from preau.crdt.campaign import GROUPS
from preau.crdt.schema import document_id
from preau.crdt.statistics import CampaignStatistics
from preau.protocol.uai import check_letter

from preau.node import actions, i18n
from preau.node.campaign_file import load_campaign_file, resolve_campaign_path
from preau.node.errors import UserError, Words
from preau.node.release import approve_release, preview_release
from preau.node.settings import load_settings
from preau.node.records.store import ResultInput, Store
from preau.node.demo.synthetic import answers_for, assessed, expected_counts, make_classes
from preau.node.records.vault import ARGON2

DEMO_PASSWORD = "demo-preau-2026"
SMALL_SCHOOL_PUPILS = 6


def uai(departement: int, number: int) -> str:
    digits = f"{departement:03d}{number:04d}"
    return digits + check_letter(digits)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class DemoNode:
    name: str
    role: str
    uai: str
    data_dir: pathlib.Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self):
        return load_settings({"data_dir": str(self.data_dir), "role": self.role, "port": self.port,
                              "argon2_profile": "minimal"}, env={})


# Names a French district would see (the demo's district is in the Rhône, 69): schools named after people, as
# most are, and village schools for the small ones. `preau demo` named them school-1, school-2...
SCHOOL_NAMES = (
    "École élémentaire Jean Jaurès", "École élémentaire Jules Ferry", "École primaire Louise Michel",
    "École élémentaire Victor Hugo", "École primaire Marie Curie", "École élémentaire Jean Moulin",
    "École primaire Paul Bert", "École élémentaire Condorcet", "École primaire Anatole France",
    "École élémentaire Pasteur", "École primaire Jacques Prévert", "École élémentaire Simone Veil",
    "École primaire Lucie Aubrac", "École élémentaire Jean de La Fontaine", "École primaire Saint-Exupéry",
    "École élémentaire Georges Brassens", "École primaire Joliot-Curie", "École élémentaire Marcel Pagnol",
    "École primaire George Sand", "École élémentaire Robert Desnos", "École primaire Jean Macé",
    "École élémentaire Paul Langevin", "École primaire Charles Perrault", "École élémentaire Albert Camus",
    "École primaire Olympe de Gouges", "École élémentaire Germaine Tillion", "École primaire Jean Rostand",
    "École élémentaire Frédéric Mistral", "École primaire Colette",
)
SMALL_SCHOOL_NAME = "École primaire de Propières"  # the last school, too small to publish alone
POOLED_NAMES = ("École primaire de Ronno", "École primaire de Marchampt", "École primaire de Theizé")


def _school_name(i: int, count: int) -> str:
    return SMALL_SCHOOL_NAME if i == count - 1 else SCHOOL_NAMES[i]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    env["PREAU_PASSWORD"] = DEMO_PASSWORD
    return env


def _preau(*args: str) -> list[str]:
    return [sys.executable, "-m", "preau.cli.main", *args]


def _wait_healthy(node: DemoNode, timeout: float = 180.0) -> None:
    # Generous: it returns as soon as the node answers (or fails as soon as it exits), and a slow box
    # needs the time (the arm64 image under qemu emulation, on a busy machine, took over 60 s).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process is not None and node.process.poll() is not None:
            raise UserError(_said("demo.stopped", name=node.name, code=node.process.returncode,
                                  log=node.data_dir / "serve.log"))
        try:
            with urllib.request.urlopen(node.url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise UserError(_said("demo.silent", name=node.name, url=node.url, seconds=f"{timeout:.0f}"))


def _start(node: DemoNode) -> None:
    log = open(node.data_dir / "serve.log", "ab")
    node.process = subprocess.Popen(_preau("serve", "--data-dir", str(node.data_dir)), env=_env(),
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
    log.close()


def _init(node: DemoNode, name: str) -> None:
    actions.init_node(node.settings(), uai=node.uai, name=name, admin="admin", password=DEMO_PASSWORD)
    # Write the port and the cheap password hashing into the node's own settings file for `serve`.
    node.settings().settings_file.write_text(
        f'role = "{node.role}"\nport = {node.port}\nargon2_profile = "minimal"\nsync_interval = 30\nbackoff_max = 60\n')


def _fill(node: DemoNode, campaign, classes) -> None:
    rng = random.Random(node.uai)
    store = Store.open(node.data_dir, cost=ARGON2["minimal"])
    try:
        admin = store.login("admin", DEMO_PASSWORD)
        for c in classes:
            info = store.create_class(admin, c.name, campaign.level, campaign.school_year)
            pupils = store.add_pupils(admin, info.id, [(p.last_name, p.first_name) for p in c.pupils])
            entries = []
            for pupil, synthetic in zip(pupils, c.pupils):
                for ex_id, (group, score) in synthetic.results.items():
                    ex = campaign.exercise(ex_id)
                    if group == "absent":
                        entries.append(ResultInput(pupil.id, ex_id, status="absent"))
                    elif ex.score_kind == "wpm":
                        entries.append(ResultInput(pupil.id, ex_id, wpm=score))
                    else:
                        entries.append(ResultInput(pupil.id, ex_id, answers=answers_for(rng, ex, score)))
            store.save_results(admin, campaign.id, entries)
    finally:
        store.close()


def _said(key: str, **params: Any) -> Words:
    return Words(i18n.translate("en", key, **params), key, params)


def run_demo(settings=None, *, schools: int = 6, keep: bool = False, json: bool = False, seed: int = 1,
             base: str | None = None, lang: str = "en", **_: Any) -> str:
    if not 2 <= schools <= 30:
        raise UserError(_said("demo.schools"))
    started = time.monotonic()
    root = pathlib.Path(base or tempfile.mkdtemp(prefix="preau-demo-"))
    rng = random.Random(seed)
    district = DemoNode("district", "district", uai(69, 9001), root / "district", free_port())
    nodes = [DemoNode(_school_name(i, schools), "school", uai(69, 1000 + 17 * i), root / f"school-{i + 1}", free_port())
             for i in range(schools)]
    say = functools.partial(i18n.translate, lang)
    progress = (lambda msg: None) if json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    summary: dict[str, Any] = {}
    finished = False
    try:
        progress(say("demo.setting_up", schools=schools, root=root))
        _init(district, "Circonscription de démonstration")
        for node in nodes:
            _init(node, node.name)
        campaign = load_campaign_file(resolve_campaign_path("debut-cp"))
        today = _dt.date.today()
        campaign = dataclasses.replace(campaign, opens=(today - _dt.timedelta(days=7)).isoformat(),
                                       closes=(today + _dt.timedelta(days=30)).isoformat())
        _start(district)
        _wait_healthy(district)
        actions.load_campaign(district.settings(), campaign=campaign, file="debut-cp")
        for node in nodes:
            _start(node)
        for node in nodes:
            _wait_healthy(node)

        progress(say("demo.enrolling"))
        for node in nodes:
            invitation = actions.create_invitation(district.settings(), uai=node.uai, name=node.name,
                                                   allow_loopback=True).text  # every node on this one machine
            done = subprocess.run(_preau("join", "--data-dir", str(node.data_dir), invitation), env=_env(),
                                  capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise UserError(_said("demo.join_failed", name=node.name, detail=done.stderr.strip()))

        progress(say("demo.filling"))
        generated = {}
        for i, node in enumerate(nodes):
            small = i == len(nodes) - 1
            sizes = [SMALL_SCHOOL_PUPILS] if small else [rng.randint(18, 26) for _ in range(rng.randint(1, 3))]
            classes = make_classes(rng, campaign, sizes, rate_shift=rng.uniform(-0.08, 0.04))
            generated[node.uai] = classes
            _fill(node, campaign, classes)

        total_sent = total_received = 0
        school_rows = []
        for i, node in enumerate(nodes):
            n = actions.open_node(node.settings())
            try:
                session = n.store.login("admin", DEMO_PASSWORD)
                small = i == len(nodes) - 1
                preview = preview_release(n.store, session, n.federation, campaign.id, closing=small)
                signed = approve_release(n.store, session, n.federation, preview) if preview.will_release else None
                report = asyncio.run(n.sync_upstream())
                total_sent += report.bytes_sent
                total_received += report.bytes_received
                receipts = [t for t in n.fed.transparency() if t["receipt"]]
                school_rows.append({
                    "name": node.name, "uai": node.uai, "url": node.url, "node_id": n.node_id,
                    "pid": node.process.pid if node.process else None,
                    "pupils": sum(len(c.pupils) for c in generated[node.uai]),
                    "assessed": assessed(generated[node.uai]),
                    "status": preview.decision.content.status if preview.decision.content else "nothing",
                    "release": signed.release if signed else None,
                    "acknowledged": bool(receipts),
                    "bytes_sent": report.bytes_sent, "bytes_received": report.bytes_received,
                })
            finally:
                n.close()

        progress(say("demo.pooling"))
        pool = _pool_small_schools(root, district, campaign, rng)
        for row in pool["schools"]:
            generated[row["uai"]] = row.pop("classes")

        progress(say("demo.reading"))
        dn = actions.open_node(district.settings())
        try:
            stats = CampaignStatistics.from_dict(dn.fed.stats(campaign.id))
            verified = {p["uai"]: (dn.fed.latest_release(document_id("release", bytes.fromhex(p["key"]), campaign.id))
                                   or (0,))[0] for p in dn.fed.peers("school")}
        finally:
            dn.close()
        for row in school_rows:
            row["verified_release"] = verified.get(row["uai"], 0)

        expected: dict[str, Counter] = {}
        counted = [r["uai"] for r in school_rows if r["status"] == "published"]
        if pool["status"] == "complete":  # the pool's sum is in the statistics, as one row
            counted += [r["uai"] for r in pool["schools"]]
        for school_uai in counted:
            for ex, counts in expected_counts(generated[school_uai]).items():
                expected.setdefault(ex, Counter()).update(counts)
        table = []
        matches = True
        for ex in campaign.exercises:
            got = stats.exercise(ex.id).counts
            want = expected.get(ex.id, Counter())
            same = all(int(got.get(g, 0)) == want.get(g, 0) for g in GROUPS)
            matches &= same
            table.append({"exercise": ex.id, **{g: int(got.get(g, 0)) for g in GROUPS},
                          "expected": {g: want.get(g, 0) for g in GROUPS}, "match": same})
        summary = {
            "campaign": campaign.id,
            "district": {"url": district.url, "uai": district.uai, "data_dir": str(district.data_dir),
                         "pid": district.process.pid if district.process else None},
            "data_dir": str(root),
            "schools": school_rows,
            "pool": pool,
            "schools_contributing": stats.schools_contributing,
            "schools_withheld": stats.schools_withheld,
            "statistics": table,
            "matches_generated_data": matches,
            "bytes": {"schools_sent": total_sent, "schools_received": total_received},
            "seconds": round(time.monotonic() - started, 1),
            "kept": keep,
            "login": {"username": "admin", "password": DEMO_PASSWORD} if keep else None,
        }
        finished = True
    finally:
        if not (keep and finished):  # a failed demo never leaves processes behind
            for node in (district, *nodes):
                if node.process is not None and node.process.poll() is None:
                    node.process.terminate()
            for node in (district, *nodes):
                if node.process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        node.process.wait(timeout=10)
                    if node.process.poll() is None:
                        node.process.kill()
            if base is None and not keep:
                shutil.rmtree(root, ignore_errors=True)
    if json:
        return _json.dumps(summary, indent=2, ensure_ascii=False)
    return _render(summary, lang)


POOL_SIZES = (4, 5, 6)


def _pool_small_schools(root: pathlib.Path, district: DemoNode, campaign, rng: random.Random) -> dict[str, Any]:
    """Three small schools (run in this process, no server) join, and the district pools them.

    Each head teacher approves; the rounds then run at each sync, and the district
    learns the three schools' sum as one row of its statistics, never one school's counts.
    """
    from preau.crdt.pooling import pool_vector
    from preau.node.federation import pools as fpools

    nodes = [DemoNode(POOLED_NAMES[i], "school", uai(69, 1500 + 17 * i), root / f"small-{i + 1}", free_port())
             for i in range(len(POOL_SIZES))]
    opened = []
    rows = []
    try:
        for i, (node, size) in enumerate(zip(nodes, POOL_SIZES)):
            _init(node, node.name)
            invitation = actions.create_invitation(district.settings(), uai=node.uai, allow_loopback=True,
                                                   name=node.name).text
            classes = make_classes(rng, campaign, [size], rate_shift=rng.uniform(-0.08, 0.04))
            n = actions.open_node(node.settings())
            opened.append(n)
            # The head teacher declares the school's cohort (public figures, signed): the joining session
            # carries it to the district, which forms the pool from these declarations.
            fpools.declare_cohort(n.federation, campaign.id, node.uai, assessed(classes))
            asyncio.run(n.join(invitation, node.uai))
            n.close()
            _fill(node, campaign, classes)
            opened[-1] = actions.open_node(node.settings())
            rows.append({"name": node.name, "uai": node.uai, "pupils": size, "assessed": assessed(classes),
                         "classes": classes})
        dn = actions.open_node(district.settings())  # the district's store, read fresh at each look
        opened.append(dn)
        view = fpools.create_pool(dn.federation, campaign.id, [r["uai"] for r in rows])
        schools = opened[:-1]
        syncs = 0
        for n in schools:
            asyncio.run(n.sync_upstream())
            syncs += 1
            session = n.store.login("admin", DEMO_PASSWORD)
            camp = n.store.get_campaign(session, campaign.id)
            vector = pool_vector(n.store.release_outcomes(session, camp.id), camp)
            fpools.approve_pool(n.federation, view.pool_id, vector, min_cohort=camp.policy.min_cohort, user="admin")
        for _ in range(12):
            for n in schools:
                asyncio.run(n.sync_upstream())
                syncs += 1
            (view,) = [v for v in fpools.pools(dn.federation, campaign.id) if v.pool_id == view.pool_id]
            if view.status in ("complete", "failed"):
                break
        status = view.status
    finally:
        for n in opened:
            n.close()
    return {"status": status, "survivors": view.survivors, "pupils": view.pupils, "syncs": syncs, "schools": rows,
            "pool_id": view.pool_id}


POOL_STATUS = {"complete": "cli.pool.status.complete", "failed": "cli.pool.status.failed",
               "active": "cli.pool.status.active", "proposed": "cli.pool.status.proposed"}


def _render(s: dict[str, Any], lang: str = "en") -> str:
    t = functools.partial(i18n.translate, lang)
    yes = {True: t("demo.yes"), False: t("demo.no")}
    lines = [t("demo.head", campaign=s["campaign"], url=s["district"]["url"]), "", t("demo.schools_head")]
    pooled = (s.get("pool") or {}).get("schools", [])
    width = max((len(r.get("name", "")) for r in (*s["schools"], *pooled)), default=0)
    for r in s["schools"]:
        state = {"published": t("demo.published"), "withheld": t("demo.withheld")}.get(r["status"], r["status"])
        lines.append(t("demo.school_row", uai=r["uai"], name=f"{r.get('name', ''):{width}s}",
                       pupils=f"{r['pupils']:3d}", state=f"{state:26s}",
                       release=r["release"] or "-", verified=yes[bool(r["verified_release"])],
                       receipt=yes[bool(r["acknowledged"])]))
    pool = s.get("pool")
    if pool:
        status = pool["status"] if lang == "en" else t(POOL_STATUS.get(pool["status"], "demo.pool_other"))
        lines += ["", t("demo.pool_head", status=status)
                      + (t("demo.pool_result", schools=pool["survivors"], pupils=pool["pupils"])
                         if pool["status"] == "complete" else "")
                      + t("demo.pool_syncs", n=pool["syncs"])]
        lines += [t("demo.pool_row", uai=r["uai"], name=f"{r.get('name', ''):{width}s}", pupils=f"{r['pupils']:3d}")
                  for r in pool["schools"]]
    lines += ["", t("demo.stats_head", contributing=s["schools_contributing"], withheld=s["schools_withheld"])]
    head = f"  {t('demo.exercise'):28s}" + "".join(f"{g:>9s}" for g in GROUPS)
    lines.append(head)
    for r in s["statistics"]:
        lines.append(f"  {r['exercise']:28s}" + "".join(f"{r[g]:9d}" for g in GROUPS)
                     + ("" if r["match"] else t("demo.mismatch")))
    lines += ["", t("demo.matches", answer=t("demo.yes") if s["matches_generated_data"] else t("demo.no_caps")),
              t("demo.bytes", sent=s["bytes"]["schools_sent"], received=s["bytes"]["schools_received"]),
              t("demo.done", seconds=f"{s['seconds']:.1f}".replace(".", "," if lang == "fr" else "."))]
    if s["kept"]:
        pids = [s["district"]["pid"], *(r["pid"] for r in s["schools"])]
        side = max(width, len(t("demo.district")))
        lines += ["", t("demo.kept"), f"  {t('demo.district'):{side}s}  {s['district']['url']}"]
        lines += [f"  {r['name']:{side}s}  {r['url']}" for r in s["schools"]]
        lines += [t("demo.login", username=s["login"]["username"], password=s["login"]["password"]),
                  t("demo.stop", pids=" ".join(str(p) for p in pids)),
                  t("demo.data", data=s["data_dir"])]
    return "\n".join(lines)
