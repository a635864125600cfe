"""Class lists in, results out, as the CSV files schools already exchange.

Pure text functions: the store decides who may call them and encrypts what
comes out of `parse_class_list`.
"""
from __future__ import annotations

import csv
import io
import unicodedata
from typing import Iterable, Sequence

from preau.node.errors import Words, words
from preau.node.records.classlist import MAX_NAME, MAX_PUPILS  # one limit for a pupil typed in and one imported
from preau.node.records.errors import CsvImportError
_HEADER_WORDS = {("nom", "prenom"), ("last name", "first name"), ("last_name", "first_name")}


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).strip().lower()


_WHAT = {"last name": "what.last_name", "first name": "what.first_name", "class name": "what.class_name"}


def check_name(value: str, what: str) -> Words | None:
    """The problem with one name field, or None; shared with the store's add/rename checks."""
    field = words(what, _WHAT[what])
    if not value:
        return words(f"the {what} is empty", "store.empty", what=field)
    if len(value) > MAX_NAME:
        return words(f"the {what} is longer than {MAX_NAME} characters", "store.too_long", what=field, n=MAX_NAME)
    if any(unicodedata.category(c).startswith("C") for c in value):
        return words(f"the {what} contains a control character", "store.control", what=field)
    if not any(c.isalpha() for c in value):
        return words(f"the {what} {value!r} has no letter", "store.no_letter", what=field, v=value)
    return None


def name_key(last: str, first: str) -> tuple[str, str]:
    """How two entries are recognised as the same pupil (case and accents ignored)."""
    return _fold(last), _fold(first)


def parse_class_list(data: bytes) -> list[tuple[int, str, str]]:
    """(line number, last name, first name) per pupil, in file order; CsvImportError lists every bad line."""
    problems: list[tuple[int, str]] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            problems.append((number, words("is not UTF-8 text (save the file as 'CSV UTF-8')", "store.not_utf8")))
            lines.append("")
    first_text = next((ln for ln in lines if ln.strip()), "")
    delimiter = ";" if ";" in first_text else ("\t" if "\t" in first_text else ",")
    pupils: list[tuple[int, str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    header_done = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row = next(csv.reader([line.rstrip("\r")], delimiter=delimiter))
        while row and not row[-1].strip():
            row.pop()
        fields = [f.strip() for f in row]
        if not header_done:
            header_done = True
            if len(fields) == 2 and (_fold(fields[0]), _fold(fields[1])) in _HEADER_WORDS:
                continue
        if len(fields) != 2:
            problems.append((number, words(f"expected 2 columns (nom{delimiter}prénom), found {len(fields)}", "store.columns",
                                           n=len(fields))))
            continue
        last, first = fields
        bad = check_name(last, "last name") or check_name(first, "first name")
        if bad:
            problems.append((number, bad))
            continue
        key = name_key(last, first)
        if key in seen:
            problems.append((number, words(f"{first} {last} is already on line {seen[key]}", "store.dup_line",
                                           v=f"{first} {last}", n=seen[key])))
            continue
        seen[key] = number
        pupils.append((number, last, first))
    if not pupils and not problems:
        problems.append((1, words("the file lists no pupil (one pupil per line: nom;prénom)", "store.no_pupil")))
    if len(pupils) > MAX_PUPILS:
        problems.append((len(lines), words(f"the file lists more than {MAX_PUPILS} pupils; split it by class", "store.too_many",
                                            n=MAX_PUPILS)))
    if problems:
        raise CsvImportError(sorted(problems))
    return pupils


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(value: object) -> object:
    """A cell a spreadsheet will not run: text that starts like a formula ('=HYPERLINK(...)', '+1', '@SUM',
    a tab or a line break, or their full-width forms, leading spaces ignored) gets a leading apostrophe.
    Numbers stay numbers (they are never formulas)."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.lstrip(" ")[:1] in FORMULA_STARTS else text


_cell = neutralise


def write_csv(header: Sequence[object], rows: Iterable[Sequence[object]], *, delimiter: str = ";",
              bom: bool = True, lineterminator: str = "\r\n") -> str:
    """The one CSV writer of every export (class results, district statistics, `preau stats --format csv`).

    Every cell goes through `neutralise`, so a name that came from a campaign file or a school cannot
    become a formula in the spreadsheet that opens the file. Semicolons and a BOM by default: what French
    spreadsheet software opens cleanly.
    """
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=lineterminator)
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
    return ("\ufeff" if bom else "") + out.getvalue()


def write_results_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Semicolon-separated with a BOM, which is what French spreadsheet software opens cleanly."""
    return write_csv(header, rows)
