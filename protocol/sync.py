"""A sync session: one connection, many documents, each peer gets only what it may have.

Flow (see docs/protocol.md): each side sends one `Offer` (documents it can
sync, each with its latest signed release) and a `Want` (documents of the
peer's offer it wants). For every wanted document, Automerge sync messages
flow in ping-pong: each `SyncMessage` received is answered by the node with
`sync(doc_id, data)` or `sync(doc_id, None)` (sent as `SyncIdle`). A document
is settled when one idle went each way in a row, the session is complete when
both sides said `Done` and every wanted document is settled.

Entitlement is checked on everything that leaves: a document not entitled for
this peer cannot be offered, and nothing about it can be sent. What arrives is
checked against what was agreed, so a peer cannot push a document nobody
wanted. Automerge bytes and signed releases are opaque here: crdt/ checks them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from .connection import Connection, Established, PeerKeyRotated
from .errors import LocalProtocolError, RemoteProtocolError
from .identity import PublicIdentity
from .states import DOC_TRANSITIONS, DocState, State
from .wire import DocOffer, Done, Offer, PoolMail, Receipt, Release, SyncIdle, SyncMessage, Want

Entitlement = Callable[[PublicIdentity, str], bool]


@dataclass(frozen=True, slots=True)
class DocumentSettled:
    doc_id: str


@dataclass(frozen=True, slots=True)
class SyncComplete:
    documents: tuple[str, ...]


def _fails_connection(method):
    """A misuse of the session is a LocalProtocolError and, like every error, ends the connection."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except LocalProtocolError as exc:
            self.conn.fail(exc)
            raise
    return wrapper


class SyncSession:
    def __init__(self, conn: Connection, entitled: Entitlement):
        self.conn = conn
        self.entitled = entitled
        self.peer: PublicIdentity | None = conn.peer if conn.state is State.OPEN else None
        self.my_offers: dict[str, bytes | None] = {}
        self.peer_offers: dict[str, bytes | None] = {}
        self.docs: dict[str, DocState] = {}
        self._last_sent: dict[str, str | None] = {}
        self._last_recv: dict[str, str | None] = {}
        self._recv_since_send: dict[str, bool] = {}
        self._awaiting_reply: set[str] = set()
        self._offered = self._wanted = self._peer_offered = False
        self._done_sent = self._done_received = False
        self._complete_reported = False

    # --- outgoing ----------------------------------------------------------------

    def _require_open(self) -> None:
        if self.peer is None:
            raise LocalProtocolError("the session starts once the connection is established", code="invalid_state")

    def _require_entitled(self, doc_id: str, peer: PublicIdentity | None = None) -> None:
        peer = peer or self.peer
        if not self.entitled(peer, doc_id):
            raise LocalProtocolError(f"peer {peer.node_id} is not entitled to document {doc_id!r}", code="not_entitled")

    def _addressee(self) -> PublicIdentity:
        """Whom an offer or pool mail goes to: the established peer, or, as early data riding with handshake
        message 3 (Connection.may_send_early), the responder the initiator pinned and message 2 proved."""
        if self.peer is None and self.conn.may_send_early:
            return self.conn.peer
        self._require_open()
        return self.peer

    @property
    def offered(self) -> bool:
        return self._offered

    @_fails_connection
    def offer(self, docs: Mapping[str, bytes | None]) -> None:
        peer = self._addressee()
        if self._offered:
            raise LocalProtocolError("offer once per session", code="invalid_state")
        for doc_id in docs:
            self._require_entitled(doc_id, peer)
        msg = Offer(tuple(DocOffer(d, r) for d, r in docs.items()))
        self.conn.send(msg)
        self._offered = True
        self.my_offers = dict(docs)

    @_fails_connection
    def want(self, doc_ids: Iterable[str]) -> None:
        self._require_open()
        if self._wanted:
            raise LocalProtocolError("want once per session", code="invalid_state")
        ids = tuple(doc_ids)
        for d in ids:
            if d not in self.peer_offers:
                raise LocalProtocolError(f"document {d!r} was not offered by the peer", code="not_offered")
            self._require_entitled(d)  # we will send sync messages about it too
        self.conn.send(Want(ids))
        self._wanted = True
        for d in ids:
            self._activate(d)

    @_fails_connection
    def sync(self, doc_id: str, data: bytes | None) -> list:
        """Send an Automerge sync message for `doc_id`, or None when there is nothing to say.

        Returns DocumentSettled (and SyncComplete) when this idle settled the document.
        """
        self._require_active(doc_id)
        self._awaiting_reply.discard(doc_id)
        if data is None:
            self.conn.send(SyncIdle(doc_id))
            if self._record(doc_id, "sent", "idle"):
                return [DocumentSettled(doc_id), *self._check_complete()]
        else:
            self.conn.send(SyncMessage(doc_id, data))
            self._record(doc_id, "sent", "sync")
        return []

    @_fails_connection
    def release(self, doc_id: str, data: bytes) -> None:
        self._require_active(doc_id)
        self.conn.send(Release(doc_id, data))

    @_fails_connection
    def receipt(self, doc_id: str, data: bytes) -> None:
        self._require_active(doc_id)
        self.conn.send(Receipt(doc_id, data))

    @_fails_connection
    def pool_mail(self, data: bytes) -> None:
        """Send one secure-aggregation message (the node decides which, and is told of incoming ones as PoolMail events)."""
        self._addressee()
        self.conn.send(PoolMail(data))

    @_fails_connection
    def done(self) -> list:
        """Say we have offered and wanted everything; returns SyncComplete if that finished the session."""
        self._require_open()
        if not (self._offered and self._wanted):
            raise LocalProtocolError("send offer() and want() (even empty) before done()", code="invalid_state")
        if not self._done_sent:
            self.conn.send(Done())
            self._done_sent = True
        return self._check_complete()

    def _require_active(self, doc_id: str) -> None:
        self._require_open()
        if doc_id not in self.docs:
            raise LocalProtocolError(f"document {doc_id!r} is not being synced in this session (not wanted)", code="not_offered")
        self._require_entitled(doc_id)

    # --- incoming ------------------------------------------------------------

    def receive_data(self, data: bytes) -> list:
        out: list = []
        for ev in self.conn.receive_data(data):
            try:
                out.extend(self._handle(ev))
            except RemoteProtocolError as exc:
                self.conn.fail(exc)
                raise
        return out

    def data_to_send(self) -> bytes:
        return self.conn.data_to_send()

    def _handle(self, ev) -> list:
        if isinstance(ev, Established):
            self.peer = ev.peer
            return [ev]
        if isinstance(ev, PeerKeyRotated):
            self.peer = ev.new
            return [ev]
        if isinstance(ev, Offer):
            if self._peer_offered:
                raise RemoteProtocolError("the peer offered twice in one session", code="unexpected_message")
            self._peer_offered = True
            self.peer_offers = {d.doc_id: d.release for d in ev.docs}
            return [ev]
        if isinstance(ev, Want):
            for d in ev.doc_ids:
                if d not in self.my_offers:
                    raise RemoteProtocolError(f"the peer wants {d!r}, which we did not offer", code="not_offered")
            for d in ev.doc_ids:
                self._activate(d)
            return [ev]
        if isinstance(ev, (SyncMessage, SyncIdle, Release, Receipt)):
            if ev.doc_id not in self.docs:
                raise RemoteProtocolError(f"the peer sent data for {ev.doc_id!r}, which is not being synced", code="unexpected_document")
            if isinstance(ev, SyncMessage):
                self._record(ev.doc_id, "recv", "sync")
            elif isinstance(ev, SyncIdle) and self._record(ev.doc_id, "recv", "idle"):
                return [ev, DocumentSettled(ev.doc_id), *self._check_complete()]
            return [ev]
        if isinstance(ev, Done):
            self._done_received = True
            return [ev, *self._check_complete()]
        return [ev]

    # --- per-document state ----------------------------------------------------------

    def _activate(self, doc_id: str) -> None:
        if doc_id in self.docs:  # wanted by both sides: one ping-pong, already under way
            return
        self.docs[doc_id] = DocState.SYNCING
        self._last_sent[doc_id] = self._last_recv[doc_id] = None
        self._recv_since_send[doc_id] = False

    def _record(self, doc_id: str, direction: str, kind: str) -> bool:
        """Track the ping-pong; True when this event settled the document.

        Every SyncMessage received must be answered (SyncMessage or SyncIdle).
        An idle received when our last word was idle needs no answer: the
        document is settled. Sending idle right after receiving one settles it
        too. Idles carry no data, so settled means no sync message is unanswered.
        """
        before = self.docs[doc_id]
        settles = False
        if direction == "sent":
            settles = kind == "idle" and self._recv_since_send[doc_id] and self._last_recv[doc_id] == "idle"
            self._last_sent[doc_id], self._recv_since_send[doc_id] = kind, False
        else:
            settles = kind == "idle" and self._last_sent[doc_id] == "idle"
            self._last_recv[doc_id], self._recv_since_send[doc_id] = kind, True
            if not settles:
                self._awaiting_reply.add(doc_id)
        if kind == "sync":
            self.docs[doc_id] = DOC_TRANSITIONS[(before, "sync")]
        elif settles and before is DocState.SYNCING:
            self.docs[doc_id] = DOC_TRANSITIONS[(before, "both_idle")]
            return True
        return False

    @property
    def awaiting_reply(self) -> frozenset[str]:
        """Documents for which the peer spoke last: call sync(doc_id, ...) for each."""
        return frozenset(self._awaiting_reply)

    @property
    def complete(self) -> bool:
        return self._done_sent and self._done_received and all(s is DocState.DONE for s in self.docs.values())

    def _check_complete(self) -> list:
        if self.complete and not self._complete_reported:
            self._complete_reported = True
            return [SyncComplete(tuple(sorted(self.docs)))]
        return []
