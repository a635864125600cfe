"""Node identities: an Ed25519 signing key with an X25519 Noise key bound to it.

Why two keys: Ed25519 signs documents and is what peers pin; the Noise
handshake needs X25519. Rather than reuse one key in two algorithms, the
X25519 key is derived from the same 32-byte seed under its own purpose label,
and an Ed25519 signature ("binding") proves it belongs to the signing key.

The node id is what people read aloud to compare: 28 base32 characters of a
labelled hash of the signing key (140 bits), in 4 groups of 7, each followed
by a Luhn mod 32 check character, as Syncthing device ids do.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

from . import crypto
from .errors import LocalProtocolError, RemoteProtocolError
from .wire import Message

LABEL_NOISE_STATIC = b"preau/v1/noise-static"
LABEL_BINDING = b"preau/v1/static-binding"
LABEL_NODE_ID = b"preau/v1/node-id"
LABEL_ROTATION = b"preau/v1/key-rotation"
LABEL_KEY_FILE = b"preau/v1/key-file"
KEY_FILE_MAGIC = "preau-key/1"
HEX = frozenset("0123456789abcdefABCDEF")
MAX_ROTATIONS = 8  # statements in one chain: a node that rotated more often than this before syncing enrols again
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _luhn32(chars: str) -> str:
    """Luhn mod N check character (N = 32) of base32 characters."""
    factor, total = 2, 0
    for ch in reversed(chars):
        addend = factor * B32.index(ch)
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return B32[(32 - total % 32) % 32]


def node_id(signing_key: bytes) -> str:
    digest = crypto.labelled_hash(LABEL_NODE_ID, signing_key, digest_size=20)
    text = base64.b32encode(digest).decode("ascii")[:28]
    return "-".join(text[i:i + 7] + _luhn32(text[i:i + 7]) for i in range(0, 28, 7))


def parse_node_id(text: str) -> str:
    """Canonical form of a node id typed by a person, or an error naming the faulty group."""
    raw = "".join(ch for ch in str(text).upper() if ch not in " -")
    if len(raw) != 32 or any(ch not in B32 for ch in raw):
        raise LocalProtocolError(
            f"{text!r} is not a node id: expected 32 letters and digits 2-7 in 4 groups, as shown by `preau id`",
            code="invalid_node_id",
        )
    groups = [raw[i:i + 8] for i in range(0, 32, 8)]
    for n, g in enumerate(groups, 1):
        if _luhn32(g[:7]) != g[7]:
            raise LocalProtocolError(f"node id group {n} ({g}) fails its check: a character is mistyped", code="invalid_node_id")
    return "-".join(groups)


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """What a peer knows and pins about a node."""

    signing_key: bytes
    static_key: bytes

    def __post_init__(self):
        if len(self.signing_key) != 32 or len(self.static_key) != 32:
            raise LocalProtocolError("public keys are 32 bytes each", code="invalid_key")

    @property
    def node_id(self) -> str:
        return node_id(self.signing_key)

    def binding_message(self) -> bytes:
        return LABEL_BINDING + self.signing_key + self.static_key

    def verify_binding(self, signature: bytes) -> bool:
        return crypto.ed25519_verify(self.signing_key, self.binding_message(), signature)


class Identity:
    """A node's private keys, all derived from one 32-byte seed the node stores (mode 0600)."""

    __slots__ = ("seed", "signing_key", "_sign_sk", "static_private", "public", "binding")

    def __init__(self, seed: bytes):
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise LocalProtocolError("an identity seed is 32 random bytes", code="invalid_key")
        self.seed = seed
        self.signing_key, self._sign_sk = crypto.ed25519_keypair(seed)
        self.static_private = crypto.labelled_hash(LABEL_NOISE_STATIC, b"", key=seed, digest_size=32)
        self.public = PublicIdentity(self.signing_key, crypto.x25519_public(self.static_private))
        self.binding = crypto.ed25519_sign(self._sign_sk, self.public.binding_message())

    def __repr__(self) -> str:  # never print the seed
        return f"Identity({self.public.node_id})"

    @property
    def node_id(self) -> str:
        return self.public.node_id

    def sign(self, label: bytes, message: bytes) -> bytes:
        """Sign under a purpose label, so a signature made for one purpose is useless for another."""
        if not label.startswith(b"preau/"):
            raise LocalProtocolError("signature labels start with b'preau/'", code="invalid_label")
        return crypto.ed25519_sign(self._sign_sk, len(label).to_bytes(2, "big") + label + message)

    def rotate(self, new_seed: bytes) -> tuple["Identity", bytes]:
        """A new identity and the statement (signed by this one) that peers accept to move their pin."""
        new = Identity(new_seed)
        statement = RotationStatement(
            old_signing_key=self.signing_key,
            new_signing_key=new.signing_key,
            new_static_key=new.public.static_key,
            new_binding=new.binding,
            signature=b"\x00" * 64,
        )
        sig = self.sign(LABEL_ROTATION, statement.signed_part())
        return new, RotationStatement(statement.old_signing_key, statement.new_signing_key, statement.new_static_key, statement.new_binding, sig).encode_body()


def verify_signature(signing_key: bytes, label: bytes, message: bytes, signature: bytes) -> bool:
    return crypto.ed25519_verify(signing_key, len(label).to_bytes(2, "big") + label + message, signature)


@dataclass(frozen=True, slots=True)
class RotationStatement(Message):
    SCHEMA = ((1, "old_signing_key", "key"), (2, "new_signing_key", "key"), (3, "new_static_key", "key"), (4, "new_binding", "sig"), (5, "signature", "sig"))
    old_signing_key: bytes
    new_signing_key: bytes
    new_static_key: bytes
    new_binding: bytes
    signature: bytes

    def signed_part(self) -> bytes:
        return self.old_signing_key + self.new_signing_key + self.new_static_key + self.new_binding

    @property
    def new_identity(self) -> PublicIdentity:
        return PublicIdentity(self.new_signing_key, self.new_static_key)

    @classmethod
    def verify(cls, raw: bytes) -> "RotationStatement":
        """Decode and check both signatures, or raise RemoteProtocolError(code="bad_rotation")."""
        st = cls.decode_body(raw)
        if not st.new_identity.verify_binding(st.new_binding):
            raise RemoteProtocolError("key rotation: the new Noise key is not bound to the new signing key", code="bad_rotation")
        if not verify_signature(st.old_signing_key, LABEL_ROTATION, st.signed_part(), st.signature):
            raise RemoteProtocolError("key rotation: not signed by the old key; the peer must enrol again", code="bad_rotation")
        return st


def verify_chain(raws, *, ends_at: PublicIdentity | None = None) -> tuple[RotationStatement, ...]:
    """Check a chain of rotation statements, oldest first: each one valid, each moving on from the key the
    previous one moved to, and (when `ends_at` is given) the last one naming that identity.

    A node that rotated twice before its peer heard of the first rotation presents the whole chain, so the
    peer can follow it from the key it pins. Raises RemoteProtocolError(code="bad_rotation").
    """
    raws = tuple(raws)
    if not raws:
        raise RemoteProtocolError("key rotation: an empty chain of statements", code="bad_rotation")
    if len(raws) > MAX_ROTATIONS:
        raise RemoteProtocolError(
            f"key rotation: a chain of {len(raws)} rotations (at most {MAX_ROTATIONS}); the node must enrol again",
            code="bad_rotation")
    chain = tuple(RotationStatement.verify(raw) for raw in raws)
    for before, after in zip(chain, chain[1:]):
        if after.old_signing_key != before.new_signing_key:
            raise RemoteProtocolError("key rotation: the statements do not follow one another", code="bad_rotation")
    if ends_at is not None and chain[-1].new_identity != ends_at:
        raise RemoteProtocolError("key rotation: the chain does not end at the key presented", code="bad_rotation")
    return chain


@dataclass(frozen=True, slots=True)
class RetiredIdentity:
    """A key this node rotated away from and still answers with during the overlap period, and the statement
    (signed by it) that moves a peer's pin on to the next key.

    A district that rotates cannot tell its schools first: they connect to the key they pin (Noise XK needs
    the responder's key before the first message). So for a while it keeps the old private key, answers a
    handshake addressed to it, and announces the rotation in that session.
    """

    identity: Identity
    statement: bytes

    def __post_init__(self):
        st = RotationStatement.verify(self.statement)
        if st.old_signing_key != self.identity.signing_key:
            raise LocalProtocolError("a retired identity's statement must be signed by that identity", code="invalid_key")

    @property
    def next_signing_key(self) -> bytes:
        return RotationStatement.decode_body(self.statement).new_signing_key


def retired_chain(retired, current: Identity) -> tuple[RetiredIdentity, ...]:
    """Order retired identities into the chain that leads to `current` (oldest first), or raise
    LocalProtocolError when they do not form one (a key file from another node, a missing link)."""
    retired = tuple(retired)
    by_next = {r.next_signing_key: r for r in retired}
    if len(by_next) != len(retired):
        raise LocalProtocolError("two retired keys rotate to the same key", code="invalid_key")
    chain: list[RetiredIdentity] = []
    key = current.signing_key
    while key in by_next:
        r = by_next.pop(key)
        chain.append(r)
        key = r.identity.signing_key
        if len(chain) > MAX_ROTATIONS:
            raise LocalProtocolError(f"more than {MAX_ROTATIONS} retired keys", code="invalid_key")
    if by_next:
        raise LocalProtocolError("a retired key does not lead to this node's current key", code="invalid_key")
    return tuple(reversed(chain))


# --- the key file ---------------------------------------------------------------------

class KeyFileError(LocalProtocolError):
    """A key file that cannot be trusted. `reason`: "binary", "empty", "truncated", "syntax" or "checksum"."""

    code = "key_file_damaged"

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


def key_file_checksum(seed: bytes) -> bytes:
    return crypto.labelled_hash(LABEL_KEY_FILE, seed, digest_size=4)


def encode_key_file(seed: bytes) -> bytes:
    """`preau-key/1 <seed hex> <checksum hex>`: one line a person can copy, with a checksum that catches a changed digit."""
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise LocalProtocolError("an identity seed is 32 random bytes", code="invalid_key")
    return f"{KEY_FILE_MAGIC} {seed.hex()} {key_file_checksum(seed).hex()}\n".encode("ascii")


def decode_key_file(data: bytes) -> tuple[bytes, bool]:
    """(seed, legacy) from a key file's bytes; legacy means the old form without checksum (64 hex digits alone).

    Raises KeyFileError saying what is wrong; the caller names the file and says how to restore it.
    """
    try:
        text = bytes(data).decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError("it is not a Préau key file (it holds binary data)", reason="binary") from None
    if any(not ch.isprintable() and not ch.isspace() for ch in text):
        raise KeyFileError("it is not a Préau key file (it holds binary data)", reason="binary")
    parts = text.split()
    if not parts:
        raise KeyFileError("it is empty", reason="empty")
    if parts[0] != KEY_FILE_MAGIC:
        magic, _, version = parts[0].partition("/")
        if magic == KEY_FILE_MAGIC.split("/")[0] and version.isdigit() and int(version) > 1:
            # After a downgrade (or a restore on an older box): not damage, a format this version cannot read.
            raise KeyFileError(f"it was written by a newer Préau ({parts[0]})", reason="newer")
        if len(parts) == 1 and KEY_FILE_MAGIC.startswith(parts[0]):
            raise KeyFileError("it is cut short", reason="truncated")
        if len(parts) == 1 and all(ch in HEX for ch in parts[0]):
            if len(parts[0]) != 64:
                raise KeyFileError(f"it holds {len(parts[0])} hex digits where 64 are expected (cut short or damaged)",
                                   reason="truncated")
            return bytes.fromhex(parts[0]), True
        raise KeyFileError(f"it does not start with {KEY_FILE_MAGIC!r}", reason="syntax")
    if len(parts) > 3:
        raise KeyFileError("it holds more than a key and its checksum", reason="syntax")
    if any(ch not in HEX for part in parts[1:] for ch in part):
        raise KeyFileError("it holds characters that are not hex digits", reason="syntax")
    if len(parts) < 3 or len(parts[1]) < 64 or len(parts[2]) < 8:
        raise KeyFileError("it is cut short", reason="truncated")
    if len(parts[1]) > 64 or len(parts[2]) > 8:
        raise KeyFileError("its key or checksum is longer than it should be", reason="syntax")
    seed, check = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    if not crypto.constant_time_equal(key_file_checksum(seed), check):
        raise KeyFileError("its checksum does not match: the key was changed or damaged", reason="checksum")
    return seed, False
