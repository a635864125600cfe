"""Arbitrary bytes to the secure aggregation decoders and state machines: a message or a ProtocolError, nothing else."""
from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings, strategies as st

from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.secagg import DistrictAggregator, Reply, decode, encode
from preau.protocol.secagg.messages import TYPES, VERSION
from preau.protocol.wire import Message, encode_varint

from secagg_pool import Pool, run

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _tlv():
    field = st.tuples(st.integers(0, 10), st.binary(max_size=48))
    return st.lists(field, max_size=8).map(lambda fs: b"".join(encode_varint(t) + encode_varint(len(v)) + v for t, v in fs))


_BODY = st.tuples(st.sampled_from([VERSION, VERSION, 0, 2]), st.one_of(st.sampled_from(sorted(TYPES)), st.integers(0, 300)),
                  _tlv()).map(lambda x: encode_varint(x[0]) + encode_varint(x[1]) + x[2])


def _transcript_messages() -> list[bytes]:
    pool = Pool(4, cohorts=[3, 4, 5, 6], tag="fuzz")
    _server, _clients, transcript = run(pool, {"inputs": {4}})
    return [data for _kind, _m, data in transcript]


VALID = _transcript_messages()


def _mutated():
    def mutate(args):
        data, pos, byte, cut = args
        data = bytearray(data)
        data[pos % len(data)] = byte
        return bytes(data[:max(1, len(data) - cut)])
    return st.tuples(st.sampled_from(VALID), st.integers(0, 10_000), st.integers(0, 255), st.sampled_from([0, 0, 1, 7, 40])).map(mutate)


INPUTS = st.one_of(st.binary(max_size=200), _BODY, _mutated())


@FUZZ
@given(st.lists(INPUTS, min_size=1, max_size=40))
def test_decode_gives_a_message_or_a_remote_error(batch):
    for data in batch:
        try:
            msg = decode(data)
        except RemoteProtocolError:
            continue
        assert isinstance(msg, Message)
        assert decode(encode(msg)) == msg


def test_every_transcript_message_round_trips():
    assert len({type(decode(d)) for d in VALID}) == 10  # all but the pool definition and PoolAborted
    for data in VALID:
        assert encode(decode(data)) == data


def _clients_in_each_state():
    """One client per state, copied before each input so each input meets a live state machine."""
    pool = Pool(4, cohorts=[3, 4, 5, 6], tag="fuzz-states")
    clients = pool.clients()
    server = DistrictAggregator(pool.definition)
    states = [copy.deepcopy(clients[1])]
    servers = [copy.deepcopy(server)]
    inbox = {m: c.start() for m, c in clients.items()}
    while server.state not in ("complete", "aborted"):
        for m, data in inbox.items():
            server.receive(m, data)
        out = server.advance()
        servers.append(copy.deepcopy(server))
        replies = {m: clients[m].receive(d) for m, d in out.items()}
        inbox = {m: r.data for m, r in replies.items() if r is not None}
        if clients[1].state not in ("done", "complete"):
            states.append(copy.deepcopy(clients[1]))
    return states, servers[:-1]


CLIENTS, SERVERS = _clients_in_each_state()


@FUZZ
@given(st.lists(INPUTS, min_size=1, max_size=20))
def test_client_and_district_take_anything_without_crashing(batch):
    assert len(CLIENTS) == 4 and len(SERVERS) == 5
    for data in batch:
        for original in CLIENTS:
            client = copy.deepcopy(original, {id(original.pool): original.pool, id(original.identity): original.identity})
            try:
                reply = client.receive(data)
            except (RemoteProtocolError, LocalProtocolError):
                assert client.state == "failed"
                continue
            assert reply is None or isinstance(reply, Reply)
        for original in SERVERS:
            server = copy.deepcopy(original, {id(original.pool): original.pool})
            try:
                assert server.receive(1, data) in (True, False)
            except RemoteProtocolError:
                pass
