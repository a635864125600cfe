"""Invitations: how a school enrols with its district, as one string a person copies.

The string carries the district's addresses and keys, the school's UAI, an
expiry and a secret (128 bits or more). Joining never sends the secret: the
school proves it knows it with a MAC over the handshake hash, so an
eavesdropper learns nothing and a relay cannot reuse the proof in another
handshake. The district stores `IssuedInvitation` (id, secret, UAI, expiry,
used) and the connection checks it.
"""
from __future__ import annotations

import base64
import datetime as _dt
from dataclasses import dataclass

from . import crypto
from .errors import LocalProtocolError
from .identity import Identity, PublicIdentity, node_id
from .uai import parse_uai
from .wire import Message, RemoteProtocolError

PREFIX = "PREAU1-"
LABEL_ID = b"preau/v1/invitation-id"
LABEL_PROOF = b"preau/v1/invitation-proof"
LABEL_CHECK = b"preau/v1/invitation-checksum"
DEFAULT_TTL = 7 * 24 * 3600
MIN_SECRET = 16
MAX_ADDRESSES = 8


def invitation_id(secret: bytes) -> bytes:
    return crypto.labelled_hash(LABEL_ID, b"", key=secret, digest_size=16)


def join_proof(secret: bytes, handshake_hash: bytes, joiner_signing_key: bytes, uai: str) -> bytes:
    return crypto.labelled_hash(LABEL_PROOF, handshake_hash + joiner_signing_key + uai.encode("ascii"), key=secret, digest_size=32)


@dataclass(frozen=True, slots=True)
class Invitation(Message):
    SCHEMA = (
        (1, "addresses", "str*"),
        (2, "issuer_signing_key", "key"),
        (3, "issuer_static_key", "key"),
        (4, "uai", "str"),
        (5, "expires_at", "uint"),
        (6, "secret", "bytes"),
        (7, "issued_at", "uint?"),
    )
    addresses: tuple[str, ...]
    issuer_signing_key: bytes
    issuer_static_key: bytes
    uai: str
    expires_at: int
    secret: bytes
    issued_at: int | None = None  # the district's clock when it made the invitation (absent from older ones)

    def __post_init__(self):
        if len(self.secret) < MIN_SECRET or len(self.secret) > 64:
            raise LocalProtocolError(f"an invitation secret is {MIN_SECRET}-64 random bytes", code="invalid_invitation")
        if not self.addresses or len(self.addresses) > MAX_ADDRESSES:
            raise LocalProtocolError(f"an invitation names 1 to {MAX_ADDRESSES} district addresses", code="invalid_invitation")
        if parse_uai(self.uai) != self.uai:
            raise LocalProtocolError("invitation UAI must be canonical", code="invalid_uai")

    @classmethod
    def create(cls, issuer: Identity, *, uai: str, addresses: list[str] | tuple[str, ...], now: int, secret: bytes, ttl: int = DEFAULT_TTL) -> "Invitation":
        """`secret` comes from the caller's randomness source (os.urandom(16) or more)."""
        return cls(tuple(addresses), issuer.signing_key, issuer.public.static_key, parse_uai(uai), int(now) + int(ttl), secret,
                   int(now))

    @property
    def id(self) -> bytes:
        return invitation_id(self.secret)

    @property
    def issuer(self) -> PublicIdentity:
        return PublicIdentity(self.issuer_signing_key, self.issuer_static_key)

    @property
    def issuer_node_id(self) -> str:
        return node_id(self.issuer_signing_key)

    def record(self) -> "IssuedInvitation":
        return IssuedInvitation(self.id, self.secret, self.uai, self.expires_at, used=False)

    def to_string(self) -> str:
        body = self.encode_body()
        check = crypto.labelled_hash(LABEL_CHECK, body, digest_size=4)
        return PREFIX + base64.b32encode(body + check).decode("ascii").rstrip("=")

    @classmethod
    def parse(cls, text: str) -> "Invitation":
        """Parse a pasted invitation; errors say how to fix the copy."""
        raw = "".join(str(text).split()).upper()
        if not raw.startswith(PREFIX):
            raise LocalProtocolError(f"an invitation starts with {PREFIX}; copy the whole string the district gave you", code="invitation_malformed")
        b32 = raw[len(PREFIX):]
        try:
            data = base64.b32decode(b32 + "=" * (-len(b32) % 8))
        except (ValueError, base64.binascii.Error):
            raise LocalProtocolError("the invitation contains characters it should not; copy it again", code="invitation_malformed") from None
        body, check = data[:-4], data[-4:]
        if len(data) < 5 or not crypto.constant_time_equal(crypto.labelled_hash(LABEL_CHECK, body, digest_size=4), check):
            raise LocalProtocolError("the invitation is damaged or incomplete (checksum mismatch); copy it again", code="invitation_malformed")
        try:
            return cls.decode_body(body)
        except RemoteProtocolError as exc:
            raise LocalProtocolError(f"the invitation is not valid: {exc.message}", code="invitation_malformed") from None


def utc(seconds: int) -> str:
    """A Unix time as people read it in messages (pure: formats, never reads the clock)."""
    try:
        return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return f"{seconds} (Unix seconds)"


def expired_message(inv: "Invitation", now: int) -> str:
    """Why a school refuses an expired invitation, naming both clocks: a wrong clock on either side looks the same."""
    text = f"this invitation expired at {utc(inv.expires_at)}, and this machine's clock says {utc(now)}"
    if inv.issued_at is not None:
        text += f"; the district made it at {utc(inv.issued_at)} by its own clock"
    return (text + ". If one of the two clocks is wrong, set it right (the district then makes a new invitation); "
            "otherwise ask your district for a new invitation")


MAX_CLOCK_SKEW = 24 * 3600  # beyond this, the two clocks differ enough to say so


def clock_remark(inv: "Invitation", now: int, max_skew: int = MAX_CLOCK_SKEW) -> str | None:
    """A remark naming both clocks when the district made the invitation further than `max_skew` from this
    machine's time (either way), else None: the join works, but one of the two clocks is wrong."""
    if inv.issued_at is None or abs(inv.issued_at - now) <= max_skew:
        return None
    hours = abs(inv.issued_at - now) // 3600
    side = "ahead of" if inv.issued_at > now else "behind"
    return (f"the district's clock was {hours} hours {side} this machine's when it made the invitation "
            f"(it said {utc(inv.issued_at)}; this machine says {utc(now)}): set the wrong clock right, "
            "or releases and invitations will look out of date")


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    """The district's record of an invitation, as its trust store returns it."""

    id: bytes
    secret: bytes
    uai: str
    expires_at: int
    used: bool = False
