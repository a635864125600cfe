"""Wrong clocks with real processes: a district whose clock runs days behind makes invitations that still work,
and the school that joins is told that the two clocks differ, with both times."""
from __future__ import annotations

import time

import pytest

from cli_helpers import SCHOOL_UAI, init, preau, start_district

pytestmark = pytest.mark.slow


def test_joining_with_an_invitation_from_a_district_clock_two_days_behind_says_so(tmp_path):
    from preau.node.runtime import Node

    district = start_district(tmp_path)
    try:
        node = Node(district.data, role="district", clock=lambda: int(time.time()) - 2 * 86400)
        try:
            text = node.create_invitation(SCHOOL_UAI, [district.url]).to_string()
        finally:
            node.close()
        school = tmp_path / "school"
        init(school, "school", SCHOOL_UAI)
        r = preau("join", text, "--data-dir", str(school))
        assert r.code == 0, r.err
        note = r.out.strip().splitlines()[-1]
        assert note.startswith("Note: the district's clock was 4") and "hours behind this machine's" in note, r.out
        assert "it said " in note and "this machine says " in note
    finally:
        district.stop()
