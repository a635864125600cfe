"""Setting up a node: `preau init` (and the demo, which passes the password in)."""
from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

from preau.node.federation.store import FedStore
from preau.node.records.store import Store
from preau.node.runtime import FEDERATION_DB, IDENTITY_FILE, create_identity
from preau.node.settings import from_settings_file, given_on_command_line, render_toml

from .common import Conflict, argon2_cost, refuse, uai_of
from preau.node import datadir


@dataclass(frozen=True, slots=True)
class NewNode:
    data_dir: pathlib.Path
    role: str
    uai: str
    name: str
    node_id: str
    admin: str
    recovery_key: str  # shown once to the person who set the node up


def check_init(settings: Any, *, uai: str) -> str:
    """What can be refused before asking for the first password: the folder, the UAI, the mDNS library."""
    data = pathlib.Path(settings.data_dir)
    if any((data / f).exists() for f in (FEDERATION_DB, IDENTITY_FILE, datadir.RECORDS_DB)):
        raise refuse("action.init_exists", Conflict, data=data)
    uai = uai_of(uai)
    if settings.mdns:  # say now, not at the first `preau serve`, that the optional library is missing
        from preau.node.federation.mdns import zeroconf_module

        zeroconf_module()
    return uai


def init_node(settings: Any, *, uai: str, password: str, name: str | None = None, admin: str = "admin",
              **_: Any) -> NewNode:
    """Set up a node in the data folder; the store refuses a password that is too short, with its reason."""
    uai = check_init(settings, uai=uai)
    data = pathlib.Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    label = name or (f"École {uai}" if settings.role == "school" else f"Circonscription {uai}")
    store, recovery = Store.create(data, uai=uai, school_name=label, admin_username=admin,
                                   admin_password=password, cost=argon2_cost(settings))
    store.close()
    identity = create_identity(data)
    FedStore(data / FEDERATION_DB).close()
    # Merged into what the file already says (a public_url set first, as the docs' order has it), never over it.
    settings.settings_file.write_text(render_toml({**from_settings_file(settings), **given_on_command_line(settings)}))
    return NewNode(data, settings.role, uai, label, identity.node_id, admin, recovery)
