"""The accounts form, one piece for both kinds of node: a school's head teacher and a district's administrator
create accounts and disable them (and, at a school, reset a forgotten password) through the same handler.

Each node says where its page lives, which value of the form's "role" field makes an administrator, and which
actions it offers with the catalog key of each one's notice; an action it does not offer is a bad request.
Disabling an account or resetting its password ends that person's open sessions at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web

from ..errors import UserError
from .appkeys import LOGINS, RATE_LIMITER
from .context import form_text, on_db, refused, store_of, t_, unlocked
from .flash import see_other
from .security import end_sessions_of

Page = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class AccountsForm:
    url: str                    # the page, where the form posts and where a done action comes back
    admin_role: str             # the "role" value that makes an administrator (anything else: the other role)
    notices: Mapping[str, str]  # action -> catalog key of the notice shown once it is done


async def argon2(request: web.Request, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """A password's key derivation (0.1-1 s by design) on the login workers: neither the event loop nor the
    database thread, which every other write and every sync session goes through, waits for it."""
    return await request.app[LOGINS].derive(fn, *args, **kw)


async def act(request: web.Request, form: AccountsForm, page: Page) -> web.StreamResponse:
    """Do the posted action on an account, then come back to the page with its notice (or redraw it with the refusal)."""
    store, s = store_of(request), unlocked(request)
    posted = await request.post()
    action = form_text(posted, "action")
    username = form_text(posted, "username", 40)
    password = posted.get("password", "") if isinstance(posted.get("password", ""), str) else ""
    if action not in form.notices:
        raise web.HTTPBadRequest()
    try:
        if action == "create":
            role = "admin" if form_text(posted, "role") == form.admin_role else "teacher"
            credential = await argon2(request, store.account_credential, password)
            await on_db(request, store.create_account, s, username, None, role, credential=credential)
        elif action == "reset":
            credential = await argon2(request, store.account_credential, password, account_id=store.account_id(username))
            await on_db(request, store.reset_password, s, username, None, credential=credential)
            request.config_dict[RATE_LIMITER].reset_account(username)  # a reset unlocks the account everywhere
            await end_sessions_of(request.app, username)
        elif action == "disable":
            await on_db(request, store.disable_account, s, username)
            await end_sessions_of(request.app, username)
        else:
            raise web.HTTPBadRequest()
    except UserError as exc:  # redrawn with what was typed (never the password), the cursor where it was
        typed = {"action": action, "username": username, "role": form_text(posted, "role")}
        return await page(request, errors=[refused(request, exc)], status=exc.status, typed=typed)
    # after a creation the cursor is back in the new account's name: the next one is typed at once
    raise await see_other(request, form.url, notice=t_(request)(form.notices[action], username=username),
                          shown={"done": action})
