"""Save and read back a full campaign for a 100-pupil school: encrypted store vs plain sqlite-utils rows.

Both sides use the same file settings (WAL, synchronous=FULL) and the same
transactions, in two shapes: one pupil's 20 exercises per transaction, and one
exercise for a whole class per transaction (how teachers often enter). Reads go
class by class, with scores and groups computed; the encrypted side reads with a
fresh session, so every blob is decrypted. The encrypted side also writes its
audit rows and unattended tally in each transaction (through executemany); the
plain side is just the rows (sqlite-utils upsert_all). Figures are ratios
against the plain baseline measured in the same run.
"""
from __future__ import annotations

import json
import pathlib
import random
import sys
import tempfile
import time


from preau.crdt.campaign import group_for, parse_campaign
from preau.node.records import database as dbmod
from preau.node.records import vault
from preau.node.records.store import ResultInput, Store

PUPILS, CLASSES, EXERCISES, ITEMS, WPM_EXERCISES = 100, 4, 20, 10, 2
C = "bench-campaign"


def campaign():
    exercises = []
    for i in range(EXERCISES):
        if i < WPM_EXERCISES:
            exercises.append({"id": f"ex-{i:02d}", "name": f"Lecture {i}", "subject": "français", "score_kind": "wpm",
                              "max_score": 200, "thresholds": [20, 40]})
        else:
            exercises.append({"id": f"ex-{i:02d}", "name": f"Exercice {i}", "subject": "mathématiques", "score_kind": "items",
                              "items": ITEMS, "thresholds": [4, 7]})
    return parse_campaign({"id": C, "name": "Bench", "level": "CP", "school_year": "2026-2027", "opens": "2026-09-01",
                           "closes": "2026-09-30", "exercises": exercises})


def entries_for(pupil_id: str, rng: random.Random, camp) -> list[ResultInput]:
    out = []
    for ex in camp.exercises:
        if rng.random() < 0.03:
            out.append(ResultInput(pupil_id, ex.id, status="absent"))
        elif ex.score_kind == "wpm":
            out.append(ResultInput(pupil_id, ex.id, wpm=rng.randint(0, 90)))
        else:
            out.append(ResultInput(pupil_id, ex.id, answers=tuple(rng.choice((1, 1, 1, 0, None)) for _ in range(ITEMS))))
    return out


def batches(work, by: str):
    """Per pupil (one pupil's 20 exercises a transaction) or per exercise (one exercise for a whole class)."""
    if by == "pupil":
        return work
    flat = [e for entries in work for e in entries]
    groups: dict[tuple[int, str], list] = {}
    for i, entries in enumerate(work):
        for e in entries:
            groups.setdefault((i % CLASSES, e.exercise_id), []).append(e)
    assert sum(map(len, groups.values())) == len(flat)
    return list(groups.values())


def bench_encrypted(root: pathlib.Path, camp, rng, by: str):
    t0 = time.perf_counter()
    store, recovery = Store.create(root / f"enc-{by}", uai="0751234J", school_name="Bench", admin_username="direction",
                                   admin_password="direction password 1")
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    admin = store.login("direction", "direction password 1")
    unlock = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.unlock_with_recovery(recovery)
    recovery_unlock = time.perf_counter() - t0
    store.put_campaign(store.node, camp)
    classes = [store.create_class(admin, f"CP-{i}", "CP", "2026-2027") for i in range(CLASSES)]
    pupils = []
    for i in range(PUPILS):
        pupils += store.add_pupils(admin, classes[i % CLASSES].id, [(f"Nom{i}", f"Prénom{i}")])
    work = [entries_for(p.id, rng, camp) for p in pupils]
    t0 = time.perf_counter()
    for entries in batches(work, by):
        store.save_results(admin, C, entries)
    save = time.perf_counter() - t0
    reader = store.login("direction", "direction password 1")  # a fresh session: nothing cached, every blob decrypted
    t0 = time.perf_counter()
    n = 0
    for cls in classes:
        store.list_pupils(reader, cls.id)
        n += len(store.get_results(reader, C, cls.id))
    read = time.perf_counter() - t0
    assert n == PUPILS * EXERCISES
    store.close()
    return {"setup": setup, "unlock": unlock, "recovery_unlock": recovery_unlock, "save": save, "read": read}, work


def bench_plain(root: pathlib.Path, camp, work, by: str):
    db = dbmod.connect(root / f"plain-{by}.db")  # same pragmas
    db.execute("CREATE TABLE pupils (id TEXT PRIMARY KEY, class_id TEXT, last TEXT, first TEXT)")
    db.execute("CREATE TABLE results (campaign_id TEXT, exercise_id TEXT, pupil_id TEXT, status TEXT, answers TEXT, wpm INTEGER, "
               "updated_at TEXT, PRIMARY KEY (campaign_id, pupil_id, exercise_id))")
    with db.atomic():
        db["pupils"].insert_all({"id": e[0].pupil_id, "class_id": f"c{i % CLASSES}", "last": f"Nom{i}", "first": f"Prénom{i}"}
                                for i, e in enumerate(work))
    t0 = time.perf_counter()
    for entries in batches(work, by):
        with db.atomic():
            db["results"].upsert_all([{"campaign_id": C, "exercise_id": e.exercise_id, "pupil_id": e.pupil_id, "status": e.status,
                                       "answers": None if e.answers is None else json.dumps(e.answers), "wpm": e.wpm,
                                       "updated_at": "2026-09-10T10:00:00+00:00"} for e in entries],
                                     pk=("campaign_id", "pupil_id", "exercise_id"))
    save = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = 0
    for c in range(CLASSES):
        list(db.query("SELECT * FROM pupils WHERE class_id = ?", [f"c{c}"]))
        for r in db.query("SELECT r.* FROM results r JOIN pupils p ON p.id = r.pupil_id WHERE r.campaign_id = ? AND p.class_id = ?",
                          [C, f"c{c}"]):
            ex = camp.exercise(r["exercise_id"])
            if r["status"] != "done":
                group_for(ex, None, absent=True)
            else:
                score = r["wpm"] if r["answers"] is None else json.loads(r["answers"]).count(1)
                group_for(ex, score)
            n += 1
    read = time.perf_counter() - t0
    assert n == PUPILS * EXERCISES
    db.close()
    return {"save": save, "read": read}


def main() -> int:
    camp = campaign()
    total = PUPILS * EXERCISES
    print(f"school: {PUPILS} pupils in {CLASSES} classes x {EXERCISES} exercises ({ITEMS} items; {WPM_EXERCISES} timed) = {total} results")
    worst = 1.0
    for by in ("pupil", "exercise"):
        with tempfile.TemporaryDirectory() as tmp:
            root = pathlib.Path(tmp)
            enc, work = bench_encrypted(root, camp, random.Random(1), by)
            plain = bench_plain(root, camp, work, by)
        if by == "pupil":
            print(f"Argon2id unlock (ops={vault.PRODUCTION_COST.opslimit}, mem={vault.PRODUCTION_COST.memlimit >> 20} MiB): "
                  f"login {enc['unlock']:.3f} s, recovery key {enc['recovery_unlock'] * 1000:.1f} ms, set-up {enc['setup']:.3f} s")
        print(f"-- one transaction per {by} ({len(batches(work, by))} transactions)")
        for what in ("save", "read"):
            e, p = total / enc[what], total / plain[what]
            print(f"{what:5s} encrypted {e:9.0f} results/s ({enc[what]:.3f} s)   plain {p:9.0f} results/s ({plain[what]:.3f} s)"
                  f"   encrypted/plain = {e / p:.2f}")
        both_e = total * 2 / (enc["save"] + enc["read"])
        both_p = total * 2 / (plain["save"] + plain["read"])
        worst = min(worst, both_e / both_p)
        print(f"save+read encrypted/plain throughput = {both_e / both_p:.2f}")
    print(f"worst save+read ratio = {worst:.2f} (target >= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
