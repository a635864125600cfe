"""GDPR duties of the school node (docs/gdpr.md): retention purge, access requests, rectification, objection,
and the paperwork generated from the node's settings."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json

import pytest

from preau.crdt.campaign import parse_campaign
from preau.crdt.disclosure import ReleaseHistory, next_release
from preau.node import paperwork
from preau.node.records import backup, vault
from preau.node.records.errors import AccessDenied, InvalidInput
from preau.node.records.store import Store
from preau.node.records.store.gdpr import erase_from

from storage_fixtures import ADMIN_PW, campaign_dict

PLANTED = ("Quintavallissime", "Zéphyrine")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, when: _dt.datetime):
        self.now = when

    def __call__(self) -> _dt.datetime:
        return self.now

    def set(self, day: str) -> None:
        self.now = _dt.datetime.fromisoformat(day + "T10:00:00+00:00")


def _campaign(cid: str, year: str, **policy):
    d = campaign_dict()
    d.update(id=cid, school_year=year, opens=f"{year[:4]}-09-01", closes=f"{year[:4]}-09-30")
    if policy:
        d["policy"] = policy
    return parse_campaign(d)


@dataclasses.dataclass
class World:
    store: Store
    clock: Clock
    admin: object
    cls: object
    pupils: list
    cp: object
    ce1: object


def _answers(n_right: int, items: int) -> list[int]:
    return [1] * n_right + [0] * (items - n_right)


def make_world(data_dir, n_pupils: int = 4, **policy) -> World:
    clock = Clock(_dt.datetime(2026, 9, 10, 10, tzinfo=_dt.timezone.utc))
    store, _ = Store.create(data_dir, uai="0751234J", school_name="École du Préau", admin_username="direction",
                            admin_password=ADMIN_PW, cost=vault.TEST_COST, clock=clock)
    admin = store.login("direction", ADMIN_PW)
    cls = store.create_class(admin, "CP-A", "CP", "2026-2027")
    names = [PLANTED] + [(f"Eleve{i}", f"Prenom{i}") for i in range(1, n_pupils)]
    pupils = store.add_pupils(admin, cls.id, names)
    cp = _campaign("2026-debut-cp", "2026-2027", **policy)
    ce1 = _campaign("2027-debut-ce1", "2027-2028", **policy)
    store.put_campaign(store.node, cp)
    store.put_campaign(store.node, ce1)
    for i, p in enumerate(pupils):
        store.save_result(admin, cp.id, p.id, "fr-mots", answers=_answers(2 + i % 7, 10))
        store.save_result(admin, cp.id, p.id, "fr-lire-texte", wpm=10 + i)
    return World(store, clock, admin, cls, pupils, cp, ce1)


@pytest.fixture
def world(tmp_path):
    w = make_world(tmp_path / "data")
    yield w
    w.store.close()


def _files(store: Store) -> bytes:
    out = b""
    for name in ("preau.db", "preau.db-wal"):
        path = store.data_dir / name
        if path.exists():
            out += path.read_bytes()
    return out


def test_erase_from_counts_school_years():
    assert erase_from("2026-2027", 1) == _dt.date(2028, 9, 1)
    assert erase_from("2026-2027", 0) == _dt.date(2027, 9, 1)


def test_purge_at_retention_end_erases_db_and_wal_keeps_released_counts_and_was_shown_before(world, tmp_path):
    store, admin, victim = world.store, world.admin, world.pupils[0]
    released_before = store.next_release_counts(store.node, world.cp.id)
    # What identifies the pupil in the file: the plaintext id and the ciphertexts of record and results.
    marks = [victim.id.encode(),
             bytes(store.db.execute("SELECT ct FROM pupils WHERE id = ?", [victim.id]).fetchone()[0]),
             bytes(store.db.execute("SELECT ct FROM results WHERE pupil_id = ?", [victim.id]).fetchone()[0])]
    assert all(m in _files(store) for m in marks)
    old_backup = backup.write_backup(store, admin, tmp_path / "before.backup")

    # Shown beforehand: the plan names the campaign, its date and how many pupils it concerns.
    world.clock.set("2028-08-20")
    plan = {(p.kind, p.id): p for p in store.retention_plan(admin)}
    due = plan[("campaign", world.cp.id)]
    assert (due.erase_from, due.pupils, due.due, due.soon) == (_dt.date(2028, 9, 1), 4, False, True)
    assert plan[("class", world.cls.id)].erase_from == _dt.date(2028, 9, 1)
    assert store.apply_retention(store.node).empty  # not yet
    assert store.get_pupil(admin, victim.id).last_name == PLANTED[0]

    world.clock.set("2028-09-01")
    report = store.apply_retention(store.node)
    assert (report.campaigns, report.results, report.pupils) == ((world.cp.id,), 4, 4)
    data = _files(store)
    assert not any(m in data for m in marks)
    assert PLANTED[0].encode() not in data
    assert store.db.execute("SELECT count(*) FROM pupils").fetchone()[0] == 0
    assert store.is_purged(store.node, world.cp.id)
    # What already left is not personal data and stays: the federation store is untouched by the purge,
    # and the audit log says what was erased, by whom and when.
    actions = [e.action for e in store.audit_log(admin)]
    assert "results-purged" in actions and "pupil-purged" in actions
    assert released_before["exercises"]["fr-mots"]  # (the counts that left were computed before)
    # The older backup is flagged: it still holds what was erased.
    listed = store.backups(admin)
    assert listed[0]["path"].endswith("before.backup") and listed[0]["flagged"]
    assert backup.backup_flag(old_backup, store) is True


def test_restoring_an_older_backup_purges_again(world, tmp_path):
    store, admin = world.store, world.admin
    path = backup.write_backup(store, admin, tmp_path / "old.backup")
    victim = world.pupils[0].id
    target = tmp_path / "restored"
    clock = Clock(_dt.datetime(2028, 9, 2, 10, tzinfo=_dt.timezone.utc))
    backup.restore_backup(path, target, username="direction", password=ADMIN_PW, clock=clock)
    files = b"".join((target / n).read_bytes() for n in ("preau.db", "preau.db-wal") if (target / n).exists())
    assert victim.encode() not in files
    with Store.open(target, cost=vault.TEST_COST, clock=clock) as restored:
        assert restored.db.execute("SELECT count(*) FROM pupils").fetchone()[0] == 0
        assert restored.is_purged(restored.node, world.cp.id)
    # Before the date, the same backup restores whole (the purge is by date, not by restore).
    target2 = tmp_path / "restored-early"
    backup.restore_backup(path, target2, username="direction", password=ADMIN_PW,
                          clock=Clock(_dt.datetime(2027, 1, 5, tzinfo=_dt.timezone.utc)))
    with Store.open(target2, cost=vault.TEST_COST) as restored:
        assert restored.db.execute("SELECT count(*) FROM pupils").fetchone()[0] == 4


def test_restoring_over_a_node_keeps_its_early_purges(world, tmp_path):
    store, admin = world.store, world.admin
    path = backup.write_backup(store, admin, tmp_path / "old.backup")
    store.purge_campaign_now(admin, world.cp.id)
    data_dir = store.data_dir
    store.close()
    backup.restore_backup(path, data_dir, username="direction", password=ADMIN_PW, replace=True)
    with Store.open(data_dir, cost=vault.TEST_COST) as restored:
        assert restored.db.execute("SELECT count(*) FROM results").fetchone()[0] == 0
        assert restored.is_purged(restored.node, world.cp.id)
    world.store = Store.open(data_dir, cost=vault.TEST_COST)  # for the fixture's close


def test_purge_earlier_by_the_head_teacher_only(world):
    store = world.store
    teacher = store.create_account(world.admin, "mme.alpha", "teacher one password")
    store.assign_teacher(world.admin, "mme.alpha", world.cls.id)
    with pytest.raises(AccessDenied):
        store.purge_campaign_now(store.login("mme.alpha", "teacher one password"), world.cp.id)
    report = store.purge_campaign_now(world.admin, world.cp.id)
    assert report.results == 4 and report.pupils == 0  # the pupils stay until their class's date
    assert store.get_results(world.admin, world.cp.id, world.cls.id) == []
    assert store.retention_plan(world.admin)[0].kind == "class"
    assert teacher.username == "mme.alpha"


def test_access_export_two_campaigns_everything_and_nobody_else(world):
    store, admin, pupil, other = world.store, world.admin, world.pupils[0], world.pupils[1]
    world.clock.set("2027-09-12")
    store.save_result(admin, world.ce1.id, pupil.id, "ma-nombres", answers=_answers(5, 8))
    store.save_result(admin, world.ce1.id, pupil.id, "fr-lire-texte", status="absent")
    store.save_result(admin, world.ce1.id, other.id, "ma-nombres", answers=_answers(2, 8))
    data = store.access_request(admin, pupil.id, "mère, courrier du 12/09")
    text = json.dumps(data, ensure_ascii=False)
    assert data["pupil"]["last_name"] == PLANTED[0] and data["class"]["name"] == "CP-A"
    got = {(c["id"], r["exercise_id"], r["status"], r["score"], r["entered_at"][:10])
           for c in data["campaigns"] for r in c["results"]}
    assert got == {(world.cp.id, "fr-mots", "done", 2, "2026-09-10"), (world.cp.id, "fr-lire-texte", "done", 10, "2026-09-10"),
                   (world.ce1.id, "ma-nombres", "done", 5, "2027-09-12"), (world.ce1.id, "fr-lire-texte", "absent", None, "2027-09-12")}
    for p in world.pupils[1:]:
        assert p.id not in text and p.last_name not in text
    assert data["left_the_school"]["individual_data"] == "none"
    entry = store.audit_log(admin)[0]
    assert (entry.action, entry.target) == ("access-request", f"pupil:{pupil.id}")
    page = paperwork.render("gdpr_access.html", paperwork.access_context(data, store.gdpr_texts(admin), _dt.date(2027, 9, 12)))
    assert PLANTED[0] in page and "Début de CP" in page and "12 septembre 2027" in page
    assert world.pupils[1].last_name not in page


def test_access_export_says_which_releases_counted_the_pupil(tmp_path):
    world = make_world(tmp_path / "data", n_pupils=12)
    store, admin, pupil = world.store, world.admin, world.pupils[0]
    pseudonym = store.pupil_pseudonym(admin, pupil.id)
    cp = next(c for c in store.access_request(admin, pupil.id)["campaigns"] if c["id"] == world.cp.id)
    assert cp["releases"] == {"last_release": 0, "exercises_counted": []}
    decision = next_release(store.release_outcomes(admin, world.cp.id),
                            world.cp, ReleaseHistory(world.cp.id), closing=False)
    assert decision.release
    store.put_blob(admin, f"release-history/{world.cp.id}", json.dumps(decision.history.to_dict()).encode())
    cp = next(c for c in store.access_request(admin, pupil.id)["campaigns"] if c["id"] == world.cp.id)
    assert cp["releases"] == {"last_release": 1, "exercises_counted": ["fr-lire-texte", "fr-mots"]}
    assert decision.history.exercises_counting(pseudonym) == {"fr-mots", "fr-lire-texte"}
    assert decision.history.exercises_counting("someone else") == set()
    store.close()


def test_rectification_keeps_a_trace(world):
    store, admin, pupil = world.store, world.admin, world.pupils[1]
    store.rectify_result(admin, world.cp.id, pupil.id, "fr-mots", answers=_answers(9, 10), request="père, 3 oct.")
    store.rectify_identity(admin, pupil.id, "Eleve-Un", "Prénom", request="orthographe du nom")
    log = store.audit_log(admin)
    assert (log[0].action, log[0].target) == ("pupil-rectified", f"pupil:{pupil.id}")
    assert "orthographe" in log[0].detail
    rect = next(e for e in log if e.action == "result-rectified")
    assert rect.target == f"pupil:{pupil.id}" and "exercise:fr-mots" in rect.detail and "père" in rect.detail
    assert store.get_pupil(admin, pupil.id).last_name == "Eleve-Un"
    r = [r for r in store.get_results(admin, world.cp.id, world.cls.id) if r.pupil_id == pupil.id and r.exercise_id == "fr-mots"]
    assert r[0].score == 9


def _release(store, admin, campaign, history):
    return next_release(store.release_outcomes(admin, campaign.id), campaign, history, closing=False)


def test_not_counted_changes_the_release_exactly_as_removing_the_pupil(tmp_path):
    w = make_world(tmp_path / "data", n_pupils=24)  # the national floor: cohorts and batches of 10
    store, admin = w.store, w.admin
    history = _release(store, admin, w.cp, ReleaseHistory(w.cp.id)).history  # every pupil published once
    counted = _release(store, admin, w.cp, history)
    objecting = w.pupils[:10]  # a batch of min_batch: the removal can be published
    for p in objecting:
        store.set_counted(admin, p.id, False, request="opposition des parents")
    assert store.not_counted(admin) == {p.id for p in objecting}
    without = _release(store, admin, w.cp, history)
    for p in objecting:
        store.erase_pupil(admin, p.id)
    removed = _release(store, admin, w.cp, history)
    assert without.release == removed.release is True
    assert without.content.to_dict() == removed.content.to_dict()
    assert counted.release is False  # counted, nothing changed: nothing to publish
    # A single objection is held back by the batching rule, exactly like a single removal.
    w.store.close()
    w2 = make_world(tmp_path / "data2", n_pupils=24)
    h2 = _release(w2.store, w2.admin, w2.cp, ReleaseHistory(w2.cp.id)).history
    w2.store.set_counted(w2.admin, w2.pupils[0].id, False)
    one = _release(w2.store, w2.admin, w2.cp, h2)
    assert not one.release and one.held_back
    w2.store.set_counted(w2.admin, w2.pupils[0].id, True)
    assert _release(w2.store, w2.admin, w2.cp, h2).release is False and not _release(w2.store, w2.admin, w2.cp, h2).held_back
    w2.store.close()


def test_notice_and_register_follow_the_retention_setting(world):
    store, admin = world.store, world.admin
    store.set_gdpr_text(admin, "contact", "Mme la directrice, 3 rue des Écoles, ce.0751234J@ac-paris.fr")
    ctx = paperwork.paperwork_context(store, admin, district="Circonscription Paris 5", today=_dt.date(2026, 10, 1))
    notice = paperwork.render("gdpr_notice.html", ctx)
    register = paperwork.render("gdpr_register.html", ctx)
    for doc in (notice, register):
        # CP 2026-2027 and CE1 2027-2028, kept one school year more.
        assert "1er septembre 2028" in doc and "1er septembre 2029" in doc and "1er septembre 2027" not in doc
        assert "ce.0751234J@ac-paris.fr" in doc and "Circonscription Paris 5" in doc
        assert "qui suit celle de l&#39;évaluation" in doc
    store.set_retention(admin, 0)
    ctx0 = paperwork.paperwork_context(store, admin, district="Circonscription Paris 5", today=_dt.date(2026, 10, 1))
    notice0 = paperwork.render("gdpr_notice.html", ctx0)
    register0 = paperwork.render("gdpr_register.html", ctx0)
    assert ctx0["version"] != ctx["version"]
    for doc in (notice0, register0):
        assert "1er septembre 2027" in doc and "1er septembre 2028" in doc and "1er septembre 2029" not in doc
        assert "fin de l&#39;année scolaire de l&#39;évaluation" in doc
    assert [e.action for e in store.audit_log(admin)][:2] == ["retention-changed", "gdpr-text-changed"]
    with pytest.raises(InvalidInput, match="0 to 5"):
        store.set_retention(admin, 9)


def test_the_node_purges_by_itself_when_it_opens(tmp_path):
    from preau.node.runtime import create_identity, open_node
    from preau.node.settings import load_settings

    data = tmp_path / "school"
    store, _ = Store.create(data, uai="0751234J", school_name="École du Préau", admin_username="direction",
                            admin_password=ADMIN_PW, cost=vault.TEST_COST)
    admin = store.login("direction", ADMIN_PW)
    old = store.create_class(admin, "CP 2020", "CP", "2020-2021")  # long past, by the real clock
    gone = store.add_pupil(admin, old.id, *PLANTED)
    new = store.create_class(admin, "CP 2099", "CP", "2099-2100")
    kept = store.add_pupil(admin, new.id, "Durand", "Louis")
    store.close()
    create_identity(data)
    node = open_node(load_settings({"data_dir": str(data), "role": "school", "argon2_profile": "minimal"}, env={}))
    try:
        ids = {r[0] for r in node.store.db.execute("SELECT id FROM pupils")}
        assert ids == {kept.id} and gone.id not in ids
    finally:
        node.close()


def test_a_restored_node_still_lists_the_backups_that_exist(world, tmp_path):
    """The page's list of backups is how a backup holding erased data gets flagged « à détruire ». A backup's
    image is taken before it is listed, so a node restored from it forgot that very file; restored over a
    node, it also forgot every backup made after it. Both stay listed (seen by hand: « Aucune sauvegarde »
    right after `preau restore` of the backup on the USB key)."""
    store, admin = world.store, world.admin
    first = backup.write_backup(store, admin, tmp_path / "first.backup")
    later = backup.write_backup(store, admin, tmp_path / "later.backup")
    data_dir = store.data_dir
    store.close()
    backup.restore_backup(first, tmp_path / "newbox", username="direction", password=ADMIN_PW)
    backup.restore_backup(first, data_dir, username="direction", password=ADMIN_PW, replace=True)
    for folder, expected in ((tmp_path / "newbox", ["first.backup"]), (data_dir, ["later.backup", "first.backup"])):
        with Store.open(folder, cost=vault.TEST_COST) as restored:
            s = restored.login("direction", ADMIN_PW)
            assert [row["path"].rsplit("/", 1)[-1] for row in restored.backups(s)] == expected, folder
            s.logout()
    world.store = Store.open(data_dir, cost=vault.TEST_COST)  # for the fixture's close
