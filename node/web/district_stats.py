"""District statistics an inspector can act on: the per-school table, progress across a cohort, the report.

Every figure comes from the node's live statistics (kept up to date as
releases arrive, `federation.live_stats`), and every percentage follows the
one definition of `preau.crdt.statistics.shares`, stated on each page and in
each export's column names. Schools are shown by name and town (given at
invitation) with their UAI. A campaign without statistics yet gets a "no data
yet" page, never a bare 404.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from preau.crdt.campaign import GROUPS, SCORED_GROUPS, SUBJECTS, Campaign
from preau.crdt.statistics import (
    SHARE_BASIS, CampaignStatistics, MemberRow, cohort_series, cohort_year, member_table, progress,
)
from preau.node.actions.stats import district_stats
from preau.node.errors import NotFound, said
from preau.node.federation.pools import POOL_OWNER
from preau.node.records import csvio

from ..codes import AGGREGATE_REASON_KEYS
from ..i18n import when
from .appkeys import CLOCK
from .charts import group_bars_svg
from .context import node_of, t_
from .render import render
from .security import login_required, request_language

DISTRICT_READ = ("district", "inspector")
_SORTS = ("school", "exercise", *SCORED_GROUPS, "absent", "pupils")
SHARE_HEADERS = {"besoin": "dstats.csv_share_besoin", "fragile": "dstats.csv_share_fragile",
                 "seuil2": "dstats.csv_share_seuil2"}  # export column names that state the definition


def campaigns_of(node: Any) -> dict[str, Campaign]:
    return {c.id: c for c in node.federation.campaigns()}


def live(node: Any, campaign_id: str) -> CampaignStatistics | None:
    """The campaign's merged statistics, kept up to date in memory (`federation.live_stats`)."""
    return node.live_stats.get(campaign_id)


def stats_table(node: Any, campaign_id: str) -> tuple[CampaignStatistics, list[dict[str, Any]]]:
    """The campaign's rows per exercise, from the use case `preau stats` shows too (`actions.stats.district_stats`):
    every percentage from `percents`, the one definition (chart, table, exports)."""
    found = district_stats(node, campaign_id)
    if found is None:
        raise NotFound(said("msg.stats.none_yet", campaign=campaign_id))
    return found.statistics, list(found.rows)


def member_labels(node: Any) -> dict[str, dict[str, str]]:
    """Owner key -> {name, town, uai, label} for every peer (older keys of a school included)."""
    out = {}
    for p in node.fed.peers():
        name = p.get("name") or ""
        town = p.get("town") or ""
        uai = p.get("uai") or ""
        label = ", ".join(x for x in (name, town) if x) or uai or p["node_id"]
        out[p["key"]] = {"name": name, "town": town, "uai": uai, "label": label}
    return out


def label_of(labels: dict[str, dict[str, str]], key: str, t: Any) -> dict[str, str]:
    """Who a member is, in words: a peer by its name, town and UAI; a pool of small schools as such (its
    statistics owner "pool-<id>" means nothing to an inspector); an unknown key by its start."""
    if key in labels:
        return labels[key]
    if key.startswith(POOL_OWNER):
        return {"name": t("dstats.pool_member"), "town": "", "uai": "", "label": t("dstats.pool_member")}
    return {"name": "", "town": "", "uai": "", "label": key[:16]}


def heat(group: str, pct: int | None) -> int:
    """A colour step 0-4 for a share: deeper for more pupils à besoin / fragile, or more above threshold 2."""
    if pct is None:
        return 0
    steps = (50, 65, 80, 90) if group == "seuil2" else (5, 10, 20, 30)
    return sum(pct >= s for s in steps) if group != "seuil2" else 1 + sum(pct >= s for s in steps[1:])


def summary(t: Any, stats: CampaignStatistics) -> str:
    """Who the figures count, in one sentence: a pool of small schools counts as one member, and is said as one
    ("5 écoles et 1 regroupement de 3 petites écoles"), not as one more school."""
    if any(m.scope == "district" for m in stats.members()):  # an académie whose districts all sent no figures
        return t("stats.summary_districts", contributing=stats.schools_contributing,
                 schools=stats.schools_represented, withheld=stats.schools_withheld)
    pools = [m for m in stats.members() if m.member.startswith(POOL_OWNER) and m.status == "published"]
    if not pools:
        return t("stats.summary", contributing=stats.schools_contributing, withheld=stats.schools_withheld)
    return t("stats.summary_pools", schools=stats.schools_contributing - len(pools), pools=len(pools),
             pooled=sum(m.schools for m in pools), withheld=stats.schools_withheld)


def definition(request: web.Request) -> str:
    return t_(request)("dstats.definition")


async def no_data(request: web.Request, campaign_id: str, known: dict[str, Campaign]) -> web.Response:
    name = known[campaign_id].name if campaign_id in known else campaign_id
    return await render(request, "district_stats_empty.html", {"campaign_id": campaign_id, "name": name,
                                                               "known": campaign_id in known})


def table_rows(node: Any, request: web.Request, stats: CampaignStatistics, campaign: Campaign | None, *,
               subject: str | None = None, sort: str = "school", descending: bool = False) -> list[dict[str, Any]]:
    """The per-school table in long form: one row per published school x exercise, one per withheld school."""
    t = t_(request)
    labels = member_labels(node)
    table = member_table(stats, campaign, subject=subject if campaign else None)
    names = {ex.id: ex.name for ex in campaign.exercises} if campaign else {}
    subjects = {ex.id: ex.subject for ex in campaign.exercises} if campaign else {}
    order = {ex: i for i, ex in enumerate(table.exercises)}
    rows, others = [], []
    for m in table.rows:
        who = label_of(labels, m.member, t)
        if m.member.startswith(POOL_OWNER) and m.schools > 1:
            who = {**who, "name": t("dstats.pool_member_count", schools=m.schools)}
        base = {"member": m.member, "school": who["name"] or who["label"], "town": who["town"], "uai": who["uai"],
                "scope": m.scope}
        if m.status != "published":
            others.append({**base, "status": m.status if m.scope == "school" else "withheld",
                           "status_label": _status_label(t, m), "cells": {}, "exercise": "", "exercise_name": "",
                           "pupils": None, "order": len(order)})
            continue
        for ex, cell in m.exercises.items():
            if ex not in order:
                continue
            total = cell.total if isinstance(cell.total, int) else None
            rows.append({**base, "status": "published", "exercise": ex, "exercise_name": names.get(ex, ex),
                         "subject": subjects.get(ex, ""), "order": order[ex],
                         "cells": {g: {"pct": cell.percents[g], "heat": heat(g, cell.percents[g]),
                                       "count": cell.counts[g]} for g in GROUPS},
                         "assessed": sum(cell.counts[g] for g in SCORED_GROUPS)
                         if all(isinstance(cell.counts[g], int) for g in SCORED_GROUPS) else None,
                         "pupils": total, "counts": cell.counts})
    rows.sort(key=lambda r: (r["school"].lower(), r["member"], r["order"]))
    if sort == "exercise":
        rows.sort(key=lambda r: r["order"], reverse=descending)
    elif sort == "school" and descending:
        rows.reverse()
    elif sort in GROUPS or sort == "pupils":
        def value(r: dict[str, Any]) -> Any:
            return r["pupils"] if sort == "pupils" else r["cells"][sort]["pct"]
        known = [r for r in rows if value(r) is not None]
        unknown = [r for r in rows if value(r) is None]
        known.sort(key=value, reverse=descending)
        rows = known + unknown
    others.sort(key=lambda r: (r["school"].lower(), r["member"]))
    return rows + others


def _status_label(t: Any, m: MemberRow) -> str:
    if m.scope not in ("school", "district"):
        return t("dstats.status_pool", schools=m.schools)
    if m.scope == "school":
        return t("dstats.status_withheld")
    return t(AGGREGATE_REASON_KEYS.get(m.reason, "dstats.status_withheld_district"))  # why a district sent none


def _query(request: web.Request) -> tuple[str | None, str, bool]:
    subject = request.query.get("domaine") or None
    if subject not in SUBJECTS:
        subject = None
    sort = request.query.get("tri", "school")
    if sort not in _SORTS:
        sort = "school"
    descending = request.query.get("ordre", "desc" if sort in SCORED_GROUPS else "asc") == "desc"
    return subject, sort, descending


def _url(campaign_id: str, subject: str | None, sort: str, descending: bool, suffix: str = "") -> str:
    q = [f"tri={sort}", f"ordre={'desc' if descending else 'asc'}"]
    if subject:
        q.insert(0, f"domaine={subject}")
    return f"/district/stats/{campaign_id}/ecoles{suffix}?" + "&".join(q)


@login_required(roles=DISTRICT_READ)
async def school_table(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    t = t_(request)
    campaign_id = request.match_info["campaign_id"]
    known = campaigns_of(node)
    stats = live(node, campaign_id)
    if stats is None:
        return await no_data(request, campaign_id, known)
    campaign = known.get(campaign_id)
    subject, sort, descending = _query(request)
    rows = table_rows(node, request, stats, campaign, subject=subject, sort=sort, descending=descending)
    # At an académie the members are districts: the same table, said as a per-district one.
    districts = stats.districts_contributing > 0
    labels = {"school": t("dstats.col_district") if districts else t("dstats.col_school"),
              "exercise": t("chart.exercise"), "besoin": t("group.besoin"),
              "fragile": t("group.fragile"), "seuil2": t("group.seuil2"), "pupils": t("dstats.col_pupils")}
    columns = []
    for key in ("school", "exercise", *SCORED_GROUPS, "pupils"):
        current = key == sort
        flip = (not descending) if current else key in SCORED_GROUPS
        columns.append({"key": key, "label": labels[key], "num": key not in ("school", "exercise"),
                        "sorted": ("desc" if descending else "asc") if current else None,
                        "sort_url": _url(campaign_id, subject, key, flip)})
    subjects = [{"label": t("dstats.all_subjects"), "url": _url(campaign_id, None, sort, descending), "current": subject is None}]
    subjects += [{"label": s, "url": _url(campaign_id, s, sort, descending), "current": subject == s} for s in SUBJECTS]
    published = sum(1 for m in stats.members() if m.status == "published" and not m.member.startswith(POOL_OWNER))
    pooled = sum(1 for m in stats.members() if m.status == "published" and m.member.startswith(POOL_OWNER))
    # A member that hid a small cell ("≤10", "x") has no share on that row: the "—" is explained under the table.
    masked = any(isinstance(r["cells"][g]["count"], str) for r in rows if r["status"] == "published" for g in GROUPS)
    return await render(request, "district_school_table.html", {"masked": masked,
        "campaign_id": campaign_id, "name": campaign.name if campaign else campaign_id, "definition": definition(request),
        "subjects": subjects, "columns": columns, "rows": rows, "groups": SCORED_GROUPS, "sorted_by": f"{sort}:{'desc' if descending else 'asc'}",
        # sorted by a click (or a key): the cursor stays on that column's head, where Enter sorts the other way
        "focus_sorted": "tri" in request.query,
        "count": published, "pooled": pooled, "csv_url": _url(campaign_id, subject, sort, descending, ".csv"),
        "title": t("dstats.table_title_districts" if districts else "dstats.table_title",
                   campaign=campaign.name if campaign else campaign_id)})


csv_cell = csvio.neutralise  # one rule for every export: node/records/csvio.py


@login_required(roles=DISTRICT_READ)
async def school_table_csv(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    t = t_(request)
    campaign_id = request.match_info["campaign_id"]
    known = campaigns_of(node)
    stats = live(node, campaign_id)
    if stats is None:
        return await no_data(request, campaign_id, known)
    subject, sort, descending = _query(request)
    rows = table_rows(node, request, stats, known.get(campaign_id), subject=subject, sort=sort, descending=descending)
    header = [t("dstats.csv_uai"), t("dstats.csv_school"), t("dstats.csv_town"), t("dstats.csv_exercise_id"),
              t("chart.exercise"), t("dstats.csv_subject"), *(t(SHARE_HEADERS[g]) for g in SCORED_GROUPS),
              t("dstats.csv_absent"), t("dstats.csv_assessed"), t("dstats.csv_pupils"), t("dstats.csv_status")]
    lines = []
    for r in rows:
        if r["status"] != "published":
            lines.append([r["uai"], r["school"], r["town"], "", "", "", "", "", "", "", "", "", r["status_label"]])
            continue
        lines.append([
            r["uai"], r["school"], r["town"], r["exercise"], r["exercise_name"], r.get("subject", ""),
            *(("" if r["cells"][g]["pct"] is None else r["cells"][g]["pct"]) for g in SCORED_GROUPS),
            r["counts"]["absent"], "" if r["assessed"] is None else r["assessed"],
            "" if r["pupils"] is None else r["pupils"], t("dstats.status_published")])
    body = csvio.write_csv(header, lines).encode("utf-8")
    return web.Response(body=body, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="ecoles-{campaign_id}.csv"'})


# -- progress ---------------------------------------------------------------------------------------


@login_required(roles=DISTRICT_READ)
async def progress_page(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    t = t_(request)
    lang = request_language(request)
    known = campaigns_of(node)
    groups = [g for g in cohort_series(list(known.values())) if len(g) >= 1]
    try:
        wanted = int(request.query.get("cohort", ""))
    except ValueError:
        wanted = None
    with_data = [g for g in groups if len(g) >= 2] or groups
    chosen = next((g for g in groups if cohort_year(g[0]) == wanted), with_data[0] if with_data else [])
    cohort = cohort_year(chosen[0]) if chosen else None
    series = [{"year": cohort_year(g[0]), "url": f"/district/progress?cohort={cohort_year(g[0])}",
               "current": g is chosen, "label": t("dstats.cohort", year=cohort_year(g[0]),
                                                  campaigns=" → ".join(c.name for c in g))} for g in groups]
    context: dict[str, Any] = {"series": series, "campaigns": [], "cohort": cohort, "definition": definition(request),
                               "members": [], "rows": [], "chart": "", "member_label": ""}
    if not chosen:
        return await render(request, "district_progress.html", context)
    pairs = [(c, live(node, c.id) or CampaignStatistics(c.id)) for c in chosen]
    labels = member_labels(node)
    aliases = {}
    for p in node.fed.peers():
        if p.get("replaced_by"):
            current = p["replaced_by"]
            seen = {p["key"]}
            while labels.get(current) is not None and current not in seen:
                seen.add(current)
                nxt = next((q.get("replaced_by") for q in node.fed.peers() if q["key"] == current), None)
                if not nxt:
                    break
                current = nxt
            aliases[p["key"]] = current
    member = request.query.get("member") or None
    keys = sorted({aliases.get(m.member, m.member) for _, s in pairs for m in s.members()},
                  key=lambda k: label_of(labels, k, t)["label"].lower())
    if member not in keys:
        member = None
    out = progress(pairs, member=member, aliases=aliases)
    members = [{"key": "", "label": t("dstats.progress_district"), "current": member is None}]
    members += [{"key": k, "label": label_of(labels, k, t)["label"], "current": k == member} for k in keys]
    rows = []
    bars = []
    for r in out.rows:
        label = r.label if r.kind == "exercise" else t("dstats.subject_row", subject=r.label)
        if r.kind == "exercise":
            label = next((ex.name for c in reversed(chosen) for ex in c.exercises if ex.id == r.key), r.label)
        rows.append({"key": r.key, "kind": r.kind, "label": label,
                     "points": [None if p is None else p.percents for p in r.points],
                     "change": r.change_points})
        for c, p in zip(chosen, r.points):
            if p is not None and p.counts is not None:
                bars.append((f"{label} — {c.name}", p.counts))
    chart = group_bars_svg(bars, lang=lang, title=t("dstats.progress_chart")) if bars else ""
    context.update({"campaigns": [{"id": c.id, "name": c.name} for c in chosen], "members": members, "rows": rows,
                    "chart": chart, "member_label": members[0]["label"] if member is None else label_of(labels, member, t)["label"]})
    return await render(request, "district_progress.html", context)


# -- the printable report -------------------------------------------------------------------------


@login_required(roles=DISTRICT_READ)
async def report(request: web.Request) -> web.StreamResponse:
    node = node_of(request)
    t = t_(request)
    lang = request_language(request)
    campaign_id = request.match_info["campaign_id"]
    known = campaigns_of(node)
    stats = live(node, campaign_id)
    if stats is None:
        return await no_data(request, campaign_id, known)
    _, rows = stats_table(node, campaign_id)
    campaign = known.get(campaign_id)
    name = campaign.name if campaign else campaign_id
    chart = group_bars_svg([(r["name"], r["counts"] if r["exact"] else None) for r in rows], lang=lang,
                           title=t("chart.title", campaign=name))
    said = summary(t, stats)
    return await render(request, "district_report.html", {
        "campaign_id": campaign_id, "name": name, "rows": rows, "chart": chart, "groups": GROUPS, "scored": SCORED_GROUPS,
        "definition": definition(request), "summary": said, "district": node.federation.display_name or node.node_id,
        "printed": when(request.config_dict[CLOCK](), lang),
        "table_rows": table_rows(node, request, stats, campaign)})


@login_required(roles=DISTRICT_READ)
async def api_members(request: web.Request) -> web.StreamResponse:
    """The per-school table (per-district at an académie) as JSON: each member's cells as it published them
    ("≤N" and "x" where it hid a small cell), its percentages by the one definition, and who it is."""
    node = node_of(request)
    campaign_id = request.match_info["campaign_id"]
    stats = live(node, campaign_id)
    if stats is None:
        raise NotFound(said("msg.stats.none_yet_member", campaign=campaign_id))
    labels, t = member_labels(node), t_(request)
    members = []
    for m in stats.members():
        who = label_of(labels, m.member, t)
        members.append({"member": m.member, "uai": who["uai"], "name": who["name"], "town": who["town"],
                        "scope": m.scope, "status": m.status, "release": m.release, "schools": m.schools,
                        "cohort": m.cohort,
                        "exercises": {ex: {**dict(c.counts), "total": c.total, "percents": dict(c.percents)}
                                      for ex, c in m.exercises.items()}})
    return web.json_response({"ok": True, "campaign": campaign_id, "share_basis": SHARE_BASIS, "members": members})


def add_routes(r: web.UrlDispatcher) -> None:
    camp = "{campaign_id:[a-z0-9-]{3,64}}"
    r.add_get(f"/v1/stats/{camp}/members", api_members)
    r.add_get(f"/district/stats/{camp}/ecoles", school_table)
    r.add_get(f"/district/stats/{camp}/ecoles.csv", school_table_csv)
    r.add_get(f"/district/stats/{camp}/rapport", report)
    r.add_get("/district/progress", progress_page)
