"""The node's listening socket: what `preau serve` runs, with a bound on the connections one computer may hold.

Without it, anyone on the network could open a thousand idle TCP connections (they cost
the attacker nothing, and aiohttp keeps each one up to its 75 s keep-alive timeout): the
process then runs out of file descriptors (1024 under systemd by default), `accept()` fails
with EMFILE, the web pages and the sync endpoint stop answering, SQLite cannot open a
file, and the log fills with tracebacks, for as long as the attacker keeps reconnecting.
The WebSocket gate (`federation.gate`) only sees sockets that reached /v1/sync; this sees
every connection as it is accepted. So:

- the soft limit on open files is raised to the hard one (at most `WANT_OPEN_FILES`);
- one source address may hold at most `per_address` connections at once; one more is
  answered `503` with a line saying what to do (French first), and closed (not for this
  machine's own addresses: behind a reverse proxy on the node's host, 127.0.0.1 is everyone);
- all addresses together may hold at most `total` (the open-files limit less a reserve for
  the databases, the log, the node's own outgoing syncs and the sockets accepted but not yet counted); past it the oldest connection
  that has not sent a request yet, from the address holding the most, is closed to make room.

State is in memory and per process.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import Counter, OrderedDict
from contextlib import asynccontextmanager, suppress
from typing import Any, AsyncIterator, Callable

from aiohttp import web

from preau.node import i18n
from preau.node.appkeys import ANNOUNCE, TRUSTED_PROXY

log = logging.getLogger("preau.node.listener")

WANT_OPEN_FILES = 65536
PER_ADDRESS = 128  # a browser opens at most 6 per host; a school's sync holds 1
ACCEPT_BURST = 32  # the listen backlog: sockets asyncio accepts in one go
LOG_EVERY = 60.0   # seconds between two log lines about the same address


def raise_open_files_limit(want: int = WANT_OPEN_FILES) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards the hard one (never lowers it); returns the soft limit."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Linux
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(hard, want)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # pragma: no cover - a container that forbids it
            log.warning("could not raise the open files limit from %d to %d: %s", soft, target, exc)
    return soft if soft != resource.RLIM_INFINITY else want


def too_many_response(limit: int = PER_ADDRESS) -> bytes:
    """The whole HTTP answer to a connection over the cap (no request read: French first, then English)."""
    text = "\n".join(i18n.translate(lang, "listener.too_many", limit=limit) for lang in i18n.LANGUAGES) + "\n"
    body = text.encode("utf-8")
    head = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 30\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")
    return head.encode("ascii") + body


class ConnectionCap:
    """Counts the server's open connections per source address and refuses or evicts past the bounds."""

    def __init__(self, *, per_address: int = PER_ADDRESS, total: int, clock: Callable[[], float] = time.monotonic):
        self.per_address = per_address
        self.total = max(total, per_address)
        self.clock = clock
        self.open: OrderedDict[Any, tuple[str, Any]] = OrderedDict()  # handler -> (address, transport); oldest first
        self.by_address: Counter[str] = Counter()
        self.refused = 0
        self.evicted = 0
        self._logged: dict[str, float] = {}
        self._answer = too_many_response(per_address)

    def install(self, server: web.Server) -> None:
        """Wrap the server's connection callbacks (`runner.server`, after `runner.setup()`)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: Any) -> None:
            made(handler, transport)
            self.made(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self.lost(handler)
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def made(self, handler: Any, transport: Any) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else "?"
        if self.by_address[address] >= self.per_address and not _loopback(address):
            self.refused += 1
            self._say(address, "refused a connection from %s: it holds %d already (at most %d per address)",
                      self.by_address[address], self.per_address)
            transport.write(self._answer)
            # Closed on the next turn of the loop, once aiohttp has started this connection's task (closing now
            # would end the connection under it); not counted, so `lost` finds no entry.
            asyncio.get_running_loop().call_soon(transport.close)
            return
        if len(self.open) >= self.total:
            self._evict()
        self.open[handler] = (address, transport)
        self.by_address[address] += 1

    def lost(self, handler: Any) -> None:
        entry = self.open.pop(handler, None)
        if entry is None:
            return
        address = entry[0]
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def _evict(self) -> None:
        """Close the oldest connection that has sent no request, from the address holding the most."""
        for address, _ in self.by_address.most_common():
            for handler, (owner, transport) in self.open.items():
                if owner == address and getattr(handler, "_request_count", 1) == 0:
                    self.lost(handler)
                    self.evicted += 1
                    self._say(address, "closed an idle connection from %s to make room: %d open in all (at most %d)",
                              len(self.open), self.total)
                    transport.close()
                    return

    def _say(self, address: str, message: str, *values: object) -> None:
        now = self.clock()
        if now - self._logged.get(address, -LOG_EVERY) >= LOG_EVERY:
            self._logged[address] = now
            if len(self._logged) > 4096:
                self._logged = {a: t for a, t in self._logged.items() if now - t < LOG_EVERY}
            log.warning(message, address, *values)


def _loopback(address: str) -> bool:
    """A connection from this machine: behind the reverse proxy of docs/operations.md every school and every
    browser comes from 127.0.0.1, so one address there is many computers (the total bound still holds)."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


_UNTRUSTED_SAID = [float("-inf")]  # when the last line about an unread X-Forwarded-For was logged (per process)


def _untrusted_header() -> None:
    """A request from this machine carries X-Forwarded-For, but `trusted_proxy` is off: most likely a proxy set
    up before the setting existed, whose computers all count as this machine now. Said once an hour."""
    now = time.monotonic()
    if now - _UNTRUSTED_SAID[0] >= 3600:
        _UNTRUSTED_SAID[0] = now
        log.warning("a request from this machine carries X-Forwarded-For, which is not read (trusted_proxy is off): "
                    "every computer behind a reverse proxy counts as this machine for login delays and join-code "
                    "tries. If a reverse proxy on this machine passes the requests, set trusted_proxy = true "
                    "(docs/operations.md, 'Behind a reverse proxy')")


def client_address(request: web.Request) -> str:
    """The computer on the other end, for the bounds kept per address (login delays, join-code tries).

    The TCP peer, except when the operator set `trusted_proxy`, the peer is this machine and the request
    carries X-Forwarded-For: that is the reverse proxy of docs/operations.md, and the last address it appended
    is the computer. Without this, behind the proxy everyone was 127.0.0.1: 21 wrong passwords from anywhere
    locked every district account out. A peer on the network cannot choose its address this way (its header
    is ignored), nor can a program on this machine unless the operator said a proxy runs here."""
    peer = request.remote or "unknown"
    if not _loopback(peer) or "X-Forwarded-For" not in request.headers:
        return peer
    if not request.config_dict.get(TRUSTED_PROXY, False):
        _untrusted_header()
        return peer
    last = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return peer


def network_key(address: str) -> str:
    """Whose join-code tries count together: an IPv4 address, or an IPv6 one's /64 (one home or school network
    is given a whole /64, so counting each IPv6 address apart would not bound anyone). Login delays use it for
    addresses from the internet only (web/logins.py): on the school's own LAN one /64 is every computer."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 address a.b.c.d
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


@asynccontextmanager
async def serving(app: web.Application, *, host: str, port: int, access_log_class: Any = None,
                  cap: "ConnectionCap | None" = None, handle_signals: bool = True) -> AsyncIterator[web.AppRunner]:
    """The app listening on host:port, its mDNS announcement (app[ANNOUNCE]) made once the port accepts
    connections: announced during the app's start-up, the box was found by name while nothing answered there yet
    (a teacher's computer got « connexion refusée »; seen in CI on a loaded machine)."""
    kw = {"access_log_class": access_log_class} if access_log_class is not None else {}
    runner = web.AppRunner(app, handle_signals=handle_signals, **kw)
    await runner.setup()
    assert runner.server is not None
    if cap is not None:
        cap.install(runner.server)
    announce = app.get(ANNOUNCE)
    try:
        await web.TCPSite(runner, host, port, backlog=ACCEPT_BURST).start()
        if announce is not None:
            await announce.start()
        yield runner
    finally:
        try:
            if announce is not None:
                await announce.stop()  # withdrawn first: nobody is sent to a node that is closing
        finally:
            await runner.cleanup()


def run(app: web.Application, *, host: str, port: int, access_log_class: Any) -> None:
    """`web.run_app` (signals, clean shutdown), with the open-files limit raised and the connection cap installed."""
    soft = raise_open_files_limit()
    # The reserve: the node's own files (databases, log, outgoing syncs: about 20) and the sockets asyncio has
    # accepted (up to the listen backlog at a time) but the node has not looked at yet, or has evicted but not
    # closed yet: connection_made runs later, in a task, and a close on the next turn of the loop. Measured
    # during a flood of 612 idle connections at a node held to 512 files: 503 open at the peak with a budget of
    # 256 (in CI, on a loaded machine, past 512: EMFILE). So the reserve is three quarters of a small limit (a
    # node left at 512 files keeps 128 connections), and at most 1,024 files of a large one.
    cap = ConnectionCap(total=soft - min(1024, soft * 3 // 4))

    async def main() -> None:
        async with serving(app, host=host, port=port, access_log_class=access_log_class, cap=cap):
            while True:
                await asyncio.sleep(3600)

    loop = asyncio.new_event_loop()
    task = loop.create_task(main())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError):
                    loop.run_until_complete(task)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler({"message": "unhandled exception while the node stopped",
                                         "exception": task.exception(), "task": task})


__all__ = ["ConnectionCap", "PER_ADDRESS", "client_address", "raise_open_files_limit", "run", "too_many_response"]
