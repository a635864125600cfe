import pathlib
import re

import pytest

from preau.cli import main as cli
from preau.node.campaign_file import line_of, load_campaign_file, location_lines, parse_campaign_bytes, sample_campaign_paths
from preau.crdt.campaign import parse_campaign
from preau.node.errors import EXIT_DATA, EXIT_NOT_AVAILABLE, UserError

ROOT = pathlib.Path(__file__).resolve().parents[2]

GOOD = """\
id = "2026-test"
name = "Campagne de test"
level = "CP"
school_year = "2026-2027"
opens = 2026-09-01
closes = "2026-09-30"
illustrative = true

[policy]
min_cohort = 10

[[exercises]]
id = "fr-mots"
name = "Comprendre des mots"
subject = "français"
score_kind = "items"
items = 15
thresholds = [6, 10]

[[exercises]]
id = "fr-lire-texte"
name = "Lire un texte"
subject = "français"
score_kind = "wpm"
max_score = 200
"""


def write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def check(capsys, path):
    code = cli.main(["campaign", "check", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_samples_are_shipped_and_valid():
    paths = sample_campaign_paths()
    assert [p.name for p in paths] == ["debut-ce1.toml", "debut-cp.toml", "point-etape-cp.toml"]
    for path in paths:
        campaign = load_campaign_file(path)
        assert campaign.illustrative is True
        header = path.read_text(encoding="utf-8").split("\n\n", 1)[0]
        words = " ".join(header.replace("#", " ").split())
        assert "item counts and thresholds in this file are illustrative until the official DEPP values are loaded" in words
        timed = {ex.id for ex in campaign.exercises if ex.score_kind == "wpm"}
        lire = {ex.id for ex in campaign.exercises if ex.subject == "français" and ex.name.startswith("Lire")}
        assert timed == lire
        assert parse_campaign(campaign.to_dict()) == campaign


def test_samples_use_the_unconfirmed_examples_from_the_notes():
    cp = load_campaign_file(ROOT / "node" / "campaigns" / "debut-cp.toml")
    ex = {e.id: (e.max_score, *e.thresholds) for e in cp.exercises}
    assert ex["fr-comprendre-mots"] == (15, 6, 10)
    assert ex["fr-comprendre-phrases"] == (14, 6, 10)
    assert ex["fr-comprendre-textes"] == (11, 3, 5)
    assert ex["fr-manipuler-syllabes"] == (15, 5, 8)
    ce1 = load_campaign_file(ROOT / "node" / "campaigns" / "debut-ce1.toml")
    assert {e.id for e in ce1.exercises if e.score_kind == "wpm"} == {"fr-lire-mots", "fr-lire-texte"}


def test_check_good_file(capsys, tmp_path):
    code, out, err = check(capsys, write(tmp_path, GOOD))
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"{tmp_path / 'c.toml'}: valid campaign definition"
    assert "2 exercises (1 timed reading), 1 with thresholds" in out
    assert "illustrative" in out


@pytest.mark.parametrize(
    "old, new, line, message",
    [
        ('level = "CP"', 'level = "GS"', 3, "level: must be one of CP, CE1, CE2, CM1, CM2, 6e, 4e; got 'GS'"),
        ("thresholds = [6, 10]", "thresholds = [10, 6]", 18,
         "exercises[0].thresholds: threshold 1 (10) must not be above threshold 2 (6)"),
        ("thresholds = [6, 10]", "thresholds = [6, 99]", 18, "exercises[0].thresholds[1]: must be between 0 and 15, got 99"),
        ("max_score = 200", "max_score = 200\nitems = 3", 26,
         "exercises[1].items: has no meaning for a words-per-minute exercise; remove it"),
        ('id = "fr-lire-texte"', 'id = "fr-mots"', 21, "exercises[1].id: 'fr-mots' is used by an earlier exercise"),
        ("min_cohort = 10", "min_cohort = 2", 10, "policy.min_cohort: asks for 2, below the national minimum of 10; a campaign may raise this setting, never lower it"),
        ("min_cohort = 10", "min_cohrt = 10", 10, "policy.min_cohrt: is not a known policy setting"),
        ("items = 15\n", "", 12, "exercises[0].items: is missing"),  # missing: the line of its table
        ('name = "Campagne de test"\n', "", None, "name: is missing"),
        ("closes = \"2026-09-30\"", "closes = \"2026-08-30\"", 6, "closes: (2026-08-30) is before opens (2026-09-01)"),
    ],
)
def test_check_bad_file_gives_line_and_location(capsys, tmp_path, old, new, line, message):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    code, out, err = check(capsys, path)
    assert code == EXIT_DATA and out == ""
    where = f"{path}:{line}" if line else f"{path}"
    assert err == f"preau: error: {where}: {message}\n"


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: write(p, 'id = "x"\nname = \n'), ["is not valid TOML", "line 2"]),
        (lambda p: p / "missing.toml", ["missing.toml: no such file", "bundled sample (debut-ce1, debut-cp, point-etape-cp)"]),
        (lambda p: p, ["is a folder"]),
        (lambda p: (p / "latin1.toml").write_bytes(b'name = "\xe9"\n') and p / "latin1.toml", ["not UTF-8 text"]),
    ],
)
def test_check_unreadable_files(capsys, tmp_path, make, words):
    code, out, err = check(capsys, make(tmp_path))
    assert code == EXIT_DATA and out == ""
    assert err.startswith("preau: error: ") and err.count("\n") == 1
    for w in words:
        assert w in err


def test_inline_tables_and_dotted_keys_still_locate(tmp_path):
    text = 'policy.min_cohort = 2\nexercises = [\n  { id = "x" },\n]\n'
    assert line_of(text, "policy.min_cohort") == 1
    assert line_of(text, "exercises[0].name") == 2
    assert location_lines("[[exercises]]\n[[exercises]]\nid = 1\n")["exercises[1].id"] == 3
    with pytest.raises(UserError, match=r"c.toml:1: policy.min_cohort: asks for 2, below the national minimum of 10"):
        load_campaign_file(write(tmp_path, GOOD.replace("[policy]\nmin_cohort = 10\n", "").replace(
            'id = "2026-test"', 'policy.min_cohort = 2\nid = "2026-test"')))


def test_campaign_load_checks_the_file_before_needing_a_node(capsys, tmp_path, monkeypatch):
    bad = write(tmp_path, GOOD.replace('level = "CP"', 'level = "GS"'))
    code = cli.main(["campaign", "load", str(bad), "--data-dir", str(tmp_path)])
    assert code == EXIT_DATA and f"{bad}:3: level" in capsys.readouterr().err
    monkeypatch.setitem(cli.NODE_FUNCTIONS, "campaign load", "preau.node.no_such_module_xyz:load_campaign")
    code = cli.main(["campaign", "load", str(write(tmp_path, GOOD)), "--data-dir", str(tmp_path)])
    assert code == EXIT_NOT_AVAILABLE and "not available yet" in capsys.readouterr().err


def test_bundled_sample_by_name(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = check(capsys, "debut-cp")
    assert code == 0 and err == ""
    assert out.splitlines()[0].endswith("campaigns/debut-cp.toml: valid campaign definition")
    assert "2026-debut-cp: Début de CP" in out
    # A real file of that name wins over the sample.
    write(tmp_path, GOOD, name="debut-cp")
    code, out, _ = check(capsys, "debut-cp")
    assert code == 0 and out.startswith("debut-cp: valid") and "2026-test" in out


def test_the_web_upload_reads_bytes_like_the_command_line():
    from preau.node.web.district import parse_campaign_text

    bom = b"\xef\xbb\xbf" + GOOD.encode()
    assert parse_campaign_text(bom, "c.toml").id == "2026-test"  # a BOM from Notepad or a spreadsheet is fine here
    with pytest.raises(UserError, match=r"^c.toml is not valid TOML"):
        parse_campaign_bytes(bom, "c.toml")  # ... but the command line reads strict UTF-8, as before
    for raw, message in ((b'name = "\xe9"\n', "c.toml is not UTF-8 text; save it as UTF-8 and retry"),
                         (GOOD.replace('level = "CP"', 'level = "GS"').encode(), "c.toml:3: level")):
        for read in (parse_campaign_bytes, parse_campaign_text):
            with pytest.raises(UserError, match="^" + re.escape(message)) as caught:
                read(raw, "c.toml")
            assert caught.value.exit_code == EXIT_DATA


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "absent.toml", ["absent.toml : ce fichier n'existe pas", "exemple fourni (debut-ce1, debut-cp"]),
    (lambda p: p, ["est un dossier ; donnez le chemin d'une définition de campagne (.toml)"]),
])
def test_campaign_load_says_a_missing_file_in_french(capsys, tmp_path, make, words):
    """`preau campaign load` with a file that is not there, in French: the whole line (these were English-only)."""
    code = cli.main(["--lang", "fr", "campaign", "load", str(make(tmp_path)), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_DATA and err.startswith("preau : erreur : ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    assert "no such file" not in err and "is a folder" not in err and "give the path" not in err
