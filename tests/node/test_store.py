"""Store behaviour: scores, groups, thresholds arriving later, erasure, errors that change nothing."""
from __future__ import annotations

import dataclasses

import pytest

from preau.crdt.campaign import parse_campaign
from preau.node.records import vault
from preau.node.records.errors import AccessDenied, AuthError, Conflict, InvalidInput, NotFound, SchemaError
from preau.crdt.disclosure import PupilOutcome
from preau.node.records.store import ResultInput, Store

from storage_fixtures import ADMIN_PW, T1_PW, campaign_dict
from storage_fixtures import campaign, school  # noqa: F401  (pytest fixtures)

C = "2026-debut-cp"


def _snapshot(store: Store) -> dict:
    """Every table's rows except the audit log (failed attempts may be audited)."""
    out = {}
    for t in store.db.table_names():
        if t not in ("audit", "audit_sealed", "sqlite_sequence"):
            out[t] = sorted(map(repr, store.db[t].rows))
    return out


def test_scores_from_item_answers_and_groups(school):
    s, p = school.store, school.pupils_a
    r = s.save_result(school.t1, C, p[0].id, "fr-mots", answers=[1, 1, 1, 0, None, 1, 1, 1, 0, 0])
    assert (r.score, r.group) == (6, "fragile")
    r = s.save_result(school.t1, C, p[1].id, "fr-mots", answers=[1] * 10)
    assert (r.score, r.group) == (10, "seuil2")
    r = s.save_result(school.t1, C, p[0].id, "fr-lire-texte", wpm=12)
    assert (r.score, r.group) == (12, "besoin")
    r = s.save_result(school.t1, C, p[1].id, "fr-lire-texte", status="not_assessed")
    assert (r.score, r.group, r.status) == (None, "absent", "not_assessed")
    got = {(x.pupil_id, x.exercise_id): x for x in s.get_results(school.t1, C, school.class_a.id)}
    assert got[(p[0].id, "fr-mots")].answers == (1, 1, 1, 0, None, 1, 1, 1, 0, 0)
    assert got[(p[0].id, "fr-lire-texte")].wpm == 12
    assert len(got) == 4


def test_groups_follow_thresholds_that_arrive_later(tmp_path):
    store, _ = Store.create(tmp_path, uai="0751234J", school_name="X", admin_username="direction",
                            admin_password=ADMIN_PW, cost=vault.TEST_COST)
    admin = store.login("direction", ADMIN_PW)
    cls = store.create_class(admin, "CP", "CP", "2026-2027")
    pupil = store.add_pupil(admin, cls.id, "Dupont", "Léa")
    store.put_campaign(store.node, parse_campaign(campaign_dict(thresholds=False)))
    store.save_result(admin, C, pupil.id, "fr-mots", answers=[1] * 5 + [0] * 5)
    assert store.get_results(admin, C, cls.id)[0].group is None
    assert store.release_outcomes(admin, C)[0].group is None
    assert store.next_release_counts(store.node, C)["exercises"]["fr-mots"]["ungrouped"] == 1
    store.put_campaign(store.node, parse_campaign(campaign_dict(thresholds=True)))  # unattended, from sync
    assert store.get_results(admin, C, cls.id)[0].group == "fragile"
    assert store.next_release_counts(store.node, C)["exercises"]["fr-mots"]["fragile"] == 1
    changed = campaign_dict()
    changed["exercises"][0]["thresholds"] = [2, 5]
    store.put_campaign(store.node, parse_campaign(changed))
    assert store.get_results(admin, C, cls.id)[0].group == "seuil2"
    assert store.next_release_counts(store.node, C)["exercises"]["fr-mots"] == \
        {"besoin": 0, "fragile": 0, "seuil2": 1, "absent": 0, "ungrouped": 0}
    store.close()


def test_campaign_shape_cannot_change_under_saved_results(school):
    s = school.store
    s.save_result(school.t1, C, school.pupils_a[0].id, "fr-mots", answers=[1] * 10)
    changed = campaign_dict()
    changed["exercises"][0]["items"] = 12
    before = _snapshot(s)
    with pytest.raises(Conflict, match="'fr-mots' has saved results, so its kind, item count and maximum score cannot change"):
        s.put_campaign(s.node, parse_campaign(changed))
    dropped = campaign_dict()
    del dropped["exercises"][0]
    with pytest.raises(Conflict, match="'fr-mots' has saved results and cannot be removed"):
        s.put_campaign(school.admin, parse_campaign(dropped))
    assert _snapshot(s) == before
    changed["exercises"][1]["items"] = 9  # no results yet for this one: allowed
    changed["exercises"][0]["items"] = 10
    s.put_campaign(s.node, parse_campaign(changed))


@pytest.mark.parametrize("entry, message", [
    (dict(exercise_id="fr-nope", answers=[1] * 10), "campaign '2026-debut-cp' has no exercise 'fr-nope'; pick one from the campaign's list"),
    (dict(exercise_id="fr-lire-texte", wpm=201), "'fr-lire-texte': 201 words per minute is out of range (0 to 200); check the entry"),
    (dict(exercise_id="fr-lire-texte", wpm=-1), "out of range"),
    (dict(exercise_id="fr-lire-texte", wpm=3.5), "needs the number of words read in one minute, a whole number; got 3.5"),
    (dict(exercise_id="fr-lire-texte", answers=[1]), "is scored in words per minute: give wpm, not item answers"),
    (dict(exercise_id="fr-mots", answers=[1] * 9), "'fr-mots' has 10 items but 9 answers were given"),
    (dict(exercise_id="fr-mots", answers=[1] * 9 + [2]), "'fr-mots': item 10 must be 1 (right), 0 (wrong) or blank, got 2"),
    (dict(exercise_id="fr-mots", wpm=3), "is scored by items"),
    (dict(exercise_id="fr-mots"), "needs the answer to each of its 10 items"),
    (dict(exercise_id="fr-mots", status="absent", answers=[1] * 10), "a pupil marked absent has no answers or score"),
    (dict(exercise_id="fr-mots", status="sick"), "a result's status is one of done, absent, not_assessed, not 'sick'"),
])
def test_bad_results_are_refused_and_change_nothing(school, entry, message):
    s = school.store
    good = ResultInput(school.pupils_a[1].id, "fr-mots", answers=(1,) * 10)
    before = _snapshot(s)
    bad = ResultInput(school.pupils_a[0].id, **{k: (tuple(v) if k == "answers" else v) for k, v in entry.items()})
    with pytest.raises(InvalidInput) as err:
        s.save_results(school.t1, C, [good, bad])  # the good one is not saved either
    assert message in str(err.value)
    assert _snapshot(s) == before


def test_unknown_campaign_and_pupil(school):
    s = school.store
    with pytest.raises(NotFound, match="no campaign '2099-x' on this node yet"):
        s.save_result(school.t1, "2099-x", school.pupils_a[0].id, "fr-mots", answers=[1] * 10)
    with pytest.raises(NotFound, match="no pupil with id 'nobody'"):
        s.save_result(school.t1, C, "nobody", "fr-mots", answers=[1] * 10)


def test_wrong_password_and_recovery_key(school):
    s = school.store
    before = _snapshot(s)
    msg = "wrong user name or password: check both and try again, or ask the head teacher to reset your password"
    with pytest.raises(AuthError) as e1:
        s.login("direction", "not the password")
    with pytest.raises(AuthError) as e2:
        s.login("nobody", "not the password")
    assert str(e1.value) == str(e2.value) == msg  # no hint whether the account exists
    other = vault.format_recovery_key(vault.random_key())
    with pytest.raises(AuthError, match="this recovery key belongs to another school or set-up"):
        s.unlock_with_recovery(other)
    typo = ("A" if school.recovery[0] != "A" else "B") + school.recovery[1:]
    with pytest.raises(AuthError, match=r"this is not a valid recovery key \(a character is wrong or missing\)"):
        s.unlock_with_recovery(typo)
    assert _snapshot(s) == before
    assert s.unlock_with_recovery(school.recovery).is_admin


def test_password_change_and_reset(school):
    s = school.store
    with pytest.raises(AuthError, match="the current password is wrong; nothing was changed"):
        s.change_password(school.t1, "bad old password", "a new password 1")
    with pytest.raises(InvalidInput, match="a password needs at least 10 characters"):
        s.change_password(school.t1, T1_PW, "short")
    s.change_password(school.t1, T1_PW, "a new password 1")
    with pytest.raises(AuthError):
        s.login("mme.alpha", T1_PW)
    t1 = s.login("mme.alpha", "a new password 1")
    assert len(s.list_pupils(t1, school.class_a.id)) == 2
    # Forgotten password: the head teacher resets it; the class keys are sealed again.
    rec = s.unlock_with_recovery(school.recovery)
    s.reset_password(rec, "mme.alpha", "reset password 22")
    t1 = s.login("mme.alpha", "reset password 22")
    assert [p.first_name for p in s.list_pupils(t1, school.class_a.id)] == ["Léa", "Zéphyrine"]
    s.reset_password(rec, "direction", "new head password")
    admin = s.login("direction", "new head password")
    assert len(s.list_pupils(admin, school.class_b.id)) == 2


def test_a_credential_made_beforehand_sets_only_the_account_it_was_made_for(school):
    """A serving node derives a new password's key on its login workers, then writes it on the database thread:
    the credential is bound to the id of the account it was made for, and no other account takes it."""
    s, a = school.store, school.admin
    made = s.account_credential("reset password 33", account_id=s.account_id("mme.alpha"))
    s.reset_password(a, "mme.alpha", None, credential=made)
    assert s.login("mme.alpha", "reset password 33").username == "mme.alpha"
    s.create_account(a, "m.other", None, credential=s.account_credential("some password 55"))
    assert s.login("m.other", "some password 55").username == "m.other"
    with pytest.raises(Conflict, match="is no longer the one this password was prepared for"):
        s.reset_password(a, "m.other", None, credential=s.account_credential("reset password 44",
                                                                               account_id=s.account_id("mme.alpha")))
    assert s.login("m.other", "some password 55").username == "m.other"  # nothing was written
    with pytest.raises(InvalidInput, match="a password needs at least 10 characters"):
        s.account_credential("short")


def test_account_and_class_input_errors(school):
    s, a = school.store, school.admin
    with pytest.raises(Conflict, match="the user name 'mme.alpha' is taken; choose another"):
        s.create_account(a, "mme.alpha", "some password 1")
    with pytest.raises(InvalidInput, match="the user name 'Bad Name' must be 2 to 40 lowercase"):
        s.create_account(a, "Bad Name", "some password 1")
    with pytest.raises(InvalidInput, match="an account's role is 'admin' \\(head teacher\\) or 'teacher', not 'boss'"):
        s.create_account(a, "x.y", "some password 1", "boss")
    with pytest.raises(Conflict, match="a class named 'CP-A' exists already"):
        s.create_class(a, "CP-A", "CP", "2026-2027")
    with pytest.raises(InvalidInput, match="the level 'CP3' must be one of"):
        s.create_class(a, "CP-C", "CP3", "2026-2027")
    with pytest.raises(InvalidInput, match="two consecutive years like 2026-2027"):
        s.create_class(a, "CP-C", "CP", "2026-2028")
    assert s.create_class(a, "CP-CE1", "CP-CE1", "2026-2027").level == "CP-CE1"
    with pytest.raises(Conflict, match="Léa Dupont is already in this class"):
        s.add_pupil(school.t1, school.class_a.id, "DUPONT", "Lea")
    with pytest.raises(InvalidInput, match="the first name is empty"):
        s.add_pupil(school.t1, school.class_a.id, "Dupont", " ")


def test_setup_errors(tmp_path):
    kw = dict(school_name="X", admin_username="direction", admin_password=ADMIN_PW, cost=vault.TEST_COST)
    with pytest.raises(InvalidInput, match="the check letter A does not match the digits"):
        Store.create(tmp_path / "a", uai="0751234A", **kw)
    with pytest.raises(InvalidInput, match="a UAI has 8 characters: 7 digits then a letter, like 0751234J"):
        Store.create(tmp_path / "a", uai="75123", **kw)
    store, _ = Store.create(tmp_path / "a", uai="0010856a", **kw)
    assert store.school() == {"uai": "0010856A", "name": "X"}
    store.close()
    with pytest.raises(Conflict, match="already exists: this school is already set up"):
        Store.create(tmp_path / "a", uai="0010856A", **kw)
    with pytest.raises(NotFound, match="no Préau database in"):
        Store.open(tmp_path / "empty")
    (tmp_path / "a" / "storage.key").unlink()
    with pytest.raises(SchemaError, match="storage.key is missing: the node cannot work unattended without it"):
        Store.open(tmp_path / "a")


def test_erasure_removes_pupil_and_drops_from_release(school):
    s = school.store
    gone, kept = school.pupils_a
    for p in (gone, kept):
        s.save_result(school.t1, C, p.id, "fr-mots", answers=[1] * 10)
    pseudo_gone = s.pupil_pseudonym(school.admin, gone.id)
    assert {o.pupil for o in s.release_outcomes(school.admin, C)} >= {pseudo_gone}
    assert s.next_release_counts(s.node, C)["exercises"]["fr-mots"]["seuil2"] == 2
    s.erase_pupil(school.admin, gone.id)
    assert [p.id for p in s.list_pupils(school.t1, school.class_a.id)] == [kept.id]
    assert pseudo_gone not in {o.pupil for o in s.release_outcomes(school.admin, C)}
    assert s.next_release_counts(s.node, C)["exercises"]["fr-mots"]["seuil2"] == 1
    assert s.db.execute("SELECT COUNT(*) FROM results WHERE pupil_id = ?", [gone.id]).fetchone()[0] == 0
    with pytest.raises(NotFound):
        s.get_pupil(school.admin, gone.id)
    assert [e.action for e in s.audit_log(school.admin, 1)] == ["pupil-erased"]


def test_release_outcomes_use_pseudonyms_only(school):
    s = school.store
    p = school.pupils_a[0]
    s.save_result(school.t1, C, p.id, "fr-mots", answers=[1, 1, 1] + [0] * 7)
    s.save_result(school.t2, C, school.pupils_b[0].id, "ma-nombres", status="absent")
    outs = s.release_outcomes(school.admin, C)
    assert all(isinstance(o, PupilOutcome) for o in outs)
    assert dataclasses.fields(PupilOutcome)[0].name == "pupil"
    assert {(o.exercise, o.group) for o in outs} == {("fr-mots", "besoin"), ("ma-nombres", "absent")}
    for o in outs:
        assert len(o.pupil) == 32 and o.pupil not in (p.id, school.pupils_b[0].id)
    assert s.pupil_pseudonym(school.admin, p.id) in {o.pupil for o in outs}


def test_incremental_counts_match_a_rebuild(school):
    s = school.store
    import random
    rng = random.Random(4)
    pupils = school.pupils_a + school.pupils_b
    for _ in range(40):
        p = rng.choice(pupils)
        actor = school.t1 if p in school.pupils_a else school.t2
        ex = rng.choice(["fr-mots", "fr-lire-texte"])
        if rng.random() < 0.2:
            s.save_result(actor, C, p.id, ex, status="absent")
        elif ex == "fr-mots":
            s.save_result(actor, C, p.id, ex, answers=[rng.choice([1, 0, None]) for _ in range(10)])
        else:
            s.save_result(actor, C, p.id, ex, wpm=rng.randint(0, 80))
    s.erase_pupil(school.admin, pupils[0].id)
    incremental = s.next_release_counts(s.node, C)["exercises"]
    s.rebuild_counts(school.admin, C)
    assert s.next_release_counts(s.node, C)["exercises"] == incremental
    from collections import Counter
    expected = Counter((o.exercise, o.group) for o in s.release_outcomes(school.admin, C))
    for ex, counts in incremental.items():
        for group, n in counts.items():
            assert expected.get((ex, group), 0) == n


def test_csv_export(school):
    """Columns named by the exercise's title, as the grid page shows it, in the page's language.
    (Class lists come in through records/classlist.py: tests/node/records/test_classlist.py.)"""
    s = school.store
    cls = s.create_class(school.admin, "CE1", "CE1", "2026-2027")
    added = s.add_pupils(school.admin, cls.id, [("Durand", "Paul"), ("=cmd|' /C calc'!A0", "Anne"), ("Petit", "Léa")])
    s.save_result(school.admin, C, added[0].id, "fr-mots", answers=[1] * 10)
    s.save_result(school.admin, C, added[1].id, "fr-lire-texte", status="absent")
    s.save_result(school.admin, C, added[2].id, "fr-mots", status="not_assessed")
    s.save_result(school.admin, C, added[2].id, "ma-nombres", answers=[1, 0, 0, 0, 1, 0, 0, 0])
    lines = s.export_results_csv(school.admin, C, cls.id).lstrip("\ufeff").splitlines()
    assert lines[0] == ("Nom;Prénom;Comprendre des mots — score sur 10;Comprendre des mots — groupe;"
                        "Lire des nombres — score sur 8;Lire des nombres — groupe;"
                        "Lire un texte — mots lus en 1 min;Lire un texte — groupe")
    assert "Durand;Paul;10;Au-dessus du seuil 2;;;;" in lines
    assert "'=cmd|' /C calc'!A0;Anne;;;;;Absent;Absent" in lines  # still no formula
    assert "Petit;Léa;Non évalué;Non évalué;2;À besoin;;" in lines
    english = s.export_results_csv(school.admin, C, cls.id, "en").lstrip("\ufeff").splitlines()
    assert english[0].startswith("Last name;First name;Comprendre des mots — score out of 10;Comprendre des mots — group;")
    assert "Durand;Paul;10;Above threshold 2;;;;" in english and "Petit;Léa;Not assessed;Not assessed;2;Needs support;;" in english


def test_csv_export_titles_stay_inert_and_distinct(school):
    """A title comes from the district's campaign file: one that starts like a formula stays text, and two
    exercises with the same title are told apart by their id."""
    s = school.store
    d = campaign_dict()
    d["id"] = "2026-titres"
    d["exercises"][0]["name"] = "=HYPERLINK(\"http://x\")"
    d["exercises"][2]["name"] = d["exercises"][1]["name"]
    s.put_campaign(school.admin, parse_campaign(d))
    cls = s.create_class(school.admin, "CE1", "CE1", "2026-2027")
    s.add_pupils(school.admin, cls.id, [("Durand", "Paul")])
    header = s.export_results_csv(school.admin, "2026-titres", cls.id).lstrip("\ufeff").splitlines()[0]
    assert header.startswith('Nom;Prénom;"\'=HYPERLINK(""http://x"") — score sur 10";')
    assert "Lire des nombres (ma-nombres) — score sur 8;" in header and "Lire des nombres (fr-lire-texte) — groupe" in header


def test_blobs_by_scope(school):
    s = school.store
    s.put_blob(school.admin, "release-history/2026-debut-cp", b"digests")
    assert s.get_blob(school.admin, "release-history/2026-debut-cp") == b"digests"
    s.put_blob(s.node, "peers", b"node data", scope="node")
    assert s.get_blob(s.node, "peers", scope="node") == b"node data"
    assert s.get_blob(school.admin, "peers", scope="node") == b"node data"
    assert s.list_blobs(school.admin, "release-") == ["release-history/2026-debut-cp"]
    assert s.get_blob(school.admin, "missing") is None
    s.delete_blob(school.admin, "release-history/2026-debut-cp")
    assert s.list_blobs(school.admin) == []
    with pytest.raises(InvalidInput, match="a blob's scope is 'school'"):
        s.put_blob(school.admin, "x", b"", scope="public")


def test_disabled_account_session_stops_working(school):
    s = school.store
    s.disable_account(school.admin, "mme.alpha")
    with pytest.raises(AuthError, match="this account was changed or disabled by the head teacher: log in again"):
        s.list_pupils(school.t1, school.class_a.id)
    with pytest.raises(AuthError, match="wrong user name or password"):
        s.login("mme.alpha", T1_PW)
    with pytest.raises(Conflict, match="you cannot disable your own account"):
        s.disable_account(school.admin, "direction")


def test_reopen_keeps_everything_and_migrations_are_idempotent(school, tmp_path):
    s = school.store
    s.save_result(school.t1, C, school.pupils_a[0].id, "fr-mots", answers=[1] * 10)
    data = s.data_dir
    s.close()
    s2 = Store.open(data, cost=vault.TEST_COST)
    t1 = s2.login("mme.alpha", T1_PW)
    assert s2.get_results(t1, C, school.class_a.id)[0].score == 10
    assert s2.next_release_counts(s2.node, C)["exercises"]["fr-mots"]["seuil2"] == 1
    s2.close()
    school.store = Store.open(data, cost=vault.TEST_COST)


def test_moving_a_pupil_moves_their_results_and_keys(school):
    s = school.store
    zeph = school.pupils_a[0]
    s.save_result(school.t1, C, zeph.id, "fr-mots", answers=[1] * 10)
    with pytest.raises(AccessDenied):
        s.move_pupil(school.t1, zeph.id, school.class_b.id)
    moved = s.move_pupil(school.admin, zeph.id, school.class_b.id)
    assert moved.class_id == school.class_b.id and moved.first_name == "Zéphyrine"
    assert [p.id for p in s.list_pupils(school.t1, school.class_a.id)] == [school.pupils_a[1].id]
    assert zeph.id in [p.id for p in s.list_pupils(school.t2, school.class_b.id)]
    assert [(r.pupil_id, r.score) for r in s.get_results(school.t2, C, school.class_b.id)] == [(zeph.id, 10)]
    assert s.get_results(school.t1, C, school.class_a.id) == []
    with pytest.raises(AccessDenied):
        s.get_pupil(school.t1, zeph.id)
    s.add_pupil(school.admin, school.class_a.id, "Quintavalle", "Zéphyrine")
    with pytest.raises(Conflict, match="Zéphyrine Quintavalle is already in that class"):
        s.move_pupil(school.admin, zeph.id, school.class_a.id)
    with pytest.raises(Conflict, match="Léa Dupont is already in this class"):
        s.add_pupils(school.t1, school.class_a.id, [("Martin", "Jo"), ("Dupont", "Léa")])
    with pytest.raises(Conflict, match="Jo Martin is already in this class"):
        s.add_pupils(school.t1, school.class_a.id, [("Martin", "Jo"), ("MARTIN", "Jo")])


def test_two_sessions_editing_the_same_pupil_never_lose_an_update(school):
    """Each session caches what it last saw; a blob changed by someone else is read afresh."""
    s = school.store
    p = school.pupils_a[0].id
    s.save_result(school.t1, C, p, "fr-mots", answers=[1] * 10)
    s.save_result(school.admin, C, p, "ma-nombres", answers=[0] * 8)
    s.save_result(school.t1, C, p, "fr-lire-texte", wpm=33)   # t1's cached copy is stale: must not drop ma-nombres
    s.save_result(school.admin, C, p, "fr-mots", status="absent")
    for who in (school.t1, school.admin, s.login("mme.alpha", T1_PW)):
        got = {r.exercise_id: (r.status, r.score) for r in s.get_results(who, C, school.class_a.id)}
        assert got == {"fr-mots": ("absent", None), "ma-nombres": ("done", 0), "fr-lire-texte": ("done", 33)}
    counts = s.next_release_counts(s.node, C)["exercises"]
    s.rebuild_counts(school.admin, C)
    assert s.next_release_counts(s.node, C)["exercises"] == counts


def test_store_errors_are_the_node_errors_of_the_same_meaning():
    """One `except errors.NotFound` (or Conflict, Forbidden) catches the storage layer's too."""
    from preau.node import errors
    from preau.node.records import errors as storage_errors

    for store_cls, node_cls, status in ((storage_errors.NotFound, errors.NotFound, 404),
                                        (storage_errors.Conflict, errors.Conflict, 409),
                                        (storage_errors.AccessDenied, errors.Forbidden, 403)):
        exc = store_cls("what to do")
        assert isinstance(exc, node_cls) and isinstance(exc, storage_errors.StoreError)
        assert (exc.status, exc.message) == (status, "what to do")


def test_password_hashing_never_runs_inside_a_transaction(school, monkeypatch):
    """Argon2id takes up to a second: run inside a transaction it would hold the database's write lock (and the
    node's database thread) that long. Each derivation must find the writer's connection outside any."""
    store = school.store
    inside: list[bool] = []
    real = vault.kek_from_password

    def spy(*args, **kw):
        inside.append(store.writer.conn.in_transaction)
        return real(*args, **kw)

    monkeypatch.setattr(vault, "kek_from_password", spy)
    store.create_account(school.admin, "m.gamma", T1_PW)
    store.reset_password(school.admin, "m.gamma", ADMIN_PW)
    teacher = store.login("m.gamma", ADMIN_PW)
    store.change_password(teacher, ADMIN_PW, T1_PW)
    assert len(inside) >= 4 and not any(inside), inside
    assert store.login("m.gamma", T1_PW).username == "m.gamma"
