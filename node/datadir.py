"""The files of a node's data folder, named once.

Every module that opens, backs up, checks or locks one of them takes its name from here, so a
file cannot be added in one place and forgotten in another (the backup, the 0600 check, the
damaged-file check).
"""
from __future__ import annotations

RECORDS_DB = "preau.db"  # the school's records, encrypted fields (records/store)
STORAGE_KEY = "storage.key"  # the node key that opens the records unattended
FEDERATION_DB = "federation.db"  # peers, signed documents, releases, statistics (federation/store)
IDENTITY_KEY = "identity.key"  # the node's signing and Noise keys
SETTINGS = "preau.toml"  # the node's settings (node/settings.py)
SERVE_LOCK = "serve.lock"  # held while `preau serve` runs (node/oplock.py)

DATABASES = (RECORDS_DB, FEDERATION_DB)
KEY_FILES = (IDENTITY_KEY, STORAGE_KEY)
PRIVATE = (RECORDS_DB, RECORDS_DB + "-wal", RECORDS_DB + "-shm", FEDERATION_DB, FEDERATION_DB + "-wal",
           FEDERATION_DB + "-shm", *KEY_FILES)
"""What only the node's own user may read (created 0600 and checked at start, docs/privacy.md)."""

