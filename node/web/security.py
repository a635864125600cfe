"""The web layer's security, one concern per module; this module holds CSRF and the security headers, and
names everything the rest of the node imports from here.

- `sessions`: who is logged in (principals, session cookies and their store, expiry, the request's language);
- `access`: route access rules (`login_required`, `public`; a route without one is refused) and `safe_next`;
- `logins`: growing delays after failed logins, and the call to the authenticator;
- `accesslog`: an access log with nothing that depends on a pupil;
- here: the CSRF check of every state-changing request, and the headers of every response (CSP, nosniff...).

None of this knows about storage: who a person is comes from an injected
`authenticate(username, password)` callable, and sessions live behind the
small `SessionStore` interface.
"""
from __future__ import annotations

import hmac
import logging
from typing import Any

from aiohttp import web

from preau.node.web.access import (  # noqa: F401  (names the node imports from here)
    CSRF_HEADER, SAFE_METHODS, AccessDenied, AccessRule, Refused, access_middleware, access_rule, login_required,
    public, require_class, safe_next, undeclared_routes, wants_json,
)
from preau.node.web.accesslog import PrivateAccessLogger, QueryStringFilter, log_path  # noqa: F401
from preau.node.web.logins import LoginRateLimiter, call_authenticator, client_address  # noqa: F401
from preau.node.web.sessions import (  # noqa: F401
    ROLES, Authenticator, InMemorySessionStore, Principal, SessionRecord, SessionStore, _cookie_secure, _state,
    csrf_token, current_principal, end_sessions_of, get_session, login_session, logout_session, request_language,
    session_middleware,
)

log = logging.getLogger("preau.node.web")

CSRF_FIELD = "csrf_token"

__all__ = [  # this module's own, then what it names for the rest of the node
    "CONTENT_SECURITY_POLICY", "CSRF_FIELD", "SECURITY_HEADERS", "csrf_middleware", "security_headers",
    "CSRF_HEADER", "SAFE_METHODS", "AccessDenied", "AccessRule", "Refused", "access_middleware", "access_rule",
    "login_required", "public", "require_class", "safe_next", "undeclared_routes", "wants_json",
    "PrivateAccessLogger", "QueryStringFilter", "log_path", "LoginRateLimiter", "call_authenticator", "client_address",
    "ROLES", "Authenticator", "InMemorySessionStore", "Principal", "SessionRecord", "SessionStore", "csrf_token",
    "current_principal", "end_sessions_of", "get_session", "login_session", "logout_session", "request_language",
    "session_middleware",
]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}



@web.middleware
async def csrf_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every state-changing request carries the session's token (form field or header)."""
    if request.method in SAFE_METHODS or getattr(request.match_info, "http_exception", None) is not None:
        return await handler(request)  # reads, and 404/405 answers, change nothing
    record = _state(request).record
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()  # cached by aiohttp: the handler reads it again for free
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if record is None or not sent or not hmac.compare_digest(sent.encode(), record.csrf_token.encode()):
        log.info("refused %s %s: missing or stale CSRF token", request.method, log_path(request))
        raise Refused(403, "error.csrf")
    return await handler(request)



async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: runs for every response, errors and static files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "public, max-age=86400")
    else:
        # Pages carry pupils' names: never keep them in a shared PC's cache.
        response.headers["Cache-Control"] = "no-store"
