"""Messages from the layers below (written in English for the command line) in the person's language.

The store's errors say what happened and what to do, and disclosure control
says why a release is held back; the web pages show them to staff, so the
common ones are matched here and rendered from the catalog. A message with no
match is shown as it is: never hidden.
"""
from __future__ import annotations

import re

from preau.node import i18n

_NAMES = {"last name": "what.last_name", "first name": "what.first_name", "class name": "what.class_name"}
_WHAT = r"(last name|first name|class name)"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), k) for p, k in (
    (r"^is not UTF-8 text", "store.not_utf8"),
    (r"^expected 2 columns \(nom.prénom\), found (?P<n>\d+)$", "store.columns"),
    (rf"^the {_WHAT} is empty$", "store.empty"),
    (rf"^the {_WHAT} is longer than (?P<n>\d+) characters$", "store.too_long"),
    (rf"^the {_WHAT} contains a control character$", "store.control"),
    (rf"^the {_WHAT} '(?P<v>.*)' has no letter$", "store.no_letter"),
    (r"^(?P<v>.+) is already on line (?P<n>\d+)$", "store.dup_line"),
    (r"^the file lists no pupil", "store.no_pupil"),
    (r"^the file lists more than (?P<n>\d+) pupils", "store.too_many"),
    (r"^(?P<v>.+) is already in (this|that) class$", "store.in_class"),
    (r"^a password needs at least (?P<n>\d+) characters", "store.password_short"),
    (r"^the user name '(?P<v>.*)' must be ", "store.username_shape"),
    (r"^the user name '(?P<v>.*)' is taken", "store.username_taken"),
    (r"^a class named '(?P<v>.*)' exists already", "store.class_taken"),
    (r"^the school year '(?P<v>.*)' must be ", "store.school_year"),
    (r"^you cannot disable your own account", "store.disable_self"),
    (r"^this is the last head teacher account", "store.last_head"),
    (r"^the account '(?P<v>.*)' is disabled", "store.account_disabled"),
    (r"^no account named '(?P<v>.*)'$", "store.no_account"),
))


_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), k) for p, k in (
    (r"^withheld: small cohort \((\d+) assessed pupils?; campaign \S+ needs at least (\d+) .*\)$", "reason.small_cohort"),
    (r"^release (\d+): (\d+) exercises? updated", "reason.updated"),
    (r"^nothing changed since release (\d+)$", "reason.unchanged"),
    (r"^no results entered yet$", "reason.no_results"),
    (r"^waiting for (\d+) more changed pupils? on (\S+) \((\d+) changed", "reason.waiting"),
))


def person_words(message: str, lang: str) -> str:
    """`message` from the store or the class-list parser, in `lang` when it is a known one."""
    for pattern, key in _PATTERNS:
        m = pattern.match(message)
        if m:
            groups = m.groupdict()
            what = next((g for g in m.groups() if g in _NAMES), None)
            params = {"n": groups.get("n") or "", "v": groups.get("v") or "",
                      "what": i18n.translate(lang, _NAMES[what]) if what else ""}
            return i18n.translate(lang, key, **params)
    return message


def reason_words(reason: str, lang: str) -> str:
    """Disclosure control's reason (written in English by the pure library) in `lang` when it is a known one."""
    for pattern, key in _REASONS:
        m = pattern.match(reason)
        if m:
            return i18n.translate(lang, key, a=m.group(1), b=m.group(2) if m.lastindex and m.lastindex >= 2 else "")
    return reason
