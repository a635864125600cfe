"""`preau release` (a school's preview, then approval) and `preau stats`."""
from __future__ import annotations

import json
from typing import Any

from preau.node.actions import releases, stats as node_stats
from preau.node.records import csvio

from ..say import Say, ask_login
from .pools import pool_line


def _reason(say: Say, preview) -> str:
    """Why the release goes or waits: from disclosure control's reason codes (`node.codes`), English as it gave it;
    an exercise is said by its name in the campaign."""
    if say.lang == "en":
        return preview.decision.reason
    from preau.node.codes import reasons_words

    return reasons_words(preview.decision, dict(preview.names)).to(say.lang)


def release(settings: Any, *, campaign: str, lang: str = "en", approve: bool = False, final: bool = False,
            user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    login = ask_login(say, settings, user, role="school", refusal="action.release_school_only")
    view = releases.release(settings, campaign=campaign, login=login, approve=approve, final=final)
    preview = view.preview
    reason = _reason(say, preview) if preview.decision.reason else ""
    lines = [say("cli.out.release.head", campaign=campaign, reason=reason or say("cli.out.release.ready"))
             + (say("cli.out.release.closing") if preview.closing else "")]
    lines.append(say("cli.out.release.policy"))
    lines.extend("  - " + (st.text if lang == "en" else say("privacy." + st.code, **st.params)) for st in preview.policy)
    for ex, (t1, t2) in preview.thresholds:
        lines.append(say("cli.out.release.thresholds", exercise=ex, t1=t1, t2=t2))
    for a in preview.asked:
        if lang == "en":
            lines.append(say("cli.out.release.asked", setting=a.setting, of=f" of {a.exercise}" if a.exercise else "",
                             asked=a.asked, kept=a.kept))
        else:
            from preau.node.codes import asked_words  # the release page's words for it

            lines.append("  " + asked_words(a, {}, lang))
    doc = preview.document()
    if doc is not None:
        lines.append(say("cli.out.release.document"))
        lines.append(json.dumps(doc, indent=2, ensure_ascii=False))
    for v in view.pools:
        lines.append(say("cli.out.release.pool", line=pool_line(say, v).replace("\n", "\n  ")))
        if v.status == "proposed":
            lines.append(say("cli.out.release.pool_proposed", pool=v.pool_id[:8]))
    if view.signed is not None:
        lines.append(say("cli.out.release.signed", n=view.signed.release))
    elif preview.will_release:
        lines.append(say("cli.out.release.final_again" if final else "cli.out.release.again"))
    return "\n".join(lines)


def stats(settings: Any, *, campaign: str, lang: str = "en", format: str = "table", **_: Any) -> str:
    say = Say(lang)
    found = node_stats.stats(settings, campaign=campaign)
    if isinstance(found, node_stats.SchoolStats):
        rows = [dict(r) for r in found.rows]
        meta = {"release": found.release, "status": found.status, "reason": found.reason, "final": found.final}
        detail = say(f"cli.out.stats.status.{found.status}") if found.status in ("published", "withheld") else found.status
        if found.reason and found.status != "published":
            detail += ": " + found.reason  # as the release document carries it (the district got exactly this)
        if found.final:
            detail += say("cli.out.stats.closing")
        head = say("cli.out.stats.school", campaign=campaign, release=found.release, detail=detail)
    else:
        s = found.statistics
        rows = [{"exercise": r["exercise"], **r["shown"], "schools": r["schools"]} for r in found.rows]
        academie = s.districts_contributing or any(m.scope == "district" for m in s.members())  # members are districts
        if academie:
            head = say("cli.out.stats.academie", campaign=campaign, n=s.schools_contributing,
                       schools=s.schools_represented, withheld=s.schools_withheld)
        else:
            head = say("cli.out.stats.district", campaign=campaign, n=s.schools_contributing, withheld=s.schools_withheld)
        meta = {"schools_contributing": s.schools_contributing, "schools_withheld": s.schools_withheld,
                **({"districts_contributing": s.districts_contributing, "schools_represented": s.schools_represented}
                   if academie else {})}
        if found.pools:  # a completed pool is one contributing row: its schools' sum, never one school's counts
            head += "".join("\n" + _pool_summary(say, v) for v in found.pools)
            meta["pools"] = [{"pool": v.pool_id, "status": v.status, "schools": v.survivors, "pupils": v.pupils}
                             for v in found.pools]
        if format == "json":  # per cell, how many districts hid it (an académie's sums are lower bounds there)
            rows = [{**r, "hidden_by": {c: n for c, n in s.exercise(r["exercise"]).hidden.items() if n}} for r in rows]
    if format == "json":
        return json.dumps({"campaign": campaign, **meta, "exercises": rows}, indent=2, ensure_ascii=False)
    cols = list(rows[0]) if rows else ["exercise"]
    if format == "csv":
        text = csvio.write_csv(cols, ([r[c] for c in cols] for r in rows), delimiter=",", bom=False, lineterminator="\n")
        return text.rstrip("\n")
    names = {c: _column(say, c) for c in cols}
    widths = {c: max([len(names[c]), *(len(str(r[c])) for r in rows)]) for c in cols}
    lines = [head, "  ".join(names[c].ljust(widths[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def _column(say: Say, column: str) -> str:
    """A table's column name: the groups keep their own names (besoin, fragile, seuil2, absent) in both languages."""
    return say("cli.out.stats.col." + column) if column in ("exercise", "pending", "schools") else column


def _pool_summary(say: Say, v) -> str:
    if v.status == "complete":
        return say("cli.out.stats.pool_complete", pool=v.pool_id[:8], schools=v.survivors, pupils=v.pupils)
    status = say("cli.pool.status." + v.status) if say.lang != "en" and _known_status(say, v.status) else v.status
    why = v.why(say.lang)
    return say("cli.out.stats.pool_other", pool=v.pool_id[:8], status=status + (f" ({why})" if why else ""))


def _known_status(say: Say, status: str) -> bool:
    from preau.node import i18n

    return f"cli.pool.status.{status}" in i18n.catalog(say.lang)


__all__ = ["release", "stats", "ask_login"]
