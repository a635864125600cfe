"""Real `preau` processes on loopback for the privacy attacks (issue 11), each protection switchable.

A protection is switched off for one process only, through the test-only hook
of `preau.node.testhooks`: `PREAU_TESTING=1` and `PREAU_TEST_UNPROTECT=<name>`
in that process's environment. Each attack runs twice: protected (the attacker
learns nothing) and with the hook (the attack succeeds, so the test can fail).
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import signal
import sqlite3
import subprocess
import time

from cli_helpers import MINIMAL, PASSWORD, PREAU, campaign_file, free_port, healthz, init, preau

DISTRICT_UAI = "0693344K"
SCHOOLS = {"a": "0751234J", "b": "0010856A"}


def hook(*names: str) -> dict:
    """The environment that switches these protections off in one process (nothing when names is empty)."""
    return {"PREAU_TESTING": "1", "PREAU_TEST_UNPROTECT": ",".join(names)} if names else {}


@dataclasses.dataclass
class Node:
    name: str
    data: pathlib.Path
    env: dict
    port: int = 0
    proc: subprocess.Popen | None = None

    def run(self, *args: str, check: bool = True, stdin: str = ""):
        words = 2 if args[0] in ("campaign",) else 1
        r = preau(*args[:words], "--data-dir", str(self.data), *args[words:], env=self.env, stdin=stdin, timeout=120)
        if check:
            assert r.code == 0, (self.name, args, r.out, r.err)
        return r

    def serve(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
        env.update({"PREAU_ARGON2_PROFILE": MINIMAL, **self.env})
        self.port = self.port or free_port()
        log = open(self.data / "serve.log", "ab")
        self.proc = subprocess.Popen([*PREAU, "serve", "--data-dir", str(self.data), "--port", str(self.port)], env=env,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 60
        while healthz(self.port) is None:
            assert self.proc.poll() is None, (self.data / "serve.log").read_text()
            assert time.monotonic() < deadline, "serve did not answer /healthz"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def query(self, sql: str, *args) -> list[sqlite3.Row]:
        conn = sqlite3.connect(f"file:{self.data / 'federation.db'}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    @property
    def key(self) -> bytes:
        from preau.node.keyfiles import read_key_file
        from preau.protocol.identity import Identity
        return Identity(read_key_file(self.data / "identity.key")).signing_key


def district(root: pathlib.Path, *off: str) -> Node:
    node = Node("district", root / "district", hook(*off))
    init(node.data, "district", DISTRICT_UAI)
    node.port = free_port()
    with open(node.data / "preau.toml", "a") as f:
        f.write(f"port = {node.port}\nsync_interval = 3600\n")
    return node


def school(root: pathlib.Path, name: str, dist: Node, *off: str) -> Node:
    node = Node(name, root / name, hook(*off))
    init(node.data, "school", SCHOOLS[name])
    invitation = preau("invite", "--uai", SCHOOLS[name], "--allow-loopback", "--data-dir", str(dist.data),
                       env=dist.env).out.strip()
    node.run("join", invitation)
    return node


def campaign_with(tmp: pathlib.Path, **policy) -> pathlib.Path:
    """The bundled Début de CP, open now, with these policy settings written in its [policy] table."""
    path = campaign_file(tmp)
    text = path.read_text(encoding="utf-8")
    for key, value in policy.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
    path.write_text(text, encoding="utf-8")
    return path


__all__ = ["Node", "PASSWORD", "campaign_with", "district", "hook", "school"]


def sign_withheld_release(node: Node, campaign: str, number: int, *, inserts: int = 0) -> str:
    """The school signs release `number` of its own release document (withheld: no counts), as a head
    teacher's approval does, its history first gaining `inserts` list inserts in one change (what a hostile
    school can write into its own document). The document's id."""
    import automerge.core as am

    from preau.crdt.campaign import Policy
    from preau.crdt.documents import ReleaseContent, write_release
    from preau.crdt.schema import document_id, new_document
    from preau.node.runtime import Node as Running

    running = Running(node.data, role="school")
    try:
        fed = running.federation
        doc_id = document_id("release", fed.key, campaign)
        doc = fed.working_copy(doc_id) or new_document("release", fed.key, campaign=campaign, doc_id=doc_id)
        if inserts:
            with doc.transaction() as tx:
                padding = tx.put_object(am.ROOT, f"padding{number}", am.ObjType.List)
                for i in range(inserts):
                    tx.insert(padding, i, am.ScalarType.Null, None)
        write_release(doc, ReleaseContent(campaign, number, "withheld", "small_cohort", Policy()))
        fed._publish(doc)
        return doc_id
    finally:
        running.close()

