"""District statistics an inspector acts on (issue 15): schools by name, the per-school table and its CSV,
progress across a cohort, one definition of a percentage, "no data yet" pages, the printable report."""
from __future__ import annotations

import csv
import html
import io
import random
import re
import xml.etree.ElementTree as ET

import pytest

from node_fixtures import CAMPAIGN_TOML, build_district, campaign, free_port, login
from preau.crdt.campaign import Policy
from preau.crdt.documents import ReleaseContent, Row
from preau.crdt.schema import COLUMNS
from preau.crdt.statistics import percent_of
from preau.node import actions
from preau.node.app import create_app
from preau.node.campaign_file import parse_campaign_bytes
from preau.node.federation.store import FedStore
from preau.node.runtime import FEDERATION_DB

MI_CP_TOML = CAMPAIGN_TOML.replace('id = "2026-test-cp"', 'id = "2027-test-mi-cp"').replace(
    'name = "Début de CP (test)"', 'name = "Point d\'étape CP (test)"').replace("opens = 2026-09-01", "opens = 2027-01-11")
SCHOOLS = [  # key, UAI, name, town
    ("a1" * 32, "0751234J", "École des Tilleuls", "Paris"),
    ("b2" * 32, "0751235K", "=HYPERLINK(\"http://x\")", "Lyon"),  # a name a spreadsheet must not run
    ("c3" * 32, "0751236L", "École du Port", "Brest"),
    ("d4" * 32, "0751237M", "École de Hameau", "Aubrac"),  # withheld: too few pupils
]
SVG = "{http://www.w3.org/2000/svg}"


def _content(campaign_id, counts, *, status="published"):
    rows = tuple(Row.from_counts(ex, dict(zip(COLUMNS, cells))) for ex, cells in counts.items())
    if status != "published":
        return ReleaseContent(campaign_id, 1, "withheld", "small_cohort", Policy())
    return ReleaseContent(campaign_id, 1, "published", "", Policy(), rows, 30)


def _generated(seed):
    rng = random.Random(seed)
    return {key: {ex: (rng.randint(0, 9), rng.randint(0, 9), rng.randint(3, 20), rng.randint(0, 3), 0)
                  for ex in ("fr-mots", "fr-lire-texte")} for key, *_ in SCHOOLS[:3]}


def prepare(tmp_path, port):
    """A district with three campaigns (two of one cohort, one without releases), four named schools and their
    statistics entries (three published, one withheld); returns (settings, début CP, mi-CP, generated counts)."""
    built = build_district(tmp_path, port=port)
    debut = campaign()
    mi = parse_campaign_bytes(MI_CP_TOML.encode(), "mi.toml")
    empty = parse_campaign_bytes(CAMPAIGN_TOML.replace('id = "2026-test-cp"', 'id = "2026-vide"').encode(), "v.toml")
    for c in (debut, mi, empty):
        actions.load_campaign(built.settings, campaign=c, file="x")
    truth = {debut.id: _generated(1), mi.id: _generated(2)}
    fed = FedStore(tmp_path / "district" / FEDERATION_DB)
    for key, uai, name, town in SCHOOLS:
        fed.add_peer(key, node_id=f"N{uai}", role="school", uai=uai, name=name, town=town)
    with fed.transaction() as conn:
        for cid, per_school in truth.items():
            for key, counts in per_school.items():
                entry = {"release": 1, "time": 1_790_000_000, "heads": "00" * 32, "content": _content(cid, counts).to_dict()}
                fed._put_stats_entry(conn, cid, key, entry, [])
            withheld = _content(cid, {}, status="withheld")
            fed._put_stats_entry(conn, cid, SCHOOLS[3][0], {"release": 1, "time": 1_790_000_000, "heads": "00" * 32,
                                                           "content": withheld.to_dict()}, [])
    fed.close()
    return built.settings, debut, mi, truth


@pytest.fixture
async def world(tmp_path, aiohttp_server, aiohttp_client):
    port = free_port()
    settings, debut, mi, truth = prepare(tmp_path, port)
    server = await aiohttp_server(create_app(settings), host="127.0.0.1", port=port)
    client = await aiohttp_client(server)
    await login(client, "ien")
    return client, debut, mi, truth


async def test_a_campaign_without_releases_shows_no_data_yet_not_a_404(world):
    client, *_ = world
    for path in ("/district/stats/2026-vide", "/district/stats/2026-vide/ecoles", "/district/stats/2026-vide/rapport",
                 "/district/stats/2026-vide.csv", "/district/stats/2026-vide/ecoles.csv"):
        resp = await client.get(path)
        text = await resp.text()
        assert resp.status == 200, (path, resp.status)
        assert 'id="no-data"' in text and "Pas encore de données" in text, path


async def test_chart_and_table_give_the_same_percentage_for_every_cell(world):
    client, debut, _, truth = world
    page = await (await client.get(f"/district/stats/{debut.id}")).text()
    svg = re.search(r"<svg class=\"chart\".*?</svg>", page, re.S).group(0)
    chart = {}
    for r in ET.fromstring(svg).iter(f"{SVG}rect"):  # each bar segment's tooltip says "Groupe : count (N %)"; its row is by its y
        group = r.get("class")[2:]
        shown = int(re.search(r"\((\d+) %\)", "".join(r.itertext())).group(1))
        chart[(r.get("y"), group)] = shown
    rows_y = sorted({y for y, _ in chart}, key=float)  # one bar per exercise, top to bottom
    table = re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1)
    checked = 0
    for index, ex in enumerate(debut.exercises):
        row = re.findall(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", table, re.S)[index]
        assert html.unescape(row[0]) == ex.name
        cells = dict(re.findall(r'data-share="(\w+)">(\d+) %', row[1]))
        counts = [sum(truth[debut.id][k][ex.id][i] for k in truth[debut.id]) for i in range(5)]
        assessed = sum(counts[:3])
        y = rows_y[index]
        for i, g in enumerate(("besoin", "fragile", "seuil2")):
            want = percent_of(counts[i], assessed)  # share of assessed pupils: absent pupils excluded
            assert int(cells[g]) == want, (ex.id, g)
            if counts[i]:
                assert chart[(y, g)] == want, (ex.id, g)
                checked += 1
    assert checked >= 5
    assert "parts des élèves évalués à l'exercice (les absents" in html.unescape(page)  # the definition, stated


async def test_schools_are_shown_by_name_and_town(world):
    client, *_ = world
    page = html.unescape(await (await client.get("/district/schools")).text())
    for _, uai, name, town in SCHOOLS:
        assert f"{name}, {town}" in page and uai in page


async def test_the_per_school_table_sorts_filters_and_exports_for_a_french_spreadsheet(world):
    client, debut, _, truth = world
    base = f"/district/stats/{debut.id}/ecoles"
    page = html.unescape(await (await client.get(base + "?tri=besoin&ordre=desc")).text())
    assert "École des Tilleuls" in page and "Paris" in page and "0751234J" in page
    assert "retenue : effectif trop petit" in page  # the withheld school, with no figures
    assert 'id="masked-note"' not in page  # no school hid a cell here: no note about hidden cells

    # Sorted by the share "à besoin", highest first; rows are (school, exercise).
    shown = [int(v) for v in re.findall(r'heat-besoin-\d"[^>]*>(\d+) %', page)]
    assert shown == sorted(shown, reverse=True) and len(shown) == 6
    expected = sorted((percent_of(c[0], sum(c[:3])) for k in truth[debut.id] for c in truth[debut.id][k].values()),
                      reverse=True)
    assert shown == expected
    ascending = html.unescape(await (await client.get(base + "?tri=besoin&ordre=asc")).text())
    assert [int(v) for v in re.findall(r'heat-besoin-\d"[^>]*>(\d+) %', ascending)] == sorted(shown)

    maths = html.unescape(await (await client.get(base + "?domaine=mathématiques")).text())
    assert "Comprendre des mots" not in maths and "heat-besoin" not in maths  # no French exercise row left
    assert 'aria-current="true">mathématiques' in maths

    resp = await client.get(base + ".csv?tri=besoin&ordre=desc")
    raw = await resp.read()
    assert resp.headers["Content-Type"].startswith("text/csv") and raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    header = rows[0]
    assert header[:3] == ["UAI", "école", "commune"] and "à besoin (% des élèves évalués, absents exclus)" in header
    body = rows[1:]
    assert len(body) == 7  # 3 schools x 2 exercises, and the withheld school
    assert any(r[1] == "'=HYPERLINK(\"http://x\")" for r in body)  # the formula stays text
    assert not any(cell.startswith(("=", "+", "@")) for r in body for cell in r)
    besoin = header.index("à besoin (% des élèves évalués, absents exclus)")
    assert [int(r[besoin]) for r in body if r[besoin]] == expected
    assert body[-1][0] == "0751237M" and body[-1][besoin] == "" and "retenue" in body[-1][-1]


async def test_progress_shows_the_district_and_one_school_with_the_right_differences(world):
    client, debut, mi, truth = world
    page = html.unescape(await (await client.get("/district/progress")).text())
    assert "Début de CP (test)" in page and "Point d'étape CP (test)" in page and "<svg" in page

    def change(counts_by_school, ex, i):
        before = [sum(truth[debut.id][k][ex][j] for k in counts_by_school) for j in range(5)]
        after = [sum(truth[mi.id][k][ex][j] for k in counts_by_school) for j in range(5)]
        return percent_of(after[i], sum(after[:3])) - percent_of(before[i], sum(before[:3]))

    def changes(text, key):
        row = re.search(rf'data-key="{key}">(.*?)</tr>', text, re.S).group(1)
        return {g: re.search(rf'data-group="{g}">([^<]*)<', row).group(1) for g in ("besoin", "seuil2")}

    def fmt(d):
        return f"+{d} pt" if d > 0 else f"{d} pt"

    got = changes(page, "fr-mots")
    schools = list(truth[debut.id])
    assert got == {"besoin": fmt(change(schools, "fr-mots", 0)), "seuil2": fmt(change(schools, "fr-mots", 2))}

    one = SCHOOLS[0][0]
    page = html.unescape(await (await client.get(f"/district/progress?member={one}")).text())
    assert "École des Tilleuls, Paris" in page
    got = changes(page, "fr-mots")
    assert got == {"besoin": fmt(change([one], "fr-mots", 0)), "seuil2": fmt(change([one], "fr-mots", 2))}


async def test_the_printable_report_holds_the_summary_chart_and_per_school_table(world):
    client, debut, *_ = world
    page = html.unescape(await (await client.get(f"/district/stats/{debut.id}/rapport")).text())
    assert "Rapport de la circonscription" in page and "<svg" in page and "École du Port" in page
    # printed for a meeting, it names the district as people do (it gave the node's key fingerprint)
    assert re.search(r"<p>Circonscription Paris 5 — \d\d/\d\d/\d{4} \d\d:\d\d</p>", page), page[:2000]
    assert "print.js" in page and "data-print" in page
    css = await (await client.get(re.search(r'href="(/static/preau\.css[^"]*)"', page).group(1))).text()
    assert "size: A4 portrait" in css and ".report { page: report; }" in css


async def test_the_per_member_api_gives_each_school_its_published_cells_and_name(world):
    client, debut, _, truth = world
    got = await (await client.get(f"/v1/stats/{debut.id}/members")).json()
    members = {m["member"]: m for m in got["members"]}
    assert got["share_basis"] == "assessed" and len(members) == 4
    for key, uai, name, town in SCHOOLS[:3]:
        m = members[key]
        assert (m["uai"], m["name"], m["town"], m["status"]) == (uai, name, town, "published")
        for ex, cells in truth[debut.id][key].items():
            assert [m["exercises"][ex][c] for c in COLUMNS] == list(cells)
    assert members[SCHOOLS[3][0]]["status"] == "withheld" and members[SCHOOLS[3][0]]["exercises"] == {}
    assert (await client.get("/v1/stats/2026-vide/members")).status == 404


async def test_at_an_academie_the_table_is_per_district_and_a_hidden_cell_has_no_share(tmp_path, aiohttp_server,
                                                                                         aiohttp_client):
    port = free_port()
    built = build_district(tmp_path, port=port)
    debut = campaign()
    actions.load_campaign(built.settings, campaign=debut, file="x")
    fed = FedStore(tmp_path / "district" / FEDERATION_DB)
    rows = {"1" * 64: {"fr-mots": (12, 20, 80, 11, 0)}, "2" * 64: {"fr-mots": ("≤10", 14, 60, "x", 0)}}
    with fed.transaction() as conn:
        for n, (key, cells) in enumerate(rows.items(), start=1):
            fed.add_peer(key, node_id=f"D{n}", role="child", uai=f"069000{n}A", name=f"Circonscription {n}", town="Lyon")
            row = Row("fr-mots", cells["fr-mots"], "x" if any(isinstance(c, str) for c in cells["fr-mots"]) else
                      sum(cells["fr-mots"]))
            content = ReleaseContent(debut.id, 1, "published", "", Policy(), (row,), 100, scope="district",
                                     schools_contributing=5, schools_withheld=0)
            fed._put_stats_entry(conn, debut.id, key, {"release": 1, "time": 1_790_000_000, "heads": "00" * 32,
                                                       "content": content.to_dict()}, [])
    fed.close()
    client = await aiohttp_client(await aiohttp_server(create_app(built.settings), host="127.0.0.1", port=port))
    await login(client, "ien")
    page = html.unescape(await (await client.get(f"/district/stats/{debut.id}/ecoles")).text())
    assert "Résultats par circonscription" in page and "Circonscription 1" in page and "Circonscription 2" in page
    first = page.split("Circonscription 1", 1)[1].split("</tr>", 1)[0]
    second = page.split("Circonscription 2", 1)[1].split("</tr>", 1)[0]
    assert f">{percent_of(80, 112)} %<" in first
    assert " %<" not in second and "—" in second  # "≤10" à besoin: no share can be given, none is guessed
    # and the "—" is said under the table: an inspector is not left guessing why a district has no share
    assert 'id="masked-note"' in page and "règle des petits effectifs" in page
