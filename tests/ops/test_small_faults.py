"""The smaller faults IT staff met (issue 18, item 8), each with its test."""
from __future__ import annotations

import os
import subprocess

from cli_helpers import PASSWORD, PREAU, SCHOOL_UAI, init, preau, start_district


def test_join_help_shows_an_invitation_as_they_really_start():
    r = preau("join", "--help")
    assert r.code == 0 and "PREAU1-" in r.out and "preau-invite:" not in r.out


def test_commands_log_in_as_the_head_teacher_init_named(tmp_path):
    """Created with --admin directrice, the school's commands no longer try an 'admin' account that does not exist."""
    data = tmp_path / "ecole"
    init(data, "school", SCHOOL_UAI, "--admin", "directrice")
    r = preau("backup", "--output", str(tmp_path / "b.backup"), "--data-dir", str(data))
    assert r.code == 0, r.err
    r = preau("release", "2026-debut-cp", "--data-dir", str(data))
    assert "admin" not in r.err.replace("directrice", ""), r.err


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """`preau status | head -0`: the pipe closes before preau writes; it ends quietly."""
    init(tmp_path, "school", SCHOOL_UAI)
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    env.update(PREAU_PASSWORD=PASSWORD, PREAU_ARGON2_PROFILE="minimal")
    try:
        done = subprocess.run([*PREAU, "status", "--data-dir", str(tmp_path)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    finally:
        os.close(write_end)
    assert done.returncode == 0 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_a_districts_bundle_is_for_the_node_above(tmp_path):
    data = tmp_path / "circo"
    init(data, "district", "0693344K")
    r = preau("bundle", "export", "--output", str(tmp_path / "c.bundle"), "--data-dir", str(data))
    assert r.code == 0 and "import them on the node above this district (its académie)" in r.out, r.out


def test_join_with_the_long_invitation_tries_the_address_given_first(tmp_path):
    """An invitation made before the district's address changed (restored on another box, public_url set
    late): `--district` was silently ignored with the long text, and the join failed on the old address."""
    district = start_district(tmp_path)
    try:
        with open(district.data / "preau.toml", "a") as f:
            f.write('public_url = "http://127.0.0.1:9"\n')  # where nothing answers
        r = preau("invite", "--uai", SCHOOL_UAI, "--allow-loopback", "--data-dir", str(district.data))
        assert r.code == 0 and "http://127.0.0.1:9" in r.err, r.err
        school = tmp_path / "ecole"
        init(school, "school", SCHOOL_UAI)
        r = preau("join", r.out.strip(), "--district", f"127.0.0.1:{district.port}", "--data-dir", str(school))
        assert r.code == 0 and f"at http://127.0.0.1:{district.port}" in r.out, r.err
    finally:
        district.stop()
