"""Secure aggregation end to end: a district (`preau serve`) and 8 schools driven by `preau` commands.

Four schools have 3 to 7 pupils: alone they are withheld; pooled, their sum
reaches the district. The district's totals must equal the generated data over
all 8 schools, and no small school's own vector may exist anywhere in the
district's files (we search them for each small school's vector in every form
it could be stored in) nor in anything it was sent: the district's processes
write every protocol message they receive, as decrypted from the Noise session,
to a capture file (node/testhooks.py, PREAU_TEST_CAPTURE_WIRE), searched too.
"""
from __future__ import annotations

import json
import re

import pytest

from e2e_world import World, wait_for
from preau.crdt.campaign import GROUPS
from preau.crdt.pooling import pool_vector
from preau.crdt.schema import COLUMNS
from preau.crdt.disclosure import PupilOutcome
from preau.node.demo.synthetic import assessed
from preau.node.testhooks import WIRE_CAPTURE, read_wire_capture
from preau.protocol.secagg import decode
from preau.protocol.secagg.masks import pack
from preau.protocol.secagg.messages import MaskedInput
from preau.protocol.wire import PoolMail, decode_message

pytestmark = pytest.mark.slow

LARGE = {"l1": [14], "l2": [12], "l3": [16], "l4": [11]}
SMALL = {"p1": [3], "p2": [5], "p3": [7], "p4": [4]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("pools"))
    w.district.capture_wire = True  # the wire, as the district reads it: searched for the small schools' vectors
    for n, name in enumerate([*LARGE, *SMALL]):
        w.add_school(name, 31 * n + 5).world = w
    w.init_all()
    w.district.start()
    w.load_campaign()
    try:
        w.parallel(_join, w.schools.values())
        yield w
    finally:
        w.stop_all()


def _join(node) -> None:
    """Enrol with the school's name, so the other members' head teachers see it in the pool."""
    w = node.world
    invitation = w.district.cli("invite", "--uai", node.uai, "--name", f"École {node.name}",
                                "--allow-loopback").stdout.strip()
    assert "Joined the district" in node.cli("join", invitation).stdout


def _vector(w: World, node) -> tuple[int, ...]:
    """The small school's vector from the synthetic data's intended groups (not via Préau)."""
    outcomes = [PupilOutcome(f"{c.name}/{i}", ex, group)
                for c in node.classes for i, p in enumerate(c.pupils) for ex, (group, _score) in p.results.items()]
    # Exercises without a result in the synthetic data count nobody, as at the school.
    return pool_vector(outcomes, w.campaign)


def _pool_state(node) -> dict:
    rows = node.query("SELECT value FROM meta WHERE key = 'secagg/pools'")
    return json.loads(rows[0]["value"]) if rows else {}


def test_four_small_schools_pool_and_the_district_counts_all_eight(world):
    w = world
    for i, (name, sizes) in enumerate({**LARGE, **SMALL}.items()):
        w.fill(w.schools[name], sizes, seed=300 + i)
    w.parallel(w.release, [w.schools[n] for n in LARGE])
    w.parallel(lambda node: node.cli("sync"), [w.schools[n] for n in LARGE])

    small = [w.schools[n] for n in SMALL]
    # Each head teacher declares the school's cohort (signed, public figures); it reaches the district at a sync.
    w.parallel(lambda node: node.cli("pool", "declare", w.campaign.id, "--user", "admin"), small)
    w.parallel(lambda node: node.cli("sync"), small)
    members = [node.uai for node in small[:3]] + [f"{small[3].uai}={assessed(small[3].classes)}"]
    out = w.district.cli("pool", "create", w.campaign.id, *sum((["--member", m] for m in members), [])).stdout
    assert "4 schools, threshold 3" in out, out

    w.parallel(lambda node: node.cli("sync"), small)
    listing = small[0].cli("pool", "list").stdout
    for node in small:
        assert node.uai in listing and f"École {node.name}" in listing, listing
    pool_id = re.search(r"pool ([0-9a-f]{8})", listing).group(1)
    # Nothing leaves before the head teacher approves.
    assert "proposed" in listing
    w.parallel(lambda node: node.cli("pool", "approve", pool_id, "--user", "admin"), small)

    # The rounds run by themselves: each school's serve loop syncs every few seconds while its pool moves.
    w.parallel(lambda node: node.start(), small)
    wait_for(lambda: [s["status"] for s in _pool_state(w.district).values()] == ["complete"], 120,
             what="the pool to complete")

    stats = w.stats()
    assert stats["schools_contributing"] == 5  # four large schools and one pool row
    expected = w.expected(w.schools.values())
    got = w.counts(stats)
    for ex, counts in got.items():
        assert counts == {g: expected[ex][g] for g in GROUPS}, ex
    pool_rows = [e for k, e in w.stored_stats()["schools"].items() if k.startswith("pool-")]
    assert len(pool_rows) == 1
    assert pool_rows[0]["content"]["cohort"] == sum(assessed(n.classes) for n in small)
    assert "4 schools pooled" in w.district.cli("pool", "list", "--lang", "en").stdout  # one language per line
    assert "4 écoles regroupées" in w.district.cli("pool", "list", "--lang", "fr").stdout

    # The vectors searched for below are the schools' real ones: together they are exactly the pool's row.
    content = pool_rows[0]["content"]
    pooled = [content["exercises"][ex.id][c] for ex in w.campaign.exercises for c in COLUMNS] + [content["cohort"]]
    assert pooled == [sum(col) for col in zip(*(_vector(w, n) for n in small))]

    # No small school's own vector anywhere at the district, in any form it could be written.
    blobs = b"".join(p.read_bytes() for p in w.district.data_dir.rglob("*") if p.is_file())
    for node in small:
        v = _vector(w, node)
        for form in (pack(list(v)), pack(list(v)).hex().encode(), json.dumps(list(v)).encode(),
                     ",".join(map(str, v)).encode()):
            assert form not in blobs, node.name
    # The search does find what the district does hold: each small school's masked input, as received.
    masked = [bytes.fromhex(d) for state in _pool_state(w.district).values() for m, d in
              (e for e in state["events"] if e[0] != "advance")]
    assert masked and all(d.hex().encode() in blobs for d in masked)

    # Nor on the wire: every message the district received, decrypted, in the same forms, and in pieces too
    # (any three exercises' counts in a row, as the pool protocol packs them: little-endian u32, when at least
    # three of those counts are not zero, so the piece is distinctive).
    capture = w.district.data_dir / WIRE_CAPTURE
    wire = capture.read_bytes()
    k = len(COLUMNS)
    for node in small:
        v = list(_vector(w, node))
        forms = [pack(v), pack(v[:-1]), pack(v).hex().encode(), json.dumps(v).encode(), ",".join(map(str, v)).encode()]
        forms += [pack(v[i:i + 3 * k]) for i in range(0, len(v) - 3 * k, k) if sum(map(bool, v[i:i + 3 * k])) >= 3]
        assert len(forms) > 10
        for form in forms:
            assert form not in wire, node.name
    # The search can fail: what the district was sent is in the capture, in that same encoding. Each small
    # school's masked input (its vector plus masks, packed as above) as the district's store recorded it...
    recorded = [m for m in map(decode, masked) if isinstance(m, MaskedInput)]
    assert len(recorded) == len(small)
    assert all(m.masked in wire for m in recorded)
    # ... and came in the PoolMail of the capture, one from each member.
    sent = [decode(m.data) for m in (decode_message(data) for t, data in read_wire_capture(capture)
                                     if t == PoolMail.TYPE)]
    assert {m.sender for m in sent if isinstance(m, MaskedInput)} == {m.sender for m in recorded}
