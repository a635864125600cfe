"""The link a district's QR code carries: the school's own join page, pre-filled.

A phone on the school's network reads the QR code and opens `http://preau.local:PORT/admin/join?...` (the
school box answers as preau.local when mDNS is on). That page only fills the form in: nothing is sent to the
district before the head teacher presses the button (a GET never joins), and an invitation for another
school's UAI is named before anything is sent (school_sync.join_page).
"""
from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping

from preau.node.settings import Settings

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}
SCHOOL_HOST = f"{_DEFAULTS['mdns_name']}.local"  # a school box with mDNS on, named as shipped
SCHOOL_PORT: int = _DEFAULTS["port"]
JOIN_PATH = "/admin/join"
# The query's fields and the most the school's page takes of each (longer values are cut, never trusted).
FIELDS = {"code": 4000, "district": 300, "uai": 20, "name": 120}


def school_join_link(*, code: str, district: str, uai: str, name: str | None = None,
                     host: str = SCHOOL_HOST, port: int = SCHOOL_PORT) -> str:
    """The school's join page with the invitation's short code, the district's address, the UAI and the
    school's name as the district typed it (left out when it typed none)."""
    query = {"code": code, "district": district, "uai": uai}
    if name:
        query["name"] = name
    return f"http://{host}:{port}{JOIN_PATH}?{urllib.parse.urlencode(query)}"


def read_join_query(query: Mapping[str, str]) -> dict[str, str]:
    """What the link carried, each field trimmed and cut to its length ("" when absent)."""
    return {key: " ".join(str(query.get(key, "")).split())[:most] for key, most in FIELDS.items()}
