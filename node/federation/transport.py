"""Carrying the protocol's bytes over a WebSocket, and driving one sync session per connection.

All networking of the federation is here (as magic-wormhole keeps its own in
one module): the protocol state machines stay pure, `Federation` decides what
to offer, want and keep, and this module only pumps bytes and applies limits.

Why one module of about 510 lines: one session's life, from both ends. The
driver (`SessionDriver`) applies what arrives, the pump (`_pump`, `_run`)
moves it and turns each way a session can end into a report, and the two
entry points (`open_session`, `serve_session`) differ only in how the socket
is opened; split, each half would be read with the other.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import aiohttp
import automerge.core as am
from aiohttp import web

from preau.crdt.docio import change_hashes, changes_since, generate_sync_message, receive_sync_message
from preau.crdt.weight import MAX_INFLATED, MAX_ROWS, weigh_document
from preau.crdt.errors import CampaignRefusedError, CrdtError
from preau.crdt.signing import SignedRelease
from preau.protocol.connection import TRANSIENT, Config, Connection, ConnectionClosed, Established, PeerKeyRotated
from preau.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from preau.protocol.identity import PublicIdentity, node_id
from preau.protocol.invitation import Invitation
from preau.protocol.states import State
from preau.protocol.sync import DocumentSettled, SyncComplete, SyncSession
from preau.protocol.wire import Message, Offer, PoolMail, Receipt, SyncMessage, Want

from preau.node import faults
from preau.node.aio import within
from preau.node.errors import UserError, network_reason, said
from preau.node.listener import client_address
from preau.node.federation.gate import Limits, SessionGate
from preau.node.federation.pools import PoolMailbox
from preau.node.federation.rules import Federation
from preau.node.federation.store import FedStoreError
from preau.node.testhooks import capture_wire, capturing_wire, unprotected

log = logging.getLogger("preau.sync")

SYNC_PATH = "/v1/sync"
WS_BATCH = 256 * 1024              # protocol frames are grouped into WebSocket messages up to this size ...
WS_MAX = WS_BATCH + 65536 + 1024   # ... so no WebSocket message is larger than this (a batch plus one frame)


@dataclass
class SessionReport:
    """What one session did, for the status page, the logs and the tests."""

    peer: str | None = None
    accepted: list = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    receipts: list[dict] = field(default_factory=list)
    bytes_sent: int = 0
    bytes_received: int = 0
    complete: bool = False
    error: str | None = None  # English, for logs and scripts
    error_code: str | None = None  # the same, as a stable code (a refusal's code in protocol.connection.REFUSALS)


class SessionDriver:
    """One connection's sync session: offers, wants, Automerge per document, verification on arrival."""

    def __init__(self, federation: Federation, conn: Connection, limits: Limits,
                 on_established: Callable[[PublicIdentity], None] | None = None,
                 gate: SessionGate | None = None):
        self.fedn = federation
        self.on_established = on_established
        self.gate = gate
        self.conn = conn
        self.limits = limits
        self.session = SyncSession(conn, self._entitled)
        self.pools = PoolMailbox(federation)
        self.docs: dict[str, am.Document] = {}
        self.states: dict[str, am.SyncState] = {}
        self.pending: dict[str, tuple[SignedRelease, bytes]] = {}
        self.report = SessionReport()
        self.finished = False
        self.closing = False  # we sent Close: nothing more may be sent
        self._must_offer = False
        self._counted_later = False  # an early offer left the counted pool mail for after the Welcome
        self._depth = 0  # nested handle() calls: replies wait for the outermost, once every event is applied
        self.gate_token: object | None = None  # the server side's ticket at the gate (SessionGate.open)
        self.in_session = False  # counted among the gate's authenticated sessions
        self._wanted = False
        self.asked: set[str] = set()  # documents we wanted from this peer in this session
        self.rows_received = 0  # operations and changes the peer's sync messages built (crdt.weight)
        self.known: dict[str, set[bytes]] = {}  # change hashes of each document being received, kept up to date
        # Test runs only (node/testhooks.py): where every received protocol message is written down.
        self.capture = federation.fed.path.parent if capturing_wire() else None

    def _entitled(self, peer: PublicIdentity, doc_id: str) -> bool:
        """Checked on every read: what we offer, and every message we send about a document.

        The federation rule (`may_send`), or a document we asked this peer for: one whose offer carried a
        valid signature by the key its id names (`Federation.wanted`), newer than our copy. Merely offering
        an id is not enough: a peer could name a document it may not read and be sent our copy.
        """
        if unprotected("entitlement"):
            return doc_id in self.session.peer_offers or self.fedn.may_send(peer, doc_id)
        return doc_id in self.asked or self.fedn.may_send(peer, doc_id)

    # -- bytes ---------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        if data and self.gate is not None and self.gate_token is not None and not self.in_session:
            self.gate.progress(self.gate_token)
        try:
            self.report.bytes_received += len(data)
            if self.report.bytes_received > self.limits.max_session_bytes:
                raise RemoteProtocolError(
                    f"the peer sent more than {self.limits.max_session_bytes} bytes in one session; sync again to go on",
                    code="session_too_large")
            events = self.session.receive_data(data)
            if self.capture is not None:  # each message as decrypted from the session, before it is handled
                capture_wire(self.capture, [(ev.TYPE, ev.encode()) for ev in events if isinstance(ev, Message)])
            self.handle(events)
        except RemoteProtocolError as exc:
            self.conn.fail(exc)  # the peer learns why (a no-op when the connection failed by itself)
            raise

    def outgoing(self) -> list[bytes]:
        """What to send, as WebSocket messages of at most WS_BATCH bytes (whole protocol frames each).

        One flush can hold many protocol messages (an offer and a sync message
        for every document): sent as one WebSocket message it could exceed the
        peer's WebSocket limit although each protocol message is within its own.
        """
        batches: list[bytes] = []
        current: list[bytes] = []
        size = 0
        for frame in self.conn.frames_to_send():
            if current and size + len(frame) > WS_BATCH:
                batches.append(b"".join(current))
                current, size = [], 0
            current.append(frame)
            size += len(frame)
        if current:
            batches.append(b"".join(current))
        self.report.bytes_sent += sum(map(len, batches))
        return batches

    # -- events ------------------------------------------------------------------------

    def handle(self, events: list) -> None:
        self._depth += 1
        try:
            self._handle(events)
        finally:
            self._depth -= 1

    def _handle(self, events: list) -> None:
        for ev in events:
            if self.finished:  # refused at admission: what the peer sent early with its handshake is not read
                break
            if isinstance(ev, Established):
                self._established(ev)
                continue
            if isinstance(ev, PeerKeyRotated):
                # Right after Established, before offering: the offer is made to the key the peer moved to.
                self.fedn.rotate_pin(ev.old_signing_key, ev.new)
                continue
            self._offer_once()
            if isinstance(ev, Offer):
                self._offer(ev)
            elif isinstance(ev, Want):
                for doc_id in ev.doc_ids:
                    self._open(doc_id)
            elif isinstance(ev, SyncMessage):
                self._sync(ev.doc_id, ev.data)
            elif isinstance(ev, Receipt):
                self._receipt(ev.doc_id, ev.data)
            elif isinstance(ev, PoolMail):
                for reply in self.pools.incoming(self.session.peer, ev.data):
                    if not (self.closing or self.finished) and self.conn.state is State.OPEN:
                        self.session.pool_mail(reply)  # else it goes at the next session: it stays queued
            elif isinstance(ev, DocumentSettled):
                if ev.doc_id in self.pending:
                    self.pending.pop(ev.doc_id)
                    self._refuse(ev.doc_id, "the peer did not send every change its signed release covers")
            elif isinstance(ev, SyncComplete):
                self.report.complete = True
                self.closing = True
                self.conn.close("sync complete")
            elif isinstance(ev, ConnectionClosed):
                self.finished = True
        self._offer_once()
        if self.finished or self.session.peer is None or self._depth > 1:
            return
        # Replies wait for the outermost call: the session marks a document as awaiting our reply when it
        # reads the peer's message, and the reply must come after that message is applied (a reply made
        # while handling an earlier event of the same batch would answer a state the peer has moved on from).
        # Replies can nest (a reply settles a document, which completes the session): re-check before each.
        for doc_id in sorted(self.session.awaiting_reply):
            if self.closing or self.finished:
                return
            if doc_id in self.session.awaiting_reply:
                self._reply(doc_id)

    def _turn_away(self, code: str, message: str, error: str, retry_after: int | None = None) -> None:
        """End this session at admission: the peer hears `code` and `message` (its words), the report says `error`."""
        self.conn.refuse(code, message, retry_after=retry_after)
        self.report.error, self.report.error_code = error, code
        self.finished = True

    def _established(self, ev: Established) -> None:
        self.report.peer = ev.peer.node_id
        gate, retry = self.gate, self.limits.busy_retry_after
        if gate is not None and self.gate_token is not None:
            self.in_session = gate.authenticated(self.gate_token)
            if not self.in_session:
                return self._turn_away("busy", f"{self.limits.max_concurrent_sessions} sessions already: try again "
                                       f"in {retry} s", "refused: busy with other sessions", retry)
            if not gate.hold(self.gate_token, ev.peer.signing_key):
                return self._turn_away("too_many_sessions", f"this node already has {self.limits.max_sessions_per_peer} "
                                       f"sync sessions open here: try again in {retry} s",
                                       "refused: too many sessions at once from this peer", retry)
        if gate is not None and not gate.admit(ev.peer.signing_key):
            return self._turn_away("rate_limited", f"too many sync sessions from this node (at most "
                                   f"{self.limits.sessions_per_minute} a minute): wait a minute and sync again",
                                   "refused: too many sessions from this peer")
        if self.on_established is not None:
            self.on_established(ev.peer)
        if self.conn.is_initiator and ev.peer_name:
            self.fedn.name_upstream(ev.peer, ev.peer_name)
        if ev.rotated_from is not None and not self.conn.is_initiator:
            self.fedn.rotate_pin(ev.rotated_from, ev.peer)  # first: a `join --again` may come with a rotation
        if ev.enrollment is not None and not self.conn.is_initiator:
            if not self.fedn.pin_child(ev.peer, ev.enrollment.uai, ev.enrollment.invitation_id):
                return self._turn_away("invitation_used", "this invitation has already been used: ask your district "
                                       "for a new one", "refused: invitation already used")
        if ev.reached_retired is not None:
            log.info("%s still knew this node by its old key %s: told it of the rotation", ev.peer.node_id,
                     node_id(ev.reached_retired))
        self.fedn.fed.note_contact(ev.peer.signing_key.hex())  # written with the session's commit
        self._must_offer = True

    def _offer_once(self) -> None:
        """Make this side's one Offer: once the peer is established (and any key rotation it announced applied),
        or, for an initiator that is not joining, as soon as message 2 proved the responder, so that the offer
        rides with handshake message 3 (one round trip less; the responder reads it after admitting us)."""
        if self.finished:
            return
        if self.session.offered:
            if self._must_offer and self._counted_later:  # admitted after an early offer: the counted mail goes now
                self._must_offer = self._counted_later = False
                for mail in self.pools.outgoing(self.session.peer, counted=True):
                    self.session.pool_mail(mail)
            return
        # Early only to a node pinned here already: a district this node is re-pinning on Established
        # (`preau join --again`) is entitled to nothing yet, and an offer made now would be empty.
        if self._must_offer or (self.conn.may_send_early and self.fedn.peer_role(self.conn.peer) is not None):
            early = not self._must_offer
            self._must_offer = False
            peer = self.session.peer or self.conn.peer
            # Before the offer: answers then come back before the peer's Done. Early, not the mail sent a counted
            # number of times ("the pool is over"): a peer that then refuses the session (busy, rate-limited)
            # never reads it, and each such refusal would use up one of its sends.
            for mail in self.pools.outgoing(peer, counted=False if early else None):
                self.session.pool_mail(mail)
            self.session.offer(self.fedn.offers_for(peer))
            self._counted_later = early

    def _offer(self, ev: Offer) -> None:
        peer = self.session.peer
        if len(ev.docs) > self.limits.max_docs_per_session:
            raise RemoteProtocolError(
                f"the peer offered {len(ev.docs)} documents; at most {self.limits.max_docs_per_session} per session",
                code="too_many_documents")
        wants = []
        for offer in ev.docs:
            signed = self.fedn.wanted(peer, offer.doc_id, offer.release)
            if signed is not None:
                self.pending[offer.doc_id] = (signed, self.fedn.expected_owner(peer, signed))
                wants.append(offer.doc_id)
                self.asked.add(offer.doc_id)
        self.session.want(wants)
        for doc_id in wants:
            self._open(doc_id)
            self._reply(doc_id)
        self.handle(self.session.done())

    def _open(self, doc_id: str) -> None:
        if doc_id not in self.docs:
            if len(self.docs) >= self.limits.max_docs_per_session:
                raise RemoteProtocolError(
                    f"the session would hold more than {self.limits.max_docs_per_session} documents",
                    code="too_many_documents")
            if doc_id in self.pending and self.pending[doc_id][1] == self.fedn.key:
                # One of our own releases, taken back from the node above (`Federation.take_back`): received into
                # an empty document, so that the sync sends it nothing of ours. Our copy may hold releases approved
                # since a restore and not checked against what the node above holds: they must not leave this way.
                self.docs[doc_id] = am.Document()
                self.states[doc_id] = am.SyncState()
                return
            if doc_id in self.pending:  # what it holds already counts: sessions within bounds add up otherwise
                self.rows_received += self._held_rows(doc_id)
            self.docs[doc_id] = self._working_copy(doc_id) or am.Document()
            self.states[doc_id] = am.SyncState()

    def _working_copy(self, doc_id: str) -> am.Document | None:
        """Our stored copy, or None. A damaged copy of a document we are receiving is taken afresh from its
        owner (the signed release says what it must hold); a damaged one of ours ends this session, by name."""
        try:
            return self.fedn.working_copy(doc_id)
        except CrdtError as exc:
            if doc_id not in self.pending:
                refusal = LocalProtocolError(f"this node's copy of {doc_id} is damaged ({exc}): restore a backup",
                                             code="document_error")
                self.conn.fail(refusal)  # the peer hears why
                raise refusal from None
            log.warning("the stored copy of %s is damaged (%s): taking it afresh from its owner", doc_id, exc)
            return None

    def _held_rows(self, doc_id: str) -> int:
        stored = self.fedn.fed.document(doc_id)
        try:
            return weigh_document(stored.data).rows if stored is not None else 0
        except CrdtError:  # our own copy: loading it says what is wrong with it
            return 0

    def _reply(self, doc_id: str) -> None:
        self._open(doc_id)
        try:
            data = generate_sync_message(self.docs[doc_id], self.states[doc_id])
        except CrdtError as exc:
            raise LocalProtocolError(f"could not prepare document {doc_id}: {exc}", code="document_error") from None
        self.handle(self.session.sync(doc_id, data))

    def _sync(self, doc_id: str, data: bytes) -> None:
        self._open(doc_id)
        # Only documents we asked for may bring changes; documents we offered are ours (or carried) and
        # the peer has nothing to add to them.
        ours = doc_id not in self.pending and (doc_id not in self.session.peer_offers or self._own(doc_id))
        # What the session's messages build is bounded as their bytes are: Automerge's compact encoding lets
        # a few bytes describe millions of operations, so each message is weighed before it is applied.
        rows_left = max(0, self.limits.max_session_rows - self.rows_received)
        bytes_left = self.limits.max_session_bytes - self.report.bytes_received + len(data)
        before = self.docs[doc_id].get_heads()
        try:
            weight = receive_sync_message(self.docs[doc_id], self.states[doc_id], data, accept_changes=not ours,
                                          max_rows=min(rows_left, MAX_ROWS), max_bytes=min(bytes_left, MAX_INFLATED))
        except CrdtError as exc:
            code = exc.code if exc.code == "sync_message_too_heavy" else "bad_sync_message"  # the first has words
            raise RemoteProtocolError(f"the peer sent a bad sync message for {doc_id}: {exc}", code=code) from None
        self.rows_received += weight.rows
        self.report.bytes_received += weight.inflated - len(data)
        if doc_id in self.pending and self._heads_arrived(doc_id, before):
            self._try_accept(doc_id)

    def _own(self, doc_id: str) -> bool:
        """A document this node writes: the node above offers it back (`Federation.take_back`), and changes
        come into it only as a release this node signed and does not hold (then it is pending)."""
        found = self.fedn.fed.kind_and_owner(doc_id)
        return found is not None and found[1] == self.fedn.key.hex()

    def _heads_arrived(self, doc_id: str, before: list[bytes]) -> bool:
        """Whether every signed head is here, reading the document's whole history once and then only what each
        message brought: read whole at every message, a stream of empty 5-byte sync messages made each cost the
        whole history (20,000 changes: ~20 ms a message, the GIL held)."""
        known = self.known.get(doc_id)
        if known is None:
            known = self.known[doc_id] = change_hashes(self.docs[doc_id])
        else:
            known |= changes_since(self.docs[doc_id], before)
        return set(self.pending[doc_id][0].heads) <= known

    def _try_accept(self, doc_id: str) -> None:
        signed, owner = self.pending[doc_id]
        try:
            accepted = self.fedn.try_accept(self.session.peer, self.docs[doc_id], signed, owner)
        except (CrdtError, FedStoreError) as exc:  # FedStoreError: a document id already stored for another owner
            self.pending.pop(doc_id)
            self._refuse(doc_id, str(exc))
            if isinstance(exc, CampaignRefusedError):  # shown to the head teacher in words (sync page)
                self.fedn.fed.log_event("campaign_refused", f"{doc_id}: {exc}", code=exc.code, values=exc.params,
                                        doc_id=doc_id)
            return
        if accepted is None:
            return  # heads not all here yet
        self.pending.pop(doc_id)
        if accepted.duplicate:
            return
        self.report.accepted.append(accepted)
        if accepted.receipt is not None:
            self.session.receipt(doc_id, json.dumps(accepted.receipt.to_dict()).encode())

    def _receipt(self, doc_id: str, data: bytes) -> None:
        try:
            receipt = json.loads(data)
            number = receipt.get("release", 0)
            if receipt.get("doc_id") != doc_id or type(number) is not int:
                raise ValueError
        except (ValueError, AttributeError, RecursionError):  # RecursionError: JSON nested past the stack
            raise RemoteProtocolError("the peer sent a receipt that cannot be read", code="bad_receipt") from None
        self.fedn.fed.log_receipt(doc_id, number, receipt)
        self.report.receipts.append(receipt)

    def _refuse(self, doc_id: str, why: str) -> None:
        peer = self.session.peer.node_id if self.session.peer else "?"
        self.report.refused.append(f"{doc_id}: {why}")
        peer_key = self.session.peer.signing_key if self.session.peer else b""
        self.fedn.refused_event(peer_key, f"{doc_id} from {peer}: {why}", doc_id=doc_id, peer=peer)
        log.warning("refused %s from %s: %s", doc_id, peer, why)


def _config(limits: Limits, name: str | None = None) -> Config:
    return Config(max_message=limits.max_message_bytes, name=name)


async def _send(ws, batches: list[bytes]) -> None:
    for batch in batches:
        if ws.closed:
            return
        await ws.send_bytes(batch)


class HandshakeTimeout(Exception):
    """The peer did not prove who it is within `Limits.handshake_timeout`."""


async def _pump(ws, driver: SessionDriver, limits: Limits) -> None:
    start = time.monotonic()
    deadline = start + limits.session_timeout
    handshake_deadline = start + limits.handshake_timeout
    run = driver.fedn.run  # the node's database thread while serving: the loop only moves bytes
    await _send(ws, driver.outgoing())  # the protocol's first bytes (the initiator's handshake): no database
    while not driver.finished:
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            raise asyncio.TimeoutError
        wait = min(limits.idle_timeout, remaining)
        if driver.session.peer is None:  # still in the handshake: seconds, not the idle timeout
            if handshake_deadline - now <= 0:
                raise HandshakeTimeout
            wait = min(wait, handshake_deadline - now)
        try:
            msg = await within(ws.receive(), wait)  # not wait_for: it can swallow a cancellation
        except asyncio.TimeoutError:
            if driver.session.peer is None and time.monotonic() >= handshake_deadline:
                raise HandshakeTimeout from None
            raise
        if msg.type == aiohttp.WSMsgType.BINARY:
            out = await run(_step, driver, msg.data)
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                          aiohttp.WSMsgType.ERROR):
            # After our Close there is nothing left to learn or store: the socket's end needs no database job.
            out = [] if driver.closing else await run(_step, driver, b"")
            driver.finished = True
        else:
            raise RemoteProtocolError("the peer sent a text frame; the sync endpoint carries binary only",
                                      code="malformed_message")
        await _send(ws, out)


def _step(driver: SessionDriver, data: bytes) -> list[bytes]:
    """One message in, what to send back out: verification, Automerge and the store's commit, in one job."""
    driver.receive(data)
    return driver.outgoing()


async def _run(ws, driver: SessionDriver, limits: Limits) -> SessionReport:
    try:
        await _pump(ws, driver, limits)
    except ProtocolError as exc:
        driver.report.error, driver.report.error_code = str(exc), exc.code
        try:
            out = driver.conn.data_to_send()  # an Error frame explaining the refusal, if the protocol queued one
            if out and not ws.closed:
                await ws.send_bytes(out)
        except (ProtocolError, ConnectionError, RuntimeError):
            pass
    except HandshakeTimeout:
        driver.report.error = f"the peer did not complete the handshake within {limits.handshake_timeout:g} s"
        driver.report.error_code = "handshake_timeout"
    except asyncio.TimeoutError:
        driver.report.error, driver.report.error_code = "the peer stopped answering (timeout)", "timeout"
    except (aiohttp.ClientError, ConnectionError) as exc:  # before the catch-all: a peer gone mid-write
        driver.report.error, driver.report.error_code = f"the connection broke: {exc}", "connection_broken"
    except Exception as exc:
        # The node's own trouble (a full disk, a damaged database): the peer is told why, nothing half-stored.
        fault = faults.classify(exc, driver.fedn.fed.path.parent)
        if fault is None or fault.code not in TRANSIENT:
            raise
        driver.report.error, driver.report.error_code = fault.message, fault.code
        log.warning("sync session with %s stopped: %s", driver.report.peer or "an unauthenticated peer", fault.message)
        try:
            driver.conn.fail(LocalProtocolError(fault.message, code=fault.code))
            out = driver.conn.data_to_send()
            if out and not ws.closed:
                await ws.send_bytes(out)
        except (ProtocolError, ConnectionError, RuntimeError):
            pass
    finally:
        if not ws.closed:
            await ws.close()
    return driver.report


# -- server side --------------------------------------------------------------------


async def serve_session(request: web.Request, federation: Federation, limits: Limits,
                        gate: SessionGate | None = None) -> web.StreamResponse:
    """The server side of /v1/sync; `gate` (one per node) bounds pending sockets and sessions, and each peer's rate."""
    # No WebSocket heartbeat: the idle timeout ends a silent session, and aiohttp's heartbeat timer keeps
    # each closed session's request and transport alive for idle_timeout / 2 (memory grows with the rate).
    ws = web.WebSocketResponse(max_msg_size=WS_MAX)
    await ws.prepare(request)
    conn = Connection.responder(federation.identity, federation.trust, ephemeral=os.urandom(32),
                                now=int(time.time()), config=_config(limits, federation.display_name),
                                retired=federation.retired_identities())  # a read: the loop's own connection
    driver = SessionDriver(federation, conn, limits, gate=gate)
    if gate is not None:
        driver.gate_token = gate.open(client_address(request), lambda: asyncio.ensure_future(ws.close()))
        gate.open_sessions[driver.gate_token] = (driver, ws)
        if gate.closing:
            await gate.shut_down()
    try:
        report = await _run(ws, driver, limits)
        if federation.fed.unwritten_contacts:  # the peer's contact, unless the session's commit wrote it
            await federation.run(federation.fed.flush_contacts)
        if report.error:
            log.info("sync session from %s ended: %s", report.peer or "an unauthenticated peer", report.error)
        return ws
    finally:
        if gate is not None:
            gate.open_sessions.pop(driver.gate_token, None)
            gate.close(driver.gate_token, driver.in_session)


# -- client side ----------------------------------------------------------------------


class PeerUnreachable(UserError):
    code = "unreachable"


class SessionRefused(UserError):
    code = "refused"


async def open_session(federation: Federation, url: str, peer: PublicIdentity | None, limits: Limits, *,
                       join: Invitation | None = None, uai: str | None = None,
                       rotation: bytes | None = None,
                       on_established: Callable[[PublicIdentity], None] | None = None) -> SessionReport:
    """Connect to a peer's /v1/sync, run one full sync session, and report what happened."""
    conn = Connection.initiator(federation.identity, peer, ephemeral=os.urandom(32), now=int(time.time()),
                                join=join, uai=uai, rotation=rotation, config=_config(limits))
    driver = SessionDriver(federation, conn, limits, on_established)
    target = url.rstrip("/") + SYNC_PATH
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.ws_connect(target, max_msg_size=WS_MAX,
                                       autoping=True) as ws:
                # No client heartbeat: the idle timeout above already ends a dead session, and aiohttp's
                # client heartbeat timer outlives a closed socket (holding it for idle_timeout / 2).
                report = await _run(ws, driver, limits)
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status == 503:
            raise PeerUnreachable(said("msg.sync.peer_busy", url=url),
                                  code="busy") from None
        raise PeerUnreachable(
            said("msg.sync.not_preau", url=url, status=exc.status), code="not_preau") from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise PeerUnreachable(
            said("msg.sync.unreachable", url=url, detail=network_reason(exc))
        ) from None
    finally:
        if federation.fed.unwritten_contacts:  # the peer's contact, noted in the session, unless a commit wrote it
            await federation.run(federation.fed.flush_contacts)
    return report
