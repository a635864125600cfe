"""`make test` on a machine without Chromium: browser tests skip and say so; under CI=true they fail."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow


def _pytest(tmp_path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "PREAU_TEST_CHROMIUM")}
    environ.update(PREAU_TEST_CHROMIUM=str(tmp_path / "no-chromium-here"), **env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/node/web/test_web_browser.py::test_grid_works_without_javascript"],
                          cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)


def test_without_chromium_browser_tests_skip_with_a_summary_line(tmp_path):
    run = _pytest(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout, run.stdout
    assert ("browser tests: 1 did not run, because there is no Chromium at "
            f"{tmp_path / 'no-chromium-here'}. Install it with `sudo apt-get install chromium`") in run.stdout, run.stdout


def test_under_ci_a_missing_chromium_is_a_failure(tmp_path):
    run = _pytest(tmp_path, CI="true")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 error" in run.stdout and "is missing: install Debian's chromium" in run.stdout, run.stdout
    assert "did not run" not in run.stdout
