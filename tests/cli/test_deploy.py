"""Deployment files: the compose file is accepted by Docker Compose, the image runs as a non-root
user with a health check that works, and the systemd unit is hardened and accepted by systemd."""
from __future__ import annotations

import http.server
import os
import pathlib
import shutil
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) if it answers, else the standalone `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def compose():
    cmd = _compose_command()
    if cmd is None:
        # The docker client on this kind of machine may lack the compose plugin; Debian's
        # `docker-compose` package provides the standalone command.
        pytest.skip("no Docker Compose client (neither `docker compose` nor `docker-compose`) is installed")
    return cmd


def test_compose_file_is_accepted(compose, tmp_path):
    env = {**os.environ, "COMPOSE_PROJECT_NAME": "preau"}
    proc = subprocess.run(
        [*compose, "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == ["district", "school-a"]
    # Every node on the host's network, on 127.0.0.1: nothing published through Docker's bridge.
    proc = subprocess.run([*compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("network_mode: host") == 2 and "ports:" not in proc.stdout
    assert proc.stdout.count("PREAU_HOST: 127.0.0.1") == 2

    # The same check refuses a broken file, so the pass above means something.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((ROOT / "docker-compose.yml").read_text().replace("    volumes:\n", "    volumes: 3\n", 1))
    proc = subprocess.run([*compose, "-f", str(broken), "config", "-q"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0


def test_dockerfile_runs_as_non_root_with_data_volume_and_healthcheck():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    # The base is chosen at build time: a registry image by default, a Debian base made with
    # mmdebstrap by deploy/docker/build-image (tests/docker builds and runs it for real).
    assert instructions[0] == "ARG BASE=python:3.12-slim"
    assert [i for i in instructions if i.startswith("FROM ")] == ["FROM ${BASE} AS install", "FROM ${BASE}"]
    user = [i for i in instructions if i.startswith("USER ")]
    assert user == ["USER preau"]
    assert instructions.index("USER preau") < instructions.index('CMD ["serve"]')
    assert 'VOLUME ["/data"]' in instructions
    assert any(i.startswith("HEALTHCHECK") for i in instructions)
    assert "PREAU_DATA_DIR=/data" in (ROOT / "Dockerfile").read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, code", [(200, 0), (503, 1)])
def test_healthcheck_script_follows_healthz(status, code):
    handler = type("H", (_Handler,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "PREAU_PORT": str(server.server_address[1])}
        proc = subprocess.run([sys.executable, str(ROOT / "deploy" / "healthcheck.py")], env=env, timeout=30, capture_output=True)
        assert proc.returncode == code
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_fails_when_nothing_listens():
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PREAU_PORT": str(port)}
    proc = subprocess.run([sys.executable, str(ROOT / "deploy" / "healthcheck.py")], env=env, timeout=30, capture_output=True, text=True)
    assert proc.returncode == 1 and "unhealthy" in proc.stderr


UNIT = ROOT / "deploy" / "preau-school.service"


def _unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's format: [Section] then Key=Value lines; a key may repeat (Environment=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a Key=Value line: {line}"
        current.setdefault(key, []).append(value)
    return sections


def test_systemd_unit_is_hardened():
    unit = _unit_sections(UNIT.read_text())
    svc = unit["Service"]
    expected = {
        "User": "preau",
        "StateDirectory": "preau",
        "StateDirectoryMode": "0700",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
        "SystemCallFilter": "@system-service",
    }
    for key, value in expected.items():
        assert svc.get(key) == [value], key
    assert "PREAU_DATA_DIR=/var/lib/preau" in svc["Environment"]
    assert svc["ExecStart"] == ["/opt/preau/bin/preau serve"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def _verify(path: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path):
    # The real ExecStart path exists only after installation; verify the rest with /bin/true.
    text = UNIT.read_text().replace("/opt/preau/bin/preau serve", "/bin/true")
    good = tmp_path / "preau-school.service"
    good.write_text(text)
    proc = _verify(good)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    bad = tmp_path / "preau-bad.service"
    bad.write_text(text.replace("ProtectSystem=", "ProtectSytem="))
    assert "Unknown key" in _verify(bad).stderr


def test_dockerfile_serves_on_every_interface_with_data_on_the_volume():
    text = (ROOT / "Dockerfile").read_text()
    assert "PREAU_HOST=0.0.0.0" in text and "PREAU_DATA_DIR=/data" in text and "PREAU_PORT=8080" in text
    assert 'ENTRYPOINT ["preau"]' in text and 'CMD ["serve"]' in text
    assert "COPY deploy/healthcheck.py /usr/local/bin/preau-healthcheck" in text
    assert 'CMD ["/opt/preau/bin/python", "/usr/local/bin/preau-healthcheck"]' in text


def test_compose_services_keep_data_on_volumes_and_their_commands_parse():
    import re

    from preau.cli.main import build_parser

    text = (ROOT / "docker-compose.yml").read_text()
    for service in ("district", "school-a"):
        assert f"- {service}-data:/data" in text
    # Every command the header tells people to run is one the `preau` command accepts.
    commands = re.findall(r"^#\s+docker compose (?:run --rm \S+|exec \S+ preau) (.+)$", text, re.M)
    assert len(commands) >= 5
    import shlex

    for line in commands:
        args = build_parser().parse_args(shlex.split(line))
        assert args.run is not None, line
