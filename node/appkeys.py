"""Typed keys for everything an aiohttp application shares; the one place they are declared."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from preau.node.federation.store import FedStore

CONFIG = web.AppKey("config", Any)
FEDSTORE: web.AppKey["FedStore"] = web.AppKey("fedstore")
NODE = web.AppKey("node", Any)          # the running node: identity, role, sync engine
STORE = web.AppKey("store", Any)        # encrypted pupil store (schools only)
# The `trusted_proxy` setting: X-Forwarded-For names the computer only when the operator said a reverse proxy runs
# on this machine (node/listener.py client_address); without it, any program here could pass for any computer.
TRUSTED_PROXY = web.AppKey("trusted_proxy", bool)
# The node's mDNS announcement (federation.mdns.Advertiser), made by the listener once the port accepts
# connections and withdrawn before the node closes: a computer that finds the box by name can reach it at once.
ANNOUNCE = web.AppKey("announce", Any)
