"""Entry point of the `preau` command.

Each command parses its arguments, checks what the person typed, loads the
node's settings, and calls one function of `preau.node`. A `UserError` from
anywhere becomes one line on stderr and its exit code; any other exception is
a bug and is shown with its traceback, never swallowed.

Commands whose node function is not written yet say so and exit with
EXIT_NOT_AVAILABLE: they never pretend to have done something.

Over 500 lines on purpose: most of it is the command table (COMMANDS and each
command's arguments), one entry per command with its help, read top to bottom
like `preau --help`; what commands do and say is in cli/commands/.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Callable

from preau.node.errors import EXIT_BUG, EXIT_NOT_AVAILABLE, EXIT_USAGE, UserError, words
from preau.node.settings import BY_NAME, add_setting_arguments, flags_from_namespace, load_settings

from preau.node.campaign_file import load_campaign_file, resolve_campaign_path
from .checks import check_uai
from .lang import LANGS, argparse_words, choose_language, environment_language, text, translate_parser

# The function behind each command, as "module:function": a command of cli/commands/ that asks for what it
# needs, calls one use case of preau.node.actions (which returns data) and renders it in the person's
# language. Each is called as function(settings, **options), options being the command's own arguments (and
# `lang` when it takes one); it may return None, an exit code, or text to print. Imported only when the
# command runs, so `preau --help` stays fast and works without node/'s imports.
NODE_FUNCTIONS: dict[str, str] = {
    "init": "preau.cli.commands.setup:init",
    "serve": "preau.node.app:serve",
    "invite": "preau.cli.commands.network:invite",
    "join": "preau.cli.commands.network:join",
    "status": "preau.cli.commands.network:status",
    "sync": "preau.cli.commands.network:sync",
    "release": "preau.cli.commands.releases:release",
    "stats": "preau.cli.commands.releases:stats",
    "backup": "preau.cli.commands.safekeeping:backup",
    "restore": "preau.cli.commands.safekeeping:restore",
    "bundle export": "preau.cli.commands.safekeeping:export_bundle",
    "bundle import": "preau.cli.commands.safekeeping:import_bundle",
    "keys rotate": "preau.cli.commands.safekeeping:rotate_keys",
    "keys recovery": "preau.cli.commands.safekeeping:new_recovery_key",
    "revoke": "preau.cli.commands.network:revoke",
    "campaign load": "preau.cli.commands.campaigns:load",
    "pool create": "preau.cli.commands.pools:create",
    "pool list": "preau.cli.commands.pools:list_pools",
    "pool approve": "preau.cli.commands.pools:approve",
    "pool declare": "preau.cli.commands.pools:declare",
    "pool advance": "preau.cli.commands.pools:advance",
    "demo": "preau.node.demo.demo:run_demo",
    "gdpr status": "preau.cli.commands.gdpr:status",
    "gdpr retention": "preau.cli.commands.gdpr:retention",
    "gdpr purge": "preau.cli.commands.gdpr:purge",
    "gdpr pupils": "preau.cli.commands.gdpr:pupils",
    "gdpr access": "preau.cli.commands.gdpr:access",
    "gdpr count": "preau.cli.commands.gdpr:counted",
    "gdpr rectify": "preau.cli.commands.gdpr:rectify",
    "gdpr notice": "preau.cli.commands.gdpr:notice",
    "gdpr register": "preau.cli.commands.gdpr:register",
}

_INTERNAL = {"command_name", "run", "group_parser", "lang"}


def node_function(command: str) -> Callable[..., Any]:
    """The node function behind a command, or a UserError saying honestly that it is not available yet."""
    target = NODE_FUNCTIONS[command]
    module_name, _, func_name = target.partition(":")
    missing = UserError(words(f"`preau {command}` is not available yet in this build (it needs {module_name}.{func_name}, "
                              "which is not written yet)", "cli.not_available", command=command,
                              target=f"{module_name}.{func_name}"), EXIT_NOT_AVAILABLE)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Only the module itself missing means "not written yet"; a missing
        # import inside it is a real bug and must surface.
        if e.name == module_name:
            raise missing from None
        raise
    func = getattr(module, func_name, None)
    if func is None:
        raise missing
    return func


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k not in BY_NAME and k not in _INTERNAL}


def _settings(args: argparse.Namespace):
    settings = load_settings(flags_from_namespace(args))
    command = getattr(args, "command_name", None)
    if command not in (None, "demo"):
        # One rule for who runs commands: the data folder's owner (the service's user), never root for it.
        from preau.node.oplock import check_owner

        check_owner(settings.data_dir, f"{command} ...")
    return settings


def _emit(result: Any) -> int:
    if isinstance(result, str):
        print(result)
        return 0
    if isinstance(result, bool) or result is None:
        return 0
    if isinstance(result, int):
        return result
    raise TypeError(f"a node function returned {type(result).__name__}; expected None, an exit code or text")


def run_node_command(args: argparse.Namespace) -> int:
    """The generic path: settings, then the node function, then its result."""
    settings = _settings(args)
    func = node_function(args.command_name)
    options = _options(args)
    if "lang" in inspect.signature(func).parameters:  # the commands speak to the person in their language
        options["lang"] = getattr(args, "lang", "en")
    return _emit(func(settings, **options))


def run_checking_uai(args: argparse.Namespace) -> int:
    """Commands that take a UAI check it before anything else is opened or written."""
    args.uai = check_uai(args.uai)
    return run_node_command(args)


def run_campaign_check(args: argparse.Namespace) -> int:
    from .commands.campaigns import check
    from .say import Say

    path = resolve_campaign_path(args.file)
    print(check(Say(getattr(args, "lang", "en")), path, load_campaign_file(path)))
    return 0


def run_campaign_load(args: argparse.Namespace) -> int:
    campaign = load_campaign_file(args.file)  # a bad file is refused before anything else
    settings = _settings(args)
    func = node_function("campaign load")
    options = {"campaign": campaign, "file": args.file}
    if "lang" in inspect.signature(func).parameters:
        options["lang"] = getattr(args, "lang", "en")
    return _emit(func(settings, **options))


# -- the command table ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # "bundle export" for a subcommand of a group
    help: str
    description: str
    examples: tuple[str, ...]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None
    run: Callable[[argparse.Namespace], int] = run_node_command
    settings: str = "data_dir"  # which setting flags it takes: "all", "data_dir" or "none"


def _init_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uai", required=True, help="the school's (or district's) UAI, e.g. 0751234J; it is checked")
    p.add_argument("--name", help="display name, e.g. \"École Jean Jaurès\"")
    p.add_argument("--admin", default="admin", help="login of the first administrator account (default: admin)")


def _invite_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uai", required=True, help="UAI of the school invited")
    p.add_argument("--name", help="name of the school, shown to the district")
    p.add_argument("--town", help="town (commune) of the school, shown with its name on the district's pages")
    p.add_argument("--expires-days", type=int, default=7, help="days the invitation stays valid (default: 7)")
    p.add_argument("--district", action="store_true",
                   help="the node invited is a district below this one (an académie's): it sends its aggregate, "
                        "which this node merges, never a school's release")
    p.add_argument("--school-url", help="address of the school's node, if the district can reach it: the district then "
                                        "also opens sync sessions to the school (e.g. http://10.20.0.5:8080)")
    p.add_argument("--allow-loopback", action="store_true",
                   help="allow an invitation that points at this machine only (127.0.0.1): for a trial with every "
                        "node on one machine; real schools need public_url set to an address they can reach")


def _join_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("invitation", help="the short invitation code (4 groups of 5 characters) or the long invitation "
                                      "text from the district, or a file holding it ('-': stdin)")
    p.add_argument("--district", metavar="ADDRESS",
                   help="the district's address, printed with the short code (e.g. 192.168.1.10:8080); with "
                        "the long text, tried before the address it carries")
    p.add_argument("--again", action="store_true",
                   help="this node joined before, and its district changed its keys while this node could not "
                        "sync: enrol again with the district's new invitation")


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")


def _user_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--user", help=f"head teacher account {what} (default: PREAU_USER, else the only head "
                                  "teacher account, as `preau init --admin` named it); "
                   "its password is asked for, or read from PREAU_PASSWORD")


def _release_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign", help="campaign id, e.g. 2026-debut-cp")
    p.add_argument("--approve", action="store_true", help="approve and publish the release shown by the preview")
    p.add_argument("--final", action="store_true",
                   help="make this the campaign's closing release (automatic once the campaign's closing date has passed)")
    _user_arg(p, "that approves the release")


def _stats_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign", help="campaign id, e.g. 2026-debut-cp")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default: table)")


def _backup_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", required=True, help="file to write the encrypted backup to")
    _user_arg(p, "that makes the backup")


def _restore_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a backup written by `preau backup`")
    p.add_argument("--force", action="store_true", help="replace an existing node's data (it is kept aside first)")
    p.add_argument("--user", help="open the backup with this head teacher account's password instead of the "
                   "recovery key (an account that existed when the backup was made)")


def _bundle_export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", required=True, help="file to write the bundle to (a USB key, for example)")


def _bundle_import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a bundle written by `preau bundle export` on the other node")
    p.add_argument("--carry", action="store_true",
                   help="keep documents of schools not enrolled here, to pass them to this node's district at its "
                        "next sync (a relay); the district checks them against each school's own key")


def _pool_create_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign", help="campaign id, e.g. 2026-debut-cp")
    p.add_argument("--member", action="append", metavar="UAI",
                   help="an enrolled school that declared its cohort (UAI=N also checks it declared N pupils); "
                        "repeat for each school (3 or more)")
    p.add_argument("--threshold", type=int, help="schools needed to finish (default: just over two thirds)")


def _pool_list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--campaign", help="only this campaign's pools")


def _pool_approve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pool", help="the pool id (its first characters suffice), as `preau pool list` shows it")
    _user_arg(p, "that approves the pool")


def _pool_declare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign", help="campaign id, e.g. 2026-debut-cp")
    _user_arg(p, "that declares the cohort")


def _pool_advance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pool", help="the pool id (its first characters suffice)")


def _keys_rotate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--overlap-days", type=int, default=90, metavar="DAYS",
                   help="days during which this node still answers on its old key, so the nodes enrolled here "
                        "learn the new one (default: 90; 0 drops the old key at once, after a compromise)")


def _revoke_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("node", help="UAI or fingerprint of the node to revoke")
    p.add_argument("--reason", required=True, help="why, kept in the district's journal")
    p.add_argument("--forget-counts", action="store_true",
                   help="also remove the counts it sent before from this district's statistics (for a revoked "
                        "node whose releases should no longer count); works on an already revoked node too")


def _campaign_file_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file", help="campaign definition (.toml), or the name of a bundled sample: debut-cp, point-etape-cp, debut-ce1"
    )


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schools", type=int, default=6, help="number of schools (default: 6)")
    p.add_argument("--keep", action="store_true", help="leave the nodes running and print their URLs and logins")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic classes (default: 1)")


def _gdpr_user(p: argparse.ArgumentParser) -> None:
    _user_arg(p, "that acts (the GDPR duties are the head teacher's)")


def _gdpr_status_args(p: argparse.ArgumentParser) -> None:
    _json_flag(p)
    _gdpr_user(p)


def _gdpr_retention_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("years", type=int, nargs="?",
                   help="school years to keep named results after the campaign's own (0 to 5; default 1)")
    p.add_argument("--contact", help="whom families write to, printed on the notice (address, e-mail)")
    p.add_argument("--dpo", help="the académie's data protection officer, printed on the notice and register")
    _gdpr_user(p)


def _gdpr_purge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign", nargs="?", help="erase this campaign's named results now, before their date")
    p.add_argument("--yes", action="store_true", help="confirm an early erasure (it cannot be undone)")
    _gdpr_user(p)


def _gdpr_pupil_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("pupil", help="the pupil's id (preau gdpr pupils lists them)")
    p.add_argument("--request", default="", help="who asked, and when (written to the audit log)")


def _gdpr_access_args(p: argparse.ArgumentParser) -> None:
    _gdpr_pupil_arg(p)
    p.add_argument("--output", "-o", required=True, help="folder to write the French page and the JSON file into")
    _gdpr_user(p)


def _gdpr_count_args(p: argparse.ArgumentParser) -> None:
    _gdpr_pupil_arg(p)
    p.add_argument("--no", action="store_true", help="do not count the pupil in releases (without it: count again)")
    _gdpr_user(p)


def _gdpr_rectify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pupil", help="the pupil's id (preau gdpr pupils lists them)")
    p.add_argument("--request", required=True, help="who asked, and when (written to the audit log)")
    p.add_argument("--last-name", help="corrected last name")
    p.add_argument("--first-name", help="corrected first name")
    p.add_argument("--campaign", help="campaign of the result to correct")
    p.add_argument("--exercise", help="exercise of the result to correct")
    p.add_argument("--value", help="corrected value: answers like 1101-1, words per minute like 42, or absent")
    _gdpr_user(p)


def _gdpr_paper_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", required=True, help="HTML file to write (open it in a browser to print)")
    _gdpr_user(p)


COMMANDS: tuple[Command, ...] = (
    Command(
        "init",
        "create a node: its data folder, keys and first administrator",
        "Create a school or district node in the data folder: settings file, keys, database and the "
        "first administrator account. Prints the recovery key once: write it down and keep it safe.",
        (
            'preau init --role school --uai 0751234J --name "École Jean Jaurès" --admin directrice',
            'preau init --role district --uai 0693344K --name "Circonscription Lyon 3" --host 0.0.0.0',
        ),
        _init_args,
        run_checking_uai,
        "all",
    ),
    Command(
        "serve",
        "run the node: web interface and sync",
        "Run the node's web interface and sync endpoint until stopped (Ctrl-C or a service manager).",
        ("preau serve --data-dir /var/lib/preau --host 0.0.0.0", "PREAU_PORT=8081 preau serve"),
        settings="all",
    ),
    Command(
        "invite",
        "(district) create an invitation for a school",
        "On a district node: create a one-time invitation for a school; give it to the head teacher, "
        "who runs `preau join` with it.",
        ('preau invite --uai 0751234J --name "École Jean Jaurès"',),
        _invite_args,
        run_checking_uai,
    ),
    Command(
        "join",
        "(school) join a district with its invitation",
        "On a school node: enrol with the district named in the invitation. Both nodes pin each other's keys.",
        ("preau join 1HD8Y-CD6WD-ZW66X-6F6V8 --district 192.168.1.10:8080", "preau join invitation.txt",
         "preau join 'PREAU1-...'"),
        _join_args,
    ),
    Command(
        "status",
        "show this node: identity, peers, last syncs, pending releases",
        "Show the node's identity, its parent and children, the last sync with each, and releases waiting.",
        ("preau status", "preau status --json"),
        _json_flag,
    ),
    Command(
        "sync",
        "synchronise with the parent node now",
        "Synchronise with the parent node now instead of waiting for the next interval.",
        ("preau sync",),
    ),
    Command(
        "release",
        "(school) preview, then approve, the counts that leave the school",
        "Show exactly the counts that would leave the school for a campaign; with --approve, sign and "
        "publish them for the district.",
        ("preau release 2026-debut-cp", "preau release 2026-debut-cp --approve",
         "preau release 2026-debut-cp --approve --final --user directrice"),
        _release_args,
    ),
    Command(
        "stats",
        "show a campaign's statistics (table, CSV or JSON)",
        "Show a campaign's statistics: on a district, the merged counts of its schools; on a school, the counts "
        "of its latest release, exactly as the district received them.",
        ("preau stats 2026-debut-cp", "preau stats 2026-debut-cp --format csv > debut-cp.csv"),
        _stats_args,
    ),
    Command(
        "backup",
        "write an encrypted backup of this node",
        "Write an encrypted backup of the node (database and keys) to a file. Restoring it needs the recovery key.",
        ("preau backup --output /media/usb/preau-2026-10-01.backup",),
        _backup_args,
    ),
    Command(
        "restore",
        "restore a node from a backup",
        "Restore a node from a backup written by `preau backup`; asks for the recovery key, or with --user "
        "for that head teacher's password.",
        ("preau restore /media/usb/preau-2026-10-01.backup --data-dir /var/lib/preau",
         "preau restore /media/usb/preau-2026-10-01.backup --user directrice"),
        _restore_args,
    ),
    Command(
        "bundle export",
        "write what the other node needs to a file (no network)",
        "For a node without network access: write the signed documents the other node needs to a file.",
        ("preau bundle export --output /media/usb/jaures.bundle",),
        _bundle_export_args,
    ),
    Command(
        "bundle import",
        "read a bundle written by the other node",
        "Read a bundle written by `preau bundle export` on the other node; every signature is checked.",
        ("preau bundle import /media/usb/jaures.bundle",
         "preau bundle import --carry /media/usb/ecole-voisine.bundle   # relay another school's release"),
        _bundle_import_args,
    ),
    Command(
        "keys rotate",
        "replace this node's long-term keys",
        "Make new long-term keys, signed by the old ones; peers learn them at the next sync.",
        ("preau keys rotate", "preau keys rotate --yes"),
        _keys_rotate_args,
    ),
    Command(
        "keys recovery",
        "replace the recovery key (lost, or seen by someone)",
        "Make a new recovery key, shown once; the old one no longer opens the node. Backups made before still "
        "open with the old one: make a new backup and destroy the old ones.",
        ("preau keys recovery --user directrice",),
        lambda p: _user_arg(p, "that replaces it"),
    ),
    Command(
        "revoke",
        "(district) stop trusting a node",
        "On a district node: stop accepting a school's (or child district's) key and its future releases.",
        ('preau revoke 0751234J --reason "school closed"',),
        _revoke_args,
    ),
    Command(
        "campaign load",
        "(district) check a campaign definition and publish it to the schools",
        "On a district node: check a campaign definition file, then publish it to the schools.",
        ("preau campaign load my-campaign.toml", "preau campaign load debut-ce1   # a bundled sample"),
        _campaign_file_arg,
        run_campaign_load,
    ),
    Command(
        "campaign check",
        "check a campaign definition file, changing nothing",
        "Check a campaign definition file and report the first mistake with its line. Changes nothing.",
        ("preau campaign check my-campaign.toml", "preau campaign check debut-cp   # a bundled sample"),
        _campaign_file_arg,
        run_campaign_check,
        "none",
    ),
    Command(
        "pool create",
        "(district) pool small schools' counts by secure aggregation",
        "On a district node: form and sign a pool of 3 or more enrolled schools for a campaign, each with the "
        "cohort it declared and signed itself. The district then learns only the sum over the pool, never one "
        "school's counts.",
        ("preau pool create 2026-debut-cp --member 0690001B --member 0690002C --member 0690003D",),
        _pool_create_args,
    ),
    Command(
        "pool list",
        "show the pools this node takes part in",
        "Show each pool: its campaign, state, threshold and member schools (names and UAIs).",
        ("preau pool list", "preau pool list --campaign 2026-debut-cp"),
        _pool_list_args,
    ),
    Command(
        "pool declare",
        "(school) declare this school's cohort, so its district can pool it",
        "On a school node: sign the number of pupils assessed in a campaign (public figures) and send it to the "
        "district at the next sync; the district forms pools of small schools from these declarations.",
        ("preau pool declare 2026-debut-cp --user directrice",),
        _pool_declare_args,
    ),
    Command(
        "pool approve",
        "(school) approve taking part in a pool",
        "On a school node: the head teacher approves the pool shown by `preau pool list`; only then does a "
        "masked vector of the school's counts leave, which only the pool's sum can open.",
        ("preau pool approve 3f2a9c1e --user directrice",),
        _pool_approve_args,
    ),
    Command(
        "pool advance",
        "(district) close a pool's round with the schools that answered",
        "On a district node: close the current round of a pool without waiting for the schools that did not "
        "answer; with fewer than the threshold left, the pool fails and no figure is computed.",
        ("preau pool advance 3f2a9c1e",),
        _pool_advance_args,
    ),
    Command(
        "demo",
        "run a district and several schools on this machine",
        "Start a district and several schools as separate processes on loopback ports, enrol them, fill "
        "synthetic classes, release, sync, and print the district's statistics. Cleans up unless --keep.",
        ("preau demo", "preau demo --keep", "preau demo --json"),
        _demo_args,
        settings="none",
    ),
    Command("gdpr status", "(school) retention, planned and done erasures, backups to destroy",
            "Show the retention period, what will be erased and from when, the erasures done, and the backups "
            "made before an erasure (they still hold erased data: destroy them).",
            ("preau gdpr status", "preau gdpr status --json"), _gdpr_status_args),
    Command("gdpr retention", "(school) set how long named results are kept, and the contacts on the paperwork",
            "Set the retention period in school years after the campaign's (default 1: until 31 August of the next "
            "school year). The notice and register entry follow at once.",
            ("preau gdpr retention 1", 'preau gdpr retention --contact "ce.0751234J@ac-paris.fr"'),
            _gdpr_retention_args),
    Command("gdpr purge", "(school) erase what is past retention now, or a campaign before its date",
            "Erase named results past retention now (the node also does it by itself every day), or, with a "
            "campaign and --yes, that campaign's named results before their date. Released counts stay.",
            ("preau gdpr purge", "preau gdpr purge 2026-debut-cp --yes"), _gdpr_purge_args),
    Command("gdpr pupils", "(school) list pupils with their ids, for a family's request",
            "List the school's pupils with their ids and whether they are counted in releases.",
            ("preau gdpr pupils",), _gdpr_user),
    Command("gdpr access", "(school) a family's access request: a French page and a JSON file",
            "Write everything Préau holds about one pupil into a folder, as a printable French page and a JSON "
            "file. The request is written to the audit log.",
            ('preau gdpr access 3f2a9c0d1e4b5a67 --output /media/usb --request "mère, courrier du 3 octobre"',),
            _gdpr_access_args),
    Command("gdpr count", "(school) leave a pupil out of releases (objection), or count them again",
            "Mark a pupil as not counted: the next release is exactly what it would be without them.",
            ('preau gdpr count 3f2a9c0d1e4b5a67 --no --request "parents, 3 octobre"',), _gdpr_count_args),
    Command("gdpr rectify", "(school) correct a pupil's name or a result, with a trace in the audit log",
            "Correct a pupil's identity or one result at a family's request; the audit log records the correction.",
            ('preau gdpr rectify 3f2a9c0d1e4b5a67 --campaign 2026-debut-cp --exercise fr-mots --value 1101 '
             '--request "père, 3 octobre"',), _gdpr_rectify_args),
    Command("gdpr notice", "(school) write the parents' notice, filled from this node's settings",
            "Write the French parents' notice (what is kept, why, where, how long, who sees what, rights).",
            ("preau gdpr notice -o notice-familles.html",), _gdpr_paper_args),
    Command("gdpr register", "(school) write the register entry (registre des traitements)",
            "Write the French record-of-processing entry for this processing, filled from this node's settings.",
            ("preau gdpr register -o registre.html",), _gdpr_paper_args),
)

GROUPS = {
    "bundle": ("move data between nodes on a file (no network)", ("preau bundle export -o FILE", "preau bundle import FILE")),
    "keys": ("manage this node's keys", ("preau keys rotate",)),
    "campaign": ("campaign definitions", ("preau campaign check FILE", "preau campaign load FILE")),
    "gdpr": ("(school) the school's GDPR duties: retention, families' requests, paperwork (docs/gdpr.md)",
             ("preau gdpr status", "preau gdpr access PUPIL_ID --output DIR", "preau gdpr notice -o notice.html")),
    "pool": ("pool small schools' counts by secure aggregation",
             ("preau pool declare 2026-debut-cp", "preau pool create 2026-debut-cp --member 0690001B --member 0690002C "
              "--member 0690003D", "preau pool list", "preau pool approve 3f2a9c1e --user directrice")),
}


def _epilog(examples: tuple[str, ...]) -> str:
    return "Example" + ("s" if len(examples) > 1 else "") + ":\n" + "\n".join("  " + e for e in examples)


def build_parser(lang: str = "en") -> argparse.ArgumentParser:
    """The parser, its help in `lang` (the English texts below are also the English catalog's)."""
    parser = argparse.ArgumentParser(
        prog="preau",
        description="Préau: pupils' assessment data stays in the school; only signed, anonymised counts leave it.",
        epilog=_epilog(("preau init --role school --uai 0751234J", "preau serve", "preau campaign check FILE")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"preau {version('preau')}",
                        help=text(lang, "cli.argparse.show program's version number and exit"))
    # Read (and taken off the line) before parsing, by cli.lang.choose_language: listed here for --help.
    parser.add_argument("--lang", choices=LANGS, help=text(lang, "cli.lang"))
    parser.set_defaults(run=None, group_parser=parser)
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for cmd in COMMANDS:
        head, _, tail = cmd.name.partition(" ")
        if tail:
            if head not in groups:
                help_text, examples = GROUPS[head]
                gp = top.add_parser(
                    head,
                    help=help_text,
                    description=help_text[0].upper() + help_text[1:] + ".",
                    epilog=_epilog(examples),
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                )
                gp.set_defaults(run=None, group_parser=gp)
                groups[head] = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
            where, name = groups[head], tail
        else:
            where, name = top, head
        p = where.add_parser(
            name,
            help=cmd.help,
            description=cmd.description,
            epilog=_epilog(cmd.examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.arguments(p)
        if cmd.settings == "all":
            add_setting_arguments(p)
        elif cmd.settings == "data_dir":
            add_setting_arguments(p, ["data_dir"])
        p.set_defaults(run=cmd.run, command_name=cmd.name, group_parser=p)
    translate_parser(parser, lang, BY_NAME)
    return parser


def _busy(exc: BaseException):
    """A locked database is something to retry, not a bug (imported late: the CLI loads node/ lazily)."""
    if exc.__class__.__name__ != "OperationalError":
        return None
    from preau.node.errors import Busy
    return Busy.from_sqlite(exc)


def _refuse(error: UserError, lang: str | None = None) -> int:
    """One line on stderr in the person's language (French on a French box or with --lang fr) and the exit code."""
    lang = lang or environment_language()
    print(text(lang, "cli.error", message=" ".join(error.localized(lang).split())), file=sys.stderr)
    return error.exit_code


def _fault(exc: BaseException, args: argparse.Namespace):
    """The typed error for a known fault (imported late: the CLI loads node/ lazily), or None for a bug."""
    from preau.node.faults import classify

    try:
        data_dir = _settings(args).data_dir
    except Exception:
        data_dir = getattr(args, "data_dir", None)
    return classify(exc, data_dir)


def main(argv: list[str] | None = None) -> int:
    lang, argv = choose_language(list(sys.argv[1:] if argv is None else argv), os.environ)
    with argparse_words(lang):
        parser = build_parser(lang)
        args = parser.parse_args(argv)
        if args.run is None:
            args.group_parser.print_help(sys.stderr)
            return EXIT_USAGE
    args.lang = lang
    from preau.node.testhooks import apply_at_start

    apply_at_start()  # a no-op unless a test run switched a protection off (docs/privacy.md)
    try:
        return args.run(args)
    except UserError as e:
        return _refuse(e, lang)
    except KeyboardInterrupt:
        print(text(lang, "cli.interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `preau stats ... | head`: the reader has all it wanted. Quiet, as `cat` is; stdout goes nowhere from now
        # on, so the interpreter's last flush cannot complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as e:
        busy = _busy(e)
        if busy is not None:
            return _refuse(busy, lang)
        fault = _fault(e, args)
        if fault is not None:  # a full disk, a damaged database: the machine's fault, said as such
            return _refuse(fault, lang)
        # BaseException too: Automerge's PanicException derives from it, and a
        # panic is a bug to report, not something to let pass unexplained.
        traceback.print_exc()
        print(text(lang, "cli.bug"), file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
