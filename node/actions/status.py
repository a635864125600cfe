"""What a node knows of itself and its peers (`preau status`, the web's /v1/status), and `preau sync`."""
from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from preau.node.runtime import Node

from .common import Progress, opened_node, tell
from .enrollment import peer_id


@dataclass(frozen=True, slots=True)
class Upstream:
    node_id: str
    address: str
    last_contact: int | None
    last_error: str | None
    name: str | None = None  # the district's own name, as its handshake gives it (older districts: none)
    last_error_code: str | None = None  # the same as a stable code (codes.refusal_words says it in words)


@dataclass(frozen=True, slots=True)
class Peer:
    node_id: str
    role: str  # "school", "child" (a district below), "parent"
    uai: str | None
    status: str  # active, revoked, rotated
    last_contact: int | None
    last_error: str | None
    last_error_code: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    kind: str
    campaign: str | None
    release: int


@dataclass(frozen=True, slots=True)
class Event:
    at: int
    kind: str
    detail: str
    params: Any  # the event's values (node.federation's event sentences are built from them)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    role: str
    node_id: str
    upstream: Upstream | None
    peers: tuple[Peer, ...]
    documents: tuple[Document, ...]
    unacknowledged: tuple[str, ...]  # "doc_id#number" of releases the node above has not acknowledged yet
    oldest_unacknowledged: int | None  # when the oldest of them was approved
    events: tuple[Event, ...]  # the ten latest

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `preau status --json` and /v1/status."""
        return asdict(self)


def node_status(node: Node) -> NodeStatus:
    up = node.federation.upstream()
    return NodeStatus(
        role=node.role,
        node_id=node.node_id,
        upstream=None if up is None else Upstream(peer_id(up), up["address"], up["last_contact"], up["last_error"],
                                                  up.get("name"), up.get("last_error_code")),
        peers=tuple(Peer(peer_id(p), p["role"], p["uai"], p["status"], p["last_contact"], p["last_error"],
                         p.get("last_error_code")) for p in node.fed.peers()),
        documents=tuple(Document(d.doc_id, d.kind, d.campaign, (node.fed.latest_release(d.doc_id) or (0,))[0])
                        for d in node.fed.documents()),
        unacknowledged=tuple(t["doc_id"] + f"#{t['number']}" for t in node.fed.transparency()
                             if t["receipt"] is None and not t["superseded"]),
        oldest_unacknowledged=node.oldest_unacknowledged() if up is not None else None,
        events=tuple(Event(e["at"], e["kind"], e["detail"], e["params"]) for e in node.fed.events(10)),
    )


def status(settings: Any, **_: Any) -> NodeStatus:
    with opened_node(settings) as node:
        return node_status(node)


@dataclass(frozen=True, slots=True)
class Received:
    kind: str
    doc_id: str
    release: int

    @property
    def campaign(self) -> str:
        """The campaign a document belongs to, from its id (crdt.schema.document_id: kind:campaign:owner...)."""
        parts = self.doc_id.split(":")
        return parts[1] if len(parts) > 2 and parts[1] != "-" else ""


@dataclass(frozen=True, slots=True)
class Synced:
    peer: str
    bytes_sent: int
    bytes_received: int
    received: tuple[Received, ...]
    acknowledged: tuple[tuple[str, int], ...]  # (doc_id, release) the node above acknowledged in this session
    refused: tuple[str, ...]
    peer_name: str | None = None  # the name the node above gave in its Welcome, for people


def sync_now(settings: Any, *, progress: Progress | None = None, **_: Any) -> Synced:
    """One sync session with the node above, now."""
    with opened_node(settings) as node:
        up = node.federation.upstream()
        if up is not None:
            tell(progress, "action.sync_contacting", address=up["address"])
        report = asyncio.run(node.sync_upstream())
        up = node.federation.upstream()
    return Synced(report.peer, report.bytes_sent, report.bytes_received,
                  tuple(Received(a.kind, a.doc_id, a.release) for a in report.accepted),
                  tuple((r["doc_id"], r["release"]) for r in report.receipts), tuple(str(r) for r in report.refused),
                  peer_name=(up or {}).get("name"))
