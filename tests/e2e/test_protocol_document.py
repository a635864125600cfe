"""docs/protocol.md is enough to enrol: a school written from its text alone joins a real `preau serve`.

Nothing here imports preau: the node id, the invitation's checksum and id,
the join proof, the TLV encoding, Noise XK and the framing are written again
from the document (hashlib, hmac and pynacl's bare primitives only), so a
difference between the document and the code makes this test fail.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import pathlib

import aiohttp
import pytest
from nacl import bindings
from nacl.signing import SigningKey, VerifyKey

from cli_helpers import SCHOOL_UAI, invite, preau, start_district

DOC = (pathlib.Path(__file__).parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

pytestmark = pytest.mark.slow


# --- "Notation" -----------------------------------------------------------------

def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def lh(n: int, label: str, data: bytes, key: bytes = b"") -> bytes:
    lab = label.encode("ascii")
    return hashlib.blake2b(u16(len(lab)) + lab + data, digest_size=n, key=key).digest()


# --- "Identities" -------------------------------------------------------------------

def luhn32(group: str) -> str:
    factor, total = 2, 0
    for ch in reversed(group):
        p = factor * B32.index(ch)
        total += p // 32 + p % 32
        factor = 1 if factor == 2 else 2
    return B32[(32 - total % 32) % 32]


def node_id(signing_key: bytes) -> str:
    t = base64.b32encode(lh(20, "preau/v1/node-id", signing_key)).decode()[:28]
    return "-".join(t[i:i + 7] + luhn32(t[i:i + 7]) for i in range(0, 28, 7))


class School:
    def __init__(self, seed: bytes):
        self.sign_key = SigningKey(seed)
        self.signing_key = bytes(self.sign_key.verify_key)
        self.static_private = lh(32, "preau/v1/noise-static", b"", key=seed)
        self.static_public = bindings.crypto_scalarmult_base(self.static_private)
        self.binding = self.sign_key.sign(b"preau/v1/static-binding" + self.signing_key + self.static_public).signature


# --- "Messages" (TLV) -------------------------------------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def fields(items: list[tuple[int, bytes]]) -> bytes:
    return b"".join(varint(tag) + varint(len(v)) + v for tag, v in items)


def read_fields(buf: bytes) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        length, pos = read_varint(buf, pos)
        out.setdefault(tag, []).append(buf[pos:pos + length])
        pos += length
    return out


# --- "Invitations" ----------------------------------------------------------------------

def parse_invitation(text: str) -> dict:
    raw = "".join(text.split()).upper()
    assert raw.startswith("PREAU1-")
    b32 = raw[len("PREAU1-"):]
    data = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    body, check = data[:-4], data[-4:]
    assert lh(4, "preau/v1/invitation-checksum", body) == check, "the checksum of the document does not match"
    f = read_fields(body)
    secret = f[6][0]
    return {"addresses": [a.decode() for a in f[1]], "signing_key": f[2][0], "static_key": f[3][0],
            "uai": f[4][0].decode(), "expires_at": read_varint(f[5][0], 0)[0], "secret": secret,
            "id": lh(16, "preau/v1/invitation-id", b"", key=secret)}


# --- "Handshake": Noise_XK_25519_ChaChaPoly_BLAKE2b, initiator side ------------------------

def aead(key: bytes, n: int, ad: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    nonce = b"\x00" * 4 + n.to_bytes(8, "little")
    if decrypt:
        return bindings.crypto_aead_chacha20poly1305_ietf_decrypt(data, ad, nonce, key)
    return bindings.crypto_aead_chacha20poly1305_ietf_encrypt(data, ad, nonce, key)


def hkdf(ck: bytes, ikm: bytes, count: int) -> list[bytes]:
    temp = hmac.new(ck, ikm, hashlib.blake2b).digest()
    outs, prev = [], b""
    for i in range(1, count + 1):
        prev = hmac.new(temp, prev + bytes([i]), hashlib.blake2b).digest()
        outs.append(prev)
    return outs


class Symmetric:
    def __init__(self, name: bytes, prologue: bytes):
        self.h = self.ck = name.ljust(64, b"\x00")
        self.k, self.n = None, 0
        self.mix_hash(prologue)

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.blake2b(self.h + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp = hkdf(self.ck, ikm, 2)
        self.k, self.n = temp[:32], 0

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ct = aead(self.k, self.n, self.h, plaintext)
        self.n += 1
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ct: bytes) -> bytes:
        pt = aead(self.k, self.n, self.h, ct, decrypt=True)
        self.n += 1
        self.mix_hash(ct)
        return pt

    def split(self) -> tuple[bytes, bytes]:
        a, b = hkdf(self.ck, b"", 2)
        return a[:32], b[:32]


class Stream:
    """The protocol's byte stream over the WebSocket's binary messages."""

    def __init__(self, ws):
        self.ws, self.buf = ws, b""

    async def frame(self) -> bytes:
        while len(self.buf) < 2 or len(self.buf) < 2 + int.from_bytes(self.buf[:2], "big"):
            msg = await asyncio.wait_for(self.ws.receive(), 20)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            self.buf += msg.data
        n = int.from_bytes(self.buf[:2], "big")
        frame, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
        return frame


async def enrol(school: School, inv: dict) -> tuple[int, dict]:
    header = b"PREAU" + bytes([1])
    sym = Symmetric(b"Noise_XK_25519_ChaChaPoly_BLAKE2b", b"preau/v1 Noise_XK_25519_ChaChaPoly_BLAKE2b " + header)
    rs = inv["static_key"]
    sym.mix_hash(rs)
    e = os.urandom(32)
    e_pub = bindings.crypto_scalarmult_base(e)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(inv["addresses"][0].rstrip("/") + "/v1/sync") as ws:
            stream = Stream(ws)
            # message 1: e, es, Hello{versions}
            sym.mix_hash(e_pub)
            sym.mix_key(bindings.crypto_scalarmult(e, rs))
            m1 = e_pub + sym.encrypt_and_hash(fields([(1, varint(1))]))
            await ws.send_bytes(header + u16(len(m1)) + m1)
            # message 2: e, ee, Hello{versions, signing key, binding, capabilities}
            m2 = await stream.frame()
            re_pub = m2[:32]
            sym.mix_hash(re_pub)
            sym.mix_key(bindings.crypto_scalarmult(e, re_pub))
            hello = read_fields(sym.decrypt_and_hash(m2[32:]))
            assert hello[2][0] == inv["signing_key"]
            VerifyKey(inv["signing_key"]).verify(b"preau/v1/static-binding" + inv["signing_key"] + rs, hello[3][0])
            h2 = sym.h
            # message 3: s, se, Hello{..., join}
            proof = lh(32, "preau/v1/invitation-proof", h2 + school.signing_key + inv["uai"].encode("ascii"), key=inv["secret"])
            join = fields([(1, inv["id"]), (2, proof), (3, inv["signing_key"]), (4, inv["uai"].encode())])
            enc_s = sym.encrypt_and_hash(school.static_public)
            sym.mix_key(bindings.crypto_scalarmult(school.static_private, re_pub))
            payload = fields([(1, varint(1)), (2, school.signing_key), (3, school.binding), (4, b"sync/1"), (5, join)])
            m3 = enc_s + sym.encrypt_and_hash(payload)
            await ws.send_bytes(u16(len(m3)) + m3)
            send_key, recv_key = sym.split()
            # the answer: one transport frame, flags ‖ ChaCha20-Poly1305(ad = flags)
            frame = await stream.frame()
            flags = frame[:1]
            plain = aead(recv_key, 0, flags, frame[1:], decrypt=True)
            assert flags == b"\x01"
            mtype, pos = read_varint(plain, 0)
            answer = read_fields(plain[pos:])
            # Close (type 9), then hang up
            close = varint(9) + fields([(1, b"done")])
            ct = aead(send_key, 0, b"\x01", close)
            await ws.send_bytes(u16(1 + len(ct)) + b"\x01" + ct)
            return mtype, answer


def test_the_documented_examples_hold():
    """The examples printed in the document, recomputed from its definitions."""
    school = School(bytes(range(32)))
    assert f"`{school.signing_key.hex()}`" in DOC
    assert f"`{school.static_public.hex()}`" in DOC
    assert f"node id `{node_id(school.signing_key)}`" in DOC
    assert f"`{lh(16, 'preau/v1/invitation-id', b'', key=bytes(range(16))).hex()}`" in DOC
    body = fields([(1, b"http://127.0.0.1:8080"), (2, school.signing_key), (3, school.static_public),
                   (4, SCHOOL_UAI.encode()), (5, varint(1_800_000_000)), (6, bytes(range(16)))])
    assert body.hex() in "".join(DOC.split())
    assert f"checksum `{lh(4, 'preau/v1/invitation-checksum', body).hex()}`" in DOC


async def test_a_school_written_from_the_document_enrols_with_a_real_district(tmp_path):
    district = start_district(tmp_path)
    try:
        inv = parse_invitation(invite(district))
        status = preau("status", "--data-dir", str(district.data))
        assert status.code == 0, status.err
        assert f"district node {node_id(inv['signing_key'])}" in status.out  # the node id people compare aloud
        assert inv["uai"] == SCHOOL_UAI

        # What the document used to say (the first 16 bytes of a 32-byte hash) is another id: refused.
        old_id = lh(32, "preau/v1/invitation-id", b"", key=inv["secret"])[:16]
        mtype, answer = await enrol(School(os.urandom(32)), {**inv, "id": old_id})
        assert mtype == 10 and answer[1] == [b"invitation_wrong"], answer

        school = School(os.urandom(32))
        mtype, answer = await enrol(school, inv)
        assert mtype == 1, (mtype, answer)  # Welcome, not Error (10: {1: code, 2: message})
        assert answer[1] == [SCHOOL_UAI.encode()]

        status = preau("status", "--data-dir", str(district.data))
        line = next(ln for ln in status.out.splitlines() if SCHOOL_UAI in ln)
        assert node_id(school.signing_key) in line, status.out
        # The invitation is now used: the same one again is refused, with the documented code.
        mtype, answer = await enrol(School(os.urandom(32)), inv)
        assert mtype == 10 and answer[1] == [b"invitation_used"], answer
    finally:
        district.stop()

