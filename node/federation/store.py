"""The federation store: peers, invitations, published documents, releases, statistics, logs.

Nothing here is about one pupil: this file holds what a node publishes or
receives (signed aggregate documents and the bookkeeping around them), so the
node can keep syncing after a reboot with nobody logged in. Pupil data lives in
the encrypted store (`preau.node.records.store`).

One writer: every write is one transaction, committed before the caller
acknowledges anything to a peer (persist, then reply). While a node serves,
that writer is its database thread (node/database.py); other threads read.

Why one module of about 500 lines: one class over one file's tables, in
sections (peers, invitations, documents, statistics, logs); the schema is in
schema.py.
"""
from __future__ import annotations

import contextlib
import json
import pathlib
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator


from preau.crdt.errors import CrdtError
from preau.crdt.signing import SignedRelease
from preau.node import database as base
from preau.node.federation.schema import MIGRATIONS
from preau.node.errors import EXIT_DATA, UserError, said

STATS_VERSION = 1  # the version of preau.crdt.statistics' dictionary form that stats() assembles


class FedStoreError(Exception):
    pass


class FedStoreDamaged(FedStoreError, UserError):
    """federation.db cannot be read: the message names the file and says how to restore it."""

    exit_code = EXIT_DATA


class FedStoreTooNew(FedStoreError, UserError):
    """federation.db was written by a newer Préau: the person can fix it by upgrading."""

    exit_code = EXIT_DATA


@dataclass(frozen=True, slots=True)
class StoredDocument:
    doc_id: str
    kind: str
    owner: str
    campaign: str | None
    data: bytes
    updated_at: int


def _now() -> int:
    return int(time.time())


def _event_params(stored: str | None) -> dict | None:
    """An event's values, or None when it has none (logged before the event_params migration, or unreadable)."""
    if stored is None:
        return None
    try:
        params = json.loads(stored)
    except ValueError:
        return None
    return params if isinstance(params, dict) else None


class FedStore:
    def __init__(self, path: pathlib.Path | str, clock: Callable[[], int] = _now):
        self.path = pathlib.Path(path)
        self._clock = clock
        self._contacts: dict[str, int] = {}  # peer key -> when heard from, not yet written
        self._flushing = False
        try:
            self._db = base.connect(self.path, busy_timeout=5.0)
        except base.DatabaseFileError as exc:
            raise FedStoreDamaged(said("msg.fedstore.damaged", what=exc.words)) from exc
        self._migrate()

    @property
    def db(self) -> base.Database:
        """The connection for this thread: the writer, or a query-only reader while the node's database thread
        owns the writer (node/database.py, DatabaseThread)."""
        return base.for_this_thread(self._db)

    @property
    def writer(self) -> base.Database:
        return self._db

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, args: list | tuple = ()) -> list[dict]:
        """Rows as dicts, straight from the connection (one statement reads consistently by itself;
        sqlite-utils' query wraps each in a savepoint, three statements where one does)."""
        cur = self.db.conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    # -- schema -------------------------------------------------------------

    def _migrate(self) -> None:
        try:
            base.migrate(self.db, MIGRATIONS, what=str(self.path))
        except base.DatabaseFileError as exc:
            self.db.close()
            if exc.newer:
                raise FedStoreTooNew(said("msg.fedstore.newer", what=exc.words)) from exc
            raise FedStoreDamaged(exc.words) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group several writes into one transaction (calls inside it are savepoints of it).

        The outermost transaction also writes the contacts noted since the last commit (`note_contact`),
        so a sync session that stores a release costs the district one COMMIT, not two.
        """
        outermost = not self.db.conn.in_transaction
        changes = self.db.conn.total_changes
        with self.db.atomic():
            yield self.db.conn
            # Contacts ride on a commit that writes anyway (a read-only transaction costs no disk sync).
            carry = outermost and (self._flushing or self.db.conn.total_changes > changes)
            written = dict(self._contacts) if carry else {}
            for key, at in written.items():
                self.db.conn.execute("UPDATE peers SET last_contact = ?, last_error = NULL, last_error_code = NULL WHERE key = ?",
                                     [at, key])
        for key, at in written.items():
            if self._contacts.get(key) == at:
                del self._contacts[key]

    def note_contact(self, key: str) -> None:
        """A peer was heard from: written with this store's next commit (or `flush_contacts`), not by a commit
        of its own; to the minute, so a busy peer does not cost a write per session."""
        now = self._clock()
        row = self.db.execute("SELECT last_contact, last_error FROM peers WHERE key = ?", [key]).fetchone()
        if row is not None and row[1] is None and row[0] is not None and now - row[0] < 60:
            return
        self._contacts[key] = now

    @property
    def unwritten_contacts(self) -> bool:
        """Whether `flush_contacts` has anything to write (asked from the event loop: no database work)."""
        return bool(self._contacts)

    def flush_contacts(self) -> None:
        """Write the contacts no transaction has written yet (the end of a session that stored nothing)."""
        if self._contacts:
            self._flushing = True
            try:
                with self.transaction():
                    pass
            finally:
                self._flushing = False

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # -- meta ---------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, json.dumps(value)],
            )

    # -- events (a short operational log, no pupil data) -----------------------

    def log_event(self, kind: str, detail: str, **params: Any) -> None:
        """`detail`: the operator's line, in English (logs, `preau status`); `params`: the values a page's sentence
        needs (campaign id, version, pool...), stored as JSON so no page reads `detail` back (a value JSON cannot
        hold is stored as its str(): logging an event never fails the work it records)."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO events(at, kind, detail, params) VALUES (?, ?, ?, ?)",
                         [self._clock(), kind, detail, json.dumps(params, sort_keys=True, default=str)])

    def events(self, limit: int = 50) -> list[dict]:
        """Newest first; `params` is a dict, or None for an event logged before events carried their values."""
        rows = self._query("SELECT * FROM events ORDER BY id DESC LIMIT ?", [limit])
        for row in rows:
            row["params"] = _event_params(row.get("params"))
        return rows

    # -- peers --------------------------------------------------------------

    def add_peer(self, key: str, *, node_id: str, role: str, uai: str | None = None, name: str | None = None,
                 address: str | None = None, static_key: str | None = None, town: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO peers(key, node_id, role, uai, name, address, static_key, enrolled_at, town)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(key) DO UPDATE SET node_id=excluded.node_id, role=excluded.role,
                     uai=excluded.uai, name=excluded.name, address=excluded.address,
                     static_key=excluded.static_key, status='active', town=excluded.town""",
                [key, node_id, role, uai, name, address, static_key, self._clock(), town],
            )

    def peer(self, key: str) -> dict | None:
        rows = self._query("SELECT * FROM peers WHERE key = ?", [key])
        return rows[0] if rows else None

    def peers(self, role: str | None = None) -> list[dict]:
        if role:
            return self._query("SELECT * FROM peers WHERE role = ? ORDER BY uai, key", [role])
        return self._query("SELECT * FROM peers ORDER BY role, uai, key")

    def member_roles(self) -> set[str]:
        """The roles of this node's active members ("school", "child"): what its pages call them."""
        return {r["role"] for r in self._query("SELECT DISTINCT role FROM peers WHERE status = 'active' "
                                                "AND role IN ('school', 'child')")}

    def active_peer(self, key: str) -> dict | None:
        p = self.peer(key)
        return p if p and p["status"] == "active" else None

    def set_peer_name(self, key: str, name: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE peers SET name = ? WHERE key = ? AND (name IS NULL OR name != ?)", [name, key, name])

    def set_peer_address(self, key: str, address: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE peers SET address = ? WHERE key = ?", [address, key])

    def forget_counts(self, owners: list[str]) -> int:
        """Remove these keys' entries from every campaign's statistics (a revoked school's counts); how many went."""
        with self.transaction() as conn:
            return conn.executemany("DELETE FROM stats_entries WHERE owner = ?", [(o,) for o in owners]).rowcount

    def forget_peer(self, key: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM peers WHERE key = ?", [key])

    def revoke_peer(self, key: str) -> bool:
        with self.transaction() as conn:
            cur = conn.execute("UPDATE peers SET status = 'revoked' WHERE key = ? AND status = 'active'", [key])
            return cur.rowcount == 1

    def rotate_peer(self, old_key: str, new_key: str, new_static: str | None) -> None:
        """Move a peer's pin to its new key; the old key is refused from then on."""
        with self.transaction() as conn:
            row = conn.execute("SELECT * FROM peers WHERE key = ?", [old_key]).fetchone()
            if row is None:
                raise FedStoreError("unknown peer")
            conn.execute(
                """INSERT INTO peers(key, node_id, role, uai, name, address, static_key, status, enrolled_at, town,
                                     last_contact)
                   SELECT ?, node_id, role, uai, name, address, ?, 'active', enrolled_at, town, last_contact
                   FROM peers WHERE key = ?""",
                [new_key, new_static, old_key],
            )
            conn.execute("UPDATE peers SET status = 'rotated', replaced_by = ? WHERE key = ?", [new_key, old_key])

    def predecessors(self, key: str) -> list[str]:
        """Every key this peer rotated away from, newest first (a chain of `replaced_by` links)."""
        out: list[str] = []
        current = key
        while True:
            row = self.db.execute("SELECT key FROM peers WHERE replaced_by = ?", [current]).fetchone()
            if row is None or row[0] in out or row[0] == key:
                return out
            out.append(row[0])
            current = row[0]

    def newest_key(self, key: str) -> str:
        """The key this peer uses now, following its rotations from `key` (`key` itself if it never rotated)."""
        seen = {key}
        while True:
            row = self.db.execute("SELECT replaced_by FROM peers WHERE key = ?", [key]).fetchone()
            if row is None or row[0] is None or row[0] in seen:
                return key
            key = row[0]
            seen.add(key)

    def touch_peer(self, key: str, *, error: str | None = None, error_code: str | None = None) -> None:
        """Note a contact (to the minute: a busy peer does not cost a disk sync per session) or an error
        (its English text, and its stable code, which the pages say in words)."""
        if error is None:
            now = self._clock()
            row = self.db.execute("SELECT last_contact, last_error FROM peers WHERE key = ?", [key]).fetchone()
            if row is not None and row[1] is None and row[0] is not None and now - row[0] < 60:
                return
        with self.transaction() as conn:
            if error is None:
                conn.execute("UPDATE peers SET last_contact = ?, last_error = NULL, last_error_code = NULL WHERE key = ?",
                             [now, key])
            else:
                conn.execute("UPDATE peers SET last_error = ?, last_error_code = ? WHERE key = ?", [error, error_code, key])

    # -- invitations ---------------------------------------------------------

    def add_invitation(self, inv_id: str, uai: str, secret: str, expires_at: int, *,
                       name: str | None = None, address: str | None = None, member: str = "school",
                       town: str | None = None, code_slot: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO invitations(id, uai, secret, created_at, expires_at, name, address, member, town, code_slot) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [inv_id, uai, secret, self._clock(), expires_at, name, address, member, town, code_slot],
            )

    def invitation_by_slot(self, slot: str) -> dict | None:
        """The newest invitation whose short code starts with `slot` (used, revoked or expired ones too, so
        the school is told why its code no longer works)."""
        rows = self._query("SELECT * FROM invitations WHERE code_slot = ? ORDER BY created_at DESC LIMIT 1", [slot])
        return rows[0] if rows else None

    def slot_taken(self, slot: str, since: int) -> bool:
        """True if an invitation made since `since` has this slot: a new code must not be confused with it."""
        return bool(self._query("SELECT 1 FROM invitations WHERE code_slot = ? AND created_at >= ? LIMIT 1", [slot, since]))

    def count_code_try(self, inv_id: str) -> int:
        """One more try of this invitation's short code (counted before the answer can tell anything); the new count."""
        with self.transaction() as conn:
            conn.execute("UPDATE invitations SET code_failures = code_failures + 1 WHERE id = ?", [inv_id])
            row = conn.execute("SELECT code_failures FROM invitations WHERE id = ?", [inv_id]).fetchone()
            return int(row[0]) if row else 0

    def forgive_code_try(self, inv_id: str) -> None:
        """The try proved the code: it was not a wrong guess."""
        with self.transaction() as conn:
            conn.execute("UPDATE invitations SET code_failures = MAX(code_failures - 1, 0) WHERE id = ?", [inv_id])

    def invitation(self, inv_id: str) -> dict | None:
        rows = self._query("SELECT * FROM invitations WHERE id = ?", [inv_id])
        return rows[0] if rows else None

    def invitations(self) -> list[dict]:
        return self._query("SELECT * FROM invitations ORDER BY created_at DESC")

    def use_invitation(self, inv_id: str, by: str) -> bool:
        """Mark an invitation used; False if it was already used or revoked (single use, race-free)."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE invitations SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL",
                [self._clock(), by, inv_id],
            )
            return cur.rowcount == 1

    def revoke_invitation(self, inv_id: str) -> bool:
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE invitations SET revoked_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL",
                [self._clock(), inv_id],
            )
            return cur.rowcount == 1

    # -- documents and releases --------------------------------------------------

    def put_document(self, doc_id: str, kind: str, owner: str, data: bytes, campaign: str | None = None) -> None:
        with self.transaction() as conn:
            self._put_document(conn, doc_id, kind, owner, data, campaign)

    def _put_document(self, conn, doc_id, kind, owner, data, campaign) -> None:
        existing = conn.execute("SELECT kind, owner FROM documents WHERE doc_id = ?", [doc_id]).fetchone()
        if existing and (existing[0], existing[1]) != (kind, owner):
            raise FedStoreError(f"document {doc_id} is stored with another kind or owner")
        conn.execute(
            """INSERT INTO documents(doc_id, kind, owner, campaign, data, updated_at) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(doc_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at""",
            [doc_id, kind, owner, campaign, data, self._clock()],
        )

    def kind_and_owner(self, doc_id: str) -> tuple[str, str] | None:
        """What entitlement needs of a stored document, without reading its (growing) data."""
        row = self.db.execute("SELECT kind, owner FROM documents WHERE doc_id = ?", [doc_id]).fetchone()
        return (row[0], row[1]) if row else None

    def document(self, doc_id: str) -> StoredDocument | None:
        row = self.db.execute(
            "SELECT doc_id, kind, owner, campaign, data, updated_at FROM documents WHERE doc_id = ?", [doc_id]
        ).fetchone()
        return StoredDocument(*row) if row else None

    def offerable(self, kinds: tuple[str, ...], owners: tuple[str, ...] = (), *, carried: bool = False,
                  doc_ids: tuple[str, ...] = ()) -> dict[str, bytes]:
        """Latest signed release of each document of `kinds` written by one of `owners` (or carried: written
        by a node not pinned here), or named in `doc_ids`; one query, for a session's offer."""
        q = ",".join("?" * len(kinds))
        cond: list[str] = []
        if owners:
            cond.append(f"owner IN ({','.join('?' * len(owners))})")
        if carried:
            cond.append("owner NOT IN (SELECT key FROM peers)")
        if doc_ids:
            cond.append(f"d.doc_id IN ({','.join('?' * len(doc_ids))})")
        if not cond:
            return {}
        rows = self.db.execute(
            f"""SELECT d.doc_id, r.signed FROM documents d
                JOIN releases r ON r.doc_id = d.doc_id
                 AND r.number = (SELECT max(number) FROM releases WHERE doc_id = d.doc_id)
                WHERE d.kind IN ({q}) AND ({' OR '.join(cond)}) ORDER BY d.doc_id""",
            [*kinds, *owners, *doc_ids]).fetchall()
        return {doc_id: signed for doc_id, signed in rows}

    def documents(self, *, kind: str | None = None, owner: str | None = None, campaign: str | None = None) -> list[StoredDocument]:
        sql = "SELECT doc_id, kind, owner, campaign, data, updated_at FROM documents WHERE 1=1"
        args: list[Any] = []
        for col, val in (("kind", kind), ("owner", owner), ("campaign", campaign)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        return [StoredDocument(*row) for row in self.db.execute(sql + " ORDER BY doc_id", args).fetchall()]

    def holds_campaign(self, campaign: str) -> bool:
        """Whether a campaign document for `campaign` is held here (its id only: no document is read)."""
        return self.db.execute("SELECT 1 FROM documents WHERE kind = 'campaign' AND campaign = ? LIMIT 1",
                               [campaign]).fetchone() is not None

    def accept_release(self, doc_id: str, kind: str, owner: str, campaign: str | None, data: bytes,
                       number: int, signed: bytes, from_peer: str | None,
                       stats: tuple | None = None) -> None:
        """Store a verified release with its document (and the statistics it updates) in one transaction.

        `stats`: (campaign, owner, entry, older owner keys whose entries it replaces) for one school's
        entry, or (campaign, data) to replace a whole statistics record.
        """
        with self.transaction() as conn:
            self._put_document(conn, doc_id, kind, owner, data, campaign)
            conn.execute(
                "INSERT OR IGNORE INTO releases(doc_id, number, signed, received_at, from_peer) VALUES (?, ?, ?, ?, ?)",
                [doc_id, number, signed, self._clock(), from_peer],
            )
            if stats is not None and len(stats) == 2:
                self._put_stats(conn, *stats)
            elif stats is not None:
                self._put_stats_entry(conn, *stats)

    def latest_release(self, doc_id: str) -> tuple[int, bytes] | None:
        row = self.db.execute(
            "SELECT number, signed FROM releases WHERE doc_id = ? ORDER BY number DESC LIMIT 1", [doc_id]
        ).fetchone()
        return (row[0], row[1]) if row else None

    def releases(self, doc_id: str | None = None) -> list[dict]:
        if doc_id:
            return self._query("SELECT * FROM releases WHERE doc_id = ? ORDER BY number", [doc_id])
        return self._query("SELECT * FROM releases ORDER BY doc_id, number")

    # -- statistics ------------------------------------------------------------

    def _put_stats(self, conn, campaign: str, data: dict) -> None:
        conn.execute("INSERT INTO stats_changes(campaign, owner) VALUES (?, NULL)", [campaign])
        conn.execute(
            """INSERT INTO stats(campaign, data, updated_at) VALUES (?, ?, ?)
               ON CONFLICT(campaign) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at""",
            [campaign, json.dumps(data, sort_keys=True), self._clock()],
        )

    def put_stats(self, campaign: str, data: dict) -> None:
        with self.transaction() as conn:
            self._put_stats(conn, campaign, data)

    def stats(self, campaign: str) -> dict | None:
        """A campaign's statistics in CampaignStatistics' dictionary form (from one row per school)."""
        rows = self.db.execute("SELECT owner, entry FROM stats_entries WHERE campaign = ? ORDER BY owner",
                               [campaign]).fetchall()
        if rows:
            return {"version": STATS_VERSION, "campaign": campaign,
                    "schools": {owner: json.loads(entry) for owner, entry in rows}}
        row = self.db.execute("SELECT data FROM stats WHERE campaign = ?", [campaign]).fetchone()
        return json.loads(row[0]) if row else None

    def stats_entry(self, campaign: str, owner: str) -> dict | None:
        row = self.db.execute("SELECT entry FROM stats_entries WHERE campaign = ? AND owner = ?",
                              [campaign, owner]).fetchone()
        return json.loads(row[0]) if row else None

    def _put_stats_entry(self, conn, campaign: str, owner: str, entry: dict, drop: list[str]) -> None:
        conn.execute(
            """INSERT INTO stats_entries(campaign, owner, entry, updated_at) VALUES (?, ?, ?, ?)
               ON CONFLICT(campaign, owner) DO UPDATE SET entry = excluded.entry, updated_at = excluded.updated_at""",
            [campaign, owner, json.dumps(entry, sort_keys=True), self._clock()],
        )
        conn.executemany("DELETE FROM stats_entries WHERE campaign = ? AND owner = ?", [(campaign, k) for k in drop])
        conn.executemany("INSERT INTO stats_changes(campaign, owner) VALUES (?, ?)",
                         [(campaign, k) for k in (owner, *drop)])

    def stats_seq(self, campaign: str) -> int:
        """The number of the campaign's last statistics change (0 if none): one indexed read."""
        row = self.db.execute("SELECT max(seq) FROM stats_changes WHERE campaign = ?", [campaign]).fetchone()
        return row[0] or 0

    def stats_changed_since(self, campaign: str, seq: int) -> list[tuple[str, dict | None]] | None:
        """The entries (None: dropped) of the members whose statistics changed after change `seq`, or None
        if the whole campaign was replaced meanwhile (then read it all with `stats`)."""
        owners = [r[0] for r in self.db.execute(
            "SELECT DISTINCT owner FROM stats_changes WHERE campaign = ? AND seq > ?", [campaign, seq])]
        if any(o is None for o in owners):
            return None
        return [(o, self.stats_entry(campaign, o)) for o in owners]

    def stats_campaigns(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT campaign FROM stats UNION SELECT campaign FROM stats_entries ORDER BY 1")]

    # -- transparency log (school) ----------------------------------------------------

    def log_sent(self, doc_id: str, number: int, to_peer: str, content: dict, signature: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                """INSERT OR IGNORE INTO transparency(doc_id, number, to_peer, sent_at, content, signature)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                [doc_id, number, to_peer, self._clock(), json.dumps(content, sort_keys=True, ensure_ascii=False), signature],
            )

    def counts_sent(self, campaign: str) -> bool:
        """Whether this school's own counts for `campaign` ever left it alone: a release of its own, under any of
        its keys, that was not withheld (the transparency log names every release that left)."""
        row = self.db.execute(
            """SELECT 1 FROM transparency WHERE json_extract(content, '$.campaign') = ?
               AND json_extract(content, '$.scope') = 'school' AND json_extract(content, '$.status') != 'withheld'
               LIMIT 1""", [campaign]).fetchone()
        return row is not None

    def aggregates_sent(self, campaign: str) -> list[tuple[str, dict]]:
        """Every aggregate this node signed for `campaign`, under any of its keys, oldest first, as
        (document id, content): a key rotation gives the aggregate a new document id, and what went up under
        the old one still counts (the transparency log names every release that left)."""
        rows = self.db.execute(
            """SELECT doc_id, content FROM transparency WHERE doc_id LIKE 'aggregate:%'
               AND json_extract(content, '$.campaign') = ? ORDER BY id""", [campaign]).fetchall()
        return [(doc_id, json.loads(content)) for doc_id, content in rows]

    def log_receipt(self, doc_id: str, number: int, receipt: dict) -> bool:
        """Mark the release sent as `number` of `doc_id` received, if the receipt names the very state this node
        signed under that number; False (nothing marked) otherwise. A node restored from an older backup may
        sign another release under a number its district already holds: the district's receipt for its own
        copy must not say the new one arrived."""
        row = self.db.execute("SELECT signed FROM releases WHERE doc_id = ? AND number = ?", [doc_id, number]).fetchone()
        try:
            signed = SignedRelease.decode(row[0]) if row is not None else None
        except CrdtError:
            signed = None
        if signed is None or receipt.get("heads") != sorted(h.hex() for h in signed.heads):
            return False
        with self.transaction() as conn:
            # That very release's line: after a restore another of this node's releases may have had that number
            # (dropped by `Federation.take_back`), and the receipt is not for it.
            conn.execute(
                "UPDATE transparency SET receipt = ? WHERE doc_id = ? AND number = ? AND signature = ?",
                [json.dumps(receipt, sort_keys=True), doc_id, number, signed.signature.hex()],
            )
        return True

    def highest_signed(self, doc_id: str) -> int:
        """The highest number this node ever signed for `doc_id` and logged as leaving (0 if none): even a
        release dropped after a restore keeps its number (its signature stays valid): never signed again."""
        row = self.db.execute("SELECT max(number) FROM transparency WHERE doc_id = ?", [doc_id]).fetchone()
        return row[0] or 0

    def transparency(self) -> list[dict]:
        """Every release that left, as it left, with the receipt that names it; `superseded`: a later release of
        the same document was signed (a release not received then never will be: the district takes the latest,
        and a restored node's release under a number the district already held stays unreceived for good)."""
        out = []
        for row in self._query("SELECT * FROM transparency ORDER BY sent_at, id"):
            row["content"] = json.loads(row["content"])
            row["receipt"] = json.loads(row["receipt"]) if row["receipt"] else None
            out.append(row)
        last: dict[str, int] = {}
        for row in out:
            last[row["doc_id"]] = max(last.get(row["doc_id"], 0), row["number"])
        # A release this node signed keeps its row in `releases` unless it was dropped after a restore (too close
        # to what the node above held: `Federation.take_back`); then it never leaves either.
        held = {(r[0], r[1]): bytes(r[2])[-64:].hex() for r in self.db.execute("SELECT doc_id, number, signed FROM releases")}
        for row in out:
            row["superseded"] = (row["number"] < last[row["doc_id"]]
                                 or held.get((row["doc_id"], row["number"])) != row["signature"])
        return out
