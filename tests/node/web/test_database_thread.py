"""While a node serves, one thread writes its two files and the event loop never waits on SQLite.

The protection-off run shows the test can fail: without the database thread, the same slow write holds the
whole node's event loop (and every page with it) for as long as it lasts.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from node_fixtures import build_school, login
from preau.node.app import create_app
from preau.node.appkeys import NODE
from preau.node.database import WrongThread
from preau.node.runtime import Node

SLOW = 1.5  # seconds a write transaction holds the database (a slow disk's fsync, a large import)


def _slow_write(node) -> None:
    with node.store.writer.atomic():
        node.store.writer.execute("CREATE TABLE IF NOT EXISTS slow_probe (x)")
        time.sleep(SLOW)


class _NoThread:
    """A node without its database thread (how every node ran before): `run` works inline, on the loop."""
    jobs = 0
    busy_seconds = 0.0


@pytest.mark.parametrize("thread", [True, False], ids=["database-thread", "protection-off"])
async def test_the_event_loop_and_the_pages_go_on_while_a_write_holds_the_database(
        tmp_path, aiohttp_client, monkeypatch, thread):
    if not thread:
        monkeypatch.setattr(Node, "start_database_thread", lambda self: _NoThread())
    built = build_school(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    node = client.server.app[NODE]
    await login(client, "mme.a")
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)
    writing = asyncio.ensure_future(node.run(_slow_write, node))
    await asyncio.sleep(0.1)  # the write transaction is open
    start = time.perf_counter()
    resp = await client.get(f"/classes/{built.ids['class_a']}")  # a page that reads the store
    waited = time.perf_counter() - start
    text = await resp.text()
    await writing
    ticking.cancel()
    longest_gap = max(b - a for a, b in zip(ticks, ticks[1:]))
    assert resp.status == 200 and "Martin" in text
    if thread:
        assert longest_gap < SLOW / 2, f"the event loop stalled {longest_gap:.2f} s during a write"
        assert waited < SLOW / 2, f"the page waited {waited:.2f} s for a write on the database thread"
    else:
        assert longest_gap >= SLOW * 0.9, f"without the thread the loop should stall, longest gap {longest_gap:.2f} s"


async def test_a_write_from_the_event_loop_is_refused_and_the_same_write_through_the_thread_works(
        tmp_path, aiohttp_client):
    built = build_school(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    node = client.server.app[NODE]
    with pytest.raises(WrongThread, match="database thread"):
        node.fed.set_meta("probe", "from the loop")
    with pytest.raises(WrongThread):
        node.store.writer.execute("SELECT 1")  # the owned connection itself refuses the loop's thread
    assert node.fed.get_meta("probe") is None  # nothing half-written
    await node.run(node.fed.set_meta, "probe", "through the thread")
    assert node.fed.get_meta("probe") == "through the thread"  # the loop's reader sees the committed value


@pytest.mark.parametrize("off_thread", [True, False], ids=["login-workers", "protection-off"])
async def test_a_new_accounts_key_derivation_does_not_hold_the_database_thread(
        tmp_path, aiohttp_client, monkeypatch, off_thread):
    """Argon2id takes 0.1-1 s by design. Creating an account derives its key on the login workers, so every
    other write and every sync session (all on the database thread) goes on meanwhile; with the derivation
    handed to the database thread (protection off), they wait for it."""
    from web_helpers import csrf_of
    from preau.node.records import vault
    from preau.node.web import accounts_form
    from preau.node.web.context import on_db

    built = build_school(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    node = client.server.app[NODE]
    await login(client, "direction")
    token = await csrf_of(client, "/admin/accounts")
    derive = vault.kek_from_password

    def slow_derivation(*args, **kw):  # a slow box's Argon2id, made certain
        time.sleep(SLOW)
        return derive(*args, **kw)

    monkeypatch.setattr(vault, "kek_from_password", slow_derivation)
    if not off_thread:
        monkeypatch.setattr(accounts_form, "argon2", lambda request, fn, *a, **kw: on_db(request, fn, *a, **kw))
    posting = asyncio.ensure_future(client.post("/admin/accounts", allow_redirects=False, data={
        "csrf_token": token, "action": "create", "username": "m.c", "password": "un long mot de passe",
        "role": "teacher"}))
    await asyncio.sleep(SLOW / 5)  # the derivation is under way
    start = time.perf_counter()
    await node.run(node.fed.set_meta, "probe", "another write")
    waited = time.perf_counter() - start
    resp = await posting
    assert resp.status == 303, await resp.text()
    accounts = await client.get("/admin/accounts")
    assert "m.c" in await accounts.text()  # the account was made, whole
    if off_thread:
        assert waited < SLOW / 2, f"a write waited {waited:.2f} s for a new account's key derivation"
    else:
        assert waited >= SLOW / 2, f"with the derivation on the database thread a write should wait, it waited {waited:.2f} s"
