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

import datetime as dt
from typing import Any

from aiohttp import web

from ..i18n import catalog, when

from .accounts_form import AccountsForm, act
from .context import on_db, store_of, unlocked
from .render import render
from .security import current_principal, login_required, request_language

ADMIN = ("district",)


async def audit(request: web.Request, action: str, target: str, detail: str = "") -> None:
    """Note what the logged-in person just did, under their name, in the sealed audit log."""
    store = store_of(request)
    if store is not None and current_principal(request) is not None:
        await on_db(request, store.record, unlocked(request), action, target, detail)


async def _accounts_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                         status: int = 200, typed: dict[str, str] | None = None) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)
    rows = [{"username": a.username, "role": "district" if a.role == "admin" else "inspector", "active": a.active}
            for a in store.list_accounts(s)]
    return await render(request, "district_accounts.html", {"accounts": rows, "notice": notice, "errors": errors or [],
                                                             "me": s.username, "typed": typed or {}, "done": None, "page_url": "/district/accounts"},
                        status=status)


@login_required(roles=ADMIN)
async def accounts(request: web.Request) -> web.StreamResponse:
    return await _accounts_page(request)


ACCOUNTS = AccountsForm("/district/accounts", admin_role="district",
                        notices={"create": "daccounts.created", "reset": "accounts.reset_done",
                                 "disable": "daccounts.disabled"})


@login_required(roles=ADMIN)
async def account_action(request: web.Request) -> web.StreamResponse:
    return await act(request, ACCOUNTS, _accounts_page)


@login_required(roles=ADMIN)
async def audit_page(request: web.Request) -> web.StreamResponse:
    store, s = store_of(request), unlocked(request)

    def read() -> tuple[list[Any], dict[str, str]]:
        return store.audit_log(s, 500), {f"account:{a.id}": a.username for a in store.list_accounts(s)}

    entries, accounts = await on_db(request, read)
    lang = request_language(request)
    words = catalog(lang)
    # Not every entry is a person's: the set-up, the store itself, the recovery key; and "school" is this node.
    rows = [{"at": e.at, "when": _when(e.at, lang), "actor": e.actor,
             "who": words.get(f"daudit.actor.{e.actor}", e.actor.removeprefix("account:")),
             "action": e.action, "what": words.get(f"daudit.action.{e.action}", e.action),
             "target": accounts.get(e.target) or words.get(f"daudit.target.{e.target}", e.target),
             "detail": _detail(e, words)} for e in entries]
    return await render(request, "district_audit.html", {"entries": rows})


def _detail(e: Any, words: Any) -> str:
    """An account's creation is noted "<username> <store role>": said with the district's role names (the store's
    "admin" is an administrator, its "teacher" an inspector)."""
    name, _, role = e.detail.partition(" ")
    if e.action == "account-created" and role in ("admin", "teacher"):
        return f"{name} — {words['daccounts.role_district' if role == 'admin' else 'daccounts.role_inspector']}"
    return e.detail


def _when(at: str, lang: str) -> str:
    """An entry's moment as the other pages write it (30/11/2026 10:49), not its ISO text; the ISO text if odd."""
    try:
        return when(dt.datetime.fromisoformat(at).timestamp(), lang)
    except ValueError:
        return at


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/district/accounts", accounts)
    r.add_post("/district/accounts", account_action)
    r.add_get("/district/audit", audit_page)
