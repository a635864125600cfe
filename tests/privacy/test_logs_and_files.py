"""Issue 11, item 7: nothing about a pupil in the box's logs or file modes.

A school with planted pupil names serves its pages (a real `preau serve`); a
teacher opens each pupil's page and saves results of every group through the
grid's JSON endpoint. Protected, the access log holds route patterns and
statuses only: no pupil id, no name, no response size. With the hook
`access_log`, the same log carries pupil ids and sizes that follow the group
entered. Data and key files are 0600 (0644 with the hook `file_modes`), and a
file loosened by hand is tightened again when the node starts.
"""
import http.cookiejar
import json
import os
import re
import stat
import urllib.request

import pytest

from cli_helpers import PASSWORD, campaign_file, init
from privacy_world import Node, hook

pytestmark = pytest.mark.slow

PLANTED = [("Zéphyrine", "Quenouille"), ("Anatole", "Brindosier"), ("Philomène", "Craquelin")]
FILES = ("preau.db", "federation.db", "identity.key", "storage.key")


def _school_with_pupils(node: Node):
    from preau.node.campaign_file import load_campaign_file
    from preau.node.records.store import Store
    from preau.node.records.vault import ARGON2

    campaign = load_campaign_file(campaign_file(node.data.parent))
    store = Store.open(node.data, cost=ARGON2["minimal"])
    try:
        s = store.login("admin", PASSWORD)
        store.put_campaign(s, campaign)
        c = store.create_class(s, "CP A", "CP", campaign.school_year)
        pupils = store.add_pupils(s, c.id, PLANTED)
        s.logout()
    finally:
        store.close()
    return campaign, c.id, [p.id for p in pupils]


def _browser(base: str):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def get(path: str) -> str:
        with opener.open(base + path, timeout=30) as r:
            return r.read().decode()

    def post(path: str, data: bytes, headers: dict) -> bytes:
        req = urllib.request.Request(base + path, data=data, headers=headers, method="POST")
        with opener.open(req, timeout=30) as r:
            return r.read()

    token = re.search(r'name="csrf_token" value="([^"]+)"', get("/login")).group(1)
    post("/login", urllib.parse.urlencode({"username": "admin", "password": PASSWORD, "csrf_token": token}).encode(),
         {"Content-Type": "application/x-www-form-urlencoded"})
    return get, post


@pytest.mark.parametrize("protection", ["on", "off"])
def test_the_access_log_and_the_file_modes_say_nothing_about_a_pupil(tmp_path, protection):
    off = ("access_log", "file_modes") if protection == "off" else ()
    node = Node("school", tmp_path / "school", hook(*off))
    init(node.data, "school", "0751234J")
    if off:  # the files as a Préau without the protection created them (0644)
        for name in FILES:
            os.chmod(node.data / name, 0o644)
    campaign, class_id, pupil_ids = _school_with_pupils(node)
    exercise = campaign.exercises[0]
    node.serve()
    try:
        get, post = _browser(f"http://127.0.0.1:{node.port}")
        for pid in pupil_ids:
            page = get(f"/classes/{class_id}/pupils/{pid}")
            assert PLANTED[pupil_ids.index(pid)][0] in page  # the teacher does see the name
        grid = f"/classes/{class_id}/campaigns/{campaign.id}/exercises/{exercise.id}"
        token = re.search(r'name="csrf_token" value="([^"]+)"', get(grid)).group(1)
        width = exercise.items
        rows = [["0"] * width, ["1"] * (width // 2) + ["0"] * (width - width // 2), ["1"] * width]  # besoin .. seuil2
        for pid, cells in zip(pupil_ids, rows):
            reply = post(grid + "/row", json.dumps({"pupil": pid, "cells": cells}).encode(),
                         {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token})
            assert json.loads(reply)["ok"]
    finally:
        node.stop()
    log = (node.data / "serve.log").read_text(encoding="utf-8")
    saves = [line for line in log.splitlines() if "/row" in line and "POST" in line]
    assert len(saves) == 3
    leaked_ids = [pid for pid in pupil_ids if pid in log]
    names = [n for pair in PLANTED for n in pair if n in log]
    sizes = [line.split()[-2] for line in saves if re.search(r" \d+ [\d.]+ms$", line)]
    if protection == "on":
        assert leaked_ids == [] and names == [] and sizes == []
        assert class_id not in log
        assert all(line.rstrip().endswith(" 200") for line in saves)  # route pattern and status only
        for name in FILES:
            assert stat.S_IMODE((node.data / name).stat().st_mode) == 0o600, name
        # Loosened by hand (a copy, a restore tool): the node tightens it again when it starts.
        os.chmod(node.data / "preau.db", 0o644)
        node.run("status")
        assert stat.S_IMODE((node.data / "preau.db").stat().st_mode) == 0o600
    else:
        assert leaked_ids == pupil_ids  # every pupil id opened or saved is in the log
        assert len(set(sizes)) == 3  # a response size per group entered: the group can be read off the log
        assert stat.S_IMODE((node.data / "preau.db").stat().st_mode) == 0o644
        node.run("status")
        assert stat.S_IMODE((node.data / "preau.db").stat().st_mode) == 0o644  # and nothing checks it
    assert names == []  # names never went into a path
