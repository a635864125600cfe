"""bench/bench_tree.py's own checks at a small size: every node holds its children's documents and nothing
more, and the national node represents every school (the full run is 30,000 schools, by hand)."""
import importlib.util
import pathlib
import sys

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "bench_tree.py"


def _bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))  # the bench imports its neighbour _campaign by name, as when run
    spec = importlib.util.spec_from_file_location("bench_tree", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_simulated_tree_rolls_up_every_school_and_no_node_holds_a_grandchild(capsys, monkeypatch):
    bench = _bench(monkeypatch)
    run = bench.run_tree(130)  # 7 districts (the last one short), 1 académie, the national node
    lv = run.levels
    assert (lv["school"].nodes, lv["district"].nodes, lv["académie"].nodes, lv["national"].nodes) == (130, 7, 1, 1)
    assert lv["district"].held_docs_max == bench.SCHOOLS_PER_DISTRICT
    assert lv["académie"].held_docs_max == 7 and lv["national"].held_docs_max == 1
    # A node holds its children's documents only: the académie's share is the districts' bytes, not the schools'.
    assert lv["académie"].held_max == lv["district"].bytes_up < lv["school"].bytes_up
    assert bench.main(["--schools", "45"]) == 0
    assert "OK" in capsys.readouterr().out
