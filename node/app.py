"""The aiohttp application of every node: `create_app(settings)` for a school, a district or an académie."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
from typing import Any, AsyncIterator

from aiohttp import web

from .appkeys import CONFIG, NODE
from .backoff import Backoff
from .errors import Busy, UserError
from .runtime import Node
from .store import DB_NAME, Store
from .vault import ARGON2
from .transport import SYNC_PATH, Limits, serve_session

log = logging.getLogger("preau.app")


def error_body(status: int, message: str, code: str = "error") -> dict[str, Any]:
    return {"ok": False, "error": message, "code": code, "status": status}


@web.middleware
async def json_errors(request: web.Request, handler):
    """Domain errors become one JSON shape; anything unexpected is logged and never leaks its details."""
    try:
        return await handler(request)
    except UserError as exc:
        return web.json_response(error_body(exc.status, exc.message, exc.code), status=exc.status)
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
        log.exception("unexpected error on %s %s", request.method, request.path)
        return web.json_response(
            error_body(500, "internal error: the node's log has the details", "internal"), status=500
        )


def limits_from(settings: Any) -> Limits:
    return Limits(
        max_message_bytes=settings.max_message_bytes,
        max_docs_per_session=settings.max_docs_per_session,
        idle_timeout=float(settings.session_idle_timeout),
        sessions_per_minute=settings.sync_rate_limit,
    )


def open_node(settings: Any, **kw: Any) -> Node:
    """The node in a data folder; a school's node also opens its encrypted store, unattended.

    Campaign documents that arrive by sync go straight into the store (as the
    node, with nobody logged in), so teachers can enter results for them.
    """
    data = pathlib.Path(settings.data_dir)
    store = None
    if (data / DB_NAME).exists():
        store = Store.open(data, cost=ARGON2[settings.argon2_profile])
        if settings.role == "school":
            kw.setdefault("on_campaign", lambda campaign: store.put_campaign(store.node, campaign))
    try:
        node = Node(
            data,
            role=settings.role,
            limits=limits_from(settings),
            backoff=Backoff(cap=float(settings.backoff_max)),
            sync_interval=float(settings.sync_interval),
            **kw,
        )
    except BaseException:
        if store is not None:
            store.close()
        raise
    node.store = store
    if settings.parent_url:
        node.federation.move_upstream(settings.parent_url)
    return node


async def _node_ctx(app: web.Application) -> AsyncIterator[None]:
    node = open_node(app[CONFIG])
    app[NODE] = node
    task = asyncio.create_task(node.sync_loop(), name="preau-sync-loop")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        node.close()


async def healthz(request: web.Request) -> web.Response:
    node: Node = request.app[NODE]
    return web.json_response({"ok": True, "role": node.role, "node_id": node.node_id})


async def sync_endpoint(request: web.Request) -> web.StreamResponse:
    node: Node = request.app[NODE]
    return await serve_session(request, node.federation, node.limits, node.gate)


def create_app(settings: Any) -> web.Application:
    from .web.security import public
    from .web.site import setup_site

    app = web.Application(middlewares=[json_errors], client_max_size=settings.max_message_bytes)
    app[CONFIG] = settings
    app.cleanup_ctx.append(_node_ctx)
    # The web layer: sessions backed by the store, CSRF, headers, and every page (after the node opens).
    setup_site(app, settings)
    # Public on purpose: health checks carry no data, and the sync endpoint authenticates peers by their Noise keys.
    app.router.add_get("/healthz", public(healthz))
    app.router.add_get(SYNC_PATH, public(sync_endpoint))
    return app
