"""A small aiohttp app for the web layer's tests: the real middlewares and templates over fake in-memory data.

It stands in for the node app until storage lands: two classes, one campaign
(an items exercise with thresholds, one without, and a timed one), three
accounts. Handlers show how the node app is expected to use the web layer.
"""
from __future__ import annotations

import pathlib
from typing import Callable

from aiohttp import web

from preau.crdt.campaign import parse_campaign
from preau.node.web import NavItem, Principal, WebConfig, login_required, refusal, render, require_class, setup_web
from preau.node.web.charts import group_bars_svg
from preau.node.web.grid import EntryError, RowEntry, class_profile, grid_view, parse_grid_form, parse_row_body, saved_reply
from preau.node.i18n import translate
from preau.node.web.security import current_principal, public, request_language

PASSWORD = "correct horse"
TEMPLATES = pathlib.Path(__file__).resolve().parent / "templates"  # pages only this app shows

CAMPAIGN = parse_campaign({
    "id": "2026-debut-cp", "name": "Début de CP", "level": "CP", "school_year": "2026-2027",
    "opens": "2026-09-01", "closes": "2026-09-30", "illustrative": True,
    "exercises": [
        {"id": "fr-comprendre-mots", "name": "Comprendre des mots lus par l'enseignant", "subject": "français",
         "score_kind": "items", "items": 10, "max_score": 10, "thresholds": [4, 7]},
        {"id": "fr-syllabes", "name": "Manipuler des syllabes", "subject": "français",
         "score_kind": "items", "items": 6, "max_score": 6},
        {"id": "fr-lire-texte", "name": "Lire à voix haute un texte", "subject": "français",
         "score_kind": "wpm", "max_score": 250, "thresholds": [20, 40]},
    ],
})

CLASSES = {
    "cp-a": {"name": "CP A", "level": "CP", "pupils": [
        ("p01", "Lucie Martin"), ("p02", "Noah Bernard"), ("p03", "Inès <b>Petit</b>"), ("p04", "Léo Durand")]},
    "cp-b": {"name": "CP B", "level": "CP", "pupils": [("p11", "Emma Leroy"), ("p12", "Adam Moreau")]},
}

USERS = {
    "mme.martin": Principal("mme.martin", "teacher", "Mme Martin", frozenset({"cp-a"})),
    "m.leroy": Principal("m.leroy", "teacher", "M. Leroy", frozenset({"cp-b"})),
    "direction": Principal("direction", "admin", "Direction", frozenset()),
    "ien": Principal("ien", "district", "Circonscription", frozenset()),
}

RESULTS: web.AppKey[dict] = web.AppKey("demo.results")


def authenticate(username: str, password: str) -> Principal | None:
    return USERS.get(username) if password == PASSWORD else None


def _home(principal: Principal) -> str:
    return {"teacher": "/classes", "admin": "/admin", "district": "/district"}[principal.role]


def _klass(request: web.Request) -> tuple[str, dict]:
    class_id = request.match_info["class_id"]
    if class_id not in CLASSES:
        raise web.HTTPNotFound()
    require_class(request, class_id)
    return class_id, CLASSES[class_id]


def _exercise(request: web.Request):
    try:
        return CAMPAIGN.exercise(request.match_info["exercise_id"])
    except Exception:
        raise web.HTTPNotFound() from None


@login_required(roles=("teacher",))
async def classes(request: web.Request) -> web.StreamResponse:
    principal = current_principal(request)
    assert principal is not None
    rows = []
    for class_id in sorted(principal.class_ids):
        k = CLASSES[class_id]
        rows.append({"name": k["name"], "level": k["level"], "pupils": len(k["pupils"]),
                     "profile_url": f"/classes/{class_id}/profile",
                     "exercises": [{"name": e.name, "url": f"/classes/{class_id}/grid/{e.id}"} for e in CAMPAIGN.exercises]})
    return await render(request, "classes.html", {"classes": rows, "campaign": CAMPAIGN})


async def _grid_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                     status: int = 200) -> web.StreamResponse:
    class_id, klass = _klass(request)
    exercise = _exercise(request)
    saved = request.app[RESULTS].get((class_id, exercise.id), {})
    base = f"/classes/{class_id}/grid/{exercise.id}"
    grid = grid_view(exercise, klass["pupils"], saved, save_url=base + "/row", form_action=base,
                     lang=request_language(request))
    return await render(request, "grid.html", {
        "klass": klass, "campaign": CAMPAIGN, "exercise": exercise, "grid": grid, "back_url": "/classes",
        "notice": notice, "errors": errors or [],
    }, status=status)


@login_required(roles=("teacher",))
async def grid_page(request: web.Request) -> web.StreamResponse:
    return await _grid_page(request)


@login_required(roles=("teacher",))
async def grid_form(request: web.Request) -> web.StreamResponse:
    """The no-JavaScript fallback: the whole table at once, all rows checked before any is kept."""
    class_id, klass = _klass(request)
    exercise = _exercise(request)
    form = await request.post()
    lang = request_language(request)
    try:
        rows = parse_grid_form(exercise, [p for p, _ in klass["pupils"]], form)
    except EntryError as exc:
        return await _grid_page(request, errors=[exc.message(lang)], status=400)
    store = request.app[RESULTS].setdefault((class_id, exercise.id), {})
    for row in rows:
        store[row.pupil_id] = row
    return await _grid_page(request, notice=translate(lang, "grid.saved_all"))


@login_required(roles=("teacher",))
async def save_row(request: web.Request) -> web.StreamResponse:
    class_id, klass = _klass(request)
    exercise = _exercise(request)
    lang = request_language(request)
    raw = await request.read()
    try:
        entry: RowEntry = parse_row_body(exercise, raw, request.charset)
        if entry.pupil_id not in {p for p, _ in klass["pupils"]}:
            raise EntryError("entry.bad_pupil")
    except EntryError as exc:
        return web.json_response({"ok": False, "error": exc.message(lang), "status": 400}, status=400)
    request.app[RESULTS].setdefault((class_id, exercise.id), {})[entry.pupil_id] = entry
    return web.json_response(saved_reply(exercise, entry, lang))


@login_required(roles=("teacher",))
async def profile(request: web.Request) -> web.StreamResponse:
    class_id, klass = _klass(request)
    entries = {ex_id: rows for (cid, ex_id), rows in request.app[RESULTS].items() if cid == class_id}
    return await render(request, "class_profile.html", {
        "klass": klass, "campaign": CAMPAIGN, "profile": class_profile(CAMPAIGN, klass["pupils"], entries),
        "back_url": "/classes"})


@login_required(roles=("district",))
async def district(request: web.Request) -> web.StreamResponse:
    rows = [(e.name, {"besoin": 3 + i, "fragile": 5, "seuil2": 40 - 3 * i, "absent": 1}) for i, e in enumerate(CAMPAIGN.exercises)]
    rows.append(("Exercice <script>", {}))
    lang = request_language(request)
    chart = group_bars_svg(rows, lang=lang, title=translate(lang, "chart.title", campaign=CAMPAIGN.name))
    return await render(request, "group_chart.html", {"campaign": CAMPAIGN, "chart": chart, "rows": rows})


@login_required(roles=("admin",))
async def admin(request: web.Request) -> web.StreamResponse:
    return web.Response(text="admin page")


@login_required(roles=("admin",))
async def admin_action(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


@public
async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/login")


async def boom(request: web.Request) -> web.StreamResponse:  # declares no access rule on purpose
    return web.Response(text="should never be served")


@public
async def crash(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("a bug")


@public
async def not_allowed(request: web.Request) -> web.StreamResponse:
    return await refusal(request, 403, "error.forbidden")


def create_demo_app(*, clock: Callable[[], float] | None = None, config: WebConfig | None = None) -> web.Application:
    app = web.Application()
    kwargs = {"clock": clock} if clock else {}
    setup_web(app, authenticate=authenticate, config=config or WebConfig(
        home=_home,
        nav=(NavItem("nav.classes", "/classes", frozenset({"teacher"})),
             NavItem("nav.admin", "/admin", frozenset({"admin"})),
             NavItem("nav.district", "/district", frozenset({"district"}))),
    ), template_dirs=[TEMPLATES], **kwargs)
    app[RESULTS] = {}
    r = app.router
    r.add_get("/", root)
    r.add_get("/classes", classes)
    r.add_get("/classes/{class_id}/grid/{exercise_id}", grid_page)
    r.add_post("/classes/{class_id}/grid/{exercise_id}", grid_form)
    r.add_post("/classes/{class_id}/grid/{exercise_id}/row", save_row)
    r.add_get("/classes/{class_id}/profile", profile)
    r.add_get("/district", district)
    r.add_get("/admin", admin)
    r.add_post("/admin/action", admin_action)
    r.add_get("/undeclared", boom)
    r.add_get("/crash", crash)
    return app


if __name__ == "__main__":  # python tests/node/web/demo_app.py: look at the pages by hand
    web.run_app(create_demo_app(), host="127.0.0.1", port=8089)
