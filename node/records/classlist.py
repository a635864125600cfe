"""The class lists schools really have: the ONDE pupils extraction and what Excel saves.

Pure text functions. A file is read whatever its encoding (UTF-8, UTF-8 with
a BOM, or Windows-1252, which Excel and ONDE write on French Windows) and its
separator (`;` from French Excel and ONDE, `,` or a tab otherwise). An ONDE
extraction is recognised by its header and its columns are mapped by name:
only the pupil's names and class are read (never the birth date, INE or
address it also holds). A re-import is compared with the class before
anything changes: new pupils, pupils written differently, pupils missing.

Every problem is a catalog key with parameters, so the web and the command
line say it in the reader's language.
"""
from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

MAX_NAME = 100
MAX_PUPILS = 500


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad line: `key` is a catalog message, `params` fill its placeholders."""

    line: int
    key: str
    params: Mapping[str, object] = field(default_factory=dict)


class ClassListError(ValueError):
    """The file cannot be imported as it is; `problems` says where and why. Nothing was imported."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("; ".join(f"line {p.line}: {p.key} {dict(p.params)}" for p in self.problems[:20]))


@dataclass(frozen=True, slots=True)
class ListedPupil:
    line: int
    last_name: str
    first_name: str
    class_label: str = ""
    level: str = ""


@dataclass(frozen=True, slots=True)
class ListedClass:
    label: str
    level: str
    pupils: int


@dataclass(frozen=True, slots=True)
class ClassList:
    """A file read: what it was (`kind` "onde" or "simple"), how it was written, and its pupils."""

    kind: str
    encoding: str
    delimiter: str
    pupils: tuple[ListedPupil, ...]

    @property
    def classes(self) -> tuple[ListedClass, ...]:
        """The classes an ONDE extraction lists, in file order (one empty label for a simple list)."""
        seen: dict[str, list] = {}
        for p in self.pupils:
            entry = seen.setdefault(p.class_label, [p.level, 0])
            entry[1] += 1
        return tuple(ListedClass(label, level, n) for label, (level, n) in seen.items())

    def of_class(self, label: str | None) -> tuple[ListedPupil, ...]:
        """The pupils of one class of the file; `None` for all (a file of one class)."""
        if label is None:
            return self.pupils
        return tuple(p for p in self.pupils if p.class_label == label)


def fold(text: str) -> str:
    """Case, accents and spacing ignored: how a name or a header is recognised."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.replace("’", "'").casefold().split())


def name_key(last: str, first: str) -> tuple[str, str]:
    """How two entries are recognised as the same pupil (case, accents and spacing ignored)."""
    return fold(last), fold(first)


def check_name(value: str, what: str) -> tuple[str, dict] | None:
    """The problem with one name field as (key, params), or None."""
    if not value:
        return "classlist.empty", {"what": what}
    if len(value) > MAX_NAME:
        return "classlist.too_long", {"what": what, "max": MAX_NAME}
    if any(unicodedata.category(c).startswith("C") for c in value):
        return "classlist.control", {"what": what}
    if not any(c.isalpha() for c in value):
        return "classlist.no_letter", {"what": what, "value": value}
    return None


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name): UTF-8 with or without a BOM, else Windows-1252 (Excel "CSV (séparateur: point-virgule)")."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined: ISO-8859-1 reads every byte
        return data.decode("latin-1"), "latin-1"


# ONDE's "Extraction élèves" header, folded; the first column found in each tuple wins.
ONDE_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "usage_name": ("nom d'usage eleve",),
    "last_name": ("nom eleve", "nom de famille eleve", "nom"),
    "first_name": ("prenom eleve", "prenom"),
    "class_label": ("libelle classe", "classe"),
    "level": ("niveau",),
}
_SIMPLE_HEADERS = {("nom", "prenom"), ("last name", "first name"), ("last_name", "first_name")}


def _sniff(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (";", "\t", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ";"


def _onde_map(header: Sequence[str]) -> dict[str, int] | None:
    """Column index per field when `header` is an ONDE (or ONDE-like) header with names and class, else None."""
    folded = [fold(h) for h in header]
    found: dict[str, int] = {}
    for name, candidates in ONDE_COLUMNS.items():
        for c in candidates:
            if c in folded:
                found[name] = folded.index(c)
                break
    if "first_name" in found and "last_name" in found and ("class_label" in found or "level" in found):
        return found
    return None


def read_class_list(data: bytes) -> ClassList:
    """Read a class list or an ONDE extraction; ClassListError lists every bad line (nothing is half-read)."""
    text, encoding = decode(bytes(data))
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise ClassListError([Problem(1, "classlist.no_pupil")])
    delimiter = _sniff(lines[first])
    rows = list(csv.reader(lines, delimiter=delimiter))
    header = [f.strip() for f in rows[first]]
    onde = _onde_map(header)
    problems: list[Problem] = []
    pupils: list[ListedPupil] = []
    start = first + 1
    if onde is None:
        kind = "simple"
        if not (len(header) >= 2 and (fold(header[0]), fold(header[1])) in _SIMPLE_HEADERS):
            start = first
    else:
        kind = "onde"
    seen: dict[tuple[str, str, str], int] = {}
    for index in range(start, len(rows)):
        number = index + 1
        fields = [f.strip() for f in rows[index]]
        while fields and not fields[-1]:
            fields.pop()
        if not fields:
            continue
        if onde is None:
            if len(fields) != 2:
                problems.append(Problem(number, "classlist.columns", {"sep": delimiter, "n": len(fields)}))
                continue
            last, first_name = fields
            label = level = ""
        else:
            def col(name: str) -> str:
                i = onde.get(name)
                return fields[i] if i is not None and i < len(fields) else ""
            last = col("usage_name") or col("last_name")
            first_name = col("first_name")
            label, level = col("class_label"), col("level")
        bad = check_name(last, "last_name") or check_name(first_name, "first_name")
        if bad:
            problems.append(Problem(number, bad[0], bad[1]))
            continue
        key = (*name_key(last, first_name), label)
        if key in seen:
            problems.append(Problem(number, "classlist.duplicate", {"name": f"{first_name} {last}", "other": seen[key]}))
            continue
        seen[key] = number
        pupils.append(ListedPupil(number, last, first_name, label, level))
    if not pupils and not problems:
        problems.append(Problem(1, "classlist.no_pupil"))
    if len(pupils) > MAX_PUPILS:
        problems.append(Problem(len(lines), "classlist.too_many", {"max": MAX_PUPILS}))
    if problems:
        raise ClassListError(problems)
    return ClassList(kind, encoding, delimiter, tuple(pupils))


@dataclass(frozen=True, slots=True)
class Known:
    """A pupil already in the class."""

    id: str
    last_name: str
    first_name: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """What an import would do to a class: nothing changes until it is confirmed."""

    new: tuple[ListedPupil, ...]
    respelled: tuple[tuple[Known, ListedPupil], ...]  # same pupil, written differently in the file
    missing: tuple[Known, ...]  # in the class, not in the file: reported, never removed by an import
    same: int

    @property
    def changes_anything(self) -> bool:
        return bool(self.new or self.respelled)


def compare(known: Iterable[Known], listed: Iterable[ListedPupil]) -> Comparison:
    """Match the file's pupils with the class's by name (case and accents ignored)."""
    by_key = {name_key(k.last_name, k.first_name): k for k in known}
    matched: set[tuple[str, str]] = set()
    new, respelled, same = [], [], 0
    for p in listed:
        key = name_key(p.last_name, p.first_name)
        k = by_key.get(key)
        if k is None:
            if key not in matched:
                new.append(p)
                matched.add(key)
            continue
        matched.add(key)
        if (k.last_name.casefold(), k.first_name.casefold()) != (p.last_name.casefold(), p.first_name.casefold()):
            respelled.append((k, p))
        else:
            same += 1
    missing = tuple(k for key, k in by_key.items() if key not in matched)
    return Comparison(tuple(new), tuple(respelled), missing, same)
