"""School pages: teachers' classes, pupils and result entry; the head teacher's administration.

Every pupil page names the class by its opaque id and checks, on every
request and against the store (not the login-time snapshot), that the person
may open it; the store checks again with the keys themselves. Pupil names
travel only in page bodies and POST bodies, never in a URL.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as _dt
import hashlib
import json
import os
import tempfile
from typing import Any

from aiohttp import web

from preau.crdt.campaign import GROUPS, LEVELS, Campaign, Exercise

from preau.node.records.backup import write_backup
from preau.node.actions.releases import release_view
from preau.node.actions.status import node_status
from ..errors import NotFound, UserError
from preau.crdt.pooling import pool_vector
from preau.node.federation import pools as fpools
from ..release import approve_release
from preau.node.records.classlist import ClassList, ClassListError, Known, compare, fold, read_class_list
from preau.node.records.store import ResultInput, Result
from .grid import EntryError, RowEntry, class_profile, grid_view, parse_grid_form, parse_row_body, saved_reply, score_text
from preau.node.i18n import when
from .flash import see_other
from .render import render
from .appkeys import RATE_LIMITER
from .security import AccessDenied, end_sessions_of, login_required, request_language
from .context import form_text, node_of, refused, store_of, t_, unlocked
from .words import asked_words, reason_words, refused_campaign_words

TEACHING = ("teacher", "admin")
ADMIN = ("admin",)
_MAX_UPLOAD = 512 * 1024


# -- helpers ------------------------------------------------------------------------

def _klass(request: web.Request) -> tuple[Any, Any, Any]:
    """(store, session, ClassInfo) of the class in the URL, if this person may open it (checked live)."""
    store, s = store_of(request), unlocked(request)
    class_id = request.match_info["class_id"]
    for c in store.list_classes(s):  # a teacher's list holds only the classes assigned right now
        if c.id == class_id:
            return store, s, c
    raise AccessDenied(class_id)


def _campaign(store: Any, s: Any, campaign_id: str, klass: Any = None) -> Campaign:
    """The campaign in the URL; for a class's page, only one of the class's level (any other: not found)."""
    for c in store.list_campaigns(s):
        if c.id == campaign_id:
            if klass is not None and c.level.casefold() != klass.level.casefold():
                break
            return c
    raise web.HTTPNotFound()


def _campaigns_of(store: Any, s: Any, c: Any) -> list[Campaign]:
    """The campaigns of a class's level: a CE1 class is never offered the CP exercises."""
    return [campaign for campaign in store.list_campaigns(s) if campaign.level.casefold() == c.level.casefold()]


def _completion(store: Any, s: Any, c: Any, campaigns: list[Campaign]) -> dict[tuple[str, str], int]:
    """(campaign id, exercise id) -> pupils entered (a result or absent), for "12/25" beside each exercise."""
    done: dict[tuple[str, str], int] = {}
    for campaign in campaigns:
        for r in store.get_results(s, campaign.id, c.id):
            if r.status in ("done", "absent"):
                done[(campaign.id, r.exercise_id)] = done.get((campaign.id, r.exercise_id), 0) + 1
    return done


def _exercise(campaign: Campaign, exercise_id: str) -> Exercise:
    for ex in campaign.exercises:
        if ex.id == exercise_id:
            return ex
    raise web.HTTPNotFound()


def _name(p: Any) -> str:
    return f"{p.first_name} {p.last_name}"


def _entry(result: Result) -> RowEntry:
    """A stored result as the grid shows it (a row saved incomplete has no score yet)."""
    if result.status == "absent":
        return RowEntry(result.pupil_id, absent=True)
    if result.status != "done":
        return RowEntry(result.pupil_id)
    if result.answers is not None:
        complete = all(v is not None for v in result.answers)
        return RowEntry(result.pupil_id, items=tuple(result.answers), score=result.score if complete else None)
    return RowEntry(result.pupil_id, score=result.wpm)


def _entries(results: list[Result]) -> dict[str, dict[str, RowEntry]]:
    out: dict[str, dict[str, RowEntry]] = {}
    for r in results:
        out.setdefault(r.exercise_id, {})[r.pupil_id] = _entry(r)
    return out


def _to_input(entry: RowEntry, exercise: Exercise) -> ResultInput:
    if entry.absent:
        return ResultInput(entry.pupil_id, exercise.id, "absent")
    if exercise.score_kind == "wpm":
        return ResultInput(entry.pupil_id, exercise.id, wpm=entry.score)
    return ResultInput(entry.pupil_id, exercise.id, answers=entry.items)


def _save_rows(store: Any, s: Any, campaign: Campaign, exercise: Exercise, rows: list[RowEntry],
               saved: dict[str, RowEntry]) -> None:
    """Save what was typed. An emptied row is kept as 'not assessed' (the store has no way to delete a result)."""
    inputs = []
    for row in rows:
        if row.empty:
            if row.pupil_id in saved and not saved[row.pupil_id].empty:
                inputs.append(ResultInput(row.pupil_id, exercise.id, "not_assessed"))
            continue
        inputs.append(_to_input(row, exercise))
    if inputs:
        store.save_results(s, campaign.id, inputs)


def _class_base(c: Any) -> str:
    return f"/classes/{c.id}"


# -- teachers ---------------------------------------------------------------------------

@login_required(roles=TEACHING)
async def classes(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    rows = []
    for c in store.list_classes(s):
        rows.append({"info": c, "url": _class_base(c), "pupils": len(store.list_pupils(s, c.id))})
    levels = {r["info"].level.casefold() for r in rows}
    campaigns = [c for c in store.list_campaigns(s) if c.level.casefold() in levels or s.is_admin]
    return await render(request, "school_classes.html", {"classes": rows, "campaigns": campaigns})


async def _class_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                      status: int = 200) -> web.StreamResponse:
    store, s, c = _klass(request)
    pupils = store.list_pupils(s, c.id)
    campaigns = _campaigns_of(store, s, c)
    return await render(request, "class.html", {
        "klass": c, "base": _class_base(c), "pupils": pupils, "campaigns": campaigns,
        "done": _completion(store, s, c, campaigns),
        "notice": notice, "errors": errors or [], "page_url": _class_base(c),
    }, status=status)


@login_required(roles=TEACHING)
async def class_page(request: web.Request) -> web.StreamResponse:
    return await _class_page(request)


@login_required(roles=TEACHING)
async def add_pupil(request: web.Request) -> web.StreamResponse:
    store, s, c = _klass(request)
    form = await request.post()
    t = t_(request)
    try:
        p = store.add_pupil(s, c.id, form_text(form, "last_name"), form_text(form, "first_name"))
    except UserError as exc:
        return await _class_page(request, errors=[refused(request, exc)], status=exc.status)
    raise await see_other(request, _class_base(c), notice=t("pupils.added", name=_name(p)))


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
    store, s, c = _klass(request)
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
            added = store.add_pupils(s, c.id, [(p.last_name, p.first_name) for p in comparison.new])
            respelled = 0
            if form_text(form, "respell") == "yes":
                for k, p in comparison.respelled:
                    store.rename_pupil(s, k.id, p.last_name, p.first_name)
                    respelled += 1
        except UserError as exc:
            return await _class_page(request, errors=[refused(request, exc)], status=exc.status)
        notice = t("import.done", added=len(added), respelled=respelled)
        if comparison.missing:
            notice += " " + t("import.done_missing", count=len(comparison.missing))
        raise await see_other(request, _class_base(c), notice=notice)
    return await render(request, "class_import.html", {
        "klass": c, "base": _class_base(c), "listed": listed, "chosen": chosen, "comparison": comparison,
        "data": base64.b64encode(raw).decode("ascii"), "errors": errors, "page_url": _class_base(c)})


def _pupil_of(store: Any, s: Any, c: Any, pupil_id: str) -> Any:
    for p in store.list_pupils(s, c.id):
        if p.id == pupil_id:
            return p
    raise web.HTTPNotFound()


@login_required(roles=TEACHING)
async def rename_pupil(request: web.Request) -> web.StreamResponse:
    store, s, c = _klass(request)
    p = _pupil_of(store, s, c, request.match_info["pupil_id"])
    form = await request.post()
    t = t_(request)
    try:
        new = store.rename_pupil(s, p.id, form_text(form, "last_name"), form_text(form, "first_name"))
    except UserError as exc:
        raise await see_other(request, f"{_class_base(c)}/pupils/{p.id}", errors=[refused(request, exc)])
    raise await see_other(request, f"{_class_base(c)}/pupils/{p.id}", notice=t("pupils.renamed", name=_name(new)))


@login_required(roles=ADMIN)
async def erase_pupil_page(request: web.Request) -> web.StreamResponse:
    """The head teacher confirms: the pupil and every result are erased for good."""
    store, s, c = _klass(request)
    p = _pupil_of(store, s, c, request.match_info["pupil_id"])
    counted = sum(1 for campaign in store.list_campaigns(s)
                  for r in store.get_results(s, campaign.id, c.id) if r.pupil_id == p.id)
    return await render(request, "pupil_erase.html", {"klass": c, "pupil": p, "name": _name(p), "results": counted,
                                                      "back_url": f"{_class_base(c)}/pupils/{p.id}"})


@login_required(roles=ADMIN)
async def erase_pupil(request: web.Request) -> web.StreamResponse:
    store, s, c = _klass(request)
    p = _pupil_of(store, s, c, request.match_info["pupil_id"])
    form = await request.post()
    if form_text(form, "confirm") != "yes":
        raise await see_other(request, f"{_class_base(c)}/pupils/{p.id}/erase")
    store.erase_pupil(s, p.id)
    raise await see_other(request, _class_base(c), notice=t_(request)("pupils.erased", name=_name(p)))


@login_required(roles=TEACHING)
async def pupil_page(request: web.Request) -> web.StreamResponse:
    store, s, c = _klass(request)
    p = _pupil_of(store, s, c, request.match_info["pupil_id"])
    lang = request_language(request)
    sections = []
    for campaign in _campaigns_of(store, s, c):
        mine = {r.exercise_id: _entry(r) for r in store.get_results(s, campaign.id, c.id) if r.pupil_id == p.id}
        rows = [{"exercise": ex, "score": score_text(ex, mine.get(ex.id), lang),
                 "group": mine[ex.id].group(ex) if ex.id in mine else None} for ex in campaign.exercises]
        sections.append({"campaign": campaign, "rows": rows})
    return await render(request, "pupil.html", {"klass": c, "pupil": p, "name": _name(p), "sections": sections,
                                                "back_url": _class_base(c), "base": _class_base(c),
                                                "may_erase": s.is_admin})


async def _grid_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                     status: int = 200) -> web.StreamResponse:
    store, s, c = _klass(request)
    campaign = _campaign(store, s, request.match_info["campaign_id"], c)
    exercise = _exercise(campaign, request.match_info["exercise_id"])
    pupils = [(p.id, _name(p)) for p in store.list_pupils(s, c.id)]
    saved = _entries(store.get_results(s, campaign.id, c.id)).get(exercise.id, {})
    base = f"{_class_base(c)}/campaigns/{campaign.id}/exercises/{exercise.id}"
    grid = grid_view(exercise, pupils, saved, save_url=base + "/row", form_action=base, lang=request_language(request))
    return await render(request, "grid.html", {
        "klass": c, "campaign": campaign, "exercise": exercise, "grid": grid, "back_url": _class_base(c),
        "notice": notice, "errors": errors or [], "page_url": base,
    }, status=status)


@login_required(roles=TEACHING)
async def grid_page(request: web.Request) -> web.StreamResponse:
    return await _grid_page(request)


@login_required(roles=TEACHING)
async def grid_form(request: web.Request) -> web.StreamResponse:
    """The no-JavaScript fallback: every row checked before any is saved, then one transaction."""
    store, s, c = _klass(request)
    campaign = _campaign(store, s, request.match_info["campaign_id"], c)
    exercise = _exercise(campaign, request.match_info["exercise_id"])
    form = await request.post()
    lang = request_language(request)
    pupils = store.list_pupils(s, c.id)
    try:
        rows = parse_grid_form(exercise, [p.id for p in pupils], form)
    except EntryError as exc:
        return await _grid_page(request, errors=[exc.message(lang)], status=400)
    saved = _entries(store.get_results(s, campaign.id, c.id)).get(exercise.id, {})
    _save_rows(store, s, campaign, exercise, rows, saved)
    raise await see_other(request, request.path, notice=t_(request)("grid.saved_all"))


@login_required(roles=TEACHING)
async def save_row(request: web.Request) -> web.StreamResponse:
    """grid.js saves one row at a time: `{"pupil": id, "cells": [...]}`, answered once it is on disk."""
    store, s, c = _klass(request)
    campaign = _campaign(store, s, request.match_info["campaign_id"], c)
    exercise = _exercise(campaign, request.match_info["exercise_id"])
    lang = request_language(request)
    raw = await request.read()
    try:
        entry = parse_row_body(exercise, raw, request.charset)
        if not store.db.execute("SELECT 1 FROM pupils WHERE id = ? AND class_id = ?", [entry.pupil_id, c.id]).fetchone():
            raise EntryError("entry.bad_pupil")
    except EntryError as exc:
        return web.json_response({"ok": False, "error": exc.message(lang), "status": 400}, status=400)
    if entry.empty:
        saved = {r.pupil_id: _entry(r) for r in store.get_results(s, campaign.id, c.id)
                 if r.exercise_id == exercise.id and r.pupil_id == entry.pupil_id}
        _save_rows(store, s, campaign, exercise, [entry], saved)
    else:
        store.save_results(s, campaign.id, [_to_input(entry, exercise)])
    return web.json_response(saved_reply(exercise, entry, lang))


@login_required(roles=TEACHING)
async def profile_page(request: web.Request) -> web.StreamResponse:
    store, s, c = _klass(request)
    campaign = _campaign(store, s, request.match_info["campaign_id"], c)
    pupils = [(p.id, _name(p)) for p in store.list_pupils(s, c.id)]
    entries = _entries(store.get_results(s, campaign.id, c.id))
    return await render(request, "class_profile.html", {
        "klass": c, "campaign": campaign, "profile": class_profile(campaign, pupils, entries), "back_url": _class_base(c)})


@login_required(roles=TEACHING)
async def export_csv(request: web.Request) -> web.StreamResponse:
    store, s, c = _klass(request)
    campaign = _campaign(store, s, request.match_info["campaign_id"], c)
    text = store.export_results_csv(s, campaign.id, c.id)
    name = f"resultats-{campaign.id}.csv"  # no class or pupil name in the file name (it lands in download lists)
    return web.Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- head teacher: accounts and classes ------------------------------------------------------

async def _accounts_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                         status: int = 200) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    names = {c.id: c.name for c in store.list_classes(s)}
    accounts = [{"a": a, "classes": [names.get(cid, cid) for cid in a.class_ids]} for a in store.list_accounts(s)]
    return await render(request, "admin_accounts.html", {"accounts": accounts, "notice": notice, "errors": errors or [],
                                                          "me": s.username, "page_url": "/admin/accounts"}, status=status)


@login_required(roles=ADMIN)
async def accounts(request: web.Request) -> web.StreamResponse:
    return await _accounts_page(request)


@login_required(roles=ADMIN)
async def account_action(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    form = await request.post()
    action = form_text(form, "action")
    username = form_text(form, "username", 40)
    password = form.get("password", "") if isinstance(form.get("password", ""), str) else ""
    t = t_(request)
    try:
        if action == "create":
            role = "admin" if form_text(form, "role") == "admin" else "teacher"
            await asyncio.get_running_loop().run_in_executor(None, lambda: store.create_account(s, username, password, role))
            notice = t("accounts.created", username=username)
        elif action == "reset":
            await asyncio.get_running_loop().run_in_executor(None, lambda: store.reset_password(s, username, password))
            request.config_dict[RATE_LIMITER].reset_account(username)  # a reset unlocks the account everywhere
            await end_sessions_of(request.app, username)
            notice = t("accounts.reset_done", username=username)
        elif action == "disable":
            store.disable_account(s, username)
            await end_sessions_of(request.app, username)
            notice = t("accounts.disabled_done", username=username)
        else:
            raise web.HTTPBadRequest()
    except UserError as exc:
        return await _accounts_page(request, errors=[refused(request, exc)], status=exc.status)
    raise await see_other(request, "/admin/accounts", notice=notice)


async def _admin_classes_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                              status: int = 200) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    accounts = store.list_accounts(s)
    teachers_of: dict[str, list[str]] = {}
    for a in accounts:
        for cid in a.class_ids:
            teachers_of.setdefault(cid, []).append(a.username)
    classes = [{"c": c, "teachers": teachers_of.get(c.id, [])} for c in store.list_classes(s)]
    today = _dt.date.today()
    start = today.year if today.month >= 8 else today.year - 1
    return await render(request, "admin_classes.html", {
        "classes": classes, "teachers": [a.username for a in accounts if a.active and a.role == "teacher"],
        "levels": LEVELS, "school_year": f"{start}-{start + 1}", "notice": notice, "errors": errors or [],
        "page_url": "/admin/classes"}, status=status)


@login_required(roles=ADMIN)
async def admin_classes(request: web.Request) -> web.StreamResponse:
    return await _admin_classes_page(request)


@login_required(roles=ADMIN)
async def class_action(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    form = await request.post()
    action = form_text(form, "action")
    t = t_(request)
    try:
        if action == "create":
            c = store.create_class(s, form_text(form, "name"), form_text(form, "level"), form_text(form, "school_year"))
            notice = t("admin_classes.created", name=c.name)
        elif action in ("assign", "unassign"):
            username, class_id = form_text(form, "username", 40), form_text(form, "class_id", 64)
            (store.assign_teacher if action == "assign" else store.unassign_teacher)(s, username, class_id)
            notice = t(f"admin_classes.{action}ed", username=username)
        else:
            raise web.HTTPBadRequest()
    except UserError as exc:
        return await _admin_classes_page(request, errors=[refused(request, exc)], status=exc.status)
    raise await see_other(request, "/admin/classes", notice=notice)


# -- head teacher: campaigns and releases ---------------------------------------------------------

def _entered(store: Any, s: Any, campaign: Campaign) -> dict[str, int]:
    """Pupils of the campaign's level with at least one result entered, out of all pupils of that level."""
    total = done = 0
    for c in store.list_classes(s):
        if c.level.casefold() != campaign.level.casefold():
            continue
        total += len(store.list_pupils(s, c.id))
        done += len({r.pupil_id for r in store.get_results(s, campaign.id, c.id) if r.status in ("done", "absent")})
    return {"done": done, "total": total}


@login_required(roles=ADMIN)
async def campaigns(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    rows = []
    for c in store.list_campaigns(s):
        counts = store.next_release_counts(s, c.id)
        rows.append({"c": c, "with_thresholds": sum(1 for ex in c.exercises if ex.thresholds),
                     "revision": counts["revision"], "entered": _entered(store, s, c), "url": f"/admin/release/{c.id}"})
    return await render(request, "admin_campaigns.html", {"campaigns": rows})


def _event_detail(event: dict, lang: str) -> str:
    """A sync event's detail; a campaign refused for asking less than the national floor, in words."""
    if event["kind"] == "campaign_refused":
        try:
            data = json.loads(event["detail"])
            return refused_campaign_words(data["code"], data["params"], lang)
        except (ValueError, KeyError, TypeError):
            return event["detail"]
    return event["detail"]


def _digest(document: dict | None) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def _release_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                        status: int = 200) -> web.StreamResponse:
    store, s, node = store_of(request), unlocked(request), node_of(request)
    campaign = _campaign(store, s, request.match_info["campaign_id"])
    view = release_view(store, s, node.federation, campaign.id)  # the use case `preau release` shows too
    preview = view.preview
    doc = preview.document()
    names = {ex.id: ex.name for ex in campaign.exercises}
    table = [{"name": names.get(r["exercise"], r["exercise"]), **r} for r in preview.table()]
    lang = request_language(request)
    pinned = [{"name": names.get(ex, ex), "t1": t[0], "t2": t[1]} for ex, t in preview.thresholds]
    asked = [asked_words(a, names, lang) for a in preview.asked]
    return await render(request, "admin_release.html", {
        "pinned": pinned, "asked": asked,
        "campaign": campaign, "preview": preview, "table": table, "document": doc,
        "raw": json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) if doc is not None else "",
        "digest": _digest(doc), "joined": node.federation.upstream() is not None,
        "pools": view.pools,
        "reason": reason_words(preview.decision.reason, request_language(request)),
        "notice": notice, "errors": errors or [], "page_url": f"/admin/release/{campaign.id}"}, status=status)


@login_required(roles=ADMIN)
async def release_page(request: web.Request) -> web.StreamResponse:
    return await _release_page(request)


@login_required(roles=ADMIN)
async def release_approve(request: web.Request) -> web.StreamResponse:
    store, s, node = store_of(request), unlocked(request), node_of(request)
    campaign = _campaign(store, s, request.match_info["campaign_id"])
    form = await request.post()
    t = t_(request)
    preview = release_view(store, s, node.federation, campaign.id).preview
    if form_text(form, "digest", 64) != _digest(preview.document()):
        return await _release_page(request, errors=[t("release.changed")], status=409)
    try:
        signed = approve_release(store, s, node.federation, preview)
    except UserError as exc:
        return await _release_page(request, errors=[refused(request, exc)], status=exc.status)
    node.wakeup.set()  # send it now rather than at the next scheduled sync
    raise await see_other(request, f"/admin/release/{campaign.id}", notice=t("release.approved", number=signed.release))


@login_required(roles=ADMIN)
async def pool_approve(request: web.Request) -> web.StreamResponse:
    """The head teacher accepts a pool shown on the release page: the school's counts are frozen, masked, sent."""
    store, s, node = store_of(request), unlocked(request), node_of(request)
    campaign = _campaign(store, s, request.match_info["campaign_id"])
    try:
        definition, _state = fpools.proposal(node.federation, request.match_info["pool_id"])
        if definition.campaign_id != campaign.id:
            raise NotFound("this pool is for another campaign")
        vector = pool_vector(store.release_outcomes(s, campaign.id), campaign)
        fpools.approve_pool(node.federation, definition.pool_id.hex(), vector, min_cohort=campaign.policy.min_cohort,
                            user=s.username)
    except UserError as exc:
        return await _release_page(request, errors=[refused(request, exc)], status=exc.status)
    node.wakeup.set()  # send the keys now rather than at the next scheduled sync
    raise await see_other(request, f"/admin/release/{campaign.id}", notice=t_(request)("pool.approved"))


# -- head teacher: sync, district, transparency, backup --------------------------------------------

def sync_words(node: Any, lang: str, t: Any) -> dict[str, Any]:
    """The upstream link in plain words: where it stands, what waits, what went wrong and what to do."""
    up = node.federation.upstream()
    status = node.status
    waiting = [r for r in node.fed.transparency() if r["receipt"] is None]
    out: dict[str, Any] = {"joined": up is not None, "waiting": len(waiting), "problem": None, "todo": None}
    if up is None:
        out["state"] = t("sync.not_joined")
        out["todo"] = t("sync.todo_join")
        return out
    last = up["last_contact"] or status.last_success
    out["state"] = t("sync.last_contact", when=when(last, lang)) if last else t("sync.never")
    error = status.last_error or up["last_error"]
    if error:
        out["problem"] = t("sync.problem", failures=max(status.failures, 1), detail=error)
        lowered = error.lower()
        if "revoked" in lowered or "not enrolled" in lowered or "does not know" in lowered:
            out["todo"] = t("sync.todo_revoked")
        else:
            out["todo"] = t("sync.todo_network", when=when(status.next_attempt, lang) or "—")
    out["district"] = up["node_id"]
    out["address"] = up["address"]
    return out


async def _sync_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                     status: int = 200) -> web.StreamResponse:
    node = node_of(request)
    lang = request_language(request)
    return await render(request, "admin_sync.html", {
        "sync": sync_words(node, lang, t_(request)), "node_id": node.node_id, "notice": notice, "errors": errors or [],
        "page_url": "/admin/sync",
        "events": [{"at": when(e["at"], lang), "kind": e["kind"], "detail": _event_detail(e, lang)} for e in node.fed.events(10)],
    }, status=status)


@login_required(roles=ADMIN)
async def sync_page(request: web.Request) -> web.StreamResponse:
    return await _sync_page(request)


@login_required(roles=ADMIN)
async def sync_now(request: web.Request) -> web.StreamResponse:
    node_of(request).wakeup.set()
    raise await see_other(request, "/admin/sync", notice=t_(request)("sync.woken"))


@login_required(roles=ADMIN)
async def join(request: web.Request) -> web.StreamResponse:
    store, node = store_of(request), node_of(request)
    unlocked(request)
    form = await request.post()
    text = form_text(form, "invitation", 4000)
    t = t_(request)
    if not text:
        return await _sync_page(request, errors=[t("sync.join_empty")], status=400)
    try:
        report = await node.join(text, store.school()["uai"])
    except UserError as exc:
        return await _sync_page(request, errors=[refused(request, exc)], status=exc.status)
    except OSError as exc:
        return await _sync_page(request, errors=[t("sync.join_unreachable", detail=str(exc))], status=502)
    node.wakeup.set()
    raise await see_other(request, "/admin/sync", notice=t("sync.joined", count=len(report.accepted)))


@login_required(roles=ADMIN)
async def transparency(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    lang = request_language(request)
    rows = [{**r, "when": when(r["sent_at"], lang),
             "raw": json.dumps(r["content"], indent=2, ensure_ascii=False, sort_keys=True)} for r in node.fed.transparency()]
    return await render(request, "admin_transparency.html", {"rows": list(reversed(rows))})


@login_required(roles=ADMIN)
async def transparency_json(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    body = json.dumps({"node_id": node.node_id, "sent": node.fed.transparency()}, indent=2, ensure_ascii=False)
    return web.Response(body=body.encode(), content_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="preau-journal-envois.json"'})


@login_required(roles=ADMIN)
async def backup_page(request: web.Request) -> web.StreamResponse:
    return await render(request, "admin_backup.html", {})


@login_required(roles=ADMIN)
async def backup_download(request: web.Request) -> web.StreamResponse:
    """Write the encrypted backup to a private temporary file, stream it, then delete it."""
    store, s = store_of(request), unlocked(request)
    folder = tempfile.mkdtemp(prefix="preau-backup-")
    path = os.path.join(folder, "backup.preau")
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: write_backup(store, s, path, label=t_(request)("gdpr.backup_downloaded")))
        stamp = _dt.date.today().isoformat()
        resp = web.StreamResponse(headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="preau-sauvegarde-{stamp}.preau"',
            "Content-Length": str(os.path.getsize(path)),
        })
        await resp.prepare(request)
        with open(path, "rb") as f:
            while chunk := f.read(256 * 1024):
                await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        with_suppress_unlink(path)
        with_suppress_rmdir(folder)


def with_suppress_unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def with_suppress_rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


@login_required(roles=("admin", "district"))
async def api_status(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    info = node_status(node).as_dict()
    info["sync"] = {k: getattr(node.status, k) for k in ("last_attempt", "last_success", "failures", "last_error",
                                                         "next_attempt")}
    return web.json_response({"ok": True, **info})


def add_routes(r: web.UrlDispatcher) -> None:
    c = "/classes/{class_id:[0-9a-f]{16}}"
    g = c + "/campaigns/{campaign_id:[a-z0-9-]{3,64}}"
    r.add_get("/classes", classes)
    r.add_get(c, class_page)
    r.add_post(c + "/pupils", add_pupil)
    r.add_post(c + "/import", import_pupils)
    r.add_get(c + "/pupils/{pupil_id:[0-9a-f]{16}}", pupil_page)
    r.add_post(c + "/pupils/{pupil_id:[0-9a-f]{16}}/rename", rename_pupil)
    r.add_get(c + "/pupils/{pupil_id:[0-9a-f]{16}}/erase", erase_pupil_page)
    r.add_post(c + "/pupils/{pupil_id:[0-9a-f]{16}}/erase", erase_pupil)
    r.add_get(g + "/exercises/{exercise_id:[a-z0-9-]{3,64}}", grid_page)
    r.add_post(g + "/exercises/{exercise_id:[a-z0-9-]{3,64}}", grid_form)
    r.add_post(g + "/exercises/{exercise_id:[a-z0-9-]{3,64}}/row", save_row)
    r.add_get(g + "/profile", profile_page)
    r.add_get(g + "/export.csv", export_csv)
    r.add_get("/admin/accounts", accounts)
    r.add_post("/admin/accounts", account_action)
    r.add_get("/admin/classes", admin_classes)
    r.add_post("/admin/classes", class_action)
    r.add_get("/admin/campaigns", campaigns)
    r.add_get("/admin/release/{campaign_id:[a-z0-9-]{3,64}}", release_page)
    r.add_post("/admin/release/{campaign_id:[a-z0-9-]{3,64}}", release_approve)
    r.add_post("/admin/release/{campaign_id:[a-z0-9-]{3,64}}/pool/{pool_id:[0-9a-f]{32}}", pool_approve)
    r.add_get("/admin/sync", sync_page)
    r.add_post("/admin/sync", sync_now)
    r.add_post("/admin/join", join)
    r.add_get("/admin/transparency", transparency)
    r.add_get("/admin/transparency.json", transparency_json)
    r.add_get("/admin/backup", backup_page)
    r.add_post("/admin/backup", backup_download)
    r.add_get("/v1/status", api_status)


__all__ = ["add_routes", "sync_words", "GROUPS"]
