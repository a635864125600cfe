import argparse
import sys

import pytest

from preau.node.errors import EXIT_CONFIG, SettingsError
from preau.node.settings import (
    BY_NAME,
    SETTINGS,
    Settings,
    add_setting_arguments,
    default_data_dir,
    flags_from_namespace,
    given_on_command_line,
    load_settings,
    render_toml,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture
def data(tmp_path):
    return tmp_path


def write(data, text):
    (data / "preau.toml").write_text(text, encoding="utf-8")


def load(data, env=None, **flags):
    return load_settings({"data_dir": str(data), **flags}, env=env or {})


def test_defaults_without_file(data):
    s = load(data)
    assert s.role == "school" and s.host == "127.0.0.1" and s.port == 8080 and s.mdns is False
    assert s.parent_url is None
    assert s.sources["port"] == "default"
    assert s.advertised_url == "http://127.0.0.1:8080"


def test_precedence_file_then_env_then_flags(data):
    write(data, 'port = 9001\nrole = "district"\nsync_interval = 60\nlog_level = "debug"\n')
    s = load(data)
    assert (s.port, s.role, s.sync_interval, s.log_level) == (9001, "district", 60.0, "debug")
    assert s.sources["port"] == f"{data / 'preau.toml'}, line 1"

    env = {"PREAU_PORT": "9002", "PREAU_SYNC_INTERVAL": "120", "PREAU_MDNS": "yes"}
    s = load(data, env)
    assert (s.port, s.role, s.sync_interval, s.mdns) == (9002, "district", 120.0, True)
    assert s.sources["port"] == "environment variable PREAU_PORT"

    s = load(data, env, port="9003", mdns=False)
    assert (s.port, s.sync_interval, s.mdns) == (9003, 120.0, False)
    assert s.sources["port"] == "option --port"
    assert s.sources["role"].endswith("line 2")


def test_data_dir_from_env_then_flag(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "preau.toml").write_text("port = 1111\n")
    (b / "preau.toml").write_text("port = 2222\n")
    assert load_settings(env={"PREAU_DATA_DIR": str(a)}).port == 1111
    assert load_settings({"data_dir": str(b)}, env={"PREAU_DATA_DIR": str(a)}).port == 2222
    assert default_data_dir({"XDG_DATA_HOME": "/x"}) == __import__("pathlib").Path("/x/preau")


def test_empty_env_counts_as_unset(data):
    write(data, "port = 9001\n")
    assert load(data, {"PREAU_PORT": ""}).port == 9001


@pytest.mark.parametrize(
    "text, words",
    [
        ('port = "8080"\n', ["line 1", "port must be a whole number from 1 to 65535", "without quotes"]),
        ("\n\nport = 0\n", ["line 3", "port must be a whole number from 1 to 65535, got 0"]),
        ('role = "ecole"\n', ["line 1", "role must be one of school, district, got the text 'ecole'"]),
        ('mdns = "true"\n', ["mdns must be true or false", "without quotes"]),
        ('parent_url = "ftp://x"\n', ["parent_url must be an http:// or https:// address"]),
        ("prot = 8080\n", ["line 1", "'prot' is not a Préau setting (did you mean 'port'?)"]),
        ('data_dir = "/srv"\n', ["data_dir cannot be set in preau.toml", "--data-dir", "PREAU_DATA_DIR"]),
        ("[port]\nx = 1\n", ["line 1", "port is a table"]),
        ("port = 80\nport 81\n", ["is not valid TOML", "line 2", "move the file away"]),
        ("sync_interval = 600\nbackoff_max = 60\n", ["backoff_max (60 s) must not be below sync_interval (600 s)"]),
    ],
)
def test_bad_file_names_setting_and_line(data, text, words):
    write(data, text)
    with pytest.raises(SettingsError) as e:
        load(data)
    for w in words:
        assert w in str(e.value)
    assert e.value.exit_code == EXIT_CONFIG


def test_file_not_utf8(data):
    (data / "preau.toml").write_bytes(b'host = "\xe9cole"\n')
    with pytest.raises(SettingsError, match="not UTF-8 text"):
        load(data)


@pytest.mark.parametrize(
    "env, words",
    [
        ({"PREAU_PORT": "eighty"}, "environment variable PREAU_PORT: port must be a whole number"),
        ({"PREAU_MDNS": "maybe"}, "PREAU_MDNS: mdns must be true or false, got the text 'maybe'"),
        ({"PREAU_SYNC_INTERVAL": "nan"}, "sync_interval must be a number of seconds from 10 to 86400"),
        ({"PREAU_SYNC_INTERVAL": "5"}, "sync_interval must be a number of seconds from 10 to 86400, got 5"),
        ({"PREAU_HOST": "my host"}, "host must be a non-empty text without spaces"),
    ],
)
def test_bad_env_names_variable(data, env, words):
    with pytest.raises(SettingsError) as e:
        load(data, env)
    assert words in str(e.value)


def test_bad_flag_names_option(data):
    with pytest.raises(SettingsError, match=r"option --port: port must be a whole number"):
        load(data, port="80a")


def test_seconds_accept_fractions_and_urls_are_normalised(data):
    s = load(data, {"PREAU_SESSION_IDLE_TIMEOUT": "2.5", "PREAU_PARENT_URL": "https://d.example.fr/"})
    assert s.session_idle_timeout == 2.5
    assert s.parent_url == "https://d.example.fr"


def test_settings_validate_when_built_in_code(data):
    with pytest.raises(SettingsError, match="port must be a whole number"):
        Settings(data_dir=data, port=True)
    with pytest.raises(SettingsError, match="data_dir is required"):
        Settings()
    assert Settings(data_dir=str(data)).data_dir == data


def test_rendered_file_documents_every_setting_and_round_trips(data):
    text = render_toml({"role": "district", "port": 9443, "mdns": True, "parent_url": "https://a.example.fr"})
    assert tomllib.loads(text) == {"role": "district", "port": 9443, "mdns": True, "parent_url": "https://a.example.fr"}
    for spec in SETTINGS:
        if spec.in_file:
            assert f"{spec.name} = " in text
    write(data, text)
    s = load(data)
    assert (s.role, s.port, s.mdns) == ("district", 9443, True)
    # Uncommenting any line of the template gives a valid file.
    write(data, "\n".join(line[2:] if " = " in line and line.startswith("# ") else line for line in text.splitlines()))
    assert load(data).sync_interval == 300.0


def test_render_refuses_bad_values():
    with pytest.raises(SettingsError, match="port must be"):
        render_toml({"port": 0})
    with pytest.raises(SettingsError, match="cannot write data_dir"):
        render_toml({"data_dir": "/x"})


def test_flags_come_from_the_same_table(data):
    parser = argparse.ArgumentParser()
    add_setting_arguments(parser)
    help_text = parser.format_help()
    for spec in SETTINGS:
        assert spec.flag in help_text
        assert spec.env in help_text
    ns = parser.parse_args(["--port", "9100", "--mdns", "--data-dir", str(data)])
    flags = flags_from_namespace(ns)
    assert flags == {"port": "9100", "mdns": True, "data_dir": str(data)}
    s = load_settings(flags, env={"PREAU_PORT": "1"})
    assert s.port == 9100 and s.mdns is True
    assert set(BY_NAME) == {s.name for s in SETTINGS}


def test_init_writes_what_was_typed(data):
    s = load(data, {"PREAU_LOG_LEVEL": "debug"}, role="district", host="0.0.0.0")
    typed = given_on_command_line(s)
    assert typed == {"role": "district", "host": "0.0.0.0"}
    write(data, render_toml(typed))
    again = load(data)
    assert (again.role, again.host, again.log_level) == ("district", "0.0.0.0", "info")


def test_a_file_value_that_the_environment_overrides_is_named(tmp_path):
    """The systemd unit sets PREAU_HOST=0.0.0.0: `host = "127.0.0.1"` written in preau.toml (behind a reverse
    proxy, as docs/operations.md says) was silently not used. The settings name it, and `preau serve` logs it."""
    (tmp_path / "preau.toml").write_text('host = "127.0.0.1"\nport = 8080\n')
    s = load_settings({"data_dir": str(tmp_path)}, env={"PREAU_HOST": "0.0.0.0", "PREAU_PORT": "8080"})
    assert s.host == "0.0.0.0"
    assert dict(s.shadowed) == {"host": ("127.0.0.1", f"{tmp_path / 'preau.toml'}, line 1")}
