import pytest
from automerge.core import ROOT, ScalarType

from preau.crdt.campaign import Policy, parse_campaign
from preau.crdt.docio import load_document
from preau.crdt.documents import (
    Receipt,
    ReleaseContent,
    Row,
    append_receipt,
    latest_receipt,
    read_campaign,
    read_receipts,
    read_release,
    write_campaign,
    write_release,
)
from preau.crdt.errors import DocumentError, SchemaError, WrongKindError
from preau.crdt.schema import read_header, new_document, write_fields

from crdt_fixtures import CAMPAIGN

OWNER = bytes(range(32))


def _content(n=1, **kw):
    rows = (Row.from_counts("fr-mots", {"besoin": 3, "fragile": 4, "seuil2": 12}),)
    return ReleaseContent("2026-debut-cp", n, "published", "", Policy(), rows, 19, **kw)


def test_header_has_id_kind_schema_owner():
    doc = new_document("release", OWNER, campaign="2026-debut-cp")
    h = read_header(doc)
    assert (h.kind, h.schema, h.owner, h.campaign, h.release) == ("release", 1, OWNER, "2026-debut-cp", 0)
    assert h.id.startswith("release:2026-debut-cp:")


def test_release_round_trips_through_bytes_and_withheld_clears_counts():
    doc = new_document("release", OWNER, campaign="2026-debut-cp")
    write_release(doc, _content())
    assert read_release(load_document(doc.save())) == _content()
    heads = doc.get_heads()
    withheld = ReleaseContent("2026-debut-cp", 2, "withheld", "small_cohort", Policy(), final=True)
    write_release(doc, withheld)
    assert read_release(doc) == withheld
    assert read_release(doc, heads) == _content()


@pytest.mark.parametrize(
    "data, words",
    [
        ({"pupils": ["Léa Martin"]}, "pupils: is not a declared field"),
        ({"exercises": {"fr-mots": {"besoin": 1, "name": "Léa"}}}, "exercises.fr-mots.name: is not a declared field"),
        ({"exercises": {"Léa Martin": {"besoin": 1}}}, "key 'Léa Martin' does not have the declared form"),
        ({"cohort": "Léa"}, "cohort: must be a whole number"),
        ({"reason": "x" * 500}, "reason: must be a text of at most 200"),
        ({"exercises": {"fr-mots": {"besoin": "≤10"}}}, "exercises.fr-mots.besoin: must be a whole number"),
    ],
)
def test_writer_accepts_only_declared_fields_and_writes_nothing_otherwise(data, words):
    doc = new_document("release", OWNER, campaign="2026-debut-cp")
    write_release(doc, _content())
    before = doc.save()
    with pytest.raises(SchemaError) as err:
        write_fields(doc, data)
    assert words in str(err.value)
    assert doc.save() == before


def test_aggregate_cells_may_be_markers_but_release_cells_may_not():
    agg = new_document("aggregate", OWNER, campaign="2026-debut-cp")
    row = Row("fr-mots", ("≤10", "x", 40, 0, 0), 55)
    content = ReleaseContent("2026-debut-cp", 1, "published", "", Policy(), (row,), 55, scope="district",
                             schools_contributing=3, schools_withheld=1)
    write_release(agg, content)
    assert read_release(agg) == content
    school = new_document("release", OWNER, campaign="2026-debut-cp")
    with pytest.raises(SchemaError):
        write_release(school, content)


def test_writer_only_writes_what_changed():
    doc = new_document("release", OWNER, campaign="2026-debut-cp")
    write_release(doc, _content())
    n = len(doc.get_changes([]))
    write_release(doc, _content())
    assert len(doc.get_changes([])) == n  # nothing differed, so no change at all
    assert read_release(doc) == _content()


def test_campaign_document_round_trips_and_thresholds_update_later():
    data = {**CAMPAIGN, "exercises": [dict(e) for e in CAMPAIGN["exercises"]]}
    data["exercises"][0].pop("thresholds")
    first = parse_campaign(data)
    doc = new_document("campaign", OWNER, campaign=first.id)
    assert write_campaign(doc, first) == 1
    assert write_campaign(doc, first) == 1  # unchanged: same version
    assert read_campaign(load_document(doc.save())) == first
    v1 = doc.get_heads()
    updated = parse_campaign(CAMPAIGN)
    assert write_campaign(doc, updated) == 2
    assert read_campaign(doc).exercise("fr-mots").thresholds == (6, 10)
    assert read_campaign(doc, v1) == first


def test_campaign_document_with_invalid_definition_is_refused():
    doc = new_document("campaign", OWNER, campaign="2026-debut-cp")
    write_campaign(doc, parse_campaign(CAMPAIGN))
    with doc.transaction() as tx:  # a writer that bypassed our schema
        defn = tx.get(ROOT, "definition")[1]
        tx.put(defn, "level", ScalarType.Str, "CP9")
    with pytest.raises(DocumentError, match="level: must be one of"):
        read_campaign(doc)


def test_receipts_append_and_school_reads_its_latest():
    school = bytes([9]) * 32
    doc = new_document("receipts", OWNER, campaign="", doc_id="receipts:district:school9")
    for n in (1, 2, 3):
        append_receipt(doc, Receipt("release:2026-debut-cp:0909", n, (bytes([n]) * 32,), 1000 + n), school=school)
    again = load_document(doc.save())
    assert [r.release for r in read_receipts(again)] == [1, 2, 3]
    assert latest_receipt(again, "release:2026-debut-cp:0909") == Receipt("release:2026-debut-cp:0909", 3, (bytes([3]) * 32,), 1003)
    assert latest_receipt(again, "release:other:0000") is None
    with pytest.raises(SchemaError, match="another school"):
        append_receipt(doc, Receipt("release:x:1", 1, (b"\x01" * 32,), 1), school=bytes([8]) * 32)


def test_readers_refuse_the_wrong_kind():
    doc = new_document("receipts", OWNER, doc_id="receipts:a:b")
    with pytest.raises(WrongKindError, match="this is a receipts document, not a release"):
        read_release(doc)
    with pytest.raises(WrongKindError, match="not a campaign definition"):
        read_campaign(doc)


def test_a_document_that_is_not_preau_is_refused_with_a_clear_message():
    from automerge.core import Document
    doc = Document(actor_id=b"\x01" * 16)
    with doc.transaction() as tx:
        tx.put(ROOT, "title", ScalarType.Str, "shopping list")
    with pytest.raises(DocumentError, match="not a Préau document"):
        read_release(doc)


def test_counts_written_by_javascript_as_floats_are_read_as_ints():
    doc = new_document("release", OWNER, campaign="2026-debut-cp")
    write_release(doc, _content())
    with doc.transaction() as tx:
        row = tx.get(tx.get(ROOT, "exercises")[1], "fr-mots")[1]
        tx.put(row, "besoin", ScalarType.F64, 3.0)
    assert read_release(doc) == _content()
    with doc.transaction() as tx:
        row = tx.get(tx.get(ROOT, "exercises")[1], "fr-mots")[1]
        tx.put(row, "besoin", ScalarType.F64, 2.5)
    with pytest.raises(DocumentError, match="exercises.fr-mots.besoin: must be a whole number"):
        read_release(doc)


def test_campaign_document_helper():
    from preau.crdt.documents import campaign_document
    c = parse_campaign(CAMPAIGN)
    doc = campaign_document(c, OWNER)
    assert read_header(doc).release == 1 and read_campaign(doc) == c


def test_writer_refuses_to_go_back_to_an_older_release_number():
    doc = new_document("release", OWNER, campaign="2026-debut-cp")
    write_release(doc, _content(2))
    with pytest.raises(SchemaError, match="release 1 is older than release 2"):
        write_release(doc, _content(1))
    assert read_release(doc) == _content(2)
