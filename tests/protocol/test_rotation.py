"""Key rotation that keeps a federation together: a rotated responder (district, académie) is still reached
on its old key during the overlap and tells the peer; a node that rotated twice presents the chain."""
from __future__ import annotations

import copy

import pytest

from preau.protocol.connection import Connection, Established, PeerKeyRotated, PinnedPeer
from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.identity import Identity, RetiredIdentity, retired_chain, verify_chain
from preau.protocol.states import State
from preau.protocol.wire import Hello, KeyRotation

from protocol_pair import NOW, SCHOOL_UAI, fresh32, pump


def _established(events):
    return [e for e in events if isinstance(e, Established)]


def _rotated(events):
    return [e for e in events if isinstance(e, PeerKeyRotated)]


def _rotate_district(world, times=1):
    """Rotate the district `times`; returns (current identity, retired identities oldest first, all keys)."""
    keys, retired = [world.district], []
    for n in range(times):
        new, statement = keys[-1].rotate(fresh32(b"district-next"))
        retired.append(RetiredIdentity(keys[-1], statement))
        keys.append(new)
    return keys[-1], retired, keys


def _refusal(i, r, code):
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())
    with pytest.raises(RemoteProtocolError) as exc_r:
        r.receive_data(i.data_to_send())
    with pytest.raises(RemoteProtocolError) as exc_i:
        i.receive_data(r.data_to_send())
    assert exc_r.value.code == exc_i.value.code == code and r.state is i.state is State.ERROR
    return exc_i.value


# -- a rotated responder (district below, académie above) -------------------------------------


def test_school_pinning_the_old_district_key_is_told_of_the_rotation(world):
    world.pin_school()
    current, retired, (old, new) = _rotate_district(world)
    i = world.connect(peer=old.public)
    r = world.responder(identity=current, retired=retired)
    ev_i, ev_r = pump(i, r)
    assert i.state is r.state is State.OPEN
    [est_i], [est_r] = _established(ev_i), _established(ev_r)
    assert est_i.peer == old.public and est_r.peer == world.school.public
    assert est_r.reached_retired == old.signing_key
    assert _rotated(ev_i) == [PeerKeyRotated(old.signing_key, new.public)]
    assert i.peer == new.public
    # the school moves its pin; the next session reaches the new key directly and hears of nothing
    ev_i, ev_r = pump(world.connect(peer=new.public), world.responder(identity=current, retired=retired))
    assert _established(ev_i)[0].peer == new.public and not _rotated(ev_i)
    assert _established(ev_r)[0].reached_retired is None


def test_without_the_retired_key_the_school_is_cut_off(world):
    """What the overlap prevents: the old key gone, a school pinning it cannot even finish the handshake."""
    world.pin_school()
    current, _, (old, _new) = _rotate_district(world)
    i, r = world.connect(peer=old.public), world.responder(identity=current)
    with pytest.raises(RemoteProtocolError) as exc:
        r.receive_data(i.data_to_send())
    assert exc.value.code == "handshake_failed"


def test_two_district_rotations_are_announced_in_order(world):
    world.pin_school()
    current, retired, keys = _rotate_district(world, times=2)
    ev_i, _ = pump(world.connect(peer=keys[0].public), world.responder(identity=current, retired=retired))
    assert _rotated(ev_i) == [PeerKeyRotated(keys[0].signing_key, keys[1].public),
                              PeerKeyRotated(keys[1].signing_key, keys[2].public)]
    # a school that heard of the first rotation only hears of the second
    ev_i, _ = pump(world.connect(peer=keys[1].public), world.responder(identity=current, retired=reversed(retired)))
    assert _rotated(ev_i) == [PeerKeyRotated(keys[1].signing_key, keys[2].public)]


def test_an_invitation_issued_by_the_old_district_key_still_enrols(world):
    inv = world.invite()  # issued before the rotation
    current, retired, (old, new) = _rotate_district(world)
    ev_i, ev_r = pump(world.join(inv), world.responder(identity=current, retired=retired))
    assert _established(ev_r)[0].enrollment.uai == SCHOOL_UAI
    assert _established(ev_i)[0].peer == old.public and _rotated(ev_i)[-1].new == new.public


def test_the_old_key_admits_nobody_new(world):
    """Answering on a retired key changes nothing about who gets in."""
    current, retired, (old, _new) = _rotate_district(world)
    stranger = Identity(fresh32(b"stranger"))
    i = world.connect(school=stranger, peer=old.public)
    _refusal(i, world.responder(identity=current, retired=retired), "unknown_peer")


def test_retired_keys_must_lead_to_the_current_key(world):
    current, retired, _ = _rotate_district(world, times=2)
    with pytest.raises(LocalProtocolError):
        world.responder(identity=current, retired=retired[:1])  # the link to the current key is missing
    other = Identity(fresh32(b"other"))
    with pytest.raises(LocalProtocolError):
        world.responder(identity=other, retired=retired)
    with pytest.raises(LocalProtocolError):
        RetiredIdentity(other, retired[0].statement)  # a statement signed by another key
    assert retired_chain(reversed(retired), current) == tuple(retired)


# -- a rotated initiator (school below a district, district below an académie) ----------------


def _rotate_school(world, times):
    keys, statements = [world.school], []
    for _ in range(times):
        new, statement = keys[-1].rotate(fresh32(b"school-next"))
        keys.append(new)
        statements.append(statement)
    return keys, statements


def test_a_school_that_rotated_twice_presents_the_chain(world):
    world.pin_school()
    keys, statements = _rotate_school(world, 2)
    ev_i, ev_r = pump(world.connect(school=keys[2], rotation=statements), world.responder())
    est = _established(ev_r)[0]
    assert est.rotated_from == keys[0].signing_key and est.peer == keys[2].public


def test_the_last_statement_alone_strands_a_school_that_rotated_twice(world):
    """What the chain prevents: the district pins the first key and cannot follow K1 -> K2 alone."""
    world.pin_school()
    keys, statements = _rotate_school(world, 2)
    _refusal(world.connect(school=keys[2], rotation=statements[-1]), world.responder(), "unknown_peer")


def test_the_chain_is_followed_from_the_newest_key_pinned(world):
    keys, statements = _rotate_school(world, 2)
    # the district heard of the first rotation: K0 replaced by K1, K1 pinned
    world.district_store.peers[keys[0].signing_key] = PinnedPeer(keys[0].public, revoked=True, replaced_by=keys[1].signing_key)
    world.district_store.peers[keys[1].signing_key] = PinnedPeer(keys[1].public, uai=SCHOOL_UAI)
    _, ev_r = pump(world.connect(school=keys[2], rotation=statements), world.responder())
    assert _established(ev_r)[0].rotated_from == keys[1].signing_key


def test_a_key_rotated_away_cannot_come_back_nor_fork(world):
    keys, statements = _rotate_school(world, 1)
    world.district_store.peers[keys[0].signing_key] = PinnedPeer(keys[0].public, revoked=True, replaced_by=keys[1].signing_key)
    world.district_store.peers[keys[1].signing_key] = PinnedPeer(keys[1].public, uai=SCHOOL_UAI)
    err = _refusal(world.connect(school=keys[0]), world.responder(), "key_superseded")  # a restored old backup
    assert "newest backup" in err.message
    fork, statement = keys[0].rotate(fresh32(b"fork"))  # the old key signing another successor
    _refusal(world.connect(school=fork, rotation=statement), world.responder(), "key_superseded")


def test_a_chain_from_a_revoked_key_is_refused(world):
    world.pin_school(revoked=True)
    keys, statements = _rotate_school(world, 2)
    _refusal(world.connect(school=keys[2], rotation=statements), world.responder(), "peer_revoked")


def test_a_chain_must_link_and_end_at_the_key_used(world):
    keys, statements = _rotate_school(world, 2)
    with pytest.raises(LocalProtocolError):
        world.connect(school=keys[2], rotation=statements[::-1])
    with pytest.raises(LocalProtocolError):
        world.connect(school=keys[1], rotation=statements)
    with pytest.raises(RemoteProtocolError) as exc:
        verify_chain(statements[::-1])
    assert exc.value.code == "bad_rotation"
    with pytest.raises(RemoteProtocolError):
        verify_chain([statements[0]] * 9)


def test_a_forged_chain_on_the_wire_is_refused(world):
    """A Hello whose chain does not link (built by hand, as a hostile peer would) is refused."""
    world.pin_school()
    keys, statements = _rotate_school(world, 2)
    other, other_statement = Identity(fresh32(b"x")).rotate(fresh32(b"y"))
    i = world.connect(school=keys[2], rotation=statements)
    i._rotations = (other_statement, statements[1])  # bypass the initiator's own check
    _refusal(i, world.responder(), "bad_rotation")


def test_both_sides_rotated_at_once(world):
    world.pin_school()
    keys, statements = _rotate_school(world, 1)
    current, retired, (old, new) = _rotate_district(world)
    i = world.connect(school=keys[1], peer=old.public, rotation=statements)
    ev_i, ev_r = pump(i, world.responder(identity=current, retired=retired))
    assert _established(ev_r)[0].rotated_from == keys[0].signing_key
    assert _rotated(ev_i) == [PeerKeyRotated(old.signing_key, new.public)]


def test_hello_chain_round_trips_and_old_peers_ignore_it():
    hello = Hello((1,), rotation=b"last", earlier_rotations=(b"first", b"second"))
    assert Hello.decode_body(hello.encode_body()) == hello
    assert Hello.decode_body(Hello((1,)).encode_body()).earlier_rotations == ()


def test_garbage_message_1_to_a_responder_with_retired_keys_is_only_refused(world):
    """Trying several keys on message 1 raises nothing but RemoteProtocolError, whatever arrives."""
    import random
    current, retired, _ = _rotate_district(world, times=2)
    rng = random.Random(18)
    for n in range(200):
        body = rng.randbytes(rng.choice([0, 1, 31, 32, 48, 49, 80, 200]))
        r = world.responder(identity=current, retired=retired)
        with pytest.raises(RemoteProtocolError):
            r.receive_data(b"PREAU\x01" + len(body).to_bytes(2, "big") + body)
        assert r.state is State.ERROR
