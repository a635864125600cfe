"""Signed releases: what a school (or district) vouches for, and the rules a reader applies.

A signature covers a canonical encoding of (purpose label, doc id, kind,
campaign, owner, release number, sorted heads, time). The heads pin the exact
document state, so a reader reads the figures *at the signed heads* and any
change a relay added is simply not looked at. The release number is monotonic,
so an old signature (still valid forever) cannot roll a reader back.
"""
from __future__ import annotations

import datetime as _dt
import struct
from dataclasses import dataclass
from typing import Any, Sequence

from automerge.core import Document
from nacl.signing import SigningKey

from . import crypto
from .docio import BYTES_LIKE, _bytes_in, _guard, has_heads, load_document
from .documents import CONTENT_FROM, ReleaseContent
from .errors import (
    BadSignatureError,
    CrdtUsageError,
    DocumentError,
    FinalRollbackError,
    MissingHeadsError,
    ReleaseDecodeError,
    ReleaseError,
    RollbackError,
    WrongKindError,
    WrongSignerError,
)
from .schema import DOC_ID, KINDS, read_document, read_header

MAX_CLOCK_SKEW = 24 * 3600  # a release signed further ahead of the reader's clock is flagged (clock_remark)
MAGIC = b"PRSR"
FORMAT_VERSION = 1
MAX_HEADS = 64
_U64 = struct.Struct(">Q")


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw


@dataclass(frozen=True, slots=True)
class SignedRelease:
    doc_id: str
    kind: str
    campaign: str
    owner: bytes
    release: int
    heads: tuple[bytes, ...]
    time: int
    signature: bytes

    def signed_bytes(self) -> bytes:
        """The canonical encoding the signature covers (the purpose label is prepended by crypto.sign)."""
        heads = sorted(set(self.heads))
        return b"".join(
            [
                bytes([FORMAT_VERSION]),
                _text(self.doc_id),
                _text(self.kind),
                _text(self.campaign),
                self.owner,
                _U64.pack(self.release),
                _U64.pack(self.time),
                struct.pack(">H", len(heads)),
                *heads,
            ]
        )

    def encode(self) -> bytes:
        return MAGIC + self.signed_bytes() + self.signature

    @classmethod
    def decode(cls, data: bytes) -> "SignedRelease":
        """Parse strictly; raise ReleaseDecodeError on anything but a well-formed signed release."""
        data = _bytes_in(data, ReleaseDecodeError, "signed release")
        pos = 0

        def take(n: int) -> bytes:
            nonlocal pos
            if n < 0 or pos + n > len(data):
                raise ReleaseDecodeError("the signed release is truncated")
            out = data[pos : pos + n]
            pos += n
            return out

        def text(limit: int) -> str:
            (n,) = struct.unpack(">H", take(2))
            if n > limit:
                raise ReleaseDecodeError("the signed release has an over-long text field")
            try:
                return take(n).decode()
            except UnicodeDecodeError:
                raise ReleaseDecodeError("the signed release has a text field that is not UTF-8") from None

        if take(4) != MAGIC:
            raise ReleaseDecodeError("these bytes are not a Préau signed release (bad magic)")
        version = take(1)[0]
        if version != FORMAT_VERSION:
            raise ReleaseDecodeError(f"signed release format {version} is not supported (expected {FORMAT_VERSION}); update Préau")
        doc_id, kind, campaign = text(128), text(16), text(64)
        owner = take(32)
        (release,) = _U64.unpack(take(8))
        (time,) = _U64.unpack(take(8))
        (n,) = struct.unpack(">H", take(2))
        if not 1 <= n <= MAX_HEADS:
            raise ReleaseDecodeError(f"a signed release must name 1 to {MAX_HEADS} heads, not {n}")
        heads = tuple(take(32) for _ in range(n))
        signature = take(64)
        if pos != len(data):
            raise ReleaseDecodeError("the signed release has trailing bytes")
        if list(heads) != sorted(set(heads)):
            raise ReleaseDecodeError("the signed release's heads are not sorted and unique")
        if not DOC_ID.match(doc_id) or kind not in KINDS:
            raise ReleaseDecodeError("the signed release names an invalid document id or kind")
        if release < 1 or release > 2**53 or time > 2**53:
            raise ReleaseDecodeError("the signed release has an out-of-range number")
        return cls(doc_id, kind, campaign, owner, release, heads, time, signature)


@dataclass(frozen=True, slots=True)
class VerifiedRelease:
    """A release that passed every rule; `content` was read at the signed heads."""

    signed: SignedRelease
    content: Any  # ReleaseContent (release, aggregate), Campaign (campaign), tuple[Receipt, ...] (receipts)

    @property
    def doc_id(self) -> str:
        return self.signed.doc_id

    @property
    def owner(self) -> bytes:
        return self.signed.owner

    @property
    def release(self) -> int:
        return self.signed.release

    @property
    def heads(self) -> tuple[bytes, ...]:
        return self.signed.heads


def id_names_signer(signed: SignedRelease) -> bool:
    """Whether the document id is the one `schema.document_id` gives the signer: ids are not first come, first served.

    Without this a node could sign a document of its own under another
    node's (future) id, and be sent that node's copy or squat its place.
    An id names 64 bits of the owner's key: finding another key with the
    same prefix is out of reach.
    """
    from .schema import document_id

    if signed.kind == "receipts":
        parts = signed.doc_id.split(":")
        return len(parts) == 4 and parts[:3] == ["receipts", "-", signed.owner.hex()[:16]] and len(parts[3]) == 16
    return signed.doc_id == document_id(signed.kind, signed.owner, signed.campaign)


def signature_valid(signed: SignedRelease) -> bool:
    """The signature alone (no document): enough to decide whether to talk about a document at all."""
    return crypto.verify(signed.owner, crypto.RELEASE_SIGNATURE, signed.signed_bytes(), signed.signature)


def sign_release(document: Document, key: bytes | SigningKey, *, now: int) -> SignedRelease:
    """Sign the document as it stands (its current heads and release number)."""
    if isinstance(now, bool) or not isinstance(now, int) or not 0 <= now <= 2**53:
        raise CrdtUsageError("now must be Unix seconds as an int")
    key = crypto.signing_key(key)
    owner = crypto.public_key(key)
    with _guard(DocumentError, "the document could not be read"):
        heads = tuple(sorted(document.get_heads()))
    header = read_header(document, heads)
    if header.owner != owner:
        raise CrdtUsageError("this key is not the document's owner; only the owner signs its documents")
    if header.release < 1:
        raise CrdtUsageError("write a release (number 1 or more) into the document before signing it")
    unsigned = SignedRelease(header.id, header.kind, header.campaign, owner, header.release, heads, now, b"")
    signature = crypto.sign(key, crypto.RELEASE_SIGNATURE, unsigned.signed_bytes())
    return SignedRelease(header.id, header.kind, header.campaign, owner, header.release, heads, now, signature)


def verify_release(
    document: Document | bytes,
    signed: SignedRelease,
    owner: bytes,
    last_release: int,
    *,
    kinds: Sequence[str] = ("release", "aggregate"),
    last_final: bool = False,
) -> VerifiedRelease:
    """Apply every rule; return the content read at the signed heads, or raise a ReleaseError.

    `last_final`: the release already accepted for this document was final; then this one must be too.

    Reading only: the document and the caller's state are never changed, so a
    refused release leaves everything as it was.
    """
    if not isinstance(signed, SignedRelease):
        raise CrdtUsageError("verify_release needs a SignedRelease (use SignedRelease.decode on received bytes)")
    if signed.kind not in kinds:
        raise WrongKindError(f"expected a {' or '.join(kinds)} release, got a signed {signed.kind}")
    if signed.owner != owner:
        raise WrongSignerError(
            f"release signed by {signed.owner.hex()[:16]}…, but this document's pinned owner is {owner.hex()[:16]}…; refused"
        )
    if not crypto.verify(owner, crypto.RELEASE_SIGNATURE, signed.signed_bytes(), signed.signature):
        raise BadSignatureError("the release signature is not valid for its contents; refused (it was altered or forged)")
    if signed.release <= last_release:
        raise RollbackError(
            f"release {signed.release} is not newer than release {last_release} already accepted; "
            "refused (an old release replayed)"
        )
    doc = load_document(document) if isinstance(document, BYTES_LIKE) else document
    with _guard(DocumentError, "the document could not be read"):
        current = tuple(sorted(doc.get_heads()))
    at_signed = current == signed.heads  # the common case: read the live document, which is faster
    if not at_signed and not has_heads(doc, signed.heads):
        raise MissingHeadsError(
            "the document lacks changes the signed release covers; sync again from the owner "
            "(if that fails, fork at the last verified heads first)"
        )
    heads = None if at_signed else list(signed.heads)
    header, body = read_document(doc, heads)
    if header.kind != signed.kind:
        raise WrongKindError(f"the document at the signed heads is a {header.kind}, but the signature says {signed.kind}")
    mismatches = [
        name
        for name, a, b in (
            ("document id", header.id, signed.doc_id),
            ("owner", header.owner, signed.owner),
            ("campaign", header.campaign, signed.campaign),
        )
        if a != b
    ]
    if mismatches:
        raise ReleaseError(f"the signed release's {mismatches[0]} does not match the document; refused", code="mismatch")
    content = CONTENT_FROM[header.kind](header, body)
    number = getattr(content, "release", None) if isinstance(content, ReleaseContent) else header.release
    if number != signed.release:
        raise ReleaseError(
            f"the document at the signed heads holds release {number}, not {signed.release}; refused", code="mismatch"
        )
    if last_final and isinstance(content, ReleaseContent) and not content.final:
        raise FinalRollbackError(
            f"release {signed.release} is not final, but release {last_release} already was: a campaign's final "
            "release cannot be followed by a non-final one; refused (was the sender's clock put back?)"
        )
    return VerifiedRelease(signed, content)


def _utc(seconds: int) -> str:
    try:
        return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, ValueError, OSError):  # beyond year 9999: still say what it was
        return f"{seconds} (Unix seconds)"


def clock_remark(signed: SignedRelease, now: int, max_skew: int = MAX_CLOCK_SKEW) -> str | None:
    """A remark naming both clocks when a release was signed further ahead of the reader's clock than
    `max_skew`, else None. Not a refusal: the figures are sound, and refusing would strand a release the
    sender cannot sign again; the reader records the remark so someone sets the sender's clock right."""
    if signed.time <= now + max_skew:
        return None
    ahead = signed.time - now
    span = f"{ahead // 86400} days" if ahead >= 2 * 86400 else f"{ahead // 3600} hours"
    return (f"{signed.kind} {signed.doc_id} release {signed.release} was signed at {_utc(signed.time)} by its "
            f"sender's clock, {span} ahead of this node's clock ({_utc(now)}): the sender's clock is wrong; set it right")
