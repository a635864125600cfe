"""Refusals of the node's runtime said whole in French: no English left in the French line."""
from __future__ import annotations

import pytest

from preau.node.errors import UserError
from preau.node.runtime import create_identity, load_identity


def test_the_node_keys_refusals_are_french(tmp_path):
    with pytest.raises(UserError) as missing:
        load_identity(tmp_path)
    assert missing.value.localized("fr") == f"Pas de clés de nœud dans {tmp_path} : lancez d'abord `preau init` dans ce dossier."
    assert "no node keys" in missing.value.message  # logs and scripts keep the English
    create_identity(tmp_path)
    with pytest.raises(UserError) as twice:
        create_identity(tmp_path)
    assert twice.value.localized("fr").endswith("existe déjà : ce nœud a déjà ses clés.")
