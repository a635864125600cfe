"""Key derivation, share encryption and mask expansion for secure aggregation.

Every derived key is bound to a purpose label and to the pool's digest, so keys
from one pool are useless in another even if a member reused its seed.
"""
from __future__ import annotations

import struct

from .. import crypto, shamir
from ..errors import RemoteProtocolError
from .messages import SHARE_PLAINTEXT

MODULUS = 1 << 32
LABEL_SECRET = b"preau/v1/secagg-member-secret"
LABEL_SHARE_KEY = b"preau/v1/secagg-share-key"
LABEL_PAIR_MASK = b"preau/v1/secagg-pairwise-mask"
LABEL_SELF_MASK = b"preau/v1/secagg-self-mask"
LABEL_INPUT = b"preau/v1/secagg-masked-input"
_ZERO_NONCE = bytes(12)


def member_secret(seed: bytes, pool_digest: bytes, purpose: bytes) -> bytes:
    """One of a member's secrets for one pool (c_sk, s_sk, b, coefficient keys) from its 32-byte seed."""
    return crypto.labelled_hash(LABEL_SECRET, pool_digest + purpose, key=seed)


def random_bytes(key: bytes, length: int) -> bytes:
    """Deterministic randomness expanded from a derived key (the Shamir coefficients)."""
    return crypto.chacha20_stream(key, _ZERO_NONCE, length)


def public_key(private: bytes) -> bytes:
    return crypto.x25519_public(private)


def _agree(private: bytes, public: bytes) -> bytes:
    try:
        return crypto.x25519(private, public)
    except crypto.CryptoFailure:
        raise RemoteProtocolError("a member advertised an unusable X25519 key", code="bad_key") from None


def share_key(c_sk: bytes, peer_c_pk: bytes, pool_digest: bytes) -> bytes:
    return crypto.labelled_hash(LABEL_SHARE_KEY, pool_digest + _agree(c_sk, peer_c_pk))


def _share_ad(pool_digest: bytes, sender: int, recipient: int) -> bytes:
    return pool_digest + sender.to_bytes(2, "big") + recipient.to_bytes(2, "big")


def encrypt_shares(key: bytes, pool_digest: bytes, sender: int, recipient: int, s_share: int, b_share: int) -> bytes:
    """The pair key serves both directions, so the nonce is the sender's index: each is used once per pool."""
    plaintext = sender.to_bytes(2, "big") + recipient.to_bytes(2, "big") + shamir.encode_share(s_share) + shamir.encode_share(b_share)
    return crypto.aead_encrypt(key, sender, _share_ad(pool_digest, sender, recipient), plaintext)


def decrypt_shares(key: bytes, pool_digest: bytes, sender: int, recipient: int, ciphertext: bytes) -> tuple[int, int]:
    try:
        plaintext = crypto.aead_decrypt(key, sender, _share_ad(pool_digest, sender, recipient), ciphertext)
    except crypto.CryptoFailure:
        raise RemoteProtocolError(f"the shares from member {sender} do not decrypt: altered or misaddressed", code="bad_share") from None
    s_share = shamir.decode_share(plaintext[4:4 + shamir.SHARE_BYTES])
    b_share = shamir.decode_share(plaintext[4 + shamir.SHARE_BYTES:])
    if (len(plaintext) != SHARE_PLAINTEXT or plaintext[:4] != sender.to_bytes(2, "big") + recipient.to_bytes(2, "big")
            or s_share is None or b_share is None):
        raise RemoteProtocolError(f"the shares from member {sender} are malformed", code="bad_share")
    return s_share, b_share


def expand(key: bytes, length: int) -> list[int]:
    """`length` uint32 words of the ChaCha20 stream under `key`."""
    return list(struct.unpack(f"<{length}I", crypto.chacha20_stream(key, _ZERO_NONCE, 4 * length)))


def pairwise_mask(s_sk: bytes, peer_s_pk: bytes, pool_digest: bytes, length: int) -> list[int]:
    """The mask two members share: both get it from their own s_sk and the other's s_pk."""
    return expand(crypto.labelled_hash(LABEL_PAIR_MASK, pool_digest + _agree(s_sk, peer_s_pk)), length)


def self_mask(b: bytes, pool_digest: bytes, length: int) -> list[int]:
    return expand(crypto.labelled_hash(LABEL_SELF_MASK, pool_digest + b), length)


def add(acc: list[int], mask: list[int], sign: int = 1) -> None:
    for i, m in enumerate(mask):
        acc[i] = (acc[i] + sign * m) % MODULUS


def pack(vector: list[int]) -> bytes:
    return struct.pack(f"<{len(vector)}I", *vector)


def unpack(raw: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


def pair_sign(me: int, other: int) -> int:
    """The lower index adds the pairwise mask, the higher subtracts it, so each pair cancels."""
    return 1 if me < other else -1


def input_digest(masked_input_bytes: bytes) -> bytes:
    return crypto.labelled_hash(LABEL_INPUT, masked_input_bytes)
