"""Refusals from deep in node/ (backups, settings) reach the French command line in French, whole.

They used to be English-only: each run below is the real `preau` entry point, in French, with a
mistake a directrice or a technician makes."""
from __future__ import annotations

from cli_helpers import preau

FR = {"LANG": "fr_FR.UTF-8", "PREAU_RECOVERY_KEY": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE-FFFFF"}


def _french_error(r) -> str:
    assert r.code != 0 and "Traceback" not in r.err, r.err
    assert r.err.startswith("preau : erreur : ") and r.err.count("\n") == 1, r.err
    return r.err


def test_restoring_a_file_that_is_not_a_backup_is_said_in_french(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("liste de courses\n", encoding="utf-8")
    err = _french_error(preau("restore", str(notes), "--data-dir", str(tmp_path / "ecole"), env=FR,
                              password=None))
    assert "notes.txt n'est pas une sauvegarde Préau (ou son début est endommagé)" in err, err
    assert "pick the right file" not in err


def test_a_broken_settings_file_is_said_in_french(tmp_path):
    from preau.node.settings import SETTINGS_FILE

    data = tmp_path / "ecole"
    data.mkdir()
    (data / SETTINGS_FILE).write_text("port = \n", encoding="utf-8")
    err = _french_error(preau("status", "--data-dir", str(data), env=FR))
    assert "n'est pas du TOML valide" in err and "corrigez cette ligne" in err, err
    assert "is not valid TOML" not in err


def test_a_bad_setting_is_said_in_french_with_where_it_came_from(tmp_path):
    from preau.node.settings import SETTINGS_FILE

    data = tmp_path / "ecole"
    data.mkdir()
    err = _french_error(preau("serve", "--port", "99999", "--data-dir", str(data), env=FR))
    assert "option --port : port doit être un nombre entier de 1 à 65535, et non 99999." in err, err
    (data / SETTINGS_FILE).write_text("prot = 8080\n", encoding="utf-8")
    err = _french_error(preau("status", "--data-dir", str(data), env=FR))
    assert f"{data / SETTINGS_FILE}, ligne 1 : « prot » n'est pas un réglage de Préau (vouliez-vous dire « port » ?)" in err
    assert "must be" not in err and "did you mean" not in err


def test_a_district_is_made_with_an_administration_account_not_a_head_teacher_one(tmp_path):
    """`preau init --role district` in French said « compte de direction : ien » (and asked for « le mot de
    passe du compte de direction »): a school's words; the district's pages say « administration »."""
    r = preau("--lang", "fr", "init", "--role", "district", "--uai", "0693344K", "--name", "Circonscription Lyon 3",
              "--admin", "ien", "--data-dir", str(tmp_path / "circo"))
    assert r.code == 0, r.err
    assert "  compte d'administration : ien" in r.out and "direction" not in r.out
    r = preau("--lang", "fr", "init", "--role", "school", "--uai", "0751234J", "--admin", "directrice",
              "--data-dir", str(tmp_path / "ecole"))
    assert r.code == 0, r.err
    assert "  compte de direction : directrice" in r.out


def test_preau_release_names_the_exercise_it_waits_for():
    """`preau release` said « en attente : encore 7 élève(s) modifié(s) sur l'exercice fr-comprendre-phrases »: the
    preview carries the campaign's exercise names, and the reason says the one it waits for by its name."""
    from preau.cli.commands.releases import _reason
    from preau.cli.say import Say
    from preau.crdt.disclosure import Reason, ReleaseDecision, ReleaseHistory
    from preau.node.release import ReleasePreview

    decision = ReleaseDecision(release=False, reason="waiting", content=None, history=ReleaseHistory("2026-debut-cp"),
                               reasons=(
        Reason("waiting", {"more": 7, "exercise": "fr-comprendre-phrases", "changed": 3, "min_batch": 10}),))
    preview = ReleasePreview("2026-debut-cp", decision, False,
                             names=(("fr-comprendre-phrases", "Comprendre des phrases lues par l'enseignant"),))
    assert "sur l'exercice « Comprendre des phrases lues par l'enseignant »" in _reason(Say("fr"), preview)
