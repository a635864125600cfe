"""Joining by short code through the real `preau` entry point, against a served district.

The head teacher types the code with one typo (refused in French, naming the group, before any traffic),
then right (enrolled, and the school syncs). Wrong, guessed, expired codes and a fake district:
tests/node/web/test_joincode_refusals.py (the same Node.join, in one process, faster).
"""
from __future__ import annotations

import asyncio
import re
import sqlite3

import pytest

from preau.node.federation.joincode import CodeRefused, fetch_invitation
from preau.protocol import joincode as jc

from cli_helpers import SCHOOL_UAI, free_port, init, preau, start_district

FR = {"LANG": "fr_FR.UTF-8"}
CODE = re.compile(r"^    ([0-9A-Z]{5}(?:-[0-9A-Z]{5}){3})$", re.M)


def _invite(district, uai: str = SCHOOL_UAI) -> tuple[str, str]:
    r = preau("invite", "--uai", uai, "--allow-loopback", "--data-dir", str(district.data), env=FR)
    assert r.code == 0, r.err
    assert "Code à taper par la direction de l'école" in r.err and r.out.startswith("PREAU1-")
    return CODE.search(r.err).group(1), r.out.strip()


def _failures(district) -> list[int]:
    with sqlite3.connect(district.data / "federation.db") as db:
        return [row[0] for row in db.execute("SELECT code_failures FROM invitations ORDER BY created_at")]


def _typo(code: str, position: int) -> str:
    ch = code[position]
    return code[:position] + ("0" if ch != "0" else "1") + code[position + 1:]


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    d = start_district(tmp_path_factory.mktemp("joincode"))
    try:
        yield d
    finally:
        d.stop()


def _fetch(url: str, code: str):
    """The school's side of the exchange, in this process (what an attacker's own program would do)."""
    return asyncio.run(fetch_invitation(url, jc.parse_code(code)))


@pytest.mark.slow
def test_a_typo_is_refused_in_french_before_any_traffic_then_the_right_code_enrols(district, tmp_path):
    code, _long = _invite(district)
    school = tmp_path / "school"
    init(school, "school", SCHOOL_UAI)
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there: the typo must be caught before trying it
    r = preau("join", _typo(code, 7), "--district", dead, "--data-dir", str(school), env=FR)
    assert r.code == 1 and "Traceback" not in r.err
    assert "Le groupe 2 (" in r.err and "est faux" in r.err and "rien n'a été envoyé" in r.err, r.err
    swapped = code[:13] + code[14] + code[13] + code[15:]  # two neighbours of group 3 swapped
    if swapped != code:
        r = preau("join", swapped, "--district", district.url, "--data-dir", str(school), env=FR)
        assert r.code == 1 and "Le groupe 3 (" in r.err, r.err
    assert _failures(district)[-1] == 0  # the district never heard of either
    r = preau("join", code.lower().replace("-", " "), "--district", district.url.removeprefix("http://"),
              "--data-dir", str(school), env=FR)
    assert r.code == 0, r.err
    assert r.out.startswith("Joined the district ")
    r = preau("sync", "--data-dir", str(school))
    assert r.code == 0 and r.out.startswith("Synced with "), r.err
    # Used once: typed again (by anyone), it gets its own message.
    with pytest.raises(CodeRefused) as exc:
        _fetch(district.url, code)
    assert exc.value.code == "invitation_used"
    assert "a déjà servi" in exc.value.localized("fr")
