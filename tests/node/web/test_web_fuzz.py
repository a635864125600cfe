"""Every route of a real school node and a real district node, fed generated requests: never a 5xx, never a traceback.

The requests are what a broken client, a confused proxy or a hostile one
sends: bodies of random bytes, forms with unknown and over-long fields,
multipart without a boundary, charsets that do not exist or are not ASCII
supersets, deeply nested JSON, garbage cookies and over-long headers, for
each route and method (and the wrong methods), as an anonymous visitor, a
teacher, a head teacher and the district. Half the state-changing requests
carry the session's CSRF token, so they reach the handlers. The generator
is seeded: a failure prints the request that caused it, which replays.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import pathlib
import random
import re
import shutil
import string
import tempfile

import aiohttp
import pytest

from node_fixtures import build_district, build_school, login
from preau.node.app import create_app
from web_helpers import CSRF_RE

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REQUESTS = int(__import__('os').environ.get('FUZZ_REQUESTS', 10_000))
CONCURRENCY = 16
SEED = 20261130

CONTENT_TYPES = [
    None,
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=utf-16",
    "application/x-www-form-urlencoded; charset=x-unknown",
    "application/x-www-form-urlencoded; charset=",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data; boundary=xyz; charset=utf-16",
    "application/json",
    "application/json; charset=utf-16",
    "application/json; charset=latin-1",
    "application/json; charset=x-unknown",
    "text/plain",
    "text/csv; charset=x-unknown",
    "application/octet-stream",
    "garbage",
    "a/b; c=\"unterminated",
]


ALPHABET = string.printable + "éàçÉ€\u202e\ufeff\x00\ud7ff" + "<>\"'&%="


def _text(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(ALPHABET, k=n))


def _nested(rng: random.Random, depth: int):
    value: object = rng.choice([1, "x", None, 1e308, -0.0, 2**70])
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def _json_body(rng: random.Random, fields: list[str]) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        depth = rng.choice([10, 1000, 5000, 50_000])
        return b'{"a":' * depth + b"1" + b"}" * depth if rng.random() < 0.5 else b"[" * depth + b"1" + b"]" * depth
    if kind == 1:
        return json.dumps({f: _nested(rng, rng.randrange(4)) for f in fields + ["x"]}).encode()
    if kind == 2:
        return json.dumps({f: _text(rng, rng.randrange(40)) for f in fields}).encode()
    if kind == 3:
        return b'{"a": NaN, "b": Infinity, "c": 1e999999}'
    if kind == 4:
        return b"[" * rng.randrange(1, 200_000)  # never closed
    return rng.randbytes(rng.randrange(200))


def _form_pairs(rng: random.Random, fields: list[str], token: str | None) -> list[tuple[str, str]]:
    pairs = [(f, _text(rng, rng.choice([0, 1, 5, 50, 3000]))) for f in fields if rng.random() < 0.8]
    pairs += [(_text(rng, 5), _text(rng, 5)) for _ in range(rng.randrange(3))]
    if token is not None:
        pairs.append(("csrf_token", token))
    rng.shuffle(pairs)
    return pairs


def _urlencode(pairs: list[tuple[str, str]], encoding: str) -> bytes:
    from urllib.parse import quote_plus

    try:
        return "&".join(f"{quote_plus(k, encoding=encoding)}={quote_plus(v, encoding=encoding)}"
                        for k, v in pairs).encode("ascii")
    except (UnicodeError, LookupError):
        return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in pairs).encode()


def _multipart(rng: random.Random, pairs: list[tuple[str, str]], boundary: str) -> bytes:
    out = []
    for k, v in pairs:
        disposition = f'form-data; name="{k}"'
        if rng.random() < 0.3:
            disposition += f'; filename="{_text(rng, 8)}"'
        out.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{v}\r\n")
    if rng.random() < 0.8:
        out.append(f"--{boundary}--\r\n")
    data = "".join(out).encode("utf-8", "surrogatepass")
    return data if rng.random() < 0.9 else data[: rng.randrange(len(data) + 1)]


class Generator:
    def __init__(self, rng: random.Random, routes: list[tuple[str, str]], values: dict[str, list[str]],
                 fields: dict[str, list[str]]):
        self.rng, self.routes, self.values, self.fields = rng, routes, values, fields

    def path(self, template: str) -> str:
        rng = self.rng

        def fill(m: re.Match) -> str:
            name = m.group(1)
            pool = self.values.get(name, [])
            if pool and rng.random() < 0.8:
                return rng.choice(pool)
            return rng.choice(["0" * 16, "zzz", "a" * 64, "%00", "..", "%2e%2e", "é", "x" * 300])

        path = re.sub(r"\{([a-z_]+)(?::[^}]*)?\}", fill, template)
        if rng.random() < 0.2:
            path += "?" + rng.choice(["lang=en", "lang=xx", "next=//evil", "a=%ff", "x=" + "y" * 3000, "%%%"])
        return path

    def request(self, tokens: dict[str, str], who: str) -> dict:
        rng = self.rng
        method, template = rng.choice(self.routes)
        while not who.startswith("anon") and template in ("/logout", "/login") and method == "POST":
            method, template = rng.choice(self.routes)  # a logged-in client stays logged in: its pages are the point
        if rng.random() < 0.1:
            method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
        if rng.random() < 0.03:
            template = rng.choice(["/" + _text(rng, 20).replace("?", "").lstrip("/"), "/x//y", "/static/../../etc/passwd",
                                   "/classes/" + "a" * 5000])
        path = self.path(template)
        headers: dict[str, str] = {}
        ctype = rng.choice(CONTENT_TYPES)
        token = tokens.get(who) if rng.random() < 0.6 else rng.choice([None, "forged"])
        fields = self.fields.get(template, []) + ["username", "password", "name", "action", "file"]
        body: bytes | None = None
        if method not in ("GET", "HEAD") or rng.random() < 0.05:
            if ctype and "json" in ctype:
                body = _json_body(rng, fields)
                if token and rng.random() < 0.8:
                    headers["X-CSRF-Token"] = token
            elif ctype and ctype.startswith("multipart"):
                body = _multipart(rng, _form_pairs(rng, fields, token), "xyz")
            elif ctype and "urlencoded" in ctype:
                charset = ctype.partition("charset=")[2] or "utf-8"
                body = _urlencode(_form_pairs(rng, fields, token), charset)
            else:
                body = rng.randbytes(rng.choice([0, 10, 1000]))
                if token and rng.random() < 0.5:
                    headers["X-CSRF-Token"] = token
        if ctype:
            headers["Content-Type"] = ctype
        extra = rng.random()
        if extra < 0.03 and method != "HEAD":  # (a HEAD client cannot read the 400's body)
            headers["X-Long"] = "a" * rng.choice([8_000, 9_000, 20_000])  # over aiohttp's 8 KiB line limit
        elif extra < 0.06:
            headers["Cookie"] = rng.choice(["preau_session=" + _text(rng, 30).replace(";", ""), "=;;=", "a" * 5000])
        elif extra < 0.09:
            headers["Accept-Language"] = rng.choice(["xx", "en;q=abc", "*", "fr-FR,fr;q=0.9,en;q=0.8", "é" * 10])
        elif extra < 0.12:
            headers["Accept"] = rng.choice(["application/json", "*/*", "text/html;q=0", "garbage"])
        elif extra < 0.14:
            headers["Origin"] = "http://evil.example"
        headers = {k: _CONTROL.sub("", v) for k, v in headers.items()}  # the client refuses to send control characters
        return {"method": method, "path": path, "headers": headers, "data": body}


async def _scrape(client, paths: list[str]) -> dict[str, list[str]]:
    """The field names of each page's forms, so generated forms use real names too."""
    names: dict[str, list[str]] = {}
    for path in paths:
        resp = await client.get(path)
        text = await resp.text()
        names[path] = sorted(set(re.findall(r'name="([^"]+)"', text)))
    return names


def _routes(app) -> list[tuple[str, str]]:
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        template = info.get("formatter") or info.get("path")
        if template is None and "prefix" in info:
            template = info["prefix"] + "/preau.css"
        if template and route.method != "*":
            out.append((route.method, template))
    return out


async def _token(client, path: str) -> str | None:
    resp = await client.get(path)
    m = CSRF_RE.search(await resp.text())
    return m.group(1) if m else None


@pytest.mark.slow
async def test_generated_requests_never_get_a_5xx_or_a_traceback(tmp_path, aiohttp_client, caplog):
    caplog.set_level(logging.INFO)
    # On /dev/shm when there is one: each write is fsynced (synchronous=FULL), which is the disk's time, not the test's.
    root = pathlib.Path(tempfile.mkdtemp(dir="/dev/shm")) if pathlib.Path("/dev/shm").is_dir() else tmp_path
    try:
        await _fuzz(root, aiohttp_client, caplog)
    finally:
        if root != tmp_path:
            shutil.rmtree(root, ignore_errors=True)


async def _fuzz(tmp_path, aiohttp_client, caplog):
    school_built = build_school(tmp_path / "s")
    district_built = build_district(tmp_path / "d")
    school_app, district_app = create_app(school_built.settings), create_app(district_built.settings)
    anon_school = await aiohttp_client(school_app)
    server = anon_school.server
    clients = {"anon-school": anon_school}
    for who, user in (("teacher", "mme.a"), ("head", "direction")):
        clients[who] = c = await aiohttp_client(server)
        await login(c, user)
    anon_district = await aiohttp_client(district_app)
    clients["anon-district"] = anon_district
    clients["district"] = c = await aiohttp_client(anon_district.server)
    await login(c, "ien")

    ids = school_built.ids
    values = {"class_id": [ids["class_a"], ids["class_b"]], "campaign_id": [ids["campaign"]],
              "exercise_id": [ids["exercise"], "fr-lire-texte"], "pupil_id": [ids["pupil_a"], ids["pupil_b"]],
              "camp": [ids["campaign"]]}
    gens = {}
    tokens = {}
    for app_name, app, who_list in (("school", school_app, ["anon-school", "teacher", "head"]),
                                    ("district", district_app, ["anon-district", "district"])):
        routes = _routes(app)
        assert len(routes) > 10, routes
        gets = [Generator(random.Random(0), routes, values, {}).path(t) for m, t in routes if m == "GET"]
        fields = {}
        for who in who_list:
            tokens[who] = await _token(clients[who], "/login" if who.startswith("anon") else gets[0])
            scraped = await _scrape(clients[who], [p.split("?")[0] for p in gets if "{" not in p][:40])
            for path, names in scraped.items():
                fields.setdefault(path, []).extend(names)
        gens[app_name] = Generator(random.Random(SEED if app_name == "school" else SEED + 1), routes, values, fields)
    for who, c in clients.items():  # the tokens of logged-in sessions; anonymous ones keep the login page's
        if not who.startswith("anon"):
            tokens[who] = await _token(c, "/admin/accounts" if who == "head" else ("/classes" if who == "teacher" else "/district/schools")) or tokens[who]

    caplog.clear()
    statuses: dict[int, int] = {}
    failures: list[str] = []
    rng = random.Random(SEED)
    who_all = list(clients)

    async def one(i: int) -> None:
        who = rng.choice(who_all)
        gen = gens["district" if "district" in who else "school"]
        req = gen.request(tokens, who)
        try:
            async with clients[who].request(req["method"], req["path"], headers=req["headers"], data=req["data"],
                                            allow_redirects=False) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status >= 500:
                    failures.append(f"#{i} {who} {req['method']} {req['path'][:120]} {req['headers']} "
                                    f"{(req['data'] or b'')[:200]!r} -> {resp.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            failures.append(f"#{i} {who} {req['method']} {req['path'][:120]}: the client saw {exc!r}")

    for start in range(0, REQUESTS, CONCURRENCY):
        await asyncio.gather(*(one(i) for i in range(start, min(start + CONCURRENCY, REQUESTS))))
    tracebacks = [f"{r.name} {r.levelname}: {r.getMessage()[:300]} {caplog.handler.format(r)[-600:] if r.exc_info else ''}"
                  for r in caplog.records if r.exc_info or "Traceback" in r.getMessage() or r.levelno >= logging.ERROR]
    assert not failures and not tracebacks, (
        f"{len(failures)} of {REQUESTS} failed; first ones:\n" + "\n".join(failures[:8])
        + f"\n{len(tracebacks)} error log records; first ones:\n" + "\n".join(tracebacks[:5]))
    print("statuses:", dict(sorted(statuses.items())))
    assert sum(statuses.values()) == REQUESTS, statuses
    assert statuses.get(200, 0) > REQUESTS // 10 and sum(n for s, n in statuses.items() if 400 <= s < 500) > REQUESTS // 10, statuses


# -- the cases the fuzzer first found, each on its own --------------------------------------------

@pytest.fixture
async def school_client(tmp_path, aiohttp_client):
    built = build_school(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "mme.a")
    return client, built.ids


@pytest.mark.parametrize("ctype, body, reason", [
    ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n", "body"),
    ("application/x-www-form-urlencoded; charset=x-unknown", b"a=1", "charset"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"last_name\"; "
                                        b"filename=\"a.txt\"\r\n\r\nMartin\r\n--x--\r\n", "body"),
    ("multipart/form-data; boundary=xyz", b"", "body"),  # no body at all: body_exists is False, post() still parses
])
async def test_unreadable_forms_get_a_400_page_in_french(school_client, caplog, ctype, body, reason):
    client, ids = school_client
    resp = await client.post(f"/classes/{ids['class_a']}/pupils", data=body, headers={"Content-Type": ctype})
    assert resp.status == 400
    page = await resp.text()
    assert resp.content_type == "text/html" and '<html lang="fr">' in page
    expected = {"body": "Le formulaire envoyé est illisible (données mal formées) : rechargez la page et recommencez.",
                "charset": "Préau ne lit pas le jeu de caractères de cette requête : envoyez-la en UTF-8."}[reason]
    assert expected in page
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_body_over_the_limit_is_a_413_page_in_french_saying_which_file_to_choose(school_client, caplog):
    """A spreadsheet or a photo chosen instead of the CSV list: aiohttp answered in English plain text
    ('Maximum request body size 1048576 exceeded.'); the person reads what to do, in French first."""
    client, ids = school_client
    caplog.set_level(logging.INFO)
    token = await _token(client, f"/classes/{ids['class_a']}")
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", io.BytesIO(b"PK\x03\x04" + bytes(2 << 20)), filename="classe.xlsx",
                   content_type="application/vnd.ms-excel")
    resp = await client.post(f"/classes/{ids['class_a']}/import", data=form)
    page = await resp.text()
    assert resp.status == 413 and resp.content_type == "text/html" and '<html lang="fr">' in page, page[:300]
    assert "Ce que vous avez envoyé est trop gros (plus de 1 Mo) : rien n&#x27;a été enregistré" in page, page
    assert "pas un classeur Excel" in page
    body = f"csrf_token={token}&last_name={'x' * (2 << 20)}".encode()
    resp = await client.post(f"/classes/{ids['class_a']}/pupils?lang=en", data=io.BytesIO(body),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 413 and "What you sent is too large (over 1 MB)" in await resp.text()
    path = f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/exercises/{ids['exercise']}/row"
    resp = await client.post(path, data=io.BytesIO(b'"' + b"a" * (2 << 20) + b'"'), headers={
        "Content-Type": "application/json", "X-CSRF-Token": token, "Accept": "application/json"})
    body = await resp.json()
    assert resp.status == 413 and body["code"] == "too_large" and "trop gros" in body["error"], body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.name.startswith("preau") and ids["class_a"] in r.getMessage()]  # patterns


async def test_deeply_nested_json_on_a_row_save_is_a_400_not_a_recursion_error(school_client, caplog):
    client, ids = school_client
    token = await _token(client, "/classes")
    path = f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/exercises/{ids['exercise']}/row"
    resp = await client.post(path, data=b"[" * 100_000, headers={"Content-Type": "application/json",
                                                                  "X-CSRF-Token": token, "Accept": "application/json"})
    assert resp.status == 400
    assert (await resp.json()) == {"ok": False, "code": "bad_request", "status": 400,
                                   "error": "Le JSON envoyé est trop imbriqué (32 niveaux au plus) : rechargez la page "
                                            "et recommencez."}
    resp = await client.post(path + "?lang=en", data=b'{"a":' * 40 + b"1" + b"}" * 40,
                             headers={"Content-Type": "application/json", "X-CSRF-Token": token})
    assert resp.status == 400 and "nested too deeply" in (await resp.json())["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_over_long_header_is_a_400_logged_without_a_traceback(school_client, caplog):
    client, _ = school_client
    caplog.set_level(logging.INFO)
    resp = await client.get("/classes", headers={"X-Long": "a" * 20_000})
    assert resp.status == 400
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert records and all(r.levelno == logging.INFO and r.exc_info is None for r in records), records
    assert records[0].getMessage().startswith("refused a malformed request from 127.0.0.1: ")


def test_json_depth_skips_strings():
    from preau.node.faults import json_depth

    assert json_depth(b'{"a": 1}') == 0  # few brackets: not even scanned
    assert json_depth(b'{"a": "' + b"[" * 40 + b'"}') == 1  # brackets inside a string do not count
    assert json_depth(b'["' + b"[" * 40 + b'"]') == 1
    assert json_depth(b"[" * 40) == 33  # stops counting past the limit
    assert json_depth(b'[{"a": [1, "\\"[", {}]}]' * 20) == 4
