from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.identity import (B32, Identity, KeyFileError, PublicIdentity, RotationStatement, decode_key_file,
                                     encode_key_file, node_id, parse_node_id, verify_signature)


def test_identity_is_deterministic_from_its_seed_and_keys_are_bound():
    a, b = Identity(b"\x01" * 32), Identity(b"\x01" * 32)
    assert a.public == b.public and a.binding == b.binding
    assert a.public.verify_binding(a.binding)
    other = Identity(b"\x02" * 32)
    assert not PublicIdentity(a.signing_key, other.public.static_key).verify_binding(a.binding)
    assert "Identity(" in repr(a) and a.seed.hex() not in repr(a)


def test_node_id_shape_and_round_trip():
    nid = Identity(b"\x03" * 32).node_id
    groups = nid.split("-")
    assert len(groups) == 4 and all(len(g) == 8 and set(g) <= set(B32) for g in groups)
    assert parse_node_id(nid.lower().replace("-", " ")) == nid


def test_node_id_catches_every_single_character_typo():
    nid = Identity(b"\x04" * 32).node_id
    raw = nid.replace("-", "")
    for pos in range(32):
        for ch in B32:
            if ch == raw[pos]:
                continue
            typo = raw[:pos] + ch + raw[pos + 1:]
            with pytest.raises(LocalProtocolError) as exc:
                parse_node_id(typo)
            assert f"group {pos // 8 + 1}" in str(exc.value)


def test_node_id_errors_say_what_to_do():
    with pytest.raises(LocalProtocolError, match="expected 32 letters and digits 2-7") as exc:
        parse_node_id("not-an-id")
    assert exc.value.code == "invalid_node_id"


def test_node_ids_differ():
    assert len({node_id(Identity(bytes([n]) * 32).signing_key) for n in range(50)}) == 50


def test_labelled_signatures_do_not_cross_purposes():
    ident = Identity(b"\x05" * 32)
    sig = ident.sign(b"preau/v1/release-signature", b"heads")
    assert verify_signature(ident.signing_key, b"preau/v1/release-signature", b"heads", sig)
    assert not verify_signature(ident.signing_key, b"preau/v1/receipt", b"heads", sig)
    with pytest.raises(LocalProtocolError):
        ident.sign(b"other", b"x")


def test_rotation_statement_verifies_and_tampering_is_caught():
    old = Identity(b"\x06" * 32)
    new, raw = old.rotate(b"\x07" * 32)
    st = RotationStatement.verify(raw)
    assert st.old_signing_key == old.signing_key and st.new_identity == new.public
    for pos in range(0, len(raw), 3):
        bad = bytearray(raw)
        bad[pos] ^= 0x10
        with pytest.raises(RemoteProtocolError) as exc:
            RotationStatement.verify(bytes(bad))
        assert exc.value.code in ("bad_rotation", "malformed_message")


def test_seed_must_be_32_bytes():
    with pytest.raises(LocalProtocolError):
        Identity(b"short")


SEED = bytes(range(32))


def test_key_file_round_trips_and_shows_its_form():
    data = encode_key_file(SEED)
    assert data == b"preau-key/1 " + SEED.hex().encode() + b" " + data.split()[2] + b"\n"
    assert decode_key_file(data) == (SEED, False)
    assert decode_key_file(data.rstrip() + b"\r\n  ") == (SEED, False)  # an editor's line ending is fine


def test_every_changed_hex_digit_of_a_key_file_is_refused():
    data = encode_key_file(SEED).decode()
    start = len("preau-key/1 ")
    refused = 0
    for pos in range(start, len(data) - 1):
        if data[pos] == " ":
            continue
        for digit in "0123456789abcdef":
            if digit == data[pos]:
                continue
            with pytest.raises(KeyFileError, match="checksum does not match") as info:
                decode_key_file((data[:pos] + digit + data[pos + 1:]).encode())
            assert info.value.reason == "checksum" and info.value.code == "key_file_damaged"
            refused += 1
    assert refused == (64 + 8) * 15


def test_every_truncation_of_a_key_file_is_refused():
    data = encode_key_file(SEED)
    for n in range(len(data) - 1):  # the last byte is the newline
        with pytest.raises(KeyFileError) as info:
            decode_key_file(data[:n])
        assert info.value.reason in ("empty", "truncated"), (n, info.value.reason)


def test_binary_and_foreign_key_files_are_refused_with_a_reason():
    with pytest.raises(KeyFileError, match="binary data"):
        decode_key_file(bytes(range(256)))
    with pytest.raises(KeyFileError, match="binary data"):
        decode_key_file(b"\x00" * 32)  # a raw 32-byte seed is not our format
    with pytest.raises(KeyFileError, match="does not start with 'preau-key/1'"):
        decode_key_file(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match="not hex digits"):
        decode_key_file(encode_key_file(SEED).replace(b" 0", b" g", 1))


def test_old_key_files_without_checksum_still_load():
    assert decode_key_file(SEED.hex().encode() + b"\n") == (SEED, True)
    assert decode_key_file(SEED.hex().upper().encode()) == (SEED, True)
    with pytest.raises(KeyFileError, match="63 hex digits where 64 are expected"):
        decode_key_file(SEED.hex()[:63].encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_give_a_seed_or_a_key_file_error(data):
    try:
        seed, _legacy = decode_key_file(data)
    except KeyFileError:
        return
    assert len(seed) == 32


def test_a_key_file_from_a_newer_format_is_said_to_be_newer_not_damaged():
    """After a downgrade, 'damaged: restore from a backup' sent IT staff after a fault that is not there."""
    line = encode_key_file(SEED).decode().replace("preau-key/1", "preau-key/2", 1)
    with pytest.raises(KeyFileError) as exc:
        decode_key_file(line.encode())
    assert exc.value.reason == "newer" and "newer Préau (preau-key/2)" in str(exc.value)
