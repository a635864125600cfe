"""The node's key files (`identity.key`, `storage.key`): written with a checksum, refused when it fails.

The format is `preau.protocol.identity.encode_key_file` (docs/protocol.md, "Key
files"): one line, `preau-key/1 <64 hex digits> <8 hex digits of checksum>`. A
changed digit, a cut or a binary file is a `DamagedKeyFile` naming the file and
how to restore it, so a node never starts as another identity. Files written
before the checksum (the 64 hex digits alone) still load; `upgrade` rewrites
them in the new form, and `preau serve` calls it when it starts.
"""
from __future__ import annotations

import logging
import pathlib

from preau.protocol.identity import KeyFileError, decode_key_file, encode_key_file

from .database import write_private_file
from .errors import DamagedKeyFile
from preau.node import datadir

log = logging.getLogger("preau.keys")

KEY_FILES = datadir.KEY_FILES


def write_key_file(path: str | pathlib.Path, key: bytes) -> None:
    write_private_file(path, encode_key_file(key))


def read_key_file(path: str | pathlib.Path) -> bytes:
    """The 32-byte key in `path`; FileNotFoundError when it is missing (each caller says what that means)."""
    path = pathlib.Path(path)
    data = path.read_bytes()
    try:
        return decode_key_file(data)[0]
    except KeyFileError as exc:
        raise DamagedKeyFile(path, exc.reason) from None


def upgrade(data_dir: str | pathlib.Path) -> list[pathlib.Path]:
    """Rewrite the key files still in the old form (no checksum) with one; returns those rewritten."""
    done = []
    for name in KEY_FILES:
        path = pathlib.Path(data_dir) / name
        try:
            key, legacy = decode_key_file(path.read_bytes())
        except FileNotFoundError:
            continue
        except KeyFileError as exc:
            raise DamagedKeyFile(path, exc.reason) from None
        if legacy:
            write_key_file(path, key)
            log.info("%s rewritten with a checksum (same key)", path)
            done.append(path)
    return done
