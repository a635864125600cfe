"""The access log, written so that no line depends on a pupil (no path ids, query strings, sizes or timings)."""
from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from preau.node.testhooks import unprotected


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
