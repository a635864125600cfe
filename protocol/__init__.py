"""The node-to-node protocol as sans-IO state machines: bytes in, events out.

Spec and threat model: docs/protocol.md. Pure: no sockets, files, clock or
randomness read here; ephemeral keys, seeds, secrets and `now` are arguments.
"""
from .connection import (
    Config, Connection, ConnectionClosed, Enrollment, Established, MemoryTrustStore, PeerKeyRotated, PinnedPeer, TrustStore,
)
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .identity import Identity, PublicIdentity, RotationStatement, node_id, parse_node_id, verify_signature
from .invitation import Invitation, IssuedInvitation
from .sync import DocumentSettled, SyncComplete, SyncSession
from .uai import parse_uai

__all__ = [
    "Config", "Connection", "ConnectionClosed", "Enrollment", "Established", "MemoryTrustStore", "PeerKeyRotated",
    "PinnedPeer", "TrustStore", "LocalProtocolError", "ProtocolError", "RemoteProtocolError", "Identity",
    "PublicIdentity", "RotationStatement", "node_id", "parse_node_id", "verify_signature", "Invitation",
    "IssuedInvitation", "DocumentSettled", "SyncComplete", "SyncSession", "parse_uai",
]
