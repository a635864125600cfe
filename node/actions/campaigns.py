"""A district publishes a campaign definition to its schools: `preau campaign load` (the web's upload too)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preau.crdt.campaign import Campaign

from .common import opened_node, require_role


@dataclass(frozen=True, slots=True)
class Published:
    campaign: str
    version: int
    changed: bool  # False: the same definition was already published, nothing new for the schools


def load_campaign(settings: Any, *, campaign: Campaign, **_: Any) -> Published:
    require_role(settings, "district", "action.campaign_district_only")
    from preau.crdt.schema import document_id

    with opened_node(settings) as node:
        before = node.fed.latest_release(document_id("campaign", node.federation.key, campaign.id))
        signed = node.federation.publish_campaign(campaign)
    return Published(campaign.id, signed.release, not (before is not None and before[0] == signed.release))
