"""District statistics kept as one entry per school: the same figures as recomputing from every verified release."""
from __future__ import annotations

import json
import sqlite3

from preau.crdt.docio import load_document
from preau.crdt.signing import SignedRelease, verify_release
from preau.crdt.statistics import CampaignStatistics
from preau.node.federation.store import MIGRATIONS, FedStore

from test_runtime import CAMPAIGN, district, joined, release  # noqa: F401 - district is a fixture


def recomputed(node) -> dict:
    """Statistics rebuilt from scratch: every school's newest verified release, added in any order."""
    stats = CampaignStatistics(CAMPAIGN.id)
    for doc in node.fed.documents(kind="release"):
        number, raw = node.fed.latest_release(doc.doc_id)
        signed = SignedRelease.decode(raw)
        if node.federation._member_sends(signed.owner, signed.kind):
            stats.add(verify_release(load_document(doc.data), signed, signed.owner, 0))
    return stats.to_dict()


async def test_entries_equal_a_recomputation_after_releases_rotations_and_relays(tmp_path, district):
    a = await joined(tmp_path, district, "a", "0751234J")
    b = await joined(tmp_path, district, "b", "0751235K")
    c = await joined(tmp_path, district, "c", "0751236L")
    release(a, 12)
    release(b, 15)
    await a.sync_upstream()
    await b.sync_upstream()
    release(a, 24, number=2)
    await a.sync_upstream()
    b.rotate_keys()
    await b.sync_upstream()
    release(b, 30, number=2)
    await b.sync_upstream()
    release(c, 18)
    district.federation.import_bundle(c.federation.export_bundle())
    assert district.fed.stats(CAMPAIGN.id) == recomputed(district)
    assert len(district.fed.stats(CAMPAIGN.id)["schools"]) == 3
    for n in (a, b, c):
        n.close()


def test_migration_moves_a_whole_statistics_record_into_one_entry_per_school(tmp_path):
    path = tmp_path / "federation.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0][1])
    conn.execute("PRAGMA user_version = 1")
    record = {"version": 1, "campaign": "2026-debut-cp",
              "schools": {"aa" * 32: {"release": 2, "time": 5, "heads": "ff", "content": {"x": 1}},
                          "bb" * 32: {"release": 1, "time": 6, "heads": "ee", "content": {"x": 2}}}}
    conn.execute("INSERT INTO stats(campaign, data, updated_at) VALUES (?, ?, 1)", ["2026-debut-cp", json.dumps(record)])
    conn.execute("INSERT INTO stats(campaign, data, updated_at) VALUES ('other', '{\"n\": 1}', 1)")
    conn.commit()
    conn.close()
    store = FedStore(path)
    try:
        assert store.schema_version == len(MIGRATIONS)
        assert store.stats("2026-debut-cp") == record
        assert store.stats_entry("2026-debut-cp", "bb" * 32)["release"] == 1
        assert store.stats("other") == {"n": 1}  # records that are not per-school statistics stay as they were
        assert store.stats_campaigns() == ["2026-debut-cp", "other"]
    finally:
        store.close()
