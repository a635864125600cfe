"""The short join code: 20 characters a head teacher types from paper instead of a 242-character invitation.

    1HD8Y-CD6WD-ZW66X-6F6V8      4 groups of 5: 4 data characters, then the group's check character

Why it is safe although short: the code is not a key, it is a password for a
PAKE (SPAKE2, as magic-wormhole uses it). The school and the district run
SPAKE2 with the code; only a side that knows the code gets the shared key, and
someone who tries a wrong code learns nothing but "wrong" (one guess per
try, no offline test from a recorded exchange). The district counts failed
tries per invitation and locks the code after MAX_FAILURES. Under that key
the district sends the full invitation (its keys and the 256-bit secret), and
the school then enrols exactly as with a long invitation (Noise XK, join
proof). The whole design and its figures are in docs/protocol.md, "Short join codes".

Pure: the randomness for SPAKE2 is an argument; nothing reads a clock or a socket.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from . import crypto
from .crypto import CryptoFailure
from .errors import LocalProtocolError, RemoteProtocolError
from .invitation import Invitation
from .wire import Message, decode_varint

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
GROUPS = 4
DATA_PER_GROUP = 4
GROUP_LEN = DATA_PER_GROUP + 1
DATA_CHARS = GROUPS * DATA_PER_GROUP  # 16 characters, 80 bits
SLOT_CHARS = 3  # the first 15 bits name the invitation at the district ("nameplate"); the rest is the password
CODE_LEN = GROUPS * GROUP_LEN
MAX_FAILURES = 5  # wrong codes tried against one invitation before the district locks its short code
VERSION = 1
PATH = "/v1/code"

LABEL_CODE = b"preau/v1/join-code"
ID_SCHOOL = b"preau/v1/join-code/school"
ID_DISTRICT = b"preau/v1/join-code/district"
LABEL_CONFIRM_DISTRICT = b"preau/v1/join-code/confirm-district"
LABEL_CONFIRM_SCHOOL = b"preau/v1/join-code/confirm-school"
LABEL_SEAL = b"preau/v1/join-code/seal"

# What people type for what they mean: lower case, O for 0, I and L for 1 (Crockford's rules).
_READ = {c: c for c in ALPHABET} | {c.lower(): c for c in ALPHABET} | {
    "O": "0", "o": "0", "I": "1", "i": "1", "L": "1", "l": "1"}
_SEPARATORS = re.compile(r"[\s\-_.]+")

# --- the check character: a weighted sum in GF(32) ---------------------------------
#
# In each group, data characters d0..d3 (values 0..31) and the check c satisfy
#     a^1 d0 + a^2 d1 + a^3 d2 + a^4 d3 + c = g + 1      (in GF(2^5), modulus x^5 + x^2 + 1, a = x)
# where g is the group's index (0..3). A single changed character changes the sum by a
# non-zero weight times a non-zero difference: never zero. Swapping two different neighbours
# changes it by (w_i + w_i+1)(u + v), non-zero because the weights 1, a, ..., a^4 are distinct.
# The group's index on the right side makes a group typed in another group's place fail too.


def _gf_mul(a: int, b: int) -> int:
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if a & 0x20:
            a ^= 0b100101
    return out


def _alpha_power(n: int) -> int:
    v = 1
    for _ in range(n):
        v = _gf_mul(v, 2)
    return v


WEIGHTS = tuple(_alpha_power(j + 1) for j in range(DATA_PER_GROUP))  # a^1 .. a^4; the check's weight is 1


def check_character(group_index: int, data: str) -> str:
    total = group_index + 1
    for w, ch in zip(WEIGHTS, data):
        total ^= _gf_mul(w, ALPHABET.index(ch))
    return ALPHABET[total]


class JoinCodeError(LocalProtocolError):
    """A typed code that cannot be right; `group` (1-based) names the group at fault, when one can be named.

    Codes: joincode_empty, joincode_length (wrong number of characters), joincode_group_length (one group,
    typed apart, has too few or too many), joincode_character (a character that is not in a code),
    joincode_check (a group fails its check: a mistyped character or two swapped neighbours).
    """

    def __init__(self, message: str, *, code: str, group: int | None = None, typed: str = "", count: int = 0):
        super().__init__(message, code=code)
        self.group = group
        self.typed = typed
        self.count = count


@dataclass(frozen=True, slots=True)
class JoinCode:
    """A checked code: its 16 data characters (canonical, upper case)."""

    data: str

    def __post_init__(self):
        if len(self.data) != DATA_CHARS or any(ch not in ALPHABET for ch in self.data):
            raise LocalProtocolError("a join code holds 16 data characters of Crockford's base32", code="invalid_join_code")

    @property
    def slot(self) -> str:
        """Names the invitation at the district; travels in clear (15 bits, no secret)."""
        return self.data[:SLOT_CHARS]

    @property
    def password(self) -> bytes:
        return self.data.encode("ascii")

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self.data[i:i + DATA_PER_GROUP] + check_character(g, self.data[i:i + DATA_PER_GROUP])
                     for g, i in enumerate(range(0, DATA_CHARS, DATA_PER_GROUP)))

    @property
    def text(self) -> str:
        return "-".join(self.groups)

    @classmethod
    def from_secret(cls, secret: bytes) -> "JoinCode":
        """The code of an invitation, derived from its secret (so the district can show it again)."""
        bits = int.from_bytes(crypto.labelled_hash(LABEL_CODE, b"", key=secret, digest_size=10), "big")
        return cls("".join(ALPHABET[(bits >> (5 * (DATA_CHARS - 1 - i))) & 31] for i in range(DATA_CHARS)))


def code_slot(secret: bytes) -> str:
    return JoinCode.from_secret(secret).slot


def looks_like_code(text: str) -> bool:
    """True unless the text is a long invitation (PREAU1-...): the short code is the default reading."""
    return not "".join(str(text).split()).upper().startswith("PREAU1-")


def parse_code(text: str) -> JoinCode:
    """The code a person typed, checked group by group; every error names the group at fault."""
    raw = str(text).strip()
    if not raw:
        raise JoinCodeError("no join code was typed", code="joincode_empty")
    chunks = [c for c in _SEPARATORS.split(raw) if c]
    flat = "".join(chunks)
    if len(chunks) == GROUPS and len(flat) != CODE_LEN:  # typed in its groups: say which group is short or long
        for n, chunk in enumerate(chunks, 1):
            if len(chunk) != GROUP_LEN:
                raise JoinCodeError(f"group {n} ({chunk}) has {len(chunk)} characters instead of {GROUP_LEN}",
                                    code="joincode_group_length", group=n, typed=chunk, count=len(chunk))
    if len(flat) != CODE_LEN:
        raise JoinCodeError(f"a join code has {CODE_LEN} characters (4 groups of 5); {len(flat)} were typed",
                            code="joincode_length", typed=flat, count=len(flat))
    canon = []
    for i, ch in enumerate(flat):
        if ch not in _READ:
            n = i // GROUP_LEN + 1
            group = flat[(n - 1) * GROUP_LEN:n * GROUP_LEN]
            raise JoinCodeError(f"group {n} ({group}) holds {ch!r}, which is not in a join code",
                                code="joincode_character", group=n, typed=ch)
        canon.append(_READ[ch])
    code = "".join(canon)
    data = []
    for g in range(GROUPS):
        group = code[g * GROUP_LEN:(g + 1) * GROUP_LEN]
        if check_character(g, group[:DATA_PER_GROUP]) != group[DATA_PER_GROUP]:
            raise JoinCodeError(f"group {g + 1} ({group}) fails its check: a character is mistyped, or two are swapped",
                                code="joincode_check", group=g + 1, typed=group)
        data.append(group[:DATA_PER_GROUP])
    return JoinCode("".join(data))


# --- the exchange (over the district's /v1/code WebSocket) ------------------------------------
#
#   school                                           district
#     CodeHello{version, slot, SPAKE2 A}    ──────▶   finds the invitation by slot; counts one try
#                                           ◀──────   CodeReply{SPAKE2 B, district's confirmation}
#     checks the confirmation (wrong: stops)
#     CodeConfirm{school's confirmation}    ──────▶   checks it (right: the try is forgiven)
#                                           ◀──────   CodeInvitation{sealed invitation} | CodeError
#
# Every message is one WebSocket binary message: varint type, then TLV fields as in wire.py.


@dataclass(frozen=True, slots=True)
class CodeHello(Message):
    TYPE: ClassVar[int] = 1
    SCHEMA: ClassVar[tuple] = ((1, "version", "uint"), (2, "slot", "str"), (3, "pake", "bytes"))
    version: int
    slot: str
    pake: bytes


@dataclass(frozen=True, slots=True)
class CodeReply(Message):
    TYPE: ClassVar[int] = 2
    SCHEMA: ClassVar[tuple] = ((1, "pake", "bytes"), (2, "confirm", "bytes"))
    pake: bytes
    confirm: bytes


@dataclass(frozen=True, slots=True)
class CodeConfirm(Message):
    TYPE: ClassVar[int] = 3
    SCHEMA: ClassVar[tuple] = ((1, "confirm", "bytes"),)
    confirm: bytes


@dataclass(frozen=True, slots=True)
class CodeInvitation(Message):
    TYPE: ClassVar[int] = 4
    SCHEMA: ClassVar[tuple] = ((1, "sealed", "bytes"),)
    sealed: bytes


@dataclass(frozen=True, slots=True)
class CodeError(Message):
    TYPE: ClassVar[int] = 10
    SCHEMA: ClassVar[tuple] = ((1, "code", "str"), (2, "message", "str?"))
    code: str
    message: str | None = None


_TYPES = {m.TYPE: m for m in (CodeHello, CodeReply, CodeConfirm, CodeInvitation, CodeError)}
MAX_MESSAGE = 4096

# What the school is told when the district refuses (codes sent in CodeError).
REFUSALS = ("joincode_unknown", "joincode_locked", "joincode_wrong", "invitation_used", "invitation_expired",
            "invitation_revoked", "unsupported_version", "joincode_too_many")


def decode(data: bytes, expected: type | tuple) -> Message:
    """One message of the exchange; anything else (or an Error) raises RemoteProtocolError."""
    if not isinstance(data, (bytes, bytearray)) or not 0 < len(data) <= MAX_MESSAGE:
        raise RemoteProtocolError("the district's answer is not a join-code message", code="malformed_message")
    try:
        kind, pos = decode_varint(data, 0)
        cls = _TYPES.get(kind)
        if cls is None:
            raise RemoteProtocolError(f"unknown join-code message type {kind}", code="unknown_message")
        msg = cls.decode_body(bytes(data[pos:]))
    except (ValueError, IndexError):
        raise RemoteProtocolError("a join-code message is malformed", code="malformed_message") from None
    if isinstance(msg, CodeError) and CodeError not in (expected if isinstance(expected, tuple) else (expected,)):
        code = msg.code if msg.code in REFUSALS else "peer_error"
        raise RemoteProtocolError(f"the district refused the code: {msg.code}" + (f" ({msg.message[:200]})" if msg.message else ""),
                                  code=code)
    if not isinstance(msg, expected):
        raise RemoteProtocolError(f"unexpected join-code message {type(msg).__name__}", code="unexpected_message")
    return msg


def _keys(pake_key: bytes, slot: str, msg_a: bytes, msg_b: bytes) -> tuple[bytes, bytes, bytes]:
    transcript = slot.encode("ascii") + msg_a + msg_b
    return (crypto.labelled_hash(LABEL_CONFIRM_DISTRICT, transcript, key=pake_key),
            crypto.labelled_hash(LABEL_CONFIRM_SCHOOL, transcript, key=pake_key),
            crypto.labelled_hash(LABEL_SEAL, transcript, key=pake_key))


class CodeClient:
    """The school's side. `random`: 32 or more random bytes (os.urandom) for SPAKE2."""

    def __init__(self, code: JoinCode, *, random: bytes):
        self.code = code
        self._state, self._msg_a = crypto.spake2_start("school", code.password, ID_SCHOOL, ID_DISTRICT, random)
        self._seal_key: bytes | None = None

    def hello(self) -> bytes:
        return CodeHello(VERSION, self.code.slot, self._msg_a).encode()

    def receive_reply(self, data: bytes) -> bytes:
        """Check the district's confirmation; returns the CodeConfirm to send.

        A wrong confirmation means the district used another code, or this is not the district
        (someone on the path answering in its place): `joincode_wrong` either way."""
        reply = decode(data, CodeReply)
        try:
            key = crypto.spake2_finish(self._state, reply.pake)
        except CryptoFailure:
            raise RemoteProtocolError("the district's answer is not a SPAKE2 message", code="malformed_message") from None
        confirm_d, confirm_s, self._seal_key = _keys(key, self.code.slot, self._msg_a, reply.pake)
        if not crypto.constant_time_equal(confirm_d, reply.confirm):
            raise RemoteProtocolError("the district does not know this code (or someone answered in its place)",
                                      code="joincode_wrong")
        return CodeConfirm(confirm_s).encode()

    def receive_invitation(self, data: bytes) -> Invitation:
        if self._seal_key is None:
            raise LocalProtocolError("receive the district's reply first", code="invalid_state")
        msg = decode(data, CodeInvitation)
        try:
            text = crypto.aead_decrypt(self._seal_key, 0, LABEL_SEAL, msg.sealed).decode("ascii")
            return Invitation.parse(text)
        except (CryptoFailure, UnicodeDecodeError, LocalProtocolError):
            raise RemoteProtocolError("the invitation sent for this code is damaged", code="malformed_message") from None


class CodeServer:
    """The district's side, for the invitation the hello's slot named. `code`: that invitation's code."""

    def __init__(self, hello: CodeHello, code: JoinCode, *, random: bytes):
        if hello.slot != code.slot:
            raise LocalProtocolError("the hello names another invitation", code="invalid_state")
        self._state, msg_b = crypto.spake2_start("district", code.password, ID_SCHOOL, ID_DISTRICT, random)
        try:
            key = crypto.spake2_finish(self._state, hello.pake)
        except CryptoFailure:
            raise RemoteProtocolError("the school's hello is not a SPAKE2 message", code="malformed_message") from None
        confirm_d, self._confirm_s, self._seal_key = _keys(key, hello.slot, hello.pake, msg_b)
        self._reply = CodeReply(msg_b, confirm_d).encode()
        self.confirmed = False

    def reply(self) -> bytes:
        return self._reply

    def receive_confirm(self, data: bytes) -> bool:
        """True when the school proved it knows the code; False for a wrong code (count it as a failed try)."""
        msg = decode(data, CodeConfirm)
        self.confirmed = crypto.constant_time_equal(self._confirm_s, msg.confirm)
        return self.confirmed

    def seal(self, invitation: Invitation) -> bytes:
        if not self.confirmed:
            raise LocalProtocolError("the invitation is sent only to a school that proved the code", code="invalid_state")
        return CodeInvitation(crypto.aead_encrypt(self._seal_key, 0, LABEL_SEAL, invitation.to_string().encode("ascii"))).encode()


def parse_hello(data: bytes) -> CodeHello:
    msg = decode(data, CodeHello)
    if msg.version != VERSION:
        raise RemoteProtocolError(f"join-code version {msg.version} is not spoken here (only {VERSION})",
                                  code="unsupported_version")
    if len(msg.slot) != SLOT_CHARS or any(ch not in ALPHABET for ch in msg.slot):
        raise RemoteProtocolError("the hello's slot is not 3 code characters", code="malformed_message")
    return msg


def error(code: str, message: str | None = None) -> bytes:
    return CodeError(code, message).encode()


__all__ = ["ALPHABET", "CODE_LEN", "CodeClient", "CodeServer", "JoinCode", "JoinCodeError", "MAX_FAILURES", "PATH",
           "check_character", "code_slot", "error", "looks_like_code", "parse_code", "parse_hello"]
