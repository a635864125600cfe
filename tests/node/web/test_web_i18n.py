"""Both catalogs say the same things, and every message a template or module asks for exists."""
from __future__ import annotations

import pathlib
import re
import string

import pytest

from preau.node import i18n

WEB = pathlib.Path(i18n.__file__).resolve().parent
NODE = WEB.parent
# A key is any quoted string that starts with one of the catalog's own prefixes ("store.", "sync."...),
# whatever the call that uses it (t(...), t_(request)(...), translate(...), NavItem(...), EntryError(...)).
PREFIXES = sorted({key.partition(".")[0] for key in i18n.catalog("fr")}, key=len, reverse=True)
KEY_LITERAL = re.compile(r"""(?<![\w.])['"]((?:%s)\.(?!(?:html|js|css|preau)['"])[a-z0-9_.]*[a-z0-9_])['"]"""
                         % "|".join(map(re.escape, PREFIXES)))
# Keys built at run time ('group.' ~ g, f"admin_classes.{action}ed"...): no literal names them.
RUN_TIME = ("group.", "import.enc.", "import.sep.", "cli.", "role.", "peer.", "invitation.", "release.status.", "pool.status.", "pool.refusal.",
            "privacy.policy_", "privacy.refused_campaign.",
            "admin_classes.assigned", "admin_classes.unassigned",
            "fault.key_file.", "fault.request.",  # node/errors.py: one key per reason
            "refusal.", "dwords.kind_", "daudit.action.", "daudit.actor.", "daudit.target.",
            "pool.academie_refusal.",  # node/federation/pools.py: an académie's refusal, one key per code it sends
            "msg.bundle.kind.",  # node/federation/rules.py: one key per document kind
            "msg.settings.expect.",  # node/settings.py: one key per kind of setting
            "msg.sync.failed.",  # node/codes.py: one key per failure code of the sync client
            "academie.",  # i18n.translate_at: a key's variant on an académie's pages, asked for by its base key
            "disclosure_rules.column.",  # node/codes.py COLUMN_KEYS: one key per column a held-back reason names
            "aggregate.reason.")  # node/codes.py AGGREGATE_REASON_KEYS: one key per withheld aggregate's reason


def _sources(*places: pathlib.Path) -> list[pathlib.Path]:
    return [p for place in places for p in (place.rglob("*") if place.is_dir() else [place])
            if p.suffix in (".py", ".html", ".js")]


def _keys_in(paths: list[pathlib.Path]) -> set[str]:
    return {key for path in paths for key in KEY_LITERAL.findall(path.read_text(encoding="utf-8"))}


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
    used = _keys_in(_sources(WEB))
    used |= {f"group.{g}" for g in ("besoin", "fragile", "seuil2", "absent")}
    assert used, "the key scan found nothing: the pattern is broken"
    missing = used - set(i18n.catalog("fr"))
    assert not missing


def test_the_key_scan_sees_every_way_a_key_is_asked_for():
    """Keys asked for other than through t('...'): dropping one from the catalog must fail the test above."""
    used = _keys_in(_sources(WEB))
    for key in ("pupils.erased", "sync.woken", "store.username_taken", "reason.waiting", "what.last_name",
                "error.login_needed", "nav.classes", "entry.bad_pupil", "group.absent"):
        assert key in used, key
    assert not {k for k in used if k.endswith((".html", ".js", ".preau"))}, "file names are not keys"


def test_every_catalog_key_is_used():
    """A key nothing asks for is a message no one will see: delete it from both catalogs."""
    used = _keys_in(_sources(NODE))
    unused = {k for k in i18n.catalog("fr") if k not in used and not k.startswith(RUN_TIME)}
    assert not unused


def test_every_audited_action_has_words_for_the_district_journal():
    """/district/audit says each action in words (daudit.action.<code>): one for every code the store or a page logs."""
    logged = set()
    for path in _sources(pathlib.Path(i18n.__file__).resolve().parent):  # node/ (preau.node), not the tests
        if path.suffix == ".py":
            text = path.read_text(encoding="utf-8")
            logged |= set(re.findall(r'_audit\([^,]+, "([a-z-]+)"', text))
            logged |= set(re.findall(r'await audit\(request, "([a-z-]+)"', text))
    assert {"login", "account-created", "invitation-created", "pool-formed"} <= logged  # the patterns still find them
    for lang in ("fr", "en"):
        missing = sorted(a for a in logged if f"daudit.action.{a}" not in i18n.catalog(lang))
        assert not missing, (lang, missing)


def test_every_academie_variant_has_its_base_key():
    """`academie.<key>` is read only where `<key>` is asked for: a variant whose base key is gone is never seen."""
    for lang in ("fr", "en"):
        cat = i18n.catalog(lang)
        variants = [k for k in cat if k.startswith("academie.")]
        assert len(variants) > 10
        assert not [k for k in variants if k.removeprefix("academie.") not in cat], lang


def test_a_level_variant_wins_where_there_is_one():
    assert i18n.translate_at("fr", "academie", "nav.schools") == "Circonscriptions"
    assert i18n.translate_at("fr", None, "nav.schools") == "Écoles"
    assert i18n.translate_at("fr", "academie", "nav.logout") == i18n.translate("fr", "nav.logout")  # no variant


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


def test_moments_are_written_as_each_language_writes_them():
    import datetime

    ts = datetime.datetime(2026, 9, 14, 8, 5).timestamp()  # local time, as the pages show it
    assert i18n.when(ts, "fr") == "14/09/2026 08:05"
    assert i18n.when(ts, "en") == "2026-09-14 08:05"
    assert i18n.when(None, "fr") == i18n.when(0, "en") == ""


def _pairs(path: pathlib.Path) -> list[tuple[str, object]]:
    import json
    pairs: list[tuple[str, object]] = []
    json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=lambda items: pairs.extend(items) or dict(items))
    return pairs


def test_no_catalog_file_says_a_key_twice():
    """json.loads keeps the last of two equal keys without a word, so the loader cannot see it: this test does."""
    files = sorted((WEB / "locales").glob("*/*.json"))
    assert files
    for path in files:
        keys = [key for key, _ in _pairs(path)]
        assert len(keys) == len(set(keys)), (path, sorted({k for k in keys if keys.count(k) > 1}))


def test_a_key_in_two_files_of_one_language_is_refused(tmp_path, monkeypatch):
    for name in ("a.json", "b.json"):
        (tmp_path / "fr").mkdir(exist_ok=True)
        (tmp_path / "fr" / name).write_text('{"x.same": "un"}', encoding="utf-8")
    monkeypatch.setattr(i18n, "_DIR", tmp_path)
    i18n.catalog.cache_clear()
    try:
        with pytest.raises(KeyError, match="'x.same' is defined twice"):
            i18n.catalog("fr")
    finally:
        i18n.catalog.cache_clear()
