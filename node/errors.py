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
EXIT_IOERR = 74  # the disk refused a write (full, read-only, failing): nothing was changed
EXIT_TEMPFAIL = 75  # try again in a moment: another process holds the database
EXIT_NOPERM = 77  # run as the wrong user: the data folder belongs to another (see oplock.check_owner)
EXIT_CONFIG = 78  # the node's settings are invalid


@dataclass(frozen=True, slots=True)
class Words:
    """A message for a person: a catalog key and its parameters, with the English text for logs and scripts.

    The layers below write what happened once, here; the web and the command
    line render it in the person's language with `to(lang)`. A parameter may
    itself be `Words`, or anything with a `to(lang)` method (a campaign field's
    location, a release's reasons), rendered in the same language. Without a
    key, the English text is all there is.
    """

    english: str
    key: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to(self, lang: str) -> str:
        if self.key is None:
            return self.english
        from preau.node import i18n  # the catalog is read only when someone renders

        params = {k: (v.to(lang) if callable(getattr(v, "to", None)) else v) for k, v in self.params.items()}
        return i18n.translate(lang, self.key, **params)

    def __str__(self) -> str:
        return self.english


def words(english: str, key: str, **params: Any) -> Words:
    return Words(english, key, params)


def said(key: str, /, **params: Any) -> Words:
    """Words from the catalog alone: the English text (logs, scripts, tests) is the catalog's English too."""
    from preau.node import i18n

    english = {k: (v.to("en") if callable(getattr(v, "to", None)) else v) for k, v in params.items()}
    return Words(i18n.translate("en", key, **english), key, params)


def network_reason(exc: BaseException) -> Words:
    """Why a connection to another node failed, in the person's words (the exception's text stays in the English,
    for the logs): "refused" is not "no such name" is not "no answer", and each calls for a different check."""
    import asyncio
    import errno
    import socket

    english = f"{exc.__class__.__name__}: {exc}"
    os_error = getattr(exc, "os_error", None) or (exc if isinstance(exc, OSError) else None)  # aiohttp wraps it
    number = getattr(os_error, "errno", None)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or isinstance(os_error, TimeoutError) \
            or number == errno.ETIMEDOUT:
        key = "msg.net.timeout"
    elif isinstance(os_error, socket.gaierror):
        key = "msg.net.no_name"
    elif isinstance(os_error, ConnectionRefusedError) or number == errno.ECONNREFUSED:
        key = "msg.net.refused"
    elif number in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        key = "msg.net.no_route"
    elif isinstance(os_error, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        key = "msg.net.cut"
    else:
        return Words(english, "msg.net.other", {"detail": english})
    return Words(english, key, {})


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

    def localized(self, lang: str) -> str:
        """The message in `lang` when it has a catalog key, else as written (English)."""
        return self.words.to(lang)


class Fault(UserError):
    """A fault of the machine rather than of the person's input, said in the catalog's words (French and English).

    One class per fault, each with its exit code (sysexits), its HTTP status and,
    for the sync protocol, the code the peer is told (`preau.protocol.connection.REFUSALS`).
    """

    def __init__(self, key: str, **params: object):
        from preau.node.i18n import translate

        params = {k: v if callable(getattr(v, "to", None)) else str(v) for k, v in params.items()}  # Words stay words
        english = {k: (v.to("en") if callable(getattr(v, "to", None)) else v) for k, v in params.items()}
        super().__init__(words(translate("en", key, **english), key, **params))


class DiskFull(Fault):
    """A write failed for lack of space: nothing was changed, and everything works again once space is freed."""

    exit_code = EXIT_IOERR
    status = 507
    code = "disk_full"

    def __init__(self, where: object):
        super().__init__("fault.disk_full", where=where)


class DamagedDatabase(Fault):
    """A database file is damaged or is not a database: say which, and how to restore it."""

    exit_code = EXIT_DATA
    status = 503
    code = "database_damaged"

    def __init__(self, path: object, detail: object = ""):
        self.path = str(path)
        super().__init__("fault.database_damaged", path=path, detail=detail)


class DamagedKeyFile(Fault):
    """A key file fails its checksum, is cut short, or is not text: refused, never read as another key."""

    exit_code = EXIT_DATA
    status = 503
    code = "key_file_damaged"

    def __init__(self, path: object, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"fault.key_file.{reason}", path=path)


class BadRequest(Fault):
    """A request whose body or headers cannot be read (charset, multipart, nested JSON...): the client's mistake."""

    status = 400
    code = "bad_request"

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"fault.request.{reason}")


class TooLarge(Fault):
    """A request body over the node's limit (`max_message_bytes`): most often the wrong file chosen for an import."""

    status = 413
    code = "too_large"

    def __init__(self, limit: int):
        super().__init__("fault.request.too_large", limit=f"{limit / (1 << 20):g}")


class ShuttingDown(Fault):
    exit_code = EXIT_TEMPFAIL
    status = 503
    code = "shutting_down"

    def __init__(self):
        super().__init__("fault.shutting_down")


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
            return cls(said("msg.busy"))
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
