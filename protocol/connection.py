"""One node-to-node connection as a sans-IO state machine (in the manner of h11).

    conn = Connection.initiator(identity, peer, ephemeral=os.urandom(32), now=int(time.time()))
    for frame in conn.frames_to_send(): await ws.send_bytes(frame)
    for event in conn.receive_data(await ws.receive_bytes()):   # b"" means the peer hung up
        ...                                                     # handle events BEFORE flushing
    for frame in conn.frames_to_send(): await ws.send_bytes(frame)

Bytes are a stream: `receive_data` accepts any split, so the node may carry
them in WebSocket messages of any size (one frame per message is cheapest). Every state and transition is in
states.py. The responder asks a `TrustStore` (implemented by the node over
SQLite) about pinned keys and issued invitations; it never writes to it: the
node persists on `Established` (mark the invitation used, pin the key) and
only then flushes the Welcome, or calls `refuse()` to replace it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from . import crypto
from .crypto import CryptoFailure
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .identity import Identity, PublicIdentity, RetiredIdentity, RotationStatement, node_id, retired_chain, verify_chain
from .invitation import Invitation, IssuedInvitation, expired_message, join_proof, utc
from .noise import HandshakeState, KeyPair
from .states import HANDSHAKE_STATES, State, next_state
from .wire import Close, Error, Hello, Join, KeyRotation, Message, Welcome, decode_message

NOISE_NAME = "Noise_XK_25519_ChaChaPoly_BLAKE2b"
MAGIC = b"PREAU"
PROLOGUE = b"preau/v1 " + NOISE_NAME.encode("ascii") + b" "
SUPPORTED_VERSIONS = (1,)
MAX_FRAME = 65535
TAG = 16
MAX_CHUNK = MAX_FRAME - 1 - TAG  # a transport frame body is 1 flags byte + the Noise message
FLAG_FINAL = 0x01
FLAG_BYTES = (b"\x00", b"\x01")
KEEP_BUFFER = 4 * 1024 * 1024  # a reassembly buffer up to this size is kept for the next message

# What the initiator's user is told when the responder refuses it.
REFUSALS = {
    "unknown_peer": "the district does not know this node: enrol first with an invitation from the district",
    "peer_revoked": "the district has revoked this node's key: the node needs a new key (a new identity) and a new invitation from the district",
    "key_mismatch": "the district has a different key pinned for this node: ask the district to check the node id",
    "invitation_wrong": "the invitation was not recognised: check that you pasted the latest invitation from your district",
    "invitation_used": "this invitation has already been used: ask your district for a new one",
    "invitation_expired": "this invitation has expired: ask your district for a new one",
    "invitation_foreign": "this invitation belongs to another school or district: ask your district for one made for this school",
    "bad_rotation": "the district refused this node's key rotation: enrol again with an invitation",
    "key_superseded": "the district knows this node by a newer key: this one was rotated away. Restore the newest "
                      "backup (made after the key rotation); without one, this copy cannot sync again: set up a "
                      "new node (preau init, in an empty folder) with a new invitation from the district",
    "unsupported_version": "the peer speaks another protocol version: upgrade the older of the two nodes",
    "downgrade_detected": "the protocol version was tampered with on the way: check the network path",
    "sync_message_too_heavy": "a document this node sent was too large to be received in one sync (too many operations "
                              "or too much data): that document was not stored; if this happens at every sync, tell "
                              "the IT staff",
    # The district's own troubles: the school is told why, and that nothing was lost.
    "busy": "the district is busy with other nodes' syncs: nothing was lost; this node tries again later",
    "too_many_sessions": "this node already has several sync sessions open at the district (a connection that dropped "
                         "keeps one open for a minute): nothing was lost; this node tries again later",
    "shutting_down": "the district is shutting down (a restart or an update): nothing was lost; this node tries again later",
    "disk_full": "the district's disk is full, so it cannot store what this node sends: nothing was lost here; "
                 "tell the district's IT staff. This node tries again later",
    "database_damaged": "the district's database is damaged: nothing was lost here; tell the district's IT staff "
                        "(they restore it from a backup). This node tries again later",
}
# Refusals about the district's load or state rather than about this node: worth retrying by themselves.
TRANSIENT = frozenset({"busy", "too_many_sessions", "shutting_down", "disk_full", "database_damaged"})


@dataclass(frozen=True, slots=True)
class Config:
    versions: tuple[int, ...] = SUPPORTED_VERSIONS
    capabilities: tuple[str, ...] = ("sync/1",)
    max_message: int = 8 * 1024 * 1024
    max_handshake: int = 2048
    rekey_every: int = 4096
    max_frames: int = 2**40  # far below 2**64-1: a nonce can never be exhausted
    name: str | None = None  # a responder's name for people, told to initiators in its Welcome

    def __post_init__(self):
        if not self.versions or self.rekey_every < 1 or not 0 < self.max_frames < 2**63:
            raise LocalProtocolError("invalid connection config", code="invalid_config")


@dataclass(frozen=True, slots=True)
class PinnedPeer:
    """The node's record of a peer, as its trust store returns it."""

    identity: PublicIdentity
    revoked: bool = False
    uai: str | None = None
    replaced_by: bytes | None = None  # the key this one rotated to: it no longer gets in, nor rotates again


class TrustStore(Protocol):
    def peer(self, signing_key: bytes) -> PinnedPeer | None: ...
    def invitation(self, invitation_id: bytes) -> IssuedInvitation | None: ...


@dataclass
class MemoryTrustStore:
    """A reference TrustStore in memory (tests, and the shape the node's SQLite version follows)."""

    peers: dict[bytes, PinnedPeer] = field(default_factory=dict)
    invitations: dict[bytes, IssuedInvitation] = field(default_factory=dict)

    def peer(self, signing_key: bytes) -> PinnedPeer | None:
        return self.peers.get(signing_key)

    def invitation(self, invitation_id: bytes) -> IssuedInvitation | None:
        return self.invitations.get(invitation_id)


# --- events -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Enrollment:
    invitation_id: bytes
    uai: str


@dataclass(frozen=True, slots=True)
class Established:
    """The peer is authenticated and admitted. Persist what it implies before flushing data_to_send()."""

    peer: PublicIdentity
    version: int
    capabilities: frozenset[str]
    handshake_hash: bytes
    enrollment: Enrollment | None = None
    rotated_from: bytes | None = None  # the old signing key this peer rotated away from
    reached_retired: bytes | None = None  # responder: the peer pinned this retired key of ours and was told of the rotation
    peer_name: str | None = None  # initiator: the name the responder gave in its Welcome (for people only)

    @property
    def peer_node_id(self) -> str:
        return self.peer.node_id


@dataclass(frozen=True, slots=True)
class PeerKeyRotated:
    """The peer moved to a new key, signed by the one pinned: replace the pin."""

    old_signing_key: bytes
    new: PublicIdentity


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    reason: str | None
    by_peer: bool


def _handshake_frame(message: bytes) -> bytes:
    """A handshake message behind its 2-byte length."""
    return len(message).to_bytes(2, "big") + message


class Connection:
    def __init__(self, identity: Identity, *, initiator: bool, ephemeral: bytes, now: int, config: Config):
        if not isinstance(ephemeral, bytes) or len(ephemeral) != 32:
            raise LocalProtocolError("ephemeral must be 32 random bytes", code="invalid_argument")
        self.identity = identity
        self._acting = identity  # a responder answers with a retired key when that is the one the peer pins
        self._retired: tuple[RetiredIdentity, ...] = ()
        self._announce: tuple[bytes, ...] = ()
        self.is_initiator = initiator
        self.now = int(now)
        self.config = config
        self.state: State = State.AWAIT_HANDSHAKE_2 if initiator else State.AWAIT_HANDSHAKE_1
        self.peer: PublicIdentity | None = None
        self.version: int | None = None
        self.error: ProtocolError | None = None
        self._ephemeral = ephemeral
        self._hs: HandshakeState | None = None
        self._h_before_3: bytes | None = None
        self._send = self._recv = None
        self._sent_frames = self._recv_frames = 0
        self._inbuf: bytes | bytearray = b""
        self._pos = 0
        self._out: list[bytes] = []
        self._reasm = bytearray()  # plaintext of the message being received, decrypted in place
        self._chunks_len = 0
        self._trust: TrustStore | None = None
        self._join: Invitation | None = None
        self._uai: str | None = None
        self._rotations: tuple[bytes, ...] = ()
        self._peer_caps: frozenset[str] = frozenset()
        self._close_sent = False
        self._before_welcome: tuple | None = None

    # --- construction ----------------------------------------------------------

    @classmethod
    def initiator(cls, identity: Identity, peer: PublicIdentity | None = None, *, ephemeral: bytes, now: int,
                  join: Invitation | None = None, uai: str | None = None,
                  rotation: bytes | Sequence[bytes] | None = None,
                  config: Config = Config(), version: int | None = None) -> "Connection":
        """Connect to `peer` (pinned), or join with an invitation (then `uai` is this school's code).

        `rotation`: a statement from Identity.rotate, when `identity` is new and the peer pins the old key;
        or the chain of statements, oldest first, when the node rotated more than once since the peer last
        heard of it (the peer follows the chain from whichever key it pins).
        `version` defaults to the highest in config; setting it lower is only for downgrade tests.
        """
        if join is not None:
            if uai is None:
                raise LocalProtocolError("joining needs this school's UAI", code="invalid_argument")
            if join.uai != uai:
                raise LocalProtocolError(
                    f"this invitation is for school {join.uai}, but this node is school {uai}: ask your district for an invitation for {uai}",
                    code="invitation_foreign")
            if now > join.expires_at:
                raise LocalProtocolError(expired_message(join, now), code="invitation_expired")
            if peer is not None and peer != join.issuer:
                raise LocalProtocolError("the invitation names another district than the peer given", code="invitation_foreign")
            peer = join.issuer
        if peer is None:
            raise LocalProtocolError("an initiator needs the peer's pinned identity or an invitation", code="invalid_argument")
        rotations = (rotation,) if isinstance(rotation, (bytes, bytearray)) else tuple(rotation or ())
        if rotations:
            try:
                verify_chain(rotations, ends_at=identity.public)
            except RemoteProtocolError as exc:
                raise LocalProtocolError(f"this node's own rotation statements are unusable: {exc.message}",
                                         code="invalid_argument") from None
        conn = cls(identity, initiator=True, ephemeral=ephemeral, now=now, config=config)
        conn.peer, conn._join, conn._uai, conn._rotations = peer, join, uai, rotations
        conn.version = max(config.versions) if version is None else version
        header = MAGIC + bytes([conn.version])
        conn._hs = HandshakeState(NOISE_NAME, initiator=True, prologue=PROLOGUE + header,
                                  s=KeyPair(identity.static_private, identity.public.static_key),
                                  rs=peer.static_key, ephemeral_private=ephemeral)
        msg1 = conn._hs.write_message(Hello(versions=config.versions).encode_body())
        conn._out.append(header + _handshake_frame(msg1))
        return conn

    @classmethod
    def responder(cls, identity: Identity, trust: TrustStore, *, ephemeral: bytes, now: int, config: Config = Config(),
                  retired: Sequence[RetiredIdentity] = ()) -> "Connection":
        """Answer a peer. `retired`: keys this node rotated away from and still answers with (the overlap
        period); a peer that connects to one of them is admitted as usual, then told of every rotation
        since, in order, before anything else (it emits PeerKeyRotated for each)."""
        conn = cls(identity, initiator=False, ephemeral=ephemeral, now=now, config=config)
        conn._trust = trust
        conn._retired = retired_chain(retired, identity)
        return conn

    # --- public API ---------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the peer, as one byte string (any split of it is fine to send)."""
        return b"".join(self.frames_to_send())

    def frames_to_send(self) -> list[bytes | bytearray]:
        """The same bytes as data_to_send(), one frame per item: send each as one WebSocket message
        and a 1 MB payload never has to be copied into one buffer."""
        self._before_welcome = None
        out, self._out = self._out, []
        return out

    def receive_data(self, data: bytes) -> list:
        """Feed bytes from the peer (b"" when it hung up); returns events. Raises RemoteProtocolError."""
        if self.state is State.ERROR:
            raise LocalProtocolError("this connection has failed; open a new one", code="connection_failed")
        if self.state is State.CLOSED:
            return []
        try:
            if not data:
                return self._eof()
            if not self._inbuf:
                self._inbuf = data  # common case: parse the caller's bytes in place
            else:
                if not isinstance(self._inbuf, bytearray):
                    self._inbuf = bytearray(self._inbuf)
                self._inbuf += data  # amortised: a frame trickling in byte by byte stays linear
            events: list = []
            try:
                while self.state not in (State.CLOSED, State.ERROR):
                    if not self._step(events):
                        break
            finally:
                if self._pos >= len(self._inbuf):
                    self._inbuf = b""
                elif self._pos:
                    self._inbuf = bytearray(self._inbuf[self._pos:])  # keep only the partial frame
                self._pos = 0
            return events
        except RemoteProtocolError as exc:
            self.fail(exc)
            raise
        except CryptoFailure:  # from noise: anything we could not authenticate
            err = RemoteProtocolError(
                "could not authenticate the peer's message: it does not hold the key you pinned, "
                "or the data was altered on the way (wrong address, key change, or someone in the middle)",
                code="handshake_failed" if self.state in HANDSHAKE_STATES else "decrypt_failed")
            self.fail(err)
            raise err from None

    @property
    def may_send_early(self) -> bool:
        """Whether an initiator may send now, before the responder's Welcome (early data).

        After message 2 the initiator knows it speaks to the key it pinned (XK: message 2 decrypts only with
        that static key's DH), and message 3 is queued: what is sent now rides with message 3, in the same
        flight, encrypted to that key. The responder reads it once it has admitted us, and only then. Not
        when joining: there the responder's admission is what makes it this node's district.
        """
        return self.is_initiator and self.state is State.AWAIT_WELCOME and self._join is None

    def send(self, message: Message) -> None:
        """Queue a transport message. A misuse raises LocalProtocolError and fails the connection."""
        self._before_welcome = None
        try:
            if isinstance(message, (Welcome, Close, Error)):
                raise LocalProtocolError(f"{type(message).__name__} is sent by the connection itself; use close()", code="invalid_argument")
            if not isinstance(message, Message) or not hasattr(type(message), "TYPE"):
                raise LocalProtocolError("send() takes a transport message from preau.protocol.wire", code="invalid_argument")
            if self.state is State.AWAIT_WELCOME and not self.may_send_early:
                raise LocalProtocolError("a joining node sends nothing before the responder's Welcome", code="invalid_state")
            self._transition("send_message", local=True)
            self._send_message(message)
        except LocalProtocolError as exc:
            self.fail(exc)
            raise

    def close(self, reason: str | None = None) -> None:
        if self.state in (State.CLOSING, State.CLOSED):
            return
        try:
            self._transition("send_close", local=True)
        except LocalProtocolError as exc:
            self.fail(exc)
            raise
        self._send_message(Close(reason))
        self._close_sent = True

    def refuse(self, code: str, message: str, retry_after: int | None = None) -> None:
        """Undo an admission the node could not persist (say, the invitation was used meanwhile)."""
        if self._before_welcome is None:
            raise LocalProtocolError("refuse() is for the responder, right after Established and before flushing or sending", code="invalid_state")
        self._out.clear()
        self._send.k, self._send.n, self._sent_frames = self._before_welcome
        self._before_welcome = None
        self.fail(RemoteProtocolError(message, code=code, retry_after=retry_after))

    # --- internals -----------------------------------------------------------------

    def _transition(self, event: str, *, local: bool = False) -> None:
        new = next_state(self.state, event)
        if new is None:
            if local:
                raise LocalProtocolError(f"cannot {event.replace('_', ' ')} while {self.state.value}", code="invalid_state")
            raise RemoteProtocolError(f"the peer sent {event[5:]} while we were {self.state.value}", code="unexpected_message")
        self.state = new

    def fail(self, exc: ProtocolError) -> None:
        """End the connection after an error: tell the peer (when keys allow) and refuse any further use."""
        if self.state is State.ERROR:
            return
        self.error = exc
        if self._send is not None and self.state not in (State.CLOSED,):
            try:
                self._send_message(Error(exc.code, exc.message[:512], exc.retry_after))
            except ProtocolError:
                pass
        self.state = State.ERROR

    def _eof(self) -> list:
        if self.state is State.CLOSING and not self._inbuf:
            self.state = State.CLOSED  # the peer hung up instead of answering our Close: fine
            return [ConnectionClosed(None, by_peer=True)]
        partial = bool(self._inbuf or self._chunks_len)
        handshake = self.state in HANDSHAKE_STATES
        what = "during the handshake" if handshake else "without closing the session"
        # A peer that hangs up mid-handshake, at every try, most often does not hold the key pinned for it
        # (it dropped a rotated key, or the address reaches another node): said apart from a mere cut.
        if handshake and not partial:
            raise RemoteProtocolError(
                "the peer hung up during the handshake; nothing was lost here. If it happens at every sync, the peer "
                "no longer holds the key pinned for it (it rotated and dropped the old one: ask it for a new "
                "invitation), or the address reaches another node", code="handshake_lost")
        raise RemoteProtocolError(
            f"the peer hung up {what}{' in the middle of a message' if partial else ''}; "
            "nothing was lost here: reconnect and sync again", code="truncated" if partial else "connection_lost")

    def _take_frame(self, offset: int = 0) -> bytes | None:
        """The next length-prefixed frame from the input buffer (read position `_pos`), or None if incomplete."""
        buf, start = self._inbuf, self._pos + offset
        if len(buf) < start + 2:
            return None
        n = (buf[start] << 8) | buf[start + 1]
        limit = self.config.max_handshake if self.state in HANDSHAKE_STATES and self.state is not State.AWAIT_WELCOME else MAX_FRAME
        if n > limit:
            raise RemoteProtocolError(f"a frame of {n} bytes exceeds the limit of {limit}", code="message_too_large")
        if len(buf) < start + 2 + n:
            return None
        self._pos = start + 2 + n
        return memoryview(buf)[start + 2:start + 2 + n]

    def _peek(self, n: int) -> bytes:
        return bytes(self._inbuf[self._pos:self._pos + n])

    def _step(self, events: list) -> bool:
        st = self.state
        if st is State.AWAIT_HANDSHAKE_1:
            head = self._peek(len(MAGIC) + 1)
            if not MAGIC.startswith(head[:len(MAGIC)]):
                raise RemoteProtocolError("the peer does not speak the Préau protocol (bad magic); check the address", code="not_preau")
            if len(head) < len(MAGIC) + 1:
                return False
            version = head[len(MAGIC)]
            if version not in self.config.versions:
                self._out.append(MAGIC + b"\x00" + bytes([len(self.config.versions)]) + bytes(self.config.versions))
                raise RemoteProtocolError(f"the peer speaks protocol version {version}; this node speaks {list(self.config.versions)}: upgrade the older node", code="unsupported_version")
            frame = self._take_frame(len(MAGIC) + 1)
            if frame is None:
                return False
            self._read_handshake_1(version, bytes(frame))
            return True
        if st is State.AWAIT_HANDSHAKE_2 and self._peek(1) == MAGIC[:1]:
            # A version refusal; a real message 2 cannot start with "P" (its length would exceed 2 KiB).
            head = self._peek(7 + 255)
            if not MAGIC.startswith(head[:len(MAGIC)]):
                raise RemoteProtocolError("the peer does not speak the Préau protocol (bad magic); check the address", code="not_preau")
            if len(head) < 7 or len(head) < 7 + head[6]:
                return False
            theirs = list(head[7:7 + head[6]])
            raise RemoteProtocolError(f"the peer refused protocol version {self.version}; it speaks {theirs}: upgrade the older node", code="unsupported_version")
        frame = self._take_frame()
        if frame is None:
            return False
        if st is State.AWAIT_HANDSHAKE_2:
            self._read_handshake_2(bytes(frame))
        elif st is State.AWAIT_HANDSHAKE_3:
            self._read_handshake_3(bytes(frame), events)
        else:
            self._read_transport(frame, events)
        return True

    def _check_versions(self, theirs: tuple[int, ...]) -> None:
        common = set(theirs) & set(self.config.versions)
        if not common or max(common) != self.version:
            raise RemoteProtocolError(
                f"version {self.version} is in use but both sides speak {sorted(common)}: someone tampered with the version",
                code="downgrade_detected")

    def _read_handshake_1(self, version: int, frame: bytes) -> None:
        self.version = version
        header = MAGIC + bytes([version])
        # Message 1 is encrypted to the key the initiator pins: try the current key, then the retired ones,
        # newest first. A wrong key fails authentication; only the last failure is reported.
        candidates = [(self.identity, ())] + [
            (r.identity, tuple(x.statement for x in self._retired[n:]))
            for n, r in reversed(list(enumerate(self._retired)))]
        for k, (me, announce) in enumerate(candidates):
            self._hs = HandshakeState(NOISE_NAME, initiator=False, prologue=PROLOGUE + header,
                                      s=KeyPair(me.static_private, me.public.static_key),
                                      ephemeral_private=self._ephemeral)
            try:
                payload = self._hs.read_message(frame)
            except CryptoFailure:
                if k == len(candidates) - 1:
                    raise
                continue
            self._acting, self._announce = me, announce
            break
        hello = Hello.decode_body(payload)
        self._check_versions(hello.versions)
        self._transition("recv_handshake")
        msg2 = self._hs.write_message(self._my_hello())
        self._h_before_3 = self._hs.handshake_hash
        self._out.append(_handshake_frame(msg2))

    def _my_hello(self, join: bytes | None = None, rotation: tuple[bytes, ...] = ()) -> bytes:
        """The Hello of handshake messages 2 and 3: who this node is and what it speaks."""
        me = self._acting
        last, earlier = (rotation[-1], tuple(rotation[:-1])) if rotation else (None, ())
        return Hello(self.config.versions, me.signing_key, me.binding, self.config.capabilities, join, last,
                     earlier).encode_body()

    def _read_handshake_2(self, frame: bytes) -> None:
        hello = Hello.decode_body(self._hs.read_message(frame))
        if hello.signing_key != self.peer.signing_key or hello.binding is None or not self.peer.verify_binding(hello.binding):
            raise RemoteProtocolError("the peer presented another signing key than the one pinned (or an invalid binding)", code="wrong_peer_key")
        self._check_versions(hello.versions)
        self._peer_caps = frozenset(hello.capabilities)
        self._transition("recv_handshake")
        me = self.identity
        join = None
        if self._join is not None:
            proof = join_proof(self._join.secret, self._hs.handshake_hash, me.signing_key, self._uai)
            join = Join(self._join.id, proof, self._join.issuer_signing_key, self._uai).encode_body()
        msg3 = self._hs.write_message(self._my_hello(join, self._rotations))
        self._out.append(_handshake_frame(msg3))
        self._send, self._recv = self._hs.split()

    def _read_handshake_3(self, frame: bytes, events: list) -> None:
        hello = Hello.decode_body(self._hs.read_message(frame))
        self._send, self._recv = self._hs.split()
        if hello.signing_key is None or hello.binding is None:
            raise RemoteProtocolError("the initiator did not say who it is", code="malformed_message")
        peer = PublicIdentity(hello.signing_key, self._hs.rs)
        if not peer.verify_binding(hello.binding):
            raise RemoteProtocolError("the initiator's Noise key is not bound to its signing key", code="bad_binding")
        self._check_versions(hello.versions)
        self._peer_caps = frozenset(hello.capabilities)
        enrollment, rotated_from = self._admit(peer, hello)
        self.peer = peer
        self._transition("recv_handshake")
        self._before_welcome = (self._send.k, self._send.n, self._sent_frames)
        self._send_message(Welcome(enrollment.uai if enrollment else None, self.config.name))
        for statement in self._announce:  # the peer pins a retired key of ours: move its pin on, in order
            self._send_message(KeyRotation(statement))
        events.append(self._established(enrollment, rotated_from,
                                        self._acting.signing_key if self._announce else None))

    def _admit(self, peer: PublicIdentity, hello: Hello) -> tuple[Enrollment | None, bytes | None]:
        """Decide whether this authenticated key may in; raise with the reason otherwise."""
        pin = self._trust.peer(peer.signing_key)
        who = f"node {peer.node_id}"
        if pin is not None:
            if pin.replaced_by is not None:
                raise RemoteProtocolError(f"{who} was rotated away to {node_id(pin.replaced_by)}; it may not come back",
                                          code="key_superseded")
            if pin.revoked:
                raise RemoteProtocolError(f"{who} is revoked; it must be enrolled again", code="peer_revoked")
            if pin.identity.static_key != peer.static_key:
                raise RemoteProtocolError(f"{who} presented another Noise key than the one pinned", code="key_mismatch")
            if hello.join is not None:  # `preau join --again`: the invitation it was given is checked, then used up
                return self._check_rejoin(peer, hello.join, who, pin), None
            return None, None
        if hello.rotation is not None or hello.earlier_rotations:
            if hello.rotation is None:
                raise RemoteProtocolError(f"{who} sent earlier rotations without the last one", code="bad_rotation")
            chain = verify_chain((*hello.earlier_rotations, hello.rotation))
            if chain[-1].new_identity != peer:
                raise RemoteProtocolError(f"{who} presented a rotation statement for another key", code="bad_rotation")
            # Follow the chain back from the newest link to the key pinned here (it may already have
            # heard of the first rotations).
            for st in reversed(chain):
                old = self._trust.peer(st.old_signing_key)
                if old is None:
                    continue
                if old.replaced_by is not None:
                    raise RemoteProtocolError(
                        f"{who} rotated from {node_id(st.old_signing_key)}, which had already been rotated away "
                        f"to {node_id(old.replaced_by)}", code="key_superseded")
                if old.revoked:
                    raise RemoteProtocolError(f"{who} rotated from the revoked key {node_id(st.old_signing_key)}", code="peer_revoked")
                if hello.join is not None:  # `join --again` with a rotation of its own not delivered yet
                    return self._check_rejoin(peer, hello.join, who, old), st.old_signing_key
                return None, st.old_signing_key
            if hello.join is None:
                raise RemoteProtocolError(f"{who} rotated from {node_id(chain[0].old_signing_key)}, which is not enrolled "
                                          "here", code="unknown_peer")
            # A first join by a node that rotated its keys before it ever joined: no key of its chain is known
            # here, so the chain says nothing; the invitation decides, as for any first join.
        if hello.join is None:
            raise RemoteProtocolError(f"{who} is not enrolled here and brought no invitation", code="unknown_peer")
        return self._check_join(peer, hello.join, who), None

    def _check_rejoin(self, peer: PublicIdentity, body: bytes, who: str, pin: PinnedPeer) -> Enrollment:
        """The invitation a node pinned here brought (`preau join --again`): checked as for a first join, and
        for the school code it is pinned under, so that it is used up and nobody else enrols with it."""
        enrollment = self._check_join(peer, body, who)
        if pin.uai is not None and enrollment.uai != pin.uai:
            raise RemoteProtocolError(f"{who} is enrolled here as {pin.uai} but brought the invitation for "
                                      f"{enrollment.uai}", code="invitation_foreign")
        return enrollment

    def _check_join(self, peer: PublicIdentity, body: bytes, who: str) -> Enrollment:
        """The invitation a peer brought: issued here, proved for this handshake and key, unused, unexpired."""
        join = Join.decode_body(body)
        if join.issuer != self._acting.signing_key:
            raise RemoteProtocolError(f"{who} brought an invitation issued by another district ({node_id(join.issuer)})", code="invitation_foreign")
        rec = self._trust.invitation(join.invitation_id)
        expected = join_proof(rec.secret, self._h_before_3, peer.signing_key, join.uai) if rec else None
        if rec is None or not crypto.constant_time_equal(expected, join.proof):
            raise RemoteProtocolError(f"{who} brought an invitation that does not match any issued here", code="invitation_wrong")
        if rec.used:
            raise RemoteProtocolError(f"{who} brought the invitation for {rec.uai}, which was already used", code="invitation_used")
        if self.now > rec.expires_at:
            raise RemoteProtocolError(f"the invitation for {rec.uai} expired at {utc(rec.expires_at)}, and the district's clock "
                                      f"says {utc(self.now)}", code="invitation_expired")
        if join.uai != rec.uai:
            raise RemoteProtocolError(f"{who} says it is school {join.uai} but the invitation is for {rec.uai}", code="invitation_foreign")
        return Enrollment(rec.id, rec.uai)

    def _established(self, enrollment, rotated_from, reached_retired: bytes | None = None, *,
                     peer_name: str | None = None) -> Established:
        return Established(self.peer, self.version, self._peer_caps & frozenset(self.config.capabilities),
                           self._hs.handshake_hash, enrollment, rotated_from, reached_retired, peer_name)

    def _send_message(self, message: Message) -> None:
        parts = message.encode_parts()
        total = sum(len(p) for p in parts)
        if total > self.config.max_message:
            raise LocalProtocolError(f"message of {total} bytes exceeds the limit of {self.config.max_message}", code="message_too_large")
        if total <= MAX_CHUNK:
            self._seal(b"".join(parts), True)
            return
        pending: list = []
        size = sent = 0
        for part in parts:
            view = memoryview(part)
            while view:
                take = min(len(view), MAX_CHUNK - size)
                pending.append(view[:take])
                view = view[take:]
                size += take
                if size == MAX_CHUNK:
                    sent += size
                    self._seal(pending[0] if len(pending) == 1 else b"".join(pending), sent == total)
                    pending, size = [], 0
        if pending:
            self._seal(b"".join(pending), True)

    def _seal(self, chunk, final: bool) -> None:
        """One transport frame: length, flags (authenticated as associated data), Noise message.

        Encrypted straight into the frame buffer: no copy of the chunk is made.
        """
        if self._sent_frames >= self.config.max_frames:
            raise LocalProtocolError("this session has sent its maximum number of frames: reconnect", code="session_exhausted")
        body = 1 + len(chunk) + TAG
        frame = bytearray(2 + body)
        frame[0:3] = body.to_bytes(2, "big") + FLAG_BYTES[final]
        self._send.encrypt_into(FLAG_BYTES[final], chunk, frame, 3)
        self._sent_frames += 1
        if self._sent_frames % self.config.rekey_every == 0:
            self._send.rekey()
        self._out.append(frame)

    def _read_transport(self, frame: memoryview, events: list) -> None:
        if self._recv_frames >= self.config.max_frames:
            raise RemoteProtocolError("the peer exceeded the number of frames per session", code="session_exhausted")
        if len(frame) < 1 + TAG:
            raise RemoteProtocolError("a frame is too short to be a transport message", code="malformed_frame")
        flags = frame[0]
        if flags & ~FLAG_FINAL:
            raise RemoteProtocolError("a frame sets reserved flags", code="malformed_frame")
        offset = self._chunks_len
        end = offset + len(frame) - 1 - TAG
        if end > self.config.max_message:
            raise RemoteProtocolError(f"the peer's message exceeds the limit of {self.config.max_message} bytes", code="message_too_large")
        if len(self._reasm) < end:
            self._reasm.extend(bytes(max(end, min(2 * len(self._reasm), self.config.max_message)) - len(self._reasm)))
        self._recv.decrypt_into(FLAG_BYTES[flags], frame[1:], self._reasm, offset)
        self._recv_frames += 1
        if self._recv_frames % self.config.rekey_every == 0:
            self._recv.rekey()
        self._chunks_len = end
        if not flags & FLAG_FINAL:
            return
        self._chunks_len = 0
        if end == 0:
            raise RemoteProtocolError("an empty message", code="malformed_message")
        with memoryview(self._reasm) as view:
            msg = decode_message(view[:end])  # field values are copied out
        if len(self._reasm) > KEEP_BUFFER:
            self._reasm = bytearray()
        if msg is not None:
            self._dispatch(msg, events)

    def _dispatch(self, msg: Message, events: list) -> None:
        if isinstance(msg, Error):
            text = REFUSALS.get(msg.code, f"the peer reported an error ({msg.code[:64]}): {(msg.message or '')[:512]}")
            if msg.code == "invitation_expired" and msg.message:  # both clocks, so a wrong one shows
                text += f" ({msg.message[:256]}; this machine's clock says {utc(self.now)})"
            if msg.retry_after is not None:
                text += f" (the district asks to try again in {msg.retry_after} s)"
            raise RemoteProtocolError(text, code=msg.code if msg.code in REFUSALS else "peer_error",
                                      retry_after=msg.retry_after)
        if self.state is State.AWAIT_WELCOME:
            if not isinstance(msg, Welcome):
                raise RemoteProtocolError("the peer sent a message before admitting us", code="unexpected_message")
            self._transition("recv_welcome")
            enrollment = Enrollment(self._join.id, self._uai) if self._join is not None else None
            if enrollment and msg.enrolled_uai is None:
                # A district that knew this node already (`join --again`) and, before 2026-11-30, ignored the
                # invitation: admitted all the same, and nothing was enrolled.
                enrollment = None
            if enrollment and msg.enrolled_uai != self._uai:
                raise RemoteProtocolError("the district enrolled another school code than ours", code="invitation_foreign")
            events.append(self._established(enrollment, None, peer_name=msg.name))
            return
        if isinstance(msg, Welcome):
            raise RemoteProtocolError("the peer sent a Welcome, which only a responder sends, once", code="unexpected_message")
        if isinstance(msg, Close):
            self._transition("recv_close")
            if not self._close_sent:
                self._send_message(Close("reply"))
                self._close_sent = True
            events.append(ConnectionClosed(msg.reason, by_peer=True))
            return
        self._transition("recv_message")
        if isinstance(msg, KeyRotation):
            st = RotationStatement.verify(msg.statement)
            if st.old_signing_key != self.peer.signing_key:
                raise RemoteProtocolError("the peer sent a key rotation for another key than its own", code="bad_rotation")
            self.peer = st.new_identity
            events.append(PeerKeyRotated(st.old_signing_key, st.new_identity))
            return
        events.append(msg)
