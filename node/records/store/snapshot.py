"""What a backup takes from the store: one consistent snapshot, read under the store's lock (`Store.snapshot`).

`records/backup.py` seals it into a file; it needs nothing else of the store (no private member), so the key
hierarchy (which wraps lead to the school key) stays the store's own business.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any, Callable

from preau.node.database import sqlite_image
from preau.node.records import database as dbmod
from preau.node.records import vault
from preau.node.records.errors import StoreError

from .base import Session, _ad


@dataclass(frozen=True)
class Snapshot:
    """The store as a backup file holds it. `file_key` is fresh for each snapshot; `file_key_wrap` is it sealed
    under the school key, so the file opens with whatever opens the school key (the wraps below)."""

    image: bytes  # preau.db, a consistent copy (SQLite's online backup)
    node_key: bytes
    uai: str
    schema: int
    created: str
    recovery_wrap: bytes
    admins: tuple[dict[str, Any], ...]  # each active head teacher: name, id, salt, Argon2 costs, wrapped secret and wrap
    file_key: bytes
    file_key_wrap: bytes
    alongside: Any  # what the caller read under the same lock (the node's other files)


class SnapshotMixin:
    """Part of `Store` (see store/__init__.py); `self` is the Store."""

    def snapshot(self, actor: Session, tmp: pathlib.Path, *, note: str, listed_as: str,
                 alongside: Callable[[], Any] = lambda: None) -> Snapshot:
        """A consistent snapshot for a backup file (head teacher only), noted in the audit log (`note`) and in
        the GDPR page's list of backups (`listed_as`). `alongside` runs under the same lock, so files read there
        are consistent with the image."""
        s = self._admin(actor)
        with self._lock:
            image = sqlite_image(self.db.conn, tmp, "snapshot.db")
            other = alongside()
            admins = []
            for row in self.db.query("SELECT * FROM accounts WHERE role = 'admin' AND active = 1"):
                wrap = self._row("SELECT ct FROM key_wraps WHERE key = 'school' AND holder = ?", [f"account/{row['id']}"])
                if wrap is None:
                    continue
                admins.append({"username": row["username"], "account_id": row["id"], "salt": row["salt"],
                               "opslimit": row["opslimit"], "memlimit": row["memlimit"],
                               "wrapped_secret": row["wrapped_secret"], "school_wrap": wrap["ct"]})
            recovery = self._row("SELECT ct FROM key_wraps WHERE key = 'school' AND holder = 'recovery'")
            if recovery is None:
                raise StoreError("this store has no recovery wrap; it cannot be backed up")
            file_key = vault.random_key()
            created = self._now()
            snap = Snapshot(image, self._node_key, self.school()["uai"], dbmod.schema_version(self.db), created,
                            recovery["ct"], tuple(admins), file_key,
                            vault.seal(vault.derive(s._school_key, "wrap/backup"), file_key, _ad("backup-key")), other)
            with self.db.atomic():
                self._audit(s.actor, "backup-written", "school", note)
                self.record_backup(listed_as, created)
        return snap
