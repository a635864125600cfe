"""Known answers and properties of the primitives under secure aggregation: ChaCha20 stream, Shamir."""
from __future__ import annotations

import itertools
import random

import pytest

from preau.protocol import crypto, shamir
from preau.protocol.errors import LocalProtocolError
from preau.protocol.secagg import masks

RFC8439_242_CIPHERTEXT = bytes.fromhex(
    "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
    "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
    "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
    "5af90bbf74a35be6b40b8eedf2785e42874d")
SUNSCREEN = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."


def test_chacha20_stream_matches_rfc8439_section_2_4_2():
    stream = crypto.chacha20_stream(bytes(range(32)), bytes.fromhex("000000000000004a00000000"), len(SUNSCREEN))
    assert bytes(a ^ b for a, b in zip(SUNSCREEN, stream)) == RFC8439_242_CIPHERTEXT


def test_chacha20_stream_prefixes_agree_and_keys_differ():
    key = bytes(32)
    assert crypto.chacha20_stream(key, bytes(12), 1000)[:100] == crypto.chacha20_stream(key, bytes(12), 100)
    assert crypto.chacha20_stream(key, bytes(12), 64) != crypto.chacha20_stream(b"\x01" + bytes(31), bytes(12), 64)
    with pytest.raises(ValueError):
        crypto.chacha20_stream(bytes(31), bytes(12), 8)


def test_shamir_known_answer_for_a_line():
    """With one coefficient c (randomness = c in 48 big-endian bytes), f(x) = secret + c*x mod p."""
    secret = bytes(range(32))
    s = int.from_bytes(secret, "big")
    shares = shamir.split(secret, [1, 2, 3], 2, (5).to_bytes(48, "big"))
    assert shares == {1: s + 5, 2: s + 10, 3: s + 15}
    wrap = shamir.split(b"\xff" * 32, [1, 2], 2, (shamir.P - 1).to_bytes(48, "big"))
    assert wrap == {1: 2**256 - 2, 2: 2**256 - 3}  # (2^256 - 1) - x mod p
    assert shamir.combine({2: shares[2], 3: shares[3]}) == secret
    assert shamir.P == 2**256 + 297


def test_shamir_any_threshold_subset_recovers_and_fewer_do_not():
    rng = random.Random(7)
    secret = rng.randbytes(32)
    xs = list(range(1, 8))
    shares = shamir.split(secret, xs, 5, rng.randbytes(shamir.coefficients_needed(5)))
    for subset in itertools.combinations(xs, 5):
        assert shamir.combine({x: shares[x] for x in subset}) == secret
    for subset in itertools.combinations(xs, 4):
        try:
            assert shamir.combine({x: shares[x] for x in subset}) != secret
        except LocalProtocolError:
            pass  # interpolated outside 32 bytes: not the secret either


def test_shamir_refuses_bad_parameters():
    with pytest.raises(LocalProtocolError):
        shamir.split(bytes(32), [1, 2], 3, b"")
    with pytest.raises(LocalProtocolError):
        shamir.split(bytes(32), [1, 1], 2, bytes(48))
    with pytest.raises(LocalProtocolError):
        shamir.split(bytes(32), [0, 1], 2, bytes(48))
    with pytest.raises(LocalProtocolError):
        shamir.split(bytes(32), [1, 2], 2, bytes(47))
    assert shamir.decode_share(shamir.P.to_bytes(33, "big")) is None
    assert shamir.decode_share(bytes(32)) is None


def test_pairwise_masks_agree_and_cancel():
    digest = bytes(32)
    a, b = b"\x11" * 32, b"\x22" * 32
    m_ab = masks.pairwise_mask(a, masks.public_key(b), digest, 16)
    assert m_ab == masks.pairwise_mask(b, masks.public_key(a), digest, 16)
    acc = [7] * 16
    masks.add(acc, m_ab, masks.pair_sign(1, 2))
    masks.add(acc, m_ab, masks.pair_sign(2, 1))
    assert acc == [7] * 16
    assert m_ab != masks.pairwise_mask(a, masks.public_key(b), b"\x01" * 32, 16)  # bound to the pool
