"""Shared helpers for tests/crdt (a plain module: test folders are not packages). Small real things: a campaign, school and district keys, a helper that publishes a release."""
from __future__ import annotations

import hashlib
import random

from automerge.core import SyncState

from preau.crdt.campaign import parse_campaign
from preau.crdt.crypto import public_key
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.crdt.docio import generate_sync_message, receive_sync_message
from preau.crdt.documents import write_release
from preau.crdt.schema import new_document
from preau.crdt.signing import sign_release

NOW = 1_790_000_000
AUTOMERGE_MAGIC = bytes.fromhex("856f4a83")

CAMPAIGN = {
    "id": "2026-debut-cp",
    "name": "Début de CP",
    "level": "CP",
    "school_year": "2026-2027",
    "opens": "2026-09-01",
    "closes": "2026-09-30",
    "illustrative": True,
    "exercises": [
        {"id": "fr-mots", "name": "Comprendre des mots", "subject": "français", "score_kind": "items", "items": 15, "thresholds": [6, 10]},
        {"id": "fr-phrases", "name": "Comprendre des phrases", "subject": "français", "score_kind": "items", "items": 14, "thresholds": [6, 10]},
        {"id": "ma-problemes", "name": "Résoudre des problèmes", "subject": "mathématiques", "score_kind": "items", "items": 10, "thresholds": [3, 7]},
        {"id": "fr-lire-texte", "name": "Lire un texte", "subject": "français", "score_kind": "wpm", "max_score": 200},
    ],
}


def seed(n: int) -> bytes:
    return bytes([n]) * 32


def fix_checksum(data: bytes) -> bytes:
    """Re-seal a mutated Automerge chunk so the parser gets past the checksum and into the columns."""
    if len(data) < 9 or data[:4] != AUTOMERGE_MAGIC:
        return data
    return data[:4] + hashlib.sha256(data[8:]).digest()[:4] + data[8:]


def make_campaign(**policy):
    data = dict(CAMPAIGN)
    if policy:
        data["policy"] = policy
    return parse_campaign(data)


def outcomes_for(pupils, campaign, rng: random.Random, weights=(1, 2, 6, 1)):
    """Every pupil on every exercise, groups drawn with realistic weights; None where no thresholds yet."""
    out = []
    for p in pupils:
        for ex in campaign.exercises:
            group = rng.choices(("besoin", "fragile", "seuil2", "absent"), weights)[0]
            if ex.thresholds is None and group != "absent":
                group = None
            out.append(PupilOutcome(p, ex.id, group))
    return out


def with_late_batch(outcomes, campaign, prefix="late", n=10, group="seuil2"):
    """The same outcomes and `n` late pupils in one group on every exercise (pending where it has no thresholds):
    every count moves by 0 or `n`, so with n >= min_batch a later release goes under batching at both levels
    (pupils and counts). A fresh random draw for the same pupils would move some counts by fewer: held back."""
    late = [PupilOutcome(f"{prefix}{i}", ex.id, group if ex.thresholds is not None else None)
            for i in range(n) for ex in campaign.exercises]
    return [*outcomes, *late]


class School:
    """A school node's crdt side: its history, its release document, its key; `outcomes`: those last released."""

    def __init__(self, n: int, campaign):
        self.seed = seed(n)
        self.owner = public_key(self.seed)
        self.campaign = campaign
        self.history = ReleaseHistory(campaign.id)
        self.doc = new_document("release", self.owner, campaign=campaign.id)
        self.signed = []
        self.outcomes = []

    def publish(self, outcomes, *, closing=False, now=NOW):
        decision = next_release(outcomes, self.campaign, self.history, closing=closing)
        if decision.release:
            write_release(self.doc, decision.content)
            self.signed.append(sign_release(self.doc, self.seed, now=now))
            self.history = decision.history
            self.outcomes = list(outcomes)
        return decision


def sync_pair(a, b, *, rounds=20, accept_changes_b=True):
    """Run the sync protocol between two documents until both are quiet."""
    sa, sb = SyncState(), SyncState()
    for _ in range(rounds):
        m1 = generate_sync_message(a, sa)
        if m1 is not None:
            receive_sync_message(b, sb, m1, accept_changes=accept_changes_b)
        m2 = generate_sync_message(b, sb)
        if m2 is not None:
            receive_sync_message(a, sa, m2)
        if m1 is None and m2 is None:
            return
    raise AssertionError("sync did not settle")
