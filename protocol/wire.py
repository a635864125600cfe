"""Typed, versioned messages in a small tag-length-value encoding.

Why not JSON: Automerge sync messages and releases are binary and up to
megabytes; base64 would cost a third more. Why not a schema library: the whole
format fits on a page of docs/protocol.md and is fuzzed here.

Encoding: a message is `varint type` then fields, each `varint tag, varint
length, bytes`. Unknown tags are skipped (newer peers may add fields); a
repeated tag is a list. Unknown message types are refused, except types
>= 0x40, which are optional extensions a receiver may ignore.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .errors import LocalProtocolError, RemoteProtocolError

MAX_VARINT_BYTES = 9
OPTIONAL_TYPES_FROM = 0x40
MAX_DOC_ID = 128
MAX_TEXT = 1024
MAX_NAME = 200  # a node's name for people (Welcome)
MAX_LIST = 10_000
MAX_POOL_MAIL = 1 << 20


def encode_varint(n: int) -> bytes:
    if n < 0 or n >= 1 << 63:
        raise LocalProtocolError(f"integer {n} out of range for the wire", code="invalid_message")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def decode_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    n = shift = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise RemoteProtocolError("a message ends inside a number; it was cut short", code="malformed_message")
        b = buf[pos + i]
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            if i and b == 0:
                raise RemoteProtocolError("a number is not minimally encoded", code="malformed_message")
            return n, pos + i + 1
        shift += 7
    raise RemoteProtocolError("a number in the message is too long", code="malformed_message")


def encode_fields(items: list[tuple[int, bytes]]) -> bytes:
    return b"".join(field_parts(items))


def field_parts(items: list[tuple[int, bytes]]) -> list[bytes]:
    """The encoding as a list of pieces, so large values are never copied just to be framed."""
    out = []
    for tag, value in items:
        out.append(encode_varint(tag) + encode_varint(len(value)))
        out.append(value)
    return out


def decode_fields(buf: bytes | memoryview, pos: int = 0) -> dict[int, list[bytes]]:
    found: dict[int, list[bytes]] = {}
    count = 0
    while pos < len(buf):
        tag, pos = decode_varint(buf, pos)
        length, pos = decode_varint(buf, pos)
        if length > len(buf) - pos:
            raise RemoteProtocolError("a field is longer than its message; the message was cut short", code="malformed_message")
        found.setdefault(tag, []).append(bytes(buf[pos:pos + length]))
        pos += length
        count += 1
        if count > MAX_LIST * 2:
            raise RemoteProtocolError("a message has too many fields", code="message_too_large")
    return found


# --- field kinds ---------------------------------------------------------------

def _text(raw: bytes, name: str, limit: int = MAX_TEXT) -> str:
    if len(raw) > limit:
        raise RemoteProtocolError(f"field {name} is longer than {limit} bytes", code="malformed_message")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"field {name} is not UTF-8 text", code="malformed_message") from None


def _uint(raw: bytes, name: str) -> int:
    n, end = decode_varint(raw, 0)
    if end != len(raw):
        raise RemoteProtocolError(f"field {name} is not a single number", code="malformed_message")
    return n


def _check_doc_id(doc_id: str, error=LocalProtocolError) -> None:
    if not doc_id or len(doc_id.encode("utf-8")) > MAX_DOC_ID or not doc_id.isprintable():
        raise error(f"document id {doc_id[:40]!r} must be 1-{MAX_DOC_ID} printable bytes", code="invalid_document_id")


class Message:
    """Base of typed messages. Subclasses declare TYPE and SCHEMA ((tag, field name, kind), ...).

    Kinds: "bytes", "str", "uint", "doc" (a document id), "key" (32 bytes),
    "sig" (64 bytes), suffixed "?" when optional, "*" when repeated, or a
    nested Message class for repeated sub-records.
    """

    __slots__ = ()
    TYPE: ClassVar[int]
    SCHEMA: ClassVar[tuple]

    def __post_init__(self):
        """Checks every document-id field; subclasses with more rules call this first.

        Called as `Message.__post_init__(self)`: a bare super() fails in slots=True dataclasses.
        """
        for _tag, name, kind in self.SCHEMA:
            if isinstance(kind, str) and kind.rstrip("?*") == "doc":
                value = getattr(self, name)
                for doc_id in value if kind.endswith("*") else ([] if value is None else [value]):
                    _check_doc_id(doc_id)

    def encode(self) -> bytes:
        return b"".join(self.encode_parts())

    def encode_parts(self) -> list[bytes]:
        return [encode_varint(self.TYPE), *field_parts(self._items())]

    def encode_body(self) -> bytes:
        return encode_fields(self._items())

    def _items(self) -> list[tuple[int, bytes]]:
        items: list[tuple[int, bytes]] = []
        for tag, name, kind in self.SCHEMA:
            value = getattr(self, name)
            if isinstance(kind, type):
                items.extend((tag, v.encode_body()) for v in value)
                continue
            base = kind.rstrip("?*")
            values = value if kind.endswith("*") else ([] if value is None else [value])
            for v in values:
                items.append((tag, _encode_value(base, v)))
        return items

    @classmethod
    def decode_body(cls, buf: bytes | memoryview):
        return cls.from_fields(decode_fields(buf))

    @classmethod
    def from_fields(cls, found: dict[int, list[bytes]]):
        kwargs = {}
        for tag, name, kind in cls.SCHEMA:
            raw = found.get(tag, [])
            repeated = isinstance(kind, type) or kind.endswith("*")
            if repeated and len(raw) > MAX_LIST:
                raise RemoteProtocolError(f"{cls.__name__}.{name} lists more than {MAX_LIST} entries", code="message_too_large")
            if isinstance(kind, type):
                kwargs[name] = tuple(kind.decode_body(r) for r in raw)
                continue
            base = kind.rstrip("?*")
            if kind.endswith("*"):
                kwargs[name] = tuple(_decode_value(base, r, name) for r in raw)
            elif not raw:
                if not kind.endswith("?"):
                    raise RemoteProtocolError(f"{cls.__name__} lacks its {name} field", code="malformed_message")
                kwargs[name] = None
            else:
                kwargs[name] = _decode_value(base, raw[0], name)
        try:
            return cls(**kwargs)
        except LocalProtocolError as exc:
            raise RemoteProtocolError(f"{cls.__name__}: {exc.message}", code=exc.code) from None


def _encode_value(kind: str, v) -> bytes:
    if kind in ("bytes", "key", "sig"):
        return bytes(v)
    if kind in ("str", "doc"):
        return v.encode("utf-8")
    if kind == "uint":
        return encode_varint(v)
    raise AssertionError(kind)


def _decode_value(kind: str, raw: bytes, name: str):
    if kind == "bytes":
        return raw
    if kind == "key" or kind == "sig":
        want = 32 if kind == "key" else 64
        if len(raw) != want:
            raise RemoteProtocolError(f"field {name} must be {want} bytes", code="malformed_message")
        return raw
    if kind == "str":
        return _text(raw, name)
    if kind == "doc":
        return _text(raw, name, MAX_DOC_ID)
    if kind == "uint":
        return _uint(raw, name)
    raise AssertionError(kind)


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise LocalProtocolError(what, code="invalid_message")


# --- handshake payloads (inside Noise handshake messages) --------------------

@dataclass(frozen=True, slots=True)
class Join(Message):
    """Proof that the initiator knows an invitation's secret, bound to this handshake."""

    SCHEMA: ClassVar[tuple] = ((1, "invitation_id", "bytes"), (2, "proof", "bytes"), (3, "issuer", "key"), (4, "uai", "str"))
    invitation_id: bytes
    proof: bytes
    issuer: bytes
    uai: str

    def __post_init__(self):
        Message.__post_init__(self)
        _need(len(self.invitation_id) == 16 and len(self.proof) == 32, "join: invitation id is 16 bytes and proof 32")


@dataclass(frozen=True, slots=True)
class Hello(Message):
    """Carried in handshake messages 2 and 3: who I am (Ed25519 key and its binding to my Noise key) and what I speak."""

    SCHEMA: ClassVar[tuple] = (
        (1, "versions", "uint*"),
        (2, "signing_key", "key?"),
        (3, "binding", "sig?"),
        (4, "capabilities", "str*"),
        (5, "join", "bytes?"),
        (6, "rotation", "bytes?"),
        (7, "earlier_rotations", "bytes*"),
    )
    versions: tuple[int, ...]
    signing_key: bytes | None = None
    binding: bytes | None = None
    capabilities: tuple[str, ...] = ()
    join: bytes | None = None
    rotation: bytes | None = None
    earlier_rotations: tuple[bytes, ...] = ()  # the statements before `rotation`, oldest first (a chain)


# --- transport messages ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Welcome(Message):
    """The responder admits the initiator; the session may start."""

    TYPE: ClassVar[int] = 1
    SCHEMA: ClassVar[tuple] = ((1, "enrolled_uai", "str?"), (2, "name", "str?"))
    enrolled_uai: str | None = None
    name: str | None = None  # the responder's name for people ("Circonscription de Lyon 3"); older nodes omit it

    def __post_init__(self):
        Message.__post_init__(self)
        _need(self.name is None or 0 < len(self.name) <= MAX_NAME, f"welcome: a name is 1 to {MAX_NAME} characters")


@dataclass(frozen=True, slots=True)
class DocOffer(Message):
    SCHEMA: ClassVar[tuple] = ((1, "doc_id", "doc"), (2, "release", "bytes?"))
    doc_id: str
    release: bytes | None = None


@dataclass(frozen=True, slots=True)
class Offer(Message):
    """Documents I can sync with you, each with its latest signed release (opaque bytes)."""

    TYPE: ClassVar[int] = 2
    SCHEMA: ClassVar[tuple] = ((1, "docs", DocOffer),)
    docs: tuple[DocOffer, ...]

    def __post_init__(self):
        Message.__post_init__(self)
        ids = [d.doc_id for d in self.docs]
        _need(len(ids) == len(set(ids)), "offer: a document id appears twice")
        _need(len(ids) <= MAX_LIST, f"offer: at most {MAX_LIST} documents")


@dataclass(frozen=True, slots=True)
class Want(Message):
    """Documents of your offer I want to sync."""

    TYPE: ClassVar[int] = 3
    SCHEMA: ClassVar[tuple] = ((1, "doc_ids", "doc*"),)
    doc_ids: tuple[str, ...]

    def __post_init__(self):
        Message.__post_init__(self)
        _need(len(self.doc_ids) == len(set(self.doc_ids)), "want: a document id appears twice")


@dataclass(frozen=True, slots=True)
class SyncMessage(Message):
    """One Automerge sync message for one document (opaque here)."""

    TYPE: ClassVar[int] = 4
    SCHEMA: ClassVar[tuple] = ((1, "doc_id", "doc"), (2, "data", "bytes"))
    doc_id: str
    data: bytes

    def __post_init__(self):
        Message.__post_init__(self)
        _need(len(self.data) > 0, "sync: an empty sync message; send SyncIdle instead")


@dataclass(frozen=True, slots=True)
class SyncIdle(Message):
    """I have nothing to send for this document now."""

    TYPE: ClassVar[int] = 5
    SCHEMA: ClassVar[tuple] = ((1, "doc_id", "doc"),)
    doc_id: str


@dataclass(frozen=True, slots=True)
class _SignedBlob(Message):
    """A document id and opaque signed bytes; Release and Receipt differ only in TYPE."""

    SCHEMA: ClassVar[tuple] = ((1, "doc_id", "doc"), (2, "data", "bytes"))
    doc_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Release(_SignedBlob):
    """A signed release of a document (opaque here; crdt/ verifies it)."""

    TYPE: ClassVar[int] = 6


@dataclass(frozen=True, slots=True)
class Receipt(_SignedBlob):
    """A signed receipt for a release (opaque here)."""

    TYPE: ClassVar[int] = 7


@dataclass(frozen=True, slots=True)
class Done(Message):
    """I have offered and wanted everything I will in this session."""

    TYPE: ClassVar[int] = 8
    SCHEMA: ClassVar[tuple] = ()


@dataclass(frozen=True, slots=True)
class Close(Message):
    TYPE: ClassVar[int] = 9
    SCHEMA: ClassVar[tuple] = ((1, "reason", "str?"),)
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Error(Message):
    TYPE: ClassVar[int] = 10
    SCHEMA: ClassVar[tuple] = ((1, "code", "str"), (2, "message", "str?"), (3, "retry_after", "uint?"))
    code: str
    message: str | None = None
    retry_after: int | None = None  # seconds: when the refusal is about load or maintenance, try again after this


@dataclass(frozen=True, slots=True)
class KeyRotation(Message):
    """A rotation statement (see identity.RotationStatement): my new key, signed by my current one."""

    TYPE: ClassVar[int] = 11
    SCHEMA: ClassVar[tuple] = ((1, "statement", "bytes"),)
    statement: bytes


@dataclass(frozen=True, slots=True)
class PoolMail(Message):
    """One secure-aggregation message (protocol.secagg, opaque here) between a school and its district.

    An optional extension type: a node that does not take part in pools ignores it.
    """

    TYPE: ClassVar[int] = 0x50
    SCHEMA: ClassVar[tuple] = ((1, "data", "bytes"),)
    data: bytes

    def __post_init__(self):
        _need(0 < len(self.data) <= MAX_POOL_MAIL, f"pool mail: 1 to {MAX_POOL_MAIL} bytes")


TRANSPORT_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls for cls in (Welcome, Offer, Want, SyncMessage, SyncIdle, Release, Receipt, Done, Close, Error, KeyRotation,
                              PoolMail)
}


def _message_class(mtype: int) -> type[Message] | None:
    cls = TRANSPORT_TYPES.get(mtype)
    if cls is None and mtype < OPTIONAL_TYPES_FROM:
        raise RemoteProtocolError(f"unknown message type {mtype}; the peer may be newer: upgrade this node", code="unknown_message")
    return cls


def decode_message(buf: bytes | memoryview) -> Message | None:
    """A transport message, or None for an optional extension type we do not know."""
    mtype, pos = decode_varint(buf, 0)
    cls = _message_class(mtype)
    return None if cls is None else cls.decode_body(memoryview(buf)[pos:])

