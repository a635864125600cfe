from preau.crdt.schema import new_document, read_document, write_fields

OWNER = b"\x05" * 32


def _receipt(n: int, heads: list[str]) -> dict:
    return {"doc_id": f"release:x:{n}", "release": n, "heads": heads, "time": n}


def test_list_writes_touch_only_items_that_differ():
    """Rewriting a list with equal items adds no change (history grows with every overwrite)."""
    doc = new_document("receipts", OWNER, campaign="c-1")
    first = [_receipt(1, ["a" * 64, "b" * 64]), _receipt(2, [])]
    write_fields(doc, {"release": 1, "school": "c" * 64, "receipts": first})
    heads = doc.get_heads()
    write_fields(doc, {"release": 1, "school": "c" * 64, "receipts": first})
    assert doc.get_heads() == heads
    for receipts in ([_receipt(1, ["b" * 64]), _receipt(2, []), _receipt(3, ["d" * 64])], [_receipt(3, [])], []):
        write_fields(doc, {"receipts": receipts})
        assert read_document(doc)[1]["receipts"] == receipts
