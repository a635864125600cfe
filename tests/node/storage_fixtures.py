"""Small real schools in temp dirs, with a cheap Argon2id cost so the suite stays fast."""
from __future__ import annotations

import dataclasses

import pytest

from preau.crdt.campaign import parse_campaign
from preau.node.records import vault
from preau.node.records.store import Store

ADMIN_PW = "direction password 1"
T1_PW = "teacher one password"
T2_PW = "teacher two password"


def campaign_dict(thresholds: bool = True) -> dict:
    ex = [
        {"id": "fr-mots", "name": "Comprendre des mots", "subject": "français", "score_kind": "items", "items": 10},
        {"id": "ma-nombres", "name": "Lire des nombres", "subject": "mathématiques", "score_kind": "items", "items": 8},
        {"id": "fr-lire-texte", "name": "Lire un texte", "subject": "français", "score_kind": "wpm", "max_score": 200},
    ]
    if thresholds:
        ex[0]["thresholds"] = [4, 7]
        ex[1]["thresholds"] = [3, 6]
        ex[2]["thresholds"] = [20, 40]
    return {"id": "2026-debut-cp", "name": "Début de CP", "level": "CP", "school_year": "2026-2027",
            "opens": "2026-09-01", "closes": "2026-09-30", "illustrative": True, "exercises": ex}


@pytest.fixture
def campaign():
    return parse_campaign(campaign_dict())


@dataclasses.dataclass
class School:
    store: Store
    recovery: str
    admin: object
    t1: object
    t2: object
    class_a: object
    class_b: object
    pupils_a: list
    pupils_b: list
    campaign: object


def make_school(data_dir, campaign) -> School:
    store, recovery = Store.create(data_dir, uai="0751234J", school_name="École du Préau", admin_username="direction",
                                   admin_password=ADMIN_PW, cost=vault.TEST_COST)
    admin = store.login("direction", ADMIN_PW)
    class_a = store.create_class(admin, "CP-A", "CP", "2026-2027")
    class_b = store.create_class(admin, "CP-B", "CP", "2026-2027")
    store.create_account(admin, "mme.alpha", T1_PW)
    store.create_account(admin, "m.beta", T2_PW)
    store.assign_teacher(admin, "mme.alpha", class_a.id)
    store.assign_teacher(admin, "m.beta", class_b.id)
    t1 = store.login("mme.alpha", T1_PW)
    t2 = store.login("m.beta", T2_PW)
    pupils_a = store.add_pupils(t1, class_a.id, [("Quintavalle", "Zéphyrine"), ("Dupont", "Léa")])
    pupils_b = store.add_pupils(t2, class_b.id, [("Ravachol", "Octave"), ("Martin", "Hugo")])
    store.put_campaign(store.node, campaign)
    return School(store, recovery, admin, t1, t2, class_a, class_b, pupils_a, pupils_b, campaign)


@pytest.fixture
def school(tmp_path, campaign):
    s = make_school(tmp_path / "data", campaign)
    yield s
    s.store.close()
