"""The school as data controller: retention and its purge, access requests, rectification, "not counted".

Retention is counted in school years: a campaign of school year "2026-2027" with
`retention_years` 1 is kept until 31 August 2028 and erased from 1 September
2028 (docs/gdpr.md says why). The purge deletes rows only, so the node runs it
with nobody logged in: a due campaign's results, its node-key score histogram
and its release history, then pupils with no result left whose class's school
year is due. `secure_delete` zeroes the bytes and the WAL is truncated after.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, Sequence

from preau.crdt.disclosure import ReleaseHistory

from preau.node.records import vault
from preau.node.errors import said, words
from preau.node.records.errors import Conflict, InvalidInput, NotFound

DEFAULT_RETENTION_YEARS = 1
MAX_RETENTION_YEARS = 5
NOT_COUNTED_BLOB = "gdpr/not-counted"
HISTORY_BLOB = "release-history/{campaign}"  # the same name as node/release.py's
DEFAULT_CONTACT = "la directrice ou le directeur de l'école"
DEFAULT_DPO = "le délégué à la protection des données (DPD) de l'académie"
TEXT_SETTINGS = {"contact": DEFAULT_CONTACT, "dpo": DEFAULT_DPO}
WARN_DAYS = 30


def school_year_end(school_year: str) -> int:
    """The calendar year a school year ends in: "2026-2027" -> 2027."""
    return int(str(school_year).split("-")[1])


def erase_from(school_year: str, retention_years: int) -> _dt.date:
    """The first day named data of this school year may no longer be kept."""
    return _dt.date(school_year_end(school_year) + int(retention_years), 9, 1)


@dataclass(frozen=True)
class PlannedPurge:
    """One erasure the node will do (or did): a campaign's results, or a class's pupils with no result left."""

    kind: str  # "campaign" or "class"
    id: str
    name: str
    school_year: str
    erase_from: _dt.date
    pupils: int  # pupils whose results (campaign) or records (class) it erases
    due: bool
    soon: bool


@dataclass(frozen=True)
class PurgeReport:
    campaigns: tuple[str, ...]
    results: int  # (pupil, campaign) result records erased
    pupils: int  # pupil records erased

    @property
    def empty(self) -> bool:
        return not (self.campaigns or self.results or self.pupils)


class GdprMixin:
    """Store methods for the GDPR duties; see docs/gdpr.md."""

    # -- settings --------------------------------------------------------------

    def _gdpr_get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM gdpr_settings WHERE key = ?", [key]).fetchone()
        return None if row is None else row[0]

    def retention_years(self, actor: Any) -> int:
        self._any(actor)
        value = self._gdpr_get("retention_years")
        return DEFAULT_RETENTION_YEARS if value is None else int(value)

    def gdpr_texts(self, actor: Any) -> dict[str, str]:
        """The contacts printed on the notice and register entry (school facts, not pupil data)."""
        self._any(actor)
        return {k: self._gdpr_get(k) or default for k, default in TEXT_SETTINGS.items()}

    def set_retention(self, actor: Any, years: int) -> None:
        s = self._admin(actor)
        if isinstance(years, bool) or not isinstance(years, int):
            try:
                years = int(str(years).strip())
            except ValueError:
                raise InvalidInput(said("msg.gdpr.retention_whole", max=MAX_RETENTION_YEARS, years=str(years))) from None
        if not 0 <= years <= MAX_RETENTION_YEARS:
            raise InvalidInput(said("msg.gdpr.retention_range", max=MAX_RETENTION_YEARS, years=years))
        with self._lock, self.db.atomic():
            old = self.retention_years(s)
            self.db.execute("INSERT INTO gdpr_settings (key, value) VALUES ('retention_years', ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", [str(years)])
            self._audit(s.actor, "retention-changed", "school", f"{old} -> {years} school years")

    def set_gdpr_text(self, actor: Any, key: str, value: str) -> None:
        s = self._admin(actor)
        if key not in TEXT_SETTINGS:
            raise InvalidInput(said("msg.gdpr.bad_text", texts=', '.join(TEXT_SETTINGS), key=str(key)))
        value = " ".join(str(value).split())
        if not 0 < len(value) <= 300:
            raise InvalidInput(words(f"the {key} text must be 1 to 300 characters (an address, an e-mail, a phone "
                                     "number)", "gdpr.text_length", key=key))
        with self._lock, self.db.atomic():
            self.db.execute("INSERT INTO gdpr_settings (key, value) VALUES (?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value])
            self._audit(s.actor, "gdpr-text-changed", "school", key)

    # -- retention -------------------------------------------------------------

    def _today(self) -> _dt.date:
        return self._clock().astimezone(_dt.timezone.utc).date()

    def _purged_campaigns(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT DISTINCT campaign_id FROM gdpr_purges WHERE campaign_id IS NOT NULL")}

    def is_purged(self, actor: Any, campaign_id: str) -> bool:
        """Whether this campaign's named results were erased (at retention's end, or earlier by the head teacher)."""
        self._any(actor)
        return campaign_id in self._purged_campaigns()

    def retention_plan(self, actor: Any, today: _dt.date | None = None) -> list[PlannedPurge]:
        """What the purge will erase and from when, soonest first: shown to the head teacher beforehand."""
        self._admin_or_node(actor)
        today = today or self._today()
        years = self.retention_years(actor)
        out = []
        for cid, definition in self.db.execute("SELECT id, definition FROM campaigns").fetchall():
            n = self.db.execute("SELECT count(*) FROM results WHERE campaign_id = ?", [cid]).fetchone()[0]
            if not n:
                continue
            data = json.loads(definition)
            when = erase_from(data["school_year"], years)
            out.append(PlannedPurge("campaign", cid, data["name"], data["school_year"], when, n, when <= today,
                                    when <= today + _dt.timedelta(days=WARN_DAYS)))
        for cid, name, year in self.db.execute("SELECT id, name, school_year FROM classes").fetchall():
            n = self.db.execute("SELECT count(*) FROM pupils WHERE class_id = ?", [cid]).fetchone()[0]
            if not n:
                continue
            when = erase_from(year, years)
            out.append(PlannedPurge("class", cid, name, year, when, n, when <= today,
                                    when <= today + _dt.timedelta(days=WARN_DAYS)))
        out.sort(key=lambda p: (p.erase_from, p.kind, p.name))
        return out

    def apply_retention(self, actor: Any, today: _dt.date | None = None) -> PurgeReport:
        """Erase every named result and pupil past retention. The node runs this unattended."""
        a = self._admin_or_node(actor)
        today = today or self._today()
        due = [p.id for p in self.retention_plan(a, today) if p.kind == "campaign" and p.due]
        return self._purge(a, due, today, early=False)

    def purge_campaign_now(self, actor: Any, campaign_id: str) -> PurgeReport:
        """The head teacher erases a campaign's named results before its date; what was released stays."""
        s = self._admin(actor)
        self._campaign(campaign_id)
        return self._purge(s, [campaign_id], self._today(), early=True)

    def reapply_purges(self, actor: Any, campaign_ids: Sequence[str]) -> PurgeReport:
        """Erase again campaigns erased early on a node that a restore replaced (backup.restore_backup)."""
        a = self._admin_or_node(actor)
        done = self._purged_campaigns()
        todo = [c for c in campaign_ids if c not in done and self._campaign_or_none(c) is not None]
        return self._purge(a, todo, self._today(), early=True) if todo else PurgeReport((), 0, 0)

    def _due_pupils(self, today: _dt.date, years: int) -> list[str]:
        """Pupils with no result left whose class's school year is past retention."""
        gone: list[str] = []
        for cid, year in self.db.execute("SELECT id, school_year FROM classes").fetchall():
            if erase_from(year, years) <= today:
                gone += [r[0] for r in self.db.execute(
                    "SELECT id FROM pupils p WHERE class_id = ? AND NOT EXISTS "
                    "(SELECT 1 FROM results r WHERE r.pupil_id = p.id)", [cid])]
        return gone

    def _purge(self, a: Any, campaign_ids: Sequence[str], today: _dt.date, *, early: bool) -> PurgeReport:
        years = self.retention_years(a)
        if not campaign_ids and not self._due_pupils(today, years):
            return PurgeReport((), 0, 0)  # the daily check: reads only, no write lock taken
        with self._lock:
            with self.db.atomic():
                now = self._now()
                results = 0
                for cid in campaign_ids:
                    n = self.db.execute("DELETE FROM results WHERE campaign_id = ?", [cid]).rowcount
                    self.db.execute("DELETE FROM tallies WHERE campaign_id = ?", [cid])
                    self.db.execute("DELETE FROM blobs WHERE scope = 'school' AND name = ?",
                                    [HISTORY_BLOB.format(campaign=cid)])
                    self.db.execute("INSERT INTO gdpr_purges (at, campaign_id, results, pupils, early) VALUES (?, ?, ?, 0, ?)",
                                    [now, cid, n, int(early)])
                    self._audit(a.actor, "results-purged", f"campaign:{cid}",
                                f"{n} pupils' results, {'early, by the head teacher' if early else 'retention ended'}")
                    results += n
                gone = self._due_pupils(today, years)  # again: the results just erased may free more pupils
                for pid in gone:
                    self.db.execute("DELETE FROM pupils WHERE id = ?", [pid])
                if gone:
                    self.db.execute("INSERT INTO gdpr_purges (at, campaign_id, results, pupils, early) VALUES (?, NULL, 0, ?, 0)",
                                    [now, len(gone)])
                    self._audit_many(a.actor, "pupil-purged", [(f"pupil:{pid}", "retention ended") for pid in gone])
            self._truncate_wal()
        return PurgeReport(tuple(campaign_ids), results, len(gone))

    def purges(self, actor: Any) -> list[dict[str, Any]]:
        """The erasures done, newest first (dates and counts, no pupil)."""
        self._admin_or_node(actor)
        return [dict(r) for r in self.db.query("SELECT at, campaign_id, results, pupils, early FROM gdpr_purges ORDER BY id DESC")]

    def last_purge_at(self) -> str | None:
        row = self.db.execute("SELECT max(at) FROM gdpr_purges").fetchone()
        return row[0] if row else None

    # -- backups ------------------------------------------------------------------

    def record_backup(self, path: str, created_at: str) -> None:
        """Called by write_backup: the file is listed so that it can be flagged once it holds erased data."""
        with self._lock, self.db.atomic():
            self.db.execute("INSERT INTO gdpr_backups (path, created_at) VALUES (?, ?)", [str(path), created_at])

    def remember_backups(self, carried: Sequence[tuple[str, str]], restored: tuple[str, str]) -> None:
        """After a restore, list the backups (path, created_at) that exist but this image never listed: those the
        replaced node had made (`carried`, oldest first), then the file restored from (its image was taken
        before it was listed), unless one made at the same time is listed already (a download's label)."""
        with self._lock, self.db.atomic():
            known = {(r[0], r[1]) for r in self.db.execute("SELECT path, created_at FROM gdpr_backups")}
            for row in [*carried, *([] if restored[1] in {at for _, at in known | set(carried)} else [restored])]:
                if row not in known:
                    known.add(row)
                    self.db.execute("INSERT INTO gdpr_backups (path, created_at) VALUES (?, ?)", list(row))

    def backup_holds_purged(self, created_at: str) -> bool:
        """A backup made before the latest erasure still holds what was erased: it should be destroyed."""
        last = self.last_purge_at()
        return last is not None and str(created_at) <= last  # same second: flagged, to be safe

    def backups(self, actor: Any) -> list[dict[str, Any]]:
        self._admin(actor)
        return [{"path": r["path"], "created_at": r["created_at"], "flagged": self.backup_holds_purged(r["created_at"])}
                for r in self.db.query("SELECT path, created_at FROM gdpr_backups ORDER BY id DESC")]

    # -- objection: not counted in releases ----------------------------------------

    def _not_counted(self, s: Any) -> set[str]:
        raw = self.get_blob(s, NOT_COUNTED_BLOB)
        return set(json.loads(raw)) if raw else set()

    def not_counted(self, actor: Any) -> set[str]:
        """Pupil ids the school releases without (their family objected). Head teacher only."""
        return self._not_counted(self._admin(actor))

    def set_counted(self, actor: Any, pupil_id: str, counted: bool, request: str = "") -> None:
        s = self._admin(actor)
        self._pupil_row(pupil_id)
        ids = self._not_counted(s) & {r[0] for r in self.db.execute("SELECT id FROM pupils")}
        if counted:
            ids.discard(pupil_id)
        else:
            ids.add(pupil_id)
        with self._lock, self.db.atomic():
            self.put_blob(s, NOT_COUNTED_BLOB, json.dumps(sorted(ids)).encode())
            self._audit(s.actor, "pupil-counted" if counted else "pupil-not-counted", f"pupil:{pupil_id}",
                        _request_text(request))

    # -- rectification ---------------------------------------------------------------

    def rectify_result(self, actor: Any, campaign_id: str, pupil_id: str, exercise_id: str, *, request: str,
                       answers=None, wpm: int | None = None, status: str = "done"):
        """Correct a result at someone's request: saved as usual, plus an audit entry saying it was a rectification."""
        s = self._admin(actor)
        result = self.save_result(s, campaign_id, pupil_id, exercise_id, answers=answers, wpm=wpm, status=status)
        with self._lock, self.db.atomic():
            self._audit(s.actor, "result-rectified", f"pupil:{pupil_id}",
                        f"campaign:{campaign_id}/exercise:{exercise_id} {_request_text(request)}")
        return result

    def rectify_identity(self, actor: Any, pupil_id: str, last_name: str, first_name: str, *, request: str):
        s = self._admin(actor)
        pupil = self.rename_pupil(s, pupil_id, last_name, first_name)
        with self._lock, self.db.atomic():
            self._audit(s.actor, "pupil-rectified", f"pupil:{pupil_id}", _request_text(request))
        return pupil

    # -- access ------------------------------------------------------------------------

    def access_request(self, actor: Any, pupil_id: str, request: str = "") -> dict[str, Any]:
        """Everything held about one pupil, as plain data (the JSON file; the French page renders it)."""
        s = self._admin(actor)
        row = self._pupil_row(pupil_id)
        key = self._class_key(s, row["class_id"])
        pupil = self._open_pupil(key, row)
        cls = self._class_row(row["class_id"])
        years = self.retention_years(s)
        pseudonym = vault.pseudonym(self._pseudonym_key(s), pupil_id)
        campaigns = []
        for r in list(self.db.query("SELECT * FROM results WHERE pupil_id = ? ORDER BY campaign_id", [pupil_id])):
            campaign = self._campaign(r["campaign_id"])
            payloads = self._open_results(key, r)
            results = []
            for ex in campaign.exercises:
                if ex.id not in payloads:
                    continue
                p = payloads[ex.id]
                res = self._result(campaign, pupil_id, ex.id, p)
                results.append({"exercise_id": ex.id, "exercise": ex.name, "status": res.status,
                                "answers": None if p["a"] is None else p["a"], "wpm": p["w"], "score": res.score,
                                "group": res.group, "entered_at": p["t"]})
            raw = self.get_blob(s, HISTORY_BLOB.format(campaign=campaign.id))
            history = ReleaseHistory.from_dict(json.loads(raw)) if raw else ReleaseHistory(campaign.id)
            campaigns.append({
                "id": campaign.id, "name": campaign.name, "level": campaign.level, "school_year": campaign.school_year,
                "erase_from": erase_from(campaign.school_year, years).isoformat(), "results": results,
                "releases": {"last_release": history.last_release,
                             "exercises_counted": sorted(history.exercises_counting(pseudonym))},
            })
        with self._lock, self.db.atomic():
            self._audit(s.actor, "access-request", f"pupil:{pupil_id}", _request_text(request))
        return {
            "format": "preau-access/1",
            "generated_at": self._now(),
            "school": self.school(),
            "pupil": {"id": pupil.id, "last_name": pupil.last_name, "first_name": pupil.first_name,
                      "added_at": row["created_at"]},
            "class": {"id": cls["id"], "name": cls["name"], "level": cls["level"], "school_year": cls["school_year"]},
            "counted_in_releases": pupil_id not in self._not_counted(s),
            "campaigns": campaigns,
            "left_the_school": {
                "individual_data": "none",
                "explanation": "only counts of pupils per group and exercise for the whole school leave it; "
                               "never a name, identifier or individual result",
            },
            "retention_years": years,
        }


def _request_text(request: str) -> str:
    text = " ".join(str(request or "").split())[:200]
    return f"request: {text}" if text else ""
