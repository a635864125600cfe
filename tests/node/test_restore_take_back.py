"""A school whose federation store went back to an older state (a restore): what its district gives back, in one
process over real WebSockets on 127.0.0.1. The end-to-end story, with real processes and a real backup, is
tests/ops/test_restore_release.py; here the branches it does not reach: a release approved after the restore that
is too close to the one the district holds is neither signed again nor ever carried to the district."""
from __future__ import annotations

import dataclasses

import pytest

from preau.crdt.disclosure import ReleaseHistory, next_release
from preau.crdt.docio import change_hashes, load_document
from preau.crdt.documents import read_release
from preau.crdt.errors import CrdtError
from preau.crdt.schema import document_id

from preau.node.federation.rules import RESTORED

from federation_helpers import CAMPAIGN, make_node, outcomes, serve


@pytest.fixture
async def district(tmp_path, aiohttp_server):
    node = await serve(make_node(tmp_path, "district", "district"), aiohttp_server)
    yield node
    node.close()


def _content(n: int, number: int):
    decision = next_release(outcomes(n), CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=False)
    return dataclasses.replace(decision.content, release=number)


async def test_a_release_too_close_to_the_one_taken_back_is_not_sent_again_by_itself(tmp_path, district):
    district.federation.publish_campaign(CAMPAIGN)
    school = make_node(tmp_path, "school", "school")
    await school.join(district.create_invitation("0751234J", [district.url]).to_string(), "0751234J")
    fed = school.federation
    rid = document_id("release", fed.key, CAMPAIGN.id)
    fed.publish_release(_content(20, 1), to_peer="district")
    await school.sync_upstream()
    backup = fed.fed.document(rid).data
    fed.publish_release(_content(30, 2), to_peer="district")
    await school.sync_upstream()
    held = district.fed.latest_release(rid)
    # What a restore of a backup made between the two does to the school's federation store (and `preau restore`
    # marks it restored).
    with fed.fed.transaction() as conn:
        conn.execute("UPDATE documents SET data = ? WHERE doc_id = ?", [backup, rid])
        conn.execute("DELETE FROM releases WHERE doc_id = ? AND number = 2", [rid])
        conn.execute("DELETE FROM transparency WHERE doc_id = ? AND number = 2", [rid])
    fed.fed.set_meta(RESTORED, 1)
    fed.publish_release(_content(31, 2), to_peer="district")  # one pupil more than the district's release 2
    # and a second one before any sync: numbered past the district's 2, the district would take it at once
    # (and the 31 in its history) if it left before the school had seen what the district holds.
    fed.publish_release(_content(60, 3), to_peer="district")
    assert rid not in fed.offers_for(district.identity.public)  # not offered until one sync has taken back

    report = await school.sync_upstream()
    assert report.complete and report.error is None, report
    assert rid in [a.doc_id for a in report.accepted]  # taken back
    assert [c.cohort for c in fed.lost_contents(rid)] == [30]
    assert district.fed.latest_release(rid) == held  # the district kept its release 2
    # Signed again as release 3, it would tell the district that one pupil's group; and any later release would
    # carry its state to the district in the document's history. It is dropped: the school's copy is the
    # district's again, its release 2 the district's.
    assert fed.fed.latest_release(rid) == held
    assert fed.fed.get_meta(RESTORED) is None and rid in fed.offers_for(district.identity.public)  # leave again
    kinds = [e["kind"] for e in fed.fed.events(50)]
    assert "taken_back" in kinds and "renumbered" not in kinds
    fed.publish_release(_content(60, 3), to_peer="district")
    await school.sync_upstream()
    assert district.fed.latest_release(rid)[0] == 3
    stored = load_document(district.fed.document(rid).data)
    cohorts = set()
    for h in change_hashes(stored):
        try:
            cohorts.add(read_release(stored, [h]).cohort)
        except CrdtError:
            pass  # the header alone
    assert cohorts == {20, 30, 60}  # never the 31 the school approved after its restore
    # The same content one pupil further (32 against 30: the besoin count moves by 1) waits too;
    # 60 pupils (against 30 each count moves by 0 or at least 10) may go, numbered past the district's.
    from preau.node.federation.rules import too_close_to_lost
    assert too_close_to_lost(_content(32, 3), fed.lost_contents(rid))
    assert not too_close_to_lost(_content(60, 3), fed.lost_contents(rid))
    school.close()


def test_a_release_where_nothing_moves_sends_the_district_its_own_figures_not_older_ones():
    """A restored school's closing release that moves nothing (every exercise held back) would publish its
    history's last state, from before the backup: the district's figures would go back (30 pupils to 20).
    The release the district holds goes instead, renumbered and final: nothing new, nothing lost."""
    from preau.crdt.disclosure import Reason, ReleaseDecision
    from preau.node.release import _beside_lost_releases

    history = ReleaseHistory(CAMPAIGN.id)
    old = dataclasses.replace(_content(20, 3), final=True)
    lost = [_content(30, 2)]
    still = ReleaseDecision(True, "release 3: 0 exercises updated (final)", old, history,
                            reasons=(Reason("released", {"number": 3, "updated": 0}), Reason("final")))
    sent = _beside_lost_releases(still, history, lost).content
    assert (sent.release, sent.final, sent.cohort, sent.rows) == (3, True, 30, lost[0].rows)
    moved = dataclasses.replace(still, reasons=(Reason("released", {"number": 3, "updated": 2}),))
    assert _beside_lost_releases(moved, history, lost).release is False  # 20 against 30: counts move by 1..9
