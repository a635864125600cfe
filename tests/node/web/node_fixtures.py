"""Real school and district data folders for the web tests: the encrypted store, node keys, federation store.

Everything is built through the public APIs the `preau init` command uses,
with libsodium's cheapest Argon2id cost so a login takes milliseconds.
"""
from __future__ import annotations

import contextlib
import pathlib
import socket
from dataclasses import dataclass, field

from aiohttp.test_utils import TestServer

from preau.node.app import create_app
from preau.node.federation.store import FedStore
from preau.node.runtime import FEDERATION_DB, create_identity
from preau.node.settings import load_settings
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST
from preau.node.web.district import parse_campaign_text
from web_helpers import PASSWORD, login as _login
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


def settings_for(data: pathlib.Path, role: str, port: int | None = None, **settings):
    flags = {"data_dir": str(data), "role": role, "argon2_profile": "minimal", **settings}
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


# The security and grid tests' school: three exercises (items with thresholds, items without, timed), a pupil
# whose name holds markup, accounts named as in those tests. Keys of `ids`: the classes "cp-a" and "cp-b", the
# pupils "p01".."p04" (CP A) and "p11", "p12" (CP B), "campaign".
CLASSROOM_CAMPAIGN = {
    "id": "2026-debut-cp", "name": "Début de CP", "level": "CP", "school_year": "2026-2027",
    "opens": "2026-09-01", "closes": "2030-06-30", "illustrative": True,
    "exercises": [
        {"id": "fr-comprendre-mots", "name": "Comprendre des mots lus par l'enseignant", "subject": "français",
         "score_kind": "items", "items": 10, "max_score": 10, "thresholds": [4, 7]},
        {"id": "fr-syllabes", "name": "Manipuler des syllabes", "subject": "français",
         "score_kind": "items", "items": 6, "max_score": 6},
        {"id": "fr-lire-texte", "name": "Lire à voix haute un texte", "subject": "français",
         "score_kind": "wpm", "max_score": 250, "thresholds": [20, 40]},
    ],
}
CLASSROOM = {
    "cp-a": ("CP A", "mme.martin", [("p01", "Martin", "Lucie"), ("p02", "Bernard", "Noah"),
                                    ("p03", "<b>Petit</b>", "Inès"), ("p04", "Durand", "Léo")]),
    "cp-b": ("CP B", "m.leroy", [("p11", "Leroy", "Emma"), ("p12", "Moreau", "Adam")]),
}


def build_classroom(tmp: pathlib.Path, **settings) -> Built:
    """A real school data folder with the classroom above: head teacher `direction`, teachers `mme.martin`
    (CP A) and `m.leroy` (CP B). `settings` are the node's settings by name (web_session_timeout, ...)."""
    from preau.crdt.campaign import parse_campaign

    data = tmp / "school"
    store, _ = Store.create(data, uai=SCHOOL_UAI, school_name="École des Tilleuls", admin_username="direction",
                            admin_password=PASSWORD, cost=TEST_COST)
    ids: dict[str, str] = {}
    try:
        s = store.login("direction", PASSWORD)
        for key, (name, teacher, pupils) in CLASSROOM.items():
            store.create_account(s, teacher, PASSWORD, "teacher")
            c = store.create_class(s, name, "CP", "2026-2027")
            store.assign_teacher(s, teacher, c.id)
            ids[key] = c.id
            added = store.add_pupils(s, c.id, [(last, first) for _, last, first in pupils])
            ids.update({ref: p.id for (ref, _, _), p in zip(pupils, added)})
        c = parse_campaign(CLASSROOM_CAMPAIGN)
        store.put_campaign(s, c)
        ids["campaign"] = c.id
        s.logout()
    finally:
        store.close()
    _node_files(data)
    return Built(settings_for(data, "school", **settings), ids)


def build_district(tmp: pathlib.Path, *, port: int | None = None, **settings) -> Built:
    data = tmp / "district"
    store, _ = Store.create(data, uai=DISTRICT_UAI, school_name="Circonscription Paris 5", admin_username="ien",
                            admin_password=PASSWORD, cost=TEST_COST)
    store.close()
    _node_files(data)
    return Built(settings_for(data, "district", port, **settings))


@contextlib.asynccontextmanager
async def district_and_school(tmp: pathlib.Path, **district_settings):
    """A district and a school not yet joined (no campaign, no pupils), each a real `create_app` on its own
    127.0.0.1 port: yields (district server, school server, the district's address)."""
    dport, sport = free_port(), free_port()
    district = build_district(tmp, port=dport, **district_settings)
    school = build_school(tmp, port=sport, with_campaign=False, pupils=False)
    servers = []
    try:
        for built, port in ((district, dport), (school, sport)):
            srv = TestServer(create_app(built.settings), host="127.0.0.1", port=port)
            await srv.start_server()
            servers.append(srv)
        yield servers[0], servers[1], f"http://127.0.0.1:{dport}"
    finally:
        for srv in reversed(servers):
            await srv.close()


async def login(client, username: str, password: str = PASSWORD) -> None:
    """`web_helpers.login` with these data folders' password, and it must succeed."""
    resp = await _login(client, username, password)
    assert resp.status == 303, (resp.status, await resp.text())


def grid_path(ids: dict[str, str], klass: str, exercise: str) -> str:
    """The entry grid of one of CLASSROOM's classes ("cp-a") for one exercise."""
    return f"/classes/{ids[klass]}/campaigns/{ids['campaign']}/exercises/{exercise}"


def profile_path(ids: dict[str, str], klass: str) -> str:
    return f"/classes/{ids[klass]}/campaigns/{ids['campaign']}/profile"
