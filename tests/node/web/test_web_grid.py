"""The grid parser, the fallback form, the save endpoint, the class profile and the server-drawn chart."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from node_fixtures import CLASSROOM_CAMPAIGN, build_district, grid_path, profile_path
from web_helpers import CSRF_RE, login
from preau.crdt.campaign import parse_campaign
from preau.node.web.charts import group_bars_svg
from preau.node.web.grid import EntryError, RowEntry, class_profile, grid_view, parse_grid_form, parse_row, parse_row_body, parse_row_json

CAMPAIGN = parse_campaign(CLASSROOM_CAMPAIGN)
WORDS = CAMPAIGN.exercise("fr-comprendre-mots")  # 10 items, thresholds 4 and 7
SYLLABES = CAMPAIGN.exercise("fr-syllabes")  # 6 items, no thresholds yet
TEXT = CAMPAIGN.exercise("fr-lire-texte")  # words per minute, max 250


# -- parsing ----------------------------------------------------------------------

def test_complete_row_is_scored_and_grouped():
    entry = parse_row(WORDS, "p01", ["1", "1", "0", "1", " 1 ", "0", "1", "1", "0", "1"])
    assert entry.score == 7 and entry.group(WORDS) == "seuil2"
    assert entry.cells(WORDS) == ["1", "1", "0", "1", "1", "0", "1", "1", "0", "1"]


def test_partial_row_has_no_score_yet():
    entry = parse_row(WORDS, "p01", ["1", "", "0"] + [""] * 7)
    assert entry.score is None and entry.group(WORDS) is None and not entry.empty


def test_an_a_anywhere_marks_the_pupil_absent():
    entry = parse_row(WORDS, "p01", ["1", "A"] + [""] * 8)
    assert entry.absent and entry.group(WORDS) == "absent" and entry.cells(WORDS) == ["a"] * 10


def test_no_thresholds_means_no_group():
    assert parse_row(SYLLABES, "p01", ["1"] * 6).group(SYLLABES) is None


@pytest.mark.parametrize("cells,key,message", [
    (["2"] + [""] * 9, "entry.bad_item", "Case 1 : tapez 1, 0 ou a (absent)."),
    ([""] * 9, "entry.bad_shape", "Ligne incomplète : elle doit avoir 10 case(s). Rechargez la page."),
    ([1] + [""] * 9, "entry.bad_item", "Case 1 : tapez 1, 0 ou a (absent)."),
])
def test_bad_item_rows_are_refused_with_a_message(cells, key, message):
    with pytest.raises(EntryError) as info:
        parse_row(WORDS, "p01", cells)
    assert info.value.key == key and info.value.message("fr") == message


@pytest.mark.parametrize("value,score,absent", [("42", 42, False), ("0", 0, False), ("a", None, True), ("", None, False)])
def test_timed_exercise_takes_a_number(value, score, absent):
    entry = parse_row(TEXT, "p01", [value])
    assert (entry.score, entry.absent) == (score, absent)


@pytest.mark.parametrize("value", ["251", "-1", "4.5", "12a", "99999"])
def test_timed_exercise_refuses_out_of_range(value):
    with pytest.raises(EntryError) as info:
        parse_row(TEXT, "p01", [value])
    assert info.value.message("en") == "Type a whole number from 0 to 250, or a (absent)."


@pytest.mark.parametrize("payload", [None, [], {"cells": ["1"] * 10}, {"pupil": "../x", "cells": ["1"] * 10},
                                     {"pupil": "p01", "cells": "1111111111"}])
def test_malformed_json_rows_are_refused(payload):
    with pytest.raises(EntryError):
        parse_row_json(WORDS, payload)


@pytest.mark.parametrize("raw,charset", [(b"{", None), (b'{"pupil": "p\xe9"}', None), (b"\xff\xfe", "utf-16"),
                                         (b"", None)])
def test_a_body_that_is_not_json_is_refused_like_a_malformed_row(raw, charset):
    with pytest.raises(EntryError) as info:
        parse_row_body(WORDS, raw, charset)
    assert info.value.key == "entry.bad_shape"
    body = json.dumps({"pupil": "p01", "cells": ["1"] * 10}, ensure_ascii=False)
    assert parse_row_body(WORDS, body.encode()).pupil_id == parse_row_json(WORDS, json.loads(body)).pupil_id == "p01"


def test_fallback_form_checks_every_row_first():
    form = {f"c-p01-{i}": "1" for i in range(10)} | {"c-p02-3": "x"}
    with pytest.raises(EntryError):
        parse_grid_form(WORDS, ["p01", "p02"], form)
    rows = parse_grid_form(WORDS, ["p01", "p02"], {f"c-p01-{i}": "1" for i in range(10)})
    assert rows[0].score == 10 and rows[1].empty


def test_grid_view_round_trips_saved_rows():
    saved = {"p01": parse_row(WORDS, "p01", ["1"] * 10)}
    view = grid_view(WORDS, [("p01", "Lucie"), ("p02", "Noah")], saved, save_url="/s", form_action="/f", lang="fr")
    assert view.columns == tuple(str(i) for i in range(1, 11))
    assert view.rows[0].cells == ("1",) * 10 and view.rows[0].score_text == "10/10" and view.rows[0].group == "seuil2"
    assert view.rows[1].cells == ("",) * 10 and view.rows[1].score_text == ""


def test_class_profile_puts_each_pupil_in_one_group():
    pupils = [("p1", "A"), ("p2", "B"), ("p3", "C"), ("p4", "D"), ("p5", "E")]
    rows = {
        "p1": parse_row(WORDS, "p1", ["1"] * 3 + ["0"] * 7),  # 3 < 4: besoin
        "p2": parse_row(WORDS, "p2", ["1"] * 5 + ["0"] * 5),  # fragile
        "p3": parse_row(WORDS, "p3", ["1"] * 10),  # seuil2
        "p4": RowEntry("p4", absent=True),
    }
    words = class_profile(CAMPAIGN, pupils, {WORDS.id: rows})[0]
    assert dict(words.groups) == {"besoin": ("A",), "fragile": ("B",), "seuil2": ("C",), "absent": ("D",)}
    assert words.missing == ("E",)


# -- endpoints --------------------------------------------------------------------

async def _token(client, path="/classes") -> str:
    return CSRF_RE.search(await (await client.get(path)).text()).group(1)


async def test_row_save_then_reload_shows_the_values(client, ids):
    await login(client)
    token = await _token(client)
    url = grid_path(ids, "cp-a", "fr-comprendre-mots")
    resp = await client.post(url + "/row", json={"pupil": ids["p02"], "cells": ["1", "0"] * 5},
                             headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert await resp.json() == {"ok": True, "score_text": "5/10", "group": "fragile", "group_label": "Fragile"}
    html = await (await client.get(url)).text()
    assert f'name="c-{ids["p02"]}-0" value="1"' in html and f'name="c-{ids["p02"]}-1" value="0"' in html
    assert "Inès &lt;b&gt;Petit&lt;/b&gt;" in html and "<b>Petit" not in html  # names are escaped


async def test_row_save_refuses_bad_values_with_a_message_and_keeps_nothing(client, ids):
    await login(client)
    token = await _token(client)
    url = grid_path(ids, "cp-a", "fr-comprendre-mots")
    resp = await client.post(url + "/row", json={"pupil": ids["p02"], "cells": ["7"] + [""] * 9},
                             headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert resp.status == 400
    assert await resp.json() == {"ok": False, "error": "Case 1 : tapez 1, 0 ou a (absent).", "status": 400}
    resp = await client.post(url + "/row", json={"pupil": ids["p11"], "cells": ["1"] * 10},
                             headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert resp.status == 400  # a pupil of another class
    assert 'value="7"' not in await (await client.get(url)).text()
    resp = await client.post(url + "/row", data=b'{"pupil": "%s", "cells": [' % ids["p02"].encode(),
                             headers={"X-CSRF-Token": token, "Accept": "application/json", "Content-Type": "application/json"})
    assert resp.status == 400  # not JSON at all
    assert (await resp.json())["error"].startswith("Ligne incomplète : elle doit avoir 10 case(s).")


async def test_fallback_form_saves_the_whole_table(client, ids):
    await login(client)
    url = grid_path(ids, "cp-a", "fr-lire-texte")
    token = await _token(client, url)
    p01, p02, p03, p04 = (ids[p] for p in ("p01", "p02", "p03", "p04"))
    resp = await client.post(url, data={"csrf_token": token, f"c-{p01}-0": "38", f"c-{p02}-0": "a", f"c-{p03}-0": "",
                                        f"c-{p04}-0": "61"})
    html = await resp.text()
    assert resp.status == 200 and "Résultats enregistrés." in html
    assert f'name="c-{p01}-0" value="38"' in html and f'name="c-{p02}-0" value="a"' in html
    resp = await client.post(url, data={"csrf_token": token, f"c-{p01}-0": "900"})
    assert resp.status == 400 and "Tapez un nombre entier de 0 à 250" in await resp.text()
    assert f'name="c-{p01}-0" value="38"' in await (await client.get(url)).text()  # nothing changed


async def test_profile_and_chart_pages_render(client, ids):
    await login(client)
    html = await (await client.get(profile_path(ids, "cp-a"))).text()
    assert "Profil de la classe CP A" in html and 'scope="row"' in html and "<caption>" in html


async def test_chart_page_escapes_and_labels(aiohttp_client, tmp_path):
    """A district's statistics page: an exercise whose name holds markup, one with no counts yet."""
    import aiohttp

    from node_fixtures import CAMPAIGN_TOML, login as login_as
    from preau.crdt.campaign import Policy
    from preau.crdt.documents import ReleaseContent, Row
    from preau.node.app import create_app
    from preau.node.federation.store import FedStore
    from preau.node.runtime import FEDERATION_DB

    built = build_district(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    await login_as(client, "ien")
    toml = CAMPAIGN_TOML.replace('name = "Comprendre des mots lus par l\'enseignant"', 'name = "Exercice <script>"')
    form = aiohttp.FormData({"csrf_token": CSRF_RE.search(await (await client.get("/district/campaigns")).text()).group(1)})
    form.add_field("file", toml.encode(), filename="debut.toml")
    assert (await client.post("/district/campaigns", data=form)).status == 200
    fed = FedStore(tmp_path / "district" / FEDERATION_DB)
    fed.add_peer("a1" * 32, node_id="N0751234J", role="school", uai="0751234J", name="École des Tilleuls")
    rows = (Row.from_counts("fr-mots", {"besoin": 3, "fragile": 5, "seuil2": 40, "absent": 1, "pending": 0}),
            Row.from_counts("fr-lire-texte", {"besoin": 0, "fragile": 0, "seuil2": 0, "absent": 0, "pending": 0}))
    content = ReleaseContent("2026-test-cp", 1, "published", "", Policy(), rows, 49)
    with fed.transaction() as conn:
        fed._put_stats_entry(conn, "2026-test-cp", "a1" * 32,
                             {"release": 1, "time": 1_790_000_000, "heads": "00" * 32, "content": content.to_dict()}, [])
    fed.close()
    html = await (await client.get("/district/stats/2026-test-cp?lang=en")).text()
    assert "Exercice &lt;script&gt;" in html and "<script>" not in html
    assert "Needs support" in html and "no data" in html


# -- chart -------------------------------------------------------------------------

def test_chart_is_wellformed_svg_with_text_figures():
    svg = str(group_bars_svg([("Mots <&>", {"besoin": 1, "fragile": 1, "seuil2": 2}), ("Vide", {})],
                             lang="fr", title='Titre "x"'))
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.get("role") == "img" and root.get("aria-label") == 'Titre "x"'
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "25 %" in texts and "50 %" in texts and any("Mots <&>" in t for t in texts) and "aucune donnée" in texts
    widths = [r.get("width") for r in root.iter("{http://www.w3.org/2000/svg}rect")]
    assert widths == ["25.00%", "25.00%", "50.00%"]  # of the chart's width, whatever the screen's
    assert "style=" not in svg  # the CSP allows no inline style


def test_a_row_with_a_hidden_part_says_so_instead_of_no_data():
    """At an académie a row some district hid a cell of has no exact shares: the chart says why, not "no data"."""
    root = ET.fromstring(str(group_bars_svg([("Mots", None), ("Vide", {})], lang="fr", title="t")))
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any(t.startswith("taux non calculés") for t in texts) and "aucune donnée" in texts
    assert not list(root.iter("{http://www.w3.org/2000/svg}rect"))


def test_a_label_on_two_lines_reads_as_its_words():
    """Copied, searched or read aloud, a wrapped label keeps the space between its lines."""
    label = "Comprendre des phrases lues par l'enseignant"
    root = ET.fromstring(str(group_bars_svg([(label, {"besoin": 1, "fragile": 1, "seuil2": 2})], lang="fr", title="t")))
    [text] = [t for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "chart-label"]
    assert len(list(text.iter("{http://www.w3.org/2000/svg}tspan"))) == 2
    assert " ".join("".join(text.itertext()).split()).startswith(label)  # the title (tooltip) follows
    assert "parl'enseignant" not in "".join(text.itertext())


async def test_a_full_class_grid_stays_light(aiohttp_client):
    """25 pupils by 15 items: the page an old PC must draw. Weight: HTML plus its CSS and script."""
    from aiohttp import web

    from preau.crdt.campaign import parse_exercise
    from preau.node.web import Principal, login_required, render, setup_web
    from preau.node.web.render import STATIC

    exercise = parse_exercise({"id": "mots", "name": "Comprendre des mots lus par l'enseignant", "subject": "français",
                               "score_kind": "items", "items": 15, "max_score": 15, "thresholds": [6, 10]}, "ex")
    pupils = [(f"p{i:02d}", f"Prénom{i} Nomdefamille{i}") for i in range(25)]
    saved = {p: parse_row(exercise, p, ["1", "0", "1"] * 5) for p, _ in pupils}

    @login_required()
    async def page(request):
        view = grid_view(exercise, pupils, saved, save_url="/s", form_action="/f", lang="fr")
        return await render(request, "grid.html", {"klass": {"name": "CP A"}, "campaign": CAMPAIGN, "exercise": exercise,
                                                    "grid": view, "back_url": "/", "notice": None, "errors": []})

    app = web.Application()
    setup_web(app, authenticate=lambda username, password: Principal(username, "teacher", username))
    app.router.add_get("/grid", page)
    client = await aiohttp_client(app)
    await login(client)
    html = await (await client.get("/grid")).read()
    assets = sum((STATIC / name).stat().st_size for name in ("preau.css", "grid.js", "favicon.svg"))
    print(f"25x15 grid page: HTML {len(html)} bytes + assets {assets} bytes = {len(html) + assets} bytes")
    assert html.count(b"<input name=") == 25 * 15
    assert len(html) + assets < 80_000
