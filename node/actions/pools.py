"""Secure-aggregation pools (docs/secure-aggregation.md): `preau pool ...`.

The district forms a pool among its small schools; each school sees it in its
release preview and its head teacher approves it (nothing leaves before);
the rounds then run by themselves at each sync (preau.node.federation.pools,
which the web's pool pages call directly).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preau.crdt.pooling import pool_vector
from preau.node.federation import pools as fpools
from preau.node.release import pool_counts

from .common import Login, admin_session, opened_node, refuse, require_role, uai_of


def _members(members: list[str]) -> list[str | tuple[str, int]]:
    """UAIs; `UAI=N` also checks that the school declared N pupils (cohorts are the schools' own word)."""
    out: list[str | tuple[str, int]] = []
    for text in members:
        uai, sep, cohort = text.partition("=")
        if sep and not cohort.strip().isdigit():
            raise refuse("action.pool_member", text=repr(text))
        out.append((uai_of(uai), int(cohort)) if sep else uai_of(uai))
    return out


def create(settings: Any, *, campaign: str, member: list[str], threshold: int | None = None,
           **_: Any) -> fpools.PoolView:
    """District: form and sign a pool; its schools see it at their next sync."""
    require_role(settings, "district", "action.pool_district_only")
    with opened_node(settings) as node:
        return fpools.create_pool(node.federation, campaign, _members(member or []), threshold=threshold)


def list_pools(settings: Any, *, campaign: str | None = None, **_: Any) -> tuple[fpools.PoolView, ...]:
    with opened_node(settings) as node:
        return tuple(fpools.pools(node.federation, campaign))


def check_approve(settings: Any, *, pool: str, **_: Any) -> None:
    """Before asking for the password: a school, and a pool of that name waiting for it."""
    require_role(settings, "school", "action.pool_school_only")
    with opened_node(settings) as node:
        fpools.proposal(node.federation, pool)


@dataclass(frozen=True, slots=True)
class Approved:
    pool: fpools.PoolView
    pupils: int  # this school's pupils in the frozen vector


def approve(settings: Any, *, pool: str, login: Login, **_: Any) -> Approved:
    """School: the head teacher freezes the school's counts into the pool; its keys leave at the next sync."""
    require_role(settings, "school", "action.pool_school_only")
    with opened_node(settings) as node:
        definition, _state = fpools.proposal(node.federation, pool)
        session = admin_session(node.store, login)
        # Under the campaign as first released (pinned thresholds), like every release of this school.
        vector, policy = pool_counts(node.store, session, node.federation, definition.campaign_id)
        view = fpools.approve_pool(node.federation, pool, vector, min_cohort=policy.min_cohort, user=login.user)
    return Approved(view, vector[-1])


@dataclass(frozen=True, slots=True)
class Declared:
    campaign: str
    cohort: int  # pupils assessed, signed by the school: public, what the district pools schools by


def declare(settings: Any, *, campaign: str, login: Login, **_: Any) -> Declared:
    """School: declare this school's cohort for a campaign (public figures, signed), so its district can pool it."""
    require_role(settings, "school", "action.pool_declare_school_only")
    with opened_node(settings) as node:
        session = admin_session(node.store, login)
        camp = node.store.get_campaign(session, campaign)
        cohort = pool_vector(node.store.release_outcomes(session, camp.id), camp)[-1]
        fpools.declare_cohort(node.federation, camp.id, node.store.school()["uai"], cohort)
    return Declared(camp.id, cohort)


def advance(settings: Any, *, pool: str, **_: Any) -> fpools.PoolView:
    """District: close the current round with the schools that answered (after waiting long enough)."""
    require_role(settings, "district", "action.pool_district_advance")
    with opened_node(settings) as node:
        return fpools.advance_pool(node.federation, pool)
