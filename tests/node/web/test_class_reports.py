"""What teachers use results for (class_reports): support groups, the class x exercise table, parents' sheets.

On the real app with a real encrypted store: results are typed through the grid's own save route, then each
page is read as a teacher, a head teacher, and a teacher of another class (refused)."""
from __future__ import annotations

import html
import re

import pytest

from node_fixtures import build_school, campaign as fixture_campaign, login
from preau.node.app import create_app
from preau.node.web.class_reports import colour_table, parent_sheet, support_groups
from preau.node.web.grid import RowEntry
from web_helpers import csrf_of

CP = fixture_campaign()  # fr-mots: 5 items, thresholds (2, 4); fr-lire-texte: words per minute, thresholds (20, 40)


def _entries():
    return {
        "fr-mots": {"p1": RowEntry("p1", items=(1, 0, 0, 0, 0), score=1),  # besoin
                    "p2": RowEntry("p2", items=(1, 1, 1, 0, 0), score=3),  # fragile
                    "p3": RowEntry("p3", items=(1, 1, 1, 1, 1), score=5)},  # seuil2
        "fr-lire-texte": {"p1": RowEntry("p1", score=10),  # besoin
                          "p2": RowEntry("p2", absent=True)},
    }


PUPILS = [("p1", "Lucie Martin"), ("p2", "Noah Bernard"), ("p3", "Zoé Roux"), ("p4", "Adam Petit")]


def test_support_groups_list_each_pupil_in_need_across_the_domain_and_per_exercise():
    domains, per_exercise = support_groups(CP, PUPILS, _entries())
    (french,) = domains
    assert french.subject == "français"
    assert [(p.name, p.besoin, p.fragile) for p in french.pupils] == [
        ("Lucie Martin", ("Comprendre des mots lus par l'enseignant", "Lire à voix haute un texte"), ()),
        ("Noah Bernard", (), ("Comprendre des mots lus par l'enseignant",)),
    ]  # Zoé (above on all) and Adam (nothing entered) are not in any support group
    assert [(e.exercise.id, e.besoin, e.fragile) for e in per_exercise] == [
        ("fr-mots", ("Lucie Martin",), ("Noah Bernard",)), ("fr-lire-texte", ("Lucie Martin",), ())]


def test_the_colour_table_has_one_cell_per_pupil_and_exercise_and_counts_groups():
    rows, totals = colour_table(CP, PUPILS, _entries(), "fr")
    assert [[(c.group, c.score) for c in r.cells] for r in rows] == [
        [("besoin", "1/5"), ("besoin", "10 mots/min")],
        [("fragile", "3/5"), ("absent", "Absent")],
        [("seuil2", "5/5"), (None, "")],
        [(None, ""), (None, "")],
    ]
    assert [(r.besoin, r.fragile) for r in rows] == [(2, 0), (0, 1), (0, 0), (0, 0)]
    assert totals == ({"besoin": 1, "fragile": 1, "seuil2": 1}, {"besoin": 1, "absent": 1})


def test_the_parents_sheet_says_each_result_in_plain_words():
    sheet = parent_sheet(CP, "p2", "Noah Bernard", _entries(), "fr")
    ((subject, lines),) = sheet.subjects
    assert subject == "Français"
    assert [(l.said.split(" :")[0], l.score) for l in lines] == [
        ("En progrès", "réponses justes : 3 sur 5"), ("Votre enfant était absent le jour de cet exercice.", "")]
    said = " ".join(l.said + l.score for l in lines)
    for jargon in ("seuil", "groupe", "fragile", "item", "score", "wpm"):
        assert jargon not in said.lower()


@pytest.fixture
async def school(tmp_path, aiohttp_client):
    built = build_school(tmp_path)
    return await aiohttp_client(create_app(built.settings)), built.ids


async def _text(resp) -> str:
    return html.unescape(await resp.text())


async def _enter(client, ids) -> None:
    """mme.a types Lucie "à besoin" on the words, Noah "fragile" on the words and absent for the reading."""
    page = f"/classes/{ids['class_a']}"
    token = await csrf_of(client, page)
    pupils = re.findall(r'href="/classes/[0-9a-f]{16}/pupils/([0-9a-f]{16})">([^<]+)</a>', await _text(await client.get(page)))
    by_name = {name: pid for pid, name in pupils}
    base = f"{page}/campaigns/{ids['campaign']}/exercises"
    for pupil, exercise, cells in ((by_name["Lucie Martin"], "fr-mots", ["1", "0", "0", "0", "0"]),
                                   (by_name["Noah Bernard"], "fr-mots", ["1", "1", "1", "0", "0"]),
                                   (by_name["Noah Bernard"], "fr-lire-texte", ["a"]),
                                   (by_name["Lucie Martin"], "fr-lire-texte", ["45"])):
        resp = await client.post(f"{base}/{exercise}/row", json={"pupil": pupil, "cells": cells},
                                 headers={"X-CSRF-Token": token})
        assert resp.status == 200, await resp.text()
    return by_name


def _pages(ids, pupil):
    c = f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}"
    return [c + "/groups", c + "/table", c + "/parents", f"{c}/parents/{pupil}"]


async def test_the_class_teacher_reads_groups_table_and_sheets(school):
    client, ids = school
    await login(client, "mme.a")
    by_name = await _enter(client, ids)
    class_page = await _text(await client.get(f"/classes/{ids['class_a']}"))
    groups, table, sheets, one = _pages(ids, by_name["Noah Bernard"])
    for link in (groups, table, sheets):
        assert f'href="{link}"' in class_page
    text = await _text(await client.get(groups))
    french = text.split("Français : élèves à aider")[1].split("Exercice par exercice")[0]
    assert "Lucie Martin" in french and "Noah Bernard" in french
    assert french.index("Lucie Martin") < french.index("Noah Bernard")  # Lucie needs help on more exercises
    text = await _text(await client.get(table))
    row = text.split("<th scope=\"row\">Noah Bernard</th>")[1].split("</tr>")[0]
    assert 'class="c-fragile"><span class="code">F</span><span class="sr"> Fragile</span> <span class="score">3/5</span>' in row
    assert 'class="c-absent"><span class="code">Abs</span>' in row
    text = await _text(await client.get(one))
    assert "Les évaluations de Noah Bernard" in text and "Lucie" not in text  # one child's sheet names no other
    assert "En progrès : votre enfant commence" in text and "était absent" in text
    text = await _text(await client.get(sheets))
    assert text.count('class="parent-sheet"') == 2
    english = await _text(await client.get(one + "?lang=en"))
    assert "Noah Bernard's assessments" in english and "Progressing:" in english
    # the pupil page links to the sheet
    assert f'href="{one}"' in await _text(await client.get(f"/classes/{ids['class_a']}/pupils/{by_name['Noah Bernard']}"))


async def test_only_the_class_teacher_and_the_head_teacher_open_them(school):
    client, ids = school
    await login(client, "mme.a")
    by_name = await _enter(client, ids)
    pages = _pages(ids, by_name["Lucie Martin"])
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/classes")})
    await login(client, "m.b")  # the teacher of CP B
    for page in pages:
        resp = await client.get(page)
        text = await _text(resp)
        assert resp.status == 403, page
        assert "Lucie" not in text and "Noah" not in text, page
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/classes")})
    await login(client, "direction")
    for page in pages:
        resp = await client.get(page)
        assert resp.status == 200 and "Lucie Martin" in await _text(resp), page
    # a pupil of another class on this class's sheet address: not found, and not shown
    resp = await client.get(f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/parents/{ids['pupil_b']}")
    assert resp.status == 404 and "Emma" not in await _text(resp)


def test_an_exercise_without_thresholds_puts_nobody_in_a_group_and_says_so():
    import dataclasses

    pending = dataclasses.replace(CP, exercises=tuple(dataclasses.replace(ex, thresholds=None) for ex in CP.exercises))
    domains, per_exercise = support_groups(pending, PUPILS, _entries())
    assert domains[0].pupils == () and all(e.pending and not e.besoin and not e.fragile for e in per_exercise)
    rows, _ = colour_table(pending, PUPILS, _entries(), "fr")
    assert [(c.group, c.score) for c in rows[0].cells] == [(None, "1/5"), (None, "10 mots/min")]
    sheet = parent_sheet(pending, "p1", "Lucie Martin", _entries(), "fr")
    assert [l.said for l in sheet.subjects[0][1]] == [
        "Les repères nationaux qui permettent de lire ce résultat ne sont pas encore publiés."] * 2


def test_support_groups_name_who_is_not_entered_yet_rather_than_nobody():
    domains, per_exercise = support_groups(CP, PUPILS, {"fr-mots": _entries()["fr-mots"]})
    assert [(e.exercise.id, e.missing) for e in per_exercise] == [
        ("fr-mots", ("Adam Petit",)), ("fr-lire-texte", tuple(name for _, name in PUPILS))]
    assert domains[0].entered
    (french,), _ = support_groups(CP, PUPILS, {})
    assert not french.entered


async def test_the_groups_page_says_an_exercise_is_not_entered_yet_not_that_nobody_needs_help(school):
    """Seen on a fresh class: 13 exercises not typed yet each said "À besoin : personne, Fragile : personne"."""
    client, ids = school
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    token = await csrf_of(client, page)
    pupils = re.findall(r'href="/classes/[0-9a-f]{16}/pupils/([0-9a-f]{16})">([^<]+)</a>', await _text(await client.get(page)))
    by_name = {name: pid for pid, name in pupils}
    resp = await client.post(f"{page}/campaigns/{ids['campaign']}/exercises/fr-mots/row",
                             json={"pupil": by_name["Lucie Martin"], "cells": ["1", "0", "0", "0", "0"]},
                             headers={"X-CSRF-Token": token})
    assert resp.status == 200, await resp.text()
    text = await _text(await client.get(_pages(ids, by_name["Lucie Martin"])[0]))
    words, reading = text.split("<h3>")[1:3]
    others = sorted(name for name in by_name if name != "Lucie Martin")
    assert "Lucie Martin" in words and f"Pas encore saisi(s) pour {len(others)} élève(s) : {', '.join(others)}" in words
    assert "Pas encore saisi pour cette classe." in reading and "personne" not in reading


def test_support_groups_keep_the_class_order_among_pupils_with_as_many_needs():
    """Ties keep the class list's order (by last name), as every other list of the page does; sorting the
    "Prénom Nom" strings put "Léo Durand" after "Lucie Martin" (é after u) and mixed first and last names."""
    pupils = [("p1", "Léo Durand"), ("p2", "Emma Leroy"), ("p3", "Lucie Martin"), ("p4", "Jade Simon")]
    besoin = RowEntry("x", items=(1, 0, 0, 0, 0), score=1)
    entries = {"fr-mots": {p: besoin for p, _ in pupils}}
    (french,), _ = support_groups(CP, pupils, entries)
    assert [p.name for p in french.pupils] == ["Léo Durand", "Emma Leroy", "Lucie Martin", "Jade Simon"]
