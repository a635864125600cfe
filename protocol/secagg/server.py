"""The district's side of secure aggregation: collects each round, then advances it.

The district decides when a round closes (everyone answered, or a deadline
passed: that is the node's business, so no clock here). `advance()` closes
the round and returns the message for each member still in the pool; with
fewer than `threshold` members left it aborts instead, and nothing is ever
unmasked. Like the client, the aggregator is deterministic: the node
persists the (member, bytes) it received and where it advanced, and replays
them after a restart.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import shamir
from ..errors import LocalProtocolError, RemoteProtocolError
from ..identity import verify_signature
from . import masks
from .messages import (
    LABEL_SURVIVORS, AdvertiseKeys, ConsistencyRequest, ConsistencySignature, EncryptedShare, KeysBroadcast,
    MaskedInput, MemberSignature, PoolAborted, PoolDefinition, PoolFinished, RoutedShares, ShareKeys, UnmaskRequest, UnmaskShares,
    decode, encode, survivors_message,
)

KEYS, SHARES, INPUTS, SIGNATURES, UNMASK, COMPLETE, ABORTED = (
    "keys", "shares", "inputs", "signatures", "unmask", "complete", "aborted")
COLLECTS = {KEYS: AdvertiseKeys, SHARES: ShareKeys, INPUTS: MaskedInput, SIGNATURES: ConsistencySignature, UNMASK: UnmaskShares}


@dataclass(frozen=True, slots=True)
class PoolResult:
    survivors: tuple[int, ...]
    total: tuple[int, ...]
    declared_cohort: int


class DistrictAggregator:
    __slots__ = ("pool", "state", "reason", "reason_code", "reason_params", "result", "_expected", "_got", "_keys", "_shares", "_u2", "_inputs",
                 "_u3", "_dropped", "_signatures")

    def __init__(self, pool: PoolDefinition):
        self.pool = pool
        self.state = KEYS
        self.reason: str | None = None
        self.reason_code: str | None = None  # why it aborted, as a stable code and values the node says in words
        self.reason_params: dict[str, int] = {}
        self.result: PoolResult | None = None
        self._expected: frozenset[int] = frozenset(range(1, pool.n + 1))
        self._got: dict[int, tuple[bytes, object]] = {}
        self._keys: dict[int, AdvertiseKeys] = {}
        self._shares: dict[int, ShareKeys] = {}
        self._u2: frozenset[int] = frozenset()
        self._inputs: dict[int, list[int]] = {}
        self._u3: tuple[int, ...] = ()
        self._dropped: tuple[int, ...] = ()
        self._signatures: dict[int, bytes] = {}

    @property
    def waiting_for(self) -> frozenset[int]:
        """Members expected in this round that have not answered yet."""
        return self._expected - set(self._got) if self.state in COLLECTS else frozenset()

    def receive(self, member: int, data: bytes) -> bool:
        """A message from `member` (whom the transport authenticated). False if it is late or a duplicate."""
        msg = decode(data)
        cls = COLLECTS.get(self.state)
        if msg.pool_id != self.pool.pool_id:
            raise RemoteProtocolError("a message for another pool", code="wrong_pool")
        if cls is None or not isinstance(msg, cls):
            return False  # a late answer to a round already closed
        if msg.sender != member:
            raise RemoteProtocolError(f"member {member} sent a message signed as member {msg.sender}", code="wrong_sender")
        if member not in self._expected:
            return False  # dropped earlier: too late for this pool
        if member in self._got:
            if self._got[member][0] != bytes(data):
                raise RemoteProtocolError(f"member {member} sent two different answers in one round", code="equivocation")
            return False
        self._check(msg)
        self._got[member] = (bytes(data), msg)
        return True

    def _check(self, msg) -> None:
        pool = self.pool
        if isinstance(msg, AdvertiseKeys) and not msg.verify(pool):
            raise RemoteProtocolError(f"member {msg.sender}'s keys are not signed by that school", code="bad_signature")
        if isinstance(msg, ShareKeys) and {s.member for s in msg.shares} != set(self._keys) - {msg.sender}:
            raise RemoteProtocolError(f"member {msg.sender} did not send shares to exactly the other members", code="bad_shares")
        if isinstance(msg, MaskedInput) and len(msg.masked) != 4 * pool.vector_length:
            raise RemoteProtocolError(f"member {msg.sender}'s masked input has the wrong length", code="bad_input")
        if isinstance(msg, ConsistencySignature) and not verify_signature(
                pool.members[msg.sender - 1].signing_key, LABEL_SURVIVORS, survivors_message(pool.digest, self._u3), msg.signature):
            raise RemoteProtocolError(f"member {msg.sender}'s signature over the surviving set is invalid", code="bad_consistency")
        if isinstance(msg, UnmaskShares) and (
                [s.member for s in msg.self_mask_shares] != list(self._u3)
                or [s.member for s in msg.key_shares] != list(self._dropped)):
            raise RemoteProtocolError(f"member {msg.sender} did not reveal the shares asked for", code="bad_shares")

    def advance(self) -> dict[int, bytes]:
        """Close the current round; the messages to send, by member index."""
        if self.state not in COLLECTS:
            raise LocalProtocolError(f"the pool is {self.state}; no round to close", code="pool_closed")
        got = {m: msg for m, (_raw, msg) in sorted(self._got.items())}
        if len(got) < self.pool.threshold:
            return self._abort(f"only {len(got)} of the {self.pool.n} schools answered; the pool needs {self.pool.threshold}",
                               "too_few_answered", {"answered": len(got), "n": self.pool.n, "threshold": self.pool.threshold})
        out = getattr(self, "_close_" + self.state)(got)
        self._got = {}
        return out

    def _abort(self, reason: str, code: str, params: dict[str, int] | None = None) -> dict[int, bytes]:
        """End the pool; the members are told why, as a code and values their node says in its own words."""
        self.state, self.reason = ABORTED, reason
        self.reason_code, self.reason_params = code, dict(params or {})
        told = self._expected | set(self._got)
        self._got = {}
        aborted = encode(PoolAborted.because(self.pool.pool_id, reason, code, self.reason_params))
        return {m: aborted for m in sorted(told)}

    def _close_keys(self, got: dict[int, AdvertiseKeys]) -> dict[int, bytes]:
        self._keys = got
        broadcast = encode(KeysBroadcast(self.pool.pool_id, tuple(got.values())))
        self._expected, self.state = frozenset(got), SHARES
        return {m: broadcast for m in got}

    def _close_shares(self, got: dict[int, ShareKeys]) -> dict[int, bytes]:
        self._shares, self._u2 = got, frozenset(got)
        out = {}
        for v in got:
            routed = tuple(EncryptedShare(u, s.ciphertext) for u, msg in got.items() if u != v
                           for s in msg.shares if s.member == v)
            out[v] = encode(RoutedShares(self.pool.pool_id, v, routed))
        self._expected, self.state = self._u2, INPUTS
        return out

    def _close_inputs(self, got: dict[int, MaskedInput]) -> dict[int, bytes]:
        self._inputs = {m: masks.unpack(msg.masked) for m, msg in got.items()}
        self._u3 = tuple(got)
        self._dropped = tuple(sorted(self._u2 - set(got)))
        request = encode(ConsistencyRequest(self.pool.pool_id, self._u3))
        self._expected, self.state = frozenset(self._u3), SIGNATURES
        return {m: request for m in self._u3}

    def _close_signatures(self, got: dict[int, ConsistencySignature]) -> dict[int, bytes]:
        self._signatures = {m: msg.signature for m, msg in got.items()}
        request = encode(UnmaskRequest(self.pool.pool_id, self._u3, self._dropped,
                                       tuple(MemberSignature(m, s) for m, s in self._signatures.items())))
        self._expected, self.state = frozenset(got), UNMASK
        return {m: request for m in got}

    def _close_unmask(self, got: dict[int, UnmaskShares]) -> dict[int, bytes]:
        pool, length = self.pool, self.pool.vector_length
        total = [0] * length
        for y in self._inputs.values():
            masks.add(total, y)
        for v in self._u3:
            b = _reconstruct({w: msg.self_mask_shares[self._u3.index(v)].share for w, msg in got.items()}, pool.threshold)
            if b is None:
                return self._abort(f"the shares of member {v}'s self mask do not agree", "bad_self_mask_shares")
            masks.add(total, masks.self_mask(b, pool.digest, length), -1)
        for v in self._dropped:
            s_sk = _reconstruct({w: msg.key_shares[self._dropped.index(v)].share for w, msg in got.items()}, pool.threshold)
            if s_sk is None or masks.public_key(s_sk) != self._keys[v].s_pk:
                return self._abort(f"the shares of dropped member {v}'s key do not give its advertised key",
                                   "bad_key_shares")
            for u in self._u3:
                # u added pair_sign(u, v) * mask(u, v) for v, which never sent the opposite one
                masks.add(total, masks.pairwise_mask(s_sk, self._keys[u].s_pk, pool.digest, length), -masks.pair_sign(u, v))
        cohort = sum(pool.members[u - 1].cohort for u in self._u3)
        self.result = PoolResult(self._u3, tuple(total), cohort)
        self.state, self._expected = COMPLETE, frozenset()
        finished = encode(PoolFinished(pool.pool_id, self._u3))
        return {m: finished for m in self._keys}


def _reconstruct(raw: dict[int, bytes], threshold: int) -> bytes | None:
    """The secret from the first `threshold` shares, if every further share lies on the same polynomial."""
    shares = {x: shamir.decode_share(y) for x, y in sorted(raw.items())}
    xs = list(shares)
    secret = _combine({x: shares[x] for x in xs[:threshold]})
    if secret is None or (len(xs) > threshold and _combine({x: shares[x] for x in xs[-threshold:]}) != secret):
        return None
    return secret


def _combine(shares: dict[int, int]) -> bytes | None:
    try:
        return shamir.combine(shares)
    except LocalProtocolError:
        return None
