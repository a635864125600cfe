"""The head teacher's administration: accounts, classes, campaigns (with how many pupils are entered), releases, pools."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
from typing import Any

from aiohttp import web

from preau.crdt.campaign import LEVELS, Campaign
from preau.crdt.pooling import pool_vector
from preau.node.federation import pools as fpools
from ..codes import reasons_words
from ..errors import NotFound, UserError, said
from preau.node.actions.releases import release_view

from ..release import approve_release, pool_counts
from .accounts_form import AccountsForm, act
from .classroom import ADMIN, campaign_of
from .context import form_text, node_of, on_db, refused, store_of, t_, unlocked
from .flash import see_other
from .render import render
from .security import login_required, request_language
from preau.node.codes import asked_words


# -- head teacher: accounts and classes ------------------------------------------------------

async def _accounts_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                         status: int = 200, typed: dict[str, str] | None = None) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    names = {c.id: c.name for c in store.list_classes(s)}
    accounts = [{"a": a, "classes": [names.get(cid, cid) for cid in a.class_ids]} for a in store.list_accounts(s)]
    return await render(request, "admin_accounts.html", {"accounts": accounts, "notice": notice, "errors": errors or [],
                                                          "me": s.username, "typed": typed or {}, "done": None, "page_url": "/admin/accounts"}, status=status)


@login_required(roles=ADMIN)
async def accounts(request: web.Request) -> web.StreamResponse:
    return await _accounts_page(request)


ACCOUNTS = AccountsForm("/admin/accounts", admin_role="admin",
                        notices={"create": "accounts.created", "reset": "accounts.reset_done",
                                 "disable": "accounts.disabled_done"})


@login_required(roles=ADMIN)
async def account_action(request: web.Request) -> web.StreamResponse:
    return await act(request, ACCOUNTS, _accounts_page)


async def _admin_classes_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                              status: int = 200, typed: dict[str, str] | None = None) -> web.StreamResponse:
    """`typed`: a refused class's name, level and year, put back in the form with the cursor on the name."""
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
        "page_url": "/admin/classes", "typed": typed or {}, "done": None}, status=status)


@login_required(roles=ADMIN)
async def admin_classes(request: web.Request) -> web.StreamResponse:
    return await _admin_classes_page(request)


@login_required(roles=ADMIN)
async def class_action(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    form = await request.post()
    action = form_text(form, "action")
    t = t_(request)
    typed = {k: form_text(form, k) for k in ("name", "level", "school_year")} if action == "create" else None
    try:
        if action == "create":
            c = await on_db(request, store.create_class, s, form_text(form, "name"), form_text(form, "level"),
                            form_text(form, "school_year"))
            notice = t("admin_classes.created", name=c.name)
        elif action in ("assign", "unassign"):
            username, class_id = form_text(form, "username", 40), form_text(form, "class_id", 64)
            await on_db(request, store.assign_teacher if action == "assign" else store.unassign_teacher, s, username,
                        class_id)
            notice = t(f"admin_classes.{action}ed", username=username)
        else:
            raise web.HTTPBadRequest()
    except UserError as exc:
        return await _admin_classes_page(request, errors=[refused(request, exc)], status=exc.status, typed=typed)
    raise await see_other(request, "/admin/classes", notice=notice, shown={"done": action})


# -- head teacher: campaigns and releases ---------------------------------------------------------

def _entered(store: Any, s: Any, campaign: Campaign) -> dict[str, int]:
    """Pupils of the campaign's level with at least one result entered, out of all pupils of that level; and the
    exercises entered for every one of them ("8 / 8" pupils alone read as "all done" after 3 exercises of 14)."""
    total = done = 0
    per_exercise: dict[str, int] = {}
    for c in store.list_classes(s):
        if c.level.casefold() != campaign.level.casefold():
            continue
        total += len(store.list_pupils(s, c.id))
        entered = [r for r in store.get_results(s, campaign.id, c.id) if r.status in ("done", "absent")]
        done += len({r.pupil_id for r in entered})
        for r in entered:
            per_exercise[r.exercise_id] = per_exercise.get(r.exercise_id, 0) + 1
    complete = sum(1 for ex in campaign.exercises if total and per_exercise.get(ex.id, 0) >= total)
    return {"done": done, "total": total, "complete": complete, "exercises": len(campaign.exercises)}


@login_required(roles=ADMIN)
async def campaigns(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    rows = []
    for c in store.list_campaigns(s):
        counts = store.next_release_counts(s, c.id)
        rows.append({"c": c, "with_thresholds": sum(1 for ex in c.exercises if ex.thresholds),
                     "revision": counts["revision"], "entered": _entered(store, s, c), "url": f"/admin/release/{c.id}"})
    return await render(request, "admin_campaigns.html", {"campaigns": rows})


def _digest(document: dict | None) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def _release_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                        status: int = 200) -> web.StreamResponse:
    store, s, node = store_of(request), unlocked(request), node_of(request)
    campaign = campaign_of(store, s, request.match_info["campaign_id"])
    view = release_view(store, s, node.federation, campaign.id)  # the use case `preau release` shows too
    preview = view.preview
    doc = preview.document()
    names = {ex.id: ex.name for ex in campaign.exercises}
    order = {ex.id: i for i, ex in enumerate(campaign.exercises)}  # as the class pages list them, not by id
    table = sorted(({"name": names.get(r["exercise"], r["exercise"]), **r} for r in preview.table()),
                   key=lambda row: order.get(row["exercise"], len(order)))
    lang = request_language(request)
    pinned = [{"name": names.get(ex, ex), "t1": t[0], "t2": t[1]} for ex, t in preview.thresholds]
    asked = [asked_words(a, names, lang) for a in preview.asked]
    return await render(request, "admin_release.html", {
        "pinned": pinned, "asked": asked,
        "campaign": campaign, "preview": preview, "table": table, "document": doc,
        "raw": json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) if doc is not None else "",
        "digest": _digest(doc), "joined": node.federation.upstream() is not None,
        "pools": view.pools, "declaration": _declaration(store, s, node, campaign),
        "pool_why": lambda p: pool_why(p, lang),
        "reason": reasons_words(preview.decision, names).to(request_language(request)),
        "notice": notice, "errors": errors or [], "page_url": f"/admin/release/{campaign.id}"}, status=status)


@login_required(roles=ADMIN)
async def release_page(request: web.Request) -> web.StreamResponse:
    return await _release_page(request)


@login_required(roles=ADMIN)
async def release_approve(request: web.Request) -> web.StreamResponse:
    store, s, node = store_of(request), unlocked(request), node_of(request)
    campaign = campaign_of(store, s, request.match_info["campaign_id"])
    form = await request.post()
    t = t_(request)
    preview = release_view(store, s, node.federation, campaign.id).preview
    if form_text(form, "digest", 64) != _digest(preview.document()):
        return await _release_page(request, errors=[t("release.changed")], status=409)
    try:
        signed = await on_db(request, approve_release, store, s, node.federation, preview)
    except UserError as exc:
        return await _release_page(request, errors=[refused(request, exc)], status=exc.status)
    node.wakeup.set()  # send it now rather than at the next scheduled sync
    raise await see_other(request, f"/admin/release/{campaign.id}", notice=t("release.approved", number=signed.release))


@login_required(roles=ADMIN)
async def pool_approve(request: web.Request) -> web.StreamResponse:
    """The head teacher accepts a pool shown on the release page: the school's counts are frozen, masked, sent."""
    store, s, node = store_of(request), unlocked(request), node_of(request)
    campaign = campaign_of(store, s, request.match_info["campaign_id"])
    try:
        definition, _state = fpools.proposal(node.federation, request.match_info["pool_id"])
        if definition.campaign_id != campaign.id:
            raise NotFound(said("msg.pool.other_campaign"))
        vector, policy = pool_counts(store, s, node.federation, campaign.id)  # thresholds as first released
        await on_db(request, fpools.approve_pool, node.federation, definition.pool_id.hex(), vector,
                    min_cohort=policy.min_cohort, user=s.username)
    except UserError as exc:
        return await _release_page(request, errors=[refused(request, exc)], status=exc.status)
    node.wakeup.set()  # send the keys now rather than at the next scheduled sync
    raise await see_other(request, f"/admin/release/{campaign.id}", notice=t_(request)("pool.approved"))


def pool_why(view: fpools.PoolView, lang: str) -> str:
    """Why Préau refused or left a pool, for the head teacher: the catalog's words for its code, else as recorded."""
    return view.why(lang) or ""


def _declaration(store, session, node: Any, campaign) -> dict[str, Any] | None:
    """What the release page says of the school's cohort declaration: shown when the school is small."""
    cohort = pool_vector(store.release_outcomes(session, campaign.id), campaign)[-1]
    declared = fpools.declared_cohort(node.federation, campaign.id)
    if cohort >= campaign.policy.min_cohort and declared is None:
        return None
    return {"cohort": cohort, "declared": declared, "min_cohort": campaign.policy.min_cohort}


def _declare(store, session, node: Any, campaign_id: str) -> int:
    """All the store work of the declaration: the cohort from the records, signed and queued for the district."""
    campaign = campaign_of(store, session, campaign_id)
    cohort = pool_vector(store.release_outcomes(session, campaign.id), campaign)[-1]
    fpools.declare_cohort(node.federation, campaign.id, store.school()["uai"], cohort)
    return cohort


@login_required(roles=ADMIN)
async def pool_declare(request: web.Request) -> web.StreamResponse:
    """The head teacher declares the school's cohort (public figures, signed) so the district can pool it."""
    await request.post()  # (the CSRF token was checked by the middleware; nothing else is read)
    store, s, node = store_of(request), unlocked(request), node_of(request)
    campaign_id = request.match_info["campaign_id"]
    try:
        cohort = await on_db(request, _declare, store, s, node, campaign_id)
    except UserError as exc:
        return await _release_page(request, errors=[refused(request, exc)], status=exc.status)
    node.wakeup.set()  # send it now rather than at the next scheduled sync
    raise await see_other(request, f"/admin/release/{campaign_id}", notice=t_(request)("pool.declared", n=cohort))


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/admin/accounts", accounts)
    r.add_post("/admin/accounts", account_action)
    r.add_get("/admin/classes", admin_classes)
    r.add_post("/admin/classes", class_action)
    r.add_get("/admin/campaigns", campaigns)
    r.add_get("/admin/release/{campaign_id:[a-z0-9-]{3,64}}", release_page)
    r.add_post("/admin/release/{campaign_id:[a-z0-9-]{3,64}}", release_approve)
    r.add_post("/admin/release/{campaign_id:[a-z0-9-]{3,64}}/pool/{pool_id:[0-9a-f]{32}}", pool_approve)
    r.add_post("/admin/release/{campaign_id:[a-z0-9-]{3,64}}/declare", pool_declare)
