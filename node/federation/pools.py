"""Secure-aggregation pools at the node: the district forms them, schools approve and take part.

The cryptography and every check are preau.protocol.secagg's (pure); this
module keeps each pool's state in the federation store and carries its
messages as PoolMail in the ordinary sync sessions (docs/secure-aggregation.md).
The command line's use cases (`preau pool ...`) are `preau.node.actions.pools`; the web's pool pages call this module.

Both sides keep their last message for the other until the other moves on and
send it again at each session: the state machines answer a repeated message
with the same bytes, so a round survives lost replies and sessions hours apart.

State is rebuilt by replaying what was received (the machines are
deterministic): the district keeps the (member, message) it accepted and where
it closed rounds; a school keeps the district's messages, and its seed and
frozen vector encrypted under a key derived from its identity seed. A school
writes its one-masked-input-per-campaign record in the same transaction as the
reply that carries the masked input, before that reply can leave.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from preau.crdt.campaign import Campaign
from preau.crdt.documents import ReleaseContent
from preau.crdt.pooling import pooled_rows, vector_length
from preau.protocol import crypto
from preau.protocol.errors import ProtocolError
from preau.protocol.identity import PublicIdentity
from preau.protocol.secagg import (
    MIN_COHORT, CohortDeclaration, DistrictAggregator, Member, PoolDefinition, SchoolClient, SentInput, check_pool,
    decode, encode,
)
from preau.protocol.secagg.masks import pack, unpack

from preau.node.errors import Conflict, NotFound, UserError

POOLS_META = "secagg/pools"  # {pool id hex: state}, one dictionary per node
SPENT_META = "secagg/spent"  # school: {campaign: {"pool_id": hex, "digest": hex}}
DECLARATIONS_META = "secagg/declarations"  # school: {campaign: CohortDeclaration hex}, sent at each session
DECLARED_META = "secagg/declared"  # district: {campaign: {school key hex: CohortDeclaration hex}}, the newest of each
LABEL_STATE = b"preau/v1/secagg-node-state"
FINAL_SENDS = 3  # sessions that carry "the pool is over" to a member, in case one is lost
MOVING_SYNC_INTERVAL = 2.0  # seconds between a school's syncs while its pool moves
MOVING_WINDOW = 600  # a pool that got no new message for this long no longer speeds up syncing
POOL_OWNER = "pool-"
ROUNDS = ("keys", "shares", "inputs", "signatures", "unmask")  # district states that collect answers  # statistics entries of completed pools: "pool-<pool id hex>"


# -- storage -----------------------------------------------------------------------------------

def _all(fed) -> dict[str, dict]:
    return fed.get_meta(POOLS_META, {}) or {}


def _save(fed, pool_id: str, state: dict) -> None:
    pools = _all(fed)
    pools[pool_id] = state
    fed.set_meta(POOLS_META, pools)


def _spent(fed) -> dict[str, SentInput]:
    raw = fed.get_meta(SPENT_META, {}) or {}
    return {c: SentInput(c, bytes.fromhex(v["pool_id"]), bytes.fromhex(v["digest"])) for c, v in raw.items()}


def _record_spent(fed, sent: SentInput) -> None:
    raw = fed.get_meta(SPENT_META, {}) or {}
    raw[sent.campaign_id] = {"pool_id": sent.pool_id.hex(), "digest": sent.digest.hex()}
    fed.set_meta(SPENT_META, raw)


def _campaign(federation, campaign_id: str) -> Campaign:
    for c in federation.campaigns():
        if c.id == campaign_id:
            return c
    raise NotFound(f"campagne inconnue : {campaign_id} / no campaign {campaign_id!r} on this node")


@dataclass(frozen=True)
class PoolView:
    """A pool as people see it (CLI, web): who is in it and how far it went."""

    pool_id: str
    campaign: str
    status: str
    threshold: int
    members: tuple[dict, ...]  # uai, name, cohort, node_id
    reason: str | None = None
    survivors: int | None = None
    pupils: int | None = None

    def line(self) -> str:
        names = ", ".join(f"{m['name']} ({m['uai']})" for m in self.members)
        head = f"pool {self.pool_id[:8]} · {self.campaign} · {self.status}"
        if self.survivors is not None:
            head += f" · {self.survivors} écoles regroupées, {self.pupils} élèves"
        if self.reason:
            head += f" · {self.reason}"
        return f"{head}\n  {len(self.members)} schools, threshold {self.threshold}: {names}"


def _view(state: dict) -> PoolView:
    pool = decode(bytes.fromhex(state["definition"]))
    members = tuple({"uai": m.uai, "name": m.name, "cohort": m.cohort, "node_id": m.node_id} for m in pool.members)
    result = state.get("result") or {}
    return PoolView(pool.pool_id.hex(), pool.campaign_id, state["status"], pool.threshold, members,
                    state.get("reason"), result.get("survivors"), result.get("pupils"))


def pools(federation, campaign: str | None = None) -> list[PoolView]:
    views = [_view(s) for s in _all(federation.fed).values()]
    return [v for v in views if campaign is None or v.campaign == campaign]


def _find(federation, prefix: str) -> tuple[str, dict]:
    found = [(k, s) for k, s in _all(federation.fed).items() if k.startswith(prefix.lower())]
    if len(found) != 1:
        raise NotFound(f"aucun regroupement {prefix!r} / no single pool starts with {prefix!r}: see `preau pool list`")
    return found[0]


# -- district ------------------------------------------------------------------------------------

def declarations(federation, campaign_id: str) -> dict[str, CohortDeclaration]:
    """District: the schools' own signed cohorts for a campaign, by school key (hex)."""
    raw = (federation.fed.get_meta(DECLARED_META, {}) or {}).get(campaign_id, {})
    return {k: decode(bytes.fromhex(v)) for k, v in raw.items()}


def create_pool(federation, campaign_id: str, members: list, *, threshold: int | None = None,
                pool_id: bytes | None = None) -> PoolView:
    """Form and sign a pool among enrolled schools (by UAI); schools see it at their next sync.

    Each member's cohort is the one that school declared and signed itself (`preau pool declare`, or the
    release page): the schools check those signatures, so the district can neither type nor change them.
    A member given as (UAI, cohort) must match its declaration (what the person at the district expected).
    """
    if federation.role != "district":
        raise UserError("les regroupements se forment sur le nœud de la circonscription / pools are formed on a district node")
    campaign = _campaign(federation, campaign_id)
    by_uai = {c["uai"]: c for c in federation.children() if c["status"] == "active" and c["role"] == "school"}
    declared = declarations(federation, campaign.id)
    chosen = []
    for item in members:
        uai, expected = (item, None) if isinstance(item, str) else item
        child = by_uai.get(uai)
        if child is None:
            raise NotFound(f"l'école {uai} n'est pas inscrite ici / school {uai} is not enrolled with this district")
        found = declared.get(child["key"])
        if found is None:
            raise UserError(f"l'école {uai} n'a pas déclaré son effectif pour {campaign.id} : sa direction le fait sur "
                            f"la page de publication (ou `preau pool declare {campaign.id}`), puis elle se synchronise / "
                            f"school {uai} has not declared its cohort for {campaign.id}: its head teacher declares it "
                            f"on the release page (or `preau pool declare {campaign.id}`), then it syncs")
        if expected is not None and int(expected) != found.cohort:
            raise UserError(f"l'école {uai} a déclaré {found.cohort} élèves, pas {expected} / school {uai} declared "
                            f"{found.cohort} pupils, not {expected}")
        chosen.append(Member.declared(found, child["name"] or uai))
    n = len(chosen)
    if n != len({m.uai for m in chosen}):
        raise UserError("une école figure deux fois / a school is listed twice")
    t = threshold if threshold is not None else (2 * n) // 3 + 1
    if not 1 <= t <= max(n, 1):
        raise UserError(f"le seuil doit être entre 1 et {n} / the threshold must be between 1 and {n}")
    if n == 0:
        raise UserError("choisissez au moins 3 écoles / choose at least 3 schools")
    pool = PoolDefinition.create(federation.identity, campaign_id=campaign.id, pool_id=pool_id or os.urandom(16),
                                 threshold=t, vector_length=vector_length(campaign), members=tuple(chosen))
    try:  # the checks each school will run: say now what they would refuse
        check_pool(pool, district_key=federation.key, me=chosen[0].signing_key, min_cohort=campaign.policy.min_cohort)
    except ProtocolError as exc:
        raise UserError(f"ce regroupement serait refusé par les écoles / the schools would refuse this pool: {exc.message}") from None
    data = encode(pool).hex()
    state = {"role": "district", "definition": data, "status": "keys", "events": [],
             "outbox": {str(i): data for i in range(1, n + 1)}, "round_at": federation.clock()}
    with federation.fed.transaction():
        _save(federation.fed, pool.pool_id.hex(), state)
        federation.fed.log_event("pool_formed", f"pool {pool.pool_id.hex()[:8]} for {campaign.id}: {n} schools, t = {t}")
    return _view(state)


def _aggregator(state: dict) -> DistrictAggregator:
    agg = DistrictAggregator(decode(bytes.fromhex(state["definition"])))
    for event in state["events"]:
        if event[0] == "advance":
            agg.advance()
        else:
            agg.receive(event[0], bytes.fromhex(event[1]))
    return agg


def _after_advance(federation, state: dict, agg: DistrictAggregator, out: dict[int, bytes]) -> None:
    state["events"].append(["advance"])
    state["round_at"] = federation.clock()
    state["outbox"] = {str(m): d.hex() for m, d in out.items()}
    state["status"] = agg.state
    if agg.state == "aborted":
        state["status"], state["reason"] = "failed", agg.reason
        federation.fed.log_event("pool_failed", f"pool {agg.pool.pool_id.hex()[:8]}: {agg.reason}")
    elif agg.state == "complete":
        _count_pool(federation, state, agg)


def _count_pool(federation, state: dict, agg: DistrictAggregator) -> None:
    """The pool's sum becomes one statistics entry (one row: "3 écoles regroupées, 21 élèves")."""
    pool = agg.pool
    campaign = _campaign(federation, pool.campaign_id)
    rows, cohort = pooled_rows(agg.result.total, campaign)
    n = len(agg.result.survivors)
    content = ReleaseContent(campaign.id, 1, "published", f"{n} écoles regroupées", campaign.policy, rows, cohort,
                             scope="pool", schools_contributing=n, schools_withheld=0)
    entry = {"release": 1, "time": federation.clock(), "heads": "", "content": content.to_dict()}
    with federation.fed.transaction() as conn:
        federation.fed._put_stats_entry(conn, campaign.id, POOL_OWNER + pool.pool_id.hex(), entry, [])
    state["result"] = {"survivors": n, "pupils": cohort}
    federation.fed.log_event("pool_complete", f"pool {pool.pool_id.hex()[:8]} for {campaign.id}: {n} schools, {cohort} pupils")


def advance_pool(federation, prefix: str) -> PoolView:
    """Close the current round with the schools that answered (after a deadline); below the threshold the pool fails."""
    with federation.fed.transaction():
        key, state = _find(federation, prefix)
        if state.get("role") != "district":
            raise UserError("seule la circonscription clôt un tour / only the district closes a round")
        agg = _aggregator(state)
        if agg.state not in ROUNDS:
            raise Conflict(f"ce regroupement est terminé ({state['status']}) / this pool is over ({state['status']})")
        _after_advance(federation, state, agg, agg.advance())
        _save(federation.fed, key, state)
    return _view(state)


def close_overdue_rounds(federation, timeout: float) -> list[PoolView]:
    """District: close every round that waited longer than `timeout` seconds (the sync loop calls this)."""
    if federation.role != "district":
        return []
    now = federation.clock()
    closed = []
    for key, state in _all(federation.fed).items():
        if state.get("role") == "district" and state["status"] in ROUNDS and now - state.get("round_at", now) > timeout:
            try:
                closed.append(advance_pool(federation, key))
            except UserError as exc:  # the sync loop goes on; the next round of it tries again
                federation.fed.log_event("pool_error", f"pool {key[:8]}: {exc}")
                continue
            federation.fed.log_event("pool_round_timeout", f"pool {key[:8]}: a round closed after {int(timeout)} s")
    return closed


# -- school -------------------------------------------------------------------------------------

def _state_key(identity, pool_id: bytes) -> bytes:
    return crypto.labelled_hash(LABEL_STATE, pool_id, key=identity.seed)


def _client(federation, state: dict) -> SchoolClient:
    pool = decode(bytes.fromhex(state["definition"]))
    secret = crypto.aead_decrypt(_state_key(federation.identity, pool.pool_id), 0, pool.pool_id, bytes.fromhex(state["secret"]))
    client = SchoolClient(federation.identity, pool, district_key=bytes.fromhex(state["district"]),
                          vector=unpack(secret[32:]), seed=secret[:32], spent=_spent(federation.fed))
    for data in state["transcript"]:
        client.receive(bytes.fromhex(data))
    return client


def proposal(federation, prefix: str) -> tuple[PoolDefinition, dict]:
    """A pool waiting for this school's approval, and its stored state."""
    _key, state = _find(federation, prefix)
    if state.get("role") != "school":
        raise UserError("on approuve un regroupement sur le nœud de l'école / pools are approved on the school's node")
    return decode(bytes.fromhex(state["definition"])), state


def approve_pool(federation, prefix: str, vector, *, min_cohort: int, user: str = "") -> PoolView:
    """The head teacher's approval: freeze this school's vector into the pool; its keys leave at the next sync.

    `vector` is the school's counts as crdt.pooling.pool_vector builds them from its records.
    """
    with federation.fed.transaction():
        key, state = _find(federation, prefix)
        if state.get("role") != "school":
            raise UserError("on approuve un regroupement sur le nœud de l'école / pools are approved on the school's node")
        if state["status"] != "proposed":
            raise Conflict(f"ce regroupement est déjà {state['status']} / this pool is already {state['status']}")
        pool = decode(bytes.fromhex(state["definition"]))
        seed = os.urandom(32)
        try:
            client = SchoolClient(federation.identity, pool, district_key=bytes.fromhex(state["district"]), vector=vector,
                                  seed=seed, spent=_spent(federation.fed), my_cohort=vector[-1], min_cohort=min_cohort)
        except ProtocolError as exc:
            raise UserError(f"regroupement refusé / pool refused: {exc.message}") from None
        state.update(status="active", secret=crypto.aead_encrypt(_state_key(federation.identity, pool.pool_id), 0,
                                                                 pool.pool_id, seed + pack(list(vector))).hex(),
                     transcript=[], outbox=client.start().hex(), approved_by=user, moved_at=federation.clock())
        _save(federation.fed, key, state)
        federation.fed.log_event("pool_approved", f"pool {key[:8]} for {pool.campaign_id} approved by {user or 'admin'}")
    return _view(state)


def declare_cohort(federation, campaign_id: str, uai: str, cohort: int) -> CohortDeclaration:
    """School: sign this school's cohort for a campaign (public figures); it goes to the district at each sync.

    The district needs it to form a pool, and every member checks it: nothing else of the school leaves.
    """
    if federation.role != "school":
        raise UserError("une école déclare son effectif sur son propre nœud / a school declares its cohort on its own node")
    declaration = CohortDeclaration.create(federation.identity, campaign_id=campaign_id, uai=uai, cohort=int(cohort),
                                           declared_at=federation.clock())
    with federation.fed.transaction():
        raw = federation.fed.get_meta(DECLARATIONS_META, {}) or {}
        raw[campaign_id] = encode(declaration).hex()
        federation.fed.set_meta(DECLARATIONS_META, raw)
        federation.fed.log_event("cohort_declared", f"{campaign_id}: {cohort} pupils, for a pool of small schools")
    return declaration


def declared_cohort(federation, campaign_id: str) -> int | None:
    """School: the cohort it declared for this campaign, if any."""
    raw = (federation.fed.get_meta(DECLARATIONS_META, {}) or {}).get(campaign_id)
    return None if raw is None else decode(bytes.fromhex(raw)).cohort


def moving(federation) -> bool:
    """Whether this school takes part in a pool that moved recently: it then syncs every few seconds.

    A round needs every member to hear the district's last message; at the usual
    sync interval (minutes) a pool of five rounds would take an hour. A pool that
    stalls stops speeding syncs after MOVING_WINDOW seconds.
    """
    if federation.role != "school":
        return False
    now = federation.clock()
    return any(s.get("role") == "school" and s["status"] == "active" and now - s.get("moved_at", 0) < MOVING_WINDOW
               for s in _all(federation.fed).values())


# -- mail in sync sessions --------------------------------------------------------------------------

class PoolMailbox:
    """What the session driver asks: mail for a peer at the start of a session, and what to do with mail received."""

    def __init__(self, federation):
        self.federation = federation
        self.fed = federation.fed

    def outgoing(self, peer: PublicIdentity) -> list[bytes]:
        """The last message for this peer of each pool it is in (the news that a pool ended goes FINAL_SENDS times)."""
        out = []
        with self.fed.transaction():
            pools = _all(self.fed)
            for key, state in pools.items():
                if state.get("role") == "district":
                    pool = decode(bytes.fromhex(state["definition"]))
                    index = pool.index_of(peer.signing_key)
                    if index is None or str(index) not in state["outbox"]:
                        continue
                    out.append(bytes.fromhex(state["outbox"][str(index)]))
                    if state["status"] in ("complete", "failed"):
                        sent = state.setdefault("final_sent", {})
                        sent[str(index)] = sent.get(str(index), 0) + 1
                        if sent[str(index)] >= FINAL_SENDS:
                            del state["outbox"][str(index)]
                        _save(self.fed, key, state)
                elif state.get("role") == "school" and state.get("outbox") and state["district"] == peer.signing_key.hex():
                    out.append(bytes.fromhex(state["outbox"]))
            if self.federation.role == "school" and self.federation.peer_role(peer) in ("district", "parent"):
                out.extend(self._declarations())
        return out

    def _declarations(self) -> list[bytes]:
        """The school's cohort declarations, re-signed first if its key rotated since (the district pins the new one)."""
        raw = self.fed.get_meta(DECLARATIONS_META, {}) or {}
        out, changed = [], False
        for campaign_id, data in raw.items():
            found = decode(bytes.fromhex(data))
            if found.signing_key != self.federation.key:
                found = CohortDeclaration.create(self.federation.identity, campaign_id=campaign_id, uai=found.uai,
                                                 cohort=found.cohort, declared_at=self.federation.clock())
                raw[campaign_id], changed = encode(found).hex(), True
            out.append(encode(found))
        if changed:
            self.fed.set_meta(DECLARATIONS_META, raw)
        return out

    def incoming(self, peer: PublicIdentity, data: bytes) -> list[bytes]:
        """Replies to send now (the same ones stay queued for the next session, in case this one ends first)."""
        try:
            msg = decode(data)
        except ProtocolError as exc:
            self.fed.log_event("pool_refused", f"unreadable pool message from {peer.node_id}: {exc.message}")
            return []
        with self.fed.transaction():
            if isinstance(msg, CohortDeclaration):
                self._declared(peer, msg, data)
                return []
            if self.federation.role == "district":
                return self._district(peer, msg.pool_id.hex(), data)
            return self._school(peer, msg, data)

    def _declared(self, peer: PublicIdentity, msg: CohortDeclaration, data: bytes) -> None:
        """District: keep a school's newest declaration, if it is that school's, for its UAI, and signed."""
        row = self.fed.active_peer(peer.signing_key.hex())
        if self.federation.role != "district" or row is None or row["role"] != "school":
            return
        if msg.signing_key != peer.signing_key or msg.uai != row["uai"] or not msg.valid():
            self.fed.log_event("pool_refused", f"a cohort declaration from {peer.node_id} that is not its own "
                                               f"(key, UAI {msg.uai} or signature); ignored")
            return
        raw = self.fed.get_meta(DECLARED_META, {}) or {}
        mine = raw.setdefault(msg.campaign_id, {})
        previous = mine.get(peer.signing_key.hex())
        if previous == data.hex() or (previous is not None and decode(bytes.fromhex(previous)).declared_at > msg.declared_at):
            return
        mine[peer.signing_key.hex()] = data.hex()
        self.fed.set_meta(DECLARED_META, raw)
        self.fed.log_event("cohort_declared", f"school {msg.uai} declares {msg.cohort} pupils for {msg.campaign_id}")

    def _district(self, peer: PublicIdentity, key: str, data: bytes) -> list[bytes]:
        state = _all(self.fed).get(key)
        if state is None or state.get("role") != "district":
            return []
        agg = _aggregator(state)
        member = agg.pool.index_of(peer.signing_key)
        if member is None:
            return []
        try:
            if not agg.receive(member, data):
                return []
        except ProtocolError as exc:
            self.fed.log_event("pool_refused", f"pool {key[:8]}, member {member}: {exc.message}")
            return []
        state["events"].append([member, data.hex()])
        state["outbox"].pop(str(member), None)
        if not agg.waiting_for:
            _after_advance(self.federation, state, agg, agg.advance())
        _save(self.fed, key, state)
        reply = state["outbox"].get(str(member))
        return [bytes.fromhex(reply)] if reply else []

    def _school(self, peer: PublicIdentity, msg, data: bytes) -> list[bytes]:
        up = self.federation.upstream()
        if up is None or up["key"] != peer.signing_key.hex():
            return []
        key = msg.pool_id.hex()
        state = _all(self.fed).get(key)
        if isinstance(msg, PoolDefinition):
            if state is None:
                state = {"role": "school", "definition": data.hex(), "district": peer.signing_key.hex(),
                         "status": "proposed", "transcript": [], "outbox": None}
                known = {c.id: c for c in self.federation.campaigns()}.get(msg.campaign_id)
                try:
                    check_pool(msg, district_key=peer.signing_key, me=self.federation.key,
                               min_cohort=known.policy.min_cohort if known else MIN_COHORT)
                except ProtocolError as exc:
                    state.update(status="refused", reason=exc.message)
                _save(self.fed, key, state)
                self.fed.log_event("pool_proposed", f"pool {key[:8]} for {msg.campaign_id}: {state['status']}")
            return []
        if state is None or state.get("role") != "school" or state["status"] != "active":
            return []
        if data.hex() in state["transcript"]:
            return [bytes.fromhex(state["outbox"])] if state.get("outbox") else []
        try:
            client = _client(self.federation, state)
            reply = client.receive(data)
        except ProtocolError as exc:
            state.update(status="failed", reason=exc.message, outbox=None)
            _save(self.fed, key, state)
            self.fed.log_event("pool_left", f"pool {key[:8]}: {exc.message}")
            return []
        state["transcript"].append(data.hex())
        state["moved_at"] = self.federation.clock()
        if reply is None:
            state.update(status="complete" if client.state == "complete" else "failed", outbox=None,
                         reason=None if client.error is None else client.error.message)
            _save(self.fed, key, state)
            return []
        if reply.sent_input is not None:
            _record_spent(self.fed, reply.sent_input)  # same transaction, before the reply can leave
        state["outbox"] = reply.data.hex()
        _save(self.fed, key, state)
        return [reply.data]
