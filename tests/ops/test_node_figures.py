"""`kill -USR1 <pid>` makes a serving node log one "node figures: ..." line (docs/operations.md, "Watching nodes";
bench/bench_sync.py parses it with the same pattern as FIGURES here): sync sessions served, the database thread's
jobs, COMMITs and busy time, the event loop's longest stall. A real `preau serve` process, a real school syncing.

Without the handler, SIGUSR1's default action ends the process: no line, a dead node, the test fails.
"""
from __future__ import annotations

import re
import signal
import time

from cli_helpers import SCHOOL_UAI, init, invite, preau, start_district

FIGURES = re.compile(r"node figures: (\d+) sync session\(s\) served; database thread: (\d+) job\(s\), "
                     r"(\d+) commit\(s\), ([\d.]+) s busy; event loop: longest stall ([\d.]+) ms")


def _figures(served) -> tuple[int, int, int, float, float]:
    """Send SIGUSR1 and read the new line from the node's log (serve.log), as numbers."""
    log = served.data / "serve.log"
    seen = len(FIGURES.findall(log.read_text(errors="replace")))
    served.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while True:
        found = FIGURES.findall(log.read_text(errors="replace"))
        if len(found) > seen:
            sessions, jobs, commits, busy, stall = found[-1]
            return int(sessions), int(jobs), int(commits), float(busy), float(stall)
        assert served.proc.poll() is None, f"SIGUSR1 ended the node (no handler):\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no 'node figures' line 10 s after SIGUSR1:\n{log.read_text()}"
        time.sleep(0.05)


def test_sigusr1_logs_the_node_figures_and_they_count_a_school_syncing(tmp_path):
    district = start_district(tmp_path)
    try:
        sessions0, jobs0, commits0, busy0, stall0 = _figures(district)
        assert sessions0 == 0  # nothing served yet (the busy time and the stall are whatever start-up took)
        school = tmp_path / "school"
        init(school, "school", SCHOOL_UAI)
        assert preau("join", invite(district), "--data-dir", str(school)).code == 0
        r = preau("sync", "--data-dir", str(school))
        assert r.code == 0, r.err
        sessions, jobs, commits, busy, stall = _figures(district)
        assert sessions >= 1, "the school's sync session is not counted"
        assert jobs > jobs0 and commits > commits0, (jobs0, jobs, commits0, commits)
        assert busy >= busy0
        assert district.proc.poll() is None  # the node serves on
    finally:
        assert district.stop() == 0
