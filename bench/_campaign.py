"""The 14-exercise campaign the benchmarks share (bench_crdt, bench_tree, bench_secagg).

Imported by name: a bench run as `python bench/bench_x.py` has this folder first on sys.path.
"""
from __future__ import annotations

from preau.crdt.campaign import parse_campaign

EXERCISES = [
    ("fr-mots", "français"), ("fr-phrases", "français"), ("fr-textes", "français"), ("fr-syllabes", "français"),
    ("fr-phonemes", "français"), ("fr-lettres-sons", "français"), ("fr-ecritures", "français"),
    ("ma-quantifier", "mathématiques"), ("ma-comparer", "mathématiques"), ("ma-lire", "mathématiques"),
    ("ma-ecrire", "mathématiques"), ("ma-ligne", "mathématiques"), ("ma-problemes", "mathématiques"),
    ("ma-assemblage", "mathématiques"),
]
CAMPAIGN = parse_campaign({
    "id": "2026-debut-cp", "name": "Début de CP", "level": "CP", "school_year": "2026-2027",
    "opens": "2026-09-01", "closes": "2026-09-30", "illustrative": True,
    "exercises": [{"id": i, "name": i, "subject": s, "score_kind": "items", "items": 15, "thresholds": [6, 10]}
                  for i, s in EXERCISES],
})
