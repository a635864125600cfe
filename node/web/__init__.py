"""The web interface: pages, sessions and the security around them.

The node app mounts it with `setup_web(app, authenticate=...)`, then adds its
own routes, each marked with `login_required(roles=...)` or `public`.
"""
from __future__ import annotations

from .mount import NavItem, WebConfig, setup_web
from .render import render, static_url
from .security import (
    AccessDenied, InMemorySessionStore, LoginRateLimiter, Principal, PrivateAccessLogger, QueryStringFilter,
    SessionRecord, SessionStore, csrf_token, current_principal, end_sessions_of, login_required, public, refusal,
    require_class, undeclared_routes,
)

__all__ = [
    "AccessDenied", "InMemorySessionStore", "LoginRateLimiter", "NavItem", "Principal", "PrivateAccessLogger",
    "QueryStringFilter", "SessionRecord", "SessionStore", "WebConfig", "csrf_token", "current_principal",
    "end_sessions_of", "login_required", "public", "refusal", "render", "require_class", "setup_web", "static_url",
    "undeclared_routes",
]
