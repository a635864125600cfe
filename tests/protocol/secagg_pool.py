"""A pool of schools and their district, built small and real, for the secure aggregation tests.

Seeds are fixed per test so runs are deterministic. `run()` drives every round,
dropping the members named for each round (they stop answering from then on).
"""
from __future__ import annotations

import hashlib
import random

from preau.protocol.identity import Identity
from preau.protocol.secagg import CohortDeclaration, DistrictAggregator, Member, PoolDefinition, SchoolClient
from preau.protocol.uai import check_letter

ROUNDS = ("keys", "shares", "inputs", "signatures", "unmask")


def seed(*parts) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=32).digest()


def uai(i: int) -> str:
    digits = f"{620_0000 + i:07d}"
    return digits + check_letter(digits)


def declared(school: Identity, uai_: str, name: str, cohort: int, campaign: str = "2026-debut-cp") -> Member:
    """A member as the district builds it: from that school's own signed declaration of its cohort."""
    return Member.declared(CohortDeclaration.create(school, campaign_id=campaign, uai=uai_, cohort=cohort, declared_at=1), name)


class Pool:
    """n schools with identities, vectors and seeds; a district that signed their pool."""

    def __init__(self, n: int = 12, t: int | None = None, *, length: int = 6, cohorts=None, tag: str = "pool",
                 campaign: str = "2026-debut-cp", rng: random.Random | None = None):
        self.rng = rng or random.Random(tag)
        self.n, self.t = n, t if t is not None else (2 * n) // 3 + 1
        self.district = Identity(seed(tag, "district"))
        self.schools = [Identity(seed(tag, "school", i)) for i in range(n)]
        self.cohorts = list(cohorts) if cohorts is not None else [self.rng.randint(3, 7) for _ in range(n)]
        self.vectors = [[self.rng.randrange(0, 40) for _ in range(length - 1)] + [self.cohorts[i]] for i in range(n)]
        self.campaign = campaign
        self.members = tuple(declared(s, uai(i + 1), f"École {i + 1}", self.cohorts[i], campaign) for i, s in enumerate(self.schools))
        self.definition = PoolDefinition.create(self.district, campaign_id=campaign, pool_id=seed(tag, "pool-id")[:16],
                                                threshold=self.t, vector_length=length, members=self.members)
        self.spent = [dict() for _ in range(n)]
        self.seeds: dict[int, bytes] = {}

    def client(self, i: int, *, definition: PoolDefinition | None = None, **kw) -> SchoolClient:
        kw.setdefault("spent", self.spent[i])
        self.seeds[i] = seed("member-seed", i, self.rng.random())
        return SchoolClient(self.schools[i], definition or self.definition, district_key=self.district.signing_key,
                            vector=self.vectors[i], seed=self.seeds[i], **kw)

    def clients(self) -> dict[int, SchoolClient]:
        return {i + 1: self.client(i) for i in range(self.n)}

    def expected(self, survivors) -> tuple[int, ...]:
        return tuple(sum(self.vectors[u - 1][k] for u in survivors) % 2**32 for k in range(len(self.vectors[0])))


def run(pool: Pool, drops: dict[str, set[int]] | None = None, clients: dict[int, SchoolClient] | None = None):
    """Drive all rounds; `drops[round]` stop answering from that round on. Returns (aggregator, clients, transcript)."""
    drops = drops or {}
    clients = clients or pool.clients()
    server = DistrictAggregator(pool.definition)
    gone: set[int] = set()
    transcript: list[tuple[str, int, bytes]] = []
    inbox = {m: c.start() for m, c in clients.items()}
    for name in ROUNDS:
        gone |= drops.get(name, set())
        for m, data in inbox.items():
            if m not in gone:
                transcript.append(("up", m, data))
                server.receive(m, data)
        out = server.advance()
        inbox = {}
        for m, data in out.items():
            transcript.append(("down", m, data))
            if m in gone:
                continue
            reply = clients[m].receive(data)
            if reply is not None:
                if reply.sent_input is not None:
                    pool.spent[m - 1][reply.sent_input.campaign_id] = reply.sent_input
                inbox[m] = reply.data
        if server.state == "aborted":
            break
    return server, clients, transcript
