"""A writer whose copy is older than its reader's (a school restored from a backup made before its last release).

Under the actor derived from (owner, doc id), the restored writer's next change takes a sequence number the
reader holds for another change: the reader refuses it ("duplicate seq") at every sync. Under a fresh actor
(`write_fields(..., actor=...)`, as the node passes) it merges beside it. Either way the reader never takes
another content under a release number it has accepted.
"""
import dataclasses
import random

import pytest

from preau.crdt.docio import load_document
from preau.crdt.documents import read_release, write_release
from preau.crdt.errors import RollbackError, SchemaError, SyncMessageError
from preau.crdt.schema import new_document
from preau.crdt.signing import sign_release, verify_release

from crdt_fixtures import NOW, School, outcomes_for, sync_pair, with_late_batch


def _restored(campaign):
    """A school at release 1 (its backup), then release 2 the reader holds, then the restored copy."""
    s = School(1, campaign)
    first = outcomes_for([f"pupil-{i}" for i in range(20)], campaign, random.Random(1))
    s.publish(first)
    backup = s.doc.save()
    s.publish(with_late_batch(first, campaign), now=NOW + 60)
    assert len(s.signed) == 2
    reader = load_document(s.doc.save())
    verify_release(reader, s.signed[-1], s.owner, 1)
    return s, load_document(backup), reader


def _renumbered(s, number):
    return dataclasses.replace(read_release(s.doc), release=number)


def test_under_the_derived_actor_a_restored_writer_is_refused_for_ever(campaign):
    s, restored, reader = _restored(campaign)
    write_release(restored, _renumbered(s, 3))  # no actor given: the derived one, as before
    with pytest.raises(SyncMessageError, match="duplicate seq"):
        sync_pair(restored, reader)


def test_under_a_fresh_actor_a_restored_writer_merges_and_its_next_number_is_verified(campaign):
    s, restored, reader = _restored(campaign)
    content = _renumbered(s, 3)
    write_release(restored, content, actor=b"\x01" * 16)
    signed = sign_release(restored, s.seed, now=NOW + 120)
    sync_pair(restored, reader)
    v = verify_release(reader, signed, s.owner, 2)
    assert v.release == 3 and v.content == content  # read at the signed heads, beside the release 2 it held


def test_a_number_already_accepted_is_never_taken_again(campaign):
    s, restored, reader = _restored(campaign)
    other = dataclasses.replace(read_release(s.doc), cohort=read_release(s.doc).cohort + 1)  # still number 2
    write_release(restored, other, actor=b"\x02" * 16)
    signed = sign_release(restored, s.seed, now=NOW + 120)
    sync_pair(restored, reader)
    with pytest.raises(RollbackError, match="not newer than release 2"):
        verify_release(reader, signed, s.owner, 2)


def test_an_actor_must_be_bytes_of_automerge_length(campaign):
    s, restored, _ = _restored(campaign)
    doc = new_document("release", s.owner, campaign=campaign.id, actor=b"\x03" * 16)
    assert doc.get_actor() == b"\x03" * 16
    before = restored.save()
    with pytest.raises(SchemaError, match="actor"):
        write_release(restored, _renumbered(s, 3), actor=b"")
    assert restored.save() == before
