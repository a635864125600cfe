"""`preau init`."""
from __future__ import annotations

import os
import sys
from typing import Any

from preau.node.actions import setup
from preau.node.records.store import MIN_PASSWORD

from ..say import Say, read_secret


def init(settings: Any, *, uai: str, name: str | None = None, admin: str = "admin", lang: str = "en",
         **_: Any) -> str:
    say = Say(lang)
    setup.check_init(settings, uai=uai)  # a folder in use, a bad UAI: said before the password is asked
    made = setup.init_node(settings, uai=uai, name=name, admin=admin, password=_new_admin_password(say, admin))
    return "\n".join([
        say(f"cli.init_done_{made.role}", data=made.data_dir),
        say("cli.init_uai", uai=made.uai, name=made.name),
        say("cli.init_node_id", node_id=made.node_id),
        say("cli.init_admin", admin=made.admin),
        "",
        say("cli.init_recovery"),
        f"  {made.recovery_key}",
    ])


def _new_admin_password(say: Say, admin: str, tries: int = 3) -> str:
    """The first head teacher's password; one too short is asked again (typed blind, the long command
    should not have to be typed again), except from PREAU_PASSWORD, which cannot be asked again."""
    prompt = say("cli.prompt_admin_password", admin=admin)
    for attempt in range(tries):
        password = read_secret(say, prompt, "PREAU_PASSWORD", confirm=True)
        if len(password) >= MIN_PASSWORD or os.environ.get("PREAU_PASSWORD") or attempt == tries - 1:
            return password  # the store refuses it with its reason if it is still too short
        print(say("cli.password_again", problem=say("store.password_short", n=MIN_PASSWORD)), file=sys.stderr,
              flush=True)
    raise AssertionError("unreachable")
