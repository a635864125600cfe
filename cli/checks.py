"""Checks of what a person types on the command line, before anything is written."""
from __future__ import annotations

from preau.node.errors import checked_uai


def check_uai(text: str) -> str:
    """Return the UAI normalised (upper case, no spaces) or raise a UserError saying what is wrong."""
    return checked_uai(text)
