"""A secure-aggregation pool of 20 small schools, side by side with the plain release path, in one run.

Secure aggregation (protocol.secagg): 5 round trips between each school and
the district; bytes each school sends and receives; CPU per school (its
client's work) and at the district (collecting, routing, unmasking).
Plain path (what a school with 10+ pupils does): build the release with the
disclosure policy, sign, save; at the district, load, verify and merge.
Both on the same 20 schools' outcomes (3-7 pupils, a 14-exercise campaign;
the plain path here runs with min_cohort 3 so these schools do publish).
Message bytes only: the Noise transport and sync framing around them are not counted.
"""
from __future__ import annotations

import hashlib
import random
import sys
import time

from preau.crdt.crypto import public_key
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.crdt.docio import load_document
from preau.crdt.documents import write_release
from preau.crdt.pooling import pool_vector, pooled_rows, vector_length
from preau.crdt.schema import new_document
from preau.crdt.signing import SignedRelease, sign_release, verify_release
from preau.crdt.statistics import CampaignStatistics
from preau.protocol.identity import Identity
from preau.protocol.secagg import CohortDeclaration, DistrictAggregator, Member, PoolDefinition, SchoolClient
from preau.protocol.uai import check_letter

from _campaign import CAMPAIGN

SCHOOLS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
NOW = 1_790_000_000


def _seed(*parts) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=32).digest()


def _uai(i: int) -> str:
    digits = f"{620_0000 + i:07d}"
    return digits + check_letter(digits)


def main() -> int:
    rng = random.Random(1)
    groups = ("besoin", "fragile", "seuil2", "absent")
    cohorts = [rng.randint(3, 7) for _ in range(SCHOOLS)]
    outcomes = [[PupilOutcome(f"s{s}p{i}", ex.id, rng.choices(groups, (1, 2, 6, 0.3))[0])
                 for i in range(n) for ex in CAMPAIGN.exercises] for s, n in enumerate(cohorts)]
    identities = [Identity(_seed("school", i)) for i in range(SCHOOLS)]
    district = Identity(_seed("district"))

    # --- plain release path ---------------------------------------------------------
    # The same schools, each grown to the national floor (min_cohort): below it a plain release is
    # withheld and costs nothing, which would not be a comparison.
    floor = CAMPAIGN.policy.min_cohort
    plain = [[PupilOutcome(f"s{s}p{i}", ex.id, rng.choices(groups, (1, 2, 6, 0.3))[0])
              for i in range(max(n, floor)) for ex in CAMPAIGN.exercises] for s, n in enumerate(cohorts)]
    t0 = time.process_time()
    wire = []
    for i, outs in enumerate(plain):
        decision = next_release(outs, CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=False)
        seed = _seed("release-key", i)
        doc = new_document("release", public_key(seed), campaign=CAMPAIGN.id)
        write_release(doc, decision.content)
        wire.append((public_key(seed), doc.save(), sign_release(doc, seed, now=NOW).encode()))
    plain_school = (time.process_time() - t0) / SCHOOLS
    t0 = time.process_time()
    stats = CampaignStatistics(CAMPAIGN.id)
    for owner, saved, signed in wire:
        stats.add(verify_release(load_document(saved), SignedRelease.decode(signed), owner, stats.release_of(owner)))
    plain_district = time.process_time() - t0
    plain_bytes = sum(len(s) + len(g) for _, s, g in wire) / SCHOOLS

    # --- secure aggregation -----------------------------------------------------------
    t0 = time.process_time()
    vectors = [pool_vector(o, CAMPAIGN) for o in outcomes]
    members = tuple(Member.declared(CohortDeclaration.create(ident, campaign_id=CAMPAIGN.id, uai=_uai(i + 1),
                                                             cohort=vectors[i][-1], declared_at=1), f"École {i + 1}")
                    for i, ident in enumerate(identities))
    threshold = (2 * SCHOOLS) // 3 + 1
    pool = PoolDefinition.create(district, campaign_id=CAMPAIGN.id, pool_id=_seed("pool")[:16], threshold=threshold,
                                 vector_length=vector_length(CAMPAIGN), members=members)
    t_define = time.process_time() - t0
    cpu = [0.0] * (SCHOOLS + 1)
    up = [0] * (SCHOOLS + 1)
    down = [0] * (SCHOOLS + 1)
    clients = {}
    inbox = {}
    for i in range(SCHOOLS):
        t0 = time.process_time()
        clients[i + 1] = SchoolClient(identities[i], pool, district_key=district.signing_key, vector=vectors[i],
                                      seed=_seed("member", i), my_cohort=vectors[i][-1])
        inbox[i + 1] = clients[i + 1].start()
        cpu[i + 1] += time.process_time() - t0
    server = DistrictAggregator(pool)
    t_district = 0.0
    rounds = 0
    while server.state not in ("complete", "aborted"):
        rounds += 1
        t0 = time.process_time()
        for m, data in inbox.items():
            up[m] += len(data)
            server.receive(m, data)
        out = server.advance()
        t_district += time.process_time() - t0
        inbox = {}
        for m, data in out.items():
            down[m] += len(data)
            t0 = time.process_time()
            reply = clients[m].receive(data)
            cpu[m] += time.process_time() - t0
            if reply is not None:
                inbox[m] = reply.data
    assert server.state == "complete", server.reason
    assert list(server.result.total) == [sum(col) for col in zip(*vectors)]
    rows, cohort = pooled_rows(server.result.total, CAMPAIGN)
    assert cohort == sum(cohorts)

    per_school = sorted(cpu[1:])
    print(f"pool of {SCHOOLS} schools (t = {threshold}), {len(CAMPAIGN.exercises)} exercises, vector of {vector_length(CAMPAIGN)} words, "
          f"{cohort} pupils in all")
    print("                               secure aggregation      plain release (each school alone, at the floor size)")
    print(f"  round trips per school        {rounds:10d}              1 (the release goes in one sync session)")
    print(f"  bytes sent per school         {sum(up[1:]) / SCHOOLS:10.0f}              {plain_bytes:.0f} (document + signed release)")
    print(f"  bytes received per school     {sum(down[1:]) / SCHOOLS:10.0f}              (a receipt; not measured here)")
    print(f"  CPU per school (median, max)  {per_school[len(per_school) // 2] * 1000:6.1f}, {per_school[-1] * 1000:5.1f} ms"
          f"        {plain_school * 1000:.1f} ms (policy, document, sign)")
    print(f"  CPU at the district           {t_district * 1000:10.1f} ms           {plain_district * 1000:.1f} ms (load, verify, merge {SCHOOLS})")
    print(f"  pool definition (district)    {t_define * 1000:10.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
