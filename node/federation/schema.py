"""The schema of `federation.db`: its named migrations, in order (node/database.py runs them).

Add a migration at the END of the list with a name of your part; never edit or renumber one (a file
records which ones it has, and a file with one this Préau does not know is refused as newer).
"""
from __future__ import annotations

from preau.node.database import Migration

MIGRATIONS: list[Migration] = [
    # 1: initial schema
    ("initial", """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE peers (
        key TEXT PRIMARY KEY,              -- Ed25519 public key, hex
        node_id TEXT NOT NULL,
        role TEXT NOT NULL,                -- school, district, parent
        uai TEXT,
        name TEXT,
        address TEXT,                      -- URL where the peer can be reached, if any
        static_key TEXT,                   -- X25519 public key, hex
        status TEXT NOT NULL DEFAULT 'active',  -- active, revoked
        enrolled_at INTEGER NOT NULL,
        last_contact INTEGER,
        last_error TEXT,
        replaced_by TEXT                   -- after a key rotation
    );
    CREATE TABLE invitations (
        id TEXT PRIMARY KEY,
        uai TEXT NOT NULL,
        secret TEXT NOT NULL,              -- hex, the district checks join proofs with it
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        used_by TEXT,
        revoked_at INTEGER
    );
    CREATE TABLE documents (
        doc_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        owner TEXT NOT NULL,               -- Ed25519 public key, hex
        campaign TEXT,
        data BLOB NOT NULL,                -- Automerge save()
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE releases (
        doc_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        signed BLOB NOT NULL,              -- SignedRelease.encode()
        received_at INTEGER NOT NULL,
        from_peer TEXT,
        PRIMARY KEY (doc_id, number)
    );
    CREATE TABLE stats (
        campaign TEXT PRIMARY KEY,
        data TEXT NOT NULL,                -- JSON of the merged statistics
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE transparency (
        id INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        to_peer TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        content TEXT NOT NULL,             -- JSON: exactly what left
        signature TEXT NOT NULL,
        receipt TEXT,                      -- JSON of the district's receipt, once received
        UNIQUE (doc_id, number, to_peer)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    """),
    # 2: district statistics as one row per school (owner key), so taking in one release touches one
    #    row instead of re-reading and re-writing every school's counts (quadratic for a district)
    ("stats_per_school", """
    CREATE TABLE stats_entries (
        campaign TEXT NOT NULL,
        owner TEXT NOT NULL,               -- the school's Ed25519 public key, hex
        entry TEXT NOT NULL,               -- JSON: {release, time, heads, content}, as CampaignStatistics writes it
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (campaign, owner)
    );
    INSERT INTO stats_entries(campaign, owner, entry, updated_at)
        SELECT s.campaign, j.key, j.value, s.updated_at FROM stats s, json_each(s.data, '$.schools') j
        WHERE json_extract(s.data, '$.version') IS NOT NULL;
    DELETE FROM stats WHERE json_extract(data, '$.version') IS NOT NULL AND json_type(data, '$.schools') = 'object';
    CREATE INDEX peers_replaced_by ON peers(replaced_by);
    CREATE INDEX documents_kind ON documents(kind, owner);
    """),
    # 3: an invitation may name the school and the address where its node can be reached, so the
    #    district can open sessions to it (schools reachable from the district, or behind no NAT)
    ("invitation_name_address", """
    ALTER TABLE invitations ADD COLUMN name TEXT;
    ALTER TABLE invitations ADD COLUMN address TEXT;
    """),
    # 4: what an invitation enrols: a school (it sends releases) or, at an académie, a district (it sends
    #    its aggregate; pinned as role 'child'). Older files did not say: a child that signed aggregates
    #    and never a release was a district; at a node that never received a school release but did
    #    receive aggregates (an académie), every child is a district. A school that signed both (the
    #    hole this closes) stays a school, and statistics entries it got in as a district are dropped.
    ("invitation_member", """
    ALTER TABLE invitations ADD COLUMN member TEXT NOT NULL DEFAULT 'school';
    UPDATE peers SET role = 'child'
        WHERE role = 'school' AND key IN (SELECT owner FROM documents WHERE kind = 'aggregate')
          AND key NOT IN (SELECT owner FROM documents WHERE kind = 'release');
    UPDATE peers SET role = 'child'
        WHERE role = 'school'
          AND NOT EXISTS (SELECT 1 FROM documents d JOIN peers p ON p.key = d.owner WHERE d.kind = 'release')
          AND EXISTS (SELECT 1 FROM peers WHERE role = 'child');
    DELETE FROM stats_entries
        WHERE owner IN (SELECT key FROM peers WHERE role = 'school')
          AND json_extract(entry, '$.content.scope') = 'district';
    """),
    # district (issue 15): which member's statistics entry changed, in order, so a node holding the
    #    statistics in memory applies only what changed (a page then costs the same at 50 or 3,000
    #    schools); and the town of an invited school, shown with its name wherever a school is shown
    ("district_stats_changes", """
    CREATE TABLE stats_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign TEXT NOT NULL,
        owner TEXT                         -- NULL: the whole campaign's statistics were replaced
    );
    CREATE INDEX stats_changes_campaign ON stats_changes(campaign, seq);
    ALTER TABLE invitations ADD COLUMN town TEXT;
    ALTER TABLE peers ADD COLUMN town TEXT;
    """),
    # joincode (issue 14): an invitation also has a short code a head teacher types; its first three
    #    characters (code_slot) find the invitation, and code_failures counts wrong codes tried against it
    #    (protocol/joincode.py: the district locks the short code after MAX_FAILURES). Older invitations
    #    have no slot: they are joined with their long text only.
    ("invitation_join_code", """
    ALTER TABLE invitations ADD COLUMN code_slot TEXT;
    ALTER TABLE invitations ADD COLUMN code_failures INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX invitations_code_slot ON invitations(code_slot);
    """),
    # codes (issue 16): a peer's last error as a stable code too, so the pages say it in words without
    #    reading the English back
    ("peer_error_code", """
    ALTER TABLE peers ADD COLUMN last_error_code TEXT;
    """),
    # events (issue 16): an event's values as data (JSON object: campaign id, version, pool...), so the pages
    #    say it in sentences without reading the English `detail` back. Events logged before have NULL:
    #    the pages give them a sentence per kind, without values.
    ("event_params", """
    ALTER TABLE events ADD COLUMN params TEXT;
    """),
]
