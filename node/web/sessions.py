"""Who is logged in: principals, browser sessions (cookie, store, expiry), the request's language.

A session's cookie token is random; the store keeps only its SHA-256, so a
copy of the store hands out no live session. Login starts a fresh session
(new token, new CSRF token: no fixation); idleness and age end it.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Protocol, Union

from aiohttp import web

from preau.node import i18n
from preau.node.web.appkeys import CLOCK, REQUEST_LANG, REQUEST_SESSION, SESSION_STORE, WEB_CONFIG

ROLES = ("admin", "teacher", "district", "inspector")  # inspector: read-only district staff


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



async def end_sessions_of(app: web.Application, username: str) -> int:
    """Log a person out everywhere: call it when their account is removed, renamed or its password changes."""
    return await app[SESSION_STORE].delete_user(username)


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
