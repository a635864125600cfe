import subprocess
import sys
import types

import pytest

from preau.cli import main as cli
from preau.node.errors import EXIT_BUG, EXIT_CONFIG, EXIT_NOT_AVAILABLE, EXIT_USAGE, EXIT_USER, UserError

ALL_COMMANDS = [
    "gdpr status", "gdpr retention", "gdpr purge", "gdpr pupils", "gdpr access", "gdpr count", "gdpr rectify",
    "gdpr notice", "gdpr register",
    "init", "serve", "invite", "join", "status", "sync", "release", "stats", "backup", "restore",
    "bundle export", "bundle import", "keys rotate", "keys recovery", "revoke", "campaign load", "campaign check", "demo",
    "pool create", "pool list", "pool declare", "pool approve", "pool advance",
]  # fmt: skip


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_of_the_issue_exists():
    assert sorted(c.name for c in cli.COMMANDS) == sorted(ALL_COMMANDS)
    assert set(cli.NODE_FUNCTIONS) == set(ALL_COMMANDS) - {"campaign check"}


@pytest.mark.parametrize("command", ALL_COMMANDS + ["bundle", "keys", "campaign", "pool", "gdpr"])
def test_help_shows_an_example(capsys, command):
    with pytest.raises(SystemExit) as e:
        cli.main([*command.split(), "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "Example" in out
    examples = out.split("Example", 1)[1]
    assert f"preau {command}" in examples


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("init", "serve", "campaign", "demo", "bundle"):
        assert name in out


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, err = run(capsys)
    assert code == EXIT_USAGE and "COMMAND" in err
    code, out, err = run(capsys, "bundle")
    assert code == EXIT_USAGE and "export" in err


@pytest.mark.parametrize(
    "uai, words",
    [
        ("0751234K", "0751234K is not a valid UAI: the check letter K does not match the digits"),
        ("075123J", "'075123J' is not a UAI: a UAI has 8 characters: 7 digits then a letter, like 0751234J"),
        ("0001234X", "0001234X is not a UAI: its first three digits (000) are not a département"),
    ],
)
def test_init_refuses_a_bad_uai(capsys, tmp_path, uai, words):
    code, out, err = run(capsys, "init", "--uai", uai, "--data-dir", str(tmp_path))
    assert code == EXIT_USER
    assert err == f"preau: error: {words}" + err.split(words, 1)[1]
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_uai_is_normalised_and_good_ones_pass():
    from preau.cli.checks import check_uai

    assert check_uai(" 0751234j ") == "0751234J"
    for good in ("0010856A", "9730456H", "0693344K"):
        assert check_uai(good) == good


def test_unwired_command_fails_honestly(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(cli.NODE_FUNCTIONS, "status", "preau.node.no_such_module_xyz:status")
    code, out, err = run(capsys, "status", "--data-dir", str(tmp_path))
    assert code == EXIT_NOT_AVAILABLE
    assert out == ""
    assert err == (
        "preau: error: `preau status` is not available yet in this build "
        "(it needs preau.node.no_such_module_xyz.status, which is not written yet)\n"
    )


def test_missing_function_in_existing_module_is_not_available(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(cli.NODE_FUNCTIONS, "sync", "preau.node.settings:no_such_function")
    code, _, err = run(capsys, "sync", "--data-dir", str(tmp_path))
    assert code == EXIT_NOT_AVAILABLE and "not available yet" in err


@pytest.fixture
def fake_node(monkeypatch):
    """A node module put in place of the real one, to drive the generic command path."""
    mod = types.ModuleType("preau.node._fake_for_cli_tests")
    calls = []
    mod.calls = calls
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    for name in ("status", "release", "init"):
        monkeypatch.setitem(cli.NODE_FUNCTIONS, name, f"{mod.__name__}:{name}")
    return mod


def test_node_function_gets_settings_and_options(capsys, tmp_path, fake_node):
    def status(settings, **options):
        fake_node.calls.append((settings, options))
        return "all good"

    fake_node.status = status
    code, out, err = run(capsys, "status", "--json", "--data-dir", str(tmp_path))
    assert (code, out, err) == (0, "all good\n", "")
    settings, options = fake_node.calls[0]
    assert settings.data_dir == tmp_path
    assert options == {"json": True, "command": "status"}


def test_init_passes_the_normalised_uai_and_settings_flags(capsys, tmp_path, fake_node):
    fake_node.init = lambda settings, **o: fake_node.calls.append((settings, o))
    code, _, _ = run(capsys, "init", "--uai", "0751234j", "--role", "district", "--port", "9443", "--data-dir", str(tmp_path))
    assert code == 0
    settings, options = fake_node.calls[0]
    assert (settings.role, settings.port) == ("district", 9443)
    assert options["uai"] == "0751234J" and options["admin"] == "admin"


def test_user_error_from_node_is_one_line_with_its_code(capsys, tmp_path, fake_node):
    def release(settings, **options):
        raise UserError("the release is not approved:\nrun with --approve", exit_code=3)

    fake_node.release = release
    code, out, err = run(capsys, "release", "2026-debut-cp", "--data-dir", str(tmp_path))
    assert code == 3
    assert err == "preau: error: the release is not approved: run with --approve\n"


def test_unexpected_error_is_not_swallowed(capsys, tmp_path, fake_node):
    def release(settings, **options):
        raise KeyError("boom")

    fake_node.release = release
    code, out, err = run(capsys, "release", "2026-debut-cp", "--data-dir", str(tmp_path))
    assert code == EXIT_BUG
    assert "Traceback" in err and "KeyError: 'boom'" in err
    assert err.rstrip().endswith("this is a bug in Préau; please report it with the lines above")


def test_panic_like_base_exception_is_reported_as_a_bug(capsys, tmp_path, fake_node):
    class PanicException(BaseException):  # what pyo3 raises on a Rust panic
        pass

    def release(settings, **options):
        raise PanicException("todo!()")

    fake_node.release = release
    code, out, err = run(capsys, "release", "2026-debut-cp", "--data-dir", str(tmp_path))
    assert code == EXIT_BUG and "PanicException: todo!()" in err


def test_import_error_inside_a_node_module_is_a_bug_not_missing(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(cli.NODE_FUNCTIONS, "sync", "preau.node._broken_for_cli_tests:sync_now")

    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name == "preau.node._broken_for_cli_tests":
                raise ModuleNotFoundError("No module named 'some_dependency'", name="some_dependency")
            return None

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    code, _, err = run(capsys, "sync", "--data-dir", str(tmp_path))
    assert code == EXIT_BUG and "some_dependency" in err


def test_bad_setting_flag_is_a_config_error(capsys, tmp_path):
    code, _, err = run(capsys, "serve", "--port", "http", "--data-dir", str(tmp_path))
    assert code == EXIT_CONFIG
    assert err == "preau: error: option --port: port must be a whole number from 1 to 65535, got the text 'http'\n"


def test_bad_settings_file_is_reported_before_the_command(capsys, tmp_path):
    (tmp_path / "preau.toml").write_text('role = "ecole"\n')
    code, _, err = run(capsys, "status", "--data-dir", str(tmp_path))
    assert code == EXIT_CONFIG
    assert "line 1: role must be one of school, district" in err


def test_installed_console_script_exit_code_and_stderr(tmp_path):
    """The real `preau` entry point, as a person would run it."""
    proc = subprocess.run(
        [sys.executable, "-m", "preau.cli.main", "init", "--uai", "0751234K", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_USER
    assert proc.stdout == ""
    assert proc.stderr.startswith("preau: error: 0751234K is not a valid UAI")


def test_a_locked_database_says_to_try_again_and_other_sqlite_errors_stay_bugs(capsys, tmp_path, fake_node):
    import sqlite3

    from preau.node.errors import EXIT_TEMPFAIL

    def release(settings, **options):
        raise sqlite3.OperationalError("database is locked")

    fake_node.release = release
    code, out, err = run(capsys, "release", "2026-debut-cp", "--data-dir", str(tmp_path))
    assert code == EXIT_TEMPFAIL and "Traceback" not in err
    assert err.startswith("preau: error: the node's database is busy") and "try again in a moment" in err

    def broken(settings, **options):
        raise sqlite3.OperationalError("no such table: pupils")

    fake_node.release = broken
    code, out, err = run(capsys, "release", "2026-debut-cp", "--data-dir", str(tmp_path))
    assert code == EXIT_BUG and "no such table" in err


def test_every_command_reaches_a_function_that_exists():
    """A moved module must not turn a real command into "not available yet" (the table holds strings)."""
    for command in cli.NODE_FUNCTIONS:
        assert callable(cli.node_function(command)), command
