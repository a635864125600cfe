"""The head teacher's GDPR duties (docs/gdpr.md): `preau gdpr ...`.

Each use case logs in as a head teacher (`Login`, asked for by the caller) and
returns data; the duties themselves (retention, purge, access, rectification)
are the store's (`preau.node.records.store.gdpr`). The paperwork (the parents'
notice, the register entry, the access page) is written in French: it is an
official document of a French school.
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Any

from preau.node import paperwork
from preau.node.records.store.gdpr import PlannedPurge, PurgeReport

from .common import Login, admin_session, checked_output, opened_node, refuse, require_role

SCHOOL_ONLY = "action.gdpr_school_only"


def check(settings: Any, **_: Any) -> None:
    require_role(settings, "school", SCHOOL_ONLY)


def _district(node) -> str | None:
    up = node.federation.upstream()
    return None if up is None else (up.get("name") or up.get("uai") or None)


@dataclass(frozen=True)
class GdprStatus:
    retention_years: int
    planned: tuple[PlannedPurge, ...]
    purges: tuple[dict[str, Any], ...]  # done: at, campaign_id, results, pupils, early
    backups: tuple[dict[str, Any], ...]  # path, created_at, flagged (holds data erased since)

    def as_dict(self) -> dict[str, Any]:
        return {"retention_years": self.retention_years,
                "planned": [{"kind": p.kind, "id": p.id, "name": p.name, "school_year": p.school_year,
                             "erase_from": p.erase_from.isoformat(), "pupils": p.pupils, "due": p.due, "soon": p.soon}
                            for p in self.planned],
                "purges": list(self.purges), "backups": list(self.backups)}


def status(settings: Any, *, login: Login, **_: Any) -> GdprStatus:
    check(settings)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, login)
        return GdprStatus(store.retention_years(s), tuple(store.retention_plan(s)), tuple(store.purges(s)),
                          tuple(store.backups(s)))


def retention(settings: Any, *, login: Login, years: int | None = None, contact: str | None = None,
              dpo: str | None = None, **_: Any) -> int:
    """Set what is given; returns the retention period in force (school years after the campaign's)."""
    check(settings)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, login)
        if years is not None:
            store.set_retention(s, years)
        if contact:
            store.set_gdpr_text(s, "contact", contact)
        if dpo:
            store.set_gdpr_text(s, "dpo", dpo)
        return store.retention_years(s)


def check_purge(settings: Any, *, campaign: str | None = None, yes: bool = False, **_: Any) -> None:
    check(settings)
    if campaign is not None and not yes:
        raise refuse("action.gdpr_purge_confirm", campaign=campaign)


def purge(settings: Any, *, login: Login, campaign: str | None = None, yes: bool = False, **_: Any) -> PurgeReport:
    """Erase what is past retention now, or (campaign, yes) one campaign's named results before their date."""
    check(settings)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, login)
        if campaign is None:
            return store.apply_retention(s)
        check_purge(settings, campaign=campaign, yes=yes)
        return store.purge_campaign_now(s, campaign)


@dataclass(frozen=True, slots=True)
class PupilEntry:
    id: str
    class_name: str
    last_name: str
    first_name: str
    counted: bool  # False: the family objected, the pupil is left out of releases


def pupils(settings: Any, *, login: Login, **_: Any) -> tuple[PupilEntry, ...]:
    check(settings)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, login)
        excluded = store.not_counted(s)
        return tuple(PupilEntry(p.id, c.name, p.last_name, p.first_name, p.id not in excluded)
                     for c in store.list_classes(s) for p in store.list_pupils(s, c.id))


def check_access(settings: Any, *, output: str, **_: Any) -> pathlib.Path:
    check(settings)
    folder = pathlib.Path(output)
    if not folder.is_dir():
        raise refuse("action.gdpr_not_a_folder", folder=folder)
    return folder


def access(settings: Any, *, login: Login, pupil: str, output: str, request: str = "",
           **_: Any) -> tuple[pathlib.Path, pathlib.Path]:
    """A family's access request: a printable French page and a JSON file in the folder `output`."""
    folder = check_access(settings, output=output)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, login)
        data = store.access_request(s, pupil, request)
        page = paperwork.render("gdpr_access.html",
                                paperwork.access_context(data, store.gdpr_texts(s), store._clock().date()))
    html = _write(folder / f"acces-{pupil}.html", page)
    js = _write(folder / f"acces-{pupil}.json", json.dumps(data, indent=2, ensure_ascii=False))
    return html, js


def counted(settings: Any, *, login: Login, pupil: str, no: bool = False, request: str = "", **_: Any) -> bool:
    """Count the pupil in releases again, or (no) leave them out; returns whether they are counted now."""
    check(settings)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, login)
        store.set_counted(s, pupil, not no, request)
    return not no


def check_rectify(settings: Any, *, campaign: str | None = None, exercise: str | None = None,
                  value: str | None = None, last_name: str | None = None, first_name: str | None = None,
                  **_: Any) -> None:
    check(settings)
    if (campaign or exercise or value) and not (campaign and exercise and value):
        raise refuse("action.gdpr_rectify_result")
    if not (last_name or first_name or campaign):
        raise refuse("action.gdpr_rectify_nothing")


@dataclass(frozen=True, slots=True)
class Rectified:
    identity: bool
    result: bool


def rectify(settings: Any, *, login: Login, pupil: str, request: str, campaign: str | None = None,
            exercise: str | None = None, value: str | None = None, last_name: str | None = None,
            first_name: str | None = None, **_: Any) -> Rectified:
    check_rectify(settings, campaign=campaign, exercise=exercise, value=value, last_name=last_name,
                  first_name=first_name)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, login)
        if last_name or first_name:
            p = store.get_pupil(s, pupil)
            store.rectify_identity(s, pupil, last_name or p.last_name, first_name or p.first_name, request=request)
        if campaign:
            ex = store.get_campaign(s, campaign).exercise(exercise)
            store.rectify_result(s, campaign, pupil, exercise, request=request,
                                 **paperwork.parse_value(value, ex.score_kind))
    return Rectified(bool(last_name or first_name), bool(campaign))


def check_paper(settings: Any, *, output: str, **_: Any) -> pathlib.Path:
    check(settings)
    return checked_output(output, "document.html")  # a folder, or one that does not exist: said before logging in


def notice(settings: Any, *, login: Login, output: str, **_: Any) -> pathlib.Path:
    return _paper(settings, "gdpr_notice.html", output, login)


def register(settings: Any, *, login: Login, output: str, **_: Any) -> pathlib.Path:
    return _paper(settings, "gdpr_register.html", output, login)


def _paper(settings: Any, template: str, output: str, login: Login) -> pathlib.Path:
    out = check_paper(settings, output=output)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, login)
        text = paperwork.render(template, paperwork.paperwork_context(store, s, district=_district(node)))
    return _write(out, text)


def _write(out: pathlib.Path, text: str) -> pathlib.Path:
    out.write_text(text, encoding="utf-8")
    return out
