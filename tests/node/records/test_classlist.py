"""Class lists as schools have them: ONDE extractions and Excel CSV files (tests/data/), and re-imports."""
from __future__ import annotations

import pathlib

import pytest
from hypothesis import given, settings, strategies as st

from preau.node.records.classlist import (ClassListError, Known, compare, decode, fold, read_class_list)

DATA = pathlib.Path(__file__).resolve().parents[2] / "data"


def _names(cl) -> list[tuple[str, str]]:
    return [(p.last_name, p.first_name) for p in cl.pupils]


def test_the_onde_extraction_is_recognised_and_its_classes_listed():
    cl = read_class_list((DATA / "onde-extraction-eleves.csv").read_bytes())
    assert (cl.kind, cl.encoding, cl.delimiter) == ("onde", "cp1252", ";")
    assert [(c.label, c.level, c.pupils) for c in cl.classes] == [
        ("CP - Mme Lefèvre", "CP", 24), ("CP - M. Ndiaye", "CP", 23), ("CE1 - Mme Aubert", "CE1", 22)]
    cp_b = cl.of_class("CP - M. Ndiaye")
    assert len(cp_b) == 23 and {p.level for p in cp_b} == {"CP"}
    # only names and class are read: no birth date, INE or address reaches the pupil
    text = repr(cl.pupils)
    assert "/20" not in text and "FRANCE" not in text and "rue" not in text


def test_onde_usage_name_wins_over_the_birth_name():
    data = ("Nom élève;Nom d'usage élève;Prénom élève;Date naissance;Niveau;Libellé classe\r\n"
            "DUPONT;MARTIN;Lucie;01/02/2020;CP;CP A\r\nBERNARD;;Noah;03/04/2020;CP;CP A\r\n").encode("cp1252")
    assert _names(read_class_list(data)) == [("MARTIN", "Lucie"), ("BERNARD", "Noah")]


@pytest.mark.parametrize("name,encoding,delimiter", [
    ("classe-cp-excel-windows-1252.csv", "cp1252", ";"),
    ("classe-cp-excel-utf8-bom.csv", "utf-8-sig", ","),
])
def test_excel_files_read_the_same_whatever_the_encoding_and_separator(name, encoding, delimiter):
    cl = read_class_list((DATA / name).read_bytes())
    assert (cl.kind, cl.encoding, cl.delimiter) == ("simple", encoding, delimiter)
    assert len(cl.pupils) == 25
    assert ("N'Diaye", "Aïssata") in _names(cl) and ("Lefèvre", "Chloé") in _names(cl)
    assert cl.pupils[0].line == 2  # the header line is not a pupil


def test_decode_prefers_utf8_and_falls_back_to_windows_1252():
    assert decode("Inès".encode("utf-8")) == ("Inès", "utf-8")
    assert decode("Inès".encode("cp1252")) == ("Inès", "cp1252")
    assert decode(b"\xef\xbb\xbfZo\xc3\xa9") == ("Zoé", "utf-8-sig")
    assert decode(b"\x81")[1] == "latin-1"  # a byte cp1252 leaves undefined still reads


def test_every_bad_line_is_reported_and_nothing_read():
    data = "nom;prénom\nMartin;Lucie\nBernard\nMartin;Lucie\n;Paul\n1234;Léo\n".encode("utf-8")
    with pytest.raises(ClassListError) as exc:
        read_class_list(data)
    assert [(p.line, p.key) for p in exc.value.problems] == [
        (3, "classlist.columns"), (4, "classlist.duplicate"), (5, "classlist.empty"), (6, "classlist.no_letter")]
    assert exc.value.problems[1].params == {"name": "Lucie Martin", "other": 2}


def test_an_empty_file_says_so():
    with pytest.raises(ClassListError) as exc:
        read_class_list(b"\r\n  \r\n")
    assert [p.key for p in exc.value.problems] == ["classlist.no_pupil"]


def test_a_reimport_adds_two_reports_one_missing_and_one_respelled():
    first = read_class_list((DATA / "classe-cp-excel-windows-1252.csv").read_bytes())
    known = [Known(f"id{i}", p.last_name, p.first_name) for i, p in enumerate(first.pupils)]
    later = read_class_list((DATA / "classe-cp-janvier-excel-windows-1252.csv").read_bytes())
    c = compare(known, later.pupils)
    assert [(p.last_name, p.first_name) for p in c.new] == [("Benali", "Yasmine"), ("Schmitt", "Élise")]
    assert [(k.first_name, p.first_name) for k, p in c.respelled] == [("Ines", "Inès")]
    assert [(k.last_name, k.first_name) for k in c.missing] == [("Roux", "Arthur")]
    assert c.same == 23 and c.changes_anything


def test_the_same_list_again_changes_nothing():
    cl = read_class_list((DATA / "classe-cp-excel-utf8-bom.csv").read_bytes())
    known = [Known(str(i), p.last_name.upper(), p.first_name) for i, p in enumerate(cl.pupils)]
    c = compare(known, cl.pupils)  # upper-case last names (as ONDE writes them) are the same pupils
    assert (c.new, c.respelled, c.missing, c.same) == ((), (), (), 25) and not c.changes_anything


def test_fold_ignores_case_accents_and_spacing():
    assert fold("  Éléonore  N’Diaye ") == fold("eleonore n'diaye")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_a_list_or_a_class_list_error(data):
    try:
        cl = read_class_list(data)
    except ClassListError as exc:
        assert exc.problems
    else:
        assert cl.pupils
