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

Why one module of about 850 lines: the district's rounds, the school's part and
the mail between them (`PoolMailbox`) are one protocol's node side over one
stored state; the mail handling uses a dozen of the state helpers above it, so
split in two each half would have to be read with the other. The pure state
machines, where the cryptography is, are protocol/secagg/.
"""
from __future__ import annotations

import logging
import os
import string
from dataclasses import dataclass

from preau.crdt.campaign import Campaign
from preau.crdt.documents import ReleaseContent
from preau.crdt.pooling import pooled_rows, vector_length
from preau.protocol import crypto
from preau.protocol.errors import ProtocolError
from preau.protocol.errors import RemoteProtocolError
from preau.protocol.identity import Identity, PublicIdentity, node_id, parse_node_id
from preau.protocol.secagg import (
    MIN_COHORT, MIN_MEMBERS, CohortDeclaration, DistrictAggregator, Member, PoolDefinition, SchoolClient, SentInput,
    check_definition, check_pool, decode, encode,
)
from preau.protocol.secagg.messages import PoolAborted
from preau.protocol.secagg.masks import pack, unpack

from preau.node import i18n
from preau.node.errors import Conflict, NotFound, UserError, Words, said, words
from preau.node.testhooks import unprotected

POOLS_META = "secagg/pools"  # {pool id hex: state}, one dictionary per node
SPENT_META = "secagg/spent"  # school: {campaign: {"pool_id": hex, "digest": hex}}
log = logging.getLogger("preau.pools")

DECLARATIONS_META = "secagg/declarations"  # school: {campaign: CohortDeclaration hex}, sent at each session
DECLARED_META = "secagg/declared"  # district: {campaign: {school key hex: CohortDeclaration hex}}, the newest of each
ACADEMIE_META = "secagg/academie"  # school: node id of the académie seen countersigning a first pool (trust on first use)
REGISTER_META = "secagg/register"  # académie: {campaign: {UAI or school key hex: pool id hex}}, pools countersigned
COUNTERSIGN = "countersign"  # district: a pool waiting for its académie's countersignature before any school sees it
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


def went_into_a_pool(fed, campaign_id: str) -> bool:
    """School: whether its counts for the campaign went into a pool (its masked input left): then none may leave
    alone, or the district would subtract them from the pool's sum and learn the other schools'. The other
    order (counts alone, then the masked input) is stopped where the input would leave (`PoolMailbox`): an
    approved pool whose part has not left holds nothing, so a school dropped from a pool, or told nothing of
    its end, is never kept from releasing. (Test hook `pool_and_alone`: never.)"""
    return campaign_id in (fed.get_meta(SPENT_META, {}) or {}) and not unprotected("pool_and_alone")


def left_alone(fed, campaign_id: str) -> bool:
    """School: whether its own counts for the campaign left alone (FedStore.counts_sent): then none may go into
    a pool, for the same reason. (Test hook `pool_and_alone`: never.)"""
    return fed.counts_sent(campaign_id) and not unprotected("pool_and_alone")


def _keys_of(fed, signing_key: bytes) -> list[str]:
    """A pool member's key and every key it rotated to since (its releases come under the newest)."""
    keys, current = [signing_key.hex()], signing_key.hex()
    while True:
        row = fed.peer(current)
        nxt = row.get("replaced_by") if row else None
        if not nxt or nxt in keys:
            return keys
        keys.append(nxt)
        current = nxt


def in_pool_sum(federation, campaign_id: str, owner: bytes) -> bool:
    """District: whether this school's counts for the campaign are in a completed pool's sum here (a pool
    completed before members were recorded: any of its members). Its own release is then not counted too.
    (Test hook `pool_and_alone`: never.)"""
    if unprotected("pool_and_alone"):
        return False
    for state in _all(federation.fed).values():
        if state.get("role") != "district" or state.get("status") != "complete":
            continue
        pool = decode(bytes.fromhex(state["definition"]))
        if pool.campaign_id != campaign_id:
            continue
        index = _member_index(federation.fed, pool, owner)
        members = state.get("in_sum")
        if index is not None and (members is None or index in members):
            return True
    return False


def _refuse_if_sent_alone(federation, campaign_id: str) -> None:
    """A school whose own counts already left alone for this campaign stays out of its pools: the district
    would subtract them from the sum (the other order is `Federation.publish_release`'s)."""
    if left_alone(federation.fed, campaign_id):
        raise Conflict(said("msg.pool.counts_sent_alone", campaign=campaign_id))


def _record_spent(fed, sent: SentInput) -> None:
    raw = fed.get_meta(SPENT_META, {}) or {}
    raw[sent.campaign_id] = {"pool_id": sent.pool_id.hex(), "digest": sent.digest.hex()}
    fed.set_meta(SPENT_META, raw)


def _campaign(federation, campaign_id: str) -> Campaign:
    for c in federation.campaigns():
        if c.id == campaign_id:
            return c
    raise NotFound(said("msg.pool.no_campaign", campaign=campaign_id))


def academie_setting(text: str | None) -> str | None:
    """The `academie` setting as a canonical node id (None when unset); a mistyped one is refused."""
    if not text:
        return None
    try:
        return parse_node_id(text)
    except ProtocolError as exc:
        raise UserError(said("msg.pool.bad_academie", detail=exc.message)) from None


def required_academie(federation) -> str | None:
    """School: the académie whose countersignature every pool needs: the setting, else the first one seen."""
    return federation.academie or federation.fed.get_meta(ACADEMIE_META)


def _parent_key(federation, pool: PoolDefinition) -> bytes | None:
    """The key that must have countersigned `pool` for this school (check_pool verifies the signature).

    A school cannot learn from its district whether the district has a parent: a malicious district
    would leave it out. So the académie is the one in the settings (from the académie's own word), or
    the one that countersigned the first pool this school saw (trust on first use): from then on a pool
    without its countersignature is refused (docs/secure-aggregation.md, "The académie's countersignature").
    """
    wanted = required_academie(federation)
    if wanted is None:
        return pool.parent_key  # none known: a countersignature, if there is one, must still be valid
    if pool.parent_key is None or node_id(pool.parent_key) != wanted:
        raise RemoteProtocolError(f"the pool's member list is not countersigned by the académie {wanted}",
                                  code="bad_pool_countersignature")
    return pool.parent_key


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
    code: str | None = None  # why it was refused or left, as a stable code (the web says it from the catalog)
    academie: str | None = None  # node id of the académie that countersigned the member list, if one did
    params: dict | None = None  # the values of `code`'s words (how many schools answered...)
    cause: dict | None = None  # an académie's refusal: its own code and values ({"code", "params"}), if it sent them

    def why(self, lang: str) -> str | None:
        """Why it was refused, left or failed, in `lang` (see `refusal_words`); as recorded when it has no code."""
        if not self.code:
            return self.reason
        return refusal_words(self.code, self.reason or "", self.params, self.cause).to(lang)

    def line(self, lang: str = "en") -> str:
        """The pool in two lines, all in one language: id, campaign, state (and result), then its schools."""
        t = lambda key, **kw: i18n.translate(lang, key, **kw)  # noqa: E731
        names = ", ".join(f"{m['name']} ({m['uai']})" for m in self.members)
        head = t("cli.out.pool.head", pool=self.pool_id[:8], campaign=self.campaign, status=_status_words(self.status).to(lang))
        if self.survivors is not None:
            head += t("cli.out.pool.result", schools=self.survivors, pupils=self.pupils)
        if self.academie:
            head += t("msg.pool.countersigned_by", academie=self.academie)
        why = self.why(lang)
        if why:
            head += f" · {why}"
        return head + "\n" + t("cli.out.pool.members", n=len(self.members), threshold=self.threshold, names=names)


def _status_words(status: str):
    """A pool's state as the person reads it (the CLI's words for it; the code itself when it has none)."""
    key = f"cli.pool.status.{status}"
    return said(key) if key in i18n.catalog("en") else Words(status)


def refusal_words(code: str | None, english: str, params: dict | None = None, cause: dict | None = None, *,
                  other: str = "msg.pool.failed_check") -> Words:
    """Why a pool was refused, left or failed, in words: the one place `pool.refusal.*` is looked up.

    `code` and `params` are what this node recorded; `cause` is the code and values another node sent with
    its own refusal (`{"code", "params"}`: an académie refusing to countersign, a district aborting). A code is
    said by the catalog's words when every value they name came; a check with no words of its own (or whose
    values did not all come) is said in general, naming its code (`other`: a pool left, or refused before
    joining); no code at all (a node of an earlier version): the English as it was written."""
    if code == "academie_refused":
        reason = Words(english) if not cause else _sent_words(cause, ("pool.academie_refusal.", "pool.refusal.")) \
            or said("pool.academie_refusal.other_check", code=str(cause.get("code")))
        return said("pool.refusal.academie_refused", reason=reason)
    if code == "pool_aborted" and cause:  # the district's own reason, when its words are known here
        reason = _sent_words(cause, ("pool.refusal.",))
        if reason is not None:
            return said("pool.refusal.district_aborted", reason=reason)
    if not code:
        return Words(english)
    return _catalog_words(("pool.refusal.",), code, params or {}) or said(other, code=code)


def _sent_words(cause: dict, prefixes: tuple[str, ...]) -> Words | None:
    return _catalog_words(prefixes, str(cause.get("code")), cause.get("params") or {})


def _catalog_words(prefixes: tuple[str, ...], code: str, params: dict) -> Words | None:
    """The first of `prefixes` + code the catalog knows, filled with `params`; None if it has none, or if a value
    it names did not come (a sender's values are never trusted to be complete)."""
    for prefix in prefixes:
        key = prefix + code
        texts = [i18n.catalog(lang).get(key) for lang in i18n.LANGUAGES]
        if any(text is None for text in texts):
            continue
        wanted = {f for text in texts for _, f, _, _ in string.Formatter().parse(text) if f}
        return said(key, **{k: params[k] for k in wanted}) if wanted <= params.keys() else None
    return None


def _view(state: dict) -> PoolView:
    pool = decode(bytes.fromhex(state["definition"]))
    members = tuple({"uai": m.uai, "name": m.name, "cohort": m.cohort, "node_id": m.node_id} for m in pool.members)
    result = state.get("result") or {}
    return PoolView(pool.pool_id.hex(), pool.campaign_id, state["status"], pool.threshold, members,
                    state.get("reason"), result.get("survivors"), result.get("pupils"), state.get("code"),
                    None if pool.parent_key is None else node_id(pool.parent_key), state.get("params"), state.get("cause"))


def pools(federation, campaign: str | None = None) -> list[PoolView]:
    views = [_view(s) for s in _all(federation.fed).values()]
    return [v for v in views if campaign is None or v.campaign == campaign]


def _find(federation, prefix: str) -> tuple[str, dict]:
    found = [(k, s) for k, s in _all(federation.fed).items() if k.startswith(prefix.lower())]
    if len(found) != 1:
        raise NotFound(said("msg.pool.no_such_pool", prefix=prefix))
    return found[0]


# -- district ------------------------------------------------------------------------------------

def declarations(federation, campaign_id: str) -> dict[str, CohortDeclaration]:
    """District: the schools' own signed cohorts for a campaign, by school key (hex)."""
    raw = (federation.fed.get_meta(DECLARED_META, {}) or {}).get(campaign_id, {})
    return {k: decode(bytes.fromhex(v)) for k, v in raw.items()}


def busy_schools(federation, campaign_id: str) -> dict[str, str]:
    """District: school key (hex) -> pool id of the pools of this campaign that have not failed."""
    out = {}
    for key, state in _all(federation.fed).items():
        if state.get("role") == "district" and state["status"] != "failed":
            pool = decode(bytes.fromhex(state["definition"]))
            if pool.campaign_id == campaign_id:
                out.update({m.signing_key.hex(): key for m in pool.members})
    return out


def create_pool(federation, campaign_id: str, members: list, *, threshold: int | None = None,
                pool_id: bytes | None = None) -> PoolView:
    """Form and sign a pool among enrolled schools (by UAI); schools see it at their next sync.

    Each member's cohort is the one that school declared and signed itself (`preau pool declare`, or the
    release page): the schools check those signatures, so the district can neither type nor change them.
    A member given as (UAI, cohort) must match its declaration (what the person at the district expected).
    Every refusal says, in the catalog's words, what to change; the CLI and the web form share them.
    """
    if federation.role != "district":
        raise UserError(words("pools are formed on a district node", "pool.err.not_district"))
    campaign = _campaign(federation, campaign_id)
    by_uai = {c["uai"]: c for c in federation.children() if c["status"] == "active" and c["role"] == "school"}
    declared = declarations(federation, campaign.id)
    busy = busy_schools(federation, campaign.id)
    chosen = []
    for item in members:
        uai, expected = (item, None) if isinstance(item, str) else item
        child = by_uai.get(uai)
        if child is None:
            raise NotFound(words(f"school {uai} is not enrolled with this district", "pool.err.not_enrolled", uai=uai))
        found = declared.get(child["key"])
        if found is None:
            raise UserError(words(f"school {uai} has not declared its cohort for {campaign.id}: its head teacher "
                                  f"declares it on the release page (or `preau pool declare {campaign.id}`), then it syncs",
                                  "pool.err.undeclared", uai=uai, campaign=campaign.id))
        if expected is not None and int(expected) != found.cohort:
            raise UserError(words(f"school {uai} declared {found.cohort} pupils, not {expected}",
                                  "pool.err.cohort_mismatch", uai=uai, declared=found.cohort, expected=expected))
        if found.cohort >= max(campaign.policy.min_cohort, MIN_COHORT):
            floor = max(campaign.policy.min_cohort, MIN_COHORT)
            raise UserError(words(f"school {uai} declared {found.cohort} pupils: it publishes its counts alone (at least "
                                  f"{floor}), so it cannot be pooled; a pool is for schools under {floor}",
                                  "pool.err.publishes_alone", uai=uai, cohort=found.cohort, min=floor))
        if found.signing_key.hex() in busy:
            raise Conflict(words(f"school {uai} is already in pool {busy[found.signing_key.hex()][:8]} for this campaign: "
                                 "a school takes part in one pool per campaign", "pool.err.busy", uai=uai,
                                 pool=busy[found.signing_key.hex()][:8]))
        chosen.append(Member.declared(found, child["name"] or uai))
    n = len(chosen)
    if n != len({m.uai for m in chosen}):
        raise UserError(words("a school is listed twice", "pool.err.twice"))
    if n < MIN_MEMBERS:
        raise UserError(words(f"choose at least {MIN_MEMBERS} schools (you chose {n})", "pool.err.too_few",
                              min=MIN_MEMBERS, n=n))
    low = (2 * n) // 3 + 1
    t = threshold if threshold is not None else low
    if not low <= t <= n:
        raise UserError(words(f"the threshold must be from {low} to {n}: more than two thirds of the {n} schools",
                              "pool.err.threshold", low=low, n=n))
    floor = max(campaign.policy.min_cohort, MIN_COHORT)
    fewest = sum(sorted(m.cohort for m in chosen)[:t])
    if fewest < floor:
        raise UserError(words(f"{t} of these schools could together hold only {fewest} pupils, fewer than {floor}: "
                              "add schools or raise the threshold", "pool.err.floor", t=t, pupils=fewest, min=floor))
    pool = PoolDefinition.create(federation.identity, campaign_id=campaign.id, pool_id=pool_id or os.urandom(16),
                                 threshold=t, vector_length=vector_length(campaign), members=tuple(chosen))
    try:  # every check each school will run, as a last word
        check_pool(pool, district_key=federation.key, me=chosen[0].signing_key, min_cohort=campaign.policy.min_cohort)
    except ProtocolError as exc:
        raise UserError(words(f"the schools would refuse this pool: {exc.message}", "pool.err.refused",
                              why=exc.message)) from None
    data = encode(pool).hex()
    state = {"role": "district", "definition": data, "status": "keys", "events": [],
             "outbox": {str(i): data for i in range(1, n + 1)}, "round_at": federation.clock()}
    if federation.upstream() is not None:
        # A district with a parent: the académie countersigns the member list first (at the next sync up),
        # and only then do the schools see the pool; they refuse it without that countersignature.
        state.update(status=COUNTERSIGN, outbox={})
    with federation.fed.transaction():
        _save(federation.fed, pool.pool_id.hex(), state)
        federation.fed.log_event("pool_formed", f"pool {pool.pool_id.hex()[:8]} for {campaign.id}: {n} schools, t = {t}",
                                 pool=pool.pool_id.hex()[:8], campaign=campaign.id, schools=n, threshold=t)
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
        if agg.reason_code:  # said from the catalog by PoolView (the reason stays for the log)
            state["code"], state["params"] = agg.reason_code, dict(agg.reason_params)
        federation.fed.log_event("pool_failed", f"pool {agg.pool.pool_id.hex()[:8]}: {agg.reason}",
                                 pool=agg.pool.pool_id.hex()[:8], campaign=agg.pool.campaign_id)
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
    # A school in the sum whose own counts arrived meanwhile (restored from a backup older than the pool, its
    # records of it gone) leaves the statistics now: counted once, and no subtraction on the pages (review4).
    counted_alone = [] if unprotected("pool_and_alone") else [
        k for i in agg.result.survivors for k in _keys_of(federation.fed, pool.members[i - 1].signing_key)
        if federation.fed.stats_entry(campaign.id, k) is not None]
    with federation.fed.transaction() as conn:
        federation.fed._put_stats_entry(conn, campaign.id, POOL_OWNER + pool.pool_id.hex(), entry, counted_alone)
    for key in counted_alone:
        federation.fed.log_event("release_in_pool", f"{campaign.id}: {node_id(bytes.fromhex(key))}'s own counts left "
                                 "the statistics: its pool's sum holds them", campaign=campaign.id,
                                 node_id=node_id(bytes.fromhex(key)))
    state["result"] = {"survivors": n, "pupils": cohort}
    state["in_sum"] = sorted(agg.result.survivors)  # whose counts the sum holds (in_pool_sum)
    federation.fed.log_event("pool_complete", f"pool {pool.pool_id.hex()[:8]} for {campaign.id}: {n} schools, {cohort} pupils",
                             pool=pool.pool_id.hex()[:8], campaign=campaign.id, schools=n, pupils=cohort)


def advance_pool(federation, prefix: str) -> PoolView:
    """Close the current round with the schools that answered (after a deadline); below the threshold the pool fails."""
    with federation.fed.transaction():
        key, state = _find(federation, prefix)
        if state.get("role") != "district":
            raise UserError(said("msg.pool.district_closes"))
        if state["status"] == COUNTERSIGN:
            raise Conflict(said("msg.pool.waits_countersign"))
        agg = _aggregator(state)
        if agg.state not in ROUNDS:
            raise Conflict(said("msg.pool.over", status=_status_words(state["status"])))
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
                federation.fed.log_event("pool_error", f"pool {key[:8]}: {exc}", pool=key[:8])
                continue
            federation.fed.log_event("pool_round_timeout", f"pool {key[:8]}: a round closed after {int(timeout)} s",
                                     pool=key[:8], seconds=int(timeout))
    return closed


# -- school -------------------------------------------------------------------------------------

def _state_key(identity, pool_id: bytes) -> bytes:
    return crypto.labelled_hash(LABEL_STATE, pool_id, key=identity.seed)


def _identities(federation) -> list[Identity]:
    """This node's current identity, then its old ones still in their overlap (keys rotated away from)."""
    now = federation.clock()
    old = [Identity(bytes.fromhex(r["seed"])) for r in federation.retired_records() if r.get("until", 0) > now]
    return [federation.identity, *old]


def _member_identity(federation, pool: PoolDefinition) -> Identity:
    """The identity this school is a member of `pool` under: its current key, or one it rotated away from
    (a pool formed before the district learnt the rotation)."""
    for identity in _identities(federation):
        if pool.index_of(identity.signing_key) is not None:
            return identity
    return federation.identity


def _secret(node_identity: Identity, state: dict, pool: PoolDefinition) -> tuple[bytes, Identity, tuple[int, ...]]:
    """(seed, member identity, vector) of an approved pool, decrypted with the node's key `node_identity`.

    A pool is run to its end under the key it was formed with: a school that rotates its key meanwhile
    keeps that key's seed here (rekey_pools), since every member checks its signatures against it.
    """
    secret = crypto.aead_decrypt(_state_key(node_identity, pool.pool_id), 0, pool.pool_id, bytes.fromhex(state["secret"]))
    if state.get("layout") == 2:
        return secret[:32], Identity(secret[32:64]), unpack(secret[64:])
    return secret[:32], node_identity, unpack(secret[32:])  # from before layout 2: the node's own key


def _seal(node_identity: Identity, pool: PoolDefinition, seed: bytes, member: Identity, vector) -> dict:
    sealed = crypto.aead_encrypt(_state_key(node_identity, pool.pool_id), 0, pool.pool_id,
                                 seed + member.seed + pack(list(vector)))
    return {"secret": sealed.hex(), "layout": 2}


def rekey_pools(federation, old: Identity, new: Identity) -> int:
    """At a key rotation (in its transaction): re-encrypt every approved pool's state under the new key,
    keeping the key each pool was formed with inside it. How many pools were re-encrypted."""
    pools = _all(federation.fed)
    done = 0
    for key, state in pools.items():
        if state.get("role") != "school" or not state.get("secret"):
            continue
        pool = decode(bytes.fromhex(state["definition"]))
        state.update(_seal(new, pool, *_secret(old, state, pool)))
        done += 1
    if done:
        federation.fed.set_meta(POOLS_META, pools)
        federation.fed.log_event("pool_rekeyed", f"{done} pool(s) kept across the key rotation", pools=done)
    return done


def _client(federation, state: dict) -> SchoolClient:
    pool = decode(bytes.fromhex(state["definition"]))
    seed, member, vector = _secret(federation.identity, state, pool)
    client = SchoolClient(member, pool, district_key=bytes.fromhex(state["district"]), vector=vector, seed=seed,
                          spent=_spent(federation.fed))
    for data in state["transcript"]:
        client.receive(bytes.fromhex(data))
    return client


def proposal(federation, prefix: str) -> tuple[PoolDefinition, dict]:
    """A pool waiting for this school's approval, and its stored state."""
    _key, state = _find(federation, prefix)
    if state.get("role") != "school":
        raise UserError(said("msg.pool.approve_on_school"))
    return decode(bytes.fromhex(state["definition"])), state


def approve_pool(federation, prefix: str, vector, *, min_cohort: int, user: str = "") -> PoolView:
    """The head teacher's approval: freeze this school's vector into the pool; its keys leave at the next sync.

    `vector` is the school's counts as crdt.pooling.pool_vector builds them from its records.
    """
    with federation.fed.transaction():
        key, state = _find(federation, prefix)
        if state.get("role") != "school":
            raise UserError(said("msg.pool.approve_on_school"))
        if state["status"] != "proposed":
            raise Conflict(said("msg.pool.already", status=_status_words(state["status"])))
        pool = decode(bytes.fromhex(state["definition"]))
        _refuse_if_sent_alone(federation, pool.campaign_id)
        seed = os.urandom(32)
        member = _member_identity(federation, pool)
        try:
            client = SchoolClient(member, pool, district_key=bytes.fromhex(state["district"]), vector=vector,
                                  seed=seed, spent=_spent(federation.fed), my_cohort=vector[-1], min_cohort=min_cohort,
                                  parent_key=_parent_key(federation, pool))
        except ProtocolError as exc:
            raise UserError(said("msg.pool.refused", why=refusal_words(exc.code, exc.message, other="msg.pool.refused_check"))) from None
        state.update(status="active", **_seal(federation.identity, pool, seed, member, vector),
                     transcript=[], outbox=client.start().hex(), approved_by=user, moved_at=federation.clock())
        _save(federation.fed, key, state)
        federation.fed.log_event("pool_approved", f"pool {key[:8]} for {pool.campaign_id} approved by {user or 'admin'}",
                                 pool=key[:8], campaign=pool.campaign_id, by=user or "admin")
    return _view(state)


def declare_cohort(federation, campaign_id: str, uai: str, cohort: int) -> CohortDeclaration:
    """School: sign this school's cohort for a campaign (public figures); it goes to the district at each sync.

    The district needs it to form a pool, and every member checks it: nothing else of the school leaves.
    """
    if federation.role != "school":
        raise UserError(said("msg.pool.declare_on_school"))
    known = {c.id: c for c in federation.campaigns()}.get(campaign_id)
    floor = max(known.policy.min_cohort if known else MIN_COHORT, MIN_COHORT)
    if int(cohort) >= floor:  # it publishes alone: in a pool its counts could be subtracted from the sum
        raise UserError(said("msg.pool.declare_publishes_alone", cohort=int(cohort), min=floor))
    _refuse_if_sent_alone(federation, campaign_id)  # it published alone before (more pupils then)
    declaration = CohortDeclaration.create(federation.identity, campaign_id=campaign_id, uai=uai, cohort=int(cohort),
                                           declared_at=federation.clock())
    with federation.fed.transaction():
        raw = federation.fed.get_meta(DECLARATIONS_META, {}) or {}
        raw[campaign_id] = encode(declaration).hex()
        federation.fed.set_meta(DECLARATIONS_META, raw)
        federation.fed.log_event("cohort_declared", f"{campaign_id}: {cohort} pupils, for a pool of small schools",
                                 campaign=campaign_id, pupils=cohort)
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

def _member_index(fed, pool: PoolDefinition, signing_key: bytes) -> int | None:
    """A peer's index in a pool: by its key, or by a key it rotated away from (the pool keeps the key it was
    formed with; the transport authenticated the rotation chain)."""
    index = pool.index_of(signing_key)
    for old in ([] if index is not None else fed.predecessors(signing_key.hex())):
        index = pool.index_of(bytes.fromhex(old))
        if index is not None:
            break
    return index


class PoolMailbox:
    """What the session driver asks: mail for a peer at the start of a session, and what to do with mail received."""

    MAX_INCOMING = 256  # pool messages taken in one session (a pool needs a few per round; a school sends its few)

    def __init__(self, federation):
        self.federation = federation
        self.fed = federation.fed
        self.received = 0  # one mailbox per session (transport.SessionDriver): this session's count
        self.told: set[str] = set()  # refusal codes already logged as an event in this session

    def outgoing(self, peer: PublicIdentity, *, counted: bool | None = None) -> list[bytes]:
        """The last message for this peer of each pool it is in (the news that a pool ended goes FINAL_SENDS times).

        `counted`: None for all of it; False for only the mail not counted when it goes, True for only the mail
        that is (the news that a pool ended, an académie's answer): the driver sends that once the peer has
        admitted this node, never with handshake message 3, where a refused session would still count it."""
        out = []
        if not _all(self.fed) and not self.fed.get_meta(DECLARATIONS_META):
            return out  # no pool and no cohort declared (most sessions): no transaction to open
        with self.fed.transaction():
            pools = _all(self.fed)
            up = self.federation.peer_role(peer) in ("district", "parent")
            for key, state in pools.items():
                if state.get("role") == "district" and state["status"] == COUNTERSIGN:
                    if up and counted is not True:  # to the académie, until it answers
                        out.append(bytes.fromhex(state["definition"]))
                    continue
                if state.get("role") == "parent":
                    if counted is False:
                        continue
                    if state["district"] == peer.signing_key.hex() and state.get("sent", 0) < FINAL_SENDS:
                        out.append(bytes.fromhex(state["answer"]))  # the district may not have heard it yet
                        state["sent"] = state.get("sent", 0) + 1
                        _save(self.fed, key, state)
                    continue
                if state.get("role") == "district":
                    pool = decode(bytes.fromhex(state["definition"]))
                    index = _member_index(self.fed, pool, peer.signing_key)
                    if index is None or str(index) not in state["outbox"]:
                        continue
                    final = state["status"] in ("complete", "failed")
                    if counted is not None and counted != final:
                        continue
                    out.append(bytes.fromhex(state["outbox"][str(index)]))
                    if final:
                        sent = state.setdefault("final_sent", {})
                        sent[str(index)] = sent.get(str(index), 0) + 1
                        if sent[str(index)] >= FINAL_SENDS:
                            del state["outbox"][str(index)]
                        _save(self.fed, key, state)
                elif counted is not True and state.get("role") == "school" and state.get("outbox") and state["district"] in (
                        peer.signing_key.hex(), *self.fed.predecessors(peer.signing_key.hex())):
                    out.append(bytes.fromhex(state["outbox"]))
            if counted is not True and self.federation.role == "school" and self.federation.peer_role(peer) in (
                    "district", "parent"):
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
        # Bounded per session: an enrolled school sending 20,000 unreadable messages in one session wrote
        # 4,300 event rows in 5 s (then the handshake deadline cut it) and held the database thread meanwhile.
        self.received += 1
        if self.received > self.MAX_INCOMING:
            if self.received == self.MAX_INCOMING + 1:
                log.warning("%s sent more than %d pool messages in one session; the rest of them are ignored",
                            peer.node_id, self.MAX_INCOMING)
            return []
        try:
            msg = decode(data)
        except ProtocolError as exc:
            self._refused(f"unreadable pool message from {peer.node_id}: {exc.message}", peer=peer.node_id,
                          code=exc.code)
            return []
        with self.fed.transaction():
            if isinstance(msg, CohortDeclaration):
                self._declared(peer, msg, data)
                return []
            if self.federation.role == "district":
                role = self.federation.peer_role(peer)
                if role in ("district", "parent"):
                    return self._from_academie(peer, msg, data)
                if role == "child":
                    return self._countersign(peer, msg, data)
                return self._district(peer, msg.pool_id.hex(), data)
            return self._school(peer, msg, data)

    def _refused(self, detail: str, **values) -> None:
        """A `pool_refused` event, once per session and code (the rest in the log): a peer's 256 bad messages
        in one session would otherwise be 256 rows, at every session."""
        code = str(values.get("code"))
        if code in self.told:
            log.info("pool message refused (already said this session): %s", detail)
            return
        self.told.add(code)
        self.fed.log_event("pool_refused", detail, **values)

    # -- the académie's countersignature -------------------------------------------------------

    def _from_academie(self, peer: PublicIdentity, msg, data: bytes) -> list[bytes]:
        """District: the académie's answer about a pool waiting for it: countersigned, or refused."""
        key = msg.pool_id.hex()
        state = _all(self.fed).get(key)
        if state is None or state.get("role") != "district" or state["status"] != COUNTERSIGN:
            return []
        if isinstance(msg, PoolAborted):
            cause = None if msg.code is None else {"code": msg.code, "params": msg.param_dict()}  # none: an old académie
            state.update(status="failed", outbox={}, reason=msg.reason, code="academie_refused", cause=cause)
            _save(self.fed, key, state)
            self.fed.log_event("pool_failed", f"pool {key[:8]}: the académie refused it: {msg.reason}", pool=key[:8],
                               by="academie")
            return []
        if not isinstance(msg, PoolDefinition):
            return []
        ours = decode(bytes.fromhex(state["definition"]))
        try:
            check_definition(msg, district_key=self.federation.key, parent_key=peer.signing_key)
        except ProtocolError as exc:
            self.fed.log_event("pool_refused", f"pool {key[:8]}: the académie's countersignature is not valid: {exc.message}",
                               pool=key[:8], code=exc.code)
            return []
        if msg.signed_body() != ours.signed_body():
            self.fed.log_event("pool_refused", f"pool {key[:8]}: the académie countersigned another member list",
                               pool=key[:8], code="other_members")
            return []
        state.update(definition=data.hex(), status="keys", round_at=self.federation.clock(),
                     outbox={str(i): data.hex() for i in range(1, msg.n + 1)})
        _save(self.fed, key, state)
        self.fed.log_event("pool_countersigned", f"pool {key[:8]} countersigned by the académie {peer.node_id}",
                           pool=key[:8], by=peer.node_id)
        return []

    def _countersign(self, peer: PublicIdentity, msg, data: bytes) -> list[bytes]:
        """Académie: countersign a district's pool after the checks it can make, or refuse it (PoolAborted)."""
        if not isinstance(msg, PoolDefinition):
            return []
        key = msg.pool_id.hex()
        state = _all(self.fed).get(key)
        if state is not None:
            if state.get("role") == "parent" and state["district"] == peer.signing_key.hex():
                if decode(bytes.fromhex(state["definition"])).signed_body() == msg.signed_body():
                    return [bytes.fromhex(state["answer"])]  # asked again: the same answer
                return [encode(PoolAborted.because(msg.pool_id, "this pool id was already used for another member list",
                                                   "pool_id_reused"))]
            return []
        refusal = self._refusal(peer, msg)
        if refusal is None:
            answer = encode(msg.countersigned(self.federation.identity))
            state = {"role": "parent", "definition": answer.hex(), "status": "countersigned"}
            register = self.fed.get_meta(REGISTER_META, {}) or {}
            mine = register.setdefault(msg.campaign_id, {})
            for m in msg.members:
                mine[m.uai] = mine[m.signing_key.hex()] = key
            self.fed.set_meta(REGISTER_META, register)
            self.fed.log_event("pool_countersigned", f"pool {key[:8]} of district {peer.node_id} for {msg.campaign_id}: "
                               + ", ".join(f"{m.name} ({m.uai}, {m.cohort})" for m in msg.members),
                               pool=key[:8], district=peer.node_id, campaign=msg.campaign_id, schools=len(msg.members))
        else:
            code, params, reason = refusal  # the district says it from the code and values; the English is for logs
            answer = encode(PoolAborted.because(msg.pool_id, reason, code, params))
            state = {"role": "parent", "definition": data.hex(), "status": "refused", "reason": reason, "code": code,
                     "params": params}
            self.fed.log_event("pool_refused", f"pool {key[:8]} of district {peer.node_id}: {reason}", pool=key[:8],
                               district=peer.node_id)
        state.update(district=peer.signing_key.hex(), answer=answer.hex(), sent=0)
        _save(self.fed, key, state)
        return [answer]

    def _refusal(self, peer: PublicIdentity, msg: PoolDefinition) -> tuple[str, dict, str] | None:
        """Why the académie will not countersign (code, values, English), or None. What it can check: what every
        school checks (signed by this district, the schools' own declarations, size, threshold, floor), that
        every school is in a département of its districts, and that no school is in a second pool for the
        campaign."""
        try:
            check_definition(msg, district_key=peer.signing_key)
        except ProtocolError as exc:
            return exc.code or "invalid", {}, exc.message
        departements = {c["uai"][:3] for c in self.federation.children()
                        if c["role"] == "child" and c["status"] == "active" and c["uai"]}
        outside = [m.uai for m in msg.members if m.uai[:3] not in departements]
        if outside:
            params = {"departements": ", ".join(sorted(departements)), "schools": ", ".join(outside)}
            return "outside_academie", params, i18n.translate("en", "pool.refusal.outside_academie", **params)
        register = (self.fed.get_meta(REGISTER_META, {}) or {}).get(msg.campaign_id, {})
        for m in msg.members:
            other = register.get(m.uai) or register.get(m.signing_key.hex())
            if other is not None and other != msg.pool_id.hex():
                params = {"name": m.name, "uai": m.uai, "pool": other[:8], "campaign": msg.campaign_id}
                return "already_pooled", params, i18n.translate("en", "pool.refusal.already_pooled", **params)
        return None

    def _declared(self, peer: PublicIdentity, msg: CohortDeclaration, data: bytes) -> None:
        """District: keep a school's newest declaration, if it is that school's, for its UAI, and signed."""
        row = self.fed.active_peer(peer.signing_key.hex())
        if self.federation.role != "district" or row is None or row["role"] != "school":
            return
        if msg.signing_key != peer.signing_key or msg.uai != row["uai"] or not msg.valid():
            self._refused(f"a cohort declaration from {peer.node_id} that is not its own "
                          f"(key, UAI {msg.uai} or signature); ignored", peer=peer.node_id,
                          uai=msg.uai, code="not_its_declaration")
            return
        if not self.fed.holds_campaign(msg.campaign_id):
            # Only for a campaign this district holds: an enrolled school declaring for 3,000 made-up campaigns
            # grew this one meta value to 500 KB, re-read and re-written per declaration, and held the
            # database thread (every other school's sync) for 24 s a session.
            log.info("a cohort declaration from %s for campaign %r, which this node does not hold; ignored",
                     peer.node_id, msg.campaign_id[:64])
            return
        raw = self.fed.get_meta(DECLARED_META, {}) or {}
        mine = raw.setdefault(msg.campaign_id, {})
        previous = mine.get(peer.signing_key.hex())
        if previous == data.hex() or (previous is not None and decode(bytes.fromhex(previous)).declared_at > msg.declared_at):
            return
        mine[peer.signing_key.hex()] = data.hex()
        self.fed.set_meta(DECLARED_META, raw)
        self.fed.log_event("cohort_declared", f"school {msg.uai} declares {msg.cohort} pupils for {msg.campaign_id}",
                           uai=msg.uai, pupils=msg.cohort, campaign=msg.campaign_id)

    def _district(self, peer: PublicIdentity, key: str, data: bytes) -> list[bytes]:
        state = _all(self.fed).get(key)
        if state is None or state.get("role") != "district":
            return []
        agg = _aggregator(state)
        member = _member_index(self.fed, agg.pool, peer.signing_key)
        if member is None:
            return []
        try:
            if not agg.receive(member, data):
                return []
        except ProtocolError as exc:
            self._refused(f"pool {key[:8]}, member {member}: {exc.message}", pool=key[:8], member=member,
                          code=exc.code)
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
                    parent = _parent_key(self.federation, msg)
                    check_pool(msg, district_key=peer.signing_key, me=_member_identity(self.federation, msg).signing_key,
                               min_cohort=known.policy.min_cohort if known else MIN_COHORT, parent_key=parent)
                except ProtocolError as exc:
                    state.update(status="refused", reason=exc.message, code=exc.code)
                else:
                    if parent is not None and required_academie(self.federation) is None:
                        # Trust on first use: from now on every pool needs this académie's countersignature.
                        self.fed.set_meta(ACADEMIE_META, node_id(parent))
                        self.fed.log_event("academie_pinned", f"pools now need the countersignature of {node_id(parent)}",
                                           node_id=node_id(parent))
                _save(self.fed, key, state)
                self.fed.log_event("pool_proposed", f"pool {key[:8]} for {msg.campaign_id}: {state['status']}",
                                   pool=key[:8], campaign=msg.campaign_id, status=state["status"])
            return []
        if state is None or state.get("role") != "school" or state["status"] != "active":
            return []
        if data.hex() in state["transcript"]:
            return [bytes.fromhex(state["outbox"])] if state.get("outbox") else []
        try:
            client = _client(self.federation, state)
            reply = client.receive(data)
        except ProtocolError as exc:
            state.update(status="failed", reason=exc.message, code=exc.code, outbox=None)
            _save(self.fed, key, state)
            self.fed.log_event("pool_left", f"pool {key[:8]}: {exc.message}", pool=key[:8], code=exc.code)
            return []
        state["transcript"].append(data.hex())
        state["moved_at"] = self.federation.clock()
        if reply is None:
            state.update(status="complete" if client.state == "complete" else "failed", outbox=None,
                         reason=None if client.error is None else client.error.message)
            if client.error is not None:  # the district aborted the pool: said from its code and values
                state["code"] = client.error.code
                if client.aborted is not None:
                    state["cause"] = {"code": client.aborted[0], "params": client.aborted[1]}
            _save(self.fed, key, state)
            return []
        if reply.sent_input is not None and left_alone(self.fed, reply.sent_input.campaign_id):
            # Its counts left alone after it approved (its releases are free until its part leaves), or before
            # a restore that lost its record of the pool: its input would let the district subtract. It stays out.
            campaign = reply.sent_input.campaign_id
            state.update(status="failed", reason=said("pool.refusal.counts_sent_alone", campaign=campaign).english,
                         code="counts_sent_alone", params={"campaign": campaign}, outbox=None)
            _save(self.fed, key, state)
            self.fed.log_event("pool_left", f"pool {key[:8]}: its counts already left alone", pool=key[:8],
                               code="counts_sent_alone")
            return []
        if reply.sent_input is not None:
            _record_spent(self.fed, reply.sent_input)  # same transaction, before the reply can leave
        state["outbox"] = reply.data.hex()
        _save(self.fed, key, state)
        return [reply.data]
