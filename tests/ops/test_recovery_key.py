"""A new recovery key: the old one stops opening the node, the new one opens it."""
from __future__ import annotations

import pytest

from cli_helpers import RECOVERY, SCHOOL_UAI, init, preau
from preau.node.records.errors import AuthError
from preau.node.records.store import Store
from preau.node.records.vault import ARGON2


def test_a_new_recovery_key_replaces_the_old_one(tmp_path):
    old = init(tmp_path, "school", SCHOOL_UAI, "--admin", "directrice")
    r = preau("keys", "recovery", "--data-dir", str(tmp_path))
    assert r.code == 0, r.err
    new = RECOVERY.search(r.out).group(1)
    assert new != old and "make a new backup now" in r.out
    store = Store.open(tmp_path, cost=ARGON2["minimal"])
    try:
        assert store.unlock_with_recovery(new).role == "recovery"
        with pytest.raises(AuthError):
            store.unlock_with_recovery(old)
    finally:
        store.close()
