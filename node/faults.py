"""Faults of the machine and unreadable input, turned into the typed errors of `errors.py` wherever they surface.

A full disk, a damaged database or a request whose body cannot be read
used to reach people as "internal error" or "this is a bug in Préau". Here:

- `classify(exc, data_dir)`: the typed error for an exception that is a known
  fault (a full disk from SQLite or the OS, a damaged SQLite file, naming
  which one), or None for a real bug;
- `body_guard`: an aiohttp middleware that reads form bodies and checks
  charsets and JSON nesting before anything else touches them, so a malformed
  body is a 400 with a message, never a traceback;
- `quiet_client_errors()`: aiohttp logs a client's malformed request (an
  over-long header line, say) as an ERROR with a traceback; it becomes one
  INFO line.
"""
from __future__ import annotations

import codecs
import errno
import io
import logging
import os
import pathlib
import re
import sqlite3
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_request import FileField
from multidict import MultiDict, MultiDictProxy

from .errors import BadRequest, DamagedDatabase, DiskFull, TooLarge, UserError, said
from preau.node import datadir

log = logging.getLogger("preau.faults")

DATABASE_FILES = datadir.DATABASES
MAX_JSON_DEPTH = 32
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DAMAGED_WORDS = ("malformed", "not a database", "corrupt", "disk i/o error")


def _sqlite_name(exc: BaseException) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""  # Python 3.11+; the message words otherwise


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    if isinstance(exc, sqlite3.Error):
        return _sqlite_name(exc).startswith("SQLITE_FULL") or "database or disk is full" in str(exc).lower()
    return False


def is_damaged_database(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.DatabaseError) or is_disk_full(exc):
        return False
    name = _sqlite_name(exc)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return True
    text = str(exc).lower()
    return any(word in text for word in _DAMAGED_WORDS)


def damaged_file(data_dir: str | os.PathLike | None) -> pathlib.Path | None:
    """Which of the node's database files is damaged: each is checked with a read-only quick_check."""
    if data_dir is None:
        return None
    for name in DATABASE_FILES:
        path = pathlib.Path(data_dir) / name
        if not path.exists():
            continue
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
            try:
                row = conn.execute("PRAGMA quick_check(1)").fetchone()
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                continue
            return path
        except sqlite3.DatabaseError:
            return path
        if not row or row[0] != "ok":
            return path
    return None


def classify(exc: BaseException, data_dir: str | os.PathLike | None = None) -> UserError | None:
    """The typed error for a known fault, or None when `exc` is something else (a bug, to be reported as one)."""
    if isinstance(exc, UserError):
        return exc
    if is_disk_full(exc):
        return DiskFull(data_dir if data_dir is not None else getattr(exc, "filename", None) or "?")
    if is_damaged_database(exc):
        path = damaged_file(data_dir)
        where = path if path is not None else (pathlib.Path(data_dir) / "*.db" if data_dir else said("msg.fault.a_database_file"))
        return DamagedDatabase(where, str(exc))
    return None


# -- the web: bodies that cannot be read --------------------------------------------------

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in `body` (strings skipped); cheap, no recursion."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0
    depth = deepest = 0
    for m in _BRACKETS.finditer(body):
        tok = m.group()
        if tok in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif tok in (b"]", b"}"):
            depth -= 1
    return deepest


@web.middleware
async def body_guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Read what a request carries before anyone relies on it; a body that cannot be read is a BadRequest.

    Form bodies are parsed here (aiohttp caches the result for the CSRF check and the handler);
    a charset Python does not know, a malformed multipart or urlencoded body, or JSON nested
    deeper than MAX_JSON_DEPTH is refused before the session, the CSRF check or a handler runs.
    """
    # A form type with no body at all is read too: aiohttp's post() would still parse it (and fail) later.
    if request.method not in ("GET", "HEAD", "OPTIONS") and (request.body_exists or request.content_type in FORM_TYPES):
        charset = request.charset
        if charset:
            try:
                codecs.lookup(charset)
            except LookupError:
                raise BadRequest("charset") from None
        ctype = request.content_type
        if ctype in FORM_TYPES:
            try:
                if ctype == "multipart/form-data":
                    await _read_multipart(request)
                else:
                    await request.post()
            except web.HTTPRequestEntityTooLarge:
                raise _too_large(request) from None
            except (web.HTTPException, BadRequest):
                raise
            except (ValueError, LookupError, UnicodeError, AssertionError, KeyError, TypeError, HttpProcessingError,
                    Warning) as exc:  # Warning: aiohttp warns of a bad Content-Disposition (an error under -W error)
                log.info("refused %s %s: unreadable form (%s)", request.method, _route(request), type(exc).__name__)
                raise BadRequest("body") from None
        elif ctype == "application/json" or ctype.endswith("+json"):
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise _too_large(request) from None
            if json_depth(body) > MAX_JSON_DEPTH:
                raise BadRequest("json_depth")
    return await handler(request)


def _too_large(request: web.Request) -> TooLarge:
    """aiohttp's 413 says 'Maximum request body size 1048576 exceeded.' in English, as plain text: the person
    who picked a spreadsheet or a photo instead of the CSV list gets the page in their language instead."""
    limit = getattr(request, "_client_max_size", 1 << 20)
    log.info("refused %s %s: body over %d bytes", request.method, _route(request), limit)
    return TooLarge(limit)


def _route(request: web.Request) -> str:
    """The route's pattern, never the path: paths carry class and pupil ids (as in the access log)."""
    resource = getattr(getattr(request.match_info, "route", None), "resource", None)
    return resource.canonical if resource is not None else "(no route)"


UPLOAD_FIELDS = ("file",)  # the only form field that may carry a file (class lists, campaign definitions)
MAX_FIELDS = 1000


async def _read_multipart(request: web.Request) -> None:
    """aiohttp's `post()` for multipart, stricter: every field but an upload is text, uploads stay in memory.

    aiohttp spools each file part to a temporary file the handler must close, and one that fails half way
    leaves the earlier ones open; a text field sent as a file, or as bytes, reached handlers that expect a
    str. Here a file part is only accepted as `file` (bounded by the app's client_max_size like the rest),
    everything else must decode as text, and the result is put where `post()` caches it.
    """
    out: MultiDict = MultiDict()
    limit = getattr(request, "_client_max_size", 1 << 20)
    total = 0
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None or len(out) >= MAX_FIELDS:
            raise BadRequest("body")
        data = await part.read(decode=True)
        total += len(data)
        if total > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=total)
        if part.filename is not None:
            if part.name not in UPLOAD_FIELDS:
                raise BadRequest("body")
            out.add(part.name, FileField(part.name, part.filename, io.BytesIO(bytes(data)),
                                         part.headers.get("Content-Type", "application/octet-stream"), part.headers))
        else:
            out.add(part.name, bytes(data).decode(part.get_charset(default="utf-8")))
    request._post = MultiDictProxy(out)  # where aiohttp's post() caches its result: later calls return this


# -- aiohttp's own log of a client's malformed request ---------------------------------------

class ClientErrorLogFilter(logging.Filter):
    """aiohttp answers a malformed request (an over-long header, a bad request line) with a 400 itself and
    logs it as an ERROR with a traceback: a client's mistake becomes one INFO line without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "refused a malformed request from %s: %s", (remote, exc.message or type(exc).__name__)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_errors() -> None:
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientErrorLogFilter) for f in logger.filters):
        logger.addFilter(ClientErrorLogFilter())

