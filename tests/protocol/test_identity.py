from __future__ import annotations

import pytest

from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.identity import B32, Identity, PublicIdentity, RotationStatement, node_id, parse_node_id, verify_signature


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
