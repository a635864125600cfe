"""What leaves a school, end to end: no pupil name, identifier, pseudonym or individual answer.

A school with planted names enters results, approves a release and syncs with
a district over a real WebSocket. Every plaintext message the school hands to
the protocol, and every file the district writes, is searched for what must
never leave. The same search over the school's own encrypted-store inputs finds
them, so a leak would be caught.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from aiohttp import web

from preau.crdt.campaign import parse_campaign
from preau.node.release import approve_release, preview_release
from preau.node.runtime import Node, create_identity
from preau.node.records.store import ResultInput, Store
from preau.node.federation.transport import SYNC_PATH, Limits, serve_session
from preau.node.records.vault import TEST_COST
from preau.protocol import connection as protocol_connection

from storage_fixtures import ADMIN_PW, campaign_dict

PLANTED = [("Zébulonne", "Quaternaire"), ("Anatolie", "Brisefer"), ("Ondine", "Marcassin")]


@pytest.fixture
def captured(monkeypatch):
    """Every message the protocol is asked to send, as plaintext bytes, before encryption."""
    sent: list[bytes] = []
    original = protocol_connection.Connection.send

    def spy(self, message):
        sent.append(message.encode())
        return original(self, message)

    monkeypatch.setattr(protocol_connection.Connection, "send", spy)
    return sent


async def test_nothing_about_one_pupil_leaves_the_school(tmp_path, aiohttp_server, captured):
    today = dt.date.today()
    campaign = dataclasses.replace(parse_campaign(campaign_dict()), opens=str(today - dt.timedelta(days=3)),
                                   closes=str(today + dt.timedelta(days=20)))
    district = Node(create_identity(tmp_path / "d") and tmp_path / "d", role="district", limits=Limits())

    async def endpoint(request):
        return await serve_session(request, district.federation, district.limits)

    app = web.Application()
    app.router.add_get(SYNC_PATH, endpoint)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = str(server.make_url("")).rstrip("/")
    district.federation.publish_campaign(campaign)

    store, _ = Store.create(tmp_path / "s", uai="0751234J", school_name="École test", admin_username="dir",
                            admin_password=ADMIN_PW, cost=TEST_COST)
    create_identity(tmp_path / "s")
    school = Node(tmp_path / "s", role="school", limits=Limits(),
                  on_campaign=lambda c: store.put_campaign(store.node, c))
    await school.join(district.create_invitation("0751234J", [url]).to_string(), "0751234J")

    admin = store.login("dir", ADMIN_PW)
    klass = store.create_class(admin, "CP A", "CP", "2026-2027")
    names = PLANTED + [(f"Nom{i:02d}x", f"Prénom{i:02d}y") for i in range(12)]
    pupils = store.add_pupils(admin, klass.id, names)
    rng = random.Random(7)
    answers = {}
    entries = []
    for p in pupils:
        a = tuple(rng.choice((0, 1)) for _ in range(10))
        answers[p.id] = a
        entries += [ResultInput(p.id, "fr-mots", answers=a),
                    ResultInput(p.id, "ma-nombres", answers=tuple(rng.choice((0, 1)) for _ in range(8))),
                    ResultInput(p.id, "fr-lire-texte", wpm=rng.randint(10, 90))]
    store.save_results(admin, campaign.id, entries)
    preview = preview_release(store, admin, school.federation, campaign.id)
    assert preview.will_release, preview.decision.reason
    approve_release(store, admin, school.federation, preview)
    school.store = store
    report = await school.sync_upstream()
    assert report.complete and report.receipts

    secrets = [n.encode() for pair in names for n in pair]
    secrets += [p.id.encode() for p in pupils]
    secrets += [store.pupil_pseudonym(admin, p.id).encode() for p in pupils]
    # One pupil's answer sheet, as the storage and the web would write it (short numbers alone, like a
    # words-per-minute score, would match by chance in binary pages, so they are not searched for).
    sheet = answers[pupils[0].id]
    secrets += [",".join(map(str, sheet)).encode(), str(list(sheet)).encode()]

    def leaks(blob: bytes) -> list[bytes]:
        return [s for s in secrets if s in blob]

    # The search can fail: the school's own plaintext inputs contain what it looks for.
    assert leaks(b"|".join(n.encode() for pair in PLANTED for n in pair) + pupils[0].id.encode())

    assert captured, "the spy saw no message"
    for message in captured:
        assert not leaks(message)
    for path in (tmp_path / "d").rglob("*"):
        if path.is_file():
            assert not leaks(path.read_bytes()), path
    for path in (tmp_path / "s").glob("federation.db*"):
        assert not leaks(path.read_bytes()), path
    school.close()
    district.close()
