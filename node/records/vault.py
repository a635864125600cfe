"""Every call into the crypto library made by storage, as small pure functions.

Keys are 32 random bytes; every derived key and every ciphertext is bound to a
purpose label (and, for stored fields, to the row it belongs to) through the
AEAD's associated data, so a ciphertext cannot be moved to another row or
reused for another purpose without failing authentication.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

import nacl.bindings as _b
import nacl.exceptions
import nacl.hash
import nacl.public
import nacl.pwhash.argon2id as _argon2id
import nacl.encoding

KEY_BYTES = 32
NONCE_BYTES = _b.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24: random nonces are safe
SALT_BYTES = _argon2id.SALTBYTES
LABEL_PREFIX = b"preau/v1/"


class DecryptError(Exception):
    """Authentication failed: wrong key, or bytes changed. Callers turn it into a person's message."""


@dataclass(frozen=True, slots=True)
class Argon2Cost:
    """Argon2id work factors; stored beside each wrapped key so the cost can change later."""

    opslimit: int
    memlimit: int

    def to_dict(self) -> dict[str, int]:
        return {"opslimit": self.opslimit, "memlimit": self.memlimit}


# Measured on this 2-core AMD EPYC: ops=3, 64 MiB takes 0.08 s (see docs/security.md).
# libsodium has no NEON path for Argon2, so a Raspberry Pi 4 class box is expected to be
# 5-10x slower, landing in the 0.3-1 s target. 64 MiB fits a 1 GiB box.
PRODUCTION_COST = Argon2Cost(opslimit=3, memlimit=64 * 1024 * 1024)
# Only for tests: the minimum libsodium accepts, so the suite stays fast.
TEST_COST = Argon2Cost(opslimit=_argon2id.OPSLIMIT_MIN, memlimit=_argon2id.MEMLIMIT_MIN)


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def random_key() -> bytes:
    return os.urandom(KEY_BYTES)


def label(purpose: str) -> bytes:
    return LABEL_PREFIX + purpose.encode()


def derive(key: bytes, purpose: str) -> bytes:
    """A subkey bound to one purpose (keyed BLAKE2b), so one secret never serves two uses."""
    return nacl.hash.blake2b(label(purpose), key=key, digest_size=KEY_BYTES, encoder=nacl.encoding.RawEncoder)


def seal(key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """XChaCha20-Poly1305 with a random nonce; `ad` names what the bytes are and where they live."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _b.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)


def open_(key: bytes, blob: bytes, ad: bytes) -> bytes:
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < NONCE_BYTES + 16:
        raise DecryptError("ciphertext too short")
    try:
        return _b.crypto_aead_xchacha20poly1305_ietf_decrypt(bytes(blob[NONCE_BYTES:]), ad, bytes(blob[:NONCE_BYTES]), key)
    except nacl.exceptions.CryptoError as exc:
        raise DecryptError("authentication failed") from exc


def kek_from_password(password: str, salt: bytes, cost: Argon2Cost) -> bytes:
    """The key-encryption key of one account: Argon2id of its password."""
    return _argon2id.kdf(KEY_BYTES, password.encode("utf-8"), salt, opslimit=cost.opslimit, memlimit=cost.memlimit)


def new_keypair() -> tuple[bytes, bytes]:
    """(secret, public) X25519 keys: lets an admin hand a class key to a teacher without their password."""
    sk = nacl.public.PrivateKey.generate()
    return bytes(sk), bytes(sk.public_key)


def public_key_of(secret_key: bytes) -> bytes:
    return bytes(nacl.public.PrivateKey(secret_key).public_key)


def seal_to(public_key: bytes, plaintext: bytes, purpose: str) -> bytes:
    """Anonymous public-key box; the purpose label travels inside and is checked on opening."""
    tag = label(purpose) + b"\x00"
    return nacl.public.SealedBox(nacl.public.PublicKey(public_key)).encrypt(tag + plaintext)


def open_sealed(secret_key: bytes, blob: bytes, purpose: str) -> bytes:
    tag = label(purpose) + b"\x00"
    try:
        out = nacl.public.SealedBox(nacl.public.PrivateKey(secret_key)).decrypt(bytes(blob))
    except nacl.exceptions.CryptoError as exc:
        raise DecryptError("authentication failed") from exc
    if not out.startswith(tag):
        raise DecryptError("sealed for another purpose")
    return out[len(tag):]


def pad(data: bytes, block: int) -> bytes:
    """Pad to a multiple of `block` (ISO/IEC 7816-4 style) so ciphertext length says nothing."""
    padded = data + b"\x80"
    return padded + b"\x00" * (-len(padded) % block)


def unpad(data: bytes) -> bytes:
    end = data.rstrip(b"\x00")
    if not end.endswith(b"\x80"):
        raise DecryptError("bad padding")
    return end[:-1]


def pseudonym(key: bytes, internal_id: str) -> str:
    """Per-school keyed pseudonym of a pupil: stable for the school, unlinkable without its key."""
    return hmac.new(key, label("pupil-pseudonym") + b"|" + internal_id.encode(), hashlib.sha256).hexdigest()[:32]


# -- recovery key ----------------------------------------------------------

_RK_CHECK = 2


def format_recovery_key(key: bytes) -> str:
    """32 key bytes + 2 check bytes in base32, grouped by 5 for writing on paper."""
    check = hashlib.blake2b(key, digest_size=_RK_CHECK, person=b"preau-rk-check").digest()
    text = base64.b32encode(key + check).decode().rstrip("=")
    return "-".join(text[i:i + 5] for i in range(0, len(text), 5))


class RecoveryKeyTypo(ValueError):
    pass


def parse_recovery_key(text: str) -> bytes:
    """Raise RecoveryKeyTypo when the text cannot be a recovery key (a typo), before trying it."""
    clean = "".join(ch for ch in str(text).upper() if ch.isalnum())
    clean = clean.replace("0", "O").replace("1", "I").replace("8", "B")
    try:
        raw = base64.b32decode(clean + "=" * (-len(clean) % 8))
    except ValueError as exc:
        raise RecoveryKeyTypo("not base32") from exc
    if len(raw) != KEY_BYTES + _RK_CHECK:
        raise RecoveryKeyTypo("wrong length")
    key, check = raw[:KEY_BYTES], raw[KEY_BYTES:]
    if hashlib.blake2b(key, digest_size=_RK_CHECK, person=b"preau-rk-check").digest() != check:
        raise RecoveryKeyTypo("check failed")
    return key


# The `argon2_profile` setting; "interactive" is the measured production cost above.
ARGON2 = {
    "interactive": PRODUCTION_COST,
    "moderate": Argon2Cost(opslimit=3, memlimit=256 * 1024 * 1024),
    "sensitive": Argon2Cost(opslimit=4, memlimit=1024 * 1024 * 1024),
    "minimal": TEST_COST,
}
