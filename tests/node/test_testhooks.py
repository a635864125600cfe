"""The test-only switches of `preau.node.testhooks` do nothing unless the environment says PREAU_TESTING=1.

A real node whose environment carries PREAU_TEST_UNPROTECT (copied from a test
script, say) keeps every protection. Each test here fails if the gate on
PREAU_TESTING is dropped; the last ones show the switches themselves work, so
the first ones do not pass only because a name is misspelt.
"""
from __future__ import annotations

import logging
import os

import pytest

from preau.crdt import campaign, disclosure, statistics
from preau.node import testhooks
from preau.node.database import check_private_files, private_mode

ALL = ",".join(testhooks.NAMES)


@pytest.fixture(autouse=True)
def pure_globals(monkeypatch):
    """apply_at_start changes module globals of the pure layer: put them back after each test."""
    monkeypatch.setattr(campaign, "FLOOR", campaign.FLOOR)
    monkeypatch.setattr(statistics, "ONE_AGGREGATE", statistics.ONE_AGGREGATE)
    monkeypatch.setattr(disclosure, "MARGINS", disclosure.MARGINS)
    monkeypatch.setattr(disclosure, "FLOOR_ON_PUBLISHED", disclosure.FLOOR_ON_PUBLISHED)
    monkeypatch.setattr(disclosure, "COUNT_BATCHING", disclosure.COUNT_BATCHING)


@pytest.mark.parametrize("testing", [None, "0", "", "true", "yes", "1 "])
def test_no_switch_works_without_preau_testing_1(monkeypatch, caplog, tmp_path, testing):
    monkeypatch.setenv("PREAU_TEST_UNPROTECT", ALL)
    if testing is None:
        monkeypatch.delenv("PREAU_TESTING", raising=False)
    else:
        monkeypatch.setenv("PREAU_TESTING", testing)
    floor = campaign.FLOOR
    assert not any(testhooks.unprotected(n) for n in testhooks.NAMES)
    with caplog.at_level(logging.WARNING, logger="preau.node"):
        assert testhooks.apply_at_start() == []
    assert campaign.FLOOR == floor == campaign.Policy(10, 10, 10)
    assert statistics.ONE_AGGREGATE is True
    assert disclosure.MARGINS is True
    assert disclosure.FLOOR_ON_PUBLISHED is True
    assert disclosure.COUNT_BATCHING is True
    assert "TEST RUN" not in caplog.text
    assert private_mode() == 0o600
    loose = tmp_path / "identity.key"
    loose.write_bytes(b"k")
    os.chmod(loose, 0o644)
    assert check_private_files(tmp_path) == ["identity.key"]
    assert loose.stat().st_mode & 0o777 == 0o600


def test_with_preau_testing_1_the_named_switches_work(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("PREAU_TESTING", "1")
    monkeypatch.setenv("PREAU_TEST_UNPROTECT", "floor,one_aggregate,margins,file_modes,published_cohort,count_batching")
    on = ["floor", "one_aggregate", "margins", "file_modes", "published_cohort", "count_batching"]
    assert [n for n in testhooks.NAMES if testhooks.unprotected(n)] == on
    with caplog.at_level(logging.WARNING, logger="preau.node"):
        assert testhooks.apply_at_start() == on
    assert campaign.FLOOR == campaign.Policy(1, 1, 0)
    assert statistics.ONE_AGGREGATE is False
    assert disclosure.MARGINS is False
    assert disclosure.FLOOR_ON_PUBLISHED is False
    assert disclosure.COUNT_BATCHING is False
    assert "TEST RUN: privacy protections switched off" in caplog.text
    assert private_mode() == 0o644
    loose = tmp_path / "identity.key"
    loose.write_bytes(b"k")
    os.chmod(loose, 0o644)
    assert check_private_files(tmp_path) == []
    assert loose.stat().st_mode & 0o777 == 0o644


def test_an_unknown_protection_name_in_the_code_is_refused(monkeypatch):
    monkeypatch.setenv("PREAU_TESTING", "1")
    with pytest.raises(ValueError, match="unknown protection"):
        testhooks.unprotected("flor")


@pytest.mark.parametrize("testing", [None, "0", "", "true", "1 "])
def test_the_wire_capture_is_off_without_preau_testing_1(monkeypatch, testing):
    monkeypatch.setenv("PREAU_TEST_CAPTURE_WIRE", "1")
    if testing is None:
        monkeypatch.delenv("PREAU_TESTING", raising=False)
    else:
        monkeypatch.setenv("PREAU_TESTING", testing)
    assert not testhooks.capturing_wire()


def test_the_wire_capture_appends_records_in_a_private_file(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("PREAU_TESTING", "1")
    monkeypatch.setenv("PREAU_TEST_CAPTURE_WIRE", "1")
    assert testhooks.capturing_wire()
    with caplog.at_level(logging.WARNING, logger="preau.node"):
        testhooks.apply_at_start()
    assert "TEST RUN: every protocol message received" in caplog.text
    testhooks.capture_wire(tmp_path, [(0x50, b"one"), (3, b"")])
    testhooks.capture_wire(tmp_path, [])
    testhooks.capture_wire(tmp_path, [(4, b"two")])
    path = tmp_path / testhooks.WIRE_CAPTURE
    assert testhooks.read_wire_capture(path) == [(0x50, b"one"), (3, b""), (4, b"two")]
    assert path.stat().st_mode & 0o777 == 0o600
