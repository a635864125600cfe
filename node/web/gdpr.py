"""The head teacher's GDPR pages: retention and erasures, families' requests, the printable paperwork.

The documents (notice, register entry, access page) are rendered by
`preau.node.paperwork` from the node's settings, the same way as by
`preau gdpr`; here they link the stylesheet, since the pages' CSP forbids
inline styles. Pupil ids appear in URLs (as on the class pages), names never.
"""
from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from aiohttp import web

from .. import paperwork
from ..i18n import when
from ..errors import UserError
from ..records.store.gdpr import MAX_RETENTION_YEARS
from .flash import see_other
from .render import render, static_url
from .security import login_required, request_language
from .context import form_text, node_of, on_db, refused, store_of, t_, unlocked

ADMIN = ("admin",)
_PUPIL = "/admin/gdpr/pupils/{pupil_id:[0-9a-f]{16}}"


def _district(request: web.Request) -> str | None:
    up = node_of(request).federation.upstream()
    return None if up is None else (up.get("name") or up.get("uai") or None)


def _when_iso(stamp: str, lang: str) -> str:
    """A time the store wrote (ISO 8601, UTC) as the other pages show one: local time, the person's way."""
    try:
        return when(_dt.datetime.fromisoformat(stamp).timestamp(), lang)
    except (TypeError, ValueError):
        return str(stamp)


async def _page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                status: int = 200) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    plan = [{"kind": p.kind, "id": p.id, "name": p.name, "school_year": p.school_year,
             "erase_on": paperwork.date_fr(p.erase_from), "pupils": p.pupils, "soon": p.soon}
            for p in store.retention_plan(s)]
    campaigns = {c.id: c.name for c in store.list_campaigns(s)}
    purges = [{"at": r["at"][:10], "campaign": campaigns.get(r["campaign_id"], r["campaign_id"]) if r["campaign_id"] else None,
               "results": r["results"], "pupils": r["pupils"], "early": bool(r["early"])} for r in store.purges(s)]
    lang = request_language(request)
    backups = [{"path": b["path"], "created": _when_iso(b["created_at"], lang), "flagged": b["flagged"]}
               for b in store.backups(s)]
    excluded = store.not_counted(s)
    pupils = []
    for c in store.list_classes(s):
        for p in store.list_pupils(s, c.id):
            pupils.append({"id": p.id, "name": f"{p.last_name} {p.first_name}", "class_name": c.name,
                           "counted": p.id not in excluded})
    return await render(request, "admin_gdpr.html", {
        "retention": store.retention_years(s), "max_retention": MAX_RETENTION_YEARS, "texts": store.gdpr_texts(s),
        "plan": plan, "purges": purges, "backups": backups, "pupils": pupils, "soon": any(p["soon"] for p in plan),
        "notice": notice, "errors": errors or [], "page_url": "/admin/gdpr",
    }, status=status)


@login_required(roles=ADMIN)
async def gdpr_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


def _save_settings(store: Any, s: Any, years: str, texts: dict[str, str]) -> None:
    store.set_retention(s, years)
    for key, text in texts.items():
        if text and text != store.gdpr_texts(s)[key]:
            store.set_gdpr_text(s, key, text)


@login_required(roles=ADMIN)
async def save_settings(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    form = await request.post()
    texts = {key: form_text(form, key, 300) for key in ("contact", "dpo")}
    try:
        await on_db(request, _save_settings, store, s, form_text(form, "retention_years", 2), texts)
    except UserError as exc:
        return await _page(request, errors=[refused(request, exc)], status=exc.status)
    raise await see_other(request, "/admin/gdpr", notice=t_(request)("gdpr.saved"))


@login_required(roles=ADMIN)
async def purge_now(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    form = await request.post()
    t = t_(request)
    if form_text(form, "confirm") != "yes":
        return await _page(request, errors=[t("gdpr.purge_unconfirmed")], status=400)
    try:
        report = await on_db(request, store.purge_campaign_now, s, form_text(form, "campaign_id", 64))
    except UserError as exc:
        return await _page(request, errors=[refused(request, exc)], status=exc.status)
    raise await see_other(request, "/admin/gdpr",
                          notice=t("gdpr.purged_now", campaign=", ".join(report.campaigns), n=report.results))


def _document(request: web.Request, template: str, context: dict[str, Any]) -> web.Response:
    # The node's own icon: without one the browser asks for /favicon.ico, a 404 and an error in its console.
    html = paperwork.render(template, {**context, "icon": static_url("favicon.svg")}, stylesheet=static_url("gdpr.css"))
    return web.Response(text=html, content_type="text/html", charset="utf-8")


@login_required(roles=ADMIN)
async def notice(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    return _document(request, "gdpr_notice.html", paperwork.paperwork_context(store, s, district=_district(request)))


@login_required(roles=ADMIN)
async def register(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    return _document(request, "gdpr_register.html", paperwork.paperwork_context(store, s, district=_district(request)))


def _pupil_url(p: Any) -> str:
    return f"/admin/gdpr/pupils/{p.id}"


def _pupil(request: web.Request) -> tuple[Any, Any, Any]:
    store, s = store_of(request), unlocked(request)
    try:
        return store, s, store.get_pupil(s, request.match_info["pupil_id"])
    except UserError:
        raise web.HTTPNotFound() from None


async def _pupil_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                      status: int = 200, typed: dict[str, str] | None = None) -> web.StreamResponse:
    """`typed`: a refused form's fields ("form": "identity" or "result"), put back with the cursor in it."""
    store, s, p = _pupil(request)
    names = {c.id: c.name for c in store.list_classes(s)}
    choices = []
    for campaign in store.list_campaigns(s):
        if store.is_purged(s, campaign.id):
            continue
        for ex in campaign.exercises:
            choices.append({"value": f"{campaign.id}/{ex.id}", "label": f"{campaign.name} — {ex.name}"})
    return await render(request, "admin_gdpr_pupil.html", {
        "pupil": p, "class_name": names.get(p.class_id, ""), "counted": p.id not in store.not_counted(s),
        "choices": choices, "notice": notice, "errors": errors or [], "page_url": _pupil_url(p),
        "typed": typed or {}}, status=status)


@login_required(roles=ADMIN)
async def pupil_page(request: web.Request) -> web.StreamResponse:
    return await _pupil_page(request)


@login_required(roles=ADMIN)
async def access_page(request: web.Request) -> web.StreamResponse:
    store, s, p = _pupil(request)
    data = await on_db(request, store.access_request, s, p.id, "page imprimable")  # logged in the audit log
    ctx = paperwork.access_context(data, store.gdpr_texts(s), store._clock().date())
    return _document(request, "gdpr_access.html", ctx)


@login_required(roles=ADMIN)
async def access_json(request: web.Request) -> web.StreamResponse:
    store, s, p = _pupil(request)
    data = await on_db(request, store.access_request, s, p.id, "fichier JSON")
    body = json.dumps(data, indent=2, ensure_ascii=False)
    return web.Response(body=body.encode(), content_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="preau-acces-eleve.json"'})  # no name in a file name


@login_required(roles=ADMIN)
async def set_counted(request: web.Request) -> web.StreamResponse:
    store, s, p = _pupil(request)
    form = await request.post()
    counted = form_text(form, "counted") == "yes"
    await on_db(request, store.set_counted, s, p.id, counted, form_text(form, "request", 200))
    raise await see_other(request, _pupil_url(p),
                          notice=t_(request)("gdpr.counted_done" if counted else "gdpr.not_counted_done"))


@login_required(roles=ADMIN)
async def rectify_identity(request: web.Request) -> web.StreamResponse:
    store, s, p = _pupil(request)
    form = await request.post()
    typed = {"form": "identity", "last_name": form_text(form, "last_name", 100),
             "first_name": form_text(form, "first_name", 100), "request": form_text(form, "request", 200)}
    try:
        await on_db(request, store.rectify_identity, s, p.id, typed["last_name"], typed["first_name"],
                    request=typed["request"])
    except UserError as exc:
        return await _pupil_page(request, errors=[refused(request, exc)], status=exc.status, typed=typed)
    raise await see_other(request, _pupil_url(p), notice=t_(request)("gdpr.rectified"))


@login_required(roles=ADMIN)
async def rectify_result(request: web.Request) -> web.StreamResponse:
    store, s, p = _pupil(request)
    form = await request.post()
    t = t_(request)
    typed = {"form": "result", "exercise": form_text(form, "exercise", 140), "value": form_text(form, "value", 100),
             "request": form_text(form, "request", 200)}
    campaign_id, _, exercise_id = typed["exercise"].partition("/")
    try:
        ex = next((e for e in store.get_campaign(s, campaign_id).exercises if e.id == exercise_id), None)
        if ex is None:
            return await _pupil_page(request, errors=[t("gdpr.bad_value", detail=exercise_id)], status=400, typed=typed)
        value = paperwork.parse_value(typed["value"], ex.score_kind)
        await on_db(request, store.rectify_result, s, campaign_id, p.id, exercise_id, request=typed["request"], **value)
    except UserError as exc:
        return await _pupil_page(request, errors=[refused(request, exc)], status=exc.status, typed=typed)
    raise await see_other(request, _pupil_url(p), notice=t("gdpr.rectified"))


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/admin/gdpr", gdpr_page)
    r.add_post("/admin/gdpr/settings", save_settings)
    r.add_post("/admin/gdpr/purge", purge_now)
    r.add_get("/admin/gdpr/notice", notice)
    r.add_get("/admin/gdpr/register", register)
    r.add_get(_PUPIL, pupil_page)
    r.add_get(_PUPIL + "/access", access_page)
    r.add_get(_PUPIL + "/access.json", access_json)
    r.add_post(_PUPIL + "/counted", set_counted)
    r.add_post(_PUPIL + "/identity", rectify_identity)
    r.add_post(_PUPIL + "/result", rectify_result)
