"""The district's QR code opens the school's own join page, filled in; nothing is sent before the button.

Real apps on 127.0.0.1: the district page's QR code is regenerated from the link shown under it (segno draws
the same SVG for the same text), and the school's GET /admin/join is checked for what it fills in, what it
refuses to offer (another school's UAI) and what it must never do (contact the district). Names are hostile
(quotes, <script>) throughout: every value the link carries is escaped.
"""
from __future__ import annotations

import html
import re
import urllib.parse

import pytest
from aiohttp import web

from node_fixtures import SCHOOL_UAI, build_district, build_school, free_port, login
from preau.node.app import create_app
from preau.node.appkeys import NODE
from preau.node.web.district import qr_svg
from preau.node.web.join_link import school_join_link

OTHER_UAI = "0010856A"
NAME = 'École "Les Tilleuls" <script>alert(1)</script> & Cie'
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
JOIN_FORM = '<form method="post" action="/admin/join">'
JOIN_BUTTON = "<button type=\"submit\">Rattacher l'école</button>"


def _value_of(page: str, field: str) -> str:
    m = re.search(rf'<input id="{field}" name="{field}"[^>]* value="([^"]*)"', page)
    assert m, field
    return html.unescape(m.group(1))


def test_the_link_carries_code_address_uai_and_name_and_reads_back():
    link = school_join_link(code="1HD8Y-CD6WD-ZW66X-6F6V8", district="http://10.0.0.5:8080", uai=SCHOOL_UAI,
                            name=NAME)
    parts = urllib.parse.urlsplit(link)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("http", "preau.local", 8080, "/admin/join")
    assert urllib.parse.parse_qs(parts.query) == {"code": ["1HD8Y-CD6WD-ZW66X-6F6V8"],
                                                  "district": ["http://10.0.0.5:8080"], "uai": [SCHOOL_UAI],
                                                  "name": [NAME]}
    assert "name=" not in school_join_link(code="C", district="http://d", uai=SCHOOL_UAI)


async def test_the_district_page_qr_code_holds_the_school_join_link(tmp_path, aiohttp_server, aiohttp_client):
    port = free_port()
    built = build_district(tmp_path, port=port)
    client = await aiohttp_client(await aiohttp_server(create_app(built.settings), host="127.0.0.1", port=port))
    await login(client, "ien")
    page = await (await client.get("/district/invitations")).text()
    resp = await client.post("/district/invitations", data={
        "csrf_token": TOKEN.search(page).group(1), "action": "create", "uai": SCHOOL_UAI, "name": NAME, "days": "7"})
    assert resp.status == 200 and resp.url.path == "/district/invitations"  # after the redirect
    page = await resp.text()
    assert "<script>alert" not in page  # the name is escaped wherever it shows
    code = "-".join(re.findall(r'<span class="join-group">([^<]+)</span>', page))
    link = html.unescape(re.search(r'<span id="join-link" class="join-link-url">([^<]+)</span>', page).group(1))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["code"] == [code] and len(code) == 23
    assert query["uai"] == [SCHOOL_UAI] and query["name"] == [NAME]
    assert query["district"] == [built.settings.advertised_url]
    assert link == school_join_link(code=code, district=built.settings.advertised_url, uai=SCHOOL_UAI, name=NAME)
    # The QR code drawn on the page is the one of that link (segno is deterministic), not of the long text.
    assert str(qr_svg(link)) in page
    long_text = html.unescape(re.search(r'<p id="inv-text" class="invitation-text">([^<]+)</p>', page).group(1))
    assert long_text.startswith("PREAU1-") and str(qr_svg(long_text)) not in page  # kept below, for old nodes
    assert "réseau de l'école" in html.unescape(page)


@pytest.fixture
async def school(tmp_path, aiohttp_server, aiohttp_client):
    """The school's app, its head teacher logged in, and a stand-in district that counts every request."""
    hits: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=404)

    district = web.Application()
    district.router.add_route("*", "/{tail:.*}", anything)
    dserver = await aiohttp_server(district, host="127.0.0.1", port=free_port())
    port = free_port()
    built = build_school(tmp_path, port=port, with_campaign=False, pupils=False)
    client = await aiohttp_client(await aiohttp_server(create_app(built.settings), host="127.0.0.1", port=port))
    await login(client, "direction")
    return client, f"http://127.0.0.1:{dserver.port}", hits


def _path(code: str, district: str, uai: str, name: str | None = NAME) -> str:
    return urllib.parse.urlsplit(school_join_link(code=code, district=district, uai=uai, name=name))._replace(
        scheme="", netloc="").geturl()


CODE = "1HD8Y-CD6WD-ZW66X-6F6V8"


async def test_the_school_page_is_filled_in_from_the_link_and_joins_nothing(school):
    client, district, hits = school
    resp = await client.get(_path(CODE, district, SCHOOL_UAI))
    assert resp.status == 200
    page = await resp.text()
    assert "<script>alert" not in page  # the name from the link is escaped
    assert _value_of(page, "invitation") == CODE and _value_of(page, "district") == district
    assert f"Invitation pour : {NAME} ({SCHOOL_UAI})" in html.unescape(page)
    assert JOIN_FORM in page and JOIN_BUTTON in html.unescape(page)
    # The language link keeps what the link carried.
    lang = html.unescape(re.search(r'<a class="lang" href="([^"]+)"', page).group(1))
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(lang).query)["code"] == [CODE]
    # A GET never joins: the district was not contacted and the school is not enrolled.
    assert hits == [] and client.app[NODE].federation.upstream() is None
    # A lower-case UAI in the link is still this school's.
    page = await (await client.get(_path(CODE, district, SCHOOL_UAI.lower(), name=None))).text()
    assert f"Invitation pour : l'école {SCHOOL_UAI}" in html.unescape(page) and JOIN_FORM in page


async def test_another_schools_invitation_is_named_and_offers_no_button(school):
    client, district, hits = school
    resp = await client.get(_path(CODE, district, OTHER_UAI))
    assert resp.status == 200
    page = html.unescape(await resp.text())
    assert f"Cette invitation est pour l'école {OTHER_UAI}, pas pour la vôtre ({SCHOOL_UAI}) : rien n'a été envoyé" \
        in page
    assert JOIN_FORM not in page and JOIN_BUTTON not in page
    assert hits == [] and client.app[NODE].federation.upstream() is None


async def test_the_link_opened_logged_out_comes_back_after_the_login(tmp_path, aiohttp_server, aiohttp_client):
    port = free_port()
    built = build_school(tmp_path, port=port, with_campaign=False, pupils=False)
    client = await aiohttp_client(await aiohttp_server(create_app(built.settings), host="127.0.0.1", port=port))
    path = _path(CODE, "http://192.168.1.10:8080", SCHOOL_UAI)
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303
    target = urllib.parse.parse_qs(urllib.parse.urlsplit(resp.headers["Location"]).query)["next"][0]
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)["code"] == [CODE]
