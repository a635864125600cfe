"""Damaged key files and databases, met by real `preau` processes: one line that names the file and says how to
restore it, a documented exit code (sysexits EX_DATAERR, 65), never a traceback, and nothing changed on disk."""
from __future__ import annotations

import os
import pathlib
import shutil
import sqlite3

import pytest

from cli_helpers import SCHOOL_UAI, free_port, init, preau
from preau.node.errors import EXIT_DATA

pytestmark = pytest.mark.slow


def one_line(r, code: int) -> str:
    assert r.code == code, (r.code, r.out, r.err)
    assert "Traceback" not in r.err, r.err
    assert r.err.startswith(("preau: error: ", "preau : erreur : ")) and r.err.count("\n") == 1, r.err
    return r.err


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A school node with a district-free federation store, made once; each test works on a copy."""
    root = tmp_path_factory.mktemp("pristine")
    init(root / "school", "school", SCHOOL_UAI)
    return root / "school"


@pytest.fixture
def school(pristine, tmp_path):
    data = tmp_path / "school"
    shutil.copytree(pristine, data)
    return data


def _flip_hex_digit(path: pathlib.Path, index: int) -> None:
    text = path.read_text()
    pos = [i for i, ch in enumerate(text) if ch in "0123456789abcdef"][index]
    path.write_text(text[:pos] + ("1" if text[pos] != "1" else "2") + text[pos + 1:])


@pytest.mark.parametrize("name, damage", [
    ("identity.key", "digit"), ("identity.key", "checksum digit"), ("identity.key", "binary"),
    ("identity.key", "truncated"), ("storage.key", "digit"), ("storage.key", "empty"),
])
def test_a_damaged_key_file_is_refused_by_name(school, name, damage):
    path = school / name
    before = path.read_bytes()
    if damage == "digit":
        _flip_hex_digit(path, 20)
    elif damage == "checksum digit":
        _flip_hex_digit(path, -1)
    elif damage == "binary":
        path.write_bytes(os.urandom(33) + b"\xff")
    elif damage == "truncated":
        path.write_bytes(before[:40])
    else:
        path.write_bytes(b"")
    damaged = path.read_bytes()
    command = ["status"] if name == "identity.key" else ["backup", "--output", str(school.parent / "b.preau")]
    err = one_line(preau(*command, "--data-dir", str(school)), EXIT_DATA)
    assert str(path) in err and "preau restore" in err, err
    if damage in ("digit", "checksum digit"):
        assert err == (f"preau: error: The key file {path} fails its checksum: it was changed or damaged, and Préau "
                       "will not start as another identity. Restore it from the latest backup (`preau restore FILE`), "
                       "or set the node up again.\n")
        fr = one_line(preau(*command, "--data-dir", str(school), env={"LANG": "fr_FR.UTF-8"}), EXIT_DATA)
        assert fr.startswith(f"preau : erreur : Le fichier de clé {path} ne correspond plus à sa somme de contrôle"), fr
    assert path.read_bytes() == damaged  # refused, not "repaired" into another identity


def test_an_old_key_file_without_checksum_loads_and_serve_rewrites_it(school):
    from preau.protocol.identity import decode_key_file

    path = school / "identity.key"
    seed, legacy = decode_key_file(path.read_bytes())
    assert not legacy
    path.write_text(seed.hex() + "\n")  # as Préau wrote it before the checksum
    r = preau("status", "--data-dir", str(school))
    assert r.code == 0, r.err
    assert path.read_text() == seed.hex() + "\n"  # a read-only command leaves it alone
    from cli_helpers import serve

    proc = serve(school, free_port())
    try:
        assert decode_key_file(path.read_bytes()) == (seed, False)
    finally:
        proc.terminate()
        proc.wait(15)


def _corrupt(path: pathlib.Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[:100]))
    elif how == "header":
        data[0:16] = b"not a database!!"
        path.write_bytes(bytes(data))
    else:  # bit flips in every page after the first: b-tree headers and cells
        for page in range(1, len(data) // 4096):
            data[page * 4096] ^= 0xFF
            data[page * 4096 + 7] ^= 0x5A
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("name, how", [("federation.db", "truncated"), ("federation.db", "bitflip"),
                                       ("preau.db", "header"), ("preau.db", "bitflip")])
def test_a_damaged_database_is_named_with_the_way_to_restore_it(school, name, how):
    path = school / name
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    _corrupt(path, how)
    damaged = path.read_bytes()
    for command in (["status"], ["release", "2026-debut-cp", "--user", "admin"]):
        r = preau(*command, "--data-dir", str(school))
        err = one_line(r, EXIT_DATA)
        assert str(path) in err and "preau restore" in err, (command, err)
    if how == "bitflip":  # `preau serve` too: it refuses to start, in one line, instead of a traceback
        port = free_port()
        r = preau("serve", "--data-dir", str(school), "--port", str(port), timeout=60)
        err = one_line(r, EXIT_DATA)
        assert str(path) in err and "preau restore" in err, err
    assert path.read_bytes() == damaged
