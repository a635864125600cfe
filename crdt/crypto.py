"""Every call into the crypto library, as small pure functions.

Signatures are bound to a purpose label, so a signature made for one purpose
can never be replayed as another.
"""
from __future__ import annotations

import functools

from nacl.signing import SigningKey, VerifyKey

from .errors import CrdtUsageError

RELEASE_SIGNATURE = b"preau/v1/release-signature"


def signing_key(key: bytes | SigningKey) -> SigningKey:
    """Accept a 32-byte Ed25519 seed or a nacl SigningKey."""
    if isinstance(key, SigningKey):
        return key
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return SigningKey(bytes(key))
    raise CrdtUsageError("a signing key must be a 32-byte Ed25519 seed or a nacl SigningKey")


def public_key(key: bytes | SigningKey) -> bytes:
    return bytes(signing_key(key).verify_key)


def sign(key: bytes | SigningKey, label: bytes, message: bytes) -> bytes:
    return signing_key(key).sign(label + b"\x00" + message).signature


def verify(owner: bytes, label: bytes, message: bytes, signature: bytes) -> bool:
    if not all(isinstance(v, (bytes, bytearray)) for v in (owner, message, signature)):
        return False  # a bad type: not verified
    if len(owner) != 32 or len(signature) != 64:
        return False
    return _verified(bytes(owner), label, bytes(message), bytes(signature))


@functools.lru_cache(maxsize=256)
def _verified(owner: bytes, label: bytes, message: bytes, signature: bytes) -> bool:
    """The check itself, remembered by value: a signed release is checked when offered, then again with its
    document (`verify_release`); the answer for the same four values never changes."""
    try:
        VerifyKey(owner).verify(label + b"\x00" + message, signature)
    except Exception:  # a bad signature or a key off the curve (both BadSignatureError): not verified
        return False
    return True
