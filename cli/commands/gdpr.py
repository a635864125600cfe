"""`preau gdpr ...`: the head teacher's GDPR duties (docs/gdpr.md). The paperwork written to files (notice,
register, access page) is French in any case: it is an official document of a French school."""
from __future__ import annotations

import json
from typing import Any

from preau.node import paperwork
from preau.node.actions import gdpr

from ..say import Say, ask_login


def _login(say: Say, settings: Any, user: str | None):
    return ask_login(say, settings, user, role="school", refusal=gdpr.SCHOOL_ONLY)


def _date(say: Say, value) -> str:
    return paperwork.date_fr(value) if say.lang == "fr" else value.strftime("%-d %B %Y")


def retention_text(say: Say, years: int) -> str:
    return say("cli.out.gdpr.retention_" + ("0" if years == 0 else "1" if years == 1 else "n"), years=years)


def status(settings: Any, *, lang: str = "en", user: str | None = None, json: bool = False, **_: Any) -> str:
    say = Say(lang)
    gdpr.check(settings)
    data = gdpr.status(settings, login=_login(say, settings, user))
    if json:
        return _json.dumps(data.as_dict(), indent=2, ensure_ascii=False)
    lines = [say("cli.out.gdpr.retention", text=retention_text(say, data.retention_years)), "",
             say("cli.out.gdpr.planned" if data.planned else "cli.out.gdpr.planned_none")]
    for p in data.planned:
        what = say("cli.out.gdpr.what_campaign" if p.kind == "campaign" else "cli.out.gdpr.what_class", name=p.name)
        flag = say("cli.out.gdpr.soon") if p.soon and not p.due else (say("cli.out.gdpr.due") if p.due else "")
        lines.append(f"  {_date(say, p.erase_from):>22}  " + say("cli.out.gdpr.pupils", what=what, n=p.pupils) + flag)
    for b in data.backups:
        if b["flagged"]:
            lines.append(say("cli.out.gdpr.backup_flagged", path=b["path"], date=b["created_at"][:10]))
    return "\n".join(lines)


_json = json


def retention(settings: Any, *, lang: str = "en", years: int | None = None, contact: str | None = None,
              dpo: str | None = None, user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    gdpr.check(settings)
    kept = gdpr.retention(settings, login=_login(say, settings, user), years=years, contact=contact, dpo=dpo)
    return retention_text(say, kept)


def purge(settings: Any, *, lang: str = "en", campaign: str | None = None, yes: bool = False,
          user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    gdpr.check_purge(settings, campaign=campaign, yes=yes)
    report = gdpr.purge(settings, login=_login(say, settings, user), campaign=campaign, yes=yes)
    if campaign is None and report.empty:
        return say("cli.out.gdpr.nothing_due")
    return say("cli.out.gdpr.erased", campaigns=", ".join(report.campaigns) or say("cli.out.gdpr.no_campaign"),
               results=report.results, pupils=report.pupils)


def pupils(settings: Any, *, lang: str = "en", user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    gdpr.check(settings)
    found = gdpr.pupils(settings, login=_login(say, settings, user))
    lines = [f"{p.id}  {p.class_name:<12} {p.last_name} {p.first_name}" + ("" if p.counted else say("cli.out.gdpr.not_counted"))
             for p in found]
    return "\n".join(lines) or say("cli.out.gdpr.no_pupil")


def access(settings: Any, *, pupil: str, output: str, lang: str = "en", request: str = "", user: str | None = None,
           **_: Any) -> str:
    say = Say(lang)
    gdpr.check_access(settings, output=output)
    html, js = gdpr.access(settings, login=_login(say, settings, user), pupil=pupil, output=output, request=request)
    return f"{html}\n{js}"


def counted(settings: Any, *, pupil: str, lang: str = "en", no: bool = False, request: str = "",
            user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    gdpr.check(settings)
    now = gdpr.counted(settings, login=_login(say, settings, user), pupil=pupil, no=no, request=request)
    return say("cli.out.gdpr.counted" if now else "cli.out.gdpr.not_counted_now")


def rectify(settings: Any, *, pupil: str, request: str, lang: str = "en", user: str | None = None,
            **options: Any) -> str:
    say = Say(lang)
    gdpr.check_rectify(settings, **options)
    done = gdpr.rectify(settings, login=_login(say, settings, user), pupil=pupil, request=request, **options)
    parts = ([say("cli.out.gdpr.identity_fixed")] if done.identity else []) + (
        [say("cli.out.gdpr.result_fixed")] if done.result else [])
    return say("cli.out.gdpr.rectified", what=", ".join(parts).capitalize())


def notice(settings: Any, *, output: str, lang: str = "en", user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    gdpr.check_paper(settings, output=output)
    return str(gdpr.notice(settings, login=_login(say, settings, user), output=output))


def register(settings: Any, *, output: str, lang: str = "en", user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    gdpr.check_paper(settings, output=output)
    return str(gdpr.register(settings, login=_login(say, settings, user), output=output))
