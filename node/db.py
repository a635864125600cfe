"""The SQLite file: connection settings and numbered schema migrations.

Migrations are appended to `MIGRATIONS`, never edited: migration N brings a
database from `PRAGMA user_version` N-1 to N inside one transaction, so a crash
mid-upgrade leaves the previous version intact. The node layer adds its own
(non-pupil) tables by appending here.
"""
from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from typing import Callable, Iterator

import sqlite_utils

from .storage_errors import SchemaError

Migration = Callable[[sqlite_utils.Database], None]


def _m1_initial(db: sqlite_utils.Database) -> None:
    # Columns named `ct` hold AEAD ciphertext; everything else is plaintext and must say
    # nothing about a pupil (see docs/security.md, "what the file shows").
    db.execute("""CREATE TABLE school (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        uai TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE accounts (
        id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, role TEXT NOT NULL CHECK (role IN ('admin', 'teacher')),
        public_key BLOB NOT NULL, wrapped_secret BLOB NOT NULL, salt BLOB NOT NULL,
        opslimit INTEGER NOT NULL, memlimit INTEGER NOT NULL,
        active INTEGER NOT NULL DEFAULT 1, created_at TEXT NOT NULL)""")
    # key: "school", "class/<id>", "pseudonym"; holder: "recovery", "school", "account/<id>"
    db.execute("""CREATE TABLE key_wraps (
        key TEXT NOT NULL, holder TEXT NOT NULL, ct BLOB NOT NULL, PRIMARY KEY (key, holder))""")
    db.execute("""CREATE TABLE classes (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, level TEXT NOT NULL, school_year TEXT NOT NULL,
        created_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE account_classes (
        account_id TEXT NOT NULL REFERENCES accounts(id), class_id TEXT NOT NULL REFERENCES classes(id),
        PRIMARY KEY (account_id, class_id))""")
    db.execute("""CREATE TABLE pupils (
        id TEXT PRIMARY KEY, class_id TEXT NOT NULL REFERENCES classes(id), ct BLOB NOT NULL,
        created_at TEXT NOT NULL)""")
    db.execute("CREATE INDEX pupils_class ON pupils(class_id)")
    db.execute("""CREATE TABLE campaigns (
        id TEXT PRIMARY KEY, definition TEXT NOT NULL, updated_at TEXT NOT NULL)""")
    # One ciphertext per pupil and campaign holding every exercise's result, padded to a size
    # fixed by the campaign: the file does not even show which exercises were entered.
    db.execute("""CREATE TABLE results (
        campaign_id TEXT NOT NULL REFERENCES campaigns(id), pupil_id TEXT NOT NULL REFERENCES pupils(id),
        ct BLOB NOT NULL, PRIMARY KEY (campaign_id, pupil_id))""")
    db.execute("CREATE INDEX results_pupil ON results(pupil_id)")
    # One row per campaign, under the node key: score histograms for unattended counts.
    db.execute("""CREATE TABLE tallies (
        campaign_id TEXT PRIMARY KEY REFERENCES campaigns(id), ct BLOB NOT NULL)""")
    db.execute("""CREATE TABLE blobs (
        scope TEXT NOT NULL CHECK (scope IN ('school', 'node')), name TEXT NOT NULL, ct BLOB NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (scope, name))""")
    db.execute("""CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '')""")


def _m2_sealed_audit(db: sqlite_utils.Database) -> None:
    # The audit log, encrypted so that any session can append and only a head teacher reads:
    # entries are AEAD under an epoch key (one per store process), and each epoch key is sealed
    # (libsodium sealed box) to `school.audit_key`, a public key derived from the school key.
    # Rows of the plaintext `audit` table of older files are sealed and deleted at the first
    # head-teacher unlock (deriving the public key needs the school key).
    db.execute("CREATE TABLE audit_epochs (id INTEGER PRIMARY KEY AUTOINCREMENT, ct BLOB NOT NULL)")
    db.execute("""CREATE TABLE audit_sealed (
        id INTEGER PRIMARY KEY AUTOINCREMENT, epoch INTEGER NOT NULL, ct BLOB NOT NULL)""")
    db.execute("ALTER TABLE school ADD COLUMN audit_key BLOB")


def _m3_class_key_version(db: sqlite_utils.Database) -> None:
    # A class key is replaced when a teacher leaves the class (store.unassign_teacher); sessions
    # holding the old key see the version change at their next use and open the new one.
    db.execute("ALTER TABLE classes ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1")


MIGRATIONS: list[Migration] = [_m1_initial, _m2_sealed_audit, _m3_class_key_version]


def schema_version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


class Database(sqlite_utils.Database):
    """sqlite-utils' Database whose outermost `atomic()` is BEGIN IMMEDIATE.

    A plain BEGIN reads first and asks for the write lock later; if another
    process (the server, a `preau` command, a backup) wrote meanwhile, SQLite
    must refuse at once with "database is locked", without waiting. Taking the
    write lock at BEGIN lets the busy timeout do its job: the write waits for
    the other one, then goes ahead. Nested blocks stay savepoints.
    """

    @contextlib.contextmanager
    def atomic(self) -> Iterator["Database"]:
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.conn.rollback()  # a no-op if the error already ended the transaction
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.rollback()
                raise


def connect(path: str | pathlib.Path) -> sqlite_utils.Database:
    """Open (creating if needed) with WAL, full fsync on commit and zeroed deleted content.

    synchronous=FULL: a result acknowledged to a teacher survives a power cut, not only a
    process crash. secure_delete: an erased pupil's ciphertext does not linger in free pages.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    db = Database(conn, execute_plugins=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA secure_delete=ON")
        db.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise SchemaError(
            f"{path} is not a Préau database or is damaged ({exc}). Restore it from a backup."
        ) from exc
    return db


def migrate(db: sqlite_utils.Database, migrations: list[Migration] | None = None) -> int:
    """Apply the migrations this file lacks; refuse a file written by a newer Préau."""
    migrations = MIGRATIONS if migrations is None else migrations
    current = schema_version(db)
    if current > len(migrations):
        raise SchemaError(
            f"this database has schema version {current} but this Préau knows only up to "
            f"{len(migrations)}: it was written by a newer Préau. Install that version again."
        )
    for number in range(current + 1, len(migrations) + 1):
        with db.atomic():
            migrations[number - 1](db)
            db.execute(f"PRAGMA user_version = {number}")
    return len(migrations)
