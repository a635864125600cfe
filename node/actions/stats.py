"""A campaign's statistics: a district's merged counts (`preau stats`, the district's statistics pages and
exports), or on a school the counts of its latest release exactly as the district received them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preau.crdt.statistics import CampaignStatistics, percents
from preau.node.federation import pools as fpools
from preau.node.runtime import Node

from .common import NotFound, opened_node, refuse


@dataclass(frozen=True)
class DistrictStats:
    campaign: str
    statistics: CampaignStatistics
    # One row per exercise, in the campaign's order: counts, what may be shown ("≥N" where a district hid part of
    # a cell), rates, spread, hidden, exact, percents (the one definition of the shares: pages, charts, exports).
    rows: tuple[dict[str, Any], ...]
    pools: tuple[fpools.PoolView, ...]


@dataclass(frozen=True)
class SchoolStats:
    campaign: str
    release: int
    status: str  # published, withheld
    reason: str | None
    final: bool
    rows: tuple[dict[str, Any], ...]  # {"exercise", besoin, fragile, seuil2, absent, pending}


def known_campaigns(node: Node) -> dict[str, Any]:
    return {c.id: c for c in node.federation.campaigns()}


def district_stats(node: Node, campaign: str) -> DistrictStats | None:
    """The campaign's merged statistics, up to date (`node.live_stats`); None before any release arrived."""
    s = node.live_stats.get(campaign)
    if s is None:
        return None
    known = known_campaigns(node).get(campaign)
    order = [ex.id for ex in known.exercises] if known else []
    names = {ex.id: ex.name for ex in known.exercises} if known else {}
    ids = [e for e in order if e in s.exercise_ids()] + [e for e in s.exercise_ids() if e not in order]
    rows = []
    for ex in ids:
        e = s.exercise(ex)
        rows.append({"exercise": ex, "name": names.get(ex, ex), "counts": dict(e.counts), "schools": e.schools_contributing,
                     "rates": dict(e.rates), "spread": dict(e.spread), "hidden": dict(e.hidden),
                     "shown": {c: e.shown(c) for c in e.counts}, "exact": e.exact,
                     "percents": percents(e.counts, e.hidden)})
    return DistrictStats(campaign, s, tuple(rows), tuple(fpools.pools(node.federation, campaign)))


def school_stats(node: Node, campaign: str) -> SchoolStats:
    """A school's own counts: its latest signed release, read at its signed heads (exactly what the district got)."""
    from preau.crdt.docio import load_document
    from preau.crdt.documents import read_release
    from preau.crdt.schema import document_id
    from preau.crdt.signing import SignedRelease

    rid = document_id("release", node.federation.key, campaign)
    if node.fed.latest_release(rid) is None:
        # After a key rotation the latest release is still the one signed under an older key: the
        # transparency log names every release that left this school.
        sent = [r for r in node.fed.transparency()
                if r["doc_id"].startswith("release:") and r["content"].get("campaign") == campaign]
        if sent:
            rid = max(sent, key=lambda r: r["number"])["doc_id"]
    latest = node.fed.latest_release(rid)
    stored = node.fed.document(rid)
    if latest is None or stored is None:
        raise refuse("action.stats_nothing_released", NotFound, campaign=repr(campaign), id=campaign)
    signed = SignedRelease.decode(latest[1])
    content = read_release(load_document(stored.data), list(signed.heads))
    rows = tuple({"exercise": r.exercise, **r.to_dict()} for r in content.rows)
    return SchoolStats(campaign, content.release, content.status, content.reason, content.final, rows)


def stats(settings: Any, *, campaign: str, **_: Any) -> DistrictStats | SchoolStats:
    """A district's merged statistics, or on a school the counts of its latest release."""
    with opened_node(settings) as node:
        if settings.role == "school":
            return school_stats(node, campaign)
        found = district_stats(node, campaign)
        if found is None:
            known = sorted(known_campaigns(node))
            if campaign not in known:
                if known:
                    raise refuse("action.stats_no_campaign", NotFound, campaign=repr(campaign), known=", ".join(known))
                raise refuse("action.stats_no_campaign_at_all", NotFound, campaign=repr(campaign))
            raise refuse("action.stats_none_yet", NotFound, campaign=repr(campaign))
        return found


def stats_rows(stats: dict) -> list[dict[str, Any]]:
    """Rows of stored statistics (per exercise: what may be shown, and the schools counted)."""
    s = CampaignStatistics.from_dict(stats)
    rows = []
    for ex in s.exercise_ids():
        e = s.exercise(ex)
        # "≥N" where a district hid part of the cell (an académie's statistics): never a bound passed off as a count.
        rows.append({"exercise": ex, **{k: e.shown(k) for k in e.counts}, "schools": e.schools_contributing})
    return rows
