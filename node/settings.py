"""Every setting of a node, declared once.

The fields of `Settings` are the one table: each carries its default, its
bounds and a help text written for the person running the node. From that
table come the commented `preau.toml` that `preau init` writes, the
`PREAU_<NAME>` environment variables, and the command-line flags with their
`--help`, so the three can never disagree.

Precedence, lowest first: defaults, `DATA/preau.toml`, environment, flags.
`data_dir` itself is found from the flag, then `PREAU_DATA_DIR`, then the
default: it cannot live in the file it locates.

Why one module of about 520 lines: most of it is that one table (a field and
its help text per setting); split, the table would no longer be one place.
"""
from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import sys
import textwrap
import types
import urllib.parse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from preau.node import datadir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from .errors import SettingsError, Words, said

SETTINGS_FILE = datadir.SETTINGS
ENV_PREFIX = "PREAU_"
ROLES = ("school", "district")
ARGON2_PROFILES = ("interactive", "moderate", "sensitive", "minimal")
LOG_LEVELS = ("debug", "info", "warning", "error")
KINDS = ("path", "choice", "text", "int", "seconds", "bool", "url", "node_id")


@dataclass(frozen=True, slots=True)
class Spec:
    """One row of the settings table (derived from a field of `Settings`)."""

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    in_file: bool = True
    example: str | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def expected(self) -> str:
        """What a valid value looks like, in English words, for the settings file's comments."""
        return self.expected_words().english

    def expected_words(self) -> Words:
        """What a valid value looks like, in the catalog's words (msg.settings.expect.*), for error messages."""
        if self.kind == "choice":
            return said("msg.settings.expect.choice", choices=", ".join(self.choices))
        if self.kind in ("int", "seconds"):
            return said(f"msg.settings.expect.{self.kind}", low=_num(self.minimum), high=_num(self.maximum))
        if self.kind == "url" and self.example:
            return said("msg.settings.expect.url_like", example=self.example)
        if self.kind in ("bool", "url", "path", "node_id"):
            return said(f"msg.settings.expect.{self.kind}")
        return said("msg.settings.expect.text")


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


def _setting(default: Any, help: str, kind: str, **meta: Any) -> Any:
    assert kind in KINDS, kind
    return field(default=default, metadata={"setting": {"help": help, "kind": kind, **meta}})


@dataclass(frozen=True, slots=True)
class Settings:
    """A node's settings, validated when built (see the module docstring for where they come from)."""

    data_dir: Path = _setting(
        None,
        "Folder holding this node's settings file, database and keys.",
        "path",
        in_file=False,
    )
    role: str = _setting(
        "school",
        "What this node is: a school's node, or a district's node that merges its schools' releases.",
        "choice",
        choices=ROLES,
    )
    host: str = _setting(
        "127.0.0.1",
        "Address the web and sync server listens on. Use 0.0.0.0 so teachers' computers on the "
        "school network can reach it; the default only accepts this machine.",
        "text",
    )
    port: int = _setting(8080, "TCP port of the web and sync server.", "int", minimum=1, maximum=65535)
    public_url: str | None = _setting(
        None,
        "Address at which browsers and other nodes reach this node, written into invitations. "
        "Unset: http://HOST:PORT.",
        "url",
        example="https://preau.circo-lyon3.example.fr",
    )
    parent_url: str | None = _setting(
        None,
        "Address of the node above this one (a school's district, or a district's own parent), if it moved "
        "since `preau join` recorded the invitation's address: syncs then use this one.",
        "url",
        example="https://preau.circo-lyon3.example.fr",
    )
    sync_interval: float = _setting(
        300.0, "Time between two synchronisations with the parent node.", "seconds", minimum=10, maximum=86400
    )
    academie: str | None = _setting(
        None,
        "School: the node id of the académie above this school's district, as the académie publishes it (its "
        "circular, its website; never from the district). Pools of small schools are then taken only when that "
        "académie countersigned their member list. Unset: required once a countersigned pool was seen.",
        "node_id",
        example="WEVQXG4G-3OW6EIFW-3OMWFUUG-C4RKOOW4",
    )
    pool_round_timeout: float = _setting(
        86400.0,
        "District: how long a round of a pool of small schools waits for silent schools before closing with those "
        "that answered (with fewer than the pool's threshold left, the pool fails).",
        "seconds",
        minimum=60,
        maximum=30 * 86400,
    )
    backoff_max: float = _setting(
        3600.0,
        "Longest wait between retries while the parent node is unreachable (the wait doubles after each failure).",
        "seconds",
        minimum=10,
        maximum=7 * 86400,
    )
    argon2_profile: str = _setting(
        "interactive",
        "Cost of password hashing (Argon2id, libsodium's profiles). 'minimal' is for tests and the demo only.",
        "choice",
        choices=ARGON2_PROFILES,
    )
    log_level: str = _setting("info", "How much the node writes to its log.", "choice", choices=LOG_LEVELS)
    trusted_proxy: bool = _setting(
        False,
        "A reverse proxy on this machine passes the requests (docs/operations.md, 'Behind a reverse proxy'): "
        "login delays and join-code tries then count per computer from its X-Forwarded-For header. Leave off "
        "without a proxy: any program on this machine could then pass for any computer.",
        "bool",
    )
    mdns: bool = _setting(
        False,
        "Advertise the node on the local network (mDNS) so teachers can open http://MDNS_NAME.local.",
        "bool",
    )
    mdns_name: str = _setting("preau", "Host name advertised when mdns is on (preau gives preau.local).", "text")
    max_message_bytes: int = _setting(
        1_048_576,
        "Largest sync message accepted from a peer; bigger ones close the session.",
        "int",
        minimum=1024,
        maximum=64 * 1_048_576,
    )
    max_docs_per_session: int = _setting(
        500, "Most documents one sync session may carry.", "int", minimum=1, maximum=100_000
    )
    session_idle_timeout: float = _setting(
        60.0, "A sync session with no message for this long is closed.", "seconds", minimum=1, maximum=3600
    )
    web_session_timeout: float = _setting(
        28_800.0,
        "A teacher's browser session with no activity for this long is logged out.",
        "seconds",
        minimum=60,
        maximum=7 * 86400,
    )
    login_rate_limit: int = _setting(
        10, "Login attempts allowed per minute from one address.", "int", minimum=1, maximum=10_000
    )
    sync_rate_limit: int = _setting(
        30, "Sync sessions allowed per minute from one peer.", "int", minimum=1, maximum=10_000
    )
    sources: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}), compare=False)
    """Where each value came from: 'default', the file path with its line, the variable, or the flag."""
    shadowed: Mapping[str, tuple[Any, str]] = field(default_factory=lambda: types.MappingProxyType({}), compare=False)
    """Values DATA/preau.toml gives that a variable or a flag overrides (a systemd unit's Environment= lines):
    the file's value and where it is, so `preau serve` can say that line is not used."""

    def __post_init__(self) -> None:
        if self.data_dir is None:
            raise SettingsError(said("msg.settings.data_dir"))
        for spec in SETTINGS:
            value = getattr(self, spec.name)
            checked = _check(spec, value, said("msg.settings.where_setting", name=spec.name))
            if checked is not value:
                object.__setattr__(self, spec.name, checked)
        if self.backoff_max < self.sync_interval:
            raise SettingsError(
                said("msg.settings.backoff", backoff=_num(self.backoff_max), interval=_num(self.sync_interval))
            )

    @property
    def settings_file(self) -> Path:
        return self.data_dir / SETTINGS_FILE

    @property
    def advertised_url(self) -> str:
        """The address written into invitations and shown to the administrator."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def _spec_of(f: Any) -> Spec:
    meta = dict(f.metadata["setting"])
    return Spec(name=f.name, default=f.default, **meta)


SETTINGS: tuple[Spec, ...] = tuple(_spec_of(f) for f in fields(Settings) if "setting" in f.metadata)
"""The settings table, in declaration order."""
BY_NAME: Mapping[str, Spec] = types.MappingProxyType({s.name: s for s in SETTINGS})


# -- values ----------------------------------------------------------------

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_HOST = re.compile(r"^[A-Za-z0-9.:_\[\]-]+$")


def _bad(spec: Spec, value: Any, where: Words, hint: "Words | str" = "") -> SettingsError:
    shown = said("msg.settings.shown_text", value=repr(value)) if isinstance(value, str) else repr(value)
    return SettingsError(said("msg.settings.bad_value", where=where, name=spec.name, expected=spec.expected_words(),
                              shown=shown, hint=hint))


def _check(spec: Spec, value: Any, where: Words) -> Any:
    """Validate a typed value (from TOML, code, or already converted text); return it normalised."""
    kind = spec.kind
    if kind == "path":
        if isinstance(value, str) and value.strip():
            value = Path(value)
        if not isinstance(value, Path):
            raise _bad(spec, value, where)
        return value.expanduser()
    if kind == "choice":
        if value not in spec.choices:
            raise _bad(spec, value, where)
        return value
    if kind == "text":
        if not isinstance(value, str) or not value or not _HOST.match(value):
            raise _bad(spec, value, where)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _bad(spec, value, where, said("msg.settings.hint_bool") if isinstance(value, str) else "")
        return value
    if kind in ("int", "seconds"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if kind == "seconds" and isinstance(value, float) and math.isfinite(value):
            ok = True
        if not ok:
            hint = said("msg.settings.hint_number") if isinstance(value, str) else ""
            raise _bad(spec, value, where, hint)
        assert spec.minimum is not None and spec.maximum is not None
        if not spec.minimum <= value <= spec.maximum:
            raise _bad(spec, value, where)
        return float(value) if kind == "seconds" else value
    if kind == "node_id":
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise _bad(spec, value, where)
        from preau.protocol.errors import ProtocolError
        from preau.protocol.identity import parse_node_id
        try:
            return parse_node_id(value)
        except ProtocolError as exc:
            raise _bad(spec, value, where, said("msg.settings.hint_detail", detail=exc.message)) from None
    if kind == "url":
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise _bad(spec, value, where)
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise _bad(spec, value, where)
        return value.rstrip("/")
    raise AssertionError(kind)  # pragma: no cover


def _from_text(spec: Spec, text: str, where: Words) -> Any:
    """Convert text from the environment or a flag, then validate it."""
    if spec.kind == "bool":
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise _bad(spec, text, where)
    if spec.kind in ("int", "seconds"):
        try:
            number: Any = int(text.strip())
        except ValueError:
            try:
                number = float(text.strip()) if spec.kind == "seconds" else None
            except ValueError:
                number = None
        if number is None:
            raise _bad(spec, text, where)
        return _check(spec, number, where)
    return _check(spec, text.strip(), where)


def format_value(value: Any) -> str:
    """A value written as TOML (also how --help shows defaults)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


# -- sources ---------------------------------------------------------------


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where a node keeps its data when no --data-dir or PREAU_DATA_DIR is given (XDG convention)."""
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return Path(base) / "preau"


def _key_line(text: str, key: str) -> int | None:
    """The line where a top-level key (or a table of that name) is written, when it can be found."""
    name = r"(?:" + re.escape(key) + r"|\"" + re.escape(key) + r"\"|'" + re.escape(key) + r"')"
    pattern = re.compile(r"^\s*(?:" + name + r"\s*[=.]|\[\[?\s*" + name + r"\s*[\].])")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None


def read_settings_file(path: Path) -> dict[str, tuple[Any, str]]:
    """Read and check DATA/preau.toml: {name: (value, 'path, line N')}; a missing file gives {}."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise SettingsError(said("msg.settings.unreadable", path=str(path), detail=str(e.strerror or e))) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError(said("msg.settings.not_utf8", path=str(path))) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(
            said("msg.settings.not_toml", path=str(path), detail=str(e))
        ) from None
    out: dict[str, tuple[Any, str]] = {}
    for key, value in data.items():
        line = _key_line(text, key)
        where = said("msg.settings.where_line", path=str(path), line=line) if line else said(
            "msg.settings.where_file", path=str(path))
        spec = BY_NAME.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, list(BY_NAME), n=1)
            hint = said("msg.settings.did_you_mean", name=close[0]) if close else ""
            raise SettingsError(said("msg.settings.unknown_in_file", where=where, key=key, hint=hint))
        if not spec.in_file:
            raise SettingsError(
                said("msg.settings.not_in_file", where=where, key=key, file=SETTINGS_FILE, flag=spec.flag, env=spec.env)
            )
        if isinstance(value, dict):
            raise SettingsError(said("msg.settings.table", where=where, key=key))
        out[key] = (_check(spec, value, where), where)
    return out


def load_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults, then DATA/preau.toml, then PREAU_* variables, then flags.

    `flags` maps setting names to what the command line gave (None or absent:
    not given); values may be text (converted and checked here) or typed.
    `env` defaults to os.environ; an empty variable counts as unset.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    unknown = set(flags) - set(BY_NAME)
    if unknown:
        raise SettingsError(said("msg.settings.unknown", name=sorted(unknown)[0]))

    def given(spec: Spec) -> tuple[Any, str] | None:
        if spec.name in flags:
            value = flags[spec.name]
            where = said("msg.settings.where_option", flag=spec.flag)
            return (_from_text(spec, value, where) if isinstance(value, str) else _check(spec, value, where)), where
        text = env.get(spec.env, "")
        if text.strip():
            where = said("msg.settings.where_env", env=spec.env)
            return _from_text(spec, text, where), where
        return None

    data_spec = BY_NAME["data_dir"]
    found = given(data_spec)
    data_dir, data_src = found if found else (default_data_dir(env), "default")
    values: dict[str, Any] = {"data_dir": data_dir}
    sources: dict[str, str] = {"data_dir": str(data_src)}  # the English: what scripts and `preau status` read
    from_file = read_settings_file(data_dir / SETTINGS_FILE)
    shadowed: dict[str, tuple[Any, str]] = {}
    for spec in SETTINGS:
        if spec.name == "data_dir":
            continue
        found = given(spec)
        if found is None and spec.name in from_file:
            found = from_file[spec.name]
        elif found is not None and spec.name in from_file and from_file[spec.name][0] != found[0]:
            shadowed[spec.name] = (from_file[spec.name][0], str(from_file[spec.name][1]))
        if found is not None:
            values[spec.name], sources[spec.name] = found[0], str(found[1])
        else:
            sources[spec.name] = "default"
    return Settings(**values, sources=types.MappingProxyType(sources), shadowed=types.MappingProxyType(shadowed))


# -- the file that `preau init` writes --------------------------------------


def given_on_command_line(settings: Settings) -> dict[str, Any]:
    """The settings a person typed as flags (data_dir aside): what `preau init` should write into preau.toml."""
    return {
        spec.name: getattr(settings, spec.name)
        for spec in SETTINGS
        if spec.in_file and settings.sources.get(spec.name, "").startswith("option ")
    }


def from_settings_file(settings: Settings) -> dict[str, Any]:
    """The settings DATA/preau.toml gave (what `preau init` must keep when it writes the file again)."""
    path = str(settings.settings_file)
    return {
        spec.name: getattr(settings, spec.name)
        for spec in SETTINGS
        if spec.in_file and settings.sources.get(spec.name, "").startswith(path)
    }


def render_toml(values: Mapping[str, Any] | None = None) -> str:
    """A commented preau.toml: every setting with its help; given values set, the others left as comments."""
    values = dict(values or {})
    unknown = set(values) - {s.name for s in SETTINGS if s.in_file}
    if unknown:
        raise SettingsError(said("msg.settings.cannot_write", name=sorted(unknown)[0], file=SETTINGS_FILE))
    lines = [
        "# Préau node settings. Uncomment a line to change a setting.",
        "# Environment variables PREAU_<NAME> and command-line flags override this file.",
        "",
    ]
    for spec in SETTINGS:
        if not spec.in_file:
            continue
        lines += ["# " + w for w in textwrap.wrap(f"{spec.help} Must be {spec.expected()}.", 76)]
        if spec.name in values and values[spec.name] is not None:
            value = _check(spec, values[spec.name], said("msg.settings.where_setting", name=spec.name))
            lines.append(f"{spec.name} = {format_value(value)}")
        elif spec.default is None:
            lines.append(f"# {spec.name} = {format_value(spec.example or '')}")
        else:
            lines.append(f"# {spec.name} = {format_value(spec.default)}")
        lines.append("")
    return "\n".join(lines)


# -- command-line flags ----------------------------------------------------


def add_setting_arguments(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Add one flag per setting (all, or those named), each defaulting to None so precedence stays visible."""
    wanted = list(BY_NAME) if names is None else list(names)
    group = parser.add_argument_group(
        "node settings",
        f"Each can also be set in DATA/{SETTINGS_FILE} or with an environment variable; flags win.",
    )
    for name in wanted:
        spec = BY_NAME[name]
        if spec.kind == "path":
            default = "$XDG_DATA_HOME/preau or ~/.local/share/preau"
        elif spec.default is None:
            default = "unset"
        else:
            default = format_value(spec.default).strip('"')
        text = f"{spec.help} Default: {default}; env {spec.env}.".replace("%", "%%")
        if spec.kind == "bool":
            group.add_argument(spec.flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            metavar = "{" + ",".join(spec.choices) + "}" if spec.kind == "choice" else spec.kind.upper()
            group.add_argument(spec.flag, dest=name, default=None, metavar=metavar, help=text)


def flags_from_namespace(ns: argparse.Namespace) -> dict[str, Any]:
    """The setting flags a parsed command line actually gave."""
    return {name: getattr(ns, name) for name in BY_NAME if getattr(ns, name, None) is not None}
