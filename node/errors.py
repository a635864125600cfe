"""Errors of the node layer that a person can meet and fix.

The command line turns a `UserError` into one line on stderr and its exit code;
the web app turns it into the JSON error shape. Anything else that escapes is a
bug and is reported as one, with its traceback, never silently.
"""
from __future__ import annotations

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
EXIT_CONFIG = 78  # the node's settings are invalid


class UserError(Exception):
    """A failure the person running Préau can act on; the message says what happened and what to do."""

    exit_code = EXIT_USER
    status = 400  # the HTTP status the web app answers with
    code = "error"  # a stable machine-readable name, for the JSON error shape

    def __init__(self, message: str, exit_code: int | None = None, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    key: str | None = None  # a catalog key (node/locales) when the message exists in every language
    params: dict = {}

    def localized(self, lang: str) -> str:
        """The message in `lang` when it has a catalog key, else as written (English)."""
        if self.key is None:
            return self.message
        from preau.node.i18n import translate

        return translate(lang, self.key, **self.params)


class Fault(UserError):
    """A fault of the machine rather than of the person's input, said in the catalog's words (French and English).

    One class per fault, each with its exit code (sysexits), its HTTP status and,
    for the sync protocol, the code the peer is told (`preau.protocol.connection.REFUSALS`).
    """

    def __init__(self, key: str, **params: object):
        from preau.node.i18n import translate

        self.key, self.params = key, {k: str(v) for k, v in params.items()}
        super().__init__(translate("en", key, **self.params))


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
