"""One rule for who runs commands: the data folder's owner. Run as root on a folder the service's user owns, a
command refuses with a message naming that user, and leaves no file behind (when the tests run as root)."""
from __future__ import annotations

import os
import pwd

import pytest

from cli_helpers import SCHOOL_UAI, init, preau, user_error
from preau.node.errors import EXIT_NOPERM

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the refusal is for commands run as root")


@root_only
@pytest.mark.parametrize("command", [["status"], ["keys", "rotate", "--yes"], ["restore", "/dev/null", "--force"],
                                     ["invite", "--uai", SCHOOL_UAI]])
def test_root_is_refused_on_a_folder_owned_by_the_service_user(tmp_path, command):
    data = tmp_path / "node"
    init(data, "district", "0693344K")
    nobody = pwd.getpwnam("nobody")
    for path in (data, *data.iterdir()):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    before = {p.name: p.stat().st_mtime_ns for p in data.iterdir()}
    r = preau(*command, "--data-dir", str(data))
    user_error(r, f"{data} belongs to the user nobody, and this command runs as root", EXIT_NOPERM)
    assert f"Run it as nobody: sudo -u nobody preau {command[0]}" in r.err
    assert {p.name: p.stat().st_mtime_ns for p in data.iterdir()} == before  # nothing written, nothing new
    assert all(p.stat().st_uid == nobody.pw_uid for p in data.iterdir())


def test_the_owner_runs_commands_as_before(tmp_path):
    data = tmp_path / "node"
    init(data, "school", SCHOOL_UAI)
    assert preau("status", "--data-dir", str(data)).code == 0
