"""Short codes that must not enrol: wrong, guessed, answered by a fake district, expired, revoked, another school's.

Two real nodes (`create_app` on 127.0.0.1) and the school's `Node.join`, which `preau join` and the
join form both call; each refusal is checked in the French the head teacher reads.
"""
from __future__ import annotations

import os

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node_fixtures import SCHOOL_UAI, district_and_school, free_port
from preau.node.appkeys import NODE
from preau.node.errors import UserError
from preau.node.federation.joincode import CodeRefused, fetch_invitation
from preau.protocol import joincode as jc
from preau.protocol.errors import RemoteProtocolError

OTHER_UAI = "0010856A"


@pytest.fixture
async def pair(tmp_path):
    # The district set up behind the reverse proxy of docs/operations.md (trusted_proxy = true).
    async with district_and_school(tmp_path, trusted_proxy=True) as (district_srv, school_srv, url):
        yield district_srv.app[NODE], school_srv.app[NODE], url


def _code(d_node, url: str, uai: str = SCHOOL_UAI) -> str:
    return jc.JoinCode.from_secret(d_node.call(d_node.create_invitation, uai, [url]).secret).text


def _other(code: str) -> str:
    """Another well-formed code with the same slot: the district finds the invitation, SPAKE2 fails."""
    data = jc.parse_code(code).data
    return jc.JoinCode(data[:3] + ("0" if data[3] != "0" else "1") + data[4:]).text


async def _refused(s_node, code: str, url: str) -> UserError:
    with pytest.raises(UserError) as exc:
        await s_node.join(code, SCHOOL_UAI, url)
    assert s_node.federation.upstream() is None  # not enrolled
    return exc.value


async def _refused_by(s_node, code: str, handler) -> UserError:
    """`_refused` against a stand-in district whose /v1/code is `handler` (a real server on 127.0.0.1)."""
    app = web.Application()
    app.router.add_get(jc.PATH, handler)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        return await _refused(s_node, code, str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()


def _failures(d_node, code: str) -> int:
    return d_node.fed.invitation_by_slot(jc.parse_code(code).slot)["code_failures"]


async def test_wrong_codes_are_counted_then_the_code_is_locked(pair):
    d_node, s_node, url = pair
    code = _code(d_node, url)
    err = await _refused(s_node, _other(code), url)
    assert "Le code ne correspond pas à l'invitation" in err.localized("fr")
    assert _failures(d_node, code) == 1
    # Someone on the LAN guessing at the district with their own program: each try counted.
    for n in range(2, jc.MAX_FAILURES + 1):
        with pytest.raises(CodeRefused) as exc:
            await fetch_invitation(url, jc.parse_code(_other(code)))
        assert exc.value.code == "joincode_wrong" and _failures(d_node, code) == n
    err = await _refused(s_node, code, url)  # locked, for the right code too
    assert "la circonscription l'a bloqué" in err.localized("fr")
    assert _failures(d_node, code) == jc.MAX_FAILURES  # a refused hello is not another try
    # Every wrong try is in the district's events, the one logged after the school hung up included.
    assert [e["kind"] for e in d_node.fed.events(10)].count("join_code_wrong") == jc.MAX_FAILURES


async def test_one_computer_guessing_codes_is_stopped_before_it_can_spoil_them(pair, monkeypatch):
    """Slots are 15 bits and an unknown one is answered at once: without a bound per address one computer
    found every pending invitation and locked its code (5 wrong tries) in minutes. After a few failures
    the address is refused without the invitation being looked at, so it can neither find nor lock one."""
    d_node, s_node, url = pair
    code = _code(d_node, url)
    slot = jc.parse_code(code).slot
    limit = d_node.gate.limits.code_failures_per_address
    guesses = [s for s in ("ZZZ", "ZZY", "ZZX", "ZZW", "ZZV", "ZZT", "ZZS", "ZZR", "ZZQ", "ZZP", "ZZN") if s != slot]
    for guess in guesses[:limit]:  # a scan of the slots, from one address
        with pytest.raises(CodeRefused) as exc:
            await fetch_invitation(url, jc.JoinCode(guess + "0" * 13))
        assert exc.value.code == "joincode_unknown"
    for attempt in (_other(code), code):  # the scan found nothing more, and cannot lock the real invitation
        with pytest.raises(CodeRefused) as exc:
            await fetch_invitation(url, jc.parse_code(attempt))
        assert exc.value.code == "joincode_too_many"
    assert _failures(d_node, code) == 0
    err = await _refused(s_node, code, url)
    assert "Trop d'essais de code sans succès auprès de la circonscription" in err.localized("fr")
    assert "use the long text of the invitation" in err.localized("en")
    # Behind the district's reverse proxy every computer is 127.0.0.1: the proxy's X-Forwarded-For tells
    # the school (here 203.0.113.9) from the guesser, so the school is not made to wait for it.
    client = jc.CodeClient(jc.parse_code(code), random=os.urandom(64))
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url + jc.PATH, headers={"X-Forwarded-For": "203.0.113.9"}) as ws:
            await ws.send_bytes(client.hello())
            await ws.send_bytes(client.receive_reply((await ws.receive()).data))
            assert client.receive_invitation((await ws.receive()).data).uai == SCHOOL_UAI
    later = d_node.gate.clock() + d_node.gate.limits.code_failure_window
    monkeypatch.setattr(d_node.gate, "clock", lambda: later)  # the window has passed: the school gets in
    inv = await fetch_invitation(url, jc.parse_code(code))
    assert inv.uai == SCHOOL_UAI and _failures(d_node, code) == 0


async def test_the_right_code_is_not_counted_as_a_failure(pair):
    d_node, s_node, url = pair
    code = _code(d_node, url)
    inv = await fetch_invitation(url, jc.parse_code(code))
    assert inv.uai == SCHOOL_UAI and inv.issuer == d_node.identity.public
    assert _failures(d_node, code) == 0


async def test_a_fake_district_on_the_lan_gets_no_enrolment(pair, tmp_path):
    """A man in the middle answering the school's address with its own keys and a guessed code: it cannot
    make the school's check pass, so the school sends nothing a guess could be tested on, and does not enrol."""
    d_node, s_node, url = pair
    code = _code(d_node, url)
    tries = []

    async def fake_code(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        hello = jc.parse_hello((await ws.receive()).data)
        tries.append(hello.slot)
        server = jc.CodeServer(hello, jc.JoinCode(hello.slot + "0" * 13), random=os.urandom(64))
        await ws.send_bytes(server.reply())
        tries.append((await ws.receive()).type)  # the school hangs up instead of confirming
        await ws.close()
        return ws

    err = await _refused_by(s_node, code, fake_code)
    assert "Le code ne correspond pas" in err.localized("fr")
    assert tries[0] == jc.parse_code(code).slot and tries[1] != web.WSMsgType.BINARY
    # The real district lost nothing: the same code still enrols there.
    report = await s_node.join(code, SCHOOL_UAI, url)
    assert report.error is None and s_node.federation.upstream() is not None


async def test_expired_revoked_and_another_schools_codes_get_their_own_messages(pair):
    d_node, s_node, url = pair
    expired = _code(d_node, url)
    d_node.call(lambda: d_node.fed.writer.execute("UPDATE invitations SET expires_at = 1000 WHERE code_slot = ?",
                                                  [jc.parse_code(expired).slot]))
    assert "Ce code d'invitation a expiré" in (await _refused(s_node, expired, url)).localized("fr")
    revoked = _code(d_node, url)
    d_node.call(d_node.fed.revoke_invitation, d_node.fed.invitation_by_slot(jc.parse_code(revoked).slot)["id"])
    assert "a annulé cette invitation" in (await _refused(s_node, revoked, url)).localized("fr")
    other = _code(d_node, url, OTHER_UAI)
    text = (await _refused(s_node, other, url)).localized("fr")
    assert f"Cette invitation est pour l'école {OTHER_UAI}, pas pour celle-ci ({SCHOOL_UAI})" in text
    unknown = jc.JoinCode("ZZZ" + "0" * 13).text
    if d_node.fed.invitation_by_slot("ZZZ") is None:
        assert "ne connaît aucune invitation avec ce code" in (await _refused(s_node, unknown, url)).localized("fr")


async def test_a_made_up_confirmation_gets_no_invitation(pair):
    """An attacker ignoring the district's confirmation and sending one of its own: the district checks it."""
    import aiohttp

    d_node, _s_node, url = pair
    code = jc.parse_code(_code(d_node, url))
    attacker = jc.CodeClient(jc.parse_code(_other(code.text)), random=os.urandom(64))
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url + jc.PATH) as ws:
            await ws.send_bytes(attacker.hello())
            jc.decode((await ws.receive()).data, jc.CodeReply)
            await ws.send_bytes(jc.CodeConfirm(os.urandom(32)).encode())
            answer = (await ws.receive()).data
    with pytest.raises(RemoteProtocolError) as exc:
        jc.decode(answer, jc.CodeInvitation)
    assert exc.value.code == "joincode_wrong"
    assert _failures(d_node, code.text) == 1


async def test_a_guesser_silent_after_the_districts_reply_is_counted_all_the_same(pair, monkeypatch):
    """Found by review: an exchange cut by the deadline after the district's reply was not counted against the
    computer's bound on failed tries; a guesser could stay silent instead of sending its confirmation."""
    from preau.node.federation import joincode as node_jc

    d_node, _s_node, url = pair
    monkeypatch.setattr(node_jc, "DEADLINE", 0.5)
    code = jc.parse_code(_code(d_node, url))
    guesser = jc.CodeClient(jc.parse_code(_other(code.text)), random=os.urandom(64))
    key = "203.0.113.7"  # behind the district's proxy, as in the other tests here
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url + jc.PATH, headers={"X-Forwarded-For": key}) as ws:
            await ws.send_bytes(guesser.hello())
            jc.decode((await ws.receive()).data, jc.CodeReply)
            msg = await ws.receive(timeout=5)  # and says nothing more: the district ends it at the deadline
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    from preau.node.federation.gate import _code_key
    assert len(d_node.gate._code_window(_code_key(key))) == 1  # one failed try for that computer


async def test_silent_sockets_do_not_keep_a_school_out(pair):
    """Someone on the LAN opens many /v1/code sockets and says nothing: the school's exchange still gets in."""
    import aiohttp

    d_node, s_node, url = pair
    code = _code(d_node, url)
    async with aiohttp.ClientSession() as http:
        squatters = [await http.ws_connect(url + jc.PATH) for _ in range(d_node.limits.max_pending_handshakes + 4)]
        try:
            inv = await fetch_invitation(url, jc.parse_code(code))
        finally:
            for ws in squatters:
                await ws.close()
    assert inv.uai == SCHOOL_UAI
    assert d_node.gate.evicted >= 4


async def test_long_invitations_are_refused_in_french_too(pair):
    """The old paper invitations: damaged, for another school, expired here: each said in French, nothing sent."""
    d_node, s_node, url = pair
    text = d_node.call(d_node.create_invitation, SCHOOL_UAI, [url]).to_string()
    damaged = text[:40] + ("A" if text[40] != "A" else "B") + text[41:]
    assert "Le texte de l'invitation est abîmé" in (await _refused(s_node, damaged, url)).localized("fr")
    other = d_node.call(d_node.create_invitation, OTHER_UAI, [url]).to_string()
    assert f"est pour l'école {OTHER_UAI}, pas pour celle-ci" in (await _refused(s_node, other, url)).localized("fr")
    s_node._clock = lambda: 4_000_000_000
    assert "Cette invitation a expiré le " in (await _refused(s_node, text, url)).localized("fr")
    assert sum(inv["code_failures"] for inv in d_node.fed.invitations()) == 0
    assert not [p for p in d_node.federation.children()]


@pytest.mark.parametrize("answer", ["garbage", "hang_up"])
async def test_a_district_that_answers_nonsense_is_said_in_french_by_its_code(pair, answer):
    """Anything but a refusal with words of its own came to the page as the protocol's English (« … n'a pas
    abouti : a join-code message is malformed »): it is said from the catalog, with the check's code."""
    d_node, s_node, url = pair
    code = _code(d_node, url)

    async def odd_district(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the school's hello
        if answer == "garbage":
            await ws.send_bytes(b"\xff\xff\xff")
        await ws.close()
        return ws

    err = await _refused_by(s_node, code, odd_district)
    fr, en = err.localized("fr"), err.localized("en")
    if answer == "garbage":
        assert "n'a pas abouti : sa réponse n'est pas celle qu'attend Préau (contrôle : malformed_message)" in fr, fr
        assert "its answer is not what Préau expects (check: malformed_message)" in en, en
    else:
        assert "a coupé l'échange du code avant la fin" in fr and "hung up before the code exchange was over" in en
    for said in (fr, en):
        assert "malformed" not in said.replace("malformed_message", "") and "hung up or sent text" not in said
