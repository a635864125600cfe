from __future__ import annotations


from preau.node.records.csvio import write_results_csv


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
