"""Enrollment, reconnection, rotation, revocation, framing, on an in-memory pair of endpoints."""
from __future__ import annotations

import copy
import dataclasses

import pytest

from preau.protocol.connection import (
    MAX_CHUNK, Config, Connection, ConnectionClosed, Enrollment, Established, PeerKeyRotated, PinnedPeer,
)
from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.identity import Identity
from preau.protocol.invitation import Invitation
from preau.protocol.states import State
from preau.protocol.wire import KeyRotation, Receipt, Release, SyncMessage, Want

from protocol_pair import NOW, OTHER_UAI, SCHOOL_UAI, fresh32, pump


def _established(events):
    return [e for e in events if isinstance(e, Established)]


def test_enrollment_pins_both_sides(world):
    inv = world.invite()
    i, r = world.join(inv), world.responder()
    ev_i, ev_r = pump(i, r)
    [est_r], [est_i] = _established(ev_r), _established(ev_i)
    assert est_r.enrollment == Enrollment(inv.id, SCHOOL_UAI) == est_i.enrollment
    assert est_r.peer == world.school.public and est_i.peer == world.district.public
    assert est_r.handshake_hash == est_i.handshake_hash
    assert est_r.capabilities == {"sync/1"} and est_r.version == 1
    assert est_i.peer_node_id == world.district.node_id == inv.issuer_node_id


def test_the_district_tells_its_name_in_the_welcome(world):
    """A responder's Config.name reaches the initiator's Established (pages show it instead of a fingerprint)."""
    inv = world.invite()
    i, r = world.join(inv), world.responder(config=Config(name="Circonscription de Lyon 3"))
    ev_i, ev_r = pump(i, r)
    assert _established(ev_i)[0].peer_name == "Circonscription de Lyon 3"
    assert _established(ev_r)[0].peer_name is None  # an initiator says no name
    world.pin_school()
    i, r = world.connect(), world.responder()  # a responder with no name (an older district) says none
    ev_i, _ = pump(i, r)
    assert _established(ev_i)[0].peer_name is None


def test_reconnection_with_pinned_keys(world):
    world.pin_school()
    i, r = world.connect(), world.responder()
    ev_i, ev_r = pump(i, r)
    assert _established(ev_r)[0].enrollment is None and _established(ev_i)[0].peer == world.district.public


def _refused(world, i, r, code):
    """The responder refuses with `code`; the initiator hears the same code; nothing was admitted."""
    before = copy.deepcopy(world.district_store)
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())
    with pytest.raises(RemoteProtocolError) as exc_r:
        r.receive_data(i.data_to_send())
    assert exc_r.value.code == code and r.state is State.ERROR
    with pytest.raises(RemoteProtocolError) as exc_i:
        i.receive_data(r.data_to_send())
    assert exc_i.value.code == code and i.state is State.ERROR
    assert world.district_store == before
    return exc_r.value, exc_i.value


def test_used_invitation_is_refused(world):
    inv = world.invite()
    world.district_store.invitations[inv.id] = inv.record().__class__(inv.id, inv.secret, inv.uai, inv.expires_at, used=True)
    _, err = _refused(world, world.join(inv), world.responder(), "invitation_used")
    assert "already been used: ask your district for a new one" in str(err)


def test_a_known_node_that_brings_an_invitation_uses_it_up(world):
    """`preau join --again`: the district pins the school already; the invitation it brings is checked as in a
    first join, and the district is told to mark it used (Established.enrollment), never ignored."""
    world.pin_school()
    inv = world.invite()
    ev_i, ev_r = pump(world.join(inv), world.responder())
    assert _established(ev_r)[0].enrollment == Enrollment(inv.id, SCHOOL_UAI) == _established(ev_i)[0].enrollment
    world.district_store.invitations[inv.id] = dataclasses.replace(inv.record(), used=True)
    _, err = _refused(world, world.join(inv), world.responder(), "invitation_used")
    assert "already been used: ask your district for a new one" in str(err)


def test_a_known_node_may_not_use_up_another_schools_invitation(world):
    world.pin_school()  # as SCHOOL_UAI
    inv = world.invite(uai=OTHER_UAI)
    _refused(world, world.join(inv, uai=OTHER_UAI), world.responder(), "invitation_foreign")


def _rejoin_with_rotation(world, inv, uai=SCHOOL_UAI):
    """`preau join --again` from a school that also rotated its own keys and could not deliver the rotation: it
    brings both its invitation and its rotation statement."""
    new_school, statement = world.school.rotate(fresh32(b"new-school"))
    return new_school, Connection.initiator(new_school, join=inv, uai=uai, rotation=statement,
                                            ephemeral=fresh32(b"i-eph"), now=NOW)


def test_a_rejoin_with_a_rotation_uses_up_its_invitation_too(world):
    """Found by review: the rotation branch admitted the node as rotated and never looked at its invitation,
    which stayed usable (and could be another school's)."""
    world.pin_school()
    inv = world.invite()
    new_school, i = _rejoin_with_rotation(world, inv)
    ev_i, ev_r = pump(i, world.responder())
    [est] = _established(ev_r)
    assert est.rotated_from == world.school.signing_key and est.peer == new_school.public
    assert est.enrollment == Enrollment(inv.id, SCHOOL_UAI) == _established(ev_i)[0].enrollment


def test_a_rejoin_with_a_rotation_may_not_use_up_another_schools_invitation(world):
    world.pin_school()  # as SCHOOL_UAI
    inv = world.invite(uai=OTHER_UAI)
    _, i = _rejoin_with_rotation(world, inv, uai=OTHER_UAI)
    _refused(world, i, world.responder(), "invitation_foreign")


def test_a_node_that_rotated_before_it_ever_joined_can_join(world):
    """Found by review: a school that ran `preau keys rotate` before its first join sent its rotation chain with
    its invitation, and the district, knowing no key of the chain, refused it as unknown (with a valid
    invitation in hand). The chain says nothing here: the invitation decides."""
    inv = world.invite()
    new_school, i = _rejoin_with_rotation(world, inv)
    ev_i, ev_r = pump(i, world.responder())
    [est] = _established(ev_r)
    assert est.enrollment == Enrollment(inv.id, SCHOOL_UAI) and est.rotated_from is None
    assert est.peer == new_school.public
    # Without an invitation, an unknown chain is still refused.
    other, statement = Identity(fresh32(b"stranger")).rotate(fresh32(b"stranger2"))
    _refused(world, world.connect(school=other, rotation=statement), world.responder(), "unknown_peer")


def test_a_district_that_ignores_the_invitation_of_a_known_node_still_admits_it(world):
    """A district of an earlier version admits a node it pins without looking at its invitation (Welcome names
    no school): the node is in all the same, and nothing was enrolled."""
    world.pin_school()
    inv = world.invite()
    r = world.responder()
    r._admit = lambda peer, hello: (None, None)  # the admission of a district of 2026-11-28
    i = world.join(inv)
    ev_i, ev_r = pump(i, r)
    assert _established(ev_i)[0].enrollment is None and i.state is State.OPEN


def test_expired_invitation_is_refused_by_the_district(world):
    inv = world.invite(ttl=60)
    _, err = _refused(world, world.join(inv), world.responder(now=NOW + 61), "invitation_expired")
    # Both clocks are named: a district whose clock runs ahead looks like an expired invitation.
    assert str(err) == ("this invitation has expired: ask your district for a new one (the invitation for 0751234J "
                        "expired at 2026-09-21 14:14:20 UTC, and the district's clock says 2026-09-21 14:14:21 UTC; "
                        "this machine's clock says 2026-09-21 14:13:20 UTC)"), str(err)


def test_expired_invitation_is_refused_before_connecting(world):
    inv = world.invite(ttl=60)
    with pytest.raises(LocalProtocolError, match="expired") as exc:
        world.join(inv, now=NOW + 61)
    assert exc.value.code == "invitation_expired"
    assert str(exc.value) == ("this invitation expired at 2026-09-21 14:14:20 UTC, and this machine's clock says "
                              "2026-09-21 14:14:21 UTC; the district made it at 2026-09-21 14:13:20 UTC by its own clock. "
                              "If one of the two clocks is wrong, set it right (the district then makes a new "
                              "invitation); otherwise ask your district for a new invitation")


def test_an_invitation_says_when_the_district_made_it_and_older_ones_still_parse(world):
    inv = world.invite(ttl=60)
    assert inv.issued_at == NOW and Invitation.parse(inv.to_string()).issued_at == NOW
    old = dataclasses.replace(inv, issued_at=None)
    assert Invitation.parse(old.to_string()) == old  # made before the field existed
    with pytest.raises(LocalProtocolError) as exc:
        world.join(old, now=NOW + 61)
    assert "made it" not in str(exc.value) and "this machine's clock says" in str(exc.value)


def test_wrong_invitation_is_refused(world):
    inv = world.invite()
    del world.district_store.invitations[inv.id]  # revoked by the district, or a stale copy
    _, err = _refused(world, world.join(inv), world.responder(), "invitation_wrong")
    assert "not recognised" in str(err)


def test_invitation_for_another_school(world):
    inv = world.invite(uai=OTHER_UAI)
    with pytest.raises(LocalProtocolError, match=f"for school {OTHER_UAI}, but this node is school {SCHOOL_UAI}"):
        world.join(inv)


def test_foreign_invitation_from_another_district(world):
    other = Identity(fresh32(b"other-district"))
    inv = world.invite(issuer=other)
    # Its keys point at the other district; a relay sending the bytes to our district fails the handshake.
    i, r = world.join(inv), world.responder()
    with pytest.raises(RemoteProtocolError) as exc:
        r.receive_data(i.data_to_send())
    assert exc.value.code == "handshake_failed"


def test_invitation_is_single_use_once_the_node_marks_it(world):
    inv = world.invite()
    ev_i, ev_r = pump(world.join(inv), world.responder())
    enr = _established(ev_r)[0].enrollment
    rec = world.district_store.invitations[enr.invitation_id]
    world.district_store.invitations[enr.invitation_id] = rec.__class__(rec.id, rec.secret, rec.uai, rec.expires_at, used=True)
    second = Identity(fresh32(b"school2"))
    _refused(world, world.join(inv, school=second), world.responder(), "invitation_used")


def test_refuse_replaces_the_welcome(world):
    inv = world.invite()
    i, r = world.join(inv), world.responder()
    r.receive_data(i.data_to_send()); i.receive_data(r.data_to_send())
    assert _established(r.receive_data(i.data_to_send()))
    r.refuse("invitation_used", "used meanwhile by another connection")  # the node's atomic update failed
    with pytest.raises(RemoteProtocolError) as exc:
        i.receive_data(r.data_to_send())
    assert exc.value.code == "invitation_used" and r.state is State.ERROR


def test_a_busy_district_says_so_and_when_to_try_again(world):
    """Refused after the handshake (its sessions are full): the school is told why, not just 'hung up'."""
    world.pin_school()
    i, r = world.connect(), world.responder()
    r.receive_data(i.data_to_send()); i.receive_data(r.data_to_send())
    assert _established(r.receive_data(i.data_to_send()))
    r.refuse("busy", "64 sessions already", retry_after=30)
    with pytest.raises(RemoteProtocolError) as exc:
        i.receive_data(r.data_to_send())
    assert exc.value.code == "busy" and exc.value.retry_after == 30
    assert str(exc.value) == ("the district is busy with other nodes' syncs: nothing was lost; this node tries again "
                              "later (the district asks to try again in 30 s)")


def test_a_district_whose_disk_filled_up_mid_session_tells_the_school(world):
    world.pin_school()
    i, r = world.connect(), world.responder()
    pump(i, r)
    r.fail(LocalProtocolError("no space left on device", code="disk_full"))
    with pytest.raises(RemoteProtocolError) as exc:
        i.receive_data(r.data_to_send())
    assert exc.value.code == "disk_full" and exc.value.retry_after is None
    assert "the district's disk is full" in str(exc.value) and "nothing was lost here" in str(exc.value)


def test_unknown_key_without_invitation(world):
    _, err = _refused(world, world.connect(), world.responder(), "unknown_peer")
    assert "enrol first with an invitation" in str(err)


def test_revoked_key_is_refused(world):
    world.pin_school(revoked=True)
    _, err = _refused(world, world.connect(), world.responder(), "peer_revoked")
    assert "revoked" in str(err)


def test_pinned_signing_key_with_another_noise_key(world):
    impostor = Identity(fresh32(b"impostor"))
    world.district_store.peers[world.school.signing_key] = PinnedPeer(impostor.public.__class__(world.school.signing_key, impostor.public.static_key))
    _refused(world, world.connect(), world.responder(), "key_mismatch")


def test_rotation_in_session_then_reconnect_with_new_key(world):
    i, r = world.open_pair()
    new_school, statement = world.school.rotate(fresh32(b"new-school"))
    i.send(KeyRotation(statement))
    ev_r = r.receive_data(i.data_to_send())
    assert ev_r == [PeerKeyRotated(world.school.signing_key, new_school.public)]
    # the node replaces the pin
    del world.district_store.peers[world.school.signing_key]
    world.district_store.peers[new_school.signing_key] = PinnedPeer(new_school.public)
    ev_i, ev_r = pump(world.connect(school=new_school), world.responder())
    assert _established(ev_r)[0].peer == new_school.public
    _refused(world, world.connect(), world.responder(), "unknown_peer")  # the old key no longer gets in


def test_rotation_presented_in_the_handshake(world):
    world.pin_school()
    new_school, statement = world.school.rotate(fresh32(b"new-school"))
    ev_i, ev_r = pump(world.connect(school=new_school, rotation=statement), world.responder())
    est = _established(ev_r)[0]
    assert est.rotated_from == world.school.signing_key and est.peer == new_school.public


def test_rotation_from_a_revoked_key_is_refused(world):
    world.pin_school(revoked=True)
    new_school, statement = world.school.rotate(fresh32(b"new-school"))
    _refused(world, world.connect(school=new_school, rotation=statement), world.responder(), "peer_revoked")


def test_rotation_signed_by_someone_else_is_refused(world):
    world.pin_school()
    thief = Identity(fresh32(b"thief"))
    _, statement = thief.rotate(fresh32(b"thief2"))
    new_thief = Identity(fresh32(b"thief3"))
    with pytest.raises(LocalProtocolError):  # our own code will not present it ...
        world.connect(school=new_thief, rotation=statement)
    i = world.connect(school=new_thief)
    i._rotations = (statement,)  # ... a hostile peer would
    _refused(world, i, world.responder(), "bad_rotation")


def test_in_session_rotation_for_another_key_is_refused(world):
    i, r = world.open_pair()
    other = Identity(fresh32(b"other"))
    _, statement = other.rotate(fresh32(b"other2"))
    i.send(KeyRotation(statement))
    with pytest.raises(RemoteProtocolError) as exc:
        r.receive_data(i.data_to_send())
    assert exc.value.code == "bad_rotation"


def test_large_message_is_chunked_and_reassembled(world):
    i, r = world.open_pair()
    data = bytes(range(256)) * 9000  # 2.3 MB
    i.send(SyncMessage("doc", data))
    wire = i.data_to_send()
    assert len(wire) > len(data)
    frames, pos = [], 0
    while pos < len(wire):
        n = int.from_bytes(wire[pos:pos + 2], "big")
        frames.append(n)
        pos += 2 + n
    assert max(frames) <= 65535 and len(frames) == -(-(len(data) + 10) // MAX_CHUNK)
    # any split of the stream works
    events = []
    for k in range(0, len(wire), 7777):
        events += r.receive_data(wire[k:k + 7777])
    assert events == [SyncMessage("doc", data)]


def test_reassembly_limit(world):
    i, r = world.open_pair(config=Config(max_message=100_000))
    i2 = i.config
    assert i2.max_message == 100_000
    with pytest.raises(LocalProtocolError) as exc:
        i.send(Release("doc", bytes(100_001)))
    assert exc.value.code == "message_too_large" and i.state is State.ERROR
    with pytest.raises(RemoteProtocolError) as exc:  # the peer is told, and ends too
        r.receive_data(i.data_to_send())
    assert exc.value.code == "peer_error" and "message_too_large" in str(exc.value)


def test_reassembly_limit_enforced_on_receipt(world):
    world.pin_school()
    i = world.connect(config=Config(max_message=1_000_000))
    r = world.responder(config=Config(max_message=100_000))
    pump(i, r)
    i.send(Receipt("doc", bytes(200_000)))
    with pytest.raises(RemoteProtocolError) as exc:
        r.receive_data(i.data_to_send())
    assert exc.value.code == "message_too_large"


def test_rekey_keeps_both_sides_in_step(world):
    i, r = world.open_pair(config=Config(rekey_every=3))
    key_before = i._send.k
    for n in range(10):
        i.send(SyncMessage("d", bytes([n]) * 10))
        r.send(SyncMessage("d", bytes([n]) * 5))
        assert r.receive_data(i.data_to_send()) == [SyncMessage("d", bytes([n]) * 10)]
        assert i.receive_data(r.data_to_send()) == [SyncMessage("d", bytes([n]) * 5)]
    assert i._send.k != key_before and i._send.k == r._recv.k


def test_session_frame_limit_forces_a_reconnect(world):
    i, r = world.open_pair(config=Config(max_frames=3))
    i.send(Want(("a",)))
    i.send(Want(("b",)))
    i.send(Want(("c",)))
    with pytest.raises(LocalProtocolError) as exc:
        i.send(Want(("d",)))
    assert exc.value.code == "session_exhausted"


def test_nonce_can_never_wrap():
    from preau.protocol.crypto import CryptoFailure
    from preau.protocol.noise import CipherState
    cs = CipherState(bytes(32))
    cs.n = 2**64 - 1
    with pytest.raises(CryptoFailure):
        cs.encrypt_with_ad(b"", b"x")
    with pytest.raises(LocalProtocolError):
        Config(max_frames=2**64)


def test_close_handshake(world):
    i, r = world.open_pair()
    i.close("finished")
    assert i.state is State.CLOSING
    ev_i, ev_r = pump(i, r)
    assert ev_r == [ConnectionClosed("finished", by_peer=True)]
    assert i.state is State.CLOSED and r.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        i.send(Want(()))


def test_hang_up_without_close_is_reported(world):
    i, r = world.open_pair()
    with pytest.raises(RemoteProtocolError) as exc:
        r.receive_data(b"")
    assert exc.value.code == "connection_lost" and "reconnect and sync again" in str(exc.value)


def test_a_hang_up_during_the_handshake_is_said_apart(world):
    """The district that dropped the key this school pins cannot read its first message and hangs up."""
    i = world.connect()
    i.data_to_send()
    with pytest.raises(RemoteProtocolError) as exc:
        i.receive_data(b"")
    assert exc.value.code == "handshake_lost"


def test_send_before_established_is_a_local_error(world):
    i = world.connect()
    with pytest.raises(LocalProtocolError) as exc:
        i.send(Want(()))
    assert exc.value.code == "invalid_state"


def test_a_failed_connection_stays_failed(world):
    _refused(world, world.connect(), r := world.responder(), "unknown_peer")
    with pytest.raises(LocalProtocolError):
        r.receive_data(b"x")


def test_district_refuses_a_join_for_another_school(world):
    """A hostile node bypasses its own local check and claims another school code with a valid invitation."""
    inv = world.invite()
    i = world.join(inv)
    i._uai = OTHER_UAI
    _, err = _refused(world, i, world.responder(), "invitation_foreign")
    assert "another school or district" in str(err)


def test_every_byte_delivered_on_its_own(world):
    """receive_data accepts any split: here the whole handshake and a message, one byte at a time."""
    world.pin_school()
    i, r = world.connect(), world.responder()
    ev_i, ev_r = [], []
    for _ in range(3):
        for b in i.data_to_send():
            ev_r += r.receive_data(bytes([b]))
        for b in r.data_to_send():
            ev_i += i.receive_data(bytes([b]))
    assert _established(ev_i) and _established(ev_r)
    i.send(SyncMessage("d", bytes(70000)))
    out = []
    for b in i.data_to_send():
        out += r.receive_data(bytes([b]))
    assert out == [SyncMessage("d", bytes(70000))]


def test_config_is_validated():
    for bad in (dict(versions=()), dict(rekey_every=0), dict(max_frames=2**64)):
        with pytest.raises(LocalProtocolError):
            Config(**bad)


def test_an_invitation_made_by_a_clock_far_from_ours_is_remarked_naming_both(world):
    from preau.protocol.invitation import clock_remark

    inv = world.invite()  # made at NOW by the district's clock
    assert clock_remark(inv, NOW + 3600) is None
    assert clock_remark(inv, NOW + 3 * 86400) == (
        "the district's clock was 72 hours behind this machine's when it made the invitation (it said "
        "2026-09-21 14:13:20 UTC; this machine says 2026-09-24 14:13:20 UTC): set the wrong clock right, "
        "or releases and invitations will look out of date")
    assert "ahead of" in clock_remark(inv, NOW - 2 * 86400)
    assert clock_remark(dataclasses.replace(inv, issued_at=None), NOW + 10 * 86400) is None
