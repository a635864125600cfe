import pytest
from automerge.core import SyncState

from preau.crdt import docio
from preau.crdt.docio import fork_at, has_heads, load_document, merge_document, receive_sync_message, save_document
from preau.crdt.errors import DocumentError, SyncMessageError
from preau.crdt.schema import new_document, write_fields

from crdt_fixtures import fix_checksum

OWNER = b"\x03" * 32


def test_load_document_gives_typed_errors():
    with pytest.raises(DocumentError, match="not a valid Automerge document: unable to parse chunk"):
        load_document(b"\x00" * 10)
    with pytest.raises(DocumentError, match="must be given as bytes"):
        load_document("text")
    assert load_document(b"").get_heads() == []


def test_a_rust_panic_in_load_becomes_a_document_error():
    """A re-sealed mutation that makes Automerge 0.5.7 panic (found by tests/crdt/test_fuzz.py)."""
    import random

    doc = new_document("release", OWNER, campaign="c-1")
    write_fields(doc, {"release": 1, "cohort": 12, "reason": "x"})
    base = doc.save()
    rng = random.Random(0)
    panicked = 0
    for _ in range(3000):
        data = bytearray(base)
        i = rng.randrange(9, len(data))
        data[i] = rng.randrange(256)
        data = fix_checksum(bytes(data))
        try:
            load_document(data)
        except DocumentError as exc:
            panicked += "crashed" in str(exc)
    assert panicked >= 1


def test_sync_message_errors_are_typed_and_change_nothing():
    doc = new_document("release", OWNER, campaign="c-1")
    before = save_document(doc)
    with pytest.raises(SyncMessageError, match="not valid"):
        receive_sync_message(doc, SyncState(), b"\x42\x00")
    with pytest.raises(SyncMessageError, match="as bytes"):
        receive_sync_message(doc, SyncState(), None)
    assert save_document(doc) == before


def test_fork_at_and_has_heads():
    doc = new_document("release", OWNER, campaign="c-1")
    h1 = doc.get_heads()
    write_fields(doc, {"release": 1})
    assert has_heads(doc, h1) and not has_heads(doc, [b"\x00" * 32])
    assert fork_at(doc, h1).get_heads() == h1
    with pytest.raises(DocumentError, match="does not hold"):
        fork_at(doc, [b"\x00" * 32])


def test_merge_document_refuses_bad_bytes():
    doc = new_document("release", OWNER, campaign="c-1")
    with pytest.raises(DocumentError):
        merge_document(doc, b"garbage")


def test_documents_and_sync_messages_over_the_cap_are_refused(monkeypatch):
    """Valid bytes one past the cap are refused before Automerge sees them; at the cap they load."""
    doc = new_document("release", OWNER, campaign="c-1")
    saved = save_document(doc)
    message = docio.generate_sync_message(doc, SyncState())
    monkeypatch.setattr(docio, "MAX_DOCUMENT_BYTES", len(saved) - 1)
    monkeypatch.setattr(docio, "MAX_MESSAGE_BYTES", len(message) - 1)
    with pytest.raises(DocumentError, match=f"the document is larger than {len(saved) - 1} bytes; refusing to load it"):
        load_document(saved)
    with pytest.raises(SyncMessageError, match=f"the sync message is larger than {len(message) - 1} bytes"):
        receive_sync_message(new_document("release", OWNER, campaign="c-1"), SyncState(), message)
    monkeypatch.setattr(docio, "MAX_DOCUMENT_BYTES", len(saved))
    monkeypatch.setattr(docio, "MAX_MESSAGE_BYTES", len(message))
    assert load_document(saved).get_heads() == doc.get_heads()
    receive_sync_message(new_document("release", OWNER, campaign="c-1"), SyncState(), message)
