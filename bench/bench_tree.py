"""The national tree, simulated in one process: schools -> districts -> académies -> the national node.

Every level does what its nodes do, with the real code and no sockets: a
school writes its release document and signs it; a district loads each
school's document, verifies it (signature, heads, read at the signed heads),
adds it to its statistics, builds its aggregate (small cells hidden), writes
and signs it; an académie does the same with its districts' aggregates, and
the national node with the académies'.

Printed per level: nodes, documents received, bytes received (saved document +
signed release), time (build + sign at the senders, load + verify + merge and
aggregate at the receivers), the most bytes any one node of the level holds,
and the time to read a whole campaign's statistics on the level's largest
node. Times are CPU seconds of this process (`time.process_time`): on a shared
machine wall time says more about the neighbours than about the code. The tree is run at two sizes (a tenth, then the full size) so the
per-school cost can be compared: linear cost means the same time per school.

Checks (the run fails otherwise): every node holds exactly its children's
documents (no node ever sees a grandchild's document), the national node
represents every school, and reading statistics costs the same at every level.

    python bench/bench_tree.py            # 3,000 then 30,000 schools (about 90 s of CPU)
    python bench/bench_tree.py --small    # 300 then 3,000 schools

Release contents are drawn at random per school (counts per group per
exercise) rather than from pupils through the disclosure policy, which
bench_crdt.py measures on its own.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from dataclasses import dataclass, field

from preau.crdt.crypto import public_key
from preau.crdt.docio import load_document
from preau.crdt.documents import ReleaseContent, Row, write_release
from preau.crdt.schema import COLUMNS, new_document
from preau.crdt.signing import SignedRelease, sign_release, verify_release
from preau.crdt.statistics import CampaignStatistics, build_aggregate

from _campaign import CAMPAIGN

NOW = 1_790_000_000
SCHOOLS_PER_DISTRICT = 20
DISTRICTS_PER_ACADEMIE = 50
LEVELS = ("school", "district", "académie", "national")


@dataclass
class Level:
    name: str
    nodes: int = 0
    documents: int = 0  # documents sent up by this level's nodes
    bytes_up: int = 0  # saved document + signed release, sent up
    t_send: float = 0.0  # build + save + sign at this level's nodes
    t_receive: float = 0.0  # load + verify + merge at this level's nodes (of their children's documents)
    t_aggregate: float = 0.0  # build the aggregate from the statistics
    held_max: int = 0  # the most bytes one node of this level holds of other nodes' documents
    held_docs_max: int = 0
    read_time: float = 0.0  # reading every exercise's statistics on this level's largest node
    largest_members: int = 0


@dataclass
class Sent:
    owner: bytes
    saved: bytes
    signed: bytes
    represents: int  # schools behind it


@dataclass
class Run:
    schools: int
    levels: dict[str, Level] = field(default_factory=lambda: {n: Level(n) for n in LEVELS})
    total: float = 0.0  # CPU seconds of this process (the machine may be shared: wall time is printed apart)
    wall: float = 0.0


def _seed(*path: int) -> bytes:
    return hashlib.sha256(b"bench-tree/" + ".".join(map(str, path)).encode()).digest()


def _school_content(rng: random.Random) -> ReleaseContent:
    pupils = rng.randint(12, 60)
    rows = []
    for ex in CAMPAIGN.exercises:
        absent = rng.randint(0, 2)
        assessed = pupils - absent
        besoin = int(assessed * rng.uniform(0.03, 0.2))
        fragile = int(assessed * rng.uniform(0.05, 0.3))
        cells = [besoin, fragile, assessed - besoin - fragile, absent, 0]
        rows.append(Row.from_counts(ex.id, dict(zip(COLUMNS, cells))))
    return ReleaseContent(CAMPAIGN.id, 1, "published", "", CAMPAIGN.policy, tuple(rows), pupils)


def _send(level: Level, kind: str, seed: bytes, content: ReleaseContent, represents: int) -> Sent:
    t0 = time.process_time()
    owner = public_key(seed)
    doc = new_document(kind, owner, campaign=CAMPAIGN.id)
    write_release(doc, content)
    sent = Sent(owner, doc.save(), sign_release(doc, seed, now=NOW).encode(), represents)
    level.t_send += time.process_time() - t0
    level.documents += 1
    level.bytes_up += len(sent.saved) + len(sent.signed)
    return sent


def _receive(level: Level, children: list[Sent], kinds: tuple[str, ...]) -> CampaignStatistics:
    """One node of `level` takes its children's documents: what it holds is exactly these."""
    t0 = time.process_time()
    stats = CampaignStatistics(CAMPAIGN.id)
    for c in children:
        verified = verify_release(load_document(c.saved), SignedRelease.decode(c.signed), c.owner,
                                  stats.release_of(c.owner), kinds=kinds)
        if not stats.add(verified):
            raise AssertionError("a child's first release was not taken")
    level.t_receive += time.process_time() - t0
    held = sum(len(c.saved) + len(c.signed) for c in children)
    level.nodes += 1
    level.held_max = max(level.held_max, held)
    level.held_docs_max = max(level.held_docs_max, len(children))
    if len(stats.to_dict()["schools"]) != len(children):
        raise AssertionError("a node holds something other than its children's documents")
    if stats.schools_represented != sum(c.represents for c in children):
        raise AssertionError("the statistics do not represent exactly the children's schools")
    if len(children) >= level.largest_members:
        t0 = time.process_time()
        for _ in range(5):
            for ex in stats.exercise_ids():
                stats.exercise(ex)
        level.read_time = (time.process_time() - t0) / 5
        level.largest_members = len(children)
    return stats


def _aggregate(level: Level, stats: CampaignStatistics) -> ReleaseContent:
    t0 = time.process_time()
    content = build_aggregate(stats, CAMPAIGN, release=1, final=True)
    level.t_aggregate += time.process_time() - t0
    return content


def run_tree(schools: int) -> Run:
    run = Run(schools)
    lv = run.levels
    rng = random.Random(schools)
    districts = -(-schools // SCHOOLS_PER_DISTRICT)
    academies = -(-districts // DISTRICTS_PER_ACADEMIE)
    t_start, wall_start = time.process_time(), time.perf_counter()
    academie_docs = []
    school_no = 0
    for a in range(academies):
        district_docs = []
        for d in range(a * DISTRICTS_PER_ACADEMIE, min(districts, (a + 1) * DISTRICTS_PER_ACADEMIE)):
            school_docs = []
            for _ in range(min(SCHOOLS_PER_DISTRICT, schools - school_no)):
                school_docs.append(_send(lv["school"], "release", _seed(0, school_no), _school_content(rng), 1))
                school_no += 1
            lv["school"].nodes += len(school_docs)
            stats = _receive(lv["district"], school_docs, ("release",))
            content = _aggregate(lv["district"], stats)
            district_docs.append(_send(lv["district"], "aggregate", _seed(1, d), content, content.schools_contributing))
            # the district's school documents go out of scope here: nobody above ever holds them
        stats = _receive(lv["académie"], district_docs, ("aggregate",))
        content = _aggregate(lv["académie"], stats)
        academie_docs.append(_send(lv["académie"], "aggregate", _seed(2, a), content, content.schools_contributing))
    national = _receive(lv["national"], academie_docs, ("aggregate",))
    run.total = time.process_time() - t_start
    run.wall = time.perf_counter() - wall_start
    if national.schools_represented != schools:
        raise AssertionError(f"the national node represents {national.schools_represented} schools, not {schools}")
    return run


def report(run: Run) -> None:
    lv = run.levels
    print(f"\n{run.schools:,} schools -> {lv['district'].nodes:,} districts -> {lv['académie'].nodes} académies "
          f"-> 1 national node: {run.total:.1f} s CPU in all ({run.wall:.1f} s wall), "
          f"{1e3 * run.total / run.schools:.2f} ms CPU per school")
    print(f"  {'level':9} {'nodes':>6} {'docs up':>8} {'bytes up':>12} {'send s':>7} {'receive s':>9} "
          f"{'aggr s':>7} {'held/node max':>14} {'docs/node':>9} {'read stats':>10}")
    for name in LEVELS:
        v = lv[name]
        held = f"{v.held_max:,}" if name != "school" else "-"
        docs = f"{v.held_docs_max}" if name != "school" else "-"
        read = f"{1e3 * v.read_time:.2f} ms" if name != "school" else "-"
        print(f"  {name:9} {v.nodes:>6,} {v.documents:>8,} {v.bytes_up:>12,} {v.t_send:>7.2f} {v.t_receive:>9.2f} "
              f"{v.t_aggregate:>7.2f} {held:>14} {docs:>9} {read:>10}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="300 then 3,000 schools (a few seconds)")
    parser.add_argument("--schools", type=int, help="only this many schools (one run, no comparison)")
    args = parser.parse_args(argv)
    sizes = [args.schools] if args.schools else ([300, 3000] if args.small else [3000, 30000])
    runs = []
    for n in sizes:
        runs.append(run_tree(n))
        report(runs[-1])
    ok = True
    for r in runs:
        for name in ("district", "académie", "national"):
            v = r.levels[name]
            children = {"district": SCHOOLS_PER_DISTRICT, "académie": DISTRICTS_PER_ACADEMIE,
                        "national": r.levels["académie"].nodes}[name]
            if v.held_docs_max > children:
                print(f"FAIL: a {name} node holds {v.held_docs_max} documents, more than its {children} children")
                ok = False
    if len(runs) == 2:
        small, big = runs
        per_small = small.total / small.schools
        per_big = big.total / big.schools
        ratio = per_big / per_small
        print(f"\ncost per school: {1e3 * per_small:.2f} ms at {small.schools:,}, {1e3 * per_big:.2f} ms at "
              f"{big.schools:,}: ratio {ratio:.2f} (linear cost: about 1; at most 1.5 accepted)")
        ok &= ratio <= 1.5
        for name in ("district", "académie"):
            a, b = small.levels[name].read_time, big.levels[name].read_time
            print(f"reading a campaign's statistics on the largest {name} node: {1e3 * a:.2f} ms at {small.schools:,} "
                  f"schools, {1e3 * b:.2f} ms at {big.schools:,}")
        nat_small, nat_big = small.levels["national"].read_time, big.levels["national"].read_time
        print(f"reading them on the national node ({small.levels['académie'].nodes} then {big.levels['académie'].nodes} "
              f"académies, {small.schools:,} then {big.schools:,} schools behind): {1e3 * nat_small:.2f} ms, "
              f"{1e3 * nat_big:.2f} ms")
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
