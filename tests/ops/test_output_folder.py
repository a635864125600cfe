"""An output file (backup, bundle, GDPR document) in a folder the command's user cannot write is refused in
words before any work, naming who runs the command and who owns the folder: the upgrade procedure's
`sudo -u preau preau backup --output /var/backups/...` ended in a traceback (exit 70)."""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile

import pytest

from preau.node.actions import backups
from preau.node.errors import UserError
from preau.node.settings import load_settings

from cli_helpers import SCHOOL_UAI, init


@contextlib.contextmanager
def _as_another_user():
    """Root may write anywhere: the check is made as `nobody` (the effective user), as `sudo -u preau` would."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(pwd.getpwnam("nobody").pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)


def test_a_backup_into_a_folder_this_user_cannot_write_is_refused_in_words(tmp_path):
    data = tmp_path / "school"
    init(data, "school", SCHOOL_UAI)
    folder = tempfile.mkdtemp(prefix="preau-root-only-")  # like /var/backups: root's, 0755
    try:
        os.chmod(folder, 0o755 if os.geteuid() == 0 else 0o555)
        output = os.path.join(folder, "before-upgrade.backup")
        settings = load_settings({"data_dir": str(data)}, env={})
        with _as_another_user(), pytest.raises(UserError) as err:
            backups.check_backup(settings, output=output)
        me = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        assert f"cannot write {output}: this command runs as {me}, and the folder {folder} belongs to" in str(err.value)
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder)
