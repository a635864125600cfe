"""`preau init`."""
from __future__ import annotations

import os
import sys
from typing import Any

from preau.node.actions import setup
from preau.node.records.store import MIN_PASSWORD

from ..say import Say, on_terminal, read_secret, same_again


def init(settings: Any, *, uai: str, name: str | None = None, admin: str = "admin", lang: str = "en",
         **_: Any) -> str:
    say = Say(lang)
    setup.check_init(settings, uai=uai)  # a folder in use, a bad UAI: said before the password is asked
    # a district's first account administers it (its pages say « administration »), a school's heads it
    district = getattr(settings, "role", None) == "district"
    password = _new_admin_password(say, admin, "cli.prompt_admin_password_district" if district else
                                   "cli.prompt_admin_password")
    made = setup.init_node(settings, uai=uai, name=name, admin=admin, password=password)
    return "\n".join([
        say(f"cli.init_done_{made.role}", data=made.data_dir),
        say("cli.init_uai", uai=made.uai, name=made.name),
        say("cli.init_node_id", node_id=made.node_id),
        say("cli.init_admin_district" if made.role == "district" else "cli.init_admin", admin=made.admin),
        "",
        say("cli.init_recovery"),
        f"  {made.recovery_key}",
    ])


def _new_admin_password(say: Say, admin: str, prompt_key: str, tries: int = 3) -> str:
    """The first head teacher's password, typed blind on the terminal: one too short is refused before it is
    typed a second time, and one whose second entry differs is asked again, so that the long command need not
    be typed again (three tries in all). From standard input a too short one is read again from the next line, as
    before; from PREAU_PASSWORD it is read once, unchecked here."""
    prompt = say(prompt_key, admin=admin)
    if os.environ.get("PREAU_PASSWORD"):
        return read_secret(say, prompt, "PREAU_PASSWORD")  # cannot be asked again: the store says why
    terminal = on_terminal()
    for attempt in range(tries):
        last = attempt == tries - 1
        password = read_secret(say, prompt, "PREAU_PASSWORD")
        if len(password) < MIN_PASSWORD:  # asked again, on the terminal or from the next line of standard input
            if last:
                return password  # the store refuses it with its reason
            print(say("cli.password_again", problem=say("store.password_short", n=MIN_PASSWORD)), file=sys.stderr,
                  flush=True)
            continue
        if not terminal or same_again(say, password):  # standard input: one line, not typed blind
            return password
        if last:
            raise say.error("cli.secret_differ")
        print(say("cli.secret_differ_again"), file=sys.stderr, flush=True)
    raise AssertionError("unreachable")
