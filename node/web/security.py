"""Sessions, CSRF, security headers, login rate limiting and route access rules.

None of this knows about storage: who a person is comes from an injected
`authenticate(username, password)` callable, and sessions live behind the
small `SessionStore` interface (in memory here; the storage layer may back it
with SQLite later). Every route must declare who may see it (`login_required`
or `public`); a route that declares nothing is refused, so forgetting the
check fails closed rather than open.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import logging
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Iterable, Protocol, Union

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_urldispatcher import StaticResource
from yarl import URL

from preau.node import i18n
from preau.node.testhooks import unprotected
from preau.node.web.appkeys import CLOCK, REQUEST_LANG, REQUEST_SESSION, SESSION_STORE, WEB_CONFIG

log = logging.getLogger("preau.node.web")

ROLES = ("admin", "teacher", "district", "inspector")  # inspector: read-only district staff
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

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


# -- who is logged in --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Principal:
    """A logged-in person, as the authenticator (the storage layer) describes them."""

    username: str
    role: str
    display_name: str
    class_ids: frozenset[str] = frozenset()
    # Opaque server-side reference to what the login unlocked (the store session and its keys);
    # kept out of repr and equality so it never reaches a log line or a template comparison.
    handle: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if not self.username:
            raise ValueError("a principal needs a username")
        object.__setattr__(self, "class_ids", frozenset(self.class_ids))


Authenticator = Callable[[str, str], Union["Principal", None, Awaitable[Union["Principal", None]]]]
"""`authenticate(username, password)`: a Principal, or None for a wrong pair. May be async."""


# -- sessions ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What the server keeps for one browser session.

    `key` is the SHA-256 of the cookie token, so a copy of the store (a backup,
    a stolen disk) does not hand out live sessions.
    """

    key: str
    csrf_token: str
    created: float
    last_seen: float
    principal: Principal | None = None


class SessionStore(Protocol):
    """Where session records live. Expiry is decided by the caller, not the store."""

    async def load(self, key: str) -> SessionRecord | None: ...
    async def save(self, record: SessionRecord) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def delete_user(self, username: str) -> int: ...


class InMemorySessionStore:
    """A bounded in-memory store.

    Anonymous sessions (a login form's CSRF token) have their own, smaller
    quota, so a flood of visits to /login evicts other anonymous sessions,
    never a teacher who is logged in.
    """

    def __init__(self, max_sessions: int = 10_000, max_anonymous: int = 2_000) -> None:
        self._users: OrderedDict[str, SessionRecord] = OrderedDict()
        self._anonymous: OrderedDict[str, SessionRecord] = OrderedDict()
        self._max, self._max_anonymous = max_sessions, max_anonymous

    def _table(self, record: SessionRecord) -> OrderedDict[str, SessionRecord]:
        return self._users if record.principal is not None else self._anonymous

    async def load(self, key: str) -> SessionRecord | None:
        for table in (self._users, self._anonymous):
            record = table.get(key)
            if record is not None:
                table.move_to_end(key)
                return record
        return None

    async def save(self, record: SessionRecord) -> None:
        table, limit = (self._users, self._max) if record.principal is not None else (self._anonymous, self._max_anonymous)
        (self._anonymous if table is self._users else self._users).pop(record.key, None)
        table[record.key] = record
        table.move_to_end(record.key)
        while len(table) > limit:
            table.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._users.pop(key, None)
        self._anonymous.pop(key, None)

    async def delete_user(self, username: str) -> int:
        gone = [k for k, r in self._users.items() if r.principal and r.principal.username == username]
        for k in gone:
            del self._users[k]
        return len(gone)

    def __len__(self) -> int:
        return len(self._users) + len(self._anonymous)


def _token_key(token: str) -> str:
    return hashlib.sha256(b"preau/v1/web-session|" + token.encode()).hexdigest()


_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_TOUCH_EVERY = 60.0  # seconds: do not write the store on every request


@dataclass(slots=True)
class _RequestSession:
    record: SessionRecord | None
    new_token: str | None = None
    clear_cookie: bool = False
    dirty: bool = False


async def _load_session(request: web.Request) -> _RequestSession:
    cfg = request.config_dict[WEB_CONFIG]
    token = request.cookies.get(cfg.cookie_name)
    if not token or not _TOKEN_SHAPE.match(token):
        return _RequestSession(None, clear_cookie=bool(token))
    store = request.config_dict[SESSION_STORE]
    record = await store.load(_token_key(token))
    if record is None:
        return _RequestSession(None, clear_cookie=True)
    now = request.config_dict[CLOCK]()
    if now - record.last_seen > cfg.session_idle_seconds or now - record.created > cfg.session_max_seconds:
        await store.delete(record.key)
        return _RequestSession(None, clear_cookie=True)
    if now - record.last_seen > _TOUCH_EVERY:
        # Saved now, before the handler: a handler that ends this user's sessions must not see it come back.
        record = replace(record, last_seen=now)
        await store.save(record)
    return _RequestSession(record)


def _state(request: web.Request) -> _RequestSession:
    try:
        return request[REQUEST_SESSION]
    except KeyError:
        raise RuntimeError("the web session middleware is not installed: call preau.node.web.setup_web(app, ...)") from None


def current_principal(request: web.Request) -> Principal | None:
    """The logged-in person, or None."""
    record = _state(request).record
    return record.principal if record else None


def _new_record(request: web.Request, principal: Principal | None) -> tuple[str, SessionRecord]:
    now = request.config_dict[CLOCK]()
    token = secrets.token_urlsafe(32)
    return token, SessionRecord(_token_key(token), secrets.token_urlsafe(32), now, now, principal)


async def get_session(request: web.Request, *, create: bool = False) -> SessionRecord | None:
    """The request's session; with create=True an anonymous one is started (for a login form's CSRF token)."""
    state = _state(request)
    if state.record is None and create:
        token, state.record = _new_record(request, None)
        state.new_token, state.dirty, state.clear_cookie = token, True, False
    return state.record


async def csrf_token(request: web.Request) -> str:
    """The token every form and fetch of this session must send back."""
    record = await get_session(request, create=True)
    assert record is not None
    return record.csrf_token


async def login_session(request: web.Request, principal: Principal) -> None:
    """Start a fresh session for `principal`: new cookie token and new CSRF token (no fixation)."""
    state = _state(request)
    if state.record is not None:
        await request.config_dict[SESSION_STORE].delete(state.record.key)
    token, state.record = _new_record(request, principal)
    state.new_token, state.dirty, state.clear_cookie = token, True, False


async def logout_session(request: web.Request) -> None:
    state = _state(request)
    if state.record is not None:
        await request.config_dict[SESSION_STORE].delete(state.record.key)
    state.record, state.new_token, state.dirty, state.clear_cookie = None, None, False, True


def _cookie_secure(request: web.Request) -> bool:
    return request.config_dict[WEB_CONFIG].secure_cookies or request.secure


async def _finish_session(request: web.Request, state: _RequestSession, response: web.StreamResponse) -> None:
    cfg = request.config_dict[WEB_CONFIG]
    if state.dirty and state.record is not None:
        await request.config_dict[SESSION_STORE].save(state.record)
    if state.new_token is not None:
        # No Max-Age: school PCs are shared, so closing the browser ends the session on that PC.
        response.set_cookie(
            cfg.cookie_name, state.new_token, path="/", httponly=True, samesite="Strict",
            secure=_cookie_secure(request),
        )
    elif state.clear_cookie:
        response.del_cookie(cfg.cookie_name, path="/", httponly=True, samesite="Strict", secure=_cookie_secure(request))


def request_language(request: web.Request) -> str:
    lang = request.get(REQUEST_LANG)
    if lang is None:
        lang = i18n.pick_language(request.query.get("lang"), request.cookies.get(i18n.LANG_COOKIE))
        request[REQUEST_LANG] = lang
    return lang


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


async def end_sessions_of(app: web.Application, username: str) -> int:
    """Log a person out everywhere: call it when their account is removed, renamed or its password changes."""
    return await app[SESSION_STORE].delete_user(username)


# -- middlewares ---------------------------------------------------------------

@web.middleware
async def session_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    state = await _load_session(request)
    request[REQUEST_SESSION] = state
    lang_query = request.query.get("lang")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        await _finish_session(request, state, exc)
        _remember_language(request, lang_query, exc)
        raise
    await _finish_session(request, state, response)
    _remember_language(request, lang_query, response)
    return response


def _remember_language(request: web.Request, lang_query: str | None, response: web.StreamResponse) -> None:
    if lang_query in i18n.LANGUAGES and request.cookies.get(i18n.LANG_COOKIE) != lang_query:
        response.set_cookie(i18n.LANG_COOKIE, lang_query, path="/", samesite="Strict", httponly=True,
                            secure=_cookie_secure(request), max_age=365 * 24 * 3600)


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


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: runs for every response, errors and static files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "public, max-age=86400")
    else:
        # Pages carry pupils' names: never keep them in a shared PC's cache.
        response.headers["Cache-Control"] = "no-store"


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to return to after login, never another site (open redirect)."""
    if not value or len(value) > 500 or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(c in value for c in "\r\n\t\\"):
        return default
    return value


# -- login rate limiting -------------------------------------------------------

class LoginRateLimiter:
    """Growing delays after failed logins, per account *and* client address, and per client address.

    Each failure past the free ones doubles the wait before the next try from that
    computer (`base`, then twice as long ... up to `lockout`). The account itself is never
    locked from everywhere: a guesser on one computer slows down that computer only, so
    nobody can lock a teacher out from elsewhere. A computer that tries many accounts is
    slowed down as a whole. A success forgets that computer's failures on that account;
    a head teacher's password reset (`reset_account`) forgets all of the account's.
    Failures are forgotten after `window` seconds without a new one.
    """

    def __init__(self, *, account_max: int = 5, address_max: int = 20, window: float = 900.0,
                 lockout: float = 900.0, base: float = 30.0, max_keys: int = 50_000) -> None:
        self.account_max, self.address_max = account_max, address_max
        self.window, self.lockout, self.base, self.max_keys = window, lockout, base, max_keys
        self._state: OrderedDict[str, list[float]] = OrderedDict()  # key -> [failures, last failure, wait until]

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"p:{username.strip().casefold()}|{address}", "a:" + address

    def _entry(self, key: str, now: float) -> list[float] | None:
        entry = self._state.get(key)
        if entry is not None and now - entry[1] >= self.window and now >= entry[2]:
            del self._state[key]
            return None
        return entry

    def delay(self, failures: int, free: int) -> float:
        """The wait after `failures` failures when the first `free` ones cost nothing."""
        if failures < free:
            return 0.0
        return min(self.lockout, self.base * 2 ** min(failures - free, 30))

    def locked_for(self, username: str, address: str, now: float) -> float:
        """Seconds until a login may be tried again from `address`; 0 when it may be tried now."""
        remaining = 0.0
        for key in self._keys(username, address):
            entry = self._entry(key, now)
            if entry is not None:
                remaining = max(remaining, entry[2] - now)
        return remaining

    def failure(self, username: str, address: str, now: float) -> None:
        for key, free in zip(self._keys(username, address), (self.account_max, self.address_max)):
            entry = self._entry(key, now) or [0.0, now, now]
            entry[0] += 1
            entry[1] = now
            entry[2] = now + self.delay(int(entry[0]), free)
            self._state[key] = entry
            self._state.move_to_end(key)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)

    def success(self, username: str, address: str) -> None:
        self._state.pop(self._keys(username, address)[0], None)

    def reset_account(self, username: str) -> int:
        """Forget every computer's failures on this account (its password was just reset); returns how many."""
        prefix = f"p:{username.strip().casefold()}|"
        keys = [k for k in self._state if k.startswith(prefix)]
        for key in keys:
            del self._state[key]
        return len(keys)


async def call_authenticator(authenticate: Authenticator, username: str, password: str) -> Principal | None:
    result = authenticate(username, password)
    if inspect.isawaitable(result):
        result = await result
    if result is not None and not isinstance(result, Principal):
        raise TypeError(f"authenticate() must return a Principal or None, got {type(result).__name__}")
    return result


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


# -- access log ------------------------------------------------------------------

def log_path(request: web.BaseRequest) -> str:
    """The route's pattern (`/classes/{class_id}/...`), never the path itself: paths carry pupil and class ids."""
    match = getattr(request, "match_info", None)
    route = getattr(match, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "(no route)"


class PrivateAccessLogger(AbstractAccessLogger):
    """Access log lines with nothing that depends on a pupil: no path ids, query strings, sizes or timings.

    The route pattern replaces the path (pupil and class ids stay out), and no
    response length or duration is written: a saved result's response size
    mapped one to one to the group entered (issue 11, item 7).
    Pass it to the runner: `web.AppRunner(app, access_log_class=PrivateAccessLogger)`.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if unprotected("access_log"):
            self.logger.info("%s %s %s %s %d %.1fms", request.remote, request.method, request.path,
                             response.status, response.body_length, time * 1000)
            return
        self.logger.info("%s %s %s %s", request.remote, request.method, log_path(request), response.status)


class QueryStringFilter(logging.Filter):
    """For a logger fed by aiohttp's default access log: cut every `?query` out of the line."""

    _QUERY = re.compile(r"\?[^\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = self._QUERY.sub("", message), ()
        return True

