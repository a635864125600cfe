"""Post/redirect/get: a form that worked answers with a redirect, and the next page shows what happened.

Reloading that page then re-sends nothing, and its address (a GET) works with
`?lang=`. The message waits in memory for the browser session that made the
request, for one page only; nothing about a pupil goes into the address.
A form whose answer must show something made there (the district's new
invitation and its QR code) passes it as `shown`: it reaches that one page's
template the same way, and a reload no longer shows it (nor makes another).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Mapping, Sequence

from aiohttp import web

from .security import get_session

_FLASH: web.AppKey["OrderedDict[str, tuple[float, str | None, tuple[str, ...], Mapping[str, Any]]]"] = \
    web.AppKey("preau.web.flash")
_MAX = 2_000  # sessions with a message waiting; the oldest go first
_TTL = 300.0  # seconds a message waits for its page


def setup_flash(app: web.Application) -> None:
    app[_FLASH] = OrderedDict()


async def see_other(request: web.Request, location: str, *, notice: str | None = None,
                    errors: Sequence[str] = (), shown: Mapping[str, Any] | None = None) -> web.HTTPSeeOther:
    """A 303 to `location` (a local path) that carries `notice`, `errors` and `shown` (template values) to the
    page it opens."""
    if notice or errors or shown:
        record = await get_session(request, create=True)
        box = request.config_dict.get(_FLASH)
        if record is not None and box is not None:
            box[record.key] = (time.monotonic(), notice, tuple(errors), dict(shown or {}))
            box.move_to_end(record.key)
            while len(box) > _MAX:
                box.popitem(last=False)
    return web.HTTPSeeOther(location)


async def take(request: web.Request) -> tuple[str | None, tuple[str, ...], Mapping[str, Any]]:
    """The message (notice, errors, shown) waiting for this session's next page, removed as it is read."""
    box = request.config_dict.get(_FLASH)
    if not box:
        return None, (), {}
    record = await get_session(request)
    if record is None:
        return None, (), {}
    item = box.pop(record.key, None)
    if item is None or time.monotonic() - item[0] > _TTL:
        return None, (), {}
    return item[1], item[2], item[3]
