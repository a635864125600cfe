from __future__ import annotations

import pytest

from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.wire import (
    Close, DocOffer, Done, Error, Hello, KeyRotation, Offer, Receipt, Release, SyncIdle, SyncMessage, Want, Welcome,
    MAX_LIST, decode_message, decode_varint, encode_fields, encode_varint,
)

SAMPLES = [
    Welcome(), Welcome("0751234J"), Welcome("0751234J", "Circonscription de Lyon 3"), Welcome(None, "Académie"),
    Offer((DocOffer("campaign/2026-debut-cp", b"release"), DocOffer("school/0751234J/aggregate"))), Offer(()),
    Want(("a", "b")), SyncMessage("d", b"\x00\x01"), SyncIdle("d"), Release("d", b"sig"), Receipt("d", b""),
    Done(), Close(), Close("bye"), Error("invitation_used", "x"), KeyRotation(b"s" * 200),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    assert decode_message(msg.encode()) == msg


def test_unknown_fields_are_ignored():
    """A newer peer adds field 9 to SyncIdle; we still read the fields we know."""
    raw = SyncIdle("doc").encode() + encode_varint(9) + encode_varint(3) + b"new"
    assert decode_message(raw) == SyncIdle("doc")


def test_unknown_types_refused_unless_optional():
    with pytest.raises(RemoteProtocolError) as exc:
        decode_message(encode_varint(30))
    assert exc.value.code == "unknown_message" and "upgrade this node" in str(exc.value)
    assert decode_message(encode_varint(0x40) + b"\x01\x00") is None


def test_missing_required_field():
    with pytest.raises(RemoteProtocolError, match="SyncMessage lacks its data field"):
        decode_message(encode_varint(4) + b"\x01\x01d")


def test_truncated_field():
    raw = SyncMessage("doc", b"x" * 50).encode()
    with pytest.raises(RemoteProtocolError, match="cut short"):
        decode_message(raw[:-1])


def test_invalid_values_are_refused_when_built_and_when_read():
    with pytest.raises(LocalProtocolError):
        SyncMessage("", b"x")
    with pytest.raises(LocalProtocolError):
        Want(("a", "a"))
    with pytest.raises(RemoteProtocolError) as exc:
        decode_message(encode_varint(5) + b"\x01\x00")  # SyncIdle with an empty doc id
    assert exc.value.code == "invalid_document_id"


def test_a_welcome_name_is_bounded_when_built_and_when_read():
    with pytest.raises(LocalProtocolError):
        Welcome(None, "x" * 201)
    with pytest.raises(LocalProtocolError):
        Welcome(None, "")
    raw = encode_varint(1) + encode_fields([(2, ("x" * 201).encode())])
    with pytest.raises(RemoteProtocolError):
        decode_message(raw)


def test_varints_are_minimal_and_bounded():
    for n in (0, 1, 127, 128, 2**32, 2**63 - 1):
        assert decode_varint(encode_varint(n), 0) == (n, len(encode_varint(n)))
    with pytest.raises(RemoteProtocolError):
        decode_varint(b"\x80\x00", 0)
    with pytest.raises(RemoteProtocolError):
        decode_varint(b"\xff" * 10, 0)
    with pytest.raises(LocalProtocolError):
        encode_varint(2**63)


def test_hello_round_trip():
    h = Hello((1, 2), b"k" * 32, b"s" * 64, ("sync/1", "relay/1"), b"join", b"rot")
    assert Hello.decode_body(h.encode_body()) == h



@pytest.mark.parametrize(
    "mtype, field, item",
    [(3, "doc_ids", lambda i: f"d{i}".encode()), (2, "docs", lambda i: DocOffer(f"d{i}").encode_body())],
    ids=["Want", "Offer"],
)
def test_lists_longer_than_the_cap_are_refused(mtype, field, item):
    """One entry past MAX_LIST (far below the field-count cap) is refused as too large; at the cap it decodes."""
    def message(n):
        return encode_varint(mtype) + encode_fields([(1, item(i)) for i in range(n)])

    with pytest.raises(RemoteProtocolError, match=f"lists more than {MAX_LIST} entries") as exc:
        decode_message(message(MAX_LIST + 1))
    assert exc.value.code == "message_too_large"
    assert len(getattr(decode_message(message(MAX_LIST)), field)) == MAX_LIST
