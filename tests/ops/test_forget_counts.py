"""Removing a revoked school's counts from the district's statistics."""
from __future__ import annotations

import json

import pytest

from e2e_world import World

pytestmark = pytest.mark.slow


def test_a_revoked_schools_counts_can_be_removed(tmp_path):
    w = World(tmp_path)
    kept, gone = w.add_school("kept", 5), w.add_school("gone", 6)
    w.init_all()
    w.load_campaign()
    w.district.start()
    try:
        for school, size in ((kept, 23), (gone, 24)):
            w.join(school)
            w.fill(school, [size], seed=size)
            w.release(school)
            school.cli("sync")
        assert w.stats_by_command()["schools_contributing"] == 2
        out = w.district.cli("revoke", gone.uai, "--reason", "box stolen").stdout
        assert "Revoked" in out and w.stats_by_command()["schools_contributing"] == 2  # revoking alone keeps them
        out = w.district.cli("revoke", gone.uai, "--reason", "releases not to be trusted", "--forget-counts").stdout
        assert "Removed" in out and "from 1 campaign(s)" in out, out
        stats = w.stats_by_command()
        assert stats["schools_contributing"] == 1
        events = json.loads(w.district.cli("status", "--json").stdout)["events"]
        assert any(e["kind"] == "counts_forgotten" for e in events)
    finally:
        w.stop_all()
