"""Known answers: every vector of the public cacophony file for our cipher suite, byte for byte."""
from __future__ import annotations

import json
import pathlib

import pytest

from preau.protocol.crypto import CryptoFailure
from preau.protocol.noise import MAX_NONCE, CipherState, HandshakeState, KeyPair, PATTERNS, parse_protocol_name

VECTORS = json.loads((pathlib.Path(__file__).parent / "vectors" / "noise-25519-ChaChaPoly-BLAKE2b.json").read_text())["vectors"]


def _kp(hexkey):
    return KeyPair.from_private(bytes.fromhex(hexkey)) if hexkey else None


def _hx(v):
    return bytes.fromhex(v) if v else None


def test_every_vector_in_the_file_is_a_pattern_we_implement():
    names = {v["protocol_name"] for v in VECTORS}
    assert len(VECTORS) == 59
    assert {parse_protocol_name(n)[0] for n in names} <= set(PATTERNS)
    assert "Noise_XK_25519_ChaChaPoly_BLAKE2b" in names


@pytest.mark.parametrize("v", VECTORS, ids=[v["protocol_name"].split("_")[1] for v in VECTORS])
def test_vector(v):
    init = HandshakeState(
        v["protocol_name"], initiator=True, prologue=bytes.fromhex(v["init_prologue"]),
        s=_kp(v.get("init_static")), rs=_hx(v.get("init_remote_static")),
        psks=tuple(bytes.fromhex(p) for p in v.get("init_psks", [])),
        ephemeral_private=bytes.fromhex(v["init_ephemeral"]),
    )
    resp = HandshakeState(
        v["protocol_name"], initiator=False, prologue=bytes.fromhex(v["resp_prologue"]),
        s=_kp(v.get("resp_static")), rs=_hx(v.get("resp_remote_static")),
        psks=tuple(bytes.fromhex(p) for p in v.get("resp_psks", [])),
        ephemeral_private=_hx(v.get("resp_ephemeral")),
    )
    one_way = len(parse_protocol_name(v["protocol_name"])[0]) == 1
    transport = None
    for i, m in enumerate(v["messages"]):
        payload, expected = bytes.fromhex(m["payload"]), bytes.fromhex(m["ciphertext"])
        if transport is None:
            writer, reader = (init, resp) if init.my_turn else (resp, init)
            assert writer.write_message(payload) == expected, f"message {i}"
            assert reader.read_message(expected) == payload
            if init.complete:
                assert resp.complete
                assert init.handshake_hash == resp.handshake_hash == bytes.fromhex(v["handshake_hash"])
                transport = (init.split(), resp.split())
        else:
            (i_send, i_recv), (r_send, r_recv) = transport
            from_init = one_way or i % 2 == 0  # messages keep alternating after the handshake
            send, recv = (i_send, r_recv) if from_init else (r_send, i_recv)
            assert send.encrypt_with_ad(b"", payload) == expected, f"message {i}"
            assert recv.decrypt_with_ad(b"", expected) == payload
    assert transport is not None


def test_cipher_nonce_moves_only_after_success():
    """A refused frame must not burn a nonce, or every later frame of the session fails too."""
    send, recv = CipherState(bytes(32)), CipherState(bytes(32))
    sealed = send.encrypt_with_ad(b"ad", b"hello")
    with pytest.raises(CryptoFailure):
        recv.decrypt_with_ad(b"other ad", sealed)
    with pytest.raises(CryptoFailure):
        recv.decrypt_into(b"ad", sealed[:-1] + bytes([sealed[-1] ^ 1]), bytearray(16), 0)
    assert recv.n == 0
    assert recv.decrypt_with_ad(b"ad", sealed) == b"hello" and recv.n == 1
    out = bytearray(5 + 16)
    assert send.encrypt_into(b"", b"world", out, 0) == 21 and send.n == 2
    plain = bytearray(5)
    assert recv.decrypt_into(b"", bytes(out), plain, 0) == 5 and plain == b"world" and recv.n == 2


@pytest.mark.parametrize("method", ["encrypt_with_ad", "decrypt_with_ad", "encrypt_into", "decrypt_into"])
def test_cipher_refuses_an_exhausted_nonce(method):
    cs = CipherState(bytes(32))
    cs.n = MAX_NONCE
    args = (b"", bytes(32)) + ((bytearray(64), 0) if method.endswith("_into") else ())
    with pytest.raises(CryptoFailure, match="nonce exhausted"):
        getattr(cs, method)(*args)
    assert cs.n == MAX_NONCE
