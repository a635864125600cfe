"""Authorization matrix: every account kind against every read and write path of the store.

Allowed cells must succeed; every other cell must raise AccessDenied or AuthError and change nothing.
"""
from __future__ import annotations

import pytest

from preau.node.records import backup

from preau.node.records import vault
from preau.node.records.errors import AccessDenied, AuthError
from preau.node.records.store import ResultInput

from storage_fixtures import ADMIN_PW, T1_PW, T2_PW, make_school
from storage_fixtures import campaign, school  # noqa: F401  (pytest fixtures)

C = "2026-debut-cp"
ACTORS = ("admin", "recovery", "teacher_own", "teacher_other", "node", "logged_out", "foreign")
ADMIN = {"admin", "recovery"}
TEACH = ADMIN | {"teacher_own"}


def _fresh_pupil(sc):
    return sc.store.add_pupil(sc.admin, sc.class_a.id, "Fresh", f"P-{sc.kind}")


def _fresh_teacher(sc):
    n = len(sc.store.list_accounts(sc.admin))
    return sc.store.create_account(sc.admin, f"spare{n}", "spare password 1").username


PATHS = {
    # name: (call(store, actor, school, tmp_path), allowed actors)
    "list_classes": (lambda s, a, sc, t: s.list_classes(a), TEACH | {"teacher_other"}),
    "list_pupils": (lambda s, a, sc, t: s.list_pupils(a, sc.class_a.id), TEACH),
    "get_pupil": (lambda s, a, sc, t: s.get_pupil(a, sc.pupils_a[0].id), TEACH),
    "add_pupil": (lambda s, a, sc, t: s.add_pupil(a, sc.class_a.id, "Nouveau", f"X{sc.kind}"), TEACH),
    "rename_pupil": (lambda s, a, sc, t: s.rename_pupil(a, sc.pupils_a[0].id, "Autre", "Nom"), TEACH),
    "save_result": (lambda s, a, sc, t: s.save_result(a, C, sc.pupils_a[0].id, "fr-mots", answers=[1] * 10), TEACH),
    "save_results": (lambda s, a, sc, t: s.save_results(a, C, [ResultInput(sc.pupils_a[1].id, "fr-lire-texte", wpm=30)]), TEACH),
    "get_results": (lambda s, a, sc, t: s.get_results(a, C, sc.class_a.id), TEACH),
    "export_results_csv": (lambda s, a, sc, t: s.export_results_csv(a, C, sc.class_a.id), TEACH),
    "move_pupil": (lambda s, a, sc, t: s.move_pupil(a, sc.arg.id, sc.class_b.id), ADMIN, _fresh_pupil),
    "erase_pupil": (lambda s, a, sc, t: s.erase_pupil(a, sc.arg.id), ADMIN, _fresh_pupil),
    "create_class": (lambda s, a, sc, t: s.create_class(a, f"C{sc.kind}", "CP", "2026-2027"), ADMIN),
    "create_account": (lambda s, a, sc, t: s.create_account(a, f"u{sc.kind}", "some password 1"), ADMIN),
    "list_accounts": (lambda s, a, sc, t: s.list_accounts(a), ADMIN),
    "assign_teacher": (lambda s, a, sc, t: s.assign_teacher(a, "m.beta", sc.class_a.id), ADMIN),
    "unassign_teacher": (lambda s, a, sc, t: s.unassign_teacher(a, "m.beta", sc.class_b.id), ADMIN),
    "reset_password": (lambda s, a, sc, t: s.reset_password(a, sc.arg, "reset password 1"), ADMIN, _fresh_teacher),
    "disable_account": (lambda s, a, sc, t: s.disable_account(a, sc.arg), ADMIN, _fresh_teacher),
    "change_password": (lambda s, a, sc, t: s.change_password(a, {"admin": "direction password 1", "teacher_own": T1_PW,
                                                                  "teacher_other": T2_PW}.get(sc.kind, "x" * 12), "a new password 9"),
                        {"admin", "teacher_own", "teacher_other"}),
    "put_campaign": (lambda s, a, sc, t: s.put_campaign(a, sc.campaign), ADMIN | {"node"}),
    "get_campaign": (lambda s, a, sc, t: s.get_campaign(a, C), TEACH | {"teacher_other", "node"}),
    "list_campaigns": (lambda s, a, sc, t: s.list_campaigns(a), TEACH | {"teacher_other", "node"}),
    "next_release_counts": (lambda s, a, sc, t: s.next_release_counts(a, C), ADMIN | {"node"}),
    "rebuild_counts": (lambda s, a, sc, t: s.rebuild_counts(a, C), ADMIN),
    "release_outcomes": (lambda s, a, sc, t: s.release_outcomes(a, C), ADMIN),
    "pupil_pseudonym": (lambda s, a, sc, t: s.pupil_pseudonym(a, sc.pupils_a[0].id), ADMIN),
    "put_blob_school": (lambda s, a, sc, t: s.put_blob(a, "h", b"x"), ADMIN),
    "get_blob_school": (lambda s, a, sc, t: s.get_blob(a, "h"), ADMIN),
    "list_blobs_school": (lambda s, a, sc, t: s.list_blobs(a), ADMIN),
    "delete_blob_school": (lambda s, a, sc, t: s.delete_blob(a, "h"), ADMIN),
    "put_blob_node": (lambda s, a, sc, t: s.put_blob(a, "n", b"x", scope="node"), ADMIN | {"node"}),
    "get_blob_node": (lambda s, a, sc, t: s.get_blob(a, "n", scope="node"), ADMIN | {"node"}),
    "audit_log": (lambda s, a, sc, t: s.audit_log(a), ADMIN),
    "write_backup": (lambda s, a, sc, t: backup.write_backup(s, a, t / f"b{sc.kind}.preau"), ADMIN),
}


def _rows(store):
    return {t: sorted(map(repr, store.db[t].rows)) for t in store.db.table_names() if t not in ("audit", "audit_sealed", "sqlite_sequence")}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_matrix(path, tmp_path, campaign):
    call, allowed, *prepare = PATHS[path]
    assert allowed <= set(ACTORS)
    sc = make_school(tmp_path / "school", campaign)
    other = make_school(tmp_path / "other", campaign)
    store = sc.store
    for kind in ACTORS:
        if kind == "admin":
            actor = store.login("direction", "direction password 1")
        elif kind == "recovery":
            actor = store.unlock_with_recovery(sc.recovery)
        elif kind == "teacher_own":
            actor = store.login("mme.alpha", T1_PW)
        elif kind == "teacher_other":
            actor = store.login("m.beta", T2_PW)
        elif kind == "node":
            actor = store.node
        elif kind == "logged_out":
            actor = store.login("mme.alpha", T1_PW)
            actor.logout()
        else:
            actor = other.admin  # a valid session, but of another school's store
        sc.kind = kind
        sc.arg = prepare[0](sc) if prepare else None
        if kind in allowed:
            call(store, actor, sc, tmp_path)
            if path == "change_password":  # put it back for the next actors
                store.change_password(actor, "a new password 9", {"admin": "direction password 1", "teacher_own": T1_PW,
                                                                   "teacher_other": T2_PW}[kind])
        else:
            before = _rows(store)
            with pytest.raises((AccessDenied, AuthError)) as err:
                call(store, actor, sc, tmp_path)
            assert _rows(store) == before, f"{path} by {kind} changed data"
            expected = {"teacher_other": AccessDenied, "node": AccessDenied, "logged_out": AuthError, "foreign": AuthError}
            if kind in expected:
                assert isinstance(err.value, expected[kind]), (path, kind, err.value)
    store.close()
    other.store.close()


def test_teachers_see_only_their_classes(school):
    s = school.store
    assert [c.name for c in s.list_classes(school.t1)] == ["CP-A"]
    assert [c.name for c in s.list_classes(school.admin)] == ["CP-A", "CP-B"]
    with pytest.raises(AccessDenied, match="this class is not yours: ask the head teacher to assign it to you"):
        s.list_pupils(school.t2, school.class_a.id)
    with pytest.raises(AccessDenied, match="only the head teacher can do this"):
        s.release_outcomes(school.t1, C)
    with pytest.raises(AccessDenied, match="the node alone cannot read or change pupil data"):
        s.list_pupils(s.node, school.class_a.id)


def test_teacher_credential_cannot_decrypt_other_classes(school):
    """Not just refused: the other class's key is not reachable from this teacher's secret at all."""
    s = school.store
    t2_id = school.t2.account_id
    holders = {r["holder"] for r in s.db.query("SELECT holder FROM key_wraps WHERE key = ?", [f"class/{school.class_a.id}"])}
    assert f"account/{t2_id}" not in holders and f"account/{school.t1.account_id}" in holders
    for holder in holders - {"school"}:
        ct = s.db.execute("SELECT ct FROM key_wraps WHERE key = ? AND holder = ?", [f"class/{school.class_a.id}", holder]).fetchone()[0]
        with pytest.raises(vault.DecryptError):
            vault.open_sealed(school.t2._secret, ct, f"class-key/{school.class_a.id}")
    # Bypassing the check with a forged assignment row still fails to decrypt.
    s.db.execute("INSERT INTO account_classes VALUES (?, ?)", [t2_id, school.class_a.id])
    with pytest.raises(AccessDenied):
        s.list_pupils(school.t2, school.class_a.id)


def test_unassigning_takes_effect_on_open_sessions(school):
    s = school.store
    assert s.list_pupils(school.t1, school.class_a.id)
    s.unassign_teacher(school.admin, "mme.alpha", school.class_a.id)
    with pytest.raises(AccessDenied):
        s.list_pupils(school.t1, school.class_a.id)


def test_a_teacher_who_leaves_a_class_takes_no_key_that_opens_its_records(school):
    """The class key is replaced: a copy of the old key (or of the file) no longer opens the class's records."""
    from preau.node.records.store import _ad

    s = school.store
    cid = school.class_a.id
    zeph = school.pupils_a[0]
    s.save_result(school.t1, "2026-debut-cp", zeph.id, "fr-mots", answers=[1, 0, 1, 1, 0, 0, 1, 1, 1, 0])
    s.create_account(school.admin, "m.gamma", "teacher three password")
    s.assign_teacher(school.admin, "m.gamma", cid)
    gamma = s.login("m.gamma", "teacher three password")
    before = s.list_pupils(gamma, cid)  # gamma's session now holds the current key
    leaving_key = s._class_key(school.t1, cid)  # what the leaving teacher could have kept

    s.unassign_teacher(school.admin, "mme.alpha", cid)

    row = s.db.execute("SELECT ct FROM pupils WHERE id = ?", [zeph.id]).fetchone()
    with pytest.raises(vault.DecryptError):
        vault.open_(leaving_key, row[0], _ad("pupil", zeph.id, cid))
    result = s.db.execute("SELECT ct FROM results WHERE pupil_id = ?", [zeph.id]).fetchone()
    with pytest.raises(vault.DecryptError):
        vault.open_(leaving_key, result[0], _ad("results", "2026-debut-cp", zeph.id))
    # The teachers still assigned (an open session holding the old key, and a new login) and the head teacher
    # read and write as before; what one writes the others read.
    assert s.list_pupils(gamma, cid) == before
    s.save_result(gamma, "2026-debut-cp", zeph.id, "ma-nombres", answers=[1, 1, 1, 1, 0, 0, 1, 1])
    again = s.login("m.gamma", "teacher three password")
    assert s.list_pupils(again, cid) == before == s.list_pupils(school.admin, cid)
    assert {r.exercise_id for r in s.get_results(school.admin, "2026-debut-cp", cid) if r.pupil_id == zeph.id} == {"fr-mots", "ma-nombres"}
    with pytest.raises(AccessDenied):
        s.list_pupils(school.t1, cid)
    actions = [e.action for e in s.audit_log(school.admin, 50)]
    assert actions.index("class-unassigned") == actions.index("class-key-replaced") - 1  # newest first


def test_disabling_a_teacher_replaces_the_keys_of_their_classes(school):
    from preau.node.records.store import _ad

    s = school.store
    zeph = school.pupils_a[0]
    leaving_key = s._class_key(school.t1, school.class_a.id)
    s.disable_account(school.admin, "mme.alpha")
    row = s.db.execute("SELECT ct FROM pupils WHERE id = ?", [zeph.id]).fetchone()
    with pytest.raises(vault.DecryptError):
        vault.open_(leaving_key, row[0], _ad("pupil", zeph.id, school.class_a.id))
    assert zeph in s.list_pupils(school.admin, school.class_a.id)


def test_a_rotation_that_rolls_back_leaves_the_old_key_in_use(school, monkeypatch):
    """Review finding: the new key was cached before commit; after a rollback, later writes used a dead key."""
    from preau.node.records.errors import StoreError

    s = school.store
    cid, zeph = school.class_a.id, school.pupils_a[0]
    real = s._audit

    def failing(actor, action, *a, **k):
        if action == "class-unassigned":
            raise StoreError("disk full")  # after the re-encryption, before the commit
        return real(actor, action, *a, **k)

    monkeypatch.setattr(s, "_audit", failing)
    with pytest.raises(StoreError):
        s.unassign_teacher(school.admin, "mme.alpha", cid)
    monkeypatch.setattr(s, "_audit", real)
    assert s.db.execute("SELECT key_version FROM classes WHERE id = ?", [cid]).fetchone()[0] == 1
    # Another head teacher (another process) then really replaces the key: version 2, with their new key.
    other = backup_free_store(school)
    admin2 = other.login("direction", ADMIN_PW)
    other.assign_teacher(admin2, "m.beta", cid)
    other.unassign_teacher(admin2, "m.beta", cid)
    s.rename_pupil(school.admin, zeph.id, "Quintavalle", "Zoé")  # the first head teacher's session writes
    assert {p.id: p.first_name for p in s.list_pupils(school.t1, cid)}[zeph.id] == "Zoé"  # the teacher reads it
    other.close()


def test_a_key_replaced_between_fetch_and_write_refuses_the_write(school, monkeypatch):
    """A rotation landing after a write fetched the class key (another thread or process) must not let it
    seal data under the old key: the write is refused, nothing is written, and doing it again works."""
    from preau.node.records.errors import StoreError

    s = school.store
    cid, zeph = school.class_a.id, school.pupils_a[0]
    other = backup_free_store(school)
    admin2 = other.login("direction", ADMIN_PW)
    s.create_account(school.admin, "m.gamma", "teacher three password")
    s.assign_teacher(school.admin, "m.gamma", cid)
    real = s._class_key
    fired = []

    def fetch_then_rotate(session, class_id):
        key = real(session, class_id)
        if not fired:
            fired.append(1)
            other.unassign_teacher(admin2, "m.gamma", class_id)  # lands in between
        return key

    monkeypatch.setattr(s, "_class_key", fetch_then_rotate)
    with pytest.raises(StoreError, match="replaced just now"):
        s.rename_pupil(school.t1, zeph.id, "Quintavalle", "Zoé")
    assert {p.id: p.first_name for p in s.list_pupils(school.admin, cid)}[zeph.id] == "Zéphyrine"  # nothing written
    s.rename_pupil(school.t1, zeph.id, "Quintavalle", "Zoé")
    assert {p.id: p.first_name for p in other.list_pupils(admin2, cid)}[zeph.id] == "Zoé"  # under the new key
    other.close()


def backup_free_store(school):
    """A second Store on the same files: what another process (a `preau` command) would open."""
    from preau.node.records.store import Store
    return Store.open(school.store.data_dir, cost=vault.TEST_COST)


@pytest.mark.parametrize("write", ["rename", "save"])
def test_a_pupil_moved_between_read_and_write_is_not_sealed_under_the_old_class_key(school, monkeypatch, write):
    from preau.node.records.errors import StoreError

    s = school.store
    zeph = school.pupils_a[0]
    other = backup_free_store(school)  # another process
    admin2 = other.login("direction", ADMIN_PW)
    real = s._class_key
    fired = []

    def fetch_then_move(session, class_id):
        key = real(session, class_id)
        if not fired:
            fired.append(1)
            other.move_pupil(admin2, zeph.id, school.class_b.id)  # lands between the read and the write
        return key

    monkeypatch.setattr(s, "_class_key", fetch_then_move)
    with pytest.raises(StoreError, match="just moved"):
        if write == "rename":
            s.rename_pupil(school.admin, zeph.id, "Quintavalle", "Zoé")
        else:
            s.save_result(school.admin, "2026-debut-cp", zeph.id, "fr-mots", answers=[1, 0, 1, 1, 0, 0, 1, 1, 1, 0])
    # The class it moved to still opens for everyone.
    assert zeph.id in {p.id for p in other.list_pupils(admin2, school.class_b.id)}
    other.get_results(admin2, "2026-debut-cp", school.class_b.id)
    other.close()
