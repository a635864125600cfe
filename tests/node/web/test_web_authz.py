"""Route-by-route authorization over the real `create_app`, for a school node and a district node.

Every route of the app is listed from its router (a new route without an
entry in RULES fails the test), then tried by each kind of visitor: no
session, teacher of class A on class A and on class B, head teacher,
district staff; school pages on the district node and district pages on the
school node; and every state-changing route with a stale CSRF token.
"""
from __future__ import annotations

import re

import pytest
from aiohttp.web_urldispatcher import StaticResource

from node_fixtures import build_district, build_school, login
from web_helpers import csrf_of
from preau.node.app import create_app
from preau.node.web import undeclared_routes
from preau.node.web.appkeys import UNLOCKED

# Who may use a route, by path prefix (checked in order). "own-class" = a teacher, on a class assigned to them.
RULES = [
    ("/login", "public"), ("/logout", "any"), ("/healthz", "public"), ("/v1/sync", "public"), ("/v1/code", "public"),
    ("/", "public-exact"),
    ("/classes/{class_id}/pupils/{pupil_id}/erase", "admin"),  # erasing a pupil is the head teacher's alone
    ("/classes/{class_id", "own-class+admin"), ("/classes", "teacher+admin"),
    ("/admin", "admin"), ("/district", "district"), ("/v1/status", "admin+district"), ("/v1/stats", "district"),
]
SKIP = {"/login", "/logout", "/healthz", "/v1/sync", "/v1/code", "/",  # /v1/sync and /v1/code: WebSockets, tried elsewhere
        "/admin", "/district"}  # like "/": to one's own home page or the login page (test_page_addresses)


def rule_for(path: str) -> str:
    for prefix, rule in RULES:
        if rule == "public-exact":
            if path == "/":
                return rule
            continue
        if path.startswith(prefix):
            return rule
    raise AssertionError(f"route {path} has no rule in this test: add one")


def routes(app) -> list[tuple[str, str]]:
    out = []
    for route in app.router.routes():
        if isinstance(route.resource, StaticResource) or route.method == "HEAD":
            continue
        path = route.resource.canonical
        out.append((route.method, path))
    return sorted(set(out))


def fill(path: str, ids: dict[str, str], klass: str) -> str:
    values = {"class_id": ids[f"class_{klass}"], "pupil_id": ids[f"pupil_{klass}"], "campaign_id": ids["campaign"],
              "exercise_id": ids["exercise"], "pool_id": "0" * 32}
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values[m.group(1)], path)


def refused(resp, body: str) -> bool:
    if resp.status in (401, 403):
        return True
    return resp.status == 303 and resp.headers.get("Location", "").startswith("/login")


@pytest.fixture
async def school(tmp_path, aiohttp_client):
    built = build_school(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    return client, built.ids


@pytest.fixture
async def district(tmp_path, aiohttp_client):
    built = build_district(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    return client


def test_every_route_declares_who_may_use_it(tmp_path):
    for built in (build_school(tmp_path / "s"), build_district(tmp_path / "d")):
        app = create_app(built.settings)
        assert undeclared_routes(app) == []
        for _, path in routes(app):
            rule_for(path)  # every route is in the table below


async def _try(client, method: str, path: str, token: str | None) -> tuple[int, bool]:
    headers = {"Accept": "text/html"}
    data = {"csrf_token": token} if token else {}
    if method == "GET":
        resp = await client.get(path, allow_redirects=False, headers=headers)
    else:
        resp = await client.post(path, data=data, allow_redirects=False, headers=headers)
    body = await resp.text()
    return resp.status, refused(resp, body)


async def test_school_node_route_matrix(school):
    client, ids = school
    app = client.server.app
    table = [(m, p) for m, p in routes(app) if p not in SKIP]
    assert len(table) > 25
    checked = {"refused": 0, "allowed": 0}

    async def as_visitor(username: str | None):
        client.session.cookie_jar.clear()
        if username:
            await login(client, username)
        return await csrf_of(client, "/login") if username is None else None

    # No session: everything but the public routes is refused (GET: sent to the login page; POST: no CSRF session).
    await as_visitor(None)
    for method, path in table:
        status, no = await _try(client, method, fill(path, ids, "a"), None)
        assert no, f"anonymous {method} {path} -> {status}"
        checked["refused"] += 1

    for username, role in (("mme.a", "teacher"), ("direction", "admin")):
        await as_visitor(username)
        token = await csrf_of(client, "/classes")
        for method, path in table:
            rule = rule_for(path)
            for klass in ("a", "b"):
                allowed = (role in rule) or (rule == "own-class+admin" and (role == "admin" or klass == "a")) \
                    or (rule == "teacher+admin")
                if method == "POST" and allowed:
                    continue  # allowed writes are exercised by the feature tests; here only refusals matter
                status, no = await _try(client, method, fill(path, ids, klass), token)
                if allowed:
                    assert not no, f"{username} {method} {path} (class {klass}) refused: {status}"
                    assert status < 500, f"{username} {method} {path} -> {status}"
                    checked["allowed"] += 1
                else:
                    assert no, f"{username} {method} {path} (class {klass}) NOT refused: {status}"
                    checked["refused"] += 1
    print(f"school route matrix: {len(table)} routes, {checked}")
    assert checked["refused"] > 60 and checked["allowed"] > 20, checked


async def test_district_node_refuses_school_pages_and_school_refuses_district_pages(school, district, tmp_path):
    dclient = district
    await login(dclient, "ien")
    token = await csrf_of(dclient, "/district/schools")
    fake = {"class_a": "0" * 16, "pupil_a": "1" * 16, "campaign": "2026-test-cp", "exercise": "fr-mots"}
    school_paths = [(m, p) for m, p in routes(dclient.server.app) if p.startswith(("/classes", "/admin")) and p not in SKIP]
    assert len(school_paths) > 15
    for method, path in school_paths:
        status, no = await _try(dclient, method, fill(path, fake, "a"), token)
        assert no and status == 403, f"district staff {method} {path} -> {status}"
    # District staff do reach their own pages.
    for path in ("/district/schools", "/district/invitations", "/district/campaigns", "/district/stats"):
        assert (await dclient.get(path)).status == 200
    assert (await dclient.get("/v1/stats/2026-test-cp", headers={"Accept": "application/json"})).status == 404

    client, ids = school
    for user in ("direction", "mme.a"):
        client.session.cookie_jar.clear()
        await login(client, user)
        token = await csrf_of(client, "/classes")
        for method, path in [(m, p) for m, p in routes(client.server.app)
                             if p.startswith(("/district", "/v1/stats")) and p not in SKIP]:
            status, no = await _try(client, method, fill(path, ids, "a"), token)
            assert no and status == 403, f"{user} {method} {path} -> {status}"


async def test_stale_or_missing_csrf_token_changes_nothing(school):
    client, ids = school
    await login(client, "direction")
    stale = "x" * 43
    before = (await (await client.get("/admin/accounts")).text()).count("<tr>")
    for data in ({"csrf_token": stale}, {}):
        resp = await client.post("/admin/accounts", data={**data, "action": "create", "username": "intrus",
                                                          "password": "0123456789ab", "role": "admin"})
        assert resp.status == 403
        assert "Ce formulaire a expiré" in await resp.text()
    resp = await client.post(f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/exercises/fr-mots/row",
                             json={"pupil": ids["pupil_a"], "cells": ["1"] * 5}, headers={"X-CSRF-Token": stale})
    assert resp.status == 403 and (await resp.json())["ok"] is False
    page = await (await client.get("/admin/accounts")).text()
    assert "intrus" not in page and page.count("<tr>") == before
    # A token from another session is stale too.
    client.session.cookie_jar.clear()
    await login(client, "mme.a")
    resp = await client.post("/admin/accounts", data={"csrf_token": stale, "action": "disable", "username": "m.b"})
    assert resp.status == 403


async def test_json_api_needs_a_login(school):
    client, _ = school
    for path in ("/v1/status", "/v1/stats/2026-test-cp"):
        resp = await client.get(path, headers={"Accept": "application/json"})
        assert resp.status == 401 and (await resp.json())["ok"] is False
    assert (await client.get("/healthz")).status == 200
    await login(client, "direction")
    body = await (await client.get("/v1/status", headers={"Accept": "application/json"})).json()
    assert body["ok"] and body["role"] == "school" and body["upstream"] is None


async def test_logout_and_disabling_end_the_store_session(school):
    client, ids = school
    unlocked = client.server.app[UNLOCKED]
    await login(client, "mme.a")
    assert unlocked.count_unlocked() == 1
    token = await csrf_of(client, "/classes")
    resp = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and unlocked.count_unlocked() == 0
    # A teacher whose account the head teacher disables is out at once, keys dropped.
    await login(client, "mme.a")
    teacher_cookies = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    assert unlocked.count_unlocked() == 1
    client.session.cookie_jar.clear()
    await login(client, "direction")
    token = await csrf_of(client, "/admin/accounts")
    resp = await client.post("/admin/accounts", data={"csrf_token": token, "action": "disable", "username": "mme.a"})
    assert resp.status == 200 and "désactivé" in await resp.text()
    assert unlocked.count_unlocked() == 1  # only the head teacher's
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(teacher_cookies)
    resp = await client.get(f"/classes/{ids['class_a']}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login")


async def test_a_teacher_loses_a_class_at_once_when_unassigned(school):
    client, ids = school
    await login(client, "mme.a")
    assert (await client.get(f"/classes/{ids['class_a']}")).status == 200
    teacher = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    client.session.cookie_jar.clear()
    await login(client, "direction")
    token = await csrf_of(client, "/admin/classes")
    resp = await client.post("/admin/classes", data={"csrf_token": token, "action": "unassign", "username": "mme.a",
                                                     "class_id": ids["class_a"]})
    assert resp.status == 200
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies(teacher)
    assert (await client.get(f"/classes/{ids['class_a']}")).status == 403


class FakeUnlocked:
    def __init__(self) -> None:
        self.open = True

    def logout(self) -> None:
        self.open = False


async def test_expired_sessions_are_swept_and_their_keys_dropped():
    from preau.node.web import Principal, SessionRecord
    from preau.node.web.site import UnlockedSessions

    sessions = UnlockedSessions()
    keys = {name: FakeUnlocked() for name in ("old", "fresh", "orphan")}
    for name in ("old", "fresh"):
        handle = sessions.register(keys[name])
        seen = 0.0 if name == "old" else 1000.0
        await sessions.save(SessionRecord(name, "csrf", 0.0, seen, Principal(name, "teacher", name, handle=handle)))
    sessions.register(keys["orphan"])  # a login whose response never completed
    assert await sessions.sweep(1000.0, idle=600, longest=3600) == 1
    assert not keys["old"].open and keys["fresh"].open
    assert keys["orphan"].open  # given one sweep period to attach...
    await sessions.sweep(1001.0, idle=600, longest=3600)
    assert not keys["orphan"].open and keys["fresh"].open  # ...then dropped
    assert await sessions.sweep(5000.0, idle=600, longest=3600) == 1 and not keys["fresh"].open
    assert sessions.count_unlocked() == 0
