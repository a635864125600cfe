"""Events in sentences from their values, never from their English detail (issue 16).

Every event kind the federation logs is said in French from its kind and values
(`params`); no regular expression reads `detail` back; an event logged before
events carried values (NULL params, from an older federation.db) still gets a
sentence; and every `log_event` call in the product passes its values.
"""
from __future__ import annotations

import ast
import pathlib
import re

import pytest

import preau.node
from preau.node import database as base
from preau.node.federation import store as fedstore
from preau.node.federation.store import FedStore
from preau.node.web import event_words
from preau.node.web.event_words import event_lines, event_sentence

CAMPAIGNS = {"2026-test-cp": "Début de CP (test)"}
CP = "2026-test-cp"
NODE_ROOT = pathlib.Path(preau.node.__file__).parent

# kind -> (values as the product logs them, the French sentence)
SAID = {
    "accepted": ({"doc_kind": "campaign", "doc_id": f"campaign:{CP}:ab", "campaign": CP, "version": 3},
                 "Campagne « Début de CP (test) » reçue de la circonscription et vérifiée (version 3)."),
    "campaign_relayed": ({"campaign": CP, "version": 2}, "Campagne « Début de CP (test) » transmise aux écoles (version 2)."),
    "campaign_published": ({"campaign": CP, "version": 1},
                           "Campagne « Début de CP (test) » mise à disposition des écoles (version 1)."),
    "pool_formed": ({"pool": "0a1b2c3d", "campaign": CP, "schools": 3, "threshold": 2},
                    "Un regroupement de petites écoles a été formé pour « Début de CP (test) »."),
    "pool_complete": ({"pool": "0a1b2c3d", "campaign": CP, "schools": 3, "pupils": 31},
                      "Le regroupement de petites écoles pour « Début de CP (test) » est terminé."),
    "pool_approved": ({"pool": "0a1b2c3d", "campaign": CP, "by": "direction"},
                      "La direction a accepté de participer au regroupement de petites écoles pour « Début de CP (test) »."),
    "cohort_declared": ({"campaign": CP, "pupils": 8},
                        "Effectif déclaré pour « Début de CP (test) », pour un regroupement de petites écoles."),
    "pool_proposed": ({"pool": "0a1b2c3d", "campaign": CP, "status": "proposed"},
                      "Un regroupement de petites écoles est proposé pour « Début de CP (test) » : voyez la page de "
                      "l'envoi de cette campagne."),
    "pool_countersigned": ({"pool": "0a1b2c3d", "district": "dddd", "campaign": CP, "schools": 3},
                           "L'académie a contresigné un regroupement de petites écoles pour « Début de CP (test) »."),
    "refused": ({"doc_id": f"release:{CP}:ab", "peer": "abcd", "why": "bad_signature"},
                "Un document reçu a été refusé parce qu'il n'était pas valable ; rien n'a été modifié."),
    "campaign_refused": ({"code": "policy_below_floor", "values": {"setting": "min_cohort", "asked": 3, "minimum": 10}},
                         "La campagne a été refusée : elle demande min_cohort = 3, en dessous du minimum national de 10"),
    "key_rotated": ({"whose": "peer", "old": "aaaa", "new": "bbbb"}, "Un serveur rattaché a renouvelé ses clés."),
    "parent_moved": ({"node_id": "abcd", "address": "https://127.0.0.1:1"},
                     "Le serveur de rattachement a changé d'adresse ; Préau utilise désormais la nouvelle."),
    "clock": ({"doc_id": "x", "signed_at": 2, "now": 1}, "L'horloge d'un des deux ordinateurs semble décalée"),
    "stats_moved": ({"campaign": CP, "keys": 1, "node_id": "abcd"},
                    "Des effectifs ont été rattachés aux nouvelles clés d'une école."),
    "aggregate_held": ({"campaign": CP, "code": "aggregate_held"},
                       "Campagne « Début de CP (test) » : de nouveaux effectifs ne sont pas envoyés à l'académie"),
    "taken_back": ({"doc_id": "release:2026-test-cp:ab", "version": 2},
                   "Le serveur de rattachement détenait une publication faite par ce serveur"),
    "renumbered": ({"doc_id": "release:2026-test-cp:ab", "version": 3, "was": 2},
                   "Une publication approuvée après la restauration portait un numéro que la circonscription"),
    "enrolled": ({"uai": "0751234A", "node_id": "abcd"}, "Une école a rejoint la circonscription."),
    "release_in_pool": ({"campaign": CP, "node_id": "abcd"},
                        "Campagne « Début de CP (test) » : les effectifs envoyés seuls par une école déjà comptée dans "
                        "un regroupement n'ont pas été comptés une seconde fois."),
    "rejoined": ({"uai": "0751234A", "node_id": "abcd"},
                 "Une école déjà rattachée a rejoint la circonscription à nouveau ; l'invitation qu'elle a utilisée "
                 "ne peut plus servir."),
    "invited": ({"invitation": "0a1b2c3d", "uai": "0751234A"}, "Une invitation a été créée pour une école."),
    "invitation_revoked": ({"invitation": "0a1b2c3d"}, "Une invitation a été annulée."),
    "join_code_wrong": ({"invitation": "0a1b2c3d", "uai": "0751234A"}, "Un code d'invitation faux a été essayé"),
    "revoked": ({"uai": "0751234A", "node_id": "abcd", "reason": "stolen"}, "Un serveur a été exclu de la circonscription."),
    "counts_forgotten": ({"uai": "0751234A", "node_id": "abcd", "entries": 1, "reason": "stolen"},
                         "Les effectifs d'un serveur exclu ont été retirés des statistiques."),
    "pool_failed": ({"pool": "0a1b2c3d", "campaign": CP},
                    "Un regroupement de petites écoles n'a pas abouti ; aucun effectif n'en est sorti."),
    "pool_error": ({"pool": "0a1b2c3d"}, "Un message du regroupement de petites écoles n'a pas pu être traité."),
    "pool_round_timeout": ({"pool": "0a1b2c3d", "seconds": 600},
                           "Une étape du regroupement de petites écoles s'est terminée sans toutes les réponses attendues."),
    "pool_refused": ({"pool": "0a1b2c3d", "code": "bad_signature"},
                     "Un message du regroupement de petites écoles a été refusé parce qu'il n'était pas valable."),
    "pool_left": ({"pool": "0a1b2c3d", "code": "x"}, "L'école a quitté un regroupement de petites écoles."),
    "pool_rekeyed": ({"pools": 2}, "Les regroupements de petites écoles en cours continuent après le renouvellement des clés."),
    "academie_pinned": ({"node_id": "abcd"},
                        "Les regroupements de petites écoles demandent désormais la contresignature de l'académie."),
}


def _logged_kinds() -> set[str]:
    """Every event kind a `log_event` call in node/ names, read from the source."""
    kinds = set()
    for path in NODE_ROOT.rglob("*.py"):
        for call in _log_event_calls(path):
            if call.args and isinstance(call.args[0], ast.Constant):
                kinds.add(call.args[0].value)
    return kinds


def _log_event_calls(path: pathlib.Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "log_event"]


def test_every_kind_the_product_logs_is_said_in_french_from_its_values():
    logged = _logged_kinds()
    assert len(logged) >= 25 and logged <= set(SAID), sorted(logged - set(SAID))  # a new kind needs its sentence here
    for kind, (params, french) in SAID.items():
        said = event_sentence(kind, params, "fr", CAMPAIGNS)
        assert said.startswith(french), (kind, said)
        assert said != event_sentence("something_new", params, "fr", CAMPAIGNS), kind
    # the values choose among a kind's sentences
    assert event_sentence("key_rotated", {"whose": "self", "new": "bbbb"}, "fr", CAMPAIGNS) == \
        "Les clés de ce serveur ont été renouvelées."
    assert event_sentence("accepted", {"doc_kind": "campaign", "campaign": CP}, "fr", CAMPAIGNS) == \
        "Campagne « Début de CP (test) » reçue de la circonscription et vérifiée."
    assert event_sentence("campaign_relayed", {"campaign": "another-one", "version": 2}, "fr", CAMPAIGNS) == \
        "Une campagne a été transmise aux écoles."
    assert event_sentence("campaign_refused", {"code": "no_such_code", "values": {}}, "fr", CAMPAIGNS) == \
        "Une campagne reçue a été refusée : elle demandait moins de protection que le minimum national."


def test_every_log_event_call_in_the_product_passes_its_values():
    bare = [f"{path.relative_to(NODE_ROOT)}:{call.lineno}" for path in NODE_ROOT.rglob("*.py")
            for call in _log_event_calls(path) if not call.keywords]
    assert bare == [], f"log_event without values (the pages cannot say it in words): {bare}"


def test_no_regular_expression_reads_the_english_detail_back():
    source = pathlib.Path(event_words.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in (n.names if isinstance(n, ast.Import) else [ast.alias(n.module or "")])}
    assert not imported & {"re", "regex", "fnmatch"}, imported
    assert not re.search(r"\bre\.", source), "event_words must not parse the detail"
    # and behaviourally: a detail naming a known campaign and a version names nothing when the values do not
    line, = event_lines([{"at": 1, "kind": "accepted", "detail": f"campaign campaign:{CP}:ab release 3",
                          "params": {"doc_kind": "campaign"}}], "fr", CAMPAIGNS)
    assert line.sentence == "Une campagne a été reçue de la circonscription et vérifiée.", line.sentence
    assert CP in line.detail


def test_an_event_logged_before_events_carried_values_still_gets_a_sentence(tmp_path):
    path = tmp_path / "federation.db"
    db = base.connect(path)
    before = [m for m in fedstore.MIGRATIONS if m[0] != "event_params"]
    assert len(before) == len(fedstore.MIGRATIONS) - 1
    base.migrate(db, before)
    with db.atomic():
        for kind, detail in [("accepted", f"campaign campaign:{CP}:ab release 3"), ("key_rotated", "this node is now x"),
                             ("campaign_refused", '{"code": "min_cohort", "params": {"asked": 3, "floor": 10}}'),
                             ("pool_formed", f"pool 0a1b2c3d for {CP}: 3 schools, t = 2"), ("something_old", "?")]:
            db.conn.execute("INSERT INTO events(at, kind, detail) VALUES (1, ?, ?)", [kind, detail])
    db.close()
    fed = FedStore(path)  # the event_params migration runs: the old rows keep NULL
    try:
        fed.log_event("pool_formed", "pool 0a1b2c3d for 2026-test-cp: 3 schools, t = 2", pool="0a1b2c3d", campaign=CP,
                      schools=3, threshold=2)
        events = fed.events(10)
    finally:
        fed.close()
    assert [e["params"] for e in events][1:] == [None] * 5 and events[0]["params"]["campaign"] == CP
    said = {(e["kind"], e["params"] is None): line for e, line in zip(events, event_lines(events, "fr", CAMPAIGNS))}
    assert said["pool_formed", False].sentence == "Un regroupement de petites écoles a été formé pour « Début de CP (test) »."
    assert said["pool_formed", True].sentence == "Un regroupement de petites écoles a été formé."
    assert said["accepted", True].sentence == "Un document signé a été reçu et vérifié."  # a campaign or a release
    assert said["key_rotated", True].sentence.startswith("Des clés ont été renouvelées")
    assert said["campaign_refused", True].sentence.startswith("Une campagne reçue a été refusée")
    assert said["something_old", True].sentence == "Événement technique (voir le détail)."
    for (kind, _), line in said.items():
        assert line.detail.startswith(f"{kind}: ")  # the stored detail, kept for support
    assert said["accepted", True].detail == f"accepted: campaign campaign:{CP}:ab release 3"


@pytest.mark.parametrize("stored", ["not json", "[1, 2]", '"text"'])
def test_unreadable_values_are_taken_as_none(tmp_path, stored):
    fed = FedStore(tmp_path / "federation.db")
    try:
        with fed.transaction() as conn:
            conn.execute("INSERT INTO events(at, kind, detail, params) VALUES (1, 'pool_formed', 'x', ?)", [stored])
        event, = fed.events(1)
    finally:
        fed.close()
    assert event["params"] is None
    assert event_lines([event], "fr", CAMPAIGNS)[0].sentence == "Un regroupement de petites écoles a été formé."


def test_a_value_json_cannot_hold_is_stored_as_text_and_the_event_is_kept(tmp_path):
    fed = FedStore(tmp_path / "federation.db")
    try:
        fed.log_event("pool_left", "pool 0a1b2c3d: gone", pool="0a1b2c3d", code=pathlib.PurePosixPath("x/y"))
        event, = fed.events(1)
    finally:
        fed.close()
    assert event["params"] == {"pool": "0a1b2c3d", "code": "x/y"}


def test_a_receipt_a_release_and_an_aggregate_are_each_said_for_what_they_are():
    """Seen by hand on a fresh clone: right after approving its release, the school's « Derniers événements » said
    « Un document signé a été reçu et vérifié. » for the district's receipt, and the district the same for the
    school's release. Each is said for what it is, naming the campaign and the release when known."""
    receipt = event_sentence("accepted", {"doc_kind": "receipts", "doc_id": "receipts:-:ab", "campaign": None,
                                          "version": 1}, "fr", CAMPAIGNS)
    assert receipt == "Accusé de réception de la circonscription : elle a bien reçu les envois de l'école " \
                      "(voir le journal des envois)."
    release = event_sentence("accepted", {"doc_kind": "release", "doc_id": f"release:{CP}:ab", "campaign": CP,
                                          "version": 2}, "fr", CAMPAIGNS)
    assert release == "Envoi n° 2 d'une école pour « Début de CP (test) » reçu et vérifié."
    aggregate = event_sentence("accepted", {"doc_kind": "aggregate", "campaign": CP, "version": 1}, "fr", CAMPAIGNS)
    assert aggregate == "Envoi n° 1 d'une circonscription pour « Début de CP (test) » reçu et vérifié."
    unknown = event_sentence("accepted", {"doc_kind": "release", "campaign": "another-one", "version": 2}, "fr", CAMPAIGNS)
    assert unknown == "Un envoi d'une école a été reçu et vérifié."
