"""Shamir secret sharing of 32-byte secrets over the prime field of p = 2^256 + 297.

Why our own: the Python libraries that exist either draw their coefficients from the
system's randomness inside the call (`shamirs`: secrets.token_bytes), which this pure
layer may not do, or are unmaintained. The scheme is twenty lines; known-answer and
property tests pin it (tests/protocol/test_secagg_primitives.py).

p is the smallest prime above 2^256, so any 32-byte secret is a field element and a
share is 33 bytes. Share x-coordinates are the members' indices 1..n (never 0, which
is the secret).
"""
from __future__ import annotations

from .errors import LocalProtocolError

P = 2**256 + 297
SHARE_BYTES = 33
COEFF_BYTES = 48  # 384 bits reduced mod a 257-bit prime: bias below 2^-127


def coefficients_needed(threshold: int) -> int:
    """Random bytes `split` takes for one secret with this threshold."""
    return (threshold - 1) * COEFF_BYTES


def split(secret: bytes, xs: list[int] | tuple[int, ...], threshold: int, randomness: bytes) -> dict[int, int]:
    """Shares {x: f(x)} of `secret` for each x, any `threshold` of which give it back.

    `randomness` is coefficients_needed(threshold) bytes from the caller's source.
    """
    if len(secret) != 32:
        raise LocalProtocolError("Shamir: secrets are 32 bytes", code="invalid_secret")
    if not 1 <= threshold <= len(xs) or len(set(xs)) != len(xs) or any(not 0 < x < P for x in xs):
        raise LocalProtocolError("Shamir: need 1 <= threshold <= distinct nonzero points", code="invalid_threshold")
    if len(randomness) != coefficients_needed(threshold):
        raise LocalProtocolError("Shamir: wrong amount of randomness for the coefficients", code="invalid_randomness")
    coeffs = [int.from_bytes(secret, "big")] + [
        int.from_bytes(randomness[i:i + COEFF_BYTES], "big") % P for i in range(0, len(randomness), COEFF_BYTES)
    ]
    shares = {}
    for x in xs:
        acc = 0
        for c in reversed(coeffs):
            acc = (acc * x + c) % P
        shares[x] = acc
    return shares


def combine(shares: dict[int, int]) -> bytes:
    """The secret from shares {x: y} by Lagrange interpolation at 0.

    With fewer than the threshold the result is a random-looking value, not an error:
    callers check it (a public key, a digest) where they can.
    """
    if not shares or any(not 0 < x < P or not 0 <= y < P for x, y in shares.items()):
        raise LocalProtocolError("Shamir: shares are field elements at nonzero points", code="invalid_share")
    secret = 0
    for xi, yi in shares.items():
        num = den = 1
        for xj in shares:
            if xj != xi:
                num = num * -xj % P
                den = den * (xi - xj) % P
        secret = (secret + yi * num * pow(den, -1, P)) % P
    if secret >= 1 << 256:
        raise LocalProtocolError("Shamir: the shares do not interpolate to a 32-byte secret", code="invalid_share")
    return secret.to_bytes(32, "big")


def encode_share(y: int) -> bytes:
    return y.to_bytes(SHARE_BYTES, "big")


def decode_share(raw: bytes) -> int | None:
    """A field element from 33 bytes, or None if it is not one."""
    if len(raw) != SHARE_BYTES:
        return None
    y = int.from_bytes(raw, "big")
    return y if y < P else None
