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

from .accounts_form import AccountsForm, act
from .context import on_db, store_of, unlocked
from .render import render
from .security import current_principal, login_required

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


ACCOUNTS = AccountsForm("/district/accounts", admin_role="district",
                        notices={"create": "daccounts.created", "disable": "daccounts.disabled"})


@login_required(roles=ADMIN)
async def account_action(request: web.Request) -> web.StreamResponse:
    return await act(request, ACCOUNTS, _accounts_page)


@login_required(roles=ADMIN)
async def audit_page(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    entries = store.audit_log(s, limit=500)
    return await render(request, "district_audit.html", {"entries": entries})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/district/accounts", accounts)
    r.add_post("/district/accounts", account_action)
    r.add_get("/district/audit", audit_page)
