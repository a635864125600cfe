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


def _members(members: list[str]) -> list[str | tuple[str, int]]:
    """UAIs; `UAI=N` also checks that the school declared N pupils (cohorts are the schools' own word)."""
    out: list[str | tuple[str, int]] = []
    for text in members:
        uai, sep, cohort = text.partition("=")
        if sep and not cohort.strip().isdigit():
            raise UserError(f"{text!r}: écrivez l'UAI, par exemple 0690001B (ou 0690001B=5 pour vérifier l'effectif "
                            f"déclaré) / write the UAI, e.g. 0690001B (or 0690001B=5 to check the declared cohort)")
        out.append((_uai(uai), int(cohort)) if sep else _uai(uai))
    return out


def create(settings, *, campaign: str, member: list[str], threshold: int | None = None, **_: Any) -> str:
    """District: form and sign a pool; its schools see it at their next sync."""
    require_role(settings, "district", "pools are formed by the district: run this on the district's node")
    with opened_node(settings) as node:
        view = fpools.create_pool(node.federation, campaign, _members(member or []), threshold=threshold)
    first = ("It goes first to the académie, which countersigns its member list at the district's next sync; "
             "then the schools see it at their next sync" if view.status == fpools.COUNTERSIGN else
             "The schools see this pool at their next sync")
    return (view.line() + f"\n{first}; each head teacher approves it (`preau pool approve`) before anything "
            "leaves the school.")


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


def declare(settings, *, campaign: str, user: str | None = None, **_: Any) -> str:
    """School: declare this school's cohort for a campaign (public figures, signed), so its district can pool it."""
    require_role(settings, "school", "a school declares its cohort on its own node")
    with opened_node(settings) as node:
        session = admin_session(node.store, user)
        camp = node.store.get_campaign(session, campaign)
        cohort = pool_vector(node.store.release_outcomes(session, camp.id), camp)[-1]
        fpools.declare_cohort(node.federation, camp.id, node.store.school()["uai"], cohort)
    return (f"Declared: {cohort} pupils assessed in {camp.id}, signed by this school. Only this number goes to the "
            "district, at the next sync, so it can pool this school with other small ones; nothing leaves before "
            "the head teacher approves a pool.")


def advance(settings, *, pool: str, **_: Any) -> str:
    """District: close the current round with the schools that answered (after waiting long enough)."""
    require_role(settings, "district", "only the district closes a pool's round")
    with opened_node(settings) as node:
        view = fpools.advance_pool(node.federation, pool)
    return view.line()
