"""What a sync message will cost to apply, read from its bytes before Automerge sees them.

Automerge's binary format is compact on purpose: its columns are run-length
encoded and its chunks may be DEFLATE-compressed. So a few bytes can describe
a great deal: a 142-byte sync message held one change of a million list
inserts (RLE columns), and Automerge took 3.6 s and 630 MB to apply it; a
100 kB one held a compressed 100 MB string. A peer could send such a message
for a document it offered, and the receiving node spent its memory and its
database thread on it before any check could run.

`weigh(message)` walks the message's chunks (the sync message's change list:
changes, compressed changes, or a whole document) and returns how many rows
their columns describe (operations and changes: what Automerge will build)
and how many bytes they hold once inflated. It stops as soon as either passes
its limit and raises `SyncMessageError`, inflating at most `max_bytes`, so
weighing costs about what the message's bytes cost. Bytes it cannot read are
refused too: Automerge would refuse them anyway.

The format, from automerge-rs 0.5 (the core of the pinned binding): a sync
message is a type byte (0x42 or 0x43), heads, need, have (heads and a bloom
filter each) and a list of length-prefixed chunks; a chunk is magic (4 bytes),
checksum (4), type (0 document, 1 change, 2 compressed change), a LEB128
length and its body; a body's columns are described by (spec, length) pairs,
spec = id << 4 | deflated << 3 | type.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from .errors import DocumentError, SyncMessageError

MAGIC = bytes.fromhex("856f4a83")
MAX_ROWS = 50_000  # rows (operations and changes) one sync message may bring: at most ~0.2 s and ~35 MB to apply
MAX_INFLATED = 16 * 1024 * 1024  # bytes one sync message may hold once its compressed parts are inflated

# Column types (the low three bits of a column spec).
GROUP, ACTOR, ULEB, DELTA, BOOLEAN, STRING, VALUE_META, VALUE = range(8)


@dataclass(frozen=True, slots=True)
class Weight:
    rows: int  # operations and changes the message describes
    inflated: int  # its bytes, with every compressed part counted inflated


class _TooHeavy(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def _leb(self) -> tuple[int, int, int]:
        """One LEB128 number: its bits, how many, and its last byte (the sign is that byte's 0x40)."""
        result = shift = 0
        while True:
            if self.pos >= len(self.data) or shift > 63:
                raise ValueError("bad LEB128")
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result, shift, b

    def uleb(self) -> int:
        return self._leb()[0]

    def sleb(self) -> int:
        result, shift, last = self._leb()
        return result - (1 << shift) if last & 0x40 else result

    def blob(self) -> bytes:
        return self.take(self.uleb())

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


class _Budget:
    def __init__(self, max_rows: int, max_bytes: int):
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.rows = self.inflated = 0
        # Runs and values decoded, all columns together: a real message decodes about 1.7 per row (every column
        # holds the same rows). Without this bound, 16 kB of compressed runs that add no rows (or hundreds of
        # columns of 49,000 values each) kept a district's database thread weighing for 5 to 12 s.
        self.work, self.max_work = 0, 3 * max_rows + 1_000

    def step(self, n: int = 1) -> None:
        self.work += n
        if self.work > self.max_work:
            raise _TooHeavy(f"its columns hold more than {self.max_work} runs and values to read")

    def add_rows(self, n: int) -> None:
        self.rows += n
        if self.rows > self.max_rows:
            raise _TooHeavy(f"it describes more than {self.max_rows} operations")

    def inflate(self, data: bytes) -> bytes:
        """Raw DEFLATE, never more than what is left of the byte budget."""
        room = self.max_bytes - self.inflated
        d = zlib.decompressobj(-15)
        out = d.decompress(data, room + 1)
        if len(out) > room:
            raise _TooHeavy(f"it holds more than {self.max_bytes} bytes once inflated")
        self.inflated += len(out)
        return out


def _column_rows(kind: int, data: bytes, limit: int, budget: _Budget) -> int:
    """How many rows one column encodes (stopping past `limit`, or when the budget's reading work runs out)."""
    r, rows = _Reader(data), 0
    if kind == VALUE:  # raw bytes, sized by the metadata column: no rows of its own
        return 0
    while not r.done and rows <= limit:
        budget.step()
        if kind == BOOLEAN:  # run lengths, alternately false and true
            rows += r.uleb()
            continue
        count = r.sleb()
        if count > 0:  # one value repeated
            _value(r, kind)
            rows += count
        elif count < 0:  # literal values: past the limit already, or each one read (and counted as work)
            if rows - count > limit:
                return rows - count
            budget.step(-count)
            for _ in range(-count):
                _value(r, kind)
            rows += -count
        else:  # a run of nulls
            rows += r.uleb()
    return rows


def _value(r: _Reader, kind: int) -> None:
    if kind == STRING:
        r.blob()
    elif kind == DELTA:
        r.sleb()
    else:
        r.uleb()


def _columns(r: _Reader) -> list[tuple[int, int]]:
    return [(r.uleb(), r.uleb()) for _ in range(r.uleb())]


def _weigh_columns(specs: list[tuple[int, int]], r: _Reader, budget: _Budget) -> None:
    """Rows of one set of columns: the most any of its columns encodes (they all describe the same rows)."""
    # Each column of each change costs a step or more to read, whatever its rows: a message of many small changes
    # reads up to 6 a row (review4: 17,000 one-op changes were refused at 3 a row). A column's description costs
    # the message its bytes, so this allowance stays bounded by what was sent.
    budget.max_work += 2 * len(specs)
    most = 0
    for spec, length in specs:
        data = r.take(length)
        if spec & 0x08:
            data = budget.inflate(data)
        most = max(most, _column_rows(spec & 0x07, data, budget.max_rows - budget.rows, budget))
    budget.add_rows(most)


def _weigh_chunk(r: _Reader, budget: _Budget) -> None:
    if r.take(4) != MAGIC:
        raise ValueError("not an Automerge chunk")
    r.take(4)  # checksum: Automerge checks it
    kind = r.take(1)[0]
    body = r.take(r.uleb())
    if kind == 2:  # a compressed change: its body inflated is a change's body
        body, kind = budget.inflate(body), 1
    b = _Reader(body)
    if kind == 1:
        for _ in range(b.uleb()):  # dependencies
            b.take(32)
        b.blob()  # actor
        b.uleb(), b.uleb(), b.sleb()  # seq, start op, time
        b.blob()  # message
        for _ in range(b.uleb()):  # other actors
            b.blob()
        _weigh_columns(_columns(b), b, budget)
        budget.add_rows(1)
    elif kind == 0:
        for _ in range(b.uleb()):  # actors
            b.blob()
        for _ in range(b.uleb()):  # heads
            b.take(32)
        changes, ops = _columns(b), _columns(b)
        _weigh_columns(changes, b, budget)
        _weigh_columns(ops, b, budget)
    else:
        raise ValueError(f"unknown chunk type {kind}")


def _hashes(r: _Reader) -> None:
    for _ in range(r.uleb()):
        r.take(32)


def _weighed(data: bytes, max_rows: int, max_bytes: int, walk) -> Weight:
    """`walk(reader, budget)` over `data`; _TooHeavy past a limit, ValueError (or zlib.error) on bytes it cannot
    read: the callers say which in their own error."""
    budget = _Budget(max_rows, max_bytes)
    budget.inflated = len(data)
    walk(_Reader(data), budget)
    return Weight(budget.rows, budget.inflated)


def _message(r: _Reader, budget: _Budget) -> None:
    if r.take(1)[0] not in (0x42, 0x43):
        raise ValueError("not a sync message")
    _hashes(r)  # heads
    _hashes(r)  # need
    for _ in range(r.uleb()):  # have: last sync heads and a bloom filter
        _hashes(r)
        r.blob()
    for _ in range(r.uleb()):  # the change list: each entry one chunk or several, end to end (as a v2 message sends)
        _chunks(_Reader(r.blob()), budget)


def _chunks(r: _Reader, budget: _Budget) -> None:
    """Chunks end to end: a saved document, or one entry of a message's change list."""
    while not r.done:
        _weigh_chunk(r, budget)


def weigh(message: bytes, *, max_rows: int = MAX_ROWS, max_bytes: int = MAX_INFLATED) -> Weight:
    """What applying this sync message will build; SyncMessageError past either limit or on unreadable bytes."""
    try:
        return _weighed(message, max_rows, max_bytes, _message)
    except _TooHeavy as exc:
        raise SyncMessageError(f"this sync message is too large to apply: {exc}", code="sync_message_too_heavy") from None
    except (ValueError, IndexError, zlib.error) as exc:
        raise SyncMessageError(f"this sync message is not valid: {exc}") from None


def weigh_document(data: bytes, *, max_rows: int = 1 << 62, max_bytes: int = 1 << 62) -> Weight:
    """The same for a saved document (or concatenated changes): what loading it will build."""
    try:
        return _weighed(data, max_rows, max_bytes, _chunks)
    except _TooHeavy as exc:
        raise DocumentError(f"this document is too large to load: {exc}", code="document_too_heavy") from None
    except (ValueError, IndexError, zlib.error) as exc:
        raise DocumentError(f"these bytes are not a valid Automerge document: {exc}") from None
