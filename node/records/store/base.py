"""The store's types and helpers, shared by its parts (see store/__init__.py)."""
from __future__ import annotations

import datetime as _dt
import json
import logging
import pathlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from preau.node import keyfiles
from preau.node.errors import said, words
from preau.node.records import vault
from preau.node.records.errors import InvalidInput, SchemaError
from preau.node import datadir


if TYPE_CHECKING:
    from . import Store

log = logging.getLogger("preau.store")

DB_NAME = datadir.RECORDS_DB
NODE_KEY_NAME = datadir.STORAGE_KEY
STATUSES = ("done", "absent", "not_assessed")
_PUPIL_PAD = 512
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD = 10
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
MAX_BLOB = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Pupil:
    id: str
    class_id: str
    last_name: str
    first_name: str


@dataclass(frozen=True, slots=True)
class ClassInfo:
    id: str
    name: str
    level: str
    school_year: str


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    username: str
    role: str
    active: bool
    class_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResultInput:
    """What a teacher enters for one pupil and exercise: item answers (1, 0, None=blank) or words per minute."""

    pupil_id: str
    exercise_id: str
    status: str = "done"
    answers: tuple[int | None, ...] | None = None
    wpm: int | None = None


@dataclass(frozen=True, slots=True)
class Result:
    pupil_id: str
    exercise_id: str
    status: str
    answers: tuple[int | None, ...] | None
    wpm: int | None
    score: int | None
    group: str | None
    updated_at: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: str
    actor: str
    action: str
    target: str
    detail: str


class Session:
    """An unlocked account: holds the keys its credential opened. Never build one by hand."""

    __slots__ = ("_store", "account_id", "username", "role", "_secret", "_school_key", "_class_keys", "_open", "_checked",
                 "_results")

    def __init__(self, store: "Store", account_id: str, username: str, role: str,
                 secret: bytes | None, school_key: bytes | None):
        self._store = store
        self.account_id = account_id
        self.username = username
        self.role = role  # "admin", "teacher" or "recovery"
        self._secret = secret
        self._school_key = school_key
        self._class_keys: dict[str, tuple[int, bytes]] = {}  # class id -> (key version, key)
        self._open = True
        self._checked = False
        # (campaign, pupil) -> (ciphertext, results): skips re-opening a blob this session just wrote or read.
        # No new exposure: the session already holds the keys that open it.
        self._results: dict[tuple[str, str], tuple[bytes, dict]] = {}

    @property
    def is_admin(self) -> bool:
        return self.role in ("admin", "recovery")

    @property
    def actor(self) -> str:
        return "recovery-key" if self.role == "recovery" else f"account:{self.username}"

    def logout(self) -> None:
        self._open = False
        self._secret = self._school_key = None
        self._class_keys.clear()
        self._results.clear()

    def __repr__(self) -> str:
        return f"<Session {self.role} {self.username!r}{'' if self._open else ' closed'}>"


@dataclass(frozen=True)
class LoginAttempt:
    """A login split in three so the slow part can leave the store's thread.

    `derive` is pure computation (Argon2id) touching no database, so a web
    server runs it in a worker thread while its event loop keeps serving;
    `Store.login_attempt` and `Store.finish_login` read and write the database
    on the store's own thread.
    """

    row: dict[str, Any] | None
    salt: bytes
    cost: "vault.Argon2Cost"

    def derive(self, password: str) -> bytes:
        return vault.kek_from_password(str(password), self.salt, self.cost)


class NodeActor:
    """The node itself, acting with nobody logged in: campaigns, counts, node blobs; never pupil data."""

    __slots__ = ("_store",)
    role = "node"
    actor = "node"

    def __init__(self, store: "Store"):
        self._store = store

    def __repr__(self) -> str:
        return "<NodeActor>"


AUDIT_PAD = 256  # audit entries are padded to a multiple of this, so lengths say little


def _audit_keys(school_key: bytes) -> tuple[bytes, bytes]:
    """(secret, public) X25519 keys of the audit log, derived from the school key: no extra wrap to keep."""
    secret = vault.derive(school_key, "audit-key")
    return secret, vault.public_key_of(secret)


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(words(f"a password needs at least {MIN_PASSWORD} characters; a short sentence works well",
                                 "store.password_short", n=MIN_PASSWORD))


def _check_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise InvalidInput(words(
            f"the user name {username!r} must be 2 to 40 lowercase letters, digits, '.', '_' or '-', starting with a "
            "letter or digit", "store.username_shape", v=username))
    return username


def _ad(*parts: str) -> bytes:
    return vault.label(parts[0]) + b"|" + "|".join(parts[1:]).encode()


def _write_key_file(path: pathlib.Path, key: bytes) -> None:
    keyfiles.write_key_file(path, key)


def _read_key_file(path: pathlib.Path) -> bytes:
    try:
        raw = keyfiles.read_key_file(path)
    except FileNotFoundError:
        raise SchemaError(
            said("msg.store.file_missing", path=str(path))
        ) from None
    if len(raw) != vault.KEY_BYTES:
        raise SchemaError(said("msg.store.file_damaged", path=str(path)))
    return raw
