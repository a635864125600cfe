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


def test_a_busy_database_and_an_unnamed_damaged_file_are_french():
    import sqlite3

    from preau.node.errors import Busy
    from preau.node.faults import classify

    busy = Busy.from_sqlite(sqlite3.OperationalError("database is locked"))
    assert busy.message == Busy.MESSAGE  # scripts keep the English
    assert busy.localized("fr").startswith("La base du nœud est occupée : un autre processus Préau y écrit")
    damaged = classify(sqlite3.DatabaseError("database disk image is malformed"))
    assert damaged.localized("fr").startswith("Le fichier de la base de données est endommagé")
    assert "a database file" in damaged.message


def test_a_federation_file_from_a_newer_preau_is_said_in_french(tmp_path):
    import sqlite3

    from preau.node.federation.store import FedStore, FedStoreTooNew

    path = tmp_path / "federation.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(FedStoreTooNew) as newer:
        FedStore(path)
    fr = newer.value.localized("fr")
    assert fr.startswith(f"{path} est au schéma 99, mais ce Préau ne connaît que ") and fr.endswith(
        "; mettez Préau à jour avant de l'ouvrir."), fr
    assert "upgrade Préau" in newer.value.message  # logs and scripts keep the English
