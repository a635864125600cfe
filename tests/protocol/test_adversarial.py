"""Attacks on the wire: each is refused with the right error, emits nothing, and changes no stored trust."""
from __future__ import annotations

import copy

import pytest

from preau.protocol import connection as connection_module
from preau.protocol.connection import Config, Connection, Established, MAGIC
from preau.protocol.errors import RemoteProtocolError
from preau.protocol.identity import Identity
from preau.protocol.states import State
from preau.protocol.wire import SyncMessage

from protocol_pair import NOW, SCHOOL_UAI, fresh32


def _clone(conn, world):
    """A snapshot of a connection mid-handshake, sharing the (read-only) trust store."""
    return copy.deepcopy(conn, {id(world.district_store): world.district_store})


def _refuses(conn, data, world, expect_codes=None):
    """`data` must be refused: an error now, or (cut short) an error at end of stream; never an event."""
    before = copy.deepcopy(world.district_store)
    try:
        events = conn.receive_data(data)
        assert events == [], events
        conn.receive_data(b"")
        raise AssertionError("accepted")
    except RemoteProtocolError as exc:
        code = exc.code
    assert conn.state is State.ERROR
    assert world.district_store == before
    if expect_codes is not None:
        assert code in expect_codes, code
    return code


def _flips(data: bytes):
    for pos in range(len(data)):
        for bit in range(8):
            out = bytearray(data)
            out[pos] ^= 1 << bit
            yield pos, bytes(out)


HANDSHAKE_CODES = {"handshake_failed", "not_preau", "unsupported_version", "truncated", "message_too_large", "malformed_message"}


def test_bit_flips_in_handshake_message_1(world):
    world.pin_school()
    msg1 = world.connect().data_to_send()
    r0 = world.responder()
    codes = {_refuses(_clone(r0, world), flipped, world, HANDSHAKE_CODES) for _, flipped in _flips(msg1)}
    assert {"handshake_failed", "not_preau", "unsupported_version"} <= codes


def test_bit_flips_in_handshake_message_2(world):
    world.pin_school()
    i0, r = world.connect(), world.responder()
    msg2 = (r.receive_data(i0.data_to_send()), r.data_to_send())[1]
    for _, flipped in _flips(msg2):
        _refuses(_clone(i0, world), flipped, world, HANDSHAKE_CODES)


def test_bit_flips_in_handshake_message_3(world):
    world.pin_school()
    i, r0 = world.connect(), world.responder()
    r0.receive_data(i.data_to_send())
    i.receive_data(r0.data_to_send())
    msg3 = i.data_to_send()
    for _, flipped in _flips(msg3):
        _refuses(_clone(r0, world), flipped, world, HANDSHAKE_CODES)
    assert any(isinstance(e, Established) for e in _clone(r0, world).receive_data(msg3))  # the genuine one works


def test_bit_flips_in_a_transport_message(world):
    i, r0 = world.open_pair()
    i.send(SyncMessage("campaign/2026-debut-cp", bytes(range(100))))
    frame = i.data_to_send()
    for _, flipped in _flips(frame):
        _refuses(_clone(r0, world), flipped, world, {"decrypt_failed", "truncated", "malformed_frame", "message_too_large"})
    assert r0.receive_data(frame) == [SyncMessage("campaign/2026-debut-cp", bytes(range(100)))]


def test_replayed_transport_message(world):
    i, r = world.open_pair()
    i.send(SyncMessage("d", b"1"))
    frame = i.data_to_send()
    assert r.receive_data(frame) == [SyncMessage("d", b"1")]
    assert _refuses(r, frame, world) == "decrypt_failed"


def test_reordered_transport_messages(world):
    i, r = world.open_pair()
    i.send(SyncMessage("d", b"1"))
    first = i.data_to_send()
    i.send(SyncMessage("d", b"2"))
    assert _refuses(r, i.data_to_send(), world) == "decrypt_failed"


def test_replayed_handshake_to_a_fresh_responder(world):
    """An eavesdropper records a whole session opening and plays it again."""
    world.pin_school()
    i, r = world.connect(), world.responder()
    msg1 = i.data_to_send()
    r.receive_data(msg1)
    i.receive_data(r.data_to_send())
    msg3 = i.data_to_send()
    r.receive_data(msg3)
    replay = world.responder()
    assert replay.receive_data(msg1) == []  # message 1 of XK is replayable by design...
    assert _refuses(replay, msg3, world) == "handshake_failed"  # ...but nothing after it is


def test_replayed_enrollment_is_useless(world):
    inv = world.invite()
    i, r = world.join(inv), world.responder()
    msg1 = i.data_to_send()
    r.receive_data(msg1); i.receive_data(r.data_to_send())
    msg3 = i.data_to_send()
    replay = world.responder()
    replay.receive_data(msg1)
    assert _refuses(replay, msg3, world) == "handshake_failed"


def test_mitm_with_its_own_keys(world):
    """Mallory answers the school with her keys, and calls the district with her keys."""
    world.pin_school()
    mallory = Identity(fresh32(b"mallory"))
    school_side = world.connect()
    fake_district = Connection.responder(mallory, world.district_store, ephemeral=fresh32(b"m"), now=NOW)
    assert _refuses(fake_district, school_side.data_to_send(), world) == "handshake_failed"
    # Mallory cannot produce a message 2 the school accepts either: she answers a fresh message 1 of her own.
    fake_district2 = Connection.responder(mallory, world.district_store, ephemeral=fresh32(b"m"), now=NOW)
    own = Connection.initiator(world.school, mallory.public, ephemeral=fresh32(b"m"), now=NOW)
    fake_district2.receive_data(own.data_to_send())
    assert _refuses(world.connect(), fake_district2.data_to_send(), world) == "handshake_failed"
    # Towards the district she can only show her own key, which is not pinned.
    to_district = Connection.initiator(mallory, world.district.public, ephemeral=fresh32(b"m"), now=NOW)
    r = world.responder()
    r.receive_data(to_district.data_to_send())
    to_district.receive_data(r.data_to_send())
    assert _refuses(r, to_district.data_to_send(), world) == "unknown_peer"


def test_wrong_pinned_key_for_the_district(world):
    world.pin_school()
    stale = Identity(fresh32(b"old-district")).public
    r = world.responder()
    assert _refuses(r, world.connect(peer=stale).data_to_send(), world) == "handshake_failed"


def test_peer_presenting_another_signing_key(world):
    """Right Noise key, but the pin names another signing key: the initiator refuses message 2."""
    world.pin_school()
    from preau.protocol.identity import PublicIdentity
    wrong = PublicIdentity(Identity(fresh32(b"x")).signing_key, world.district.public.static_key)
    i, r = world.connect(peer=wrong), world.responder()
    r.receive_data(i.data_to_send())
    assert _refuses(i, r.data_to_send(), world) == "wrong_peer_key"


def test_relayed_invitation_proof(world, monkeypatch):
    """A relay that saw a school's join proof cannot use it in its own handshake."""
    inv = world.invite()
    seen = []
    real_proof = connection_module.join_proof
    monkeypatch.setattr(connection_module, "join_proof", lambda *a: seen.append(real_proof(*a)) or seen[-1])
    i, r = world.join(inv), world.responder()
    r.receive_data(i.data_to_send()); i.receive_data(r.data_to_send())
    captured = seen[0]
    # the relay, with its own key, replays the captured proof under the same invitation id
    relay = Identity(fresh32(b"relay"))
    monkeypatch.setattr(connection_module, "join_proof", lambda *a: captured)
    ri, rr = Connection.initiator(relay, join=inv, uai=SCHOOL_UAI, ephemeral=fresh32(b"e"), now=NOW), world.responder()
    rr.receive_data(ri.data_to_send()); ri.receive_data(rr.data_to_send())
    monkeypatch.setattr(connection_module, "join_proof", real_proof)
    assert _refuses(rr, ri.data_to_send(), world) == "invitation_wrong"


def test_downgrade_by_rewriting_the_version_byte(world):
    world.pin_school()
    i = world.connect()
    msg1 = bytearray(i.data_to_send())
    assert msg1[:6] == MAGIC + b"\x01"
    msg1[5] = 0
    r = world.responder()
    assert _refuses(r, bytes(msg1), world) == "unsupported_version"
    refusal = r.data_to_send()
    with pytest.raises(RemoteProtocolError) as exc:
        i.receive_data(refusal)
    assert exc.value.code == "unsupported_version" and "upgrade the older node" in str(exc.value)


def test_downgrade_between_two_newer_nodes_is_detected(world):
    """Both speak 1 and 2; a path that rewrites 2 into 1 breaks the prologue, and a forced 1 is caught."""
    world.pin_school()
    both = Config(versions=(1, 2))
    i = world.connect(config=both)
    msg1 = bytearray(i.data_to_send())
    msg1[5] = 1
    assert _refuses(world.responder(config=both), bytes(msg1), world) == "handshake_failed"
    forced = Connection.initiator(world.school, world.district.public, ephemeral=fresh32(b"e"), now=NOW, config=both, version=1)
    assert _refuses(world.responder(config=both), forced.data_to_send(), world) == "downgrade_detected"


def test_truncated_handshake(world):
    world.pin_school()
    msg1 = world.connect().data_to_send()
    for cut in (1, 5, 7, len(msg1) - 1):
        assert _refuses(world.responder(), msg1[:cut], world) == "truncated"


def test_oversized_handshake_frame(world):
    assert _refuses(world.responder(), MAGIC + b"\x01" + (60000).to_bytes(2, "big"), world) == "message_too_large"


def test_short_and_junk_transport_frames(world):
    i, r = world.open_pair()
    assert _refuses(r, b"\x00\x05hello", world) == "malformed_frame"
    i2, r2 = world.open_pair()
    assert _refuses(r2, b"\xff\xff" + bytes(65535), world) == "decrypt_failed"


def test_not_preau_at_all(world):
    assert _refuses(world.responder(), b"GET / HTTP/1.1\r\n", world) == "not_preau"


def test_failed_frames_leave_nothing_unsafe_for_the_garbage_collector(world):
    """Regression: a buffer export held by a traceback cycle crashed CPython during gc (cffi from_buffer)."""
    import gc
    i, r0 = world.open_pair()
    i.send(SyncMessage("c", bytes(range(100))))
    frame = i.data_to_send()
    for _, flipped in list(_flips(frame))[::7]:
        conn = _clone(r0, world)
        with pytest.raises(RemoteProtocolError):
            conn.receive_data(flipped)
            conn.receive_data(b"")
        assert conn.error is not None
    gc.collect()
