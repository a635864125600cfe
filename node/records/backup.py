"""One encrypted file holding a whole school, and its careful restore.

The file opens with the recovery key or any head teacher's password, exactly
like the live database: the header carries copies of the wraps that lead to
the school key (never the key itself), and the body is sealed under a random
file key wrapped by the school key. The header is the body's associated data,
so changing a byte anywhere makes the whole file refuse to open.

    MAGIC | u32 header length | header JSON | AEAD(file key, body)
    body (format 2) = node key || u64 image length || SQLite image || JSON {name: base64} of the node files
    body (format 1) = node key || SQLite image

The node files are the node's identity (`identity.key`) and a consistent
snapshot of its federation state (`federation.db`: pinned district, published
documents, transparency log), so a school restored on a new box keeps its
enrolment and its documents instead of starting over with new keys.
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import os
import pathlib
import sqlite3
import struct
import tempfile
from typing import Sequence

from preau.node.database import sqlite_image
from preau.node.records import database as dbmod

from preau.node.records import vault
from preau.node.errors import said
from preau.node.records.errors import BackupError
from preau.node.records.store import DB_NAME, NODE_KEY_NAME, Session, Store, _ad, _write_key_file
from preau.node import datadir

MAGIC = b"PREAU-BACKUP\x00v1\n"
FORMAT = 2
FORMATS = (1, 2)
IDENTITY_NAME = datadir.IDENTITY_KEY
FEDERATION_NAME = datadir.FEDERATION_DB
SETTINGS_NAME = datadir.SETTINGS
NODE_FILES = (IDENTITY_NAME, FEDERATION_NAME)
BACKED_UP = (*NODE_FILES, SETTINGS_NAME)  # the settings make the node what it is too (its role, its address)
_MAX_HEADER = 1 << 20


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode(), validate=True)


def _node_files(data_dir: pathlib.Path, tmp: pathlib.Path) -> dict[str, bytes]:
    out = {}
    identity = data_dir / IDENTITY_NAME
    if identity.exists():
        out[IDENTITY_NAME] = identity.read_bytes()
    settings = data_dir / SETTINGS_NAME
    if settings.exists():
        out[SETTINGS_NAME] = settings.read_bytes()
    federation = data_dir / FEDERATION_NAME
    if federation.exists():
        conn = sqlite3.connect(federation)
        try:
            out[FEDERATION_NAME] = sqlite_image(conn, tmp, "federation-snapshot.db")
        finally:
            conn.close()
    return out


def write_backup(store: Store, actor: Session, path: str | os.PathLike, *, label: str | None = None) -> pathlib.Path:
    """Write a consistent snapshot to `path` (atomically, mode 0600). Head teacher only.

    `label` is how the GDPR page lists it (default: the file's full path), e.g. for a download."""
    path = pathlib.Path(path)
    with tempfile.TemporaryDirectory(dir=store.data_dir) as tmp:
        snap = store.snapshot(actor, pathlib.Path(tmp), note=path.name, listed_as=label or str(path.resolve()),
                              alongside=lambda: _node_files(store.data_dir, pathlib.Path(tmp)))
    header = json.dumps({
        "format": FORMAT, "created_at": snap.created, "uai": snap.uai, "schema": snap.schema,
        "recovery_wrap": _b64(snap.recovery_wrap),
        "admins": [{k: _b64(v) if isinstance(v, bytes) else v for k, v in a.items()} for a in snap.admins],
        "file_key": _b64(snap.file_key_wrap),
    }, sort_keys=True).encode()
    extras = json.dumps({name: _b64(data) for name, data in snap.alongside.items()}).encode()
    plain = snap.node_key + struct.pack(">Q", len(snap.image)) + snap.image + extras
    body = vault.seal(snap.file_key, plain, vault.label("backup") + b"|" + header)
    tmp_path = path.with_name(path.name + ".tmp")
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + struct.pack(">I", len(header)) + header + body)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    os.replace(tmp_path, path)
    return path


def _read(path: pathlib.Path) -> tuple[dict, bytes, bytes]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BackupError(said("msg.backup.no_file", path=str(path))) from None
    if not raw.startswith(MAGIC):
        raise BackupError(said("msg.backup.not_a_backup", file=path.name),
                          code="not_a_backup")
    try:
        (length,) = struct.unpack(">I", raw[len(MAGIC):len(MAGIC) + 4])
        if length > _MAX_HEADER:
            raise ValueError("header too long")
        header_bytes = raw[len(MAGIC) + 4:len(MAGIC) + 4 + length]
        header = json.loads(header_bytes)
        if header["format"] not in FORMATS:
            raise BackupError(said("msg.backup.other_format", file=path.name, format=header['format']),
                              code="backup_version")
        for key in ("recovery_wrap", "file_key", "admins"):
            header[key]
    except BackupError:
        raise
    except (ValueError, KeyError, TypeError, struct.error):
        raise BackupError(said("msg.backup.bad_header", file=path.name), code="corrupt") from None
    return header, header_bytes, raw[len(MAGIC) + 4 + length:]


def _school_key(header: dict, name: str, recovery_key: str | None, username: str | None, password: str | None) -> bytes:
    try:
        if recovery_key is not None:
            try:
                rk = vault.parse_recovery_key(recovery_key)
            except vault.RecoveryKeyTypo:
                raise BackupError(said("msg.store.recovery_typo"),
                                  code="wrong_key") from None
            try:
                return vault.open_(vault.derive(rk, "wrap/recovery"), _unb64(header["recovery_wrap"]), _ad("school-key"))
            except vault.DecryptError:
                raise BackupError(said("msg.backup.other_key", file=name),
                                  code="wrong_key") from None
        if username is None or password is None:
            raise BackupError(said("msg.backup.give_key"), code="wrong_key")
        wrong = BackupError(said("msg.backup.wrong_login", file=name), code="wrong_key")
        for admin in header["admins"]:
            if admin["username"] != username:
                continue
            cost = vault.Argon2Cost(int(admin["opslimit"]), int(admin["memlimit"]))
            kek = vault.kek_from_password(password, _unb64(admin["salt"]), cost)
            try:
                secret = vault.open_(kek, _unb64(admin["wrapped_secret"]), _ad("account-secret", admin["account_id"]))
            except vault.DecryptError:
                raise wrong from None
            try:
                return vault.open_sealed(secret, _unb64(admin["school_wrap"]), "school-key")
            except vault.DecryptError:
                raise BackupError(said("msg.backup.bad_wrap", file=name), code="corrupt") from None
        raise wrong
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BackupError):
            raise
        raise BackupError(said("msg.backup.bad_header", file=name), code="corrupt") from None


def _unknown_migrations(path: pathlib.Path, known: Sequence[str]) -> list[str]:
    """The schema changes a database file holds that this Préau does not know (a newer Préau wrote it)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            done = [r[0] for r in conn.execute("SELECT name FROM schema_migrations")]
        except sqlite3.OperationalError:  # a file from before named migrations: counted by user_version
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            return [f"schema {version}"] if version > len(known) else []
    finally:
        conn.close()
    return [name for name in done if name not in known]


def restore_backup(path: str | os.PathLike, data_dir: str | os.PathLike, *, recovery_key: str | None = None,
                   username: str | None = None, password: str | None = None, replace: bool = False,
                   clock=None, federation_migrations: Sequence[str] | None = None) -> pathlib.Path:
    """Check everything first, then put the backup in place; any failure leaves `data_dir` untouched.

    With `replace`, the current files are kept beside it as *.before-restore rather than deleted.
    `federation_migrations` (the names this Préau knows) refuses a federation database written by a
    newer Préau before anything is moved: the node could not open it afterwards.
    """
    path = pathlib.Path(path)
    data = pathlib.Path(data_dir)
    target = data / DB_NAME
    if (target.exists() or any((data / n).exists() for n in NODE_FILES)) and not replace:
        raise BackupError(said("msg.backup.would_overwrite", folder=str(data)),
                          code="would_overwrite")
    header, header_bytes, body = _read(path)
    school_key = _school_key(header, path.name, recovery_key, username, password)
    try:
        file_key = vault.open_(vault.derive(school_key, "wrap/backup"), _unb64(header["file_key"]), _ad("backup-key"))
        plain = vault.open_(file_key, body, vault.label("backup") + b"|" + header_bytes)
    except (vault.DecryptError, ValueError):
        raise BackupError(said("msg.backup.integrity", file=path.name),
                          code="corrupt") from None
    node_key, rest = plain[:vault.KEY_BYTES], plain[vault.KEY_BYTES:]
    node_files: dict[str, bytes] = {}
    if header["format"] == 1:
        image = rest
    else:
        try:
            (length,) = struct.unpack(">Q", rest[:8])
            image = rest[8:8 + length]
            node_files = {name: _unb64(data) for name, data in json.loads(rest[8 + length:]).items()}
            if set(node_files) - set(BACKED_UP) or len(image) != length:
                raise ValueError("unexpected content")
        except (ValueError, TypeError, struct.error, AttributeError):
            raise BackupError(said("msg.backup.bad_content", file=path.name),
                              code="corrupt") from None
    made = not data.exists()
    data.mkdir(parents=True, exist_ok=True)
    try:
        early, listed = _put_in_place(data, target, path, image, node_files, node_key, replace, federation_migrations)
    except BackupError:
        if made and not any(data.iterdir()):
            data.rmdir()  # a refused restore leaves no trace, not even the folder it made
        raise
    # the GDPR page flags the backups that hold erased data: this file and the replaced node's still exist
    _apply_retention(data, early, clock, listed, (str(path.resolve()), str(header["created_at"])))
    return data


def _put_in_place(data: pathlib.Path, target: pathlib.Path, path: pathlib.Path, image: bytes,
                  node_files: dict[str, bytes], node_key: bytes, replace: bool,
                  federation_migrations: Sequence[str] | None) -> tuple[list[str], list[tuple[str, str]]]:
    """Stage every file and check it, then move them in; returns the campaigns erased early on the node replaced
    and the backups it had made."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        staged = pathlib.Path(tmp) / DB_NAME
        with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(image)  # 0600 from the start, as `preau init` makes it (pupils' records, encrypted or not)
        conn = sqlite3.connect(staged)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError:
            ok = "unreadable"
        finally:
            conn.close()
        if ok != "ok":
            raise BackupError(said("msg.backup.bad_database", file=path.name, detail=ok), code="corrupt")
        if version > len(dbmod.MIGRATIONS):
            raise BackupError(said("msg.backup.newer", file=path.name, version=version),
                              code="backup_version")
        newer = _unknown_migrations(staged, [name for name, _ in dbmod.MIGRATIONS])
        if newer:
            raise BackupError(said("msg.backup.newer_changes", file=path.name, what=DB_NAME, names=", ".join(newer)),
                              code="backup_version")
        with open(staged, "rb+") as f:
            os.fsync(f.fileno())
        staged_files = {}
        for name, content in node_files.items():
            staged_file = pathlib.Path(tmp) / name
            fd = os.open(staged_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            if name == FEDERATION_NAME:
                conn = sqlite3.connect(staged_file)
                try:
                    fed_ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
                except sqlite3.DatabaseError:
                    fed_ok = "unreadable"
                finally:
                    conn.close()
                if fed_ok != "ok":
                    raise BackupError(said("msg.backup.bad_fed", file=path.name, detail=fed_ok),
                                      code="corrupt")
                newer = [] if federation_migrations is None else _unknown_migrations(staged_file, federation_migrations)
                if newer:
                    raise BackupError(said("msg.backup.newer_changes", file=path.name, what=name,
                                           names=", ".join(newer)), code="backup_version")
            staged_files[name] = staged_file
        early = _early_purges(target) if replace and target.exists() else []
        listed = _backups_listed(target) if replace and target.exists() else []
        if replace:
            for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", NODE_KEY_NAME, *NODE_FILES,
                         FEDERATION_NAME + "-wal", FEDERATION_NAME + "-shm"):
                old = data / name
                if old.exists():
                    os.replace(old, data / f"{name}.before-restore-{stamp}")
        settings = data / SETTINGS_NAME
        if SETTINGS_NAME in staged_files and settings.exists():
            if settings.read_bytes() == node_files[SETTINGS_NAME]:
                del staged_files[SETTINGS_NAME]
            else:  # written before the restore (a public_url set first, say): kept beside, never lost
                os.replace(settings, data / f"{SETTINGS_NAME}.before-restore-{stamp}")
        _write_key_file(data / NODE_KEY_NAME, node_key)
        for name, staged_file in staged_files.items():
            os.replace(staged_file, data / name)
        os.replace(staged, target)
    return early, listed


def _early_purges(db_path: pathlib.Path) -> list[str]:
    """Campaigns the head teacher erased before their date on the node being replaced: a restore keeps them erased."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            return [r[0] for r in conn.execute(
                "SELECT DISTINCT campaign_id FROM gdpr_purges WHERE early = 1 AND campaign_id IS NOT NULL")]
        finally:
            conn.close()
    except sqlite3.Error:  # a file from before gdpr_purges, or unreadable: nothing to carry
        return []


def _backups_listed(db_path: pathlib.Path) -> list[tuple[str, str]]:
    """The backups the node being replaced had made (path, created_at), oldest first."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            return [(r[0], r[1]) for r in conn.execute("SELECT path, created_at FROM gdpr_backups ORDER BY id")]
        finally:
            conn.close()
    except sqlite3.Error:  # a file from before gdpr_backups, or unreadable: nothing to carry
        return []


def _apply_retention(data: pathlib.Path, early: list[str], clock, listed: Sequence[tuple[str, str]],
                     restored: tuple[str, str]) -> None:
    """An older backup may hold named results past retention: erase them before anyone opens the node."""
    store = Store.open(data, **({"clock": clock} if clock is not None else {}))
    try:
        store.remember_backups(listed, restored)
        store.reapply_purges(store.node, early)
        store.apply_retention(store.node)
    finally:
        store.close()


def backup_flag(path: str | os.PathLike, store: Store) -> bool:
    """Whether a backup file was made before an erasure, so still holds erased data (its header says when)."""
    header, _, _ = _read(pathlib.Path(path))
    return store.backup_holds_purged(str(header["created_at"]))
