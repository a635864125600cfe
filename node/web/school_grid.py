"""The result-entry grid of one exercise (JavaScript rows and the plain form), the class profile, the CSV export."""
from __future__ import annotations

from aiohttp import web

from .classroom import TEACHING, campaign_of, class_base, class_of, entries_of, entry_of, exercise_of, name_of, save_rows, to_input
from .context import on_db, t_
from .flash import see_other
from .grid import EntryError, class_profile, grid_view, parse_grid_form, parse_row_body, saved_reply
from .render import render
from .security import login_required, request_language


async def _grid_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                     status: int = 200) -> web.StreamResponse:
    store, s, c = class_of(request)
    campaign = campaign_of(store, s, request.match_info["campaign_id"], c)
    exercise = exercise_of(campaign, request.match_info["exercise_id"])
    pupils = [(p.id, name_of(p)) for p in store.list_pupils(s, c.id)]
    saved = entries_of(store.get_results(s, campaign.id, c.id)).get(exercise.id, {})
    base = f"{class_base(c)}/campaigns/{campaign.id}/exercises/{exercise.id}"
    grid = grid_view(exercise, pupils, saved, save_url=base + "/row", form_action=base, lang=request_language(request))
    return await render(request, "grid.html", {
        "klass": c, "campaign": campaign, "exercise": exercise, "grid": grid, "back_url": class_base(c),
        "notice": notice, "errors": errors or [], "page_url": base,
    }, status=status)


@login_required(roles=TEACHING)
async def grid_page(request: web.Request) -> web.StreamResponse:
    return await _grid_page(request)


@login_required(roles=TEACHING)
async def grid_form(request: web.Request) -> web.StreamResponse:
    """The no-JavaScript fallback: every row checked before any is saved, then one transaction."""
    store, s, c = class_of(request)
    campaign = campaign_of(store, s, request.match_info["campaign_id"], c)
    exercise = exercise_of(campaign, request.match_info["exercise_id"])
    form = await request.post()
    lang = request_language(request)
    pupils = store.list_pupils(s, c.id)
    try:
        rows = parse_grid_form(exercise, [p.id for p in pupils], form)
    except EntryError as exc:
        return await _grid_page(request, errors=[exc.message(lang)], status=400)
    saved = entries_of(store.get_results(s, campaign.id, c.id)).get(exercise.id, {})
    await on_db(request, save_rows, store, s, campaign, exercise, rows, saved)
    raise await see_other(request, request.path, notice=t_(request)("grid.saved_all"))


@login_required(roles=TEACHING)
async def save_row(request: web.Request) -> web.StreamResponse:
    """grid.js saves one row at a time: `{"pupil": id, "cells": [...]}`, answered once it is on disk."""
    store, s, c = class_of(request)
    campaign = campaign_of(store, s, request.match_info["campaign_id"], c)
    exercise = exercise_of(campaign, request.match_info["exercise_id"])
    lang = request_language(request)
    raw = await request.read()
    try:
        entry = parse_row_body(exercise, raw, request.charset)
        if not store.db.execute("SELECT 1 FROM pupils WHERE id = ? AND class_id = ?", [entry.pupil_id, c.id]).fetchone():
            raise EntryError("entry.bad_pupil")
    except EntryError as exc:
        return web.json_response({"ok": False, "error": exc.message(lang), "status": 400}, status=400)
    if entry.empty:
        saved = {r.pupil_id: entry_of(r) for r in store.get_results(s, campaign.id, c.id)
                 if r.exercise_id == exercise.id and r.pupil_id == entry.pupil_id}
        await on_db(request, save_rows, store, s, campaign, exercise, [entry], saved)
    else:
        await on_db(request, store.save_results, s, campaign.id, [to_input(entry, exercise)])
    return web.json_response(saved_reply(exercise, entry, lang))


@login_required(roles=TEACHING)
async def profile_page(request: web.Request) -> web.StreamResponse:
    store, s, c = class_of(request)
    campaign = campaign_of(store, s, request.match_info["campaign_id"], c)
    pupils = [(p.id, name_of(p)) for p in store.list_pupils(s, c.id)]
    entries = entries_of(store.get_results(s, campaign.id, c.id))
    return await render(request, "class_profile.html", {
        "klass": c, "campaign": campaign, "profile": class_profile(campaign, pupils, entries), "back_url": class_base(c)})


@login_required(roles=TEACHING)
async def export_csv(request: web.Request) -> web.StreamResponse:
    store, s, c = class_of(request)
    campaign = campaign_of(store, s, request.match_info["campaign_id"], c)
    text = store.export_results_csv(s, campaign.id, c.id, request_language(request))  # the page's language
    name = f"resultats-{campaign.id}.csv"  # no class or pupil name in the file name (it lands in download lists)
    return web.Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})



def add_routes(r: web.UrlDispatcher) -> None:
    g = "/classes/{class_id:[0-9a-f]{16}}/campaigns/{campaign_id:[a-z0-9-]{3,64}}"
    r.add_get(g + "/exercises/{exercise_id:[a-z0-9-]{3,64}}", grid_page)
    r.add_post(g + "/exercises/{exercise_id:[a-z0-9-]{3,64}}", grid_form)
    r.add_post(g + "/exercises/{exercise_id:[a-z0-9-]{3,64}}/row", save_row)
    r.add_get(g + "/profile", profile_page)
    r.add_get(g + "/export.csv", export_csv)
