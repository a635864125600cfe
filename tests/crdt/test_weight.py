"""A sync message is weighed before Automerge applies it: rows and inflated bytes, refused past a limit.

The attacks are the two ways Automerge's compact format lets a few bytes say a
lot: run-length encoded columns (a change of a million list inserts is about
a hundred bytes) and DEFLATE-compressed chunks (a change holding a 40 MB
string is 40 kB). Legitimate sync messages are counted exactly.
"""
from __future__ import annotations

import random

import automerge.core as am
import pytest

from preau.crdt.docio import receive_sync_message
from preau.crdt.errors import SyncMessageError
from preau.crdt.weight import weigh, weigh_document
from preau.protocol.wire import encode_varint as _uleb  # the same unsigned LEB128 as Automerge's


def _message_with(doc: am.Document) -> bytes:
    """A sync message carrying the document's one change, as a peer can write it by hand."""
    [change] = doc.get_changes([])
    data = change.bytes
    return b"\x42" + _uleb(1) + change.hash + _uleb(0) + _uleb(0) + _uleb(1) + _uleb(len(data)) + data


def test_a_few_bytes_of_run_length_encoded_inserts_are_refused_before_they_are_applied():
    doc = am.Document()
    with doc.transaction() as tx:
        items = tx.put_object(am.ROOT, "l", am.ObjType.List)
        for i in range(20_000):
            tx.insert(items, i, am.ScalarType.Null, None)
    message = _message_with(doc)
    assert len(message) < 200
    assert weigh(message).rows == 20_002  # the list, its inserts and their change
    target = am.Document()
    with pytest.raises(SyncMessageError, match="more than 10000 operations") as refused:
        receive_sync_message(target, am.SyncState(), message, max_rows=10_000)
    assert refused.value.code == "sync_message_too_heavy"
    assert target.get_heads() == []  # nothing applied


def test_a_compressed_change_is_weighed_inflated_without_inflating_past_the_limit():
    doc = am.Document()
    with doc.transaction() as tx:
        tx.put(am.ROOT, "x", am.ScalarType.Str, "a" * (4 << 20))
    message = _message_with(doc)
    assert len(message) < 20_000 and message[len(message) - len(doc.get_changes([])[0].bytes) + 8] == 2
    assert weigh(message).inflated > 4 << 20
    with pytest.raises(SyncMessageError, match="more than 1048576 bytes once inflated"):
        receive_sync_message(am.Document(), am.SyncState(), message, max_bytes=1 << 20)


def test_real_sync_messages_are_counted_exactly_and_applied():
    rng = random.Random(1)
    for _ in range(10):
        doc = am.Document()
        for _ in range(rng.randint(1, 4)):
            with doc.transaction() as tx:
                for j in range(rng.randint(1, 200)):
                    if rng.random() < 0.5:
                        tx.put(am.ROOT, f"k{rng.randint(0, 40)}", am.ScalarType.Int, rng.randint(-9, 10**9))
                    else:
                        items = tx.put_object(am.ROOT, f"l{j}", am.ObjType.List)
                        for i in range(rng.randint(0, 20)):
                            tx.insert(items, i, am.ScalarType.Str, "x" * rng.randint(0, 400))
        changes = doc.get_changes([])
        expected = sum(c.max_op - c.start_op + 1 for c in changes) + len(changes)
        peer, mine, theirs, rows = am.Document(), am.SyncState(), am.SyncState(), 0
        for _ in range(5):
            message = doc.generate_sync_message(mine)
            if message is not None:
                rows += receive_sync_message(peer, theirs, message.encode()).rows
            reply = peer.generate_sync_message(theirs)
            if reply is not None:
                receive_sync_message(doc, mine, reply.encode())
        assert rows == expected and peer.get_heads() == doc.get_heads()
        assert weigh_document(peer.save()).rows == expected  # a saved document weighs the same


def test_damaged_messages_are_refused_as_sync_message_errors_only():
    doc = am.Document()
    with doc.transaction() as tx:
        for j in range(60):
            tx.put(am.ROOT, f"k{j}", am.ScalarType.Str, "v" * j)
    message = _message_with(doc)
    rng = random.Random(2)
    for _ in range(2000):
        data = bytearray(message)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            if rng.random() < 0.7:
                data[at] = rng.randrange(256)
            else:
                del data[at:]
                data.append(rng.randrange(256))
        try:
            weigh(bytes(data))
        except SyncMessageError:
            pass


# -- weighing itself is bounded ------------------------------------------------------------------------------
# Found by review: the walk checked its row limit between runs only, and runs that add no rows cost a Python
# step each; 16 kB messages kept a district's database thread weighing for 5 to 12 s (Automerge alone refuses
# the same bytes in a tenth of a second). Reading is now bounded by a work budget (3 runs or values a row).

def _sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def _deflate(data: bytes) -> bytes:
    import zlib
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _change_with_columns(columns: list[tuple[int, bytes]], compress_body: bool = False) -> bytes:
    """A sync message of one change chunk whose op columns are given as (spec, data)."""
    from preau.crdt.weight import MAGIC
    body = _uleb(0) + _uleb(1) + b"\x01" + _uleb(1) + _uleb(1) + _sleb(0) + _uleb(0) + _uleb(0)
    body += _uleb(len(columns)) + b"".join(_uleb(spec) + _uleb(len(data)) for spec, data in columns)
    body += b"".join(data for _, data in columns)
    kind = b"\x01"
    if compress_body:
        body, kind = _deflate(body), b"\x02"
    chunk = MAGIC + b"\0\0\0\0" + kind + _uleb(len(body)) + body
    return b"\x42" + _uleb(0) + _uleb(0) + _uleb(0) + _uleb(1) + _uleb(len(chunk)) + chunk


N = 16 * 1024 * 1024 - 40_000


@pytest.mark.parametrize("name,columns,compress_body", [
    # a deflated column of zero-length null runs (ULEB column: 00 00 ...)
    ("null runs of no rows", [((1 << 4) | 8 | 2, _deflate(b"\0" * N))], False),
    # a deflated column holding one literal run of millions of values
    ("one long literal run", [((1 << 4) | 8 | 2, _deflate(_sleb(-(N - 10)) + b"\0" * (N - 10)))], False),
    # hundreds of columns, each a literal run of 49,000 values: each under the row limit, together a long read
    ("many columns", [(((i + 1) << 4) | 2, _sleb(-49_000) + b"\x01" * 49_000) for i in range(300)], True),
])
def test_weighing_a_message_is_quick_whatever_it_holds(name, columns, compress_body):
    import time
    message = _change_with_columns(columns, compress_body)
    assert len(message) < 40_000  # a few kB on the wire
    start = time.process_time()
    with pytest.raises(SyncMessageError) as exc:
        weigh(message)
    assert exc.value.code == "sync_message_too_heavy"
    assert time.process_time() - start < 1.0, name  # was 5 to 9 s each


def test_a_message_of_many_small_changes_is_not_refused_for_its_reading():
    """review4: 17,000 one-op changes (34,000 rows, well under the limit) were refused: each change's columns
    cost a step each, about 5 a row, and the reading budget was 3 a row."""
    source = am.Document()
    with source.transaction() as tx:
        tx.put(am.ROOT, "n", am.ScalarType.Int, 0)
    for i in range(17_000):
        with source.transaction() as tx:
            tx.put(am.ROOT, "n", am.ScalarType.Int, i)
    target = am.Document()
    a, b = am.SyncState(), am.SyncState()
    for _ in range(10):
        msg = source.generate_sync_message(a)
        if msg is not None:
            data = msg.encode()
            weight = receive_sync_message(target, b, data)
            assert weight.rows <= 50_000
        reply = target.generate_sync_message(b)
        if reply is None and msg is None:
            break
        if reply is not None:
            source.receive_sync_message(a, am.Message.decode(reply.encode()))
    assert target.get_heads() == source.get_heads()
