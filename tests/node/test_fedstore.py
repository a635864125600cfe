import json
import sqlite3

import pytest

from preau.node.federation.store import MIGRATIONS, FedStore, FedStoreError


@pytest.fixture
def store(tmp_path):
    s = FedStore(tmp_path / "fed.db", clock=lambda: 1_000)
    yield s
    s.close()


def test_migrations_and_wal(store, tmp_path):
    assert store.schema_version == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    again = FedStore(tmp_path / "fed.db")  # re-opening runs no migration twice
    assert again.schema_version == len(MIGRATIONS)
    again.close()


def test_newer_schema_refused_with_advice(tmp_path):
    path = tmp_path / "fed.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(FedStoreError, match="upgrade Préau"):
        FedStore(path)


def test_invitation_is_single_use(store):
    store.add_invitation("inv1", "0751234J", "h", expires_at=2_000)
    assert store.use_invitation("inv1", by="k1")
    assert not store.use_invitation("inv1", by="k2")
    assert store.invitation("inv1")["used_by"] == "k1"
    store.add_invitation("inv2", "0751234J", "h", expires_at=2_000)
    assert store.revoke_invitation("inv2")
    assert not store.use_invitation("inv2", by="k3")


def test_peer_revoke_and_rotate(store):
    store.add_peer("aa", node_id="N1", role="school", uai="0751234J")
    assert store.active_peer("aa")
    store.rotate_peer("aa", "bb", "cc")
    assert store.active_peer("aa") is None
    assert store.active_peer("bb")["uai"] == "0751234J"
    assert store.revoke_peer("bb")
    assert store.active_peer("bb") is None
    assert not store.revoke_peer("bb")


def test_release_with_stats_is_atomic(store):
    store.accept_release("d1", "release", "aa", "c1", b"doc", 1, b"sig1", "aa", stats=("c1", {"n": 1}))
    assert store.latest_release("d1") == (1, b"sig1")
    assert store.stats("c1") == {"n": 1}
    # A document rewritten under another owner is refused and nothing of that call is kept.
    with pytest.raises(FedStoreError):
        store.accept_release("d1", "release", "OTHER", "c1", b"x", 2, b"sig2", "aa", stats=("c1", {"n": 2}))
    assert store.latest_release("d1") == (1, b"sig1")
    assert store.stats("c1") == {"n": 1}
    assert store.document("d1").data == b"doc"


def test_transparency_log_records_receipt(store):
    from preau.crdt.signing import SignedRelease
    signed = SignedRelease("d1-doc", "release", "c1", b"\x01" * 32, 1, (b"\x02" * 32,), 1000, b"\x03" * 64)
    store.accept_release("d1-doc", "release", "01" * 32, "c1", b"doc", 1, signed.encode(), None)
    store.log_sent("d1-doc", 1, "district", {"exercises": {}}, "03" * 64)
    store.log_sent("d1-doc", 1, "district", {"exercises": {}}, "03" * 64)  # a retry is not a second release
    # A receipt for another state under the same number (the district's copy, of a restored school): not ours.
    assert not store.log_receipt("d1-doc", 1, {"heads": ["04" * 32]})
    assert store.transparency()[0]["receipt"] is None
    assert store.log_receipt("d1-doc", 1, {"heads": ["02" * 32]})
    [row] = store.transparency()
    assert row["receipt"] == {"heads": ["02" * 32]}


def test_grouped_writes_commit_together_or_not_at_all(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put_stats("c1", {"n": 1})
            store.put_document("d9", "receipts", "aa", b"r")
            raise RuntimeError("killed in the middle")
    assert store.stats("c1") is None and store.document("d9") is None
    with store.transaction():
        store.put_stats("c1", {"n": 1})
        store.put_document("d9", "receipts", "aa", b"r")
    assert store.stats("c1") == {"n": 1} and store.document("d9").data == b"r"


def _old_peer(store, key, *, node_id, role, uai):
    """A row as an older Préau wrote it (raw SQL: today's writers know columns the old file lacks)."""
    with store.transaction() as conn:
        conn.execute("INSERT INTO peers(key, node_id, role, uai, enrolled_at) VALUES (?, ?, ?, ?, 1000)",
                     [key, node_id, role, uai])


def _old_release(store, doc_id, kind, owner, campaign, *, stats=None):
    with store.transaction() as conn:
        conn.execute("INSERT INTO documents(doc_id, kind, owner, campaign, data, updated_at) VALUES (?, ?, ?, ?, ?, 1000)",
                     [doc_id, kind, owner, campaign, b"doc"])
        conn.execute("INSERT INTO releases(doc_id, number, signed, received_at, from_peer) VALUES (?, 1, ?, 1000, ?)",
                     [doc_id, b"sig", owner])
        if stats is not None:
            conn.execute("INSERT INTO stats_entries(campaign, owner, entry, updated_at) VALUES (?, ?, ?, 1000)",
                         [campaign, owner, json.dumps(stats)])


def test_migration_4_makes_children_that_sent_aggregates_districts(tmp_path, monkeypatch):
    """A file from before invitations said what they enrol: a child that sent an aggregate was a district."""
    import preau.node.federation.store as fs

    path = tmp_path / "fed.db"
    monkeypatch.setattr(fs, "MIGRATIONS", MIGRATIONS[:3])
    old = FedStore(path, clock=lambda: 1_000)
    _old_peer(old, "dd", node_id="D1", role="school", uai="0693344K")
    _old_peer(old, "ss", node_id="S1", role="school", uai="0751234J")
    _old_peer(old, "xx", node_id="X1", role="school", uai="0751235K")  # a school that forged an aggregate
    _old_release(old, "aggregate:c1:dd", "aggregate", "dd", "c1")
    _old_release(old, "release:c1:ss", "release", "ss", "c1")
    _old_release(old, "release:c1:xx", "release", "xx", "c1")
    _old_release(old, "aggregate:c1:xx", "aggregate", "xx", "c1", stats={"release": 1, "content": {"scope": "district"}})
    old.close()
    monkeypatch.setattr(fs, "MIGRATIONS", MIGRATIONS)
    new = FedStore(path, clock=lambda: 1_000)
    assert {p["key"]: p["role"] for p in new.peers()} == {"dd": "child", "ss": "school", "xx": "school"}
    assert new.stats_entry("c1", "xx") is None  # what it got in as a district is gone
    new.add_invitation("inv", "0693345L", "h", expires_at=2_000, member="district")
    assert new.invitation("inv")["member"] == "district"
    new.close()


def test_migration_4_at_an_academie_makes_every_child_a_district(tmp_path, monkeypatch):
    """At a node that never received a school release, a district that has not sent its aggregate yet is a
    district too (else its first aggregate would be refused for good)."""
    import preau.node.federation.store as fs

    path = tmp_path / "fed.db"
    monkeypatch.setattr(fs, "MIGRATIONS", MIGRATIONS[:3])
    old = FedStore(path, clock=lambda: 1_000)
    _old_peer(old, "d1", node_id="D1", role="school", uai="0693344K")
    _old_peer(old, "d2", node_id="D2", role="school", uai="0693345L")  # enrolled, nothing sent yet
    _old_peer(old, "up", node_id="U1", role="district", uai="0690001A")
    _old_release(old, "aggregate:c1:d1", "aggregate", "d1", "c1")
    old.close()
    monkeypatch.setattr(fs, "MIGRATIONS", MIGRATIONS)
    new = FedStore(path, clock=lambda: 1_000)
    assert {p["key"]: p["role"] for p in new.peers()} == {"d1": "child", "d2": "child", "up": "district"}
    new.close()


def test_a_newer_federation_file_is_one_clear_line_on_the_command_line(tmp_path):
    """Not a traceback: the person can fix it by upgrading Préau."""
    import os
    import subprocess
    import sys

    from preau.node.errors import EXIT_DATA
    from preau.node.runtime import create_identity

    create_identity(tmp_path)
    conn = sqlite3.connect(tmp_path / "federation.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    done = subprocess.run([sys.executable, "-m", "preau.cli.main", "status", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == EXIT_DATA, done.stderr
    assert done.stderr.startswith("preau: error: ") and "upgrade Préau" in done.stderr
    assert "Traceback" not in done.stderr
