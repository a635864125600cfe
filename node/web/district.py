"""District pages: enrolled schools, invitations with a QR code, campaigns and merged statistics.

Everything here reads the federation store (signed documents and the
statistics merged from verified releases); a district never holds a pupil's
name or result, so these pages have none to leak.
"""
from __future__ import annotations

import json
from typing import Any

import segno
from aiohttp import web

from preau.node.actions.enrollment import issue_invitation
from preau.node.federation import pools as fpools
from preau.node.records import csvio
from markupsafe import Markup

from preau.crdt.campaign import GROUPS, SCORED_GROUPS, Campaign, parse_campaign
from preau.crdt.errors import CampaignError
from preau.crdt.schema import COLUMNS
from preau.crdt.statistics import SHARE_BASIS, percent
from preau.protocol.errors import LocalProtocolError

from ..campaign_file import parse_campaign_bytes
from ..codes import campaign_words, refusal_words
from ..errors import UserError
from . import district_accounts, district_pools, district_stats
from .district_accounts import audit
from .join_link import school_join_link
from .district_stats import SHARE_HEADERS, campaigns_of, live, no_data, stats_table
from .district_stats import summary as stats_summary
from .charts import group_bars_svg, spread_svg
from preau.node.i18n import when
from .flash import see_other
from .render import render
from .security import login_required, request_language
from .appkeys import SETTINGS
from .context import node_of, on_db, refused, t_


def said(request: web.Request, error: Exception) -> str:
    """A refusal in the person's language: the error's own catalog words (`Words`; a campaign's mistake by its
    code), else its message as it is."""
    lang = request_language(request)
    if isinstance(error, UserError):
        return error.words.to(lang)
    if isinstance(error, CampaignError):
        return campaign_words(error).to(lang)
    return getattr(error, "message", str(error))

DISTRICT = ("district",)  # the district's administrators: invitations, campaigns, accounts
DISTRICT_READ = ("district", "inspector")  # and its read-only inspectors: schools, statistics
_MAX_TOML = 256 * 1024


# -- schools -------------------------------------------------------------------------

@login_required(roles=DISTRICT_READ)
async def schools(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    lang = request_language(request)
    per_campaign = {}
    for cid in node.fed.stats_campaigns():
        s = live(node, cid)
        per_campaign[cid] = {m.member: m for m in s.members()} if s is not None else {}
    names = {cid: c.name for cid, c in campaigns_of(node).items()}
    # A small school pooled with others has no release of its own: say it counts through its pool.
    pooled: dict[str, list[dict]] = {}
    for view in fpools.pools(node.federation):
        if view.status != "failed":
            for member in view.members:
                pooled.setdefault(member["node_id"], []).append(
                    {"campaign": names.get(view.campaign, view.campaign), "complete": view.status == "complete",
                     "schools": view.survivors or len(view.members)})
    rows = []
    for p in node.federation.children():
        releases = []
        for cid, members in per_campaign.items():
            m = members.get(p["key"])
            if m is not None:
                releases.append({"campaign": names.get(cid, cid), "release": m.release, "when": when(m.time, lang),
                                 "withheld": m.status == "withheld"})
        rows.append({"p": p, "enrolled": when(p["enrolled_at"], lang), "contact": when(p["last_contact"], lang),
                     "releases": releases, "pools": pooled.get(p["node_id"], []),
                     "error": refusal_words(p.get("last_error_code"), p["last_error"], peer="school").to(lang)
                     if p["last_error"] else None})
    return await render(request, "district_schools.html", {"schools": rows, "node_id": node.node_id})


# -- invitations ---------------------------------------------------------------------------

async def _invitations_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                            status: int = 200, created: dict | None = None,
                            typed: dict[str, str] | None = None) -> web.StreamResponse:
    """`typed`: a refused invitation's fields, put back in the form with the cursor on the UAI."""
    node = node_of(request)
    lang = request_language(request)
    rows = []
    for inv in node.fed.invitations():
        state = "used" if inv["used_at"] else "revoked" if inv["revoked_at"] else \
            "expired" if inv["expires_at"] < node.federation.clock() else "pending"
        rows.append({"id": inv["id"], "short": inv["id"][:8], "uai": inv["uai"], "name": inv.get("name"),
                     "town": inv.get("town"), "created": when(inv["created_at"], lang),
                     "expires": when(inv["expires_at"], lang), "state": state})
    return await render(request, "district_invitations.html", {
        "invitations": rows, "created": created, "notice": notice, "errors": errors or [],
        "page_url": "/district/invitations", "typed": typed or {}}, status=status)


@login_required(roles=DISTRICT)
async def invitations(request: web.Request) -> web.StreamResponse:
    return await _invitations_page(request)


def qr_svg(text: str) -> Markup:
    """`text` (the school's join link) as a QR code, drawn on the server as inline SVG (no script, nothing for the CSP to block)."""
    svg = segno.make(text, error="m", micro=False).svg_inline(scale=3, dark="#000", light="#fff", border=4,
                                                               svgclass="qr", lineclass="qr-line")
    return Markup(svg.replace("<svg ", '<svg aria-hidden="true" focusable="false" ', 1))


@login_required(roles=DISTRICT)
async def invitation_action(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    settings = request.config_dict[SETTINGS]
    form = await request.post()
    t = t_(request)
    action = str(form.get("action", ""))
    typed = {k: str(form.get(k, ""))[:120] for k in ("uai", "name", "town", "member", "days")} if action == "create" else None
    try:
        if action == "create":
            uai = str(form.get("uai", "")).strip()[:20]
            try:
                days = int(str(form.get("days", "7")))
            except ValueError:
                days = 0
            if not 1 <= days <= 90:
                raise UserError(t("invitations.bad_days"))
            member = "district" if form.get("member") == "district" else "school"
            name = " ".join(str(form.get("name", "")).split())[:120] or None
            town = " ".join(str(form.get("town", "")).split())[:80] or None
            inv = await on_db(request, issue_invitation, node, uai=uai, address=settings.advertised_url,
                              expires_days=days, member=member, name=name, town=town)  # as `preau invite` does
            await audit(request, "invitation-created", f"invitation:{inv.id[:8]}",
                  f"{inv.uai} {member} {name or ''} {town or ''}".strip())
            # The QR code opens the school's own join page, filled in (a phone on the school's network); the
            # long text stays below it for nodes older than that page.
            link = school_join_link(code=inv.code, district=settings.advertised_url, uai=inv.uai, name=name)
            created = {"uai": inv.uai, "name": ", ".join(x for x in (name, town) if x), "text": inv.text, "qr": qr_svg(link), "link": link,
                       "expires": when(inv.expires_at, request_language(request)),
                       "code": inv.code_groups, "address": settings.advertised_url}
            # shown on the page the redirect opens, once: a reload neither shows it again nor makes another
            raise await see_other(request, "/district/invitations", notice=t("invitations.made", uai=inv.uai),
                                  shown={"created": created})
        if action == "revoke":
            inv_id = str(form.get("id", ""))[:64]
            if not await on_db(request, _revoke, node, inv_id):
                raise UserError(t("invitations.not_pending"))
            await audit(request, "invitation-revoked", f"invitation:{inv_id[:8]}")
            raise await see_other(request, "/district/invitations", notice=t("invitations.revoked"))
        raise web.HTTPBadRequest()
    except UserError as exc:
        return await _invitations_page(request, errors=[refused(request, said(request, exc))], status=exc.status,
                                       typed=typed)
    except LocalProtocolError as exc:  # an invitation the protocol refuses to build
        return await _invitations_page(request, errors=[refused(request, said(request, exc))], status=422, typed=typed)


def _revoke(node: Any, inv_id: str) -> bool:
    if not node.fed.revoke_invitation(inv_id):
        return False
    node.fed.log_event("invitation_revoked", f"invitation {inv_id[:8]}", invitation=inv_id[:8])
    return True


# -- campaigns ----------------------------------------------------------------------------------

def parse_campaign_text(raw: bytes, filename: str = "campagne.toml") -> Campaign:
    """An uploaded definition, checked like `preau campaign load`: mistakes name the file's line."""
    return parse_campaign_bytes(raw, filename, encoding="utf-8-sig")


async def _campaigns_page(request: web.Request, *, notice: str | None = None, errors: list[str] | None = None,
                          status: int = 200) -> web.StreamResponse:
    node = node_of(request)
    rows = [{"c": c, "with_thresholds": sum(1 for ex in c.exercises if ex.thresholds)}
            for c in campaigns_of(node).values()]
    return await render(request, "district_campaigns.html", {"campaigns": rows, "notice": notice, "errors": errors or [],
                                                              "page_url": "/district/campaigns"}, status=status)


@login_required(roles=DISTRICT)
async def campaigns(request: web.Request) -> web.StreamResponse:
    return await _campaigns_page(request)


@login_required(roles=DISTRICT)
async def campaign_upload(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    form = await request.post()
    t = t_(request)
    upload = form.get("file")
    data = getattr(upload, "file", None)
    raw = data.read(_MAX_TOML + 1) if data is not None else b""
    name = str(getattr(upload, "filename", "") or "campagne.toml")[:100]
    if not raw:
        return await _campaigns_page(request, errors=[t("campaigns.empty")], status=400)
    if len(raw) > _MAX_TOML:
        return await _campaigns_page(request, errors=[t("campaigns.too_big")], status=400)
    try:
        campaign = parse_campaign_text(raw, name)
        signed = await on_db(request, node.federation.publish_campaign, campaign)
        await audit(request, "campaign-published", f"campaign:{campaign.id}", f"version {signed.release}")
    except UserError as exc:
        return await _campaigns_page(request, errors=[refused(request, said(request, exc), "campaigns.refused")],
                                     status=422)
    raise await see_other(request, "/district/campaigns",
                          notice=t("campaigns.published", name=campaign.name, version=signed.release))


def _campaign_or_404(node: Any, campaign_id: str) -> Campaign:
    campaign = campaigns_of(node).get(campaign_id)
    if campaign is None:
        raise web.HTTPNotFound()
    return campaign


async def _thresholds_page(request: web.Request, campaign: Campaign, *, notice: str | None = None,
                           errors: list[str] | None = None, status: int = 200) -> web.StreamResponse:
    return await render(request, "district_thresholds.html", {"campaign": campaign, "notice": notice,
                                                               "errors": errors or [],
                                                               "page_url": f"/district/campaigns/{campaign.id}"},
                        status=status)


@login_required(roles=DISTRICT)
async def thresholds_page(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    return await _thresholds_page(request, _campaign_or_404(node, request.match_info["campaign_id"]))


@login_required(roles=DISTRICT)
async def thresholds_update(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    campaign = _campaign_or_404(node, request.match_info["campaign_id"])
    form = await request.post()
    t = t_(request)
    data = campaign.to_dict()
    for ex in data["exercises"]:
        t1, t2 = (str(form.get(f"t1-{ex['id']}", "")).strip(), str(form.get(f"t2-{ex['id']}", "")).strip())
        if not t1 and not t2:
            ex.pop("thresholds", None)
            continue
        if not (t1.isdigit() and t2.isdigit()):
            return await _thresholds_page(request, campaign, errors=[t("thresholds.bad", exercise=ex["name"])], status=422)
        ex["thresholds"] = [int(t1), int(t2)]
    try:
        updated = parse_campaign(data)
    except CampaignError as e:
        return await _thresholds_page(request, campaign, errors=[refused(request, said(request, e), "campaigns.refused")],
                                     status=422)
    signed = await on_db(request, node.federation.publish_campaign, updated)
    await audit(request, "thresholds-published", f"campaign:{updated.id}", f"version {signed.release}")
    raise await see_other(request, f"/district/campaigns/{updated.id}",
                          notice=t("thresholds.published", version=signed.release))


# -- statistics --------------------------------------------------------------------------------

@login_required(roles=DISTRICT_READ)
async def stats_index(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    known = campaigns_of(node)
    rows = []
    for cid in sorted(set(node.fed.stats_campaigns()) | set(known)):
        s = live(node, cid)
        rows.append({"id": cid, "name": known[cid].name if cid in known else cid,
                     "contributing": s.schools_contributing if s else 0, "withheld": s.schools_withheld if s else 0})
    return await render(request, "district_stats_index.html", {"campaigns": rows})


@login_required(roles=DISTRICT_READ)
async def stats_page(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    campaign_id = request.match_info["campaign_id"]
    if live(node, campaign_id) is None:
        return await no_data(request, campaign_id, campaigns_of(node))
    s, rows = stats_table(node, campaign_id)
    lang = request_language(request)
    t = t_(request)
    known = campaigns_of(node).get(campaign_id)
    name = known.name if known else campaign_id
    # A row with a part some district hid (at an académie) has no exact shares to draw.
    chart = group_bars_svg([(r["name"], r["counts"] if r["exact"] else None) for r in rows], lang=lang,
                           title=t("chart.title", campaign=name))
    spread = spread_svg([(r["name"], r["spread"].get("seuil2")) for r in rows], lang=lang,
                        title=t("stats.spread_title", campaign=name))
    return await render(request, "district_stats.html", {
        "campaign_id": campaign_id, "name": name, "stats": s, "rows": rows, "chart": chart, "spread": spread,
        "groups": GROUPS, "scored": SCORED_GROUPS, "definition": t("dstats.definition"), "pct": percent,
        "pools": fpools.pools(node.federation, campaign_id), "summary": stats_summary(t, s)})


def stats_json(node: Any, campaign_id: str) -> dict[str, Any]:
    s, rows = stats_table(node, campaign_id)
    return {"campaign": campaign_id, "schools_contributing": s.schools_contributing,
            "schools_withheld": s.schools_withheld, "share_basis": SHARE_BASIS,
            "share_definition": "besoin, fragile, seuil2: share of assessed pupils (absent and pending excluded); "
                                "absent: share of all pupils; percents rounded half up from the counts",
            "exercises": [{"exercise": r["exercise"], **r["counts"], "schools": r["schools"],
                           "rates": r["rates"], "percents": r["percents"],
                           "hidden_by": {c: n for c, n in r["hidden"].items() if n},
                           "spread": {g: (None if v is None else {"min": v.min, "q1": v.q1, "median": v.median,
                                                                  "q3": v.q3, "max": v.max})
                                      for g, v in r["spread"].items()}} for r in rows]}


@login_required(roles=DISTRICT_READ)
async def stats_export_json(request: web.Request) -> web.StreamResponse:
    campaign_id = request.match_info["campaign_id"]
    body = json.dumps(stats_json(node_of(request), campaign_id), indent=2, ensure_ascii=False)
    return web.Response(body=body.encode(), content_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="statistiques-{campaign_id}.json"'})


@login_required(roles=DISTRICT_READ)
async def stats_export_csv(request: web.Request) -> web.StreamResponse:
    campaign_id = request.match_info["campaign_id"]
    node = node_of(request)
    if live(node, campaign_id) is None:
        return await no_data(request, campaign_id, campaigns_of(node))
    _, rows = stats_table(node, campaign_id)
    t = t_(request)
    text = csvio.write_csv(
        # the groups' own names (besoin, seuil2...) as the CLI's table heads them; « pending » was the one English word
        ["exercice", "nom", *(t("cli.out.stats.col.pending") if c == "pending" else c for c in COLUMNS), "écoles",
         *(t(SHARE_HEADERS[g]) for g in SCORED_GROUPS)],
        ([r["exercise"], r["name"], *(r["shown"].get(c, 0) for c in COLUMNS), r["schools"],
          *("" if r["percents"][g] is None else r["percents"][g] for g in SCORED_GROUPS)] for r in rows))
    return web.Response(body=text.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="statistiques-{campaign_id}.csv"'})


@login_required(roles=DISTRICT_READ)
async def api_stats(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True, **stats_json(node_of(request), request.match_info["campaign_id"])})


def add_routes(r: web.UrlDispatcher) -> None:
    district_stats.add_routes(r)
    district_accounts.add_routes(r)
    district_pools.add_routes(r)
    camp = "{campaign_id:[a-z0-9-]{3,64}}"
    r.add_get("/district/schools", schools)
    r.add_get("/district/invitations", invitations)
    r.add_post("/district/invitations", invitation_action)
    r.add_get("/district/campaigns", campaigns)
    r.add_post("/district/campaigns", campaign_upload)
    r.add_get(f"/district/campaigns/{camp}", thresholds_page)
    r.add_post(f"/district/campaigns/{camp}", thresholds_update)
    r.add_get("/district/stats", stats_index)
    r.add_get(f"/district/stats/{camp}", stats_page)
    r.add_get(f"/district/stats/{camp}.json", stats_export_json)
    r.add_get(f"/district/stats/{camp}.csv", stats_export_csv)
    r.add_get(f"/v1/stats/{camp}", api_stats)


__all__ = ["add_routes", "parse_campaign_text", "qr_svg", "stats_json"]
