"""`preau gdpr ...` as a head teacher runs it: the real entry point in a subprocess, a temp school."""
from __future__ import annotations

import json

import pytest

from cli_helpers import PASSWORD, SCHOOL_UAI, MINIMAL, init, preau, user_error


@pytest.fixture(scope="module")
def school(tmp_path_factory):
    from preau.crdt.campaign import parse_campaign
    from preau.node.campaign_file import load_campaign_file, resolve_campaign_path
    from preau.node.records.store import Store
    from preau.node.records.vault import ARGON2

    data = tmp_path_factory.mktemp("gdpr") / "school"
    init(data, "school", SCHOOL_UAI)
    campaign = load_campaign_file(resolve_campaign_path("debut-cp"))
    store = Store.open(data, cost=ARGON2[MINIMAL])
    try:
        s = store.login("admin", PASSWORD)
        store.put_campaign(s, parse_campaign(campaign.to_dict()))
        c = store.create_class(s, "CP A", "CP", "2026-2027")
        lea, hugo = store.add_pupils(s, c.id, [("Quintavalle", "Léa"), ("Martin", "Hugo")])
        ex = campaign.exercises[0]
        for p in (lea, hugo):
            if ex.score_kind == "wpm":
                store.save_result(s, campaign.id, p.id, ex.id, wpm=30)
            else:
                store.save_result(s, campaign.id, p.id, ex.id, answers=[1] * ex.items)
    finally:
        store.close()
    return type("School", (), {"data": data, "lea": lea.id, "hugo": hugo.id, "campaign": campaign.id, "ex": ex})


FR = {"LANG": "fr_FR.UTF-8"}  # the head teacher's words below are French: the runs that print them are French


def run(school, *args, **kw):
    return preau("gdpr", *args, "--data-dir", str(school.data), **kw)


def test_a_document_to_a_folder_or_to_a_missing_folder_is_refused_with_what_to_do(school, tmp_path):
    user_error(run(school, "notice", "-o", str(tmp_path / "missing" / "notice.html")), "does not exist")
    user_error(run(school, "register", "-o", str(tmp_path)), "is a folder: give a file name")
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
def test_gdpr_commands_of_a_head_teacher(school, tmp_path):
    r = run(school, "status", env=FR)
    assert r.code == 0, r.err
    assert "1er septembre 2028" in r.out and "Début de CP" in r.out
    r = run(school, "retention", "0", "--contact", "ce.0751234J@ac-paris.fr", env=FR)
    assert r.code == 0 and "fin de l'année scolaire de l'évaluation" in r.out, r.err
    r = run(school, "notice", "-o", str(tmp_path / "notice.html"))
    assert r.code == 0, r.err
    notice = (tmp_path / "notice.html").read_text(encoding="utf-8")
    assert "1er septembre 2027" in notice and "ce.0751234J@ac-paris.fr" in notice and "<style>" in notice
    user_error(run(school, "retention", "7"), "0 to 5")

    r = run(school, "pupils", env=FR)
    assert school.lea in r.out and "Quintavalle Léa" in r.out
    r = run(school, "count", school.lea, "--no", "--request", "parents, 3 octobre", env=FR)
    assert r.code == 0 and "ne sera pas compté" in r.out, r.err
    value = "30" if school.ex.score_kind == "wpm" else "0" * school.ex.items
    r = run(school, "rectify", school.lea, "--campaign", school.campaign, "--exercise", school.ex.id, "--value", value,
            "--request", "père, erreur de saisie", env=FR)
    assert r.code == 0 and "journal d'audit" in r.out, r.err

    out = tmp_path / "acces"
    out.mkdir()
    r = run(school, "access", school.lea, "--output", str(out), "--request", "mère")
    assert r.code == 0, r.err
    data = json.loads((out / f"acces-{school.lea}.json").read_text(encoding="utf-8"))
    page = (out / f"acces-{school.lea}.html").read_text(encoding="utf-8")
    assert data["pupil"]["last_name"] == "Quintavalle" and data["counted_in_releases"] is False
    assert "Quintavalle" in page and "Martin" not in page and school.hugo not in json.dumps(data)

    user_error(run(school, "purge", school.campaign), "add --yes to confirm")
    r = run(school, "purge", school.campaign, "--yes", env=FR)
    assert r.code == 0 and "Effacé : résultats de 2026-debut-cp (2 élèves)" in r.out, r.err


def test_the_stores_refusals_reach_the_french_command_line_in_french(school):
    """The store's and the paperwork's refusals, said in French (they used to come out in English only)."""
    r = run(school, "retention", "7", env=FR)
    assert r.code == 1 and "La durée de conservation va de 0 à 5 années scolaires" in r.err, r.err
    r = run(school, "rectify", school.lea, "--campaign", school.campaign, "--exercise", school.ex.id, "--value", "xyz",
            "--request", "père", env=FR)
    assert r.code == 1 and "« xyz » : donnez " in r.err and "give" not in r.err, r.err
    r = run(school, "status", env=FR, password="pas-le-bon-mot-de-passe")
    assert r.code == 1 and "Identifiant ou mot de passe incorrect" in r.err and "wrong" not in r.err, r.err
