"""The GDPR paperwork, generated from the node's own settings so it never drifts from what Préau does.

`notice` (information des familles), `register` (fiche du registre des activités
de traitement) and `access_page` (a parent's access request) render the French
templates in node/web/templates/gdpr_*.html from a context built here, from the
store and the federation only. The same functions serve the web pages and the
`preau gdpr` commands; a file written by the CLI carries its CSS inline.
"""
from __future__ import annotations

from preau.node.errors import said

import datetime as _dt
import functools
import hashlib
import json
import pathlib
from importlib.metadata import version as package_version
from typing import Any

import jinja2

from preau.node.records.errors import InvalidInput
from preau.node.records.store.gdpr import erase_from

TEMPLATES = pathlib.Path(__file__).resolve().parent / "web" / "templates"
CSS = pathlib.Path(__file__).resolve().parent / "web" / "static" / "gdpr.css"
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")
_GROUPS = {"besoin": "à besoin", "fragile": "fragile", "seuil2": "au-dessus du seuil 2", "absent": "absent"}
_STATUS = {"absent": "absent", "not_assessed": "non évalué"}


def date_fr(value: _dt.date | str) -> str:
    """1 September 2028 -> "1er septembre 2028"."""
    if isinstance(value, str):
        value = _dt.date.fromisoformat(value[:10])
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {_MONTHS[value.month - 1]} {value.year}"


def retention_text(years: int) -> str:
    if years == 0:
        span = "jusqu'à la fin de l'année scolaire de l'évaluation (31 août)"
    elif years == 1:
        span = "jusqu'à la fin de l'année scolaire qui suit celle de l'évaluation (31 août)"
    else:
        span = f"jusqu'à la fin de la {years}e année scolaire après celle de l'évaluation (31 août)"
    return (f"Les résultats nominatifs sont gardés {span}, puis effacés automatiquement ; un élève qui n'a plus "
            "aucun résultat est effacé à la même date que sa classe.")


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(template: str, context: dict[str, Any], *, stylesheet: str | None = None) -> str:
    """One of the gdpr_*.html documents; CSS inline unless a stylesheet URL is given (the web's CSP forbids inline)."""
    full = dict(context)
    full["stylesheet"] = stylesheet
    full["inline_css"] = None if stylesheet else CSS.read_text(encoding="utf-8")
    return _env().get_template(template).render(**full)


def paperwork_context(store, actor, *, district: str | None = None, today: _dt.date | None = None) -> dict[str, Any]:
    """What the notice and the register entry say, from the node's settings only."""
    years = store.retention_years(actor)
    texts = store.gdpr_texts(actor)
    campaigns = []
    for c in store.list_campaigns(actor):
        if store.is_purged(actor, c.id):
            continue
        campaigns.append({"id": c.id, "name": c.name, "level": c.level, "school_year": c.school_year,
                          "erase_from": date_fr(erase_from(c.school_year, years)),
                          "min_cohort": c.policy.min_cohort, "min_batch": c.policy.min_batch,
                          "small_cell_max": c.policy.small_cell_max})
    facts = {"school": store.school(), "contact": texts["contact"], "dpo": texts["dpo"], "retention_years": years,
             "retention_text": retention_text(years), "campaigns": campaigns, "district": district,
             "node_version": package_version("preau")}
    version = hashlib.sha256(json.dumps(facts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:8]
    today = today or store._clock().date()
    return {**facts, "version": version, "generated_on": date_fr(today)}


def access_context(data: dict[str, Any], texts: dict[str, str], today: _dt.date) -> dict[str, Any]:
    """The French page of an access request, from `Store.access_request`'s data."""
    campaigns = []
    for c in data["campaigns"]:
        rows = []
        for r in c["results"]:
            if r["status"] != "done":
                shown, score = _STATUS[r["status"]], ""
            elif r["answers"] is not None:
                shown, score = " ".join({"1": "juste", "0": "faux", "-": "sans réponse"}[a] for a in r["answers"]), r["score"]
            else:
                shown, score = f"{r['wpm']} mots lus en une minute", r["score"]
            rows.append({"exercise": r["exercise"], "answers": shown, "score": score,
                         "group": _GROUPS.get(r["group"] or "", "pas encore de seuils"), "entered": date_fr(r["entered_at"])})
        campaigns.append({"name": c["name"], "school_year": c["school_year"], "erase_from": date_fr(c["erase_from"]),
                          "results": rows,
                          "releases": {"exercises": [_exercise_name(c, e) for e in c["releases"]["exercises_counted"]],
                                       "last_release": c["releases"]["last_release"]}})
    return {"school": data["school"], "generated_on": date_fr(today), "pupil": data["pupil"], "class": data["class"],
            "counted": data["counted_in_releases"], "campaigns": campaigns,
            "retention_text": retention_text(data["retention_years"]), "contact": texts["contact"], "dpo": texts["dpo"]}


def _exercise_name(campaign: dict[str, Any], exercise_id: str) -> str:
    for r in campaign["results"]:
        if r["exercise_id"] == exercise_id:
            return r["exercise"]
    return exercise_id


def parse_value(text: str, score_kind: str) -> dict[str, Any]:
    """A corrected result as a person types it: "absent", "non évalué", a run of 1/0/- answers, or words per minute."""
    value = "".join(str(text).split()).lower()
    if value in ("absent", "abs"):
        return {"status": "absent"}
    if value in ("nonévalué", "nonevalue", "ne"):
        return {"status": "not_assessed"}
    if score_kind == "wpm":
        if value.isdigit():
            return {"wpm": int(value)}
        raise InvalidInput(said("msg.gdpr.rectify_wpm", text=str(text)))
    if value and set(value) <= {"0", "1", "-"}:
        return {"answers": [None if c == "-" else int(c) for c in value]}
    raise InvalidInput(said("msg.gdpr.rectify_items", text=str(text)))
