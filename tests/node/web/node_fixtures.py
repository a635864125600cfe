"""Real school and district data folders for the web tests: the encrypted store, node keys, federation store.

Everything is built through the public APIs the `preau init` command uses,
with libsodium's cheapest Argon2id cost so a login takes milliseconds.
"""
from __future__ import annotations

import pathlib
import socket
from dataclasses import dataclass, field

from preau.node.federation.store import FedStore
from preau.node.runtime import FEDERATION_DB, create_identity
from preau.node.settings import load_settings
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST
from preau.node.web.district import parse_campaign_text
from web_helpers import login as _login

PASSWORD = "correct horse battery"
SCHOOL_UAI = "0751234J"
DISTRICT_UAI = "0750001U"

CAMPAIGN_TOML = """\
id = "2026-test-cp"
name = "Début de CP (test)"
level = "CP"
school_year = "2026-2027"
opens = 2026-09-01
closes = 2030-06-30
illustrative = true

[policy]
min_cohort = 10
min_batch = 10
small_cell_max = 10

[[exercises]]
id = "fr-mots"
name = "Comprendre des mots lus par l'enseignant"
subject = "français"
score_kind = "items"
items = 5
thresholds = [2, 4]

[[exercises]]
id = "fr-lire-texte"
name = "Lire à voix haute un texte"
subject = "français"
score_kind = "wpm"
max_score = 250
thresholds = [20, 40]
"""

def campaign():
    return parse_campaign_text(CAMPAIGN_TOML.encode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Built:
    settings: object
    ids: dict[str, str] = field(default_factory=dict)


def _node_files(data: pathlib.Path) -> None:
    create_identity(data)
    FedStore(data / FEDERATION_DB).close()


def settings_for(data: pathlib.Path, role: str, port: int | None = None):
    flags = {"data_dir": str(data), "role": role, "argon2_profile": "minimal"}
    if port:
        flags["port"] = port
    return load_settings(flags, env={})


def build_school(tmp: pathlib.Path, *, port: int | None = None, with_campaign: bool = True,
                 pupils: bool = True) -> Built:
    """A school: head teacher `direction`, teachers `mme.a` (class CP A) and `m.b` (class CP B)."""
    data = tmp / "school"
    store, _ = Store.create(data, uai=SCHOOL_UAI, school_name="École des Tilleuls", admin_username="direction",
                            admin_password=PASSWORD, cost=TEST_COST)
    ids: dict[str, str] = {}
    try:
        s = store.login("direction", PASSWORD)
        for user in ("mme.a", "m.b"):
            store.create_account(s, user, PASSWORD, "teacher")
        for key, name, user in (("class_a", "CP A", "mme.a"), ("class_b", "CP B", "m.b")):
            c = store.create_class(s, name, "CP", "2026-2027")
            store.assign_teacher(s, user, c.id)
            ids[key] = c.id
        if pupils:
            a = store.add_pupils(s, ids["class_a"], [("Martin", "Lucie"), ("Bernard", "Noah")])
            b = store.add_pupils(s, ids["class_b"], [("Leroy", "Emma"), ("Moreau", "Adam")])
            ids["pupil_a"], ids["pupil_b"] = a[0].id, b[0].id
        if with_campaign:
            c = campaign()
            store.put_campaign(s, c)
            ids["campaign"], ids["exercise"] = c.id, c.exercises[0].id
        s.logout()
    finally:
        store.close()
    _node_files(data)
    return Built(settings_for(data, "school", port), ids)


def build_district(tmp: pathlib.Path, *, port: int | None = None) -> Built:
    data = tmp / "district"
    store, _ = Store.create(data, uai=DISTRICT_UAI, school_name="Circonscription Paris 5", admin_username="ien",
                            admin_password=PASSWORD, cost=TEST_COST)
    store.close()
    _node_files(data)
    return Built(settings_for(data, "district", port))


async def login(client, username: str, password: str = PASSWORD) -> None:
    """`web_helpers.login` with these data folders' password, and it must succeed."""
    resp = await _login(client, username, password)
    assert resp.status == 303, (resp.status, await resp.text())
