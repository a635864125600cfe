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
EXIT_TEMPFAIL = 75  # try again in a moment: another process holds the database
EXIT_NOPERM = 77  # run as the wrong user: the data folder belongs to another (see oplock.check_owner)
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
