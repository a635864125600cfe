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
        old, old_key = node.node_id, node.federation.key.hex()
        new = node.rotate_keys(overlap_days)
        members = bool(node.federation.children())
        # A school takes campaigns signed by the key it pins: the campaigns this node published go on under its
        # new key, or a school enrolled after the rotation would receive none (and later thresholds none either).
        for campaign in node.federation.campaigns(owner=old_key):
            node.federation.publish_campaign(campaign)
    return Rotated(old, new.node_id, members, overlap_days)
