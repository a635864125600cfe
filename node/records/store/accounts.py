"""Accounts: passwords (Argon2id), logins in three steps, the recovery key, head teachers and teachers."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from preau.node.errors import said, words
from preau.node.records import vault
from preau.node.records.errors import (
    AccessDenied,
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    StoreError,
)

from .base import (  # the store's types and helpers
    Account,
    LoginAttempt,
    Session,
    _ad,
    _check_password,
    _check_username,
)


@dataclass(frozen=True)
class _Credential:
    """What a password makes, before it is written: the account's public key and its wrapped secret."""

    account_id: str
    public: bytes
    salt: bytes
    cost: vault.Argon2Cost
    wrapped: bytes


class AccountsMixin:
    """Part of `Store` (see store/__init__.py); `self` is the Store."""

    def _insert_account(self, username: str, cred: "_Credential", role: str, school_key: bytes | None) -> str:
        if self._row("SELECT 1 FROM accounts WHERE username = ?", [username]):
            raise Conflict(words(f"the user name {username!r} is taken; choose another", "store.username_taken", v=username))
        self.db["accounts"].insert({"id": cred.account_id, "username": username, "role": role, "public_key": b"",
                                    "wrapped_secret": b"", "salt": b"", "opslimit": 0, "memlimit": 0,
                                    "active": 1, "created_at": self._now()})
        pk = self._set_credential(cred)
        if role == "admin":
            self.db["key_wraps"].insert({"key": "school", "holder": f"account/{cred.account_id}",
                                         "ct": vault.seal_to(pk, school_key, "school-key")})
        return cred.account_id

    def _credential(self, account_id: str, password: str, cost: vault.Argon2Cost | None = None,
                    secret: bytes | None = None) -> "_Credential":
        """An account's secret wrapped under a password (a new keypair when `secret` is None). Argon2id runs
        here, before any transaction: a slow key derivation never holds the database's write lock."""
        cost = cost or self._cost
        if secret is None:
            secret, public = vault.new_keypair()
        else:
            public = vault.public_key_of(secret)
        salt = vault.random_bytes(vault.SALT_BYTES)
        kek = vault.kek_from_password(password, salt, cost)
        return _Credential(account_id, public, salt, cost, vault.seal(kek, secret, _ad("account-secret", account_id)))

    def _set_credential(self, cred: "_Credential") -> bytes:
        """Write a credential made by `_credential` (inside the caller's transaction); its public key."""
        self.db["accounts"].update(cred.account_id, {
            "public_key": cred.public, "salt": cred.salt, "opslimit": cred.cost.opslimit,
            "memlimit": cred.cost.memlimit, "wrapped_secret": cred.wrapped,
        })
        return cred.public

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
        wrong = AuthError(said("msg.store.wrong_login"))
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
                raise StoreError(said("msg.store.lost_school_key")) from exc
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
            raise AuthError(said("msg.store.recovery_typo")) from None
        row = self._row("SELECT ct FROM key_wraps WHERE key = 'school' AND holder = 'recovery'")
        try:
            school_key = vault.open_(vault.derive(raw, "wrap/recovery"), row["ct"], _ad("school-key"))
        except vault.DecryptError:
            raise AuthError(said("msg.store.recovery_other")) from None
        self._seal_old_audit(school_key)
        with self._lock, self.db.atomic():
            self._audit("recovery-key", "unlock", "school")
        session = Session(self, "", "recovery", "recovery", None, school_key)
        session._checked = True
        return session

    def new_recovery_key(self, actor: Session) -> str:
        """Replace the recovery key (lost, or seen by someone who should not have): returns the new one, to be
        shown once. Head teacher only. Backups made before still open with the old key: destroy them."""
        s = self._admin(actor)
        recovery = vault.random_key()
        ct = vault.seal(vault.derive(recovery, "wrap/recovery"), s._school_key, _ad("school-key"))
        with self._lock, self.db.atomic():
            self.db.execute("UPDATE key_wraps SET ct = ? WHERE key = 'school' AND holder = 'recovery'", [ct])
            self._audit(s.actor, "recovery-key-replaced", "school")
        return vault.format_recovery_key(recovery)

    def account_credential(self, password: str, *, account_id: str | None = None) -> "_Credential":
        """The slow half of creating an account (`account_id` None) or of resetting one's password: Argon2id
        (0.1-1 s by design), with no database work. A serving node runs it on its login workers, so neither
        the event loop nor the database thread (every other write, every sync session) waits for it; the
        quick half is `create_account(..., credential=)` or `reset_password(..., credential=)`."""
        _check_password(password)
        return self._credential(account_id or secrets.token_hex(8), password)

    def account_id(self, username: str) -> str:
        """The id of the account with this name (a read: an account's credential is bound to its id)."""
        return self._account_by_name(username)["id"]

    def create_account(self, actor: Session, username: str, password: str | None, role: str = "teacher",
                       *, cost: vault.Argon2Cost | None = None, credential: "_Credential | None" = None) -> Account:
        s = self._admin(actor)
        _check_username(username)
        if credential is None:
            _check_password(password)
        if role not in ("admin", "teacher"):
            raise InvalidInput(said("msg.store.bad_role", role=str(role)))
        cred = credential or self._credential(secrets.token_hex(8), password, cost)
        with self._lock, self.db.atomic():
            account_id = self._insert_account(username, cred, role, s._school_key)
            self._audit(s.actor, "account-created", f"account:{account_id}", f"{username} {role}")
        return Account(account_id, username, role, True, ())

    def _account_by_name(self, username: str) -> dict[str, Any]:
        row = self._row("SELECT * FROM accounts WHERE username = ?", [str(username)])
        if row is None:
            raise NotFound(words(f"no account named {username!r}", "store.no_account", v=username))
        return row

    def head_teacher_names(self) -> list[str]:
        """The active head teacher accounts' names (no secret): which account a command logs in as, before asking
        for its password."""
        return [r["username"] for r in self.db.query(
            "SELECT username FROM accounts WHERE role = 'admin' AND active = 1 ORDER BY username")]

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
            raise AuthError(said("msg.store.current_password")) from None
        cred = self._credential(s.account_id, new_password, secret=s._secret)
        with self._lock, self.db.atomic():
            self._set_credential(cred)
            self._audit(s.actor, "password-changed", f"account:{s.account_id}")

    def reset_password(self, actor: Session, username: str, new_password: str | None, *,
                       credential: "_Credential | None" = None) -> None:
        """Head teacher (or recovery key) gives an account a new password and new keys (`credential`: made
        beforehand by `account_credential` for this account's id)."""
        s = self._admin(actor)
        if credential is None:
            _check_password(new_password)
        row = self._account_by_name(username)
        if credential is not None and credential.account_id != row["id"]:
            # The name now belongs to another account than the one the credential was made for: nothing written.
            raise Conflict(said("msg.store.credential_stale", username=username))
        cred = credential or self._credential(row["id"], new_password)
        with self._lock, self.db.atomic():
            pk = self._set_credential(cred)
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
            raise Conflict(words("you cannot disable your own account; log in as another head teacher account",
                                 "store.disable_self"))
        if row["role"] == "admin":
            left = self._row("SELECT COUNT(*) AS n FROM accounts WHERE role = 'admin' AND active = 1 AND id != ?", [row["id"]])
            if left["n"] == 0:
                raise Conflict(words("this is the last head teacher account; create another before disabling it",
                                     "store.last_head"))
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
