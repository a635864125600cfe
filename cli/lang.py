"""The command line in the person's language: French on a French machine (or with `--lang fr`), English otherwise.

Texts come from the one catalog the web uses (`node/locales/*/cli.json`):
command and argument help, argparse's own words ("usage", "options", its
errors), and what every command says (`cli.say`). The English catalog holds the same
texts as the command table in `main.py`; a French text missing for a new
argument shows its English help rather than nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
from typing import Iterator, Mapping

from preau.node import i18n

LANGS = ("fr", "en")


def environment_language(environ: Mapping[str, str] | None = None) -> str:
    """French when the machine's locale is French (LC_ALL, then LC_MESSAGES, then LANG), else English."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return "fr" if value.lower().startswith("fr") else "en"
    return "en"


def choose_language(argv: list[str], environ: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
    """(language, argv without `--lang X`): the option wins anywhere on the line, then the locale."""
    rest: list[str] = []
    chosen = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i:])
            break
        if a == "--lang" and i + 1 < len(argv) and argv[i + 1] in LANGS:
            chosen = argv[i + 1]
            i += 2
            continue
        if a.startswith("--lang=") and a.split("=", 1)[1] in LANGS:
            chosen = a.split("=", 1)[1]
            i += 1
            continue
        rest.append(a)
        i += 1
    return chosen or environment_language(environ), rest


def text(lang: str, key: str, **params: object) -> str:
    return i18n.translate(lang, key, **params)


def _has(lang: str, key: str) -> bool:
    return key in i18n.catalog(lang)


@contextlib.contextmanager
def argparse_words(lang: str) -> Iterator[None]:
    """argparse's own words ("usage: ", "options", its errors) from the catalog while parsing and printing help."""
    if lang == "en":
        yield
        return
    catalog = i18n.catalog(lang)
    original = argparse._  # type: ignore[attr-defined]

    def translated(message: str) -> str:
        return catalog.get(f"cli.argparse.{message}", message)

    argparse._ = translated  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._ = original  # type: ignore[attr-defined]


def _key(command: str) -> str:
    return command.replace(" ", "_")


def translate_parser(parser: argparse.ArgumentParser, lang: str, setting_names: Mapping[str, object]) -> None:
    """Put the catalog's texts into a parser built from the English command table (French only)."""
    if lang == "en":
        return
    parser.description = text(lang, "cli.description")
    _epilog(parser, lang)
    _walk(parser, "", lang, setting_names)


def _epilog(parser: argparse.ArgumentParser, lang: str) -> None:
    if parser.epilog and parser.epilog.startswith("Example"):
        head, _, rest = parser.epilog.partition("\n")
        parser.epilog = text(lang, "cli.examples" if head.startswith("Examples") else "cli.example") + "\n" + \
            _example_words(rest, lang)


def _example_words(examples: str, lang: str) -> str:
    """The English words of the examples (FILE, « # a bundled sample »...) in `lang`: the commands stay as typed."""
    english, said = i18n.catalog("en"), i18n.catalog(lang)
    for key, word in english.items():
        if key.startswith("cli.example_word.") and key in said:
            examples = re.sub(rf"(?<![\w-]){re.escape(word)}(?![\w-])", lambda _m, k=key: said[k], examples)
    return examples


def _walk(parser: argparse.ArgumentParser, command: str, lang: str, setting_names: Mapping[str, object]) -> None:
    for group in parser._action_groups:
        if group.title == "node settings":
            group.title = text(lang, "cli.settings_group")
            group.description = text(lang, "cli.settings_help", file="preau.toml")
    for action in parser._actions:
        shown = action.metavar or (None if action.choices or action.nargs == 0 else
                                   action.dest.upper() if action.option_strings else action.dest)
        if isinstance(shown, str) and _has(lang, f"cli.metavar.{shown}"):
            action.metavar = text(lang, f"cli.metavar.{shown}")
        if isinstance(action, argparse._SubParsersAction):
            for pseudo in action._choices_actions:
                name = (command + " " + pseudo.dest).strip()
                key = f"cli.group.{name}" if _has(lang, f"cli.group.{name}") else f"cli.cmd.{_key(name)}.help"
                if _has(lang, key):
                    pseudo.help = text(lang, key)
            for name, sub in action.choices.items():
                full = (command + " " + name).strip()
                if _has(lang, f"cli.cmd.{_key(full)}.description"):
                    sub.description = text(lang, f"cli.cmd.{_key(full)}.description")
                elif _has(lang, f"cli.group.{full}"):
                    words = text(lang, f"cli.group.{full}")
                    sub.description = words[:1].upper() + words[1:] + "."
                _epilog(sub, lang)
                _walk(sub, full, lang, setting_names)
            continue
        if action.dest == "help":
            continue
        if action.dest in setting_names and _has(lang, f"cli.setting.{action.dest}") and action.help:
            english = action.help
            default = english.rsplit(" Default: ", 1)[-1].split("; env ")[0] if " Default: " in english else ""
            env = english.rsplit("; env ", 1)[-1].rstrip(".") if "; env " in english else ""
            if default == "unset":
                default = text(lang, "cli.default_unset")
            default = default.replace(" or ", " " + text(lang, "cli.default_or") + " ")  # the data folder's two places
            action.help = text(lang, "cli.setting_default", help=text(lang, f"cli.setting.{action.dest}"),
                               default=default, env=env).replace("%", "%%")
        elif _has(lang, f"cli.arg.{_key(command)}.{action.dest}"):
            action.help = text(lang, f"cli.arg.{_key(command)}.{action.dest}").replace("%", "%%")
