"""Who may touch a data folder, and when: the serving lock and the owner check.

`preau serve` holds an exclusive lock on DATA/serve.lock for as long as it
runs (released by the kernel however it ends, SIGKILL included), so a command
that replaces the node's files under it (`restore`) can refuse instead of
losing what the running node acknowledges afterwards.

A data folder belongs to one user, the one the service runs as. A command run
by another user (root, typically) would leave files that user owns, which the
service then cannot read or write: commands refuse, naming the right user.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pathlib
import pwd
from typing import Iterator

from .errors import Conflict, EXIT_NOPERM, UserError, said, words
from preau.node import datadir

LOCK_FILE = datadir.SERVE_LOCK


class WrongUser(UserError):
    exit_code = EXIT_NOPERM
    code = "wrong_user"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def check_owner(data_dir: os.PathLike | str, command: str = "...") -> None:
    """Refuse to run as another user than the data folder's owner (a folder not yet created is anyone's)."""
    path = pathlib.Path(data_dir)
    try:
        owner = path.stat().st_uid
    except FileNotFoundError:
        return
    me = os.geteuid()
    if owner == me:
        return
    name, mine = _user_name(owner), _user_name(me)
    raise WrongUser(
        said("msg.oplock.wrong_user", path=str(path), owner=name, me=mine, command=command))


@contextlib.contextmanager
def serving(data_dir: os.PathLike | str) -> Iterator[None]:
    """Hold DATA/serve.lock while the node serves; refuse if another `preau serve` already holds it."""
    path = pathlib.Path(data_dir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise Conflict(words(f"another `preau serve` already runs on {data_dir}: stop it first "
                                 "(systemctl stop preau-school), or give another --data-dir", "oplock.served",
                                 data=data_dir)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def is_served(data_dir: os.PathLike | str) -> bool:
    """True while a `preau serve` holds the data folder's lock."""
    path = pathlib.Path(data_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def refuse_while_served(data_dir: os.PathLike | str, what: str) -> None:
    if is_served(data_dir):
        raise Conflict(words(f"the node in {data_dir} is running (`preau serve`): {what} would replace files under "
                             "it and lose what it writes afterwards. Stop it first (systemctl stop preau-school), "
                             "then run this again", "oplock.running", data=data_dir))
