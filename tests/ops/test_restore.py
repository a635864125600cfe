"""Restore that cannot lose data, with real processes: refused while `preau serve` runs; a restored node is the
same node (keys, enrolment, and its settings: a district comes back a district)."""
from __future__ import annotations

import json

import pytest

from cli_helpers import DISTRICT_UAI, free_port, init, preau, serve, user_error

pytestmark = pytest.mark.slow


def _status(data) -> dict:
    r = preau("status", "--json", "--data-dir", str(data))
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_a_district_restored_onto_a_fresh_folder_is_the_same_district(tmp_path):
    old = tmp_path / "old"
    init(old, "district", DISTRICT_UAI, "--public-url", "http://circo.example:8080")
    before = _status(old)
    assert preau("backup", "--user", "admin", "--output", str(tmp_path / "d.backup"), "--data-dir", str(old)).code == 0

    new = tmp_path / "new"
    r = preau("restore", str(tmp_path / "d.backup"), "--user", "admin", "--data-dir", str(new))
    assert r.code == 0, r.err
    after = _status(new)
    assert (after["role"], after["node_id"]) == ("district", before["node_id"])
    r = preau("invite", "--uai", "0751234J", "--data-dir", str(new))
    assert r.code == 0 and r.out.startswith("PREAU1-"), r.err
    assert "http://circo.example:8080" in r.err  # the address the invitation points to, from the restored settings


def test_restore_is_refused_while_the_node_serves(tmp_path):
    data = tmp_path / "school"
    init(data, "school", "0751234J")
    backup = tmp_path / "s.backup"
    assert preau("backup", "--user", "admin", "--output", str(backup), "--data-dir", str(data)).code == 0
    proc = serve(data, free_port())
    try:
        r = preau("restore", str(backup), "--force", "--user", "admin", "--data-dir", str(data))
        user_error(r, "is running (`preau serve`)")
        assert not list(data.glob("*.before-restore-*"))  # nothing was touched
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    r = preau("restore", str(backup), "--force", "--user", "admin", "--data-dir", str(data))
    assert r.code == 0, r.err


def test_settings_written_before_a_restore_are_kept_beside_it(tmp_path):
    src = tmp_path / "src"
    init(src, "school", "0751234J")
    backup = tmp_path / "s.backup"
    assert preau("backup", "--user", "admin", "--output", str(backup), "--data-dir", str(src)).code == 0
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "preau.toml").write_text('public_url = "http://ecole.example:8080"\n')
    r = preau("restore", str(backup), "--user", "admin", "--data-dir", str(dst))
    assert r.code == 0, r.err
    [kept] = dst.glob("preau.toml.before-restore-*")
    assert "ecole.example" in kept.read_text() and kept.name in r.out
