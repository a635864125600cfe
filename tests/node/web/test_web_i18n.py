"""Both catalogs say the same things, and every message a template or module asks for exists."""
from __future__ import annotations

import pathlib
import re
import string

import pytest

from preau.node.web import i18n

WEB = pathlib.Path(i18n.__file__).resolve().parent
KEY_CALL = re.compile(r"""\bt\(\s*['"]([a-z0-9_.]+[a-z0-9_])['"]""")
KEY_LITERAL = re.compile(r"""['"]((?:nav|login|error|classes|grid|entry|group|profile|chart|admin|lang)\.(?!html\b|js\b)[a-z0-9_]+)['"]""")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_catalogs_have_the_same_keys():
    fr, en = i18n.catalog("fr"), i18n.catalog("en")
    assert set(fr) == set(en), f"only in fr: {set(fr) - set(en)}; only in en: {set(en) - set(fr)}"


def test_catalogs_have_the_same_placeholders():
    fr, en = i18n.catalog("fr"), i18n.catalog("en")
    for key in fr:
        assert _placeholders(fr[key]) == _placeholders(en[key]), key


def test_every_key_used_in_templates_and_code_exists():
    used = set()
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        used |= set(KEY_CALL.findall(text)) | set(KEY_LITERAL.findall(text))
    used |= {f"group.{g}" for g in ("besoin", "fragile", "seuil2", "absent")}
    assert used, "the key scan found nothing: the pattern is broken"
    missing = used - set(i18n.catalog("fr"))
    assert not missing


def test_unknown_key_raises_rather_than_showing_the_key():
    with pytest.raises(KeyError):
        i18n.translate("fr", "no.such.key")


@pytest.mark.parametrize("query,cookie,expected", [
    ("en", None, "en"), (None, "en", "en"), ("fr", "en", "fr"), ("de", "en", "en"), (None, None, "fr"), ("x", "y", "fr"),
])
def test_pick_language(query, cookie, expected):
    assert i18n.pick_language(query, cookie) == expected


def test_french_is_the_default_and_accented():
    assert i18n.DEFAULT_LANGUAGE == "fr"
    assert i18n.translate("fr", "grid.saved") == "enregistré"
