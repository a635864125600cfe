import dataclasses
import random

import pytest
from automerge.core import ROOT, ScalarType

from preau.crdt import crypto
from preau.crdt.docio import fork_at, load_document
from preau.crdt.disclosure import next_release
from preau.crdt.documents import read_release, write_campaign, write_release
from preau.crdt.errors import (
    BadSignatureError,
    CrdtUsageError,
    FinalRollbackError,
    MissingHeadsError,
    ReleaseDecodeError,
    RollbackError,
    SyncMessageError,
    WrongKindError,
    WrongSignerError,
)
from preau.crdt.schema import new_document
from preau.crdt.signing import MAX_CLOCK_SKEW, SignedRelease, clock_remark, sign_release, verify_release
from preau.crdt.statistics import CampaignStatistics

from crdt_fixtures import NOW, School, outcomes_for, seed, sync_pair, with_late_batch


@pytest.fixture
def school(campaign):
    s = School(1, campaign)
    pupils = [f"pupil-{i}" for i in range(20)]
    s.publish(outcomes_for(pupils, campaign, random.Random(1)))
    s.publish(with_late_batch(s.outcomes, campaign), now=NOW + 60)
    assert len(s.signed) == 2
    return s


def test_known_answer_signature():
    """Fixed key and fields give a fixed signature: the canonical encoding must never drift."""
    key = seed(42)
    sr = SignedRelease("release:c-1:abcd", "release", "c-1", crypto.public_key(key), 3, (b"\x01" * 32, b"\x02" * 32), 1_790_000_000, b"")
    sig = crypto.sign(key, crypto.RELEASE_SIGNATURE, sr.signed_bytes())
    assert sr.signed_bytes().hex() == (
        "01" "0010" + b"release:c-1:abcd".hex() + "0007" + b"release".hex() + "0003" + b"c-1".hex()
        + crypto.public_key(key).hex() + "0000000000000003" + "000000006ab13b80" + "0002" + "01" * 32 + "02" * 32
    )
    assert sig.hex() == (
        "51959f9dbc8821f23966262e3d82e0906af64a0f4f4d20887e5780258dba8d27"
        "d2e76df56225ac97a0b96464920288813b201c548d7ca99454e2d500d1371508"
    )
    assert crypto.verify(sr.owner, crypto.RELEASE_SIGNATURE, sr.signed_bytes(), sig)
    assert not crypto.verify(sr.owner, b"preau/v1/other-purpose", sr.signed_bytes(), sig)


def test_encode_decode_round_trip(school):
    s = school.signed[-1]
    assert SignedRelease.decode(s.encode()) == s
    assert s.heads == tuple(sorted(school.doc.get_heads()))


def test_good_release_verifies_and_reads_at_signed_heads(school):
    v = verify_release(school.doc.save(), school.signed[-1], school.owner, 1)
    assert v.release == 2
    assert v.content == read_release(school.doc)


def _assert_refused(exc_type, words, doc, signed, owner, last):
    before = doc.save()
    with pytest.raises(exc_type) as err:
        verify_release(doc, signed, owner, last)
    assert words in str(err.value)
    assert doc.save() == before
    return err.value


def test_forged_signature_is_refused(school):
    s = school.signed[-1]
    forged = dataclasses.replace(s, signature=bytes(64))
    _assert_refused(BadSignatureError, "not valid for its contents", school.doc, forged, school.owner, 0)
    tampered = dataclasses.replace(s, release=s.release + 5)
    _assert_refused(BadSignatureError, "altered or forged", school.doc, tampered, school.owner, 0)


def test_wrong_signer_is_refused(school, campaign):
    other = School(2, campaign)
    other.publish(outcomes_for([f"o{i}" for i in range(15)], campaign, random.Random(3)))
    # the other school's valid signature, presented for our pinned owner
    _assert_refused(WrongSignerError, "pinned owner", other.doc, other.signed[-1], school.owner, 0)
    # a third party re-signs our heads with its own key, claiming our owner
    s = school.signed[-1]
    resigned = dataclasses.replace(s, signature=crypto.sign(seed(99), crypto.RELEASE_SIGNATURE, s.signed_bytes()))
    _assert_refused(BadSignatureError, "not valid", school.doc, resigned, school.owner, 0)


def test_replayed_older_release_is_refused(school):
    _assert_refused(RollbackError, "not newer than release 2", school.doc, school.signed[0], school.owner, 2)
    _assert_refused(RollbackError, "replayed", school.doc, school.signed[1], school.owner, 2)


def test_missing_heads_are_refused(school, campaign):
    stale = load_document(school.doc.save())
    school.publish(with_late_batch(school.outcomes, campaign, prefix="later"), now=NOW + 120)
    _assert_refused(MissingHeadsError, "sync again from the owner", stale, school.signed[-1], school.owner, 2)


def test_wrong_kind_is_refused(school, campaign):
    district = seed(5)
    doc = new_document("campaign", crypto.public_key(district), campaign=campaign.id)
    write_campaign(doc, campaign)
    signed = sign_release(doc, district, now=NOW)
    _assert_refused(WrongKindError, "expected a release or aggregate release, got a signed campaign", doc, signed, crypto.public_key(district), 0)
    v = verify_release(doc, signed, crypto.public_key(district), 0, kinds=("campaign",))
    assert v.content == campaign


def test_relay_forged_change_is_ignored_at_signed_heads(school):
    reader = load_document(school.doc.save())
    relay = load_document(school.doc.save())
    with relay.transaction() as tx:  # a relay's own actor: a plain extra change
        ex = tx.get(ROOT, "exercises")[1]
        tx.put(tx.get(ex, "fr-mots")[1], "besoin", ScalarType.Int, 999)
    sync_pair(relay, reader)
    v = verify_release(reader, school.signed[-1], school.owner, 1)
    assert v.content == read_release(school.doc)
    assert v.content.row("fr-mots").get("besoin") != 999


def test_forged_change_under_owner_actor_does_not_block_next_release(school, campaign):
    reader = load_document(school.doc.save())
    v2 = verify_release(reader, school.signed[-1], school.owner, 1)
    relay = load_document(school.doc.save())
    relay.set_actor(school.doc.get_actor())  # forge under the owner's actor, with its next seq
    with relay.transaction() as tx:
        tx.put(ROOT, "cohort", ScalarType.Int, 999)
    sync_pair(relay, reader)
    school.publish(with_late_batch(school.outcomes, campaign, prefix="later"), now=NOW + 300)
    with pytest.raises(SyncMessageError, match="duplicate seq"):
        sync_pair(school.doc, reader)
    _assert_refused(MissingHeadsError, "fork at the last verified heads", reader, school.signed[-1], school.owner, 2)
    # recovery: drop everything past the last verified heads, sync again with fresh states
    reader = fork_at(reader, v2.heads)
    sync_pair(school.doc, reader)
    v3 = verify_release(reader, school.signed[-1], school.owner, 2)
    assert v3.release == 3 and v3.content.cohort == read_release(school.doc).cohort != 999


def test_owner_refuses_changes_into_its_own_document(school):
    from preau.crdt.errors import ForeignChangeError
    relay = load_document(school.doc.save())
    with relay.transaction() as tx:
        tx.put(ROOT, "cohort", ScalarType.Int, 999)
    before = school.doc.save()
    with pytest.raises(ForeignChangeError, match="Only the owner writes its documents"):
        sync_pair(relay, school.doc, accept_changes_b=False)
    assert school.doc.save() == before


def test_statistics_are_unchanged_by_a_refused_release(school):
    stats = CampaignStatistics(school.campaign.id)
    stats.add(verify_release(school.doc, school.signed[0], school.owner, 0))
    snapshot = stats.to_dict()
    with pytest.raises(RollbackError):
        stats.add(verify_release(school.doc, school.signed[0], school.owner, stats.release_of(school.owner)))
    assert stats.to_dict() == snapshot


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda b: b[:10], "truncated"),
        (lambda b: b"XXXX" + b[4:], "bad magic"),
        (lambda b: b[:4] + b"\x09" + b[5:], "format 9 is not supported"),
        (lambda b: b + b"\x00", "trailing bytes"),
    ],
)
def test_malformed_signed_release_bytes(school, mutate, words):
    with pytest.raises(ReleaseDecodeError, match=words):
        SignedRelease.decode(mutate(school.signed[-1].encode()))


def test_signing_needs_the_owner_key(school):
    with pytest.raises(CrdtUsageError, match="not the document's owner"):
        sign_release(school.doc, seed(77), now=NOW)
    with pytest.raises(CrdtUsageError, match="Unix seconds"):
        sign_release(school.doc, school.seed, now=1.5)


def _owner_signs(key, doc, **fields):
    """The owner's key signing a body it should not have (a bug or a stolen key): fields forced."""
    base = sign_release(doc, key, now=NOW)
    unsigned = dataclasses.replace(base, signature=b"", **fields)
    return dataclasses.replace(unsigned, signature=crypto.sign(key, crypto.RELEASE_SIGNATURE, unsigned.signed_bytes()))


def test_signature_whose_kind_does_not_match_the_document_is_refused(campaign):
    district = seed(5)
    doc = new_document("campaign", crypto.public_key(district), campaign=campaign.id)
    write_campaign(doc, campaign)
    lying = _owner_signs(district, doc, kind="release")
    _assert_refused(WrongKindError, "the document at the signed heads is a campaign", doc, lying, crypto.public_key(district), 0)


def test_signature_for_another_document_id_is_refused(school):
    from preau.crdt.errors import ReleaseError
    other_id = _owner_signs(school.seed, school.doc, doc_id="release:other:0000")
    err = _assert_refused(ReleaseError, "document id does not match", school.doc, other_id, school.owner, 0)
    assert err.code == "mismatch"
    wrong_number = _owner_signs(school.seed, school.doc, release=7)
    _assert_refused(ReleaseError, "holds release 2, not 7", school.doc, wrong_number, school.owner, 0)


def test_school_verifies_its_receipts_signed_by_the_district(school):
    from preau.crdt.documents import Receipt, append_receipt, latest_receipt

    district = seed(5)
    v = verify_release(school.doc, school.signed[-1], school.owner, 0)
    receipts = new_document("receipts", crypto.public_key(district), doc_id="receipts:d5:s1")
    append_receipt(receipts, Receipt(v.doc_id, v.release, v.heads, NOW), school=school.owner)
    signed = sign_release(receipts, district, now=NOW)
    got = verify_release(receipts.save(), signed, crypto.public_key(district), 0, kinds=("receipts",))
    assert got.content[-1].release == 2
    assert latest_receipt(receipts, v.doc_id).heads == v.heads


def test_a_non_final_release_after_a_final_one_is_refused(campaign):
    """What an older school, or one whose clock was put back, could send: the reader keeps the final one."""
    s = School(3, campaign)
    pupils = [f"p{i}" for i in range(20)]
    first = s.publish(outcomes_for(pupils, campaign, random.Random(1)), closing=True)
    assert first.content.final
    second = next_release(with_late_batch(s.outcomes, campaign), campaign, s.history, closing=True)
    write_release(s.doc, dataclasses.replace(second.content, final=False))
    reopened = sign_release(s.doc, s.seed, now=NOW + 60)
    with pytest.raises(FinalRollbackError, match="release 2 is not final, but release 1 already was") as err:
        verify_release(s.doc, reopened, s.owner, 1, last_final=True)
    assert err.value.code == "final_rollback"
    assert verify_release(s.doc, reopened, s.owner, 1).release == 2  # the rule is what refuses it


def test_a_release_signed_far_ahead_of_the_readers_clock_gets_a_remark_naming_both_clocks(school):
    signed = school.signed[-1]
    assert clock_remark(signed, now=signed.time) is None
    assert clock_remark(signed, now=signed.time - MAX_CLOCK_SKEW) is None
    remark = clock_remark(dataclasses.replace(signed, time=4_102_444_800), now=1_800_000_000)  # 2100-01-01
    assert remark.endswith("was signed at 2100-01-01 00:00 UTC by its sender's clock, 26648 days ahead of this "
                           "node's clock (2027-01-15 08:00 UTC): the sender's clock is wrong; set it right"), remark
    assert "(Unix seconds)" in clock_remark(dataclasses.replace(signed, time=2**53), now=0)


def test_a_signature_of_the_wrong_type_is_not_verified_and_checks_are_remembered_by_value():
    key = crypto.signing_key(bytes(range(32)))
    owner = crypto.public_key(key)
    sig = crypto.sign(key, crypto.RELEASE_SIGNATURE, b"counts")
    assert crypto.verify(owner, crypto.RELEASE_SIGNATURE, b"counts", sig)
    assert not crypto.verify(owner, crypto.RELEASE_SIGNATURE, b"counts", sig.hex())  # a str, not bytes
    assert not crypto.verify(owner, crypto.RELEASE_SIGNATURE, 6, sig)  # an int would have been six zero bytes
    assert not crypto.verify(owner, crypto.RELEASE_SIGNATURE, b"counts", bytes(64))
    forged = bytes([sig[0] ^ 1]) + sig[1:]
    for _ in range(2):  # asked again (the cache): the answers never change
        assert crypto.verify(owner, crypto.RELEASE_SIGNATURE, b"counts", sig)
        assert not crypto.verify(owner, crypto.RELEASE_SIGNATURE, b"counts", forged)
        assert not crypto.verify(owner, crypto.RELEASE_SIGNATURE, b"counted", sig)
