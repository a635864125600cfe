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

import datetime as _dt
import os
import pathlib
import secrets
import threading
from typing import Any, Callable, Sequence

from preau.crdt.campaign import Campaign
from preau.node.database import Database, for_this_thread
from preau.node.errors import InvalidUai, checked_uai, said
from preau.node.records import database as dbmod
from preau.node.records import vault
from preau.node.records.errors import (
    AccessDenied,
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    SchemaError,
    StoreError,
)

from .accounts import AccountsMixin
from .audit import AuditMixin
from .base import (
    DB_NAME,
    MAX_BLOB,
    MIN_PASSWORD,
    NODE_KEY_NAME,
    STATUSES,
    Account,
    AuditEntry,
    ClassInfo,
    LoginAttempt,
    NodeActor,
    Pupil,
    Result,
    ResultInput,
    Session,
    _ad,
    _audit_keys,
    _check_password,
    _check_username,
    _read_key_file,
    _utcnow,
    _write_key_file,
    log,
)
from .blobs import BlobsMixin
from .classes import ClassesMixin
from .gdpr import GdprMixin
from .results import ResultsMixin
from .snapshot import Snapshot, SnapshotMixin

__all__ = [
    "DB_NAME", "MAX_BLOB", "MIN_PASSWORD", "NODE_KEY_NAME", "STATUSES", "Account", "AuditEntry", "ClassInfo",
    "LoginAttempt", "NodeActor", "Pupil", "Result", "ResultInput", "Session", "Snapshot", "Store",
]


class Store(AccountsMixin, ClassesMixin, ResultsMixin, AuditMixin, BlobsMixin, GdprMixin, SnapshotMixin):
    """One school's data folder: one connection, writes serialised under a lock, each in one transaction.

    Use it from one thread at a time (the node's event loop, or one worker thread).
    """

    def __init__(self, data_dir: pathlib.Path, db: Database, node_key: bytes,
                 cost: vault.Argon2Cost, clock: Callable[[], _dt.datetime]):
        self.data_dir = data_dir
        self._db = db
        self._node_key = node_key
        self._cost = cost
        self._clock = clock
        self._lock = threading.RLock()
        self._campaigns: dict[str, tuple[str, Campaign]] = {}
        self._audit_pk: bytes | None = None
        self._epoch: tuple[int, bytes, bytes] | None = None  # (id, key, sealed key) of this process's audit epoch
        self._wal_to_truncate = False  # a checkpoint that found readers in the way, to retry
        self.node = NodeActor(self)

    @property
    def db(self) -> Database:
        """The connection for this thread: the writer, or a query-only reader while the node's database thread
        owns the writer (node/database.py, DatabaseThread)."""
        return for_this_thread(self._db)

    @property
    def writer(self) -> Database:
        return self._db

    @classmethod
    def create(cls, data_dir: str | os.PathLike, *, uai: str, school_name: str, admin_username: str,
               admin_password: str, cost: vault.Argon2Cost = vault.PRODUCTION_COST,
               clock: Callable[[], _dt.datetime] = _utcnow) -> tuple["Store", str]:
        """Set up a new school; returns the store and the recovery key, to be shown once and written down."""
        try:
            uai = checked_uai(uai)
        except InvalidUai as exc:
            raise InvalidInput(exc.words) from None
        if not isinstance(school_name, str) or not school_name.strip():
            raise InvalidInput(said("msg.store.school_name"))
        _check_username(admin_username)
        _check_password(admin_password)
        data = pathlib.Path(data_dir)
        data.mkdir(parents=True, exist_ok=True)
        if (data / DB_NAME).exists():
            raise Conflict(said("msg.store.already_set_up", path=str(data / DB_NAME)))
        node_key = vault.random_key()
        _write_key_file(data / NODE_KEY_NAME, node_key)
        db = dbmod.connect(data / DB_NAME)
        dbmod.migrate(db)
        store = cls(data, db, node_key, cost, clock)
        school_key = vault.random_key()
        recovery = vault.random_key()
        admin = store._credential(secrets.token_hex(8), admin_password)  # Argon2id before the transaction
        with store._lock, db.atomic():
            now = store._now()
            db["school"].insert({"id": 1, "uai": uai, "name": school_name.strip(), "created_at": now,
                                 "audit_key": _audit_keys(school_key)[1]})
            db["key_wraps"].insert({"key": "school", "holder": "recovery",
                                    "ct": vault.seal(vault.derive(recovery, "wrap/recovery"), school_key, _ad("school-key"))})
            db["key_wraps"].insert({"key": "pseudonym", "holder": "school",
                                    "ct": vault.seal(vault.derive(school_key, "wrap/pseudonym"), vault.random_key(), _ad("pseudonym-key"))})
            store._insert_account(admin_username, admin, "admin", school_key)
            store._audit("setup", "setup", "school", uai)
        return store, vault.format_recovery_key(recovery)

    @classmethod
    def open(cls, data_dir: str | os.PathLike, *, cost: vault.Argon2Cost = vault.PRODUCTION_COST,
             clock: Callable[[], _dt.datetime] = _utcnow) -> "Store":
        """Open with no credential: enough for the node to run unattended, not to read pupils."""
        data = pathlib.Path(data_dir)
        if not (data / DB_NAME).exists():
            raise NotFound(said("msg.store.no_database", folder=str(data)))
        node_key = _read_key_file(data / NODE_KEY_NAME)
        db = dbmod.connect(data / DB_NAME)
        try:
            dbmod.migrate(db)
            if db["school"].count != 1:
                raise SchemaError(said("msg.store.no_school", path=str(data / DB_NAME)))
        except BaseException:
            db.close()
            raise
        return cls(data, db, node_key, cost, clock)

    def close(self) -> None:
        with self._lock:
            if self._wal_to_truncate:
                self._truncate_wal()
            self._db.close()

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

    def _now(self) -> str:
        return self._clock().astimezone(_dt.timezone.utc).isoformat(timespec="seconds")

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
            raise AccessDenied(said("msg.store.needs_person"))
        if not isinstance(actor, Session) or actor._store is not self:
            raise AuthError(said("msg.store.not_logged_in"))
        if not actor._open:
            raise AuthError(said("msg.store.session_ended"))
        if actor.role != "recovery":
            row = self._row("SELECT active, role FROM accounts WHERE id = ?", [actor.account_id])
            if row is None or not row["active"] or row["role"] != actor.role:
                actor.logout()
                raise AuthError(said("msg.store.account_changed"))
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
            raise AuthError(said("msg.store.no_school_keys")) from exc
        s._checked = True

    def _admin(self, actor: Any) -> Session:
        s = self._session(actor)
        if not s.is_admin:
            raise AccessDenied(said("msg.store.head_only"))
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
            raise NotFound(said("msg.store.no_class", id=class_id))
        return row

    def _class_key(self, s: Session, class_id: str) -> bytes:
        """The class key, after checking (again, every call) that this account may use it."""
        version = self._class_row(class_id)["key_version"]
        if not s.is_admin:
            assigned = self._row("SELECT 1 FROM account_classes WHERE account_id = ? AND class_id = ?", [s.account_id, class_id])
            if assigned is None:
                raise AccessDenied(said("msg.store.not_your_class"))
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
                    raise AccessDenied(said("msg.store.not_your_class"))
                key = vault.open_sealed(s._secret, row["ct"], f"class-key/{class_id}")
        except (vault.DecryptError, TypeError) as exc:
            raise StoreError(said("msg.store.class_key", id=class_id)) from exc
        s._class_keys[class_id] = (version, key)
        return key

    def _pupil_row(self, pupil_id: str) -> dict[str, Any]:
        row = self._row("SELECT * FROM pupils WHERE id = ?", [pupil_id])
        if row is None:
            raise NotFound(said("msg.store.no_pupil", id=pupil_id))
        return row









































































