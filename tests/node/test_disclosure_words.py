"""The two reasons of crdt/disclosure.py's newer rules, said to the head teacher in French and in English."""
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.node.codes import reasons_words

from crdt_fixtures import make_campaign

CAMPAIGN = make_campaign()
NAMES = {ex.id: ex.name for ex in CAMPAIGN.exercises}


def test_a_count_that_would_move_by_one_is_said_with_its_group_and_the_exercise_name():
    base = [PupilOutcome(f"p{i}", "fr-mots", ("besoin", "fragile", "seuil2")[i % 3]) for i in range(20)]
    d1 = next_release(base, CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=False)
    later = base + [PupilOutcome("L", "fr-mots", "besoin")] + [PupilOutcome(f"q{i}", "fr-mots", "absent") for i in range(9)]
    words = reasons_words(next_release(later, CAMPAIGN, d1.history, closing=False), NAMES)
    assert words.to("fr") == (
        "en attente sur l'exercice « Comprendre des mots » : le nombre « à besoin » changerait de 1 élève(s) "
        "seulement par rapport à un envoi précédent ; chaque nombre d'un exercice reste le même ou change d'au moins "
        "10 élèves, pour que personne ne soit reconnaissable d'un envoi à l'autre")
    assert words.to("en").startswith('waiting on exercise "Comprendre des mots": the "needs support" count would move '
                                     "by only 1 pupil(s)")


def test_a_release_whose_rows_count_too_few_pupils_says_how_many_of_the_schools():
    outcomes = ([PupilOutcome("p0", "fr-mots", "besoin")] + [PupilOutcome(f"p{i}", "fr-mots", "absent") for i in range(1, 10)]
                + [PupilOutcome(f"p{i}", "fr-phrases", "seuil2") for i in range(1, 10)])
    words = reasons_words(next_release(outcomes, CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=False), NAMES)
    said = words.to("fr")
    assert said.startswith("retenu : les résultats qui pourraient partir maintenant ne concernent que 1 élève(s) "
                           "évalué(s) sur les 10 de l'école")
    assert " ; en attente : encore 1 élève(s) modifié(s) sur l'exercice « Comprendre des phrases »" in said
    assert words.to("en").startswith("withheld: the results that could leave now concern only 1 assessed pupil(s) of "
                                     "the school's 10")
