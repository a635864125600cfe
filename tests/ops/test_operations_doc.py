"""docs/operations.md, "Trying a district and a school on one machine", run as written.

The shell blocks of that section are taken from the document itself and run in one bash script with HOME
set to a temporary folder, so the document cannot drift from the product. The only changes: the documented
ports are swapped for free ones, the password comes from PREAU_PASSWORD (the commands read it, as the
document says), and after a line that starts a server in the background the script waits for it to answer.

Installing into a fresh virtual environment takes more than a minute here, so by default the two install
lines are checked to be exactly the documented ones and replaced by a link to the `preau` under test;
PREAU_DOCS_INSTALL=1 runs them as written too (CI's docker job, or by hand).
"""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from cli_helpers import PASSWORD, PREAU, free_port

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECTION = "## Trying a district and a school on one machine"
INSTALL = ["python3 -m venv ~/preau-env", "~/preau-env/bin/pip install ."]


def documented_lines() -> list[str]:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        lines += [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    return lines


def test_the_trial_section_runs_as_written(tmp_path):
    lines = documented_lines()
    assert lines[:2] == INSTALL and any(line.startswith("preau join") for line in lines)
    ports = {"8081": str(free_port()), "8082": str(free_port())}
    wait = (f'"{sys.executable}" -c "import time, urllib.request as u\n'
            'for _ in range(300):\n'
            '    try: u.urlopen(\'http://127.0.0.1:{port}/healthz\', timeout=1); break\n'
            '    except OSError: time.sleep(0.1)\n'
            'else: raise SystemExit(\'the server did not start\')"')
    script = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    if os.environ.get("PREAU_DOCS_INSTALL") != "1":
        bindir = tmp_path / "preau-env" / "bin"
        bindir.mkdir(parents=True)
        (bindir / "preau").write_text("#!/bin/sh\nexec " + " ".join(f'"{p}"' for p in PREAU) + ' "$@"\n')
        (bindir / "preau").chmod(0o755)
        lines = lines[2:]
    port_of = None
    for line in lines:
        for documented, free in ports.items():
            if documented in line:
                line = line.replace(documented, free)
                port_of = free
        script.append(line)
        if line.rstrip().endswith("&"):
            script.append(wait.replace("{port}", port_of))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    env.update(HOME=str(tmp_path), PREAU_PASSWORD=PASSWORD, PREAU_ARGON2_PROFILE="minimal")
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Joined the district" in out, out
    assert re.search(r"last sync: \d+ seconds? ago", out), out
    assert (tmp_path / "trial" / "ecole.backup").is_file()
    if os.environ.get("PREAU_DOCS_INSTALL") == "1":  # the unit's Documentation= file, as a real install lays it out
        assert (tmp_path / "preau-env" / "share" / "doc" / "preau" / "operations.md").is_file()
    assert "Traceback" not in done.stderr, done.stderr


def test_every_uai_in_the_docs_is_valid():
    """A documented example UAI with a wrong check letter sends IT staff into an error on their first command."""
    from preau.protocol.uai import parse_uai

    seen = set()
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "deploy" / "preau-school.service"):
        for token in re.findall(r"(?<![0-9A-Za-z])[0-9]{7}[A-Z](?![0-9A-Za-z])", doc.read_text(encoding="utf-8")):
            parse_uai(token)
            seen.add(token)
    assert len(seen) >= 3


def test_the_units_documentation_line_names_a_file_the_install_puts_there():
    """`systemctl help preau-school` opens the unit's Documentation= file: the package installs it there."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    unit = (ROOT / "deploy" / "preau-school.service").read_text(encoding="utf-8")
    [doc] = re.findall(r"^Documentation=file:///opt/preau/(\S+)$", unit, re.M)
    folder, name = doc.rsplit("/", 1)
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert f"docs/{name}" in data_files[folder] and (ROOT / "docs" / name).is_file()
