"""What the command line says to a person, in their language, from the one catalog (node/locales/*/).

Commands call a use case of `preau.node.actions`, which returns data, and
render it here: `Say(lang)("cli.out.backup.done", path=p)` for a line, `say.words(w)`
for the `Words` a use case returns (a remark, a progress step). Secrets are
asked for here, never by the use cases: PREAU_PASSWORD / PREAU_RECOVERY_KEY
when set (scripts, the demo), else the terminal (never echoed), else one line
of standard input.
"""
from __future__ import annotations

import getpass
import os
import sys
import time
from typing import Any

from preau.node import i18n
from preau.node.errors import UserError, Words


class Say:
    def __init__(self, lang: str):
        self.lang = lang

    def __call__(self, key: str, **params: Any) -> str:
        return i18n.translate(self.lang, key, **params)

    def words(self, w: Words) -> str:
        return w.to(self.lang)

    def progress(self, w: Words) -> None:
        """A long operation's step, on a terminal only: scripts and logs get just the result."""
        stream = sys.stderr
        if stream is not None and stream.isatty():
            print(w.to(self.lang), file=stream, flush=True)

    def error(self, key: str, **params: Any) -> UserError:
        return UserError(Words(i18n.translate("en", key, **params), key, params))

    def ago(self, now: int, then: int | None) -> str:
        """A time in words a person reads at a glance ("3 hours ago"), with the date for the record."""
        if then is None:
            return self("cli.out.never")
        if then > now + 60:  # "0 seconds ago" would hide it: a clock was ahead then, or is behind now
            return self("cli.out.ago.future", stamp=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(then)),
                        now=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now)))
        delta = max(0, now - then)
        for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
            if delta >= size or size == 1:
                n = delta // size
                stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(then))
                return self(f"cli.out.ago.{unit}{'' if n == 1 else 's'}", n=n, stamp=stamp)
        raise AssertionError("unreachable")


def on_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def read_secret(say: Say, prompt: str, env: str) -> str:
    """A secret from the environment, the terminal (never echoed), or one line of standard input.

    A new secret typed on the terminal is then asked a second time (`same_again`), since nobody can see a typo
    in what they typed blind.
    """
    value = os.environ.get(env)
    if value:
        return value
    what = prompt.rstrip(": ").rstrip()
    if on_terminal():
        try:
            value = getpass.getpass(prompt)
        except EOFError:
            value = ""
        if not value:
            raise say.error("cli.secret_needed", what=what, env=env)
        return value
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line.strip():
        raise say.error("cli.secret_needed", what=what, env=env)
    return line.rstrip("\n")


def same_again(say: Say, secret: str) -> bool:
    """The terminal's second entry of a new secret: whether it matches the first (an end of input does not)."""
    try:
        return getpass.getpass(say("cli.prompt_again")) == secret
    except EOFError:
        return False


def ask_login(say: Say, settings: Any, user: str | None, *, role: str | None = None,
              refusal: str = "action.school_only"):
    """A head teacher's Login: the account (--user, else PREAU_USER, else the only head teacher account), then its
    password. The node (and its role) are checked first, so nobody types a password for a command that cannot run."""
    from preau.node.actions.common import Login, head_teacher

    name = head_teacher(settings, user or os.environ.get("PREAU_USER"), role=role, refusal=refusal)
    return Login(name, read_secret(say, say("cli.prompt_password", user=name), "PREAU_PASSWORD"))
