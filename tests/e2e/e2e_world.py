"""Real Préau nodes in real processes on 127.0.0.1, for the end-to-end tests.

Each node has its own data folder; `serve` runs as `python -m preau.cli.main
serve`, and every step a person would take (invite, join, release, sync,
revoke, bundles, key rotation) runs as its own `preau` command process. Only
what has no command yet runs in the test process against the node's data
folder: filling classes with synthetic results (the web UI's job) and
loading the campaign on the district, as `preau demo` does.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

from preau.crdt.campaign import GROUPS
from preau.node import actions
from preau.node.campaign_file import load_campaign_file, resolve_campaign_path
from preau.node.demo.demo import DEMO_PASSWORD, DemoNode, _env, _fill, _init, _preau, _wait_healthy, free_port, uai
from preau.node.demo.synthetic import expected_counts, make_classes
from preau.protocol.identity import Identity, decode_key_file

FEDERATION_DB = "federation.db"


def campaign_open_today():
    """The sample Début de CP campaign, open now (so releases are not final unless asked)."""
    campaign = load_campaign_file(resolve_campaign_path("debut-cp"))
    today = _dt.date.today()
    return dataclasses.replace(campaign, opens=(today - _dt.timedelta(days=7)).isoformat(),
                               closes=(today + _dt.timedelta(days=30)).isoformat())


@dataclasses.dataclass
class Proc(DemoNode):
    """A node's data folder and, while it serves, its process."""

    classes: list = dataclasses.field(default_factory=list)
    unprotect: tuple[str, ...] = ()  # privacy protections switched off in this node's processes (node/testhooks.py)
    capture_wire: bool = False  # its processes write every protocol message they receive to DATA/test-wire-capture.bin

    def env(self) -> dict[str, str]:
        env = _env()
        if self.unprotect:
            env.update({"PREAU_TESTING": "1", "PREAU_TEST_UNPROTECT": ",".join(self.unprotect)})
        if self.capture_wire:
            env.update({"PREAU_TESTING": "1", "PREAU_TEST_CAPTURE_WIRE": "1"})
        return env

    def configure(self, **settings) -> None:
        """Add settings to DATA/preau.toml (read by every process started afterwards)."""
        path = self.data_dir / "preau.toml"
        lines = [line for line in path.read_text().splitlines() if line.split("=")[0].strip() not in settings]
        lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
        path.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        log = open(self.data_dir / "serve.log", "ab")
        self.process = subprocess.Popen(_preau("serve", "--data-dir", str(self.data_dir)), env=self.env(),
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        log.close()
        _wait_healthy(self)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def cli(self, *args: str, check: bool = True, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run one `preau` command against this node's data folder, as a person would."""
        words = [a for a in args if not a.startswith("-")][:2]
        group = 2 if words and words[0] in ("bundle", "keys", "campaign", "pool") else 1
        argv = [*args[:group], "--data-dir", str(self.data_dir), *args[group:]]
        done = subprocess.run(_preau(*argv), env=self.env(), capture_output=True, text=True, timeout=timeout,
                              input=stdin)
        if check and done.returncode != 0:
            raise AssertionError(f"preau {' '.join(args)} on {self.name} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def db(self) -> sqlite3.Connection:
        """A read-only look at the node's federation store (the node may be running)."""
        conn = sqlite3.connect(f"file:{self.data_dir / FEDERATION_DB}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        return conn

    def query(self, sql: str, *args) -> list[sqlite3.Row]:
        with contextlib.closing(self.db()) as conn:
            return conn.execute(sql, args).fetchall()

    @property
    def key(self) -> str:
        """The node's current signing key (hex), as its peers pin it."""
        seed, _legacy = decode_key_file(self.data_dir.joinpath("identity.key").read_bytes())
        return Identity(seed).signing_key.hex()

    def pid_rss_kb(self) -> int:
        for line in pathlib.Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


def academie(root: pathlib.Path) -> Proc:
    """An académie's node (the district software one level up) in `root`/academie, initialised, not started."""
    node = Proc("academie", "district", uai(69, 9500), root / "academie", free_port())
    _init(node, "Académie de test")
    return node


class World:
    """A district and its schools, each in its own folder under `root`."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.campaign = campaign_open_today()
        self.district = Proc("district", "district", uai(69, 9001), root / "district", free_port())
        self.schools: dict[str, Proc] = {}

    def add_school(self, name: str, number: int) -> Proc:
        node = Proc(name, "school", uai(69, 1000 + number), self.root / name, free_port())
        self.schools[name] = node
        return node

    def init_all(self) -> None:
        _init(self.district, "Circonscription de test")
        for node in self.schools.values():
            _init(node, f"École {node.name}")

    def load_campaign(self) -> None:
        actions.load_campaign(self.district.settings(), campaign=self.campaign, file="debut-cp")

    def join(self, node: Proc) -> None:
        invitation = self.district.cli("invite", "--uai", node.uai, "--allow-loopback").stdout.strip()
        out = node.cli("join", invitation).stdout
        assert "Joined the district" in out, out

    def fill(self, node: Proc, sizes: list[int], seed: int | None = None, rate_shift: float = 0.0,
             adjust=None) -> list:
        """Synthetic classes entered at `node`; `adjust(classes)` may change their results before entry."""
        import random
        rng = random.Random(seed if seed is not None else node.uai)
        classes = make_classes(rng, self.campaign, sizes, rate_shift=rate_shift)
        if adjust is not None:
            adjust(classes)
        for i, c in enumerate(classes):  # class names stay unique when a school fills more classes later
            c.name = f"{self.campaign.level} {chr(ord('A') + len(node.classes) + i)}"
        _fill(node, self.campaign, classes)
        node.classes.extend(classes)
        return classes

    def release(self, node: Proc) -> str:
        out = node.cli("release", self.campaign.id, "--approve").stdout
        assert "signed" in out, out
        return out

    def stats(self) -> dict:
        """The district's merged statistics as `preau stats --format json` shapes them (read from its store)."""
        from preau.crdt.statistics import CampaignStatistics
        s = CampaignStatistics.from_dict(self.stored_stats())
        return {"campaign": s.campaign, "schools_contributing": s.schools_contributing,
                "schools_withheld": s.schools_withheld,
                "exercises": [{"exercise": ex, **s.exercise(ex).counts} for ex in s.exercise_ids()]}

    def stats_by_command(self) -> dict:
        return json.loads(self.district.cli("stats", self.campaign.id, "--format", "json").stdout)

    def stored_stats(self) -> dict:
        """The district's statistics as its store holds them: one entry per school (read-only, while it runs)."""
        rows = self.district.query("SELECT owner, entry FROM stats_entries WHERE campaign = ? ORDER BY owner",
                                   self.campaign.id)
        return {"version": 1, "campaign": self.campaign.id,
                "schools": {r["owner"]: json.loads(r["entry"]) for r in rows}}

    def expected(self, nodes: Iterable[Proc]) -> dict[str, Counter]:
        """Pupils per group per exercise, from the intended groups of the synthetic data (not via Préau)."""
        out: dict[str, Counter] = {}
        for node in nodes:
            for ex, counts in expected_counts(node.classes).items():
                out.setdefault(ex, Counter()).update(counts)
        return out

    def counts(self, stats: dict) -> dict[str, dict[str, int]]:
        return {row["exercise"]: {g: int(row.get(g, 0)) for g in GROUPS} for row in stats["exercises"]}

    def parallel(self, fn, nodes: Iterable[Proc]) -> list:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(fn, nodes))

    def stop_all(self) -> None:
        for node in (self.district, *self.schools.values()):
            with contextlib.suppress(Exception):
                node.stop()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


__all__ = ["DEMO_PASSWORD", "Proc", "World", "academie", "campaign_open_today", "wait_for"]
