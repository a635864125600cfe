"""Keeping a node safe: `preau backup`, `restore`, `keys recovery`, `keys rotate`, `bundle export|import`."""
from __future__ import annotations

from typing import Any

from preau.node.actions import backups, bundles, keys
from preau.node.actions.common import Login

from ..say import Say, ask_login, on_terminal, read_secret


def backup(settings: Any, *, output: str, lang: str = "en", user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    backups.check_backup(settings, output=output)
    login = ask_login(say, settings, user)
    path = backups.backup(settings, output=output, login=login, progress=say.progress)
    return say("cli.out.backup.done", path=path)


def restore(settings: Any, *, file: str, lang: str = "en", force: bool = False, user: str | None = None,
            **_: Any) -> str:
    say = Say(lang)
    backups.check_restore(settings, file=file, force=force)
    if user:
        login = Login(user, read_secret(say, say("cli.prompt_password", user=user), "PREAU_PASSWORD"))
        done = backups.restore(settings, file=file, force=force, login=login, progress=say.progress)
    else:
        key = read_secret(say, say("cli.prompt_recovery"), "PREAU_RECOVERY_KEY")
        done = backups.restore(settings, file=file, force=force, recovery_key=key, progress=say.progress)
    lines = [say("cli.out.restore.done", data=done.data_dir)]
    if done.settings_kept_as:
        lines.append(say("cli.out.restore.settings_kept", name=done.settings_kept_as))
    if done.new_node_id:
        lines.append(say("cli.out.restore.new_keys", node_id=done.new_node_id))
    if done.settings_role:
        lines.append(say("cli.out.restore.settings_made", role=done.settings_role))
    elif done.settings_role == "":
        lines.append(say("cli.out.restore.settings_unknown", file=done.data_dir / "preau.toml"))
    return "\n".join(lines)


def new_recovery_key(settings: Any, *, lang: str = "en", user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    key = backups.new_recovery_key(settings, login=ask_login(say, settings, user))
    return "\n".join([say("cli.out.recovery.head"), f"  {key}", say("cli.out.recovery.old")])


def rotate_keys(settings: Any, *, lang: str = "en", yes: bool = False, overlap_days: int = 90, **_: Any) -> str:
    say = Say(lang)
    if not yes and on_terminal():
        answer = input(say("cli.out.rotate.confirm"))
        if answer.strip().lower() not in ("y", "yes", "o", "oui"):
            return say("cli.out.rotate.nothing")
    done = keys.rotate_keys(settings, overlap_days=overlap_days)
    lines = [say("cli.out.rotate.done", old=done.old, new=done.new)]
    if done.members and done.overlap_days:
        lines.append(say("cli.out.rotate.overlap", days=done.overlap_days))
    elif done.members:
        lines.append(say("cli.out.rotate.dropped"))
    lines.append(say("cli.out.rotate.backup"))
    return "\n".join(lines)


def export_bundle(settings: Any, *, output: str, lang: str = "en", **_: Any) -> str:
    say = Say(lang)
    done = bundles.export_bundle(settings, output=output)
    return say(f"cli.out.bundle.exported_{done.role}", n=done.documents, output=output)


def import_bundle(settings: Any, *, file: str, lang: str = "en", carry: bool = False, **_: Any) -> str:
    say = Say(lang)
    done = bundles.import_bundle(settings, file=file, carry=carry)
    if done.carried:
        return say("cli.out.bundle.carried", n=done.documents, carried=done.carried)
    return say("cli.out.bundle.imported", n=done.documents)
