"""Joining by short code through the real `preau` entry point, against a served district.

The head teacher types the code with one typo (refused in French, naming the group, before any traffic),
then right (enrolled, and the school syncs); a wrong code, a man in the middle posing as the district and
an attacker guessing codes at the district all fail to enrol.
"""
from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading

import pytest
from aiohttp import web

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


def _other_code(code: str) -> str:
    """Another well-formed code with the same slot: the district finds the invitation, the PAKE fails."""
    right = jc.parse_code(code)
    data = right.data[:3] + ("0" if right.data[3] != "0" else "1") + right.data[4:]
    return jc.JoinCode(data).text


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
    # (in English: the command's words follow the locale now, and this assertion is the English text)
    r = preau("join", code.lower().replace("-", " "), "--district", district.url.removeprefix("http://"),
              "--data-dir", str(school))
    assert r.code == 0, r.err
    assert r.out.startswith("Joined the district ")
    r = preau("sync", "--data-dir", str(school))
    assert r.code == 0 and r.out.startswith("Synced with "), r.err
    # Used once: typed again (by anyone), it gets its own message.
    with pytest.raises(CodeRefused) as exc:
        _fetch(district.url, code)
    assert exc.value.code == "invitation_used"
    assert "a déjà servi" in exc.value.localized("fr")


@pytest.mark.slow
def test_wrong_codes_a_fake_district_and_an_expired_code_enrol_nobody(district, tmp_path):
    school = tmp_path / "school"
    init(school, "school", SCHOOL_UAI)
    code, _long = _invite(district)
    # A well-formed code that is not the invitation's: refused, and counted against the invitation.
    r = preau("join", _other_code(code), "--district", district.url, "--data-dir", str(school), env=FR)
    assert r.code == 1 and "Le code ne correspond pas à l'invitation" in r.err, r.err
    assert _failures(district)[-1] == 1
    # Someone on the LAN guessing at the district, with their own program: MAX_FAILURES tries in all, then
    # the code is locked for everyone, the right code included.
    for _ in range(jc.MAX_FAILURES - 1):
        with pytest.raises(CodeRefused) as exc:
            _fetch(district.url, _other_code(code))
        assert exc.value.code == "joincode_wrong"
    r = preau("join", code, "--district", district.url, "--data-dir", str(school), env=FR)
    assert r.code == 1 and "la circonscription l'a bloqué" in r.err, r.err
    # A man in the middle answering in the district's place (its own keys, a guessed code).
    code, _long = _invite(district)
    with _FakeDistrict() as fake:
        r = preau("join", code, "--district", f"http://127.0.0.1:{fake.port}", "--data-dir", str(school), env=FR)
    assert fake.tries == 1
    assert r.code == 1 and "Le code ne correspond pas" in r.err, r.err
    # Expired (the district's record says so): its own message.
    with sqlite3.connect(district.data / "federation.db") as db:
        db.execute("UPDATE invitations SET expires_at = 1000 WHERE code_slot = ?", [jc.parse_code(code).slot])
    r = preau("join", code, "--district", district.url, "--data-dir", str(school), env=FR)
    assert r.code == 1 and "Ce code d'invitation a expiré" in r.err, r.err
    assert "not joined yet" in preau("status", "--data-dir", str(school)).out


class _FakeDistrict:
    """A man in the middle on the LAN answering /v1/code in the district's place, with its own keys and a
    guessed code (it cannot know the real one: the code never travels)."""

    def __init__(self):
        self.port = free_port()
        self.tries = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _code(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        hello = jc.parse_hello(msg.data)
        self.tries += 1
        guess = jc.JoinCode(hello.slot + "0" * 13)
        server = jc.CodeServer(hello, guess, random=os.urandom(64))
        await ws.send_bytes(server.reply())
        await ws.receive()  # the school hangs up: it checked our confirmation and refused
        await ws.close()
        return ws

    def _run(self):
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get(jc.PATH, self._code)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
