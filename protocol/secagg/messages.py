"""The pool definition and the messages of secure aggregation, in the house TLV encoding.

Encoding: `varint version` (1), `varint type`, then the fields of protocol.wire
(tag, length, value; unknown tags skipped). Member indices are the positions
in the pool's member list, from 1; lists of members are strictly increasing,
so a set has one encoding and one signature. Arbitrary bytes given to
`decode` give a message or a RemoteProtocolError, nothing else.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

from .. import crypto, shamir
from ..errors import LocalProtocolError, RemoteProtocolError
from ..identity import Identity, node_id, verify_signature
from ..uai import parse_uai
from ..wire import Message, decode_varint, encode_fields, encode_varint

VERSION = 1
MAX_MEMBERS = 200
MAX_VECTOR = 100_000
MAX_COHORT = 100_000
POOL_ID_BYTES = 16
SHARE_PLAINTEXT = 2 + 2 + 2 * shamir.SHARE_BYTES
SHARE_CIPHERTEXT = SHARE_PLAINTEXT + crypto.TAGLEN

LABEL_POOL = b"preau/v1/secagg-pool"
LABEL_POOL_COUNTERSIGN = b"preau/v1/secagg-pool-countersign"
LABEL_POOL_DIGEST = b"preau/v1/secagg-pool-digest"
LABEL_KEYS = b"preau/v1/secagg-keys"
LABEL_SURVIVORS = b"preau/v1/secagg-survivors"
LABEL_COHORT = b"preau/v1/secagg-cohort"


def _need(cond: bool, what: str, code: str = "invalid_message") -> None:
    if not cond:
        raise LocalProtocolError(what, code=code)


def _pool_id(pool_id: bytes) -> None:
    _need(len(pool_id) == POOL_ID_BYTES, f"a pool id is {POOL_ID_BYTES} bytes")


def _index(i: int, what: str) -> None:
    _need(1 <= i <= MAX_MEMBERS, f"{what}: member indices run from 1 to {MAX_MEMBERS}")


def _member_set(ids: tuple[int, ...], what: str) -> None:
    for i in ids:
        _index(i, what)
    _need(all(a < b for a, b in zip(ids, ids[1:])), f"{what}: members are listed once each, in increasing order")


def member_set_bytes(ids) -> bytes:
    return b"".join(i.to_bytes(2, "big") for i in sorted(ids))


# --- the pool -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CohortDeclaration(Message):
    """A school's own word on how many pupils it assessed in a campaign, signed by it (type 13).

    Cohort sizes per school are public open data, so this travels in clear,
    school -> district; the district copies it into each Member of a pool, and
    every member checks the signatures, so a district cannot make a pool look
    bigger than it is by lying about a real school's cohort. `declared_at` (the
    school's clock) orders a school's successive declarations.
    """

    TYPE: ClassVar[int] = 13
    SCHEMA: ClassVar[tuple] = ((1, "campaign_id", "doc"), (2, "uai", "str"), (3, "cohort", "uint"),
                               (4, "declared_at", "uint"), (5, "signing_key", "key"), (6, "signature", "sig"))
    campaign_id: str
    uai: str
    cohort: int
    declared_at: int
    signing_key: bytes
    signature: bytes

    def __post_init__(self):
        Message.__post_init__(self)
        _need(parse_uai(self.uai) == self.uai, "a declaration's UAI must be canonical")
        _need(0 <= self.cohort <= MAX_COHORT, f"a declared cohort is 0-{MAX_COHORT} pupils")

    @classmethod
    def create(cls, school: Identity, *, campaign_id: str, uai: str, cohort: int, declared_at: int) -> "CohortDeclaration":
        unsigned = cls(campaign_id, uai, cohort, declared_at, school.signing_key, b"\x00" * 64)
        return cls(campaign_id, uai, cohort, declared_at, school.signing_key,
                   school.sign(LABEL_COHORT, unsigned.signed_body()))

    def signed_body(self) -> bytes:
        return encode_fields([item for item in self._items() if item[0] <= 5])

    def valid(self) -> bool:
        return verify_signature(self.signing_key, LABEL_COHORT, self.signed_body(), self.signature)


@dataclass(frozen=True, slots=True)
class Member(Message):
    """A school in a pool: its signing key (what the district pinned), UAI, name, and its signed cohort declaration.

    `declared_at` and `declaration` are the school's CohortDeclaration for the
    pool's campaign (the district cannot change the cohort without breaking it);
    `check_pool` refuses a pool with a member whose declaration is missing or false.
    """

    SCHEMA: ClassVar[tuple] = ((1, "signing_key", "key"), (2, "uai", "str"), (3, "name", "str"), (4, "cohort", "uint"),
                               (5, "declared_at", "uint?"), (6, "declaration", "sig?"))
    signing_key: bytes
    uai: str
    name: str
    cohort: int
    declared_at: int | None = None
    declaration: bytes | None = None

    def __post_init__(self):
        _need(parse_uai(self.uai) == self.uai, "member UAI must be canonical")
        _need(0 < len(self.name) <= 200 and self.name.isprintable(), "a member's name is 1-200 printable characters")
        _need(0 <= self.cohort <= MAX_COHORT, f"a declared cohort is 0-{MAX_COHORT} pupils")
        _need((self.declared_at is None) == (self.declaration is None), "a member's declaration comes with its date")

    @classmethod
    def declared(cls, declaration: CohortDeclaration, name: str) -> "Member":
        """The member a school's own declaration makes (the district adds the name it enrolled the school under)."""
        return cls(declaration.signing_key, declaration.uai, name, declaration.cohort, declaration.declared_at,
                   declaration.signature)

    def declaration_for(self, campaign_id: str) -> CohortDeclaration | None:
        if self.declaration is None:
            return None
        return CohortDeclaration(campaign_id, self.uai, self.cohort, self.declared_at, self.signing_key, self.declaration)

    def declared_by_itself(self, campaign_id: str) -> bool:
        """Whether this school signed this very cohort (and UAI) for this campaign."""
        found = self.declaration_for(campaign_id)
        return found is not None and found.valid()

    @property
    def node_id(self) -> str:
        return node_id(self.signing_key)


@dataclass(frozen=True, slots=True)
class PoolDefinition(Message):
    """Who pools which campaign's results, with which threshold; signed by the district.

    When the district has a parent (académie), the parent countersigns the same body,
    so a district cannot invent schools without a second authority seeing them.
    """

    TYPE: ClassVar[int] = 1
    SCHEMA: ClassVar[tuple] = (
        (1, "campaign_id", "doc"),
        (2, "pool_id", "bytes"),
        (3, "threshold", "uint"),
        (4, "vector_length", "uint"),
        (5, "district_key", "key"),
        (6, "members", Member),
        (7, "signature", "sig"),
        (8, "parent_key", "key?"),
        (9, "countersignature", "sig?"),
    )
    campaign_id: str
    pool_id: bytes
    threshold: int
    vector_length: int
    district_key: bytes
    members: tuple[Member, ...]
    signature: bytes
    parent_key: bytes | None = None
    countersignature: bytes | None = None

    def __post_init__(self):
        Message.__post_init__(self)
        _pool_id(self.pool_id)
        _need(1 <= len(self.members) <= MAX_MEMBERS, f"a pool has 1 to {MAX_MEMBERS} members")
        _need(1 <= self.threshold <= len(self.members), "a pool's threshold is between 1 and its number of members")
        _need(1 <= self.vector_length <= MAX_VECTOR, f"a pool's vector has 1 to {MAX_VECTOR} entries")
        keys = [m.signing_key for m in self.members]
        _need(len(set(keys)) == len(keys), "a school appears twice in the pool")
        _need(len({m.uai for m in self.members}) == len(keys), "a UAI appears twice in the pool")
        _need((self.parent_key is None) == (self.countersignature is None), "a countersignature comes with its parent key")

    @classmethod
    def create(cls, district: Identity, *, campaign_id: str, pool_id: bytes, threshold: int, vector_length: int,
               members: tuple[Member, ...] | list[Member]) -> "PoolDefinition":
        unsigned = cls(campaign_id, pool_id, threshold, vector_length, district.signing_key, tuple(members), b"\x00" * 64)
        return cls(campaign_id, pool_id, threshold, vector_length, district.signing_key, tuple(members),
                   district.sign(LABEL_POOL, unsigned.signed_body()))

    def countersigned(self, parent: Identity) -> "PoolDefinition":
        return PoolDefinition(self.campaign_id, self.pool_id, self.threshold, self.vector_length, self.district_key,
                              self.members, self.signature, parent.signing_key,
                              parent.sign(LABEL_POOL_COUNTERSIGN, self.signed_body()))

    def signed_body(self) -> bytes:
        return encode_fields([item for item in self._items() if item[0] <= 6])

    @property
    def digest(self) -> bytes:
        """What every round's signature and key derivation is bound to."""
        return _pool_digest(self)

    @property
    def n(self) -> int:
        return len(self.members)

    def index_of(self, signing_key: bytes) -> int | None:
        for i, m in enumerate(self.members, 1):
            if m.signing_key == signing_key:
                return i
        return None

    def smallest_surviving_cohort(self) -> int:
        """Fewest declared pupils any set of `threshold` members can hold: the t smallest cohorts."""
        return sum(sorted(m.cohort for m in self.members)[:self.threshold])


@functools.lru_cache(maxsize=256)
def _pool_digest(pool: PoolDefinition) -> bytes:
    # Every round uses it many times; a pool is immutable and hashable, so encode it once.
    return crypto.labelled_hash(LABEL_POOL_DIGEST, pool.signed_body())


# --- round messages -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AdvertiseKeys(Message):
    """Round 0, member -> district -> all: my two X25519 public keys for this pool, signed.

    c_pk encrypts the shares sent to me; s_pk agrees the pairwise masks.
    """

    TYPE: ClassVar[int] = 2
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "sender", "uint"), (3, "c_pk", "key"), (4, "s_pk", "key"), (5, "signature", "sig"))
    pool_id: bytes
    sender: int
    c_pk: bytes
    s_pk: bytes
    signature: bytes

    def __post_init__(self):
        _pool_id(self.pool_id)
        _index(self.sender, "advertise keys")

    def signed_part(self, pool_digest: bytes) -> bytes:
        return pool_digest + self.sender.to_bytes(2, "big") + self.c_pk + self.s_pk

    def verify(self, pool: PoolDefinition) -> bool:
        return self.sender <= pool.n and verify_signature(
            pool.members[self.sender - 1].signing_key, LABEL_KEYS, self.signed_part(pool.digest), self.signature)


@dataclass(frozen=True, slots=True)
class KeysBroadcast(Message):
    """Round 0, district -> each member: the adverts it collected (the set U1)."""

    TYPE: ClassVar[int] = 3
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "adverts", AdvertiseKeys))
    pool_id: bytes
    adverts: tuple[AdvertiseKeys, ...]

    def __post_init__(self):
        _pool_id(self.pool_id)
        _member_set(tuple(a.sender for a in self.adverts), "keys broadcast")


@dataclass(frozen=True, slots=True)
class EncryptedShare(Message):
    """Shares of one member's s_sk and self-mask seed, encrypted to another member.

    `member` is the recipient in ShareKeys and the sender in RoutedShares.
    """

    SCHEMA: ClassVar[tuple] = ((1, "member", "uint"), (2, "ciphertext", "bytes"))
    member: int
    ciphertext: bytes

    def __post_init__(self):
        _index(self.member, "encrypted share")
        _need(len(self.ciphertext) == SHARE_CIPHERTEXT, f"an encrypted share is {SHARE_CIPHERTEXT} bytes")


@dataclass(frozen=True, slots=True)
class ShareKeys(Message):
    """Round 1, member -> district: one encrypted share pair per other member of U1."""

    TYPE: ClassVar[int] = 4
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "sender", "uint"), (3, "shares", EncryptedShare))
    pool_id: bytes
    sender: int
    shares: tuple[EncryptedShare, ...]

    def __post_init__(self):
        _pool_id(self.pool_id)
        _index(self.sender, "share keys")
        _member_set(tuple(s.member for s in self.shares), "share keys")


@dataclass(frozen=True, slots=True)
class RoutedShares(Message):
    """Round 1, district -> one member: the shares addressed to it (their senders are U2)."""

    TYPE: ClassVar[int] = 5
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "recipient", "uint"), (3, "shares", EncryptedShare))
    pool_id: bytes
    recipient: int
    shares: tuple[EncryptedShare, ...]

    def __post_init__(self):
        _pool_id(self.pool_id)
        _index(self.recipient, "routed shares")
        _member_set(tuple(s.member for s in self.shares), "routed shares")


@dataclass(frozen=True, slots=True)
class MaskedInput(Message):
    """Round 2, member -> district: its vector plus masks, little-endian uint32 entries."""

    TYPE: ClassVar[int] = 6
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "sender", "uint"), (3, "masked", "bytes"))
    pool_id: bytes
    sender: int
    masked: bytes

    def __post_init__(self):
        _pool_id(self.pool_id)
        _index(self.sender, "masked input")
        _need(0 < len(self.masked) <= 4 * MAX_VECTOR and len(self.masked) % 4 == 0, "a masked input is whole 32-bit entries")


@dataclass(frozen=True, slots=True)
class ConsistencyRequest(Message):
    """Round 3, district -> each survivor: the set U3 of members whose masked input it holds."""

    TYPE: ClassVar[int] = 7
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "survivors", "uint*"))
    pool_id: bytes
    survivors: tuple[int, ...]

    def __post_init__(self):
        _pool_id(self.pool_id)
        _member_set(self.survivors, "consistency request")


@dataclass(frozen=True, slots=True)
class ConsistencySignature(Message):
    """Round 3, member -> district: my signature over (pool, U3)."""

    TYPE: ClassVar[int] = 8
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "sender", "uint"), (3, "signature", "sig"))
    pool_id: bytes
    sender: int
    signature: bytes

    def __post_init__(self):
        _pool_id(self.pool_id)
        _index(self.sender, "consistency signature")


def survivors_message(pool_digest: bytes, survivors) -> bytes:
    return pool_digest + member_set_bytes(survivors)


@dataclass(frozen=True, slots=True)
class MemberSignature(Message):
    SCHEMA: ClassVar[tuple] = ((1, "member", "uint"), (2, "signature", "sig"))
    member: int
    signature: bytes

    def __post_init__(self):
        _index(self.member, "member signature")


@dataclass(frozen=True, slots=True)
class UnmaskRequest(Message):
    """Round 4, district -> each signer: U3, the dropped members D = U2 minus U3, and U3's signatures."""

    TYPE: ClassVar[int] = 9
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "survivors", "uint*"), (3, "dropped", "uint*"), (4, "signatures", MemberSignature))
    pool_id: bytes
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    signatures: tuple[MemberSignature, ...]

    def __post_init__(self):
        _pool_id(self.pool_id)
        _member_set(self.survivors, "unmask request")
        _member_set(self.dropped, "unmask request")
        _member_set(tuple(s.member for s in self.signatures), "unmask request")


@dataclass(frozen=True, slots=True)
class RevealedShare(Message):
    SCHEMA: ClassVar[tuple] = ((1, "member", "uint"), (2, "share", "bytes"))
    member: int
    share: bytes

    def __post_init__(self):
        _index(self.member, "revealed share")
        _need(shamir.decode_share(self.share) is not None, f"a share is a field element in {shamir.SHARE_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class UnmaskShares(Message):
    """Round 4, member -> district: shares of b for survivors, of s_sk for the dropped; never both for one member."""

    TYPE: ClassVar[int] = 10
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "sender", "uint"), (3, "self_mask_shares", RevealedShare), (4, "key_shares", RevealedShare))
    pool_id: bytes
    sender: int
    self_mask_shares: tuple[RevealedShare, ...]
    key_shares: tuple[RevealedShare, ...]

    def __post_init__(self):
        _pool_id(self.pool_id)
        _index(self.sender, "unmask shares")
        b = tuple(s.member for s in self.self_mask_shares)
        k = tuple(s.member for s in self.key_shares)
        _member_set(b, "unmask shares")
        _member_set(k, "unmask shares")
        _need(not set(b) & set(k), "unmask shares: never both shares of one member", code="both_shares")


MAX_REASON_PARAMS = 8
MAX_PARAM_VALUE = 1000


def _word(value: str, limit: int) -> bool:
    """A code or a parameter's name: lower-case ASCII letters, digits and "_", 1-`limit` of them."""
    return 0 < len(value) <= limit and value.isascii() and all(c.islower() or c.isdigit() or c == "_" for c in value) \
        and value[0].isalpha()


@dataclass(frozen=True, slots=True)
class ReasonParam(Message):
    """One value of a refusal's words (a school's name, a list of UAIs...): the receiver puts it in its own sentence."""

    SCHEMA: ClassVar[tuple] = ((1, "name", "str"), (2, "value", "str"))
    name: str
    value: str

    def __post_init__(self):
        _need(_word(self.name, 32), "a reason's parameter is named by 1-32 lower-case letters, digits or _")
        _need(len(self.value) <= MAX_PARAM_VALUE and self.value.isprintable(),
              f"a reason's parameter is at most {MAX_PARAM_VALUE} printable characters")


@dataclass(frozen=True, slots=True)
class PoolAborted(Message):
    """District -> members: the pool failed (fewer than t left); nothing will be unmasked. Also the académie's
    refusal to countersign a district's pool.

    `reason` is English for the logs; `code` (with `params`) is what the receiver says to people, in their own
    language, from its catalog. Both are optional on the wire's side of an old sender: a message without a code
    still decodes (the receiver then has the English only).
    """

    TYPE: ClassVar[int] = 11
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "reason", "str"), (3, "code", "str?"),
                               (4, "params", ReasonParam))
    pool_id: bytes
    reason: str
    code: str | None = None
    params: tuple[ReasonParam, ...] = ()

    def __post_init__(self):
        _pool_id(self.pool_id)
        _need(self.code is None or _word(self.code, 64), "a reason's code is 1-64 lower-case letters, digits or _")
        _need(len(self.params) <= MAX_REASON_PARAMS, f"a reason has at most {MAX_REASON_PARAMS} parameters")
        names = [p.name for p in self.params]
        _need(len(set(names)) == len(names), "a reason names each parameter once")

    @classmethod
    def because(cls, pool_id: bytes, reason: str, code: str, params: dict[str, object] | None = None) -> "PoolAborted":
        """The message for a refusal with its code; over-long text is cut (the English to 500 characters)."""
        values = tuple(ReasonParam(k, _cut(str(v), MAX_PARAM_VALUE)) for k, v in sorted((params or {}).items()))
        return cls(pool_id, _cut(reason, 500), code, values)

    def param_dict(self) -> dict[str, str]:
        return {p.name: p.value for p in self.params}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class PoolFinished(Message):
    """District -> members: the sum is known (over `survivors`); members may forget their pool state."""

    TYPE: ClassVar[int] = 12
    SCHEMA: ClassVar[tuple] = ((1, "pool_id", "bytes"), (2, "survivors", "uint*"))
    pool_id: bytes
    survivors: tuple[int, ...]

    def __post_init__(self):
        _pool_id(self.pool_id)
        _member_set(self.survivors, "pool finished")


TYPES: dict[int, type[Message]] = {cls.TYPE: cls for cls in (
    PoolDefinition, AdvertiseKeys, KeysBroadcast, ShareKeys, RoutedShares, MaskedInput, ConsistencyRequest,
    ConsistencySignature, UnmaskRequest, UnmaskShares, PoolAborted, PoolFinished, CohortDeclaration,
)}


def encode(msg: Message) -> bytes:
    return encode_varint(VERSION) + msg.encode()


def decode(buf: bytes | memoryview) -> Message:
    """A secure-aggregation message, or RemoteProtocolError."""
    version, pos = decode_varint(buf, 0)
    if version != VERSION:
        raise RemoteProtocolError(f"secure aggregation version {version} is not spoken here; upgrade this node", code="unsupported_version")
    mtype, pos = decode_varint(buf, pos)
    cls = TYPES.get(mtype)
    if cls is None:
        raise RemoteProtocolError(f"unknown secure aggregation message type {mtype}", code="unknown_message")
    return cls.decode_body(memoryview(buf)[pos:])
