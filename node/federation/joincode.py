"""Joining by short code, on the wire: the district's /v1/code endpoint and the school's side of it.

The exchange itself is `preau.protocol.joincode` (SPAKE2, then the sealed
invitation); here it is carried over one WebSocket, and the district keeps its
count of wrong codes per invitation. What the school gets is the same
`Invitation` a long text gives, and it then enrols the usual way (Noise XK,
join proof): a short code only replaces the typing.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import aiohttp
from aiohttp import web

from preau.protocol import joincode as jc
from preau.protocol.errors import LocalProtocolError, RemoteProtocolError
from preau.protocol.invitation import Invitation, utc

from preau.node.aio import within
from preau.node.listener import client_address
from preau.node.errors import UserError, Words, words

log = logging.getLogger("preau.node")

DEADLINE = 15.0  # seconds for a whole exchange (a few messages of a few dozen bytes)


class CodeRefused(UserError):
    code = "joincode"


# -- the district ----------------------------------------------------------------------------


def _lookup(fed: Any, hello: jc.CodeHello) -> tuple[dict | None, bytes | None]:
    """(invitation, CodeError to send instead) for a hello, counting the try before anything is answered.

    One plain function for all the store work of the first step (the database thread calls it as is)."""
    rec = fed.invitation_by_slot(hello.slot)
    if rec is None:
        return None, jc.error("joincode_unknown")
    if rec["code_failures"] >= jc.MAX_FAILURES:
        return None, jc.error("joincode_locked")
    fed.count_code_try(rec["id"])
    return rec, None


def _outcome(fed: Any, rec: dict, now: int) -> str | None:
    """After a proven code: the refusal's code, if the invitation can no longer be used, else None."""
    fed.forgive_code_try(rec["id"])
    if rec["revoked_at"]:
        return "invitation_revoked"
    if rec["used_at"]:
        return "invitation_used"
    if now > rec["expires_at"]:
        return "invitation_expired"
    return None


async def serve_code(request: web.Request, node: Any, addresses: list[str]) -> web.StreamResponse:
    """The district's /v1/code; `addresses`: where schools reach this node (its public_url), put in the invitation.

    Sockets are admitted by the node's SessionGate like /v1/sync's handshakes: bounded per source address
    and overall, a silent one evicted first, so idle sockets cannot keep a school's code out."""
    ws = web.WebSocketResponse(max_msg_size=jc.MAX_MESSAGE)
    await ws.prepare(request)
    gate = node.gate
    address = client_address(request)  # the computer behind the proxy, when one is trusted (logs and bounds alike)
    token = gate.open(address, lambda: asyncio.ensure_future(ws.close()))
    try:
        await within(_exchange(ws, node, addresses, lambda: gate.progress(token), address), DEADLINE)
    except asyncio.TimeoutError:
        log.info("join code: an exchange from %s did not finish in time", address)
    except RemoteProtocolError as exc:
        log.info("join code: refused an exchange from %s (%s)", address, exc.code)
    finally:
        gate.close(token, False)
        if not ws.closed:
            await ws.close()
    return ws


async def _receive(ws) -> bytes:
    msg = await ws.receive()
    if msg.type != aiohttp.WSMsgType.BINARY:
        raise RemoteProtocolError("the peer hung up or sent text", code="connection_lost")
    return msg.data


async def _exchange(ws, node: Any, addresses: list[str], spoke: Any, address: str) -> None:
    fed = node.fed
    try:
        data = await _receive(ws)
        spoke()  # a school speaking, not a silent socket: not the first to be evicted
        hello = jc.parse_hello(data)
    except RemoteProtocolError as exc:
        if exc.code != "connection_lost":
            await ws.send_bytes(jc.error(exc.code))
        raise
    wait = node.gate.code_wait(address)
    if wait:  # this address already failed too often: the invitation is not even looked at, nor counted
        log.debug("join code: refused a try from %s for %d s more", address, wait)
        await ws.send_bytes(jc.error("joincode_too_many", f"retry in {int(wait)} s"))
        return
    rec, refusal = await node.run(_lookup, fed, hello)  # the database thread: the loop never waits on a commit
    if refusal is not None:
        _failed(node, address)
        await ws.send_bytes(refusal)
        return
    secret = bytes.fromhex(rec["secret"])
    server = jc.CodeServer(hello, jc.JoinCode.from_secret(secret), random=os.urandom(64))
    await ws.send_bytes(server.reply())
    try:
        proven = server.receive_confirm(await _receive(ws))
    except RemoteProtocolError:
        proven = False  # a school that found our confirmation wrong hangs up: a wrong code all the same
    except asyncio.CancelledError:  # silent after our reply until the deadline: a try all the same
        _failed(node, address)
        raise
    if not proven:
        _failed(node, address)
        await node.run(fed.log_event, "join_code_wrong",
                       f"a wrong code was tried for the invitation {rec['id'][:8]} ({rec['uai']})",
                       invitation=rec["id"][:8], uai=rec["uai"])
        if not ws.closed:
            await ws.send_bytes(jc.error("joincode_wrong"))
        return
    now = int(time.time())
    refused = await node.run(_outcome, fed, rec, now)
    if refused is not None:
        detail = f"expired at {utc(rec['expires_at'])}, the district's clock says {utc(now)}" if refused == "invitation_expired" else None
        await ws.send_bytes(jc.error(refused, detail))
        return
    await ws.send_bytes(server.seal(_invitation(node, rec, secret, addresses)))


def _failed(node: Any, address: str) -> None:
    if node.gate.code_failed(address):
        limits = node.gate.limits
        log.warning("join code: %s failed %d tries in %d s; its next tries are refused (joincode_too_many) until "
                    "the oldest is %d s old: someone on that network may be guessing codes", address,
                    limits.code_failures_per_address, limits.code_failure_window, limits.code_failure_window)


def _invitation(node: Any, rec: dict, secret: bytes, addresses: list[str]) -> Invitation:
    """The long invitation for this record, as `create_invitation` made it (same secret, same expiry)."""
    return Invitation(tuple(addresses), node.identity.signing_key, node.identity.public.static_key, rec["uai"],
                      rec["expires_at"], secret, rec["created_at"])


# -- the school ------------------------------------------------------------------------------


def code_words(exc: LocalProtocolError) -> Words:
    """A typed code's fault in the person's words, naming the group (before anything goes on the network)."""
    group = getattr(exc, "group", None)
    typed = getattr(exc, "typed", "")
    count = getattr(exc, "count", 0)
    return words(exc.message, TYPO_KEYS.get(exc.code, "joincode.joincode_check"), group=group, typed=typed, count=count)


TYPO_KEYS = {
    "joincode_empty": "joincode.joincode_empty",
    "joincode_length": "joincode.joincode_length",
    "joincode_group_length": "joincode.joincode_group_length",
    "joincode_character": "joincode.joincode_character",
    "joincode_check": "joincode.joincode_check",
}


def checked_code(text: str) -> jc.JoinCode:
    """The typed code, or a UserError in the person's words naming the group at fault (nothing is sent)."""
    try:
        return jc.parse_code(text)
    except jc.JoinCodeError as exc:
        raise UserError(code_words(exc), code=exc.code) from None


REFUSAL_KEYS = {
    "joincode_unknown": "joincode.refused_unknown",
    "joincode_locked": "joincode.refused_locked",
    "joincode_wrong": "joincode.refused_wrong",
    "joincode_too_many": "joincode.refused_too_many",
    "invitation_used": "joincode.refused_used",
    "invitation_expired": "joincode.refused_expired",
    "invitation_revoked": "joincode.refused_revoked",
}


def district_url(text: str) -> str:
    """http://ADDRESS:8080 from what a person typed (an address, a host:port, or a full URL)."""
    value = "".join(str(text).split()).rstrip("/")
    if not value:
        raise UserError(words("no district address was given", "joincode.no_address"))
    if "://" not in value:
        value = "http://" + value
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(words(f"{text!r} is not a district address like 192.168.1.10:8080",
                              "joincode.bad_address", address=str(text)))
    return value


async def fetch_invitation(url: str, code: jc.JoinCode, *, timeout: float = DEADLINE) -> Invitation:
    """Run the code exchange with the district at `url`; the invitation it seals, or CodeRefused / PeerUnreachable."""
    from preau.node.federation.transport import PeerUnreachable

    client = jc.CodeClient(code, random=os.urandom(64))
    target = url.rstrip("/") + jc.PATH
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout, connect=10)) as http:
            async with http.ws_connect(target, max_msg_size=jc.MAX_MESSAGE) as ws:
                await ws.send_bytes(client.hello())
                await ws.send_bytes(client.receive_reply(await _receive(ws)))
                return client.receive_invitation(await _receive(ws))
    except RemoteProtocolError as exc:
        key = REFUSAL_KEYS.get(exc.code)
        if key is None:  # said by its code: the protocol's English message stays in the log, not on the page
            raise CodeRefused(words(f"the district at {url} did not complete the join-code exchange: {exc.message}",
                                    "joincode.refused_hung_up" if exc.code == "connection_lost" else "joincode.refused_other",
                                    address=url, code=exc.code), code=exc.code) from None
        raise CodeRefused(words(f"the district at {url} refused the code ({exc.code})", key, address=url),
                          code=exc.code) from None
    except aiohttp.WSServerHandshakeError as exc:
        raise PeerUnreachable(words(f"{url} does not answer join codes (HTTP {exc.status}): check the address, "
                                    "or use the long invitation", "joincode.not_preau", address=url,
                                    status=exc.status)) from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise PeerUnreachable(words(f"cannot reach the district at {url} ({exc.__class__.__name__}): check the "
                                    "address and that the district's node is running", "joincode.unreachable",
                                    address=url)) from None
