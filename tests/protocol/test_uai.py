from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from preau.protocol.errors import LocalProtocolError
from preau.protocol.uai import CHECK_LETTERS, check_letter, parse_uai


@pytest.mark.parametrize("code", ["0010856A", "0751234J", "9730456H"])
def test_examples_from_the_domain_notes(code):
    assert parse_uai(code) == code


def test_canonicalises_case_and_spaces():
    assert parse_uai(" 0751234j ") == "0751234J"
    assert parse_uai("075 1234 J") == "0751234J"


@pytest.mark.parametrize("bad, fragment", [
    ("0751234K", "check letter should be J, not K"),
    ("075123J", "expected 7 digits then a letter"),
    ("07512345J", "expected 7 digits then a letter"),
    ("0201234A", "020 is not a département prefix"),
    ("0961234A", "096 is not a département prefix"),
    ("5001234A", "500 is not a département prefix"),
    ("0000001B", "000 is not a département prefix"),
    ("", "expected 7 digits"),
])
def test_refusals_say_what_to_fix(bad, fragment):
    with pytest.raises(LocalProtocolError) as exc:
        parse_uai(bad)
    assert exc.value.code == "invalid_uai"
    assert fragment in str(exc.value)


def test_corsica_and_overseas_prefixes():
    for prefix in ("620", "720", "971", "976", "988"):
        digits = prefix + "0001"
        assert parse_uai(digits + check_letter(digits)) == digits + check_letter(digits)


def test_alphabet_has_no_ambiguous_letters():
    assert len(CHECK_LETTERS) == 23 and not set("IOQ") & set(CHECK_LETTERS)


@given(st.integers(min_value=10000, max_value=959999))
def test_any_single_letter_change_is_caught(n):
    digits = f"{n:07d}"
    if digits[:3] == "020":
        return
    good = digits + check_letter(digits)
    assert parse_uai(good) == good
    for letter in CHECK_LETTERS:
        if letter != good[7]:
            with pytest.raises(LocalProtocolError):
                parse_uai(digits + letter)
