"""Every command says what it says in French under a French locale and in English otherwise, through the real
entry point: each command family runs once per language on nodes in the same state, and a line with words that
is the same in both runs (or a French line that is an English catalog text) was left untranslated."""
from __future__ import annotations

import argparse
import ast
import json
import pathlib
import re

import pytest

from cli_helpers import (DISTRICT_UAI, OTHER_UAI, SCHOOL_UAI, Result, campaign_file, fill, init, invite, preau,
                         start_district)
from preau.cli.main import build_parser
from preau.node import i18n
from preau.node.settings import BY_NAME

FR = {"LANG": "fr_FR.UTF-8"}
ROOT = pathlib.Path(__file__).resolve().parents[2]

_DATA = re.compile(r"`[^`]*`|\S+://\S+|\S*/\S*|\"[^\"]*\"\s*:|--[\w-]+|\S*[\d_=#@<>{}\[\]]\S*|\S+-\S+|\S+\.\S+")
_WORD = re.compile(r"[^\W\d_]{3,}")


def words_of(line: str) -> list[str]:
    """The words of a line once data is taken out (paths, addresses, ids, code, flags, numbers, JSON keys)."""
    return _WORD.findall(_DATA.sub(" ", line))


def sentences(text: str) -> set[str]:
    """Lines a person reads as words (two words or more), as opposed to data (ids, JSON, invitations)."""
    return {line.strip() for line in text.splitlines() if len(words_of(line)) >= 2}


def _templates(lang: str) -> list[re.Pattern[str]]:
    """The catalog's texts with words (two or more) as patterns, a placeholder standing for anything."""
    other = i18n.catalog("fr" if lang == "en" else "en")
    out = []
    for key, text in i18n.catalog(lang).items():
        if other.get(key) == text or len(words_of(text)) < 3:
            continue  # the same in both languages (a name, a flag), or too few words to tell a language by
        parts = [p.strip() for p in re.split(r"\{[^{}]*\}", text.strip())]
        out.append(re.compile(".*".join(re.escape(p) for p in parts if p)))
    return out


ENGLISH, FRENCH = _templates("en"), _templates("fr")


# Words an English sentence is made with and a French one, or a name, is not (to tell data from text).
ENGLISH_WORDS = {"the", "and", "for", "with", "this", "that", "not", "yet", "has", "have", "was", "are", "from", "its",
                 "run", "into", "only", "been", "will", "would", "must", "can", "cannot", "give", "see", "again",
                 "already", "waiting", "sent", "received", "written", "there", "what", "when", "which", "your", "you"}


def not_french(r: Result) -> list[str]:
    """Lines of a French run that are not the French catalog's: an English text, or English words written in no
    catalog (a line of names or counts is data)."""
    return sorted(line for line in sentences(r.out + r.err)
                  if any(t.search(line) for t in ENGLISH)
                  or (not any(t.search(line) for t in FRENCH) and {w.lower() for w in words_of(line)} & ENGLISH_WORDS))


def untranslated(en: Result, fr: Result) -> list[str]:
    """Lines of a French run left in English: the same as in the English run, or not the French catalog's."""
    assert en.code == fr.code, (en, fr)
    english = sentences(en.out + en.err)
    french = sentences(fr.out + fr.err)
    assert bool(english) == bool(french), (en, fr)
    return sorted(set(not_french(fr)) | (french & english))


def both(*args: str, env: dict | None = None, **kw) -> tuple[Result, Result]:
    return preau(*args, env=env, **kw), preau(*args, env={**(env or {}), **FR}, **kw)


def test_the_line_check_sees_an_english_line_and_lets_data_through():
    en = Result(0, "Restored into /tmp/x.\n  ABCDE-FGHIJ\n", "")
    assert untranslated(en, Result(0, "Restauré dans /tmp/x.\n  ABCDE-FGHIJ\n", "")) == []
    assert untranslated(en, Result(0, "Restored into /tmp/x.\n", "")) == ["Restored into /tmp/x."]
    # a French run that prints an English catalog text with other data is caught too, and so are words
    # written in no catalog at all
    assert not_french(Result(0, "Restored into /var/other.\n", "")) == ["Restored into /var/other."]
    assert not_french(Result(0, "Backup made with the old key\n", "")) == ["Backup made with the old key"]
    assert not_french(Result(0, "Nguyen Nour  CP A\n", "")) == []  # names are data
    assert sentences('{\n  "campaign": "2026-debut-cp",\n  "final": false\n}\nPREAU1-ABCD') == set()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A served district with a campaign; school A (for the English runs) and B (French) joined, classes filled."""
    root = tmp_path_factory.mktemp("words")
    district = start_district(root)
    try:
        assert preau("campaign", "load", str(campaign_file(root)), "--data-dir", str(district.data)).code == 0
        schools = {}
        for lang, uai in (("en", SCHOOL_UAI), ("fr", OTHER_UAI)):
            data = root / f"school-{lang}"
            schools[lang] = (data, init(data, "school", uai), uai)
        yield type("World", (), {"root": root, "district": district, "schools": schools})
    finally:
        district.stop()


def _school(world, lang: str) -> dict:
    data, recovery, uai = world.schools[lang]
    return {"data": str(data), "recovery": recovery, "uai": uai, "lang": lang, "root": str(world.root)}


@pytest.mark.slow
def test_every_command_family_speaks_french_and_english(world, tmp_path):
    """Each family in French; a few also in English on a node in the same state, whose lines must all differ.
    (The English texts themselves are checked word for word by test_commands.py.)"""
    district = str(world.district.data)
    en, fr = _school(world, "en"), _school(world, "fr")
    left: dict[str, list[str]] = {}

    def french(name: str, *args: str, **kw) -> Result:
        r = preau(*args, env={**kw.pop("env", {}), **FR}, **kw)
        assert r.code == 0, (name, r)
        if not_french(r):
            left[name] = not_french(r)
        return r

    def pair(name: str, *args: str, **kw) -> None:
        """The same command on the English school and on the French one ({data}, {uai} filled for each)."""
        r_en = preau(*[a.format(**en) for a in args], **kw)
        r_fr = preau(*[a.format(**fr) for a in args], env=FR, **kw)
        assert r_en.code == 0, (name, r_en)
        if untranslated(r_en, r_fr):
            left[name] = untranslated(r_en, r_fr)

    # enrolment: the district invites each school, each joins with its own invitation
    assert preau("join", invite(world.district, en["uai"]), "--data-dir", en["data"]).code == 0
    inv = french("invite", "invite", "--uai", fr["uai"], "--allow-loopback", "--data-dir", district)
    french("join", "join", inv.out.strip(), "--data-dir", fr["data"])
    for school in (en, fr):
        fill(pathlib.Path(school["data"]))
    pair("status", "status", "--data-dir", "{data}")
    french("status district", "status", "--data-dir", district)
    # a release previewed, then approved and sent; the statistics on both sides
    pair("release", "release", "2026-debut-cp", "--final", "--data-dir", "{data}")
    french("release approve", "release", "2026-debut-cp", "--approve", "--data-dir", fr["data"])
    french("sync", "sync", "--data-dir", fr["data"])
    pair("stats", "stats", "2026-debut-cp", "--data-dir", district)
    french("stats school", "stats", "2026-debut-cp", "--data-dir", fr["data"])
    # campaigns
    french("campaign check", "campaign", "check", "debut-ce1")
    french("campaign load", "campaign", "load", "debut-ce1", "--data-dir", district)
    # safekeeping
    french("backup", "backup", "-o", str(tmp_path / "fr.backup"), "--data-dir", fr["data"])
    french("restore", "restore", str(tmp_path / "fr.backup"), "--data-dir", str(tmp_path / "restored"),
           env={"PREAU_RECOVERY_KEY": fr["recovery"]})
    french("bundle export", "bundle", "export", "-o", str(tmp_path / "fr.bundle"), "--data-dir", fr["data"])
    french("bundle import", "bundle", "import", str(tmp_path / "fr.bundle"), "--data-dir", district)
    french("keys recovery", "keys", "recovery", "--data-dir", fr["data"])
    # the head teacher's GDPR duties
    pair("gdpr status", "gdpr", "status", "--data-dir", "{data}")
    french("gdpr pupils", "gdpr", "pupils", "--data-dir", fr["data"])
    french("gdpr count", "gdpr", "count", "--no", sentences_pupil(fr["data"]), "--data-dir", fr["data"])
    # pools (their behaviour is the secure aggregation's; their words are the command line's)
    french("pool list", "pool", "list", "--data-dir", district)
    # the end of a node's life with the district: new keys, then revoked
    french("keys rotate", "keys", "rotate", "--yes", "--data-dir", fr["data"])
    french("revoke", "revoke", fr["uai"], "--reason", "test", "--data-dir", district)
    assert left == {}, json.dumps(left, ensure_ascii=False, indent=1)


def sentences_pupil(data: str) -> str:
    """One pupil id of a school, as `preau gdpr pupils` lists them."""
    return preau("gdpr", "pupils", "--data-dir", data).out.split()[0]


@pytest.mark.slow
def test_refusals_speak_french(world, tmp_path):
    district = str(world.district.data)
    school = _school(world, "en")["data"]
    lonely = tmp_path / "lonely"  # a school that has joined nothing
    init(lonely, "school", SCHOOL_UAI)
    cases = [
        ("status", "--data-dir", str(tmp_path / "nothing")),
        ("init", "--role", "school", "--uai", SCHOOL_UAI, "--data-dir", school),
        ("invite", "--uai", SCHOOL_UAI, "--data-dir", school),
        ("invite", "--uai", SCHOOL_UAI, "--data-dir", district),
        ("release", "2026-debut-cp", "--data-dir", district),
        ("stats", "2027-nope", "--data-dir", district),
        ("backup", "-o", str(tmp_path / "no" / "x.backup"), "--data-dir", school),
        ("revoke", "0590001F", "--reason", "x", "--data-dir", district),
        ("gdpr", "purge", "2026-debut-cp", "--data-dir", school),
        ("pool", "approve", "3f2a9c1e", "--data-dir", district),
        ("sync", "--data-dir", str(lonely)),
        ("serve", "--port", str(world.district.port), "--data-dir", str(lonely)),
    ]
    left = {}
    for args in cases:
        r = preau(*args, env=FR)
        assert r.code != 0 and r.err.startswith("preau : erreur : ") and r.err.count("\n") == 1, r
        if not_french(r):
            left[" ".join(args[:2])] = not_french(r)
    assert left == {}
    en, fr = both("stats", "2027-nope", "--data-dir", district)
    assert untranslated(en, fr) == [] and en.code == fr.code == 1


def _help_keys(parser: argparse.ArgumentParser, command: str = "") -> list[str]:
    keys = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = (command + " " + name).strip()
                if " " not in full and any(c.startswith(full + " ") for c in _names()):
                    keys.append(f"cli.group.{full}")
                else:
                    keys += [f"cli.cmd.{full.replace(' ', '_')}.help", f"cli.cmd.{full.replace(' ', '_')}.description"]
                keys += _help_keys(sub, full)
        elif action.dest in BY_NAME:
            keys.append(f"cli.setting.{action.dest}")
        elif action.help and action.dest not in ("help", "version", "lang"):
            keys.append(f"cli.arg.{command.replace(' ', '_')}.{action.dest}")
    return keys


def _names() -> list[str]:
    from preau.cli.main import COMMANDS

    return [c.name for c in COMMANDS]


def test_the_help_of_every_command_and_argument_is_in_french():
    fr, en = i18n.catalog("fr"), i18n.catalog("en")
    keys = _help_keys(build_parser("en"))
    assert len(keys) > 150
    assert [k for k in keys if k not in fr] == []
    assert [k for k in keys if fr[k] == en[k] or len(words_of(fr[k])) and fr[k] in en.values()] == []


def test_the_french_help_pages_hold_no_english_help_text():
    r = preau("gdpr", "rectify", "--help", env=FR)
    assert r.code == 0 and "utilisation : preau gdpr rectify" in r.out and "--request DEMANDE" in r.out
    flat = " ".join(r.out.split())
    assert "Corrige l'identité d'un élève ou un résultat" in flat and "who asked" not in flat
    r = preau("pool", "--help", env=FR)
    assert "SOUS-COMMANDE" in r.out and "regrouper les effectifs" in " ".join(r.out.split())


def _literals(path: pathlib.Path) -> list[tuple[int, str]]:
    """String literals with words in a module, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if len(words_of(node.value)) >= 2 and not node.value.startswith(("cli.", "action.", "privacy.", "store.")):
                out.append((node.lineno, node.value))
    return out


def test_what_the_commands_print_comes_from_the_catalog():
    """No sentence is written in the code of the commands or the use cases: each comes from the catalog."""
    files = sorted((ROOT / "cli" / "commands").glob("*.py")) + [ROOT / "cli" / "say.py"]
    files += [p for p in sorted((ROOT / "node" / "actions").glob("*.py"))]
    found = {f"{p.relative_to(ROOT)}:{line}": text for p in files for line, text in _literals(p)}
    # The English words a use case keeps for its caller's logs (the district's journal), not shown as output.
    allowed = {"node/actions/enrollment.py"}
    assert {k: v for k, v in found.items() if k.split(":")[0] not in allowed} == {}


def test_every_key_the_commands_use_exists_in_both_languages():
    files = sorted((ROOT / "cli" / "commands").glob("*.py")) + [ROOT / "cli" / "say.py"]
    files += sorted((ROOT / "node" / "actions").glob("*.py")) + [ROOT / "node" / "demo" / "demo.py"]
    used = set()
    for p in files:
        used |= set(re.findall(r"\"((?:cli|action|demo)\.[a-z0-9_.]+[a-z0-9_])\"", p.read_text(encoding="utf-8")))
    assert len(used) > 100
    fr, en = i18n.catalog("fr"), i18n.catalog("en")
    prefixes = {k for k in used if k.endswith("_") and any(f.startswith(k) for f in fr)}  # "...retention_" + n
    assert sorted(k for k in used - prefixes if k not in fr or k not in en) == []


@pytest.mark.parametrize("catalog_key", ["cli.out.backup.done"])
def test_the_check_fails_when_a_french_text_is_english(catalog_key, monkeypatch):
    """The switch-off check, kept as a test: with one French text replaced by its English one, a French run of
    that line is reported."""
    english = i18n.translate("en", catalog_key, path="/tmp/b")
    found = untranslated(Result(0, english + "\n", ""), Result(0, english + "\n", ""))
    assert found == [english.strip()]


def test_json_stays_the_same_in_both_languages(tmp_path):
    data = tmp_path / "n"
    init(data, "district", DISTRICT_UAI)
    en, fr = both("status", "--json", "--data-dir", str(data))
    assert en.code == fr.code == 0 and json.loads(en.out) == json.loads(fr.out)


def test_the_demo_summary_in_french_and_english():
    from preau.node.demo.demo import _render

    summary = {
        "campaign": "2026-debut-cp", "district": {"url": "http://127.0.0.1:9000", "pid": 11}, "data_dir": "/tmp/d",
        "schools": [{"name": "school-1", "uai": "0691000C", "url": "http://127.0.0.1:9001", "pid": 12, "pupils": 20,
                     "status": "withheld", "release": 1, "verified_release": 1, "acknowledged": True}],
        "pool": {"status": "complete", "survivors": 3, "pupils": 14, "syncs": 9,
                 "schools": [{"uai": "0691017U", "pupils": 4}]},
        "schools_contributing": 1, "schools_withheld": 1, "matches_generated_data": True,
        "statistics": [{"exercise": "fr-mots", "besoin": 1, "fragile": 2, "seuil2": 3, "absent": 0, "match": False}],
        "bytes": {"schools_sent": 1, "schools_received": 2}, "seconds": 1.0, "kept": True,
        "login": {"username": "admin", "password": "demo-preau-2026"},
    }
    en, fr = Result(0, _render(summary), ""), Result(0, _render(summary, "fr"), "")
    assert untranslated(en, fr) == []
    assert "Stop them with: kill 11 12" in en.out and "Pour les arrêter : kill 11 12" in fr.out


def test_the_examples_of_the_french_help_have_no_english_words():
    """Seen on a fresh clone: `preau campaign load --help` in French ended with « preau campaign load debut-ce1
    # a bundled sample » and « my-campaign.toml »; `preau --help` with « preau campaign check FILE »."""
    english = re.compile(r"\bFILE\b|\bDIR\b|PUPIL_ID|bundled sample|my-campaign|relay another|school closed")
    parser = build_parser("fr")
    helps = [parser.format_help()]

    def walk(p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    helps.append(sub.format_help())
                    walk(sub)

    walk(parser)
    examples = [h.split("Exemple", 1)[1] for h in helps if "Exemple" in h]
    assert len(examples) > 30
    assert [e for e in examples if english.search(e)] == []
