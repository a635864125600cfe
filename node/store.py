"""The school's records, encrypted at rest, with access checked on every call.

Every public method takes the acting party first: a `Session` from `login` or
`unlock_with_recovery`, or `store.node` for the unattended node. Keys live in
the session, so a path that forgot its check still could not decrypt; the
checks are there so that a teacher gets a clear "not your class" instead.

Key hierarchy (docs/security.md has the picture):
    recovery key --wraps--> school key --wraps--> class keys --encrypt--> pupils, results
    password -Argon2id-> account key --wraps--> account X25519 secret
    account public key <--sealed-- school key (admins) / class keys (assigned teachers)
    node key (file storage.key, no password) --encrypts--> score histograms, node blobs
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import pathlib
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import sqlite_utils

from preau.crdt.campaign import Campaign, Exercise, group_for, parse_campaign
from preau.crdt.disclosure import PupilOutcome
from preau.crdt.errors import CampaignError
from preau.protocol.uai import check_letter

from . import csvio, db as dbmod, vault
from .storage_errors import (
    AccessDenied,
    AuthError,
    Conflict,
    CsvImportError,
    InvalidInput,
    NotFound,
    SchemaError,
    StoreError,
)

log = logging.getLogger("preau.store")

DB_NAME = "preau.db"
NODE_KEY_NAME = "storage.key"
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


def check_uai(uai: str) -> str:
    text = str(uai).strip().upper()
    if not re.fullmatch(r"\d{7}[A-Z]", text):
        raise InvalidInput(f"the school code (UAI) {uai!r} must be 7 digits and a letter, like 0751234J")
    if check_letter(text[:7]) != text[7]:
        raise InvalidInput(f"the school code (UAI) {uai!r} has a wrong check letter; copy it again from the school's papers")
    return text


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters; a short sentence works well")


def _check_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise InvalidInput(
            f"the user name {username!r} must be 2 to 40 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return username


def _ad(*parts: str) -> bytes:
    return vault.label(parts[0]) + b"|" + "|".join(parts[1:]).encode()


def _write_key_file(path: pathlib.Path, key: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _read_key_file(path: pathlib.Path) -> bytes:
    try:
        raw = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        raise SchemaError(
            f"{path} is missing: the node cannot work unattended without it. Restore the data folder from a backup."
        ) from None
    except ValueError:
        raise SchemaError(f"{path} is damaged. Restore the data folder from a backup.") from None
    if len(raw) != vault.KEY_BYTES:
        raise SchemaError(f"{path} is damaged. Restore the data folder from a backup.")
    return raw


class Store:
    """One school's data folder: one connection, writes serialised under a lock, each in one transaction.

    Use it from one thread at a time (the node's event loop, or one worker thread).
    """

    def __init__(self, data_dir: pathlib.Path, db: sqlite_utils.Database, node_key: bytes,
                 cost: vault.Argon2Cost, clock: Callable[[], _dt.datetime]):
        self.data_dir = data_dir
        self.db = db
        self._node_key = node_key
        self._cost = cost
        self._clock = clock
        self._lock = threading.RLock()
        self._campaigns: dict[str, tuple[str, Campaign]] = {}
        self._audit_pk: bytes | None = None
        self._epoch: tuple[int, bytes, bytes] | None = None  # (id, key, sealed key) of this process's audit epoch
        self._wal_to_truncate = False  # a checkpoint that found readers in the way, to retry
        self.node = NodeActor(self)

    # -- opening -----------------------------------------------------------

    @classmethod
    def create(cls, data_dir: str | os.PathLike, *, uai: str, school_name: str, admin_username: str,
               admin_password: str, cost: vault.Argon2Cost = vault.PRODUCTION_COST,
               clock: Callable[[], _dt.datetime] = _utcnow) -> tuple["Store", str]:
        """Set up a new school; returns the store and the recovery key, to be shown once and written down."""
        uai = check_uai(uai)
        if not isinstance(school_name, str) or not school_name.strip():
            raise InvalidInput("the school needs a name")
        _check_username(admin_username)
        _check_password(admin_password)
        data = pathlib.Path(data_dir)
        data.mkdir(parents=True, exist_ok=True)
        if (data / DB_NAME).exists():
            raise Conflict(f"{data / DB_NAME} already exists: this school is already set up. Open it instead.")
        node_key = vault.random_key()
        _write_key_file(data / NODE_KEY_NAME, node_key)
        db = dbmod.connect(data / DB_NAME)
        dbmod.migrate(db)
        store = cls(data, db, node_key, cost, clock)
        school_key = vault.random_key()
        recovery = vault.random_key()
        with store._lock, db.atomic():
            now = store._now()
            db["school"].insert({"id": 1, "uai": uai, "name": school_name.strip(), "created_at": now,
                                 "audit_key": _audit_keys(school_key)[1]})
            db["key_wraps"].insert({"key": "school", "holder": "recovery",
                                    "ct": vault.seal(vault.derive(recovery, "wrap/recovery"), school_key, _ad("school-key"))})
            db["key_wraps"].insert({"key": "pseudonym", "holder": "school",
                                    "ct": vault.seal(vault.derive(school_key, "wrap/pseudonym"), vault.random_key(), _ad("pseudonym-key"))})
            store._insert_account(admin_username, admin_password, "admin", school_key)
            store._audit("setup", "setup", "school", uai)
        return store, vault.format_recovery_key(recovery)

    @classmethod
    def open(cls, data_dir: str | os.PathLike, *, cost: vault.Argon2Cost = vault.PRODUCTION_COST,
             clock: Callable[[], _dt.datetime] = _utcnow) -> "Store":
        """Open with no credential: enough for the node to run unattended, not to read pupils."""
        data = pathlib.Path(data_dir)
        if not (data / DB_NAME).exists():
            raise NotFound(f"no Préau database in {data}; set the school up first or restore a backup there")
        node_key = _read_key_file(data / NODE_KEY_NAME)
        db = dbmod.connect(data / DB_NAME)
        try:
            dbmod.migrate(db)
            if db["school"].count != 1:
                raise SchemaError(f"{data / DB_NAME} has no school: set-up did not finish. Remove the folder and set up again.")
        except BaseException:
            db.close()
            raise
        return cls(data, db, node_key, cost, clock)

    def close(self) -> None:
        with self._lock:
            if self._wal_to_truncate:
                self._truncate_wal()
            self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db_path(self) -> pathlib.Path:
        return self.data_dir / DB_NAME

    def school(self) -> dict[str, str]:
        """The school's UAI and name: public facts, readable without login."""
        row = next(self.db.query("SELECT uai, name FROM school"))
        return dict(row)

    # -- helpers -------------------------------------------------------------

    def _now(self) -> str:
        return self._clock().astimezone(_dt.timezone.utc).isoformat(timespec="seconds")

    def _audit_public_key(self) -> bytes | None:
        """The key audit entries are sealed to; None in a file from before sealed audit logs that no head
        teacher has unlocked since (read each time until then: another process may have set it)."""
        if self._audit_pk is None:
            row = self._row("SELECT audit_key FROM school WHERE id = 1")
            self._audit_pk = row["audit_key"] if row else None
        return self._audit_pk

    def _audit_epoch(self, public_key: bytes) -> tuple[int, bytes]:
        """This process's epoch key for audit entries, sealed to the audit public key in the file.

        Checked at each use: an epoch written in a transaction that rolled back is gone, and then
        a new one is made (one indexed lookup; a public-key seal per entry would cost 50x more)."""
        # The sealed key too, not only the id: a rolled-back insert gives its id back to SQLite, and
        # another process may have taken it for its own epoch since.
        if self._epoch is not None and self.db.execute("SELECT 1 FROM audit_epochs WHERE id = ? AND ct = ?",
                                                       [self._epoch[0], self._epoch[2]]).fetchone():
            return self._epoch[0], self._epoch[1]
        key = vault.random_key()
        sealed = vault.seal_to(public_key, key, "audit-epoch")
        cur = self.db.conn.execute("INSERT INTO audit_epochs (ct) VALUES (?)", [sealed])
        self._epoch = (cur.lastrowid, key, sealed)
        return cur.lastrowid, key

    def _sealed_audit_rows(self, public_key: bytes, rows: Sequence[Sequence[str]]) -> list[tuple[int, bytes]]:
        epoch, key = self._audit_epoch(public_key)
        ad = _ad("audit-entry", str(epoch))
        return [(epoch, vault.seal(key, vault.pad(json.dumps(list(r), ensure_ascii=False).encode(), AUDIT_PAD), ad))
                for r in rows]

    def _audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        self._audit_many(actor, action, [(target, detail)])

    def _audit_many(self, actor: str, action: str, entries: Sequence[tuple[str, str]]) -> None:
        """Append audit entries, sealed: the file shows how many there are, not who did what to whom."""
        now = self._now()
        pk = self._audit_public_key()
        if pk is None:  # an old file until its first head-teacher unlock, which seals these too
            self.db.conn.executemany("INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                                     [(now, actor, action, t, d) for t, d in entries])
            return
        self.db.conn.executemany("INSERT INTO audit_sealed (epoch, ct) VALUES (?, ?)",
                                 self._sealed_audit_rows(pk, [(now, actor, action, t, d) for t, d in entries]))

    def _seal_old_audit(self, school_key: bytes) -> None:
        """At a head-teacher unlock: check the audit key in the file is the school's (someone who can write
        the file could have swapped in their own, to read later entries), give an old file its key, and
        seal its plaintext entries."""
        pk = _audit_keys(school_key)[1]
        # Read from the file, not this process's cache: another process may have written it since.
        stored = self.db.execute("SELECT audit_key FROM school WHERE id = 1").fetchone()[0]
        if stored == pk and not self._row("SELECT 1 AS x FROM audit LIMIT 1"):
            if self._wal_to_truncate:
                self._truncate_wal()
            return
        with self._lock:
            with self.db.atomic():
                stored = self.db.execute("SELECT audit_key FROM school WHERE id = 1").fetchone()[0]
                swapped = stored is not None and stored != pk
                if swapped:
                    log.warning("the audit key in %s was not this school's; it is restored (entries sealed to "
                                "the other key since then cannot be read)", self.db_path)
                self.db.execute("UPDATE school SET audit_key = ? WHERE id = 1", [pk])
                self._audit_pk, self._epoch = pk, None
                rows = self.db.execute("SELECT at, actor, action, target, detail FROM audit ORDER BY id").fetchall()
                self.db.conn.executemany("INSERT INTO audit_sealed (epoch, ct) VALUES (?, ?)",
                                         self._sealed_audit_rows(pk, rows))
                self.db.execute("DELETE FROM audit")  # secure_delete: the plaintext is zeroed in the file
                if swapped:
                    self._audit("store", "audit-key-restored", "school", "the audit key in the file had been replaced")
            if rows:
                self._truncate_wal()

    def _truncate_wal(self) -> bool:
        """Checkpoint the WAL into the database and empty it, so zeroed (secure_delete) pages replace the
        old ones in both files. Another connection reading (the running node, say) blocks that: retry a
        little, then again at the next unlock and at close, and say so."""
        # TRUNCATE waits for readers through the busy handler: up to one second here, not the 10 s a write
        # waits, so a head teacher's login is never held up for long. Under the lock: the connection's
        # timeout is shared with the store's other threads.
        with self._lock:
            timeout = self.db.execute("PRAGMA busy_timeout").fetchone()[0]
            self.db.execute("PRAGMA busy_timeout = 1000")
            try:
                busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                self.db.execute(f"PRAGMA busy_timeout = {int(timeout)}")
        if not busy:
            self._wal_to_truncate = False
            return True
        self._wal_to_truncate = True
        log.warning("%s: another process is reading, so deleted data stays in the database's journal until "
                    "the next checkpoint (retried at the next head-teacher login and when Préau stops)", self.db_path)
        return False

    def _row(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        return next(self.db.query(sql, params), None)

    def _session(self, actor: Any) -> Session:
        if isinstance(actor, NodeActor):
            raise AccessDenied("this needs a person logged in; the node alone cannot read or change pupil data")
        if not isinstance(actor, Session) or actor._store is not self:
            raise AuthError("not logged in: log in first")
        if not actor._open:
            raise AuthError("this session has ended: log in again")
        if actor.role != "recovery":
            row = self._row("SELECT active, role FROM accounts WHERE id = ?", [actor.account_id])
            if row is None or not row["active"] or row["role"] != actor.role:
                actor.logout()
                raise AuthError("this account was changed or disabled by the head teacher: log in again")
        if not actor._checked:
            self._check_session_keys(actor)
        return actor

    def _check_session_keys(self, s: Session) -> None:
        """A session must hold the keys its role implies; a hand-built one fails here, once."""
        try:
            if s.is_admin:
                self._pseudonym_key(s)
            if s.role != "recovery":
                row = self._row("SELECT public_key FROM accounts WHERE id = ?", [s.account_id])
                if vault.public_key_of(s._secret) != row["public_key"]:
                    raise vault.DecryptError("secret does not match")
        except (vault.DecryptError, TypeError, ValueError) as exc:
            s.logout()
            raise AuthError("this session does not hold this school's keys: log in again") from exc
        s._checked = True

    def _admin(self, actor: Any) -> Session:
        s = self._session(actor)
        if not s.is_admin:
            raise AccessDenied("only the head teacher can do this")
        return s

    def _admin_or_node(self, actor: Any) -> Session | NodeActor:
        if isinstance(actor, NodeActor) and actor._store is self:
            return actor
        return self._admin(actor)

    def _any(self, actor: Any) -> Session | NodeActor:
        if isinstance(actor, NodeActor) and actor._store is self:
            return actor
        return self._session(actor)

    def _class_row(self, class_id: str) -> dict[str, Any]:
        row = self._row("SELECT * FROM classes WHERE id = ?", [class_id])
        if row is None:
            raise NotFound(f"no class with id {class_id!r}")
        return row

    def _class_key(self, s: Session, class_id: str) -> bytes:
        """The class key, after checking (again, every call) that this account may use it."""
        version = self._class_row(class_id)["key_version"]
        if not s.is_admin:
            assigned = self._row("SELECT 1 FROM account_classes WHERE account_id = ? AND class_id = ?", [s.account_id, class_id])
            if assigned is None:
                raise AccessDenied("this class is not yours: ask the head teacher to assign it to you")
        cached = s._class_keys.get(class_id)
        if cached is not None and cached[0] == version:
            return cached[1]  # a key replaced since (a teacher left the class) is opened again below
        try:
            if s.is_admin:
                row = self._row("SELECT ct FROM key_wraps WHERE key = ? AND holder = 'school'", [f"class/{class_id}"])
                key = vault.open_(vault.derive(s._school_key, "wrap/class"), row["ct"], _ad("class-key", class_id))
            else:
                row = self._row("SELECT ct FROM key_wraps WHERE key = ? AND holder = ?", [f"class/{class_id}", f"account/{s.account_id}"])
                if row is None:
                    raise AccessDenied("this class is not yours: ask the head teacher to assign it to you")
                key = vault.open_sealed(s._secret, row["ct"], f"class-key/{class_id}")
        except (vault.DecryptError, TypeError) as exc:
            raise StoreError(f"the key of class {class_id!r} does not open: the database may be damaged; restore a backup") from exc
        s._class_keys[class_id] = (version, key)
        return key

    def _pupil_row(self, pupil_id: str) -> dict[str, Any]:
        row = self._row("SELECT * FROM pupils WHERE id = ?", [pupil_id])
        if row is None:
            raise NotFound(f"no pupil with id {pupil_id!r} (erased, or never added)")
        return row

    # -- accounts ------------------------------------------------------------

    def _insert_account(self, username: str, password: str, role: str, school_key: bytes | None,
                        cost: vault.Argon2Cost | None = None) -> str:
        if self._row("SELECT 1 FROM accounts WHERE username = ?", [username]):
            raise Conflict(f"the user name {username!r} is taken; choose another")
        account_id = secrets.token_hex(8)
        self.db["accounts"].insert({"id": account_id, "username": username, "role": role, "public_key": b"",
                                    "wrapped_secret": b"", "salt": b"", "opslimit": 0, "memlimit": 0,
                                    "active": 1, "created_at": self._now()})
        pk = self._set_credential(account_id, password, cost)
        if role == "admin":
            self.db["key_wraps"].insert({"key": "school", "holder": f"account/{account_id}",
                                         "ct": vault.seal_to(pk, school_key, "school-key")})
        return account_id

    def _set_credential(self, account_id: str, password: str, cost: vault.Argon2Cost | None = None,
                        secret: bytes | None = None) -> bytes:
        """(Re)wrap an account's secret under a new password; a new keypair when `secret` is None."""
        cost = cost or self._cost
        if secret is None:
            secret, public = vault.new_keypair()
        else:
            public = vault.public_key_of(secret)
        salt = vault.random_bytes(vault.SALT_BYTES)
        kek = vault.kek_from_password(password, salt, cost)
        self.db["accounts"].update(account_id, {
            "public_key": public, "salt": salt, "opslimit": cost.opslimit, "memlimit": cost.memlimit,
            "wrapped_secret": vault.seal(kek, secret, _ad("account-secret", account_id)),
        })
        return public

    def login(self, username: str, password: str) -> Session:
        """Unlock an account; one Argon2id run (about 0.1-1 s by design)."""
        attempt = self.login_attempt(username)
        return self.finish_login(attempt, attempt.derive(password))

    def login_attempt(self, username: str) -> "LoginAttempt":
        """Step 1 of a login, on the store's thread: what the password must open (nothing secret)."""
        row = self._row("SELECT * FROM accounts WHERE username = ?", [str(username)])
        if row is None or not row["active"]:
            return LoginAttempt(None, b"\0" * vault.SALT_BYTES, self._cost)  # same work either way
        return LoginAttempt(row, row["salt"], vault.Argon2Cost(row["opslimit"], row["memlimit"]))

    def finish_login(self, attempt: "LoginAttempt", kek: bytes) -> Session:
        """Step 3, on the store's thread again, with the key `attempt.derive(password)` made anywhere."""
        row = attempt.row
        wrong = AuthError("wrong user name or password: check both and try again, or ask the head teacher to reset your password")
        if row is None:
            raise wrong
        try:
            secret = vault.open_(kek, row["wrapped_secret"], _ad("account-secret", row["id"]))
        except vault.DecryptError:
            with self._lock, self.db.atomic():
                self._audit(f"account:{row['username']}", "login-failed", f"account:{row['id']}")
            raise wrong from None
        school_key = None
        if row["role"] == "admin":
            wrap = self._row("SELECT ct FROM key_wraps WHERE key = 'school' AND holder = ?", [f"account/{row['id']}"])
            try:
                school_key = vault.open_sealed(secret, wrap["ct"], "school-key")
            except (vault.DecryptError, TypeError) as exc:
                raise StoreError("this head teacher account has lost its school key: unlock with the recovery key and reset its password") from exc
        if school_key is not None:
            self._seal_old_audit(school_key)
        with self._lock, self.db.atomic():
            self._audit(f"account:{row['username']}", "login", f"account:{row['id']}")
        session = Session(self, row["id"], row["username"], row["role"], secret, school_key)
        session._checked = True
        return session

    def unlock_with_recovery(self, recovery_key: str) -> Session:
        """A head-teacher session from the recovery key written down at set-up."""
        try:
            raw = vault.parse_recovery_key(recovery_key)
        except vault.RecoveryKeyTypo:
            raise AuthError("this is not a valid recovery key (a character is wrong or missing): check each group of 5 characters") from None
        row = self._row("SELECT ct FROM key_wraps WHERE key = 'school' AND holder = 'recovery'")
        try:
            school_key = vault.open_(vault.derive(raw, "wrap/recovery"), row["ct"], _ad("school-key"))
        except vault.DecryptError:
            raise AuthError("this recovery key belongs to another school or set-up: find the one written down for this school") from None
        self._seal_old_audit(school_key)
        with self._lock, self.db.atomic():
            self._audit("recovery-key", "unlock", "school")
        session = Session(self, "", "recovery", "recovery", None, school_key)
        session._checked = True
        return session

    def create_account(self, actor: Session, username: str, password: str, role: str = "teacher",
                       *, cost: vault.Argon2Cost | None = None) -> Account:
        s = self._admin(actor)
        _check_username(username)
        _check_password(password)
        if role not in ("admin", "teacher"):
            raise InvalidInput(f"an account's role is 'admin' (head teacher) or 'teacher', not {role!r}")
        with self._lock, self.db.atomic():
            account_id = self._insert_account(username, password, role, s._school_key, cost)
            self._audit(s.actor, "account-created", f"account:{account_id}", f"{username} {role}")
        return Account(account_id, username, role, True, ())

    def _account_by_name(self, username: str) -> dict[str, Any]:
        row = self._row("SELECT * FROM accounts WHERE username = ?", [str(username)])
        if row is None:
            raise NotFound(f"no account named {username!r}")
        return row

    def list_accounts(self, actor: Session) -> list[Account]:
        self._admin(actor)
        out = []
        for row in self.db.query("SELECT id, username, role, active FROM accounts ORDER BY username"):
            classes = tuple(r["class_id"] for r in self.db.query(
                "SELECT class_id FROM account_classes WHERE account_id = ? ORDER BY class_id", [row["id"]]))
            out.append(Account(row["id"], row["username"], row["role"], bool(row["active"]), classes))
        return out

    def change_password(self, actor: Session, old_password: str, new_password: str) -> None:
        """Keep the same account keys, wrapped under the new password."""
        s = self._session(actor)
        if s.role == "recovery":
            raise AccessDenied("the recovery key has no password; use reset_password on an account instead")
        _check_password(new_password)
        row = self._row("SELECT * FROM accounts WHERE id = ?", [s.account_id])
        kek = vault.kek_from_password(str(old_password), row["salt"], vault.Argon2Cost(row["opslimit"], row["memlimit"]))
        try:
            vault.open_(kek, row["wrapped_secret"], _ad("account-secret", s.account_id))
        except vault.DecryptError:
            raise AuthError("the current password is wrong; nothing was changed") from None
        with self._lock, self.db.atomic():
            self._set_credential(s.account_id, new_password, secret=s._secret)
            self._audit(s.actor, "password-changed", f"account:{s.account_id}")

    def reset_password(self, actor: Session, username: str, new_password: str) -> None:
        """Head teacher (or recovery key) gives an account a new password and new keys."""
        s = self._admin(actor)
        _check_password(new_password)
        row = self._account_by_name(username)
        with self._lock, self.db.atomic():
            pk = self._set_credential(row["id"], new_password)
            self.db.execute("DELETE FROM key_wraps WHERE holder = ?", [f"account/{row['id']}"])
            if row["role"] == "admin":
                self.db["key_wraps"].insert({"key": "school", "holder": f"account/{row['id']}",
                                             "ct": vault.seal_to(pk, s._school_key, "school-key")})
            for r in list(self.db.query("SELECT class_id FROM account_classes WHERE account_id = ?", [row["id"]])):
                self._seal_class_key(s, r["class_id"], row["id"], pk)
            self.db.execute("UPDATE accounts SET active = 1 WHERE id = ?", [row["id"]])
            self._audit(s.actor, "password-reset", f"account:{row['id']}")

    def disable_account(self, actor: Session, username: str) -> None:
        """Remove an account's keys and classes; its sessions stop working at their next call."""
        s = self._admin(actor)
        row = self._account_by_name(username)
        if row["id"] == s.account_id:
            raise Conflict("you cannot disable your own account; log in as another head teacher account")
        if row["role"] == "admin":
            left = self._row("SELECT COUNT(*) AS n FROM accounts WHERE role = 'admin' AND active = 1 AND id != ?", [row["id"]])
            if left["n"] == 0:
                raise Conflict("this is the last head teacher account; create another before disabling it")
        held = [r[0] for r in self.db.execute("SELECT class_id FROM account_classes WHERE account_id = ?", [row["id"]])]
        new_keys = {}
        with self._lock:
            old_keys = {cid: self._class_key(s, cid) for cid in held}
            with self._sealing(s, old_keys):
                self.db.execute("DELETE FROM key_wraps WHERE holder = ?", [f"account/{row['id']}"])
                self.db.execute("DELETE FROM account_classes WHERE account_id = ?", [row["id"]])
                self.db.execute("UPDATE accounts SET active = 0 WHERE id = ?", [row["id"]])
                for cid, key in old_keys.items():  # as when a teacher leaves one class
                    new_keys[cid] = self._rotate_class_key(s, cid, key)
                self._audit(s.actor, "account-disabled", f"account:{row['id']}")
            s._class_keys.update(new_keys)  # only once committed

    # -- classes -------------------------------------------------------------

    def create_class(self, actor: Session, name: str, level: str, school_year: str) -> ClassInfo:
        s = self._admin(actor)
        from preau.crdt.campaign import LEVELS
        name = str(name).strip()
        if csvio.check_name(name, "class name"):
            raise InvalidInput(csvio.check_name(name, "class name"))
        levels = str(level).split("-")
        if not all(lv in LEVELS for lv in levels):
            raise InvalidInput(f"the level {level!r} must be one of {', '.join(LEVELS)} (or two joined, like CP-CE1)")
        m = re.fullmatch(r"(\d{4})-(\d{4})", str(school_year))
        if not m or int(m.group(2)) != int(m.group(1)) + 1:
            raise InvalidInput(f"the school year {school_year!r} must be two consecutive years like 2026-2027")
        if self._row("SELECT 1 FROM classes WHERE name = ?", [name]):
            raise Conflict(f"a class named {name!r} exists already; choose another name")
        class_id = secrets.token_hex(8)
        key = vault.random_key()
        with self._lock, self.db.atomic():
            self.db["classes"].insert({"id": class_id, "name": name, "level": level, "school_year": school_year,
                                       "created_at": self._now()})
            self.db["key_wraps"].insert({"key": f"class/{class_id}", "holder": "school",
                                         "ct": vault.seal(vault.derive(s._school_key, "wrap/class"), key, _ad("class-key", class_id))})
            self._audit(s.actor, "class-created", f"class:{class_id}", name)
        s._class_keys[class_id] = (1, key)
        return ClassInfo(class_id, name, level, school_year)

    def list_classes(self, actor: Session) -> list[ClassInfo]:
        """All classes for the head teacher; a teacher sees only the classes assigned to them."""
        s = self._session(actor)
        if s.is_admin:
            rows = self.db.query("SELECT * FROM classes ORDER BY name")
        else:
            rows = self.db.query("SELECT c.* FROM classes c JOIN account_classes a ON a.class_id = c.id "
                                 "WHERE a.account_id = ? ORDER BY c.name", [s.account_id])
        return [ClassInfo(r["id"], r["name"], r["level"], r["school_year"]) for r in rows]

    def _seal_class_key(self, s: Session, class_id: str, account_id: str, public_key: bytes) -> None:
        key = self._class_key(s, class_id)
        self.db["key_wraps"].upsert({"key": f"class/{class_id}", "holder": f"account/{account_id}",
                                     "ct": vault.seal_to(public_key, key, f"class-key/{class_id}")}, pk=("key", "holder"))

    def assign_teacher(self, actor: Session, username: str, class_id: str) -> None:
        """Give a teacher a class: its key is sealed to the teacher's public key, no password needed."""
        s = self._admin(actor)
        row = self._account_by_name(username)
        if not row["active"]:
            raise Conflict(f"the account {username!r} is disabled; reset its password first")
        self._class_row(class_id)
        with self._lock, self.db.atomic():
            self.db["account_classes"].upsert({"account_id": row["id"], "class_id": class_id}, pk=("account_id", "class_id"))
            self._seal_class_key(s, class_id, row["id"], row["public_key"])
            self._audit(s.actor, "class-assigned", f"class:{class_id}", f"account:{row['id']}")

    def unassign_teacher(self, actor: Session, username: str, class_id: str) -> None:
        """Take a class from a teacher, and replace the class key they held.

        Without a new key, a teacher who once held the class key could still read the
        class's later records from a copy of the file. The pupils and results of the
        class are re-encrypted under a new key, wrapped again for the head teachers and
        the teachers still assigned, in the same transaction.
        """
        s = self._admin(actor)
        row = self._account_by_name(username)
        new = None
        with self._lock:
            old_key = self._class_key(s, class_id)
            with self._sealing(s, {class_id: old_key}):
                held = self.db.execute("DELETE FROM account_classes WHERE account_id = ? AND class_id = ?",
                                       [row["id"], class_id]).rowcount
                self.db.execute("DELETE FROM key_wraps WHERE key = ? AND holder = ?",
                                [f"class/{class_id}", f"account/{row['id']}"])
                if held:
                    new = self._rotate_class_key(s, class_id, old_key)
                self._audit(s.actor, "class-unassigned", f"class:{class_id}", f"account:{row['id']}")
            if new is not None:
                s._class_keys[class_id] = new  # only once committed: a rolled-back rotation leaves the old key

    @contextlib.contextmanager
    def _sealing(self, s: Session, keys: dict[str, bytes], pupils: dict[str, str] | None = None) -> Iterator[None]:
        """The write transaction of anything sealed under class keys fetched before it opened: each key
        (class id -> key) must still be its class's current one, and each pupil (id -> class id) still in
        that class, or nothing is written and the person is asked to do it again."""
        with self._lock, self.db.atomic():
            for class_id, key in keys.items():
                self._require_current_key(s, class_id, key)
            if pupils:
                self._require_in_class(pupils)
            yield

    def _require_current_key(self, s: Session, class_id: str, key: bytes) -> None:
        """Inside a write transaction: the class key about to seal data is still the class's current one.

        A key is fetched before the write's transaction opens; if the class key was replaced in between
        (a teacher left the class, in another thread or process), sealing under the old key would make the
        data unreadable for everyone. Refuse instead: nothing is written, and a retry uses the new key."""
        version = self.db.execute("SELECT key_version FROM classes WHERE id = ?", [class_id]).fetchone()
        cached = s._class_keys.get(class_id)
        if version is None or cached is None or cached != (version[0], key):
            s._class_keys.pop(class_id, None)
            raise StoreError("the key of this class was replaced just now (a teacher left the class); nothing was "
                             "saved: do it again")

    def _require_in_class(self, classes: dict[str, str]) -> None:
        """Inside a write transaction: each pupil is still in the class whose key is about to seal its data
        (another process may have moved or erased it since the class was read)."""
        marks = ",".join("?" * len(classes))
        now = dict(self.db.execute(f"SELECT id, class_id FROM pupils WHERE id IN ({marks})", list(classes)).fetchall())
        if now != classes:
            raise StoreError("a pupil was just moved to another class or removed; nothing was saved: do it again")

    def _rotate_class_key(self, s: Session, class_id: str, old_key: bytes) -> tuple[int, bytes]:
        """Re-encrypt a class under a new key (inside the caller's transaction); its (version, key), for the
        caller to cache once the transaction has committed."""
        key = vault.random_key()
        names = list(self.db.query("SELECT * FROM pupils WHERE class_id = ?", [class_id]))
        for p in names:
            pupil = self._open_pupil(old_key, p)
            self.db.execute("UPDATE pupils SET ct = ? WHERE id = ?",
                            [self._seal_pupil(key, p["id"], class_id, pupil.last_name, pupil.first_name), p["id"]])
            for r in list(self.db.query("SELECT * FROM results WHERE pupil_id = ?", [p["id"]])):
                campaign = self._campaign(r["campaign_id"])
                self.db.execute("UPDATE results SET ct = ? WHERE campaign_id = ? AND pupil_id = ?",
                                [self._seal_results(key, campaign, p["id"], self._open_results(old_key, r)),
                                 r["campaign_id"], p["id"]])
        self.db.execute("UPDATE key_wraps SET ct = ? WHERE key = ? AND holder = 'school'",
                        [vault.seal(vault.derive(s._school_key, "wrap/class"), key, _ad("class-key", class_id)), f"class/{class_id}"])
        version = self.db.execute("UPDATE classes SET key_version = key_version + 1 WHERE id = ? RETURNING key_version",
                                  [class_id]).fetchone()[0]
        teachers = self.db.execute("SELECT a.id, a.public_key FROM accounts a JOIN account_classes c ON c.account_id = a.id "
                                   "WHERE c.class_id = ?", [class_id]).fetchall()
        for account_id, public_key in teachers:
            self.db["key_wraps"].upsert({"key": f"class/{class_id}", "holder": f"account/{account_id}",
                                         "ct": vault.seal_to(public_key, key, f"class-key/{class_id}")}, pk=("key", "holder"))
        self._audit(s.actor, "class-key-replaced", f"class:{class_id}", f"{len(names)} pupil record(s) re-encrypted")
        return version, key

    # -- pupils ----------------------------------------------------------------

    def _seal_pupil(self, key: bytes, pupil_id: str, class_id: str, last: str, first: str) -> bytes:
        plain = json.dumps({"last": last, "first": first}, ensure_ascii=False).encode()
        return vault.seal(key, vault.pad(plain, _PUPIL_PAD), _ad("pupil", pupil_id, class_id))

    def _open_pupil(self, key: bytes, row: dict[str, Any]) -> Pupil:
        try:
            data = json.loads(vault.unpad(vault.open_(key, row["ct"], _ad("pupil", row["id"], row["class_id"]))))
        except vault.DecryptError as exc:
            raise StoreError(f"the record of pupil {row['id']!r} does not decrypt: the database was altered; restore a backup") from exc
        return Pupil(row["id"], row["class_id"], data["last"], data["first"])

    @staticmethod
    def _clean_names(last_name: str, first_name: str) -> tuple[str, str]:
        last, first = str(last_name).strip(), str(first_name).strip()
        bad = csvio.check_name(last, "last name") or csvio.check_name(first, "first name")
        if bad:
            raise InvalidInput(bad)
        return last, first

    def list_pupils(self, actor: Session, class_id: str) -> list[Pupil]:
        s = self._session(actor)
        key = self._class_key(s, class_id)
        pupils = [self._open_pupil(key, r) for r in self.db.query("SELECT * FROM pupils WHERE class_id = ?", [class_id])]
        return sorted(pupils, key=lambda p: csvio.name_key(p.last_name, p.first_name))

    def get_pupil(self, actor: Session, pupil_id: str) -> Pupil:
        s = self._session(actor)
        row = self._pupil_row(pupil_id)
        return self._open_pupil(self._class_key(s, row["class_id"]), row)

    def add_pupils(self, actor: Session, class_id: str, names: Iterable[tuple[str, str]]) -> list[Pupil]:
        """Add pupils in one transaction; a name already in the class is refused (nothing added)."""
        s = self._session(actor)
        key = self._class_key(s, class_id)
        clean = [self._clean_names(last, first) for last, first in names]
        existing = {csvio.name_key(p.last_name, p.first_name): p for p in self.list_pupils(s, class_id)}
        for last, first in clean:
            same = existing.get(csvio.name_key(last, first))
            if same is not None:
                raise Conflict(f"{same.first_name} {same.last_name} is already in this class")
            existing[csvio.name_key(last, first)] = Pupil("", class_id, last, first)
        out = []
        with self._sealing(s, {class_id: key}):
            now = self._now()
            for last, first in clean:
                pid = secrets.token_hex(8)
                self.db["pupils"].insert({"id": pid, "class_id": class_id, "created_at": now,
                                          "ct": self._seal_pupil(key, pid, class_id, last, first)})
                self._audit(s.actor, "pupil-added", f"pupil:{pid}", f"class:{class_id}")
                out.append(Pupil(pid, class_id, last, first))
        return out

    def add_pupil(self, actor: Session, class_id: str, last_name: str, first_name: str) -> Pupil:
        return self.add_pupils(actor, class_id, [(last_name, first_name)])[0]

    def rename_pupil(self, actor: Session, pupil_id: str, last_name: str, first_name: str) -> Pupil:
        s = self._session(actor)
        row = self._pupil_row(pupil_id)
        key = self._class_key(s, row["class_id"])
        last, first = self._clean_names(last_name, first_name)
        with self._sealing(s, {row["class_id"]: key}, {pupil_id: row["class_id"]}):
            self.db["pupils"].update(pupil_id, {"ct": self._seal_pupil(key, pupil_id, row["class_id"], last, first)})
            self._audit(s.actor, "pupil-renamed", f"pupil:{pupil_id}")
        return Pupil(pupil_id, row["class_id"], last, first)

    def move_pupil(self, actor: Session, pupil_id: str, class_id: str) -> Pupil:
        """Move a pupil to another class: record and results are re-encrypted under the new class key."""
        s = self._admin(actor)
        row = self._pupil_row(pupil_id)
        if row["class_id"] == class_id:
            return self._open_pupil(self._class_key(s, class_id), row)
        old_key, new_key = self._class_key(s, row["class_id"]), self._class_key(s, class_id)
        pupil = self._open_pupil(old_key, row)
        for p in self.list_pupils(s, class_id):
            if csvio.name_key(p.last_name, p.first_name) == csvio.name_key(pupil.last_name, pupil.first_name):
                raise Conflict(f"{p.first_name} {p.last_name} is already in that class")
        with self._sealing(s, {row["class_id"]: old_key, class_id: new_key}, {pupil_id: row["class_id"]}):
            self.db["pupils"].update(pupil_id, {"class_id": class_id,
                                                "ct": self._seal_pupil(new_key, pupil_id, class_id, pupil.last_name, pupil.first_name)})
            for r in list(self.db.query("SELECT * FROM results WHERE pupil_id = ?", [pupil_id])):
                campaign = self._campaign(r["campaign_id"])
                self.db.execute("UPDATE results SET ct = ? WHERE campaign_id = ? AND pupil_id = ?",
                                [self._seal_results(new_key, campaign, pupil_id, self._open_results(old_key, r)), r["campaign_id"], pupil_id])
            self._audit(s.actor, "pupil-moved", f"pupil:{pupil_id}", f"class:{row['class_id']} -> class:{class_id}")
        return Pupil(pupil_id, class_id, pupil.last_name, pupil.first_name)

    def import_class_list(self, actor: Session, class_id: str, data: bytes) -> list[Pupil]:
        """CSV (nom;prénom per line): every bad line is reported with its number, and nothing is added until all are fine."""
        s = self._session(actor)
        self._class_key(s, class_id)
        lines = csvio.parse_class_list(bytes(data))
        existing = {csvio.name_key(p.last_name, p.first_name) for p in self.list_pupils(s, class_id)}
        problems = [(n, f"{first} {last} is already in this class") for n, last, first in lines
                    if csvio.name_key(last, first) in existing]
        if problems:
            raise CsvImportError(problems)
        names = [(last, first) for _, last, first in lines]
        return self.add_pupils(s, class_id, names)

    def erase_pupil(self, actor: Session, pupil_id: str) -> None:
        """Remove a pupil and all their results; the bytes are zeroed (secure_delete) and the WAL emptied.

        The class's teacher may do it (a pupil who left the school), as may the head teacher.
        """
        s = self._session(actor)
        row = self._pupil_row(pupil_id)
        key = self._class_key(s, row["class_id"])
        with self._lock:
            with self.db.atomic():
                for r in list(self.db.query("SELECT * FROM results WHERE pupil_id = ?", [pupil_id])):
                    old = self._open_results(key, r)
                    self._update_tally(r["campaign_id"], [(ex, self._bucket(p), None) for ex, p in old.items()])
                self.db.execute("DELETE FROM results WHERE pupil_id = ?", [pupil_id])
                self.db.execute("DELETE FROM pupils WHERE id = ?", [pupil_id])
                self._audit(s.actor, "pupil-erased", f"pupil:{pupil_id}", f"class:{row['class_id']}")
            self._truncate_wal()

    # -- campaigns -----------------------------------------------------------

    def put_campaign(self, actor: Session | NodeActor, campaign: Campaign) -> None:
        """Store or update a campaign (thresholds may arrive later); groups follow the new thresholds at once.

        The node may do this unattended (campaign documents arrive by sync). Changing an exercise's
        shape once results exist is refused: the saved answers would no longer mean anything.
        """
        a = self._admin_or_node(actor)
        if not isinstance(campaign, Campaign):
            raise InvalidInput("put_campaign takes a Campaign from preau.crdt.campaign.parse_campaign")
        with self._lock, self.db.atomic():
            old = self._campaign_or_none(campaign.id)
            if old is not None:
                # The node's tally knows which exercises have results, without opening any.
                used = {ex for ex, hist in self._read_tally(campaign.id)["ex"].items() if hist}
                new_by_id = {ex.id: ex for ex in campaign.exercises}
                for ex in old.exercises:
                    if ex.id not in used:
                        continue
                    new = new_by_id.get(ex.id)
                    if new is None:
                        raise Conflict(f"campaign {campaign.id!r}: exercise {ex.id!r} has saved results and cannot be removed")
                    if (new.score_kind, new.items, new.max_score) != (ex.score_kind, ex.items, ex.max_score):
                        raise Conflict(f"campaign {campaign.id!r}: exercise {ex.id!r} has saved results, so its kind, "
                                       "item count and maximum score cannot change; only names, dates and thresholds can")
            self.db["campaigns"].upsert({"id": campaign.id, "definition": json.dumps(campaign.to_dict(), ensure_ascii=False),
                                         "updated_at": self._now()}, pk="id")
            self._audit(a.actor, "campaign-updated" if old else "campaign-added", f"campaign:{campaign.id}")

    def _campaign_or_none(self, campaign_id: str) -> Campaign | None:
        row = self._row("SELECT definition FROM campaigns WHERE id = ?", [campaign_id])
        if row is None:
            return None
        cached = self._campaigns.get(campaign_id)
        if cached is None or cached[0] != row["definition"]:
            cached = (row["definition"], parse_campaign(json.loads(row["definition"])))
            self._campaigns[campaign_id] = cached
        return cached[1]

    def _campaign(self, campaign_id: str) -> Campaign:
        c = self._campaign_or_none(campaign_id)
        if c is None:
            raise NotFound(f"no campaign {campaign_id!r} on this node yet; it arrives from the district")
        return c

    def get_campaign(self, actor: Session | NodeActor, campaign_id: str) -> Campaign:
        self._any(actor)
        return self._campaign(campaign_id)

    def list_campaigns(self, actor: Session | NodeActor) -> list[Campaign]:
        self._any(actor)
        return [parse_campaign(json.loads(r["definition"])) for r in self.db.query("SELECT definition FROM campaigns ORDER BY id")]

    # -- results ---------------------------------------------------------------

    @staticmethod
    def _validate(campaign: Campaign, entry: ResultInput) -> tuple[Exercise, dict[str, Any]]:
        try:
            ex = campaign.exercise(entry.exercise_id)
        except CampaignError:
            raise InvalidInput(f"campaign {campaign.id!r} has no exercise {entry.exercise_id!r}; "
                               "pick one from the campaign's list") from None
        if entry.status not in STATUSES:
            raise InvalidInput(f"a result's status is one of {', '.join(STATUSES)}, not {entry.status!r}")
        if entry.status != "done":
            if entry.answers is not None or entry.wpm is not None:
                raise InvalidInput(f"a pupil marked {entry.status} has no answers or score; remove them or mark the pupil done")
            return ex, {"st": entry.status, "a": None, "w": None}
        if ex.score_kind == "wpm":
            if entry.answers is not None:
                raise InvalidInput(f"{ex.id!r} is scored in words per minute: give wpm, not item answers")
            w = entry.wpm
            if isinstance(w, bool) or not isinstance(w, int):
                raise InvalidInput(f"{ex.id!r} needs the number of words read in one minute, a whole number; got {w!r}")
            if not 0 <= w <= ex.max_score:
                raise InvalidInput(f"{ex.id!r}: {w} words per minute is out of range (0 to {ex.max_score}); check the entry")
            return ex, {"st": "done", "a": None, "w": w}
        if entry.wpm is not None:
            raise InvalidInput(f"{ex.id!r} is scored by items: give each item's answer, not a words-per-minute score")
        answers = entry.answers
        if answers is None or isinstance(answers, (str, bytes)) or not hasattr(answers, "__len__"):
            raise InvalidInput(f"{ex.id!r} needs the answer to each of its {ex.items} items (1, 0 or blank)")
        if len(answers) != ex.items:
            raise InvalidInput(f"{ex.id!r} has {ex.items} items but {len(answers)} answers were given")
        code = []
        for i, v in enumerate(answers):
            if v is None:
                code.append("-")
            elif v in (0, 1) and not isinstance(v, float):
                code.append(str(int(v)))
            else:
                raise InvalidInput(f"{ex.id!r}: item {i + 1} must be 1 (right), 0 (wrong) or blank, got {v!r}")
        return ex, {"st": "done", "a": "".join(code), "w": None}

    @staticmethod
    def _score(payload: dict[str, Any]) -> int | None:
        if payload["st"] != "done":
            return None
        return payload["w"] if payload["a"] is None else payload["a"].count("1")

    @classmethod
    def _bucket(cls, payload: dict[str, Any]) -> tuple:
        """What the unattended tally keeps of one result: its score or 'absent', never who."""
        return ("absent",) if payload["st"] != "done" else ("score", cls._score(payload))

    @staticmethod
    def _results_pad(campaign: Campaign) -> int:
        """A size every pupil's results for this campaign fit in, whatever was entered."""
        need = 64 + sum(len(ex.id) + (ex.items or 3) + 64 for ex in campaign.exercises)
        return -(-need // 512) * 512

    def _seal_results(self, key: bytes, campaign: Campaign, pupil_id: str, results: dict[str, dict],
                      pad: int | None = None) -> bytes:
        compact = {ex: [p["st"], p["a"], p["w"], p["t"]] for ex, p in results.items()}
        plain = _COMPACT_JSON.encode(compact).encode()
        return vault.seal(key, vault.pad(plain, pad or self._results_pad(campaign)), _ad("results", campaign.id, pupil_id))

    def _open_results(self, key: bytes, row: dict[str, Any], s: Session | None = None) -> dict[str, dict]:
        if s is not None:
            cached = s._results.get((row["campaign_id"], row["pupil_id"]))
            if cached is not None and cached[0] == row["ct"]:
                return dict(cached[1])
        try:
            compact = json.loads(vault.unpad(vault.open_(key, row["ct"], _ad("results", row["campaign_id"], row["pupil_id"]))))
        except vault.DecryptError as exc:
            raise StoreError(f"the results of pupil {row['pupil_id']!r} do not decrypt: the database was altered; restore a backup") from exc
        results = {ex: {"st": v[0], "a": v[1], "w": v[2], "t": v[3]} for ex, v in compact.items()}
        if s is not None:
            s._results[(row["campaign_id"], row["pupil_id"])] = (bytes(row["ct"]), dict(results))
        return results

    @classmethod
    def _result(cls, campaign: Campaign, pupil_id: str, exercise_id: str, payload: dict[str, Any]) -> Result:
        score = cls._score(payload)
        try:
            ex = campaign.exercise(exercise_id)
            group = group_for(ex, score, absent=payload["st"] != "done")
        except CampaignError:
            group = None
        answers = None if payload["a"] is None else tuple(None if c == "-" else int(c) for c in payload["a"])
        return Result(pupil_id, exercise_id, payload["st"], answers, payload["w"], score, group, payload["t"])

    def _class_results(self, s: Session, campaign: Campaign, class_id: str | None = None):
        """(pupil id, exercise id, payload) of every saved result, for one class or (admin) all."""
        sql = "SELECT r.*, p.class_id FROM results r JOIN pupils p ON p.id = r.pupil_id WHERE r.campaign_id = ?"
        params: list[Any] = [campaign.id]
        if class_id is not None:
            sql += " AND p.class_id = ?"
            params.append(class_id)
        keys: dict[str, bytes] = {}  # one access check and key per class, not one per pupil
        for r in list(self.db.query(sql + " ORDER BY r.pupil_id", params)):
            if r["class_id"] not in keys:
                keys[r["class_id"]] = self._class_key(s, r["class_id"])
            for exercise_id, payload in sorted(self._open_results(keys[r["class_id"]], r, s).items()):
                yield r["pupil_id"], exercise_id, payload

    def save_results(self, actor: Session, campaign_id: str, entries: Iterable[ResultInput]) -> list[Result]:
        """Validate every entry, then write all in one transaction; returns once it is on disk."""
        s = self._session(actor)
        campaign = self._campaign(campaign_id)
        entries = list(entries)
        for entry in entries:
            if not isinstance(entry, ResultInput):
                raise InvalidInput("save_results takes ResultInput entries")
        payloads = [self._validate(campaign, entry)[1] for entry in entries]
        pupil_ids = sorted({e.pupil_id for e in entries})
        marks = ",".join("?" * len(pupil_ids))
        classes = {r["id"]: r["class_id"] for r in self.db.query(f"SELECT id, class_id FROM pupils WHERE id IN ({marks})", pupil_ids)}
        for pid in pupil_ids:
            if pid not in classes:
                self._pupil_row(pid)  # raises NotFound with the person's message
        keys = {cid: self._class_key(s, cid) for cid in sorted(set(classes.values()))}
        out = []
        with self._sealing(s, keys, classes):
            now = self._now()
            stored = {r["pupil_id"]: self._open_results(keys[classes[r["pupil_id"]]], r, s) for r in self.db.query(
                f"SELECT * FROM results WHERE campaign_id = ? AND pupil_id IN ({marks})", [campaign_id, *pupil_ids])}
            changes = []
            for entry, payload in zip(entries, payloads):
                mine = stored.setdefault(entry.pupil_id, {})
                old = mine.get(entry.exercise_id)
                payload = {**payload, "t": now}
                mine[entry.exercise_id] = payload
                changes.append((entry.exercise_id, None if old is None else self._bucket(old), self._bucket(payload)))
                out.append(self._result(campaign, entry.pupil_id, entry.exercise_id, payload))
            # The hot path: plain executemany rather than sqlite-utils' per-call table introspection.
            pad = self._results_pad(campaign)
            sealed = [(campaign_id, pid, self._seal_results(keys[classes[pid]], campaign, pid, stored[pid], pad)) for pid in pupil_ids]
            self.db.conn.executemany(
                "INSERT INTO results (campaign_id, pupil_id, ct) VALUES (?, ?, ?) "
                "ON CONFLICT (campaign_id, pupil_id) DO UPDATE SET ct = excluded.ct", sealed)
            self._update_tally(campaign_id, changes)
            # One audit entry per save (a grid row or column), listing what it changed.
            self._audit(s.actor, "result-saved", f"campaign:{campaign_id}",
                        " ".join(f"pupil:{e.pupil_id}/exercise:{e.exercise_id}" for e in entries))
        for _, pid, ct in sealed:  # only once committed
            s._results[(campaign_id, pid)] = (ct, dict(stored[pid]))
        return out

    def save_result(self, actor: Session, campaign_id: str, pupil_id: str, exercise_id: str, *,
                    answers: Sequence[int | None] | None = None, wpm: int | None = None, status: str = "done") -> Result:
        if answers is not None and not isinstance(answers, (str, bytes)):
            answers = tuple(answers)
        entry = ResultInput(pupil_id, exercise_id, status, answers, wpm)  # type: ignore[arg-type]
        return self.save_results(actor, campaign_id, [entry])[0]

    def get_results(self, actor: Session, campaign_id: str, class_id: str) -> list[Result]:
        """Every saved result of a class in a campaign, with score and group under the current thresholds."""
        s = self._session(actor)
        self._class_key(s, class_id)  # the access check, even for a class with no results yet
        campaign = self._campaign(campaign_id)
        return [self._result(campaign, pid, ex, payload) for pid, ex, payload in self._class_results(s, campaign, class_id)]

    def export_results_csv(self, actor: Session, campaign_id: str, class_id: str) -> str:
        """One line per pupil: score and group for each exercise, for the class's teacher."""
        pupils = self.list_pupils(actor, class_id)
        results = self.get_results(actor, campaign_id, class_id)
        campaign = self._campaign(campaign_id)
        by = {(r.pupil_id, r.exercise_id): r for r in results}
        header = ["nom", "prénom"]
        for ex in campaign.exercises:
            header += [f"{ex.id} score", f"{ex.id} groupe"]
        labels = {"absent": "absent", "not_assessed": "non évalué"}
        rows = []
        for p in pupils:
            row: list[object] = [p.last_name, p.first_name]
            for ex in campaign.exercises:
                r = by.get((p.id, ex.id))
                if r is None:
                    row += ["", ""]
                elif r.status != "done":
                    row += [labels[r.status], "absent"]
                else:
                    row += [r.score, r.group or ""]
            rows.append(row)
        return csvio.write_results_csv(header, rows)

    # -- unattended counts -------------------------------------------------------

    def _tally_key(self) -> bytes:
        return vault.derive(self._node_key, "tally")

    def _read_tally(self, campaign_id: str) -> dict[str, Any]:
        row = self._row("SELECT ct FROM tallies WHERE campaign_id = ?", [campaign_id])
        if row is None:
            return {"rev": 0, "ex": {}}
        try:
            return json.loads(vault.open_(self._tally_key(), row["ct"], _ad("tally", campaign_id)))
        except vault.DecryptError as exc:
            raise StoreError("the node's counts do not decrypt (storage.key replaced?); a head teacher login can rebuild them") from exc

    def _write_tally(self, campaign_id: str, tally: dict[str, Any]) -> None:
        plain = json.dumps(tally, sort_keys=True, separators=(",", ":")).encode()
        self.db.execute("INSERT INTO tallies (campaign_id, ct) VALUES (?, ?) ON CONFLICT (campaign_id) DO UPDATE SET ct = excluded.ct",
                        [campaign_id, vault.seal(self._tally_key(), plain, _ad("tally", campaign_id))])

    def _update_tally(self, campaign_id: str, changes: list[tuple[str, tuple | None, tuple | None]]) -> None:
        tally = self._read_tally(campaign_id)
        for exercise_id, old, new in changes:
            hist = tally["ex"].setdefault(exercise_id, {})
            for bucket, delta in ((old, -1), (new, +1)):
                if bucket is None:
                    continue
                name = "absent" if bucket[0] == "absent" else str(bucket[1])
                hist[name] = hist.get(name, 0) + delta
                if hist[name] == 0:
                    del hist[name]
        tally["rev"] += 1
        self._write_tally(campaign_id, tally)

    def next_release_counts(self, actor: Session | NodeActor, campaign_id: str) -> dict[str, Any]:
        """Per-exercise counts by group under the current thresholds, kept current with nobody logged in.

        Built from the node-key score histograms, so new thresholds apply without a login.
        `ungrouped` counts scored pupils of an exercise still waiting for thresholds; `revision`
        grows with every saved change (a cheap "anything new since the last release?").
        """
        self._admin_or_node(actor)
        campaign = self._campaign(campaign_id)
        tally = self._read_tally(campaign_id)
        out: dict[str, dict[str, int]] = {}
        for ex in campaign.exercises:
            counts = {"besoin": 0, "fragile": 0, "seuil2": 0, "absent": 0, "ungrouped": 0}
            for name, n in tally["ex"].get(ex.id, {}).items():
                group = "absent" if name == "absent" else group_for(ex, int(name))
                counts[group or "ungrouped"] += n
            out[ex.id] = counts
        return {"campaign": campaign_id, "revision": tally["rev"], "exercises": out}

    def rebuild_counts(self, actor: Session, campaign_id: str) -> None:
        """Recompute the unattended histograms from the encrypted results (after storage.key was lost)."""
        s = self._admin(actor)
        self._campaign(campaign_id)
        changes = [(ex, None, self._bucket(payload)) for _, ex, payload in self._class_results(s, self._campaign(campaign_id))]
        with self._lock, self.db.atomic():
            self.db.execute("DELETE FROM tallies WHERE campaign_id = ?", [campaign_id])
            self._update_tally(campaign_id, changes)
            self._audit(s.actor, "counts-rebuilt", f"campaign:{campaign_id}")

    # -- release ---------------------------------------------------------------

    def _pseudonym_key(self, s: Session) -> bytes:
        row = self._row("SELECT ct FROM key_wraps WHERE key = 'pseudonym' AND holder = 'school'")
        return vault.open_(vault.derive(s._school_key, "wrap/pseudonym"), row["ct"], _ad("pseudonym-key"))

    def pupil_pseudonym(self, actor: Session, pupil_id: str) -> str:
        """The opaque per-school pseudonym releases use for this pupil (head teacher only)."""
        s = self._admin(actor)
        self._pupil_row(pupil_id)
        return vault.pseudonym(self._pseudonym_key(s), pupil_id)

    def release_outcomes(self, actor: Session, campaign_id: str) -> list[PupilOutcome]:
        """Each saved result of the campaign as (pseudonym, exercise, group), for disclosure control."""
        s = self._admin(actor)
        campaign = self._campaign(campaign_id)
        pkey = self._pseudonym_key(s)
        out = [PupilOutcome(vault.pseudonym(pkey, pid), ex, self._result(campaign, pid, ex, payload).group)
               for pid, ex, payload in self._class_results(s, campaign)]
        out.sort(key=lambda o: (o.exercise, o.pupil))
        return out

    # -- blobs -------------------------------------------------------------------

    def _blob_key(self, actor: Any, scope: str) -> tuple[Any, bytes]:
        if scope == "node":
            a = self._admin_or_node(actor)
            return a, vault.derive(self._node_key, "node-blob")
        if scope == "school":
            s = self._admin(actor)
            return s, vault.derive(s._school_key, "school-blob")
        raise InvalidInput(f"a blob's scope is 'school' (head teacher key) or 'node' (readable unattended), not {scope!r}")

    def put_blob(self, actor: Session | NodeActor, name: str, data: bytes, *, scope: str = "school") -> None:
        """Small encrypted named bytes: 'school' needs the head teacher, 'node' works unattended."""
        a, key = self._blob_key(actor, scope)
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise InvalidInput("a blob name is 1 to 200 characters")
        if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_BLOB:
            raise InvalidInput(f"a blob is bytes of at most {MAX_BLOB} bytes")
        with self._lock, self.db.atomic():
            self.db["blobs"].upsert({"scope": scope, "name": name, "updated_at": self._now(),
                                     "ct": vault.seal(key, bytes(data), _ad("blob", scope, name))}, pk=("scope", "name"))

    def get_blob(self, actor: Session | NodeActor, name: str, *, scope: str = "school") -> bytes | None:
        _, key = self._blob_key(actor, scope)
        row = self._row("SELECT ct FROM blobs WHERE scope = ? AND name = ?", [scope, name])
        if row is None:
            return None
        try:
            return vault.open_(key, row["ct"], _ad("blob", scope, name))
        except vault.DecryptError as exc:
            raise StoreError(f"the stored blob {name!r} does not decrypt: the database was altered; restore a backup") from exc

    def delete_blob(self, actor: Session | NodeActor, name: str, *, scope: str = "school") -> None:
        self._blob_key(actor, scope)
        with self._lock, self.db.atomic():
            self.db.execute("DELETE FROM blobs WHERE scope = ? AND name = ?", [scope, name])

    def list_blobs(self, actor: Session | NodeActor, prefix: str = "", *, scope: str = "school") -> list[str]:
        self._blob_key(actor, scope)
        return [r["name"] for r in self.db.query("SELECT name FROM blobs WHERE scope = ? AND substr(name, 1, ?) = ? ORDER BY name",
                                                 [scope, len(prefix), prefix])]

    # -- audit ---------------------------------------------------------------------

    def audit_log(self, actor: Session, limit: int = 200) -> list[AuditEntry]:
        """Who changed what and when (ids only, never a pupil's name or result). Head teacher only."""
        self._admin(actor)
        self._seal_old_audit(actor._school_key)
        secret = _audit_keys(actor._school_key)[0]
        keys: dict[int, bytes] = {}
        out = []
        for epoch, ct in self.db.execute("SELECT epoch, ct FROM audit_sealed ORDER BY id DESC LIMIT ?",
                                         [int(limit)]).fetchall():
            try:
                if epoch not in keys:
                    row = self.db.execute("SELECT ct FROM audit_epochs WHERE id = ?", [epoch]).fetchone()
                    keys[epoch] = vault.open_sealed(secret, row[0] if row else b"", "audit-epoch")
                plain = vault.open_(keys[epoch], ct, _ad("audit-entry", str(epoch)))
                at, who, action, target, detail = json.loads(vault.unpad(plain))
            except (vault.DecryptError, ValueError):
                # Shown, not fatal: the rest of the log stays readable.
                at, who, action, target = "", "?", "unreadable", f"epoch:{epoch}"
                detail = ("this entry does not open with this school's key: the file was altered, or the entry "
                          "was written while the audit key in it was not the school's")
            out.append(AuditEntry(at, who, action, target, detail))
        return out
