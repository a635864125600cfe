"""Page rendering: Jinja2 with autoescape, the shared page context, static URLs that change with content."""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import pathlib
from typing import Any, Iterable, Mapping

import aiohttp_jinja2
import jinja2
from aiohttp import web

from preau.node import i18n
from preau.node.web.appkeys import WEB_CONFIG
from .context import level_of
from .flash import take as take_flash
from .security import Refused, current_principal, csrf_token, request_language, wants_json

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@functools.lru_cache(maxsize=None)
def _static_versions() -> Mapping[str, str]:
    return {
        p.relative_to(STATIC).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:10]
        for p in STATIC.rglob("*") if p.is_file()
    }


def static_url(name: str) -> str:
    """`/static/<name>?v=<content hash>`: browsers may cache it, and a new release changes the URL."""
    version = _static_versions().get(name)
    if version is None:
        raise KeyError(f"no static file {name!r} in {STATIC}")
    return f"/static/{name}?v={version}"


def day(value: object, lang: str) -> str:
    """A calendar day ("2026-09-01", a campaign's dates) as people of `lang` write it, like `when` for moments:
    01/09/2026 in French; as given otherwise, and as given when it is not a date."""
    try:
        d = _dt.date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return d.strftime("%d/%m/%Y") if lang == "fr" else d.isoformat()


def setup_rendering(app: web.Application, template_dirs: Iterable[str | pathlib.Path] = ()) -> jinja2.Environment:
    """Templates from `template_dirs` first (the node app's own pages), then the web layer's."""
    loader = jinja2.ChoiceLoader([
        jinja2.FileSystemLoader([str(d) for d in template_dirs]),
        jinja2.FileSystemLoader(str(TEMPLATES)),
    ])
    env = aiohttp_jinja2.setup(
        app, loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    env.globals["day"] = day
    return env


async def base_context(request: web.Request) -> dict[str, Any]:
    """What every page (base.html) needs; handlers add their own keys on top."""
    lang = request_language(request)
    cfg = request.config_dict[WEB_CONFIG]
    principal = current_principal(request)
    nav = []
    if principal is not None:
        for item in cfg.nav:
            if not item.roles or principal.role in item.roles:
                nav.append({"label_key": item.label_key, "path": item.path,
                            "current": request.path == item.path or request.path.startswith(item.path.rstrip("/") + "/")})
    other = next(code for code in i18n.LANGUAGES if code != lang)
    return {
        "lang": lang,
        "other_lang": other,
        # The language link reloads this page; a page answering a POST (a form refused) points to the
        # form's own page instead (`page_url`), since its address only takes POSTs.
        "lang_href": f"?lang={other}",
        "t": functools.partial(i18n.translate_at, lang, level_of(request)),
        "csrf_token": await csrf_token(request),
        "principal": principal,
        "nav": nav,
        "logout_path": cfg.logout_path,
    }


async def render(request: web.Request, template: str, context: Mapping[str, Any] | None = None, *,
                 status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """Render `template` with the base context plus `context`, as text/html."""
    full = await base_context(request)
    full.update(context or {})
    if request.method not in ("GET", "HEAD"):
        full["lang_href"] = f"{full.get('page_url') or '/'}?lang={full['other_lang']}"
    notice, errors, shown = await take_flash(request)
    for key, value in shown.items():  # what a form's redirect carried to this page (see flash.see_other)
        if full.get(key) is None:
            full[key] = value
    if notice and not full.get("notice"):
        full["notice"] = notice
    if errors and not full.get("errors"):
        full["errors"] = list(errors)
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    if headers:
        response.headers.update(headers)
    return response


# -- refusals: a person's error as a page, or the JSON shape for fetch ----------

async def refusal(request: web.Request, status: int, key: str, *, headers: dict[str, str] | None = None,
                  **params: object) -> web.Response:
    """An error for a person: the catalog message as JSON for fetch, or as a page."""
    return await refusal_of(request, status, i18n.translate(request_language(request), key, **params), headers=headers)


async def refusal_of(request: web.Request, status: int, message: str, *,
                     headers: dict[str, str] | None = None) -> web.Response:
    """`refusal` for a message already in the person's language."""
    if wants_json(request):
        return web.json_response({"ok": False, "error": message, "status": status}, status=status, headers=headers)
    return await render(request, "error.html", {"status": status, "message": message}, status=status, headers=headers)


@web.middleware
async def refusal_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The security layer's refusals (`Refused`) as pages; installed outside the security middlewares."""
    try:
        return await handler(request)
    except Refused as exc:
        return await refusal(request, exc.status, exc.key, headers=exc.headers)
