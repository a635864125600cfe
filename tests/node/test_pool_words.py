"""A pool as the command line shows it (`preau pool list`, `preau release`): one language per line, French first."""
from __future__ import annotations

from preau.node.federation.pools import PoolView

MEMBERS = tuple({"uai": f"069000{i}", "name": f"École {i}", "cohort": 4, "node_id": "n"} for i in range(4))


def _failed(**kw) -> PoolView:
    return PoolView("ab" * 16, "2026-cp", "failed", 3, MEMBERS, "only 2 of the 4 schools answered; the pool needs 3",
                    code="too_few_answered", academie="academie-node", params={"answered": 2, "n": 4, "threshold": 3}, **kw)


def test_a_failed_pool_is_said_wholly_in_french():
    line = _failed().line("fr")
    assert "Seules 2 des 4 écoles ont répondu ; il en fallait 3." in line
    assert "contresigné par l'académie academie-node" in line and "4 écoles, seuil 3" in line
    assert "échoué" in line
    for english in ("schools", "threshold", "countersigned", "answered", "failed", "pool "):
        assert english not in line, (english, line)


def test_the_english_line_stays_english():
    line = _failed().line("en")
    assert "Only 2 of the 4 schools answered; the pool needed 3." in line and "countersigned by the académie" in line
    assert "écoles" not in line and "seuil" not in line


def test_a_complete_pool_and_an_academie_refusal_in_french():
    done = PoolView("cd" * 16, "2026-cp", "complete", 3, MEMBERS, survivors=3, pupils=12)
    assert "3 écoles regroupées, 12 élèves" in done.line("fr") and "terminé" in done.line("fr")
    refused = PoolView("ef" * 16, "2026-cp", "failed", 3, MEMBERS, "one pool per campaign", code="academie_refused")
    assert refused.why("fr") == "Refusé par l'académie : one pool per campaign"  # the académie's own text, as sent


def test_a_pool_the_school_left_is_said_in_french_whatever_its_code():
    aborted = PoolView("12" * 16, "2026-cp", "failed", 3, MEMBERS,
                       "the district aborted the pool: only 2 of the 4 schools answered; the pool needs 3", code="pool_aborted")
    assert aborted.why("fr").startswith("La circonscription a arrêté le regroupement") and "district" not in aborted.why("fr")
    odd = PoolView("34" * 16, "2026-cp", "failed", 3, MEMBERS, "member 2 sent two different keys", code="equivocation")
    assert odd.why("fr") == "Préau a quitté ce regroupement parce qu'un de ses messages n'était pas valable (contrôle : equivocation)."
    old = PoolView("56" * 16, "2026-cp", "failed", 3, MEMBERS, "a reason stored before codes")  # no code: as recorded
    assert old.why("fr") == "a reason stored before codes"


def test_the_academies_own_listing_says_countersigned_in_french():
    seen = PoolView("78" * 16, "2026-cp", "countersigned", 3, MEMBERS)
    assert "· contresigné par l'académie" in seen.line("fr") and "· countersigned" in seen.line("en")


def test_the_academies_refusal_is_said_from_its_code_on_the_district_command_line():
    """`preau pool list` at the district: the académie's code and values in the reader's language, not its English."""
    refused = PoolView("9a" * 16, "2026-cp", "failed", 3, MEMBERS, "schools outside this académie's départements (075): "
                       "0690000", code="academie_refused", cause={"code": "outside_academie",
                                                                  "params": {"departements": "075", "schools": "0690000"}})
    assert "· Refusé par l'académie : Écoles hors des départements de cette académie (075) : 0690000." in refused.line("fr")
    assert "outside this" not in refused.line("fr")
    assert "· Refused by the académie: schools outside this académie's départements (075): 0690000" in refused.line("en")


def test_one_function_says_every_pool_refusal_in_french():
    """`refusal_words` is the one lookup of `pool.refusal.*` (the pool list and the refusal at approval used two,
    and the approval's fell back to the protocol's English): a code is said the same wherever it shows, a check
    without words of its own in French naming the check, and words whose values did not come never fail."""
    from preau.node.errors import said
    from preau.node.federation.pools import refusal_words

    listed = PoolView("bc" * 16, "2026-cp", "failed", 3, MEMBERS, "it takes part in one pool per campaign",
                      code="already_sent")
    assert listed.why("fr") == refusal_words("already_sent", "it takes part in one pool per campaign").to("fr") == \
        "L'école a déjà participé à un regroupement pour cette campagne : une seule participation par campagne."
    at_approval = said("msg.pool.refused", why=refusal_words("new_check", "a check this catalog has no words for",
                                                             other="msg.pool.refused_check"))
    assert at_approval.to("fr") == "Regroupement refusé : il n'a pas passé un contrôle de Préau (contrôle : new_check)."
    assert "a check this catalog" not in at_approval.to("fr")
    unvalued = PoolView("de" * 16, "2026-cp", "failed", 3, MEMBERS, "only 2 answered", code="too_few_answered")
    assert unvalued.why("fr") == ("Préau a quitté ce regroupement parce qu'un de ses messages n'était pas valable "
                                  "(contrôle : too_few_answered).")
