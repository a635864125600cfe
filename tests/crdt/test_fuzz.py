"""Arbitrary bytes as a document, a sync message or a signed release: a typed error, never a crash.

Deterministic (seeded) mutation fuzzing: 10,000 cases for documents and 10,000 for
sync messages, built from valid inputs by bit flips, truncation, splicing,
duplication and random bytes. A PanicException is a BaseException, so each case
catches BaseException and fails the test on anything but a CrdtError.
"""
import random

import pytest
from automerge.core import SyncState

from preau.crdt.docio import generate_sync_message, load_document, receive_sync_message
from preau.crdt.errors import CrdtError
from preau.crdt.schema import read_document
from preau.crdt.signing import SignedRelease, verify_release

from crdt_fixtures import NOW, School, fix_checksum, make_campaign, outcomes_for

CASES = 10_000


def _mutate(rng: random.Random, seed_inputs: list[bytes]) -> bytes:
    data = bytearray(rng.choice(seed_inputs))
    op = rng.randrange(7)
    if op == 0 and data:  # flip bits
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif op == 1 and data:  # truncate
        data = data[: rng.randrange(len(data))]
    elif op == 2:  # splice two inputs
        other = rng.choice(seed_inputs)
        data = data[: rng.randint(0, len(data))] + other[rng.randint(0, len(other)) :]
    elif op == 3 and data:  # overwrite a run with random bytes
        i = rng.randrange(len(data))
        n = rng.randint(1, 16)
        data[i : i + n] = rng.randbytes(n)
    elif op == 4:  # insert random bytes
        i = rng.randint(0, len(data))
        data[i:i] = rng.randbytes(rng.randint(1, 32))
    elif op == 5 and data:  # duplicate a slice
        i = rng.randrange(len(data))
        data[i:i] = data[i : i + rng.randint(1, 64)]
    else:  # pure noise, sometimes behind a valid prefix
        data = bytearray(data[: rng.choice([0, 4, 8, 16])]) + rng.randbytes(rng.randint(0, 200))
    return bytes(data)


@pytest.fixture(scope="module")
def school():
    s = School(1, make_campaign())
    pupils = [f"p{i}" for i in range(15)]
    for k in range(3):
        s.publish(outcomes_for(pupils, s.campaign, random.Random(k)), now=NOW + k)
    return s


def _only_crdt_errors(fn, data):
    try:
        fn(data)
    except CrdtError:
        return "error"
    except BaseException as exc:  # noqa: BLE001 - PanicException is a BaseException
        pytest.fail(f"{type(exc).__module__}.{type(exc).__name__} escaped for input {data[:64].hex()}…: {exc}")
    return "ok"


def test_fuzz_bytes_as_document(school):
    seeds = [school.doc.save(), load_document(school.doc.save()).save()] + [bytes(c.raw_bytes) for c in school.doc.get_changes([])]
    seeds.append(seeds[0] + b"".join(seeds[2:]))
    rng = random.Random(20261128)

    def use(data):
        doc = load_document(data)
        read_document(doc)

    cases = (_mutate(rng, seeds) for _ in range(CASES))
    outcomes = [_only_crdt_errors(use, fix_checksum(c) if i % 2 else c) for i, c in enumerate(cases)]
    print("document cases", len(outcomes), "refused", outcomes.count("error"))
    assert outcomes.count("error") > CASES // 4  # the mutations do break documents


def test_fuzz_bytes_as_sync_message(school):
    # real messages of a sync session from an empty peer, in both directions
    target = load_document(b"")
    s_a, s_b = SyncState(), SyncState()
    seeds = []
    for _ in range(6):
        m = generate_sync_message(school.doc, s_a)
        if m:
            seeds.append(m)
            receive_sync_message(target, s_b, m)
        r = generate_sync_message(target, s_b)
        if r:
            seeds.append(r)
            receive_sync_message(school.doc, s_a, r, accept_changes=False)
    assert len(seeds) >= 3
    rng = random.Random(20261129)
    peer = load_document(school.doc.save())
    fresh = load_document(b"")

    def use(data):
        receive_sync_message(fresh if rng.random() < 0.5 else peer, SyncState(), data)

    outcomes = [_only_crdt_errors(use, _mutate(rng, seeds)) for _ in range(CASES)]
    print("sync cases", len(outcomes), "refused", outcomes.count("error"))
    assert outcomes.count("error") > CASES // 10
    # whatever was accepted, the documents still read and verify
    verify_release(peer, school.signed[-1], school.owner, 0)


def test_fuzz_signed_release_bytes(school):
    seeds = [s.encode() for s in school.signed]
    rng = random.Random(7)
    for _ in range(3000):
        data = _mutate(rng, seeds)
        try:
            signed = SignedRelease.decode(data)
        except CrdtError:
            continue
        # decodable after mutation: it must still be refused unless it is the genuine one
        if signed not in school.signed:
            with pytest.raises(CrdtError):
                verify_release(school.doc, signed, school.owner, 0)
