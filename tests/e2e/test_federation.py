"""A district and its schools as separate `preau serve` processes: the issue's "How we will know".

One federation is built per module (set-up costs a few seconds of process
start-ups); each scenario uses schools of its own, so the order of the tests
only matters for the first one, which checks the statistics of the main five.
"""
from __future__ import annotations

import json
import signal

import pytest

from e2e_world import DEMO_PASSWORD, World, wait_for
from preau.crdt.campaign import GROUPS
from preau.crdt.schema import document_id

pytestmark = pytest.mark.slow

MAIN = ["s1", "s2", "s3", "s4", "small"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("federation"))
    for n, name in enumerate([*MAIN, "revoked", "rotating", "offline", "carried"]):
        w.add_school(name, 17 * n)
    w.init_all()
    w.district.start()
    w.load_campaign()
    main = [w.schools[n] for n in MAIN]
    for node in main:
        node.start()
    try:
        w.parallel(w.join, w.schools.values())
        yield w
    finally:
        w.stop_all()


def _school_keys(w: World) -> dict[str, str]:
    return {name: node.key for name, node in w.schools.items()}


def test_five_schools_release_and_the_district_counts_exactly_the_generated_pupils(world):
    w = world
    # Every school got the campaign in its enrolment session (it is in its encrypted store now).
    for node in w.schools.values():
        rows = node.query("SELECT doc_id FROM documents WHERE kind = 'campaign'")
        assert len(rows) == 1, node.name
    sizes = {"s1": [22, 19], "s2": [25], "s3": [18, 24, 21], "s4": [20], "small": [6]}
    for i, name in enumerate(MAIN):
        w.fill(w.schools[name], sizes[name], seed=100 + i)
    # Four head teachers approve with the command; the schools' own serve loops notice and deliver.
    w.parallel(w.release, [w.schools[n] for n in MAIN[:4]])
    # The small school: its release is due at the campaign's close (withheld, no counts).
    from preau.node import actions
    from preau.node.release import approve_release, preview_release
    small = w.schools["small"]
    n = actions.open_node(small.settings())
    try:
        session = n.store.login("admin", DEMO_PASSWORD)
        preview = preview_release(n.store, session, n.federation, w.campaign.id, closing=True)
        assert preview.will_release and preview.decision.content.status == "withheld"
        approve_release(n.store, session, n.federation, preview)
    finally:
        n.close()
    small.cli("sync")  # its serve loop may have been quicker: then this session has nothing left to send

    keys = _school_keys(w)
    wait_for(lambda: set(w.stored_stats()["schools"]) >= {keys[n] for n in MAIN}, 30,
             what="the five releases at the district")
    stats = w.stats()
    assert stats["schools_contributing"] == 4 and stats["schools_withheld"] == 1
    expected = w.expected(w.schools[n] for n in MAIN[:4])
    got = w.counts(stats)
    assert set(got) == {ex.id for ex in w.campaign.exercises}
    for ex, counts in got.items():
        assert counts == {g: expected[ex][g] for g in GROUPS}, ex
    total = sum(sum(c.values()) for c in got.values())
    assert total == sum(len(c.pupils) for n in MAIN[:4] for c in w.schools[n].classes) * len(w.campaign.exercises)
    # The small school shows as withheld: its entry holds no counts at all.
    entry = w.stored_stats()["schools"][keys["small"]]
    assert entry["content"]["status"] == "withheld" and not entry["content"].get("exercises")

    # Each release is stored once, each school got its receipt (in the transparency log).
    for name in MAIN:
        node = w.schools[name]
        doc = document_id("release", bytes.fromhex(keys[name]), w.campaign.id)
        assert len(w.district.query("SELECT * FROM releases WHERE doc_id = ?", doc)) == 1
        wait_for(lambda: node.query("SELECT receipt FROM transparency WHERE receipt IS NOT NULL"), 20,
                 what=f"{name}'s receipt")
    status = json.loads(w.schools["s1"].cli("status", "--json").stdout)
    assert status["unacknowledged"] == []


def test_stats_command_shows_the_same_counts(world):
    assert world.counts(world.stats_by_command()) == world.counts(world.stats())


def test_revoked_school_is_refused_and_its_release_never_counts(world):
    w = world
    node = w.schools["revoked"]
    w.fill(node, [20], seed=7)
    w.release(node)
    out = w.district.cli("revoke", node.uai, "--reason", "box stolen").stdout
    assert "Revoked" in out
    done = node.cli("sync", check=False)
    assert done.returncode == 1
    assert "revoked this node's key" in done.stderr
    assert node.key not in w.stored_stats()["schools"]
    assert not w.district.query("SELECT * FROM releases WHERE doc_id = ?",
                                document_id("release", bytes.fromhex(node.key), w.campaign.id))


def test_unenrolled_key_is_refused(world, tmp_path):
    """A node the district never enrolled, even knowing the district's address and key, gets nothing in."""
    w = world
    stranger = w.add_school("stranger", 400)
    from e2e_world import _init  # the same set-up as a real school box
    _init(stranger, "École inconnue")
    # The stranger copies the district's pin from an enrolled school (an address and a key are public).
    up = w.schools["s1"].query("SELECT * FROM peers WHERE role = 'district'")[0]
    import sqlite3
    with sqlite3.connect(stranger.data_dir / "federation.db") as conn:
        conn.execute("INSERT INTO peers(key, node_id, role, address, static_key, enrolled_at) VALUES (?,?,?,?,?,0)",
                     [up["key"], up["node_id"], "district", up["address"], up["static_key"]])
    before = len(w.district.query("SELECT * FROM peers"))
    done = stranger.cli("sync", check=False)
    assert done.returncode == 1
    assert "does not know this node" in done.stderr
    assert len(w.district.query("SELECT * FROM peers")) == before


def test_bundle_carried_by_hand_and_tampered_bundles(world, tmp_path):
    w = world
    node = w.schools["offline"]
    w.fill(node, [21], seed=11)
    w.release(node)  # approved, never synced: the school's link is down
    bundle = tmp_path / "offline.bundle"
    assert "1 signed document" in node.cli("bundle", "export", "--output", str(bundle)).stdout
    body = json.loads(bundle.read_text())
    before = w.stored_stats()

    # A changed count inside the document: the Automerge checksum no longer holds.
    doc_hex = body["documents"][0]["document"]
    flipped = doc_hex[:-20] + ("0" if doc_hex[-20] != "0" else "1") + doc_hex[-19:]
    bad_doc = tmp_path / "bad-doc.bundle"
    bad_doc.write_text(json.dumps({**body, "documents": [{**body["documents"][0], "document": flipped}]}))
    # A signature that does not match (one byte of it changed).
    rel_hex = body["documents"][0]["release"]
    bad_sig = tmp_path / "bad-sig.bundle"
    bad_sig.write_text(json.dumps({**body, "documents": [{**body["documents"][0],
                                   "release": rel_hex[:-2] + ("00" if rel_hex[-2:] != "00" else "01")}]}))
    for bad, messages in ((bad_doc, ("holds a damaged document", "export it again")),
                          (bad_sig, ("in the bundle was refused", "signature", "nothing was imported"))):
        done = w.district.cli("bundle", "import", str(bad), check=False)
        assert done.returncode == 65, done.stderr
        assert all(m in done.stderr for m in messages), done.stderr
        assert w.stored_stats() == before

    out = w.district.cli("bundle", "import", str(bundle)).stdout
    assert "1 document(s) verified and imported" in out
    after = w.stored_stats()
    assert set(after["schools"]) - set(before["schools"]) == {node.key}
    # Importing the same file again changes nothing (no duplicate).
    assert "0 document(s)" in w.district.cli("bundle", "import", str(bundle)).stdout
    assert w.stored_stats() == after
    # The receipt travels back at the school's next sync (its link is back).
    out = node.cli("sync").stdout
    assert "received receipts" in out
    assert node.query("SELECT receipt FROM transparency WHERE receipt IS NOT NULL")


def test_a_relay_carries_another_schools_release_and_the_district_verifies_it_against_the_owner(world, tmp_path):
    w = world
    owner, relay = w.schools["carried"], w.schools["s2"]
    w.fill(owner, [23], seed=13)
    w.release(owner)
    bundle = tmp_path / "carried.bundle"
    owner.cli("bundle", "export", "--output", str(bundle))
    # The relay (another school, running) imports it as a carrier: it cannot verify the owner's key, only its
    # consistency; its own district does that when the relay offers the document at its next sync.
    refused = relay.cli("bundle", "import", str(bundle), check=False)
    assert refused.returncode == 65 and "preau bundle import --carry" in refused.stderr, refused.stderr
    out = relay.cli("bundle", "import", "--carry", str(bundle)).stdout
    assert "1 to carry to the district" in out, out
    assert not relay.query("SELECT * FROM stats_entries")  # a carrier counts nothing
    doc = document_id("release", bytes.fromhex(owner.key), w.campaign.id)
    [held] = relay.query("SELECT number FROM releases WHERE doc_id = ?", doc)
    row = wait_for(lambda: w.district.query("SELECT * FROM releases WHERE doc_id = ?", doc), 20,
                   what="the carried release at the district")[0]
    assert row["from_peer"] == relay.key  # it came through the relay ...
    entry = w.stored_stats()["schools"][owner.key]  # ... and counts as the owner's release
    assert entry["release"] == held["number"]
    expected = w.expected([owner])
    for ex, r in entry["content"]["exercises"].items():
        assert {g: r[g] for g in GROUPS} == {g: expected[ex][g] for g in GROUPS}
    # The owner's receipt waits in the district's receipts document for its next own sync.
    assert "received receipts" in owner.cli("sync").stdout


def test_key_rotation_moves_the_schools_contribution_to_its_new_key(world):
    w = world
    node = w.schools["rotating"]
    w.fill(node, [20], seed=17)
    w.release(node)
    node.cli("sync")
    old_key = node.key
    assert old_key in w.stored_stats()["schools"]

    out = node.cli("keys", "rotate", "--yes").stdout
    assert "The district updates its pin" in out
    new_key = node.key
    assert new_key != old_key
    node.cli("sync")  # the district moves its pin; nothing new to release yet: the old key's release still counts
    peers = {r["key"]: r for r in w.district.query("SELECT * FROM peers WHERE uai = ?", node.uai)}
    assert peers[old_key]["status"] == "rotated" and peers[old_key]["replaced_by"] == new_key
    assert peers[new_key]["status"] == "active"
    schools = w.stored_stats()["schools"]
    assert old_key in schools and new_key not in schools

    # Twelve more pupils: a new release, now a document of the new key. The school counts once, with its new figures.
    # All twelve above threshold 2 on every exercise: each count moves by 0 or 12, so batching at count level
    # (crdt/disclosure.py) lets every exercise go and the district's entry is the school's whole data.
    def all_above(classes):
        import random

        from preau.node.demo.synthetic import _score_in
        rng = random.Random(18)
        for c in classes:
            for p in c.pupils:
                for ex_id in p.results:
                    p.results[ex_id] = ("seuil2", _score_in(rng, w.campaign.exercise(ex_id), "seuil2"))

    w.fill(node, [12], seed=18, adjust=all_above)
    w.release(node)
    out = node.cli("sync").stdout
    assert "acknowledged" in out, out
    schools = w.stored_stats()["schools"]
    assert new_key in schools and old_key not in schools
    entry = schools[new_key]
    assert entry["content"]["cohort"] == sum(
        1 for c in node.classes for p in c.pupils if any(g != "absent" for g, _ in p.results.values()))
    expected = w.expected([node])
    for ex, r in entry["content"]["exercises"].items():
        assert {g: r[g] for g in GROUPS} == {g: expected[ex][g] for g in GROUPS}
    # The old key is refused from now on.
    assert w.district.query("SELECT status FROM peers WHERE key = ?", old_key)[0]["status"] == "rotated"


def test_nodes_stop_cleanly(world):
    """SIGTERM ends every serve process with exit 0 (the sync loop is cancelled, the stores closed)."""
    for node in [world.schools[n] for n in MAIN]:
        proc = node.process
        node.stop(signal.SIGTERM)
        assert proc.returncode == 0, (node.data_dir / "serve.log").read_text()[-2000:]
