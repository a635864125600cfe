"""Checks of what a person types on the command line, before anything is written."""
from __future__ import annotations

from preau.node.errors import UserError
from preau.protocol.errors import LocalProtocolError
from preau.protocol.uai import check_letter, departement_allowed, parse_uai


def check_uai(text: str) -> str:
    """Return the UAI normalised (upper case, no spaces) or raise a UserError saying what is wrong.

    The messages here are worded for someone typing at a prompt; the rule
    itself is `preau.protocol.uai.parse_uai`, which has the last word (it
    also refuses 020, which Corsica replaced with 620 and 720).
    """
    uai = "".join(text.split()).upper()
    example = "8 characters: 7 digits then a letter, like 0751234J"
    if len(uai) != 8 or not uai[:7].isdigit() or not uai[7].isalpha():
        raise UserError(f"{text!r} is not a UAI: a UAI has {example}")
    if not departement_allowed(uai[:3]):
        raise UserError(
            f"{uai} is not a UAI: its first three digits ({uai[:3]}) are not a département "
            "(001-095 except 020, 620 or 720 for Corsica, 97x/98x overseas)"
        )
    if check_letter(uai[:7]) != uai[7]:
        raise UserError(
            f"{uai} is not a valid UAI: the check letter {uai[7]} does not match the digits; "
            "compare each character with the school's official UAI"
        )
    try:
        return parse_uai(uai)
    except LocalProtocolError as e:
        raise UserError(e.message) from None
