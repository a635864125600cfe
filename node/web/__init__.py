"""The web interface: pages, sessions and the security around them.

How the node app uses it (node/web/site.py does all of this for `create_app`):

    setup_web(app, authenticate=store.authenticate, config=WebConfig(secure_cookies=..., nav=..., home=...),
              session_store=None)          # on the root app, before its own routes
    @login_required(roles=("teacher",))    # every route declares who may see it, or is refused
    async def grid(request):
        require_class(request, class_id)   # pupils' pages: only the class's teachers
        return await render(request, "grid.html", {...})
    web.AppRunner(app, access_log_class=PrivateAccessLogger)   # no query strings in logs

State-changing requests need the session's CSRF token: forms get `csrf_token`
from the page context, fetch sends it as the X-CSRF-Token header.
"""
from __future__ import annotations

from .mount import NavItem, WebConfig, setup_web
from .render import refusal, render, static_url
from .security import (
    AccessDenied, InMemorySessionStore, LoginRateLimiter, Principal, PrivateAccessLogger, QueryStringFilter,
    SessionRecord, SessionStore, csrf_token, current_principal, end_sessions_of, login_required, public,
    require_class, undeclared_routes,
)

__all__ = [
    "AccessDenied", "InMemorySessionStore", "LoginRateLimiter", "NavItem", "Principal", "PrivateAccessLogger",
    "QueryStringFilter", "SessionRecord", "SessionStore", "WebConfig", "csrf_token", "current_principal",
    "end_sessions_of", "login_required", "public", "refusal", "render", "require_class", "setup_web", "static_url",
    "undeclared_routes",
]
