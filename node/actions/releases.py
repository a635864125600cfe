"""A school's release, previewed then approved: the command line's `preau release` and the web's release page."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preau.crdt.signing import SignedRelease
from preau.node.federation import pools as fpools
from preau.node.federation.rules import Federation
from preau.node.release import ReleasePreview, approve_release, preview_release

from .common import Login, admin_session, opened_node, require_role


@dataclass(frozen=True)
class ReleaseView:
    preview: ReleasePreview
    pools: tuple[fpools.PoolView, ...]  # pools the district proposed for this campaign (secure aggregation)
    signed: SignedRelease | None = None  # set when this call approved and signed the release


def release_view(store: Any, session: Any, federation: Federation, campaign: str, *,
                 closing: bool | None = None) -> ReleaseView:
    """What would leave the school for a campaign, and the pools it could join; nothing is written."""
    preview = preview_release(store, session, federation, campaign, closing=closing)
    return ReleaseView(preview, tuple(fpools.pools(federation, campaign)))


def release(settings: Any, *, campaign: str, login: Login, approve: bool = False, final: bool = False,
            **_: Any) -> ReleaseView:
    """Preview (and with approve, sign) a school's release; `final` makes it the campaign's closing release."""
    require_role(settings, "school", "action.release_school_only")
    with opened_node(settings) as node:
        session = admin_session(node.store, login)
        view = release_view(node.store, session, node.federation, campaign, closing=True if final else None)
        if approve:
            signed = approve_release(node.store, session, node.federation, view.preview)
            view = ReleaseView(view.preview, view.pools, signed)
    return view
