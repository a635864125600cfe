"""Reading a campaign definition from a TOML file, with mistakes reported at their line.

`preau.crdt.campaign.parse_campaign` names the field at fault (for example
`exercises[3].thresholds`); the person editing the file also wants the line,
so this module maps that location back to the text it came from.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from preau.crdt.campaign import Campaign, parse_campaign
from preau.crdt.errors import CampaignError
from .codes import campaign_words
from .errors import EXIT_DATA, UserError, said, words

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*|\"[^\"]+\"|'[^']+')\s*=")


def _unquote(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


def location_lines(text: str) -> dict[str, int]:
    """Map each location parse_campaign may name ('name', 'policy', 'exercises[2].items') to its line."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        m = _HEADER.match(line)
        if m:
            name = _unquote(m.group(2))
            if m.group(1) == "[[":
                index = counts.get(name, 0)
                counts[name] = index + 1
                lines.setdefault(name, number)
                table = f"{name}[{index}]"
            else:
                table = name
            lines.setdefault(table, number)
            continue
        m = _KEY.match(line)
        if m:
            key = _unquote(m.group(1))
            lines.setdefault(f"{table}.{key}" if table else key, number)
    return lines


def line_of(text: str, location: str) -> int | None:
    """The line of a location, or of the nearest enclosing one that the file spells out."""
    lines = location_lines(text)
    loc = location
    while loc:
        if loc in lines:
            return lines[loc]
        stripped = re.sub(r"\[\d+\]$", "", loc)
        if stripped != loc:
            loc = stripped
            continue
        loc = loc.rpartition(".")[0]
    return None


def resolve_campaign_path(text: str | Path) -> Path:
    """A path as given, or, when no such file exists, the bundled sample of that name ('debut-cp')."""
    path = Path(text)
    if not path.exists():
        for sample in sample_campaign_paths():
            if str(text) in (sample.stem, sample.name):
                return sample
    return path


def load_campaign_file(path: str | Path) -> Campaign:
    """Read and validate a campaign definition; any mistake is a UserError of the form 'FILE:LINE: where: what'
    (in English; its `words` say it in the person's language)."""
    path = resolve_campaign_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        samples = ", ".join(p.stem for p in sample_campaign_paths())
        raise UserError(
            said("msg.campaign.no_file", path=str(path), samples=samples),
            EXIT_DATA,
        ) from None
    except IsADirectoryError:
        raise UserError(said("msg.campaign.folder", path=str(path)), EXIT_DATA) from None
    except OSError as e:
        raise UserError(said("msg.campaign.unreadable", path=str(path), detail=str(e.strerror or e)), EXIT_DATA) from None
    return parse_campaign_bytes(raw, str(path))


def parse_campaign_bytes(raw: bytes, name: str, *, encoding: str = "utf-8") -> Campaign:
    """A definition's bytes, checked; any mistake is a UserError naming `name` (and the line when known).

    The web upload passes encoding="utf-8-sig": a file saved by a spreadsheet or Notepad may start with a BOM.
    """
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise UserError(words(f"{name} is not UTF-8 text; save it as UTF-8 and retry", "dwords.not_utf8", file=name),
                        EXIT_DATA) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(words(f"{name} is not valid TOML: {e}", "dwords.not_toml", file=name, detail=str(e)),
                        EXIT_DATA) from None
    try:
        return parse_campaign(data)
    except CampaignError as e:
        raise UserError(campaign_words(e, file=name, line=line_of(text, e.location)), EXIT_DATA) from None


def sample_campaign_paths() -> list[Path]:
    """The sample definitions shipped with Préau (node/campaigns/*.toml), sorted by name."""
    from importlib.resources import files

    folder = Path(str(files("preau.node") / "campaigns"))
    return sorted(folder.glob("*.toml"))
