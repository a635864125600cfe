"""The short join code: its check characters, how it is read, and the SPAKE2 exchange that turns it into an invitation."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from preau.protocol import crypto, joincode
from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.identity import Identity
from preau.protocol.invitation import Invitation
from preau.protocol.joincode import (ALPHABET, CODE_LEN, CodeClient, CodeServer, JoinCode, JoinCodeError,
                                     parse_code, parse_hello)

DISTRICT = Identity(b"\x10" * 32)
RNG = random.Random(20261130)


def _codes(n: int) -> list[JoinCode]:
    return [JoinCode.from_secret(RNG.randbytes(32)) for _ in range(n)]


def _group_of(position: int) -> int:
    return position // joincode.GROUP_LEN + 1


def test_shape_and_round_trip():
    code = JoinCode.from_secret(b"\x00" * 32)
    text = code.text
    assert len(text) == CODE_LEN + 3 and text.count("-") == 3
    assert all(len(g) == 5 for g in text.split("-"))
    assert parse_code(text) == code
    assert code.slot == code.data[:3] and len(code.password) == 16


def test_known_answer():
    """Pins the derivation (docs/protocol.md, "Short join codes"): the secret 00 01 ... 1f."""
    code = JoinCode.from_secret(bytes(range(32)))
    digest = crypto.labelled_hash(b"preau/v1/join-code", b"", key=bytes(range(32)), digest_size=10)
    bits = int.from_bytes(digest, "big")
    assert code.data == "".join(ALPHABET[(bits >> (75 - 5 * i)) & 31] for i in range(16))
    assert code.text == KNOWN_TEXT


KNOWN_TEXT = "BGQ2H-ZR4BJ-KPV14-RXTRX"  # docs/protocol.md gives the same example


def test_docs_example():
    import pathlib

    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert KNOWN_TEXT in doc


def test_reading_is_tolerant():
    code = JoinCode.from_secret(RNG.randbytes(32))
    text = code.text
    assert parse_code(text.lower()) == code
    assert parse_code(text.replace("-", "")) == code
    assert parse_code(" " + text.replace("-", " ") + "\n") == code
    confusable = text.replace("0", "O").replace("1", "I")
    assert parse_code(confusable) == code
    assert parse_code(text.replace("1", "l")) == code


def test_every_single_typo_is_caught_in_its_group():
    """Every position, every other character of the alphabet (20 x 31 typos a code): refused, naming the right group."""
    for code in _codes(60):
        text = code.text.replace("-", "")
        for pos in range(CODE_LEN):
            for ch in ALPHABET:
                if ch == text[pos]:
                    continue
                typo = text[:pos] + ch + text[pos + 1:]
                with pytest.raises(JoinCodeError) as exc:
                    parse_code(typo)
                assert exc.value.code == "joincode_check"
                assert exc.value.group == _group_of(pos)


def test_every_swap_of_neighbours_is_caught():
    """Within a group (check character included) and across two groups: refused, naming the first group at fault."""
    for code in _codes(400):
        text = code.text.replace("-", "")
        for pos in range(CODE_LEN - 1):
            if text[pos] == text[pos + 1]:
                continue
            swapped = text[:pos] + text[pos + 1] + text[pos] + text[pos + 2:]
            with pytest.raises(JoinCodeError) as exc:
                parse_code(swapped)
            assert exc.value.code == "joincode_check"
            assert exc.value.group == _group_of(pos)


def test_groups_typed_in_the_wrong_order_are_caught():
    for code in _codes(200):
        g = code.text.split("-")
        with pytest.raises(JoinCodeError):
            parse_code("-".join([g[1], g[0], g[2], g[3]]))


def test_length_and_characters_name_the_group():
    code = JoinCode.from_secret(RNG.randbytes(32))
    g = code.text.split("-")
    with pytest.raises(JoinCodeError) as exc:
        parse_code(" ".join([g[0], g[1][:4], g[2], g[3]]))
    assert (exc.value.code, exc.value.group, exc.value.count) == ("joincode_group_length", 2, 4)
    with pytest.raises(JoinCodeError) as exc:
        parse_code(code.text.replace("-", "")[:19])
    assert (exc.value.code, exc.value.count) == ("joincode_length", 19)
    with pytest.raises(JoinCodeError) as exc:
        parse_code("-".join([g[0], g[1], "U" + g[2][1:], g[3]]))
    assert (exc.value.code, exc.value.group, exc.value.typed) == ("joincode_character", 3, "U")
    with pytest.raises(JoinCodeError) as exc:
        parse_code("   ")
    assert exc.value.code == "joincode_empty"


def test_the_check_is_needed():
    """With the check characters ignored (the protection off), a typo would go through: this test shows it bites."""
    code = JoinCode.from_secret(RNG.randbytes(32))
    text = code.text.replace("-", "")
    typo = text[:5] + ("0" if text[5] != "0" else "1") + text[6:]
    data = "".join(typo[i:i + 4] for i in range(0, 20, 5))
    assert JoinCode(data) != code  # without a check, the typo is another, valid-looking code
    with pytest.raises(JoinCodeError):
        parse_code(typo)


def test_long_invitations_are_told_apart():
    inv = Invitation.create(DISTRICT, uai="0751234J", addresses=["http://192.0.2.7:8080"], now=1000, secret=b"\x42" * 32)
    assert not joincode.looks_like_code(inv.to_string())
    assert not joincode.looks_like_code("  preau1-" + inv.to_string()[7:])
    assert joincode.looks_like_code("KFBAR-C1B46-RXYM1-R9GAN")


# -- the exchange -------------------------------------------------------------------------------

def _invitation(secret: bytes | None = None) -> Invitation:
    return Invitation.create(DISTRICT, uai="0751234J", addresses=["http://192.0.2.7:8080"], now=1000,
                             secret=secret or RNG.randbytes(32))


def _run(school_code: JoinCode, district_code: JoinCode, inv: Invitation):
    client = CodeClient(school_code, random=RNG.randbytes(32))
    server = CodeServer(parse_hello(client.hello()), district_code, random=RNG.randbytes(32))
    confirm = client.receive_reply(server.reply())
    assert server.receive_confirm(confirm)
    return client.receive_invitation(server.seal(inv))


def test_right_code_delivers_the_invitation():
    inv = _invitation()
    code = JoinCode.from_secret(inv.secret)
    assert _run(parse_code(code.text), code, inv) == inv


def test_wrong_code_gets_nothing_and_the_district_sees_it():
    """A school with another code (same slot: the district finds the invitation) is refused by its own check
    of the district's confirmation; a school that lies about its confirmation is refused by the district."""
    inv = _invitation()
    code = JoinCode.from_secret(inv.secret)
    other = JoinCode(code.slot + ("0" if code.data[3] != "0" else "1") + code.data[4:])
    client = CodeClient(other, random=RNG.randbytes(32))
    server = CodeServer(parse_hello(client.hello()), code, random=RNG.randbytes(32))
    with pytest.raises(RemoteProtocolError) as exc:
        client.receive_reply(server.reply())
    assert exc.value.code == "joincode_wrong"
    assert not server.receive_confirm(joincode.CodeConfirm(b"\x00" * 32).encode())
    with pytest.raises(LocalProtocolError):
        server.seal(inv)


def test_man_in_the_middle_without_the_code_gets_nothing():
    """Mallory sits between school and district. Posing as the district to the school with a guessed code, she
    fails the school's check; posing as the school to the district, she fails the district's; relaying the
    school's messages untouched, she can only read ciphertext, and substituting her own keys breaks the seal."""
    inv = _invitation()
    code = JoinCode.from_secret(inv.secret)
    guess = JoinCode(code.slot + "".join(RNG.choice(ALPHABET) for _ in range(13)))
    school = CodeClient(code, random=RNG.randbytes(32))
    hello = school.hello()
    # 1. Mallory answers in the district's place.
    fake_district = CodeServer(parse_hello(hello), guess, random=RNG.randbytes(32))
    with pytest.raises(RemoteProtocolError) as exc:
        school.receive_reply(fake_district.reply())
    assert exc.value.code == "joincode_wrong"
    # 2. Mallory talks to the district as the school: the district never confirms her.
    mallory = CodeClient(guess, random=RNG.randbytes(32))
    district = CodeServer(parse_hello(mallory.hello()), code, random=RNG.randbytes(32))
    with pytest.raises(RemoteProtocolError):
        mallory.receive_reply(district.reply())
    assert not district.receive_confirm(joincode.CodeConfirm(RNG.randbytes(32)).encode())
    # 3. Mallory relays the real school's hello, then tampers with the district's reply.
    school = CodeClient(code, random=RNG.randbytes(32))
    district = CodeServer(parse_hello(school.hello()), code, random=RNG.randbytes(32))
    reply = joincode.decode(district.reply(), joincode.CodeReply)
    forged = joincode.CodeReply(reply.pake, bytes(32)).encode()
    with pytest.raises(RemoteProtocolError):
        school.receive_reply(forged)
    # 4. A sealed invitation from another exchange (Mallory's own, with her guess) does not open.
    school = CodeClient(code, random=RNG.randbytes(32))
    district = CodeServer(parse_hello(school.hello()), code, random=RNG.randbytes(32))
    assert district.receive_confirm(school.receive_reply(district.reply()))
    other = CodeClient(code, random=RNG.randbytes(32))
    other_district = CodeServer(parse_hello(other.hello()), code, random=RNG.randbytes(32))
    assert other_district.receive_confirm(other.receive_reply(other_district.reply()))
    with pytest.raises(RemoteProtocolError):
        school.receive_invitation(other_district.seal(inv))
    with pytest.raises(RemoteProtocolError):
        school.receive_invitation(joincode.CodeInvitation(b"\x00" * 64).encode())
    assert school.receive_invitation(district.seal(inv)) == inv


def test_a_reflected_hello_is_refused():
    code = JoinCode.from_secret(RNG.randbytes(32))
    school = CodeClient(code, random=RNG.randbytes(32))
    hello = parse_hello(school.hello())
    with pytest.raises(RemoteProtocolError):
        school.receive_reply(joincode.CodeReply(hello.pake, bytes(32)).encode())


def test_refusals_carry_their_code():
    code = JoinCode.from_secret(RNG.randbytes(32))
    school = CodeClient(code, random=RNG.randbytes(32))
    for refusal in ("joincode_unknown", "joincode_locked", "invitation_used", "invitation_expired"):
        with pytest.raises(RemoteProtocolError) as exc:
            school.receive_reply(joincode.error(refusal, "why"))
        assert exc.value.code == refusal
    with pytest.raises(RemoteProtocolError) as exc:
        school.receive_reply(joincode.error("made_up"))
    assert exc.value.code == "peer_error"


def test_hello_version_and_slot_are_checked():
    with pytest.raises(RemoteProtocolError) as exc:
        parse_hello(joincode.CodeHello(2, "ABC", b"x").encode())
    assert exc.value.code == "unsupported_version"
    with pytest.raises(RemoteProtocolError):
        parse_hello(joincode.CodeHello(1, "ABU", b"x").encode())


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_is_a_remote_protocol_error(data):
    code = JoinCode.from_secret(b"\x07" * 32)
    try:
        CodeServer(parse_hello(data), code, random=b"\x01" * 32)
    except RemoteProtocolError:
        pass
    school = CodeClient(code, random=b"\x02" * 32)
    with pytest.raises(RemoteProtocolError):
        school.receive_reply(data)


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=33, max_size=33))
def test_garbage_pake_messages_are_refused(pake):
    code = JoinCode.from_secret(b"\x07" * 32)
    school = CodeClient(code, random=b"\x02" * 32)
    with pytest.raises(RemoteProtocolError):
        school.receive_reply(joincode.CodeReply(pake, bytes(32)).encode())
    try:
        CodeServer(joincode.CodeHello(1, code.slot, pake), code, random=b"\x01" * 32)
    except RemoteProtocolError:
        pass


def test_exchange_known_answer():
    """The exchange's bytes for fixed randomness: a change of the SPAKE2 library (its group, M and N, its
    transcript hash) or of our derivations would make schools and districts of two versions disagree."""
    code = JoinCode.from_secret(bytes(range(32)))
    client = CodeClient(code, random=b"\x01" * 64)
    hello = client.hello()
    assert hello.hex() == ("010101010203424751032141347a8d34f563bbdb4b1c2903b5df1fc273c81c32c1711e7b8b783df2cb40dc93")
    server = CodeServer(parse_hello(hello), code, random=b"\x02" * 64)
    assert server.reply().hex() == (
        "02012142cf8d57ce3d089b90efe0bf28449981d043a28fedc0a420084c769c794497cb950220d6b0afd9f71bbb2f1d1daf62f8e1"
        "88db1d9a0961a1bbe5649b0da82a32c0674c")
    assert client.receive_reply(server.reply()).hex() == (
        "0301209ef8226102e86cc0e9ad845fa2a135427f927564922b7cff733872f9ac37b587")
