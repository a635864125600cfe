from __future__ import annotations

import pytest

from preau.node.records import vault


def test_aead_known_answer_xchacha20poly1305():
    """draft-irtf-cfrg-xchacha-03 A.3.1, in our nonce||ciphertext layout."""
    key = bytes(range(0x80, 0xA0))
    nonce = bytes(range(0x40, 0x58))
    aad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    ct = bytes.fromhex(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e"
        "1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e"
        "c0875924c1c7987947deafd8780acf49")
    pt = vault.open_(key, nonce + ct, aad)
    assert pt.startswith(b"Ladies and Gentlemen of the class of '99")
    with pytest.raises(vault.DecryptError):
        vault.open_(key, nonce + ct, aad + b"x")


def test_seal_binds_key_and_associated_data():
    key = vault.random_key()
    blob = vault.seal(key, b"secret", b"row-1")
    assert vault.open_(key, blob, b"row-1") == b"secret"
    assert blob != vault.seal(key, b"secret", b"row-1")  # fresh nonce each time
    for k, ad in ((vault.random_key(), b"row-1"), (key, b"row-2")):
        with pytest.raises(vault.DecryptError):
            vault.open_(k, blob, ad)
    with pytest.raises(vault.DecryptError):
        vault.open_(key, blob[:-1] + bytes([blob[-1] ^ 1]), b"row-1")
    with pytest.raises(vault.DecryptError):
        vault.open_(key, b"short", b"row-1")


def test_derive_separates_purposes():
    key = bytes(32)
    assert vault.derive(key, "tally") != vault.derive(key, "node-blob")
    assert vault.derive(key, "tally") == vault.derive(key, "tally")
    assert len(vault.derive(key, "tally")) == 32


def test_sealed_box_checks_purpose():
    sk, pk = vault.new_keypair()
    blob = vault.seal_to(pk, b"k" * 32, "class-key/a")
    assert vault.open_sealed(sk, blob, "class-key/a") == b"k" * 32
    with pytest.raises(vault.DecryptError):
        vault.open_sealed(sk, blob, "class-key/b")
    with pytest.raises(vault.DecryptError):
        vault.open_sealed(vault.new_keypair()[0], blob, "class-key/a")


def test_padding_hides_length():
    assert len(vault.pad(b"a", 64)) == len(vault.pad(b"a" * 60, 64)) == 64
    assert vault.unpad(vault.pad(b"x\x00\x80", 16)) == b"x\x00\x80"
    with pytest.raises(vault.DecryptError):
        vault.unpad(b"abc")


def test_recovery_key_round_trip_and_typos():
    key = bytes(range(32))
    text = vault.format_recovery_key(key)
    assert vault.parse_recovery_key(text) == key
    assert vault.parse_recovery_key(text.lower().replace("-", " ")) == key
    typo = ("B" if text[0] != "B" else "C") + text[1:]
    with pytest.raises(vault.RecoveryKeyTypo):
        vault.parse_recovery_key(typo)
    with pytest.raises(vault.RecoveryKeyTypo):
        vault.parse_recovery_key(text[:-6])


def test_pseudonym_is_keyed_and_stable():
    k1, k2 = bytes(32), bytes([1]) * 32
    assert vault.pseudonym(k1, "abc") == vault.pseudonym(k1, "abc")
    assert vault.pseudonym(k1, "abc") != vault.pseudonym(k2, "abc")
    assert vault.pseudonym(k1, "abc") != vault.pseudonym(k1, "abd")
    assert "abc" not in vault.pseudonym(k1, "abc")


def test_password_kdf_depends_on_password_salt_and_cost():
    salt = bytes(16)
    a = vault.kek_from_password("one password", salt, vault.TEST_COST)
    assert a == vault.kek_from_password("one password", salt, vault.TEST_COST)
    assert a != vault.kek_from_password("two password", salt, vault.TEST_COST)
    assert a != vault.kek_from_password("one password", bytes([1]) * 16, vault.TEST_COST)
