"""What the files on the box reveal: planted pupil data must not be found in the db, its WAL or a backup."""
from __future__ import annotations

import shutil
import time

import pytest

from preau.node.records import backup

from preau.node.records import vault
from preau.node.records.errors import StoreError
from preau.node.records.store import Session, Store

from storage_fixtures import make_school
from storage_fixtures import campaign, school  # noqa: F401  (pytest fixtures)

C = "2026-debut-cp"
ANSWERS = [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]
NEEDLES = [
    "Zéphyrine".encode(), b"Quintavalle", b"Ravachol", b"Octave",
    b"1011001110",          # fr-mots answers as the payload encodes them
    b"1-1-0-1-",            # ma-nombres answers with blanks
    b'["done",null,137,',   # a words-per-minute score, as the payload encodes it
    b'"last"', b'["done","', b'["absent",',  # any plaintext payload at all
]


def _plant(school):
    s = school.store
    zeph, lea = school.pupils_a
    s.save_result(school.t1, C, zeph.id, "fr-mots", answers=ANSWERS)
    s.save_result(school.t1, C, zeph.id, "ma-nombres", answers=[1, None, 1, None, 0, None, 1, None])
    s.save_result(school.t1, C, zeph.id, "fr-lire-texte", wpm=137)
    s.save_result(school.t2, C, school.pupils_b[0].id, "fr-mots", status="absent")
    s.put_blob(school.admin, "release-history/x", b"Quintavalle")


def _files(school, tmp_path):
    s = school.store
    wal = s.db_path.with_name(s.db_path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0, "the WAL should still hold recent writes"
    b = backup.write_backup(s, school.admin, tmp_path / "school.preau")
    return {"db": s.db_path.read_bytes(), "wal": wal.read_bytes(), "backup": b.read_bytes()}


def _found(files: dict[str, bytes]) -> dict[str, list[str]]:
    return {name: [n.decode() for n in NEEDLES if n in data] for name, data in files.items()}


def test_planted_pupil_data_is_not_in_db_wal_or_backup(tmp_path, campaign):
    school = make_school(tmp_path / "data", campaign)
    _plant(school)
    found = _found(_files(school, tmp_path))
    assert found == {"db": [], "wal": [], "backup": []}
    school.store.close()


def test_the_search_finds_them_in_an_unencrypted_copy(tmp_path, campaign, monkeypatch):
    """The same school built with encryption switched off: proves the search above can fail."""
    monkeypatch.setattr(vault, "seal", lambda key, plaintext, ad: plaintext)
    monkeypatch.setattr(vault, "open_", lambda key, blob, ad: bytes(blob))
    school = make_school(tmp_path / "data", campaign)
    _plant(school)
    files = _files(school, tmp_path)
    union = files["db"] + files["wal"]
    assert [n for n in NEEDLES if n not in union] == []
    assert [n for n in NEEDLES if n not in files["backup"]] == []
    school.store.close()


def _stolen_copy(school, dest):
    """What a thief carries away: the data folder as it is on disk, store still running."""
    shutil.copytree(school.store.data_dir, dest)
    return Store.open(dest, cost=vault.TEST_COST)


def test_stolen_box_reveals_no_pupil_data_through_any_api(tmp_path, campaign):
    school = make_school(tmp_path / "data", campaign)
    _plant(school)
    thief = _stolen_copy(school, tmp_path / "stolen")
    ca, pa = school.class_a.id, school.pupils_a[0].id
    reads = [
        lambda a: thief.list_pupils(a, ca), lambda a: thief.get_pupil(a, pa), lambda a: thief.get_results(a, C, ca),
        lambda a: thief.export_results_csv(a, C, ca), lambda a: thief.release_outcomes(a, C),
        lambda a: thief.pupil_pseudonym(a, pa), lambda a: thief.get_blob(a, "release-history/x"),
        lambda a: backup.write_backup(thief, a, tmp_path / "stolen.preau"),
    ]
    ids = {r["id"]: r for r in thief.db.query("SELECT * FROM accounts")}
    forged = [None, "direction", thief.node]
    for row in ids.values():  # hand-built sessions, with no key or a guessed one
        for key in (None, vault.random_key()):
            forged.append(Session(thief, row["id"], row["username"], row["role"], key, key))
    forged.append(Session(thief, "", "recovery", "recovery", None, vault.random_key()))
    for actor in forged:
        for read in reads:
            with pytest.raises(StoreError):
                read(actor)
    # What the node can read unattended: campaigns, counts, node blobs. No names, answers or per-pupil scores.
    visible = repr((thief.school(), thief.list_campaigns(thief.node), thief.next_release_counts(thief.node, C),
                    thief.list_blobs(thief.node, scope="node"))).encode()
    assert [n for n in NEEDLES if n in visible] == []
    # And the node key opens nothing but the tallies.
    node_keys = [vault.derive(thief._node_key, p) for p in ("tally", "node-blob")] + [thief._node_key]
    for table in ("pupils", "results", "key_wraps", "blobs"):
        for row in thief.db.query(f"SELECT ct FROM {table}"):
            for k in node_keys:
                with pytest.raises(vault.DecryptError):
                    vault.open_(k, row["ct"], b"")
    thief.close()
    school.store.close()


def test_production_argon2id_cost(tmp_path):
    """Once, at the real cost: unlocking must take a noticeable time (here ~0.08 s; 0.3-1 s on a small ARM box)."""
    store, _ = Store.create(tmp_path, uai="0751234J", school_name="X", admin_username="direction",
                            admin_password="direction password 1")
    row = next(store.db.query("SELECT opslimit, memlimit FROM accounts"))
    assert (row["opslimit"], row["memlimit"]) == (3, 64 * 1024 * 1024)
    t0 = time.perf_counter()
    store.login("direction", "direction password 1")
    elapsed = time.perf_counter() - t0
    assert 0.02 < elapsed < 5, elapsed
    store.close()


def test_erased_pupil_ciphertext_leaves_the_files(tmp_path, campaign):
    """secure_delete zeroes the freed pages and the WAL is emptied, so not even the ciphertext remains."""
    school = make_school(tmp_path / "data", campaign)
    _plant(school)
    s = school.store
    zeph = school.pupils_a[0]
    traces = [r["ct"][:32] for r in s.db.query("SELECT ct FROM pupils WHERE id = ?", [zeph.id])]
    traces += [r["ct"][:32] for r in s.db.query("SELECT ct FROM results WHERE pupil_id = ?", [zeph.id])]
    assert len(traces) == 2

    def on_disk():
        wal = s.db_path.with_name(s.db_path.name + "-wal")
        return s.db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")

    assert all(t in on_disk() for t in traces)  # the search can see them before erasure
    s.erase_pupil(school.admin, zeph.id)
    assert [t for t in traces if t in on_disk()] == []
    s.close()


def test_ciphertext_lengths_do_not_depend_on_content(school):
    s = school.store
    zeph, lea = school.pupils_a
    s.add_pupil(school.t1, school.class_a.id, "X" * 100, "Marie-Éléonore-Joséphine")
    s.save_result(school.t1, C, zeph.id, "fr-mots", status="absent")
    for ex in ("fr-mots", "ma-nombres"):
        s.save_result(school.t1, C, lea.id, ex, answers=[1] * (10 if ex == "fr-mots" else 8))
    s.save_result(school.t1, C, lea.id, "fr-lire-texte", wpm=199)
    assert len({len(r["ct"]) for r in s.db.query("SELECT ct FROM pupils")}) == 1
    assert len({len(r["ct"]) for r in s.db.query("SELECT ct FROM results")}) == 1


def test_a_ciphertext_moved_to_another_row_does_not_open(school):
    """The associated data binds each ciphertext to its row: swapping two pupils' records is detected."""
    s = school.store
    a, b = school.pupils_a
    ct_a = s.db.execute("SELECT ct FROM pupils WHERE id = ?", [a.id]).fetchone()[0]
    s.db.execute("UPDATE pupils SET ct = ? WHERE id = ?", [ct_a, b.id])
    with pytest.raises(StoreError, match=f"the record of pupil '{b.id}' does not decrypt: the database was altered; restore a backup"):
        s.get_pupil(school.t1, b.id)
    assert s.get_pupil(school.t1, a.id).first_name == "Zéphyrine"


# -- the audit log: who did what to which pupil, and when, is sealed too --------------------------------------

AUDIT_NEEDLES = [b"result-saved", b"/exercise:fr-mots", b"pupil-added", b"account:mme.alpha", b"class-assigned"]


def _audit_found(school) -> list[str]:
    s = school.store
    s.db.execute("PRAGMA wal_checkpoint(FULL)")
    data = s.db_path.read_bytes() + s.db_path.with_name(s.db_path.name + "-wal").read_bytes()
    return [n.decode() for n in AUDIT_NEEDLES if n in data]


def test_the_audit_log_is_sealed_and_only_a_head_teacher_reads_it(tmp_path, campaign):
    school = make_school(tmp_path / "data", campaign)
    _plant(school)
    assert _audit_found(school) == []
    entries = school.store.audit_log(school.admin)
    actions = {e.action for e in entries}
    assert {"result-saved", "pupil-added", "class-assigned", "login"} <= actions
    saved = [e for e in entries if e.action == "result-saved"]
    zeph = school.pupils_a[0].id
    assert {e.target for e in saved} == {f"campaign:{C}"}
    assert {e.detail for e in saved} >= {f"pupil:{zeph}/exercise:fr-mots", f"pupil:{zeph}/exercise:fr-lire-texte"}
    # A failed login (no session at all) is still recorded, and still sealed.
    with pytest.raises(StoreError):
        school.store.login("mme.alpha", "not the password")
    assert school.store.audit_log(school.admin, 1)[0].action == "login-failed"
    assert _audit_found(school) == []
    school.store.close()


def test_the_audit_search_finds_the_entries_when_sealing_is_off(tmp_path, campaign, monkeypatch):
    """Proves the search above can fail: with sealing switched off the same entries are found."""
    real = vault.seal
    monkeypatch.setattr(vault, "seal", lambda key, data, ad: data if ad.startswith(vault.label("audit-entry"))
                        else real(key, data, ad))
    school = make_school(tmp_path / "data", campaign)
    _plant(school)
    assert _audit_found(school) == [n.decode() for n in AUDIT_NEEDLES]
    school.store.close()


def test_an_old_plaintext_audit_log_is_sealed_at_the_first_head_teacher_unlock(tmp_path, campaign):
    from storage_fixtures import ADMIN_PW, T1_PW

    school = make_school(tmp_path / "data", campaign)
    _plant(school)
    s = school.store
    before = [(e.at, e.actor, e.action, e.target, e.detail) for e in s.audit_log(school.admin, 1000)]
    # Make it a file from before sealed audit logs: plaintext rows, no audit key.
    with s.db.atomic():
        s.db.conn.executemany("INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                              list(reversed(before)))
        s.db.execute("DELETE FROM audit_sealed")
        s.db.execute("UPDATE school SET audit_key = NULL")
    s.close()
    old = Store.open(tmp_path / "data", cost=vault.TEST_COST)
    teacher = old.login("mme.alpha", T1_PW)
    old.save_result(teacher, C, school.pupils_a[0].id, "fr-mots", answers=ANSWERS)  # before any head teacher: plaintext
    assert old.db.execute("SELECT count(*) FROM audit").fetchone()[0] == len(before) + 2
    admin = old.login("direction", ADMIN_PW)
    assert old.db.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
    after = [(e.at, e.actor, e.action, e.target, e.detail) for e in old.audit_log(admin, 1000)]
    assert after[len(after) - len(before):] == before and [a[2] for a in after[:3]] == ["login", "result-saved", "login"]
    old.db.execute("PRAGMA wal_checkpoint(FULL)")
    assert [n for n in AUDIT_NEEDLES if n in (tmp_path / "data" / s.db_path.name).read_bytes()] == []
    old.close()


def test_an_audit_epoch_id_given_back_by_a_rollback_is_not_reused_under_the_wrong_key(tmp_path, campaign):
    """Review finding: a rolled-back epoch insert frees its id; another process takes it for its own epoch."""
    school = make_school(tmp_path / "data", campaign)
    a = school.store
    b = Store.open(tmp_path / "data", cost=vault.TEST_COST)  # another process on the same files
    try:
        with pytest.raises(RuntimeError):
            with a._lock, a.db.atomic():
                a._epoch = None
                a._audit("x", "doomed", "school")  # a new epoch, then the transaction rolls back
                raise RuntimeError("rolled back")
        b._audit("b", "from-b", "school")  # takes the same epoch id, with its own key
        a._audit("a", "from-a", "school")
        actions = [e.action for e in a.audit_log(school.admin, 3)]
        assert actions == ["from-a", "from-b", actions[2]] and "unreadable" not in actions
    finally:
        b.close()
        a.close()


def test_plaintext_left_by_a_busy_checkpoint_is_cleared_when_the_reader_goes(tmp_path, campaign):
    import sqlite3

    from storage_fixtures import ADMIN_PW

    school = make_school(tmp_path / "data", campaign)
    s = school.store
    with s.db.atomic():  # an old file: plaintext entries, no audit key
        s.db.execute("INSERT INTO audit (at, actor, action, target, detail) VALUES ('t', 'a', 'SECRETACTION', 'x', '')")
        s.db.execute("UPDATE school SET audit_key = NULL")
    s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    store = Store.open(tmp_path / "data", cost=vault.TEST_COST)
    reader = sqlite3.connect(tmp_path / "data" / "preau.db")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM pupils").fetchone()  # the running node, reading
    store.login("direction", ADMIN_PW)  # seals the entries; the checkpoint cannot finish yet
    assert store._wal_to_truncate
    assert b"SECRETACTION" in (tmp_path / "data" / "preau.db").read_bytes()  # still there, for now
    reader.rollback()
    reader.close()
    store.login("direction", ADMIN_PW)  # the next head-teacher login tries again (as does close)
    assert not store._wal_to_truncate
    data = (tmp_path / "data" / "preau.db").read_bytes()
    wal = tmp_path / "data" / "preau.db-wal"
    assert b"SECRETACTION" not in data and (not wal.exists() or b"SECRETACTION" not in wal.read_bytes())
    store.close()


def test_a_swapped_audit_key_is_restored_at_the_next_head_teacher_login(tmp_path, campaign, caplog):
    from storage_fixtures import ADMIN_PW, T1_PW

    school = make_school(tmp_path / "data", campaign)
    s = school.store
    _, stranger = vault.new_keypair()
    s.db.execute("UPDATE school SET audit_key = ?", [stranger])  # someone who can write the file
    s.close()
    store = Store.open(tmp_path / "data", cost=vault.TEST_COST)
    store.login("mme.alpha", T1_PW)  # sealed to the stranger's key
    admin = store.login("direction", ADMIN_PW)
    assert "audit key" in caplog.text
    assert store.db.execute("SELECT audit_key FROM school").fetchone()[0] != stranger
    entries = store.audit_log(admin, 4)
    assert [e.action for e in entries[:2]] == ["login", "audit-key-restored"]
    assert "unreadable" in [e.action for e in entries]  # the teacher's login, sealed to the stranger
    store.close()


def test_a_long_running_node_notices_a_key_swapped_by_someone_else(tmp_path, campaign, caplog):
    """The check reads the file, not the process's cache: the web node caches the right key at its first
    unlock, while a `preau` command opened later would seal to whatever key the file holds."""
    import sqlite3

    from storage_fixtures import ADMIN_PW, T1_PW

    school = make_school(tmp_path / "data", campaign)
    node = school.store  # the running node; its head teacher already logged in (cache set)
    _, stranger = vault.new_keypair()
    with sqlite3.connect(tmp_path / "data" / "preau.db") as raw:
        raw.execute("UPDATE school SET audit_key = ?", [stranger])
    command = Store.open(tmp_path / "data", cost=vault.TEST_COST)
    command.login("mme.alpha", T1_PW)  # sealed to the stranger's key
    command.close()
    admin = node.login("direction", ADMIN_PW)
    assert "audit key" in caplog.text
    assert node.db.execute("SELECT audit_key FROM school").fetchone()[0] != stranger
    assert "audit-key-restored" in [e.action for e in node.audit_log(admin, 5)]
    node.close()
