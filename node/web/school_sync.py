"""The head teacher's link to the district: the sync page and its events, joining, the transparency log, backup."""
from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import urllib.parse
from typing import Any

from aiohttp import web

from preau.node.actions.status import node_status
from preau.node.i18n import LANGUAGES, when
from preau.node.records.backup import write_backup
from ..codes import NEEDS_INVITATION, refusal_words
from ..errors import UserError, network_reason
from .classroom import ADMIN
from .context import form_text, node_of, on_db, refused, store_of, t_, unlocked
from .flash import see_other
from .render import render
from .security import login_required, request_language
from .event_words import event_lines
from .join_link import JOIN_PATH, read_join_query


def sync_words(node: Any, lang: str, t: Any) -> dict[str, Any]:
    """The upstream link in plain words: where it stands, what waits, what went wrong and what to do."""
    up = node.federation.upstream()
    status = node.status
    waiting = [r for r in node.fed.transparency() if r["receipt"] is None and not r.get("superseded")]
    out: dict[str, Any] = {"joined": up is not None, "waiting": len(waiting), "problem": None, "todo": None}
    if up is None:
        out["state"] = t("sync.not_joined")
        out["todo"] = t("sync.todo_join")
        return out
    last = up["last_contact"] or status.last_success
    out["state"] = t("sync.last_contact", when=when(last, lang)) if last else t("sync.never")
    error, code = (status.last_error, status.last_error_code) if status.last_error else (up["last_error"],
                                                                                        up.get("last_error_code"))
    if error:
        out["problem"] = t("sync.problem", failures=max(status.failures, 1))
        # The operator's words, shown inside <details> only: a refusal by its code (in the person's language),
        # any other trouble as it came.
        out["problem_detail"] = refusal_words(code, error).to(lang)
        if code in NEEDS_INVITATION:
            out["todo"] = t("sync.todo_revoked")
        else:
            out["todo"] = t("sync.todo_network", when=when(status.next_attempt, lang) or "—")
    out["district"] = up.get("name") or t("sync.district_unnamed")
    out["district_key"] = up["node_id"]
    out["address"] = up["address"]
    return out


async def _sync_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                     status: int = 200, typed: dict | None = None, invited: dict | None = None,
                     extra: dict | None = None) -> web.StreamResponse:
    node = node_of(request)
    lang = request_language(request)
    data = _sync_data(store_of(request), unlocked(request), node, lang, t_(request), invited)
    return await render(request, "admin_sync.html", {**data, "notice": notice, "errors": errors or [],
                                                     "typed": typed or {"invitation": "", "district": ""},
                                                     "page_url": "/admin/sync", **(extra or {})}, status=status)


def _sync_data(store: Any, s: Any, node: Any, lang: str, t: Any, invited: dict | None = None) -> dict[str, Any]:
    """All the store work of the sync page: the link in words, the last events in sentences, and (from the
    district's QR code link) the school the invitation is for, checked against this school's UAI."""
    campaigns = {c.id: c.name for c in store.list_campaigns(s)}
    if invited is not None:
        ours = str(store.school()["uai"]).upper()
        invited = {**invited, "ours": ours, "other": invited["uai"] != ours}
    return {"sync": sync_words(node, lang, t), "node_id": node.node_id,
            "events": event_lines(node.fed.events(10), lang, campaigns), "invited": invited}


@login_required(roles=ADMIN)
async def sync_page(request: web.Request) -> web.StreamResponse:
    return await _sync_page(request)


@login_required(roles=ADMIN)
async def sync_now(request: web.Request) -> web.StreamResponse:
    node_of(request).wakeup.set()
    raise await see_other(request, "/admin/sync", notice=t_(request)("sync.woken"))


@login_required(roles=ADMIN)
async def join_page(request: web.Request) -> web.StreamResponse:
    """The join form filled in from the link in the district's QR code (join_link.school_join_link).

    A GET never joins: it only fills the form in, and names the school the invitation is for; an invitation
    for another school's UAI is said before anything is sent, and its form has no join button."""
    got = read_join_query(request.query)
    typed = {"invitation": got["code"], "district": got["district"]}
    invited = {"uai": got["uai"].upper(), "name": got["name"]} if got["uai"] else None
    other = next(code for code in LANGUAGES if code != request_language(request))
    kept = {k: v for k, v in got.items() if v}
    # The language link keeps what the link carried (a bare ?lang= would empty the form).
    lang_href = f"{JOIN_PATH}?{urllib.parse.urlencode({**kept, 'lang': other})}"
    return await _sync_page(request, typed=typed, invited=invited, extra={"lang_href": lang_href})


@login_required(roles=ADMIN)
async def join(request: web.Request) -> web.StreamResponse:
    store, node = store_of(request), node_of(request)
    unlocked(request)
    form = await request.post()
    text = form_text(form, "invitation", 4000)
    district = form_text(form, "district", 300) or None
    typed = {"invitation": text, "district": district or ""}  # shown again if refused: nothing typed is lost
    t = t_(request)
    if not text:
        return await _sync_page(request, errors=[t("sync.join_empty")], status=400, typed=typed)
    try:
        report = await node.join(text, store.school()["uai"], district=district)
    except UserError as exc:
        return await _sync_page(request, errors=[refused(request, exc)], status=exc.status, typed=typed)
    except OSError as exc:
        detail = network_reason(exc).to(request_language(request))
        return await _sync_page(request, errors=[t("sync.join_unreachable", detail=detail)], status=502, typed=typed)
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
        await on_db(request, write_backup, store, s, path, label=t_(request)("gdpr.backup_downloaded"))
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
    r.add_get("/admin/sync", sync_page)
    r.add_post("/admin/sync", sync_now)
    r.add_get(JOIN_PATH, join_page)
    r.add_post(JOIN_PATH, join)
    r.add_get("/admin/transparency", transparency)
    r.add_get("/admin/transparency.json", transparency_json)
    r.add_get("/admin/backup", backup_page)
    r.add_post("/admin/backup", backup_download)
    r.add_get("/v1/status", api_status)
