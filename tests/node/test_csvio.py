from __future__ import annotations

import pytest

from preau.node.records.csvio import parse_class_list, write_results_csv
from preau.node.records.errors import CsvImportError


def test_parses_semicolons_commas_bom_header_and_blank_lines():
    assert parse_class_list("\ufeffNom;Prénom\r\nDupont;Léa\r\n\r\nMartin ; Hugo ;\r\n".encode()) == [
        (2, "Dupont", "Léa"), (4, "Martin", "Hugo")]
    assert parse_class_list(b"Dupont,Lea\n\"Le Gall, dit Bob\",Yann\n") == [(1, "Dupont", "Lea"), (2, "Le Gall, dit Bob", "Yann")]


def test_every_bad_line_is_reported_with_its_number():
    data = "Dupont;Léa\nSeul\n;Paul\nA;B;C\n123;Jean\nDUPONT;Lea\n".encode() + b"Caf\xe9;Lou\n" + ("X" * 101 + ";Y\n").encode()
    with pytest.raises(CsvImportError) as err:
        parse_class_list(data)
    assert [(n, str(p)) for n, p in err.value.problems] == [
        (2, "expected 2 columns (nom;prénom), found 1"),
        (3, "the last name is empty"),
        (4, "expected 2 columns (nom;prénom), found 3"),
        (5, "the last name '123' has no letter"),
        (6, "Lea DUPONT is already on line 1"),
        (7, "is not UTF-8 text (save the file as 'CSV UTF-8')"),
        (8, "the last name is longer than 100 characters"),
    ]
    assert str(err.value).startswith("the class list has 7 bad line(s), nothing was imported: line 2: expected 2 columns")
    assert str(err.value).endswith("Fix these lines and import the file again.")


def test_empty_file():
    with pytest.raises(CsvImportError, match="line 1: the file lists no pupil"):
        parse_class_list(b"nom;prenom\n\n")


def test_export_neutralises_formulas():
    text = write_results_csv(["nom", "prénom"], [["=1+1", "@x"], ["Dupont", 3]])
    assert text == "\ufeffnom;prénom\r\n'=1+1;'@x\r\nDupont;3\r\n"


# -- the one writer of every export -------------------------------------------------------------

def test_write_csv_neutralises_formulas_in_every_cell():
    from preau.node.records.csvio import write_csv

    text = write_csv(["exercice", "=cmd|' /C calc'!A0"],
                     [["=HYPERLINK(\"http://x\",\"clic\")", 3], ["  +1+1", -2], ["@SUM(A1)", 1.5], ["\uff1dA1", None],
                      ["ordinaire", 0]])
    assert text.startswith("\ufeff")
    rows = [line.split(";", 1) for line in text.lstrip("\ufeff").split("\r\n") if line]
    assert rows == [["exercice", "'=cmd|' /C calc'!A0"],
                    ['"\'=HYPERLINK(""http://x"",""clic"")"', "3"], ["'  +1+1", "-2"], ["'@SUM(A1)", "1.5"],
                    ["'\uff1dA1", ""], ["ordinaire", "0"]]


def test_no_export_writes_csv_but_through_csvio():
    """One writer for every export: a new one written with csv.writer would skip the formula rule."""
    import pathlib
    import re

    node = pathlib.Path(__file__).resolve().parents[2] / "node"
    writers = [str(p.relative_to(node)) for p in node.rglob("*.py")
               if re.search(r"csv\.(writer|DictWriter)\(", p.read_text(encoding="utf-8"))]
    assert writers == ["records/csvio.py"], writers
