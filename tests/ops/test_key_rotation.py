"""Key rotation with real processes, at every level of a federation: an académie, a district below it with two
schools. Whoever rotates, and however often before the others hear of it, everyone keeps syncing.

Every step is the `preau` command IT staff would type (docs/operations.md, "Key rotation"); the district and
the académie keep serving while their keys change, as the docs say they may.
"""
from __future__ import annotations

import json
import re

import pytest

from e2e_world import Proc, World
from e2e_world import academie as new_academie
from preau.node import actions

pytestmark = pytest.mark.slow


def _status(node: Proc) -> dict:
    return json.loads(node.cli("status", "--json").stdout)


def _pins(node: Proc, role: str) -> set[tuple[str, str]]:
    return {(p["node_id"], p["status"]) for p in _status(node)["peers"] if p["role"] == role}


def _rotate(node: Proc) -> tuple[str, str]:
    before = _status(node)["node_id"]
    node.cli("keys", "rotate", "--yes")
    after = _status(node)["node_id"]
    assert after != before
    return before, after


def test_a_district_with_two_schools_and_a_parent_rotates_and_everyone_keeps_syncing(tmp_path):
    w = World(tmp_path)
    academie = new_academie(tmp_path)
    a, b = w.add_school("a", 1), w.add_school("b", 2)
    w.init_all()
    academie.start()
    w.district.start()
    try:
        actions.load_campaign(academie.settings(), campaign=w.campaign, file="debut-cp")
        w.district.cli("join", academie.cli("invite", "--uai", w.district.uai, "--district", "--allow-loopback").stdout.strip())
        w.district.cli("sync")  # the académie's campaign comes down, re-signed by the district
        for school in (a, b):
            w.join(school)
        w.fill(a, [21], seed=1)
        w.release(a)
        assert "acknowledged" in a.cli("sync").stdout

        # The district rotates while it serves. Its schools still pin the old key ...
        old, new = _rotate(w.district)
        assert _status(a)["upstream"]["node_id"] == old
        # ... and are told of the rotation in their next session: both keep syncing, and move their pin.
        w.fill(b, [24], seed=2)
        w.release(b)
        for school in (a, b):
            out = school.cli("sync").stdout
            up = _status(school)["upstream"]
            assert up["node_id"] == new, out
            # The last sync stays known across the pin's move ("last sync: never" made a monitor cry wolf).
            assert up["last_contact"] is not None, up
        assert "acknowledged" in out
        # The parent learns the new key from the district's next sync (the serving district may already have
        # synced by itself), and the district keeps syncing with it under the new key.
        w.district.cli("sync")
        assert _pins(academie, "child") >= {(old, "rotated"), (new, "active")}
        assert "Synced with" in w.district.cli("sync").stdout

        # The académie rotates in turn: the district, which pins its old key, is told, and keeps syncing.
        top_old, top_new = _rotate(academie)
        w.district.cli("sync")
        assert _status(w.district)["upstream"]["node_id"] == top_new
        # A rotated-away key does not come back: the district's old key is refused by its parent.
        w.district.stop()
        (w.district.data_dir / "identity.key").write_text(_old_seed(w.district))
        done = w.district.cli("sync", check=False)
        assert done.returncode == 1 and "newer key" in done.stderr, done.stderr
        # ... and not sent to ask for an enrolment that cannot happen (the old key stays superseded there).
        assert "set up a new node (preau init" in done.stderr, done.stderr
    finally:
        w.stop_all()
        academie.stop()


def _old_seed(node: Proc) -> str:
    """The seed of the key the node rotated away from (kept for the overlap period), as identity.key holds it."""
    retired = json.loads(node.query("SELECT value FROM meta WHERE key = 'retired_keys'")[0]["value"])
    assert len(retired) == 1
    return retired[0]["seed"] + "\n"


def test_a_school_that_rotates_twice_before_syncing_still_syncs(tmp_path):
    w = World(tmp_path)
    school = w.add_school("twice", 3)
    late = w.add_school("late", 4)
    w.init_all()
    w.load_campaign()
    w.district.start()
    try:
        w.join(school)
        first = _status(school)["node_id"]
        _rotate(school)
        _, last = _rotate(school)
        w.fill(school, [19], seed=3)
        w.release(school)
        assert "acknowledged" in school.cli("sync").stdout
        assert _pins(w.district, "school") == {(first, "rotated"), (last, "active")}
        assert json.loads(w.district.cli("stats", w.campaign.id, "--format", "json").stdout)["schools_contributing"] == 1
        # Rotated again after releasing: the school still shows what the district received.
        released = json.loads(school.cli("stats", w.campaign.id, "--format", "json").stdout)
        _rotate(school)
        assert json.loads(school.cli("stats", w.campaign.id, "--format", "json").stdout) == released
        # The district rotates: a school enrolled afterwards still receives the campaign (signed by the new key).
        w.district.cli("keys", "rotate", "--yes")
        w.join(late)
        assert [d["kind"] for d in _status(late)["documents"]] == ["campaign"]
        # The district drops its old keys at once (a stolen box): the school, which pins one, is told to ask for
        # a new invitation, not that 'nothing is lost, it is tried again at the next sync' for ever.
        rotated = w.district.cli("keys", "rotate", "--yes", "--overlap-days", "0").stdout
        district_now = re.search(r"-> ([A-Z2-7]{8}(?:-[A-Z2-7]{8}){3})", rotated).group(1)
        done = school.cli("sync", check=False)
        assert done.returncode == 1 and "ask it for a new invitation" in done.stderr, done.stderr
        assert "new invitation" in _status(school)["upstream"]["last_error"]
        w.fill(school, [12], seed=5)  # meanwhile the school releases again: its release waits
        w.release(school)
        assert len(_status(school)["unacknowledged"]) == 1
        # The district invites it again; the school, which has joined before, joins again with --again.
        invitation = w.district.cli("invite", "--uai", school.uai, "--allow-loopback").stdout.strip()
        done = school.cli("join", invitation, check=False)
        assert done.returncode == 1 and "run the same command with --again" in done.stderr, done.stderr
        joined = school.cli("join", invitation, "--again").stdout
        assert "Joined the district" in joined
        # What moved is said, so a head teacher handed another district's invitation can tell (nothing else can).
        assert "this school no longer trusts" in joined and district_now in joined, joined
        assert _status(school)["unacknowledged"] == []  # the waiting release went in that very session
        done = school.cli("join", invitation, "--again", check=False)  # once more: nothing to do, the pin is kept
        assert done.returncode == 1 and "nothing to join again" in done.stderr, done.stderr
        assert "Synced with" in school.cli("sync").stdout
        after = _status(school)
        assert after["upstream"]["node_id"] == district_now and after["upstream"]["last_error"] is None
        statuses = [p["status"] for p in after["peers"] if p["role"] == "district"]
        assert statuses.count("active") == 1 and "revoked" in statuses  # the dropped key is trusted no more
    finally:
        w.stop_all()
