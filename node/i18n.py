"""Message catalogs of the web and the command line: French first, English as a switch.

Every string a person sees goes through `translate`, so a page can never show
half a language. A missing key raises instead of showing the key: the template
tests then catch it before a teacher does. Each language's catalog is the union
of `locales/<lang>/*.json`, one file per part of the product, so parts can be
written side by side; a key defined in two files is refused.
"""
from __future__ import annotations

import datetime
import json
import pathlib
from functools import lru_cache
from typing import Mapping

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
LANG_COOKIE = "lang"
_DIR = pathlib.Path(__file__).resolve().parent / "locales"


@lru_cache(maxsize=None)
def catalog(lang: str) -> Mapping[str, str]:
    """The messages of one language, read once from every `locales/<lang>/*.json`."""
    if lang not in LANGUAGES:
        raise KeyError(f"no catalog for language {lang!r}; known: {', '.join(LANGUAGES)}")
    merged: dict[str, str] = {}
    for path in sorted((_DIR / lang).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, value in data.items():
            if key.startswith("_"):
                continue
            if key in merged:
                raise KeyError(f"message key {key!r} is defined twice in the {lang} catalog ({path.name})")
            merged[key] = value
    return merged


def translate(lang: str, key: str, /, **params: object) -> str:
    """The message `key` in `lang`, with `{name}` placeholders filled from params."""
    text = catalog(lang)[key]
    return text.format(**params) if params else text


def translate_at(lang: str, level: str | None, key: str, /, **params: object) -> str:
    """`translate`, preferring the key's variant for this level (`<level>.<key>`) where the catalog has one.

    An académie runs the district's pages: its members are districts, so "Écoles" there reads
    "Circonscriptions" (`academie.nav.schools`); a key with no variant reads as everywhere else."""
    if level is not None and f"{level}.{key}" in catalog(lang):
        key = f"{level}.{key}"
    return translate(lang, key, **params)


def pick_language(query_value: str | None, cookie_value: str | None) -> str:
    """`?lang=` wins over the cookie; anything unknown falls back to French."""
    for value in (query_value, cookie_value):
        if value in LANGUAGES:
            return value  # type: ignore[return-value]
    return DEFAULT_LANGUAGE


def when(ts: float | None, lang: str) -> str:
    """A moment in the server's local time, written as people of `lang` write it; "" for none."""
    if not ts:
        return ""
    d = datetime.datetime.fromtimestamp(ts).astimezone()
    return d.strftime("%d/%m/%Y %H:%M") if lang == "fr" else d.strftime("%Y-%m-%d %H:%M")
