"""Admission to the sync endpoint: what one peer may cost the node (`Limits`), and the gate every socket
passes (`SessionGate`): pending sockets per address and in all, sessions at once, each peer's rate, and
the join codes one address may try.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable

from preau.protocol.errors import LocalProtocolError, ProtocolError
from preau.protocol.states import State

from preau.node.listener import network_key as _code_key  # an IPv6 network's /64 counts as one computer

log = logging.getLogger("preau.node.gate")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one peer may cost this node; every bound closes the session with a reason, never the node."""

    max_message_bytes: int = 1 << 20     # one reassembled protocol message
    max_docs_per_session: int = 500      # documents a peer may offer, and documents held open in one session
    idle_timeout: float = 60.0           # seconds without a byte from the peer
    session_timeout: float = 600.0       # a whole session, however busy
    max_session_bytes: int = 64 << 20    # bytes received in one session (compressed parts inflated): bounds the documents it can grow
    max_session_rows: int = 100_000      # operations and changes the peer's sync messages may build in one session
    sessions_per_minute: int = 30        # sessions admitted per peer key in any 60 s window
    max_concurrent_sessions: int = 64    # authenticated sessions served at once (past it: `busy`, retry later)
    max_sessions_per_peer: int = 3       # sessions one peer key holds at once (what its documents keep in memory)
    handshake_timeout: float = 5.0       # seconds for a new socket to prove who it is (seconds, not the idle timeout)
    max_pending_handshakes: int = 32     # sockets not yet authenticated, all sources together ...
    max_pending_per_address: int = 8     # ... and from one source address
    busy_retry_after: int = 30           # what a school is told to wait when the authenticated sessions are full
    code_failures_per_address: int = 10  # join-code exchanges that proved no code, from one address ...
    code_failure_window: float = 600.0   # ... in any window of this many seconds; then `joincode_too_many`
    code_failures_overall: int = 300     # ... and from all addresses together in that window (many networks)


class SessionGate:
    """Admission for the server side: who gets a socket, who gets a session, and each peer's rate.

    Anyone can open a socket, so sockets that have not proved a key yet ("pending") are
    bounded by count, per source address and overall, and by time (`handshake_timeout`).
    A new socket is always let in: when a bound is reached, the pending socket most likely
    to be a squatter is closed to make room, one that has sent nothing first, the oldest
    first. A real node sends its first handshake message as soon as it connects, so a
    flood of silent sockets only ever evicts itself, and an enrolled school gets through.
    Authenticated sessions are counted apart (`max_concurrent_sessions`): past that
    bound the peer is told `busy` with a time to retry, after the handshake, so it hears
    why. The per-peer rate is checked once the peer has proved its key. State is in
    memory: a restart forgets it, which only ever lets a peer in.
    """

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self.clock = clock
        self.active = 0  # authenticated sessions
        self._recent: dict[bytes, list[float]] = {}
        # token -> [address, has sent bytes, evict callback]; insertion order is age
        self._pending: OrderedDict[object, list] = OrderedDict()
        self.evicted = 0
        self.open_sessions: dict[object, tuple] = {}  # token -> (driver, ws), for telling them at shutdown
        self.closing = False
        self.served = 0  # authenticated sessions that ended (logged when the node stops)
        # address (an IPv6 one by its /64) -> times of join-code exchanges that failed; oldest failure first
        self._code_failures: OrderedDict[str, list[float]] = OrderedDict()
        self._all_code_failures: deque[float] = deque()  # every address's, newest last (at most the ceiling)
        self._held: dict[bytes, int] = {}  # peer key -> its sessions open now
        self._holder: dict[object, bytes] = {}  # token -> the peer key whose session it is

    async def shut_down(self) -> int:
        """The node is stopping: every open session is told `shutting_down` (and when to come back), then closed."""
        self.closing = True
        told = 0
        for driver, ws in list(self.open_sessions.values()):
            try:
                out = await driver.fedn.run(_tell_shutting_down, driver)  # not in the middle of a session's job
                if out and not ws.closed:
                    await ws.send_bytes(out)
                    told += 1
            except (ProtocolError, ConnectionError, RuntimeError):
                pass
            driver.finished = True
            if not ws.closed:
                await ws.close()
        return told

    @property
    def pending(self) -> int:
        return len(self._pending)

    def open(self, address: str, evict: Callable[[], None]) -> object:
        """A new socket from `address`; makes room by evicting a pending one if a bound is reached."""
        same = [t for t, (a, _, _) in self._pending.items() if a == address]
        if len(same) >= self.limits.max_pending_per_address:
            self._evict(same)
        elif len(self._pending) >= self.limits.max_pending_handshakes:
            self._evict(list(self._pending))
        token = object()
        self._pending[token] = [address, False, evict]
        return token

    def _evict(self, candidates: list) -> None:
        silent = [t for t in candidates if not self._pending[t][1]]
        victim = (silent or candidates)[0]
        _, _, evict = self._pending.pop(victim)
        self.evicted += 1
        evict()

    def progress(self, token: object) -> None:
        """The pending socket sent bytes: a node speaking the protocol, not a silent squatter."""
        entry = self._pending.get(token)
        if entry is not None:
            entry[1] = True

    def authenticated(self, token: object) -> bool:
        """The socket proved its key: it becomes a session, unless the sessions are full (then False: busy)."""
        self._pending.pop(token, None)
        if self.active >= self.limits.max_concurrent_sessions:
            return False
        self.active += 1
        return True

    def hold(self, token: object, peer_key: bytes) -> bool:
        """The session's peer proved `peer_key`: False when that key holds `max_sessions_per_peer` sessions already.

        Each session keeps the documents it syncs in memory until it ends (up to `max_session_rows` of
        operations, ~50 MB); without this bound one enrolled peer could hold every session slot at once."""
        if self._held.get(peer_key, 0) >= self.limits.max_sessions_per_peer:
            return False
        self._held[peer_key] = self._held.get(peer_key, 0) + 1
        self._holder[token] = peer_key
        return True

    def close(self, token: object, authenticated: bool) -> None:
        self._pending.pop(token, None)
        key = self._holder.pop(token, None)
        if key is not None:
            self._held[key] -= 1
            if not self._held[key]:
                del self._held[key]
        if authenticated:
            self.active = max(0, self.active - 1)
            self.served += 1

    def admit(self, peer_key: bytes) -> bool:
        now = self.clock()
        window = [t for t in self._recent.get(peer_key, ()) if now - t < 60.0]
        if len(window) >= self.limits.sessions_per_minute:
            self._recent[peer_key] = window
            return False
        window.append(now)
        self._recent[peer_key] = window
        if len(self._recent) > 4 * self.limits.max_concurrent_sessions + 1024:  # forget idle peers: bounded memory
            self._recent = {k: v for k, v in self._recent.items() if v and now - v[-1] < 60.0}
        return True


    # -- join codes (/v1/code) ----------------------------------------------------------------
    #
    # Each invitation locks its code after a few wrong tries, but a slot is only 15 bits and an unknown
    # slot is answered at once: without a bound per address, one computer found every pending invitation
    # and spoiled all their codes in about three minutes (181 tries a second on the demo district).

    #
    # Someone holding many networks (a /48 is 65,536 /64s) is bounded by the ceiling on all addresses'
    # failures together: past it every computer waits (the school's head teacher can paste the long text of
    # the invitation meanwhile, which needs no code), rather than pending codes being found and spoiled.

    def code_wait(self, address: str) -> float:
        """Seconds before `address` may try a join code again (0: now)."""
        wait = self.code_wait_overall()
        window = self._code_window(_code_key(address))
        if len(window) >= self.limits.code_failures_per_address:
            wait = max(wait, window[0] + self.limits.code_failure_window - self.clock(), 1.0)
        return wait

    def code_wait_overall(self) -> float:
        """Seconds before anyone may try a join code again, once all addresses together failed too often."""
        now, failures = self.clock(), self._all_code_failures
        while failures and now - failures[0] >= self.limits.code_failure_window:
            failures.popleft()
        if len(failures) < self.limits.code_failures_overall:
            return 0.0
        return max(1.0, failures[0] + self.limits.code_failure_window - now)

    def code_failed(self, address: str) -> bool:
        """A join-code exchange from `address` proved no code (unknown slot, locked, wrong, or hung up);
        True when that failure is the one that makes the address wait (the moment worth a log line)."""
        key = _code_key(address)
        window = self._code_window(key)
        window.append(self.clock())
        self._code_failures[key] = window
        self._code_failures.move_to_end(key)
        while len(self._code_failures) > CODE_ADDRESSES:  # bounded memory, in constant time a failure
            self._code_failures.popitem(last=False)  # the address whose last failure is the oldest
        reached = self.code_wait_overall() == 0
        self._all_code_failures.append(self.clock())
        while len(self._all_code_failures) > self.limits.code_failures_overall:
            self._all_code_failures.popleft()
        if reached and self.code_wait_overall() > 0:
            log.warning("join code: %d tries failed from all addresses together in %d s: every join code is refused "
                        "(joincode_too_many) until the oldest is %d s old; schools can paste the long text of their "
                        "invitation meanwhile. Someone may be guessing codes from many networks",
                        self.limits.code_failures_overall, self.limits.code_failure_window,
                        self.limits.code_failure_window)
        return len(window) == self.limits.code_failures_per_address

    def _code_window(self, key: str) -> list[float]:
        """The failures of `key` still inside the window (an address with none is forgotten)."""
        now = self.clock()
        window = [t for t in self._code_failures.get(key, ()) if now - t < self.limits.code_failure_window]
        if not window:
            self._code_failures.pop(key, None)
        return window


CODE_ADDRESSES = 4096  # addresses whose failed join codes are remembered (past it, the least recent is forgotten)


def _tell_shutting_down(driver: Any) -> bytes:
    """The `shutting_down` refusal, queued on a session's connection (run on the database thread)."""
    if driver.conn.state not in (State.ERROR, State.CLOSED):
        driver.conn.fail(LocalProtocolError("this node is shutting down (a restart or an update)",
                                            code="shutting_down", retry_after=60))
    return driver.conn.data_to_send()
