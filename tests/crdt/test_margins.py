"""Margins across rows (issue 11, item 6): a total hidden by complementary suppression stays hidden.

Rows of one table mostly count the same pupils, so a reader takes another
row's total (or the sum of a row whose cells are all shown) for the total a
row hides. `hide_guessed_totals` hides whatever gives that total away when the
guess would recompute a hidden cell; without it the cells come back.
"""
from preau.crdt.disclosure import hide_guessed_totals, recomputable_cells, suppress_rows
from preau.crdt.documents import Row

N = 10


def _guesses(shown, row):
    return {o.total if isinstance(o.total, int) else sum(o.cells) for o in shown if o is not row
            and (isinstance(o.total, int) or all(isinstance(v, int) for v in o.cells))}


def test_a_total_hidden_by_suppression_is_not_given_back_by_another_row():
    rows = [Row("x", (10, 10, 0, 0, 0), 20),   # two small cells the total pins: suppression hides the total
            Row("y", (20, 0, 0, 0, 0), 20),    # every cell shown: they add up to 20
            Row("z", (12, 8, 0, 0, 0), 20),    # a total shown after complementary suppression
            Row("w", (30, 15, 0, 0, 0), 45)]   # another total: nothing to hide
    shown, _ = suppress_rows(rows, N)
    assert shown[0].total == "x"
    before = _guesses(shown, shown[0])
    assert 20 in before and recomputable_cells(Row("x", shown[0].cells, 20), N)  # the attack, unprotected

    out = hide_guessed_totals(rows, shown, N)
    assert 20 not in _guesses(out, out[0])
    assert out[1] == Row("y", ("x", 0, 0, 0, 0), "x") and out[2].total == "x"
    assert out[3] == shown[3]  # rows that give nothing away are left as they were
    for row in out:  # and nothing else is recomputable, with or without the guessed totals
        assert not recomputable_cells(row, N)
