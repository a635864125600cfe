"""Arbitrary input in every state gives events or a RemoteProtocolError, never any other exception.

Each hypothesis example carries a batch of inputs (cheap cases, few examples),
so the whole file feeds well over 100,000 inputs in a few seconds. Inputs are
both raw bytes (what an attacker without keys can send) and well-keyed frames
with arbitrary content (what a buggy or hostile authenticated peer can send).
"""
from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings, strategies as st

from preau.protocol.connection import ConnectionClosed, Established, PeerKeyRotated
from preau.protocol.errors import RemoteProtocolError, LocalProtocolError
from preau.protocol.identity import RotationStatement, parse_node_id
from preau.protocol.invitation import Invitation
from preau.protocol.noise import CipherState, SymmetricState
from preau.protocol.wire import (
    TRANSPORT_TYPES, Close, DocOffer, Done, Error, Hello, Join, KeyRotation, Message, Offer, Receipt, Release, SyncIdle,
    SyncMessage, Want, Welcome, decode_message, encode_varint,
)

from protocol_pair import World

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
BATCH = 300
KEYED_BATCH = 100
COUNTS: dict[str, int] = {}
EVENT_TYPES = (Established, PeerKeyRotated, ConnectionClosed, Message)


def _tlv():
    field = st.tuples(st.integers(0, 9), st.binary(max_size=40))
    return st.lists(field, max_size=6).map(lambda fs: b"".join(encode_varint(t) + encode_varint(len(v)) + v for t, v in fs))


def _message_body():
    """A plausible message: a known (or unknown) type and fields, sometimes with trailing junk."""
    mtype = st.one_of(st.sampled_from(sorted(TRANSPORT_TYPES)), st.integers(0, 200))
    return st.tuples(mtype, _tlv(), st.binary(max_size=4)).map(lambda x: encode_varint(x[0]) + x[1] + x[2])


_DOC = st.text(st.characters(whitelist_categories=("L", "N", "P")), min_size=1, max_size=12)
_VALID = st.one_of(
    st.builds(lambda d, r: Offer((DocOffer(d, r),)), _DOC, st.one_of(st.none(), st.binary(max_size=20))),
    st.builds(lambda ds: Want(tuple(dict.fromkeys(ds))), st.lists(_DOC, max_size=3)),
    st.builds(SyncMessage, _DOC, st.binary(min_size=1, max_size=30)),
    st.builds(SyncIdle, _DOC), st.builds(Release, _DOC, st.binary(max_size=20)), st.builds(Receipt, _DOC, st.binary(max_size=20)),
    st.just(Done()), st.builds(Close, st.one_of(st.none(), st.text(max_size=10))),
    st.builds(Error, st.text(max_size=10), st.one_of(st.none(), st.text(max_size=10))),
    st.builds(KeyRotation, st.binary(max_size=40)), st.just(Welcome()),
)


def _mutated_valid():
    """A well-formed message, then maybe cut, extended with junk fields, or with one byte changed."""
    def mutate(args):
        msg, how, pos, junk = args
        raw = msg.encode()
        if how == 1:
            return raw[:pos % (len(raw) + 1)]
        if how == 2:
            return raw + junk
        if how == 3 and raw:
            i = pos % len(raw)
            return raw[:i] + bytes([(raw[i] + 1 + pos) % 256]) + raw[i + 1:]
        return raw
    return st.tuples(_VALID, st.integers(0, 3), st.integers(0, 1000), _tlv()).map(mutate)


RAW = st.lists(st.binary(max_size=120), min_size=BATCH, max_size=BATCH)
BODIES = st.lists(st.one_of(_mutated_valid(), _message_body(), st.binary(max_size=80)), min_size=KEYED_BATCH, max_size=KEYED_BATCH)


def _feed(conn, data: bytes) -> bool:
    """True when the input produced events (so the fuzzer got past authentication and parsing)."""
    events = []
    try:
        events = conn.receive_data(data)
        assert all(isinstance(e, EVENT_TYPES) for e in events), events
        conn.receive_data(b"")  # then hang up: a partial frame must give a RemoteProtocolError too
    except RemoteProtocolError:
        pass
    return bool(events)


def _count(name: str, n: int = BATCH) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + n


def _run(name, fn, batch: int = BATCH):
    """Run a fuzz test and check every example fed its whole batch under `name`."""
    COUNTS.pop(name, None)
    fn()
    assert COUNTS[name] >= FUZZ.max_examples * batch


# --- states built once; deepcopy gives each input a pristine connection -------------------------

def _states():
    w = World()
    w.pin_school()
    i, r = w.connect(), w.responder()
    memo = lambda: {id(w.district_store): w.district_store}
    snap = {"resp_await_1": copy.deepcopy(r, memo())}
    msg1 = i.data_to_send()
    r.receive_data(msg1)
    snap["init_await_2"] = copy.deepcopy(i, memo())
    msg2 = r.data_to_send()
    snap["pair_before_3"] = copy.deepcopy((i, r), memo())  # initiator has not read message 2 yet
    i.receive_data(msg2)
    snap["resp_await_3"] = copy.deepcopy(r, memo())
    snap["init_await_welcome"] = copy.deepcopy(i, memo())
    r.receive_data(i.data_to_send())
    welcome_key = r._before_welcome[0]
    i.receive_data(r.data_to_send())
    snap["resp_open"], snap["init_open"] = copy.deepcopy(r, memo()), copy.deepcopy(i, memo())
    closing = copy.deepcopy(i, memo())
    closing.close("bye")
    closing.data_to_send()
    snap["init_closing"] = closing
    return snap, memo, msg2[2:], welcome_key


SNAP, MEMO, MSG2_BODY, WELCOME_KEY = _states()


def test_fast_clone_is_faithful():
    """The genuine next message works on a clone, and a clone's failure leaves the original intact."""
    i, r = copy.deepcopy(SNAP["pair_before_3"], MEMO())
    for _ in range(2):
        i2, r2 = _clone(i), _clone(r)
        i2.receive_data(len(MSG2_BODY).to_bytes(2, "big") + MSG2_BODY)
        assert isinstance(r2.receive_data(i2.data_to_send())[0], Established)
        bad = _clone(r)
        try:
            bad.receive_data(b"\x00\x30" + bytes(48))
        except RemoteProtocolError:
            pass


def _clone_cipher(cs):
    if cs is None:
        return None
    out = CipherState(cs.k)
    out.n = cs.n
    return out


def _clone(conn):
    """A fast copy of a connection (deepcopy costs 100 us; this costs a few): only mutable parts are copied."""
    c = object.__new__(type(conn))
    c.__dict__.update(conn.__dict__)
    c._inbuf, c._out, c._reasm = bytearray(conn._inbuf), list(conn._out), bytearray(conn._reasm)
    c._send, c._recv = _clone_cipher(conn._send), _clone_cipher(conn._recv)
    if conn._hs is not None:
        hs = copy.copy(conn._hs)
        ss = object.__new__(SymmetricState)
        ss.ck, ss.h, ss.cipher = conn._hs.ss.ck, conn._hs.ss.h, _clone_cipher(conn._hs.ss.cipher)
        hs.ss, hs._psks = ss, list(conn._hs._psks)
        c._hs = hs
    return c


def _fresh(name):
    return _clone(SNAP[name])


def _keyed_frames(key: bytes, n: int, bodies):
    """Each body sealed with the right key and nonce, as an authenticated peer would (final chunk, mostly)."""
    for body in bodies:
        c = CipherState(key)
        c.n = n
        flag = b"\x00" if body[:1] == b"\xfe" else b"\x01"
        ct = c.encrypt_with_ad(flag, body)
        yield (len(ct) + 1).to_bytes(2, "big") + flag + ct


# --- raw bytes in every state -----------------------------------------------------------------

def _raw_test(state):
    @FUZZ
    @given(RAW)
    def inner(batch):
        for data in batch:
            _feed(_fresh(state), data)
        _count(state)
    return inner


def test_raw_bytes_responder_awaiting_1():
    _run("resp_await_1", _raw_test("resp_await_1"))


def test_raw_bytes_initiator_awaiting_2():
    _run("init_await_2", _raw_test("init_await_2"))


def test_raw_bytes_responder_awaiting_3():
    _run("resp_await_3", _raw_test("resp_await_3"))


def test_raw_bytes_initiator_awaiting_welcome():
    _run("init_await_welcome", _raw_test("init_await_welcome"))


def test_raw_bytes_open():
    _run("resp_open", _raw_test("resp_open"))


def test_raw_bytes_closing():
    _run("init_closing", _raw_test("init_closing"))


def test_headed_frames_responder_awaiting_1():
    """Right magic and version, arbitrary handshake bytes behind."""
    @FUZZ
    @given(RAW)
    def inner(batch):
        for data in batch:
            _feed(_fresh("resp_await_1"), b"PREAU\x01" + len(data).to_bytes(2, "big") + data)
        _count("headed")
    _run("headed", inner)


# --- authenticated peers sending arbitrary content ------------------------------------------

def test_keyed_messages_when_open():
    @FUZZ
    @given(BODIES)
    def inner(bodies):
        sender = SNAP["init_open"]._send
        for frame in _keyed_frames(sender.k, sender.n, bodies):
            if _feed(_fresh("resp_open"), frame):
                _count("keyed_open_events", 1)
        _count("keyed_open", KEYED_BATCH)
    _run("keyed_open", inner, KEYED_BATCH)
    assert COUNTS["keyed_open_events"] > FUZZ.max_examples * KEYED_BATCH // 10  # many parse into real messages


def test_keyed_messages_awaiting_welcome():
    @FUZZ
    @given(BODIES)
    def inner(bodies):
        for frame in _keyed_frames(WELCOME_KEY, 0, bodies):
            _feed(_fresh("init_await_welcome"), frame)
        _count("keyed_welcome", KEYED_BATCH)
    _run("keyed_welcome", inner, KEYED_BATCH)


HS_BATCH = 20


def test_handshake_3_payloads_from_a_keyed_initiator():
    """A peer that completes the Noise handshake but puts arbitrary bytes in message 3's payload."""
    @FUZZ
    @given(st.lists(st.one_of(_tlv(), st.binary(max_size=80)), min_size=HS_BATCH, max_size=HS_BATCH))
    def inner(payloads):
        for payload in payloads:
            i, r = copy.deepcopy(SNAP["pair_before_3"], MEMO())
            i._hs.read_message(MSG2_BODY)
            msg3 = i._hs.write_message(payload)
            _feed(r, len(msg3).to_bytes(2, "big") + msg3)
        _count("hs3_payload", HS_BATCH)
    _run("hs3_payload", inner, HS_BATCH)


# --- the decoders on their own (cheap, so many inputs) -------------------------------------------

DECODER_BATCH = 100


def test_decoders():
    @FUZZ
    @given(st.lists(st.one_of(_message_body(), st.binary(max_size=60)), min_size=DECODER_BATCH, max_size=DECODER_BATCH))
    def inner(batch):
        for data in batch:
            for decode in (decode_message, Hello.decode_body, Join.decode_body, RotationStatement.verify):
                try:
                    decode(data)
                except RemoteProtocolError:
                    pass
            for parse in (Invitation.parse, parse_node_id):
                try:
                    parse(data.decode("latin-1"))
                    parse("PREAU1-" + data.hex().upper())
                except LocalProtocolError:
                    pass
        _count("decoders", DECODER_BATCH)
    _run("decoders", inner, DECODER_BATCH)


def test_total_inputs_reach_100k():
    """Counted from the batch sizes above (each test checks it ran its share)."""
    connection_inputs = FUZZ.max_examples * (7 * BATCH + 2 * KEYED_BATCH + HS_BATCH)
    assert connection_inputs >= 100_000  # decoder inputs come on top
