"""Typed keys for what the web layer keeps on the application and on each request.

Declared in one module so the node app, the web layer and the tests agree on them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from aiohttp import web

if TYPE_CHECKING:
    from preau.node.web.mount import WebConfig
    from preau.node.web.security import Authenticator, LoginRateLimiter, SessionStore
    from preau.node.web.site import OffLoopLogins, UnlockedSessions

# aiohttp >= 3.12 warns on plain-string request keys; older releases have no RequestKey.
_RequestKey: Any = getattr(web, "RequestKey", None)


def _request_key(name: str, kind: type) -> Any:
    return _RequestKey(name, kind) if _RequestKey is not None else name


WEB_CONFIG: web.AppKey["WebConfig"] = web.AppKey("preau.web.config")
SESSION_STORE: web.AppKey["SessionStore"] = web.AppKey("preau.web.session_store")
AUTHENTICATE: web.AppKey["Authenticator"] = web.AppKey("preau.web.authenticate")
RATE_LIMITER: web.AppKey["LoginRateLimiter"] = web.AppKey("preau.web.rate_limiter")
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("preau.web.clock")
SETTINGS: web.AppKey[Any] = web.AppKey("preau.web.settings")
UNLOCKED: web.AppKey["UnlockedSessions"] = web.AppKey("preau.web.unlocked")
LOGINS: web.AppKey["OffLoopLogins"] = web.AppKey("preau.web.logins")

REQUEST_SESSION = _request_key("preau.web.session", object)
"""The request's `_RequestSession` (use `security.get_session` / `current_principal`, not this)."""
REQUEST_LANG = _request_key("preau.web.lang", str)
