"""Errors of the node layer that a person can meet and fix.

The command line turns a `UserError` into one line on stderr and its exit code;
the web app turns it into the JSON error shape. Anything else that escapes is a
bug and is reported as one, with its traceback, never silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

# Exit codes, shared by the node and the command line so scripts can tell
# failures apart. The numbers follow BSD sysexits where one fits.
EXIT_OK = 0
EXIT_USER = 1  # the person can fix it: bad input, wrong password, unreachable peer
EXIT_USAGE = 2  # argparse's own code for a malformed command line
EXIT_DATA = 65  # an input file is invalid (campaign definition, backup, bundle)
EXIT_NOT_AVAILABLE = 69  # the command exists but this build does not implement it yet
EXIT_BUG = 70  # an unexpected error: a bug in Préau
EXIT_TEMPFAIL = 75  # try again in a moment: another process holds the database
EXIT_NOPERM = 77  # run as the wrong user: the data folder belongs to another (see oplock.check_owner)
EXIT_CONFIG = 78  # the node's settings are invalid


@dataclass(frozen=True, slots=True)
class Words:
    """A message for a person: a catalog key and its parameters, with the English text for logs and scripts.

    The layers below write what happened once, here; the web and the command
    line render it in the person's language with `to(lang)`. A parameter may
    itself be `Words` (for example which field was empty), rendered in the
    same language. Without a key, the English text is all there is.
    """

    english: str
    key: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to(self, lang: str) -> str:
        if self.key is None:
            return self.english
        from preau.node import i18n  # the catalog is read only when someone renders

        params = {k: (v.to(lang) if isinstance(v, Words) else v) for k, v in self.params.items()}
        return i18n.translate(lang, self.key, **params)

    def __str__(self) -> str:
        return self.english


def words(english: str, key: str, **params: Any) -> Words:
    return Words(english, key, params)


class UserError(Exception):
    """A failure the person running Préau can act on; the message says what happened and what to do.

    `message` is English (logs, scripts, tests); `words` renders it in the
    person's language when the raiser gave a catalog key (`UserError(words(...))`).
    """

    exit_code = EXIT_USER
    status = 400  # the HTTP status the web app answers with
    code = "error"  # a stable machine-readable name, for the JSON error shape

    def __init__(self, message: "str | Words", exit_code: int | None = None, *, status: int | None = None,
                 code: str | None = None):
        self.words = message if isinstance(message, Words) else Words(str(message))
        message = self.words.english
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class Busy(UserError):
    """The database stayed locked by another process (a long write, a backup) past the wait."""

    exit_code = EXIT_TEMPFAIL
    status = 503
    code = "busy"

    MESSAGE = ("the node's database is busy: another Préau process is writing to it (a command, the server, "
               "a backup); nothing was changed by this request: try again in a moment")

    @classmethod
    def from_sqlite(cls, exc: BaseException) -> "Busy | None":
        """A Busy for SQLite's "database is locked" / "busy" errors; None for any other error (a bug)."""
        import sqlite3

        text = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return cls(cls.MESSAGE)
        return None


class SettingsError(UserError):
    """A setting has a bad value, an unknown name, or the settings file cannot be read."""

    exit_code = EXIT_CONFIG


class NotFound(UserError):
    status = 404
    code = "not_found"


class Forbidden(UserError):
    status = 403
    code = "forbidden"


class Conflict(UserError):
    status = 409
    code = "conflict"


class InvalidUai(UserError):
    status = 422
    code = "invalid_uai"


def checked_uai(text: str) -> str:
    """The canonical UAI, or an error worded for the person who typed it (web, command line, store alike).

    The rule is `preau.protocol.uai.parse_uai`, the one UAI parser; this only says what is wrong in words.
    """
    from preau.protocol.uai import UaiError, parse_uai

    try:
        return parse_uai(text)
    except UaiError as exc:
        p = exc.params
        if exc.reason == "departement":
            raise InvalidUai(words(
                f"{p['uai']} is not a UAI: its first three digits ({p['prefix']}) are not a département "
                "(001-095 except 020, 620 or 720 for Corsica, 97x/98x overseas)", "uai.departement", **p)) from None
        if exc.reason == "check_letter":
            raise InvalidUai(words(
                f"{p['uai']} is not a valid UAI: the check letter {p['letter']} does not match the digits; "
                "compare each character with the school's official UAI", "uai.check_letter", **p)) from None
        raise InvalidUai(words(
            f"{text!r} is not a UAI: a UAI has 8 characters: 7 digits then a letter, like 0751234J",
            "uai.shape", text=str(text))) from None
