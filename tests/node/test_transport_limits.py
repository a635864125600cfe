"""Limits of the sync endpoint against hostile clients: a slow or greedy peer costs one session, never the node.

Each client here is enrolled (it holds a pinned key) or not even that, and
speaks the protocol by hand so it can misbehave in ways the real client never
does. The district is the real `serve_session` behind a real aiohttp server on
127.0.0.1.
"""
from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest
from aiohttp import web

from preau.node.errors import UserError
from preau.node.runtime import Node, create_identity
from preau.node.appkeys import TRUSTED_PROXY
from preau.node.federation.transport import SYNC_PATH, Limits, SessionGate, serve_session
from preau.protocol.connection import Config, Connection, ConnectionClosed, Established
from preau.protocol.errors import RemoteProtocolError
from preau.protocol.identity import Identity
from preau.protocol.wire import DocOffer, Offer, encode_varint as _uleb  # Automerge's unsigned LEB128 too


@pytest.fixture
def serve(tmp_path, aiohttp_server):
    """Start a district with the given limits; returns the Node (with .url)."""
    nodes = []

    async def start(limits: Limits, *, trusted_proxy: bool = False) -> Node:
        path = tmp_path / f"district{len(nodes)}"
        create_identity(path)
        node = Node(path, role="district", limits=limits)
        nodes.append(node)
        app = web.Application()
        app[TRUSTED_PROXY] = trusted_proxy

        async def endpoint(request):
            return await serve_session(request, node.federation, node.limits, node.gate)

        app.router.add_get(SYNC_PATH, endpoint)
        server = await aiohttp_server(app, host="127.0.0.1")
        node.url = str(server.make_url("")).rstrip("/")
        return node

    yield start
    for n in nodes:
        n.close()


async def until(condition, what: str, timeout: float = 5.0) -> None:
    """Wait for the server's state to reach `condition`: its clean-up runs after the client saw the close."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not {what} after {timeout} s"
        await asyncio.sleep(0.01)


def enrolled_peer(district: Node, uai: str = "0751234J") -> Identity:
    """A key the district has pinned, as if the school had joined."""
    ident = Identity(os.urandom(32))
    district.fed.add_peer(ident.signing_key.hex(), node_id=ident.node_id, role="school", uai=uai,
                          static_key=ident.public.static_key.hex())
    return ident


class Hostile:
    """A client that completes the handshake properly, then does what the test says."""

    def __init__(self, district: Node, ident: Identity, config: Config = Config()):
        self.district, self.ident, self.config = district, ident, config

    async def __aenter__(self):
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(self.district.url + SYNC_PATH, max_msg_size=0)
        self.conn = Connection.initiator(self.ident, self.district.identity.public, ephemeral=os.urandom(32),
                                         now=int(time.time()), config=self.config)
        await self.ws.send_bytes(self.conn.data_to_send())
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), 5)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            events = self.conn.receive_data(msg.data)
            out = self.conn.data_to_send()
            if out:
                await self.ws.send_bytes(out)
            if any(isinstance(e, Established) for e in events):
                self.events = events  # what came with the Welcome (the server's offer, often)
                return self

    async def __aexit__(self, *exc):
        await self.ws.close()
        await self.http.close()

    async def send(self, message) -> None:
        self.conn.send(message)
        await self.ws.send_bytes(self.conn.data_to_send())

    async def refusal(self, timeout: float = 5) -> str:
        """Read until the server ends the session; the protocol error it sent (as the client reads it)."""
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type != aiohttp.WSMsgType.BINARY:
                return f"closed without a reason ({msg.type.name})"
            try:
                events = self.conn.receive_data(msg.data)
            except RemoteProtocolError as exc:
                return f"{exc.code}: {exc.message}"
            if any(isinstance(e, ConnectionClosed) for e in events):
                return "closed"

    async def closed_after(self, timeout: float) -> float:
        """Seconds until the server closes the socket (the client sends nothing meanwhile)."""
        start = time.monotonic()
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return time.monotonic() - start


async def test_a_message_over_the_size_limit_ends_the_session(serve):
    district = await serve(Limits(max_message_bytes=64 * 1024, idle_timeout=5))
    async with Hostile(district, enrolled_peer(district)) as peer:
        await peer.send(Offer((DocOffer("release:x:big", b"\x00" * 100_000),)))
        assert (await peer.refusal()).startswith("peer_error: the peer reported an error (message_too_large)")


async def test_too_many_documents_in_one_offer_ends_the_session(serve):
    district = await serve(Limits(max_docs_per_session=20, idle_timeout=5))
    async with Hostile(district, enrolled_peer(district)) as peer:
        await peer.send(Offer(tuple(DocOffer(f"release:c:{i:04d}") for i in range(21))))
        refusal = await peer.refusal()
        assert "too_many_documents" in refusal and "at most 20 per session" in refusal


async def test_bytes_per_session_are_bounded_even_when_each_message_is_allowed(serve):
    district = await serve(Limits(max_message_bytes=1 << 20, max_session_bytes=200_000, idle_timeout=5))
    async with Hostile(district, enrolled_peer(district)) as peer:
        await peer.send(Offer((DocOffer("release:x:big", b"\x00" * 300_000),)))
        refusal = await peer.refusal()
        assert "session_too_large" in refusal and "more than 200000 bytes in one session" in refusal, refusal


async def test_per_peer_session_rate(serve, tmp_path):
    district = await serve(Limits(sessions_per_minute=3, idle_timeout=5))
    school = Node(_school_dir(tmp_path, "s"), role="school")
    other = Node(_school_dir(tmp_path, "o"), role="school")
    for n, uai in ((school, "0751234J"), (other, "0751235K")):
        district.fed.add_peer(n.identity.signing_key.hex(), node_id=n.node_id, role="school", uai=uai,
                              static_key=n.identity.public.static_key.hex())
        n.federation.pin_upstream(district.identity.public, district.url)
    try:
        for _ in range(3):
            assert (await school.sync_upstream()).complete
        with pytest.raises(UserError, match=r"too many sync sessions from this node \(at most 3 a minute\)"):
            await school.sync_upstream()
        assert (await other.sync_upstream()).complete  # one noisy school does not lock the others out
    finally:
        school.close()
        other.close()


def _school_dir(tmp_path, name):
    create_identity(tmp_path / name)
    return tmp_path / name


async def test_an_idle_peer_is_dropped_after_the_idle_timeout(serve):
    district = await serve(Limits(idle_timeout=0.5, session_timeout=30))
    async with Hostile(district, enrolled_peer(district)) as peer:
        waited = await peer.closed_after(5)
        assert 0.4 < waited < 2.0, waited
    # Before any handshake as well: a socket that never says anything.
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(district.url + SYNC_PATH) as ws:
            start = time.monotonic()
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert time.monotonic() - start < 2.0
    await until(lambda: district.gate.active == 0, "every session slot given back")


async def test_a_trickling_peer_is_dropped_at_the_session_deadline(serve):
    """One byte every 0.2 s never trips the idle timeout; the whole-session deadline ends it."""
    district = await serve(Limits(idle_timeout=0.5, session_timeout=1.5))
    async with Hostile(district, enrolled_peer(district)) as peer:
        start = time.monotonic()
        frame = (60_000).to_bytes(2, "big") + os.urandom(60_000)  # a frame that will never be complete
        closed = None
        for i in range(len(frame)):
            try:
                await peer.ws.send_bytes(frame[i:i + 1])
            except ConnectionError:
                break
            try:
                msg = await asyncio.wait_for(peer.ws.receive(), 0.2)
            except asyncio.TimeoutError:
                continue
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                closed = time.monotonic() - start
                break
        assert closed is not None and 1.3 < closed < 3.0, closed


async def test_authenticated_sessions_are_capped_and_the_school_is_told_why(serve):
    """Past the cap, a school is refused after the handshake with `busy` and a time to retry, not a bare 503."""
    district = await serve(Limits(max_concurrent_sessions=1, idle_timeout=5))
    school = Node(_school_dir(district.data_dir.parent, "busy"), role="school")
    district.fed.add_peer(school.identity.signing_key.hex(), node_id=school.node_id, role="school", uai="0751235K",
                          static_key=school.identity.public.static_key.hex())
    school.federation.pin_upstream(district.identity.public, district.url)
    try:
        async with Hostile(district, enrolled_peer(district)):
            assert district.gate.active == 1
            with pytest.raises(UserError, match=r"the district is busy with other nodes' syncs: nothing was lost; this "
                                                r"node tries again later \(the district asks to try again in 30 s\)"):
                await school.sync_upstream()
        await until(lambda: district.gate.active == 0, "the session slot given back")
        assert (await school.sync_upstream()).complete  # a slot freed up
    finally:
        school.close()


async def test_silent_sockets_make_room_for_a_school_and_are_dropped_at_the_handshake_deadline(serve):
    district = await serve(Limits(max_pending_handshakes=4, max_pending_per_address=3, handshake_timeout=1.0,
                                  idle_timeout=30))
    school = Node(_school_dir(district.data_dir.parent, "s"), role="school")
    district.fed.add_peer(school.identity.signing_key.hex(), node_id=school.node_id, role="school", uai="0751234J",
                          static_key=school.identity.public.static_key.hex())
    school.federation.pin_upstream(district.identity.public, district.url)
    try:
        async with aiohttp.ClientSession() as http:
            silent = [await http.ws_connect(district.url + SYNC_PATH) for _ in range(10)]  # none is refused
            await until(lambda: district.gate.evicted >= 7, "the oldest silent sockets evicted")
            assert district.gate.pending <= 3
            assert (await school.sync_upstream()).complete  # its first message makes it no squatter
            start = time.monotonic()
            for ws in silent[-3:]:  # the survivors: closed at the handshake deadline, not the idle timeout
                msg = await asyncio.wait_for(ws.receive(), 5)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
            assert time.monotonic() - start < 3.0
            for ws in silent:
                await ws.close()
        await until(lambda: district.gate.pending == 0 and district.gate.active == 0, "the gate empty")
    finally:
        school.close()


def test_the_gate_evicts_silent_sockets_first_then_the_oldest():
    gate = SessionGate(Limits(max_pending_handshakes=3, max_pending_per_address=2))
    evicted = []
    a1 = gate.open("a", lambda: evicted.append("a1"))
    a2 = gate.open("a", lambda: evicted.append("a2"))
    gate.progress(a1)  # a1 is speaking the protocol: a2, silent, goes first
    gate.open("a", lambda: evicted.append("a3"))
    assert evicted == ["a2"]
    gate.open("b", lambda: evicted.append("b1"))
    gate.open("c", lambda: evicted.append("c1"))  # 3 pending overall: the oldest silent one (a3) goes
    assert evicted == ["a2", "a3"]
    assert gate.authenticated(a1) and gate.active == 1 and gate.pending == 2
    gate.close(a1, True)
    assert gate.active == 0


def test_gate_window_slides_and_forgets_idle_peers():
    now = [0.0]
    gate = SessionGate(Limits(sessions_per_minute=2, max_concurrent_sessions=1), clock=lambda: now[0])
    assert gate.admit(b"a") and gate.admit(b"a") and not gate.admit(b"a")
    now[0] = 59.9
    assert not gate.admit(b"a")
    now[0] = 60.1
    assert gate.admit(b"a")
    for i in range(2000):  # many peers, each once: memory stays bounded
        now[0] += 0.1
        gate.admit(i.to_bytes(4, "big"))
    assert len(gate._recent) <= 4 * 1 + 1024 + 1
    first, second = gate.open("x", lambda: None), gate.open("y", lambda: None)
    assert gate.authenticated(first) and not gate.authenticated(second)  # max_concurrent_sessions=1
    gate.close(first, True)
    assert gate.active == 0


async def test_documents_held_open_in_one_session_are_bounded(serve, tmp_path):
    """The peer's offer is within the limit, but what it offers plus what it wants of ours is not."""
    from preau.crdt.campaign import parse_campaign
    from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
    from preau.protocol.wire import Want

    campaign = parse_campaign({
        "id": "2026-debut-cp", "name": "Début de CP", "level": "CP", "school_year": "2026-2027",
        "opens": "2026-09-01", "closes": "2026-09-30", "policy": {"min_cohort": 10, "min_batch": 10},
        "exercises": [{"id": "fr-mots", "name": "Mots", "subject": "français", "score_kind": "items", "items": 15,
                       "thresholds": [6, 10]}]})
    district = await serve(Limits(max_docs_per_session=2, idle_timeout=5))
    district.federation.publish_campaign(campaign)
    school = Node(_school_dir(tmp_path, "s"), role="school")
    district.fed.add_peer(school.identity.signing_key.hex(), node_id=school.node_id, role="school", uai="0751234J",
                          static_key=school.identity.public.static_key.hex())
    school.federation.pin_upstream(district.identity.public, district.url)
    assert (await school.sync_upstream()).complete  # a receipts-free first session: the campaign comes down
    outs = [PupilOutcome(f"p{i}", "fr-mots", "seuil2") for i in range(12)]
    signed = school.federation.publish_release(
        next_release(outs, campaign, ReleaseHistory(campaign.id), closing=False).content, to_peer="d")
    district.federation.publish_campaign(parse_campaign({**campaign_dict(campaign), "id": "2026-point-cp"}))
    try:
        async with Hostile(district, school.identity) as peer:
            await peer.send(Offer((DocOffer(signed.doc_id, signed.encode()),)))
            events = list(peer.events)
            while not any(isinstance(ev, Offer) for ev in events):
                events += peer.conn.receive_data((await asyncio.wait_for(peer.ws.receive(), 5)).data)
            theirs = [d.doc_id for ev in events if isinstance(ev, Offer) for d in ev.docs]
            assert len(theirs) == 2  # two campaigns
            await peer.send(Want(tuple(theirs)))
            refusal = await peer.refusal()
            assert "too_many_documents" in refusal and "more than 2 documents" in refusal, refusal
    finally:
        school.close()


def campaign_dict(c) -> dict:
    return {"id": c.id, "name": c.name, "level": c.level, "school_year": c.school_year, "opens": c.opens,
            "closes": c.closes, "policy": {"min_cohort": 10, "min_batch": 10},
            "exercises": [{"id": e.id, "name": e.name, "subject": e.subject, "score_kind": e.score_kind,
                           "items": e.items, "thresholds": list(e.thresholds)} for e in c.exercises]}


async def test_a_node_shutting_down_tells_the_peers_in_session_why(serve):
    district = await serve(Limits(idle_timeout=5))
    async with Hostile(district, enrolled_peer(district)) as peer:
        assert await district.gate.shut_down() == 1
        refusal = await peer.refusal()
        assert refusal == ("shutting_down: the district is shutting down (a restart or an update): nothing was lost; "
                           "this node tries again later (the district asks to try again in 60 s)"), refusal
    await until(lambda: district.gate.active == 0, "the session slot given back")


async def test_a_peer_gone_while_the_node_writes_ends_that_session_without_a_traceback(tmp_path):
    """A peer that hangs up while the node is sending: aiohttp raises ClientConnectionResetError from
    send_bytes. The catch-all for the node's own faults came first and re-raised it, so each such session
    was an 'unexpected error' with a 40-line traceback in the district's log (12 of them on the demo district
    from one client giving up on its sync). It is the connection breaking, said as such."""
    from preau.node.federation import transport

    path = tmp_path / "node"
    create_identity(path)
    node = Node(path, role="district")
    try:
        conn = Connection.initiator(node.identity, Identity(os.urandom(32)).public, ephemeral=os.urandom(32),
                                    now=int(time.time()))
        driver = transport.SessionDriver(node.federation, conn, node.limits)

        class Gone:
            closed = False

            async def send_bytes(self, data):
                raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")

            async def close(self):
                self.closed = True

        report = await transport._run(Gone(), driver, node.limits)
        assert report.error_code == "connection_broken", report
    finally:
        node.close()


async def test_behind_the_reverse_proxy_pending_sockets_are_counted_per_computer(serve):
    """Behind the proxy of docs/operations.md every socket came from 127.0.0.1, so the 8 pending sockets
    allowed per address were shared by every school and by whoever flooded the proxy: a school's handshake
    could be evicted by a stranger's sockets. The proxy's X-Forwarded-For names the computer."""
    district = await serve(Limits(), trusted_proxy=True)  # as docs/operations.md sets it up behind the proxy
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(district.url + SYNC_PATH, headers={"X-Forwarded-For": "203.0.113.7"})
        await until(lambda: district.gate.pending == 1, "pending")
        assert [a for a, _, _ in district.gate._pending.values()] == ["203.0.113.7"]
        await ws.close()


async def test_refused_offers_are_one_event_a_minute_per_peer(serve):
    """An enrolled peer offering 500 documents with unreadable signed releases wrote 500 event rows per
    session (1,500 for three sessions), 15,000 a minute at its session rate. Now one a minute per peer;
    the rest are in the log."""
    district = await serve(Limits())
    ident = enrolled_peer(district)
    before = len(district.fed.events(10**6))
    for _ in range(3):
        async with Hostile(district, ident) as peer:
            await peer.send(Offer(tuple(DocOffer(f"release:c{i}:{'ab' * 8}", b"junk") for i in range(500))))
            await until(lambda: len(district.fed.events(10**6)) > before, "an event")
    added = district.fed.events(10**6)[:len(district.fed.events(10**6)) - before]
    assert [e["kind"] for e in added] == ["refused"], len(added)
    other = enrolled_peer(district, "0010856A")
    async with Hostile(district, other) as peer:  # another school's refusal is still told
        await peer.send(Offer((DocOffer(f"release:c0:{'cd' * 8}", b"junk"),)))
        await until(lambda: len(district.fed.events(10**6)) == before + 2, "the other peer's event")


def test_failed_join_codes_are_counted_per_address_in_bounded_time_and_memory():
    """Many addresses failing join codes cost each failure the same (the record of the least recent address
    goes past CODE_ADDRESSES), and an IPv6 network's /64 counts as one address."""
    import time as _time
    from preau.node.federation import gate as gates
    CODE_ADDRESSES = getattr(gates, "CODE_ADDRESSES", 4096)
    now = [1000.0]
    gate = SessionGate(Limits(code_failures_per_address=3, code_failures_overall=100_000), clock=lambda: now[0])
    start = _time.perf_counter()
    for n in range(2 * CODE_ADDRESSES):
        gate.code_failed(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    assert _time.perf_counter() - start < 1.0  # was 5 ms a failure past 4,096 addresses (a rebuild each)
    assert len(gate._code_failures) <= CODE_ADDRESSES
    # Three tries from three addresses of one /64 make it wait; another /64 and an IPv4 address do not.
    assert [gate.code_failed(f"2001:db8:1:2::{n}") for n in (1, 2, 3)] == [False, False, True]
    assert gate.code_wait("2001:db8:1:2:ffff::9") > 0 and gate.code_wait("2001:db8:1:3::1") == 0
    assert gate.code_wait("192.0.2.1") == 0
    now[0] += 601  # past the window: forgotten
    assert gate.code_wait("2001:db8:1:2::1") == 0


def one_exercise_campaign():
    """The campaign the district holds in the tests below: one exercise (what its peers send is for it)."""
    from preau.crdt.campaign import parse_campaign
    return parse_campaign({
        "id": "2026-debut-cp", "name": "Début de CP", "level": "CP", "school_year": "2026-2027",
        "opens": "2026-09-01", "closes": "2026-09-30", "policy": {"min_cohort": 10, "min_batch": 10},
        "exercises": [{"id": "fr-mots", "name": "Mots", "subject": "français", "score_kind": "items", "items": 15,
                       "thresholds": [6, 10]}]})


@pytest.mark.parametrize("body", [b'{"doc_id": "%s", "release": "seven"}', b'{"doc_id": "%s", "release": null}',
                                  b'{"doc_id": "%s", "release": 1e400}', b'{"doc_id": "%s", "x": ' + b'[' * 100_000 + b']' * 100_000 + b'}'])
async def test_an_unreadable_receipt_is_refused_by_name(serve, body, caplog):
    """A receipt whose release is not a whole number (or whose JSON nests past Python's recursion limit) ended
    the session with a traceback in the node's log (ValueError, TypeError, OverflowError, RecursionError
    escaped the receipt check); the peer now hears `bad_receipt` and the node logs one line."""
    from preau.protocol.wire import Receipt, Want

    district = await serve(Limits(idle_timeout=5))
    district.federation.publish_campaign(one_exercise_campaign())
    async with Hostile(district, enrolled_peer(district)) as peer:
        await peer.send(Offer(()))
        events = list(peer.events)
        while not any(isinstance(ev, Offer) for ev in events):
            events += peer.conn.receive_data((await asyncio.wait_for(peer.ws.receive(), 5)).data)
        [campaign] = [d.doc_id for ev in events if isinstance(ev, Offer) for d in ev.docs]
        await peer.send(Want((campaign,)))
        await peer.send(Receipt(campaign, body.replace(b"%s", campaign.encode())))
        refusal = await peer.refusal()
        assert "(bad_receipt)" in refusal, refusal
    assert not [r for r in caplog.records if r.exc_info], "a traceback in the node's log"


async def test_one_peer_holds_at_most_a_few_sessions_at_once(serve):
    """Each session keeps its documents in memory until it ends (up to max_session_rows of operations, ~100 MB):
    one enrolled peer holding 64 sessions open at once would have held them all, and the node's memory. Past
    max_sessions_per_peer it is told `too_many_sessions` (its own words: not "busy with other nodes' syncs");
    another school still gets in, and so does the same peer once one of its sessions ended."""
    district = await serve(Limits(idle_timeout=10, max_sessions_per_peer=2))
    greedy, other = enrolled_peer(district), enrolled_peer(district, "0010856A")
    async with Hostile(district, greedy), Hostile(district, greedy) as second:
        third = Hostile(district, greedy)
        with pytest.raises(RemoteProtocolError) as refused:
            await third.__aenter__()
        await third.__aexit__(None, None, None)
        assert refused.value.code == "too_many_sessions", refused.value
        async with Hostile(district, other):
            assert district.gate.active == 3
        await second.ws.close()
        await until(lambda: district.gate.active == 1, "one session left")
        async with Hostile(district, greedy) as again:
            await again.send(Offer(()))
            assert district.gate.active == 2
    await until(lambda: district.gate.active == 0 and not district.gate._held, "every session ended")


async def test_small_sync_messages_do_not_each_cost_the_whole_document(serve, monkeypatch):
    """Until the signed heads are all there, every sync message for a document being received looked for them in
    the document's whole history (Automerge's get_changes: ~1 ms per 1,000 changes, the GIL held). An enrolled
    peer sending a document of 20,000 changes (5,000 here) but never the signed head, then a stream of empty
    5-byte sync messages, made each of them cost the district that much: its database thread was the peer's
    for the cost of a few bytes. Now the history is read once, and each message adds only what it brought."""
    import automerge.core as am

    from preau.crdt import docio
    from preau.crdt.campaign import Policy
    from preau.node.federation import transport
    from preau.crdt.documents import ReleaseContent, write_release
    from preau.crdt.schema import document_id, new_document
    from preau.crdt.signing import sign_release
    from preau.protocol.wire import SyncIdle, SyncMessage

    district = await serve(Limits(idle_timeout=5))
    district.federation.publish_campaign(one_exercise_campaign())
    ident = enrolled_peer(district)
    doc_id = document_id("release", ident.signing_key, "2026-debut-cp")
    doc = new_document("release", ident.signing_key, campaign="2026-debut-cp", doc_id=doc_id)
    for i in range(5_000):
        with doc.transaction() as tx:
            tx.put(am.ROOT, "n", am.ScalarType.Int, i)
    sent = doc.get_changes([])  # everything but the signed head
    write_release(doc, ReleaseContent("2026-debut-cp", 1, "withheld", "small_cohort", Policy()))
    signed = sign_release(doc, ident.seed, now=int(time.time()))
    bulks = []  # sync messages of 1,000 changes each (~130 kB: under a WebSocket message's bound)
    for at in range(0, len(sent), 1000):
        part = sent[at:at + 1000]
        chunks = b"".join(_uleb(len(c.bytes)) + c.bytes for c in part)
        bulks.append(b"\x42" + _uleb(0) + _uleb(0) + _uleb(0) + _uleb(len(part)) + chunks)
    reads = []
    real = docio.change_hashes
    monkeypatch.setattr(docio, "change_hashes", lambda d: reads.append(1) or real(d))
    monkeypatch.setattr(transport, "change_hashes", lambda d: reads.append(1) or real(d), raising=False)
    async with Hostile(district, ident) as peer:
        await peer.send(Offer((DocOffer(doc_id, signed.encode()),)))
        for bulk in bulks:
            await peer.send(SyncMessage(doc_id, bulk))
        for _ in range(50):
            await peer.send(SyncMessage(doc_id, b"\x42\x00\x00\x00\x00"))
        answers = 0  # the district answers each sync message (SyncMessage or SyncIdle): all of them read
        while answers < len(bulks) + 50:
            msg = await asyncio.wait_for(peer.ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            answers += sum(isinstance(ev, (SyncMessage, SyncIdle)) for ev in peer.conn.receive_data(msg.data))
    assert len(reads) <= 1, f"the whole history was read {len(reads)} times"


def test_failed_join_codes_from_many_networks_meet_a_ceiling():
    """Found by review: with a /48 (65,536 /64s, each allowed its own tries) one could again find and spoil every
    pending code. All addresses' failures together meet a ceiling; past it everyone waits (the long text of an
    invitation needs no code), and the window's end lets codes in again."""
    now = [1000.0]
    gate = SessionGate(Limits(code_failures_per_address=10, code_failures_overall=5), clock=lambda: now[0])
    for n in range(5):
        assert gate.code_wait(f"2001:db8:0:{n:x}::1") == 0
        gate.code_failed(f"2001:db8:0:{n:x}::1")  # five networks, one failure each
    assert gate.code_wait("2001:db8:0:99::1") > 0 and gate.code_wait("192.0.2.1") > 0  # every computer waits
    assert len(gate._all_code_failures) == 5  # memory: the ceiling, whatever the flood
    now[0] += 601
    assert gate.code_wait("2001:db8:0:99::1") == 0
