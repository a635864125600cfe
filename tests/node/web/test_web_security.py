"""Sessions, CSRF, headers, rate limiting, route access rules and the access log, on the real node app.

Every test runs `create_app` on a real school data folder (node_fixtures.build_classroom), with a clock the
test moves; a test that needs a route the node does not have (one that crashes, one without an access rule)
plants it on that real app, beside the real pages and middlewares.
"""
from __future__ import annotations

import html
import logging

import pytest
from aiohttp.test_utils import TestServer, make_mocked_request
from yarl import URL

from aiohttp import web

from node_fixtures import build_classroom, build_district, grid_path, profile_path
from web_helpers import CSRF_RE, PASSWORD, csrf_of, login
from preau.node.app import create_app
from preau.node.web import (
    InMemorySessionStore, Principal, PrivateAccessLogger, QueryStringFilter, SessionRecord, end_sessions_of,
    undeclared_routes,
)
from preau.node.web.security import CONTENT_SECURITY_POLICY, LoginRateLimiter, _cookie_secure, public, safe_next

FR_CSRF = "Ce formulaire a expiré ou ne vient pas de Préau. Rechargez la page et recommencez."
EN_CSRF = "This form has expired or did not come from Préau. Reload the page and try again."


@public
async def _crash(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("a bug")


async def _undeclared(request: web.Request) -> web.StreamResponse:  # declares no access rule on purpose
    return web.Response(text="should never be served")


def _planted(settings, clock=None) -> web.Application:
    """The real app with two routes no page has: one that crashes (a bug) and one that declares no access rule."""
    app = create_app(settings, **({"clock": clock} if clock else {}))
    app.router.add_get("/crash", _crash)
    app.router.add_get("/undeclared", _undeclared)
    return app


def _assert_hardened(resp) -> None:
    h = resp.headers
    assert h["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in h["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert "unsafe-inline" not in h["Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"


# -- headers -----------------------------------------------------------------

async def test_security_headers_on_every_kind_of_response(aiohttp_client, classroom, caplog):
    caplog.set_level(logging.CRITICAL, logger="aiohttp.server")  # the deliberate crash logs a traceback
    client = await aiohttp_client(_planted(classroom.settings))
    await login(client)
    responses = [
        await client.get("/login", allow_redirects=False),
        await client.get("/classes"),
        await client.get("/static/preau.css"),
        await client.get("/static/missing.css"),
        await client.get("/no/such/page"),
        await client.put("/classes"),  # 405
        await client.get("/crash"),  # 500
        await client.get("/", allow_redirects=False),  # 303
        await client.post("/admin/accounts", json={}),  # CSRF refusal
        await client.get("/admin/accounts"),  # role refusal
    ]
    assert [r.status for r in responses] == [303, 200, 200, 404, 404, 405, 500, 303, 403, 403]
    for resp in responses:
        _assert_hardened(resp)


async def test_pages_are_not_cached_but_static_files_are(client):
    await login(client)
    assert (await client.get("/classes")).headers["Cache-Control"] == "no-store"
    assert "max-age" in (await client.get("/static/grid.js")).headers["Cache-Control"]


async def test_pages_have_no_inline_script_or_style(client, ids):
    await login(client)
    grid = grid_path(ids, "cp-a", "fr-comprendre-mots")
    for path in ("/classes", grid, profile_path(ids, "cp-a")):
        resp = await client.get(path)
        html = await resp.text()
        assert resp.status == 200, path
        assert "<style" not in html and " style=" not in html
        assert "<script>" not in html and "onclick" not in html
        assert 'src="/static/' in html or path != grid


# -- cookies and sessions ----------------------------------------------------------

def _set_cookie(resp, name: str) -> str:
    headers = [v for v in resp.headers.getall("Set-Cookie", []) if v.startswith(name + "=")]
    assert headers, f"no Set-Cookie for {name}"
    return headers[-1]


async def test_session_cookie_flags(client):
    resp = await login(client)
    assert resp.status == 303 and resp.headers["Location"] == "/classes"
    cookie = _set_cookie(resp, "preau_session").lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie.replace("samesite", "")  # plain HTTP on the LAN, no setting
    assert "max-age" not in cookie and "expires" not in cookie  # ends when the shared PC's browser closes


async def test_secure_cookie_when_the_setting_says_so(aiohttp_client, tmp_path):
    settings = build_classroom(tmp_path, public_url="https://preau.ecole-tilleuls.example.fr").settings
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/login")
    assert "; secure" in _set_cookie(resp, "preau_session").lower()


def test_secure_cookie_when_the_request_came_over_https(classroom):
    app = create_app(classroom.settings)
    request = make_mocked_request("GET", "/login", app=app)
    assert not _cookie_secure(request)
    assert _cookie_secure(request.clone(scheme="https"))


async def test_anonymous_flood_never_evicts_a_logged_in_session():
    store = InMemorySessionStore(max_sessions=10, max_anonymous=5)
    teacher = Principal("t", "teacher", "T")
    await store.save(SessionRecord("k-teacher", "c", 0, 0, teacher))
    for i in range(100):
        await store.save(SessionRecord(f"k-anon-{i}", "c", i, i))
    assert (await store.load("k-teacher")) is not None
    assert len(store) == 6 and (await store.load("k-anon-0")) is None and (await store.load("k-anon-99")) is not None


async def test_ending_a_users_sessions_logs_them_out_everywhere(aiohttp_client, server):
    app = server.app
    first, second = await aiohttp_client(server), await aiohttp_client(server)
    await login(first)
    await login(second)
    await login(second, username="m.leroy")  # a colleague on the same node stays logged in
    assert await end_sessions_of(app, "mme.martin") == 1
    assert (await first.get("/classes", allow_redirects=False)).status == 303
    assert (await second.get("/classes", allow_redirects=False)).status == 200


async def test_login_rotates_the_session_token_and_csrf_token(client):
    before = await csrf_of(client)
    old_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["preau_session"].value
    await client.post("/login", data={"username": "mme.martin", "password": PASSWORD, "csrf_token": before},
                      allow_redirects=False)
    new_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["preau_session"].value
    assert new_cookie != old_cookie
    after = CSRF_RE.search(await (await client.get("/classes")).text()).group(1)
    assert after != before


async def test_idle_session_expires(aiohttp_client, tmp_path, clock):
    # A 2-hour idle timeout, as the stand-in app had (the node's default, web_session_timeout, is 8 hours).
    client = await aiohttp_client(create_app(build_classroom(tmp_path, web_session_timeout=7200).settings, clock=clock))
    await login(client)
    assert (await client.get("/classes")).status == 200
    clock.now += 2 * 3600 - 10  # activity keeps it alive...
    assert (await client.get("/classes", allow_redirects=False)).status == 200
    clock.now += 2 * 3600 - 10
    assert (await client.get("/classes", allow_redirects=False)).status == 200
    clock.now += 2 * 3600 + 1  # ...idleness ends it
    resp = await client.get("/classes", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")


async def test_session_ends_after_its_maximum_age_even_when_active(client, clock):
    await login(client)
    for _ in range(13):
        clock.now += 3600
        resp = await client.get("/classes", allow_redirects=False)
    assert resp.status == 303


async def test_logout_ends_the_session(client):
    await login(client)
    token = CSRF_RE.search(await (await client.get("/classes")).text()).group(1)
    jar = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    old = jar["preau_session"].value
    resp = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    client.session.cookie_jar.update_cookies({"preau_session": old})
    resp = await client.get("/classes", allow_redirects=False)
    assert resp.status == 303 and "/login" in resp.headers["Location"]


async def test_wrong_password_is_refused_with_a_clear_message(client):
    resp = await login(client, password="nope")
    assert resp.status == 401
    assert "Identifiant ou mot de passe incorrect" in await resp.text()


async def test_open_redirect_after_login_is_refused():
    assert safe_next("//evil.example/x") == "/"
    assert safe_next("https://evil.example") == "/"
    assert safe_next("/\\evil.example") == "/"
    assert safe_next("/classes/cp-a/profile") == "/classes/cp-a/profile"


# -- CSRF -------------------------------------------------------------------

async def test_post_without_csrf_token_is_refused(client):
    resp = await client.post("/login", data={"username": "mme.martin", "password": PASSWORD})
    assert resp.status == 403
    assert FR_CSRF in await resp.text()


async def test_stale_csrf_token_is_refused_in_english_too(client):
    stale = await csrf_of(client)
    await login(client)  # a new session with a new token
    resp = await client.post("/logout?lang=en", data={"csrf_token": stale})
    assert resp.status == 403
    assert EN_CSRF in await resp.text()


async def test_json_save_needs_the_header_token(client, ids):
    await login(client)
    url = grid_path(ids, "cp-a", "fr-comprendre-mots") + "/row"
    body = {"pupil": ids["p01"], "cells": ["1"] * 10}
    resp = await client.post(url, json=body)
    assert resp.status == 403
    assert (await resp.json()) == {"ok": False, "error": FR_CSRF, "status": 403}
    token = CSRF_RE.search(await (await client.get("/classes")).text()).group(1)
    assert (await client.post(url, json=body, headers={"X-CSRF-Token": token + "x"})).status == 403
    resp = await client.post(url, json=body, headers={"X-CSRF-Token": token})
    assert resp.status == 200 and (await resp.json())["ok"] is True


async def test_a_token_from_another_session_is_refused(aiohttp_client, server, client):
    other = await aiohttp_client(server)  # another browser on the same node
    await login(other)
    foreign = CSRF_RE.search(await (await other.get("/classes")).text()).group(1)
    await login(client)
    resp = await client.post("/logout", data={"csrf_token": foreign})
    assert resp.status == 403


# -- rate limiting -------------------------------------------------------------

async def test_failures_from_one_computer_slow_it_down_with_growing_delays(client, clock):
    for _ in range(5):
        assert (await login(client, password="wrong")).status == 401
    resp = await login(client)  # even the right password waits: a guesser learns nothing meanwhile
    assert resp.status == 429
    text = await resp.text()
    assert "Trop de tentatives de connexion" in text and "1 minute(s)" in text
    assert int(resp.headers["Retry-After"]) == 31
    clock.now += 31
    assert (await login(client, password="wrong")).status == 401  # the sixth failure doubles the wait
    resp = await login(client)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) == 61
    clock.now += 61
    assert (await login(client)).status == 303


async def test_lockout_message_in_english(client):
    for _ in range(5):
        await login(client, password="wrong")
    token = await csrf_of(client, "/login?lang=en")
    resp = await client.post("/login", data={"username": "mme.martin", "password": PASSWORD, "csrf_token": token})
    assert resp.status == 429
    assert "Too many login attempts" in await resp.text()


async def test_address_locked_after_many_accounts_tried(aiohttp_client, tmp_path):
    # 20 attempts a minute from one address: the setting the stand-in app used (the node's default is 10).
    client = await aiohttp_client(create_app(build_classroom(tmp_path, login_rate_limit=20, trusted_proxy=True).settings))
    for i in range(20):
        assert (await login(client, username=f"guess{i}", password="wrong")).status == 401
    assert (await login(client, username="m.leroy")).status == 429


async def test_behind_the_reverse_proxy_each_computer_has_its_own_delays(aiohttp_client, tmp_path):
    """Behind the proxy of docs/operations.md every request comes from 127.0.0.1: 21 wrong passwords from
    anywhere locked every account out (done on the demo district: the inspector's right password got a 429).
    The address the proxy appended to X-Forwarded-For is the computer; only this machine's peers are trusted."""
    from unittest import mock

    from preau.node.listener import client_address

    client = await aiohttp_client(create_app(build_classroom(tmp_path, login_rate_limit=20, trusted_proxy=True).settings))

    async def proxied(address, username, password):
        token = await csrf_of(client)
        return await client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                                 headers={"X-Forwarded-For": f"10.9.9.9, {address}"}, allow_redirects=False)

    for i in range(21):
        assert (await proxied("203.0.113.5", f"guess{i}", "wrong")).status in (401, 429)
    assert (await proxied("203.0.113.5", "mme.martin", PASSWORD)).status == 429
    assert (await proxied("203.0.113.9", "mme.martin", PASSWORD)).status == 303
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: ("192.0.2.50", 4000) if name == "peername" else default
    lan = make_mocked_request("POST", "/login", headers={"X-Forwarded-For": "203.0.113.9"}, transport=transport)
    assert client_address(lan) == "192.0.2.50"  # a computer on the network cannot pick its address


def test_without_trusted_proxy_no_program_on_this_machine_picks_its_address(tmp_path):
    """X-Forwarded-For was believed from any peer on this machine: any program there (a teacher's session on the
    district's server, a compromised service) could pass for any computer and escape the per-computer login
    delays and join-code tries. It is read only when the operator set `trusted_proxy` (off by default)."""
    from unittest import mock

    from preau.node.appkeys import TRUSTED_PROXY
    from preau.node.listener import client_address
    from preau.node.settings import Settings

    assert Settings(data_dir=tmp_path).trusted_proxy is False
    local = mock.Mock()
    local.get_extra_info.side_effect = lambda name, default=None: ("127.0.0.1", 4000) if name == "peername" else default
    seen = {}
    for setting in (None, False, True):
        app = web.Application()
        if setting is not None:
            app[TRUSTED_PROXY] = setting
        request = make_mocked_request("POST", "/login", headers={"X-Forwarded-For": "203.0.113.9"}, transport=local,
                                      app=app)
        seen[setting] = client_address(request)
    assert seen == {None: "127.0.0.1", False: "127.0.0.1", True: "203.0.113.9"}


def test_a_proxy_set_up_without_trusted_proxy_is_named_in_the_log(caplog, monkeypatch):
    """A proxy set up before `trusted_proxy` existed sends X-Forwarded-For that is no longer read: every computer
    counts as this machine again (21 wrong passwords lock everyone out). The log says what to set, once an hour."""
    from unittest import mock

    from preau.node import listener

    monkeypatch.setattr(listener, "_UNTRUSTED_SAID", [float("-inf")])
    local = mock.Mock()
    local.get_extra_info.side_effect = lambda name, default=None: ("127.0.0.1", 4000) if name == "peername" else default
    with caplog.at_level(logging.WARNING, logger="preau.node.listener"):
        for _ in range(3):
            proxied = make_mocked_request("GET", "/", headers={"X-Forwarded-For": "203.0.113.9"}, transport=local,
                                          app=web.Application())
            assert listener.client_address(proxied) == "127.0.0.1"
        assert listener.client_address(make_mocked_request("GET", "/", transport=local, app=web.Application())) \
            == "127.0.0.1"  # no header: nothing to say
    said = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(said) == 1 and "set trusted_proxy = true" in said[0], said


def test_rate_limiter_window_forgets_old_failures():
    limiter = LoginRateLimiter(account_max=3, address_max=100, window=60, lockout=600, base=30)
    for t in (0, 30):
        limiter.failure("Ana", "10.0.0.1", t)
    limiter.failure("Ana", "10.0.0.1", 91)  # 61 s after the last one: the first two are forgotten
    assert limiter.locked_for("ana", "10.0.0.1", 92) == 0
    limiter.failure("ANA ", "10.0.0.1", 93)
    limiter.failure("ana", "10.0.0.1", 94)  # the third within the window: 30 s to wait
    assert limiter.locked_for("ana", "10.0.0.1", 95) == pytest.approx(29)


def test_delays_grow_and_stop_at_the_lockout():
    limiter = LoginRateLimiter(account_max=3, address_max=100, window=3600, lockout=600, base=30)
    assert [limiter.delay(n, 3) for n in range(1, 10)] == [0, 0, 30, 60, 120, 240, 480, 600, 600]


def test_nobody_can_lock_a_teacher_out_from_another_computer():
    limiter = LoginRateLimiter(account_max=5, address_max=20, window=900, lockout=900)
    for i in range(50):
        limiter.failure("mme.martin", "10.0.0.66", i)
    assert limiter.locked_for("mme.martin", "10.0.0.66", 51) > 0  # the guesser's computer waits ...
    assert limiter.locked_for("mme.martin", "10.0.0.12", 51) == 0  # ... the teacher's classroom does not
    assert limiter.locked_for("m.leroy", "10.0.0.66", 51) > 0  # a computer trying too much waits for every account


def test_login_delays_count_an_internet_ipv6_network_as_one_computer_but_not_the_schools_lan():
    """review4: a district's pages face the internet, and a rented server holds a whole /64: each made-up address
    got its own tries. An address from the internet counts by its /64; one of the school's own network alone
    (review3: there one /64 is every computer, and one pupil's failures would slow every teacher)."""
    limiter = LoginRateLimiter(account_max=5, address_max=20, window=900, lockout=900)
    for i in range(6):
        limiter.failure("admin", f"2a01:4f8:1:2::{i + 1:x}", i)  # global addresses of one /64
    assert limiter.locked_for("admin", "2a01:4f8:1:2::beef", 7) > 0
    assert limiter.locked_for("admin", "2a01:4f8:1:3::1", 7) == 0  # another network
    for i in range(6):
        limiter.failure("mme.martin", f"fd12:3456:789a:1::{i + 1:x}", i)  # the school's LAN (ULA)
    assert limiter.locked_for("mme.martin", "fd12:3456:789a:1::beef", 7) == 0  # another computer of the school


def test_a_password_reset_unlocks_the_account_on_every_computer():
    limiter = LoginRateLimiter(account_max=5, address_max=20, window=900, lockout=900)
    for address in ("10.0.0.1", "10.0.0.2"):
        for i in range(6):
            limiter.failure("Mme.Martin", address, i)
    assert limiter.reset_account("mme.martin") == 2
    assert limiter.locked_for("mme.martin", "10.0.0.1", 7) == 0 and limiter.locked_for("mme.martin", "10.0.0.2", 7) == 0


# -- access rules -------------------------------------------------------------

GRID_A, GRID_B = ("grid", "cp-a", "fr-comprendre-mots"), ("grid", "cp-b", "fr-comprendre-mots")


@pytest.mark.parametrize("user,path,status", [
    (None, "/classes", 303),
    (None, "/admin/accounts", 303),
    ("mme.martin", "/admin/accounts", 403),
    ("mme.martin", "/district/schools", 403),
    ("mme.martin", GRID_B, 403),
    ("mme.martin", ("profile", "cp-b"), 403),
    ("mme.martin", ("profile", "cp-a"), 200),
    ("m.leroy", GRID_A, 403),
    ("m.leroy", GRID_B, 200),
    # The stand-in app refused the head teacher the class list; the node shows it to them on purpose
    # (they run the school: classes, accounts, releases), so what they are refused is the district's pages.
    ("direction", "/classes", 200),
    ("direction", "/district/schools", 403),
    ("direction", "/admin/accounts", 200),
    ("ien", ("profile", "cp-a"), 403),
    ("ien", "/district/schools", 200),
    ("mme.martin", "/undeclared", 403),
])
async def test_route_access(aiohttp_client, tmp_path, user, path, status):
    built = build_district(tmp_path) if user == "ien" else build_classroom(tmp_path)
    client = await aiohttp_client(_planted(built.settings))
    ids = {"cp-a": "0123456789abcdef", "campaign": "2026-debut-cp"} if user == "ien" else built.ids  # ien: a district
    if isinstance(path, tuple):
        path = grid_path(ids, *path[1:]) if path[0] == "grid" else profile_path(ids, path[1])
    if user:
        assert (await login(client, username=user)).status == 303
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == status
    if status == 303:
        location = URL(resp.headers["Location"])
        assert location.path == "/login" and location.query["next"] == path
    if status == 403:
        assert "Vous n'avez pas accès à cette page." in html.unescape(await resp.text())


async def test_save_by_teacher_of_another_class_is_refused(client, ids):
    await login(client, username="m.leroy")
    token = CSRF_RE.search(await (await client.get("/classes")).text()).group(1)
    resp = await client.post(grid_path(ids, "cp-a", "fr-comprendre-mots") + "/row",
                             json={"pupil": ids["p01"], "cells": ["1"] * 10},
                             headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert resp.status == 403


async def test_fetch_without_session_gets_json_401(client):
    resp = await client.get("/classes", headers={"Accept": "application/json"})
    assert resp.status == 401
    assert (await resp.json())["error"].startswith("Votre session a expiré")


def test_undeclared_routes_are_listed(classroom):
    assert undeclared_routes(create_app(classroom.settings)) == []  # every page of the node declares its rule
    assert sorted(undeclared_routes(_planted(classroom.settings))) == ["GET /undeclared", "HEAD /undeclared"]


def test_principal_rejects_unknown_roles():
    with pytest.raises(ValueError, match="role must be one of admin, teacher, district"):
        Principal("x", "parent", "X")


# -- logs -------------------------------------------------------------------

async def test_access_log_never_has_query_strings_or_form_bodies(aiohttp_client, classroom, ids, caplog):
    server = TestServer(create_app(classroom.settings))
    await server.start_server(access_log_class=PrivateAccessLogger)  # as the node's runner does
    client = await aiohttp_client(server)
    caplog.set_level(logging.DEBUG)
    await client.get(f"/login?next={profile_path(ids, 'cp-a')}&pupil=Lucie+Martin")
    await login(client, password="secret-Lucie-pw")
    await client.get("/classes?name=Lucie")
    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("GET /login" in m for m in access) and any("POST /login" in m for m in access)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "Lucie" not in everything and "?" not in "\n".join(access) and "secret" not in everything


def test_query_string_filter_scrubs_default_access_lines():
    record = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1,
                               '%s "%s" %s', ("127.0.0.1", "GET /grid?pupil=Lucie HTTP/1.1", 200), None)
    assert QueryStringFilter().filter(record)
    assert record.getMessage() == '127.0.0.1 "GET /grid HTTP/1.1" 200'


# -- language ------------------------------------------------------------------

async def test_language_switch_sticks_in_a_cookie(client):
    resp = await client.get("/login?lang=en")
    assert '<html lang="en">' in await resp.text()
    assert "samesite=strict" in _set_cookie(resp, "lang").lower()
    assert '<html lang="en">' in await (await client.get("/login")).text()
    assert '<html lang="fr">' in await (await client.get("/login?lang=fr")).text()
    assert '<html lang="fr">' in await (await client.get("/login?lang=xx")).text()
