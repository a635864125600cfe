"""`setup_web(app, ...)`: what the node app calls once to get sessions, CSRF, headers, pages and login."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from aiohttp import web

from preau.node import i18n

from . import security
from preau.node.web.appkeys import AUTHENTICATE, CLOCK, RATE_LIMITER, SESSION_STORE, WEB_CONFIG
from .flash import setup_flash
from .render import STATIC, refusal, refusal_middleware, render, setup_rendering
from .security import (
    Authenticator, InMemorySessionStore, LoginRateLimiter, Principal, SessionStore, call_authenticator,
    client_address, current_principal, login_session, logout_session, public, safe_next,
)


@dataclass(frozen=True, slots=True)
class NavItem:
    """A link in the page header, shown to the given roles (all logged-in roles if empty)."""

    label_key: str
    path: str
    roles: frozenset[str] = frozenset()


def _default_home(principal: Principal) -> str:
    return "/"


@dataclass(frozen=True, slots=True)
class WebConfig:
    """Web settings; the node's settings table fills these (secure_cookies when behind TLS)."""

    secure_cookies: bool = False
    cookie_name: str = "preau_session"
    session_idle_seconds: float = 2 * 3600
    session_max_seconds: float = 12 * 3600
    login_account_max: int = 5
    login_address_max: int = 20
    login_window_seconds: float = 15 * 60
    login_lockout_seconds: float = 15 * 60
    login_path: str = "/login"
    logout_path: str = "/logout"
    nav: tuple[NavItem, ...] = ()
    home: Callable[[Principal], str] = field(default=_default_home)


def setup_web(app: web.Application, *, authenticate: Authenticator, config: WebConfig | None = None,
              session_store: SessionStore | None = None, clock: Callable[[], float] = time.time,
              template_dirs: Iterable[str] = ()) -> None:
    """Install templates, /static, the security middlewares and headers, and /login + /logout on `app`.

    Call it on the root application before adding routes that need sessions;
    sub-applications inherit the middlewares.
    """
    config = config or WebConfig()
    app[WEB_CONFIG] = config
    app[AUTHENTICATE] = authenticate
    app[SESSION_STORE] = session_store if session_store is not None else InMemorySessionStore()
    app[RATE_LIMITER] = LoginRateLimiter(
        account_max=config.login_account_max, address_max=config.login_address_max,
        window=config.login_window_seconds, lockout=config.login_lockout_seconds,
    )
    app[CLOCK] = clock
    setup_rendering(app, template_dirs)
    setup_flash(app)
    app.middlewares.extend([security.session_middleware, refusal_middleware, security.csrf_middleware,
                            security.access_middleware])
    app.on_response_prepare.append(security.security_headers)
    app.router.add_static("/static", STATIC, name="preau.static")
    app.router.add_get(config.login_path, login_page, name="preau.login")
    app.router.add_post(config.login_path, login_submit, name="preau.login.submit")
    app.router.add_post(config.logout_path, logout, name="preau.logout")


_MAX_USERNAME = 100
_MAX_PASSWORD = 1024


def _login_context(username: str = "", next_path: str = "", error: str | None = None) -> Mapping[str, object]:
    return {"username": username, "next": next_path, "error": error}


@public
async def login_page(request: web.Request) -> web.StreamResponse:
    principal = current_principal(request)
    cfg = request.config_dict[WEB_CONFIG]
    if principal is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next"), cfg.home(principal)))
    return await render(request, "login.html", _login_context(next_path=safe_next(request.query.get("next"), "")))


@public
async def login_submit(request: web.Request) -> web.StreamResponse:
    cfg = request.config_dict[WEB_CONFIG]
    form = await request.post()
    username = str(form.get("username", "")).strip()[:_MAX_USERNAME]
    password = str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "")), "")
    t = i18n.translate
    lang = security.request_language(request)
    if not username or not password or len(password) > _MAX_PASSWORD:
        return await render(request, "login.html", _login_context(username, next_path, t(lang, "login.missing")), status=400)
    limiter = request.config_dict[RATE_LIMITER]
    address = client_address(request)
    now = request.config_dict[CLOCK]()
    wait = limiter.locked_for(username, address, now)
    if wait > 0:
        minutes = max(1, int(-(-wait // 60)))
        return await render(request, "login.html", _login_context(username, next_path, t(lang, "login.locked", minutes=minutes)),
                            status=429, headers={"Retry-After": str(int(wait) + 1)})
    principal = await call_authenticator(request.config_dict[AUTHENTICATE], username, password)
    if principal is None:
        limiter.failure(username, address, now)
        security.log.info("failed login from %s", address)
        return await render(request, "login.html", _login_context(username, next_path, t(lang, "login.failed")), status=401)
    limiter.success(username, address)
    await login_session(request, principal)
    raise web.HTTPSeeOther(next_path or cfg.home(principal))


@security.login_required()
async def logout(request: web.Request) -> web.StreamResponse:
    await logout_session(request)
    raise web.HTTPSeeOther(request.config_dict[WEB_CONFIG].login_path)


__all__ = ["NavItem", "WebConfig", "setup_web", "login_page", "login_submit", "logout", "refusal"]
