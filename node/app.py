"""The aiohttp application of every node: `create_app(settings)` for a school, a district or an académie."""
from __future__ import annotations

import asyncio
import contextlib
import errno
import getpass
import html
import logging
import shutil
import signal
import time
from typing import Any, AsyncIterator, Callable

from aiohttp import web

from preau.node import faults, i18n, keyfiles, listener
from preau.node.actions.common import open_store, require_node
from preau.node.appkeys import ANNOUNCE, CONFIG, NODE, TRUSTED_PROXY
from preau.node.errors import Busy, UserError, said, words
from preau.node.aio import LoopWatch
from preau.node.lan import lan_urls
from preau.node.oplock import serving
from preau.node.federation.transport import SYNC_PATH, serve_session
from preau.node.federation import joincode as fjoincode
from preau.node.runtime import Node, open_node
from preau.node.web.security import PrivateAccessLogger, log_path, public
from preau.node.web.site import setup_site

log = logging.getLogger("preau.app")


def error_body(status: int, message: str, code: str = "error") -> dict[str, Any]:
    return {"ok": False, "error": message, "code": code, "status": status}


def _error_response(request: web.Request, exc: UserError) -> web.Response:
    """A typed error as the JSON shape for the API and fetch, or as a small page in the person's language.

    The page is built without the session or templates: this runs outside them (a body that cannot be
    read is refused before the session is even loaded)."""
    lang = i18n.pick_language(request.query.get("lang"), request.cookies.get(i18n.LANG_COOKIE))
    message = exc.localized(lang)
    headers = {"Retry-After": "60"} if exc.status in (503, 507) else None
    accept = request.headers.get("Accept", "")
    if request.path.startswith("/v1/") or "application/json" in accept or request.content_type == "application/json":
        return web.json_response(error_body(exc.status, message, exc.code), status=exc.status, headers=headers)
    title = i18n.translate(lang, "fault.page_title")
    page = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)} - Préau'
            f'</title><link rel="stylesheet" href="/static/preau.css"></head><body><main><h1>{html.escape(title)}</h1>'
            f'<p role="alert">{html.escape(message)}</p><p><a href="/">{html.escape(i18n.translate(lang, "error.home"))}'
            f"</a></p></main></body></html>")
    return web.Response(text=page, content_type="text/html", status=exc.status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler):
    """Domain errors and known faults become one JSON shape (or a page); anything else is logged and never
    leaks its details."""
    try:
        return await handler(request)
    except UserError as exc:
        return _error_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/v1/"):
            raise
        return web.json_response(error_body(exc.status, exc.reason), status=exc.status)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        busy = Busy.from_sqlite(exc)
        if busy is not None:
            return web.json_response(error_body(busy.status, busy.message, busy.code), status=busy.status)
        fault = faults.classify(exc, request.config_dict[CONFIG].data_dir)
        if fault is not None:
            log.warning("%s %s: %s", request.method, log_path(request), fault.message)
            return _error_response(request, fault)
        log.exception("unexpected error on %s %s", request.method, log_path(request))
        return web.json_response(
            error_body(500, "internal error: the node's log has the details", "internal"), status=500
        )


async def _node_ctx(app: web.Application) -> AsyncIterator[None]:
    node = open_node(app[CONFIG])
    db = node.start_database_thread()  # from here on, SQLite writes run on their own thread, never on the loop
    app[NODE] = node
    task = asyncio.create_task(node.sync_loop(), name="preau-sync-loop")
    node.loop_task = task
    task.add_done_callback(_loop_ended)
    watch = LoopWatch()
    watching = asyncio.create_task(watch.run(), name="preau-loop-watch")

    def figures() -> None:
        """`kill -USR1 <pid>` logs what the node did since it started, and the event loop's longest stall
        since the last such line (docs/operations.md, "Watching nodes")."""
        commits = node.fed.writer.commits + (node.store.writer.commits if node.store is not None else 0)
        log.info("node figures: %d sync session(s) served; database thread: %d job(s), %d commit(s), %.2f s busy; "
                 "event loop: longest stall %.1f ms", node.gate.served, db.jobs, commits, db.busy_seconds,
                 watch.longest * 1000)
        watch.longest = 0.0

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
        loop.add_signal_handler(signal.SIGUSR1, figures)
    try:
        yield
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGUSR1)
        for t in (task, watching):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        node.close()


def _loop_ended(task: asyncio.Task) -> None:
    """A sync loop that dies is an error in the log (and /healthz turns unhealthy), never silence."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the sync loop stopped: %r; the node no longer syncs (restart the service)", task.exception(),
                  exc_info=task.exception())


def _seconds(request: web.Request, name: str, key: str = "msg.web.seconds") -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise UserError(said(key, name=name, got=raw[:20]))
    return int(raw)


MIN_FREE_MB = 10
"""Below this much free space on the data folder's disk, /healthz says so (a school grows by about 1 MB a year,
so it is a disk filled by something else: the journal, kept backups, another program)."""


def _disk(body: dict, data_dir: str, min_free_mb: int | None) -> None:
    floor = MIN_FREE_MB if min_free_mb is None else min_free_mb
    free = shutil.disk_usage(data_dir).free // 2**20
    body["disk"] = {"free_mb": free, "min_free_mb": floor}
    if free < floor:
        body["ok"] = False
        body["problems"].append(f"the disk holding the data folder has {free} MiB free (less than {floor}): free some "
                                "space, or saving results, releases and receipts will fail")


async def _tell_sessions(app: web.Application) -> None:
    """On SIGTERM, before the handlers are cancelled: peers in a session are told the node is shutting down."""
    node = app.get(NODE)
    if node is not None:
        await node.gate.shut_down()


async def healthz(request: web.Request) -> web.Response:
    """200 while the node serves and its sync loop runs, else 503. `?max_sync_age=SECONDS` (and
    `max_unsent_age`) also turn it 503 when the last successful sync (or the oldest release waiting for its
    receipt) is older: what a monitoring probe or a cron line asks (docs/operations.md, "Watching nodes").
    A disk with less than `min_free_mb` (10 MiB by default) free is a problem too."""
    node: Node = request.app[NODE]
    body = await node.run(node.health, max_sync_age=_seconds(request, "max_sync_age"),
                       max_unsent_age=_seconds(request, "max_unsent_age"))
    _disk(body, str(node.data_dir), _seconds(request, "min_free_mb", "msg.web.megabytes"))
    age = body["sync"].get("last_success_age")
    if age is not None and age < -60:  # max_sync_age could not fire until the clock caught up with that date
        body["ok"] = False
        body["problems"].append(f"the last successful sync is dated {-age} s later than this machine's clock: the "
                                "clock is wrong, or was when it synced; set it right (timedatectl, NTP)")
    return web.json_response(body, status=200 if body["ok"] else 503)


async def sync_endpoint(request: web.Request) -> web.StreamResponse:
    node: Node = request.app[NODE]
    node.reload_identity()  # keys rotated by `preau keys rotate` while serving: answer with the new ones
    return await serve_session(request, node.federation, node.limits, node.gate)


async def code_endpoint(request: web.Request) -> web.StreamResponse:
    """A school joining by short code fetches its invitation here (SPAKE2: the code itself never travels)."""
    node: Node = request.app[NODE]
    return await fjoincode.serve_code(request, node, [request.config_dict[CONFIG].advertised_url])


def create_app(settings: Any, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The node's app. `clock` times web sessions and login delays (a test moves it instead of waiting hours)."""
    faults.quiet_client_errors()
    app = web.Application(middlewares=[json_errors, faults.body_guard], client_max_size=settings.max_message_bytes)
    app[CONFIG] = settings
    app[TRUSTED_PROXY] = settings.trusted_proxy
    app.cleanup_ctx.append(_node_ctx)
    app.on_shutdown.append(_tell_sessions)
    # The web layer: sessions backed by the store, CSRF, headers, and every page (after the node opens).
    setup_site(app, settings, clock=clock)
    # Public on purpose: health checks carry no data, and the sync endpoint authenticates peers by their Noise keys.
    app.router.add_get("/healthz", public(healthz))
    app.router.add_get(SYNC_PATH, public(sync_endpoint))
    app.router.add_get(fjoincode.jc.PATH, public(code_endpoint))
    return app


# -- running the node (`preau serve`) --------------------------------------------------

def serve(settings, *, lang: str = "en", **_: Any) -> None:
    """Run the node until SIGINT or SIGTERM (aiohttp's run_app handles both and shuts down cleanly)."""
    from preau.node.federation.mdns import advertiser_for  # zeroconf is optional: imported only for mDNS

    require_node(settings)
    keyfiles.upgrade(settings.data_dir)  # key files from before the checksum get one (same keys)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name, (value, where) in settings.shadowed.items():
        # The systemd unit sets PREAU_HOST and PREAU_PORT: a host or port written in preau.toml is not used.
        log.warning("%s = %r (%s) is not used: %s gives %r, which wins over the file", name, value, where,
                    settings.sources.get(name), getattr(settings, name))
    advertiser = advertiser_for(settings, _node_uai(settings))  # refuses to start on a bad mdns set-up
    app = build_app(settings, advertiser)
    print(serve_banner(settings, lang, advertiser.ad.url if advertiser else None), flush=True)
    try:
        with serving(settings.data_dir):  # held until the process ends: `preau restore` refuses meanwhile
            listener.run(app, host=settings.host, port=settings.port, access_log_class=PrivateAccessLogger)
    except OSError as exc:
        if exc.filename is not None and exc.errno in (errno.EACCES, errno.EPERM):
            raise UserError(said("msg.app.permission", file=str(exc.filename), folder=str(settings.data_dir), user=getpass.getuser())) from None
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        hint = {errno.EADDRINUSE: "cli.serve_port_in_use", errno.EACCES: "cli.serve_port_rights",
                errno.EADDRNOTAVAIL: "cli.serve_no_address"}[exc.errno]
        english = i18n.translate("en", hint)
        raise UserError(words(f"cannot listen on {settings.host}:{settings.port}: {english}", "cli.serve_cannot_listen",
                              host=settings.host, port=settings.port, hint=words(english, hint))) from None


def serve_banner(settings, lang: str, mdns_url: str | None = None) -> str:
    """What `serve` prints: the addresses the school's computers can open (not 0.0.0.0, not 127.0.0.1)."""
    role = i18n.translate(lang, f"cli.role_{settings.role}")
    if settings.public_url:
        urls = [settings.advertised_url]
    else:
        scheme = settings.advertised_url.split(":", 1)[0]
        urls = [u for u in lan_urls(settings.host, settings.port, scheme) if "127.0.0.1" not in u]
    lines = [i18n.translate(lang, "cli.serve_open", role=role)]
    lines += [f"  {u}" for u in urls]
    if mdns_url:
        lines.append(i18n.translate(lang, "cli.serve_mdns", url=mdns_url))
    if not urls and not mdns_url:
        lines = [i18n.translate(lang, "cli.serve_local", url=settings.advertised_url)]
    lines.append(i18n.translate(lang, "cli.serve_stop"))
    return "\n".join(lines)


def build_app(settings, advertiser=None):
    """The node's app, with its mDNS announcement (if any): `listener.serving` makes it once the port listens and
    withdraws it before the node closes."""
    app = create_app(settings)
    if advertiser is not None:
        app[ANNOUNCE] = advertiser
    return app


def _node_uai(settings) -> str | None:
    """The UAI in the node's store, when there is one (only used to name the mDNS announcement)."""
    if not settings.mdns:
        return None
    try:
        store = open_store(settings)
    except UserError:
        return None
    try:
        return store.school()["uai"]
    finally:
        store.close()
