from __future__ import annotations

import pytest

from preau.protocol.errors import LocalProtocolError
from preau.protocol.identity import Identity
from preau.protocol.invitation import DEFAULT_TTL, PREFIX, Invitation, invitation_id, join_proof

DISTRICT = Identity(b"\x10" * 32)


def _inv(**kw):
    args = dict(uai="0751234J", addresses=["wss://circo-paris-5.example:8443", "192.168.10.2:8443"], now=1000, secret=b"\x42" * 16)
    args.update(kw)
    return Invitation.create(DISTRICT, **args)


def test_round_trip_and_contents():
    inv = _inv()
    text = inv.to_string()
    assert text.startswith(PREFIX) and text.isascii() and " " not in text
    back = Invitation.parse("  " + text.lower()[:40] + "\n" + text.lower()[40:] + " ")  # wrapped in a mail, case lost
    assert back == inv
    assert back.expires_at == 1000 + DEFAULT_TTL
    assert back.issuer == DISTRICT.public and back.issuer_node_id == DISTRICT.node_id
    assert back.addresses == ("wss://circo-paris-5.example:8443", "192.168.10.2:8443")
    assert back.id == invitation_id(b"\x42" * 16) and len(back.id) == 16


def test_secret_must_be_at_least_128_bits():
    with pytest.raises(LocalProtocolError, match="16-64 random bytes"):
        _inv(secret=b"\x42" * 15)


def test_uai_is_checked():
    with pytest.raises(LocalProtocolError) as exc:
        _inv(uai="0751234K")
    assert exc.value.code == "invalid_uai"


@pytest.mark.parametrize("mangle, fragment", [
    (lambda t: t[len(PREFIX):], "starts with PREAU1-"),
    (lambda t: t[:-5], "damaged or incomplete"),
    (lambda t: t[:30] + ("A" if t[30] != "A" else "B") + t[31:], "damaged or incomplete"),
    (lambda t: t[:20] + "1" + t[21:], "characters it should not"),
])
def test_damaged_copies_are_reported(mangle, fragment):
    with pytest.raises(LocalProtocolError) as exc:
        Invitation.parse(mangle(_inv().to_string()))
    assert exc.value.code == "invitation_malformed" and fragment in str(exc.value)


def test_proof_binds_handshake_key_and_school():
    base = join_proof(b"s" * 16, b"h" * 64, b"k" * 32, "0751234J")
    assert len(base) == 32
    assert base != join_proof(b"s" * 16, b"H" * 64, b"k" * 32, "0751234J")
    assert base != join_proof(b"s" * 16, b"h" * 64, b"K" * 32, "0751234J")
    assert base != join_proof(b"s" * 16, b"h" * 64, b"k" * 32, "0010856A")
    assert base != join_proof(b"S" * 16, b"h" * 64, b"k" * 32, "0751234J")
