"""The one SQLite layer of both node files: named migrations, atomic blocks, private files."""
from __future__ import annotations

import os
import stat

import pytest

from preau.node import database


def test_named_migrations_adopt_a_numbered_file_and_run_only_what_is_missing(tmp_path):
    db = database.connect(tmp_path / "x.db")
    db.execute("CREATE TABLE a (x)")
    db.execute("PRAGMA user_version = 1")  # a file from before named migrations, at version 1
    applied = database.migrate(db, [("a", "CREATE TABLE a (x);"), ("b", "CREATE TABLE b (y); CREATE TABLE c (z);")])
    assert applied == ["b"] and {"a", "b", "c"} <= set(db.table_names())
    assert database.applied_migrations(db) == ["a", "b"]
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2  # older Préau versions still see "newer"
    assert database.migrate(db, [("a", "x"), ("b", "y")]) == []


def test_migrations_written_side_by_side_both_apply_whatever_their_order(tmp_path):
    db = database.connect(tmp_path / "x.db")
    database.migrate(db, [("base", "CREATE TABLE t (x);"), ("gdpr", "ALTER TABLE t ADD COLUMN g;")])
    database.migrate(db, [("base", "-"), ("stats", "ALTER TABLE t ADD COLUMN s;"), ("gdpr", "-")])
    assert {c.name for c in db["t"].columns} == {"x", "g", "s"}


def test_a_file_with_a_migration_this_version_does_not_know_is_refused(tmp_path):
    db = database.connect(tmp_path / "x.db")
    database.migrate(db, [("base", "CREATE TABLE t (x);"), ("future", "CREATE TABLE f (y);")])
    with pytest.raises(database.DatabaseFileError, match="future.*newer Préau") as caught:
        database.migrate(db, [("base", "CREATE TABLE t (x);")])
    assert caught.value.newer


def test_a_failing_migration_changes_nothing(tmp_path):
    db = database.connect(tmp_path / "x.db")
    with pytest.raises(Exception):
        database.migrate(db, [("ok", "CREATE TABLE t (x);"), ("bad", "CREATE TABLE u (y); INSERT INTO nowhere VALUES (1);")])
    assert "t" in db.table_names() and "u" not in db.table_names()
    assert database.applied_migrations(db) == ["ok"]


def test_nested_atomic_blocks_are_savepoints_and_count_one_commit(tmp_path):
    db = database.connect(tmp_path / "x.db")
    db.execute("CREATE TABLE t (x)")
    before = db.commits
    with db.atomic():
        db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError):
            with db.atomic():
                db.execute("INSERT INTO t VALUES (2)")
                raise RuntimeError
        db.execute("INSERT INTO t VALUES (3)")
    assert [r[0] for r in db.execute("SELECT x FROM t ORDER BY x")] == [1, 3]
    assert db.commits == before + 1


def test_files_are_created_private(tmp_path):
    old = os.umask(0o022)
    try:
        database.connect(tmp_path / "x.db").close()
        database.write_private_file(tmp_path / "k.key", b"secret")
    finally:
        os.umask(old)
    for name in ("x.db", "k.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    assert (tmp_path / "k.key").read_bytes() == b"secret"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_damaged_file_names_itself(tmp_path):
    (tmp_path / "x.db").write_bytes(b"not sqlite at all" * 200)
    with pytest.raises(database.DatabaseFileError, match=r"x\.db is not a Préau database or is damaged"):
        database.connect(tmp_path / "x.db")


def test_an_owned_file_is_written_by_its_thread_only_and_read_elsewhere_as_committed(tmp_path):
    db = database.connect(tmp_path / "x.db")
    database.migrate(db, [("base", "CREATE TABLE t (x);")])
    thread = database.DatabaseThread()
    try:
        thread.own(db)
        here = database.for_this_thread(db)
        assert here is db.reader and here.query_only
        with pytest.raises(database.WrongThread):
            with here.atomic():  # a write from a thread that does not own the file
                pass
        with pytest.raises(database.WrongThread):
            db.execute("SELECT 1")  # the writer's connection itself refuses other threads

        def insert_and_peek() -> list:
            with database.for_this_thread(db).atomic():
                database.for_this_thread(db).execute("INSERT INTO t VALUES (1)")
                return [r[0] for r in thread_reader.execute("SELECT x FROM t")]  # the other thread's view

        thread_reader = db.reader
        assert thread.call(insert_and_peek) == []  # uncommitted: not seen by the readers
        assert [r[0] for r in here.execute("SELECT x FROM t")] == [1]  # committed: seen
    finally:
        thread.close()
    assert database.for_this_thread(db) is db and db.reader is None  # handed back when the thread stops
    db.execute("INSERT INTO t VALUES (2)")


def test_a_job_handed_to_the_database_thread_runs_even_if_its_caller_is_cancelled(tmp_path):
    """A client that hangs up cancels its handler; the write it had handed over (queued behind another job)
    must still happen whole, not be dropped from the queue."""
    import asyncio
    import threading
    thread = database.DatabaseThread()
    ran: list[str] = []
    gate = threading.Event()

    async def main() -> None:
        first = asyncio.ensure_future(thread.run(gate.wait, 5))  # keeps the thread busy
        queued = asyncio.ensure_future(thread.run(ran.append, "queued write"))
        await asyncio.sleep(0.05)
        queued.cancel()  # its caller goes away while the job waits in the queue
        gate.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await queued
        await thread.run(lambda: None)  # the queue has drained

    try:
        asyncio.run(main())
    finally:
        thread.close()
    assert ran == ["queued write"]


def test_work_handed_to_a_closed_database_thread_is_refused_not_left_waiting(tmp_path):
    """After close() a job would queue behind the stop and its caller wait for ever: it is refused at once."""
    import asyncio
    import threading
    thread = database.DatabaseThread()
    thread.close()
    outcome: list = []

    def from_another_thread() -> None:
        try:
            thread.call(lambda: None)
        except RuntimeError as exc:
            outcome.append(str(exc))
    caller = threading.Thread(target=from_another_thread, daemon=True)
    caller.start()
    caller.join(2)  # without the refusal it would still be waiting
    assert outcome and "closed" in outcome[0]

    async def main() -> None:
        with pytest.raises(RuntimeError, match="closed"):
            await asyncio.wait_for(thread.run(lambda: None), 2)
    asyncio.run(main())
