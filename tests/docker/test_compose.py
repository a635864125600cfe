"""The image and docker-compose.yml for real: build the image with deploy/docker/build-image (a
Debian base from mmdebstrap, Préau from a wheelhouse), run a district and a school with the
shipped compose file, enrol the school with a real invitation, enter results through the
school's web pages as a teacher would, approve a release, sync, and read the district's
statistics; then stop and recreate the containers and check that nothing was lost.

Needs a Docker engine, a Compose client and mmdebstrap (or an already made base image);
skipped otherwise, with the reason. `.ci/run` provides them and sets CI=true, which turns
the skip into a failure (as for the browser tests) so CI cannot pass without running this test.
Containers use the host's network on 127.0.0.1 ports only.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import http.cookiejar
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
# PREAU_DOCKER_ARCH=arm64 runs the same test on the arm64 image, under qemu emulation (slow;
# needs qemu-user-static and binfmt-support). Unset: this machine's CPU.
ARCH = os.environ.get("PREAU_DOCKER_ARCH", "")
# One tag per checkout: two worktrees testing at once on one engine do not swap images.
TAG = "preau:test-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:8] + (f"-{ARCH}" if ARCH else "")
CAMPAIGN = "2026-debut-cp"
PASSWORD = "docker-test-2026"
DISTRICT_UAI, SCHOOL_UAI = "0693344K", "0751234J"
GROUPS = ("besoin", "fragile", "seuil2", "absent", "pending")

pytestmark = pytest.mark.slow


def _unusable(reason: str):
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI is set, so the Docker test must run, but {reason}")
    pytest.skip(reason)


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def compose_cmd() -> list[str]:
    if shutil.which("docker") is None:
        _unusable("no docker client is installed (Debian: apt-get install docker.io)")
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                          timeout=60)
    if info.returncode != 0:
        _unusable(f"no Docker engine answers ({info.stderr.strip().splitlines()[-1:]}); start dockerd as root")
    cmd = _compose_command()
    if cmd is None:
        _unusable("no Docker Compose client (neither `docker compose` nor `docker-compose`) is installed")
    return cmd


@pytest.fixture(scope="module")
def image(compose_cmd) -> str:
    native = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip() or "amd64"
    has_base = subprocess.run(["docker", "image", "inspect", f"preau-base:bookworm-{ARCH or native}"],
                              capture_output=True).returncode == 0
    if not has_base and shutil.which("mmdebstrap") is None:
        _unusable("mmdebstrap is not installed, and no preau-base image exists to build on (apt-get install mmdebstrap)")
    env = {**os.environ, "PIP": f"{sys.executable} -m pip"}
    started = time.monotonic()
    build = subprocess.run([str(ROOT / "deploy" / "docker" / "build-image"), "--tag", TAG,
                            *(["--arch", ARCH] if ARCH else [])], env=env,
                           capture_output=True, text=True, timeout=3600 if ARCH else 900)
    assert build.returncode == 0, build.stderr[-3000:]
    print(f"image {TAG} built in {time.monotonic() - started:.0f} s")
    return TAG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


class Project:
    """One Compose project on the shipped docker-compose.yml, with its own name, ports and volumes."""

    def __init__(self, cmd: list[str], image: str, tmp: pathlib.Path) -> None:
        self.name = f"preautest{os.getpid()}"
        self.ports = {"district": _free_port(), "school-a": _free_port()}
        # The shipped file, plus a health check every second instead of every 30 s so the test sees
        # "healthy" quickly (the check itself is the image's).
        override = tmp / "compose.test.yml"
        override.write_text("services:\n" + "".join(
            f"  {s}:\n    healthcheck:\n      interval: {'5s' if ARCH else '1s'}\n      start_period: 60s\n"
            for s in self.ports))
        self.cmd = [*cmd, "-p", self.name, "-f", str(ROOT / "docker-compose.yml"), "-f", str(override)]
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREAU_")},
                    "PREAU_IMAGE": image, "DISTRICT_PORT": str(self.ports["district"]),
                    "SCHOOL_A_PORT": str(self.ports["school-a"])}

    def run(self, *args: str, stdin: str = "", timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.cmd, *args], input=stdin, capture_output=True, text=True, env=self.env,
                              timeout=timeout, cwd=ROOT)
        if check:
            assert proc.returncode == 0, f"{' '.join(args)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def preau(self, service: str, *args: str, stdin: str = "", check: bool = True) -> subprocess.CompletedProcess:
        """`docker compose exec SERVICE preau ARGS` with the administrator's password in the environment."""
        return self.run("exec", "-T", "-e", f"PREAU_PASSWORD={PASSWORD}", service, "preau", *args, stdin=stdin,
                        check=check)

    def container(self, service: str) -> str:
        return self.run("ps", "-q", service).stdout.strip()

    def wait_healthy(self, *services: str, timeout: float = 120) -> float:
        """Seconds until every service answers /healthz and Docker's own check says healthy."""
        started = time.monotonic()
        pending = set(services)
        while pending:
            for s in sorted(pending):
                cid = self.container(s)
                state = subprocess.run(["docker", "inspect", "--format", "{{.State.Health.Status}}", cid],
                                       capture_output=True, text=True).stdout.strip() if cid else ""
                if state == "healthy" and _healthz(self.ports[s]):
                    pending.discard(s)
            if pending:
                if time.monotonic() - started > timeout:
                    logs = self.run("logs", "--tail", "30", check=False).stdout
                    raise AssertionError(f"{sorted(pending)} not healthy within {timeout} s\n{logs}")
                time.sleep(0.5)
        return time.monotonic() - started


@pytest.fixture
def project(compose_cmd, image, tmp_path):
    p = Project(compose_cmd, image, tmp_path)
    try:
        yield p
    finally:
        p.run("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)


class Browser:
    """A teacher's browser, reduced to what the school's pages need: a session cookie and CSRF tokens."""

    TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as resp:
            return resp.read().decode()

    def token(self, path: str) -> str:
        match = self.TOKEN.search(self.get(path))
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post_form(self, path: str, fields: dict[str, str], token_from: str) -> str:
        data = urllib.parse.urlencode({**fields, "csrf_token": self.token(token_from)}).encode()
        with self.opener.open(urllib.request.Request(self.base + path, data=data), timeout=30) as resp:
            return resp.read().decode()

    def post_json(self, path: str, payload: dict, token: str) -> dict:
        request = urllib.request.Request(self.base + path, data=json.dumps(payload).encode(), headers={
            "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token})
        try:
            with self.opener.open(request, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{path}: {e.code} {e.read()[:300]!r}") from None

    def login(self) -> None:
        self.post_form("/login", {"username": "admin", "password": PASSWORD}, "/login")
        with self.opener.open(self.base + "/admin/classes", timeout=30) as resp:
            assert resp.url.endswith("/admin/classes"), f"login refused: sent to {resp.url}"

    def class_page(self) -> str:
        ids = sorted(set(re.findall(r'/classes/([0-9a-f]{16})', self.get("/classes"))))
        assert len(ids) == 1, ids
        return f"/classes/{ids[0]}"


def _campaign_text() -> str:
    """The bundled Début de CP sample, open now (its own dates are in the past)."""
    text = (ROOT / "node" / "campaigns" / "debut-cp.toml").read_text(encoding="utf-8")
    today = dt.date.today()
    text = re.sub(r"^opens = .*$", f'opens = "{today - dt.timedelta(days=7)}"', text, count=1, flags=re.M)
    return re.sub(r"^closes = .*$", f'closes = "{today + dt.timedelta(days=30)}"', text, count=1, flags=re.M)


def _exercises(*, fillable: bool = True) -> list[dict]:
    """The campaign's exercises, read from its file (not through Préau's code); the fillable ones
    are scored by items and have thresholds."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    exercises = tomllib.loads(_campaign_text())["exercises"]
    return [ex for ex in exercises if not fillable or (ex.get("thresholds") and ex.get("score_kind") == "items")]


def _group(score: int, thresholds: list[int]) -> str:
    t1, t2 = thresholds
    return "besoin" if score < t1 else "fragile" if score < t2 else "seuil2"


PUPILS = [("Martin", "Lucie"), ("Bernard", "Noah"), ("Petit", "Inès"), ("Durand", "Léo"), ("Moreau", "Jade"),
          ("Laurent", "Hugo"), ("Simon", "Louise"), ("Michel", "Gabriel"), ("Lefebvre", "Ambre"),
          ("Garcia", "Arthur"), ("David", "Chloé"), ("Roux", "Jules")]


def _items(ex: dict) -> int:
    return len(ex["items"]) if isinstance(ex["items"], list) else int(ex["items"])


def _make_class(browser: Browser) -> tuple[str, list[str]]:
    """A CP class of 12 pupils, created through the web pages: its address and its pupils' ids."""
    browser.post_form("/admin/classes", {"action": "create", "name": "CP Les Tilleuls", "level": "CP",
                                         "school_year": "2026-2027"}, "/admin/classes")
    base = browser.class_page()
    for last, first in PUPILS:
        browser.post_form(base + "/pupils", {"last_name": last, "first_name": first}, base)
    page = browser.get(base)
    pupil_ids = list(dict.fromkeys(re.findall(r'/pupils/([0-9a-f]{16})', page)))
    assert len(pupil_ids) == len(PUPILS), page[:1000]
    return base, pupil_ids


def _fill(browser: Browser, base: str, pupil_ids: list[str], ex: dict, k: int) -> dict[str, int]:
    """Enter one exercise for the whole class, as the grid page does; the counts the district should see."""
    token = browser.token(base)
    counts = dict.fromkeys(GROUPS, 0)  # `pending` counts scores awaiting thresholds: none here
    items = _items(ex)
    for i, pupil in enumerate(pupil_ids):
        if (i + k) % 11 == 5:
            cells, group = ["a"] * items, "absent"
        else:
            score = (3 * i + 5 * k) % (items + 1)
            cells, group = ["1"] * score + ["0"] * (items - score), _group(score, ex["thresholds"])
        reply = browser.post_json(f"{base}/campaigns/{CAMPAIGN}/exercises/{ex['id']}/row",
                                  {"pupil": pupil, "cells": cells}, token)
        assert reply["ok"] is True, reply
        counts[group] += 1
    return counts


def _stats(project: Project, service: str) -> dict[str, dict[str, int]]:
    out = project.preau(service, "stats", CAMPAIGN, "--format", "json").stdout
    return {row["exercise"]: {g: row[g] for g in GROUPS} for row in json.loads(out)["exercises"]}


def test_district_and_school_in_containers_enrol_release_sync_and_survive_a_restart(project):
    # Each node is created once, in a one-off container on its volume (as docker-compose.yml says).
    for service, role, uai, name in (("district", "district", DISTRICT_UAI, "Circonscription (essai)"),
                                     ("school-a", "school", SCHOOL_UAI, "École A")):
        r = project.run("run", "--rm", "-T", "-e", f"PREAU_PASSWORD={PASSWORD}", service,
                        "init", "--role", role, "--uai", uai, "--name", name)
        assert "Recovery key" in r.stdout, r.stdout
    project.run("up", "-d", "--no-build")
    print(f"up -d to both healthy: {project.wait_healthy('district', 'school-a'):.1f} s")

    # The node runs as the unprivileged user, its data on the volume, readable by that user only.
    who = project.run("exec", "-T", "school-a", "sh", "-c", "id -u; stat -c '%a %u' /data; ls /data").stdout.split("\n")
    assert who[0] == "10001" and who[1] == "700 10001", who
    assert "preau.toml" in who[2:], who
    # On the host's network: no bridge, no port mapping.
    for service in ("district", "school-a"):
        mode = subprocess.run(["docker", "inspect", "--format", "{{.HostConfig.NetworkMode}}",
                               project.container(service)], capture_output=True, text=True).stdout.strip()
        assert mode == "host", (service, mode)

    # The district publishes the campaign, and invites the school; the school joins with the invitation.
    project.preau("district", "campaign", "load", "/dev/stdin", stdin=_campaign_text())
    invitation = project.preau("district", "invite", "--uai", SCHOOL_UAI, "--name", "École A",
                               "--allow-loopback").stdout.strip()
    assert invitation.startswith("PREAU1-"), invitation
    project.preau("school-a", "join", invitation)
    district_id = json.loads(project.preau("district", "status", "--json").stdout)["node_id"]
    upstream = json.loads(project.preau("school-a", "status", "--json").stdout)["upstream"]
    assert upstream["node_id"] == district_id and upstream["address"] == f"http://127.0.0.1:{project.ports['district']}"

    # A teacher enters results in the school's web pages; the head teacher approves the release.
    browser = Browser(project.ports["school-a"])
    browser.login()
    exercises = _exercises()[:4]
    base, pupil_ids = _make_class(browser)
    expected = {ex["id"]: dict.fromkeys(GROUPS, 0) for ex in _exercises(fillable=False)}
    for k, ex in enumerate(exercises[:3]):
        expected[ex["id"]] = _fill(browser, base, pupil_ids, ex, k)
    assert project.preau("district", "stats", CAMPAIGN, check=False).returncode != 0  # nothing has arrived yet
    r = project.preau("school-a", "release", CAMPAIGN, "--approve", "--user", "admin")
    assert "Release 1 signed" in r.stdout, r.stdout
    # (The served node may already have sent it on its own; `preau sync` makes sure it has.)
    r = project.preau("school-a", "sync")
    assert r.stdout.startswith("Synced with "), r.stdout

    # The district's statistics are exactly the counts entered at the school.
    merged = _stats(project, "district")
    assert merged == expected, {k: (merged.get(k), expected.get(k)) for k in {*merged, *expected}
                                if merged.get(k) != expected.get(k)}
    assert sum(1 for c in expected.values() if sum(c.values()) == len(PUPILS)) == 3

    # Stop the school's container and start it again; then remove both containers and create new
    # ones: only the volumes carry the data across.
    project.run("stop", "school-a")
    assert not _healthz(project.ports["school-a"])
    project.run("start", "school-a")
    project.wait_healthy("school-a")
    assert _stats(project, "school-a") == expected
    project.run("down", "--timeout", "10")
    assert not _healthz(project.ports["district"]) and not project.container("district")
    project.run("up", "-d", "--no-build")
    print(f"recreated containers to both healthy: {project.wait_healthy('district', 'school-a'):.1f} s")

    assert _stats(project, "district") == expected
    assert _stats(project, "school-a") == expected
    assert json.loads(project.preau("school-a", "status", "--json").stdout)["upstream"]["node_id"] == district_id
    browser = Browser(project.ports["school-a"])
    browser.login()
    assert browser.class_page() == base
    page = browser.get(base)
    assert all(first in page and last in page for last, first in PUPILS), page[:1000]

    # The school is still the same enrolled node with the same class: a fourth exercise entered
    # after the restart goes out in a second release, and the district's statistics follow.
    assert list(dict.fromkeys(re.findall(r'/pupils/([0-9a-f]{16})', page))) == pupil_ids
    expected[exercises[3]["id"]] = _fill(browser, base, pupil_ids, exercises[3], 3)
    r = project.preau("school-a", "release", CAMPAIGN, "--approve", "--user", "admin")
    assert "Release 2 signed" in r.stdout, r.stdout
    project.preau("school-a", "sync")
    assert _stats(project, "district") == expected
