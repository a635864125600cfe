"""Helpers of the CLI tests: run the real `preau` entry point, make and serve nodes on loopback ports."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from preau.node.errors import EXIT_USER

MINIMAL = "minimal"
PASSWORD = "demo-preau-2026"  # the demo's password, so the demo's class filler can log in
DISTRICT_UAI = "0693344K"
SCHOOL_UAI = "0751234J"
OTHER_UAI = "0010856A"
RECOVERY = re.compile(r"^  ([A-Z2-7]{5}(?:-[A-Z2-7]{5})+)$", re.M)


def _entry_point() -> list[str]:
    script = pathlib.Path(sys.executable).parent / "preau"
    return [str(script)] if script.exists() else [sys.executable, "-m", "preau.cli.main"]


PREAU = _entry_point()


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str


def preau(*args: str, password: str | None = PASSWORD, env: dict | None = None, stdin: str = "",
          timeout: float = 60) -> Result:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_") and k not in ("LC_ALL", "LC_MESSAGES")}
    base["LANG"] = "C.UTF-8"  # English unless a test asks for French (env={"LANG": "fr_FR.UTF-8"} or --lang fr)
    base["PREAU_ARGON2_PROFILE"] = MINIMAL
    if password is not None:
        base["PREAU_PASSWORD"] = password
    base.update(env or {})
    proc = subprocess.run([*PREAU, *args], capture_output=True, text=True, input=stdin, env=base, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def user_error(r: Result, text: str, code: int = EXIT_USER) -> None:
    """One line on stderr, starting 'preau: error:', containing `text`; no traceback; the given exit code."""
    assert r.code == code, (r.code, r.err)
    assert "Traceback" not in r.err, r.err
    assert r.err.startswith("preau: error: ") and r.err.count("\n") == 1, r.err
    assert text in r.err, r.err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


@dataclasses.dataclass
class Served:
    data: pathlib.Path
    port: int
    proc: subprocess.Popen
    recovery: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def init(data: pathlib.Path, role: str, uai: str, *extra: str) -> str:
    r = preau("init", "--role", role, "--uai", uai, "--data-dir", str(data), *extra)
    assert r.code == 0, r.err
    return RECOVERY.search(r.out).group(1)


def serve(data: pathlib.Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    env["PREAU_ARGON2_PROFILE"] = MINIMAL
    log = open(data / "serve.log", "ab")
    proc = subprocess.Popen([*PREAU, "serve", "--data-dir", str(data), "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 30
    while healthz(port) is None:
        assert proc.poll() is None, (data / "serve.log").read_text()
        assert time.monotonic() < deadline, "serve did not answer /healthz in 30 s"
        time.sleep(0.1)
    return proc


def start_district(root: pathlib.Path, name: str = "district") -> Served:
    data = root / name
    recovery = init(data, "district", DISTRICT_UAI)
    port = free_port()
    # The port lives in the node's settings file, as an administrator would set it, so invitations name it.
    with open(data / "preau.toml", "a") as f:
        f.write(f"port = {port}\nsync_interval = 30\nbackoff_max = 60\n")
    return Served(data, port, serve(data, port), recovery)


def invite(district: Served, uai: str = SCHOOL_UAI, *extra: str) -> str:
    r = preau("invite", "--uai", uai, "--allow-loopback", "--data-dir", str(district.data), *extra)
    assert r.code == 0, r.err
    return r.out.strip()


def campaign_file(tmp: pathlib.Path) -> pathlib.Path:
    """The bundled Début de CP sample, open now (the sample's own dates are in the past)."""
    from preau.node.campaign_file import resolve_campaign_path

    today = dt.date.today()
    text = resolve_campaign_path("debut-cp").read_text(encoding="utf-8")
    text = re.sub(r'^opens = .*$', f'opens = "{today - dt.timedelta(days=7)}"', text, count=1, flags=re.M)
    text = re.sub(r'^closes = .*$', f'closes = "{today + dt.timedelta(days=30)}"', text, count=1, flags=re.M)
    path = tmp / "debut-cp-now.toml"
    path.write_text(text, encoding="utf-8")
    return path


def fill(data: pathlib.Path, pupils: int = 20) -> None:
    """Put one synthetic class with results into a school (as the demo does), in this process."""
    from preau.node.demo.demo import _fill
    from preau.node.demo.synthetic import make_classes
    from preau.node.records.store import Store
    from preau.node.records.vault import ARGON2

    store = Store.open(data, cost=ARGON2[MINIMAL])
    try:
        campaign = store.get_campaign(store.login("admin", PASSWORD), "2026-debut-cp")
    finally:
        store.close()
    _fill(type("N", (), {"data_dir": data, "uai": SCHOOL_UAI})(), campaign,
          make_classes(random.Random(7), campaign, [pupils]))


