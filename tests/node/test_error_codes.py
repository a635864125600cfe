"""The pure layers' errors and reasons carry codes, and the node has words for every code, in French and English.

`crdt/` and `protocol/` know no catalog: they raise with a stable `code` and its
values; `preau.node.codes` maps each code to its catalog key once. These tests
fail when a raise site gives no code (read from the source, so a new one is
caught before anyone meets it), when a code has no words in a language, or when
the words lose a value the error carries.
"""
from __future__ import annotations

import ast
import importlib
import pathlib
import re
import string

import pytest

from preau.crdt.campaign import parse_campaign
from preau.crdt.disclosure import REASON_CODES
from preau.crdt.errors import CAMPAIGN_CODES, CampaignError, CrdtError
from preau.crdt.statistics import AGGREGATE_REASONS
from preau.node import codes, i18n
from preau.protocol.connection import REFUSALS
from preau.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Classes whose code is a family, not a mistake: raising one needs an explicit code=.
GENERIC = {CrdtError, CampaignError, ProtocolError, LocalProtocolError, RemoteProtocolError}


def _module(path: pathlib.Path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return importlib.import_module(".".join(["preau", *parts]))


def _const(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _stable(node: ast.AST) -> bool:
    """A code written as a literal, a name, an attribute (a code passed along), or a choice between those."""
    if isinstance(node, ast.IfExp):
        return _stable(node.body) and _stable(node.orelse)
    return _const(node) is not None or isinstance(node, (ast.Attribute, ast.Name))


def raise_sites_without_code(source: str, namespace: dict) -> list[str]:
    """Every `raise E(...)` of a crdt or protocol error in `source` that gives no stable code, as 'line: why'."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name)):
            continue
        cls = namespace.get(node.exc.func.id)
        if not (isinstance(cls, type) and issubclass(cls, (CrdtError, ProtocolError))):
            continue
        call, where = node.exc, f"{node.lineno}: {node.exc.func.id}"
        keyword = next((k.value for k in call.keywords if k.arg == "code"), None)
        if cls is CampaignError:
            code = _const(call.args[1]) if len(call.args) > 1 else _const(keyword)
            if code not in CAMPAIGN_CODES:
                bad.append(f"{where} gives no code from CAMPAIGN_CODES ({code!r})")
        elif keyword is not None:
            if not _stable(keyword):
                bad.append(f"{where} gives a code that is not a name or a literal")
        elif cls in GENERIC or "code" not in vars(cls):
            bad.append(f"{where} gives no code= and its class has no code of its own")
    return bad


PURE = sorted(p for folder in ("crdt", "protocol") for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_raise_site_in_the_pure_layers_gives_a_code(path):
    assert raise_sites_without_code(path.read_text(encoding="utf-8"), vars(_module(path))) == []


def test_the_raise_site_check_catches_a_planted_site_without_a_code():
    namespace = vars(_module(ROOT / "crdt" / "campaign.py"))
    planted = ('def f(loc):\n    raise CampaignError(loc, "must be a table")\n'
               'def g():\n    raise CrdtError("something")\n'
               'def h(loc):\n    raise CampaignError(loc, "not_a_table", "must be a table")\n')
    namespace = {**namespace, "CrdtError": CrdtError}
    assert [b.split(":")[0] for b in raise_sites_without_code(planted, namespace)] == ["2", "4"]


def test_every_reason_disclosure_control_gives_has_a_code():
    source = (ROOT / "crdt" / "disclosure.py").read_text(encoding="utf-8")
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    reasons = [_const(c.args[0]) for c in calls if c.func.id == "Reason"]
    assert reasons and set(reasons) == REASON_CODES
    decisions = [c for c in calls if c.func.id == "ReleaseDecision"]
    assert decisions and all(any(k.arg == "reasons" for k in c.keywords) for c in decisions), \
        "a ReleaseDecision is made without its reasons' codes"


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_code_has_words_in_both_languages(lang):
    assert set(codes.CAMPAIGN_KEYS) == CAMPAIGN_CODES
    assert set(codes.REASON_KEYS) == REASON_CODES
    assert set(codes.REFUSAL_KEYS) == set(REFUSALS)
    assert set(codes.AGGREGATE_REASON_KEYS) == set(AGGREGATE_REASONS)
    catalog = i18n.catalog(lang)
    missing = [key for _, key in codes.all_codes() if key not in catalog]
    assert missing == []


GOOD = {
    "id": "c-test", "name": "Test", "level": "CP", "school_year": "2026-2027", "opens": "2026-09-01",
    "closes": "2026-09-30",
    "exercises": [{"id": "ex-a", "name": "A", "subject": "français", "score_kind": "items", "items": 5,
                   "thresholds": [2, 4]},
                  {"id": "ex-b", "name": "B", "subject": "français", "score_kind": "wpm", "max_score": 100}],
}


def _with(path: str, value, base=GOOD):
    """GOOD with one field set (a dotted path; value ... removes it)."""
    import copy

    data = copy.deepcopy(base)
    *head, last = path.split(".")
    target = data
    for piece in head:
        target = target[int(piece)] if piece.isdigit() else target.setdefault(piece, {})
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return data


MISTAKES = {  # code -> a definition that makes it
    "not_a_campaign": [1, 2],
    "not_a_table": _with("policy", 3),
    "unknown_field": _with("colour", "blue"),
    "missing": _with("name", ...),
    "whole_number": _with("exercises.0.items", "five"),
    "between": _with("exercises.0.items", 999),
    "text": _with("name", "  "),
    "too_long": _with("name", "x" * 201),
    "ident": _with("id", "Not An Id"),
    "date": _with("opens", "01/09/2026"),
    "one_of": _with("level", "GS"),
    "max_equals_items": _with("exercises.0.max_score", 4),
    "items_wpm": _with("exercises.1.items", 3),
    "two_thresholds": _with("exercises.0.thresholds", [1]),
    "threshold_order": _with("exercises.0.thresholds", [4, 2]),
    "school_year": _with("school_year", "2026-2028"),
    "closes_before": _with("closes", "2026-08-01"),
    "bool": _with("illustrative", "yes"),
    "no_exercise": _with("exercises", []),
    "too_many_exercises": _with("exercises", [GOOD["exercises"][0]] * 101),
    "duplicate_exercise": _with("exercises.1.id", "ex-a"),
    "policy_below_floor": _with("policy", {"min_cohort": 2}),
    "batch_below_cohort": _with("policy", {"min_cohort": 20, "min_batch": 12}),
}


def _raised(code: str) -> CampaignError:
    if code == "no_such_exercise":
        with pytest.raises(CampaignError) as e:
            parse_campaign(GOOD).exercise("ex-z")
    else:
        with pytest.raises(CampaignError) as e:
            parse_campaign(MISTAKES[code])
    return e.value


@pytest.mark.parametrize("code", sorted(CAMPAIGN_CODES))
def test_each_campaign_mistake_is_said_in_french_and_in_english_with_its_values(code):
    error = _raised(code)
    assert error.code == code
    line = 7 if error.location else None  # a mistake of the whole definition has no line of its own
    said = codes.campaign_words(error, file="c.toml", line=line)
    fr, en = said.to("fr"), said.to("en")
    assert en == (f"c.toml:7: {error}" if line else f"c.toml: {error}")  # what the pure layer wrote, every value in place
    assert fr != en and fr.startswith("c.toml, ligne 7" if line else "c.toml :")
    for name, value in error.params.items():
        if name in codes.SAID_PARAMS:  # a value the node says in words: its French words are there
            value = i18n.translate("fr", codes.SAID_PARAMS[name].format(value))
        assert str(value) in fr, (code, value, fr)
    assert not re.search(r"\{[a-z_]+\}", fr + en)


def test_every_campaign_code_has_a_mistake_in_the_table():
    assert set(MISTAKES) | {"no_such_exercise"} == CAMPAIGN_CODES


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_each_sync_refusal_is_said_in_french(code):
    said = codes.refusal_words(code, REFUSALS[code])
    assert said.to("en") == REFUSALS[code]
    assert said.to("fr") != REFUSALS[code] and said.to("fr")


def test_catalog_placeholders_of_the_codes_match_between_languages():
    fields = lambda text: {f for _, f, _, _ in string.Formatter().parse(text) if f}
    fr, en = i18n.catalog("fr"), i18n.catalog("en")
    for _, key in codes.all_codes():
        assert fields(fr[key]) <= fields(en[key]) | {"n"}, key


def test_the_transports_own_endings_are_said_for_what_they_are():
    """A timeout or a cut connection was said as 'a message that failed a check' (found in review): each ending of
    the transport (federation/transport.py) has its own words, and any other code gets the general ones."""
    source = (pathlib.Path(codes.__file__).parent / "federation" / "transport.py").read_text(encoding="utf-8")
    endings = set(re.findall(r'error_code = [^\n]*"([a-z_]+)"', source))  # what a session's report ends with
    unreachable = {c for call in re.findall(r'raise PeerUnreachable\((.*?)\) from None', source, re.S)
                   for c in re.findall(r'code="([a-z_]+)"', call)}  # a connection that never opened
    assert {"timeout", "handshake_timeout", "connection_broken"} <= endings and "not_preau" in unreachable
    for code in (endings | unreachable) - set(REFUSALS):
        words = codes.refusal_words(code, "english").to("fr")
        assert "erreur du protocole" not in words, (code, words)
    assert "cessé de répondre" in codes.refusal_words("timeout", "x").to("fr")
    assert "erreur du protocole de synchronisation (bad_sync_message)" in codes.refusal_words(
        "bad_sync_message", "x").to("fr")


def test_the_districts_schools_page_says_a_schools_trouble_as_the_schools():
    """The refusal words are a school's view of its district ('la circonscription est occupée'); on the
    district's schools page the same codes are about the school's node, or either side's disk or database."""
    for code in ("busy", "shutting_down", "disk_full", "database_damaged", "handshake_lost"):
        for lang in ("fr", "en"):
            said = codes.refusal_words(code, "x", peer="school").to(lang)
            assert ("circonscription" not in said and "district" not in said), (code, lang, said)
            assert "join --again" not in said and "parent_url" not in said  # a school's remedies, not the district's
    assert "le serveur de l'école était occupé" in codes.refusal_words("busy", "x", peer="school").to("fr")
    assert "la circonscription est occupée" in codes.refusal_words("busy", "x").to("fr")


def test_a_release_waiting_on_an_exercise_names_it_as_the_head_teacher_reads_it():
    """Seen by hand on the release preview: « 1 exercice(s) mis à jour; … sur l'exercice fr-comprendre-phrases ».
    The exercise is said by its name, and the parts are joined the French way (« ; »)."""
    from preau.crdt.disclosure import Reason

    parts = (Reason("released", {"number": 1, "updated": 1}),
             Reason("waiting", {"more": 7, "exercise": "fr-comprendre-phrases", "changed": 3, "min_batch": 10}))
    names = {"fr-comprendre-phrases": "Comprendre des phrases lues par l'enseignant"}
    said = codes.Reasons(parts, names=names).to("fr")
    assert said == ("envoi n° 1 : 1 exercice(s) mis à jour ; en attente : encore 7 élève(s) modifié(s) sur "
                    "l'exercice « Comprendre des phrases lues par l'enseignant », pour que personne ne soit "
                    "reconnaissable d'un envoi à l'autre")
    english = codes.Reasons(parts, names=names).to("en")
    assert "Comprendre des phrases lues par l'enseignant" in english and "fr-comprendre-phrases" not in english
    assert "fr-comprendre-phrases" in codes.Reasons(parts).to("fr")  # no names known (the CLI without them)


async def test_a_network_failure_is_said_by_what_to_check():
    """Refused, no such name, no answer: each reads as what to check, the exception's text kept for the logs."""
    import asyncio
    import socket

    import aiohttp

    from preau.node.demo.demo import free_port
    from preau.node.errors import network_reason

    async def failure(url: str) -> BaseException:
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                await http.get(url)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            return exc
        raise AssertionError(f"{url} answered")

    refused = network_reason(await failure(f"http://127.0.0.1:{free_port()}/"))
    assert refused.key == "msg.net.refused" and "ClientConnectorError" in refused.english
    assert refused.to("fr").startswith("la connexion a été refusée")
    assert network_reason(socket.gaierror(-2, "Name or service not known")).key == "msg.net.no_name"
    assert network_reason(asyncio.TimeoutError()).key == "msg.net.timeout"
    other = network_reason(ValueError("odd"))
    assert other.key == "msg.net.other" and "ValueError: odd" in other.to("fr")
