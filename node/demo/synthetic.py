"""Synthetic classes whose results follow the national rates, for the demo, tests and benchmarks.

Each pupil's group is drawn first (at the national rate of pupils at or above
threshold 2 for that exercise, the rest split between "fragile" and "à
besoin", a few absent), then a score inside that group's range and item
answers giving that score. The intended groups are kept, so the district's
merged statistics can be checked against them without going through the
code under test.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from preau.crdt.campaign import Campaign, Exercise

# Share of pupils at or above threshold 2, from the DEPP's published figures
# (see shared notes: Début CP 2025, Point d'étape CP 2025, Début CE1 2024).
NATIONAL_SEUIL2 = {
    "fr-comprendre-textes": 0.853,
    "fr-comprendre-phrases": 0.839,
    "fr-lettres-sons": 0.837,
    "fr-ecritures-lettre": 0.687,
    "ma-lire-nombres": 0.922,
    "ma-ecrire-nombres": 0.896,
    "ma-problemes": 0.693,
    "fr-manipuler-phonemes": 0.860,
    "fr-comprendre-phrases-seul": 0.854,
    "fr-ecrire-syllabes": 0.864,
    "ma-assemblage": 0.837,
}
DEFAULT_SEUIL2 = 0.80
ABSENT_RATE = 0.03

FIRST = ("Léa", "Hugo", "Chloé", "Louis", "Inès", "Gabriel", "Jade", "Arthur", "Lina", "Noah", "Manon", "Adam",
         "Zoé", "Raphaël", "Alice", "Paul", "Lou", "Sacha", "Emma", "Malo", "Nour", "Yanis", "Rose", "Éloïse")
LAST = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
        "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
        "Morel", "Girard", "André", "Mercier", "Diallo", "Nguyen", "Benali", "Lopez")


@dataclass
class SyntheticPupil:
    last_name: str
    first_name: str
    results: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # exercise -> (group, score)


@dataclass
class SyntheticClass:
    name: str
    pupils: list[SyntheticPupil]


def _score_in(rng: random.Random, ex: Exercise, group: str) -> int:
    t1, t2 = ex.thresholds
    lo, hi = {"besoin": (0, t1 - 1), "fragile": (t1, t2 - 1), "seuil2": (t2, ex.max_score)}[group]
    if hi < lo:  # a degenerate range (t1 == 0 or t1 == t2): fall back to the nearest possible score
        lo = hi = max(0, min(ex.max_score, lo))
    return rng.randint(lo, hi)


def draw_group(rng: random.Random, exercise_id: str, *, rate_shift: float = 0.0) -> str:
    p2 = min(0.99, max(0.05, NATIONAL_SEUIL2.get(exercise_id, DEFAULT_SEUIL2) + rate_shift))
    x = rng.random()
    if x < ABSENT_RATE:
        return "absent"
    x = (x - ABSENT_RATE) / (1 - ABSENT_RATE)
    if x < p2:
        return "seuil2"
    return "fragile" if x < p2 + (1 - p2) / 2 else "besoin"


def make_classes(rng: random.Random, campaign: Campaign, sizes: list[int], *, rate_shift: float = 0.0) -> list[SyntheticClass]:
    """Classes of the given sizes with results for every exercise that has thresholds."""
    classes = []
    used: set[tuple[str, str]] = set()
    for n, size in enumerate(sizes):
        pupils = []
        while len(pupils) < size:
            name = (rng.choice(LAST), rng.choice(FIRST))
            if name in used:
                continue
            used.add(name)
            pupil = SyntheticPupil(*name)
            for ex in campaign.exercises:
                if ex.thresholds is None:
                    continue
                group = draw_group(rng, ex.id, rate_shift=rate_shift)
                pupil.results[ex.id] = (group, None if group == "absent" else _score_in(rng, ex, group))
            pupils.append(pupil)
        classes.append(SyntheticClass(f"{campaign.level} {chr(ord('A') + n)}", pupils))
    return classes


def answers_for(rng: random.Random, ex: Exercise, score: int) -> tuple[int, ...]:
    """Item answers (1 right, 0 wrong) giving exactly `score`, in a random order."""
    answers = [1] * score + [0] * (ex.items - score)
    rng.shuffle(answers)
    return tuple(answers)


def expected_counts(classes: list[SyntheticClass]) -> dict[str, Counter]:
    """Pupils per group per exercise, straight from the intended groups."""
    out: dict[str, Counter] = {}
    for c in classes:
        for p in c.pupils:
            for ex, (group, _) in p.results.items():
                out.setdefault(ex, Counter())[group] += 1
    return out


def assessed(classes: list[SyntheticClass]) -> int:
    """Pupils with at least one result that is not absent (the cohort disclosure control counts)."""
    return sum(1 for c in classes for p in c.pupils if any(g != "absent" for g, _ in p.results.values()))
