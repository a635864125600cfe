"""The command line in French from the first command (a French locale or --lang fr), English otherwise,
through the real entry point; `init` asks again for a too-short password; `serve` prints addresses the
school's computers can open."""
from __future__ import annotations

import argparse
import ipaddress
import shutil
import subprocess
import time

import pytest

from cli_helpers import PREAU, SCHOOL_UAI, free_port, preau
from preau.cli.lang import choose_language, environment_language
from preau.cli.main import build_parser
from preau.node import i18n
from preau.node.settings import BY_NAME

FR = {"LANG": "fr_FR.UTF-8"}


def flat(text: str) -> str:
    """Help text as one line: argparse wraps it to the terminal's width."""
    return " ".join(text.split())


def test_help_is_french_on_a_french_machine_and_english_otherwise():
    fr = preau("--help", env=FR)
    assert fr.code == 0 and "utilisation : preau" in fr.out
    assert "créer un nœud : son dossier, ses clés et le premier compte de direction" in flat(fr.out)
    assert "affiche cette aide et s'arrête" in flat(fr.out) and "Exemples :" in fr.out
    en = preau("--help")
    assert "usage: preau" in en.out and "create a node: its data folder" in flat(en.out)
    assert preau("--lang", "en", "--help", env=FR).out == en.out  # --lang wins over the locale
    assert preau("--lang", "fr", "--help").out == fr.out


def test_a_command_help_and_its_errors_are_french():
    r = preau("init", "--help", "--lang", "fr")
    assert "l'UAI de l'école (ou de la circonscription), par exemple 0751234J ; il est vérifié" in flat(r.out)
    assert "réglages du nœud" in r.out and "Par défaut : 8080 ; variable PREAU_PORT." in flat(r.out)
    # The defaults are words too: no English "unset" or "or" inside a French sentence.
    assert "Par défaut : aucun ; variable PREAU_PARENT_URL." in flat(r.out)
    assert "$XDG_DATA_HOME/preau ou ~/.local/share/preau" in flat(r.out)
    assert "unset" not in r.out and " or " not in flat(r.out)
    r = preau("init", env=FR)
    assert r.code == 2 and "preau init : erreur : il manque : --uai" in r.err
    r = preau("init", "--role", "school", "--uai", "0751234K", env=FR)
    assert r.code != 0 and r.err.startswith("preau : erreur : 0751234K n'est pas un UAI valide")


# The commands of the head teacher's and IT staff's daily work (README, "Démarrage rapide"); a command
# added later shows its English help in French until its texts join locales/*/cli.json.
DAILY = {"init", "serve", "invite", "join", "status", "sync", "release", "stats", "backup", "restore", "bundle",
         "bundle export", "bundle import", "keys", "keys rotate", "revoke", "campaign", "campaign load",
         "campaign check", "demo"}


DAILY_SETTINGS = {"data_dir", "role", "host", "port", "public_url", "parent_url", "sync_interval", "argon2_profile",
                  "log_level", "mdns", "mdns_name"}


def test_every_daily_command_and_argument_has_a_french_help():
    fr = i18n.catalog("fr")
    missing = []

    def walk(parser: argparse.ArgumentParser, command: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    full = (command + " " + name).strip()
                    if full not in DAILY:
                        continue
                    if f"cli.cmd.{full.replace(' ', '_')}.help" not in fr and f"cli.group.{full}" not in fr:
                        missing.append(full)
                    walk(sub, full)
            elif action.dest in BY_NAME:
                if f"cli.setting.{action.dest}" not in fr and action.dest in DAILY_SETTINGS:
                    missing.append(action.dest)
            elif action.help and action.dest not in ("help", "version", "lang"):
                if f"cli.arg.{command.replace(' ', '_')}.{action.dest}" not in fr:
                    missing.append(f"{command} {action.dest}")

    walk(build_parser("en"), "")
    assert missing == []


@pytest.mark.parametrize("argv,env,expected", [
    (["--lang", "fr", "status"], {}, ("fr", ["status"])),
    (["status", "--lang=en"], {"LANG": "fr_FR.UTF-8"}, ("en", ["status"])),
    (["status"], {"LC_ALL": "fr_CA.UTF-8", "LANG": "C"}, ("fr", ["status"])),
    (["status"], {"LC_MESSAGES": "en_GB.UTF-8", "LANG": "fr_FR.UTF-8"}, ("en", ["status"])),
    (["status"], {}, ("en", ["status"])),
    (["join", "--", "--lang"], {}, ("en", ["join", "--", "--lang"])),
])
def test_the_language_is_chosen_like_gettext_with_the_option_first(argv, env, expected):
    assert choose_language(argv, env) == expected
    assert environment_language({"LANG": "fr_FR"}) == "fr"


def test_init_asks_again_for_a_too_short_password(tmp_path):
    r = preau("init", "--role", "school", "--uai", SCHOOL_UAI, "--data-dir", str(tmp_path / "n"),
              password=None, stdin="court\nune phrase assez longue\n", env=FR)
    assert r.code == 0, r.err
    assert "Mot de passe trop court : un mot de passe doit avoir au moins 10 caractères" in r.err
    assert r.out.startswith(f"Nœud d'école Préau créé dans {tmp_path / 'n'}")
    assert "Clé de secours (affichée une seule fois" in r.out
    # three short ones: refused with the reason, nothing created
    r = preau("init", "--role", "school", "--uai", SCHOOL_UAI, "--data-dir", str(tmp_path / "m"),
              password=None, stdin="a\nb\nc\n", env=FR)
    assert r.code != 0 and "au moins 10 caractères" in r.err and not (tmp_path / "m" / "preau.db").exists()


def _machine_addresses() -> list[str]:
    """Non-loopback IPv4 addresses, read with `ip` (a different way from the code's ioctl)."""
    if not shutil.which("ip"):
        return []
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            a = parts[parts.index("inet") + 1].split("/")[0]
            if not ipaddress.ip_address(a).is_loopback:
                found.append(a)
    return found


def test_serve_on_all_addresses_prints_the_lan_addresses(tmp_path):
    addresses = _machine_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address")
    data = tmp_path / "n"
    assert preau("init", "--role", "school", "--uai", SCHOOL_UAI, "--data-dir", str(data)).code == 0
    port = free_port()
    env = {**__import__("os").environ, "LANG": "fr_FR.UTF-8", "PREAU_ARGON2_PROFILE": "minimal"}
    proc = subprocess.Popen([*PREAU, "serve", "--data-dir", str(data), "--host", "0.0.0.0", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(lines)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proc.stdout.close()
    assert "Depuis les ordinateurs de l'école, ouvrez :" in text, text
    for a in addresses:
        assert f"http://{a}:{port}" in text, text
    assert "127.0.0.1" not in text and "0.0.0.0" not in text
