"""What every use case needs: the node of a data folder, role checks, a head teacher's login, words.

Use cases return data and never prompt: a secret (a password, the recovery
key) is asked for by whoever calls them (the command line, a web form) and
passed in as a `Login` or a string. What a use case says to a person (an
error, a progress step) is `Words`: a catalog key and its parameters, with the
English text for logs; the command line and the web render them.
"""
from __future__ import annotations

import contextlib
import getpass
import os
import pathlib
import pwd
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from preau.node import i18n
from preau.node.errors import Conflict, NotFound, UserError, Words, checked_uai
from preau.node.records.store import Store
from preau.node.records.vault import ARGON2
from preau.node.runtime import IDENTITY_FILE, Node, open_node as runtime_open_node

# A long operation's steps, told as they happen (the command line prints them on a terminal only).
Progress = Callable[[Words], None]


def said(key: str, **params: Any) -> Words:
    """Words from the catalog, with their English text for logs, scripts and tests."""
    return Words(i18n.translate("en", key, **params), key, params)


def refuse(key: str, error: type[UserError] = UserError, exit_code: int | None = None, **params: Any) -> UserError:
    return error(said(key, **params), exit_code)


def tell(progress: Progress | None, key: str, **params: Any) -> None:
    if progress is not None:
        progress(said(key, **params))


@dataclass(frozen=True, slots=True)
class Login:
    """A head teacher's account name and password, asked for by the caller."""

    user: str
    password: str = field(repr=False)


def argon2_cost(settings: Any):
    return ARGON2[settings.argon2_profile]


def open_store(settings: Any) -> Store:
    return Store.open(settings.data_dir, cost=argon2_cost(settings))


def open_node(settings: Any, **kw: Any) -> Node:
    return runtime_open_node(settings, **kw)


def require_node(settings: Any) -> None:
    """A clear error for a folder with no node, before role checks that would blame the wrong thing."""
    if not (pathlib.Path(settings.data_dir) / IDENTITY_FILE).exists():
        raise refuse("action.no_node", NotFound, data=settings.data_dir)


def require_role(settings: Any, role: str, refusal: str) -> None:
    """The command is for one role only (`refusal` is the catalog key saying so), after checking there is a node."""
    require_node(settings)
    if settings.role != role:
        raise refuse(refusal)


@contextlib.contextmanager
def opened_node(settings: Any) -> Iterator[Node]:
    """The node of the data folder, for the time of one use case; closed whatever happens."""
    require_node(settings)
    node = open_node(settings)
    try:
        yield node
    finally:
        node.close()


def head_teacher(settings: Any, user: str | None = None, *, role: str | None = None,
                 refusal: str = "action.school_only") -> str:
    """The head teacher account to log in as: `user`, else the school's only head teacher account (whatever
    `preau init --admin` named it), else admin. The node and its role are checked first, so a caller asks for
    the password only when the use case can run."""
    if role is None:
        require_node(settings)
    else:
        require_role(settings, role, refusal)
    if user:
        return user
    store = open_store(settings)
    try:
        admins = store.head_teacher_names()
    finally:
        store.close()
    if len(admins) > 1:
        raise refuse("action.several_admins", accounts=", ".join(admins))
    return admins[0] if admins else "admin"


def admin_session(store: Store, login: Login):
    return store.login(login.user, login.password)


def checked_output(output: str, example: str) -> pathlib.Path:
    """Refuse an output path that cannot be written before doing any work (or asking for a password)."""
    out = pathlib.Path(output)
    if out.is_dir():
        raise refuse("action.output_is_folder", output=output, example=out / example)
    if not out.parent.is_dir():
        raise refuse("action.output_no_folder", output=output, folder=out.parent)
    if not os.access(out.parent, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        raise unwritable_output(output)
    return out


def unwritable_output(output: str) -> UserError:
    """The folder cannot take the file (another user's, or a read-only USB key): said before any work, with
    who runs the command, so `sudo -u preau preau backup --output /var/backups/...` says why."""
    folder = pathlib.Path(output).parent
    try:
        owner = pwd.getpwuid(folder.stat().st_uid).pw_name
    except (KeyError, OSError):
        owner = "?"
    try:
        me = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        me = getpass.getuser()
    return refuse("action.output_unwritable", output=output, folder=folder, owner=owner, user=me)


def uai_of(text: str) -> str:
    return checked_uai(text)


__all__ = ["Conflict", "Login", "NotFound", "Progress", "UserError", "Words", "admin_session", "argon2_cost",
           "checked_output", "unwritable_output", "head_teacher", "open_node", "open_store", "opened_node", "refuse", "require_node",
           "require_role", "said", "tell", "uai_of"]
