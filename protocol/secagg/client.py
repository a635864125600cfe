"""The school's side of secure aggregation: a pure state machine, bytes in, bytes out.

The node persists the seed, the frozen vector and every district message
received; replaying them into a fresh `SchoolClient` rebuilds the same state
and the same replies (everything is derived from the seed), so a round may
span many sync sessions and node restarts. Before sending a masked input the
node must durably record the `SentInput` returned with it and pass every
recorded one back as `spent`: a school sends one masked input per campaign,
ever, so two pools can never be subtracted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .. import crypto, shamir
from ..errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ..identity import Identity, verify_signature
from . import masks
from .messages import (
    LABEL_POOL, LABEL_POOL_COUNTERSIGN, LABEL_SURVIVORS, AdvertiseKeys, ConsistencyRequest, ConsistencySignature,
    EncryptedShare, KeysBroadcast, MaskedInput, PoolAborted, PoolDefinition, PoolFinished, RevealedShare, RoutedShares, ShareKeys,
    UnmaskRequest, UnmaskShares, decode, encode, survivors_message,
)

MIN_MEMBERS = 3
MIN_COHORT = 10


def _refuse(message: str, code: str):
    raise RemoteProtocolError(message, code=code)


def check_definition(pool: PoolDefinition, *, district_key: bytes, min_cohort: int = MIN_COHORT,
                     parent_key: bytes | None = None) -> None:
    """The checks anyone holding the district's key can run on a pool (a member, or the académie before it
    countersigns): signatures, the members' own cohort declarations, size, threshold and the floor."""
    if pool.district_key != district_key or not verify_signature(district_key, LABEL_POOL, pool.signed_body(), pool.signature):
        _refuse("the pool is not signed by this school's district", "bad_pool_signature")
    if parent_key is not None and (pool.parent_key != parent_key or not verify_signature(
            parent_key, LABEL_POOL_COUNTERSIGN, pool.signed_body(), pool.countersignature or b"")):
        _refuse("the pool's member list is not countersigned by the académie", "bad_pool_countersignature")
    for m in pool.members:
        # The floor below counts declared pupils: each must be the school's own signed word, not the district's.
        if not m.declared_by_itself(pool.campaign_id):
            _refuse(f"the pool's cohort for {m.name} ({m.uai}), {m.cohort} pupils, is not that school's own signed "
                    f"declaration for {pool.campaign_id}", "bad_cohort_declaration")
    n, t = pool.n, pool.threshold
    if n < MIN_MEMBERS:
        _refuse(f"a pool needs at least {MIN_MEMBERS} schools; this one has {n}", "pool_too_small")
    if 3 * t <= 2 * n:
        _refuse(f"the threshold {t} must be more than two thirds of the {n} members", "threshold_too_low")
    min_cohort = max(min_cohort, MIN_COHORT)  # a campaign may raise the floor, a caller cannot lower it
    if pool.smallest_surviving_cohort() < min_cohort:
        _refuse(f"{t} members of this pool could together hold only {pool.smallest_surviving_cohort()} pupils, "
                f"fewer than {min_cohort}", "cohort_too_small")


def check_pool(pool: PoolDefinition, *, district_key: bytes, me: bytes, my_cohort: int | None = None,
               min_cohort: int = MIN_COHORT, parent_key: bytes | None = None) -> int:
    """Every check a school runs before taking part; returns its index or raises RemoteProtocolError.

    Besides `check_definition`: every member is under the floor (one that publishes alone could be
    subtracted from the sum), the school is a member, with its true cohort.

    `district_key` is the district this school enrolled with; `parent_key`, when the
    district has a parent, is required to have countersigned the member list. Every
    member's cohort must carry that school's own signature (CohortDeclaration), so the
    floor of `min_cohort` pupils is checked on what the schools declared.
    """
    check_definition(pool, district_key=district_key, min_cohort=min_cohort, parent_key=parent_key)
    floor = max(min_cohort, MIN_COHORT)
    for m in pool.members:
        # A school of `floor` pupils or more publishes its counts alone: the district would subtract them from
        # the pool's sum and hold the others' (two such schools and one of 6 pupils gave that one's exact counts).
        if m.cohort >= floor:
            _refuse(f"{m.name} ({m.uai}) declared {m.cohort} pupils, at least {floor}: that school publishes its "
                    "counts alone, and the district could subtract them from the pool's sum", "member_publishes_alone")
    index = pool.index_of(me)
    if index is None:
        _refuse("this school is not a member of the pool", "not_a_member")
    if my_cohort is not None and pool.members[index - 1].cohort != my_cohort:
        _refuse(f"the pool declares {pool.members[index - 1].cohort} pupils for this school, not its {my_cohort}",
                "wrong_cohort")
    return index


@dataclass(frozen=True, slots=True)
class SentInput:
    """What the node records, durably and before sending, for the one masked input of a campaign."""

    campaign_id: str
    pool_id: bytes
    digest: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes
    sent_input: SentInput | None = None


# States, and the district message each one waits for.
ADVERTISED, SHARED, MASKED, SIGNED, DONE, COMPLETE, FAILED = (
    "advertised", "shared", "masked", "signed", "done", "complete", "failed")
EXPECTS = {ADVERTISED: KeysBroadcast, SHARED: RoutedShares, MASKED: ConsistencyRequest, SIGNED: UnmaskRequest}
NEXT = {ADVERTISED: SHARED, SHARED: MASKED, MASKED: SIGNED, SIGNED: DONE}


class SchoolClient:
    __slots__ = ("identity", "pool", "index", "vector", "spent", "state", "error", "aborted", "_c_sk", "_s_sk", "_b",
                 "_coins", "_advert", "_keys", "_pair_keys", "_held", "_u2", "_u3", "_seen", "survivors")

    def __init__(self, identity: Identity, pool: PoolDefinition, *, district_key: bytes, vector, seed: bytes,
                 spent: Mapping[str, SentInput] | None = None, my_cohort: int | None = None,
                 min_cohort: int = MIN_COHORT, parent_key: bytes | None = None):
        self.identity, self.pool = identity, pool
        try:
            self.index = check_pool(pool, district_key=district_key, me=identity.signing_key, my_cohort=my_cohort,
                                    min_cohort=min_cohort, parent_key=parent_key)
        except RemoteProtocolError as exc:
            raise LocalProtocolError(exc.message, code=exc.code) from None
        vector = tuple(vector)
        if len(vector) != pool.vector_length or any(not isinstance(v, int) or not 0 <= v < masks.MODULUS for v in vector):
            raise LocalProtocolError(f"the vector must be {pool.vector_length} integers in [0, 2^32)", code="invalid_vector")
        if len(seed) != 32:
            raise LocalProtocolError("a member's seed is 32 random bytes", code="invalid_seed")
        self.vector = vector
        self.spent = dict(spent or {})
        previous = self.spent.get(pool.campaign_id)
        if previous is not None and previous.pool_id != pool.pool_id:
            raise LocalProtocolError("this school already sent its masked input for this campaign in another pool; "
                                     "it takes part in one pool per campaign", code="already_sent")
        digest = pool.digest
        self._c_sk = masks.member_secret(seed, digest, b"c")
        self._s_sk = masks.member_secret(seed, digest, b"s")
        self._b = masks.member_secret(seed, digest, b"b")
        self._coins = masks.member_secret(seed, digest, b"coefficients")
        c_pk, s_pk = masks.public_key(self._c_sk), masks.public_key(self._s_sk)
        advert = AdvertiseKeys(pool.pool_id, self.index, c_pk, s_pk, b"\x00" * 64)
        self._advert = AdvertiseKeys(pool.pool_id, self.index, c_pk, s_pk, identity.sign(
            b"preau/v1/secagg-keys", advert.signed_part(digest)))
        self._keys: dict[int, AdvertiseKeys] = {}
        self._pair_keys: dict[int, bytes] = {}
        self._held: dict[int, tuple[int, int]] = {}
        self._u2: frozenset[int] = frozenset()
        self._u3: tuple[int, ...] = ()
        self._seen: dict[type, tuple[bytes, Reply]] = {}
        self.state = ADVERTISED
        self.survivors: tuple[int, ...] | None = None  # who the sum covers, once the district says it is done
        self.error: ProtocolError | None = None
        self.aborted: tuple[str, dict[str, str]] | None = None  # the district's reason for aborting: code, values

    def start(self) -> bytes:
        """Round 0: my signed keys, to send to the district (the same bytes each time)."""
        return encode(self._advert)

    def receive(self, data: bytes) -> Reply | None:
        """Feed one district message; returns what to send back, or None (the pool aborted)."""
        if self.state == FAILED:
            raise LocalProtocolError("this school left the pool after an error; nothing more is sent", code="pool_failed")
        if self.state == COMPLETE:
            return None  # the pool is over: nothing more to say
        try:
            return self._receive(data)
        except ProtocolError as exc:  # any refusal ends this school's part: nothing half-works afterwards
            self.state, self.error = FAILED, exc
            raise

    def _receive(self, data: bytes) -> Reply | None:
        msg = decode(data)
        if msg.pool_id != self.pool.pool_id:
            raise RemoteProtocolError("a message for another pool", code="wrong_pool")
        if isinstance(msg, PoolAborted):
            self.state = FAILED
            self.error = RemoteProtocolError(f"the district aborted the pool: {msg.reason}", code="pool_aborted")
            if msg.code is not None:  # none from a district of an earlier version
                self.aborted = (msg.code, msg.param_dict())
            return None
        if isinstance(msg, PoolFinished):
            self.state, self.survivors = COMPLETE, msg.survivors
            return None
        fingerprint = crypto.blake2b(bytes(data), digest_size=32)
        seen = self._seen.get(type(msg))
        if seen is not None:
            if seen[0] == fingerprint:
                return seen[1]  # the same message again (a lost reply): the same answer
            raise RemoteProtocolError(f"the district sent a different {type(msg).__name__} for a round already answered",
                                      code="replayed_round")
        expected = EXPECTS.get(self.state)
        if not isinstance(msg, expected or ()):
            raise RemoteProtocolError(f"unexpected {type(msg).__name__} in state {self.state}", code="out_of_order")
        reply = getattr(self, "_on_" + self.state)(msg)
        self._seen[type(msg)] = (fingerprint, reply)
        self.state = NEXT[self.state]
        return reply

    # --- rounds -------------------------------------------------------------------

    def _on_advertised(self, msg: KeysBroadcast) -> Reply:
        pool, t = self.pool, self.pool.threshold
        keys = {}
        for advert in msg.adverts:
            if not advert.verify(pool):
                raise RemoteProtocolError(f"member {advert.sender}'s keys are not signed by that school", code="bad_signature")
            keys[advert.sender] = advert
        if keys.get(self.index) != self._advert:
            raise RemoteProtocolError("the district did not relay this school's own keys", code="own_keys_missing")
        if len(keys) < t:
            raise RemoteProtocolError(f"only {len(keys)} members advertised keys; the pool needs {t}", code="too_few_members")
        publics = [a.c_pk for a in keys.values()] + [a.s_pk for a in keys.values()]
        if len(set(publics)) != len(publics):
            raise RemoteProtocolError("two advertised keys are equal", code="duplicate_key")
        self._keys = keys
        xs = sorted(keys)
        need = shamir.coefficients_needed(t)
        coins = masks.random_bytes(self._coins, 2 * need)
        s_shares = shamir.split(self._s_sk, xs, t, coins[:need])
        b_shares = shamir.split(self._b, xs, t, coins[need:])
        out = []
        for v in xs:
            if v == self.index:
                continue
            key = self._pair_keys[v] = masks.share_key(self._c_sk, keys[v].c_pk, pool.digest)
            out.append(EncryptedShare(v, masks.encrypt_shares(key, pool.digest, self.index, v, s_shares[v], b_shares[v])))
        self._held[self.index] = (s_shares[self.index], b_shares[self.index])
        return Reply(encode(ShareKeys(pool.pool_id, self.index, tuple(out))))

    def _on_shared(self, msg: RoutedShares) -> Reply:
        pool = self.pool
        if msg.recipient != self.index:
            raise RemoteProtocolError("shares addressed to another member", code="misaddressed")
        for item in msg.shares:
            v = item.member
            if v not in self._keys or v == self.index:
                raise RemoteProtocolError(f"shares from member {v}, who did not advertise keys", code="unknown_member")
            self._held[v] = masks.decrypt_shares(self._pair_keys[v], pool.digest, v, self.index, item.ciphertext)
        u2 = frozenset(self._held)
        if len(u2) < pool.threshold:
            raise RemoteProtocolError(f"only {len(u2)} members shared their keys; the pool needs {pool.threshold}",
                                      code="too_few_members")
        self._u2 = u2
        y = list(self.vector)
        masks.add(y, masks.self_mask(self._b, pool.digest, pool.vector_length))
        for v in sorted(u2 - {self.index}):
            masks.add(y, masks.pairwise_mask(self._s_sk, self._keys[v].s_pk, pool.digest, pool.vector_length),
                      masks.pair_sign(self.index, v))
        data = encode(MaskedInput(pool.pool_id, self.index, masks.pack(y)))
        sent = SentInput(pool.campaign_id, pool.pool_id, masks.input_digest(data))
        previous = self.spent.get(pool.campaign_id)
        if previous is not None and previous != sent:
            raise LocalProtocolError("this school already sent a masked input for this campaign; it never sends a second",
                                     code="already_sent")
        return Reply(data, sent)

    def _on_masked(self, msg: ConsistencyRequest) -> Reply:
        u3 = set(msg.survivors)
        if not u3 <= self._u2:
            raise RemoteProtocolError("the surviving set names members who did not share their keys", code="unknown_member")
        if self.index not in u3:
            raise RemoteProtocolError("the surviving set leaves out this school, which sent its input", code="excluded")
        if len(u3) < self.pool.threshold:
            raise RemoteProtocolError(f"only {len(u3)} members survive; the pool needs {self.pool.threshold}",
                                      code="too_few_members")
        self._u3 = msg.survivors
        signature = self.identity.sign(LABEL_SURVIVORS, survivors_message(self.pool.digest, msg.survivors))
        return Reply(encode(ConsistencySignature(self.pool.pool_id, self.index, signature)))

    def _on_signed(self, msg: UnmaskRequest) -> Reply:
        pool = self.pool
        if msg.survivors != self._u3:
            raise RemoteProtocolError("the district changed the surviving set after this school signed it",
                                      code="survivors_changed")
        survivors, dropped = set(msg.survivors), set(msg.dropped)
        if survivors & dropped:
            raise RemoteProtocolError("the district asked for both shares of one member; refused", code="both_shares")
        if not dropped <= self._u2 - survivors:
            raise RemoteProtocolError("the district asked for the key of a member that did not share its keys",
                                      code="unknown_member")
        signed = set()
        message = survivors_message(pool.digest, msg.survivors)
        for item in msg.signatures:
            if item.member not in survivors or not verify_signature(
                    pool.members[item.member - 1].signing_key, LABEL_SURVIVORS, message, item.signature):
                raise RemoteProtocolError(f"member {item.member}'s signature over the surviving set is invalid",
                                          code="bad_consistency")
            signed.add(item.member)
        if len(signed) < pool.threshold:
            raise RemoteProtocolError(f"only {len(signed)} members confirmed the surviving set; the pool needs {pool.threshold}",
                                      code="too_few_members")
        b_shares = tuple(RevealedShare(v, shamir.encode_share(self._held[v][1])) for v in sorted(survivors))
        s_shares = tuple(RevealedShare(v, shamir.encode_share(self._held[v][0])) for v in sorted(dropped))
        return Reply(encode(UnmaskShares(pool.pool_id, self.index, b_shares, s_shares)))
