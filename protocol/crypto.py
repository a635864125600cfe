"""Every call into libsodium (through pynacl's bindings) sits here, as pure functions.

Nothing here reads randomness: private keys and seeds come from the caller.
Errors from libsodium are turned into `CryptoFailure`, which the layers above
translate into a `RemoteProtocolError` with a code.
"""
from __future__ import annotations

import hashlib
import hmac as _hmac

from nacl import bindings as _b
from nacl._sodium import ffi as _ffi, lib as _lib  # pynacl's own cffi module, for writing into buffers
from nacl.exceptions import CryptoError as _NaclCryptoError

DHLEN = 32
HASHLEN = 64
BLOCKLEN = 128
KEYLEN = 32
TAGLEN = 16
MAX_NONCE = 2**64 - 1


class CryptoFailure(Exception):
    """Authentication failed or a public key was unusable (low order point)."""


# --- X25519 ---------------------------------------------------------------

def x25519_public(private: bytes) -> bytes:
    return _b.crypto_scalarmult_base(private)


def x25519(private: bytes, public: bytes) -> bytes:
    """Diffie-Hellman; refuses a peer key that yields the all-zero secret (libsodium's check)."""
    try:
        return _b.crypto_scalarmult(private, public)
    except (_NaclCryptoError, RuntimeError, ValueError, TypeError) as exc:
        raise CryptoFailure("unusable X25519 public key") from exc


# --- ChaCha20-Poly1305 (IETF), with Noise's nonce encoding ------------------

def _nonce(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


def aead_encrypt(key: bytes, n: int, ad: bytes, plaintext: bytes) -> bytes:
    return _b.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, _nonce(n), key)


def aead_decrypt(key: bytes, n: int, ad: bytes, ciphertext: bytes) -> bytes:
    try:
        return _b.crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, _nonce(n), key)
    except (_NaclCryptoError, ValueError, TypeError) as exc:
        raise CryptoFailure("authentication failed") from exc


def aead_encrypt_into(key: bytes, n: int, ad: bytes, plaintext, out: bytearray, offset: int) -> int:
    """Encrypt `plaintext` (any buffer) straight into out[offset:]; returns the bytes written.

    pynacl's wrapper allocates and zeroes a buffer and copies the result out;
    for 64 KiB frames those copies cost as much as the cipher.
    """
    mlen = len(plaintext)
    if len(key) != KEYLEN or len(out) < offset + mlen + TAGLEN:
        raise ValueError("bad key or output buffer too small")
    clen = _ffi.new("unsigned long long *")
    # Buffers are released on leaving the block: a buffer export left to the garbage collector
    # (say, held by a traceback in a reference cycle) can crash the interpreter.
    with _ffi.from_buffer("unsigned char[]", out, require_writable=True) as dst, _ffi.from_buffer("unsigned char[]", plaintext) as src:
        rc = _lib.crypto_aead_chacha20poly1305_ietf_encrypt(dst + offset, clen, src, mlen, ad, len(ad), _ffi.NULL, _nonce(n), key)
    if rc != 0:
        raise CryptoFailure("encryption failed")
    return int(clen[0])


def aead_decrypt_into(key: bytes, n: int, ad: bytes, ciphertext, out: bytearray, offset: int) -> int:
    """Decrypt straight into out[offset:]; returns the plaintext length. libsodium checks the tag first."""
    mlen = len(ciphertext) - TAGLEN
    if mlen < 0:
        raise CryptoFailure("authentication failed")
    if len(key) != KEYLEN or len(out) < offset + mlen:
        raise ValueError("bad key or output buffer too small")
    written = _ffi.new("unsigned long long *")
    with _ffi.from_buffer("unsigned char[]", out, require_writable=True) as dst, _ffi.from_buffer("unsigned char[]", ciphertext) as src:
        rc = _lib.crypto_aead_chacha20poly1305_ietf_decrypt(dst + offset, written, _ffi.NULL, src, len(ciphertext), ad, len(ad), _nonce(n), key)
    if rc != 0:
        raise CryptoFailure("authentication failed")
    return int(written[0])


def aead_raw_nonce_encrypt(key: bytes, nonce12: bytes, ad: bytes, plaintext: bytes) -> bytes:
    """Bare libsodium, for the benchmark's baseline only."""
    return _b.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, nonce12, key)


def aead_raw_nonce_decrypt(key: bytes, nonce12: bytes, ad: bytes, ciphertext: bytes) -> bytes:
    return _b.crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, nonce12, key)


# --- BLAKE2b, HMAC, HKDF (Noise spec section 4.3) ---------------------------

def blake2b(data: bytes, *, digest_size: int = HASHLEN, key: bytes = b"") -> bytes:
    # Python's own BLAKE2b (the reference C code) computes what libsodium's generichash does, without
    # the wrapper's per-call overhead; the Noise vectors check both agree on every hash of the handshake.
    return hashlib.blake2b(data, digest_size=digest_size, key=key).digest()


def labelled_hash(label: bytes, data: bytes, *, digest_size: int = 32, key: bytes = b"") -> bytes:
    """A hash bound to a purpose label, so no digest can be replayed as another kind."""
    return blake2b(len(label).to_bytes(2, "big") + label + data, digest_size=digest_size, key=key)


def hmac_blake2b(key: bytes, data: bytes) -> bytes:
    """HMAC (RFC 2104) over BLAKE2b-512 with a 128-byte block, as the Noise spec defines it.

    The standard library's `hmac` (block size taken from hashlib.blake2b: 128 bytes) is an
    implementation we did not write; the Noise vectors pin its output.
    """
    return _hmac.new(key, data, hashlib.blake2b).digest()


def hkdf(chaining_key: bytes, input_key_material: bytes, outputs: int) -> tuple[bytes, ...]:
    temp = hmac_blake2b(chaining_key, input_key_material)
    out1 = hmac_blake2b(temp, b"\x01")
    out2 = hmac_blake2b(temp, out1 + b"\x02")
    if outputs == 2:
        return out1, out2
    out3 = hmac_blake2b(temp, out2 + b"\x03")
    return out1, out2, out3


# --- Ed25519 -----------------------------------------------------------------

def ed25519_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """(public key, libsodium secret key) from a 32-byte seed."""
    return _b.crypto_sign_seed_keypair(seed)


def ed25519_sign(secret_key: bytes, message: bytes) -> bytes:
    return _b.crypto_sign(message, secret_key)[:64]


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        _b.crypto_sign_open(signature + message, public_key)
    except (_NaclCryptoError, ValueError, TypeError, RuntimeError):
        return False
    return True


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return len(a) == len(b) and _b.sodium_memcmp(a, b)


# --- SPAKE2 (the short join code's PAKE) -----------------------------------------

def _entropy(random: bytes):
    """A deterministic randomness source for python-spake2, expanded from the caller's bytes (pure)."""
    if len(random) < 32:
        raise ValueError("SPAKE2 needs at least 32 random bytes")
    counter = [0]

    def draw(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += blake2b(counter[0].to_bytes(8, "big"), key=random[:64])
            counter[0] += 1
        return out[:n]
    return draw


def spake2_start(side: str, password: bytes, id_school: bytes, id_district: bytes, random: bytes):
    """One side of SPAKE2 over Ed25519 (python-spake2, the implementation magic-wormhole uses).

    `side` is "school" (SPAKE2's A) or "district" (B). Returns (state, the 33-byte message to send).
    The state is used once, by `spake2_finish`.
    """
    import spake2  # imported here: only enrolment by short code needs it

    cls = spake2.SPAKE2_A if side == "school" else spake2.SPAKE2_B
    state = cls(password, idA=id_school, idB=id_district, entropy_f=_entropy(random))
    return state, state.start()


def spake2_finish(state, inbound: bytes) -> bytes:
    """The 32-byte SPAKE2 key; a message that is not a point of the group (or is our own, reflected) fails."""
    from spake2 import SPAKEError
    from spake2.ed25519_basic import NotOnCurve

    try:
        return state.finish(bytes(inbound))
    except (SPAKEError, NotOnCurve, ValueError, TypeError, AssertionError, IndexError) as exc:
        raise CryptoFailure("unusable SPAKE2 message") from exc


# --- ChaCha20 keystream (secure aggregation's mask generator) -----------------

def chacha20_stream(key: bytes, nonce12: bytes, length: int) -> bytes:
    """`length` bytes of the ChaCha20 (RFC 8439) keystream, block counter starting at 1.

    pynacl 1.6 binds no bare crypto_stream_chacha20 (pyca/pynacl PR #604 is still open), so
    this encrypts zeros with ChaCha20-Poly1305 (IETF), whose ciphertext is the plaintext XOR the
    stream from counter 1 (RFC 8439 section 2.8), and drops the tag. RFC 8439 section 2.4.2's
    vector pins it (tests/protocol/test_secagg_primitives.py).
    """
    if len(key) != KEYLEN or len(nonce12) != 12 or length < 0:
        raise ValueError("ChaCha20 takes a 32-byte key and a 12-byte nonce")
    return _b.crypto_aead_chacha20poly1305_ietf_encrypt(bytes(length), b"", nonce12, key)[:length]
