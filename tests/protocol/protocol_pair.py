"""Helpers for protocol tests (a unique module name: test folders are not packages). An in-memory pair of endpoints: real Connections, bytes shuttled by hand, no sockets."""
from __future__ import annotations

import itertools

from preau.protocol.connection import Config, Connection, MemoryTrustStore, PinnedPeer
from preau.protocol.identity import Identity
from preau.protocol.invitation import Invitation

NOW = 1_790_000_000
SCHOOL_UAI = "0751234J"
OTHER_UAI = "0010856A"
_counter = itertools.count(1)


def fresh32(tag: bytes = b"") -> bytes:
    """Deterministic distinct 32-byte values (ephemerals, seeds) for tests."""
    return (tag + next(_counter).to_bytes(8, "big")).ljust(32, b"\x5a")[:32]


def pump(a: Connection, b: Connection, limit: int = 50):
    """Shuttle bytes both ways until neither side has anything to send; returns (events_a, events_b)."""
    ev_a, ev_b = [], []
    for _ in range(limit):
        out_a, out_b = a.data_to_send(), b.data_to_send()
        if not out_a and not out_b:
            return ev_a, ev_b
        if out_a:
            ev_b += b.receive_data(out_a)
        if out_b:
            ev_a += a.receive_data(out_b)
    raise AssertionError("pump did not settle")


class World:
    """A district and a school with their stores; helpers to enrol and connect."""

    def __init__(self):
        self.district = Identity(fresh32(b"district"))
        self.school = Identity(fresh32(b"school"))
        self.district_store = MemoryTrustStore()

    def invite(self, uai=SCHOOL_UAI, now=NOW, ttl=7 * 86400, issuer=None):
        inv = Invitation.create(issuer or self.district, uai=uai, addresses=["wss://circo.example:8443"], now=now, secret=fresh32(b"secret")[:16], ttl=ttl)
        if issuer is None:
            self.district_store.invitations[inv.id] = inv.record()
        return inv

    def responder(self, now=NOW, config=Config(), identity=None, store=None, retired=()):
        return Connection.responder(identity or self.district, store or self.district_store, ephemeral=fresh32(b"r-eph"),
                                    now=now, config=config, retired=tuple(retired))

    def join(self, inv, uai=SCHOOL_UAI, now=NOW, school=None):
        return Connection.initiator(school or self.school, join=inv, uai=uai, ephemeral=fresh32(b"i-eph"), now=now)

    def connect(self, school=None, peer=None, config=Config(), rotation=None):
        return Connection.initiator(school or self.school, peer or self.district.public, ephemeral=fresh32(b"i-eph"), now=NOW, config=config, rotation=rotation)

    def pin_school(self, school=None, revoked=False):
        school = school or self.school
        self.district_store.peers[school.signing_key] = PinnedPeer(school.public, revoked=revoked, uai=SCHOOL_UAI)

    def open_pair(self, config=Config()):
        self.pin_school()
        i, r = self.connect(config=config), self.responder(config=config)
        ev_i, ev_r = pump(i, r)
        assert i.state.value == r.state.value == "open"
        return i, r

