"""Class lists in, results out, as the CSV files schools already exchange.

Pure text functions: names checked and compared as the store and the class-list
import (`records/classlist.py`) need, and every CSV export written through one
writer that neutralises formulas.
"""
from __future__ import annotations

import csv
import io
import unicodedata
from typing import Iterable, Sequence

from preau.node.errors import Words, words
from preau.node.records.classlist import MAX_NAME  # one limit for a pupil typed in and one imported


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
