"""The audit log, sealed so that any session can append and only a head teacher reads."""
from __future__ import annotations

import json
from typing import Sequence

from preau.node.records import vault

from .base import (  # the store's types and helpers
    AUDIT_PAD,
    AuditEntry,
    Session,
    _ad,
    _audit_keys,
    log,
)


class AuditMixin:
    """Part of `Store` (see store/__init__.py); `self` is the Store."""

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

    def record(self, actor: Session, action: str, target: str, detail: str = "") -> None:
        """Append one entry for something a person did outside this store (at a district: an invitation,
        a published campaign), under their own name, sealed like every other entry."""
        s = self._session(actor)
        with self._lock, self.db.atomic():
            self._audit(s.actor, action, target, detail)

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
