"""People at the district: several accounts, each an administrator or a read-only inspector, and an audit of
who did what.

Accounts live in the district node's encrypted store, like a school's: the
store's "admin" accounts are the district's administrators (role "district":
invitations, campaigns, thresholds, accounts) and its other accounts are
inspectors (role "inspector": schools, statistics, exports, reports, nothing
they can change). Every administrator action is written to the store's sealed
audit log under the person's own name (`audit`), read on /district/audit.
"""
from __future__ import annotations


from aiohttp import web

from ..errors import UserError
from .context import form_text, on_db, refused, store_of, t_, unlocked
from .flash import see_other
from .render import render
from .security import current_principal, end_sessions_of, login_required

ADMIN = ("district",)


async def audit(request: web.Request, action: str, target: str, detail: str = "") -> None:
    """Note what the logged-in person just did, under their name, in the sealed audit log."""
    store = store_of(request)
    if store is not None and current_principal(request) is not None:
        await on_db(request, store.record, unlocked(request), action, target, detail)


async def _accounts_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                         status: int = 200) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    rows = [{"username": a.username, "role": "district" if a.role == "admin" else "inspector", "active": a.active}
            for a in store.list_accounts(s)]
    return await render(request, "district_accounts.html", {"accounts": rows, "notice": notice, "errors": errors or [],
                                                             "me": s.username, "page_url": "/district/accounts"},
                        status=status)


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
            role = "admin" if form_text(form, "role") == "district" else "teacher"
            await on_db(request, store.create_account, s, username, password, role)
            notice = t("daccounts.created", username=username)
        elif action == "disable":
            await on_db(request, store.disable_account, s, username)
            await end_sessions_of(request.app, username)
            notice = t("daccounts.disabled", username=username)
        else:
            raise web.HTTPBadRequest()
    except UserError as exc:
        return await _accounts_page(request, errors=[refused(request, exc)], status=exc.status)
    raise await see_other(request, "/district/accounts", notice=notice)


@login_required(roles=ADMIN)
async def audit_page(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    entries = store.audit_log(s, limit=500)
    return await render(request, "district_audit.html", {"entries": entries})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/district/accounts", accounts)
    r.add_post("/district/accounts", account_action)
    r.add_get("/district/audit", audit_page)
