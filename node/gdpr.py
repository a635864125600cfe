"""`preau gdpr ...`: the head teacher's GDPR duties from the command line (docs/gdpr.md).

Each function is `fn(settings, **options)` like the other commands, logs in as
a head teacher (--user, PREAU_USER; password from PREAU_PASSWORD or asked),
and returns the text to print. The duties themselves (retention, purge, access,
rectification) are the store's: `preau.node.records.store.gdpr`.
"""
from __future__ import annotations

import json
import pathlib
from typing import Any

from . import paperwork
from .actions import _output_file, admin_session, opened_node, require_role
from .errors import UserError

_SCHOOL_ONLY = "the GDPR duties are the school's: run this on the school's node"


def _district(node) -> str | None:
    up = node.federation.upstream()
    return None if up is None else (up.get("name") or up.get("uai") or None)


def _write(out: pathlib.Path, text: str) -> pathlib.Path:
    out.write_text(text, encoding="utf-8")
    return out


def status(settings, *, user: str | None = None, json: bool = False, **_: Any) -> str:
    require_role(settings, "school", _SCHOOL_ONLY)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, user)
        plan = store.retention_plan(s)
        data = {
            "retention_years": store.retention_years(s),
            "planned": [{"kind": p.kind, "id": p.id, "name": p.name, "school_year": p.school_year,
                         "erase_from": p.erase_from.isoformat(), "pupils": p.pupils, "due": p.due, "soon": p.soon}
                        for p in plan],
            "purges": store.purges(s),
            "backups": store.backups(s),
        }
        if json:
            return _json.dumps(data, indent=2, ensure_ascii=False)
        lines = [f"Durée de conservation : {paperwork.retention_text(data['retention_years'])}", "",
                 "Effacements prévus :" if plan else "Effacements prévus : aucun (rien n'est gardé)."]
        for p in plan:
            what = f"résultats de « {p.name} »" if p.kind == "campaign" else f"élèves de la classe {p.name} sans résultat"
            flag = "  ← dans moins de 30 jours" if p.soon and not p.due else ("  ← dû" if p.due else "")
            lines.append(f"  {paperwork.date_fr(p.erase_from):>22}  {what} ({p.pupils} élèves){flag}")
        for b in data["backups"]:
            if b["flagged"]:
                lines.append(f"Sauvegarde à détruire (elle contient des données effacées depuis) : {b['path']} ({b['created_at'][:10]})")
        return "\n".join(lines)


_json = json


def retention(settings, *, years: int | None = None, contact: str | None = None, dpo: str | None = None,
              user: str | None = None, **_: Any) -> str:
    require_role(settings, "school", _SCHOOL_ONLY)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, user)
        if years is not None:
            store.set_retention(s, years)
        if contact:
            store.set_gdpr_text(s, "contact", contact)
        if dpo:
            store.set_gdpr_text(s, "dpo", dpo)
        return paperwork.retention_text(store.retention_years(s))


def purge(settings, *, campaign: str | None = None, yes: bool = False, user: str | None = None, **_: Any) -> str:
    require_role(settings, "school", _SCHOOL_ONLY)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, user)
        if campaign is None:
            report = store.apply_retention(s)
            if report.empty:
                return "Rien n'est arrivé à la fin de sa durée de conservation : rien n'a été effacé."
        else:
            if not yes:
                raise UserError(f"erasing {campaign}'s named results before their date cannot be undone: "
                                "add --yes to confirm (what was already released stays with the district)")
            report = store.purge_campaign_now(s, campaign)
        return (f"Effacé : résultats de {', '.join(report.campaigns) or 'aucune campagne'} ({report.results} élèves), "
                f"{report.pupils} fiches d'élèves. Détruisez les sauvegardes faites avant.")


def pupils(settings, *, user: str | None = None, **_: Any) -> str:
    require_role(settings, "school", _SCHOOL_ONLY)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, user)
        excluded = store.not_counted(s)
        lines = []
        for c in store.list_classes(s):
            for p in store.list_pupils(s, c.id):
                lines.append(f"{p.id}  {c.name:<12} {p.last_name} {p.first_name}{'  (non compté)' if p.id in excluded else ''}")
        return "\n".join(lines) or "Aucun élève."


def access(settings, *, pupil: str, output: str, request: str = "", user: str | None = None, **_: Any) -> str:
    require_role(settings, "school", _SCHOOL_ONLY)
    folder = pathlib.Path(output)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: give the folder to write the two files into")
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, user)
        data = store.access_request(s, pupil, request)
        page = paperwork.render("gdpr_access.html",
                                paperwork.access_context(data, store.gdpr_texts(s), store._clock().date()))
    html = _write(folder / f"acces-{pupil}.html", page)
    js = _write(folder / f"acces-{pupil}.json", _json.dumps(data, indent=2, ensure_ascii=False))
    return f"{html}\n{js}"


def counted(settings, *, pupil: str, no: bool = False, request: str = "", user: str | None = None, **_: Any) -> str:
    require_role(settings, "school", _SCHOOL_ONLY)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, user)
        store.set_counted(s, pupil, not no, request)
    return ("L'élève ne sera pas compté au prochain envoi." if no else "L'élève est de nouveau compté dans les envois.")


def rectify(settings, *, pupil: str, request: str, campaign: str | None = None, exercise: str | None = None,
            value: str | None = None, last_name: str | None = None, first_name: str | None = None,
            user: str | None = None, **_: Any) -> str:
    require_role(settings, "school", _SCHOOL_ONLY)
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, user)
        done = []
        if last_name or first_name:
            p = store.get_pupil(s, pupil)
            store.rectify_identity(s, pupil, last_name or p.last_name, first_name or p.first_name, request=request)
            done.append("identité corrigée")
        if campaign or exercise or value:
            if not (campaign and exercise and value):
                raise UserError("to correct a result give --campaign, --exercise and --value together")
            ex = store.get_campaign(s, campaign).exercise(exercise)
            store.rectify_result(s, campaign, pupil, exercise, request=request, **paperwork.parse_value(value, ex.score_kind))
            done.append("résultat corrigé")
        if not done:
            raise UserError("nothing to correct: give --last-name/--first-name, or --campaign, --exercise and --value")
    return ", ".join(done).capitalize() + " ; la correction est inscrite au journal d'audit."


def notice(settings, *, output: str, user: str | None = None, **_: Any) -> str:
    return str(_paper(settings, "gdpr_notice.html", output, user))


def register(settings, *, output: str, user: str | None = None, **_: Any) -> str:
    return str(_paper(settings, "gdpr_register.html", output, user))


def _paper(settings, template: str, output: str, user: str | None) -> pathlib.Path:
    require_role(settings, "school", _SCHOOL_ONLY)
    out = _output_file(output, "document.html")  # a folder, or one that does not exist: said before logging in
    with opened_node(settings) as node:
        store = node.store
        s = admin_session(store, user)
        text = paperwork.render(template, paperwork.paperwork_context(store, s, district=_district(node)))
    return _write(out, text)
