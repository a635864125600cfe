"""The optional mDNS advertisement: what is announced (pure), the clear refusals, a real announcement on
the loopback interface (resolved by a second zeroconf instance, then withdrawn), and `preau serve` in a
network namespace of its own found and reached from another one over a veth link, as a teacher's computer
on the school network would."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from preau.node.federation import mdns
from preau.node.errors import EXIT_CONFIG

from cli_helpers import PREAU, SCHOOL_UAI, init, preau, user_error


def test_plan_for_a_box_listening_on_every_interface():
    ad = mdns.plan(name="Preau", port=8080, host="0.0.0.0", role="school", uai=SCHOOL_UAI,
                   interface_addresses=["127.0.0.1", "192.168.1.20", "fe80::1%eth0", "::1", "2001:db8::5", "192.168.1.20"])
    assert ad.host_name == "preau.local."
    assert ad.instance == f"Préau {SCHOOL_UAI}._http._tcp.local."
    assert ad.addresses == ("192.168.1.20", "2001:db8::5")  # no loopback, no link-local, no duplicates
    assert dict(ad.properties) == {"path": "/", "role": "school", "uai": SCHOOL_UAI}
    assert ad.url == "http://preau.local:8080"
    assert mdns.plan(name="ecole-jaures.local", port=80, host="10.0.0.2", role="school", uai=None,
                     interface_addresses=[]).url == "http://ecole-jaures.local"


@pytest.mark.parametrize("name", ["pré-au", "-preau", "preau-", "a" * 64, "two words", "a.b"])
def test_plan_refuses_a_name_that_cannot_be_a_host_name(name):
    with pytest.raises(mdns.MdnsError) as e:
        mdns.plan(name=name, port=8080, host="0.0.0.0", role="school", uai=None, interface_addresses=["10.0.0.2"])
    assert e.value.message.startswith(f"mdns_name {name!r} cannot be a network name: use 1-63 lower-case letters")
    assert e.value.exit_code == EXIT_CONFIG


@pytest.mark.parametrize("host, addresses", [("127.0.0.1", ["10.0.0.2"]), ("0.0.0.0", ["127.0.0.1", "fe80::1"])])
def test_plan_refuses_to_announce_what_nobody_can_reach(host, addresses):
    with pytest.raises(mdns.MdnsError) as e:
        mdns.plan(name="preau", port=8080, host=host, role="school", uai=None, interface_addresses=addresses)
    assert e.value.message == (f"mdns = true, but the node listens on {host}, which no other computer can reach: "
                               "set host = 0.0.0.0 (or the box's network address), or set mdns = false")


def test_zeroconf_missing_is_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "zeroconf", None)  # what `import zeroconf` sees when it is not installed
    with pytest.raises(mdns.MdnsError) as e:
        mdns.zeroconf_module()
    assert e.value.message == mdns.MISSING
    assert "pip install 'preau[mdns]'" in mdns.MISSING


def test_serve_with_mdns_refuses_clearly(tmp_path):
    init(tmp_path / "n", "school", SCHOOL_UAI)
    # Listening on loopback only: nothing worth announcing, and serve says so instead of starting.
    r = preau("serve", "--mdns", "--data-dir", str(tmp_path / "n"), "--port", "1")
    user_error(r, "mdns = true, but the node listens on 127.0.0.1", EXIT_CONFIG)
    # Without the library: a fake `zeroconf` package that fails to import stands in for a missing one.
    fake = tmp_path / "fake" / "zeroconf"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named zeroconf')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    env.update(PYTHONPATH=str(tmp_path / "fake"), PREAU_ARGON2_PROFILE="minimal", PREAU_MDNS="true")
    proc = subprocess.run([*PREAU, "serve", "--data-dir", str(tmp_path / "n"), "--host", "0.0.0.0", "--port", "1"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == EXIT_CONFIG
    assert proc.stderr == f"preau: error: {mdns.MISSING}\n"
    # `preau init --mdns` says so at once, before creating anything.
    proc = subprocess.run([*PREAU, "init", "--uai", SCHOOL_UAI, "--mdns", "--data-dir", str(tmp_path / "m")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert (proc.returncode, proc.stderr) == (EXIT_CONFIG, f"preau: error: {mdns.MISSING}\n")
    assert not (tmp_path / "m").exists()


def _loopback_ad(name: str) -> mdns.Advertisement:
    return mdns.Advertisement(f"{name}.local.", f"Préau test {name}.{mdns.SERVICE_TYPE}", 8080, ("127.0.0.1",),
                              (("path", "/"), ("role", "school")))


async def _resolve(ad: mdns.Advertisement, timeout_ms: int):
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncZeroconf

    peer = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        return await peer.async_get_service_info(mdns.SERVICE_TYPE, ad.instance, timeout=timeout_ms)
    finally:
        await peer.async_close()


async def test_announcement_on_loopback_is_resolved_then_withdrawn():
    ad = _loopback_ad(f"preau-test-{os.getpid()}")
    advertiser = mdns.Advertiser(ad)
    assert await advertiser.start() is True
    try:
        info = await _resolve(ad, 3000)
        assert info is not None, "the announcement was not heard on the loopback interface"
        assert (info.server, info.port, info.parsed_addresses()) == (ad.host_name, 8080, ["127.0.0.1"])
        assert info.properties == {b"path": b"/", b"role": b"school"}
    finally:
        await advertiser.stop()
    assert await _resolve(ad, 600) is None  # withdrawn: nobody answers for it any more


async def test_serve_app_announces_while_running(tmp_path, monkeypatch):
    """What `preau serve` runs announces the node once its port accepts connections (a computer that finds the
    box by name can reach it at once) and withdraws the announcement at shutdown."""
    import aiohttp

    from preau.node import app as node_app
    from preau.node import listener
    from preau.node.demo.demo import free_port
    from preau.node.settings import load_settings

    init(tmp_path, "school", SCHOOL_UAI)
    settings = load_settings({"data_dir": str(tmp_path), "argon2_profile": "minimal"}, env={})
    ad = _loopback_ad(f"preau-app-{os.getpid()}")
    advertiser = mdns.Advertiser(ad)
    port = free_port()
    heard_at = []
    start = advertiser.start

    async def start_and_check():  # the moment it announces, the port must already answer
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            heard_at.append(resp.status)
        return await start()

    monkeypatch.setattr(advertiser, "start", start_and_check)
    async with listener.serving(node_app.build_app(settings, advertiser), host="127.0.0.1", port=port,
                                handle_signals=False):
        assert heard_at == [200]
        assert await _resolve(ad, 3000) is not None
    assert await _resolve(ad, 600) is None


# -- a real network: a school box and a teacher's computer in two network namespaces -----------------------

LAN_LOOKUP = r"""
import asyncio, json, sys, urllib.request
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncZeroconf

async def main(instance, address):
    zc = AsyncZeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    try:
        info = await zc.async_get_service_info("_http._tcp.local.", instance, timeout=5000)
    finally:
        await zc.async_close()
    if info is None:
        print(json.dumps({"found": False}))
        return
    url = f"http://{info.parsed_addresses()[0]}:{info.port}/healthz"
    with urllib.request.urlopen(url, timeout=10) as resp:
        health = json.loads(resp.read())
    print(json.dumps({"found": True, "server": info.server, "addresses": info.parsed_addresses(),
                      "port": info.port, "health": health}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.fixture
def two_hosts():
    """A 'box' and a 'laptop' namespace joined by a veth pair (10.77.0.1 and 10.77.0.2), made for this test."""
    box, lan = f"preau-box-{os.getpid()}", f"preau-lan-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", box], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace here ({made.stderr.strip()}): needs root and iproute2")
    steps = [
        ["ip", "netns", "add", lan],
        ["ip", "link", "add", "pbox0", "netns", box, "type", "veth", "peer", "name", "plan0", "netns", lan],
        ["ip", "-n", box, "addr", "add", "10.77.0.1/24", "dev", "pbox0"],
        ["ip", "-n", lan, "addr", "add", "10.77.0.2/24", "dev", "plan0"],
        *[["ip", "-n", ns, "link", "set", dev, "up"] for ns, dev in ((box, "pbox0"), (lan, "plan0"), (box, "lo"), (lan, "lo"))],
        # mDNS goes to 224.0.0.251 on the link; a network without a default route still needs this one.
        ["ip", "-n", box, "route", "add", "224.0.0.0/4", "dev", "pbox0"],
        ["ip", "-n", lan, "route", "add", "224.0.0.0/4", "dev", "plan0"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, text=True)
        yield box, lan
    finally:
        for ns in (box, lan):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_a_teachers_computer_on_the_school_network_finds_the_box_by_name_and_reaches_it(tmp_path, two_hosts):
    """`preau serve` with mdns on, in its own network namespace; from the other one, a zeroconf lookup finds
    the school's announcement with the box's LAN address (not loopback), and /healthz answers there."""
    box, lan = two_hosts
    data = tmp_path / "box"
    init(data, "school", SCHOOL_UAI)
    with open(data / "preau.toml", "a") as f:
        f.write('host = "0.0.0.0"\nport = 8080\nmdns = true\nmdns_name = "preau-ecole"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    env["PREAU_ARGON2_PROFILE"] = "minimal"
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(["ip", "netns", "exec", box, *PREAU, "serve", "--data-dir", str(data)], env=env,
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    try:
        instance = f"Préau {SCHOOL_UAI}.{mdns.SERVICE_TYPE}"
        import json
        import time
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            out = subprocess.run(["ip", "netns", "exec", lan, sys.executable, "-c", LAN_LOOKUP, instance, "10.77.0.2"],
                                 capture_output=True, text=True, timeout=60, env=env)
            assert out.returncode == 0, out.stderr
            found = json.loads(out.stdout)
            if found["found"] or time.monotonic() > deadline:
                break
        assert found["found"], "the laptop did not hear the box's announcement: " + (tmp_path / "serve.log").read_text()
        assert (found["server"], found["addresses"], found["port"]) == ("preau-ecole.local.", ["10.77.0.1"], 8080)
        assert found["health"]["ok"] is True and found["health"]["role"] == "school"
    finally:
        server.terminate()
        server.wait(timeout=20)
