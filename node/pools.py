"""`preau pool ...`: the use cases of secure-aggregation pools on the command line (docs/secure-aggregation.md).

The district forms a pool among its small schools; each school sees it in its
release preview and its head teacher approves it (nothing leaves before);
the rounds then run by themselves at each sync (preau.node.federation.pools, which the web's
pool pages call directly).
"""
from __future__ import annotations

from typing import Any

from preau.crdt.pooling import pool_vector
from preau.node.actions import _uai, admin_session, opened_node, require_role
from preau.node.errors import UserError
from preau.node.federation import pools as fpools
from preau.node.release import pool_counts


def _members(members: list[str]) -> list[tuple[str, int]]:
    out = []
    for text in members:
        uai, sep, cohort = text.partition("=")
        if not sep or not cohort.strip().isdigit():
            raise UserError(f"{text!r}: écrivez UAI=EFFECTIF, par exemple 0690001B=5 / write UAI=COHORT, e.g. 0690001B=5")
        out.append((_uai(uai), int(cohort)))
    return out


def create(settings, *, campaign: str, member: list[str], threshold: int | None = None, **_: Any) -> str:
    """District: form and sign a pool; its schools see it at their next sync."""
    require_role(settings, "district", "pools are formed by the district: run this on the district's node")
    with opened_node(settings) as node:
        view = fpools.create_pool(node.federation, campaign, _members(member or []), threshold=threshold)
    return (view.line() + "\nThe schools see this pool at their next sync; each head teacher approves it "
            "(`preau pool approve`) before anything leaves the school.")


def pool_lines(node, campaign: str | None = None) -> list[str]:
    return [v.line() for v in fpools.pools(node.federation, campaign)]


def list_pools(settings, *, campaign: str | None = None, **_: Any) -> str:
    with opened_node(settings) as node:
        lines = pool_lines(node, campaign)
    return "\n".join(lines) if lines else "No pool on this node."


def approve(settings, *, pool: str, user: str | None = None, **_: Any) -> str:
    """School: the head teacher freezes the school's counts into the pool; its keys leave at the next sync."""
    require_role(settings, "school", "pools are approved on a school's node")
    with opened_node(settings) as node:
        definition, _state = fpools.proposal(node.federation, pool)
        session = admin_session(node.store, user)
        # Under the campaign as first released (pinned thresholds), like every release of this school.
        vector, policy = pool_counts(node.store, session, node.federation, definition.campaign_id)
        view = fpools.approve_pool(node.federation, pool, vector, min_cohort=policy.min_cohort,
                                   user=user or "admin")
    return (view.line() + f"\nApproved: this school's {vector[-1]} pupils take part; only a masked vector leaves, "
            "which only the pool's sum can open. It goes at the next sync (or run `preau sync`).")


def advance(settings, *, pool: str, **_: Any) -> str:
    """District: close the current round with the schools that answered (after waiting long enough)."""
    require_role(settings, "district", "only the district closes a pool's round")
    with opened_node(settings) as node:
        view = fpools.advance_pool(node.federation, pool)
    return view.line()
