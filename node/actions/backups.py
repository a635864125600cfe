"""Backups and the recovery key: `preau backup`, `preau restore`, `preau keys recovery`."""
from __future__ import annotations

import getpass
import pathlib
import time
from dataclasses import dataclass
from typing import Any

from preau.node import datadir
from preau.node.errors import EXIT_DATA
from preau.node.database import write_private_file
from preau.node.federation.schema import MIGRATIONS as FEDERATION_MIGRATIONS
from preau.node.federation.rules import RESTORED
from preau.node.federation.store import FedStore
from preau.node.oplock import refuse_while_served
from preau.node.records.backup import restore_backup, write_backup
from preau.node.records.errors import BackupError
from preau.node.runtime import FEDERATION_DB, IDENTITY_FILE, create_identity
from preau.node.settings import render_toml

from .common import Conflict, Login, Progress, UserError, admin_session, checked_output, open_store, refuse, \
    require_node, tell, unwritable_output


def check_backup(settings: Any, *, output: str, **_: Any) -> pathlib.Path:
    """Before asking for a password: the output file can be written, and there is a node to back up."""
    out = checked_output(output, "preau.backup")
    require_node(settings)
    return out


def backup(settings: Any, *, output: str, login: Login, progress: Progress | None = None, **_: Any) -> pathlib.Path:
    """An encrypted backup of the node, written to `output`; returns where."""
    out = check_backup(settings, output=output)
    store = open_store(settings)
    try:
        session = admin_session(store, login)
        tell(progress, "action.backup_writing", output=output)
        try:
            return write_backup(store, session, out)
        except PermissionError:  # the folder changed hands since the check
            raise unwritable_output(output) from None
    finally:
        store.close()


def new_recovery_key(settings: Any, *, login: Login, **_: Any) -> str:
    """A new recovery key (the old one no longer opens the node); shown once by the caller."""
    require_node(settings)
    store = open_store(settings)
    try:
        return store.new_recovery_key(admin_session(store, login))
    finally:
        store.close()


def check_restore(settings: Any, *, file: str, force: bool = False, **_: Any) -> None:
    """What can be refused before asking for the recovery key or a password."""
    data = pathlib.Path(settings.data_dir)
    if not pathlib.Path(file).is_file():
        raise refuse("action.restore_no_file", exit_code=EXIT_DATA, file=file)
    refuse_while_served(data, "restoring")
    try:
        with open(file, "rb"):
            pass
    except PermissionError:
        me = getpass.getuser()
        raise refuse("action.restore_unreadable", file=file, user=me, data=data) from None
    if (data / datadir.RECORDS_DB).exists() and not force:
        raise refuse("action.restore_exists", Conflict, data=data)


@dataclass(frozen=True, slots=True)
class Restored:
    data_dir: pathlib.Path
    settings_kept_as: str | None  # the settings file that was there, kept aside under this name
    new_node_id: str | None  # an older backup without the node's keys: the node has new ones
    # An older backup without the settings file: the role written into a new preau.toml, "" when
    # nothing said it (the node starts as a school's), None when the backup brought its settings.
    settings_role: str | None = None


def _role_from_federation(data: pathlib.Path) -> str:
    """A school pins its district; a district pins its schools (or its académie), or publishes campaigns."""
    fed = FedStore(data / FEDERATION_DB)
    try:
        roles = {p["role"] for p in fed.peers()}
        if roles & {"school", "child", "parent"} or fed.documents(kind="campaign") and not roles:
            return "district"
        return "school" if "district" in roles else ""
    finally:
        fed.close()


def restore(settings: Any, *, file: str, force: bool = False, login: Login | None = None,
            recovery_key: str | None = None, progress: Progress | None = None, **_: Any) -> Restored:
    """Restore the node from a backup, opened with the recovery key or (login) a head teacher's password.

    The backup holds the node's keys and federation state too, so the node
    keeps its enrolment. An older backup without them gives the node new keys,
    and the district must enrol it again.
    """
    check_restore(settings, file=file, force=force)
    data = pathlib.Path(settings.data_dir)
    secrets = ({"username": login.user, "password": login.password} if login is not None
               else {"recovery_key": recovery_key or ""})
    tell(progress, "action.restore_checking", file=file, data=data)
    aside_before = set(data.glob("preau.toml.before-restore-*"))
    try:
        restore_backup(file, data, replace=force, federation_migrations=[name for name, _ in FEDERATION_MIGRATIONS],
                       **secrets)
    except BackupError as exc:
        if exc.code in ("corrupt", "not_a_backup", "backup_version"):
            raise UserError(exc.words, EXIT_DATA, code=exc.code) from None
        raise
    kept = sorted(set(data.glob("preau.toml.before-restore-*")) - aside_before)
    new_id = None
    if not (data / IDENTITY_FILE).exists():
        new_id = create_identity(data).node_id
        FedStore(data / FEDERATION_DB).close()
    else:
        # The node above may hold releases this backup forgot: none of this node's own leaves before one sync
        # has shown them (federation.rules.RESTORED, `Federation.take_back`).
        fed = FedStore(data / FEDERATION_DB)
        try:
            fed.set_meta(RESTORED, int(time.time()))
        finally:
            fed.close()
    role = None
    if not (data / datadir.SETTINGS).exists():  # a backup from before settings were backed up
        role = _role_from_federation(data)
        if role:
            write_private_file(data / datadir.SETTINGS, render_toml({"role": role}).encode())
    return Restored(data, kept[-1].name if kept else None, new_id, role)
