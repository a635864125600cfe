"""School pages: teachers' classes and pupils (adding, importing, renaming, erasing); `add_routes` mounts every school page.

Every pupil page names the class by its opaque id and checks, on every
request and against the store (not the login-time snapshot), that the person
may open it (`classroom.class_of`); the store checks again with the keys
themselves. Pupil names travel only in page bodies and POST bodies, never in a
URL. The grid is in school_grid.py, the class reports (support groups, colour table,
parents' sheets) in class_reports.py, the
head teacher's pages in school_admin.py and school_sync.py.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from ..errors import UserError
from preau.node.records.classlist import ClassList, ClassListError, Known, compare, fold, read_class_list
from . import class_reports, school_admin, school_grid, school_sync
from .classroom import (
    ADMIN, TEACHING, campaigns_of, class_base, class_of, completion, entry_of, name_of, pupil_of,
)
from .context import form_text, on_db, refused, store_of, t_, unlocked
from .flash import see_other
from .grid import score_text
from .render import render
from .school_sync import sync_words
from .security import login_required, request_language

_MAX_UPLOAD = 512 * 1024


# -- teachers ---------------------------------------------------------------------------

@login_required(roles=TEACHING)
async def classes(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    rows = []
    for c in store.list_classes(s):
        rows.append({"info": c, "url": class_base(c), "pupils": len(store.list_pupils(s, c.id))})
    levels = {r["info"].level.casefold() for r in rows}
    received = store.list_campaigns(s)
    campaigns = [c for c in received if c.level.casefold() in levels or s.is_admin]
    # "none has arrived" only when none has: a teacher without a class of its level is told that instead
    return await render(request, "school_classes.html", {"classes": rows, "campaigns": campaigns,
                                                         "received": bool(received)})


async def _class_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                      status: int = 200, typed: dict[str, str] | None = None) -> web.StreamResponse:
    """`typed`: a refused pupil's names, put back in the form, whose « Nom » then has the cursor."""
    store, s, c = class_of(request)
    pupils = store.list_pupils(s, c.id)
    campaigns = campaigns_of(store, s, c)
    return await render(request, "class.html", {
        "klass": c, "base": class_base(c), "pupils": pupils, "campaigns": campaigns,
        "done": completion(store, s, c, campaigns),
        "notice": notice, "errors": errors or [], "page_url": class_base(c),
        "typed": typed or {}, "adding": True if typed else None,
    }, status=status)


@login_required(roles=TEACHING)
async def class_page(request: web.Request) -> web.StreamResponse:
    return await _class_page(request)


@login_required(roles=TEACHING)
async def add_pupil(request: web.Request) -> web.StreamResponse:
    store, s, c = class_of(request)
    form = await request.post()
    t = t_(request)
    last, first = form_text(form, "last_name"), form_text(form, "first_name")
    try:
        p = await on_db(request, store.add_pupil, s, c.id, last, first)
    except UserError as exc:
        return await _class_page(request, errors=[refused(request, exc)], status=exc.status,
                                 typed={"last_name": last, "first_name": first})
    # the next pupil is typed at once: the page puts the cursor back in « Nom » (`adding`)
    raise await see_other(request, class_base(c), notice=t("pupils.added", name=name_of(p)), shown={"adding": True})


def _class_list_problems(request: web.Request, exc: ClassListError) -> list[str]:
    t = t_(request)
    lines = []
    for p in exc.problems[:50]:
        params = dict(p.params)
        if "what" in params:
            params["what"] = t(f"what.{params['what']}")
        if "sep" in params:
            params["sep"] = str(params["sep"]).replace("\t", "⇥")
        text = t(p.key, **params)
        lines.append(t("pupils.import_line", line=p.line, problem=text[:1].upper() + text[1:]))
    return [t("pupils.import_failed", count=len(exc.problems)), *lines]


def _likely_class(listed: ClassList, c: Any) -> str | None:
    """The class of an ONDE file to offer first: the only one, or the one named like this class."""
    classes = listed.classes
    if len(classes) == 1:
        return classes[0].label
    for k in classes:
        if fold(k.label) == fold(c.name):
            return k.label
    return None


@login_required(roles=TEACHING)
async def import_pupils(request: web.Request) -> web.StreamResponse:
    """Read an ONDE extraction or a spreadsheet list, show what it would change, and change it once confirmed.

    The file travels back with the confirmation (base64 in the form), so nothing is kept on the server
    between the two steps and a reload of the review changes nothing.
    """
    store, s, c = class_of(request)
    t = t_(request)
    form = await request.post()
    upload = form.get("file")
    data = getattr(upload, "file", None)
    if data is not None:
        raw = data.read(_MAX_UPLOAD + 1)
    else:
        try:
            raw = base64.b64decode(form_text(form, "data", 4 * _MAX_UPLOAD // 3 + 8), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
    if not raw:
        return await _class_page(request, errors=[t("pupils.import_empty")], status=400)
    if len(raw) > _MAX_UPLOAD:
        return await _class_page(request, errors=[t("pupils.import_too_big")], status=400)
    try:
        listed = read_class_list(raw)
    except ClassListError as exc:
        return await _class_page(request, errors=_class_list_problems(request, exc), status=422)
    labels = [k.label for k in listed.classes]
    chosen = form_text(form, "class_label", 200) if "class_label" in form else _likely_class(listed, c)
    if listed.kind == "simple":
        chosen = ""
    errors = []
    if chosen is not None and chosen not in labels:
        errors.append(t("import.unknown_class", label=chosen))
        chosen = None
    known = [Known(p.id, p.last_name, p.first_name) for p in store.list_pupils(s, c.id)]
    comparison = compare(known, listed.of_class(chosen or None) if listed.kind == "onde" else listed.pupils) \
        if chosen is not None else None
    if form_text(form, "apply") == "yes" and comparison is not None and not errors:
        try:
            respell = comparison.respelled if form_text(form, "respell") == "yes" else []
            added, respelled = await on_db(request, _import, store, s, c.id, comparison.new, respell)
        except UserError as exc:
            return await _class_page(request, errors=[refused(request, exc)], status=exc.status)
        notice = t("import.done", added=len(added), respelled=respelled)
        if comparison.missing:
            notice += " " + t("import.done_missing", count=len(comparison.missing))
        raise await see_other(request, class_base(c), notice=notice)
    return await render(request, "class_import.html", {
        "klass": c, "base": class_base(c), "listed": listed, "chosen": chosen, "comparison": comparison,
        "data": base64.b64encode(raw).decode("ascii"), "errors": errors, "page_url": class_base(c)})


@login_required(roles=TEACHING)
async def rename_pupil(request: web.Request) -> web.StreamResponse:
    store, s, c = class_of(request)
    p = pupil_of(store, s, c, request.match_info["pupil_id"])
    form = await request.post()
    t = t_(request)
    typed = {"last_name": form_text(form, "last_name"), "first_name": form_text(form, "first_name")}
    try:
        new = await on_db(request, store.rename_pupil, s, p.id, typed["last_name"], typed["first_name"])
    except UserError as exc:  # the page shows the refusal with what was typed (kept in memory, never in the URL)
        raise await see_other(request, f"{class_base(c)}/pupils/{p.id}", errors=[refused(request, exc)],
                              shown={"typed": typed})
    raise await see_other(request, f"{class_base(c)}/pupils/{p.id}", notice=t("pupils.renamed", name=name_of(new)))


@login_required(roles=ADMIN)
async def erase_pupil_page(request: web.Request) -> web.StreamResponse:
    """The head teacher confirms: the pupil and every result are erased for good."""
    store, s, c = class_of(request)
    p = pupil_of(store, s, c, request.match_info["pupil_id"])
    counted = sum(1 for campaign in store.list_campaigns(s)
                  for r in store.get_results(s, campaign.id, c.id) if r.pupil_id == p.id)
    return await render(request, "pupil_erase.html", {"klass": c, "pupil": p, "name": name_of(p), "results": counted,
                                                      "back_url": f"{class_base(c)}/pupils/{p.id}"})


@login_required(roles=ADMIN)
async def erase_pupil(request: web.Request) -> web.StreamResponse:
    store, s, c = class_of(request)
    p = pupil_of(store, s, c, request.match_info["pupil_id"])
    form = await request.post()
    if form_text(form, "confirm") != "yes":
        raise await see_other(request, f"{class_base(c)}/pupils/{p.id}/erase")
    await on_db(request, store.erase_pupil, s, p.id)
    raise await see_other(request, class_base(c), notice=t_(request)("pupils.erased", name=name_of(p)))


@login_required(roles=TEACHING)
async def pupil_page(request: web.Request) -> web.StreamResponse:
    store, s, c = class_of(request)
    p = pupil_of(store, s, c, request.match_info["pupil_id"])
    lang = request_language(request)
    sections = []
    for campaign in campaigns_of(store, s, c):
        mine = {r.exercise_id: entry_of(r) for r in store.get_results(s, campaign.id, c.id) if r.pupil_id == p.id}
        rows = [{"exercise": ex, "score": score_text(ex, mine.get(ex.id), lang),
                 "group": mine[ex.id].group(ex) if ex.id in mine else None} for ex in campaign.exercises]
        sections.append({"campaign": campaign, "rows": rows})
    return await render(request, "pupil.html", {"klass": c, "pupil": p, "name": name_of(p), "sections": sections,
                                                "back_url": class_base(c), "base": class_base(c),
                                                "may_erase": s.is_admin, "typed": None})



def _import(store: Any, s: Any, class_id: str, new: list, respell: list) -> tuple[list, int]:
    """The confirmed import, as one job on the database thread: the new pupils, then the respelled names."""
    added = store.add_pupils(s, class_id, [(p.last_name, p.first_name) for p in new])
    for k, p in respell:
        store.rename_pupil(s, k.id, p.last_name, p.first_name)
    return added, len(respell)


def add_routes(r: web.UrlDispatcher) -> None:
    c = "/classes/{class_id:[0-9a-f]{16}}"
    r.add_get("/classes", classes)
    r.add_get(c, class_page)
    r.add_post(c + "/pupils", add_pupil)
    r.add_post(c + "/import", import_pupils)
    r.add_get(c + "/pupils/{pupil_id:[0-9a-f]{16}}", pupil_page)
    r.add_post(c + "/pupils/{pupil_id:[0-9a-f]{16}}/rename", rename_pupil)
    r.add_get(c + "/pupils/{pupil_id:[0-9a-f]{16}}/erase", erase_pupil_page)
    r.add_post(c + "/pupils/{pupil_id:[0-9a-f]{16}}/erase", erase_pupil)
    school_grid.add_routes(r)
    class_reports.add_routes(r)
    school_admin.add_routes(r)
    school_sync.add_routes(r)


__all__ = ["add_routes", "sync_words"]
