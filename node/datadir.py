"""The files of a node's data folder, named once.

Every module that opens, backs up, checks or locks one of them takes its name from here, so a
file cannot be added in one place and forgotten in another (the backup, the 0600 check, the
damaged-file check). `DataDir(root)` gives their paths.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

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


@dataclass(frozen=True)
class DataDir:
    """A node's data folder and the paths of its files."""

    root: pathlib.Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", pathlib.Path(self.root))

    @property
    def records(self) -> pathlib.Path:
        return self.root / RECORDS_DB

    @property
    def storage_key(self) -> pathlib.Path:
        return self.root / STORAGE_KEY

    @property
    def federation(self) -> pathlib.Path:
        return self.root / FEDERATION_DB

    @property
    def identity(self) -> pathlib.Path:
        return self.root / IDENTITY_KEY

    @property
    def settings(self) -> pathlib.Path:
        return self.root / SETTINGS

    @property
    def serve_lock(self) -> pathlib.Path:
        return self.root / SERVE_LOCK
