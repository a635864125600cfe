"""A pool's refusal carries a code and its values (said by the receiver in its people's language), and English for
the logs; a message from a node older than the code still decodes."""
from __future__ import annotations

import pytest

from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.secagg.messages import PoolAborted, ReasonParam, decode, encode
from preau.protocol.wire import encode_fields, encode_varint

POOL = bytes(range(16))
# PoolAborted(POOL, "only 2 of the 4 schools answered") as a node before codes wrote it: fields 1 and 2 only.
OLD = bytes.fromhex("010b0110000102030405060708090a0b0c0d0e0f02206f6e6c792032206f66207468652034207363686f6f6c7320616e737765726564")


def test_an_old_refusal_without_a_code_still_decodes():
    msg = decode(OLD)
    assert msg == PoolAborted(POOL, "only 2 of the 4 schools answered")
    assert msg.code is None and msg.params == () and msg.param_dict() == {}
    assert encode(msg) == OLD  # and a refusal without a code is written as before


def test_a_refusal_carries_its_code_and_values():
    msg = PoolAborted.because(POOL, "x" * 900, "outside_academie", {"schools": "0750001A, 0750002B", "departements": 69})
    back = decode(encode(msg))
    assert back.code == "outside_academie" and back.param_dict() == {"schools": "0750001A, 0750002B", "departements": "69"}
    assert len(back.reason) == 500 and back.reason.endswith("…")  # the English for logs, cut


@pytest.mark.parametrize("code, params", [("Outside", ()), ("pool.refusal.x", ()), ("", ()), ("a" * 65, ()),
                                          ("ok", (ReasonParam("n", "1"), ReasonParam("n", "2"))),
                                          ("ok", tuple(ReasonParam(f"p{i}", "v") for i in range(9)))])
def test_a_bad_code_or_values_are_refused(code, params):
    with pytest.raises(LocalProtocolError):
        PoolAborted(POOL, "why", code, params)
    base = PoolAborted(POOL, "why", "ok").encode()
    items = [(3, code.encode())] + [(4, p.encode_body()) for p in params]
    with pytest.raises(RemoteProtocolError):  # the same from the wire: a RemoteProtocolError, nothing else
        decode(encode_varint(1) + encode_varint(11) + encode_fields([(1, POOL), (2, b"why"), *items]))
    assert decode(encode_varint(1) + base).code == "ok"


@pytest.mark.parametrize("name, value", [("Name", "v"), ("n", "x" * 1001), ("n", "line\nbreak"), ("", "v")])
def test_a_bad_value_is_refused(name, value):
    with pytest.raises(LocalProtocolError):
        ReasonParam(name, value)
