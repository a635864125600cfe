"""The district's form to pool small schools of a campaign (secure aggregation, docs/secure-aggregation.md).

Candidates are the schools enrolled here that declared their cohort for the
campaign (each school's own signed word), and the schools withheld for a small
cohort that have not declared yet (listed, not selectable: their head teacher
declares first). The checks and their words are those of
`federation.pools.create_pool`, the same as `preau pool create`.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from preau.node.federation import pools as fpools

from ..errors import UserError, words
from .context import node_of, on_db, t_
from .district_accounts import audit
from .district_stats import campaigns_of
from .flash import see_other
from .render import render
from .security import login_required, request_language

DISTRICT = ("district",)  # forming a pool is an administrator's act (inspectors only read)


def candidates(node: Any, campaign_id: str) -> list[dict[str, Any]]:
    """The schools a pool of this campaign may take, and those that must declare their cohort first."""
    declared = fpools.declarations(node.federation, campaign_id)
    busy = fpools.busy_schools(node.federation, campaign_id)
    entries = (node.fed.stats(campaign_id) or {}).get("schools", {})
    withheld = {k for k, e in entries.items() if (e.get("content") or {}).get("status") == "withheld"}
    rows = []
    children = [c for c in node.federation.children() if c["role"] == "school" and c["status"] == "active"]
    named = {c["key"]: c["name"] or c["uai"] for c in children}
    for child in children:
        found = declared.get(child["key"])
        if found is None and child["key"] not in withheld:
            continue
        pool = busy.get(child["key"])
        # A pool has no name of its own: a school in one is shown with the schools it is pooled with.
        with_ = sorted(named[k] for k, p in busy.items() if p == pool and k != child["key"] and k in named)
        rows.append({"uai": child["uai"], "name": named[child["key"]],
                     "cohort": None if found is None else found.cohort, "pool": pool and (", ".join(with_) or "…")})
    return sorted(rows, key=lambda r: (r["name"], r["uai"]))


def _page_data(node: Any, campaign_id: str) -> dict[str, Any]:
    """Everything the page shows, read in one place."""
    campaign = campaigns_of(node).get(campaign_id)
    if campaign is None:
        raise web.HTTPNotFound()
    return {"campaign": campaign, "candidates": candidates(node, campaign_id),
            "pools": fpools.pools(node.federation, campaign_id), "min_cohort": campaign.policy.min_cohort}


def _form_pool(node: Any, campaign_id: str, uais: list[str], threshold: str) -> fpools.PoolView:
    """All the store work of the POST: the same checks and signature as `preau pool create`."""
    if campaign_id not in campaigns_of(node):
        raise web.HTTPNotFound()
    text = threshold.strip()
    if text and not text.isdigit():
        raise UserError(words(f"the threshold {text!r} is not a whole number", "pool.form.bad_threshold", value=text))
    return fpools.create_pool(node.federation, campaign_id, uais, threshold=int(text) if text else None)


async def _page(request: web.Request, *, errors: list[str] | None = None, chosen: list[str] | None = None,
                threshold: str = "", status: int = 200) -> web.StreamResponse:
    campaign_id = request.match_info["campaign_id"]
    data = _page_data(node_of(request), campaign_id)
    return await render(request, "district_pools.html", {
        **data, "notice": None, "errors": errors or [], "chosen": set(chosen or ()), "threshold": threshold,
        "page_url": f"/district/pools/{campaign_id}"}, status=status)


@login_required(roles=DISTRICT)
async def pools_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@login_required(roles=DISTRICT)
async def pool_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    uais = [str(v).strip().upper() for v in form.getall("member", [])][:200]
    threshold = str(form.get("threshold", ""))[:10]
    campaign_id = request.match_info["campaign_id"]
    node = node_of(request)
    try:
        view = await on_db(request, _form_pool, node, campaign_id, uais, threshold)
    except UserError as exc:  # said in the person's language; the choice stays ticked, to correct it
        return await _page(request, errors=[exc.localized(request_language(request))], chosen=uais,
                           threshold=threshold, status=exc.status)
    await audit(request, "pool-formed", f"campaign:{campaign_id}",
                f"pool {view.pool_id[:8]}: {', '.join(m['uai'] for m in view.members)}, threshold {view.threshold}")
    node.wakeup.set()  # the schools (or the académie) hear of it at the next sync
    key = "pool.form.countersign" if view.status == fpools.COUNTERSIGN else "pool.form.formed"
    raise await see_other(request, f"/district/pools/{campaign_id}",
                          notice=t_(request)(key, n=len(view.members), threshold=view.threshold))


def add_routes(r: web.UrlDispatcher) -> None:
    camp = "{campaign_id:[a-z0-9-]{3,64}}"
    r.add_get(f"/district/pools/{camp}", pools_page)
    r.add_post(f"/district/pools/{camp}", pool_create)


__all__ = ["add_routes", "candidates"]
