"""The one SQLite layer of both node files (`preau.db`, `federation.db`): connect, atomic, named migrations.

- `connect(path)`: WAL, full fsync on commit, zeroed deleted content, foreign
  keys, a busy timeout; a damaged or foreign file is refused with a message
  that names it and says to restore from a backup.
- `Database.atomic()`: the outermost block is BEGIN IMMEDIATE (takes the write
  lock at once, so the busy timeout works), nested blocks are savepoints, and a
  failed COMMIT (a full disk) rolls back instead of leaving a transaction open.
- `migrate(db, migrations)`: migrations are named, appended to a list and never
  edited; each one runs in its own transaction and is recorded in
  `schema_migrations`, so parts of Préau written side by side add theirs
  without renumbering anyone's. Files from before named migrations (numbered
  with `PRAGMA user_version`) are adopted: their first N migrations are taken
  as applied. A file that records a migration this Préau does not know was
  written by a newer Préau and is refused.
- `write_private_file(path, data)`: an atomic write (temporary file, fsync,
  rename) created 0600, for keys and settings.
- `DatabaseThread`: while a node serves, one thread owns both files; the event
  loop hands it work (`await thread.run(fn, ...)`) and never waits on SQLite
  or on a COMMIT's fsync itself. A statement run from any other thread is
  refused (`WrongThread`), so a forgotten call site fails loudly in tests
  instead of interleaving with the owner's transaction.
"""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import os
import pathlib
import queue
import sqlite3
import threading
import time
from typing import Any, Callable, Iterator, Sequence, TypeVar, Union

import sqlite_utils

from preau.node import datadir
from preau.node.errors import EXIT_DATA, UserError, Words, said
from preau.node.testhooks import unprotected

log = logging.getLogger("preau.node")

MigrationStep = Union[str, Callable[["Database"], None]]
Migration = tuple[str, MigrationStep]


class DatabaseFileError(Exception):
    """A database file cannot be used: damaged, not a Préau file, or written by a newer Préau.

    Each file's owner (the records store, the federation store) turns it into
    its own user-facing error class.
    """

    def __init__(self, message: "str | Words", *, newer: bool = False):
        self.words = message if isinstance(message, Words) else Words(message)  # said to a person by the owner
        super().__init__(self.words.english)
        self.message = self.words.english
        self.newer = newer


T = TypeVar("T")


class WrongThread(RuntimeError):
    """A statement on a connection owned by the database thread, run from another thread: a call site that
    forgot `await node.run(...)`. Refused, because it would interleave with the owner's transaction."""


class OwnedConnection(sqlite3.Connection):
    """A connection that, once owned (`owner` set to a thread id), refuses statements from other threads."""

    owner: int | None = None

    def _check(self) -> None:
        if self.owner is not None and threading.get_ident() != self.owner:
            raise WrongThread("database work outside the database thread while the node serves: run it through "
                              "`await node.run(...)` (node/database.py, DatabaseThread)")

    def execute(self, *args: Any) -> sqlite3.Cursor:
        self._check()
        return super().execute(*args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        self._check()
        return super().executemany(*args)

    def executescript(self, *args: Any) -> sqlite3.Cursor:
        self._check()
        return super().executescript(*args)

    def cursor(self, *args: Any, **kw: Any) -> sqlite3.Cursor:
        self._check()
        return super().cursor(*args, **kw)

    def commit(self) -> None:
        self._check()
        super().commit()

    def rollback(self) -> None:
        self._check()
        super().rollback()


class DatabaseThread:
    """The one thread that runs a serving node's database work (both files), one job at a time.

    As datasette's `execute_write_fn`: the event loop hands over a plain function and awaits its result;
    the thread runs it to the end (a job is never interrupted half-way: a cancelled caller stops waiting,
    the job still finishes or rolls back as a whole). One thread, so jobs never interleave and every
    transaction is the only one on its connection. `own(db)` makes a connection refuse other threads.
    A node without one (a CLI command, a test without a loop) runs its work inline (`inline`) and owns nothing.
    """

    def __init__(self) -> None:
        # A plain thread and a queue, not a ThreadPoolExecutor: a job is one queue item and one call back to the
        # loop. run_in_executor's concurrent Future, its chaining to an asyncio one and the shield cost about
        # twice the CPU a hop (62 against 24 to 30 µs, measured on the 2-core development machine).
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="preau-db", daemon=True)
        self._thread.start()
        atexit.register(self._stop)  # a process ending without close(): the jobs handed over still run
        self.ident = self._thread.ident
        self.jobs = 0
        self.busy_seconds = 0.0  # time spent in jobs: what the event loop no longer spends (bench_sync)
        self._owned: list[Database] = []

    def own(self, *dbs: "Database | None") -> None:
        """Only this thread writes `dbs` from now on; every other thread reads through a query-only connection
        of its own (`for_this_thread`), which sees committed data only and refuses writes."""
        for db in dbs:
            if db is not None and isinstance(db.conn, OwnedConnection):
                db.reader = connect_reader(db)
                db.conn.owner = self.ident
                self._owned.append(db)

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fn, done = item
            start = time.perf_counter()
            try:
                result, error = fn(), None
            except BaseException as exc:  # handed back to the caller, as the executor did
                result, error = None, exc
            finally:
                self.jobs += 1
                self.busy_seconds += time.perf_counter() - start
            done(result, error)

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run `fn(*args, **kw)` on the database thread; its result or its exception comes back here.

        A job handed over always runs to its end, even if its caller is cancelled meanwhile (a client that
        hung up, a session at shutdown): cancelling the caller must not silently drop a queued write. The
        caller's future is only a receiver: cancelling it stops the waiting, never the job."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(result: Any, error: BaseException | None) -> None:
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody left waiting
                    loop.call_soon_threadsafe(_settle, future, result, error)

        self._put(functools.partial(fn, *args, **kw), done)
        return await future

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """From a thread that is not the event loop's (or before serving): run on the database thread and wait."""
        self._refuse_if_closed()  # before the ident check: a thread started after close() may reuse the old ident
        if threading.get_ident() == self.ident:
            return fn(*args, **kw)
        finished = threading.Event()
        outcome: list = []

        def done(result: Any, error: BaseException | None) -> None:
            outcome[:] = [result, error]
            finished.set()

        self._put(functools.partial(fn, *args, **kw), done)
        finished.wait()
        result, error = outcome
        if error is not None:
            raise error
        return result

    def _refuse_if_closed(self) -> None:
        if self._closed:  # a job after close() would wait for ever behind the stop: refused, as an executor does
            raise RuntimeError("the database thread is closed: no new database work")

    def _put(self, job: Callable[[], Any], done: Callable[[Any, "BaseException | None"], None]) -> None:
        self._refuse_if_closed()
        self._jobs.put((job, done))

    def _stop(self) -> None:
        self._closed = True
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def close(self) -> None:
        """Wait for the jobs already handed over, then hand the connections back to whoever closes them."""
        self._stop()
        atexit.unregister(self._stop)
        for db in self._owned:
            db.conn.owner = None
            if db.reader is not None:
                db.reader.conn.close()
                db.reader = None
        self._owned.clear()


def _settle(future: "asyncio.Future[Any]", result: Any, error: BaseException | None) -> None:
    """Hand a job's outcome to its caller, unless the caller stopped waiting (cancelled): then nobody is left
    to tell, and the job has run all the same."""
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def inline(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """The runner of a node with no database thread (a command, a test): the work runs right here."""
    return fn(*args, **kw)


class Database(sqlite_utils.Database):
    """sqlite-utils' Database whose outermost `atomic()` is BEGIN IMMEDIATE.

    A plain BEGIN reads first and asks for the write lock later; if another
    process (the server, a `preau` command, a backup) wrote meanwhile, SQLite
    must refuse at once with "database is locked", without waiting. Taking the
    write lock at BEGIN lets the busy timeout do its job: the write waits for
    the other one, then goes ahead. Nested blocks stay savepoints.
    """

    commits = 0  # COMMITs that wrote something (each one a disk sync); benchmarks and tests count them
    reader: "Database | None" = None  # while a DatabaseThread owns this one: the other threads' connection
    query_only = False  # a reader: a write here is a call site that forgot the database thread

    @contextlib.contextmanager
    def atomic(self) -> Iterator["Database"]:
        if self.query_only:
            raise WrongThread("a write on the event loop while the node serves: run it on the database thread "
                              "with `await node.run(...)` (node/database.py, DatabaseThread)")
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        changes = self.conn.total_changes
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
                self.conn.rollback()  # a failed COMMIT (disk full) must not leave the transaction open
                raise
            if self.conn.total_changes > changes:
                self.commits += 1


def connect(path: str | pathlib.Path, *, busy_timeout: float = 10.0) -> Database:
    """Open (creating if needed) with WAL, full fsync on commit and zeroed deleted content.

    synchronous=FULL: a result acknowledged to a teacher survives a power cut, not only a
    process crash. secure_delete: an erased pupil's ciphertext does not linger in free pages.
    """
    path = pathlib.Path(path)
    if not path.exists():
        # Created 0600 before SQLite touches it: nothing of a node is readable by other users.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, private_mode()))
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout,
                           factory=OwnedConnection)
    db = Database(conn, execute_plugins=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA secure_delete=ON")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseFileError(said("msg.db.not_preau", path=str(path), detail=str(exc))) from exc
    return db


def connect_reader(db: Database) -> Database:
    """A query-only connection to the same file, for the threads that do not own `db` (the event loop)."""
    path = db.execute("PRAGMA database_list").fetchone()[2]
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=db.conn.execute(
        "PRAGMA busy_timeout").fetchone()[0] / 1000)
    reader = Database(conn, execute_plugins=False)
    reader.execute("PRAGMA query_only=ON")
    reader.execute("PRAGMA foreign_keys=ON")
    reader.query_only = True
    return reader


def for_this_thread(db: Database) -> Database:
    """`db` itself, or its query-only reader when another thread owns it (see DatabaseThread)."""
    owner = getattr(db.conn, "owner", None)
    if owner is None or db.reader is None or owner == threading.get_ident():
        return db
    return db.reader


def sqlite_image(conn: sqlite3.Connection, tmp: pathlib.Path, name: str) -> bytes:
    """A consistent copy of a live database (SQLite's online backup), as one file's bytes."""
    snap = pathlib.Path(tmp) / name
    dst = sqlite3.connect(snap)
    try:
        conn.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
    return snap.read_bytes()


def run_script(db: Database, sql: str) -> None:
    """Run several SQL statements inside the caller's transaction (unlike executescript, which commits).

    Statements end at a `;` that SQLite itself says completes one (not one inside a string or a comment).
    """
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip().rstrip(";").strip():
                db.execute(pending)
            pending = ""
    if pending.strip().rstrip(";").strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending.strip()[:80]!r}")


def applied_migrations(db: Database) -> list[str]:
    if not db["schema_migrations"].exists():
        return []
    return [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY rowid")]


def migrate(db: Database, migrations: Sequence[Migration], *, what: str = "this database") -> list[str]:
    """Apply the named migrations the file lacks, each in its own transaction; return the names applied."""
    names = [name for name, _ in migrations]
    if len(set(names)) != len(names):
        raise ValueError("two migrations share a name")
    with db.atomic():
        if not db["schema_migrations"].exists():
            db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
            legacy = db.execute("PRAGMA user_version").fetchone()[0]
            if legacy > len(migrations):
                raise DatabaseFileError(said("msg.db.newer_version", what=what, version=legacy, known=len(migrations)),
                                        newer=True)
            for name in names[:legacy]:
                db.execute("INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)", [name, int(time.time())])
    done = applied_migrations(db)
    unknown = [name for name in done if name not in names]
    if unknown:
        raise DatabaseFileError(said("msg.db.newer_migrations", what=what, names=", ".join(unknown)), newer=True)
    applied = []
    for name, step in migrations:
        if name in done:
            continue
        with db.atomic():
            if callable(step):
                step(db)
            else:
                run_script(db, step)
            db.execute("INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)", [name, int(time.time())])
            # user_version keeps counting, so an older Préau (numbered migrations) refuses a newer file
            db.execute(f"PRAGMA user_version = {len(applied_migrations(db))}")
        applied.append(name)
    return applied


PRIVATE_FILES = datadir.PRIVATE
"""The files of a data folder that only the node's own user may read (issue 11, item 5)."""


def private_mode() -> int:
    """0600; a test run that switched the `file_modes` protection off gets the old 0644 (tests/privacy)."""
    return 0o644 if unprotected("file_modes") else 0o600


def check_private_files(data_dir: str | pathlib.Path) -> list[str]:
    """At start: every data and key file is 0600. A looser one (copied by hand, restored by a tool) is
    tightened and named in the log; one we cannot tighten stops the node with what to do."""
    if unprotected("file_modes"):
        return []
    fixed = []
    for name in PRIVATE_FILES:
        path = pathlib.Path(data_dir) / name
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(path, 0o600)
            except OSError as exc:
                raise UserError(said("msg.db.file_mode", path=str(path), mode=f"{mode:o}", detail=str(exc.strerror)),
                                EXIT_DATA, code="file_mode") from None
            log.info("%s could be read by other users (mode %o); it is now 0600", path, mode)
            fixed.append(name)
    return fixed


def write_private_file(path: str | pathlib.Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary file, fsync, rename, fsync of the folder), mode 0600."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, private_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, private_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
