"""The schema of `preau.db` (the school's records), on the node's one SQLite layer (`preau.node.database`).

Migrations are named and appended to `MIGRATIONS`, never edited: each runs in
one transaction, so a crash mid-upgrade leaves the previous schema intact.
Add a new concern's tables with a new, named migration at the end.
"""
from __future__ import annotations

import pathlib

from preau.node import database as base
from preau.node.database import Database, Migration
from preau.node.errors import DamagedDatabase, said
from preau.node.records.errors import SchemaError

def _m1_initial(db: Database) -> None:
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


def _m2_sealed_audit(db: Database) -> None:
    # The audit log, encrypted so that any session can append and only a head teacher reads:
    # entries are AEAD under an epoch key (one per store process), and each epoch key is sealed
    # (libsodium sealed box) to `school.audit_key`, a public key derived from the school key.
    # Rows of the plaintext `audit` table of older files are sealed and deleted at the first
    # head-teacher unlock (deriving the public key needs the school key).
    db.execute("CREATE TABLE audit_epochs (id INTEGER PRIMARY KEY AUTOINCREMENT, ct BLOB NOT NULL)")
    db.execute("""CREATE TABLE audit_sealed (
        id INTEGER PRIMARY KEY AUTOINCREMENT, epoch INTEGER NOT NULL, ct BLOB NOT NULL)""")
    db.execute("ALTER TABLE school ADD COLUMN audit_key BLOB")


def _m3_class_key_version(db: Database) -> None:
    # A class key is replaced when a teacher leaves the class (store.unassign_teacher); sessions
    # holding the old key see the version change at their next use and open the new one.
    db.execute("ALTER TABLE classes ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1")


def _gdpr_retention(db: Database) -> None:
    # School facts for the GDPR duties (docs/gdpr.md), no pupil data: the retention setting and the
    # contacts printed on the paperwork, the erasures done (dates and counts), and the backups this
    # node wrote (so that one made before an erasure can be flagged).
    db.execute("CREATE TABLE gdpr_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("""CREATE TABLE gdpr_purges (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, campaign_id TEXT,
        results INTEGER NOT NULL, pupils INTEGER NOT NULL, early INTEGER NOT NULL)""")
    db.execute("""CREATE TABLE gdpr_backups (
        id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, created_at TEXT NOT NULL)""")


MIGRATIONS: list[Migration] = [
    ("initial", _m1_initial),
    ("sealed_audit", _m2_sealed_audit),
    ("class_key_version", _m3_class_key_version),
    ("gdpr_retention", _gdpr_retention),
]


def schema_version(db: Database) -> int:
    """How many migrations the file has (also in PRAGMA user_version, which older Préau versions read)."""
    return len(base.applied_migrations(db)) or db.execute("PRAGMA user_version").fetchone()[0]


def connect(path: str | pathlib.Path) -> Database:
    try:
        return base.connect(path)
    except base.DatabaseFileError as exc:
        raise DamagedDatabase(path, exc.__cause__ if exc.__cause__ is not None else exc.message) from exc


def migrate(db: Database, migrations: list[Migration] | None = None) -> int:
    """Apply the migrations this file lacks; refuse a file written by a newer Préau."""
    migrations = MIGRATIONS if migrations is None else migrations
    try:
        base.migrate(db, migrations, what=said("msg.db.this_database"))
    except base.DatabaseFileError as exc:
        raise SchemaError(said("msg.db.install_again", what=exc.words)) from exc
    return len(migrations)
