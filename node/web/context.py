"""What a page handler reads from its request: the node, its store, the unlocked session, the words.

The page modules (school, district) and the site that mounts them all import
this module; it imports none of them.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from aiohttp import web

from preau.node import i18n
from preau.node.appkeys import NODE
from preau.node.errors import UserError, Words, said
from .appkeys import UNLOCKED
from .security import current_principal, request_language


class LoginAgain(Exception):
    """The web session outlived what it had unlocked (a restart, an account change): log in again."""


def unlocked(request: web.Request) -> Any:
    """The store session of the logged-in person (holds their keys). Raises LoginAgain if it is gone."""
    principal = current_principal(request)
    s = request.config_dict[UNLOCKED].unlocked(principal.handle) if principal else None
    if s is None:
        raise LoginAgain()
    return s


def node_of(request: web.Request) -> Any:
    return request.config_dict[NODE]


def store_of(request: web.Request) -> Any:
    store = node_of(request).store
    if store is None:
        raise UserError(said("msg.web.no_store"), status=503)
    return store


async def on_db(request: web.Request, fn: Callable[..., Any], /, *args: Any, **kw: Any) -> Any:
    """Work that writes the store or the federation store, run on the node's database thread: the event loop
    never waits on a COMMIT (node/database.py, DatabaseThread). Pages read on the loop, through a query-only
    connection that sees committed data only."""
    return await node_of(request).run(fn, *args, **kw)


def form_text(form: Any, name: str, limit: int = 200) -> str:
    """A form field as typed, trimmed and cut to `limit` characters; "" when it is missing or a file."""
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


def level_of(request: web.Request) -> str | None:
    """"academie" on a district node whose members are all districts (its pages name them so), else None."""
    node = request.config_dict.get(NODE)  # one small query on a district's pages (a school's ask nothing)
    academie = node is not None and getattr(node, "role", None) == "district" and node.fed.member_roles() == {"child"}
    return "academie" if academie else None


def t_(request: web.Request) -> Callable[..., str]:
    lang, level = request_language(request), level_of(request)
    return lambda key, **kw: i18n.translate_at(lang, level, key, **kw)


def sentence(text: str) -> str:
    """A message of the layers below as a sentence of its own: a capital first letter and a full stop.

    The catalog writes an error's words as a clause ("le nom est vide", "l'identifiant « x » est déjà pris"),
    which the command line shows after "erreur :"; a page shows it after a sentence of its own."""
    text = text.strip()
    if not text:
        return text
    if _WORD.match(text) and text[0].islower():  # a word, not a file name or a user name ("debut.toml", "mme.a")
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?(?:[\s,:;]|$)")


def refused(request: web.Request, error: "UserError | Words | str", key: str = "error.refused") -> str:
    """A refusal from the domain code as the page shows it: `key`, then the error as a sentence of its own, in
    the person's language when the error carries catalog words, in English as written otherwise."""
    lang = request_language(request)
    said = error.words if isinstance(error, UserError) else error
    detail = said.to(lang) if isinstance(said, Words) else str(said)
    return i18n.translate(lang, key, detail=sentence(detail))
