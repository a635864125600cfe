"""The README keeps its two commands up front; the operations guide keeps up with the settings table and exit codes."""
import pathlib
import re

from preau.node import errors
from preau.node.settings import SETTINGS

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_readme_two_commands_right_after_the_intro():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first_block] == ["make demo", "make test"]
    assert text.index("make demo") < text.index("## ")
    assert "## Démarrage rapide" in text
    for doc in ("architecture", "protocol", "crdt", "security", "privacy", "operations", "guide-fr"):
        assert f"(docs/{doc}.md)" in text


def test_privacy_names_a_test_that_exists_for_each_guarantee():
    """docs/privacy.md: every test file it names is there (a guarantee whose test went away is caught)."""
    text = (ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(tests/[a-z_/]+\.py)", text))
    assert len(named) >= 8
    for path in named:
        assert (ROOT / path).exists(), path


def test_operations_lists_every_setting():
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for spec in SETTINGS:
        assert f"| `{spec.name}` |" in text, spec.name


def test_operations_exit_codes_match_the_code():
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", text, re.M))
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert codes <= {int(c) for c in table}


def test_readme_and_operations_commands_are_real():
    """Every `preau ...` line a person is told to type parses with the real command line."""
    import shlex

    from preau.cli.main import build_parser

    seen = 0
    for doc in (ROOT / "README.md", ROOT / "docs" / "operations.md"):
        text = doc.read_text(encoding="utf-8").replace("\\\n", " ")
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            for line in block.splitlines():
                line = line.split("#")[0].strip()
                if line.startswith(("ln ", "cp ", "install ")):  # a path to the program, not a command
                    continue
                m = re.search(r"(?:^|/bin/|sudo -u \S+ |runuser -u \S+ -- )preau (.+?)\s*&?$", line.split(" > ")[0])
                if not m:
                    continue
                args = build_parser().parse_args(shlex.split(m.group(1)))
                assert args.run is not None, line
                seen += 1
    assert seen >= 20
