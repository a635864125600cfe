from __future__ import annotations

import pytest

from preau.node.records import database as dbmod
from preau.node.errors import DamagedDatabase
from preau.node.records.errors import SchemaError


def test_migrations_named_and_idempotent(tmp_path):
    d = dbmod.connect(tmp_path / "x.db")
    assert dbmod.migrate(d) == len(dbmod.MIGRATIONS) == dbmod.schema_version(d)
    assert dbmod.migrate(d) == len(dbmod.MIGRATIONS)
    assert d.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"pupils", "results", "accounts", "key_wraps", "audit", "tallies", "blobs"} <= set(d.table_names())


def test_a_later_migration_applies_and_a_failing_one_changes_nothing(tmp_path):
    d = dbmod.connect(tmp_path / "x.db")
    dbmod.migrate(d)

    def boom(db):
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        dbmod.migrate(d, dbmod.MIGRATIONS + [("boom", boom)])
    assert dbmod.schema_version(d) == len(dbmod.MIGRATIONS) and "half" not in d.table_names()
    dbmod.migrate(d, dbmod.MIGRATIONS + [("peers", lambda db: db.execute("CREATE TABLE peers (id TEXT)"))])
    assert dbmod.schema_version(d) == len(dbmod.MIGRATIONS) + 1 and "peers" in d.table_names()


def test_newer_schema_is_refused(tmp_path):
    d = dbmod.connect(tmp_path / "x.db")
    d.execute("PRAGMA user_version = 99")
    with pytest.raises(SchemaError, match=r"schema version 99 but this Préau knows only \d+ migrations: it was written by a newer Préau"):
        dbmod.migrate(d)


def test_not_a_database(tmp_path):
    (tmp_path / "x.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DamagedDatabase, match=r"is damaged \(file is not a database\)\. Stop Préau, move that file aside"):
        dbmod.connect(tmp_path / "x.db")
