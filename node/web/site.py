"""The node's web interface on real data: logins backed by the encrypted store, and every page mounted.

`setup_site(app, settings)` is what `create_app` calls. A login runs the
store's Argon2id check in a worker thread, and the store `Session` it returns
(it holds the unlocked keys) stays on the server, in `UnlockedSessions`,
reachable only through an opaque handle in the web session record. The
cookie carries a random token and nothing else. Logging out, idling past the
timeout, or being evicted ends the store session too (its keys are dropped).

Roles: on a school node the head teacher is "admin" and teachers "teacher";
on a district node an administrator account (the store's "admin": invites
schools, publishes campaigns, manages accounts) is "district", and any other
account is a read-only "inspector" (schools, statistics, reports). School
pages declare admin/teacher and district pages declare district, so each
node refuses the other's pages by role alone.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import secrets
import sqlite3
import time
from typing import Any, AsyncIterator, Callable

from aiohttp import web

from ..appkeys import NODE
from ..errors import Busy, UserError
from preau.node.records.errors import AuthError
from preau.node.web.appkeys import CLOCK, LOGINS, SETTINGS, UNLOCKED, WEB_CONFIG
from . import district, gdpr, school
from .context import LoginAgain, node_of, refused, store_of, unlocked
from .mount import NavItem, WebConfig, setup_web
from .render import refusal, refusal_of, render
from .security import (
    InMemorySessionStore, Principal, SessionRecord, current_principal, logout_session, public,
    wants_json,
)

log = logging.getLogger("preau.node.web")


NAV = (
    NavItem("nav.classes", "/classes", frozenset({"teacher", "admin"})),
    NavItem("nav.accounts", "/admin/accounts", frozenset({"admin"})),
    NavItem("nav.admin_classes", "/admin/classes", frozenset({"admin"})),
    NavItem("nav.campaigns", "/admin/campaigns", frozenset({"admin"})),
    NavItem("nav.sync", "/admin/sync", frozenset({"admin"})),
    NavItem("nav.transparency", "/admin/transparency", frozenset({"admin"})),
    NavItem("nav.backup", "/admin/backup", frozenset({"admin"})),
    NavItem("nav.gdpr", "/admin/gdpr", frozenset({"admin"})),
    NavItem("nav.schools", "/district/schools", frozenset({"district", "inspector"})),
    NavItem("nav.invitations", "/district/invitations", frozenset({"district"})),
    NavItem("nav.district_campaigns", "/district/campaigns", frozenset({"district"})),
    NavItem("nav.stats", "/district/stats", frozenset({"district", "inspector"})),
    NavItem("dnav.accounts", "/district/accounts", frozenset({"district"})),
    NavItem("dnav.audit", "/district/audit", frozenset({"district"})),
)
HOMES = {"teacher": "/classes", "admin": "/admin/sync", "district": "/district/schools", "inspector": "/district/stats"}


def home_of(principal: Principal) -> str:
    return HOMES[principal.role]


class UnlockedSessions(InMemorySessionStore):
    """Web session records, plus the store session each logged-in record unlocked.

    Whenever a logged-in record leaves (logout, expiry, eviction, account
    change), its store session is logged out: the keys it held are dropped.
    """

    def __init__(self, max_sessions: int = 10_000, max_anonymous: int = 2_000) -> None:
        super().__init__(max_sessions, max_anonymous)
        self._unlocked: dict[str, Any] = {}
        self._young: set[str] = set()  # handles seen unattached at the last sweep (a login in flight)

    def register(self, store_session: Any) -> str:
        handle = secrets.token_urlsafe(24)
        self._unlocked[handle] = store_session
        return handle

    def unlocked(self, handle: str) -> Any | None:
        return self._unlocked.get(handle) if handle else None

    def _end(self, record: SessionRecord | None) -> None:
        if record is None or record.principal is None:
            return
        s = self._unlocked.pop(record.principal.handle, None)
        if s is not None:
            s.logout()

    async def save(self, record: SessionRecord) -> None:
        if record.principal is not None and record.key not in self._users and len(self._users) >= self._max:
            self._end(next(iter(self._users.values())))  # the one about to be evicted
        await super().save(record)

    async def delete(self, key: str) -> None:
        self._end(self._users.get(key))
        await super().delete(key)

    async def delete_user(self, username: str) -> int:
        for record in [r for r in self._users.values() if r.principal and r.principal.username == username]:
            self._end(record)
        return await super().delete_user(username)

    async def sweep(self, now: float, idle: float, longest: float) -> int:
        """Drop expired records (and their keys); the middleware would only notice on their next request."""
        gone = [r.key for table in (self._users, self._anonymous) for r in table.values()
                if now - r.last_seen > idle or now - r.created > longest]
        for key in gone:
            await self.delete(key)
        # Handles registered by a login whose response never completed have no record: drop them too.
        # A handle is dropped once two sweeps in a row found it unattached.
        live = {r.principal.handle for r in self._users.values() if r.principal}
        unattached = set(self._unlocked) - live
        for handle in unattached & self._young:
            self._unlocked.pop(handle).logout()
        self._young = unattached - self._young
        return len(gone)

    def count_unlocked(self) -> int:
        return len(self._unlocked)


def make_authenticator(app: web.Application, sessions: UnlockedSessions) -> Callable[[str, str], Any]:
    async def authenticate(username: str, password: str) -> Principal | None:
        node = app[NODE]
        store = node.store
        if store is None:
            return None
        try:
            s = await app[LOGINS].login(store, username, password, run=node.run)
        except AuthError:
            return None
        if node.role == "district":
            role = "district" if s.is_admin else "inspector"
        else:
            role = "admin" if s.is_admin else "teacher"
        class_ids = frozenset(c.id for c in store.list_classes(s)) if role == "teacher" else frozenset()
        return Principal(s.username, role, s.username, class_ids, handle=sessions.register(s))

    return authenticate


class OffLoopLogins:
    """Password checks off the event loop.

    Argon2id takes 0.1-1 s by design, and every teacher's saves run on the
    loop, so the key derivation runs in a worker thread; the store's database
    is read on the loop (`Store.login_attempt`) and written on the node's database thread (`finish_login`).
    """

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="preau-login")

    async def login(self, main: Any, username: str, password: str, run: Any = None) -> Any:
        attempt = main.login_attempt(username)
        kek = await asyncio.get_running_loop().run_in_executor(self._pool, attempt.derive, password)
        if run is None:
            return main.finish_login(attempt, kek)
        return await run(main.finish_login, attempt, kek)  # it writes (last login): the database thread

    async def derive(self, fn: Any, *args: Any, **kw: Any) -> Any:
        """Other Argon2id work (a new account's credential, a reset password) on the same workers."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kw))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@web.middleware
async def page_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Domain errors on pages become a page (or the JSON shape for fetch), in the person's language."""
    try:
        return await handler(request)
    except (LoginAgain, AuthError):
        await logout_session(request)
        if request.method == "GET" and not wants_json(request) and not request.path.startswith("/v1/"):
            raise web.HTTPSeeOther(request.config_dict[WEB_CONFIG].login_path)
        return await refusal(request, 401, "error.login_needed")
    except UserError as exc:
        if request.path.startswith("/v1/"):
            raise
        key = {403: "error.forbidden", 404: "error.not_found"}.get(exc.status)
        if key:
            return await refusal(request, exc.status, key)
        return await refusal_of(request, exc.status if 400 <= exc.status < 600 else 400, refused(request, exc))
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        # An unknown address, or a form's address opened by hand (GET on a POST-only path): a page in the
        # person's language with a way back, not aiohttp's bare "404: Not Found".
        if request.path.startswith(("/v1/", "/static/", "/healthz")) or wants_json(request):
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return await refusal(request, exc.status, "error.not_found" if exc.status == 404 else "error.method",
                             headers=headers)
    except sqlite3.OperationalError as exc:
        # Another process held the database past the wait: the person should retry, nothing was changed.
        if Busy.from_sqlite(exc) is None or request.path.startswith("/v1/"):
            raise
        return await refusal(request, 503, "error.busy")


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    cfg = app[WEB_CONFIG]

    async def loop() -> None:
        while True:
            await asyncio.sleep(60)
            await app[UNLOCKED].sweep(app[CLOCK](), cfg.session_idle_seconds, cfg.session_max_seconds)

    app[LOGINS] = OffLoopLogins()
    task = asyncio.create_task(loop(), name="preau-web-sweeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for record in list(app[UNLOCKED]._users.values()):
            app[UNLOCKED]._end(record)
        app[LOGINS].close()


@public
async def root(request: web.Request) -> web.StreamResponse:
    principal = current_principal(request)
    raise web.HTTPSeeOther(home_of(principal) if principal else "/login")


def web_config(settings: Any) -> WebConfig:
    secure = bool(settings.public_url and str(settings.public_url).startswith("https://"))
    return WebConfig(
        secure_cookies=secure,
        session_idle_seconds=float(settings.web_session_timeout),
        login_address_max=int(settings.login_rate_limit),
        login_window_seconds=60.0,
        nav=NAV,
        home=home_of,
    )


def setup_site(app: web.Application, settings: Any, *, clock: Callable[[], float] = time.time) -> None:
    """Mount sessions, security and every page on the node's app (both roles: pages refuse by role)."""

    sessions = UnlockedSessions()
    app[UNLOCKED] = sessions
    app[SETTINGS] = settings
    setup_web(app, authenticate=make_authenticator(app, sessions), config=web_config(settings),
              session_store=sessions, clock=clock)
    app.middlewares.append(page_errors)
    app.cleanup_ctx.append(_sweeper)
    app.router.add_get("/", root)
    for typed in ("/admin", "/district"):  # addresses people type by hand: to their own home, not a 404
        app.router.add_get(typed, root)
    school.add_routes(app.router)
    gdpr.add_routes(app.router)
    district.add_routes(app.router)


__all__ = ["UNLOCKED", "UnlockedSessions", "home_of", "make_authenticator", "node_of", "page_errors", "refused",
           "setup_site", "store_of", "unlocked", "web_config", "render"]
