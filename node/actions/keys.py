"""A node's long-term keys: `preau keys rotate` (the recovery key is in backups.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preau.node.runtime import DEFAULT_OVERLAP_DAYS

from .common import opened_node


@dataclass(frozen=True, slots=True)
class Rotated:
    old: str  # node ids
    new: str
    members: bool  # nodes are enrolled here (they learn the new key, or must be invited again)
    overlap_days: int


def rotate_keys(settings: Any, *, overlap_days: int = DEFAULT_OVERLAP_DAYS, **_: Any) -> Rotated:
    """New long-term keys signed by the old ones (the caller asked the person to confirm)."""
    with opened_node(settings) as node:
        old = node.node_id
        new = node.rotate_keys(overlap_days)
        members = bool(node.federation.children())
    return Rotated(old, new.node_id, members, overlap_days)
