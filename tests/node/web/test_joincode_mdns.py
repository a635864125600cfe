"""A short code typed without the district's address: the school finds the district on the LAN by mDNS.

Real mDNS on the loopback interface (tests talk to 127.0.0.1 only): the district's node announces
itself (role=district), the school's node listens, fetches the invitation with the code and enrols.
"""
from __future__ import annotations

import os

import pytest

from node_fixtures import SCHOOL_UAI, district_and_school
from preau.node.appkeys import NODE
from preau.node.errors import UserError
from preau.node.federation import mdns
from preau.protocol.joincode import JoinCode


def test_only_districts_are_kept_and_ipv4_is_preferred():
    heard = [({b"role": b"school", b"uai": b"0751234J"}, ["192.168.1.20"], 8080),
             ({b"role": b"district"}, ["fe80::1", "192.168.1.10"], 8080),
             ({b"role": b"district"}, ["2001:db8::7"], 80),
             ({}, ["192.168.1.30"], 8080)]
    assert mdns.district_urls(heard) == ["http://192.168.1.10:8080", "http://[2001:db8::7]"]


def _district_ad(port: int) -> mdns.Advertisement:
    name = f"preau-district-{os.getpid()}-{port}"
    return mdns.Advertisement(f"{name}.local.", f"Préau {name}.{mdns.SERVICE_TYPE}", port, ("127.0.0.1",),
                              (("path", "/"), ("role", "district")))


@pytest.fixture
async def pair(tmp_path):
    async with district_and_school(tmp_path) as (district_srv, school_srv, _url):
        yield district_srv, school_srv, district_srv.port


async def test_a_code_without_an_address_finds_the_district_on_the_lan(pair):
    district_srv, school_srv, dport = pair
    d_node, s_node = district_srv.app[NODE], school_srv.app[NODE]
    s_node.mdns_interfaces, s_node.mdns_timeout = ["127.0.0.1"], 1.5
    inv = d_node.call(d_node.create_invitation, SCHOOL_UAI, [f"http://127.0.0.1:{dport}"])
    code = JoinCode.from_secret(inv.secret).text
    # Nobody announces a district yet: the school is told to give the address.
    with pytest.raises(UserError) as exc:
        await s_node.join(code, SCHOOL_UAI, None)
    assert exc.value.words.key == "joincode.not_found"
    advertiser = mdns.Advertiser(_district_ad(dport))
    assert await advertiser.start()
    try:
        report = await s_node.join(code, SCHOOL_UAI, None)
    finally:
        await advertiser.stop()
    assert report.error is None
    assert s_node.federation.upstream()["address"] == f"http://127.0.0.1:{dport}"
    assert [p["uai"] for p in d_node.federation.children()] == [SCHOOL_UAI]
