"""Backup to one encrypted file; restore with the recovery key or a head teacher password, or fail cleanly."""
from __future__ import annotations

import os

import pytest

from preau.node.records import backup

from preau.node.records import vault
from preau.node.records.errors import BackupError
from preau.node.records.store import Store

from storage_fixtures import ADMIN_PW, T1_PW, make_school
from storage_fixtures import campaign, school  # noqa: F401  (pytest fixtures)

C = "2026-debut-cp"


@pytest.fixture
def saved(tmp_path, campaign):
    school = make_school(tmp_path / "data", campaign)
    school.store.save_result(school.t1, C, school.pupils_a[0].id, "fr-mots", answers=[1] * 10)
    path = backup.write_backup(school.store, school.admin, tmp_path / "école.preau")
    # Written after the backup: must not appear in a restore.
    school.store.save_result(school.t1, C, school.pupils_a[1].id, "fr-mots", answers=[0] * 10)
    yield school, path
    school.store.close()


def _folder(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())} if path.exists() else None


@pytest.mark.parametrize("how", ["recovery", "password"])
def test_restore_on_a_new_box(saved, tmp_path, how):
    school, path = saved
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    kw = {"recovery_key": school.recovery} if how == "recovery" else {"username": "direction", "password": ADMIN_PW}
    backup.restore_backup(path, tmp_path / "newbox", **kw)
    store = Store.open(tmp_path / "newbox", cost=vault.TEST_COST)
    t1 = store.login("mme.alpha", T1_PW)
    results = store.get_results(t1, C, school.class_a.id)
    assert [(r.pupil_id, r.score) for r in results] == [(school.pupils_a[0].id, 10)]
    assert store.next_release_counts(store.node, C)["exercises"]["fr-mots"]["seuil2"] == 1  # node key came along
    assert store.unlock_with_recovery(school.recovery).is_admin
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    # Written 0600 like everything else `preau init` makes (it was 0644 until the node's next start).
    assert (tmp_path / "newbox" / "preau.db").stat().st_mode & 0o077 == 0


def test_wrong_keys_and_damage_give_clear_errors_and_overwrite_nothing(saved, tmp_path):
    school, path = saved
    target = tmp_path / "newbox"
    target.mkdir()
    (target / "keep.txt").write_text("untouched")
    before = _folder(target)
    other = vault.format_recovery_key(vault.random_key())
    cases = [
        (dict(recovery_key=other), "this recovery key does not open école.preau: it belongs to another school or set-up"),
        (dict(recovery_key=school.recovery[:7] + ("A" if school.recovery[7] != "A" else "B") + school.recovery[8:]),
         "this is not a valid recovery key (a character is wrong or missing)"),
        (dict(username="direction", password="wrong password"), "this user name and password do not open école.preau"),
        (dict(username="mme.alpha", password=T1_PW), "this user name and password do not open école.preau"),
        (dict(), "give the recovery key, or a head teacher's user name and password, to restore"),
    ]
    for kw, message in cases:
        with pytest.raises(BackupError) as err:
            backup.restore_backup(path, target, **kw)
        assert message in str(err.value)
        assert err.value.code == "wrong_key"
        assert _folder(target) == before
    raw = path.read_bytes()
    damaged = {
        "flipped.preau": raw[:-50] + bytes([raw[-50] ^ 1]) + raw[-49:],
        "truncated.preau": raw[: len(raw) // 2],
        "header.preau": raw.replace(b'"uai": "0751234J"', b'"uai": "0751234K"', 1),
    }
    assert damaged["header.preau"] != raw
    for name, data in damaged.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(BackupError) as err:
            backup.restore_backup(tmp_path / name, target, recovery_key=school.recovery)
        assert f"{name} is damaged or was changed (it fails its integrity check); use another backup" in str(err.value)
        assert err.value.code == "corrupt"
        assert _folder(target) == before
    (tmp_path / "notes.txt").write_bytes(b"hello")
    with pytest.raises(BackupError, match="notes.txt is not a Préau backup file"):
        backup.restore_backup(tmp_path / "notes.txt", target, recovery_key=school.recovery)
    (tmp_path / "garbled.preau").write_bytes(backup.MAGIC + b"\x00\x00\x00\x05{oops")
    with pytest.raises(BackupError, match="garbled.preau is damaged \\(its header cannot be read\\)"):
        backup.restore_backup(tmp_path / "garbled.preau", target, recovery_key=school.recovery)
    assert _folder(target) == before


def test_restore_refuses_to_overwrite_a_school_unless_asked(saved, tmp_path):
    school, path = saved
    live = school.store.data_dir
    before = _folder(live)
    with pytest.raises(BackupError, match="already holds a Préau node; restore into an empty folder"):
        backup.restore_backup(path, live, recovery_key=school.recovery)
    assert _folder(live) == before
    school.store.close()
    backup.restore_backup(path, live, recovery_key=school.recovery, replace=True)
    kept = [n for n in os.listdir(live) if ".before-restore-" in n]
    assert any(n.startswith("preau.db.before-restore-") for n in kept)
    school.store = Store.open(live, cost=vault.TEST_COST)
    t1 = school.store.login("mme.alpha", T1_PW)
    assert len(school.store.get_results(t1, C, school.class_a.id)) == 1  # the later save is gone, as in the backup


def test_a_restored_node_keeps_its_keys_and_enrolment(tmp_path, campaign):
    """A school restored on a new box is the same node to its district: same keys, same pins and documents."""
    from preau.node.federation.store import FedStore
    from preau.node.runtime import create_identity, load_identity

    school = make_school(tmp_path / "old", campaign)
    identity = create_identity(tmp_path / "old")
    fed = FedStore(tmp_path / "old" / "federation.db")
    fed.add_peer("ab" * 32, node_id="DISTRICT", role="district", address="http://127.0.0.1:1", static_key="cd" * 32)
    fed.put_document("release:x", "release", identity.signing_key.hex(), b"automerge bytes")
    path = backup.write_backup(school.store, school.admin, tmp_path / "school.preau")
    fed.close()
    school.store.close()

    new_box = tmp_path / "new"
    backup.restore_backup(path, new_box, recovery_key=school.recovery)
    assert load_identity(new_box).node_id == identity.node_id
    assert (new_box / "identity.key").stat().st_mode & 0o077 == 0
    restored = FedStore(new_box / "federation.db")
    assert restored.peer("ab" * 32)["node_id"] == "DISTRICT"
    assert restored.document("release:x").data == b"automerge bytes"
    restored.close()
    # The restored folder refuses a second restore over it unless asked.
    with pytest.raises(BackupError, match="already holds a Préau node"):
        backup.restore_backup(path, new_box, recovery_key=school.recovery)


def test_the_backup_reads_the_store_through_its_public_snapshot_only():
    """records/backup.py takes what it needs from `Store.snapshot` and touches no private member of the store
    (the key hierarchy stays the store's business): checked on the module's own code."""
    import ast
    import inspect

    from preau.node.records import backup
    tree = ast.parse(inspect.getsource(backup))
    private = sorted({f"store.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                      and isinstance(n.value, ast.Name) and n.value.id == "store" and n.attr.startswith("_")})
    assert private == []


def _school_with_federation(tmp_path, campaign, role: str):
    """A node whose backup, as an older Préau wrote it, holds no preau.toml; it pins one peer of `role`."""
    from preau.node.federation.store import FedStore
    from preau.node.runtime import create_identity

    school = make_school(tmp_path / "old", campaign)
    create_identity(tmp_path / "old")
    fed = FedStore(tmp_path / "old" / "federation.db")
    fed.add_peer("ab" * 32, node_id="PEER", role=role, address="http://127.0.0.1:1", static_key="cd" * 32)
    return school, fed


def test_a_backup_from_a_newer_preau_is_refused_before_anything_moves(tmp_path, campaign):
    """Its federation.db has a schema change this version does not know: restoring it would leave a node that
    refuses to start (and, with --force, the working node moved aside). Refused first, in words."""
    from preau.node.federation.schema import MIGRATIONS

    school, fed = _school_with_federation(tmp_path, campaign, "district")
    with fed.transaction() as conn:
        conn.execute("INSERT INTO schema_migrations(name, applied_at) VALUES ('from_a_newer_preau', 0)")
    path = backup.write_backup(school.store, school.admin, tmp_path / "newer.preau")
    fed.close()
    school.store.close()
    live = tmp_path / "live"
    make_school(live, campaign).store.close()
    before = _folder(live)
    for target, replace in ((live, True), (tmp_path / "fresh", False)):
        with pytest.raises(BackupError) as err:
            backup.restore_backup(path, target, recovery_key=school.recovery, replace=replace,
                                  federation_migrations=[name for name, _ in MIGRATIONS])
        assert err.value.code == "backup_version"
        assert ("newer.preau comes from a newer Préau (its federation.db has changes this version does not know: "
                "from_a_newer_preau)") in str(err.value)
    assert _folder(live) == before
    assert not (tmp_path / "fresh").exists()  # not even an empty folder left behind


@pytest.mark.parametrize("pinned, role", [("school", "district"), ("district", "school"), (None, "")])
def test_a_backup_without_settings_restores_with_the_role_its_federation_data_shows(tmp_path, campaign, pinned, role):
    """A backup made before settings were backed up: a district's must not come back as a school's."""
    from preau.node.actions import backups
    from preau.node.settings import load_settings

    if pinned is None:
        school = make_school(tmp_path / "old", campaign)
        fed = None
    else:
        school, fed = _school_with_federation(tmp_path, campaign, pinned)
    path = backup.write_backup(school.store, school.admin, tmp_path / "old.preau")
    if fed is not None:
        fed.close()
    school.store.close()
    new = tmp_path / "new"
    done = backups.restore(load_settings({"data_dir": str(new)}, env={}), file=str(path), recovery_key=school.recovery)
    assert done.settings_role == role
    if role:
        assert load_settings({"data_dir": str(new)}, env={}).role == role
        assert (new / "preau.toml").stat().st_mode & 0o077 == 0
    else:
        assert not (new / "preau.toml").exists()
