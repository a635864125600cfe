"""Who may see what: every route declares its rule (`login_required` or `public`), and one that declares
nothing is refused, so a forgotten check fails closed rather than open.
"""
from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from aiohttp import web
from aiohttp.web_urldispatcher import StaticResource
from yarl import URL

from preau.node.web.appkeys import WEB_CONFIG
from preau.node.web.sessions import ROLES, Principal, current_principal

log = logging.getLogger("preau.node.web")

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# -- refusals ----------------------------------------------------------------

def wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return (
        "application/json" in accept
        or request.content_type == "application/json"
        or CSRF_HEADER in request.headers
    )


class Refused(Exception):
    """A request refused by the security layer; `render.refusal_middleware` turns it into the page or JSON."""

    def __init__(self, status: int, key: str, headers: dict[str, str] | None = None):
        super().__init__(key)
        self.status, self.key, self.headers = status, key, headers


# -- access rules ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AccessRule:
    public: bool = False
    roles: frozenset[str] = field(default_factory=frozenset)  # empty: any logged-in role


_ACCESS_ATTR = "__preau_access__"


async def _check(request: web.Request, rule: AccessRule) -> None:
    """Return if `rule` lets this request through; else raise (to the login page, or `Refused`)."""
    if rule.public:
        return
    principal = current_principal(request)
    if principal is None:
        if request.method in SAFE_METHODS and not wants_json(request):
            login = request.config_dict[WEB_CONFIG].login_path
            raise web.HTTPSeeOther(str(URL(login).with_query(next=safe_next(request.path_qs))))
        raise Refused(401, "error.login_needed")
    if rule.roles and principal.role not in rule.roles:
        raise Refused(403, "error.forbidden")


def login_required(roles: Iterable[str] | None = None) -> Callable[[Any], Any]:
    """Mark a handler (function or web.View class) as open to logged-in people with one of `roles`.

    `roles=None` means any role. The access middleware enforces it; a wrapped
    function checks again, so a handler mounted without the middleware stays shut.
    """
    wanted = frozenset(roles or ())
    unknown = wanted - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; known: {', '.join(ROLES)}")
    rule = AccessRule(public=False, roles=wanted)

    def mark(handler: Any) -> Any:
        if inspect.isclass(handler):
            setattr(handler, _ACCESS_ATTR, rule)
            return handler

        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            await _check(request, rule)
            return await handler(request)

        setattr(checked, _ACCESS_ATTR, rule)
        return checked

    return mark


def public(handler: Any) -> Any:
    """Mark a handler as open to anyone (the login page, health checks)."""
    setattr(handler, _ACCESS_ATTR, AccessRule(public=True))
    return handler


def access_rule(handler: Any) -> AccessRule | None:
    return getattr(handler, _ACCESS_ATTR, None)


def undeclared_routes(app: web.Application) -> list[str]:
    """Routes that declare no access rule (a test of the node app should expect none)."""
    out = []
    for route in app.router.routes():
        if isinstance(route.resource, StaticResource):
            continue
        if access_rule(route.handler) is None:
            out.append(f"{route.method} {route.resource.canonical if route.resource else '?'}")
    return out


class AccessDenied(Exception):
    """Raised by a handler's own checks; the access middleware answers 403 with the usual page or JSON."""


def require_class(request: web.Request, class_id: str) -> Principal:
    """Refuse (403) unless the logged-in person teaches `class_id`. Pupil pages call this first."""
    principal = current_principal(request)
    if principal is None or class_id not in principal.class_ids:
        raise AccessDenied(class_id)
    return principal



@web.middleware
async def access_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Fail closed: a route that declares no access rule is refused."""
    match_info = request.match_info
    if getattr(match_info, "http_exception", None) is not None:
        return await handler(request)  # 404 / 405: nothing to protect
    route = match_info.route
    if isinstance(route.resource, StaticResource):
        return await handler(request)
    rule = access_rule(match_info.handler)
    if rule is None:
        log.error("route %s %s declares no access rule; refused", request.method, route.resource and route.resource.canonical)
        raise Refused(403, "error.forbidden")
    await _check(request, rule)
    try:
        return await handler(request)
    except AccessDenied:
        raise Refused(403, "error.forbidden")



def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to return to after login, never another site (open redirect)."""
    if not value or len(value) > 500 or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(c in value for c in "\r\n\t\\"):
        return default
    return value
