"""Login rate limiting, and the call to the injected authenticator."""
from __future__ import annotations

import inspect
import ipaddress
from collections import OrderedDict

from aiohttp import web

from preau.node import listener
from preau.node.web.sessions import Authenticator, Principal


def _who(address: str) -> str:
    """Whose failures count together: an address from the internet by its /64 (any rented server holds a whole
    /64, so each made-up address would get its own tries at a district's accounts); an address of the school's
    own network (private, ULA, link-local) alone, since there one /64 is every computer of the school (review3:
    one pupil's failed tries would slow every teacher)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return listener.network_key(address) if ip.is_global else address


class LoginRateLimiter:
    """Growing delays after failed logins, per account *and* client address, and per client address.

    Each failure past the free ones doubles the wait before the next try from that
    computer (`base`, then twice as long ... up to `lockout`). The account itself is never
    locked from everywhere: a guesser on one computer slows down that computer only, so
    nobody can lock a teacher out from elsewhere. A computer that tries many accounts is
    slowed down as a whole. A success forgets that computer's failures on that account;
    a head teacher's password reset (`reset_account`) forgets all of the account's.
    Failures are forgotten after `window` seconds without a new one.
    """

    def __init__(self, *, account_max: int = 5, address_max: int = 20, window: float = 900.0,
                 lockout: float = 900.0, base: float = 30.0, max_keys: int = 50_000) -> None:
        self.account_max, self.address_max = account_max, address_max
        self.window, self.lockout, self.base, self.max_keys = window, lockout, base, max_keys
        self._state: OrderedDict[str, list[float]] = OrderedDict()  # key -> [failures, last failure, wait until]

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        address = _who(address)
        return f"p:{username.strip().casefold()}|{address}", "a:" + address

    def _entry(self, key: str, now: float) -> list[float] | None:
        entry = self._state.get(key)
        if entry is not None and now - entry[1] >= self.window and now >= entry[2]:
            del self._state[key]
            return None
        return entry

    def delay(self, failures: int, free: int) -> float:
        """The wait after `failures` failures when the first `free` ones cost nothing."""
        if failures < free:
            return 0.0
        return min(self.lockout, self.base * 2 ** min(failures - free, 30))

    def locked_for(self, username: str, address: str, now: float) -> float:
        """Seconds until a login may be tried again from `address`; 0 when it may be tried now."""
        remaining = 0.0
        for key in self._keys(username, address):
            entry = self._entry(key, now)
            if entry is not None:
                remaining = max(remaining, entry[2] - now)
        return remaining

    def failure(self, username: str, address: str, now: float) -> None:
        for key, free in zip(self._keys(username, address), (self.account_max, self.address_max)):
            entry = self._entry(key, now) or [0.0, now, now]
            entry[0] += 1
            entry[1] = now
            entry[2] = now + self.delay(int(entry[0]), free)
            self._state[key] = entry
            self._state.move_to_end(key)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)

    def success(self, username: str, address: str) -> None:
        self._state.pop(self._keys(username, address)[0], None)

    def reset_account(self, username: str) -> int:
        """Forget every computer's failures on this account (its password was just reset); returns how many."""
        prefix = f"p:{username.strip().casefold()}|"
        keys = [k for k in self._state if k.startswith(prefix)]
        for key in keys:
            del self._state[key]
        return len(keys)


async def call_authenticator(authenticate: Authenticator, username: str, password: str) -> Principal | None:
    result = authenticate(username, password)
    if inspect.isawaitable(result):
        result = await result
    if result is not None and not isinstance(result, Principal):
        raise TypeError(f"authenticate() must return a Principal or None, got {type(result).__name__}")
    return result


def client_address(request: web.Request) -> str:
    return listener.client_address(request)  # the proxy's X-Forwarded-For when the peer is this machine
