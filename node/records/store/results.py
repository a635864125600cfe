"""Campaigns and results: validation, sealed per pupil, exports, and the node's unattended tallies."""
from __future__ import annotations

from preau.node.errors import said

import json
from typing import Any, Iterable, Sequence

from preau.crdt.campaign import Campaign, Exercise, group_for, parse_campaign
from preau.crdt.disclosure import PupilOutcome
from preau.crdt.errors import CampaignError
from preau.node.records import csvio, vault
from preau.node.records.errors import Conflict, InvalidInput, NotFound, StoreError

from .base import (  # the store's types and helpers
    _COMPACT_JSON,
    STATUSES,
    NodeActor,
    Result,
    ResultInput,
    Session,
    _ad,
)


class ResultsMixin:
    """Part of `Store` (see store/__init__.py); `self` is the Store."""

    def put_campaign(self, actor: Session | NodeActor, campaign: Campaign) -> None:
        """Store or update a campaign (thresholds may arrive later); groups follow the new thresholds at once.

        The node may do this unattended (campaign documents arrive by sync). Changing an exercise's
        shape once results exist is refused: the saved answers would no longer mean anything.
        """
        a = self._admin_or_node(actor)
        if not isinstance(campaign, Campaign):
            raise InvalidInput("put_campaign takes a Campaign from preau.crdt.campaign.parse_campaign")
        with self._lock, self.db.atomic():
            old = self._campaign_or_none(campaign.id)
            if old is not None:
                # The node's tally knows which exercises have results, without opening any.
                used = {ex for ex, hist in self._read_tally(campaign.id)["ex"].items() if hist}
                new_by_id = {ex.id: ex for ex in campaign.exercises}
                for ex in old.exercises:
                    if ex.id not in used:
                        continue
                    new = new_by_id.get(ex.id)
                    if new is None:
                        raise Conflict(said("msg.store.exercise_kept", campaign=campaign.id, exercise=ex.id))
                    if (new.score_kind, new.items, new.max_score) != (ex.score_kind, ex.items, ex.max_score):
                        raise Conflict(said("msg.store.exercise_frozen", campaign=campaign.id, exercise=ex.id))
            self.db["campaigns"].upsert({"id": campaign.id, "definition": json.dumps(campaign.to_dict(), ensure_ascii=False),
                                         "updated_at": self._now()}, pk="id")
            self._audit(a.actor, "campaign-updated" if old else "campaign-added", f"campaign:{campaign.id}")

    def _campaign_or_none(self, campaign_id: str) -> Campaign | None:
        row = self._row("SELECT definition FROM campaigns WHERE id = ?", [campaign_id])
        if row is None:
            return None
        cached = self._campaigns.get(campaign_id)
        if cached is None or cached[0] != row["definition"]:
            cached = (row["definition"], parse_campaign(json.loads(row["definition"])))
            self._campaigns[campaign_id] = cached
        return cached[1]

    def _campaign(self, campaign_id: str) -> Campaign:
        c = self._campaign_or_none(campaign_id)
        if c is None:
            raise NotFound(said("msg.store.no_campaign", campaign=campaign_id))
        return c

    def get_campaign(self, actor: Session | NodeActor, campaign_id: str) -> Campaign:
        self._any(actor)
        return self._campaign(campaign_id)

    def list_campaigns(self, actor: Session | NodeActor) -> list[Campaign]:
        self._any(actor)
        return [parse_campaign(json.loads(r["definition"])) for r in self.db.query("SELECT definition FROM campaigns ORDER BY id")]

    @staticmethod
    def _validate(campaign: Campaign, entry: ResultInput) -> tuple[Exercise, dict[str, Any]]:
        try:
            ex = campaign.exercise(entry.exercise_id)
        except CampaignError:
            raise InvalidInput(said("msg.store.no_exercise", campaign=campaign.id, exercise=str(entry.exercise_id))) from None
        if entry.status not in STATUSES:
            raise InvalidInput(said("msg.store.bad_status", statuses=', '.join(STATUSES), status=str(entry.status)))
        if entry.status != "done":
            if entry.answers is not None or entry.wpm is not None:
                raise InvalidInput(said("msg.store.status_no_answers", status=str(entry.status)))
            return ex, {"st": entry.status, "a": None, "w": None}
        if ex.score_kind == "wpm":
            if entry.answers is not None:
                raise InvalidInput(said("msg.store.wpm_not_items", exercise=ex.id))
            w = entry.wpm
            if isinstance(w, bool) or not isinstance(w, int):
                raise InvalidInput(said("msg.store.wpm_whole", exercise=ex.id, got=w))
            if not 0 <= w <= ex.max_score:
                raise InvalidInput(said("msg.store.wpm_range", exercise=ex.id, wpm=w, max=ex.max_score))
            return ex, {"st": "done", "a": None, "w": w}
        if entry.wpm is not None:
            raise InvalidInput(said("msg.store.items_not_wpm", exercise=ex.id))
        answers = entry.answers
        if answers is None or isinstance(answers, (str, bytes)) or not hasattr(answers, "__len__"):
            raise InvalidInput(said("msg.store.needs_items", exercise=ex.id, items=ex.items))
        if len(answers) != ex.items:
            raise InvalidInput(said("msg.store.item_count", exercise=ex.id, items=ex.items, n=len(answers)))
        code = []
        for i, v in enumerate(answers):
            if v is None:
                code.append("-")
            elif v in (0, 1) and not isinstance(v, float):
                code.append(str(int(v)))
            else:
                raise InvalidInput(said("msg.store.bad_item", exercise=ex.id, item=i + 1, got=v))
        return ex, {"st": "done", "a": "".join(code), "w": None}

    @staticmethod
    def _score(payload: dict[str, Any]) -> int | None:
        if payload["st"] != "done":
            return None
        return payload["w"] if payload["a"] is None else payload["a"].count("1")

    @classmethod
    def _bucket(cls, payload: dict[str, Any]) -> tuple:
        """What the unattended tally keeps of one result: its score or 'absent', never who."""
        return ("absent",) if payload["st"] != "done" else ("score", cls._score(payload))

    @staticmethod
    def _results_pad(campaign: Campaign) -> int:
        """A size every pupil's results for this campaign fit in, whatever was entered."""
        need = 64 + sum(len(ex.id) + (ex.items or 3) + 64 for ex in campaign.exercises)
        return -(-need // 512) * 512

    def _seal_results(self, key: bytes, campaign: Campaign, pupil_id: str, results: dict[str, dict],
                      pad: int | None = None) -> bytes:
        compact = {ex: [p["st"], p["a"], p["w"], p["t"]] for ex, p in results.items()}
        plain = _COMPACT_JSON.encode(compact).encode()
        return vault.seal(key, vault.pad(plain, pad or self._results_pad(campaign)), _ad("results", campaign.id, pupil_id))

    def _open_results(self, key: bytes, row: dict[str, Any], s: Session | None = None) -> dict[str, dict]:
        if s is not None:
            cached = s._results.get((row["campaign_id"], row["pupil_id"]))
            if cached is not None and cached[0] == row["ct"]:
                return dict(cached[1])
        try:
            compact = json.loads(vault.unpad(vault.open_(key, row["ct"], _ad("results", row["campaign_id"], row["pupil_id"]))))
        except vault.DecryptError as exc:
            raise StoreError(said("msg.store.results_decrypt", id=row['pupil_id'])) from exc
        results = {ex: {"st": v[0], "a": v[1], "w": v[2], "t": v[3]} for ex, v in compact.items()}
        if s is not None:
            s._results[(row["campaign_id"], row["pupil_id"])] = (bytes(row["ct"]), dict(results))
        return results

    @classmethod
    def _result(cls, campaign: Campaign, pupil_id: str, exercise_id: str, payload: dict[str, Any]) -> Result:
        score = cls._score(payload)
        try:
            ex = campaign.exercise(exercise_id)
            group = group_for(ex, score, absent=payload["st"] != "done")
        except CampaignError:
            group = None
        answers = None if payload["a"] is None else tuple(None if c == "-" else int(c) for c in payload["a"])
        return Result(pupil_id, exercise_id, payload["st"], answers, payload["w"], score, group, payload["t"])

    def _class_results(self, s: Session, campaign: Campaign, class_id: str | None = None):
        """(pupil id, exercise id, payload) of every saved result, for one class or (admin) all."""
        sql = "SELECT r.*, p.class_id FROM results r JOIN pupils p ON p.id = r.pupil_id WHERE r.campaign_id = ?"
        params: list[Any] = [campaign.id]
        if class_id is not None:
            sql += " AND p.class_id = ?"
            params.append(class_id)
        keys: dict[str, bytes] = {}  # one access check and key per class, not one per pupil
        for r in list(self.db.query(sql + " ORDER BY r.pupil_id", params)):
            if r["class_id"] not in keys:
                keys[r["class_id"]] = self._class_key(s, r["class_id"])
            for exercise_id, payload in sorted(self._open_results(keys[r["class_id"]], r, s).items()):
                yield r["pupil_id"], exercise_id, payload

    def save_results(self, actor: Session, campaign_id: str, entries: Iterable[ResultInput]) -> list[Result]:
        """Validate every entry, then write all in one transaction; returns once it is on disk."""
        s = self._session(actor)
        campaign = self._campaign(campaign_id)
        entries = list(entries)
        for entry in entries:
            if not isinstance(entry, ResultInput):
                raise InvalidInput("save_results takes ResultInput entries")
        payloads = [self._validate(campaign, entry)[1] for entry in entries]
        pupil_ids = sorted({e.pupil_id for e in entries})
        marks = ",".join("?" * len(pupil_ids))
        classes = {r["id"]: r["class_id"] for r in self.db.query(f"SELECT id, class_id FROM pupils WHERE id IN ({marks})", pupil_ids)}
        for pid in pupil_ids:
            if pid not in classes:
                self._pupil_row(pid)  # raises NotFound with the person's message
        keys = {cid: self._class_key(s, cid) for cid in sorted(set(classes.values()))}
        out = []
        with self._sealing(s, keys, classes):
            now = self._now()
            stored = {r["pupil_id"]: self._open_results(keys[classes[r["pupil_id"]]], r, s) for r in self.db.query(
                f"SELECT * FROM results WHERE campaign_id = ? AND pupil_id IN ({marks})", [campaign_id, *pupil_ids])}
            changes = []
            for entry, payload in zip(entries, payloads):
                mine = stored.setdefault(entry.pupil_id, {})
                old = mine.get(entry.exercise_id)
                payload = {**payload, "t": now}
                mine[entry.exercise_id] = payload
                changes.append((entry.exercise_id, None if old is None else self._bucket(old), self._bucket(payload)))
                out.append(self._result(campaign, entry.pupil_id, entry.exercise_id, payload))
            # The hot path: plain executemany rather than sqlite-utils' per-call table introspection.
            pad = self._results_pad(campaign)
            sealed = [(campaign_id, pid, self._seal_results(keys[classes[pid]], campaign, pid, stored[pid], pad)) for pid in pupil_ids]
            self.db.conn.executemany(
                "INSERT INTO results (campaign_id, pupil_id, ct) VALUES (?, ?, ?) "
                "ON CONFLICT (campaign_id, pupil_id) DO UPDATE SET ct = excluded.ct", sealed)
            self._update_tally(campaign_id, changes)
            # One audit entry per save (a grid row or column), listing what it changed.
            self._audit(s.actor, "result-saved", f"campaign:{campaign_id}",
                        " ".join(f"pupil:{e.pupil_id}/exercise:{e.exercise_id}" for e in entries))
        for _, pid, ct in sealed:  # only once committed
            s._results[(campaign_id, pid)] = (ct, dict(stored[pid]))
        return out

    def save_result(self, actor: Session, campaign_id: str, pupil_id: str, exercise_id: str, *,
                    answers: Sequence[int | None] | None = None, wpm: int | None = None, status: str = "done") -> Result:
        if answers is not None and not isinstance(answers, (str, bytes)):
            answers = tuple(answers)
        entry = ResultInput(pupil_id, exercise_id, status, answers, wpm)  # type: ignore[arg-type]
        return self.save_results(actor, campaign_id, [entry])[0]

    def get_results(self, actor: Session, campaign_id: str, class_id: str) -> list[Result]:
        """Every saved result of a class in a campaign, with score and group under the current thresholds."""
        s = self._session(actor)
        self._class_key(s, class_id)  # the access check, even for a class with no results yet
        campaign = self._campaign(campaign_id)
        return [self._result(campaign, pid, ex, payload) for pid, ex, payload in self._class_results(s, campaign, class_id)]

    def export_results_csv(self, actor: Session, campaign_id: str, class_id: str, lang: str = "fr") -> str:
        """One line per pupil: score and group for each exercise, for the class's teacher, in `lang`.

        Columns are named by the exercise's title as the grid page shows it (its id is no use in a spreadsheet),
        with what the number counts; groups and statuses are the words the pages use. Numbers stay numbers."""
        from preau.node import i18n  # the catalog is read only when someone exports

        def t(key: str, **params: object) -> str:
            return i18n.translate(lang, key, **params)

        pupils = self.list_pupils(actor, class_id)
        results = self.get_results(actor, campaign_id, class_id)
        campaign = self._campaign(campaign_id)
        by = {(r.pupil_id, r.exercise_id): r for r in results}
        header = [t("export.last_name"), t("export.first_name")]
        names = [ex.name for ex in campaign.exercises]
        for ex in campaign.exercises:
            title = ex.name if names.count(ex.name) == 1 else f"{ex.name} ({ex.id})"  # two columns never share a name
            counts = (t("export.score_wpm", exercise=title) if ex.score_kind == "wpm"
                      else t("export.score_items", exercise=title, max=ex.max_score))
            header += [counts, t("export.group", exercise=title)]
        labels = {"absent": t("group.absent"), "not_assessed": t("export.not_assessed")}
        rows = []
        for p in pupils:
            row: list[object] = [p.last_name, p.first_name]
            for ex in campaign.exercises:
                r = by.get((p.id, ex.id))
                if r is None:
                    row += ["", ""]
                elif r.status != "done":
                    row += [labels[r.status], labels[r.status]]
                else:
                    row += [r.score, t(f"group.{r.group}") if r.group else ""]
            rows.append(row)
        return csvio.write_results_csv(header, rows)

    def _tally_key(self) -> bytes:
        return vault.derive(self._node_key, "tally")

    def _read_tally(self, campaign_id: str) -> dict[str, Any]:
        row = self._row("SELECT ct FROM tallies WHERE campaign_id = ?", [campaign_id])
        if row is None:
            return {"rev": 0, "ex": {}}
        try:
            return json.loads(vault.open_(self._tally_key(), row["ct"], _ad("tally", campaign_id)))
        except vault.DecryptError as exc:
            raise StoreError(said("msg.store.tallies_decrypt")) from exc

    def _write_tally(self, campaign_id: str, tally: dict[str, Any]) -> None:
        plain = json.dumps(tally, sort_keys=True, separators=(",", ":")).encode()
        self.db.execute("INSERT INTO tallies (campaign_id, ct) VALUES (?, ?) ON CONFLICT (campaign_id) DO UPDATE SET ct = excluded.ct",
                        [campaign_id, vault.seal(self._tally_key(), plain, _ad("tally", campaign_id))])

    def _update_tally(self, campaign_id: str, changes: list[tuple[str, tuple | None, tuple | None]]) -> None:
        tally = self._read_tally(campaign_id)
        for exercise_id, old, new in changes:
            hist = tally["ex"].setdefault(exercise_id, {})
            for bucket, delta in ((old, -1), (new, +1)):
                if bucket is None:
                    continue
                name = "absent" if bucket[0] == "absent" else str(bucket[1])
                hist[name] = hist.get(name, 0) + delta
                if hist[name] == 0:
                    del hist[name]
        tally["rev"] += 1
        self._write_tally(campaign_id, tally)

    def next_release_counts(self, actor: Session | NodeActor, campaign_id: str) -> dict[str, Any]:
        """Per-exercise counts by group under the current thresholds, kept current with nobody logged in.

        Built from the node-key score histograms, so new thresholds apply without a login.
        `ungrouped` counts scored pupils of an exercise still waiting for thresholds; `revision`
        grows with every saved change (a cheap "anything new since the last release?").
        """
        self._admin_or_node(actor)
        campaign = self._campaign(campaign_id)
        tally = self._read_tally(campaign_id)
        out: dict[str, dict[str, int]] = {}
        for ex in campaign.exercises:
            counts = {"besoin": 0, "fragile": 0, "seuil2": 0, "absent": 0, "ungrouped": 0}
            for name, n in tally["ex"].get(ex.id, {}).items():
                group = "absent" if name == "absent" else group_for(ex, int(name))
                counts[group or "ungrouped"] += n
            out[ex.id] = counts
        return {"campaign": campaign_id, "revision": tally["rev"], "exercises": out}

    def rebuild_counts(self, actor: Session, campaign_id: str) -> None:
        """Recompute the unattended histograms from the encrypted results (after storage.key was lost)."""
        s = self._admin(actor)
        self._campaign(campaign_id)
        changes = [(ex, None, self._bucket(payload)) for _, ex, payload in self._class_results(s, self._campaign(campaign_id))]
        with self._lock, self.db.atomic():
            self.db.execute("DELETE FROM tallies WHERE campaign_id = ?", [campaign_id])
            self._update_tally(campaign_id, changes)
            self._audit(s.actor, "counts-rebuilt", f"campaign:{campaign_id}")

    def _pseudonym_key(self, s: Session) -> bytes:
        row = self._row("SELECT ct FROM key_wraps WHERE key = 'pseudonym' AND holder = 'school'")
        return vault.open_(vault.derive(s._school_key, "wrap/pseudonym"), row["ct"], _ad("pseudonym-key"))

    def pupil_pseudonym(self, actor: Session, pupil_id: str) -> str:
        """The opaque per-school pseudonym releases use for this pupil (head teacher only)."""
        s = self._admin(actor)
        self._pupil_row(pupil_id)
        return vault.pseudonym(self._pseudonym_key(s), pupil_id)

    def release_outcomes(self, actor: Session, campaign_id: str, *, campaign: Campaign | None = None) -> list[PupilOutcome]:
        """Each saved result of the campaign as (pseudonym, exercise, group), for disclosure control.

        `campaign`: the definition to group with (the release step passes the one with the thresholds
        pinned by earlier releases, `disclosure.pin_campaign`); by default the stored one.
        """
        s = self._admin(actor)
        stored = self._campaign(campaign_id)
        if campaign is not None and campaign.id != stored.id:
            raise ValueError(f"release_outcomes: campaign {campaign.id!r} is not {campaign_id!r}")
        campaign = campaign or stored
        pkey = self._pseudonym_key(s)
        excluded = self._not_counted(s)  # families who objected (gdpr.py): released exactly as if removed
        out = [PupilOutcome(vault.pseudonym(pkey, pid), ex, self._result(campaign, pid, ex, payload).group)
               for pid, ex, payload in self._class_results(s, campaign) if pid not in excluded]
        out.sort(key=lambda o: (o.exercise, o.pupil))
        return out
