"""School and district codes (UAI, formerly RNE): 7 digits and a check letter.

The node and the CLI import `parse_uai` from here so a typo is caught once,
with a message saying what is wrong, before it reaches an invitation.
"""
from __future__ import annotations

import re

from .errors import LocalProtocolError

CHECK_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # 23 letters: no I, O or Q
_SHAPE = re.compile(r"^[0-9]{7}[A-Z]$")


def check_letter(digits: str) -> str:
    """The check letter of seven digits."""
    if not (len(digits) == 7 and digits.isascii() and digits.isdigit()):
        raise LocalProtocolError(f"{digits!r} is not seven digits", code="invalid_uai")
    return CHECK_LETTERS[int(digits) % 23]


def departement_allowed(prefix: str) -> bool:
    """001-095 (no 020: Corsica uses 620 and 720), 620, 720, and 970-989 overseas."""
    n = int(prefix)
    if prefix[0] == "0":
        return 1 <= n <= 95 and n != 20
    return n in (620, 720) or 970 <= n <= 989


class UaiError(LocalProtocolError):
    """Not a UAI; `reason` says which rule failed ("shape", "departement", "check_letter"), for callers
    that word it for a person in their own language."""

    code = "invalid_uai"

    def __init__(self, message: str, reason: str, **params: str):
        super().__init__(message)
        self.reason = reason
        self.params = params


def parse_uai(text: str) -> str:
    """Return the canonical UAI (upper case, spaces removed) or raise with what to fix."""
    if not isinstance(text, str):
        raise UaiError("a UAI must be text such as 0751234J", "shape", text=repr(text))
    code = text.strip().replace(" ", "").upper()
    if not _SHAPE.match(code):
        raise UaiError(f"{text!r} is not a UAI: expected 7 digits then a letter, for example 0751234J", "shape", text=text)
    if not departement_allowed(code[:3]):
        raise UaiError(
            f"{code}: {code[:3]} is not a département prefix (001-095, 620, 720, 970-989); check the first three digits",
            "departement", uai=code, prefix=code[:3])
    expected = check_letter(code[:7])
    if code[7] != expected:
        raise UaiError(
            f"{code}: the check letter should be {expected}, not {code[7]}; one character is probably mistyped",
            "check_letter", uai=code, letter=code[7], expected=expected)
    return code
