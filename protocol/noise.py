"""The Noise Protocol Framework (revision 34) for 25519 / ChaChaPoly / BLAKE2b.

A generic handshake-pattern machine: Préau uses only XK, but the same code
runs every fundamental, one-way, deferred and PSK pattern, so the full public
vector file checks it. Pure: ephemeral keys are passed in.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import crypto
from .crypto import CryptoFailure, HASHLEN, MAX_NONCE

SUITE = "25519_ChaChaPoly_BLAKE2b"

# Pre-messages ("initiator's", "responder's") and message patterns; "->" is
# initiator to responder. Spelling as in the Noise specification.
PATTERNS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, ...], ...]]] = {
    "N": ((), ("s",), (("e", "es"),)),
    "K": (("s",), ("s",), (("e", "es", "ss"),)),
    "X": ((), ("s",), (("e", "es", "s", "ss"),)),
    "NN": ((), (), (("e",), ("e", "ee"))),
    "NK": ((), ("s",), (("e", "es"), ("e", "ee"))),
    "NX": ((), (), (("e",), ("e", "ee", "s", "es"))),
    "KN": (("s",), (), (("e",), ("e", "ee", "se"))),
    "KK": (("s",), ("s",), (("e", "es", "ss"), ("e", "ee", "se"))),
    "KX": (("s",), (), (("e",), ("e", "ee", "se", "s", "es"))),
    "XN": ((), (), (("e",), ("e", "ee"), ("s", "se"))),
    "XK": ((), ("s",), (("e", "es"), ("e", "ee"), ("s", "se"))),
    "XX": ((), (), (("e",), ("e", "ee", "s", "es"), ("s", "se"))),
    "IN": ((), (), (("e", "s"), ("e", "ee", "se"))),
    "IK": ((), ("s",), (("e", "es", "s", "ss"), ("e", "ee", "se"))),
    "IX": ((), (), (("e", "s"), ("e", "ee", "se", "s", "es"))),
    "NK1": ((), ("s",), (("e",), ("e", "ee", "es"))),
    "NX1": ((), (), (("e",), ("e", "ee", "s"), ("es",))),
    "X1N": ((), (), (("e",), ("e", "ee"), ("s",), ("se",))),
    "X1K": ((), ("s",), (("e", "es"), ("e", "ee"), ("s",), ("se",))),
    "XK1": ((), ("s",), (("e",), ("e", "ee", "es"), ("s", "se"))),
    "X1K1": ((), ("s",), (("e",), ("e", "ee", "es"), ("s",), ("se",))),
    "X1X": ((), (), (("e",), ("e", "ee", "s", "es"), ("s",), ("se",))),
    "XX1": ((), (), (("e",), ("e", "ee", "s"), ("es", "s", "se"))),
    "X1X1": ((), (), (("e",), ("e", "ee", "s"), ("es", "s"), ("se",))),
    "K1N": (("s",), (), (("e",), ("e", "ee"), ("se",))),
    "K1K": (("s",), ("s",), (("e", "es"), ("e", "ee"), ("se",))),
    "KK1": (("s",), ("s",), (("e",), ("e", "ee", "se", "es"))),
    "K1K1": (("s",), ("s",), (("e",), ("e", "ee", "es"), ("se",))),
    "K1X": (("s",), (), (("e",), ("e", "ee", "s", "es"), ("se",))),
    "KX1": (("s",), (), (("e",), ("e", "ee", "se", "s"), ("es",))),
    "K1X1": (("s",), (), (("e",), ("e", "ee", "s"), ("se", "es"))),
    "I1N": ((), (), (("e", "s"), ("e", "ee"), ("se",))),
    "I1K": ((), ("s",), (("e", "es", "s"), ("e", "ee"), ("se",))),
    "IK1": ((), ("s",), (("e", "s"), ("e", "ee", "se", "es"))),
    "I1K1": ((), ("s",), (("e", "s"), ("e", "ee", "es"), ("se",))),
    "I1X": ((), (), (("e", "s"), ("e", "ee", "s", "es"), ("se",))),
    "IX1": ((), (), (("e", "s"), ("e", "ee", "se", "s"), ("es",))),
    "I1X1": ((), (), (("e", "s"), ("e", "ee", "s"), ("se", "es"))),
}
_NAME = re.compile(r"^Noise_([A-Z0-9]+?)((?:psk\d)(?:\+psk\d)*)?_" + re.escape(SUITE) + "$")


def parse_protocol_name(name: str) -> tuple[str, tuple[int, ...]]:
    """("XK", ()) for Noise_XK_25519_ChaChaPoly_BLAKE2b; ("NN", (0,)) for ...NNpsk0...."""
    m = _NAME.match(name)
    if not m or m.group(1) not in PATTERNS:
        raise ValueError(f"unsupported Noise protocol name {name!r}")
    psks = tuple(int(p[3:]) for p in m.group(2).split("+")) if m.group(2) else ()
    return m.group(1), psks


def message_patterns(pattern: str, psks: tuple[int, ...]) -> tuple[tuple[str, ...], ...]:
    msgs = [list(m) for m in PATTERNS[pattern][2]]
    for p in psks:
        if p == 0:
            msgs[0].insert(0, "psk")
        else:
            msgs[p - 1].append("psk")
    return tuple(tuple(m) for m in msgs)


class CipherState:
    """A key and a 64-bit counter nonce; the nonce can never wrap (2^64-1 is refused, as the spec says)."""

    __slots__ = ("k", "n")

    def __init__(self, k: bytes | None = None):
        self.k = k
        self.n = 0

    def has_key(self) -> bool:
        return self.k is not None

    def _with_nonce(self, aead, *args):
        """aead(k, n, *args); n moves only once that succeeded, so a refused frame never burns a nonce."""
        if self.n >= MAX_NONCE:
            raise CryptoFailure("nonce exhausted")
        out = aead(self.k, self.n, *args)
        self.n += 1
        return out

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        return plaintext if self.k is None else self._with_nonce(crypto.aead_encrypt, ad, plaintext)

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        return ciphertext if self.k is None else self._with_nonce(crypto.aead_decrypt, ad, ciphertext)

    def encrypt_into(self, ad: bytes, plaintext, out: bytearray, offset: int) -> int:
        """Transport only (a key is set): encrypt into a caller's buffer; returns bytes written."""
        return self._with_nonce(crypto.aead_encrypt_into, ad, plaintext, out, offset)

    def decrypt_into(self, ad: bytes, ciphertext, out: bytearray, offset: int) -> int:
        return self._with_nonce(crypto.aead_decrypt_into, ad, ciphertext, out, offset)

    def rekey(self) -> None:
        self.k = crypto.aead_encrypt(self.k, MAX_NONCE, b"", bytes(32))[:32]


class SymmetricState:
    __slots__ = ("ck", "h", "cipher")

    def __init__(self, protocol_name: bytes):
        self.h = protocol_name.ljust(HASHLEN, b"\x00") if len(protocol_name) <= HASHLEN else crypto.blake2b(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = crypto.hkdf(self.ck, ikm, 2)
        self.cipher = CipherState(temp_k[:32])

    def mix_hash(self, data: bytes) -> None:
        self.h = crypto.blake2b(self.h + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, temp_k = crypto.hkdf(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self.cipher = CipherState(temp_k[:32])

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        c = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(c)
        return c

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        p = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return p

    def split(self) -> tuple[CipherState, CipherState]:
        k1, k2 = crypto.hkdf(self.ck, b"", 2)
        return CipherState(k1[:32]), CipherState(k2[:32])


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> "KeyPair":
        return cls(private, crypto.x25519_public(private))


class HandshakeState:
    """One side of a handshake. `write_message`/`read_message` alternate as the pattern says.

    A failed `read_message` raises `CryptoFailure` or `ValueError`; the caller
    must then discard this object (its hash may have moved), which the
    connection layer does by entering its error state.
    """

    def __init__(
        self,
        protocol_name: str,
        *,
        initiator: bool,
        prologue: bytes = b"",
        s: KeyPair | None = None,
        e: KeyPair | None = None,
        rs: bytes | None = None,
        re: bytes | None = None,
        psks: tuple[bytes, ...] = (),
        ephemeral_private: bytes | None = None,
    ):
        pattern, psk_positions = parse_protocol_name(protocol_name)
        self.protocol_name = protocol_name
        self.initiator = initiator
        self.s, self.e, self.rs, self.re = s, e, rs, re
        self._ephemeral_private = ephemeral_private
        self._psks = list(psks)
        self._psk_mode = bool(psk_positions)
        if len(self._psks) != len(psk_positions) or any(len(p) != 32 for p in self._psks):
            raise ValueError(f"{protocol_name} needs {len(psk_positions)} pre-shared key(s) of 32 bytes")
        self.ss = SymmetricState(protocol_name.encode("ascii"))
        self.ss.mix_hash(prologue)
        pre_i, pre_r, _ = PATTERNS[pattern]
        for owner_is_initiator, tokens in ((True, pre_i), (False, pre_r)):
            for token in tokens:
                mine = owner_is_initiator == initiator
                key = (self.s if token == "s" else self.e) if mine else (self.rs if token == "s" else self.re)
                if key is None:
                    raise ValueError(f"{protocol_name}: pre-message key {token!r} missing")
                self.ss.mix_hash(key.public if isinstance(key, KeyPair) else key)
        self._messages = list(message_patterns(pattern, psk_positions))
        self._index = 0

    @property
    def complete(self) -> bool:
        return self._index >= len(self._messages)

    @property
    def my_turn(self) -> bool:
        return (self._index % 2 == 0) == self.initiator

    @property
    def handshake_hash(self) -> bytes:
        return self.ss.h

    def _dh(self, token: str) -> bytes:
        if token == "ee":
            return crypto.x25519(self.e.private, self.re)
        if token == "ss":
            return crypto.x25519(self.s.private, self.rs)
        if token == "es":
            return crypto.x25519(self.e.private, self.rs) if self.initiator else crypto.x25519(self.s.private, self.re)
        # "se"
        return crypto.x25519(self.s.private, self.re) if self.initiator else crypto.x25519(self.e.private, self.rs)

    def write_message(self, payload: bytes) -> bytes:
        if self.complete or not self.my_turn:
            raise ValueError("not this side's turn to write a handshake message")
        out = bytearray()
        for token in self._messages[self._index]:
            if token == "e":
                if self.e is None:
                    if self._ephemeral_private is None:
                        raise ValueError("an ephemeral private key must be passed in")
                    self.e = KeyPair.from_private(self._ephemeral_private)
                out += self.e.public
                self.ss.mix_hash(self.e.public)
                if self._psk_mode:
                    self.ss.mix_key(self.e.public)
            elif token == "s":
                out += self.ss.encrypt_and_hash(self.s.public)
            elif token == "psk":
                self.ss.mix_key_and_hash(self._psks.pop(0))
            else:
                self.ss.mix_key(self._dh(token))
        out += self.ss.encrypt_and_hash(payload)
        self._index += 1
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        if self.complete or self.my_turn:
            raise ValueError("not this side's turn to read a handshake message")
        pos = 0
        for token in self._messages[self._index]:
            if token == "e":
                if len(message) - pos < 32:
                    raise CryptoFailure("handshake message too short")
                self.re = message[pos:pos + 32]
                pos += 32
                self.ss.mix_hash(self.re)
                if self._psk_mode:
                    self.ss.mix_key(self.re)
            elif token == "s":
                n = 48 if self.ss.cipher.has_key() else 32
                if len(message) - pos < n:
                    raise CryptoFailure("handshake message too short")
                self.rs = self.ss.decrypt_and_hash(message[pos:pos + n])
                pos += n
            elif token == "psk":
                self.ss.mix_key_and_hash(self._psks.pop(0))
            else:
                self.ss.mix_key(self._dh(token))
        if self.ss.cipher.has_key() and len(message) - pos < 16:
            raise CryptoFailure("handshake message too short")
        payload = self.ss.decrypt_and_hash(message[pos:])
        self._index += 1
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """(send, receive) cipher states for this side."""
        if not self.complete:
            raise ValueError("handshake not complete")
        c1, c2 = self.ss.split()
        return (c1, c2) if self.initiator else (c2, c1)
