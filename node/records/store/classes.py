"""Classes and pupils: class keys, teachers' access, names sealed under the class key, class lists."""
from __future__ import annotations

import contextlib
import json
import re
import secrets
from typing import Any, Iterable, Iterator

from preau.node.errors import said, words
from preau.node.records import csvio, vault
from preau.node.records.errors import Conflict, InvalidInput, StoreError

from .base import (  # the store's types and helpers
    _PUPIL_PAD,
    ClassInfo,
    Pupil,
    Session,
    _ad,
)


class ClassesMixin:
    """Part of `Store` (see store/__init__.py); `self` is the Store."""

    def create_class(self, actor: Session, name: str, level: str, school_year: str) -> ClassInfo:
        s = self._admin(actor)
        from preau.crdt.campaign import LEVELS
        name = str(name).strip()
        bad_name = csvio.check_name(name, "class name")
        if bad_name:
            raise InvalidInput(bad_name)
        levels = str(level).split("-")
        if not all(lv in LEVELS for lv in levels):
            raise InvalidInput(said("msg.store.bad_level", level=str(level), levels=', '.join(LEVELS)))
        m = re.fullmatch(r"(\d{4})-(\d{4})", str(school_year))
        if not m or int(m.group(2)) != int(m.group(1)) + 1:
            raise InvalidInput(words(f"the school year {school_year!r} must be two consecutive years like 2026-2027",
                                     "store.school_year", v=school_year))
        if self._row("SELECT 1 FROM classes WHERE name = ?", [name]):
            raise Conflict(words(f"a class named {name!r} exists already; choose another name", "store.class_taken", v=name))
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
            raise Conflict(words(f"the account {username!r} is disabled; reset its password first", "store.account_disabled",
                                 v=username))
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
            raise StoreError(said("msg.store.class_key_replaced"))

    def _require_in_class(self, classes: dict[str, str]) -> None:
        """Inside a write transaction: each pupil is still in the class whose key is about to seal its data
        (another process may have moved or erased it since the class was read)."""
        marks = ",".join("?" * len(classes))
        now = dict(self.db.execute(f"SELECT id, class_id FROM pupils WHERE id IN ({marks})", list(classes)).fetchall())
        if now != classes:
            raise StoreError(said("msg.store.pupil_moved"))

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

    def _seal_pupil(self, key: bytes, pupil_id: str, class_id: str, last: str, first: str) -> bytes:
        plain = json.dumps({"last": last, "first": first}, ensure_ascii=False).encode()
        return vault.seal(key, vault.pad(plain, _PUPIL_PAD), _ad("pupil", pupil_id, class_id))

    def _open_pupil(self, key: bytes, row: dict[str, Any]) -> Pupil:
        try:
            data = json.loads(vault.unpad(vault.open_(key, row["ct"], _ad("pupil", row["id"], row["class_id"]))))
        except vault.DecryptError as exc:
            raise StoreError(said("msg.store.pupil_decrypt", id=row['id'])) from exc
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
                raise Conflict(words(f"{same.first_name} {same.last_name} is already in this class", "store.in_class",
                                     v=f"{same.first_name} {same.last_name}"))
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
                raise Conflict(words(f"{p.first_name} {p.last_name} is already in that class", "store.in_class",
                                     v=f"{p.first_name} {p.last_name}"))
        with self._sealing(s, {row["class_id"]: old_key, class_id: new_key}, {pupil_id: row["class_id"]}):
            self.db["pupils"].update(pupil_id, {"class_id": class_id,
                                                "ct": self._seal_pupil(new_key, pupil_id, class_id, pupil.last_name, pupil.first_name)})
            for r in list(self.db.query("SELECT * FROM results WHERE pupil_id = ?", [pupil_id])):
                campaign = self._campaign(r["campaign_id"])
                self.db.execute("UPDATE results SET ct = ? WHERE campaign_id = ? AND pupil_id = ?",
                                [self._seal_results(new_key, campaign, pupil_id, self._open_results(old_key, r)), r["campaign_id"], pupil_id])
            self._audit(s.actor, "pupil-moved", f"pupil:{pupil_id}", f"class:{row['class_id']} -> class:{class_id}")
        return Pupil(pupil_id, class_id, pupil.last_name, pupil.first_name)

    def erase_pupil(self, actor: Session, pupil_id: str) -> None:
        """Remove a pupil and all their results; the bytes are zeroed (secure_delete) and the WAL emptied.

        Only the head teacher may: it cannot be undone, and a teacher correcting a list must not lose a
        pupil's results by one click (docs/guide-fr.md says so to the staff).
        """
        s = self._admin(actor)
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
